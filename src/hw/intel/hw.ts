// The VT-d remapping unit (dmarN) in scalable mode: per device a PASID directory (PASID[19:6]) whose entries point
// at PASID tables of 64 entries, allocated by the driver on demand (intel_pasid_get_entry) from the unit's pool;
// each entry 512 bits (struct pasid_entry) that the hardware fetches as four 128-bit reads, each a delivery of its
// own, so that a CPU write between two of them is seen as a mixed entry (the torn-entry oracle, entry-oracle.ts,
// checks what the hardware assembles); an invalidation queue of 256-bit descriptors (struct qi_desc) that the
// hardware decodes and executes (dmar.ts writes them); the page request queue of 256-bit page_req_dsc the
// hardware writes at PQT (prq-dsc.ts), which sets DMA_PRS_PRO when it finds the queue full and then refuses every
// request until software clears it, answering the last request of a refused group itself with a Success page
// group response — the device retries the translation, faults again and asks again (VT-d spec 7.5.1).
//
// The order of the four reads is not architectural. The model reads the chunk that holds P last: then the
// driver's discipline — P written last when an entry is made present, cleared first when it is torn down — is
// what keeps the hardware from using a half-written entry, and the oracle holds the driver to it. A fetch of an
// entry that was rewritten and that an invalidation overtook is started again (the invalidation's wait must not
// complete while a translation that read the old entry is in flight; the model restarts the fetch instead of
// delaying the wait).
import { type DeviceInfo, RESP_SUCCESS } from '../../core/types.js';
import type { Kernel } from '../../kernel/kernel.js';
import { element, struct, type ViewOf, word, array } from '../../kernel/struct.js';
import { entryFormat, type FlavourSpec } from '../flavour.js';
import { IommuUnit, type UnitOptions } from '../iommu.js';
import type { HwMessage } from '../messages.js';
import { WHY_PASID } from '../messages.js';
import { type FootprintBuilder, unfollowed } from '../footprint.js';
import type { HwOut } from '../out.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import { IommuHardware, PAGE_WALK } from '../unit.js';
import type { HardwareEnv } from '../vendor.js';
import { VTD_COSTS } from './costs.js';
import { checkAssembled, ENTRY_VERSION, entryHash } from './entry-oracle.js';
import { DMA_FSTS_ITE, decodeQi, QI_DESC, QI_DONE, QI_IN_USE, Q_INVAL, VTD_REGS } from './qi.js';
import { DMA_PRS_PPR, DMA_PRS_PRO, decodePageReq, encodePageReq, PAGE_REQ_DSC, type PageReqDsc, pageReqHex, VTD_PRQ_REGS } from './prq-dsc.js';
import { PASID_DID_MASK, PASID_ENTRY, PASID_ENTRY_WORDS, PASID_PDE_SHIFT, PASID_PTE_MASK, PASID_PTE_PRESENT, pdeTable } from './pasid-entry.js';

export const VTD: FlavourSpec = {
  flavour: 'vtd',
  names: { cmdqLock: 'qi->q_lock', drainPrq: 'intel_drain_pasid_prq', pageResponse: 'intel_page_response' },
  unitName: (i) => `dmar${i}`,
  entryName: 'PASID',
  entry: entryFormat(PASID_ENTRY, {
    fetch: [],
    present: (w) => ((w[0] ?? 0) & PASID_PTE_PRESENT) !== 0,
    // val[2] bits 12-63: FLPTR, the first-level table's address; the model's is (mm id + 1) << 12.
    mmOf: (w) => (w[4] ?? 0) >>> 12,
    asidOf: () => 0,
  }),
  tlbTag: 'pasid',
  kernelHalf: true,
  cmdqName: 'QI',
  prqName: 'PRQ',
  prqThread: 'prq_event_thread',
  commandNames: { 1: 'P_IOTLB_INV', 2: 'PC_INV', 3: 'DEV_IOTLB_INV', 4: 'PAGE_GRP_RESP', 5: 'INV_WAIT' },
};


/** PASID-table entries per table (one 4 KiB page of 64-byte entries). */
const PASID_TABLE_ENTRIES = PASID_PTE_MASK + 1;

/** Words of a PASID table and the oracle's version records of its entries. */
const LEAF_WORDS = PASID_TABLE_ENTRIES * (PASID_ENTRY_WORDS + ENTRY_VERSION.words);
/** Tables a device's share of the pool holds at least (a device with fewer directory entries: all of them). */
const MIN_LEAVES = 4;

/**
 * The tables a device's share of the pool holds: what the memory the model reserves per device (2^pasidBits × 8
 * words, as for the other vendors' whole tables) buys, at least MIN_LEAVES, at most one per directory entry. The
 * driver allocates them on demand; PASIDs are handed out lowest first, so a device uses few.
 */
export function leavesPerDevice(pasidBits: number): number {
  const dir = Math.max(1, (1 << pasidBits) >>> PASID_PDE_SHIFT);
  return Math.min(dir, Math.max(MIN_LEAVES, Math.floor(((1 << pasidBits) * 8 - dir) / LEAF_WORDS)));
}

/** Words of a unit's memory per device: its directory and its share of the pool (Vendor.deviceWords). */
export function vtdDeviceWords(pasidBits: number): number {
  return Math.max(1, (1 << pasidBits) >>> PASID_PDE_SHIFT) + leavesPerDevice(pasidBits) * LEAF_WORDS;
}

/** The pool's bookkeeping: leaf tables handed out (alloc_pgtable_page from the unit's node). */
const LEAF_POOL = struct('pasid_table_pool', { used: word });

/** The device's PASID directory size (entries), at least one. */
function dirEntries(d: DeviceInfo): number {
  return Math.max(1, (1 << d.caps.pasidBits) >>> PASID_PDE_SHIFT);
}

/** The requester ID of a device named as the kernel prints it (0000:BB:DD.F): bus << 8 | devfn. */
export function pciSid(name: string): number {
  const m = /^[\da-f]{4}:([\da-f]{2}):([\da-f]{2})\.([0-7])$/i.exec(name);
  if (!m) return 0;
  return (Number.parseInt(m[1] as string, 16) << 8) | (Number.parseInt(m[2] as string, 16) << 3) | Number.parseInt(m[3] as string, 10);
}

export class VtdUnit extends IommuUnit {
  /** Static offsets: the leaf tables' pool (entries, then their version records) and its bookkeeping. */
  private readonly leaves: number;
  private readonly versions: number;
  private readonly pool: number;
  readonly poolSize: number;
  /** The invalidation queue: descriptors, their status (qi->desc_status), the driver's struct q_inval, IQH/IQT. */
  private readonly iq: number;
  private readonly iqStatus: number;
  private readonly qinval: number;
  private readonly iqRegs: number;
  readonly qiLength: number;
  /** The page request queue (iommu->prq) and its registers (PQH, PQT, PRS). */
  private readonly prqRing: number;
  private readonly prqRegs: number;
  readonly prqLength: number;
  /** What the driver printed about this unit (pr_info / pr_err from prq.c and dmar.c), in order. */
  readonly log: string[] = [];
  readonly view: {
    readonly entry: ViewOf<typeof PASID_ENTRY>;
    readonly version: ViewOf<typeof ENTRY_VERSION>;
    readonly pool: ViewOf<typeof LEAF_POOL>;
    readonly desc: ViewOf<typeof QI_DESC>;
    readonly q: ViewOf<typeof Q_INVAL>;
    readonly reg: ViewOf<typeof VTD_REGS>;
    readonly status: ViewOf<ReturnType<typeof statusArray>>;
    readonly dsc: ViewOf<typeof PAGE_REQ_DSC>;
    readonly prq: ViewOf<typeof VTD_PRQ_REGS>;
  };
  /** Each device's requester ID and index, both ways. */
  private readonly bySid = new Map<number, number>();

  constructor(k: Kernel, index: number, devices: readonly DeviceInfo[], opts: UnitOptions, actor: number) {
    // Each descriptor's cost is the unit's own (costs.ts, spent with HwOut.busy), not the shared queue's cmdCostNs.
    // The PRQ is the unit's own (prq-dsc.ts): the shared unit's page request ring is left at one entry, unused.
    super(k, index, VTD, devices, { ...opts, cmdCostNs: 0, prqDepth: 1 }, actor);
    this.poolSize = devices.reduce((n, d) => n + leavesPerDevice(d.caps.pasidBits), 0);
    this.leaves = k.statics.alloc(Math.max(1, this.poolSize) * PASID_TABLE_ENTRIES * PASID_ENTRY_WORDS, `${this.name} PASID tables`);
    this.versions = k.statics.alloc(Math.max(1, this.poolSize) * PASID_TABLE_ENTRIES * ENTRY_VERSION.words, `${this.name} PASID entry versions`);
    this.pool = k.statics.alloc(LEAF_POOL.words, `${this.name} PASID table pool`);
    this.qiLength = opts.queueDepth;
    this.iq = k.statics.alloc(this.qiLength * QI_DESC.words, `${this.name} invalidation queue`);
    this.iqStatus = k.statics.alloc(this.qiLength, `${this.name} qi->desc_status`);
    this.qinval = k.statics.alloc(Q_INVAL.words, `${this.name} struct q_inval`);
    this.iqRegs = k.statics.alloc(VTD_REGS.words, `${this.name} IQH/IQT`);
    this.prqLength = Math.max(1, opts.prqDepth);
    this.prqRing = k.statics.alloc(this.prqLength * PAGE_REQ_DSC.words, `${this.name} PRQ`);
    this.prqRegs = k.statics.alloc(VTD_PRQ_REGS.words, `${this.name} PQH/PQT/PRS`);
    this.view = {
      entry: k.struct(PASID_ENTRY),
      version: k.struct(ENTRY_VERSION),
      pool: k.struct(LEAF_POOL),
      desc: k.struct(QI_DESC),
      q: k.struct(Q_INVAL),
      reg: k.struct(VTD_REGS),
      status: k.struct(statusArray(this.qiLength)),
      dsc: k.struct(PAGE_REQ_DSC),
      prq: k.struct(VTD_PRQ_REGS),
    };
    for (const d of devices) this.bySid.set(pciSid(d.name), d.index);
  }

  private st(off: number): number {
    return this.kernel.mem.statics + off;
  }

  /** The PASID directory: one 64-bit entry per 64 PASIDs (the model keeps its low word: P and the table). */
  protected override allocTable(d: DeviceInfo): number {
    return this.kernel.statics.alloc(dirEntries(d), `${d.name} PASID directory`);
  }

  /** dev's PASID directory entry for pasid (its word offset). */
  pdePtr(dev: number, pasid: number): number {
    return this.st(this.tableOf(dev)) + (pasid >>> PASID_PDE_SHIFT);
  }

  /** Take a leaf table from the pool: its number (1-based, the model's page address), 0 when none is left. */
  allocLeaf(): number {
    const at = this.st(this.pool);
    const n = this.view.pool.used.atomic_inc_return(at);
    return n <= this.poolSize ? n : 0;
  }

  /** The pool's `used` word (its word offset): what allocLeaf and freeLeaf write (the driver's footprints). */
  get poolUsedPtr(): number {
    return this.view.pool.used.addr(this.st(this.pool));
  }

  /** Give back a leaf a lost cmpxchg did not install (free_pgtable_page): only the last one taken can be. */
  freeLeaf(leaf: number): void {
    this.view.pool.used.cmpxchg(this.st(this.pool), leaf, leaf - 1);
  }

  /** {dev, pasid}'s entry (word offset), or 0 when its directory entry points at no table. */
  pasidEntryPtr(dev: number, pasid: number): number {
    const leaf = pdeTable(Atomics.load(this.kernel.i32, this.pdePtr(dev, pasid)));
    if (leaf === 0) return 0;
    return element(PASID_ENTRY, this.st(this.leaves), (leaf - 1) * PASID_TABLE_ENTRIES + (pasid & PASID_PTE_MASK));
  }

  /** The oracle's record of {dev, pasid}'s published versions (word offset; its table must exist). */
  versionPtr(dev: number, pasid: number): number {
    const leaf = pdeTable(Atomics.load(this.kernel.i32, this.pdePtr(dev, pasid)));
    return element(ENTRY_VERSION, this.st(this.versions), (leaf - 1) * PASID_TABLE_ENTRIES + (pasid & PASID_PTE_MASK));
  }

  override entryPtr(dev: number, pasid: number): number {
    const p = this.pasidEntryPtr(dev, pasid);
    if (p === 0) throw new Error(`${this.name}: no PASID table for device ${dev} PASID ${pasid}`);
    return p;
  }

  override entry(dev: number, pasid: number): number[] {
    const p = this.pasidEntryPtr(dev, pasid);
    return p === 0 ? new Array<number>(PASID_ENTRY_WORDS).fill(0) : Array.from({ length: PASID_ENTRY_WORDS }, (_, w) => this.view.entry.val.get(p, w));
  }

  /** The hardware's 128-bit read `chunk` (0..3) of an entry: four words. */
  readChunk(p: number, chunk: number, into: number[]): void {
    for (let w = chunk * 4; w < chunk * 4 + 4; w++) into[w] = this.view.entry.val.READ_ONCE(p, w);
  }

  /** The device of a requester ID (-1: none behind this unit). */
  deviceOfSid(sid: number): number {
    return this.bySid.get(sid) ?? -1;
  }

  // ---- the invalidation queue ----

  /** qi->free_cnt */
  freeCnt(): number {
    return this.qiLength - this.view.q.in_use.get(this.qinvalPtr);
  }

  /** qi->free_cnt += n */
  addFree(n: number): void {
    this.view.q.in_use.set(this.qinvalPtr, this.view.q.in_use.get(this.qinvalPtr) - n);
  }

  get qinvalPtr(): number {
    return this.st(this.qinval);
  }

  get regsPtr(): number {
    return this.st(this.iqRegs);
  }

  descPtr(i: number): number {
    return element(QI_DESC, this.st(this.iq), i % this.qiLength);
  }

  /** qi->desc_status[i] (its word offset: a wait descriptor's status address). */
  statusPtr(i: number): number {
    return this.st(this.iqStatus) + (i % this.qiLength);
  }

  /** Descriptors between IQH and IQT. */
  iqPending(): boolean {
    const r = this.view.reg;
    return r.iqh.get(this.regsPtr) !== r.iqt.get(this.regsPtr);
  }

  iqRetire(): void {
    const r = this.view.reg;
    r.iqh.set(this.regsPtr, (r.iqh.get(this.regsPtr) + 1) % this.qiLength);
  }

  // ---- the page request queue ----

  private get pr(): number {
    return this.st(this.prqRegs);
  }

  private dscAt(i: number): number {
    return element(PAGE_REQ_DSC, this.st(this.prqRing), i % this.prqLength);
  }

  /**
   * The hardware: a page request written at PQT ('queued'; 'wake' when it raised the interrupt of a thread that
   * was not running), or refused ('refused': the queue is full, or PRO is still set — the hardware sets PRO).
   */
  prqWrite(d: PageReqDsc): 'queued' | 'wake' | 'refused' {
    const r = this.view.prq;
    const head = r.pqh.get(this.pr);
    const tail = r.pqt.get(this.pr);
    const prs = r.prs.get(this.pr);
    if ((prs & DMA_PRS_PRO) !== 0 || tail - head >= this.prqLength) {
      r.prs.set(this.pr, prs | DMA_PRS_PRO);
      return 'refused';
    }
    const at = this.dscAt(tail);
    const [q0, q0hi, q1, q1hi] = encodePageReq(d);
    const v = this.view.dsc;
    v.qw_0.set(at, q0);
    v.qw_0_hi.set(at, q0hi);
    v.qw_1.set(at, q1);
    v.qw_1_hi.set(at, q1hi);
    r.pqt.set(this.pr, tail + 1);
    r.prs.set(this.pr, prs | DMA_PRS_PPR);
    if (r.thread.get(this.pr) === 1) return 'queued';
    r.thread.set(this.pr, 1);
    return 'wake';
  }

  /** The PRQ's registers (its word offset; VTD_PRQ_REGS): the driver's footprints (prq.ts). */
  get prqRegsPtr(): number {
    return this.pr;
  }

  /** The PRQ's slot i (its word offset; a count, as PQH and PQT are): the driver's footprints. */
  prqDscPtr(i: number): number {
    return this.dscAt(i);
  }

  /** dmar_readq(DMAR_PQH_REG) and DMAR_PQT_REG. */
  get pqh(): number {
    return this.view.prq.pqh.get(this.pr);
  }

  get pqt(): number {
    return this.view.prq.pqt.get(this.pr);
  }

  /** dmar_writeq(iommu->reg + DMAR_PQH_REG, tail) */
  writePqh(v: number): void {
    this.view.prq.pqh.set(this.pr, v);
  }

  /** readl(iommu->reg + DMAR_PRS_REG) */
  get prs(): number {
    return this.view.prq.prs.get(this.pr);
  }

  /** writel(bits, iommu->reg + DMAR_PRS_REG): the status bits are write-1-to-clear. */
  clearPrs(bits: number): void {
    this.view.prq.prs.set(this.pr, this.prs & ~bits);
  }

  /** The request at slot i (a count, as PQH and PQT are) and its two first quadwords as pr_err prints them. */
  prqAt(i: number): { dsc: PageReqDsc; hex: string } {
    const at = this.dscAt(i);
    const v = this.view.dsc;
    const w = [v.qw_0.get(at), v.qw_0_hi.get(at), v.qw_1.get(at), v.qw_1_hi.get(at)] as const;
    return { dsc: decodePageReq(...w), hex: pageReqHex(...w) };
  }

  /**
   * The threaded interrupt returns: unless PPR was set again while it ran (a request written since it cleared
   * PPR: the interrupt is pending and the thread runs again), it stops (true).
   */
  prqThreadDone(): boolean {
    if ((this.prs & DMA_PRS_PPR) !== 0) return false;
    this.view.prq.thread.set(this.pr, 0);
    return true;
  }

  override get prqOverflowed(): boolean {
    return (this.prs & DMA_PRS_PRO) !== 0;
  }

  override get prqNonEmpty(): boolean {
    return this.pqh !== this.pqt;
  }

  /** The words prqPending reads: PQH, PQT and the requests' first two quadwords between them. */
  override prqPendingFootprint(): Footprint {
    const pr = this.pr;
    const fp = [read(this.view.prq.pqh.addr(pr)), read(this.view.prq.pqt.addr(pr))];
    const d = this.view.dsc;
    for (let i = this.pqh; i < this.pqt; i++) {
      const at = this.dscAt(i);
      fp.push(read(d.qw_0.addr(at)), read(d.qw_0_hi.addr(at)), read(d.qw_1.addr(at)), read(d.qw_1_hi.addr(at)));
    }
    return fp;
  }

  /** Requests of {dev, pasid} between PQH and PQT (intel_drain_pasid_prq's scan: rid and PASID). */
  override prqPending(dev: number, pasid: number): number {
    let n = 0;
    for (let i = this.pqh; i < this.pqt; i++) {
      const { dsc } = this.prqAt(i);
      if (this.deviceOfSid(dsc.rid) === dev && (dsc.pasid_present ? dsc.pasid : 0) === pasid) n++;
    }
    return n;
  }

  // ---- footprints (src/hw/footprint.ts) ----

  /** The PRQ's registers (PRS, PQH, PQT) besides the shared unit's ITE: what the actor's phase reads. */
  override phaseFootprint(fp: FootprintBuilder): void {
    super.phaseFootprint(fp);
    const r = this.view.prq;
    fp.read(r.prs.addr(this.pr)).read(r.pqh.addr(this.pr)).read(r.pqt.addr(this.pr));
  }

  /** prqWrite()'s: PQH, PQT, PRS and the thread flag, and the descriptor at PQT when there is room. */
  prqWriteFootprint(fp: FootprintBuilder): void {
    const r = this.view.prq;
    fp.read(r.pqh.addr(this.pr));
    for (const f of [r.pqt, r.prs, r.thread]) fp.write(f.addr(this.pr));
    const tail = r.pqt.get(this.pr);
    if (tail - r.pqh.get(this.pr) < this.prqLength) fp.writeRange(this.dscAt(tail), PAGE_REQ_DSC.words);
  }

  /** entry()'s: the directory entry, and the PASID-table entry it leads to. */
  override entryFootprint(fp: FootprintBuilder, dev: number, pasid: number): void {
    fp.read(this.pdePtr(dev, pasid));
    const p = this.pasidEntryPtr(dev, pasid);
    if (p !== 0) fp.readRange(this.view.entry.val.addr(p), PASID_ENTRY_WORDS);
  }

  /** readChunk(p, chunk)'s four words. */
  chunkFootprint(fp: FootprintBuilder, p: number, chunk: number): void {
    fp.readRange(this.view.entry.val.addr(p, chunk * 4), 4);
  }

  /** IQH and IQT (iqPending), and IQH written when `retire` (iqRetire). */
  iqFootprint(fp: FootprintBuilder, retire: boolean): void {
    const r = this.view.reg;
    fp.read(r.iqt.addr(this.regsPtr));
    if (retire) fp.write(r.iqh.addr(this.regsPtr));
    else fp.read(r.iqh.addr(this.regsPtr));
  }

  /** A status word the hardware writes (a wait descriptor's QI_IWD_STATUS_WRITE). */
  writeStatus(addr: number, data: number): void {
    Atomics.store(this.kernel.i32, addr, data);
  }
}

function statusArray(n: number) {
  return struct('desc_status', { s: array(n) });
}

/** Where a fetch is: the words read so far, the entry's version seq at the first read, the epoch it began in. */
interface Fetch {
  readonly words: number[];
  seq: number;
  ep: number;
}

/** A walk message's stages below PAGE_WALK: the next 128-bit read of the entry (chunks 2, 1, 0), and a restart. */
const ST_CHUNK2 = 1;
const ST_CHUNK0 = 3;
const ST_REFETCH = 4;

export class VtdHardware extends IommuHardware {
  /** The device-TLB invalidation waited on is the invalidation queue's (not the shared command queue's). */
  private atcFromIq = false;
  /** An invalidation time-out (ITE) stopped the queue: it fetches nothing until software clears ITE. */
  private iteHalted = false;
  /** Descriptors still to run of those pending when software cleared ITE: their wait descriptors are aborted. */
  private aborting = 0;
  /** Fetches in flight, by device and request id. */
  private readonly fetches = new Map<number, Fetch>();

  constructor(
    readonly vtd: VtdUnit,
    env: HardwareEnv,
  ) {
    super(vtd, env.devices, env.mms, env.oracle, env.stats, env.prqTask);
  }

  override reset(): void {
    super.reset();
    this.atcFromIq = false;
    this.iteHalted = false;
    this.aborting = 0;
    this.fetches.clear();
  }

  /**
   * The device-TLB invalidation of the invalidation queue timed out: the hardware sets ITE with the device's SID
   * (DMAR_IQER_REG's ITESID), moves IQH past the descriptor and stops fetching until software clears ITE
   * (qi_check_fault). The shared unit's command queue (an extension's) keeps the base's record.
   */
  override invalidationTimeout(): void {
    if (!this.atcWait || !this.atcFromIq || this.iteHalted) {
      super.invalidationTimeout();
      return;
    }
    const u = this.vtd;
    const d = decodeQi(u, u.descPtr(u.view.reg.iqh.get(u.regsPtr)));
    u.view.reg.itesid.set(u.regsPtr, d.type === 'devtlb' ? d.sid : 0);
    u.iqRetire();
    u.view.reg.fsts.set(u.regsPtr, u.view.reg.fsts.get(u.regsPtr) | DMA_FSTS_ITE);
    u.setInvalidationTimeout(true);
    this.iteHalted = true;
  }

  /** Software cleared ITE (its doorbell): the queue goes on from IQH, aborting the wait descriptors it cleared it for. */
  private iteCleared(self: number, out: HwOut, step: number): void {
    const u = this.vtd;
    this.iteHalted = false;
    this.atcWait = false;
    this.atcFromIq = false;
    u.setInvalidationTimeout(false);
    const r = u.view.reg;
    this.aborting = (r.ite_abort.get(u.regsPtr) - r.iqh.get(u.regsPtr) + u.qiLength) % u.qiLength;
    this.busy = true;
    this.runCommand(self, out, step);
  }

  override handle(self: number, msg: HwMessage, out: HwOut, step: number): void {
    this.step = step;
    if (this.iteHalted) {
      // A completion after the time-out is dropped; a doorbell once ITE is cleared restarts the queue.
      if (msg.type === 'atc.done' && this.atcFromIq) return;
      if (msg.type === 'cmdq.doorbell' && (this.vtd.view.reg.fsts.get(this.vtd.regsPtr) & DMA_FSTS_ITE) === 0) {
        this.iteCleared(self, out, step);
        return;
      }
      if (msg.type === 'cmdq.doorbell' || msg.type === 'cmdq.next') return;
    }
    if (msg.type === 'atc.done' && this.atcFromIq) {
      if (!this.atcWait) return;
      this.atcWait = false;
      this.atcFromIq = false;
      this.vtd.setInvalidationTimeout(false);
      this.vtd.iqRetire();
      this.next(self, out);
      return;
    }
    super.handle(self, msg, out, step);
  }

  // ---- translation: the IOTLB, the PASID cache, then the directory and the entry ----

  protected override translate(self: number, dev: number, pasid: number, vpn: number, write: boolean, id: number, out: HwOut): void {
    const u = this.vtd;
    if (this.iotlbAnswer(dev, pasid, vpn, write, dev, id, out)) {
      this.stats.add('iotlb_hits');
      return;
    }
    this.stats.add('iotlb_misses');
    const cached = u.pcLookup(dev, pasid);
    if (cached) {
      if (!u.spec.entry.present(cached)) out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
      else this.startPageWalk(self, dev, pasid, vpn, write, id, this.walkKey(cached), u.epoch, out);
      return;
    }
    this.startFetch(self, dev, pasid, vpn, write, id, out);
  }

  private key(dev: number, id: number): number {
    return dev * 0x100000 + (id & 0xfffff);
  }

  /** Read the directory entry, then the entry's top chunk (chunk 3); the rest in later deliveries. */
  private startFetch(self: number, dev: number, pasid: number, vpn: number, write: boolean, id: number, out: HwOut): void {
    const u = this.vtd;
    out.busy(VTD_COSTS.pasidDirRead);
    const p = u.pasidEntryPtr(dev, pasid);
    if (p === 0) {
      // No PASID table: the directory entry is not present (a PASID the driver never set up).
      this.fetches.delete(this.key(dev, id));
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
      return;
    }
    out.busy(VTD_COSTS.pasidEntryRead);
    const f: Fetch = { words: new Array<number>(PASID_ENTRY_WORDS).fill(0), seq: u.view.version.seq.get(u.versionPtr(dev, pasid)), ep: u.epoch };
    u.readChunk(p, 3, f.words);
    this.fetches.set(this.key(dev, id), f);
    out.send(self, { type: 'walk', dev, pasid, vpn, w: write ? 1 : 0, id, st: ST_CHUNK2, a: 0, ep: f.ep });
  }

  protected override walk(self: number, m: Extract<HwMessage, { type: 'walk' }>, out: HwOut): void {
    if (m.st >= PAGE_WALK) {
      super.walk(self, m, out);
      return;
    }
    const write = m.w === 1;
    const f = this.fetches.get(this.key(m.dev, m.id));
    if (m.st === ST_REFETCH || !f) {
      this.startFetch(self, m.dev, m.pasid, m.vpn, write, m.id, out);
      return;
    }
    const u = this.vtd;
    const p = u.pasidEntryPtr(m.dev, m.pasid);
    out.busy(VTD_COSTS.pasidEntryRead);
    u.readChunk(p, 3 - m.st, f.words);
    if (m.st < ST_CHUNK0) {
      out.send(self, { ...m, st: m.st + 1 });
      return;
    }
    this.fetches.delete(this.key(m.dev, m.id));
    if (u.epoch !== f.ep && u.view.version.seq.get(u.versionPtr(m.dev, m.pasid)) !== f.seq) {
      // The entry was rewritten and an invalidation overtook the fetch: what it read may be from before and after
      // the invalidation (only then: invalidations of other entries must not starve a fetch of this one).
      out.send(self, { ...m, st: ST_REFETCH });
      return;
    }
    const words = f.words;
    if (!u.spec.entry.present(words)) {
      out.send(this.dev(m.dev).actor, { type: 'ats.fault', id: m.id, why: WHY_PASID });
      return;
    }
    checkAssembled(u, this.step, this.dev(m.dev), m.pasid, words, entryHash(words), f.seq);
    u.pcFill(m.dev, m.pasid, words, f.ep);
    this.startPageWalk(self, m.dev, m.pasid, m.vpn, write, m.id, this.walkKey(words), f.ep, out);
  }

  // ---- page requests ----

  /**
   * A page request: written at PQT, the interrupt raised if prq_event_thread is not running; or refused (the
   * queue full, or PRO still set) — then the hardware answers the group's last request itself with Success, and
   * the device retries its translation (which faults again until the page is there, and asks again).
   */
  protected override pageRequest(m: Extract<HwMessage, { type: 'pr' }>, out: HwOut, step: number): void {
    const u = this.vtd;
    const dev = this.dev(m.dev);
    const last = m.last === 1;
    if (last) u.groupRequested(m.dev, m.grp, m.pasid);
    const r = u.prqWrite({ rid: pciSid(dev.name), pasid_present: true, pasid: m.pasid, rd_req: true, wr_req: m.w === 1, lpig: last, prg_index: m.grp, addr: m.vpn });
    if (r === 'refused') {
      if (!last) return;
      out.busy(VTD_COSTS.pgrpResp);
      this.oracle.pageGroupAnswered(step, dev.name, m.pasid, m.grp, u.groupAnswered(m.dev, m.grp), `${u.name}'s automatic response (DMA_PRS_PRO set: PRQ overflow)`);
      out.send(dev.actor, { type: 'prs', grp: m.grp, code: RESP_SUCCESS });
      return;
    }
    out.busy(VTD_COSTS.pageRequest);
    if (r === 'wake') out.spawn(this.prqTask, null, `${u.spec.prqThread}/${u.name}`);
  }

  // ---- the invalidation queue ----

  protected override runCommand(self: number, out: HwOut, step: number): void {
    const u = this.vtd;
    if (!u.iqPending()) {
      // The shared command queue: what an extension's flush (src/workloads/extension.ts) submits.
      super.runCommand(self, out, step);
      return;
    }
    this.stats.add('commands');
    const head = u.view.reg.iqh.get(u.regsPtr);
    const d = decodeQi(u, u.descPtr(head));
    const aborted = this.aborting > 0;
    if (aborted) this.aborting--;
    switch (d.type) {
      case 'pc':
        out.busy(VTD_COSTS.pcInv);
        // PASID-selective within the domain: the cached entries of the PASID that carry the DID.
        for (const dev of u.devices) {
          const cached = u.pcLookup(dev.index, d.pasid);
          if (cached && ((cached[2] ?? 0) & PASID_DID_MASK) === d.did) u.pcInvalidate(dev.index, d.pasid);
        }
        break;
      case 'piotlb':
        out.busy(VTD_COSTS.piotlbInv);
        // The model's IOTLB is tagged by device, not by DID: the PASID's entries of every device behind the unit go.
        // IH clear (the model's SVA paths never set it): the paging-structure caches of the range go too.
        for (const dev of u.devices) u.iotlbInvalidate(dev.index, d.pasid, d.start, d.end, false);
        break;
      case 'devtlb': {
        out.busy(VTD_COSTS.devtlbInv);
        const dev = u.deviceOfSid(d.sid);
        if (dev >= 0) {
          this.atcWait = true;
          this.atcFromIq = true;
          out.send(this.dev(dev).actor, { type: 'atc.inv', pasid: d.pasid, s: d.start, e: d.end });
          return;
        }
        break;
      }
      case 'pgrp': {
        out.busy(VTD_COSTS.pgrpResp);
        const dev = u.deviceOfSid(d.sid);
        if (dev >= 0) {
          const info = this.dev(dev);
          this.oracle.pageGroupAnswered(step, info.name, d.pasid, d.grp, u.groupAnswered(dev, d.grp), `QI_PGRP_RESP in ${u.name}'s QI`);
          this.stats.add('page_responses');
          out.send(info.actor, { type: 'prs', grp: d.grp, code: d.code });
        }
        break;
      }
      case 'wait':
        out.busy(VTD_COSTS.invWait);
        // Fence, drain: the model's PRQ takes each page request when it arrives, so every request the unit
        // received before this descriptor is in the PRQ already (QI_IWD_PRQ_DRAIN has nothing to wait for).
        // A wait descriptor pending when software cleared an ITE is aborted: no status write.
        if (d.statusWrite && !aborted) u.writeStatus(d.addr, d.data);
        break;
      case 'unknown':
        break;
    }
    u.iqRetire();
    this.next(self, out);
  }

  // ---- footprints (src/hw/footprint.ts) ----

  protected override eventFootprint(fp: FootprintBuilder, msg: HwMessage): void {
    // An ITE halted the queue: a doorbell may restart it (software cleared ITE) — not followed.
    if (this.iteHalted) unfollowed();
    if (msg.type === 'atc.done' && this.atcFromIq) {
      if (!this.atcWait) return;
      fp.write(this.vtd.iteWord);
      this.vtd.iqFootprint(fp, true);
      this.nextFootprint(fp, 0);
      return;
    }
    super.eventFootprint(fp, msg);
  }

  protected override prqFootprint(fp: FootprintBuilder): void {
    this.vtd.prqWriteFootprint(fp);
  }

  protected override translateFootprint(fp: FootprintBuilder, dev: number, pasid: number, vpn: number, write: boolean): void {
    const u = this.vtd;
    // The epoch a walk from the cached entry starts in.
    fp.read(u.epochWord);
    if (this.cachedTranslationFootprint(fp, dev, pasid, vpn, write)) return;
    this.startFetchFootprint(fp, dev, pasid);
  }

  /** startFetch()'s: the directory entry, the version record's seq, the epoch, chunk 3. */
  private startFetchFootprint(fp: FootprintBuilder, dev: number, pasid: number): void {
    const u = this.vtd;
    fp.read(u.pdePtr(dev, pasid));
    const p = u.pasidEntryPtr(dev, pasid);
    if (p === 0) return;
    fp.read(u.view.version.seq.addr(u.versionPtr(dev, pasid)));
    fp.read(u.epochWord);
    u.chunkFootprint(fp, p, 3);
  }

  protected override contextWalkFootprint(fp: FootprintBuilder, m: Extract<HwMessage, { type: 'walk' }>): void {
    const f = this.fetches.get(this.key(m.dev, m.id));
    if (m.st === ST_REFETCH || !f) {
      this.startFetchFootprint(fp, m.dev, m.pasid);
      return;
    }
    const u = this.vtd;
    fp.read(u.pdePtr(m.dev, m.pasid));
    const p = u.pasidEntryPtr(m.dev, m.pasid);
    if (p === 0) unfollowed();
    u.chunkFootprint(fp, p, 3 - m.st);
    if (m.st < ST_CHUNK0) return;
    fp.read(u.epochWord);
    fp.read(u.view.version.seq.addr(u.versionPtr(m.dev, m.pasid)));
    if (u.epoch !== f.ep && u.view.version.seq.get(u.versionPtr(m.dev, m.pasid)) !== f.seq) return;
    const words = [...f.words];
    u.readChunk(p, 3 - m.st, words);
    if (!u.spec.entry.present(words)) return;
    // checkAssembled reads the entry's version record.
    fp.readRange(u.versionPtr(m.dev, m.pasid), ENTRY_VERSION.words);
    this.fetchedFootprint(fp, m.dev, m.pasid, m.vpn, words, f.ep);
  }

  protected override commandFootprint(fp: FootprintBuilder): void {
    const u = this.vtd;
    u.iqFootprint(fp, false);
    if (!u.iqPending()) {
      super.commandFootprint(fp);
      return;
    }
    this.statFootprint(fp, 'commands');
    const at = u.descPtr(u.view.reg.iqh.get(u.regsPtr));
    fp.readRange(at, QI_DESC.words);
    const d = decodeQi(u, at);
    switch (d.type) {
      case 'pc':
        for (const dev of u.devices) {
          u.pcLookupFootprint(fp, dev.index, d.pasid);
          const cached = u.pcLookup(dev.index, d.pasid);
          if (cached && ((cached[2] ?? 0) & PASID_DID_MASK) === d.did) u.pcInvalidateFootprint(fp, dev.index, d.pasid);
        }
        break;
      case 'piotlb':
        for (const dev of u.devices) u.iotlbInvalidateFootprint(fp, dev.index, d.pasid, d.start, d.end, false);
        break;
      case 'devtlb':
        // A device behind the unit: the ATS invalidation goes out and the queue waits (a message, no memory).
        if (u.deviceOfSid(d.sid) >= 0) return;
        break;
      case 'pgrp': {
        const dev = u.deviceOfSid(d.sid);
        if (dev >= 0) {
          u.groupFootprint(fp, dev, d.grp);
          this.statFootprint(fp, 'page_responses');
        }
        break;
      }
      case 'wait':
        if (d.statusWrite && this.aborting === 0) {
          if (!Number.isInteger(d.addr) || d.addr < 0 || d.addr >= u.kernel.i32.length) unfollowed();
          fp.write(d.addr);
        }
        break;
      case 'unknown':
        break;
    }
    u.iqFootprint(fp, true);
    this.nextFootprint(fp, 0);
  }

  protected override nextFootprint(fp: FootprintBuilder, retired: number): void {
    this.vtd.iqFootprint(fp, false);
    this.vtd.cmdqPeekFootprint(fp, retired);
  }

  protected override next(self: number, out: HwOut): void {
    if (this.vtd.iqPending() || this.vtd.cmdqPeek()) out.send(self, { type: 'cmdq.next' });
    else this.busy = false;
  }
}

export { QI_DONE, QI_IN_USE };
