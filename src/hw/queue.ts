// The driver side of an IOMMU's queues, common to the three drivers: submitting commands followed by a wait
// descriptor and waiting for it (qi_submit_sync, arm_smmu_cmdq_issue_cmdlist with CMD_SYNC, iommu_queue_command
// with COMPLETION_WAIT), draining the page requests of a PASID (intel_drain_pasid_prq), and the thread that
// handles page requests and answers them through the command queue (prq_event_thread, arm_smmu_priq_thread,
// AMD's PPR handling).
import type { Sva } from '../core/iommu-sva.js';
import type { DeviceInfo } from '../core/types.js';
import type { Stats } from '../core/stats.js';
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { defineSpinlock, type Spinlock, spin_lock_irqsave, spin_unlock_irqrestore } from '../kernel/spinlock.js';
import { OP_PAGE_RESP } from './flavour.js';
import type { Command, IommuUnit } from './iommu.js';

export interface UnitDriver {
  readonly unit: IommuUnit;
  readonly lock: Spinlock;
}

export function defineUnitDriver(k: Kernel, unit: IommuUnit): UnitDriver {
  return { unit, lock: defineSpinlock(k, `&${unit.spec.flavour === 'vtd' ? 'qi->q_lock' : unit.spec.flavour === 'amd' ? 'iommu->lock' : 'cmdq->q.lock'}`) };
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

/** Wait until no page request of {dev, pasid} is queued or being handled. */
export function* drainPrq(k: Kernel, t: KTask, drv: UnitDriver, dev: DeviceInfo, pasid: number): KGen {
  const unit = drv.unit;
  yield* k.call(
    t,
    unit.spec.flavour === 'vtd' ? 'intel_drain_pasid_prq' : unit.spec.flavour === 'amd' ? 'amd_iommu_drain_ppr' : 'arm_smmu_flush_priq',
    (function* () {
      k.mightSleep(t, 'drivers/iommu/intel/prq.c:78');
      yield k.point(t, `drain ${unit.spec.prqName} of PASID ${pasid}`, () => unit.prqPending(dev.index, pasid) === 0, () => undefined, {
        what: `${unit.name}'s ${unit.spec.prqName} to drain page requests of ${dev.name} PASID ${pasid}`,
      });
    })(),
  );
}

/** Declare the unit's page-request thread (a kthread started by the hardware's interrupt). */
export function definePrqThread(k: Kernel, drv: UnitDriver, sva: Pick<Sva, 'handleIopf'>, stats: Stats, devices: readonly DeviceInfo[]): string {
  const unit = drv.unit;
  return k.task(`${unit.spec.prqThread}/${unit.index}`, 'kthread', function* (t) {
    for (;;) {
      const req = yield* k.step(t, `${unit.spec.prqName}: next request`, () => unit.prqPeek());
      if (!req) return;
      const dev = devices[req.dev] as DeviceInfo;
      const code = yield* sva.handleIopf(t, dev, req.pasid, req.vpn, req.write);
      // Only the last request of a group is answered (the response covers the whole group).
      if (req.last) yield* submitSync(k, t, drv, stats, [{ op: OP_PAGE_RESP, a: req.dev, b: req.grp, c: code, d: req.pasid }]);
      yield* k.step(t, `${unit.spec.prqName}: retire`, () => unit.prqRetire());
    }
  });
}
