// drivers/iommu/iommufd/device.c: a device bound to an iommufd (iommufd_device_bind: its group's DMA ownership
// claimed for the VMM) and its attachments — a hw_pagetable attached to the device's RID (IOMMU_NO_PASID) or to
// one of its PASIDs, replaced, detached — through the core's attach-handle functions (iommu_attach_group_handle,
// iommu_replace_group_handle, iommu_detach_group_handle; iommu_attach_device_pasid, iommu_replace_device_pasid,
// iommu_detach_device_pasid), each with a struct iommufd_attach_handle naming the device, so that the fault path
// finds its iommufd_device from {device, PASID}. The attachments of a group are under igroup->lock, in
// igroup->pasid_attach (PASID → hw_pagetable); each holds a reference of its hw_pagetable and of the device.
// A fault-capable hw_pagetable enables IOPF for the device while attached (iommufd_fault_iopf_enable), and its
// detach or replace answers the faults still pending for the old handle (iommufd_auto_response_faults).
//
// The model: one device a group may have attachments (a second device of the group is -EBUSY).
import type { KTask } from '../../kernel/context.js';
import { EBUSY, EINVAL, ENOMEM } from '../../kernel/errno.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../../kernel/mutex.js';
import { refcount_dec, refcount_inc } from '../../kernel/refcount.js';
import { kfree, kzalloc, objLoad, objStore } from '../../kernel/slab.js';
import { struct, word } from '../../kernel/struct.js';
import { defineXArray, xa_erase, xa_load, xa_store, type XArray } from '../../kernel/xarray.js';
import { IOMMU_NO_PASID, type IommuGroup } from '../iommu.js';
import type { DeviceInfo } from '../types.js';
import { HWPT } from './hw_pagetable.js';
import { IOMMUFD_OBJECT, type IommufdCtx, iommufdState, OBJ, usersOf } from './main.js';

const DEVICE_C = 'drivers/iommu/iommufd/device.c';

/** struct iommufd_device: the device (index + 1), its iopf_enabled count and iopf_lock; model: IOPF added by iommufd. */
export const IOMMUFD_DEVICE = struct('iommufd_device', {
  ...IOMMUFD_OBJECT,
  dev: word,
  iopf_lock: word,
  iopf_enabled: word,
  iopf_added: word, // model: iommufd_fault_iopf_enable put the device on its iopf queue (the driver's IOPF enable)
});
export const IDEV = IOMMUFD_DEVICE.offset;

/** struct iommufd_attach_handle: the core's iommu_attach_handle (its domain, first) and the device. */
export const IOMMUFD_ATTACH_HANDLE = struct('iommufd_attach_handle', {
  domain: word,
  idev: word,
});

/** The planted bugs of iommufd (the negative controls of its race scripts). */
export type IommufdBug = 'none' | 'replace-responds-new-hwpt';
export const IOMMUFD_BUGS: readonly IommufdBug[] = ['none', 'replace-responds-new-hwpt'];

/** struct iommufd_group: igroup->lock and the attachments by PASID (the hw_pagetable attached there). */
interface IommufdGroup {
  readonly lock: Mutex;
  readonly pasidAttach: XArray;
}

const igroups = new WeakMap<Kernel, Map<number, IommufdGroup>>();

function igroupOf(k: Kernel, g: IommuGroup): IommufdGroup {
  const m = igroups.get(k);
  const ig = m?.get(g.id);
  if (!ig) throw new Error(`iommufd: group ${g.id} has no iommufd_group`);
  return ig;
}

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    /** VFIO_DEVICE_BIND_IOMMUFD: the device's id in ictx, or -errno (-EBUSY, -EPERM: its group is owned otherwise). */
    iommufd_device_bind(t: KTask, ictx: IommufdCtx, dev: DeviceInfo): KGen<number>;
    iommufd_device_attach(t: KTask, ictx: IommufdCtx, idevId: number, pasid: number, ptId: number): KGen<number>;
    iommufd_device_replace(t: KTask, ictx: IommufdCtx, idevId: number, pasid: number, ptId: number): KGen<number>;
    /** -EINVAL when nothing is attached there (the kernel's returns nothing: the model says so). */
    iommufd_device_detach(t: KTask, ictx: IommufdCtx, idevId: number, pasid: number): KGen<number>;
    iommufd_hwpt_attach_device(t: KTask, hwpt: number, idev: number, pasid: number): KGen<number>;
    iommufd_hwpt_replace_device(t: KTask, idev: number, pasid: number, hwpt: number, old: number): KGen<number>;
    iommufd_hwpt_detach_device(t: KTask, hwpt: number, idev: number, pasid: number): KGen;
    /** The iommufd_attach_handle at {idev's group, pasid}, or 0. */
    iommufd_device_get_attach_handle(t: KTask, idev: number, pasid: number): KGen<number>;
  }
}

/** The device and group of an iommufd_device object. */
export function* idevDevice(k: Kernel, t: KTask, idev: number): KGen<{ dev: DeviceInfo; g: IommuGroup }> {
  const { devices, groups } = iommufdState(k).env;
  const dev = devices[(yield* k.step(t, 'idev->dev', () => objLoad(k, t, idev, IDEV.dev))) - 1] as DeviceInfo;
  return { dev, g: groups.groupOf(dev) };
}

export function defineDevice(k: Kernel, bug: IommufdBug): void {
  const st = iommufdState(k);
  const m = new Map<number, IommufdGroup>();
  for (const g of st.env.groups.groups) {
    const lock = defineMutex(k, '&igroup->lock');
    m.set(g.id, { lock, pasidAttach: defineXArray(k, 'igroup->pasid_attach', st.env.groups.cfg.maxPasids, { protectedBy: [lock] }) });
  }
  igroups.set(k, m);
  k.fns.define('iommufd_device_bind', DEVICE_C, (t, ictx, dev) => bind(k, t, ictx, dev));
  k.fns.define('iommufd_device_destroy', DEVICE_C, function* (t, idev) {
    const { g } = yield* idevDevice(k, t, idev);
    yield* k.fn.iommu_group_release_dma_owner(t, g);
  });
  k.fns.define('iommufd_device_attach', DEVICE_C, (t, ictx, idevId, pasid, ptId) => change(k, t, ictx, idevId, pasid, ptId, 'attach'));
  k.fns.define('iommufd_device_replace', DEVICE_C, (t, ictx, idevId, pasid, ptId) => change(k, t, ictx, idevId, pasid, ptId, 'replace'));
  k.fns.define('iommufd_device_detach', DEVICE_C, (t, ictx, idevId, pasid) => detach(k, t, ictx, idevId, pasid));
  k.fns.define('iommufd_hwpt_attach_device', DEVICE_C, (t, hwpt, idev, pasid) => hwptAttach(k, t, hwpt, idev, pasid));
  const replace = (fixed: boolean) => (t: KTask, idev: number, pasid: number, hwpt: number, old: number) => hwptReplace(k, t, idev, pasid, hwpt, old, fixed);
  // The planted value: iommufd_auto_response_faults(hwpt, old_handle) — the new hw_pagetable's fault searched
  // for the old handle's groups (fb21b1568ada's refactor; fixed by ba5c0f28a26e).
  k.fns.definePlanted('iommufd_hwpt_replace_device', DEVICE_C, bug, { none: replace(true), 'replace-responds-new-hwpt': replace(false) });
  k.fns.define('iommufd_hwpt_detach_device', DEVICE_C, (t, hwpt, idev, pasid) => hwptDetach(k, t, hwpt, idev, pasid));
  k.fns.define('iommufd_device_get_attach_handle', DEVICE_C, function* (t, idev, pasid) {
    const { g } = yield* idevDevice(k, t, idev);
    const h = yield* k.fn.iommu_attach_handle_get(t, g, pasid);
    return h > 0 ? h : 0;
  });
}

function* bind(k: Kernel, t: KTask, ictx: IommufdCtx, dev: DeviceInfo): KGen<number> {
  const g = iommufdState(k).env.groups.groupOf(dev);
  // iommu_device_claim_dma_owner(dev, ictx): the VMM's ctx is the owner's cookie.
  const rc = yield* k.fn.iommu_group_claim_dma_owner(t, g, ictx.index + 1);
  if (rc < 0) return rc;
  const idev = yield* k.fn.iommufd_object_alloc(t, ictx, IOMMUFD_DEVICE.words, 'device');
  if (idev < 0) {
    yield* k.fn.iommu_group_release_dma_owner(t, g);
    return idev;
  }
  yield* k.step(t, 'idev->dev = dev', () => objStore(k, t, idev, IDEV.dev, dev.index + 1));
  yield* k.fn.iommufd_object_finalize(t, ictx, idev);
  return yield* k.step(t, 'idev->obj.id', () => objLoad(k, t, idev, OBJ.id));
}

/** iommufd_device_change_pt: the device and the hw_pagetable looked up, do_attach or do_replace, both put. */
function* change(k: Kernel, t: KTask, ictx: IommufdCtx, idevId: number, pasid: number, ptId: number, how: 'attach' | 'replace'): KGen<number> {
  const idev = yield* k.fn.iommufd_get_object(t, ictx, idevId, 'device');
  if (idev < 0) return idev;
  const hwpt = yield* k.fn.iommufd_get_object(t, ictx, ptId, 'hwpt_paging');
  let rc = hwpt;
  if (hwpt > 0) {
    rc = how === 'attach' ? yield* doAttach(k, t, idev, pasid, hwpt) : yield* doReplace(k, t, idev, pasid, hwpt);
    yield* k.fn.iommufd_put_object(t, ictx, hwpt);
  }
  yield* k.fn.iommufd_put_object(t, ictx, idev);
  return rc;
}

/** iommufd_hw_pagetable_attach under igroup->lock: the attachment holds a reference of the hwpt and of the device. */
function* doAttach(k: Kernel, t: KTask, idev: number, pasid: number, hwpt: number): KGen<number> {
  const { g } = yield* idevDevice(k, t, idev);
  const ig = igroupOf(k, g);
  yield* mutex_lock(k, t, ig.lock);
  const cur = yield* xa_load(k, t, ig.pasidAttach, pasid);
  let rc = cur === hwpt ? -EBUSY : cur !== 0 ? -EINVAL : 0;
  if (rc === 0) rc = yield* k.fn.iommufd_hwpt_attach_device(t, hwpt, idev, pasid);
  if (rc === 0) {
    yield* xa_store(k, t, ig.pasidAttach, pasid, hwpt);
    yield* refcount_inc(k, t, usersOf(k, hwpt));
    yield* refcount_inc(k, t, usersOf(k, idev));
  }
  yield* mutex_unlock(k, t, ig.lock);
  return rc;
}

/** iommufd_device_do_replace: the new hwpt takes the attachment's reference, the old one's is put after. */
function* doReplace(k: Kernel, t: KTask, idev: number, pasid: number, hwpt: number): KGen<number> {
  const { g } = yield* idevDevice(k, t, idev);
  const ig = igroupOf(k, g);
  yield* mutex_lock(k, t, ig.lock);
  const old = yield* xa_load(k, t, ig.pasidAttach, pasid);
  let rc = old === 0 ? -EINVAL : 0;
  if (rc === 0 && old !== hwpt) {
    rc = yield* k.fn.iommufd_hwpt_replace_device(t, idev, pasid, hwpt, old);
    if (rc === 0) {
      yield* xa_store(k, t, ig.pasidAttach, pasid, hwpt);
      yield* refcount_inc(k, t, usersOf(k, hwpt));
    }
  }
  yield* mutex_unlock(k, t, ig.lock);
  // iommufd_hw_pagetable_put(ictx, old_hwpt).
  if (rc === 0 && old !== hwpt) yield* refcount_dec(k, t, usersOf(k, old));
  return rc;
}

function* detach(k: Kernel, t: KTask, ictx: IommufdCtx, idevId: number, pasid: number): KGen<number> {
  const idev = yield* k.fn.iommufd_get_object(t, ictx, idevId, 'device');
  if (idev < 0) return idev;
  const { g } = yield* idevDevice(k, t, idev);
  const ig = igroupOf(k, g);
  yield* mutex_lock(k, t, ig.lock);
  const hwpt = yield* xa_load(k, t, ig.pasidAttach, pasid);
  if (hwpt !== 0) {
    yield* k.fn.iommufd_hwpt_detach_device(t, hwpt, idev, pasid);
    yield* xa_erase(k, t, ig.pasidAttach, pasid);
  }
  yield* mutex_unlock(k, t, ig.lock);
  if (hwpt !== 0) {
    yield* refcount_dec(k, t, usersOf(k, hwpt));
    yield* refcount_dec(k, t, usersOf(k, idev));
  }
  yield* k.fn.iommufd_put_object(t, ictx, idev);
  return hwpt === 0 ? -EINVAL : 0;
}

function* hwptFields(k: Kernel, t: KTask, hwpt: number): KGen<{ dom: number; fault: number }> {
  return yield* k.step(t, 'hwpt->domain, hwpt->fault', () => ({ dom: objLoad(k, t, hwpt, HWPT.domain), fault: objLoad(k, t, hwpt, HWPT.fault) }));
}

/** A new iommufd_attach_handle naming idev (its domain is the core's to set). */
function* newHandle(k: Kernel, t: KTask, idev: number): KGen<number> {
  const h = yield* kzalloc(k, t, IOMMUFD_ATTACH_HANDLE.words, 'GFP_KERNEL', 'iommufd_attach_handle');
  if (h !== 0) yield* k.step(t, 'handle->idev = idev', () => objStore(k, t, h, IOMMUFD_ATTACH_HANDLE.offset.idev, idev));
  return h;
}

/** iommufd_hwpt_attach_device: IOPF on for a fault-capable hwpt, then the core's attach with a new handle. */
function* hwptAttach(k: Kernel, t: KTask, hwpt: number, idev: number, pasid: number): KGen<number> {
  const { dev, g } = yield* idevDevice(k, t, idev);
  const { dom, fault } = yield* hwptFields(k, t, hwpt);
  const handle = yield* newHandle(k, t, idev);
  if (handle === 0) return -ENOMEM;
  if (fault !== 0) {
    const rc = yield* k.fn.iommufd_fault_iopf_enable(t, idev);
    if (rc < 0) {
      yield* kfree(k, t, handle);
      return rc;
    }
  }
  const rc = pasid === IOMMU_NO_PASID ? yield* k.fn.iommu_attach_group_handle(t, dom, g, handle) : yield* k.fn.iommu_attach_device_pasid(t, dom, dev, pasid, handle);
  if (rc < 0) {
    if (fault !== 0) yield* k.fn.iommufd_fault_iopf_disable(t, idev);
    yield* kfree(k, t, handle);
  }
  return rc;
}

/**
 * iommufd_hwpt_replace_device: the core swaps domain and handle at once; then the faults the old hw_pagetable's
 * fault object still holds for the old handle are answered (INVALID) and the old handle freed. `fixed`: they are
 * looked for in the old hw_pagetable's fault (mainline since ba5c0f28a26e); otherwise in the new one's.
 */
function* hwptReplace(k: Kernel, t: KTask, idev: number, pasid: number, hwpt: number, old: number, fixed: boolean): KGen<number> {
  const { dev, g } = yield* idevDevice(k, t, idev);
  const { dom, fault } = yield* hwptFields(k, t, hwpt);
  const oldFault = (yield* hwptFields(k, t, old)).fault;
  const oldHandle = yield* k.fn.iommufd_device_get_attach_handle(t, idev, pasid);
  const handle = yield* newHandle(k, t, idev);
  if (handle === 0) return -ENOMEM;
  const iopfOn = fault !== 0 && oldFault === 0;
  if (iopfOn) {
    const rc = yield* k.fn.iommufd_fault_iopf_enable(t, idev);
    if (rc < 0) {
      yield* kfree(k, t, handle);
      return rc;
    }
  }
  const rc = pasid === IOMMU_NO_PASID ? yield* k.fn.iommu_replace_group_handle(t, g, dom, handle) : yield* k.fn.iommu_replace_device_pasid(t, dom, dev, pasid, handle);
  if (rc < 0) {
    if (iopfOn) yield* k.fn.iommufd_fault_iopf_disable(t, idev);
    yield* kfree(k, t, handle);
    return rc;
  }
  if (oldFault !== 0) {
    yield* k.fn.iommufd_auto_response_faults(t, fixed ? old : hwpt, oldHandle);
    if (fault === 0) yield* k.fn.iommufd_fault_iopf_disable(t, idev);
  }
  yield* kfree(k, t, oldHandle);
  return 0;
}

/** iommufd_hwpt_detach_device: the core's detach, then the handle's pending faults answered, IOPF off, the handle freed. */
function* hwptDetach(k: Kernel, t: KTask, hwpt: number, idev: number, pasid: number): KGen {
  const { dev, g } = yield* idevDevice(k, t, idev);
  const { dom, fault } = yield* hwptFields(k, t, hwpt);
  const handle = yield* k.fn.iommufd_device_get_attach_handle(t, idev, pasid);
  if (pasid === IOMMU_NO_PASID) yield* k.fn.iommu_detach_group_handle(t, dom, g);
  else yield* k.fn.iommu_detach_device_pasid(t, dom, dev, pasid);
  if (fault !== 0) {
    yield* k.fn.iommufd_auto_response_faults(t, hwpt, handle);
    yield* k.fn.iommufd_fault_iopf_disable(t, idev);
  }
  yield* kfree(k, t, handle);
}
