// drivers/iommu/io-pgfault.c: a page request the IOMMU could not translate, handled in process context —
// iopf_handler finds what {device, PASID} is attached to and iommu_sva_handle_iopf resolves the fault against
// the SVA domain's mm (handle_mm_fault), then the response goes back through the IOMMU's queue. One path for
// both shapes the model keeps: the seed-000 bond reached through its RCU pointer (the sva preset's page-request
// threads), and the SVA domain looked up with iommu_get_domain_for_dev_pasid and a user reference (the domains
// preset, seed 002). Policy "fault handling" (seed 000): a fault the core could not resolve goes to the device
// driver's fault callback (`callback`), or only the device-driver protocol hears of it (`protocol`).
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { type MmStruct, type MmTable, mmget_not_zero, mmput } from '../kernel/mm/mm.js';
import type { MmuNotifiers } from '../kernel/mm/mmu_notifier.js';
import { fault_in } from '../kernel/mm/pagetable.js';
import { type RcuPointer, rcu_dereference, rcu_read_lock, rcu_read_unlock } from '../kernel/rcu.js';
import { objLoad } from '../kernel/slab.js';
import { DOM } from './domain.js';
import type { DomainGet, IommuGroups } from './group.js';
import { type DeviceInfo, type FaultHandling, RESP_INVALID, RESP_SUCCESS, type SvmOps } from './types.js';

const IO_PGFAULT_C = 'drivers/iommu/io-pgfault.c';

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    /** The bond's page request: the response code (RESP_SUCCESS, RESP_INVALID or the driver callback's). */
    iommu_sva_handle_iopf(t: KTask, dev: DeviceInfo, pasid: number, vpn: number, write: boolean): KGen<number>;
    /** The SVA domain's page request (seed 002): the mm id it was handled for, 0 when nothing SVA is attached. */
    iopf_handler(t: KTask, dev: DeviceInfo, pasid: number): KGen<number>;
  }
}

/** What the bond path's fault handling reads of iommu-sva.ts. */
export interface BondFaultEnv {
  readonly mms: MmTable;
  readonly notifiers: MmuNotifiers;
  /** {dev, pasid}'s bond pointer (RCU): the handle, 0 when unbound. */
  bondPtr(dev: DeviceInfo, pasid: number): RcuPointer;
  /** The bond's mm id + 1 (a plain read inside a point). */
  bondMm(handle: number): number;
  svmOf(dev: DeviceInfo): SvmOps | undefined;
}

/** iommu_sva_handle_iopf for the bond path, by the fault-handling policy. */
export function defineBondIopf(k: Kernel, env: BondFaultEnv, fault: FaultHandling): void {
  k.fns.definePolicy('iommu_sva_handle_iopf', IO_PGFAULT_C, 'fault', fault, {
    *callback(t, dev, pasid, vpn, write) {
      const code = yield* resolveBondFault(k, env, t, dev, pasid, vpn, write);
      const svm = env.svmOf(dev);
      return code !== RESP_SUCCESS && svm?.fault ? yield* svm.fault(t, dev, pasid, vpn, write) : code;
    },
    protocol: (t, dev, pasid, vpn, write) => resolveBondFault(k, env, t, dev, pasid, vpn, write),
  });
}

/** Resolve a page request against the mm bound at {dev, pasid}: the response code. */
function* resolveBondFault(k: Kernel, env: BondFaultEnv, t: KTask, dev: DeviceInfo, pasid: number, vpn: number, write: boolean): KGen<number> {
  // The mm reference is taken inside the read-side section: the unbind waits for it (synchronize_rcu)
  // before the bond's hold on the mm can go.
  yield* rcu_read_lock(k, t);
  const handle = yield* rcu_dereference(k, t, env.bondPtr(dev, pasid));
  const mmId = handle > 0 ? yield* k.step(t, 'bond->mm', () => env.bondMm(handle)) : 0;
  const mm: MmStruct | undefined = mmId > 0 ? env.mms.mms[mmId - 1] : undefined;
  const held = mm !== undefined && (yield* mmget_not_zero(k, t, mm));
  yield* rcu_read_unlock(k, t);
  if (!mm || !held) return RESP_INVALID;
  const r = yield* fault_in(k, t, mm, vpn, write);
  yield* mmput(k, t, env.notifiers, mm);
  return r === 'ok' ? RESP_SUCCESS : RESP_INVALID;
}

/** What the domain path's fault handling needs of sva-domain.ts: the user reference of a lookup, and its put. */
export interface DomainFaultEnv {
  readonly groups: IommuGroups;
  readonly get: DomainGet;
  put(t: KTask, dom: number): KGen;
}

/**
 * iopf_handler for the SVA domain path: find the SVA domain with a user reference, handle the fault against
 * domain->mm (iommu_sva_handle_iopf), drop the reference.
 */
export function defineDomainIopf(k: Kernel, env: DomainFaultEnv): void {
  k.fns.define('iopf_handler', IO_PGFAULT_C, function* (t, dev, pasid) {
    const dom = yield* env.groups.iommu_get_domain_for_dev_pasid(t, dev, pasid, 'sva', env.get);
    if (dom <= 0) return 0;
    const mmId = yield* k.call(
      t,
      'iommu_sva_handle_iopf',
      k.step(t, 'domain->mm', () => objLoad(k, t, dom, DOM.mm) - 1),
    );
    yield* env.put(t, dom);
    return mmId;
  });
}
