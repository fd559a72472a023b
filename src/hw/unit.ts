// What an IOMMU unit does with the messages it gets: translate an ATS request (IOTLB, then the PASID-entry
// cache, then a walk that fetches the entry word by word and then the page table's levels — PGD, PMD, PTE page,
// starting at the deepest the paging-structure cache holds an entry for, filling it as it goes — each fetch a
// delivery of its own, so CPU writes interleave with it as they do with real hardware), queue page requests and wake the driver's
// page-request thread, and consume the command queue one command per delivery, stalling on a device-TLB
// invalidation until the device answers (which is why a device that never answers wedges the queue). Its
// lifecycle — queues enabled, the command queue idle, consuming, stalled on a device-TLB invalidation or timed
// out on one, the page request queue overflowed — is read by its actor's machine (src/actors/iommu-unit.ts).
import { WALK_LEVEL } from './costs.js';
import type { Oracle } from '../core/oracle.js';
import type { Stats } from '../core/stats.js';
import { type DeviceInfo, RESP_INVALID } from '../core/types.js';
import type { Kernel } from '../kernel/kernel.js';
import {
  type MmStruct,
  mmById,
  type MmTable,
  ownerOf,
  PMD_TABLE_SHIFT,
  PT_LEVEL_PGD,
  PT_LEVEL_PMD,
  PT_LEVEL_PTE,
  PTE_TABLE_SHIFT,
  kernelVpn,
  mmTableOf,
  pteAddr,
  pgdEntryAddr,
  pgdPfnAddr,
  pmdEntryAddr,
  pmdPagesOf,
  ptePagesOf,
} from '../kernel/mm/mm.js';
import { PTE_PRESENT, PTE_WRITE, ptePfn, pte as readPte } from '../kernel/mm/pagetable.js';
import { TABLE_HUGE, TABLE_PRESENT } from '../kernel/mm/pgalloc.js';
import { pageHistory, pageOwner, ptdescIndex, ptdescLevel } from '../kernel/mm/physmem.js';
import type { Footprint } from '../runtime/footprint.js';
import { computed, type FootprintBuilder, ptdescFootprint, statFootprint, unfollowed } from './footprint.js';
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


const LEVEL_NAMES: readonly string[] = ['data', 'PTE', 'PMD', 'PGD'];

/**
 * A page-walk stage (`st` from PAGE_WALK on): the level of the table read next, whether the walk got there
 * through the paging-structure cache, and the table page's pfn.
 */
function walkStage(level: number, pfn: number, cached: boolean): number {
  if (pfn >= 1 << 27) throw new RangeError(`page walk: pfn 0x${pfn.toString(16)} does not fit a walk stage`);
  return PAGE_WALK + level + (cached ? 4 : 0) + pfn * 8;
}

/**
 * The entry for vpn in mm's `level` table number `index` (a plain read: the hardware's, in a sequenced delivery).
 * A user PGD's entries past its own pages are the kernel half's: init_mm's, as pgd_ctor copied them.
 */
function tableEntry(k: Kernel, mm: MmStruct, level: number, index: number, vpn: number): number {
  if (level === PT_LEVEL_PGD) {
    const j = vpn >> PMD_TABLE_SHIFT;
    if (j < pmdPagesOf(mm.pages)) return Atomics.load(k.i32, pgdEntryAddr(k, mm, j));
    const kv = kernelVpn(mm, vpn);
    return kv < 0 ? 0 : tableEntry(k, mmTableOf(mm).initMm, level, 0, kv);
  }
  if (level === PT_LEVEL_PMD) {
    const per = PMD_TABLE_SHIFT - PTE_TABLE_SHIFT;
    const i = (index << per) + ((vpn >> PTE_TABLE_SHIFT) & ((1 << per) - 1));
    return i < ptePagesOf(mm.pages) ? Atomics.load(k.i32, pmdEntryAddr(k, mm, i)) : 0;
  }
  return readPte(k, mm, (index << PTE_TABLE_SHIFT) + (vpn & ((1 << PTE_TABLE_SHIFT) - 1)));
}

/** The word tableEntry reads (none outside the table). */
function tableEntryFootprint(fp: FootprintBuilder, k: Kernel, mm: MmStruct, level: number, index: number, vpn: number): void {
  if (level === PT_LEVEL_PGD) {
    const j = vpn >> PMD_TABLE_SHIFT;
    if (j < pmdPagesOf(mm.pages)) {
      fp.read(pgdEntryAddr(k, mm, j));
      return;
    }
    const kv = kernelVpn(mm, vpn);
    if (kv >= 0) tableEntryFootprint(fp, k, mmTableOf(mm).initMm, level, 0, kv);
    return;
  }
  if (level === PT_LEVEL_PMD) {
    const per = PMD_TABLE_SHIFT - PTE_TABLE_SHIFT;
    const i = (index << per) + ((vpn >> PTE_TABLE_SHIFT) & ((1 << per) - 1));
    if (i < ptePagesOf(mm.pages)) fp.read(pmdEntryAddr(k, mm, i));
    return;
  }
  const v = (index << PTE_TABLE_SHIFT) + (vpn & ((1 << PTE_TABLE_SHIFT) - 1));
  if (Number.isInteger(v) && v >= 0 && v < mm.pages) fp.read(pteAddr(k, mm, v));
}

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
    this.step = step;
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
        this.retireCommand();
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

  /** An IOTLB entry (by the unit's tag) that permits the access answers the device here (ats.ok): true; else false. */
  protected iotlbAnswer(tag: number, pasid: number, vpn: number, write: boolean, dev: number, id: number, out: HwOut): boolean {
    const pte = this.unit.iotlbLookup(tag, pasid, vpn);
    if (pte === 0 || (write && (pte & PTE_WRITE) === 0)) return false;
    out.send(this.dev(dev).actor, { type: 'ats.ok', id, pte });
    return true;
  }

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
      if (this.iotlbAnswer(dev, pasid, vpn, write, dev, id, out)) {
        if (!this.retrying) this.stats.add('iotlb_hits');
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
        if (this.iotlbAnswer(fmt.asidOf(cached), -1, vpn, write, dev, id, out)) {
          if (!this.retrying) this.stats.add('iotlb_hits');
          return;
        }
      }
      if (!this.retrying) this.stats.add('iotlb_misses');
      this.startPageWalk(self, dev, pasid, vpn, write, id, this.walkKey(cached), ep, out);
      return;
    }
    if (!this.retrying) this.stats.add('iotlb_misses');
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
   * and the ASID packed as walkKey does; `ep` the invalidation epoch the walk started in. The walk starts at the
   * deepest level the paging-structure cache has an entry for — the PTE page (one table read left), the PMD page,
   * or the PGD page the context points at — and reads one table per delivery.
   */
  protected startPageWalk(self: number, dev: number, pasid: number, vpn: number, write: boolean, id: number, key: number, ep: number, out: HwOut): void {
    const u = this.unit;
    const mm = mmById(this.mms, (key & 0xffff) - 1);
    if (!mm || vpn < 0 || (vpn >= mm.pages && (u.spec.kernelHalf !== true || kernelVpn(mm, vpn) < 0))) {
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PTE });
      return;
    }
    const asid = u.spec.tlbTag === 'asid';
    const tag = asid ? key >>> 16 : dev;
    const tp = asid ? -1 : pasid;
    let level = PT_LEVEL_PTE;
    let pfn = u.pscLookup(tag, tp, PT_LEVEL_PTE, vpn >> PTE_TABLE_SHIFT);
    if (pfn === 0) {
      level = PT_LEVEL_PMD;
      pfn = u.pscLookup(tag, tp, PT_LEVEL_PMD, vpn >> PMD_TABLE_SHIFT);
    }
    const cached = pfn !== 0;
    if (!cached) {
      level = PT_LEVEL_PGD;
      pfn = Atomics.load(u.kernel.i32, pgdPfnAddr(u.kernel, mm));
    }
    if (pfn === 0) {
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PTE });
      return;
    }
    out.send(self, { type: 'walk', dev, pasid, vpn, w: write ? 1 : 0, id, st: walkStage(level, pfn, cached), a: key, ep });
  }

  /** The step of the message being handled (what the oracle dates its findings with). */
  protected step = 0;
  /** A walk an invalidation overtook is translating again: not another request for the statistics. */
  protected retrying = false;

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
    const s = m.st - PAGE_WALK;
    const level = s & 3;
    const pfn = s >>> 3;
    const bound = mmById(this.mms, (m.a & 0xffff) - 1) as MmStruct;
    // Below a user PGD's kernel half the tables are init_mm's, at the kernel address.
    const kv = level === PT_LEVEL_PGD ? -1 : kernelVpn(bound, m.vpn);
    const mm = kv < 0 ? bound : this.mms.initMm;
    const vpn = kv < 0 ? m.vpn : kv;
    const want = level === PT_LEVEL_PGD ? 0 : vpn >> (level === PT_LEVEL_PMD ? PMD_TABLE_SHIFT : PTE_TABLE_SHIFT);
    if (m.ep !== u.epoch && (!this.isTable(mm, level, want, pfn) || !this.contextStill(m.dev, m.pasid, m.a))) {
      // An invalidation overtook the walk, and what it walks is gone — the table it points at freed, or the
      // context that named the page table dropped: translate again from the caches and memory as they are now,
      // the same request, not a new one (an invalidation completes only once the walks it overtook are done, so
      // hardware never reads a table freed after it nor answers for a context dropped before it). A walk whose
      // table and context are still there goes on, as hardware's does.
      this.retrying = true;
      this.translate(self, m.dev, m.pasid, m.vpn, write, m.id, out);
      this.retrying = false;
      return;
    }
    out.busy(WALK_LEVEL.ns);
    const entry = this.readTable(mm, level, want, pfn, (s & 4) !== 0, m, vpn);
    if (level !== PT_LEVEL_PTE) this.descend(self, m, level - 1, entry, out);
    else this.leaf(m, kv < 0 ? entry : 0, out);
  }

  /**
   * An upper-level entry read: cache it and read the next table, or fault. A huge PMD entry is a leaf the model's
   * DMA never uses (ioremap's MMIO), and a kernel-half PTE faults (the walk gives the leaf 0): a request without
   * privilege meets the U/S bit — after the walk cached the kernel tables' upper-level entries.
   */
  private descend(self: number, m: Extract<HwMessage, { type: 'walk' }>, next: number, entry: number, out: HwOut): void {
    if ((entry & TABLE_PRESENT) === 0 || (entry & TABLE_HUGE) !== 0) {
      out.send(this.dev(m.dev).actor, { type: 'ats.fault', id: m.id, why: WHY_PTE });
      return;
    }
    const u = this.unit;
    const asid = u.spec.tlbTag === 'asid';
    const index = m.vpn >> (next === PT_LEVEL_PTE ? PTE_TABLE_SHIFT : PMD_TABLE_SHIFT);
    u.pscFill(asid ? m.a >>> 16 : m.dev, asid ? -1 : m.pasid, next, index, entry >>> 2, m.dev, m.ep);
    out.send(self, { ...m, st: walkStage(next, entry >>> 2, false) });
  }

  /** The PTE read: the translation, into the IOTLB, or a fault. */
  private leaf(m: Extract<HwMessage, { type: 'walk' }>, pte: number, out: HwOut): void {
    const u = this.unit;
    const dev = this.dev(m.dev);
    if ((pte & PTE_PRESENT) === 0 || (m.w === 1 && (pte & PTE_WRITE) === 0)) {
      out.send(dev.actor, { type: 'ats.fault', id: m.id, why: WHY_PTE });
      return;
    }
    if (u.spec.tlbTag === 'asid') u.iotlbFill(m.a >>> 16, -1, m.vpn, pte, m.dev, m.ep);
    else u.iotlbFill(m.dev, m.pasid, m.vpn, pte, m.dev, m.ep);
    out.send(dev.actor, { type: 'ats.ok', id: m.id, pte });
  }

  /**
   * One table read: the entry of vpn in the `level` table at frame pfn, which should be mm's. A frame that is no
   * longer that table (freed, or reused) is the oracle's finding, and the walk reads what the frame is now:
   * another table of that level (another address space's entries), or nothing it can use.
   */
  private readTable(mm: MmStruct, level: number, want: number, pfn: number, cached: boolean, m: Extract<HwMessage, { type: 'walk' }>, vpn: number): number {
    const k = this.unit.kernel;
    if (this.isTable(mm, level, want, pfn)) return tableEntry(k, mm, level, want, vpn);
    const pm = this.mms.pm;
    const lvl = ptdescLevel(k, pm, pfn);
    const owner = pageOwner(k, pm, pfn);
    this.staleTable(mm, level, pfn, cached, m, lvl, owner);
    const now = lvl === level && owner !== 0 ? mmById(this.mms, owner - 1) : undefined;
    return now ? tableEntry(k, now, level, ptdescIndex(k, pm, pfn), vpn) : 0;
  }

  /**
   * Does {dev, pasid}'s context in memory still name the page table the walk started from (`key`, as walkKey
   * packs it)? Read only when an invalidation overtook a walk. A vendor whose context is its own overrides it.
   */
  protected contextStill(dev: number, pasid: number, key: number): boolean {
    const u = this.unit;
    if (u.blocks(dev, pasid)) return false;
    const words = u.entry(dev, pasid);
    return u.spec.entry.present(words) && this.walkKey(words) === key;
  }

  /** Is frame pfn mm's `level` table number `want` (its ptdesc says so)? */
  private isTable(mm: MmStruct, level: number, want: number, pfn: number): boolean {
    const k = this.unit.kernel;
    const pm = this.mms.pm;
    return ptdescLevel(k, pm, pfn) === level && pageOwner(k, pm, pfn) === ownerOf(mm) && ptdescIndex(k, pm, pfn) === want;
  }

  private staleTable(mm: MmStruct, level: number, pfn: number, cached: boolean, m: Extract<HwMessage, { type: 'walk' }>, lvl: number, owner: number): void {
    const name = (o: number) => mmById(this.mms, o - 1)?.name ?? `owner ${o}`;
    const now = owner === 0 ? 'free' : lvl === 0 ? `now a page of ${name(owner)}` : `now a ${LEVEL_NAMES[lvl]} table of ${name(owner)}`;
    const u = this.unit;
    const title = `${u.name} walked ${LEVEL_NAMES[level]} table page 0x${pfn.toString(16)} of ${mm.name}, which is ${now}`;
    this.oracle.tablePageStale(this.step, u.name, title, [
      `the walk of {${this.dev(m.dev).name}, PASID ${m.pasid}} vpn ${m.vpn} reached it through ${cached ? `a cached upper-level entry (${u.name}'s paging-structure cache)` : 'an upper-level entry it read earlier'}`,
      'a use-after-free of a page-table page: the table was freed before the IOMMU was told to drop what it cached of it',
      ...pageHistory(u.kernel, this.mms.pm, pfn),
    ]);
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

  /** The command at the queue's head is done (the device-TLB invalidation it waited on completed). */
  protected retireCommand(): void {
    this.unit.cmdqRetire();
  }

  protected next(self: number, out: HwOut): void {
    if (this.unit.cmdqPeek()) out.send(self, { type: 'cmdq.next' });
    else this.busy = false;
  }

  // ---- footprints (src/hw/footprint.ts): what handling a message touches, for Workload.footprintOf ----

  /**
   * The shared words handling msg reads and writes, found by the handler's own decisions on memory as it is now
   * (pure); undefined when the handler's path is one this does not follow (the delivery takes the fallback lock).
   */
  footprintOf(msg: HwMessage): Footprint | undefined {
    return computed((fp) => {
      // The actor's machine reads the phase after every event it takes.
      this.unit.phaseFootprint(fp);
      this.eventFootprint(fp, msg);
    });
  }

  protected eventFootprint(fp: FootprintBuilder, msg: HwMessage): void {
    switch (msg.type) {
      case 'cmdq.enable':
      case 'prq.enable':
        fp.write(this.unit.enabledWord);
        return;
      case 'ats.req':
        this.translateFootprint(fp, msg.dev, msg.pasid, msg.vpn, msg.w === 1);
        return;
      case 'walk':
        if (msg.st >= PAGE_WALK) this.pageWalkFootprint(fp, msg);
        else this.contextWalkFootprint(fp, msg);
        return;
      case 'pr':
        // The group's record (requested, or answered by the hardware when its queue is full), then the queue.
        this.unit.groupFootprint(fp, msg.dev, msg.grp);
        this.prqFootprint(fp);
        return;
      case 'cmdq.doorbell':
        // A doorbell while the unit is consuming touches nothing: it is taking the commands already.
        if (!this.busy) this.commandFootprint(fp);
        return;
      case 'cmdq.next':
        this.commandFootprint(fp);
        return;
      case 'atc.done':
        if (!this.atcWait) return;
        fp.write(this.unit.iteWord);
        this.retireFootprint(fp);
        this.nextFootprint(fp, 1);
        return;
      default:
        unfollowed();
    }
  }

  /** pageRequest()'s write of the request into the unit's queue (a vendor whose queue is its own overrides it). */
  protected prqFootprint(fp: FootprintBuilder): void {
    this.unit.prqPushFootprint(fp);
  }

  /** translate()'s: each vendor's (its context lookup is its own). */
  protected translateFootprint(_fp: FootprintBuilder, _dev: number, _pasid: number, _vpn: number, _write: boolean): void {
    unfollowed();
  }

  /** A walk stage below PAGE_WALK: the vendor's context fetch. */
  protected contextWalkFootprint(_fp: FootprintBuilder, _m: Extract<HwMessage, { type: 'walk' }>): void {
    unfollowed();
  }

  /** runCommand()'s, on the shared command queue (a vendor whose queue is its own overrides it). */
  protected commandFootprint(fp: FootprintBuilder): void {
    const u = this.unit;
    u.cmdqPeekFootprint(fp);
    const c = u.cmdqPeek();
    if (!c) return;
    this.statFootprint(fp, 'commands');
    if (c.op === OP_DEVTLB) {
      u.executeFootprint(fp, c);
      return;
    }
    if (c.op === OP_PAGE_RESP) {
      u.groupFootprint(fp, c.a, c.b);
      this.statFootprint(fp, 'page_responses');
    } else {
      u.executeFootprint(fp, c);
    }
    u.cmdqRetireFootprint(fp);
    this.nextFootprint(fp, 1);
  }

  /** retireCommand()'s. */
  protected retireFootprint(fp: FootprintBuilder): void {
    this.unit.cmdqRetireFootprint(fp);
  }

  /** next()'s: whether a command is waiting (`retired`: the shared queue's head moved that often in this step). */
  protected nextFootprint(fp: FootprintBuilder, retired: number): void {
    this.unit.cmdqPeekFootprint(fp, retired);
  }

  /**
   * A translation fault (ats.fault, WHY_PTE) sent to dev: a message only, unless the vendor records it in memory
   * (the SMMU's stall and event queue override this).
   */
  protected faultFootprint(_fp: FootprintBuilder, _dev: number): void {}

  /**
   * The start every vendor's translation footprint shares: the IOTLB's answer (a hit), else a miss and the
   * PASID-entry cache's lookup, a walk from the cached entry when it is there. True when that decided it; false
   * when the context must be fetched from memory (the vendor's part).
   */
  protected cachedTranslationFootprint(fp: FootprintBuilder, dev: number, pasid: number, vpn: number, write: boolean): boolean {
    const u = this.unit;
    if (this.iotlbAnswerFootprint(fp, dev, pasid, vpn, write)) {
      this.statFootprint(fp, 'iotlb_hits');
      return true;
    }
    this.statFootprint(fp, 'iotlb_misses');
    u.pcLookupFootprint(fp, dev, pasid);
    const cached = u.pcLookup(dev, pasid);
    if (!cached) return false;
    if (u.spec.entry.present(cached)) this.startWalkFootprint(fp, dev, pasid, vpn, this.walkKey(cached));
    return true;
  }

  /** fetched()'s: the entry cached, then the page walk started. */
  protected fetchedFootprint(fp: FootprintBuilder, dev: number, pasid: number, vpn: number, words: readonly number[], ep: number): void {
    if (!this.unit.spec.entry.present(words)) return;
    this.unit.pcFillFootprint(fp, dev, pasid, ep);
    this.startWalkFootprint(fp, dev, pasid, vpn, this.walkKey(words));
  }

  /** startPageWalk()'s: the paging-structure cache's lookups, then mm->pgd when they miss. */
  protected startWalkFootprint(fp: FootprintBuilder, dev: number, pasid: number, vpn: number, key: number): void {
    const u = this.unit;
    const mm = mmById(this.mms, (key & 0xffff) - 1);
    if (!mm || vpn < 0 || (vpn >= mm.pages && (u.spec.kernelHalf !== true || kernelVpn(mm, vpn) < 0))) {
      this.faultFootprint(fp, dev);
      return;
    }
    const asid = u.spec.tlbTag === 'asid';
    const tag = asid ? key >>> 16 : dev;
    const tp = asid ? -1 : pasid;
    u.pscLookupFootprint(fp, tag, tp, PT_LEVEL_PTE, vpn >> PTE_TABLE_SHIFT);
    let pfn = u.pscLookup(tag, tp, PT_LEVEL_PTE, vpn >> PTE_TABLE_SHIFT);
    if (pfn === 0) {
      u.pscLookupFootprint(fp, tag, tp, PT_LEVEL_PMD, vpn >> PMD_TABLE_SHIFT);
      pfn = u.pscLookup(tag, tp, PT_LEVEL_PMD, vpn >> PMD_TABLE_SHIFT);
    }
    if (pfn === 0) {
      const at = pgdPfnAddr(u.kernel, mm);
      fp.read(at);
      pfn = Atomics.load(u.kernel.i32, at);
    }
    if (pfn === 0) this.faultFootprint(fp, dev);
  }

  /** A page-walk stage: the table page's ptdesc, the entry read, then the cache filled (or a fault). */
  private pageWalkFootprint(fp: FootprintBuilder, m: Extract<HwMessage, { type: 'walk' }>): void {
    const u = this.unit;
    const k = u.kernel;
    fp.read(u.epochWord);
    const s = m.st - PAGE_WALK;
    const level = s & 3;
    const pfn = s >>> 3;
    const bound = mmById(this.mms, (m.a & 0xffff) - 1);
    if (!bound) unfollowed();
    const kv = level === PT_LEVEL_PGD ? -1 : kernelVpn(bound, m.vpn);
    const mm = kv < 0 ? bound : this.mms.initMm;
    const vpn = kv < 0 ? m.vpn : kv;
    const want = level === PT_LEVEL_PGD ? 0 : vpn >> (level === PT_LEVEL_PMD ? PMD_TABLE_SHIFT : PTE_TABLE_SHIFT);
    ptdescFootprint(fp, k, this.mms.pm, pfn);
    // A frame that is no longer the table: the stale-table oracle's report (page_owner's history), or, when an
    // invalidation overtook the walk, a translation again — not followed.
    if (!this.isTable(mm, level, want, pfn)) unfollowed();
    if (m.ep !== u.epoch) {
      // An invalidation overtook the walk: it goes on while its context still names the page table.
      u.contextFootprint(fp, m.dev, m.pasid);
      if (!this.contextStill(m.dev, m.pasid, m.a)) unfollowed();
    }
    tableEntryFootprint(fp, k, mm, level, want, vpn);
    const entry = tableEntry(k, mm, level, want, vpn);
    if (level !== PT_LEVEL_PTE) {
      if ((entry & TABLE_PRESENT) === 0 || (entry & TABLE_HUGE) !== 0) {
        this.faultFootprint(fp, m.dev);
        return;
      }
      const next = level - 1;
      const asid = u.spec.tlbTag === 'asid';
      const index = m.vpn >> (next === PT_LEVEL_PTE ? PTE_TABLE_SHIFT : PMD_TABLE_SHIFT);
      u.pscFillFootprint(fp, asid ? m.a >>> 16 : m.dev, asid ? -1 : m.pasid, next, index, m.ep);
      return;
    }
    const pte = kv < 0 ? entry : 0;
    if ((pte & PTE_PRESENT) === 0 || (m.w === 1 && (pte & PTE_WRITE) === 0)) {
      this.faultFootprint(fp, m.dev);
      return;
    }
    if (u.spec.tlbTag === 'asid') u.iotlbFillFootprint(fp, m.a >>> 16, -1, m.vpn, m.ep);
    else u.iotlbFillFootprint(fp, m.dev, m.pasid, m.vpn, m.ep);
  }

  /** iotlbAnswer()'s: the lookup, and whether it answers (the caller counts the hit). */
  protected iotlbAnswerFootprint(fp: FootprintBuilder, tag: number, pasid: number, vpn: number, write: boolean): boolean {
    this.unit.iotlbLookupFootprint(fp, tag, pasid, vpn);
    const pte = this.unit.iotlbLookup(tag, pasid, vpn);
    return !(pte === 0 || (write && (pte & PTE_WRITE) === 0));
  }

  /** A statistics counter the handler adds to. */
  protected statFootprint(fp: FootprintBuilder, name: Parameters<Stats['add']>[0]): void {
    statFootprint(fp, this.stats, name);
  }

}
