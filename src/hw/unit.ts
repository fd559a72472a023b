// What an IOMMU unit does with the messages it gets: translate an ATS request (IOTLB, then the PASID-entry
// cache, then a walk that fetches the entry word by word and then the PTE — each fetch a delivery of its own,
// so CPU writes interleave with it as they do with real hardware), queue page requests and wake the driver's
// page-request thread, and consume the command queue one command per delivery, stalling on a device-TLB
// invalidation until the device answers (which is why a device that never answers wedges the queue). Its
// lifecycle — queues enabled, the command queue idle, consuming, stalled on a device-TLB invalidation or timed
// out on one, the page request queue overflowed — is read by its actor's machine (src/actors/iommu-unit.ts).
import type { Oracle } from '../core/oracle.js';
import type { Stats } from '../core/stats.js';
import { type DeviceInfo, RESP_INVALID } from '../core/types.js';
import { type MmStruct, mmById, type MmTable } from '../kernel/mm/mm.js';
import { PTE_PRESENT, PTE_WRITE, ptePfn, pte as readPte } from '../kernel/mm/pagetable.js';
import { OP_DEVTLB, OP_PAGE_RESP } from './flavour.js';
import { type IommuUnit, QUEUE_CMDQ, QUEUE_PRQ } from './iommu.js';
import { type HwMessage, WHY_PASID, WHY_PTE } from './messages.js';
import type { Hardware, HwOut } from './out.js';

/**
 * The command queue: running (consuming commands, or empty: commands are the hot path, not a phase), waiting on a
 * device-TLB invalidation, timed out on it.
 */
export const CMDQ_PHASES = ['idle', 'atc_wait', 'cmd_timeout'] as const;
/** The page request queue: empty, requests pending for the driver's thread, overflowed. */
export const PRQ_PHASES = ['', 'prq_pending', 'prq_overflow'] as const;

/**
 * A `walk` message's stage: below PAGE_WALK, a stage of the vendor's context lookup (its table entries'
 * fetches); from PAGE_WALK on, the walk of the page table the context names.
 */
export const PAGE_WALK = 10;

export class IommuHardware implements Hardware {
  readonly actorName: string;
  protected busy = false;
  protected atcWait = false;

  constructor(
    readonly unit: IommuUnit,
    protected readonly devices: readonly DeviceInfo[],
    protected readonly mms: MmTable,
    protected readonly oracle: Oracle,
    protected readonly stats: Stats,
    /** The kind of the driver's page-request thread task. */
    protected readonly prqTask: string,
  ) {
    this.actorName = unit.name;
  }

  reset(): void {
    this.busy = false;
    this.atcWait = false;
  }

  /**
   * Where the unit is, as one number: the command queue's phase (CMDQ_PHASES) × 3 + the page request queue's
   * (PRQ_PHASES) — read after every event its actor takes, so a number, not a name.
   */
  get phase(): number {
    const u = this.unit;
    const cmdq = this.atcWait ? (u.invalidationTimedOut ? 2 : 1) : 0;
    return cmdq * 3 + (u.prqOverflowed ? 2 : u.prqNonEmpty ? 1 : 0);
  }

  /**
   * The device-TLB invalidation the queue waits on has not completed in the hardware's time (VT-d sets ITE; the
   * SMMU's CMD_SYNC times out): recorded, the queue still stalled — the driver is the one that must notice.
   */
  invalidationTimeout(): void {
    if (this.atcWait) this.unit.setInvalidationTimeout(true);
  }

  handle(self: number, msg: HwMessage, out: HwOut, step: number): void {
    switch (msg.type) {
      case 'cmdq.enable':
        this.unit.enableQueue(QUEUE_CMDQ);
        return;
      case 'prq.enable':
        this.unit.enableQueue(QUEUE_PRQ);
        return;
      case 'ats.req':
        this.translate(self, msg.dev, msg.pasid, msg.vpn, msg.w === 1, msg.id, out);
        return;
      case 'walk':
        this.walk(self, msg, out);
        return;
      case 'pr':
        this.pageRequest(msg, out, step);
        return;
      case 'cmdq.doorbell':
        if (!this.busy) {
          this.busy = true;
          this.runCommand(self, out, step);
        }
        return;
      case 'cmdq.next':
        this.runCommand(self, out, step);
        return;
      case 'atc.done':
        if (!this.atcWait) return;
        this.atcWait = false;
        this.unit.setInvalidationTimeout(false);
        this.unit.cmdqRetire();
        this.next(self, out);
        return;
      default:
        throw new Error(`${this.actorName}: unexpected ${msg.type}`);
    }
  }

  protected dev(i: number): DeviceInfo {
    const d = this.devices[i];
    if (!d) throw new Error(`${this.actorName}: no device ${i}`);
    return d;
  }

  // ---- translation ----

  protected translate(self: number, dev: number, pasid: number, vpn: number, write: boolean, id: number, out: HwOut): void {
    const u = this.unit;
    const fmt = u.spec.entry;
    const ep = u.epoch;
    // The device table / stream table entry first: a blocked device (or RID) is aborted before any lookup.
    if (u.blocks(dev, pasid)) {
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
      return;
    }
    if (u.spec.tlbTag === 'pasid') {
      const pte = u.iotlbLookup(dev, pasid, vpn);
      if (pte !== 0 && (!write || (pte & PTE_WRITE) !== 0)) {
        this.stats.add('iotlb_hits');
        out.send(this.dev(dev).actor, { type: 'ats.ok', id, pte });
        return;
      }
    }
    const cached = u.pcLookup(dev, pasid);
    if (cached) {
      if (!fmt.present(cached)) {
        out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
        return;
      }
      if (u.spec.tlbTag === 'asid') {
        const pte = u.iotlbLookup(fmt.asidOf(cached), -1, vpn);
        if (pte !== 0 && (!write || (pte & PTE_WRITE) !== 0)) {
          this.stats.add('iotlb_hits');
          out.send(this.dev(dev).actor, { type: 'ats.ok', id, pte });
          return;
        }
      }
      this.stats.add('iotlb_misses');
      this.startPageWalk(self, dev, pasid, vpn, write, id, this.walkKey(cached), ep, out);
      return;
    }
    this.stats.add('iotlb_misses');
    // Fetch the entry: its first field now, the rest in later accesses.
    const w0 = u.fetchEntry(0, dev, pasid);
    if (u.fetchCount === 1) {
      this.fetched(self, dev, pasid, vpn, write, id, u.assembleEntry([w0]), ep, out);
      return;
    }
    out.send(self, { type: 'walk', dev, pasid, vpn, w: write ? 1 : 0, id, st: 1, a: w0, ep });
  }

  /** mm id + 1 and ASID packed for the PTE stage. */
  protected walkKey(words: readonly number[]): number {
    const fmt = this.unit.spec.entry;
    return (fmt.asidOf(words) << 16) | fmt.mmOf(words);
  }

  protected fetched(self: number, dev: number, pasid: number, vpn: number, write: boolean, id: number, words: number[], ep: number, out: HwOut): void {
    const fmt = this.unit.spec.entry;
    if (!fmt.present(words)) {
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
      return;
    }
    this.unit.pcFill(dev, pasid, words, ep);
    this.startPageWalk(self, dev, pasid, vpn, write, id, this.walkKey(words), ep, out);
  }

  /**
   * The context is resolved (the entry fetched or cached): walk the page table it names. `key` is the mm id + 1
   * and the ASID packed as walkKey does; `ep` the invalidation epoch the walk started in.
   */
  protected startPageWalk(self: number, dev: number, pasid: number, vpn: number, write: boolean, id: number, key: number, ep: number, out: HwOut): void {
    out.send(self, { type: 'walk', dev, pasid, vpn, w: write ? 1 : 0, id, st: PAGE_WALK, a: key, ep });
  }

  protected walk(self: number, m: Extract<HwMessage, { type: 'walk' }>, out: HwOut): void {
    const u = this.unit;
    const write = m.w === 1;
    if (m.st < PAGE_WALK) {
      // The rest of the entry, fetched after the first field: a CPU write in between is seen half.
      const fetched = [m.a];
      for (let i = 1; i < u.fetchCount; i++) fetched.push(u.fetchEntry(i, m.dev, m.pasid));
      this.fetched(self, m.dev, m.pasid, m.vpn, write, m.id, u.assembleEntry(fetched), m.ep, out);
      return;
    }
    const mmId1 = m.a & 0xffff;
    const asid = m.a >>> 16;
    const mm: MmStruct | undefined = mmById(this.mms, mmId1 - 1);
    const pte = mm && m.vpn >= 0 && m.vpn < mm.pages ? readPte(u.kernel, mm, m.vpn) : 0;
    const dev = this.dev(m.dev);
    if ((pte & PTE_PRESENT) === 0 || (write && (pte & PTE_WRITE) === 0)) {
      out.send(dev.actor, { type: 'ats.fault', id: m.id, why: WHY_PTE });
      return;
    }
    if (u.spec.tlbTag === 'asid') u.iotlbFill(asid, -1, m.vpn, pte, m.dev, m.ep);
    else u.iotlbFill(m.dev, m.pasid, m.vpn, pte, m.dev, m.ep);
    out.send(dev.actor, { type: 'ats.ok', id: m.id, pte });
  }

  /**
   * The frames {dev, pasid}'s translation reaches now, as a walk of memory finds them (its PASID entry, then every
   * present PTE of the page table it points at; no cache): what the device could write to.
   */
  reachable(dev: number, pasid: number): number[] {
    const u = this.unit;
    if (u.blocks(dev, pasid)) return [];
    const words = u.entry(dev, pasid);
    if (!u.spec.entry.present(words)) return [];
    const mm = mmById(this.mms, u.spec.entry.mmOf(words) - 1);
    if (!mm) return [];
    const out: number[] = [];
    for (let vpn = 0; vpn < mm.pages; vpn++) {
      const pte = readPte(u.kernel, mm, vpn);
      if ((pte & PTE_PRESENT) !== 0) out.push(ptePfn(pte));
    }
    return out;
  }

  // ---- page requests ----

  protected pageRequest(m: Extract<HwMessage, { type: 'pr' }>, out: HwOut, step: number): void {
    const u = this.unit;
    const last = m.last === 1;
    if (last) u.groupRequested(m.dev, m.grp, m.pasid);
    const r = u.prqPush(m.dev, m.pasid, m.vpn, m.w === 1, m.grp, last);
    if (!r.queued) {
      // Queue full: the hardware answers the group itself (when its last request comes).
      if (!last) return;
      this.oracle.pageGroupAnswered(step, this.dev(m.dev).name, m.pasid, m.grp, u.groupAnswered(m.dev, m.grp), `${u.name}'s automatic response (${u.spec.prqName} full)`);
      out.send(this.dev(m.dev).actor, { type: 'prs', grp: m.grp, code: RESP_INVALID });
      return;
    }
    if (r.startThread) out.spawn(this.prqTask, null, `${u.spec.prqThread}/${u.name}`);
  }

  // ---- the command queue ----

  protected runCommand(self: number, out: HwOut, step: number): void {
    const u = this.unit;
    const c = u.cmdqPeek();
    if (!c) {
      this.busy = false;
      return;
    }
    this.stats.add('commands');
    if (c.op === OP_DEVTLB) {
      const dev = this.dev(c.a);
      u.execute(c, out);
      this.atcWait = true;
      out.send(dev.actor, { type: 'atc.inv', pasid: c.b, s: c.c, e: c.d });
      return;
    }
    if (c.op === OP_PAGE_RESP) {
      const dev = this.dev(c.a);
      this.oracle.pageGroupAnswered(step, dev.name, c.d, c.b, u.groupAnswered(c.a, c.b), `${u.spec.commandNames[c.op]} in ${u.name}'s ${u.spec.cmdqName}`);
      this.stats.add('page_responses');
      out.send(dev.actor, { type: 'prs', grp: c.b, code: c.c });
    } else {
      u.execute(c, out);
    }
    u.cmdqRetire();
    this.next(self, out);
  }

  protected next(self: number, out: HwOut): void {
    if (this.unit.cmdqPeek()) out.send(self, { type: 'cmdq.next' });
    else this.busy = false;
  }
}
