// drivers/iommu/intel/dmar.c: qi_submit_sync — under qi->q_lock (interrupts off) wait for room for the descriptors
// and a wait descriptor, copy them into the invalidation queue, mark their desc_status QI_IN_USE, move the tail
// (DMAR_IQT_REG), then poll the wait descriptor's status until the hardware has written QI_DONE there, dropping the
// lock around each cpu_relax() — a busy-wait, never a sleep (its points are `spins`). Then the descriptors are
// marked done and their slots reclaimed (reclaim_free_desc). Not modelled: qi_check_fault's IQE/ITE/ICE recovery
// (an invalidation the device never answers keeps the queue waiting, as the shared queue code does).
import type { KTask } from '../../kernel/context.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { defineSpinlock, type Spinlock, spin_lock_irqsave, spin_unlock_irqrestore } from '../../kernel/spinlock.js';
import type { Stats } from '../../core/stats.js';
import type { DriverEnv } from '../driver.js';
import type { IommuUnit } from '../iommu.js';
import type { UnitDriver } from '../queue.js';
import { VtdUnit } from './hw.js';
import { QI_DONE, QI_EIOTLB_TYPE, QI_DEIOTLB_TYPE, QI_FREE, QI_ABORT, QI_IN_USE, type QiDesc, qi_desc_wait, qiName, QI_PC_TYPE } from './qi.js';

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

/** The descriptors before the wait are done; reclaim_free_desc gives back every done slot from the tail. */
function qiReclaim(u: VtdUnit, index: number, count: number): void {
  for (let i = 0; i < count; i++) Atomics.store(u.kernel.i32, u.statusPtr(index + i), QI_DONE);
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

/** dmar.c's kernel functions, by name. */
export function defineIntelDmar(env: DriverEnv): void {
  const k = env.k;
  k.fns.define('qi_submit_sync', 'drivers/iommu/intel/dmar.c', function* (t, iommu, descs, options) {
    const drv = vtdOf(env, iommu);
    const u = drv.unit;
    const label = `${u.spec.cmdqName}: ${[...descs.map(qiName), 'QI_IWD'].join('+')}`;
    let flags = yield* spin_lock_irqsave(k, t, drv.lock);
    let waitIndex = -1;
    let index = 0;
    for (;;) {
      waitIndex = yield* k.step(t, label, (senv) => {
        index = u.view.q.free_head.get(u.qinvalPtr);
        const w = qiQueue(u, descs, options, env.stats);
        if (w >= 0) senv.send(u.actor, { type: 'cmdq.doorbell' });
        return w;
      });
      if (waitIndex >= 0) break;
      // while (qi->free_cnt < count + 2): drop the lock, cpu_relax(), take it again.
      yield* spin_unlock_irqrestore(k, t, drv.lock, flags);
      yield k.point(t, `${u.spec.cmdqName} full`, () => u.freeCnt() >= descs.length + 2, () => undefined, {
        what: `room in ${u.name}'s invalidation queue`,
        spins: true,
      });
      flags = yield* spin_lock_irqsave(k, t, drv.lock);
    }
    // while (READ_ONCE(qi->desc_status[wait_index]) != QI_DONE): the lock is dropped around cpu_relax().
    yield* spin_unlock_irqrestore(k, t, drv.lock, flags);
    const status = u.statusPtr(waitIndex);
    yield k.point(t, `QI_IWD ${waitIndex}`, () => Atomics.load(k.i32, status) === QI_DONE, () => undefined, {
      what: `${u.name}'s QI to complete the wait descriptor at ${waitIndex} (${label})`,
      spins: true,
      watch: [status],
    });
    flags = yield* spin_lock_irqsave(k, t, drv.lock);
    yield* k.step(t, 'reclaim_free_desc', () => qiReclaim(u, index, descs.length));
    yield* spin_unlock_irqrestore(k, t, drv.lock, flags);
    return 0;
  });
}
