// The driver side of an IOMMU's queues, common to the three drivers: submitting commands followed by a wait
// descriptor and waiting for it (qi_submit_sync, arm_smmu_cmdq_issue_cmdlist with CMD_SYNC, iommu_queue_command
// with COMPLETION_WAIT), draining the page requests of a PASID (intel_drain_pasid_prq), the IOMMU's iopf queue
// and the devices' fault params (iopf enabled while a domain with a fault handler is attached: the drivers'
// iopf_refcount), and the thread that reports page requests to io-pgfault.c (prq_event_thread,
// arm_smmu_priq_thread, AMD's PPR handling) — page_response answers through the command queue.
import { type IopfEnable, type IopfQueue, iopfFaultParam, iopf_queue_alloc } from '../core/io-pgfault.js';
import type { IommuDomain } from '../core/ops.js';
import { type DeviceInfo, RESP_INVALID } from '../core/types.js';
import type { Stats } from '../core/stats.js';
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { kmemleak_not_leak } from '../kernel/slab.js';
import { defineSpinlock, type Spinlock, spin_lock_irqsave, spin_unlock_irqrestore } from '../kernel/spinlock.js';
import { OP_PAGE_RESP } from './flavour.js';
import type { Command, IommuUnit } from './iommu.js';

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
 * Queue cmds and a wait descriptor, ring the doorbell, and wait until the hardware has done them all. A list
 * longer than the queue holds goes in batches that each fit with their wait descriptor (as the drivers'
 * command batches are flushed when full), each waiting for room while the queue is full.
 */
export function* submitSync(k: Kernel, t: KTask, drv: UnitDriver, stats: Stats, cmds: readonly Command[]): KGen {
  const room = drv.unit.opts.queueDepth - 1;
  for (let i = 0; i < cmds.length; i += room) yield* submitBatch(k, t, drv, stats, cmds.slice(i, i + room));
  if (cmds.length === 0) yield* submitBatch(k, t, drv, stats, cmds);
}

function* submitBatch(k: Kernel, t: KTask, drv: UnitDriver, stats: Stats, cmds: readonly Command[]): KGen {
  const unit = drv.unit;
  const names = unit.spec.commandNames;
  const label = cmds.map((c) => names[c.op]).join('+');
  let seq = 0;
  for (;;) {
    const flags = yield* spin_lock_irqsave(k, t, drv.lock);
    const written = yield* k.step(t, `${unit.spec.cmdqName}: ${label}`, (env) => {
      if (unit.cmdqFree() < cmds.length + 1) return false;
      seq = unit.cmdqWrite(cmds);
      stats.add('invalidations', cmds.filter((c) => c.op !== OP_PAGE_RESP).length);
      env.send(unit.actor, { type: 'cmdq.doorbell' });
      return true;
    });
    yield* spin_unlock_irqrestore(k, t, drv.lock, flags);
    if (written) break;
    // The queue is full: wait for the hardware to make room, as the drivers spin on the queue's head.
    yield k.point(t, `${unit.spec.cmdqName} full`, () => unit.cmdqFree() >= cmds.length + 1, () => undefined, {
      what: `room in ${unit.name}'s ${unit.spec.cmdqName}`,
    });
  }
  yield k.point(t, `${names[5]} ${seq}`, () => unit.waitDone(seq), () => undefined, {
    what: `${unit.name}'s ${unit.spec.cmdqName} to complete ${names[5]} ${seq} (${label})`,
  });
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
      yield k.point(t, `drain ${unit.spec.prqName} of PASID ${pasid}`, () => unit.prqPending(dev.index, pasid) === 0, () => undefined, {
        what: `${unit.name}'s ${unit.spec.prqName} to drain page requests of ${dev.name} PASID ${pasid}`,
      });
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
  const first = yield* k.step(t, 'info->iopf_refcount++', () => Atomics.add(k.i32, at, 1) === 0);
  if (!first) return 0;
  const ret = yield* k.fn.iopf_queue_add_device(t, queue, dev);
  if (ret < 0) yield* k.step(t, 'info->iopf_refcount--', () => Atomics.sub(k.i32, at, 1));
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
  const last = yield* k.step(t, '--info->iopf_refcount', () => Atomics.sub(k.i32, at, 1) === 1);
  if (last) yield* k.fn.iopf_queue_remove_device(t, queue, dev);
}

/**
 * Declare the unit's iopf queue and its page-request thread (a kthread started by the hardware's interrupt): each
 * request is reported to io-pgfault.c; a last request it could not take is answered INVALID here
 * (handle_bad_prq_event). After an overflow the partial faults go (iopf_queue_discard_partial).
 */
export function definePrqThread(k: Kernel, drv: UnitDriver, stats: Stats, devices: readonly DeviceInfo[], enable: IopfEnable = 'attach'): string {
  const unit = drv.unit;
  const respond = (t: KTask, dev: DeviceInfo, pasid: number, grp: number, code: number) =>
    submitSync(k, t, drv, stats, [{ op: OP_PAGE_RESP, a: dev.index, b: grp, c: code, d: pasid }]);
  const mine = devices.filter((d) => d.iommu === unit.index);
  const iopf = iopf_queue_alloc(k, unit.name, mine, (t, dev, pasid, grp, code) =>
    k.call(t, unit.spec.names.pageResponse, respond(t, dev, pasid, grp, code)),
  );
  const slot = new Map(mine.map((d, i) => [d.index, i]));
  drv.iopf = { queue: iopf, refs: k.statics.alloc(Math.max(1, mine.length), `${unit.name} iopf_refcount`), slot, enable };
  return k.task(`${unit.spec.prqThread}/${unit.index}`, 'kthread', function* (t) {
    for (;;) {
      const req = yield* k.step(t, `${unit.spec.prqName}: next request`, () => unit.prqPeek());
      if (!req) break;
      const dev = devices[req.dev] as DeviceInfo;
      const err = yield* k.fn.iommu_report_device_fault(t, dev, { pasid: req.pasid, grpid: req.grp, vpn: req.vpn, write: req.write, last: req.last });
      // Only the last request of a group is answered (the response covers the whole group).
      if (err < 0 && req.last) yield* k.call(t, 'handle_bad_prq_event', respond(t, dev, req.pasid, req.grp, RESP_INVALID));
      yield* k.step(t, `${unit.spec.prqName}: retire`, () => unit.prqRetire());
    }
    if (yield* k.step(t, `${unit.spec.prqName}: overflow`, () => unit.prqOverflowed)) yield* k.fn.iopf_queue_discard_partial(t, iopf);
  });
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
