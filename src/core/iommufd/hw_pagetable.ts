// drivers/iommu/iommufd/hw_pagetable.c: a paging hw_pagetable (IOMMU_HWPT_ALLOC) — a paging domain of the
// device's IOMMU, allocated on an IOAS, optionally fault-capable (IOMMU_HWPT_FAULT_ID_VALID: its fault object
// gets the domain's I/O page faults: domain->iopf_handler = iommufd_fault_iopf_handler). It holds a reference
// of its IOAS and of its fault; every attachment holds one of it, so IOMMU_DESTROY of an attached hw_pagetable
// is -EBUSY. Its destroy frees the domain and drops what it holds.
import type { KTask } from '../../kernel/context.js';
import { EINVAL } from '../../kernel/errno.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { refcount_dec, refcount_inc } from '../../kernel/refcount.js';
import { objLoad, objStore } from '../../kernel/slab.js';
import { struct, word } from '../../kernel/struct.js';
import { IOPF_HANDLERS } from '../io-pgfault.js';
import { DOM } from '../iommu.js';
import { IDEV } from './device.js';
import { IOMMUFD_OBJECT, type IommufdCtx, iommufdState, OBJ, usersOf } from './main.js';

const HW_PAGETABLE_C = 'drivers/iommu/iommufd/hw_pagetable.c';

/** struct iommufd_hwpt_paging (its iommufd_hw_pagetable part): the IOAS, the domain, the fault (0: none). */
export const IOMMUFD_HWPT_PAGING = struct('iommufd_hwpt_paging', {
  ...IOMMUFD_OBJECT,
  ioas: word,
  domain: word,
  fault: word,
});
export const HWPT = IOMMUFD_HWPT_PAGING.offset;

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    /** IOMMU_HWPT_ALLOC on device idev's IOMMU and IOAS ioas (ids), with fault object `fault` (id, 0: none): its id or -errno. */
    iommufd_hwpt_alloc(t: KTask, ictx: IommufdCtx, idevId: number, ioasId: number, faultId: number): KGen<number>;
  }
}

export function defineHwPagetable(k: Kernel): void {
  k.fns.define('iommufd_hwpt_alloc', HW_PAGETABLE_C, (t, ictx, idevId, ioasId, faultId) => hwptAlloc(k, t, ictx, idevId, ioasId, faultId));
  k.fns.define('iommufd_hwpt_paging_destroy', HW_PAGETABLE_C, function* (t, hwpt) {
    const [ioas, dom, fault] = yield* k.step(t, 'hwpt->ioas, hwpt->domain, hwpt->fault', () => [objLoad(k, t, hwpt, HWPT.ioas), objLoad(k, t, hwpt, HWPT.domain), objLoad(k, t, hwpt, HWPT.fault)]);
    if (dom !== 0) yield* iommufdState(k).env.domains.free(t, dom);
    yield* refcount_dec(k, t, usersOf(k, ioas));
    if (fault !== 0) yield* refcount_dec(k, t, usersOf(k, fault));
  });
}

function* hwptAlloc(k: Kernel, t: KTask, ictx: IommufdCtx, idevId: number, ioasId: number, faultId: number): KGen<number> {
  const idev = yield* k.fn.iommufd_get_object(t, ictx, idevId, 'device');
  if (idev < 0) return idev;
  const ioas = yield* k.fn.iommufd_get_object(t, ictx, ioasId, 'ioas');
  const fault = faultId === 0 ? 0 : yield* k.fn.iommufd_get_object(t, ictx, faultId, 'fault');
  let ret = ioas < 0 ? ioas : fault < 0 ? fault : 0;
  if (ret === 0) ret = yield* hwptAllocOn(k, t, ictx, idev, ioas, fault);
  if (fault > 0) yield* k.fn.iommufd_put_object(t, ictx, fault);
  if (ioas > 0) yield* k.fn.iommufd_put_object(t, ictx, ioas);
  yield* k.fn.iommufd_put_object(t, ictx, idev);
  return ret;
}

/** iommufd_hwpt_paging_alloc: the object, the domain on idev's IOMMU, its fault handler; the id. */
function* hwptAllocOn(k: Kernel, t: KTask, ictx: IommufdCtx, idev: number, ioas: number, fault: number): KGen<number> {
  const { domains, devices } = iommufdState(k).env;
  const dev = devices[(yield* k.step(t, 'idev->dev', () => objLoad(k, t, idev, IDEV.dev))) - 1];
  if (!dev) return -EINVAL;
  const hwpt = yield* k.fn.iommufd_object_alloc(t, ictx, IOMMUFD_HWPT_PAGING.words, 'hwpt_paging');
  if (hwpt < 0) return hwpt;
  const a = yield* domains.alloc(t, 'paging', dev.iommu);
  if (a.dom === 0) {
    yield* k.fn.iommufd_object_abort(t, ictx, hwpt);
    return a.err;
  }
  yield* refcount_inc(k, t, usersOf(k, ioas));
  if (fault !== 0) yield* refcount_inc(k, t, usersOf(k, fault));
  yield* k.step(t, 'hwpt->domain, hwpt->fault', () => {
    objStore(k, t, hwpt, HWPT.ioas, ioas);
    objStore(k, t, hwpt, HWPT.domain, a.dom);
    objStore(k, t, hwpt, HWPT.fault, fault);
    objStore(k, t, a.dom, DOM.iommufd_hwpt, hwpt);
    // hwpt->domain->iopf_handler = iommufd_fault_iopf_handler (IOMMU_HWPT_FAULT_ID_VALID).
    if (fault !== 0) objStore(k, t, a.dom, DOM.iopf_handler, IOPF_HANDLERS.indexOf('iommufd_fault_iopf_handler') + 1);
  });
  yield* k.fn.iommufd_object_finalize(t, ictx, hwpt);
  return yield* k.step(t, 'hwpt->obj.id', () => objLoad(k, t, hwpt, OBJ.id));
}
