// The AMD IOMMU's hardware (AMD I/O Virtualization Technology (IOMMU) Specification, pub. 48882): the device
// table, each device's GCR3 table (one level, or two when GLX says so), the command buffer the driver fills and
// the unit consumes one iommu_cmd per delivery (INVALIDATE_IOMMU_PAGES, INVALIDATE_IOTLB_PAGES — the device's ATC,
// waited for —, INVALIDATE_DEVTAB_ENTRY, COMPLETION_WAIT's store to the driver's semaphore, COMPLETE_PPR_REQUEST),
// and the PPR log the unit writes page requests to. The IOTLB, the GCR3-entry cache (the shared unit's PASID-entry
// cache) and the page walk are the shared unit's; what is AMD's is how a request reaches them: the DTE, then the
// GCR3 table level by level, each entry read in one access that costs the unit its time (costs.ts).
import { type DeviceInfo, RESP_INVALID } from '../../core/types.js';
import type { Kernel } from '../../kernel/kernel.js';
import { element, struct, type ViewOf, word } from '../../kernel/struct.js';
import { IommuUnit, type UnitOptions } from '../iommu.js';
import { type HwMessage, WHY_PASID } from '../messages.js';
import { type FootprintBuilder, unfollowed } from '../footprint.js';
import type { HwOut } from '../out.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import { IommuHardware } from '../unit.js';
import {
  type AmdCmdType,
  CMD_COMPL_WAIT,
  CMD_COMPL_WAIT_STORE_MASK,
  CMD_COMPLETE_PPR,
  CMD_INV_ALL_PAGES_HI,
  CMD_INV_DEV_ENTRY,
  CMD_INV_IOMMU_PAGES,
  CMD_INV_IOMMU_PAGES_GN_MASK,
  CMD_INV_IOMMU_PAGES_PDE_MASK,
  CMD_INV_IOMMU_PAGES_SIZE_MASK,
  CMD_INV_IOTLB_PAGES,
  CMD_TYPE_SHIFT,
  DEV_DOMID_MASK,
  DEV_TABLE_ENTRY,
  DTE_FLAG_GV_HI,
  DTE_FLAG_TV,
  DTE_FLAG_V,
  DTE_GCR3_SHIFT,
  DTE_GLX_MASK,
  DTE_GLX_SHIFT_HI,
  GCR3_ADDR_SHIFT,
  GCR3_ENTRY,
  GCR3_LEVEL_BITS,
  GCR3_TABLE_ENTRIES,
  GCR3_VALID,
  IOMMU_CMD,
  PAGE_SHIFT,
  PPR_FLAG_GN,
  PPR_FLAG_WRITE,
  PPR_LOG_ENTRY,
  PPR_REQ_FAULT,
  PPR_STATUS_MASK,
  PPR_STATUS_SHIFT,
  PPR_TAG_LAST,
  AMD,
} from './amd_iommu_types.js';
import { AMD_COSTS } from './costs.js';

/**
 * struct amd_iommu as the model keeps it: the unit's registers and the driver's words next to them — the command
 * buffer's head and tail (MMIO_CMD_HEAD / TAIL, as entry counts, not byte offsets), the semaphore COMPLETION_WAIT
 * stores to (*iommu->cmd_sem) and the driver's last value (iommu->cmd_sem_val) and need_sync, the PPR log's head
 * and tail (MMIO_PPR_HEAD / TAIL), its status bits (MMIO_STATUS_PPR_OVERFLOW) and, the model's, whether the
 * interrupt thread is running. A patch reads it as `view(structs.amd_iommu)` at the unit's `amd_iommu`.
 */
export const AMD_IOMMU = struct('amd_iommu', {
  cmd_head: word,
  cmd_tail: word,
  cmd_sem: word,
  cmd_sem_val: word,
  need_sync: word,
  ppr_head: word,
  ppr_tail: word,
  ppr_overflow: word,
  ppr_active: word,
});

/** The DTE's fields as the hardware decodes them. */
export interface Dte {
  readonly v: boolean;
  readonly tv: boolean;
  readonly gv: boolean;
  readonly glx: number;
  readonly domid: number;
  /** The GCR3 root pointer: the table number + 1 (0: none). */
  readonly root: number;
}

/** A PPR log entry as the driver decodes it (amd_iommu_poll_ppr_log's raw[0], raw[1]). */
export interface PprEntry {
  readonly type: number;
  readonly devid: number;
  readonly pasid: number;
  readonly tag: number;
  readonly flags: number;
  readonly address: number;
}

/** get_gcr3_levels: the GCR3 table's levels above the leaf (GLX) for a device's PASIDs, 9 bits a level. */
export function gcr3Levels(pasidBits: number): number {
  return pasidBits > 0 ? Math.ceil(pasidBits / GCR3_LEVEL_BITS) - 1 : 0;
}

/** The PASIDs the AMD driver gives a device: INVALIDATE_IOTLB_PAGES carries 16 PASID bits (PASMAX is at most 15). */
export const AMD_PASID_BITS = 16;

export class AmdIommu extends IommuUnit {
  private readonly dte = new Map<number, number>();
  /** GCR3 root tables (GLX > 0): static offset per device index; the leaves are the shared unit's entry table. */
  private readonly gcr3Root = new Map<number, number>();
  private readonly mmioOff: number;
  private readonly cmdBuf: number;
  private readonly pprLog: number;
  private readonly m: ViewOf<typeof AMD_IOMMU>;
  private readonly d: ViewOf<typeof DEV_TABLE_ENTRY>;
  private readonly g: ViewOf<typeof GCR3_ENTRY>;
  private readonly c: ViewOf<typeof IOMMU_CMD>;
  private readonly p: ViewOf<typeof PPR_LOG_ENTRY>;

  constructor(k: Kernel, index: number, devices: readonly DeviceInfo[], opts: UnitOptions, actor: number) {
    // The commands' costs are the cost table's (costs.ts), spent by the hardware, not the shared unit's.
    super(k, index, AMD, devices, { ...opts, cmdCostNs: 0 }, actor);
    this.m = k.struct(AMD_IOMMU);
    this.d = k.struct(DEV_TABLE_ENTRY);
    this.g = k.struct(GCR3_ENTRY);
    this.c = k.struct(IOMMU_CMD);
    this.p = k.struct(PPR_LOG_ENTRY);
    this.mmioOff = k.statics.alloc(AMD_IOMMU.words, `${this.name} MMIO`);
    this.cmdBuf = k.statics.alloc(opts.queueDepth * IOMMU_CMD.words, `${this.name} command buffer`);
    this.pprLog = k.statics.alloc(opts.prqDepth * PPR_LOG_ENTRY.words, `${this.name} PPR log`);
    for (const dev of devices) {
      this.dte.set(dev.index, k.statics.alloc(DEV_TABLE_ENTRY.words, `${dev.name} DTE`));
      const glx = gcr3Levels(Math.min(dev.caps.pasidBits, AMD_PASID_BITS));
      if (glx > 0)
        this.gcr3Root.set(
          dev.index,
          k.statics.alloc(Math.ceil((1 << dev.caps.pasidBits) / GCR3_TABLE_ENTRIES), `${dev.name} GCR3 root table`),
        );
    }
  }

  private at(off: number): number {
    return this.kernel.mem.statics + off;
  }

  private get mmio(): number {
    return this.at(this.mmioOff);
  }

  /** struct amd_iommu *: this unit's object (its fields: AMD_IOMMU, `structs.amd_iommu` to a patch). */
  get amd_iommu(): number {
    return this.mmio;
  }

  /**
   * The IOMMU's own PCI function, as wait_on_sem's pr_alert prints it (`%04x:%02x:%02x.%01x` of pci_seg->id and
   * iommu->devid): function 2 of device 0, as AMD places it, on bus `index` (the model's unit number).
   */
  get pciName(): string {
    return `0000:${this.index.toString(16).padStart(2, '0')}:00.2`;
  }

  // ---- the device table ----

  /** dev's DTE (its word offset): the driver's accessors of DEV_TABLE_ENTRY take it. */
  dtePtr(dev: number): number {
    const off = this.dte.get(dev);
    if (off === undefined) throw new Error(`${this.name}: no DTE for device ${dev}`);
    return this.at(off);
  }

  /** The DTE set_dte_entry writes at probe: translation and the GCR3 table valid, the device's own table and domain ID. */
  probeDte(dev: number): Dte {
    return { v: true, tv: true, gv: true, glx: this.glxOf(dev), domid: dev + 1, root: dev + 1 };
  }

  glxOf(dev: number): number {
    return this.gcr3Root.has(dev) ? 1 : 0;
  }

  /** The hardware's read of dev's DTE (all of it in one access); never written reads as the probe's. */
  readDte(dev: number): Dte {
    const p = this.dtePtr(dev);
    const lo = Atomics.load(this.kernel.i32, p);
    if (lo === 0) return this.probeDte(dev);
    const hi = this.d.data0_hi.get(p);
    const d1 = this.d.data1_lo.get(p);
    return {
      v: (lo & DTE_FLAG_V) !== 0,
      tv: (lo & DTE_FLAG_TV) !== 0,
      gv: (hi & DTE_FLAG_GV_HI) !== 0,
      glx: (hi >>> DTE_GLX_SHIFT_HI) & DTE_GLX_MASK,
      domid: d1 & DEV_DOMID_MASK,
      root: d1 >>> DTE_GCR3_SHIFT,
    };
  }

  /** The DTE aborts {dev, pasid}'s requests: valid with no translation, or a PASID without a valid GCR3 table. */
  override blocks(dev: number, pasid: number): boolean {
    const e = this.readDte(dev);
    return e.v && (!e.tv || (pasid !== 0 && !e.gv));
  }

  // ---- GCR3 tables ----

  /** The root table (GLX > 0) of table number root, index i: its word offset. */
  gcr3RootPtr(root: number, i: number): number {
    const off = this.gcr3Root.get(root - 1);
    if (off === undefined) throw new Error(`${this.name}: GCR3 table ${root} has one level`);
    return element(GCR3_ENTRY, this.at(off), i);
  }

  /** Leaf entry `i` of leaf table `leaf` (0 with GLX 0) of table number root: its word offset. */
  gcr3LeafPtr(root: number, leaf: number, i: number): number {
    return this.entryPtr(root - 1, leaf * GCR3_TABLE_ENTRIES + i);
  }

  /** One GCR3 entry read by the hardware (64 bits, one access). */
  readGcr3(ptr: number): number {
    return this.g.val.READ_ONCE(ptr);
  }

  // ---- the command buffer (driver side) ----

  /** A word of the unit's registers and driver state (AMD_IOMMU): the driver's footprints (iommu.ts, ppr.ts). */
  mmioWord(field: keyof typeof AMD_IOMMU.offset): number {
    return this.mmio + AMD_IOMMU.offset[field];
  }

  /** The command buffer's slot i (its word offset; IOMMU_CMD.words from there): the driver's footprints. */
  cmdSlot(i: number): number {
    return element(IOMMU_CMD, this.at(this.cmdBuf), i % this.opts.queueDepth);
  }

  /** The PPR log's slot i (its word offset; PPR_LOG_ENTRY.words from there): the driver's footprints. */
  pprSlot(i: number): number {
    return this.pprAt(i);
  }

  /** Free entries (the driver's `left`, in commands). */
  cmdFree(): number {
    return this.opts.queueDepth - (this.m.cmd_tail.get(this.mmio) - this.m.cmd_head.get(this.mmio));
  }

  /** copy_cmd_to_buffer and the tail register's write. */
  cmdWrite(cmd: readonly number[], sync: boolean): void {
    const tail = this.m.cmd_tail.get(this.mmio);
    const at = element(IOMMU_CMD, this.at(this.cmdBuf), tail % this.opts.queueDepth);
    for (let i = 0; i < 4; i++) this.c.data.set(at, i, cmd[i] as number);
    this.m.cmd_tail.set(this.mmio, tail + 1);
    this.m.need_sync.set(this.mmio, sync ? 1 : 0);
  }

  get needSync(): boolean {
    return this.m.need_sync.get(this.mmio) === 1;
  }

  /** get_cmdsem_val: ++iommu->cmd_sem_val (the driver holds iommu->lock). */
  nextSemVal(): number {
    return this.m.cmd_sem_val.atomic_inc_return(this.mmio);
  }

  /** *iommu->cmd_sem: the last value a COMPLETION_WAIT stored. */
  get cmdSem(): number {
    return this.m.cmd_sem.READ_ONCE(this.mmio);
  }

  // ---- the command buffer (hardware side) ----

  /** The command at the head, or undefined when the buffer is empty. */
  cmdHead(): number[] | undefined {
    const head = this.m.cmd_head.get(this.mmio);
    if (head === this.m.cmd_tail.get(this.mmio)) return undefined;
    const at = element(IOMMU_CMD, this.at(this.cmdBuf), head % this.opts.queueDepth);
    const d = this.c.data;
    return [d.get(at, 0) >>> 0, d.get(at, 1) >>> 0, d.get(at, 2) >>> 0, d.get(at, 3) >>> 0];
  }

  /** Is a command waiting at the head (head != tail)? */
  get cmdPending(): boolean {
    return this.m.cmd_head.get(this.mmio) !== this.m.cmd_tail.get(this.mmio);
  }

  cmdRetire(): void {
    this.m.cmd_head.set(this.mmio, this.m.cmd_head.get(this.mmio) + 1);
  }

  storeSem(v: number): void {
    this.m.cmd_sem.WRITE_ONCE(this.mmio, v);
  }

  // ---- the PPR log ----

  /** The hardware writes a page request at the tail: false when the log is full (PPR log overflow). */
  pprWrite(dev: number, pasid: number, vpn: number, write: boolean, grp: number, last: boolean): { queued: boolean; startThread: boolean } {
    const head = this.m.ppr_head.get(this.mmio);
    const tail = this.m.ppr_tail.get(this.mmio);
    if (tail - head >= this.opts.prqDepth) {
      this.m.ppr_overflow.set(this.mmio, 1);
      return { queued: false, startThread: false };
    }
    const at = element(PPR_LOG_ENTRY, this.at(this.pprLog), tail % this.opts.prqDepth);
    const tag = (grp & 0x1ff) | (last ? PPR_TAG_LAST : 0);
    const flags = PPR_FLAG_GN | (write ? PPR_FLAG_WRITE : 0);
    this.p.raw0_lo.set(at, (dev & 0xffff) | ((pasid & 0xffff) << 16));
    this.p.raw0_hi.set(at, tag | (((pasid >>> 16) & 0xf) << 10) | (flags << 16) | (PPR_REQ_FAULT << 28));
    this.p.raw1_lo.set(at, vpn * 2 ** PAGE_SHIFT);
    this.p.raw1_hi.set(at, 0);
    this.m.ppr_tail.set(this.mmio, tail + 1);
    const startThread = this.m.ppr_active.get(this.mmio) === 0;
    if (startThread) this.m.ppr_active.set(this.mmio, 1);
    return { queued: true, startThread };
  }

  private pprAt(i: number): number {
    return element(PPR_LOG_ENTRY, this.at(this.pprLog), i % this.opts.prqDepth);
  }

  private decodePpr(at: number): PprEntry {
    const lo = this.p.raw0_lo.get(at) >>> 0;
    const hi = this.p.raw0_hi.get(at) >>> 0;
    return {
      type: hi >>> 28,
      devid: lo & 0xffff,
      pasid: (((hi >>> 10) & 0xf) << 16) | (lo >>> 16),
      tag: hi & 0x3ff,
      flags: (hi >>> 16) & 0xfff,
      address: (this.p.raw1_lo.get(at) >>> 0) + (this.p.raw1_hi.get(at) >>> 0) * 2 ** 32,
    };
  }

  /** The driver: the entry at the head (copied, then zeroed: `raw[0] = raw[1] = 0UL`), or undefined — the thread stops. */
  pprTake(): PprEntry | undefined {
    const head = this.m.ppr_head.get(this.mmio);
    if (head === this.m.ppr_tail.get(this.mmio)) {
      this.m.ppr_active.set(this.mmio, 0);
      return undefined;
    }
    const at = this.pprAt(head);
    const e = this.decodePpr(at);
    for (const f of [this.p.raw0_lo, this.p.raw0_hi, this.p.raw1_lo, this.p.raw1_hi]) f.set(at, 0);
    this.m.ppr_head.set(this.mmio, head + 1);
    return e;
  }

  /** MMIO_STATUS_PPR_OVERFLOW, cleared by the driver's restart of the log (amd_iommu_restart_ppr_log). */
  override get prqOverflowed(): boolean {
    return this.m.ppr_overflow.get(this.mmio) === 1;
  }

  clearPprOverflow(): void {
    this.m.ppr_overflow.set(this.mmio, 0);
  }

  override get prqNonEmpty(): boolean {
    return this.m.ppr_head.get(this.mmio) !== this.m.ppr_tail.get(this.mmio);
  }

  // ---- footprints (src/hw/footprint.ts) ----

  /** The PPR log's registers besides the shared unit's ITE: what the actor's phase reads. */
  override phaseFootprint(fp: FootprintBuilder): void {
    super.phaseFootprint(fp);
    fp.read(this.m.ppr_overflow.addr(this.mmio)).read(this.m.ppr_head.addr(this.mmio)).read(this.m.ppr_tail.addr(this.mmio));
  }

  /** pprWrite()'s: the log's registers, and the entry at the tail when there is room. */
  pprWriteFootprint(fp: FootprintBuilder): void {
    const m = this.m;
    fp.read(m.ppr_head.addr(this.mmio));
    for (const f of [m.ppr_tail, m.ppr_overflow, m.ppr_active]) fp.write(f.addr(this.mmio));
    const tail = m.ppr_tail.get(this.mmio);
    if (tail - m.ppr_head.get(this.mmio) < this.opts.prqDepth) fp.writeRange(this.pprAt(tail), PPR_LOG_ENTRY.words);
  }

  /** blocks()'s: the DTE. */
  override blocksFootprint(fp: FootprintBuilder, dev: number): void {
    this.dteFootprint(fp, dev);
  }

  /** readDte()'s words. */
  dteFootprint(fp: FootprintBuilder, dev: number): void {
    const p = this.dtePtr(dev);
    fp.read(p).read(this.d.data0_hi.addr(p)).read(this.d.data1_lo.addr(p));
  }

  /** readGcr3(ptr)'s word. */
  gcr3Word(ptr: number): number {
    return this.g.val.addr(ptr);
  }

  /** cmdHead()'s (with `ahead`: once retired that often) and cmdPending's reads. */
  cmdFootprint(fp: FootprintBuilder, ahead: number, entry: boolean): void {
    fp.read(this.m.cmd_head.addr(this.mmio)).read(this.m.cmd_tail.addr(this.mmio));
    const head = this.m.cmd_head.get(this.mmio) + ahead;
    if (entry && head !== this.m.cmd_tail.get(this.mmio)) fp.readRange(element(IOMMU_CMD, this.at(this.cmdBuf), head % this.opts.queueDepth), IOMMU_CMD.words);
  }

  /** cmdRetire()'s. */
  cmdRetireFootprint(fp: FootprintBuilder): void {
    fp.write(this.m.cmd_head.addr(this.mmio));
  }

  /** storeSem()'s. */
  get semWord(): number {
    return this.m.cmd_sem.addr(this.mmio);
  }

  /** Page requests of {dev, pasid} in the log (the drain waits until there are none). */
  override prqPendingFootprint(): Footprint {
    const fp = [read(this.mmioWord('ppr_head')), read(this.mmioWord('ppr_tail'))];
    for (let i = this.m.ppr_head.get(this.mmio); i < this.m.ppr_tail.get(this.mmio); i++) {
      const at = this.pprAt(i);
      for (let w = 0; w < PPR_LOG_ENTRY.words; w++) fp.push(read(at + w));
    }
    return fp;
  }

  override prqPending(dev: number, pasid: number): number {
    let n = 0;
    for (let i = this.m.ppr_head.get(this.mmio); i < this.m.ppr_tail.get(this.mmio); i++) {
      const e = this.decodePpr(this.pprAt(i));
      if (e.devid === dev && e.pasid === pasid) n++;
    }
    return n;
  }
}

/** The first page and the page count of an invalidation's address field (build_inv_address's encoding); -1: all. */
export function decodeInvAddress(lo: number, hi: number): { s: number; e: number } {
  if (hi === CMD_INV_ALL_PAGES_HI) return { s: -1, e: -1 };
  const vpn = ((lo >>> PAGE_SHIFT) + hi * 2 ** (32 - PAGE_SHIFT)) >>> 0;
  if ((lo & CMD_INV_IOMMU_PAGES_SIZE_MASK) === 0) return { s: vpn, e: vpn + 1 };
  // S set: the lowest clear bit of the page number is the size's highest (2^(z+1) pages, aligned).
  let z = 0;
  while (((vpn >>> z) & 1) === 1) z++;
  const pages = 2 ** (z + 1);
  const s = Math.floor(vpn / pages) * pages;
  return { s, e: s + pages };
}

/** The hardware behind an AMD unit's actor. */
export class AmdIommuHardware extends IommuHardware {
  private get amd(): AmdIommu {
    return this.unit as AmdIommu;
  }

  override handle(self: number, msg: HwMessage, out: HwOut, step: number): void {
    if (msg.type === 'cmdq.doorbell') {
      // The tail moved: the unit starts on the buffer after what it already began — the walks it sent itself go
      // first, so that a translation completion it owes reaches the device before a later ATS invalidation (the
      // driver rings once per command, and a task's doorbell could otherwise overtake them).
      if (!this.busy) {
        this.busy = true;
        out.send(self, { type: 'cmdq.next' });
      }
      return;
    }
    if (msg.type !== 'atc.done') {
      super.handle(self, msg, out, step);
      return;
    }
    if (!this.atcWait) return;
    this.atcWait = false;
    this.unit.setInvalidationTimeout(false);
    this.amd.cmdRetire();
    this.next(self, out);
  }

  // ---- translation: the DTE, then the GCR3 table ----

  protected override translate(self: number, dev: number, pasid: number, vpn: number, write: boolean, id: number, out: HwOut): void {
    const u = this.amd;
    const ep = u.epoch;
    const dte = u.readDte(dev);
    if (dte.v && (!dte.tv || (pasid !== 0 && !dte.gv))) {
      this.fault(dev, id, out);
      return;
    }
    if (this.iotlbAnswer(dev, pasid, vpn, write, dev, id, out)) {
      this.stats.add('iotlb_hits');
      return;
    }
    this.stats.add('iotlb_misses');
    // A miss reads the DTE from memory (the model charges the device table cache's refill here).
    out.busy(AMD_COSTS.dteFetch);
    const cached = u.pcLookup(dev, pasid);
    if (cached) {
      if (!u.spec.entry.present(cached)) {
        this.fault(dev, id, out);
        return;
      }
      this.startPageWalk(self, dev, pasid, vpn, write, id, this.walkKey(cached), ep, out);
      return;
    }
    if (dte.root === 0) {
      this.fault(dev, id, out);
      return;
    }
    out.busy(AMD_COSTS.gcr3Fetch);
    if (dte.glx === 0) {
      this.fetched(self, dev, pasid, vpn, write, id, [u.readGcr3(u.gcr3LeafPtr(dte.root, 0, pasid))], ep, out);
      return;
    }
    // GLX 1: the root entry names the leaf table, read in a delivery of its own.
    const r = u.readGcr3(u.gcr3RootPtr(dte.root, pasid >>> GCR3_LEVEL_BITS));
    if ((r & GCR3_VALID) === 0) {
      this.fault(dev, id, out);
      return;
    }
    out.send(self, { type: 'walk', dev, pasid, vpn, w: write ? 1 : 0, id, st: 1, a: (dte.root << 16) | (r >>> GCR3_ADDR_SHIFT), ep });
  }

  protected override walk(self: number, m: Extract<HwMessage, { type: 'walk' }>, out: HwOut): void {
    if (m.st !== 1) {
      super.walk(self, m, out);
      return;
    }
    const u = this.amd;
    out.busy(AMD_COSTS.gcr3Fetch);
    const leaf = (m.a & 0xffff) - 1;
    const entry = u.readGcr3(u.gcr3LeafPtr(m.a >>> 16, leaf, m.pasid & (GCR3_TABLE_ENTRIES - 1)));
    this.fetched(self, m.dev, m.pasid, m.vpn, m.w === 1, m.id, [entry], m.ep, out);
  }

  private fault(dev: number, id: number, out: HwOut): void {
    out.send(this.dev(dev).actor, { type: 'ats.fault', id, why: WHY_PASID });
  }

  // ---- the PPR log ----

  protected override pageRequest(m: Extract<HwMessage, { type: 'pr' }>, out: HwOut, step: number): void {
    const u = this.amd;
    const last = m.last === 1;
    if (last) u.groupRequested(m.dev, m.grp, m.pasid);
    const r = u.pprWrite(m.dev, m.pasid, m.vpn, m.w === 1, m.grp, last);
    if (!r.queued) {
      // The log is full (PPR log overflow): the model's unit answers the group itself, as the shared unit does.
      if (!last) return;
      this.oracle.pageGroupAnswered(
        step,
        this.dev(m.dev).name,
        m.pasid,
        m.grp,
        u.groupAnswered(m.dev, m.grp),
        `${u.name}'s automatic response (${u.spec.prqName} full)`,
      );
      out.send(this.dev(m.dev).actor, { type: 'prs', grp: m.grp, code: RESP_INVALID });
      return;
    }
    out.busy(AMD_COSTS.pprLogWrite);
    if (r.startThread) out.spawn(this.prqTask, null, `${u.spec.prqThread}/${u.name}`);
  }

  // ---- the command buffer ----

  protected override runCommand(self: number, out: HwOut, step: number): void {
    const u = this.amd;
    const cmd = u.cmdHead();
    if (!cmd) {
      this.busy = false;
      return;
    }
    this.stats.add('commands');
    const type = ((cmd[1] as number) >>> CMD_TYPE_SHIFT) as AmdCmdType;
    out.busy(AMD_COSTS.command[type] ?? 0);
    if (type === CMD_INV_IOTLB_PAGES) {
      this.invalidateIotlb(cmd, out);
      return;
    }
    this.execute(type, cmd, out, step);
    u.cmdRetire();
    this.next(self, out);
  }

  /** INVALIDATE_IOTLB_PAGES: an ATS invalidation request to the device; the buffer waits for its completion. */
  private invalidateIotlb(cmd: readonly number[], out: HwOut): void {
    const [d0, d1, d2, d3] = cmd as [number, number, number, number];
    const dev = this.dev(d0 & 0xffff);
    const pasid = (d2 & CMD_INV_IOMMU_PAGES_GN_MASK) !== 0 ? (((d0 >>> 16) & 0xff) << 8) | ((d1 >>> 16) & 0xff) : 0;
    const { s, e } = decodeInvAddress(d2, d3);
    this.atcWait = true;
    out.send(dev.actor, { type: 'atc.inv', pasid, s, e });
  }

  private execute(type: AmdCmdType, cmd: readonly number[], out: HwOut, step: number): void {
    const u = this.amd;
    const [d0, d1, d2, d3] = cmd as [number, number, number, number];
    switch (type) {
      case CMD_INV_IOMMU_PAGES: {
        // The model's domain IDs are per device (the GCR3 table's, dev index + 1): the IOTLB is tagged by device.
        const dev = (d1 & DEV_DOMID_MASK) - 1;
        const gn = (d2 & CMD_INV_IOMMU_PAGES_GN_MASK) !== 0;
        const pasid = gn ? d0 & 0xfffff : -1;
        const { s, e } = decodeInvAddress(d2, d3);
        // PDE clear: the leaf entries only; set: the cached upper levels go too — the paging-structure cache's
        // entries of the range and the GCR3 entry of the PASID (all of the device's without GN).
        const pde = (d2 & CMD_INV_IOMMU_PAGES_PDE_MASK) !== 0;
        u.iotlbInvalidate(dev, pasid, s, e, !pde);
        if (pde) {
          if (gn) u.pcInvalidate(dev, pasid);
          else u.pcInvalidateDevice(dev);
        }
        return;
      }
      case CMD_INV_DEV_ENTRY:
        u.pcInvalidateDevice(d0 & 0xffff);
        return;
      case CMD_COMPL_WAIT:
        if ((d0 & CMD_COMPL_WAIT_STORE_MASK) !== 0) u.storeSem(d2);
        return;
      case CMD_COMPLETE_PPR: {
        const dev = this.dev(d0 & 0xffff);
        const grp = d3 & 0x1ff;
        const code = (d3 >>> PPR_STATUS_SHIFT) & PPR_STATUS_MASK;
        this.oracle.pageGroupAnswered(
          step,
          dev.name,
          d1,
          grp,
          u.groupAnswered(dev.index, grp),
          `${u.spec.commandNames[4]} in ${u.name}'s ${u.spec.cmdqName}`,
        );
        this.stats.add('page_responses');
        out.send(dev.actor, { type: 'prs', grp, code });
        return;
      }
    }
  }

  // ---- footprints (src/hw/footprint.ts) ----

  protected override eventFootprint(fp: FootprintBuilder, msg: HwMessage): void {
    // A doorbell sends the unit a cmdq.next (the buffer is read there).
    if (msg.type === 'cmdq.doorbell') return;
    if (msg.type !== 'atc.done') {
      super.eventFootprint(fp, msg);
      return;
    }
    if (!this.atcWait) return;
    fp.write(this.amd.iteWord);
    this.amd.cmdRetireFootprint(fp);
    this.amd.cmdFootprint(fp, 1, false);
  }

  protected override prqFootprint(fp: FootprintBuilder): void {
    this.amd.pprWriteFootprint(fp);
  }

  protected override translateFootprint(fp: FootprintBuilder, dev: number, pasid: number, vpn: number, write: boolean): void {
    const u = this.amd;
    fp.read(u.epochWord);
    u.dteFootprint(fp, dev);
    const dte = u.readDte(dev);
    if (dte.v && (!dte.tv || (pasid !== 0 && !dte.gv))) return;
    if (this.cachedTranslationFootprint(fp, dev, pasid, vpn, write)) return;
    if (dte.root === 0) return;
    if (dte.glx === 0) {
      const at = u.gcr3Word(u.gcr3LeafPtr(dte.root, 0, pasid));
      fp.read(at);
      this.fetchedFootprint(fp, dev, pasid, vpn, [u.readGcr3(u.gcr3LeafPtr(dte.root, 0, pasid))], u.epoch);
      return;
    }
    fp.read(u.gcr3Word(u.gcr3RootPtr(dte.root, pasid >>> GCR3_LEVEL_BITS)));
  }

  protected override contextWalkFootprint(fp: FootprintBuilder, m: Extract<HwMessage, { type: 'walk' }>): void {
    if (m.st !== 1) unfollowed();
    const u = this.amd;
    const ptr = u.gcr3LeafPtr(m.a >>> 16, (m.a & 0xffff) - 1, m.pasid & (GCR3_TABLE_ENTRIES - 1));
    fp.read(u.gcr3Word(ptr));
    this.fetchedFootprint(fp, m.dev, m.pasid, m.vpn, [u.readGcr3(ptr)], m.ep);
  }

  protected override commandFootprint(fp: FootprintBuilder): void {
    const u = this.amd;
    u.cmdFootprint(fp, 0, true);
    const cmd = u.cmdHead();
    if (!cmd) return;
    this.statFootprint(fp, 'commands');
    const [d0, d1, d2, d3] = cmd as [number, number, number, number];
    const type = (d1 >>> CMD_TYPE_SHIFT) as AmdCmdType;
    // INVALIDATE_IOTLB_PAGES: the ATS invalidation goes out and the buffer waits (a message, no memory).
    if (type === CMD_INV_IOTLB_PAGES) return;
    switch (type) {
      case CMD_INV_IOMMU_PAGES: {
        const dev = (d1 & DEV_DOMID_MASK) - 1;
        const gn = (d2 & CMD_INV_IOMMU_PAGES_GN_MASK) !== 0;
        const pasid = gn ? d0 & 0xfffff : -1;
        const { s, e } = decodeInvAddress(d2, d3);
        const pde = (d2 & CMD_INV_IOMMU_PAGES_PDE_MASK) !== 0;
        u.iotlbInvalidateFootprint(fp, dev, pasid, s, e, !pde);
        if (pde) {
          if (gn) u.pcInvalidateFootprint(fp, dev, pasid);
          else u.pcInvalidateDeviceFootprint(fp, dev);
        }
        break;
      }
      case CMD_INV_DEV_ENTRY:
        u.pcInvalidateDeviceFootprint(fp, d0 & 0xffff);
        break;
      case CMD_COMPL_WAIT:
        if ((d0 & CMD_COMPL_WAIT_STORE_MASK) !== 0) fp.write(u.semWord);
        break;
      case CMD_COMPLETE_PPR:
        u.groupFootprint(fp, this.dev(d0 & 0xffff).index, d3 & 0x1ff);
        this.statFootprint(fp, 'page_responses');
        break;
    }
    u.cmdRetireFootprint(fp);
    u.cmdFootprint(fp, 1, false);
  }

  protected override next(self: number, out: HwOut): void {
    if (this.amd.cmdPending) out.send(self, { type: 'cmdq.next' });
    else this.busy = false;
  }
}
