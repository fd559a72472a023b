// drivers/iommu/amd/iommu_v2.c (removed in v6.7, "iommu/amd: Remove iommu_v2 module") with the iommu.c helpers of
// its era: the policy value notifier=bond. The device driver binds a PASID it chose (amd_iommu_bind_pasid: a
// pasid_state with its own MMU notifier, then amd_iommu_domain_set_gcr3); the notifier's mn_invalidate_range
// flushes one page (amd_iommu_flush_page) or the PASID's whole TLB (amd_iommu_flush_tlb); its mn_release (the
// device driver's invalidate_ctx callback first — the core calls it: releaseNotifiesDriver) and
// amd_iommu_unbind_pasid both end in unbind_pasid → amd_iommu_domain_clear_gcr3. Every flush of that era is
// __flush_pasid: INVALIDATE_IOMMU_PAGES, a COMPLETION_WAIT, then INVALIDATE_IOTLB_PAGES per device and a second
// COMPLETION_WAIT ("IOMMU TLB needs to be flushed before Device TLB to prevent device TLB refill from IOMMU TLB").
// The model: the GCR3 entry being valid stands for the pasid_state not yet invalid; dev_state / pasid_state
// refcounts, dev_state->lock and domain->lock are not modelled (each device has its domain of its own, as
// amd_iommu_init_device allocated it). mn_release may run twice for one PASID — from mmu_notifier_unregister and
// from exit_mmap's __mmu_notifier_release, which mm/mmu_notifier.c allows since d34883d4e35c ("mm: mmu_notifier:
// re-fix freed page still mapped in secondary MMU") — and this era's takes and drops no pasid_state reference (only
// amd_iommu_unbind_pasid's put_pasid_state_wait frees the state): the second one finds the state invalid, skips
// inv_ctx_cb and clears a GCR3 entry already clear (the model skips that repeat). pasid_state->mn is the core's
// per-bond subscription here, which the unbind puts (mmu_notifier_put) rather than unregisters: the frame
// mmu_notifier_unregister below only names where the kernel's release came from.
import { type DeviceInfo, RESP_INVALID, type SvaNotifier } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import { EBUSY } from '../../kernel/errno.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { alloc_workqueue, defineWork, flush_workqueue, queue_work, type WorkItem, type Workqueue } from '../../kernel/workqueue.js';
import { type DriverEnv, unitOf } from '../driver.js';
import { PR_GROUPS } from '../iommu.js';
import { GCR3_ADDR_SHIFT, GCR3_ENTRY, GCR3_VALID, PAGE_SHIFT, PPR_FLAG_GN, PPR_FLAG_WRITE, PPR_TAG_LAST } from './amd_iommu_types.js';
import type { PprEntry } from './hw.js';
import {
  ALL_PAGES,
  gcr3Domid,
  gcr3Footprint,
  gcr3Valid,
  gcr3Ptr,
  type Range,
} from './iommu.js';

const V2 = 'drivers/iommu/amd/iommu_v2.c';
/** iommu.c as it was with the v2 driver (v6.6). */
const C66 = 'drivers/iommu/amd/iommu.c';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    amd_iommu_bind_pasid(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number>;
    amd_iommu_unbind_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    unbind_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    mn_release(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    mn_invalidate_range(t: KTask, dev: DeviceInfo, pasid: number, start: number, end: number): KGen;
    amd_iommu_domain_set_gcr3(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number>;
    amd_iommu_domain_clear_gcr3(t: KTask, dev: DeviceInfo, pasid: number): KGen<number>;
    amd_iommu_flush_page(t: KTask, dev: DeviceInfo, pasid: number, vpn: number): KGen;
    amd_iommu_flush_tlb(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    __flush_pasid(t: KTask, dev: DeviceInfo, pasid: number, range: Range): KGen;
    iommu_handle_ppr_entry(t: KTask, raw: PprEntry): KGen;
    ppr_notifier(t: KTask, dev: DeviceInfo, raw: PprEntry): KGen;
    do_fault(t: KTask, dev: DeviceInfo, pasid: number, tag: number, vpn: number, write: boolean, mmId: number): KGen;
    amd_iommu_complete_ppr(t: KTask, dev: DeviceInfo, pasid: number, status: number, tag: number): KGen<number>;
  }
}

/**
 * Per kernel: the era of the AMD driver's SVA path (the ops' `notifier`), the drivers' environment, and the v2
 * driver's iommu_wq with its fault works (one per device and PRG index: the kzalloc'd struct fault's work).
 */
interface AmdKernelState {
  readonly era: SvaNotifier;
  readonly env: DriverEnv;
  v2?: { readonly wq: Workqueue; readonly works: Map<number, WorkItem[]> };
}
const STATE = new WeakMap<Kernel, AmdKernelState>();

export function setAmdEra(env: DriverEnv, era: SvaNotifier): void {
  STATE.set(env.k, { era, env });
}

export function amdEra(k: Kernel): SvaNotifier {
  return STATE.get(k)?.era ?? 'domain';
}

/** The v2 driver's iommu_wq and the fault works of `devices` (with its PPR thread, notifier=bond only). */
export function defineV2Faults(k: Kernel, devices: readonly DeviceInfo[]): void {
  const st = STATE.get(k);
  if (st?.era !== 'bond') return;
  st.v2 ??= { wq: alloc_workqueue(k, 'amd_iommu_v2'), works: new Map() };
  for (const dev of devices) {
    const works = Array.from({ length: PR_GROUPS }, (_, tag) =>
      defineWork(k, `do_fault ${dev.name} tag ${tag}`, (t, data) => {
        const [pasid, vpn, write, mmId] = data as number[];
        return k.fn.do_fault(t, dev, pasid as number, tag, vpn as number, write === 1, mmId as number);
      }),
    );
    st.v2.works.set(dev.index, works);
  }
}

/** dev_data->ats_qdep. */
const ATS_QDEP = 32;

function defineV2Iommu(env: DriverEnv): void {
  const k = env.k;
  const g = k.view(GCR3_ENTRY);
  k.fns.define('__flush_pasid', C66, function* (t, dev, pasid, range) {
    const iommu = unitOf(env, dev);
    yield* k.fn.iommu_queue_command(t, iommu, k.fn.build_inv_iommu_pages(range, gcr3Domid(dev), pasid, true));
    // amd_iommu_domain_flush_complete: wait for the IOMMU TLB flush before the device TLBs'.
    yield* k.fn.iommu_completion_wait(t, iommu);
    if (!dev.caps.ats) return;
    yield* k.fn.iommu_queue_command(t, iommu, k.fn.build_inv_iotlb_pages(dev.index, ATS_QDEP, range, pasid, true));
    yield* k.fn.iommu_completion_wait(t, iommu);
  });
  k.fns.define('amd_iommu_flush_page', C66, (t, dev, pasid, vpn) =>
    k.call(t, '__amd_iommu_flush_page', k.fn.__flush_pasid(t, dev, pasid, [vpn, vpn + 1])),
  );
  k.fns.define('amd_iommu_flush_tlb', C66, (t, dev, pasid) =>
    k.call(t, '__amd_iommu_flush_tlb', k.fn.__flush_pasid(t, dev, pasid, ALL_PAGES)),
  );
  k.fns.define('amd_iommu_domain_set_gcr3', C66, function* (t, dev, pasid, mm) {
    const pte = yield* k.fn.__get_gcr3_pte(t, dev, pasid, true);
    yield* k.stepOn(t, '__set_gcr3: *pte = (cr3 & PAGE_MASK) | GCR3_VALID', [g.val.addr(pte)], () =>
      g.val.WRITE_ONCE(pte, ((mm.id + 1) << GCR3_ADDR_SHIFT) | GCR3_VALID),
    );
    yield* k.call(t, '__amd_iommu_flush_tlb', k.fn.__flush_pasid(t, dev, pasid, ALL_PAGES));
    return 0;
  });
  k.fns.define('amd_iommu_domain_clear_gcr3', C66, function* (t, dev, pasid) {
    const pte = yield* k.fn.__get_gcr3_pte(t, dev, pasid, false);
    if (pte === 0) return 0;
    yield* k.stepOn(t, '__clear_gcr3: *pte = 0', [g.val.addr(pte)], () => g.val.WRITE_ONCE(pte, 0));
    yield* k.call(t, '__amd_iommu_flush_tlb', k.fn.__flush_pasid(t, dev, pasid, ALL_PAGES));
    return 0;
  });
}

export function defineAmdV2(env: DriverEnv): void {
  const k = env.k;
  defineV2Iommu(env);
  defineV2Ppr(env);
  k.fns.define('amd_iommu_bind_pasid', V2, function* (t, dev, pasid, mm) {
    if (yield* k.stepOn(t, 'get_pasid_state', () => gcr3Footprint(env, dev, pasid), () => gcr3Valid(env, dev, pasid))) return -EBUSY;
    return yield* k.fn.amd_iommu_domain_set_gcr3(t, dev, pasid, mm);
  });
  k.fns.define('unbind_pasid', V2, function* (t, dev, pasid) {
    yield* k.step(t, 'pasid_state->invalid = true', () => undefined);
    yield* k.fn.amd_iommu_domain_clear_gcr3(t, dev, pasid);
    // Make sure no more pending faults are in the queue.
    const v2 = STATE.get(k)?.v2;
    if (v2) yield* flush_workqueue(k, t, v2.wq);
  });
  // mn_release already ran (exit_mmap) when the PASID's state is invalid: mmu_notifier_unregister calls no release.
  k.fns.define('amd_iommu_unbind_pasid', V2, function* (t, dev, pasid) {
    const live = yield* k.stepOn(t, 'clear_pasid_state', () => gcr3Footprint(env, dev, pasid), () => gcr3Valid(env, dev, pasid));
    if (live) yield* k.call(t, 'mmu_notifier_unregister', k.fn.unbind_pasid(t, dev, pasid));
  });
  k.fns.define('mn_release', V2, function* (t, dev, pasid) {
    if (yield* k.stepOn(t, 'run_inv_ctx_cb = !pasid_state->invalid', () => gcr3Footprint(env, dev, pasid), () => gcr3Valid(env, dev, pasid)))
      yield* k.fn.unbind_pasid(t, dev, pasid);
  });
  // ((start ^ (end - 1)) < PAGE_SIZE): one page; anything larger flushes the PASID's whole TLB.
  k.fns.define('mn_invalidate_range', V2, (t, dev, pasid, start, end) =>
    end - start === 1 ? k.fn.amd_iommu_flush_page(t, dev, pasid, start) : k.fn.amd_iommu_flush_tlb(t, dev, pasid),
  );
}

/**
 * The v2 era's PPR handling: the log's entry goes down the IOMMU's ppr_notifier chain (iommu_handle_ppr_entry) to
 * iommu_v2.c's ppr_notifier, which answers PPR_INVALID for a PASID it has no live state of and otherwise queues
 * do_fault on iommu_wq; do_fault resolves the fault in the mm (handle_mm_fault: the core's iommu_sva_handle_mm)
 * and finish_pri_tag answers with amd_iommu_complete_ppr. The model handles a group at its last request (a
 * non-last one only counts in pri[tag].inflight in the kernel before its own do_fault), with one work per PRG index.
 */
export function defineV2Ppr(env: DriverEnv): void {
  const k = env.k;
  const g = k.view(GCR3_ENTRY);
  k.fns.define('amd_iommu_complete_ppr', C66, (t, dev, pasid, status, tag) =>
    k.fn.iommu_queue_command(t, unitOf(env, dev), k.fn.build_complete_ppr(dev.index, pasid, status, tag, true)),
  );
  k.fns.define('iommu_handle_ppr_entry', C66, function* (t, raw) {
    const dev = env.units.flatMap((u) => u.unit.devices).find((d) => d.index === raw.devid) as DeviceInfo;
    yield* k.call(t, 'atomic_notifier_call_chain', k.fn.ppr_notifier(t, dev, raw));
  });
  k.fns.define('ppr_notifier', V2, function* (t, dev, raw) {
    const pasid = (raw.flags & PPR_FLAG_GN) !== 0 ? raw.pasid : 0;
    const tag = raw.tag & 0x1ff;
    const last = (raw.tag & PPR_TAG_LAST) !== 0;
    // get_pasid_state: the GCR3 entry's mm while the state is live (the model reads the entry).
    const mmId = yield* k.stepOn(t, 'get_pasid_state', () => gcr3Footprint(env, dev, pasid), () => {
      const v = g.val.get(gcr3Ptr(env, dev, pasid));
      return (v & GCR3_VALID) !== 0 ? (v >>> GCR3_ADDR_SHIFT) - 1 : -1;
    });
    if (!last) return;
    if (mmId < 0) {
      yield* k.call(t, 'finish_pri_tag', k.fn.amd_iommu_complete_ppr(t, dev, pasid, RESP_INVALID, tag));
      return;
    }
    const v2 = STATE.get(k)?.v2;
    const work = v2?.works.get(dev.index)?.[tag % PR_GROUPS];
    if (!v2 || !work) return;
    const vpn = Math.floor(raw.address / 2 ** PAGE_SHIFT);
    yield* queue_work(k, t, v2.wq, work, [pasid, vpn, (raw.flags & PPR_FLAG_WRITE) !== 0 ? 1 : 0, mmId]);
  });
  k.fns.define('do_fault', V2, function* (t, dev, pasid, tag, vpn, write, mmId) {
    const mm = env.mmOf?.(mmId);
    const status = mm ? yield* k.fn.iommu_sva_handle_mm(t, mm, vpn, write) : RESP_INVALID;
    yield* k.call(t, 'finish_pri_tag', k.fn.amd_iommu_complete_ppr(t, dev, pasid, status, tag));
  });
}
