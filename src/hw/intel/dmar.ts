// drivers/iommu/intel/dmar.c: qi_submit_sync — under qi->q_lock (interrupts off) wait for room for the descriptors
// and a wait descriptor, copy them into the invalidation queue, mark their desc_status QI_IN_USE, move the tail
// (DMAR_IQT_REG), then poll the wait descriptor's status until the hardware has written QI_DONE there, dropping the
// lock around each cpu_relax() but keeping interrupts off ("to prevent interrupt context to queue another cmd") —
// a busy-wait, never a sleep (its points are `spins`), each turn calling qi_check_fault. Then the descriptors are
// freed and their slots reclaimed (reclaim_free_desc). qi_check_fault handles an invalidation time-out (ITE: a
// device-TLB invalidation the device never answered) as dmar.c does: qi_dump_fault's lines, every pending wait
// descriptor marked QI_ABORT, ITE cleared ("Invalidation Time-out Error (ITE) cleared"), and -EAGAIN, on which
// qi_submit_sync starts over (restart:) — or -ETIMEDOUT when ITESID names no device of the unit. Not modelled:
// IQE (the model's descriptors are well formed), ICE (no completion errors), the device-presence check of
// -ETIMEDOUT (pci_device_is_present).
import type { KTask } from '../../kernel/context.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { defineSpinlock, type Spinlock, spin_lock_irqsave, spin_unlock_irqrestore } from '../../kernel/spinlock.js';
import type { Stats } from '../../core/stats.js';
import type { DriverEnv } from '../driver.js';
import type { IommuUnit } from '../iommu.js';
import type { UnitDriver } from '../queue.js';
import { VtdUnit } from './hw.js';
import {
  DMA_FSTS_ITE,
  QI_ABORT,
  QI_DEIOTLB_TYPE,
  QI_DONE,
  QI_EIOTLB_TYPE,
  QI_FREE,
  QI_IN_USE,
  QI_PC_TYPE,
  type QiDesc,
  qi_desc_wait,
  qi_type_string,
  qiName,
} from './qi.js';
import { EAGAIN, ETIMEDOUT } from '../../kernel/errno.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import { spin_lock, spin_unlock } from '../../kernel/spinlock.js';

/** qi_submit_sync's options: QI_OPT_WAIT_DRAIN asks the wait descriptor to drain the page requests (QI_IWD_PRQ_DRAIN). */
export const QI_OPT_WAIT_DRAIN = 1;

/** The driver's per-unit state: qi->q_lock (the shared UnitDriver's lock) and iommu->lock. */
export interface VtdUnitDriver extends UnitDriver {
  readonly unit: VtdUnit;
  readonly iommuLock: Spinlock;
}

export function defineVtdUnitDriver(k: Kernel, unit: IommuUnit): VtdUnitDriver {
  if (!(unit instanceof VtdUnit)) throw new Error(`${unit.name} is not a VT-d unit`);
  return { unit, lock: defineSpinlock(k, `&${unit.spec.names.cmdqLock}`), iommuLock: defineSpinlock(k, '&iommu->lock') };
}

/** The VT-d driver state of the unit dev is behind. */
export function vtdOf(env: DriverEnv, iommu: number): VtdUnitDriver {
  const u = env.units[iommu];
  if (!u || !(u.unit instanceof VtdUnit)) throw new Error(`no VT-d unit ${iommu}`);
  return u as unknown as VtdUnitDriver;
}

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    qi_submit_sync(t: KTask, iommu: number, descs: readonly QiDesc[], options: number): KGen<number>;
    qi_check_fault(t: KTask, iommu: number, index: number, waitIndex: number): KGen<number>;
  }
}

/** Queue descs and the wait descriptor if there is room (perform only): the wait's index, or -1. */
function qiQueue(u: VtdUnit, descs: readonly QiDesc[], options: number, stats: Stats): number {
  const q = u.view.q;
  const qp = u.qinvalPtr;
  const count = descs.length;
  if (u.freeCnt() < count + 2) return -1;
  const index = q.free_head.get(qp);
  const waitIndex = (index + count) % u.qiLength;
  const all = [...descs, qi_desc_wait(u.statusPtr(waitIndex), (options & QI_OPT_WAIT_DRAIN) !== 0)];
  all.forEach((d, i) => {
    const at = u.descPtr(index + i);
    u.view.desc.qw0.set(at, d.qw0);
    u.view.desc.qw0_hi.set(at, d.qw0_hi);
    u.view.desc.qw1.set(at, d.qw1);
    u.view.desc.qw1_hi.set(at, d.qw1_hi);
    Atomics.store(u.kernel.i32, u.statusPtr(index + i), QI_IN_USE);
  });
  q.free_head.set(qp, (index + count + 1) % u.qiLength);
  u.addFree(-(count + 1));
  // writel(qi->free_head << shift, iommu->reg + DMAR_IQT_REG)
  u.view.reg.iqt.set(u.regsPtr, q.free_head.get(qp));
  stats.add('invalidations', descs.filter((d) => [QI_PC_TYPE, QI_EIOTLB_TYPE, QI_DEIOTLB_TYPE].includes(d.qw0 & 0xf)).length);
  return waitIndex;
}

/**
 * The submission is over (done, or aborted): its descriptors and its wait marked done; reclaim_free_desc gives
 * back every done or aborted slot from the tail.
 */
function qiReclaim(u: VtdUnit, index: number, count: number): void {
  for (let i = 0; i <= count; i++) Atomics.store(u.kernel.i32, u.statusPtr(index + i), QI_DONE);
  const q = u.view.q;
  const qp = u.qinvalPtr;
  for (;;) {
    const tail = q.free_tail.get(qp);
    const s = Atomics.load(u.kernel.i32, u.statusPtr(tail));
    if ((s !== QI_DONE && s !== QI_ABORT) || u.freeCnt() >= u.qiLength) return;
    Atomics.store(u.kernel.i32, u.statusPtr(tail), QI_FREE);
    q.free_tail.set(qp, (tail + 1) % u.qiLength);
    u.addFree(1);
  }
}

/**
 * qiQueue's words, from free_head (computed: the slots are shared state): free_head, free_cnt, IQT, the
 * invalidations counter, and each slot's four descriptor words and desc_status.
 */
function qiQueueFootprint(u: VtdUnit, count: number, stats: Stats): Footprint {
  const q = u.view.q;
  const qp = u.qinvalPtr;
  const d = u.view.desc;
  const index = q.free_head.get(qp);
  const fp = [q.free_head.addr(qp), q.in_use.addr(qp), u.view.reg.iqt.addr(u.regsPtr), stats.wordOf('invalidations')];
  for (let i = 0; i <= count; i++) {
    const at = u.descPtr(index + i);
    fp.push(d.qw0.addr(at), d.qw0_hi.addr(at), d.qw1.addr(at), d.qw1_hi.addr(at), u.statusPtr(index + i));
  }
  return fp;
}

/**
 * qiReclaim's words (computed: how far the tail moves is shared state): the submission's desc_status, free_tail,
 * free_cnt, and the slots from the tail it frees — the one it stops at read only.
 */
function qiReclaimFootprint(u: VtdUnit, index: number, count: number): Footprint {
  const q = u.view.q;
  const qp = u.qinvalPtr;
  const n = u.qiLength;
  const fp = [q.free_tail.addr(qp), q.in_use.addr(qp)];
  for (let i = 0; i <= count; i++) fp.push(u.statusPtr(index + i));
  let tail = q.free_tail.get(qp);
  let inUse = q.in_use.get(qp);
  for (let i = 0; i < n; i++) {
    const at = u.statusPtr(tail);
    const s = (tail - index + n) % n <= count ? QI_DONE : Atomics.load(u.kernel.i32, at);
    const frees = (s === QI_DONE || s === QI_ABORT) && inUse > 0;
    if (!fp.includes(at)) fp.push(frees ? at : read(at));
    if (!frees) break;
    tail = (tail + 1) % n;
    inUse--;
  }
  return fp;
}

/** "%llx" of a descriptor's quadword. */
function qw(lo: number, hi: number): string {
  return (BigInt(hi >>> 0) * 2n ** 32n + BigInt(lo >>> 0)).toString(16);
}

/** qi_dump_fault's lines for an ITE (pr_fmt "DMAR: "): the time-out's SID, the descriptors at IQH and before it. */
function qiDumpFault(u: VtdUnit): string[] {
  const head = u.view.reg.iqh.get(u.regsPtr);
  const line = (what: string, i: number) => {
    const p = u.descPtr(i);
    const d = u.view.desc;
    return `DMAR: ${what}: ${qi_type_string(d.qw0.get(p) & 0xf)} qw0 = 0x${qw(d.qw0.get(p), d.qw0_hi.get(p))}, qw1 = 0x${qw(d.qw1.get(p), d.qw1_hi.get(p))}`;
  };
  return [
    `DMAR: VT-d detected Invalidation Time-out Error: SID ${u.view.reg.itesid.get(u.regsPtr).toString(16)}`,
    line('QI HEAD', head),
    line('QI PRIOR', (head + u.qiLength - 1) % u.qiLength),
  ];
}

/** qiDumpFault's words (computed from IQH): IQH, ITESID, and the descriptors at IQH and before it. */
function qiDumpFaultFootprint(u: VtdUnit): Footprint {
  const r = u.view.reg;
  const d = u.view.desc;
  const head = r.iqh.get(u.regsPtr);
  const fp = [read(r.iqh.addr(u.regsPtr)), read(r.itesid.addr(u.regsPtr))];
  for (const i of [head, (head + u.qiLength - 1) % u.qiLength]) {
    const at = u.descPtr(i);
    fp.push(read(d.qw0.addr(at)), read(d.qw0_hi.addr(at)), read(d.qw1.addr(at)), read(d.qw1_hi.addr(at)));
  }
  return fp;
}

/** iteAbort's words (computed from IQH and IQT): the desc_status it may abort, ite_abort, FSTS, ITESID read. */
function iteAbortFootprint(u: VtdUnit): Footprint {
  const r = u.view.reg;
  const p = u.regsPtr;
  const tail = r.iqt.get(p);
  const fp = [read(r.iqt.addr(p)), read(r.iqh.addr(p)), r.ite_abort.addr(p), r.fsts.addr(p), read(r.itesid.addr(p))];
  for (let i = (r.iqh.get(p) + u.qiLength - 1) % u.qiLength; i !== tail; i = (i + 1) % u.qiLength) fp.push(u.statusPtr(i));
  return fp;
}

/**
 * qi_check_fault's ITE: every descriptor pending since the one that timed out (IQH - 1 up to IQT) marked
 * QI_ABORT if in use, ITE cleared (the queue goes on, aborting those wait descriptors: the doorbell tells the
 * model's unit), and the time-out's SID.
 */
function iteAbort(u: VtdUnit, send: (to: number, msg: { type: 'cmdq.doorbell' }) => void): number {
  const r = u.view.reg;
  const tail = r.iqt.get(u.regsPtr);
  for (let i = (r.iqh.get(u.regsPtr) + u.qiLength - 1) % u.qiLength; i !== tail; i = (i + 1) % u.qiLength) {
    if (Atomics.load(u.kernel.i32, u.statusPtr(i)) === QI_IN_USE) Atomics.store(u.kernel.i32, u.statusPtr(i), QI_ABORT);
  }
  r.ite_abort.set(u.regsPtr, tail);
  r.fsts.set(u.regsPtr, r.fsts.get(u.regsPtr) & ~DMA_FSTS_ITE);
  send(u.actor, { type: 'cmdq.doorbell' });
  return r.itesid.get(u.regsPtr);
}

/** dmar.c's kernel functions, by name. */
export function defineIntelDmar(env: DriverEnv): void {
  const k = env.k;
  const D = 'drivers/iommu/intel/dmar.c';
  // The unit's log is the driver's own (not in the run's memory).
  const printk = (t: KTask, u: VtdUnit, line: string) => k.stepOn(t, line, [], () => void u.log.push(line));
  k.fns.define('qi_check_fault', D, function* (t, iommu, _index, waitIndex) {
    const u = vtdOf(env, iommu).unit;
    const status = () => Atomics.load(k.i32, u.statusPtr(waitIndex));
    if ((yield* k.stepOn(t, 'qi_check_fault: desc_status[wait_index]', [read(u.statusPtr(waitIndex))], status)) === QI_ABORT) return -EAGAIN;
    const fsts = u.view.reg.fsts;
    const fault = yield* k.stepOn(t, 'readl(iommu->reg + DMAR_FSTS_REG)', [read(fsts.addr(u.regsPtr))], () => fsts.get(u.regsPtr));
    if ((fault & DMA_FSTS_ITE) === 0) return 0;
    for (const l of yield* k.stepOn(t, 'qi_dump_fault', () => qiDumpFaultFootprint(u), () => qiDumpFault(u))) yield* printk(t, u, l);
    const ite = 'ITE: desc_status[head] = QI_ABORT; writel(DMA_FSTS_ITE, DMAR_FSTS_REG)';
    const sid = yield* k.stepOn(t, ite, () => iteAbortFootprint(u), (e) => iteAbort(u, (to, msg) => e.send(to, msg)));
    yield* printk(t, u, 'DMAR: Invalidation Time-out Error (ITE) cleared');
    // device_rbtree_find(iommu, ite_sid): no device of the unit has it, no need to retry.
    if (sid !== 0 && u.deviceOfSid(sid) < 0) return -ETIMEDOUT;
    return status() === QI_ABORT ? -EAGAIN : 0;
  });
  k.fns.define('qi_submit_sync', D, function* (t, iommu, descs, options) {
    for (;;) {
      const rc = yield* submitOnce(env, t, iommu, descs, options);
      // restart: the wait descriptor was aborted (an ITE): submit the descriptors again.
      if (rc !== -EAGAIN) return rc;
    }
  });
}

/** One pass of qi_submit_sync, from restart: to the unlock: 0, or qi_check_fault's error. */
function* submitOnce(env: DriverEnv, t: KTask, iommu: number, descs: readonly QiDesc[], options: number): KGen<number> {
  const k = env.k;
  const drv = vtdOf(env, iommu);
  const u = drv.unit;
  const label = `${u.spec.cmdqName}: ${[...descs.map(qiName), 'QI_IWD'].join('+')}`;
  let flags = yield* spin_lock_irqsave(k, t, drv.lock);
  let waitIndex = -1;
  let index = 0;
  for (;;) {
    waitIndex = yield* k.stepOn(t, label, () => qiQueueFootprint(u, descs.length, env.stats), (senv) => {
      index = u.view.q.free_head.get(u.qinvalPtr);
      const w = qiQueue(u, descs, options, env.stats);
      if (w >= 0) senv.send(u.actor, { type: 'cmdq.doorbell' });
      return w;
    });
    if (waitIndex >= 0) break;
    // while (qi->free_cnt < count + 2): drop the lock, cpu_relax(), take it again.
    yield* spin_unlock_irqrestore(k, t, drv.lock, flags);
    const inUse = u.view.q.in_use.addr(u.qinvalPtr);
    yield k.point(
      t,
      `${u.spec.cmdqName} full`,
      () => u.freeCnt() >= descs.length + 2,
      () => undefined,
      { what: `room in ${u.name}'s invalidation queue`, spins: true },
      [read(inUse)],
    );
    flags = yield* spin_lock_irqsave(k, t, drv.lock);
  }
  // while (READ_ONCE(qi->desc_status[wait_index]) != QI_DONE): qi_check_fault, then the lock dropped around
  // cpu_relax() with interrupts left off (raw_spin_unlock / raw_spin_lock).
  const status = u.statusPtr(waitIndex);
  const fsts = u.view.reg.fsts.addr(u.regsPtr);
  let rc = 0;
  for (;;) {
    rc = yield* k.fn.qi_check_fault(t, iommu, index, waitIndex);
    if (rc !== 0) break;
    yield* spin_unlock(k, t, drv.lock);
    // model: once a lockup detector has reported the task, an ITE no longer ends its poll — the restarts would go
    // on for ever as the kernel's do, showing nothing more, and the run could not end; it spins on its wait.
    const ready = () => Atomics.load(k.i32, status) !== QI_IN_USE || ((Atomics.load(k.i32, fsts) & DMA_FSTS_ITE) !== 0 && !k.lockedUp(t));
    yield k.point(t, `QI_IWD ${waitIndex}`, ready, () => undefined, {
      what: `${u.name}'s QI to complete the wait descriptor at ${waitIndex} (${label})`,
      spins: true,
      watch: [status, fsts],
    }, [read(status), read(fsts)]);
    yield* spin_lock(k, t, drv.lock);
    if (Atomics.load(k.i32, status) === QI_DONE) break;
  }
  yield* k.stepOn(t, 'reclaim_free_desc', () => qiReclaimFootprint(u, index, descs.length), () => qiReclaim(u, index, descs.length));
  yield* spin_unlock_irqrestore(k, t, drv.lock, flags);
  return rc;
}
