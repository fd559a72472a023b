// A PCI device doing SVA DMA (DSA/IAX-like, drivers/dma/idxd; the PCIe ATS, PRI and PASID capabilities — each
// may be absent): a work queue of descriptors tagged with a PASID, a DMA engine that translates through its ATC
// or asks the IOMMU (ATS), page requests with a group index and the last flag, waiting for the response, and
// in-flight DMA counted per PASID so that "stop using this PASID" can be answered with "drained". Misbehaviour
// on demand: a slow drain, a drain that never finishes, DMA issued after being told to stop, lost page
// responses, hot-unplug (when told to stop, or while a fault is being handled), ATS invalidations never
// completed, and a stray write one page past each kernel descriptor's buffer (a firmware overrun: the IOMMU
// must contain it, which seed 004's option 2 — init_mm bound — does not). Its lifecycle — probed, bound to its
// driver, its capabilities enabled, DMA under started PASIDs, PASIDs stopping and drained, surprise-removed — is
// in its registers here, read by its actor's machine (src/actors/pci-device.ts).
import type { Oracle } from '../../core/oracle.js';
import type { Stats } from '../../core/stats.js';
import type { Sva } from '../../core/iommu-sva.js';
import { type DeviceInfo, RESP_SUCCESS } from '../../core/types.js';
import type { Kernel } from '../../kernel/kernel.js';
import { dmaWrite, pageOwner, type PhysMem } from '../../kernel/mm/physmem.js';
import { PTE_WRITE, ptePfn } from '../../kernel/mm/pagetable.js';
import { element, struct, type ViewOf, word } from '../../kernel/struct.js';
import { PR_GROUPS } from '../iommu.js';
import { type HwMessage, WHY_PTE } from '../messages.js';
import { computed, dmaLandFootprint, type FootprintBuilder, statFootprint, unfollowed } from '../footprint.js';
import type { Hardware, HwOut } from '../out.js';
import { type Footprint, read } from '../../runtime/footprint.js';

export type Misbehaviour = 'none' | 'slow-drain' | 'no-drain' | 'dma-after-stop' | 'lost-response' | 'unplug' | 'unplug-on-fault' | 'no-atc-response' | 'stray-dma';
export const MISBEHAVIOURS: readonly Misbehaviour[] = ['none', 'slow-drain', 'no-drain', 'dma-after-stop', 'lost-response', 'unplug', 'unplug-on-fault', 'no-atc-response', 'stray-dma'];

/** The device's state per PASID (its work queues' and DMA engine's): hardware, the model's layout. */
const PASID_STATE = struct('pasid_state', {
  inflight: word, // DMA issued, not yet completed
  run: word, // 0, or RUN_*: started by the driver (start_pasid), or told to stop issuing under this PASID
  drained: word, // … and it has completed what was in flight since
});
const RUN_STARTED = 1;
const RUN_STOPPED = 2;

/**
 * The device's own registers: the model's layout. `config` is how far the kernel brought it (CONFIG_*: the
 * PCI config space writes of probe and enable); the counters sum the per-PASID state for the lifecycle.
 */
const DEVICE_STATE = struct('device_state', {
  unplugged: word,
  disabled: word, // pci_disable_device: bus mastering off (the driver's remove)
  config: word,
  active: word, // PASIDs started and not stopped
  stopping: word, // PASIDs told to stop that have not drained
  stopped: word, // 1 once a PASID was told to stop
});

export const CONFIG_PRESENT = 0;
export const CONFIG_PROBED = 1; // iommu_probe_device
export const CONFIG_BOUND = 2; // its driver's probe
export const CONFIG_ENABLED = 3; // pci_enable_ats / pri / pasid
export const CONFIG_RELEASED = 4; // iommu_release_device

export type DevicePhase = 'enabled' | 'dma' | 'stopping' | 'drained' | 'disabled' | 'removed';

/** An ATC (the device's address translation cache) entry: hardware, the model's layout. */
const ATC_ENTRY = struct('atc_entry', { valid: word, pasid: word, vpn: word, pte: word });
/** ATC entries a device has unless told otherwise (0: no ATC — every DMA asks the IOMMU). */
export const ATC_ENTRIES = 16;
const NO_ENTRIES: readonly never[] = [];
/** How long a slow drain takes (ms, simulated in the deterministic runtime). */
export const SLOW_DRAIN_MS = 50;

interface Dma {
  /** The device's own tag for it (PCIe: the transaction tag); `id` is the submitter's. */
  readonly tag: number;
  readonly id: number;
  readonly pasid: number;
  readonly vpn: number;
  readonly write: boolean;
  readonly from: number;
  /** Completion record (1-based) for a kernel submitter, 0: answer `from` with dma.done. */
  readonly cr: number;
  /** The mm bound at {device, PASID} when the descriptor was submitted (id + 1): where it must land. */
  readonly expected: number;
  /** The address space its submitter works in (id + 1; 0: not known, a kernel submitter): it must land there too. */
  readonly meant: number;
  /** A write the device makes outside its descriptor: the address the descriptor named (-1: not stray). */
  readonly strayOf: number;
}

export interface DeviceEnv {
  readonly k: Kernel;
  readonly sva: Pick<Sva, 'boundMm'>;
  readonly oracle: Oracle;
  readonly stats: Stats;
  readonly pm: PhysMem;
  /** The IOMMU unit's actor. */
  readonly iommuActor: number;
  /** Write a kernel submitter's completion record (1 done, 2 failed). */
  completion(cr: number, ok: boolean): void;
  /**
   * The address space a submitter's descriptors are for (id + 1), 0 when it is not a process: a process's
   * descriptor names it by PASID only, and the PASID must name the process's own address space on this device.
   * A process that is a kernel task (a scripted one) gives a completion record and its id as `from` too.
   */
  submitter(from: number): number;
  ownerName(owner: number): string;
  /** The words boundMm(dev, pasid) reads, appended to `out` (the footprint of a submit: src/hw/footprint.ts). */
  boundMmReads?(dev: number, pasid: number, out: number[]): void;
  /** The words completion(cr) writes, when its writer says (undefined: the step is not followed). */
  completionWords?(cr: number): readonly number[] | undefined;
}

export class PciDevice implements Hardware {
  readonly actorName: string;
  private readonly perPasid: number;
  private readonly atc: number;
  private readonly pasidState: ViewOf<typeof PASID_STATE>;
  private readonly atcEntry: ViewOf<typeof ATC_ENTRY>;
  private readonly regs: number;
  private readonly state: ViewOf<typeof DEVICE_STATE>;
  // Per execution (the device's own registers and queues, touched only by its actor):
  private wq: Dma[] = [];
  private engineBusy = false;
  private readonly inflight = new Map<number, Dma>();
  private readonly waitingGroup = new Map<number, number>();
  /** DMAs whose page request waits for a free group index (tags, in order). */
  private prStalled: number[] = [];
  private nextGroup = 0;
  private nextTag = 0;
  private lost = 0;
  /** The kernel task a surprise removal starts (pciehp's interrupt thread), once the bus knows the device. */
  private hotplug = '';

  constructor(
    private readonly env: DeviceEnv,
    readonly info: DeviceInfo,
    readonly misbehaviour: Misbehaviour,
    private readonly atcEntries_: number = ATC_ENTRIES,
  ) {
    const k = env.k;
    this.actorName = `dev/${info.name}`;
    this.perPasid = k.statics.alloc((1 << info.caps.pasidBits) * PASID_STATE.words, `${info.name} pasid state`);
    this.atc = k.statics.alloc(Math.max(1, atcEntries_) * ATC_ENTRY.words, `${info.name} ATC`);
    this.pasidState = k.struct(PASID_STATE);
    this.atcEntry = k.struct(ATC_ENTRY);
    this.regs = k.statics.alloc(DEVICE_STATE.words, `${info.name} registers`);
    this.state = k.struct(DEVICE_STATE);
  }

  /** The slot's hot-plug controller interrupts into `task` (with the device's index) when the device goes. */
  onSurpriseRemoval(task: string): void {
    this.hotplug = task;
  }

  reset(): void {
    this.wq = [];
    this.engineBusy = false;
    this.inflight.clear();
    this.waitingGroup.clear();
    this.prStalled = [];
    this.nextGroup = 0;
    this.nextTag = 0;
    this.lost = 0;
  }

  /** The device's registers (their word offset). */
  private get r(): number {
    return this.env.k.mem.statics + this.regs;
  }

  /** How far the kernel brought the device (CONFIG_*). */
  get config(): number {
    return this.state.config.get(this.r);
  }

  /** Where the device is once enabled: its PASIDs' state summed up. */
  get phase(): DevicePhase {
    const s = this.state;
    const r = this.r;
    if (s.unplugged.get(r) === 1) return 'removed';
    if (s.disabled.get(r) === 1) return 'disabled';
    if (s.stopping.get(r) > 0) return 'stopping';
    if (s.active.get(r) > 0) return 'dma';
    return s.stopped.get(r) === 1 ? 'drained' : 'enabled';
  }

  private add(field: 'active' | 'stopping', n: number): void {
    this.state[field].set(this.r, this.state[field].get(this.r) + n);
  }

  /** pasid's state (its word offset). */
  private p(pasid: number): number {
    return element(PASID_STATE, this.env.k.mem.statics + this.perPasid, pasid);
  }

  get unplugged(): boolean {
    return this.state.unplugged.get(this.r) === 1;
  }

  /** Gone, or its bus mastering turned off: it issues nothing more. */
  private get silent(): boolean {
    return this.unplugged || this.state.disabled.get(this.r) === 1;
  }

  /** DMA in flight under pasid (issued, not yet completed). */
  inflightCount(pasid: number): number {
    if (pasid < 0 || pasid >= 1 << this.info.caps.pasidBits) return 0;
    return this.pasidState.inflight.get(this.p(pasid));
  }

  /** Has the device drained pasid since it was told to stop? (a gone device has nothing left in flight) */
  drained(pasid: number): boolean {
    return this.unplugged || this.pasidState.drained.get(this.p(pasid)) === 1;
  }

  /** The words drained(pasid) reads (the driver's drain wait declares them: pci/driver.ts). */
  drainedFootprint(pasid: number): Footprint {
    return [read(this.state.unplugged.addr(this.r)), read(this.pasidState.drained.addr(this.p(pasid)))];
  }

  /** The words startPasid(pasid) reads and writes (the driver's start_pasid step declares them). */
  startPasidFootprint(pasid: number): Footprint {
    const at = this.p(pasid);
    const ps = this.pasidState;
    return [ps.run.addr(at), ps.drained.addr(at), this.state.active.addr(this.r), this.state.stopping.addr(this.r)];
  }

  /** The driver programs the device to accept work for pasid (a register write, in the driver's step). */
  startPasid(pasid: number): void {
    const ps = this.pasidState;
    const at = this.p(pasid);
    const run = ps.run.get(at);
    if (run !== RUN_STARTED) this.add('active', 1);
    // Started again before it drained (a PASID freed at once and reused): it is not stopping any more.
    if (run === RUN_STOPPED && ps.drained.get(at) === 0) this.add('stopping', -1);
    ps.run.set(at, RUN_STARTED);
    ps.drained.set(at, 0);
  }

  private stopped(pasid: number): boolean {
    return this.pasidState.run.get(this.p(pasid)) === RUN_STOPPED;
  }

  // ---- ATC ----

  private atcSlot(pasid: number, vpn: number): number {
    const h = Math.imul(pasid * 0x9e3779b1 + vpn, 0x85ebca6b) >>> 0;
    return element(ATC_ENTRY, this.env.k.mem.statics + this.atc, h % Math.max(1, this.atcEntries_));
  }

  private atcLookup(pasid: number, vpn: number): number {
    if (this.atcEntries_ === 0) return 0;
    const at = this.atcSlot(pasid, vpn);
    return this.atcEntry.valid.get(at) === 1 && this.atcEntry.pasid.get(at) === pasid && this.atcEntry.vpn.get(at) === vpn ? this.atcEntry.pte.get(at) : 0;
  }

  /**
   * The ATC's valid entries that `keep` accepts, as the stale-translation oracle sees them. The oracle asks every
   * device at every page free: no allocation unless an entry matches.
   */
  atcEntries(keep: (pasid: number, vpn: number, pte: number) => boolean = () => true): readonly { pasid: number; vpn: number; pte: number }[] {
    let out: { pasid: number; vpn: number; pte: number }[] | undefined;
    const base = this.env.k.mem.statics + this.atc;
    for (let e = 0; e < Math.max(1, this.atcEntries_); e++) {
      const at = element(ATC_ENTRY, base, e);
      if (this.atcEntry.valid.get(at) !== 1) continue;
      const pasid = this.atcEntry.pasid.get(at);
      const vpn = this.atcEntry.vpn.get(at);
      const pte = this.atcEntry.pte.get(at);
      if (!keep(pasid, vpn, pte)) continue;
      out ??= [];
      out.push({ pasid, vpn, pte });
    }
    return out ?? NO_ENTRIES;
  }

  // ---- the hardware ----

  handle(self: number, msg: HwMessage, out: HwOut, step: number): void {
    switch (msg.type) {
      case 'submit': {
        const d: Dma = { tag: this.nextTag++ & 0x3fffffff, id: msg.id, pasid: msg.pasid, vpn: msg.vpn, write: msg.w === 1, from: msg.from, cr: msg.cr, expected: this.env.sva.boundMm(this.info.index, msg.pasid), meant: this.env.submitter(msg.from), strayOf: -1 };
        if (this.silent || msg.pasid < 0 || msg.pasid >= 1 << this.info.caps.pasidBits) {
          this.reply(d, false, out);
          return;
        }
        this.wq.push(d);
        // An overrun past a kernel user's buffer: one more write, to the next page, that no descriptor named.
        if (this.misbehaviour === 'stray-dma' && d.cr > 0) this.wq.push({ ...d, tag: this.nextTag++ & 0x3fffffff, vpn: d.vpn + 1, cr: 0, from: -1, strayOf: d.vpn });
        if (!this.engineBusy) {
          this.engineBusy = true;
          out.send(self, { type: 'engine' });
        }
        return;
      }
      case 'engine': {
        const d = this.wq.shift();
        if (this.wq.length > 0) out.send(self, { type: 'engine' });
        else this.engineBusy = false;
        if (!d) return;
        if (this.silent || (this.stopped(d.pasid) && this.misbehaviour !== 'dma-after-stop')) {
          this.env.stats.add('dma_aborted');
          this.reply(d, false, out);
          return;
        }
        this.issue(d, out, step);
        return;
      }
      case 'ats.ok': {
        const d = this.inflight.get(msg.id);
        if (!d) return;
        if (this.atcEntries_ > 0) {
          const at = this.atcSlot(d.pasid, d.vpn);
          this.atcEntry.valid.set(at, 1);
          this.atcEntry.pasid.set(at, d.pasid);
          this.atcEntry.vpn.set(at, d.vpn);
          this.atcEntry.pte.set(at, msg.pte);
        }
        this.land(d, msg.pte, out, step);
        return;
      }
      case 'ats.fault': {
        const d = this.inflight.get(msg.id);
        if (!d) return;
        if (msg.why === WHY_PTE && this.info.caps.pri && !this.stopped(d.pasid) && d.strayOf < 0) {
          if (!this.pageRequest(d, out)) this.prStalled.push(d.tag); // every group in use: stall until one frees
          // Surprise removal while the fault is being handled.
          if (this.misbehaviour === 'unplug-on-fault') this.unplug(out);
          return;
        }
        this.complete(d, false, out);
        return;
      }
      case 'ats.stall':
        // Its translation stalled at the SMMU: the fault is being handled (surprise removal meanwhile).
        if (this.misbehaviour === 'unplug-on-fault' && this.inflight.has(msg.id) && !this.unplugged) this.unplug(out);
        return;
      case 'prs': {
        const tag = this.waitingGroup.get(msg.grp);
        if (tag === undefined) return;
        if (this.misbehaviour === 'lost-response' && this.lost === 0) {
          this.lost++;
          return; // the response is lost: the DMA waits for ever
        }
        this.waitingGroup.delete(msg.grp);
        this.unstall(out);
        const d = this.inflight.get(tag);
        if (!d) return;
        if (msg.code === RESP_SUCCESS && !this.stopped(d.pasid) && !this.unplugged) {
          out.send(this.env.iommuActor, { type: 'ats.req', dev: this.info.index, pasid: d.pasid, vpn: d.vpn, w: d.write ? 1 : 0, id: d.tag });
        } else {
          this.complete(d, false, out);
        }
        return;
      }
      case 'atc.inv': {
        // An ATS invalidation the device never completes: the IOMMU's queue waits (an invalidation time-out).
        if (this.misbehaviour === 'no-atc-response' && !this.unplugged) return;
        for (let e = 0; e < Math.max(1, this.atcEntries_); e++) {
          const at = element(ATC_ENTRY, this.env.k.mem.statics + this.atc, e);
          if (this.atcEntry.valid.get(at) !== 1 || this.atcEntry.pasid.get(at) !== msg.pasid) continue;
          const vpn = this.atcEntry.vpn.get(at);
          if (msg.s === -1 || (vpn >= msg.s && vpn < msg.e)) this.atcEntry.valid.set(at, 0);
        }
        out.send(this.env.iommuActor, { type: 'atc.done', dev: this.info.index });
        return;
      }
      case 'stop': {
        if (this.unplugged) return;
        this.stop(msg.pasid);
        if (this.misbehaviour !== 'dma-after-stop') {
          // Work not yet started under the PASID is dropped, as a device's abort does.
          const keep: Dma[] = [];
          for (const d of this.wq) {
            if (d.pasid === msg.pasid) {
              this.env.stats.add('dma_aborted');
              this.reply(d, false, out);
            } else keep.push(d);
          }
          this.wq = keep;
        }
        this.checkDrained(msg.pasid, out);
        if (this.misbehaviour === 'unplug') this.unplug(out);
        return;
      }
      case 'drain.later': {
        if (this.stopped(msg.pasid) && this.inflightCount(msg.pasid) === 0) this.setDrained(msg.pasid);
        return;
      }
      case 'unplug':
        this.unplug(out, false);
        return;
      case 'disable':
        this.state.disabled.set(this.r, 1);
        return;
      case 'probe':
        this.state.config.set(this.r, CONFIG_PROBED);
        return;
      case 'driver.bind':
        this.state.config.set(this.r, CONFIG_BOUND);
        return;
      case 'enable':
        this.state.config.set(this.r, CONFIG_ENABLED);
        return;
      case 'release':
        this.state.config.set(this.r, CONFIG_RELEASED);
        return;
      default:
        throw new Error(`${this.actorName}: unexpected ${msg.type}`);
    }
  }

  /** Send d's page request group; false when every group index is in use. */
  private pageRequest(d: Dma, out: HwOut): boolean {
    const grp = this.allocGroup();
    if (grp < 0) return false;
    this.waitingGroup.set(grp, d.tag);
    // A write asks for read access and then write access in one group; the last request gets the answer.
    const base = { type: 'pr', dev: this.info.index, pasid: d.pasid, vpn: d.vpn, grp } as const;
    this.env.stats.add('page_request_groups');
    if (d.write) {
      this.env.stats.add('page_requests', 2);
      out.send(this.env.iommuActor, { ...base, w: 0, last: 0 });
      out.send(this.env.iommuActor, { ...base, w: 1, last: 1 });
    } else {
      this.env.stats.add('page_requests');
      out.send(this.env.iommuActor, { ...base, w: 0, last: 1 });
    }
    return true;
  }

  /** A group index came free: the first stalled DMA sends its request (or gives up if its PASID stopped). */
  private unstall(out: HwOut): void {
    while (this.prStalled.length > 0) {
      const d = this.inflight.get(this.prStalled[0] as number);
      if (!d) {
        this.prStalled.shift();
        continue;
      }
      if (this.stopped(d.pasid)) {
        this.prStalled.shift();
        this.complete(d, false, out);
        continue;
      }
      if (this.pageRequest(d, out)) this.prStalled.shift();
      return;
    }
  }

  private allocGroup(): number {
    for (let i = 0; i < PR_GROUPS; i++) {
      const g = (this.nextGroup + i) % PR_GROUPS;
      if (!this.waitingGroup.has(g)) {
        this.nextGroup = (g + 1) % PR_GROUPS;
        return g;
      }
    }
    return -1;
  }

  private issue(d: Dma, out: HwOut, step: number): void {
    this.pasidState.inflight.set(this.p(d.pasid), this.pasidState.inflight.get(this.p(d.pasid)) + 1);
    this.inflight.set(d.tag, d);
    this.env.stats.add('dmas');
    const pte = this.atcLookup(d.pasid, d.vpn);
    if (pte !== 0 && (!d.write || (pte & PTE_WRITE) !== 0)) {
      this.env.stats.add('atc_hits');
      this.land(d, pte, out, step);
      return;
    }
    out.send(this.env.iommuActor, { type: 'ats.req', dev: this.info.index, pasid: d.pasid, vpn: d.vpn, w: d.write ? 1 : 0, id: d.tag });
  }

  private land(d: Dma, pte: number, out: HwOut, step: number): void {
    const pfn = ptePfn(pte);
    const env = this.env;
    if (d.strayOf >= 0) env.oracle.strayLanded(step, this.info.name, d.pasid, d.vpn, d.strayOf, pfn, env.ownerName(pageOwner(env.k, env.pm, pfn)));
    else env.oracle.dmaLanded(step, this.info.name, d.pasid, d.vpn, pfn, pageOwner(env.k, env.pm, pfn), d.expected, (o) => env.ownerName(o), d.meant);
    dmaWrite(env.k, env.pm, pfn, (this.info.index << 20) | d.pasid);
    this.complete(d, true, out);
  }

  private complete(d: Dma, ok: boolean, out: HwOut): void {
    this.pasidState.inflight.set(this.p(d.pasid), this.pasidState.inflight.get(this.p(d.pasid)) - 1);
    this.inflight.delete(d.tag);
    if (!ok) this.env.stats.add('dma_faults');
    this.reply(d, ok, out);
    this.checkDrained(d.pasid, out);
  }

  private reply(d: Dma, ok: boolean, out: HwOut): void {
    if (d.strayOf >= 0) this.env.stats.add(ok ? 'stray_dmas_landed' : 'stray_dmas_faulted');
    else if (d.cr > 0) this.env.completion(d.cr, ok);
    else out.send(d.from, { type: 'dma.done', id: d.id, ok: ok ? 1 : 0 });
  }

  private checkDrained(pasid: number, out: HwOut): void {
    if (!this.stopped(pasid) || this.inflightCount(pasid) !== 0 || this.pasidState.drained.get(this.p(pasid)) === 1) return;
    if (this.misbehaviour === 'no-drain') return;
    if (this.misbehaviour === 'slow-drain') {
      out.later({ type: 'drain.later', pasid }, SLOW_DRAIN_MS);
      return;
    }
    this.setDrained(pasid);
  }

  /** Told to stop issuing under pasid. */
  private stop(pasid: number): void {
    const ps = this.pasidState;
    const at = this.p(pasid);
    const run = ps.run.get(at);
    if (run === RUN_STOPPED) return;
    ps.run.set(at, RUN_STOPPED);
    this.state.stopped.set(this.r, 1);
    if (run === RUN_STARTED) this.add('active', -1);
    if (ps.drained.get(at) === 0) this.add('stopping', 1);
  }

  private setDrained(pasid: number): void {
    const at = this.p(pasid);
    if (this.pasidState.drained.get(at) === 1) return;
    this.pasidState.drained.set(at, 1);
    if (this.pasidState.run.get(at) === RUN_STOPPED) this.add('stopping', -1);
  }

  /** Gone at once: everything in flight aborted. `irq`: the slot's presence-detect interrupt wakes pciehp_ist. */
  private unplug(out: HwOut, irq = true): void {
    if (this.unplugged) return;
    this.state.unplugged.set(this.r, 1);
    // The link goes down: the slot's presence-detect interrupt wakes pciehp, which removes the device.
    if (irq && this.hotplug !== '') out.spawn(this.hotplug, this.info.index, `${this.hotplug}/${this.info.name}`);
    for (const d of [...this.inflight.values()]) this.complete(d, false, out);
    for (const d of this.wq) this.reply(d, false, out);
    this.wq = [];
    this.waitingGroup.clear();
    this.prStalled = [];
    for (let e = 0; e < Math.max(1, this.atcEntries_); e++) this.atcEntry.valid.set(element(ATC_ENTRY, this.env.k.mem.statics + this.atc, e), 0);
  }

  // ---- footprints (src/hw/footprint.ts): what handling a message touches, for Workload.footprintOf ----

  /**
   * The shared words handling msg reads and writes, found by the handler's own decisions (its queues are the
   * actor's own, memory as it is now); undefined when its path is one this does not follow (the fallback lock).
   */
  footprintOf(msg: HwMessage): Footprint | undefined {
    return computed((fp) => {
      // The registers: whether it is silent, and the phase its machine reads after every event.
      fp.readRange(this.r, DEVICE_STATE.words);
      this.eventFootprint(fp, msg);
    });
  }

  private eventFootprint(fp: FootprintBuilder, msg: HwMessage): void {
    switch (msg.type) {
      case 'submit': {
        this.boundFootprint(fp, msg.pasid);
        if (this.silent || msg.pasid < 0 || msg.pasid >= 1 << this.info.caps.pasidBits) this.replyFootprint(fp, { strayOf: -1, cr: msg.cr }, false);
        return;
      }
      case 'engine': {
        const d = this.wq[0];
        if (!d) return;
        fp.read(this.pasidWord(d.pasid, 'run'));
        if (this.silent || (this.stopped(d.pasid) && this.misbehaviour !== 'dma-after-stop')) {
          statFootprint(fp, this.env.stats, 'dma_aborted');
          this.replyFootprint(fp, d, false);
          return;
        }
        this.issueFootprint(fp, d);
        return;
      }
      case 'ats.ok': {
        const d = this.inflight.get(msg.id);
        if (!d) return;
        if (this.atcEntries_ > 0) fp.writeRange(this.atcSlot(d.pasid, d.vpn), ATC_ENTRY.words);
        this.landFootprint(fp, d, msg.pte);
        return;
      }
      case 'ats.fault': {
        const d = this.inflight.get(msg.id);
        if (!d) return;
        fp.read(this.pasidWord(d.pasid, 'run'));
        if (msg.why === WHY_PTE && this.info.caps.pri && !this.stopped(d.pasid) && d.strayOf < 0) {
          // A surprise removal while the fault is handled: everything in flight aborted — not followed.
          if (this.misbehaviour === 'unplug-on-fault') unfollowed();
          // The page request (when a group index is free: the counters either way, a superset).
          statFootprint(fp, this.env.stats, 'page_request_groups');
          statFootprint(fp, this.env.stats, 'page_requests');
          return;
        }
        this.completeFootprint(fp, d, false);
        return;
      }
      case 'ats.stall':
        if (this.misbehaviour === 'unplug-on-fault' && this.inflight.has(msg.id) && !this.unplugged) unfollowed();
        return;
      case 'prs':
        this.responseFootprint(fp, msg.grp, msg.code);
        return;
      case 'atc.inv':
        if (this.misbehaviour === 'no-atc-response' && !this.unplugged) return;
        this.atcInvalidateFootprint(fp, msg.pasid, msg.s, msg.e);
        return;
      case 'stop':
        this.stopFootprint(fp, msg.pasid);
        return;
      case 'drain.later':
        fp.read(this.pasidWord(msg.pasid, 'inflight'));
        this.drainingFootprint(fp, msg.pasid);
        return;
      case 'disable':
        fp.write(this.state.disabled.addr(this.r));
        return;
      case 'probe':
      case 'driver.bind':
      case 'enable':
      case 'release':
        fp.write(this.state.config.addr(this.r));
        return;
      default:
        // A surprise removal aborts everything in flight — not followed.
        unfollowed();
    }
  }

  /** pasid's state word `f` (out of the device's range: not followed). */
  private pasidWord(pasid: number, f: 'inflight' | 'run' | 'drained'): number {
    if (!Number.isInteger(pasid) || pasid < 0 || pasid >= 1 << this.info.caps.pasidBits) unfollowed();
    return this.pasidState[f].addr(this.p(pasid));
  }

  /** What the isolation oracle's truth for a descriptor reads (env.sva.boundMm). */
  private boundFootprint(fp: FootprintBuilder, pasid: number): void {
    if (!this.env.boundMmReads) unfollowed();
    const words: number[] = [];
    this.env.boundMmReads(this.info.index, pasid, words);
    for (const w of words) fp.read(w);
  }

  /** reply()'s: a completion record's word when its writer names it (else not followed). */
  private replyFootprint(fp: FootprintBuilder, d: Pick<Dma, 'strayOf' | 'cr'>, ok: boolean): void {
    if (d.strayOf >= 0) statFootprint(fp, this.env.stats, ok ? 'stray_dmas_landed' : 'stray_dmas_faulted');
    else if (d.cr > 0) for (const w of this.env.completionWords?.(d.cr) ?? unfollowed()) fp.write(w);
  }

  private issueFootprint(fp: FootprintBuilder, d: Dma): void {
    fp.write(this.pasidWord(d.pasid, 'inflight'));
    statFootprint(fp, this.env.stats, 'dmas');
    if (this.atcEntries_ > 0) fp.readRange(this.atcSlot(d.pasid, d.vpn), ATC_ENTRY.words);
    const pte = this.atcLookup(d.pasid, d.vpn);
    if (pte !== 0 && (!d.write || (pte & PTE_WRITE) !== 0)) {
      statFootprint(fp, this.env.stats, 'atc_hits');
      this.landFootprint(fp, d, pte);
    }
  }

  /** land()'s: the frame's owner (the oracle's), its DMA record, then the completion. */
  private landFootprint(fp: FootprintBuilder, d: Dma, pte: number): void {
    dmaLandFootprint(fp, this.env.k, this.env.pm, ptePfn(pte));
    this.completeFootprint(fp, d, true);
  }

  private completeFootprint(fp: FootprintBuilder, d: Dma, ok: boolean): void {
    fp.write(this.pasidWord(d.pasid, 'inflight'));
    if (!ok) statFootprint(fp, this.env.stats, 'dma_faults');
    this.replyFootprint(fp, d, ok);
    this.drainingFootprint(fp, d.pasid);
  }

  /** checkDrained()'s and setDrained()'s, whether or not the PASID drains now (a superset). */
  private drainingFootprint(fp: FootprintBuilder, pasid: number): void {
    fp.read(this.pasidWord(pasid, 'run'));
    fp.write(this.pasidWord(pasid, 'drained'));
    fp.write(this.state.stopping.addr(this.r));
  }

  /** A page response: the DMA waiting on the group asks again, or completes failed. */
  private responseFootprint(fp: FootprintBuilder, grp: number, code: number): void {
    const tag = this.waitingGroup.get(grp);
    if (tag === undefined) return;
    if (this.misbehaviour === 'lost-response' && this.lost === 0) return;
    // DMAs stalled for a group index: they send their requests now, or give up — not followed.
    if (this.prStalled.length > 0) unfollowed();
    const d = this.inflight.get(tag);
    if (!d) return;
    fp.read(this.pasidWord(d.pasid, 'run'));
    if (code === RESP_SUCCESS && !this.stopped(d.pasid) && !this.unplugged) return;
    this.completeFootprint(fp, d, false);
  }

  /** The ATC's entries of pasid checked, those in [s, e) dropped. */
  private atcInvalidateFootprint(fp: FootprintBuilder, pasid: number, s: number, e: number): void {
    const a = this.atcEntry;
    for (let i = 0; i < Math.max(1, this.atcEntries_); i++) {
      const at = element(ATC_ENTRY, this.env.k.mem.statics + this.atc, i);
      fp.read(a.valid.addr(at)).read(a.pasid.addr(at));
      if (a.valid.get(at) !== 1 || a.pasid.get(at) !== pasid) continue;
      fp.read(a.vpn.addr(at));
      const vpn = a.vpn.get(at);
      if (s === -1 || (vpn >= s && vpn < e)) fp.write(a.valid.addr(at));
    }
  }

  /** Told to stop issuing under pasid: its state, the registers' counts, the work dropped, drained or not. */
  private stopFootprint(fp: FootprintBuilder, pasid: number): void {
    if (this.unplugged) return;
    // A device that goes when told to stop: everything in flight aborted — not followed.
    if (this.misbehaviour === 'unplug') unfollowed();
    fp.write(this.pasidWord(pasid, 'run'));
    fp.read(this.pasidWord(pasid, 'inflight'));
    for (const f of ['stopped', 'active', 'stopping'] as const) fp.write(this.state[f].addr(this.r));
    if (this.misbehaviour !== 'dma-after-stop') {
      for (const d of this.wq) {
        if (d.pasid !== pasid) continue;
        statFootprint(fp, this.env.stats, 'dma_aborted');
        this.replyFootprint(fp, d, false);
      }
    }
    this.drainingFootprint(fp, pasid);
  }

}
