// drivers/iommu/amd/iommu.c (mainline): the command buffer — build_inv_iommu_pages, build_inv_iotlb_pages,
// build_completion_wait, build_complete_ppr; iommu_queue_command_sync, __iommu_queue_command_sync under
// iommu->lock spinning for room (the raw spinlock's section one scheduling point: it only stores, interrupts off);
// iommu_completion_wait (the semaphore's value from get_cmdsem_val, under the lock) and wait_on_sem, which polls the
// semaphore the COMPLETION_WAIT stores to (udelay(1) a turn: a CPU busy-wait, `spins`) outside the lock, LOOP_TIMEOUT
// turns before its pr_alert and -EIO — the GCR3 table (update_gcr3 over __get_gcr3_pte, which
// allocates a level-1 table on first use when GLX > 0; amd_iommu_set_gcr3 / amd_iommu_clear_gcr3), its flush
// (amd_iommu_dev_flush_pasid_pages: INVALIDATE_IOMMU_PAGES, then INVALIDATE_IOTLB_PAGES when ATS is on, then one
// COMPLETION_WAIT), the device table entry (set_dte_entry, clear_dte_entry, device_flush_dte), the blocked domain,
// and the driver's iommu_ops (each era's SVA path: pasid.ts is mainline's, iommu_v2.ts the v2 driver's).
import { type IommuDomain, type IommuDomainOps, type IommuOps, IOMMU_NO_PASID } from '../../core/ops.js';
import type { DeviceInfo, SvaNotifier } from '../../core/types.js';
import { SVM_FLAG_SUPERVISOR_MODE } from '../../core/types.js';
import type { Stats } from '../../core/stats.js';
import type { KTask } from '../../kernel/context.js';
import { EIO, EOPNOTSUPP } from '../../kernel/errno.js';
import type { KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { pr_alert } from '../../kernel/printk.js';
import { spin_lock_irqsave_section } from '../../kernel/spinlock.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import type { StepEnv } from '../../runtime/task.js';
import { attachDomain, detachOnRelease, type DriverEnv, domainMm, type EntryOps, unitOf } from '../driver.js';
import { drainPrq, iopfForDomainRemove, iopfSetDevPasid, type UnitDriver } from '../queue.js';
import {
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
  CMD_NAMES,
  CMD_TYPE_SHIFT,
  DEV_TABLE_ENTRY,
  DTE_FLAG_GV_HI,
  DTE_FLAG_TV,
  DTE_FLAG_V,
  DTE_GCR3_SHIFT,
  DTE_GLX_SHIFT_HI,
  GCR3_ADDR_SHIFT,
  GCR3_ENTRY,
  GCR3_LEVEL_BITS,
  GCR3_TABLE_ENTRIES,
  GCR3_VALID,
  IOMMU_CMD,
  LOOP_TIMEOUT,
  PAGE_SHIFT,
  PPR_STATUS_MASK,
  PPR_STATUS_SHIFT,
  type AmdCmdType,
} from './amd_iommu_types.js';
import { AMD_PASID_BITS, type AmdIommu } from './hw.js';
import { defineAmdPasid } from './pasid.js';
import { defineAmdV2, setAmdEra } from './iommu_v2.js';

const C = 'drivers/iommu/amd/iommu.c';
/** An iommu_cmd: u32 data[4]. */
export type IommuCmd = readonly [number, number, number, number];
/** A page range: [start, end) in pages, start -1 for all of them (CMD_INV_IOMMU_ALL_PAGES_ADDRESS). */
export type Range = readonly [number, number];
export const ALL_PAGES: Range = [-1, -1];
/** dev_data->ats_qdep: the device's invalidate queue depth (model: a fixed 32). */
const ATS_QDEP = 32;

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    /** The command builders (pure: the iommu_cmd they fill is their result). */
    build_inv_iommu_pages(range: Range, domid: number, pasid: number, gn: boolean): IommuCmd;
    build_inv_iotlb_pages(devid: number, qdep: number, range: Range, pasid: number, gn: boolean): IommuCmd;
    build_completion_wait(iommu: UnitDriver, data: number): IommuCmd;
    build_inv_dte(devid: number): IommuCmd;
    build_complete_ppr(devid: number, pasid: number, status: number, tag: number, gn: boolean): IommuCmd;
    /** ++iommu->cmd_sem_val: the caller holds iommu->lock (the section it is called in). */
    get_cmdsem_val(iommu: UnitDriver): number;
    __iommu_queue_command_sync(t: KTask, iommu: UnitDriver, cmd: IommuCmd, sync: boolean, env: StepEnv): number;
    iommu_queue_command_sync(t: KTask, iommu: UnitDriver, cmd: IommuCmd, sync: boolean): KGen<number>;
    iommu_queue_command(t: KTask, iommu: UnitDriver, cmd: IommuCmd): KGen<number>;
    iommu_completion_wait(t: KTask, iommu: UnitDriver): KGen<number>;
    wait_on_sem(t: KTask, iommu: UnitDriver, data: number): KGen<number>;
    device_flush_iotlb(t: KTask, dev: DeviceInfo, range: Range, pasid: number, gn: boolean): KGen<number>;
    amd_iommu_dev_flush_pasid_pages(t: KTask, dev: DeviceInfo, pasid: number, range: Range): KGen;
    __get_gcr3_pte(t: KTask, dev: DeviceInfo, pasid: number, alloc: boolean): KGen<number>;
    update_gcr3(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct | undefined, set: boolean): KGen<number>;
    amd_iommu_set_gcr3(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number>;
    amd_iommu_clear_gcr3(t: KTask, dev: DeviceInfo, pasid: number): KGen<number>;
    device_flush_dte(t: KTask, dev: DeviceInfo): KGen<number>;
    set_dte_entry(t: KTask, dev: DeviceInfo): KGen;
    clear_dte_entry(t: KTask, dev: DeviceInfo): KGen;
    amd_iommu_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number): KGen<number>;
    amd_iommu_release_device(t: KTask, dev: DeviceInfo, domain: IommuDomain): KGen;
    /** blocked_domain.ops->attach_dev: the RID's GCR3 entry goes (detach_device), then the DTE (clear_dte_entry). */
    blocked_domain_attach_device(t: KTask, dev: DeviceInfo): KGen<number>;
    /** blocked_domain.ops->set_dev_pasid: amd_iommu_remove_dev_pasid of what was attached there. */
    blocked_domain_set_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, old: IommuDomain): KGen<number>;
  }
}

export function amdOf(env: DriverEnv, dev: DeviceInfo): AmdIommu {
  return unitOf(env, dev).unit as AmdIommu;
}

// ---- command encoding (the kernel's build_* helpers: pure; registered by name in defineCommandBuffer) ----

function withType(cmd: [number, number, number, number], type: AmdCmdType): IommuCmd {
  cmd[1] = (cmd[1] | (type << CMD_TYPE_SHIFT)) >>> 0;
  return cmd;
}

/** A page number's address as [lo, hi] words. */
function toWords(vpn: number): [number, number] {
  return [(vpn * 2 ** PAGE_SHIFT) >>> 0, Math.floor(vpn / 2 ** (32 - PAGE_SHIFT))];
}

/** build_inv_address: the page, or a naturally aligned power-of-two range with S set, as [lo, hi] words. */
export function buildInvAddress(range: Range): [number, number] {
  const [start, end] = range;
  if (start < 0) return [0xfffff000 | CMD_INV_IOMMU_PAGES_SIZE_MASK, CMD_INV_ALL_PAGES_HI];
  if (end - start <= 1) return toWords(start);
  // msb_diff: the highest page-number bit where start and end - 1 differ; the bits below it are set.
  const diff = start ^ (end - 1);
  const msb = 31 - Math.clz32(diff);
  if (msb + PAGE_SHIFT > 51) return [0xfffff000 | CMD_INV_IOMMU_PAGES_SIZE_MASK, CMD_INV_ALL_PAGES_HI];
  const [lo, hi] = toWords((start | (2 ** msb - 1)) >>> 0);
  return [(lo | CMD_INV_IOMMU_PAGES_SIZE_MASK) >>> 0, hi];
}

export function build_inv_iommu_pages(range: Range, domid: number, pasid: number, gn: boolean): IommuCmd {
  const [lo, hi] = buildInvAddress(range);
  const d2 = (lo | CMD_INV_IOMMU_PAGES_PDE_MASK | (gn ? CMD_INV_IOMMU_PAGES_GN_MASK : 0)) >>> 0;
  return withType([gn ? pasid : 0, domid, d2, hi], CMD_INV_IOMMU_PAGES);
}

export function build_inv_iotlb_pages(devid: number, qdep: number, range: Range, pasid: number, gn: boolean): IommuCmd {
  const [lo, hi] = buildInvAddress(range);
  const d0 = devid | ((qdep & 0xff) << 24) | (gn ? ((pasid >>> 8) & 0xff) << 16 : 0);
  const d1 = devid | (gn ? (pasid & 0xff) << 16 : 0);
  return withType([d0 >>> 0, d1, (lo | (gn ? CMD_INV_IOMMU_PAGES_GN_MASK : 0)) >>> 0, hi], CMD_INV_IOTLB_PAGES);
}

/** build_completion_wait: a store of data to the semaphore (iommu->cmd_sem_paddr: the unit's own word in the model). */
export function build_completion_wait(_iommu: UnitDriver, data: number): IommuCmd {
  return withType([CMD_COMPL_WAIT_STORE_MASK, 0, data >>> 0, 0], CMD_COMPL_WAIT);
}

export function build_inv_dte(devid: number): IommuCmd {
  return withType([devid, 0, 0, 0], CMD_INV_DEV_ENTRY);
}

export function build_complete_ppr(devid: number, pasid: number, status: number, tag: number, gn: boolean): IommuCmd {
  return withType(
    [devid, gn ? pasid : 0, gn ? CMD_INV_IOMMU_PAGES_GN_MASK : 0, ((tag & 0x1ff) | ((status & PPR_STATUS_MASK) << PPR_STATUS_SHIFT)) >>> 0],
    CMD_COMPLETE_PPR,
  );
}

export function cmdName(cmd: IommuCmd): string {
  return CMD_NAMES[(cmd[1] >>> CMD_TYPE_SHIFT) as AmdCmdType] ?? `command ${cmd[1] >>> CMD_TYPE_SHIFT}`;
}

/** `copy_cmd_to_buffer: NAME`, one string per command type (a label is hashed into the trace at every step). */
const COPY_LABELS = new Map<number, string>();
function copyLabel(cmd: IommuCmd): string {
  const type = cmd[1] >>> CMD_TYPE_SHIFT;
  let s = COPY_LABELS.get(type);
  if (s === undefined) {
    s = `copy_cmd_to_buffer: ${cmdName(cmd)}`;
    COPY_LABELS.set(type, s);
  }
  return s;
}
const COPY_COMPL_WAIT = `copy_cmd_to_buffer: ${CMD_NAMES[CMD_COMPL_WAIT]}`;

/** The model's domain ID of dev's GCR3 table (gcr3_info.domid; pdom_id_alloc's in the kernel): dev index + 1. */
export function gcr3Domid(dev: DeviceInfo): number {
  return dev.index + 1;
}

/**
 * What iommu_queue_command_sync's section reads and writes besides iommu->lock (and lockdep's share): the room it
 * waits for (head, tail), the command's slot at the tail, the tail, need_sync, the invalidations counter, and for a
 * COMPLETION_WAIT the semaphore's next value (get_cmdsem_val). Computed from the tail: the section's
 * bodyFootprint, which spin_lock_irqsave_section joins with the lock word's and lockdep's.
 */
export function amdQueueCommandFootprint(u: AmdIommu, stats: Stats, completionWait: boolean): Footprint {
  const tailAt = u.mmioWord('cmd_tail');
  const at = u.cmdSlot(Atomics.load(u.kernel.i32, tailAt));
  const fp = [read(u.mmioWord('cmd_head')), tailAt, u.mmioWord('need_sync'), stats.wordOf('invalidations')];
  for (let w = 0; w < IOMMU_CMD.words; w++) fp.push(at + w);
  if (completionWait) fp.push(u.mmioWord('cmd_sem_val'));
  return fp;
}

/** The command buffer's functions: the lock, the room, the semaphore. */
function defineCommandBuffer(env: DriverEnv): void {
  const k = env.k;
  k.fns.defineSync('build_inv_iommu_pages', C, build_inv_iommu_pages);
  k.fns.defineSync('build_inv_iotlb_pages', C, build_inv_iotlb_pages);
  k.fns.defineSync('build_completion_wait', C, build_completion_wait);
  k.fns.defineSync('build_inv_dte', C, build_inv_dte);
  k.fns.defineSync('build_complete_ppr', C, build_complete_ppr);
  // Under iommu->lock, with room for the command: copy_cmd_to_buffer (the command, then the tail register: the
  // hardware's doorbell) and need_sync.
  k.fns.defineSync('__iommu_queue_command_sync', C, (t, iommu, cmd, sync, e) => {
    void t;
    const u = iommu.unit as AmdIommu;
    u.cmdWrite(cmd, sync);
    const type = cmd[1] >>> CMD_TYPE_SHIFT;
    if (type !== CMD_COMPL_WAIT && type !== CMD_COMPLETE_PPR) env.stats.add('invalidations');
    e.send(u.actor, { type: 'cmdq.doorbell' });
    return 0;
  });
  // raw_spin_lock_irqsave(&iommu->lock); __iommu_queue_command_sync; unlock — one point: the section only stores
  // (the command, the tail, need_sync) with interrupts off, so no other CPU can see it half done. It spins
  // (udelay(1), the lock held) until more than 0x20 bytes — two commands — are free.
  k.fns.define('iommu_queue_command_sync', C, function* (t, iommu, cmd, sync) {
    const u = iommu.unit as AmdIommu;
    return yield* spin_lock_irqsave_section(
      k,
      t,
      iommu.lock,
      copyLabel(cmd),
      () => u.cmdFree() > 2,
      (e) => k.fn.__iommu_queue_command_sync(t, iommu, cmd, sync, e),
      `room in ${u.name}'s command buffer`,
      () => amdQueueCommandFootprint(u, env.stats, false),
    );
  });
  k.fns.define('iommu_queue_command', C, (t, iommu, cmd) => k.fn.iommu_queue_command_sync(t, iommu, cmd, true));
  k.fns.defineSync('get_cmdsem_val', C, (iommu) => (iommu.unit as AmdIommu).nextSemVal());
  // The semaphore's next value is taken under iommu->lock (get_cmdsem_val), so that the waits reach the buffer in
  // the order of their values — in the same section as the COMPLETION_WAIT's copy; the poll is outside the lock.
  // need_sync is read without the lock, as mainline does: it reads clear when another CPU's COMPLETION_WAIT follows
  // this CPU's invalidations, and the caller returns before the hardware ran them — a stale-translation window
  // that is mainline's, not the model's (races/000-amd-need-sync-skip.yaml, with a candidate fix).
  k.fns.define('iommu_completion_wait', C, function* (t, iommu) {
    const u = iommu.unit as AmdIommu;
    if (!(yield* k.stepOn(t, 'iommu->need_sync', [read(u.mmioWord('need_sync'))], () => u.needSync))) return 0;
    let data = 0;
    const ret = yield* spin_lock_irqsave_section(
      k,
      t,
      iommu.lock,
      COPY_COMPL_WAIT,
      () => u.cmdFree() > 2,
      (e) => {
        data = k.fn.get_cmdsem_val(iommu);
        return k.fn.__iommu_queue_command_sync(t, iommu, k.fn.build_completion_wait(iommu, data), false, e);
      },
      `room in ${u.name}'s command buffer`,
      () => amdQueueCommandFootprint(u, env.stats, true),
    );
    if (ret < 0) return ret;
    return yield* k.fn.wait_on_sem(t, iommu, data);
  });
  // Outside iommu->lock, comparing as a sequence ("iommu/amd: move wait_on_sem() out of spinlock"): a later wait's
  // store also completes this one. LOOP_TIMEOUT turns of udelay(1) — CPU time, a busy-wait — then the pr_alert and
  // -EIO (the commands are left to the hardware; the callers go on).
  k.fns.define('wait_on_sem', C, function* (t, iommu, data) {
    const u = iommu.unit as AmdIommu;
    const deadline = k.now() + LOOP_TIMEOUT / 1000;
    const done = (yield k.point(
      t,
      `wait_on_sem ${data}`,
      () => u.cmdSem - data >= 0 || k.now() >= deadline,
      () => u.cmdSem - data >= 0,
      {
        what: `${u.name}'s command buffer to complete CMD_COMPL_WAIT ${data}`,
        spins: true,
        wakeAt: () => deadline,
      },
      [read(u.mmioWord('cmd_sem'))],
    )) as boolean;
    if (done) return 0;
    yield* pr_alert(k, t, `AMD-Vi: IOMMU ${u.pciName}: Completion-Wait loop timed out`);
    return -EIO;
  });
}

/** The flushes of a {device, PASID}'s translations (mainline). */
function defineFlushes(env: DriverEnv): void {
  const k = env.k;
  k.fns.define('device_flush_iotlb', C, (t, dev, range, pasid, gn) =>
    k.fn.iommu_queue_command(t, unitOf(env, dev), k.fn.build_inv_iotlb_pages(dev.index, ATS_QDEP, range, pasid, gn)),
  );
  k.fns.define('amd_iommu_dev_flush_pasid_pages', C, function* (t, dev, pasid, range) {
    const iommu = unitOf(env, dev);
    yield* k.fn.iommu_queue_command(t, iommu, k.fn.build_inv_iommu_pages(range, gcr3Domid(dev), pasid, true));
    if (dev.caps.ats) yield* k.fn.device_flush_iotlb(t, dev, range, pasid, true);
    yield* k.fn.iommu_completion_wait(t, iommu);
  });
  k.fns.define('device_flush_dte', C, (t, dev) => k.fn.iommu_queue_command(t, unitOf(env, dev), k.fn.build_inv_dte(dev.index)));
}

/** The GCR3 table: the driver's walk and writes. */
function defineGcr3(env: DriverEnv): void {
  const k = env.k;
  const g = k.view(GCR3_ENTRY);
  k.fns.define('__get_gcr3_pte', C, function* (t, dev, pasid, alloc) {
    const u = amdOf(env, dev);
    const root = dev.index + 1;
    if (u.glxOf(dev.index) === 0) return u.gcr3LeafPtr(root, 0, pasid);
    const rp = u.gcr3RootPtr(root, pasid >>> GCR3_LEVEL_BITS);
    const leaf = pasid >>> GCR3_LEVEL_BITS;
    if ((g.val.READ_ONCE(rp) & GCR3_VALID) === 0) {
      if (!alloc) return 0;
      // iommu_alloc_page_node: the model's leaf tables are set aside with the table; this makes one reachable.
      yield* k.stepOn(t, '__get_gcr3_pte: *pte = iommu_virt_to_phys(root) | GCR3_VALID', [g.val.addr(rp)], () =>
        g.val.WRITE_ONCE(rp, ((leaf + 1) << GCR3_ADDR_SHIFT) | GCR3_VALID),
      );
    }
    return u.gcr3LeafPtr(root, leaf, pasid & (GCR3_TABLE_ENTRIES - 1));
  });
  k.fns.define('update_gcr3', C, function* (t, dev, pasid, mm, set) {
    const pte = yield* k.fn.__get_gcr3_pte(t, dev, pasid, true);
    if (pte === 0) return -12;
    const v = set && mm ? ((mm.id + 1) << GCR3_ADDR_SHIFT) | GCR3_VALID : 0;
    yield* k.stepOn(t, set ? 'update_gcr3: *pte = (gcr3 & PAGE_MASK) | GCR3_VALID' : 'update_gcr3: *pte = 0', [g.val.addr(pte)], () => g.val.WRITE_ONCE(pte, v));
    // dev_flush_pasid_all
    yield* k.fn.amd_iommu_dev_flush_pasid_pages(t, dev, pasid, ALL_PAGES);
    return 0;
  });
  k.fns.define('amd_iommu_set_gcr3', C, (t, dev, pasid, mm) => k.fn.update_gcr3(t, dev, pasid, mm, true));
  k.fns.define('amd_iommu_clear_gcr3', C, (t, dev, pasid) => k.fn.update_gcr3(t, dev, pasid, undefined, false));
}

/** {dev, pasid}'s GCR3 leaf entry (its word offset), or the root's when GLX > 0 and no leaf table is reachable yet. */
export function gcr3Ptr(env: DriverEnv, dev: DeviceInfo, pasid: number): number {
  const u = amdOf(env, dev);
  const root = dev.index + 1;
  if (u.glxOf(dev.index) === 0) return u.gcr3LeafPtr(root, 0, pasid);
  const rp = u.gcr3RootPtr(root, pasid >>> GCR3_LEVEL_BITS);
  if ((env.k.view(GCR3_ENTRY).val.get(rp) & GCR3_VALID) === 0) return rp;
  return u.gcr3LeafPtr(root, pasid >>> GCR3_LEVEL_BITS, pasid & (GCR3_TABLE_ENTRIES - 1));
}

/**
 * The words gcr3Ptr and gcr3Valid read: the leaf entry, or with GLX > 0 the root's entry and, when it points at
 * a leaf table, the leaf's (computed: whether the leaf is reachable is shared state).
 */
export function gcr3Footprint(env: DriverEnv, dev: DeviceInfo, pasid: number): Footprint {
  const u = amdOf(env, dev);
  const root = dev.index + 1;
  if (u.glxOf(dev.index) === 0) return [read(u.gcr3LeafPtr(root, 0, pasid))];
  const rp = u.gcr3RootPtr(root, pasid >>> GCR3_LEVEL_BITS);
  if ((env.k.view(GCR3_ENTRY).val.get(rp) & GCR3_VALID) === 0) return [read(rp)];
  return [read(rp), read(u.gcr3LeafPtr(root, pasid >>> GCR3_LEVEL_BITS, pasid & (GCR3_TABLE_ENTRIES - 1)))];
}

/** Is {dev, pasid}'s GCR3 entry valid now (the driver's bookkeeping read: its pdom_dev_data / pasid_state lists). */
export function gcr3Valid(env: DriverEnv, dev: DeviceInfo, pasid: number): boolean {
  const u = amdOf(env, dev);
  const p = gcr3Ptr(env, dev, pasid);
  // A root entry stands for a leaf table not reachable yet: no leaf entry of it is valid.
  if (u.glxOf(dev.index) > 0 && p === u.gcr3RootPtr(dev.index + 1, pasid >>> GCR3_LEVEL_BITS)) return false;
  return (env.k.view(GCR3_ENTRY).val.get(p) & GCR3_VALID) !== 0;
}

/** The PASIDs of dev with a valid GCR3 entry (RID's included): what the device's ATC may hold translations of. */
function liveGcr3(env: DriverEnv, dev: DeviceInfo): number[] {
  const out: number[] = [];
  for (let pasid = 0; pasid < 1 << Math.min(dev.caps.pasidBits, AMD_PASID_BITS); pasid++) if (gcr3Valid(env, dev, pasid)) out.push(pasid);
  return out;
}

/** The device table entry and the blocked domain. */
function defineDte(env: DriverEnv): void {
  const k = env.k;
  const dte = k.view(DEV_TABLE_ENTRY);
  k.fns.define('set_dte_entry', C, function* (t, dev) {
    const u = amdOf(env, dev);
    const p = u.dtePtr(dev.index);
    const glx = u.glxOf(dev.index);
    yield* k.stepOn(t, 'set_dte_entry: data[1] = domid | GCR3 root', [dte.data1_lo.addr(p)], () =>
      dte.data1_lo.WRITE_ONCE(p, (gcr3Domid(dev) | ((dev.index + 1) << DTE_GCR3_SHIFT)) >>> 0),
    );
    yield* k.stepOn(t, 'set_dte_entry: data[0] = V | TV | GV | GLX', [dte.data0_hi.addr(p), dte.data0_lo.addr(p)], () => {
      dte.data0_hi.WRITE_ONCE(p, DTE_FLAG_GV_HI | (glx << DTE_GLX_SHIFT_HI));
      dte.data0_lo.WRITE_ONCE(p, DTE_FLAG_V | DTE_FLAG_TV);
    });
    yield* k.fn.device_flush_dte(t, dev);
    yield* k.fn.iommu_completion_wait(t, unitOf(env, dev));
  });
  // V left set, no translation: the unit aborts every request of the device. Then what the unit and the device
  // cached under it: the DTE, the domain's IOTLB entries, the ATC of every live PASID.
  k.fns.define('clear_dte_entry', C, function* (t, dev) {
    const live = yield* k.step(t, 'dev_data->gcr3_info', () => liveGcr3(env, dev));
    const p = amdOf(env, dev).dtePtr(dev.index);
    yield* k.stepOn(t, 'clear_dte_entry: data[0] = DTE_FLAG_V', [dte.data0_hi.addr(p), dte.data0_lo.addr(p)], () => {
      dte.data0_hi.WRITE_ONCE(p, 0);
      dte.data0_lo.WRITE_ONCE(p, DTE_FLAG_V);
    });
    const iommu = unitOf(env, dev);
    yield* k.fn.device_flush_dte(t, dev);
    yield* k.fn.iommu_queue_command(t, iommu, k.fn.build_inv_iommu_pages(ALL_PAGES, gcr3Domid(dev), 0, false));
    if (dev.caps.ats)
      for (const pasid of [IOMMU_NO_PASID, ...live.filter((p) => p !== IOMMU_NO_PASID)])
        yield* k.fn.device_flush_iotlb(t, dev, ALL_PAGES, pasid, true);
    yield* k.fn.iommu_completion_wait(t, iommu);
  });
  k.fns.define('blocked_domain_attach_device', C, function* (t, dev) {
    if (gcr3Valid(env, dev, IOMMU_NO_PASID)) yield* k.call(t, 'detach_device', k.fn.amd_iommu_clear_gcr3(t, dev, IOMMU_NO_PASID));
    yield* k.fn.clear_dte_entry(t, dev);
    return 0;
  });
  k.fns.define('blocked_domain_set_dev_pasid', C, function* (t, dev, pasid, old) {
    yield* k.fn.amd_iommu_remove_dev_pasid(t, dev, pasid, old);
    return 0;
  });
  k.fns.define('amd_iommu_release_device', C, (t, _dev, domain) => detachOnRelease(env, t, domain, 'detach_device: dev_data->domain'));
}

/** A paging domain the core attaches through a group at a {device, PASID}: its I/O page table in the GCR3 entry. */
function defineAttach(env: DriverEnv): void {
  const k = env.k;
  const entry: EntryOps = {
    present: (dev, pasid) => gcr3Valid(env, dev, pasid),
    install: (t, dev, pasid, mm) => k.fn.amd_iommu_set_gcr3(t, dev, pasid, mm),
    // The GCR3 entry is one 64-bit word: a replace is one write, then the flush.
    *replace(t, dev, pasid, mm) {
      yield* k.fn.amd_iommu_set_gcr3(t, dev, pasid, mm);
    },
    *remove(t, dev, pasid) {
      yield* k.fn.amd_iommu_clear_gcr3(t, dev, pasid);
    },
  };
  const setDevPasid = (clear: boolean) => (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number) =>
    domain.obj === 0 && domain.type !== 'blocked'
      ? k.fn.amd_iommu_set_gcr3(t, dev, pasid, domainMm(domain))
      : attachDomain(env, t, entry, domain, dev, pasid, clear);
  k.fns.definePlanted('amd_iommu_set_dev_pasid', C, env.attachBug ?? 'none', {
    none: setDevPasid(false),
    'clear-on-failure': setDevPasid(true),
  });
}

/** The driver's kernel functions, by name (once per kernel: every AMD unit shares them), both eras' included. */
export function defineAmdFunctions(env: DriverEnv): void {
  if (env.k.fns.has('iommu_queue_command')) return;
  defineCommandBuffer(env);
  defineFlushes(env);
  defineGcr3(env);
  defineDte(env);
  defineAttach(env);
  defineAmdPasid(env);
  defineAmdV2(env);
}

/**
 * The driver's iommu_ops. The SVA path is the era's: notifier=domain (mainline) has pasid.c's
 * iommu_sva_set_dev_pasid and the SVA domain's MMU notifier (sva_mn_release, sva_arch_invalidate_secondary_tlbs);
 * notifier=bond (seed 000's era) the v2 driver's amd_iommu_bind_pasid / amd_iommu_unbind_pasid and its
 * per-PASID MMU notifier (mn_release, which calls the device driver's invalidate_ctx callback first; mn_invalidate_range).
 */
export function amdOps(env: DriverEnv, era: SvaNotifier): IommuOps {
  const k = env.k;
  setAmdEra(env, era);
  defineAmdFunctions(env);
  const v2 = era === 'bond';
  const svaSet = (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number) =>
    v2 ? k.fn.amd_iommu_bind_pasid(t, dev, pasid, domainMm(domain)) : k.fn.iommu_sva_set_dev_pasid(t, domain, dev, pasid);
  const domainOps: IommuDomainOps = {
    // The RID's requests walk GCR3 entry 0, under a DTE that translates: a blocked DTE is set up again first.
    *attach_dev(t, domain, dev) {
      if (domain.type === 'blocked') return yield* k.fn.blocked_domain_attach_device(t, dev);
      if (unitOf(env, dev).unit.blocks(dev.index, IOMMU_NO_PASID)) yield* k.fn.set_dte_entry(t, dev);
      return yield* domainOps.set_dev_pasid(t, domain, dev, IOMMU_NO_PASID, undefined);
    },
    set_dev_pasid: (t, domain, dev, pasid, old) =>
      domain.type === 'blocked' && old !== undefined
        ? k.fn.blocked_domain_set_dev_pasid(t, dev, pasid, old)
        : iopfSetDevPasid(k, t, unitOf(env, dev), domain, dev, old, () =>
            domain.type === 'sva' ? svaSet(t, domain, dev, pasid) : k.fn.amd_iommu_set_dev_pasid(t, domain, dev, pasid),
          ),
    iotlb_sync: (t, _domain, dev, pasid, start, end) =>
      v2 ? k.fn.mn_invalidate_range(t, dev, pasid, start, end) : k.fn.sva_arch_invalidate_secondary_tlbs(t, dev, pasid, start, end),
  };
  return {
    driver: 'AMD-Vi',
    nativePasid: 'device',
    releaseNotifiesDriver: v2,
    dev_enable_feat: (_dev, _feat, flags) =>
      (flags & SVM_FLAG_SUPERVISOR_MODE) !== 0 ? { err: -EOPNOTSUPP, why: 'AMD IOMMUv2 binds no supervisor PASIDs' } : { err: 0, why: '' },
    pasid_range: (dev) => [1, (1 << Math.min(dev.caps.pasidBits, AMD_PASID_BITS)) - 1],
    *remove_dev_pasid(t, dev, pasid, domain, why) {
      if (why === 'release') return yield* v2 ? k.fn.mn_release(t, dev, pasid) : k.fn.sva_mn_release(t, dev, pasid);
      if (!v2) return void (yield* k.fn.blocked_domain_set_dev_pasid(t, dev, pasid, domain));
      // The v2 driver's era: the device driver's amd_iommu_unbind_pasid (no blocked domain then).
      yield* k.fn.amd_iommu_unbind_pasid(t, dev, pasid);
      yield* iopfForDomainRemove(k, t, unitOf(env, dev), domain, dev);
    },
    drain_prq: (t, dev, pasid) => drainPrq(k, t, unitOf(env, dev), dev, pasid),
    release_device: (t, dev, domain) => k.fn.amd_iommu_release_device(t, dev, domain),
    default_domain_ops: domainOps,
  };
}
