// An IOMMU unit's hardware, the part all three flavours share (src/hw/flavour.ts says where they differ): the
// per-device PASID tables in memory, a PASID-entry cache, an IOTLB, a paging-structure cache (the upper-level
// entries of the page tables walked; flushed with the IOTLB unless the invalidation is leaf-only), the command
// queue the driver writes and the hardware consumes one command at a time at a per-command cost, and the page
// request queue. Everything is in the run's shared memory: the driver (kernel tasks) writes tables and queues,
// the hardware (the unit's actor, in sequenced deliveries) reads them — a table entry word by word, as hardware
// does. A walk that an invalidation overtakes does not fill the caches with what it read (hardware guarantees
// that much), but it does finish the translation with it while its tables and context are still there.
import type { TranslationCache } from '../core/oracle.js';
import type { DeviceInfo } from '../core/types.js';
import type { Kernel } from '../kernel/kernel.js';
import { PMD_TABLE_SHIFT, PT_LEVEL_PTE, PTE_TABLE_SHIFT } from '../kernel/mm/mm.js';
import { ptePfn } from '../kernel/mm/pagetable.js';
import { array, element, struct, type ViewOf, Word, type Words, word } from '../kernel/struct.js';
import type { FootprintBuilder } from './footprint.js';
import type { HwOut } from './out.js';
import { type Footprint, read } from '../runtime/footprint.js';
import { type CommandOp, type FlavourSpec, OP_DEVTLB, OP_IOTLB, OP_PAGE_RESP, OP_PC, OP_WAIT } from './flavour.js';

// The unit's own memory is hardware state, not kernel structs: the layouts below are the model's, named after
// what they stand for.

/** An IOTLB entry. */
const IOTLB_ENTRY = struct('iotlb_entry', {
  valid: word,
  tag: word, // the device (PASID-tagged flavours) or the ASID
  pasid: word,
  vpn: word,
  pte: word,
  dev: word,
});

/**
 * A paging-structure cache entry (VT-d's PML4/PDPE/PDE caches, the SMMU's walk cache, AMD's PDE cache): an
 * upper-level entry a walk read — {tag, PASID, the level of the table it points at, that table's index} → the
 * table page's pfn. Tagged as the IOTLB is.
 */
const PSC_ENTRY = struct('psc_entry', {
  valid: word,
  tag: word,
  pasid: word,
  level: word, // the level of the table the entry points at (PT_LEVEL_PMD: a PGD entry; PT_LEVEL_PTE: a PMD entry)
  index: word, // that table's index (the first vpn it maps >> the level's shift)
  pfn: word,
  dev: word,
});

/** A PASID-entry cache slot: the flavour's entry (FlavourSpec.entry.layout) follows. */
const PASID_CACHE_SLOT = struct('pasid_cache_slot', {
  valid: word,
  dev: word,
  pasid: word,
  entry: array(0),
});

/**
 * The queues' registers (VT-d: IQH/IQT and PQH/PQT; the SMMU: CMDQ_PROD/CONS and PRIQ_PROD/CONS), and the
 * driver's and the hardware's bookkeeping next to them.
 */
const IOMMU_QUEUES = struct('iommu_queues', {
  head: word, // command queue head: the hardware's
  tail: word, // … tail: the driver's
  wait_done: word, // the last wait descriptor the hardware completed
  seq: word, // the driver's wait sequence
  epoch: word, // invalidations executed (a walk they overtake does not fill caches)
  prq_head: word,
  prq_tail: word,
  prq_active: word, // the page-request thread is running
  enabled: word, // QUEUE_CMDQ | QUEUE_PRQ: the queues the driver enabled
  ite: word, // a device-TLB invalidation timed out (VT-d's ITE, the SMMU's CMD_SYNC timeout), until it completes
  prq_overflow: word, // a page request found the queue full: set until one is queued again
});

/** The queues' enable bits (IOMMU_QUEUES.enabled). */
export const QUEUE_CMDQ = 1;
export const QUEUE_PRQ = 2;

/** A command descriptor: its op and operands. */
const IOMMU_CMD = struct('iommu_cmd', { op: word, a: word, b: word, c: word, d: word });

/** A page request descriptor (VT-d's struct page_req_dsc: rid, pasid, addr, wr_req, prg_index, lpig). */
const PAGE_REQ_DSC = struct('page_req_dsc', { dev: word, pasid: word, vpn: word, write: word, grp: word, last: word });

/** Page request group indices a device uses (PRGI is 9 bits; the model keeps fewer). */
export const PR_GROUPS = 64;

/** The oracle's record of a device's page request groups: PASID + 1 while a group is outstanding (request to response). */
const PRG_OUTSTANDING = struct('prg_outstanding', { grp: array(PR_GROUPS) });

export interface UnitOptions {
  readonly iotlbEntries: number;
  /** Paging-structure cache entries (default 16). */
  readonly pscEntries?: number;
  readonly pcacheEntries: number;
  readonly queueDepth: number;
  readonly prqDepth: number;
  /** Cost of one command: the time the unit is busy executing it (ns; HwOut.busy). */
  readonly cmdCostNs: number;
}

export const DEFAULT_UNIT: UnitOptions = { iotlbEntries: 64, pcacheEntries: 16, queueDepth: 64, prqDepth: 128, cmdCostNs: 100 };

export interface Command {
  readonly op: CommandOp;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
}

export class IommuUnit {
  readonly name: string;
  private readonly iotlb: number;
  private readonly psc: number;
  private readonly pscEntries: number;
  private readonly pscv: ViewOf<typeof PSC_ENTRY>;
  private readonly pcache: number;
  private readonly header: number;
  private readonly cmdq: number;
  private readonly prq: number;
  /** PASID tables of this unit's devices: static offset per device index. */
  private readonly tables = new Map<number, number>();
  /** The device-level entries (FlavourSpec.deviceEntry), one word per device index: static offset. */
  private readonly deviceEntries = new Map<number, number>();
  private readonly tlb: ViewOf<typeof IOTLB_ENTRY>;
  private readonly pc: ViewOf<typeof PASID_CACHE_SLOT>;
  private readonly q: ViewOf<typeof IOMMU_QUEUES>;
  private readonly cmd: ViewOf<typeof IOMMU_CMD>;
  private readonly dsc: ViewOf<typeof PAGE_REQ_DSC>;
  private readonly prg: ViewOf<typeof PRG_OUTSTANDING>;
  /** The entry fields the hardware fetches (FlavourSpec.entry.fetch), in order. */
  private readonly fetchers: readonly Word[];
  /** The entry as the kernel's `u64 val[]`: every word, for reads of the whole entry. */
  private readonly entryVal: Words;
  /** Words of a PASID-entry cache slot: the slot's header and the entry. */
  private readonly pcSlotWords: number;
  /** Per device on this unit: outstanding page request groups (the oracle's). */
  private readonly groups = new Map<number, number>();

  constructor(
    private readonly k: Kernel,
    readonly index: number,
    readonly spec: FlavourSpec,
    readonly devices: readonly DeviceInfo[],
    readonly opts: UnitOptions,
    /** The unit's actor. */
    readonly actor: number,
  ) {
    this.name = spec.unitName(index);
    this.iotlb = k.statics.alloc(Math.max(1, opts.iotlbEntries) * IOTLB_ENTRY.words, `${this.name} iotlb`);
    this.pscEntries = opts.pscEntries ?? 16;
    this.psc = k.statics.alloc(Math.max(1, this.pscEntries) * PSC_ENTRY.words, `${this.name} paging-structure cache`);
    this.pscv = k.struct(PSC_ENTRY);
    this.pcSlotWords = PASID_CACHE_SLOT.words + spec.entry.layout.words;
    this.pcache = k.statics.alloc(opts.pcacheEntries * this.pcSlotWords, `${this.name} pasid cache`);
    this.header = k.statics.alloc(IOMMU_QUEUES.words, `${this.name} queues`);
    this.cmdq = k.statics.alloc(opts.queueDepth * IOMMU_CMD.words, `${this.name} ${spec.cmdqName}`);
    this.prq = k.statics.alloc(opts.prqDepth * PAGE_REQ_DSC.words, `${this.name} ${spec.prqName}`);
    this.tlb = k.struct(IOTLB_ENTRY);
    this.pc = k.struct(PASID_CACHE_SLOT);
    this.q = k.struct(IOMMU_QUEUES);
    this.cmd = k.struct(IOMMU_CMD);
    this.dsc = k.struct(PAGE_REQ_DSC);
    this.prg = k.struct(PRG_OUTSTANDING);
    this.fetchers = entryFetchers(k, spec);
    this.entryVal = k.struct(struct(spec.entry.layout.name, { val: array(spec.entry.layout.words) })).val;
    for (const d of devices) {
      this.tables.set(d.index, this.allocTable(d));
      this.groups.set(d.index, k.statics.alloc(PRG_OUTSTANDING.words, `${d.name} page request groups`));
      if (spec.deviceEntry) this.deviceEntries.set(d.index, k.statics.alloc(1, `${d.name} ${spec.deviceEntry.name}`));
    }
  }

  get kernel(): Kernel {
    return this.k;
  }

  /**
   * Static offset of d's PASID table, allocated at boot whole (2^pasidBits entries). A vendor whose driver
   * allocates its tables itself overrides it (VT-d: the PASID directory, leaf tables on demand).
   */
  protected allocTable(d: DeviceInfo): number {
    return this.k.statics.alloc((1 << d.caps.pasidBits) * this.spec.entry.layout.words, `${d.name} ${this.spec.entryName} table`);
  }

  /** Static offset of what allocTable gave dev. */
  protected tableOf(dev: number): number {
    const t = this.tables.get(dev);
    if (t === undefined) throw new Error(`${this.name}: device ${dev} is not behind this IOMMU`);
    return t;
  }

  private s(off: number): number {
    return this.k.mem.statics + off;
  }

  // ---- memory the driver writes ----

  /** {dev, pasid}'s entry (its word offset): the driver's accessors of the flavour's layout take it. */
  entryPtr(dev: number, pasid: number): number {
    const t = this.tables.get(dev);
    if (t === undefined) throw new Error(`${this.name}: device ${dev} is not behind this IOMMU`);
    return element(this.spec.entry.layout, this.s(t), pasid);
  }

  /** dev's device-level entry (its word offset; FlavourSpec.deviceEntry): the driver writes it, 0 reads as atProbe. */
  deviceEntryPtr(dev: number): number {
    const t = this.deviceEntries.get(dev);
    if (t === undefined) throw new Error(`${this.name}: no ${this.spec.deviceEntry?.name ?? 'device entry'} for device ${dev}`);
    return this.s(t);
  }

  /** dev's device-level entry as the hardware reads it (atProbe while the driver has not written it). */
  deviceEntry(dev: number): number {
    const w = this.spec.deviceEntry ? Atomics.load(this.k.i32, this.deviceEntryPtr(dev)) : 0;
    return w === 0 ? (this.spec.deviceEntry?.atProbe ?? 0) : w;
  }

  /**
   * Does dev's device-level entry abort {dev, pasid}'s requests? The model does not cache the entry: a write of it
   * takes effect at once (the driver flushes the unit's copy all the same, as the kernel does).
   */
  blocks(dev: number, pasid: number): boolean {
    const f = this.spec.deviceEntry;
    return f?.blocks(this.deviceEntry(dev), pasid) ?? false;
  }

  /** Fields the hardware fetches of an entry (one access each). */
  get fetchCount(): number {
    return this.fetchers.length;
  }

  /** The hardware's i-th fetch of {dev, pasid}'s entry: one access to one field. */
  fetchEntry(i: number, dev: number, pasid: number): number {
    return (this.fetchers[i] as Word).get(this.entryPtr(dev, pasid));
  }

  /** The entry's words as the hardware assembles them from its fetches (`fetched[i]`: fetch i), the rest 0. */
  assembleEntry(fetched: readonly number[]): number[] {
    const w = new Array<number>(this.spec.entry.layout.words).fill(0);
    for (let i = 0; i < fetched.length; i++) w[(this.fetchers[i] as Word).off] = fetched[i] as number;
    return w;
  }

  /** {dev, pasid}'s entry in memory now, every word (the oracle's and tests' read, not the hardware's). */
  entry(dev: number, pasid: number): number[] {
    const p = this.entryPtr(dev, pasid);
    return Array.from({ length: this.entryVal.n }, (_, w) => this.entryVal.get(p, w));
  }

  /** The queues' registers (their word offset). */
  private get regs(): number {
    return this.s(this.header);
  }

  /** Free command slots (the driver waits for room for its commands and a wait descriptor). */
  cmdqFree(): number {
    return this.opts.queueDepth - (this.q.tail.get(this.regs) - this.q.head.get(this.regs));
  }

  /** Driver: write commands and a wait descriptor at the tail; returns the wait's sequence number. */
  cmdqWrite(cmds: readonly Command[]): number {
    const seq = this.q.seq.get(this.regs) + 1;
    this.q.seq.set(this.regs, seq);
    let tail = this.q.tail.get(this.regs);
    for (const c of [...cmds, { op: OP_WAIT, a: 0, b: 0, c: seq, d: 0 } satisfies Command]) {
      const at = element(IOMMU_CMD, this.s(this.cmdq), tail % this.opts.queueDepth);
      const cmd = this.cmd;
      cmd.op.set(at, c.op);
      cmd.a.set(at, c.a);
      cmd.b.set(at, c.b);
      cmd.c.set(at, c.c);
      cmd.d.set(at, c.d);
      tail++;
    }
    this.q.tail.set(this.regs, tail);
    return seq;
  }

  waitDone(seq: number): boolean {
    return this.q.wait_done.get(this.regs) >= seq;
  }

  /** Page requests of {dev, pasid} queued or being handled (the driver's drain waits until there are none). */
  prqPending(dev: number, pasid: number): number {
    let n = 0;
    for (let i = this.q.prq_head.get(this.regs); i < this.q.prq_tail.get(this.regs); i++) {
      const at = element(PAGE_REQ_DSC, this.s(this.prq), i % this.opts.prqDepth);
      if (this.dsc.dev.get(at) === dev && this.dsc.pasid.get(at) === pasid) n++;
    }
    return n;
  }

  /**
   * The words prqPending reads (a drain's wait declares them; computed by the caller each time: the requests
   * between head and tail are shared state). Each vendor with a queue of its own overrides it with prqPending.
   */
  prqPendingFootprint(): Footprint {
    const r = this.regs;
    const fp = [read(this.q.prq_head.addr(r)), read(this.q.prq_tail.addr(r))];
    for (let i = this.q.prq_head.get(r); i < this.q.prq_tail.get(r); i++) {
      const at = element(PAGE_REQ_DSC, this.s(this.prq), i % this.opts.prqDepth);
      for (let w = 0; w < PAGE_REQ_DSC.words; w++) fp.push(read(at + w));
    }
    return fp;
  }

  /** The page-request thread: the next request (left in the queue until retired), or undefined — then it stops. */
  prqPeek(): { dev: number; pasid: number; vpn: number; write: boolean; grp: number; last: boolean } | undefined {
    const head = this.q.prq_head.get(this.regs);
    if (head === this.q.prq_tail.get(this.regs)) {
      this.q.prq_active.set(this.regs, 0);
      return undefined;
    }
    const at = element(PAGE_REQ_DSC, this.s(this.prq), head % this.opts.prqDepth);
    const d = this.dsc;
    return { dev: d.dev.get(at), pasid: d.pasid.get(at), vpn: d.vpn.get(at), write: d.write.get(at) === 1, grp: d.grp.get(at), last: d.last.get(at) === 1 };
  }

  prqRetire(): void {
    this.q.prq_head.set(this.regs, this.q.prq_head.get(this.regs) + 1);
  }

  // ---- the hardware (called in the unit actor's sequenced deliveries) ----

  get epoch(): number {
    return this.q.epoch.get(this.regs);
  }

  private tlbSlot(tag: number, pasid: number, vpn: number): number {
    const h = Math.imul(tag * 0x9e3779b1 + pasid * 0x85ebca6b + vpn, 0x27d4eb2d) >>> 0;
    return element(IOTLB_ENTRY, this.s(this.iotlb), h % this.opts.iotlbEntries);
  }

  /** IOTLB lookup: the PTE, or 0 on a miss. */
  iotlbLookup(tag: number, pasid: number, vpn: number): number {
    if (this.opts.iotlbEntries === 0) return 0;
    const at = this.tlbSlot(tag, pasid, vpn);
    const e = this.tlb;
    return e.valid.get(at) === 1 && e.tag.get(at) === tag && e.pasid.get(at) === pasid && e.vpn.get(at) === vpn ? e.pte.get(at) : 0;
  }

  iotlbFill(tag: number, pasid: number, vpn: number, pte: number, dev: number, epoch: number): void {
    if (epoch !== this.epoch || this.opts.iotlbEntries === 0) return;
    const at = this.tlbSlot(tag, pasid, vpn);
    const e = this.tlb;
    e.valid.set(at, 1);
    e.tag.set(at, tag);
    e.pasid.set(at, pasid);
    e.vpn.set(at, vpn);
    e.pte.set(at, pte);
    e.dev.set(at, dev);
  }

  private pscSlot(tag: number, pasid: number, level: number, index: number): number {
    const h = Math.imul(tag * 0x9e3779b1 + pasid * 0x85ebca6b + level * 0x27d4eb2d + index, 0x165667b1) >>> 0;
    return element(PSC_ENTRY, this.s(this.psc), h % this.pscEntries);
  }

  /** Paging-structure cache lookup: the pfn of the table the cached entry points at, or 0 on a miss. */
  pscLookup(tag: number, pasid: number, level: number, index: number): number {
    if (this.pscEntries === 0) return 0;
    const at = this.pscSlot(tag, pasid, level, index);
    const e = this.pscv;
    return e.valid.get(at) === 1 && e.tag.get(at) === tag && e.pasid.get(at) === pasid && e.level.get(at) === level && e.index.get(at) === index ? e.pfn.get(at) : 0;
  }

  /** A walk read an upper-level entry: cache it, unless an invalidation overtook the walk (epoch). */
  pscFill(tag: number, pasid: number, level: number, index: number, pfn: number, dev: number, epoch: number): void {
    if (epoch !== this.epoch || this.pscEntries === 0) return;
    const at = this.pscSlot(tag, pasid, level, index);
    const e = this.pscv;
    e.valid.set(at, 1);
    e.tag.set(at, tag);
    e.pasid.set(at, pasid);
    e.level.set(at, level);
    e.index.set(at, index);
    e.pfn.set(at, pfn);
    e.dev.set(at, dev);
  }

  /**
   * An IOTLB invalidation: tag (device or ASID), PASID (-1 with ASID tags), the vpn range [start, end) (start -1:
   * all). `leafOnly` is the vendor's hint that only leaf entries changed — VT-d's IH (invalidation hint) bit, the
   * SMMU's TLBI leaf flag, AMD's PDE bit clear: the paging-structure caches are kept. Otherwise every cached
   * upper-level entry of the tag whose range meets [start, end) goes too (VT-d 6.5.2.4: a page-selective
   * invalidation with IH clear invalidates the paging-structure entries that map the range).
   */
  iotlbInvalidate(tag: number, pasid: number, start: number, end: number, leafOnly: boolean): void {
    const tlb = this.tlb;
    for (let e = 0; e < this.opts.iotlbEntries; e++) {
      const at = element(IOTLB_ENTRY, this.s(this.iotlb), e);
      if (tlb.valid.get(at) !== 1 || tlb.tag.get(at) !== tag || (pasid !== -1 && tlb.pasid.get(at) !== pasid)) continue;
      const vpn = tlb.vpn.get(at);
      if (start === -1 || (vpn >= start && vpn < end)) tlb.valid.set(at, 0);
    }
    if (!leafOnly) {
      const p = this.pscv;
      for (let e = 0; e < this.pscEntries; e++) {
        const at = element(PSC_ENTRY, this.s(this.psc), e);
        if (p.valid.get(at) !== 1 || p.tag.get(at) !== tag || (pasid !== -1 && p.pasid.get(at) !== pasid)) continue;
        const shift = p.level.get(at) === PT_LEVEL_PTE ? PTE_TABLE_SHIFT : PMD_TABLE_SHIFT;
        const first = p.index.get(at) << shift;
        if (start === -1 || (first < end && first + (1 << shift) > start)) p.valid.set(at, 0);
      }
    }
    this.q.epoch.set(this.regs, this.epoch + 1);
  }

  private pcSlot(dev: number, pasid: number): number {
    const h = Math.imul(dev * 0x9e3779b1 + pasid, 0x85ebca6b) >>> 0;
    return this.s(this.pcache) + (h % this.opts.pcacheEntries) * this.pcSlotWords;
  }

  /** PASID-entry cache lookup: the cached words, or undefined. */
  pcLookup(dev: number, pasid: number): number[] | undefined {
    const at = this.pcSlot(dev, pasid);
    const pc = this.pc;
    if (pc.valid.get(at) !== 1 || pc.dev.get(at) !== dev || pc.pasid.get(at) !== pasid) return undefined;
    // A loop, not Array.from with a callback: this is on every translation's path (SMMUv3's hits too).
    const n = this.spec.entry.layout.words;
    const words = new Array<number>(n);
    for (let w = 0; w < n; w++) words[w] = pc.entry.get(at, w);
    return words;
  }

  pcFill(dev: number, pasid: number, words: readonly number[], epoch: number): void {
    if (epoch !== this.epoch) return;
    const at = this.pcSlot(dev, pasid);
    const pc = this.pc;
    pc.valid.set(at, 1);
    pc.dev.set(at, dev);
    pc.pasid.set(at, pasid);
    for (let w = 0; w < words.length; w++) pc.entry.set(at, w, words[w] as number);
  }

  /**
   * Invalidate every PASID-entry cache slot of dev (a vendor's device-level invalidation: AMD's INVALIDATE_DEVTAB_ENTRY
   * drops what the unit cached under the device's DTE), as one invalidation (the epoch moves).
   */
  /** The context cache's entry of {dev, pasid} goes (a PASID-cache / CD / GCR3-entry invalidation). */
  pcInvalidate(dev: number, pasid: number): void {
    const at = this.pcSlot(dev, pasid);
    if (this.pc.dev.get(at) === dev && this.pc.pasid.get(at) === pasid) this.pc.valid.set(at, 0);
    this.q.epoch.set(this.regs, this.epoch + 1);
  }

  pcInvalidateDevice(dev: number): void {
    for (let i = 0; i < this.opts.pcacheEntries; i++) {
      const at = this.s(this.pcache) + i * this.pcSlotWords;
      if (this.pc.dev.get(at) === dev) this.pc.valid.set(at, 0);
    }
    this.q.epoch.set(this.regs, this.epoch + 1);
  }

  /** The next command, or undefined when the queue is empty. */
  cmdqPeek(): Command | undefined {
    const head = this.q.head.get(this.regs);
    if (head === this.q.tail.get(this.regs)) return undefined;
    const at = element(IOMMU_CMD, this.s(this.cmdq), head % this.opts.queueDepth);
    const cmd = this.cmd;
    return { op: cmd.op.get(at) as CommandOp, a: cmd.a.get(at), b: cmd.b.get(at), c: cmd.c.get(at), d: cmd.d.get(at) };
  }

  /**
   * Execute a command's effect on the unit's own caches; the actor does what reaches a device. The command takes
   * the unit cmdCostNs of its time (HwOut.busy: simulated in the deterministic runtime).
   */
  execute(c: Command, out: Pick<HwOut, 'busy'>): void {
    out.busy(this.opts.cmdCostNs);
    if (c.op === OP_IOTLB) {
      // a: tag (device or ASID), b: PASID (-1 with ASID tags), [c, d): vpn range, c = -1: all. The generic
      // command is what the SVA paths send (VT-d's PASID-based IOTLB invalidation with IH clear, the SMMU's
      // TLBI by ASID / VA with leaf clear, AMD's INVALIDATE_IOMMU_PAGES with PDE set): no leaf-only hint.
      this.iotlbInvalidate(c.a, c.b, c.c, c.d, false);
    } else if (c.op === OP_PC) {
      this.pcInvalidate(c.a, c.b);
    } else if (c.op === OP_WAIT) {
      this.q.wait_done.set(this.regs, c.c);
    }
  }

  cmdqRetire(): void {
    this.q.head.set(this.regs, this.q.head.get(this.regs) + 1);
  }

  /** The queues the driver has enabled (QUEUE_CMDQ | QUEUE_PRQ). */
  get queuesEnabled(): number {
    return this.q.enabled.get(this.regs);
  }

  enableQueue(bit: number): void {
    this.q.enabled.set(this.regs, this.q.enabled.get(this.regs) | bit);
  }

  /** The device-TLB invalidation at the head of the command queue timed out (cleared when it completes). */
  get invalidationTimedOut(): boolean {
    return this.q.ite.get(this.regs) === 1;
  }

  setInvalidationTimeout(on: boolean): void {
    this.q.ite.set(this.regs, on ? 1 : 0);
  }

  get prqOverflowed(): boolean {
    return this.q.prq_overflow.get(this.regs) === 1;
  }

  /** Page requests queued that the driver has not retired (VT-d's PPR: pending page request). */
  get prqNonEmpty(): boolean {
    return this.q.prq_head.get(this.regs) !== this.q.prq_tail.get(this.regs);
  }

  /** A page request arrives: queued (true), or the queue is full (false: the hardware auto-responds). */
  prqPush(dev: number, pasid: number, vpn: number, write: boolean, grp: number, last: boolean): { queued: boolean; startThread: boolean } {
    const head = this.q.prq_head.get(this.regs);
    const tail = this.q.prq_tail.get(this.regs);
    if (tail - head >= this.opts.prqDepth) {
      this.q.prq_overflow.set(this.regs, 1);
      return { queued: false, startThread: false };
    }
    this.q.prq_overflow.set(this.regs, 0);
    const at = element(PAGE_REQ_DSC, this.s(this.prq), tail % this.opts.prqDepth);
    const d = this.dsc;
    d.dev.set(at, dev);
    d.pasid.set(at, pasid);
    d.vpn.set(at, vpn);
    d.write.set(at, write ? 1 : 0);
    d.grp.set(at, grp);
    d.last.set(at, last ? 1 : 0);
    this.q.prq_tail.set(this.regs, tail + 1);
    const startThread = this.q.prq_active.get(this.regs) === 0;
    if (startThread) this.q.prq_active.set(this.regs, 1);
    return { queued: true, startThread };
  }

  /** The oracle's page-request bookkeeping: a group is outstanding (PASID + 1) from its request to its response. */
  groupRequested(dev: number, grp: number, pasid: number): void {
    this.prg.grp.set(this.prgOf(dev), grp, pasid + 1);
  }

  /** A response for the group: true if it was outstanding (and now is not), false if it was not. */
  groupAnswered(dev: number, grp: number): boolean {
    const p = this.prgOf(dev);
    const was = this.prg.grp.get(p, grp);
    this.prg.grp.set(p, grp, 0);
    return was !== 0;
  }

  /** dev's prg_outstanding (its word offset). */
  private prgOf(dev: number): number {
    return this.s(this.groups.get(dev) as number);
  }

  /** Outstanding groups, for the teardown check. */
  outstandingGroups(): string[] {
    const out: string[] = [];
    for (const d of this.devices) {
      const p = this.prgOf(d.index);
      for (let g = 0; g < PR_GROUPS; g++) {
        const pasid1 = this.prg.grp.get(p, g);
        if (pasid1 !== 0) out.push(`${d.name} PASID ${pasid1 - 1} group ${g} (${this.name})`);
      }
    }
    return out;
  }

  // ---- footprints (src/hw/footprint.ts): the words the hardware's accesses above touch ----

  /** The invalidation epoch's word (read by every fill and every walk stage). */
  get epochWord(): number {
    return this.q.epoch.addr(this.regs);
  }

  /** The words the actor's machine reads after each event (IommuHardware.phase); a vendor's queues override it. */
  phaseFootprint(fp: FootprintBuilder): void {
    fp.read(this.q.ite.addr(this.regs));
    fp.read(this.q.prq_overflow.addr(this.regs));
    fp.read(this.q.prq_head.addr(this.regs));
    fp.read(this.q.prq_tail.addr(this.regs));
  }

  /** enableQueue's word. */
  get enabledWord(): number {
    return this.q.enabled.addr(this.regs);
  }

  /** What blocks(dev, pasid) reads: the device-level entry (a vendor whose entry is its own overrides it). */
  blocksFootprint(fp: FootprintBuilder, dev: number): void {
    if (this.spec.deviceEntry) fp.read(this.deviceEntryPtr(dev));
  }

  /** entry(dev, pasid)'s reads (a vendor whose entryPtr reads memory adds those words: it overrides). */
  entryFootprint(fp: FootprintBuilder, dev: number, pasid: number): void {
    fp.readRange(this.entryPtr(dev, pasid), this.entryVal.n);
  }

  /** What a walk an invalidation overtook reads to see whether its context is still there (contextStill). */
  contextFootprint(fp: FootprintBuilder, dev: number, pasid: number): void {
    this.blocksFootprint(fp, dev);
    this.entryFootprint(fp, dev, pasid);
  }

  /** iotlbLookup's reads. */
  iotlbLookupFootprint(fp: FootprintBuilder, tag: number, pasid: number, vpn: number): void {
    if (this.opts.iotlbEntries === 0) return;
    const at = this.tlbSlot(tag, pasid, vpn);
    const e = this.tlb;
    for (const f of [e.valid, e.tag, e.pasid, e.vpn, e.pte]) fp.read(f.addr(at));
  }

  /** iotlbFill's: the epoch, and the slot when the fill happens. */
  iotlbFillFootprint(fp: FootprintBuilder, tag: number, pasid: number, vpn: number, epoch: number): void {
    fp.read(this.epochWord);
    if (epoch !== this.epoch || this.opts.iotlbEntries === 0) return;
    fp.writeRange(this.tlbSlot(tag, pasid, vpn), IOTLB_ENTRY.words);
  }

  /** pscLookup's reads. */
  pscLookupFootprint(fp: FootprintBuilder, tag: number, pasid: number, level: number, index: number): void {
    if (this.pscEntries === 0) return;
    fp.readRange(this.pscSlot(tag, pasid, level, index), PSC_ENTRY.words);
  }

  /** pscFill's: the epoch, and the slot when the fill happens. */
  pscFillFootprint(fp: FootprintBuilder, tag: number, pasid: number, level: number, index: number, epoch: number): void {
    fp.read(this.epochWord);
    if (epoch !== this.epoch || this.pscEntries === 0) return;
    fp.writeRange(this.pscSlot(tag, pasid, level, index), PSC_ENTRY.words);
  }

  /** pcLookup's reads (the slot's header and entry). */
  pcLookupFootprint(fp: FootprintBuilder, dev: number, pasid: number): void {
    fp.readRange(this.pcSlot(dev, pasid), this.pcSlotWords);
  }

  /** pcFill's: the epoch, and the slot when the fill happens. */
  pcFillFootprint(fp: FootprintBuilder, dev: number, pasid: number, epoch: number): void {
    fp.read(this.epochWord);
    if (epoch !== this.epoch) return;
    fp.writeRange(this.pcSlot(dev, pasid), this.pcSlotWords);
  }

  /** fetchEntry(i, dev, pasid)'s read (a vendor whose entryPtr reads memory adds those words: it overrides). */
  fetchEntryFootprint(fp: FootprintBuilder, i: number, dev: number, pasid: number): void {
    fp.read((this.fetchers[i] as Word).addr(this.entryPtr(dev, pasid)));
  }

  /** The ITE word (setInvalidationTimeout's). */
  get iteWord(): number {
    return this.q.ite.addr(this.regs);
  }

  /** cmdqPeek()'s reads: head, tail, and the command at the head when there is one (`ahead`: once retired that often). */
  cmdqPeekFootprint(fp: FootprintBuilder, ahead = 0): void {
    fp.read(this.q.head.addr(this.regs));
    fp.read(this.q.tail.addr(this.regs));
    const head = this.q.head.get(this.regs) + ahead;
    if (head !== this.q.tail.get(this.regs)) fp.readRange(element(IOMMU_CMD, this.s(this.cmdq), head % this.opts.queueDepth), IOMMU_CMD.words);
  }

  /** cmdqRetire()'s. */
  cmdqRetireFootprint(fp: FootprintBuilder): void {
    fp.write(this.q.head.addr(this.regs));
  }

  /** iotlbInvalidate()'s: every entry's tag checked, the matching ones' valid written, the epoch moved. */
  iotlbInvalidateFootprint(fp: FootprintBuilder, tag: number, pasid: number, start: number, end: number, leafOnly: boolean): void {
    const tlb = this.tlb;
    for (let e = 0; e < this.opts.iotlbEntries; e++) {
      const at = element(IOTLB_ENTRY, this.s(this.iotlb), e);
      fp.read(tlb.valid.addr(at)).read(tlb.tag.addr(at)).read(tlb.pasid.addr(at));
      if (tlb.valid.get(at) !== 1 || tlb.tag.get(at) !== tag || (pasid !== -1 && tlb.pasid.get(at) !== pasid)) continue;
      fp.read(tlb.vpn.addr(at));
      const vpn = tlb.vpn.get(at);
      if (start === -1 || (vpn >= start && vpn < end)) fp.write(tlb.valid.addr(at));
    }
    if (!leafOnly) {
      const p = this.pscv;
      for (let e = 0; e < this.pscEntries; e++) {
        const at = element(PSC_ENTRY, this.s(this.psc), e);
        fp.read(p.valid.addr(at)).read(p.tag.addr(at)).read(p.pasid.addr(at));
        if (p.valid.get(at) !== 1 || p.tag.get(at) !== tag || (pasid !== -1 && p.pasid.get(at) !== pasid)) continue;
        fp.read(p.level.addr(at)).read(p.index.addr(at));
        const shift = p.level.get(at) === PT_LEVEL_PTE ? PTE_TABLE_SHIFT : PMD_TABLE_SHIFT;
        const first = p.index.get(at) << shift;
        if (start === -1 || (first < end && first + (1 << shift) > start)) fp.write(p.valid.addr(at));
      }
    }
    fp.write(this.epochWord);
  }

  /** pcInvalidate()'s. */
  pcInvalidateFootprint(fp: FootprintBuilder, dev: number, pasid: number): void {
    const at = this.pcSlot(dev, pasid);
    fp.read(this.pc.dev.addr(at)).read(this.pc.pasid.addr(at));
    if (this.pc.dev.get(at) === dev && this.pc.pasid.get(at) === pasid) fp.write(this.pc.valid.addr(at));
    fp.write(this.epochWord);
  }

  /** pcInvalidateDevice()'s. */
  pcInvalidateDeviceFootprint(fp: FootprintBuilder, dev: number): void {
    for (let i = 0; i < this.opts.pcacheEntries; i++) {
      const at = this.s(this.pcache) + i * this.pcSlotWords;
      fp.read(this.pc.dev.addr(at));
      if (this.pc.dev.get(at) === dev) fp.write(this.pc.valid.addr(at));
    }
    fp.write(this.epochWord);
  }

  /** execute()'s, for the shared command queue's commands. */
  executeFootprint(fp: FootprintBuilder, c: Command): void {
    if (c.op === OP_IOTLB) this.iotlbInvalidateFootprint(fp, c.a, c.b, c.c, c.d, false);
    else if (c.op === OP_PC) this.pcInvalidateFootprint(fp, c.a, c.b);
    else if (c.op === OP_WAIT) fp.write(this.q.wait_done.addr(this.regs));
  }

  /** prqPush()'s: the queue's registers, and the descriptor at the tail when there is room. */
  prqPushFootprint(fp: FootprintBuilder): void {
    const r = this.regs;
    fp.read(this.q.prq_head.addr(r));
    for (const f of [this.q.prq_tail, this.q.prq_overflow, this.q.prq_active]) fp.write(f.addr(r));
    const tail = this.q.prq_tail.get(r);
    if (tail - this.q.prq_head.get(r) < this.opts.prqDepth) fp.writeRange(element(PAGE_REQ_DSC, this.s(this.prq), tail % this.opts.prqDepth), PAGE_REQ_DSC.words);
  }

  /** groupRequested / groupAnswered's word: dev's record of group grp. */
  groupFootprint(fp: FootprintBuilder, dev: number, grp: number): void {
    if (!this.groups.has(dev)) throw new Error(`${this.name}: no device ${dev}`);
    fp.write(this.prg.grp.addr(this.prgOf(dev), grp));
  }

  // ---- what the oracle sees ----

  caches(): TranslationCache[] {
    const unit = this;
    const tlb = this.tlb;
    const iotlb: TranslationCache = {
      name: `${this.name} IOTLB`,
      entriesForPfn(pfn) {
        const out: string[] = [];
        for (let e = 0; e < unit.opts.iotlbEntries; e++) {
          const at = element(IOTLB_ENTRY, unit.s(unit.iotlb), e);
          if (tlb.valid.get(at) === 1 && ptePfn(tlb.pte.get(at)) === pfn) out.push(unit.describeTlb(at));
        }
        return out;
      },
      entriesForPasid(dev, pasid) {
        if (unit.spec.tlbTag === 'asid') return [];
        const out: string[] = [];
        for (let e = 0; e < unit.opts.iotlbEntries; e++) {
          const at = element(IOTLB_ENTRY, unit.s(unit.iotlb), e);
          if (tlb.valid.get(at) === 1 && tlb.dev.get(at) === dev && tlb.pasid.get(at) === pasid) out.push(unit.describeTlb(at));
        }
        return out;
      },
    };
    const pc: TranslationCache = {
      name: `${this.name} ${this.spec.entryName} cache`,
      entriesForPfn: () => [],
      entriesForPasid(dev, pasid) {
        const words = unit.pcLookup(dev, pasid);
        return words && unit.spec.entry.present(words) ? [`{dev ${dev}, PASID ${pasid}} → mm ${unit.spec.entry.mmOf(words) - 1}`] : [];
      },
    };
    const psc: TranslationCache = {
      name: `${this.name} paging-structure cache`,
      entriesForPfn: (pfn) => this.pscEntriesWhere((at) => this.pscv.pfn.get(at) === pfn),
      entriesForPasid: (dev, pasid) =>
        unit.spec.tlbTag === 'asid' ? [] : this.pscEntriesWhere((at) => this.pscv.dev.get(at) === dev && this.pscv.pasid.get(at) === pasid),
    };
    return [iotlb, pc, psc];
  }

  /** Valid paging-structure cache entries that `pick` selects, one line each (the oracle's). */
  private pscEntriesWhere(pick: (at: number) => boolean): string[] {
    const out: string[] = [];
    const p = this.pscv;
    for (let e = 0; e < this.pscEntries; e++) {
      const at = element(PSC_ENTRY, this.s(this.psc), e);
      if (p.valid.get(at) !== 1 || !pick(at)) continue;
      const pte = p.level.get(at) === PT_LEVEL_PTE;
      const shift = pte ? PTE_TABLE_SHIFT : PMD_TABLE_SHIFT;
      const first = p.index.get(at) << shift;
      const tag = this.spec.tlbTag === 'asid' ? `ASID ${p.tag.get(at)}` : `dev ${p.tag.get(at)}, PASID ${p.pasid.get(at)}`;
      out.push(`{${tag}, ${pte ? 'PMD' : 'PGD'} entry of vpn ${first}-${first + (1 << shift) - 1}} → ${pte ? 'PTE' : 'PMD'} table pfn 0x${p.pfn.get(at).toString(16)}`);
    }
    return out;
  }

  private describeTlb(at: number): string {
    const e = this.tlb;
    const tag = this.spec.tlbTag === 'asid' ? `ASID ${e.tag.get(at)}` : `dev ${e.tag.get(at)}, PASID ${e.pasid.get(at)}`;
    return `{${tag}, vpn ${e.vpn.get(at)}} → pfn 0x${ptePfn(e.pte.get(at)).toString(16)}`;
  }
}

/** The accessors of the entry fields the hardware fetches, made once per unit (they are on the translation path). */
function entryFetchers(k: Kernel, spec: FlavourSpec): Word[] {
  const view: Readonly<Record<string, unknown>> = k.view(spec.entry.layout);
  return spec.entry.fetch.map((f) => {
    const a = view[f];
    if (!(a instanceof Word)) throw new Error(`${spec.entryName}: ${f} is not a one-word field of struct ${spec.entry.layout.name}`);
    return a;
  });
}


export { OP_DEVTLB, OP_PAGE_RESP };
