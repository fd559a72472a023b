// drivers/iommu/io-pgfault.c: a page request the IOMMU could not translate, handled in process context —
// iopf_handler finds what {device, PASID} is attached to and iommu_sva_handle_iopf resolves the fault against
// the SVA domain's mm (handle_mm_fault), then the response goes back through the IOMMU's queue. One path for
// both presets: the SVA domain looked up with iommu_get_domain_for_dev_pasid and a user reference (seed 002's
// policies lookup and users) — from the IOMMU drivers' page-request threads (iommu_report_device_fault, the sva
// preset's hardware) or the domains preset's fault handlers (iopf_handler). Policy "fault handling" (seed 000):
// a fault the core could not resolve goes to the device driver's fault callback (`callback`), or only the
// device-driver protocol hears of it (`protocol`).
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { MmStruct, MmTable } from '../kernel/mm/mm.js';
import type { MmuNotifiers } from '../kernel/mm/mmu_notifier.js';
import { objLoad } from '../kernel/slab.js';
import {
  DOM,
  type DomainGet,
  type IommuGroups,
} from './iommu.js';
import { type DeviceInfo, type FaultHandling, RESP_INVALID, RESP_SUCCESS, type SvmOps } from './types.js';

const IO_PGFAULT_C = 'drivers/iommu/io-pgfault.c';

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    /** A page request from the IOMMU's queue: the response code (RESP_SUCCESS, RESP_INVALID or the driver callback's). */
    iommu_report_device_fault(t: KTask, dev: DeviceInfo, pasid: number, vpn: number, write: boolean): KGen<number>;
    /** The SVA domain's handler of a page request on {dev, pasid} (dom: the domain found, with its user reference). */
    iommu_sva_handle_iopf(t: KTask, dev: DeviceInfo, pasid: number, vpn: number, write: boolean, dom: number): KGen<number>;
    /** The SVA domain's page request (seed 002): the mm id it was handled for, 0 when nothing SVA is attached. */
    iopf_handler(t: KTask, dev: DeviceInfo, pasid: number): KGen<number>;
  }
}

/** What the hardware model's fault path reads of iommu-sva.ts and sva-domain.ts. */
export interface DeviceFaultEnv {
  readonly mms: MmTable;
  readonly notifiers: MmuNotifiers;
  /** The SVA domain's user reference of a lookup (policy users), and its put. */
  readonly get: DomainGet;
  put(t: KTask, dom: number): KGen;
  svmOf(dev: DeviceInfo): SvmOps | undefined;
}

/**
 * The page-request path of the hardware model, in mainline's shape: iommu_report_device_fault finds the domain
 * attached to {dev, pasid} (iommu_get_domain_for_dev_pasid, policy lookup, with the SVA domain's user reference,
 * policy users) and hands the request to the domain's handler, iommu_sva_handle_iopf (policy fault). No SVA
 * domain attached: the request is answered INVALID, as iommu_report_device_fault does without a handler.
 */
export function defineDeviceFault(k: Kernel, env: DeviceFaultEnv, fault: FaultHandling): void {
  k.fns.define('iommu_report_device_fault', IO_PGFAULT_C, function* (t, dev, pasid, vpn, write) {
    const dom = yield* k.fn.iommu_get_domain_for_dev_pasid(t, dev, pasid, 'sva', env.get);
    if (dom <= 0) return RESP_INVALID;
    const code = yield* k.fn.iommu_sva_handle_iopf(t, dev, pasid, vpn, write, dom);
    yield* env.put(t, dom);
    return code;
  });
  k.fns.definePolicy('iommu_sva_handle_iopf', IO_PGFAULT_C, 'fault', fault, {
    *callback(t, dev, pasid, vpn, write, dom) {
      const code = yield* resolveDomainFault(k, env, t, vpn, write, dom);
      const svm = env.svmOf(dev);
      return code !== RESP_SUCCESS && svm?.fault ? yield* svm.fault(t, dev, pasid, vpn, write) : code;
    },
    protocol: (t, _dev, _pasid, vpn, write, dom) => resolveDomainFault(k, env, t, vpn, write, dom),
  });
}

/** Resolve a page request against domain->mm (the domain is the caller's, by its user reference): the response code. */
function* resolveDomainFault(k: Kernel, env: DeviceFaultEnv, t: KTask, vpn: number, write: boolean, dom: number): KGen<number> {
  // domain->mm is read through the domain: KASAN's to report if the domain is already freed.
  const mmId = yield* k.step(t, 'domain->mm', () => objLoad(k, t, dom, DOM.mm) - 1);
  // init_mm (SUPERVISOR_MODE) takes no page requests: its faults are answered INVALID.
  const mm: MmStruct | undefined = mmId > 0 ? env.mms.mms[mmId - 1] : undefined;
  return mm ? yield* k.fn.iommu_sva_handle_mm(t, mm, vpn, write) : RESP_INVALID;
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
