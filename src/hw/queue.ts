// What the three drivers share on their queues' side (each submits to its own queue: src/hw/<vendor>/): the
// per-unit driver state (its command-queue lock, its iopf queue), the generic drain of a PASID's page requests,
// and iopf enabled for a device while a domain with a fault handler is attached (the drivers' iopf_refcount).
import type { IopfEnable, IopfQueue } from '../core/io-pgfault.js';
import { iopfFaultParam } from '../core/io-pgfault.js';
import type { IommuDomain } from '../core/ops.js';
import type { DeviceInfo } from '../core/types.js';
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { kmemleak_not_leak } from '../kernel/slab.js';
import { defineSpinlock, type Spinlock } from '../kernel/spinlock.js';
import type { IommuUnit } from './iommu.js';

export interface UnitDriver {
  readonly unit: IommuUnit;
  readonly lock: Spinlock;
  /**
   * The unit's iopf queue, allocated with its page-request thread (definePrqThread), and the static offset of its
   * devices' iopf_refcount (info->iopf_refcount, master->iopf_refcount), by device index; when iopf is enabled
   * for a device (policy iopf).
   */
  iopf?: { readonly queue: IopfQueue; readonly refs: number; readonly slot: ReadonlyMap<number, number>; readonly enable: IopfEnable };
}

export function defineUnitDriver(k: Kernel, unit: IommuUnit): UnitDriver {
  return { unit, lock: defineSpinlock(k, `&${unit.spec.names.cmdqLock}`) };
}

/**
 * Wait until no page request of {dev, pasid} is queued or being handled: the hardware queue first, then the
 * iopf workqueue the requests were reported to (iopf_queue_flush_dev, when iopf is enabled for dev).
 */
export function* drainPrq(k: Kernel, t: KTask, drv: UnitDriver, dev: DeviceInfo, pasid: number): KGen {
  const unit = drv.unit;
  yield* k.call(
    t,
    unit.spec.names.drainPrq,
    (function* () {
      k.mightSleep(t, 'drivers/iommu/intel/prq.c:78');
      yield k.point(
        t,
        `drain ${unit.spec.prqName} of PASID ${pasid}`,
        () => unit.prqPending(dev.index, pasid) === 0,
        () => undefined,
        { what: `${unit.name}'s ${unit.spec.prqName} to drain page requests of ${dev.name} PASID ${pasid}` },
        () => unit.prqPendingFootprint(),
      );
      if (iopfRefcount(k, drv, dev) > 0) yield* k.fn.iopf_queue_flush_dev(t, dev);
    })(),
  );
}

/** iopf_queue_flush_dev, when iopf is enabled for dev (a driver's drain of a PASID's page requests ends with it). */
export function* iopfQueueFlushIfEnabled(k: Kernel, t: KTask, drv: UnitDriver, dev: DeviceInfo): KGen {
  if (iopfRefcount(k, drv, dev) > 0) yield* k.fn.iopf_queue_flush_dev(t, dev);
}

/** Absolute word of dev's iopf_refcount. */
function iopfRefAt(k: Kernel, iopf: NonNullable<UnitDriver['iopf']>, dev: DeviceInfo): number {
  return k.mem.statics + iopf.refs + (iopf.slot.get(dev.index) as number);
}

function iopfRefcount(k: Kernel, drv: UnitDriver, dev: DeviceInfo): number {
  return drv.iopf ? Atomics.load(k.i32, iopfRefAt(k, drv.iopf, dev)) : 0;
}

/**
 * iopf_for_domain_set: a domain with a fault handler (an SVA domain) attached to dev enables iopf for it — the
 * first one adds dev to the IOMMU's iopf queue (intel_iommu_enable_iopf, arm_smmu_enable_iopf). 0 or -errno.
 */
export function* iopfForDomainSet(k: Kernel, t: KTask, drv: UnitDriver, domain: IommuDomain, dev: DeviceInfo): KGen<number> {
  if (domain.type !== 'sva' || !drv.iopf) return 0;
  const { queue } = drv.iopf;
  const at = iopfRefAt(k, drv.iopf, dev);
  const first = yield* k.stepOn(t, 'info->iopf_refcount++', [at], () => Atomics.add(k.i32, at, 1) === 0);
  if (!first) return 0;
  const ret = yield* k.fn.iopf_queue_add_device(t, queue, dev);
  if (ret < 0) yield* k.stepOn(t, 'info->iopf_refcount--', [at], () => Atomics.sub(k.i32, at, 1));
  // dev->iommu holds the param (kmemleak finds it referenced) until the device is released or, with iopf=attach,
  // its last SVA domain detached: a domain left attached is reported as such, not through its device's param.
  else yield* kmemleak_not_leak(k, t, iopfFaultParam(k, dev));
  return ret;
}

/**
 * iopf_for_domain_remove: the last domain with a fault handler gone, dev leaves the iopf queue. With iopf=probe
 * it stays until the device is released (its driver enabled IOPF at probe: the first attach stands for that).
 */
export function* iopfForDomainRemove(k: Kernel, t: KTask, drv: UnitDriver, domain: IommuDomain, dev: DeviceInfo): KGen {
  if (domain.type !== 'sva' || !drv.iopf || drv.iopf.enable === 'probe') return;
  const { queue } = drv.iopf;
  const at = iopfRefAt(k, drv.iopf, dev);
  const last = yield* k.stepOn(t, '--info->iopf_refcount', [at], () => Atomics.sub(k.i32, at, 1) === 1);
  if (last) yield* k.fn.iopf_queue_remove_device(t, queue, dev);
}

/**
 * set_dev_pasid with iopf: enable iopf for a domain with a fault handler before installing it, undo it when the
 * install fails, and drop the replaced domain's (iopf_for_domain_replace).
 */
export function* iopfSetDevPasid(
  k: Kernel,
  t: KTask,
  drv: UnitDriver,
  domain: IommuDomain,
  dev: DeviceInfo,
  old: IommuDomain | undefined,
  set: () => KGen<number>,
): KGen<number> {
  const err = yield* iopfForDomainSet(k, t, drv, domain, dev);
  if (err < 0) return err;
  const ret = yield* set();
  if (ret < 0) yield* iopfForDomainRemove(k, t, drv, domain, dev);
  else if (old) yield* iopfForDomainRemove(k, t, drv, old, dev);
  return ret;
}
