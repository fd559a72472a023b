// drivers/iommu/intel/prq.c: the page request queue's thread and the drain. prq_event_thread reports each
// page_req_dsc to io-pgfault.c (a last request it cannot report is answered INVALID: handle_bad_prq_event);
// intel_page_response answers a group with a page group response descriptor (QI_PGRP_RESP) through the invalidation
// queue; intel_drain_pasid_prq waits until the PRQ holds no request of the PASID (wait_for_completion on
// prq_complete: a sleep), flushes the iopf queue of the device, then drains the hardware — a fenced wait descriptor,
// a PASID-based IOTLB and a device-TLB invalidation submitted with QI_OPT_WAIT_DRAIN (VT-d spec 7.10).
import { type IopfEnable, iopf_queue_alloc } from '../../core/io-pgfault.js';
import type { Stats } from '../../core/stats.js';
import { IOMMU_NO_PASID } from '../../core/ops.js';
import { type DeviceInfo, RESP_INVALID } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import type { DriverEnv } from '../driver.js';
import { type UnitDriver, iopfQueueFlushIfEnabled } from '../queue.js';
import { QI_OPT_WAIT_DRAIN, vtdOf } from './dmar.js';
import { pciSid } from './hw.js';
import { PASID_DID_MASK } from './pasid-entry.js';
import { QI_DEIOTLB_TYPE, QI_EIOTLB_TYPE, QI_GRAN_NONG_PASID, QI_IWD_FENCE, QI_IWD_TYPE, type QiDesc, qi_desc_pgrp_resp } from './qi.js';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    intel_drain_pasid_prq(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    intel_page_response(t: KTask, dev: DeviceInfo, pasid: number, grpid: number, code: number): KGen;
  }
}

/** FLPT_DEFAULT_DID: the DID a drain uses when the device has no domain. */
const FLPT_DEFAULT_DID = 1;

/** intel_drain_pasid_prq's three descriptors. */
function drainDescs(did: number, sid: number, pasid: number): QiDesc[] {
  return [
    { qw0: QI_IWD_FENCE | QI_IWD_TYPE, qw0_hi: 2, qw1: 0, qw1_hi: 0 },
    { qw0: ((did << 16) | (QI_GRAN_NONG_PASID << 4) | QI_EIOTLB_TYPE) >>> 0, qw0_hi: pasid, qw1: 0, qw1_hi: 0 },
    { qw0: ((sid << 16) | QI_DEIOTLB_TYPE | ((sid & 0xf) << 12)) >>> 0, qw0_hi: (pasid | ((sid >>> 4) << 20)) >>> 0, qw1: 0, qw1_hi: 0 },
  ];
}

/** prq.c's kernel functions, by name. */
export function defineIntelPrq(env: DriverEnv): void {
  const k: Kernel = env.k;
  k.fns.define('intel_drain_pasid_prq', 'drivers/iommu/intel/prq.c', function* (t, dev, pasid) {
    k.mightSleep(t, 'drivers/iommu/intel/prq.c:78');
    if (!dev.caps.pri) return;
    const drv = vtdOf(env, dev.iommu);
    const u = drv.unit;
    const p0 = u.pasidEntryPtr(dev.index, IOMMU_NO_PASID);
    const did = p0 === 0 ? FLPT_DEFAULT_DID : u.view.entry.val.READ_ONCE(p0, 2) & PASID_DID_MASK || FLPT_DEFAULT_DID;
    // prq_retry: wait_for_completion(&iommu->prq_complete) while a request of the PASID is queued.
    yield k.point(t, `drain PRQ of PASID ${pasid}`, () => u.prqPending(dev.index, pasid) === 0, () => undefined, {
      what: `${u.name}'s PRQ to drain page requests of ${dev.name} PASID ${pasid}`,
    });
    yield* iopfQueueFlushIfEnabled(k, t, drv, dev);
    // qi_retry. Not modelled: the retry while DMA_PRS_PRO is set (the shared PRQ's overflow flag stays set until a
    // request is queued again, where the kernel's prq_event_thread clears PRO: a retry on it would never end).
    yield* k.fn.qi_submit_sync(t, dev.iommu, drainDescs(did, pciSid(dev.name), pasid), QI_OPT_WAIT_DRAIN);
  });
  k.fns.define('intel_page_response', 'drivers/iommu/intel/prq.c', function* (t, dev, pasid, grpid, code) {
    yield* k.fn.qi_submit_sync(t, dev.iommu, [qi_desc_pgrp_resp(pciSid(dev.name), pasid, grpid, code)], 0);
  });
}

/**
 * The unit's iopf queue and its prq_event_thread (a kthread the PRQ interrupt starts): each request is reported to
 * io-pgfault.c; a last request it could not report is answered INVALID (handle_bad_prq_event). After an overflow
 * the partial faults go (iopf_queue_discard_partial).
 */
export function definePrqEventThread(k: Kernel, drv: UnitDriver, _stats: Stats, devices: readonly DeviceInfo[], enable: IopfEnable = 'attach'): string {
  const unit = drv.unit;
  const mine = devices.filter((d) => d.iommu === unit.index);
  const iopf = iopf_queue_alloc(k, unit.name, mine, (t, dev, pasid, grp, code) => k.fn.intel_page_response(t, dev, pasid, grp, code));
  const slot = new Map(mine.map((d, i) => [d.index, i]));
  drv.iopf = { queue: iopf, refs: k.statics.alloc(Math.max(1, mine.length), `${unit.name} iopf_refcount`), slot, enable };
  return k.task(`prq_event_thread/${unit.index}`, 'kthread', function* (t) {
    for (;;) {
      const req = yield* k.step(t, 'PRQ: next page_req_dsc', () => unit.prqPeek());
      if (!req) break;
      const dev = devices[req.dev] as DeviceInfo;
      const err = yield* k.fn.iommu_report_device_fault(t, dev, { pasid: req.pasid, grpid: req.grp, vpn: req.vpn, write: req.write, last: req.last });
      // Only the last request of a group is answered (the response covers the whole group).
      if (err < 0 && req.last) yield* k.call(t, 'handle_bad_prq_event', k.fn.intel_page_response(t, dev, req.pasid, req.grp, RESP_INVALID));
      yield* k.step(t, 'PRQ: retire', () => unit.prqRetire());
    }
    if (yield* k.step(t, 'PRQ: overflow', () => unit.prqOverflowed)) yield* k.fn.iopf_queue_discard_partial(t, iopf);
  });
}
