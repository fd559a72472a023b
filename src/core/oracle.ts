// The model's oracles (DESIGN.md, "Checkers"): isolation — every DMA lands in the address space bound to its
// {device, PASID} when it was issued, or faults; stale translation — no IOTLB / ATC / PASID-cache entry
// outlives the mapping or the PASID binding it came from, and no PASID is handed out again while a device
// still has DMA in flight under it; page requests — each group is answered exactly once. The ground truth
// (what is bound where) is the core's; the hardware registers its caches here so that the core can look at
// them without importing any vendor. Each check runs in the step that could break it. One set per kernel
// (Oracle.of): the bond path, the groups (iommu.ts) and the hardware report through the same instance.
import type { KTask } from '../kernel/context.js';
import { type KernelFinding, taskFinding } from '../kernel/findings.js';
import type { Kernel } from '../kernel/kernel.js';
import type { Footprint, FootprintFn } from '../runtime/footprint.js';

/** What the group layer knows of a DMA that reached a domain through its group (iommu.ts). */
export interface GroupReach {
  readonly id: number;
  readonly devices: readonly { readonly name: string }[];
  /** The members the PASID was attached for. */
  readonly attachedFor: readonly { readonly name: string }[];
}

const oracles = new WeakMap<Kernel, Oracle>();

/** A cache the hardware keeps (IOTLB, PASID cache, ATC), as the oracle needs to see it. */
export interface TranslationCache {
  readonly name: string;
  /** Entries that translate to frame pfn, one line each. */
  entriesForPfn(pfn: number): string[];
  /** Entries tagged with {dev, pasid}, one line each. */
  entriesForPasid(dev: number, pasid: number): string[];
  /**
   * The shared words entriesForPasid(dev, pasid) reads (footprint.ts; pure, computed under the step). A cache
   * without it keeps the steps that look at it (an unbind's stale-translation check) on the coarse fallback lock.
   */
  pasidFootprint?(dev: number, pasid: number): Footprint;
}

/** What the oracle reads of a device: DMA in flight under a PASID. */
export interface DmaCounter {
  inflight(dev: number, pasid: number): number;
  /** The shared words inflight(dev, pasid) reads, as TranslationCache.pasidFootprint. */
  inflightFootprint?(dev: number, pasid: number): Footprint;
}

export class Oracle {
  private readonly caches: TranslationCache[] = [];
  private readonly counters: DmaCounter[] = [];
  /** Findings per kind are capped: one broken invariant tends to break it a thousand times. */
  private readonly reported = new Map<string, number>();

  /** Isolation findings through a group in this execution, by {device, PASID}: one broken rule breaks it often. */
  private readonly groupReported = new Set<string>();

  constructor(private readonly k: Kernel) {
    k.onAttach(() => {
      this.reported.clear();
      this.groupReported.clear();
    });
    if (!oracles.has(k)) oracles.set(k, this);
  }

  /** The kernel's oracles: the first made for it (a preset's), or a new one. */
  static of(k: Kernel): Oracle {
    return oracles.get(k) ?? new Oracle(k);
  }

  addCache(c: TranslationCache): void {
    this.caches.push(c);
  }

  addDmaCounter(c: DmaCounter): void {
    this.counters.push(c);
  }

  /**
   * A DMA write is landing on frame pfn whose owner is `owner` (0: free); `expected` was bound to {dev, PASID}
   * at issue, `meant` is the address space of the process that submitted it (0: not a process). Both must be
   * the owner: a PASID that names another address space on this device than on the submitter's is one PASID
   * for two address spaces.
   */
  dmaLanded(step: number, dev: string, pasid: number, vpn: number, pfn: number, owner: number, expected: number, ownerName: (o: number) => string, meant = 0): void {
    if (owner === expected && expected !== 0 && (meant === 0 || owner === meant)) return;
    const title = `iommu-sim: isolation violation: DMA from ${dev} PASID ${pasid} landed in ${ownerName(owner)}`;
    const body = [
      `DMA write to vpn ${vpn} (pfn 0x${pfn.toString(16)}) by ${dev} under PASID ${pasid}${meant === 0 ? '' : `, submitted by a task of ${ownerName(meant)}`}`,
      expected === 0
        ? 'no address space was bound to {device, PASID} when the DMA was issued: it should have faulted'
        : `the address space bound to {${dev}, PASID ${pasid}} when the DMA was issued was ${ownerName(expected)}`,
      `frame 0x${pfn.toString(16)} belongs to ${ownerName(owner)}`,
    ];
    if (meant !== 0 && expected !== meant) body.push(`PASID ${pasid} does not name ${ownerName(meant)} on ${dev}: the submitter's PASID means another address space there`);
    this.report('isolation', step, dev, title, body);
  }

  /** A write the device made outside any descriptor reached memory: the IOMMU should have contained it. */
  strayLanded(step: number, dev: string, pasid: number, vpn: number, descriptorVpn: number, pfn: number, owner: string): void {
    const title = `iommu-sim: isolation violation: stray DMA from ${dev} PASID ${pasid} landed in ${owner}`;
    const body = [
      `DMA write to address ${vpn} (pfn 0x${pfn.toString(16)}) by ${dev} under PASID ${pasid}; its descriptor named address ${descriptorVpn} only`,
      `the translation for {${dev}, PASID ${pasid}} maps memory no descriptor handed the device: the write should have faulted`,
      `frame 0x${pfn.toString(16)} belongs to ${owner}`,
    ];
    this.report('isolation', step, dev, title, body);
  }

  /**
   * Isolation through a group: a DMA from {dev, pasid} reached domain dom although the PASID was attached only for
   * other devices of its group (policy multiDevicePasid). The request should have been blocked, and the domain
   * belongs to another device's user. Called in the point where the hardware reads the entry.
   */
  groupDmaReached(t: KTask, step: number, dev: { readonly index: number; readonly name: string }, pasid: number, dom: number, g: GroupReach): void {
    const key = `${dev.index}:${pasid}`;
    if (this.groupReported.has(key)) return;
    this.groupReported.add(key);
    const forDevs = g.attachedFor.map((d) => d.name);
    const title = `iommu-sim: isolation violation: DMA from ${dev.name} PASID ${pasid} reached domain 0x${dom.toString(16)}, attached for ${forDevs.length > 0 ? forDevs.join(', ') : 'no device'}`;
    this.k.report(
      taskFinding('isolation', t, step, title, [
        `nothing was attached to {${dev.name}, PASID ${pasid}}: the request should have been blocked`,
        `${dev.name} is in IOMMU group ${g.id} with ${g.devices.filter((d) => d.name !== dev.name).map((d) => d.name).join(', ') || 'no other device'}:`,
        '  devices the IOMMU cannot isolate from each other (no ACS, requester ID aliasing) reach whatever one of them',
        '  has attached — the reason iommu_attach_device_pasid takes singleton groups only',
      ]),
    );
  }

  /** Frame pfn is being freed: nothing may still translate to it. */
  pageFreed(step: number, pfn: number, owner: string, where: string): void {
    // Every cache of the topology at every page free: nothing allocated until an entry is found.
    const stale: string[] = [];
    for (const c of this.caches) {
      const found = c.entriesForPfn(pfn);
      if (found.length > 0) stale.push(...found.map((e) => `  ${c.name}: ${e}`));
    }
    if (stale.length === 0) return;
    const title = `iommu-sim: stale translation: frame 0x${pfn.toString(16)} of ${owner} freed while ${stale.length} translation${stale.length > 1 ? 's' : ''} still point at it`;
    this.report('stale_translation', step, where, title, ['entries that outlive the mapping:', ...stale]);
  }

  /**
   * A page walk read a page-table page through a pointer — a cached upper-level entry (the paging-structure
   * cache) or an entry it read a delivery before — and the frame is no longer that table: freed, or reused as
   * something else. A use-after-free of a page-table page: what the walk reads there is not the address space's.
   */
  tablePageStale(step: number, where: string, title: string, body: readonly string[]): void {
    this.report('stale_translation', step, where, `iommu-sim: stale translation: ${title}`, body);
  }

  /** {dev, pasid} is no longer bound (its PASID is being freed or quarantined): no cache may still hold it. */
  pasidUnbound(step: number, dev: number, devName: string, pasid: number, where: string): void {
    const stale = this.caches.flatMap((c) => c.entriesForPasid(dev, pasid).map((e) => `  ${c.name}: ${e}`));
    if (stale.length === 0) return;
    const title = `iommu-sim: stale translation: PASID ${pasid} of ${devName} unbound while ${stale.length} cached entr${stale.length > 1 ? 'ies' : 'y'} still hold it`;
    this.report('stale_translation', step, where, title, ['entries that outlive the binding:', ...stale]);
  }

  /**
   * What pasidUnbound(…, dev, pasid) reads, when every registered cache can say (else undefined: the caller's step
   * stays on the fallback lock). Whether they can is fixed when the model is built, not by the run.
   */
  pasidUnboundFootprint(dev: number, pasid: number): FootprintFn | undefined {
    const caches = this.caches;
    if (!caches.every((c) => c.pasidFootprint)) return undefined;
    return () => caches.flatMap((c) => c.pasidFootprint?.(dev, pasid) ?? []);
  }

  /** What pasidAllocated(…, pasid, devs) reads, as pasidUnboundFootprint. */
  pasidAllocatedFootprint(pasid: number, devs: readonly { index: number }[]): FootprintFn | undefined {
    const counters = this.counters;
    if (!counters.every((c) => c.inflightFootprint)) return undefined;
    return () => devs.flatMap((d) => counters.flatMap((c) => c.inflightFootprint?.(d.index, pasid) ?? []));
  }

  /** PASID pasid is being handed out for devices `devs`: none may still have DMA in flight under it. */
  pasidAllocated(step: number, pasid: number, devs: readonly { index: number; name: string }[], where: string): void {
    const busy: string[] = [];
    for (const d of devs) {
      let n = 0;
      for (const c of this.counters) n += c.inflight(d.index, pasid);
      if (n > 0) busy.push(`  ${d.name}: ${n} DMA in flight under PASID ${pasid}`);
    }
    if (busy.length === 0) return;
    const title = `iommu-sim: stale translation: PASID ${pasid} handed out again before its drain finished`;
    this.report('stale_translation', step, where, title, busy);
  }

  /** A page request group was answered (`answers`: how many times so far, this one included). */
  pageResponse(step: number, dev: string, grp: number, answers: number): void {
    if (answers === 1) return;
    const title =
      answers === 0
        ? `iommu-sim: page response for ${dev} group ${grp}, which has no outstanding request`
        : `iommu-sim: page request group ${grp} of ${dev} answered ${answers} times`;
    this.report('page_request', step, dev, title, ['every page request with the last flag is answered exactly once']);
  }

  /** At teardown: groups never answered. */
  unanswered(groups: readonly string[]): void {
    if (groups.length === 0) return;
    this.report('page_request', -1, groups[0] ?? '', `iommu-sim: ${groups.length} page request group${groups.length > 1 ? 's' : ''} never answered`, groups.map((g) => `  ${g}`));
  }

  /**
   * The device got a response for {dev, PASID} group grp (`by`: the command or the hardware's automatic
   * response); `outstanding`: whether the group was waiting for one. A response to a group that was not is a
   * second answer (or one never asked for): io-pgfault.c has no WARN for it, the device sees it.
   */
  pageGroupAnswered(step: number, dev: string, pasid: number, grp: number, outstanding: boolean, by: string): void {
    if (outstanding) return;
    const title = `iommu-sim: page response for ${dev} PASID ${pasid} group ${grp}, which has no outstanding request`;
    this.report('page_request', step, dev, title, [
      `${by} answers {${dev}, PASID ${pasid}} group ${grp}, which was answered already or never requested`,
      'every page request with the last flag is answered exactly once',
    ]);
  }

  private report(kind: KernelFinding['kind'], step: number, where: string, title: string, body: readonly string[]): void {
    const key = `${kind}:${title}`;
    const n = this.reported.get(key) ?? 0;
    this.reported.set(key, n + 1);
    if (n > 0) return;
    this.k.report({ kind, title, text: [title, ...body].join('\n'), step, where });
  }
}
