// drivers/iommu/amd/ppr.c (mainline): the PPR log. The unit writes each page request as a 128-bit entry and
// raises the PPR interrupt; its thread (amd_iommu_int_thread_pprlog) runs amd_iommu_poll_ppr_log, which copies
// each entry from the head, zeroes it, moves the head register, and hands it to iommu_call_iopf_notifier: a
// PPR_REQ_FAULT becomes an iopf_fault (PRG index and last-in-group from the tag, the PASID, read/write) for
// iommu_report_device_fault. A log that overflowed is restarted (amd_iommu_restart_ppr_log) and the partial
// faults dropped. The answer is amd_iommu_page_response: a COMPLETE_PPR_REQUEST queued (iommu_queue_command, no
// completion wait). The model's thread is started by the unit's first entry and stops at an empty log. The v2
// driver's era (notifier=bond) hands each entry to iommu_handle_ppr_entry instead: its ppr_notifier chain and
// iommu_wq (iommu_v2.ts).
import type { IopfEnable } from '../../core/io-pgfault.js';
import { iopf_queue_alloc } from '../../core/io-pgfault.js';
import type { Stats } from '../../core/stats.js';
import { type DeviceInfo, RESP_INVALID } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import type { UnitDriver } from '../queue.js';
import { PAGE_SHIFT, PPR_LOG_ENTRY, PPR_FLAG_GN, PPR_FLAG_WRITE, PPR_REQ_FAULT, PPR_TAG_LAST } from './amd_iommu_types.js';
import type { AmdIommu, PprEntry } from './hw.js';
import { amdEra, defineV2Faults } from './iommu_v2.js';

const P = 'drivers/iommu/amd/ppr.c';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    amd_iommu_poll_ppr_log(t: KTask, iommu: UnitDriver): KGen;
    iommu_call_iopf_notifier(t: KTask, iommu: UnitDriver, raw: PprEntry): KGen;
    amd_iommu_page_response(t: KTask, dev: DeviceInfo, pasid: number, grp: number, code: number): KGen<number>;
    amd_iommu_restart_ppr_log(t: KTask, iommu: UnitDriver): KGen;
  }
}

/** Each kernel's AMD units' driver state, by device index (whose unit a page response goes to). */
const UNIT_OF_DEV = new WeakMap<Kernel, Map<number, UnitDriver>>();

/** pprTake's words (computed: whether the log is empty is shared state): the head, the tail, the entry it zeroes. */
function pprTakeFootprint(u: AmdIommu): Footprint {
  const headAt = u.mmioWord('ppr_head');
  const tailAt = u.mmioWord('ppr_tail');
  const head = Atomics.load(u.kernel.i32, headAt);
  if (head === Atomics.load(u.kernel.i32, tailAt)) return [read(headAt), read(tailAt), u.mmioWord('ppr_active')];
  const at = u.pprSlot(head);
  const fp = [headAt, read(tailAt)];
  for (let w = 0; w < PPR_LOG_ENTRY.words; w++) fp.push(at + w);
  return fp;
}

function defineFunctions(k: Kernel, devices: readonly DeviceInfo[]): void {
  if (k.fns.has('amd_iommu_poll_ppr_log')) return;
  const unitOfDev = (dev: DeviceInfo) => UNIT_OF_DEV.get(k)?.get(dev.index) as UnitDriver;
  // Each era's handler of an entry: mainline's iommu_call_iopf_notifier; the v2 driver's iommu_handle_ppr_entry (its
  // ppr_notifier chain; the poll was iommu.c's iommu_poll_ppr_log then).
  const poll = (bond: boolean) =>
    function* (t: KTask, iommu: UnitDriver): KGen {
      const u = iommu.unit as AmdIommu;
      for (;;) {
        const raw = yield* k.stepOn(
          t,
          'amd_iommu_poll_ppr_log: raw[0] = raw[1] = 0UL; writel(head, MMIO_PPR_HEAD_OFFSET)',
          () => pprTakeFootprint(u),
          () => u.pprTake(),
        );
        if (!raw) break;
        if (bond) yield* k.fn.iommu_handle_ppr_entry(t, raw);
        else yield* k.fn.iommu_call_iopf_notifier(t, iommu, raw);
      }
    };
  k.fns.definePolicy('amd_iommu_poll_ppr_log', P, 'notifier', amdEra(k), { domain: poll(false), bond: poll(true) });
  k.fns.define('iommu_call_iopf_notifier', P, function* (t, _iommu, raw) {
    // The model's unit writes only PPR_REQ_FAULT entries ("Unknown PPR request received" otherwise).
    if (raw.type !== PPR_REQ_FAULT) return;
    const dev = devices[raw.devid] as DeviceInfo;
    const pasid = (raw.flags & PPR_FLAG_GN) !== 0 ? raw.pasid : 0;
    const evt = {
      pasid,
      grpid: raw.tag & 0x1ff,
      vpn: Math.floor(raw.address / 2 ** PAGE_SHIFT),
      write: (raw.flags & PPR_FLAG_WRITE) !== 0,
      last: (raw.tag & PPR_TAG_LAST) !== 0,
    };
    const err = yield* k.fn.iommu_report_device_fault(t, dev, evt);
    // A last request the core could not take is answered INVALID (io-pgfault.c's iopf_error_response).
    if (err < 0 && evt.last) yield* k.call(t, 'iopf_error_response', k.fn.amd_iommu_page_response(t, dev, pasid, evt.grpid, RESP_INVALID));
  });
  k.fns.define('amd_iommu_page_response', 'drivers/iommu/amd/iommu.c', (t, dev, pasid, grp, code) =>
    k.fn.iommu_queue_command(t, unitOfDev(dev), k.fn.build_complete_ppr(dev.index, pasid, code, grp, true)),
  );
  k.fns.define('amd_iommu_restart_ppr_log', 'drivers/iommu/amd/init.c', function* (t, iommu) {
    const u = iommu.unit as AmdIommu;
    const overflowed = yield* k.stepOn(t, 'amd_iommu_restart_ppr_log: MMIO_STATUS_PPR_OVERFLOW_MASK', [u.mmioWord('ppr_overflow')], () => {
      const o = u.prqOverflowed;
      if (o) u.clearPprOverflow();
      return o;
    });
    if (overflowed && iommu.iopf) yield* k.fn.iopf_queue_discard_partial(t, iommu.iopf.queue);
  });
}

/** The unit's iopf queue and its PPR interrupt thread (Vendor.definePrqThread): the thread's task kind. */
export function definePprThread(
  k: Kernel,
  drv: UnitDriver,
  _stats: Stats,
  devices: readonly DeviceInfo[],
  enable: IopfEnable = 'attach',
): string {
  const unit = drv.unit;
  defineFunctions(k, devices);
  const mine = devices.filter((d) => d.iommu === unit.index);
  defineV2Faults(k, mine);
  const byDev = UNIT_OF_DEV.get(k) ?? new Map<number, UnitDriver>();
  UNIT_OF_DEV.set(k, byDev);
  for (const d of mine) byDev.set(d.index, drv);
  const queue = iopf_queue_alloc(k, unit.name, mine, function* (t, dev, pasid, grp, code) {
    yield* k.fn.amd_iommu_page_response(t, dev, pasid, grp, code);
  });
  const slot = new Map(mine.map((d, i) => [d.index, i]));
  drv.iopf = { queue, refs: k.statics.alloc(Math.max(1, mine.length), `${unit.name} iopf_refcount`), slot, enable };
  return k.task(`${unit.spec.prqThread}/${unit.index}`, 'kthread', function* (t) {
    yield* k.fn.amd_iommu_poll_ppr_log(t, drv);
    yield* k.fn.amd_iommu_restart_ppr_log(t, drv);
  });
}
