// drivers/iommu/intel/prq.c: the page request queue's thread and the drain. prq_event_thread clears PPR, reads PQH
// and PQT, reports each page_req_dsc between them to io-pgfault.c (intel_prq_report; a request of no device, or a
// last request it cannot report, is answered INVALID: handle_bad_prq_event), writes PQH once, and clears the
// overflow bit PRO once the queue is empty (the device retries what the hardware refused meanwhile);
// intel_page_response answers a group with a page group response descriptor (QI_PGRP_RESP) through the invalidation
// queue; intel_drain_pasid_prq waits until the PRQ holds no request of the PASID (wait_for_completion on
// prq_complete: a sleep), flushes the iopf queue of the device, then drains the hardware — a fenced wait descriptor,
// a PASID-based IOTLB and a device-TLB invalidation submitted with QI_OPT_WAIT_DRAIN (VT-d spec 7.10) — again
// after the thread cleared PRO if it was set.
import { type IopfEnable, iopf_queue_alloc } from '../../core/io-pgfault.js';
import type { Stats } from '../../core/stats.js';
import { IOMMU_NO_PASID } from '../../core/ops.js';
import { type DeviceInfo, RESP_INVALID } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import type { DriverEnv } from '../driver.js';
import { type UnitDriver, iopfQueueFlushIfEnabled } from '../queue.js';
import { QI_OPT_WAIT_DRAIN, type VtdUnitDriver, vtdOf } from './dmar.js';
import { pciSid, type VtdUnit } from './hw.js';
import { DMA_PRS_PPR, DMA_PRS_PRO, type PageReqDsc, VTD_PRQ_REGS } from './prq-dsc.js';
import { PASID_DID_MASK } from './pasid-entry.js';
import { QI_DEIOTLB_TYPE, QI_EIOTLB_TYPE, QI_GRAN_NONG_PASID, QI_IWD_FENCE, QI_IWD_TYPE, type QiDesc, qi_desc_pgrp_resp } from './qi.js';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    intel_drain_pasid_prq(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    intel_page_response(t: KTask, dev: DeviceInfo, pasid: number, grpid: number, code: number): KGen;
    prq_event_thread(t: KTask, iommu: VtdUnitDriver): KGen;
    intel_prq_report(t: KTask, iommu: VtdUnitDriver, dev: DeviceInfo, req: PageReqDsc): KGen<number>;
    handle_bad_prq_event(t: KTask, iommu: VtdUnitDriver, req: PageReqDsc, hex: string, result: number): KGen;
  }
}

const P = 'drivers/iommu/intel/prq.c';

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

/** The footprint of a step that touches no word of the run's memory. */
const NOTHING: Footprint = [];

/** A PRQ register's word (PQH, PQT, PRS, the thread's flag). */
function prqReg(u: VtdUnit, field: keyof typeof VTD_PRQ_REGS.offset): number {
  return u.prqRegsPtr + VTD_PRQ_REGS.offset[field];
}

/** The words prqAt(i) reads: the request's first two quadwords. */
function dscFootprint(u: VtdUnit, i: number): Footprint {
  const at = u.prqDscPtr(i);
  const d = u.view.dsc;
  return [read(d.qw_0.addr(at)), read(d.qw_0_hi.addr(at)), read(d.qw_1.addr(at)), read(d.qw_1_hi.addr(at))];
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
    yield k.point(
      t,
      `drain PRQ of PASID ${pasid}`,
      () => u.prqPending(dev.index, pasid) === 0,
      () => undefined,
      { what: `${u.name}'s PRQ to drain page requests of ${dev.name} PASID ${pasid}` },
      () => u.prqPendingFootprint(),
    );
    yield* iopfQueueFlushIfEnabled(k, t, drv, dev);
    // qi_retry: a request refused while the drain ran (PRO set) is retried by the device once prq_event_thread
    // has cleared PRO — wait for that (wait_for_completion(&iommu->prq_complete)) and drain again.
    for (;;) {
      yield* k.fn.qi_submit_sync(t, dev.iommu, drainDescs(did, pciSid(dev.name), pasid), QI_OPT_WAIT_DRAIN);
      if (!(yield* k.stepOn(t, 'readl(DMAR_PRS_REG) & DMA_PRS_PRO', [read(prqReg(u, 'prs'))], () => u.prqOverflowed))) return;
      yield k.point(
        t,
        'wait_for_completion(&iommu->prq_complete)',
        () => !u.prqOverflowed,
        () => undefined,
        { what: `${u.name}'s prq_event_thread to clear DMA_PRS_PRO` },
        [read(prqReg(u, 'prs'))],
      );
    }
  });
  k.fns.define('intel_page_response', 'drivers/iommu/intel/prq.c', function* (t, dev, pasid, grpid, code) {
    yield* k.fn.qi_submit_sync(t, dev.iommu, [qi_desc_pgrp_resp(pciSid(dev.name), pasid, grpid, code)], 0);
  });
}

/** The thread's step that prints a line of the kernel log (pr_info / pr_err) to the unit's log. */
function* printk(k: Kernel, t: KTask, u: VtdUnit, line: string): KGen {
  // The unit's log is the driver's own (not in the run's memory).
  yield* k.stepOn(t, line, NOTHING, () => void u.log.push(line));
}

/** prq.c's thread and its helpers, by name (once per kernel: they take the unit). */
function defineEventThread(k: Kernel, devices: readonly DeviceInfo[]): void {
  if (k.fns.has('prq_event_thread')) return;
  k.fns.define('handle_bad_prq_event', P, function* (t, iommu, req, hex, result) {
    const u = iommu.unit;
    yield* printk(k, t, u, `DMAR: ${u.name}: Invalid page request: ${hex}`);
    if (!req.lpig) return;
    const dev = devices[u.deviceOfSid(req.rid)];
    if (dev) yield* k.fn.qi_submit_sync(t, dev.iommu, [qi_desc_pgrp_resp(req.rid, req.pasid, req.prg_index, result)], 0);
  });
  k.fns.define('intel_prq_report', P, (t, _iommu, dev, req) =>
    k.fn.iommu_report_device_fault(t, dev, { pasid: req.pasid, grpid: req.prg_index, vpn: req.addr, write: req.wr_req, last: req.lpig }),
  );
  k.fns.define('prq_event_thread', P, function* (t, iommu) {
    const u = iommu.unit;
    // Clear PPR before reading head/tail, so that a request written from now on raises the interrupt again.
    const prs = prqReg(u, 'prs');
    const heads = [read(prqReg(u, 'pqh')), read(prqReg(u, 'pqt'))];
    yield* k.stepOn(t, 'writel(DMA_PRS_PPR, DMAR_PRS_REG)', [prs], () => u.clearPrs(DMA_PRS_PPR));
    const [head, tail] = yield* k.stepOn(t, 'prq_event_thread: dmar_readq(DMAR_PQT_REG), dmar_readq(DMAR_PQH_REG)', heads, () => [u.pqh, u.pqt] as const);
    for (let i = head; i < tail; i++) {
      const { dsc: req, hex } = yield* k.stepOn(t, `PRQ: page_req_dsc ${i % u.prqLength}`, dscFootprint(u, i), () => u.prqAt(i));
      const dev = devices[u.deviceOfSid(req.rid)];
      // device_rbtree_find: a requester ID no device of the unit has is a bad request.
      if (!dev) {
        yield* k.fn.handle_bad_prq_event(t, iommu, req, hex, RESP_INVALID);
        continue;
      }
      const err = yield* k.fn.intel_prq_report(t, iommu, dev, req);
      // model: a last request io-pgfault.c could not take is answered INVALID here (mainline's
      // iommu_report_device_fault answers it itself: iopf_error_response).
      if (err < 0 && req.lpig) yield* k.fn.handle_bad_prq_event(t, iommu, req, hex, RESP_INVALID);
    }
    yield* k.stepOn(t, 'dmar_writeq(iommu->reg + DMAR_PQH_REG, tail)', [prqReg(u, 'pqh')], () => u.writePqh(tail));
    // Clear the overflow bit once every request the queue holds is handled (PRO stays set while a request the
    // hardware wrote since is still there: the device's refused requests are retried after it is cleared).
    if (!(yield* k.stepOn(t, 'readl(DMAR_PRS_REG) & DMA_PRS_PRO', [read(prs)], () => u.prqOverflowed))) return;
    yield* printk(k, t, u, `DMAR: IOMMU: ${u.name}: PRQ overflow detected`);
    if (!(yield* k.stepOn(t, 'PRQ overflow: head == tail', heads, () => u.pqh === u.pqt))) return;
    if (iommu.iopf) yield* k.fn.iopf_queue_discard_partial(t, iommu.iopf.queue);
    yield* k.stepOn(t, 'writel(DMA_PRS_PRO, DMAR_PRS_REG)', [prs], () => u.clearPrs(DMA_PRS_PRO));
    yield* printk(k, t, u, `DMAR: IOMMU: ${u.name}: PRQ overflow cleared`);
  });
}

/**
 * The unit's iopf queue and its prq_event_thread: the threaded interrupt the hardware raises when it writes a
 * request and the thread is not running (IRQF_ONESHOT: one at a time). It runs again while PPR was set during
 * its run, and stops otherwise.
 */
export function definePrqEventThread(k: Kernel, udrv: UnitDriver, _stats: Stats, devices: readonly DeviceInfo[], enable: IopfEnable = 'attach'): string {
  const drv = udrv as VtdUnitDriver;
  const unit = drv.unit;
  defineEventThread(k, devices);
  const mine = devices.filter((d) => d.iommu === unit.index);
  const iopf = iopf_queue_alloc(k, unit.name, mine, (t, dev, pasid, grp, code) => k.fn.intel_page_response(t, dev, pasid, grp, code));
  const slot = new Map(mine.map((d, i) => [d.index, i]));
  drv.iopf = { queue: iopf, refs: k.statics.alloc(Math.max(1, mine.length), `${unit.name} iopf_refcount`), slot, enable };
  return k.task(`prq_event_thread/${unit.index}`, 'kthread', function* (t) {
    const done = [read(prqReg(unit, 'prs')), prqReg(unit, 'thread')];
    do yield* k.fn.prq_event_thread(t, drv);
    while (!(yield* k.stepOn(t, 'prq_event_thread: return IRQ_HANDLED (PPR not set again)', done, () => unit.prqThreadDone())));
  });
}
