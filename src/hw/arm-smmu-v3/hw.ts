// The Arm SMMUv3 itself, behind the driver of arm-smmu-v3.c: its memory (the stream table, each master's
// context-descriptor table — linear, or a level-1 table of descriptors pointing at leaf tables the driver
// allocates on demand —, the command queue and the event queue) and what the SMMU does with it. A translation
// that misses the configuration cache reads the STE, the L1 descriptor and then the CD a qword per access, so
// the driver's entry writer (arm_smmu_write_entry: the unused qwords, sync, the critical qword, sync) decides
// what the SMMU can see between two of its fetches. Commands are decoded from their entries and each costs the
// SMMU its time (costs.ts); a configuration error or an unrecovered translation fault becomes an event record
// that wakes the driver's arm_smmu_evtq_thread. A master whose faults can stall (master->stall_enabled: the
// model's device that resolves its faults, as quirk_huawei_pcie_sva marks HiSilicon's integrated PCI devices
// "dma-can-stall") has its faulting transaction stalled instead: an F_TRANSLATION record with STALL and a tag
// (STAG), the transaction held until a CMD_RESUME with that tag retries it or aborts it — the model's device
// sees its translation answered late, never a fault it would send a page request for. The IOTLB (tagged by
// ASID), the page walk and the PRI queue (PRIQ: what a device's PCIe page requests would reach, which mainline
// denies) are the shared unit's.
import { type DeviceInfo, RESP_FAILURE, RESP_INVALID, RESP_SUCCESS } from '../../core/types.js';
import type { Kernel } from '../../kernel/kernel.js';
import { element, struct, type ViewOf, word } from '../../kernel/struct.js';
import type { FlavourSpec } from '../flavour.js';
import { IommuUnit, type UnitOptions } from '../iommu.js';
import type { HwMessage } from '../messages.js';
import { WHY_PASID, WHY_PTE } from '../messages.js';
import { type FootprintBuilder, unfollowed } from '../footprint.js';
import type { HwOut } from '../out.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import { IommuHardware } from '../unit.js';
import { PR_GROUPS } from '../iommu.js';
import type { HardwareEnv } from '../vendor.js';
import {
  ARM_SMMU_CDTAB_L1,
  ARM_SMMU_STE,
  CD_WORDS,
  CMDQ_ENT,
  CMDQ_OP_ATC_INV,
  CMDQ_OP_CFGI_CD,
  CMDQ_OP_CFGI_STE,
  CMDQ_OP_CMD_SYNC,
  CMDQ_OP_PRI_RESP,
  CMDQ_OP_RESUME,
  CMDQ_OP_TLBI_NH_ASID,
  CMDQ_OP_TLBI_NH_VA,
  type CmdqEnt,
  CTXDESC_CD_0_ASID_SHIFT,
  CTXDESC_CD_0_TCR_EPD0,
  CTXDESC_CD_0_V,
  CTXDESC_L1_DESC_V,
  CTXDESC_L2_ENTRIES,
  CTXDESC_SPLIT,
  EVT_ID_BAD_CD_CONFIG,
  EVT_ID_BAD_SUBSTREAMID_CONFIG,
  EVT_ID_TRANSLATION_FAULT,
  CMDQ_RESUME_0_RESP_RETRY,
  EVTQ_1_RnW,
  EVTQ_1_STAG_MASK,
  EVTQ_1_STALL,
  EVTQ_ENT,
  PRI_RESP_FAIL,
  PRI_RESP_SUCC,
  STE_WORDS,
  STRTAB_STE_0_CFG_ABORT,
  STRTAB_STE_0_CFG_S1_TRANS,
  STRTAB_STE_0_CFG_SHIFT,
  STRTAB_STE_0_S1CDMAX_SHIFT,
  STRTAB_STE_0_S1FMT_64K_L2,
  STRTAB_STE_0_S1FMT_LINEAR,
  STRTAB_STE_0_S1FMT_SHIFT,
  STRTAB_STE_0_V,
  STRTAB_STE_1_EATS_TRANS,
  STRTAB_STE_1_S1DSS_SSID0,
  STRTAB_STE_1_S1DSS_TERMINATE,
  decodeCmd,
  steCfg,
  steS1cdmax,
  steS1ctxptr,
  steS1dss,
  steS1fmt,
} from './arm-smmu-v3.h.js';
import { ARM_SMMU_V3_COSTS as COST } from './costs.js';

/** The queues' registers: CMDQ_PROD / CMDQ_CONS, EVTQ_PROD / EVTQ_CONS, and the driver's bookkeeping by them. */
const ARM_SMMU_QUEUES = struct('arm_smmu_queues', {
  cmdq_prod: word,
  cmdq_cons: word,
  sync_seq: word, // the driver's last CMD_SYNC sequence (the model's MSI payload)
  sync_done: word, // the last CMD_SYNC the SMMU completed
  evtq_prod: word,
  evtq_cons: word,
  evtq_active: word, // arm_smmu_evtq_thread is running
  evtq_overflow: word, // EVTQ_PROD.OVFLG: an event found the queue full
});

/** Event queue entries (the model's EVTQ is small: a burst beyond it overflows, as the kernel then reports). */
export const EVTQ_DEPTH = 32;

/** A master's context-descriptor table, as arm_smmu_alloc_cd_tables sized it (static per master in the model). */
export interface CdTableCfg {
  readonly s1fmt: number;
  /** S1CDMax: the master's SSID bits. */
  readonly s1cdmax: number;
  /** Level-1 descriptors (two-level), or CDs (linear). */
  readonly numL1: number;
  /** The linear table, or the L1 table: an offset in static memory. */
  readonly cdtab: number;
}

/** An event record, decoded (what arm_smmu_evtq_thread hands to arm_smmu_handle_evt). */
export interface ArmSmmuEvent {
  readonly id: number;
  readonly sid: number;
  readonly ssv: boolean;
  readonly ssid: number;
  readonly read: boolean;
  /** EVTQ_1_STALL: the transaction waits for a CMD_RESUME with its tag (EVTQ_1_STAG). */
  readonly stall: boolean;
  readonly stag: number;
  /** The faulting page (the model's iova). */
  readonly iova: number;
  readonly raw: readonly number[];
}

export class ArmSmmuUnit extends IommuUnit {
  private readonly strtab = new Map<number, number>();
  private readonly cdCfg = new Map<number, CdTableCfg>();
  /** cd_table.l2.l2ptrs: the driver's pointer to each allocated leaf, per master (0: none yet). */
  private readonly l2ptrs = new Map<number, number>();
  /** cd_table.used_ssids, per master: the driver's count of valid CDs other than SSID 0's. */
  private readonly usedSsids = new Map<number, number>();
  /** What the driver printed about this SMMU (dev_err / dev_info), in order: its arm_smmu_evtq_thread's reports. */
  readonly log: string[] = [];
  private readonly regsOff: number;
  private readonly cmdqOff: number;
  private readonly evtqOff: number;
  /** A CD of zeroes: what a lookup of an SSID with no CD reads (its table or leaf is not there). */
  private readonly noCd: number;
  private readonly ste: ViewOf<typeof ARM_SMMU_STE>;
  private readonly l1: ViewOf<typeof ARM_SMMU_CDTAB_L1>;
  private readonly qr: ViewOf<typeof ARM_SMMU_QUEUES>;
  private readonly ce: ViewOf<typeof CMDQ_ENT>;
  private readonly ev: ViewOf<typeof EVTQ_ENT>;

  constructor(k: Kernel, index: number, spec: FlavourSpec, devices: readonly DeviceInfo[], opts: UnitOptions, actor: number) {
    // The shared unit's per-command cost is replaced by this SMMU's cost table (costs.ts).
    super(k, index, spec, devices, { ...opts, cmdCostNs: 0 }, actor);
    this.ste = k.view(ARM_SMMU_STE);
    this.l1 = k.view(ARM_SMMU_CDTAB_L1);
    this.qr = k.view(ARM_SMMU_QUEUES);
    this.ce = k.view(CMDQ_ENT);
    this.ev = k.view(EVTQ_ENT);
    this.regsOff = k.statics.alloc(ARM_SMMU_QUEUES.words, `${this.name} queue registers`);
    this.cmdqOff = k.statics.alloc(opts.queueDepth * CMDQ_ENT.words, `${this.name} cmdq`);
    this.evtqOff = k.statics.alloc(EVTQ_DEPTH * EVTQ_ENT.words, `${this.name} evtq`);
    this.noCd = k.statics.alloc(CD_WORDS, `${this.name} no CD`);
    for (const d of devices) {
      this.strtab.set(d.index, k.statics.alloc(STE_WORDS, `${d.name} STE`));
      this.usedSsids.set(d.index, k.statics.alloc(1, `${d.name} cd_table.used_ssids`));
      const max = 1 << d.caps.pasidBits;
      // arm_smmu_alloc_cd_tables: linear while the contexts fit a leaf (or without ARM_SMMU_FEAT_2_LVL_CDTAB). A
      // linear table is the master's coherent memory itself (poolOff), known once the run's memory is.
      if (max <= CTXDESC_L2_ENTRIES) {
        this.cdCfg.set(d.index, { s1fmt: STRTAB_STE_0_S1FMT_LINEAR, s1cdmax: d.caps.pasidBits, numL1: max, cdtab: -1 });
      } else {
        const numL1 = max >> CTXDESC_SPLIT;
        const cdtab = k.statics.alloc(numL1 * ARM_SMMU_CDTAB_L1.words, `${d.name} L1 CD table`);
        this.cdCfg.set(d.index, { s1fmt: STRTAB_STE_0_S1FMT_64K_L2, s1cdmax: d.caps.pasidBits, numL1, cdtab });
        this.l2ptrs.set(d.index, k.statics.alloc(numL1, `${d.name} cd_table.l2.l2ptrs`));
      }
    }
  }

  private abs(off: number): number {
    return this.kernel.mem.statics + off;
  }

  /** The i-th CD slot of the master's coherent memory (the shared unit's per-device table), as a static offset. */
  private poolOff(dev: number, i: number): number {
    return super.entryPtr(dev, i) - this.kernel.mem.statics;
  }

  // ---- the stream table ----

  cdTableCfg(dev: number): CdTableCfg {
    const c = this.cdCfg.get(dev);
    if (!c) throw new Error(`${this.name}: no master for device ${dev}`);
    if (c.cdtab >= 0) return c;
    const placed = { ...c, cdtab: this.poolOff(dev, 0) };
    this.cdCfg.set(dev, placed);
    return placed;
  }

  /** The master's STE (its word offset): the driver writes it through the entry writer. */
  steAddr(dev: number): number {
    const s = this.strtab.get(dev);
    if (s === undefined) throw new Error(`${this.name}: no STE for device ${dev}`);
    return this.abs(s);
  }

  /**
   * The STE the driver wrote when it probed the master (arm_smmu_make_cdtable_ste, S1DSS=SSID0): an STE still zero
   * in the run's memory reads as this one (the model's memory starts zeroed and its boot does not write STEs).
   */
  probeSte(dev: number): number[] {
    const c = this.cdTableCfg(dev);
    const w = new Array<number>(STE_WORDS).fill(0);
    w[0] = STRTAB_STE_0_V | (STRTAB_STE_0_CFG_S1_TRANS << STRTAB_STE_0_CFG_SHIFT) | (c.s1fmt << STRTAB_STE_0_S1FMT_SHIFT);
    w[1] = (c.s1cdmax << STRTAB_STE_0_S1CDMAX_SHIFT) | c.cdtab;
    w[2] = STRTAB_STE_1_S1DSS_SSID0 | STRTAB_STE_1_EATS_TRANS;
    return w;
  }

  /** The STE's words as the SMMU fetches it: one 64-byte line, one access. */
  steWords(dev: number): number[] {
    const at = this.steAddr(dev);
    if (this.ste.q0lo.get(at) === 0) return this.probeSte(dev);
    return Array.from({ length: STE_WORDS }, (_, i) => this.kernel.i32[at + i] as number);
  }

  override deviceEntryPtr(dev: number): number {
    return this.steAddr(dev);
  }

  override deviceEntry(dev: number): number {
    return this.steWords(dev)[0] as number;
  }

  /** The STE aborts {dev, ssid}: invalid, Config=abort, or no SSID under S1DSS=terminate. */
  override blocks(dev: number, pasid: number): boolean {
    // On every translation: two words of the STE, no copy of it (an STE still zero is the probe's, S1DSS=SSID0).
    const at = this.steAddr(dev);
    const q0lo = this.ste.q0lo.get(at);
    if (q0lo === 0) return false;
    if ((q0lo & STRTAB_STE_0_V) === 0 || steCfg(q0lo) === STRTAB_STE_0_CFG_ABORT) return true;
    return pasid === 0 && steS1dss(this.ste.q1lo.get(at)) === STRTAB_STE_1_S1DSS_TERMINATE;
  }

  // ---- context-descriptor tables ----

  /** The L1 descriptor of {dev, ssid} (its word offset), in a two-level table. */
  l1DescAddr(dev: number, ssid: number): number {
    return this.abs(this.cdTableCfg(dev).cdtab) + (ssid >> CTXDESC_SPLIT) * ARM_SMMU_CDTAB_L1.words;
  }

  /** cd_table.l2.l2ptrs[idx] (its word offset): the driver's record of the leaf it allocated. */
  l2ptrAddr(dev: number, ssid: number): number {
    const p = this.l2ptrs.get(dev);
    if (p === undefined) throw new Error(`${this.name}: device ${dev}'s CD table is linear`);
    return this.abs(p) + (ssid >> CTXDESC_SPLIT);
  }

  /** cd_table.used_ssids (its word offset). */
  usedSsidsAddr(dev: number): number {
    return this.abs(this.usedSsids.get(dev) as number);
  }

  /** The memory dma_alloc_coherent gives the leaf of L1 index idx (static offset: the master's coherent pool). */
  leafMemory(dev: number, idx: number): number {
    return this.poolOff(dev, idx * CTXDESC_L2_ENTRIES);
  }

  /** The CD of {dev, ssid} the L1 descriptor in memory leads to (word offset), or undefined (no valid leaf). */
  private cdVia(stew: readonly number[], ssid: number): number | undefined {
    const q0hi = stew[1] as number;
    const cdtab = this.abs(steS1ctxptr(q0hi));
    if (ssid >= 1 << steS1cdmax(q0hi)) return undefined;
    if (steS1fmt(stew[0] as number) !== STRTAB_STE_0_S1FMT_64K_L2) return cdtab + ssid * CD_WORDS;
    const l1 = cdtab + (ssid >> CTXDESC_SPLIT) * ARM_SMMU_CDTAB_L1.words;
    if ((this.l1.lo.get(l1) & CTXDESC_L1_DESC_V) === 0) return undefined;
    return this.abs(this.l1.hi.get(l1)) + (ssid & (CTXDESC_L2_ENTRIES - 1)) * CD_WORDS;
  }

  /** {dev, ssid}'s CD as memory holds it now (a CD of zeroes when there is none): the oracle's and tests' read. */
  override entryPtr(dev: number, pasid: number): number {
    return this.cdVia(this.steWords(dev), pasid) ?? this.abs(this.noCd);
  }

  /** The L1 descriptor fetch: the leaf's CD of ssid, or undefined when the descriptor is invalid. */
  fetchL1(at: number, ssid: number): number | undefined {
    if ((this.l1.lo.get(at) & CTXDESC_L1_DESC_V) === 0) return undefined;
    return this.abs(this.l1.hi.get(at)) + (ssid & (CTXDESC_L2_ENTRIES - 1)) * CD_WORDS;
  }

  // ---- the command queue ----

  private get smmuRegs(): number {
    return this.abs(this.regsOff);
  }

  /** A queue register's word (its absolute offset): the driver's footprints (arm-smmu-v3.ts). */
  queueReg(field: keyof typeof ARM_SMMU_QUEUES.offset): number {
    return this.smmuRegs + ARM_SMMU_QUEUES.offset[field];
  }

  /** The first word of command slot `prod` (CMDQ_ENT.words from there): the driver's footprints. */
  cmdqSlot(prod: number): number {
    return element(CMDQ_ENT, this.abs(this.cmdqOff), prod % this.opts.queueDepth);
  }

  /** The first word of event slot `cons` (EVTQ_ENT.words from there): the driver's footprints. */
  evtqSlot(cons: number): number {
    return element(EVTQ_ENT, this.abs(this.evtqOff), cons % EVTQ_DEPTH);
  }

  /** Free entries (the driver waits for room for its commands and their CMD_SYNC). */
  cmdqSpace(): number {
    return this.opts.queueDepth - (this.qr.cmdq_prod.get(this.smmuRegs) - this.qr.cmdq_cons.get(this.smmuRegs));
  }

  /** The driver: write the commands and a CMD_SYNC (when `sync`) at PROD; the CMD_SYNC's sequence, or 0. */
  cmdqInsert(cmds: readonly CmdqEnt[], sync: boolean): number {
    const r = this.smmuRegs;
    const seq = sync ? this.qr.sync_seq.get(r) + 1 : 0;
    if (sync) this.qr.sync_seq.set(r, seq);
    let prod = this.qr.cmdq_prod.get(r);
    const all: CmdqEnt[] = sync ? [...cmds, { opcode: CMDQ_OP_CMD_SYNC, seq }] : [...cmds];
    for (const c of all) {
      const at = element(CMDQ_ENT, this.abs(this.cmdqOff), prod % this.opts.queueDepth);
      // The driver's encoding, by name (a patch may replace it): what the hardware reads back is what it wrote.
      const [a, b, cc, d] = this.kernel.fn.arm_smmu_cmdq_build_cmd(c);
      this.ce.q0lo.set(at, a);
      this.ce.q0hi.set(at, b);
      this.ce.q1lo.set(at, cc);
      this.ce.q1hi.set(at, d);
      prod++;
    }
    this.qr.cmdq_prod.set(r, prod);
    return seq;
  }

  syncDone(seq: number): boolean {
    return this.qr.sync_done.get(this.smmuRegs) >= seq;
  }

  /** The SMMU: the command at CONS, decoded (undefined: the queue is empty). */
  cmdqHead(): CmdqEnt | undefined {
    const r = this.smmuRegs;
    const cons = this.qr.cmdq_cons.get(r);
    if (cons === this.qr.cmdq_prod.get(r)) return undefined;
    const at = element(CMDQ_ENT, this.abs(this.cmdqOff), cons % this.opts.queueDepth);
    return decodeCmd(this.ce.q0lo.get(at), this.ce.q0hi.get(at), this.ce.q1lo.get(at), this.ce.q1hi.get(at));
  }

  cmdqConsume(): void {
    this.qr.cmdq_cons.set(this.smmuRegs, this.qr.cmdq_cons.get(this.smmuRegs) + 1);
  }

  completeSync(seq: number): void {
    this.qr.sync_done.set(this.smmuRegs, seq);
  }

  // ---- the event queue ----

  /** The SMMU records an event: queued (and whether the thread must be woken), or lost to an overflow. */
  evtqPush(words: readonly number[]): { queued: boolean; wake: boolean } {
    const r = this.smmuRegs;
    const prod = this.qr.evtq_prod.get(r);
    if (prod - this.qr.evtq_cons.get(r) >= EVTQ_DEPTH) {
      this.qr.evtq_overflow.set(r, 1);
      return { queued: false, wake: false };
    }
    const at = element(EVTQ_ENT, this.abs(this.evtqOff), prod % EVTQ_DEPTH);
    words.forEach((v, i) => {
      this.kernel.i32[at + i] = v;
    });
    this.qr.evtq_prod.set(r, prod + 1);
    const wake = this.qr.evtq_active.get(r) === 0;
    if (wake) this.qr.evtq_active.set(r, 1);
    return { queued: true, wake };
  }

  /** arm_smmu_evtq_thread's queue_remove_raw: the record at CONS, removed; undefined when empty (the thread stops). */
  evtqRemove(): ArmSmmuEvent | undefined {
    const r = this.smmuRegs;
    const cons = this.qr.evtq_cons.get(r);
    if (cons === this.qr.evtq_prod.get(r)) {
      this.qr.evtq_active.set(r, 0);
      return undefined;
    }
    const at = element(EVTQ_ENT, this.abs(this.evtqOff), cons % EVTQ_DEPTH);
    const raw = Array.from({ length: EVTQ_ENT.words }, (_, i) => this.kernel.i32[at + i] as number);
    this.qr.evtq_cons.set(r, cons + 1);
    const q0lo = this.ev.q0lo.get(at);
    return {
      id: q0lo & 0xff,
      ssv: (q0lo & (1 << 11)) !== 0,
      ssid: q0lo >>> 12,
      sid: this.ev.q0hi.get(at),
      read: (this.ev.q1hi.get(at) & EVTQ_1_RnW) !== 0,
      stall: (this.ev.q1lo.get(at) & EVTQ_1_STALL) !== 0,
      stag: this.ev.q1lo.get(at) & EVTQ_1_STAG_MASK,
      iova: this.ev.q2lo.get(at),
      raw,
    };
  }

  /**
   * Faults of {dev, pasid} not yet handed to the core: stall records in the event queue and page requests in the
   * PRIQ (the drain waits until there are none).
   */
  override prqPendingFootprint(): Footprint {
    const r = this.smmuRegs;
    const fp = [...super.prqPendingFootprint(), read(this.queueReg('evtq_cons')), read(this.queueReg('evtq_prod'))];
    for (let i = this.qr.evtq_cons.get(r); i < this.qr.evtq_prod.get(r); i++) {
      const at = this.evtqSlot(i);
      for (let w = 0; w < EVTQ_ENT.words; w++) fp.push(read(at + w));
    }
    return fp;
  }

  override prqPending(dev: number, pasid: number): number {
    const r = this.smmuRegs;
    let n = super.prqPending(dev, pasid);
    for (let i = this.qr.evtq_cons.get(r); i < this.qr.evtq_prod.get(r); i++) {
      const at = element(EVTQ_ENT, this.abs(this.evtqOff), i % EVTQ_DEPTH);
      const q0lo = this.ev.q0lo.get(at);
      if ((this.ev.q1lo.get(at) & EVTQ_1_STALL) !== 0 && this.ev.q0hi.get(at) === dev && q0lo >>> 12 === pasid) n++;
    }
    return n;
  }

  /** Faults waiting for the driver's threads (the unit's phase): events in the EVTQ (stalls among them), requests in the PRIQ. */
  override get prqNonEmpty(): boolean {
    return super.prqNonEmpty || this.qr.evtq_prod.get(this.smmuRegs) !== this.qr.evtq_cons.get(this.smmuRegs);
  }

  /** A queue of faults overflowed (the unit's phase): the EVTQ's OVFLG not yet seen by its thread, or the PRIQ's. */
  override get prqOverflowed(): boolean {
    return this.priqOverflowed || this.qr.evtq_overflow.get(this.smmuRegs) === 1;
  }

  /** The PRIQ's overflow alone. */
  get priqOverflowed(): boolean {
    return super.prqOverflowed;
  }

  // ---- footprints (src/hw/footprint.ts) ----

  /** The event queue's registers besides the shared unit's (the PRIQ, ITE): what the actor's phase reads. */
  override phaseFootprint(fp: FootprintBuilder): void {
    super.phaseFootprint(fp);
    const r = this.smmuRegs;
    fp.read(this.qr.evtq_prod.addr(r)).read(this.qr.evtq_cons.addr(r)).read(this.qr.evtq_overflow.addr(r));
  }

  /** blocks()'s: two words of the STE. */
  override blocksFootprint(fp: FootprintBuilder, dev: number): void {
    const at = this.steAddr(dev);
    fp.read(this.ste.q0lo.addr(at)).read(this.ste.q1lo.addr(at));
  }

  /** steWords()'s: q0lo, and the whole STE when it was written. */
  steFootprint(fp: FootprintBuilder, dev: number): void {
    const at = this.steAddr(dev);
    fp.read(this.ste.q0lo.addr(at));
    if (this.ste.q0lo.get(at) !== 0) fp.readRange(at, STE_WORDS);
  }

  /** entry()'s: the STE, the L1 descriptor of a two-level table, then the CD (entryPtr's walk of memory). */
  override entryFootprint(fp: FootprintBuilder, dev: number, pasid: number): void {
    this.steFootprint(fp, dev);
    const stew = this.steWords(dev);
    const q0hi = stew[1] as number;
    if (pasid < 1 << steS1cdmax(q0hi) && steS1fmt(stew[0] as number) === STRTAB_STE_0_S1FMT_64K_L2) {
      this.l1Footprint(fp, this.abs(steS1ctxptr(q0hi)) + (pasid >> CTXDESC_SPLIT) * ARM_SMMU_CDTAB_L1.words);
    }
    super.entryFootprint(fp, dev, pasid);
  }

  /** fetchL1(at)'s: the descriptor's two words. */
  l1Footprint(fp: FootprintBuilder, at: number): void {
    fp.read(this.l1.lo.addr(at)).read(this.l1.hi.addr(at));
  }

  /** cmdqHead()'s (`ahead`: once consumed that often). */
  cmdqHeadFootprint(fp: FootprintBuilder, ahead: number): void {
    const r = this.smmuRegs;
    fp.read(this.qr.cmdq_cons.addr(r)).read(this.qr.cmdq_prod.addr(r));
    const cons = this.qr.cmdq_cons.get(r) + ahead;
    if (cons !== this.qr.cmdq_prod.get(r)) fp.readRange(element(CMDQ_ENT, this.abs(this.cmdqOff), cons % this.opts.queueDepth), CMDQ_ENT.words);
  }

  /** cmdqConsume()'s. */
  cmdqConsumeFootprint(fp: FootprintBuilder): void {
    fp.write(this.qr.cmdq_cons.addr(this.smmuRegs));
  }

  /** evtqPush()'s: the queue's registers, and the record at PROD when there is room. */
  evtqPushFootprint(fp: FootprintBuilder): void {
    const r = this.smmuRegs;
    fp.read(this.qr.evtq_cons.addr(r));
    for (const f of [this.qr.evtq_prod, this.qr.evtq_overflow, this.qr.evtq_active]) fp.write(f.addr(r));
    const prod = this.qr.evtq_prod.get(r);
    if (prod - this.qr.evtq_cons.get(r) < EVTQ_DEPTH) fp.writeRange(element(EVTQ_ENT, this.abs(this.evtqOff), prod % EVTQ_DEPTH), EVTQ_ENT.words);
  }

  /** completeSync()'s. */
  get syncDoneWord(): number {
    return this.qr.sync_done.addr(this.smmuRegs);
  }

  /** queue_sync_prod_in's -EOVERFLOW: an event was lost since the thread last looked (cleared by the look). */
  evtqOverflowed(): boolean {
    const o = this.qr.evtq_overflow.get(this.smmuRegs) === 1;
    this.qr.evtq_overflow.set(this.smmuRegs, 0);
    return o;
  }
}

/** `walk` stages of the CD fetch (below PAGE_WALK): qword 1 of the CD, after qword 0 in an access before it. */
const WALK_CD_Q1 = 1;

/** arm_smmu_page_response's code, back to the PCIe PRG response the device gets. */
function prgResponse(resp: number): number {
  if (resp === PRI_RESP_SUCC) return RESP_SUCCESS;
  if (resp === PRI_RESP_FAIL) return RESP_FAILURE;
  return RESP_INVALID;
}

/** A transaction the SMMU holds (a stall): what CMD_RESUME retries. */
interface Stalled {
  readonly pasid: number;
  readonly vpn: number;
  readonly write: boolean;
  readonly id: number;
}

export class ArmSmmuHardware extends IommuHardware {
  /** Stalled transactions, by device × PR_GROUPS + STAG. */
  private readonly stalled = new Map<number, Stalled>();

  constructor(
    readonly smmu: ArmSmmuUnit,
    env: HardwareEnv,
    /** The task kind of the driver's arm_smmu_evtq_thread for this SMMU. */
    private readonly evtqTask: string,
  ) {
    super(smmu, env.devices, env.mms, env.oracle, env.stats, env.prqTask);
  }

  override reset(): void {
    super.reset();
    this.stalled.clear();
  }

  // The base's doorbell / cmdq.next / atc.done handling, on the SMMU's own queue.
  protected override runCommand(self: number, out: HwOut, step: number): void {
    this.consume(self, out, step);
  }

  protected override retireCommand(): void {
    this.smmu.cmdqConsume();
  }

  protected override next(self: number, out: HwOut): void {
    this.nextCommand(self, out);
  }

  // ---- translation ----

  protected override translate(self: number, dev: number, pasid: number, vpn: number, write: boolean, id: number, hw: HwOut): void {
    const out = this.faulting(dev, pasid, vpn, write, hw);
    const u = this.smmu;
    const fmt = u.spec.entry;
    const ep = u.epoch;
    if (u.blocks(dev, pasid)) {
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
      return;
    }
    const cached = u.pcLookup(dev, pasid);
    if (cached) {
      if (!fmt.present(cached)) {
        out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
        return;
      }
      if (this.iotlbAnswer(fmt.asidOf(cached), -1, vpn, write, dev, id, out)) {
        this.stats.add('iotlb_hits');
        return;
      }
      this.stats.add('iotlb_misses');
      this.startPageWalk(self, dev, pasid, vpn, write, id, this.walkKey(cached), ep, out);
      return;
    }
    this.stats.add('iotlb_misses');
    // The configuration walk: the STE, the L1 descriptor (two-level), then qword 0 of the CD.
    out.busy(COST.steFetchNs);
    const ste = u.steWords(dev);
    const q0hi = ste[1] as number;
    let cd: number | undefined;
    if (pasid < 1 << steS1cdmax(q0hi)) {
      if (steS1fmt(ste[0] as number) === STRTAB_STE_0_S1FMT_64K_L2) {
        out.busy(COST.l1cdFetchNs);
        cd = u.fetchL1(u.kernel.mem.statics + steS1ctxptr(q0hi) + (pasid >> CTXDESC_SPLIT) * ARM_SMMU_CDTAB_L1.words, pasid);
      } else {
        cd = u.kernel.mem.statics + steS1ctxptr(q0hi) + pasid * CD_WORDS;
      }
    }
    if (cd === undefined) {
      this.event(EVT_ID_BAD_SUBSTREAMID_CONFIG, dev, pasid, vpn, write, out);
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
      return;
    }
    out.busy(COST.cdQwordFetchNs);
    const q0lo = u.kernel.i32[cd] as number;
    const cdHi = u.kernel.i32[cd + 1] as number;
    if ((q0lo & CTXDESC_CD_0_V) === 0) {
      this.event(EVT_ID_BAD_CD_CONFIG, dev, pasid, vpn, write, out);
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
      return;
    }
    // Qword 1 (TTB0) in an access of its own: carry what qword 0 said (EPD0, the ASID) and the CD's address.
    const epd0 = (q0lo & CTXDESC_CD_0_TCR_EPD0) !== 0 ? 2 : 0;
    const w = (write ? 1 : 0) | epd0 | ((cdHi >>> CTXDESC_CD_0_ASID_SHIFT) << 2);
    out.send(self, { type: 'walk', dev, pasid, vpn, w, id, st: WALK_CD_Q1, a: cd - u.kernel.mem.statics, ep });
  }

  protected override walk(self: number, m: Extract<HwMessage, { type: 'walk' }>, out: HwOut): void {
    if (m.st !== WALK_CD_Q1) {
      super.walk(self, m, this.faulting(m.dev, m.pasid, m.vpn, (m.w & 1) === 1, out));
      return;
    }
    const u = this.smmu;
    out.busy(COST.cdQwordFetchNs);
    const cd = u.kernel.mem.statics + m.a;
    const ttb0 = u.kernel.i32[cd + 2] as number;
    const words = new Array<number>(CD_WORDS).fill(0);
    words[0] = CTXDESC_CD_0_V | ((m.w & 2) !== 0 ? CTXDESC_CD_0_TCR_EPD0 : 0);
    words[1] = (m.w >>> 2) << CTXDESC_CD_0_ASID_SHIFT;
    words[2] = ttb0;
    this.fetched(self, m.dev, m.pasid, m.vpn, (m.w & 1) === 1, m.id, words, m.ep, out);
  }

  /**
   * A translation fault (the page walk's): a master that can stall has its transaction stalled; a device without
   * ATS sends its transactions untranslated, and the SMMU, which cannot have them retried, terminates them and
   * records F_TRANSLATION; another ATS translation request's fault is the device's to resolve and not recorded.
   */
  private faulting(dev: number, pasid: number, vpn: number, write: boolean, out: HwOut): HwOut {
    const d = this.dev(dev);
    const stall = this.stallEnabled(dev);
    if (!stall && d.caps.ats) return out;
    return {
      send: (to, msg) => {
        if (msg.type !== 'ats.fault' || msg.why !== WHY_PTE || to !== d.actor) out.send(to, msg);
        else if (stall) this.stall(dev, pasid, vpn, write, msg.id, out);
        else {
          this.event(EVT_ID_TRANSLATION_FAULT, dev, pasid, vpn, write, out);
          out.send(to, msg);
        }
      },
      later: (msg, ms) => out.later(msg, ms),
      spawn: (task, args, name) => out.spawn(task, args, name),
      busy: (ns) => out.busy(ns),
    };
  }

  /** master->stall_enabled: the model's masters that resolve their faults (PRI-capable devices elsewhere) stall. */
  private stallEnabled(dev: number): boolean {
    return this.dev(dev).caps.pri;
  }

  /**
   * Stall the transaction: record F_TRANSLATION with STALL and a free tag, and hold it. With no tag free, or the
   * event queue full (the record cannot be written), it is terminated instead (the device sees an abort).
   */
  private stall(dev: number, pasid: number, vpn: number, write: boolean, id: number, out: HwOut): void {
    let stag = 0;
    while (stag < PR_GROUPS && this.stalled.has(dev * PR_GROUPS + stag)) stag++;
    if (stag === PR_GROUPS || !this.event(EVT_ID_TRANSLATION_FAULT, dev, pasid, vpn, write, out, stag)) {
      out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
      return;
    }
    this.smmu.groupRequested(dev, stag, pasid);
    this.stalled.set(dev * PR_GROUPS + stag, { pasid, vpn, write, id });
    // The core takes a stall as a page request group of one request.
    this.stats.add('page_request_groups');
    this.stats.add('page_requests');
    out.send(this.dev(dev).actor, { type: 'ats.stall', id });
  }

  /** CMD_RESUME: the stalled transaction with the tag is retried (a translation again) or aborted. */
  private resume(self: number, sid: number, stag: number, resp: number, out: HwOut, step: number): void {
    const u = this.smmu;
    const dev = this.dev(sid);
    const s = this.stalled.get(sid * PR_GROUPS + stag);
    this.oracle.pageGroupAnswered(step, dev.name, s?.pasid ?? 0, stag, u.groupAnswered(sid, stag), `CMD_RESUME in ${u.name}'s cmdq`);
    this.stats.add('page_responses');
    if (!s) return;
    this.stalled.delete(sid * PR_GROUPS + stag);
    if (resp !== CMDQ_RESUME_0_RESP_RETRY) {
      out.send(dev.actor, { type: 'ats.fault', id: s.id, why: WHY_PASID });
      return;
    }
    this.retrying = true;
    this.translate(self, sid, s.pasid, s.vpn, s.write, s.id, out);
    this.retrying = false;
  }

  /**
   * Record an event (EVTQ entry: EVTQ_0_ID, SSV, SSID, SID; EVTQ_1_STALL and STAG for a stall, EVTQ_1_RnW;
   * EVTQ_2_ADDR) and wake the thread; false when the queue was full (the record lost).
   */
  private event(id: number, dev: number, ssid: number, vpn: number, write: boolean, out: HwOut, stag = -1): boolean {
    out.busy(COST.evtqWriteNs);
    const q1lo = stag >= 0 ? (EVTQ_1_STALL | stag) >>> 0 : 0;
    const raw = [id | (1 << 11) | (ssid << 12), dev, q1lo, write ? 0 : EVTQ_1_RnW, vpn, 0, 0, 0];
    const r = this.smmu.evtqPush(raw);
    if (r.wake) out.spawn(this.evtqTask, null, `arm_smmu_evtq_thread/${this.smmu.name}`);
    return r.queued;
  }

  // ---- the command queue ----

  private consume(self: number, out: HwOut, step: number): void {
    const u = this.smmu;
    const c = u.cmdqHead();
    if (!c) {
      this.busy = false;
      return;
    }
    this.stats.add('commands');
    switch (c.opcode) {
      case CMDQ_OP_CFGI_STE:
        // The model caches no STE (the SMMU reads it on every configuration walk): nothing to drop.
        out.busy(COST.cfgiNs);
        break;
      case CMDQ_OP_CFGI_CD:
        out.busy(COST.cfgiNs);
        u.pcInvalidate(c.sid, c.ssid);
        break;
      case CMDQ_OP_TLBI_NH_ASID:
        out.busy(COST.tlbiAsidNs);
        u.iotlbInvalidate(c.asid, -1, -1, -1, false);
        break;
      case CMDQ_OP_TLBI_NH_VA:
        out.busy(COST.tlbiVaNs + COST.tlbiVaPerPageNs * c.pages);
        // Leaf clear (arm_smmu_tlb_inv_range_asid from the MMU notifier): the walk caches of the range go too.
        u.iotlbInvalidate(c.asid, -1, c.pages === 0 ? -1 : c.start, c.start + c.pages, false);
        break;
      case CMDQ_OP_ATC_INV: {
        // The queue waits for the device's completion (the CMD_SYNC after it could not complete before it).
        out.busy(COST.atcInvNs);
        this.atcWait = true;
        const whole = c.pages === 0;
        out.send(this.dev(c.sid).actor, { type: 'atc.inv', pasid: c.ssid, s: whole ? -1 : c.start, e: whole ? -1 : c.start + c.pages });
        return;
      }
      case CMDQ_OP_PRI_RESP: {
        out.busy(COST.priRespNs);
        const dev = this.dev(c.sid);
        this.oracle.pageGroupAnswered(step, dev.name, c.ssid, c.grpid, u.groupAnswered(c.sid, c.grpid), `CMD_PRI_RESP in ${u.name}'s cmdq`);
        this.stats.add('page_responses');
        out.send(dev.actor, { type: 'prs', grp: c.grpid, code: prgResponse(c.resp) });
        break;
      }
      case CMDQ_OP_RESUME:
        out.busy(COST.resumeNs);
        this.resume(self, c.sid, c.stag, c.resp, out, step);
        break;
      case CMDQ_OP_CMD_SYNC:
        out.busy(COST.cmdSyncNs);
        u.completeSync(c.seq);
        break;
    }
    u.cmdqConsume();
    this.nextCommand(self, out);
  }

  // ---- footprints (src/hw/footprint.ts) ----

  /**
   * A translation fault the SMMU records (faulting()): a stall — the event with its tag, the group's record, the
   * counters — or F_TRANSLATION for a master without ATS.
   */
  protected override faultFootprint(fp: FootprintBuilder, dev: number): void {
    const stall = this.stallEnabled(dev);
    if (!stall && this.dev(dev).caps.ats) return;
    if (!stall) {
      this.smmu.evtqPushFootprint(fp);
      return;
    }
    let stag = 0;
    while (stag < PR_GROUPS && this.stalled.has(dev * PR_GROUPS + stag) && dev * PR_GROUPS + stag !== this.resuming) stag++;
    // No tag free: terminated at once (a message).
    if (stag === PR_GROUPS) return;
    this.smmu.evtqPushFootprint(fp);
    this.smmu.groupFootprint(fp, dev, stag);
    this.statFootprint(fp, 'page_request_groups');
    this.statFootprint(fp, 'page_requests');
  }

  /** resume()'s: the group's record, the counter, and the stalled transaction translated again. */
  private resumeFootprint(fp: FootprintBuilder, sid: number, stag: number, resp: number): void {
    this.smmu.groupFootprint(fp, this.dev(sid).index, stag);
    this.statFootprint(fp, 'page_responses');
    const s = this.stalled.get(sid * PR_GROUPS + stag);
    if (!s || resp !== CMDQ_RESUME_0_RESP_RETRY) return;
    // resume() frees the tag before it translates again: a stall of the retry may take it.
    this.resuming = sid * PR_GROUPS + stag;
    try {
      this.translateFootprint(fp, sid, s.pasid, s.vpn, s.write);
    } finally {
      this.resuming = -1;
    }
  }

  /** The stalled transaction resumeFootprint follows (its tag counts as free), -1 otherwise. */
  private resuming = -1;

  protected override translateFootprint(fp: FootprintBuilder, dev: number, pasid: number, vpn: number, write: boolean): void {
    const u = this.smmu;
    const fmt = u.spec.entry;
    fp.read(u.epochWord);
    u.blocksFootprint(fp, dev);
    if (u.blocks(dev, pasid)) return;
    u.pcLookupFootprint(fp, dev, pasid);
    const cached = u.pcLookup(dev, pasid);
    if (cached) {
      if (!fmt.present(cached)) return;
      if (this.iotlbAnswerFootprint(fp, fmt.asidOf(cached), -1, vpn, write)) {
        this.statFootprint(fp, 'iotlb_hits');
        return;
      }
      this.statFootprint(fp, 'iotlb_misses');
      this.startWalkFootprint(fp, dev, pasid, vpn, this.walkKey(cached));
      return;
    }
    this.statFootprint(fp, 'iotlb_misses');
    u.steFootprint(fp, dev);
    const ste = u.steWords(dev);
    const q0hi = ste[1] as number;
    let cd: number | undefined;
    if (pasid < 1 << steS1cdmax(q0hi)) {
      if (steS1fmt(ste[0] as number) === STRTAB_STE_0_S1FMT_64K_L2) {
        const l1 = u.kernel.mem.statics + steS1ctxptr(q0hi) + (pasid >> CTXDESC_SPLIT) * ARM_SMMU_CDTAB_L1.words;
        u.l1Footprint(fp, l1);
        cd = u.fetchL1(l1, pasid);
      } else {
        cd = u.kernel.mem.statics + steS1ctxptr(q0hi) + pasid * CD_WORDS;
      }
    }
    // A bad SSID or CD: an event recorded in the event queue — not followed.
    if (cd === undefined) unfollowed();
    fp.read(cd).read(cd + 1);
    if (((u.kernel.i32[cd] as number) & CTXDESC_CD_0_V) === 0) unfollowed();
  }

  protected override contextWalkFootprint(fp: FootprintBuilder, m: Extract<HwMessage, { type: 'walk' }>): void {
    if (m.st !== WALK_CD_Q1) unfollowed();
    const u = this.smmu;
    const cd = u.kernel.mem.statics + m.a;
    fp.read(cd + 2);
    const words = new Array<number>(CD_WORDS).fill(0);
    words[0] = CTXDESC_CD_0_V | ((m.w & 2) !== 0 ? CTXDESC_CD_0_TCR_EPD0 : 0);
    words[1] = (m.w >>> 2) << CTXDESC_CD_0_ASID_SHIFT;
    words[2] = u.kernel.i32[cd + 2] as number;
    // fetched() with the delivery's own HwOut (a fault there is not recorded): faultFootprint's fallback is a superset.
    this.fetchedFootprint(fp, m.dev, m.pasid, m.vpn, words, m.ep);
  }

  protected override commandFootprint(fp: FootprintBuilder): void {
    const u = this.smmu;
    u.cmdqHeadFootprint(fp, 0);
    const c = u.cmdqHead();
    if (!c) return;
    this.statFootprint(fp, 'commands');
    switch (c.opcode) {
      case CMDQ_OP_CFGI_STE:
        break;
      case CMDQ_OP_CFGI_CD:
        u.pcInvalidateFootprint(fp, c.sid, c.ssid);
        break;
      case CMDQ_OP_TLBI_NH_ASID:
        u.iotlbInvalidateFootprint(fp, c.asid, -1, -1, -1, false);
        break;
      case CMDQ_OP_TLBI_NH_VA:
        u.iotlbInvalidateFootprint(fp, c.asid, -1, c.pages === 0 ? -1 : c.start, c.start + c.pages, false);
        break;
      case CMDQ_OP_ATC_INV:
        // The ATS invalidation goes out and the queue waits (a message, no memory).
        this.dev(c.sid);
        return;
      case CMDQ_OP_PRI_RESP:
        u.groupFootprint(fp, this.dev(c.sid).index, c.grpid);
        this.statFootprint(fp, 'page_responses');
        break;
      case CMDQ_OP_RESUME:
        this.resumeFootprint(fp, c.sid, c.stag, c.resp);
        break;
      case CMDQ_OP_CMD_SYNC:
        fp.write(u.syncDoneWord);
        break;
    }
    u.cmdqConsumeFootprint(fp);
    u.cmdqHeadFootprint(fp, 1);
  }

  protected override retireFootprint(fp: FootprintBuilder): void {
    this.smmu.cmdqConsumeFootprint(fp);
  }

  protected override nextFootprint(fp: FootprintBuilder, retired: number): void {
    this.smmu.cmdqHeadFootprint(fp, retired);
  }

  private nextCommand(self: number, out: HwOut): void {
    if (this.smmu.cmdqHead()) out.send(self, { type: 'cmdq.next' });
    else this.busy = false;
  }
}

