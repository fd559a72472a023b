// drivers/iommu/iommufd/fault.c (eventq.c in later kernels): the fault object (IOMMU_FAULT_QUEUE_ALLOC) — the
// queue through which a fault-capable hw_pagetable's I/O page faults reach user space. The domain's iopf_handler
// (iommufd_fault_iopf_handler, from the IOMMU driver's page-request thread) queues the group on fault->deliver
// under fault->lock (a spinlock since 3d49020a327c: the handler must not wait behind a read's copy_to_user) and
// wakes the readers. read() (fault->mutex held) takes groups off the list, gives each a cookie in
// fault->response and copies its records out — copy_to_user may fault on the user buffer and sleep in the mm
// layer (mmap_read_lock, handle_mm_fault on the VMM's mm). write() takes responses back: the group of a cookie
// is answered (iopf_group_response → iommu_page_response) and freed. A detach or replace answers the groups
// still pending for the old attach handle (iommufd_auto_response_faults, INVALID); the fault's destroy answers
// whatever is left. Each last page request is so answered exactly once (the io-pgfault oracle).
//
// The model: fault->deliver is a ring of group pointers in the object, fault->response an array by cookie
// (1 .. IOMMUFD_FAULT_DEPTH-1); IOPF is enabled for a device as iommu_dev_enable_feature(IOPF) did
// (iopf_queue_add_device), unless its driver enabled it already (iopf=probe).
import type { KTask } from '../../kernel/context.js';
import { EBUSY, EFAULT, EINVAL, ENODEV } from '../../kernel/errno.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { pteAddr } from '../../kernel/mm/mm.js';
import { PTE_PRESENT } from '../../kernel/mm/pagetable.js';
import { fault_in } from '../../kernel/mm/pagetable.js';
import { mutex_lock, mutex_unlock } from '../../kernel/mutex.js';
import { objectLock } from '../../kernel/lock.js';
import { refcount_dec, refcount_inc } from '../../kernel/refcount.js';
import { objLoad, objStore } from '../../kernel/slab.js';
import { spin_lock, spin_unlock } from '../../kernel/spinlock.js';
import { array, struct, word } from '../../kernel/struct.js';
import { objectWaitQueue, wait_event, wake_up } from '../../kernel/waitqueue.js';
import { GRP, iopfFaultParam, iopfQueueOf } from '../io-pgfault.js';
import { DOM } from '../iommu.js';
import { RESP_INVALID } from '../types.js';
import { IDEV, idevDevice, IOMMUFD_ATTACH_HANDLE } from './device.js';
import { HWPT } from './hw_pagetable.js';
import { ctxOf, IOMMUFD_OBJECT, IOMMUFD_UBUF_RECORDS, type IommufdCtx, OBJ, usersOf } from './main.js';

const FAULT_C = 'drivers/iommu/iommufd/fault.c';

/** Groups a fault object holds at once (deliver ring, response cookies). */
export const IOMMUFD_FAULT_DEPTH = 32;

/** struct iommufd_fault. */
export const IOMMUFD_FAULT = struct('iommufd_fault', {
  ...IOMMUFD_OBJECT,
  mutex: word,
  lock: word,
  wait_queue: word,
  fd: word, // model: the fault fd is open (it holds a users reference)
  deliver_head: word,
  deliver_count: word,
  deliver: array(IOMMUFD_FAULT_DEPTH),
  response: array(IOMMUFD_FAULT_DEPTH), // by cookie (0 unused: XA_FLAGS_ALLOC1)
});
export const FLT = IOMMUFD_FAULT.offset;

const mutexOf = (k: Kernel, f: number) => objectLock(k, '&fault->mutex', f, FLT.mutex);
const lockOf = (k: Kernel, f: number) => objectLock(k, '&fault->lock', f, FLT.lock);
const waitOf = (k: Kernel, f: number) => objectWaitQueue(k, '&fault->wait_queue', f, FLT.wait_queue);

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    /** IOMMU_FAULT_QUEUE_ALLOC: the fault's id (its fd is open and holds a reference), or -errno. */
    iommufd_fault_alloc(t: KTask, ictx: IommufdCtx): KGen<number>;
    /** The fault fd's close: its reference dropped. */
    iommufd_fault_fops_release(t: KTask, fault: number): KGen;
    /** The domain's iopf_handler: the group queued on its hw_pagetable's fault, the readers woken. 0 or -errno. */
    iommufd_fault_iopf_handler(t: KTask, group: number): KGen<number>;
    /** poll(): wait until the fault has a group to deliver. */
    iommufd_fault_fops_poll(t: KTask, fault: number): KGen;
    /** read() of up to `groups` groups into the user buffer at page `vpn` of the VMM's mm: records copied, or -errno. */
    iommufd_fault_fops_read(t: KTask, fault: number, groups: number, vpn: number): KGen<number>;
    /** write() of one response (cookie, code): 0, or -EINVAL when the cookie names no group read and unanswered. */
    iommufd_fault_fops_write(t: KTask, fault: number, cookie: number, code: number): KGen<number>;
    /** The groups of `handle` still pending on hwpt's fault answered INVALID and freed. */
    iommufd_auto_response_faults(t: KTask, hwpt: number, handle: number): KGen;
    iommufd_fault_iopf_enable(t: KTask, idev: number): KGen<number>;
    iommufd_fault_iopf_disable(t: KTask, idev: number): KGen;
    /** copy_to_user of one record to page vpn of the ctx's mm (may fault and sleep): false when it faults for good. */
    copy_to_user(t: KTask, ictx: IommufdCtx, vpn: number): KGen<boolean>;
    /** The first group taken off fault->deliver under fault->lock (0: none). */
    iommufd_fault_deliver_fetch(t: KTask, fault: number): KGen<number>;
    /** A group read() could not hand out put back at the head of fault->deliver, under fault->lock. */
    iommufd_fault_deliver_restore(t: KTask, fault: number, group: number): KGen;
  }
}

export function defineFault(k: Kernel): void {
  k.fns.define('iommufd_fault_alloc', FAULT_C, function* (t, ictx) {
    const f = yield* k.fn.iommufd_object_alloc(t, ictx, IOMMUFD_FAULT.words, 'fault');
    if (f < 0) return f;
    // anon_inode_getfile: the fd holds a reference of the object.
    yield* refcount_inc(k, t, usersOf(k, f));
    yield* k.step(t, 'fault->filep', () => objStore(k, t, f, FLT.fd, 1));
    yield* k.fn.iommufd_object_finalize(t, ictx, f);
    return yield* k.step(t, 'fault->obj.id', () => objLoad(k, t, f, OBJ.id));
  });
  k.fns.define('iommufd_fault_fops_release', FAULT_C, function* (t, f) {
    const open = yield* k.step(t, 'fault->filep', () => {
      const was = objLoad(k, t, f, FLT.fd) === 1;
      objStore(k, t, f, FLT.fd, 0);
      return was;
    });
    if (open) yield* refcount_dec(k, t, usersOf(k, f));
  });
  k.fns.define('iommufd_fault_iopf_handler', FAULT_C, (t, group) => iopfHandler(k, t, group));
  k.fns.define('iommufd_fault_fops_poll', FAULT_C, function* (t, f) {
    yield* wait_event(k, t, waitOf(k, f), () => (k.i32[f + FLT.deliver_count] as number) > 0);
  });
  k.fns.define('iommufd_fault_fops_read', FAULT_C, (t, f, groups, vpn) => read(k, t, f, groups, vpn));
  k.fns.define('iommufd_fault_fops_write', FAULT_C, (t, f, cookie, code) => write(k, t, f, cookie, code));
  k.fns.define('iommufd_auto_response_faults', FAULT_C, (t, hwpt, handle) => autoResponse(k, t, hwpt, handle));
  k.fns.define('iommufd_fault_destroy', FAULT_C, (t, f) => destroy(k, t, f));
  k.fns.define('iommufd_fault_iopf_enable', FAULT_C, (t, idev) => iopfEnable(k, t, idev));
  k.fns.define('iommufd_fault_iopf_disable', FAULT_C, (t, idev) => iopfDisable(k, t, idev));
  k.fns.define('copy_to_user', 'include/linux/uaccess.h', (t, ictx, vpn) => copyToUser(k, t, ictx, vpn));
  k.fns.define('iommufd_fault_deliver_fetch', FAULT_C, (t, f) => deliverFetch(k, t, f));
  k.fns.define('iommufd_fault_deliver_restore', FAULT_C, (t, f, group) => deliverRestore(k, t, f, group));
}

/** iommufd_fault_iopf_handler: hwpt = group->attach_handle->domain->iommufd_hwpt; list_add_tail under fault->lock. */
function* iopfHandler(k: Kernel, t: KTask, group: number): KGen<number> {
  const f = yield* k.step(t, 'group->attach_handle->domain->iommufd_hwpt->fault', () => {
    const handle = objLoad(k, t, group, GRP.attach_handle);
    const dom = objLoad(k, t, handle, IOMMUFD_ATTACH_HANDLE.offset.domain);
    const hwpt = objLoad(k, t, dom, DOM.iommufd_hwpt);
    return objLoad(k, t, hwpt, HWPT.fault);
  });
  if (f === 0) return -EINVAL;
  yield* spin_lock(k, t, lockOf(k, f));
  const queued = yield* k.step(t, 'list_add_tail(&group->node, &fault->deliver)', () => deliverPush(k, t, f, group));
  yield* spin_unlock(k, t, lockOf(k, f));
  if (!queued) return -EBUSY;
  yield* wake_up(k, t, waitOf(k, f));
  return 0;
}

function deliverPush(k: Kernel, t: KTask, f: number, group: number): boolean {
  const n = objLoad(k, t, f, FLT.deliver_count);
  if (n >= IOMMUFD_FAULT_DEPTH) return false;
  const head = objLoad(k, t, f, FLT.deliver_head);
  objStore(k, t, f, FLT.deliver + ((head + n) % IOMMUFD_FAULT_DEPTH), group);
  objStore(k, t, f, FLT.deliver_count, n + 1);
  return true;
}

/** iommufd_fault_deliver_fetch: the first group off the list (0: none), under fault->lock. */
function* deliverFetch(k: Kernel, t: KTask, f: number): KGen<number> {
  yield* spin_lock(k, t, lockOf(k, f));
  const group = yield* k.step(t, 'list_first_entry_or_null(&fault->deliver)', () => {
    const n = objLoad(k, t, f, FLT.deliver_count);
    if (n === 0) return 0;
    const head = objLoad(k, t, f, FLT.deliver_head);
    const g = objLoad(k, t, f, FLT.deliver + head);
    objStore(k, t, f, FLT.deliver + head, 0);
    objStore(k, t, f, FLT.deliver_head, (head + 1) % IOMMUFD_FAULT_DEPTH);
    objStore(k, t, f, FLT.deliver_count, n - 1);
    return g;
  });
  yield* spin_unlock(k, t, lockOf(k, f));
  return group;
}

/** iommufd_fault_deliver_restore: the group back at the head of the list. */
function* deliverRestore(k: Kernel, t: KTask, f: number, group: number): KGen {
  yield* spin_lock(k, t, lockOf(k, f));
  yield* k.step(t, 'list_add(&group->node, &fault->deliver)', () => {
    const head = (objLoad(k, t, f, FLT.deliver_head) + IOMMUFD_FAULT_DEPTH - 1) % IOMMUFD_FAULT_DEPTH;
    objStore(k, t, f, FLT.deliver + head, group);
    objStore(k, t, f, FLT.deliver_head, head);
    objStore(k, t, f, FLT.deliver_count, objLoad(k, t, f, FLT.deliver_count) + 1);
  });
  yield* spin_unlock(k, t, lockOf(k, f));
}

/** xa_alloc(&fault->response, &group->cookie, group): the cookie, or -EBUSY when all are in use. */
function responseAlloc(k: Kernel, t: KTask, f: number, group: number): number {
  for (let c = 1; c < IOMMUFD_FAULT_DEPTH; c++) {
    if (objLoad(k, t, f, FLT.response + c) !== 0) continue;
    objStore(k, t, f, FLT.response + c, group);
    return c;
  }
  return -EBUSY;
}

/**
 * iommufd_fault_fops_read: under fault->mutex, each group fetched gets a cookie and its records are composed
 * (idev = to_iommufd_handle(group->attach_handle)->idev) and copied out; a copy that faults puts it back.
 */
function* read(k: Kernel, t: KTask, f: number, groups: number, vpn: number): KGen<number> {
  const ictx = ctxOf(k, t, f);
  const ubuf = k.mem.statics + ictx.words + 1;
  let done = 0;
  let rc = 0;
  yield* mutex_lock(k, t, mutexOf(k, f));
  for (let n = 0; n < groups && done < IOMMUFD_UBUF_RECORDS; n++) {
    const group = yield* k.fn.iommufd_fault_deliver_fetch(t, f);
    if (group === 0) break;
    const [cookie, records] = yield* k.step(t, 'xa_alloc(&fault->response, &group->cookie, group)', () => [responseAlloc(k, t, f, group), objLoad(k, t, group, GRP.fault_count)] as const);
    if (cookie < 0 || done + records > IOMMUFD_UBUF_RECORDS) {
      if (cookie > 0) yield* k.step(t, 'xa_erase(&fault->response, group->cookie)', () => objStore(k, t, f, FLT.response + cookie, 0));
      yield* k.fn.iommufd_fault_deliver_restore(t, f, group);
      rc = cookie < 0 ? cookie : 0;
      break;
    }
    // iommufd_compose_fault_message: hwpt_fault->dev_id = idev->obj.id.
    yield* k.step(t, 'to_iommufd_handle(group->attach_handle)->idev->obj.id', () => {
      const handle = objLoad(k, t, group, GRP.attach_handle);
      return objLoad(k, t, objLoad(k, t, handle, IOMMUFD_ATTACH_HANDLE.offset.idev), OBJ.id);
    });
    let copied = true;
    for (let r = 0; r < records && copied; r++) copied = yield* k.fn.copy_to_user(t, ictx, vpn);
    if (!copied) {
      yield* k.step(t, 'xa_erase(&fault->response, group->cookie)', () => objStore(k, t, f, FLT.response + cookie, 0));
      yield* k.fn.iommufd_fault_deliver_restore(t, f, group);
      rc = -EFAULT;
      break;
    }
    yield* k.step(t, 'hwpt_fault->cookie', () => {
      for (let r = 0; r < records; r++) Atomics.store(k.i32, ubuf + 1 + done + r, cookie);
      Atomics.store(k.i32, ubuf, done + records);
    });
    done += records;
  }
  yield* mutex_unlock(k, t, mutexOf(k, f));
  return done === 0 ? rc : done;
}

/** copy_to_user: might_fault; a user page not present is faulted in through the mm layer (mmap_read_lock). */
function* copyToUser(k: Kernel, t: KTask, ictx: IommufdCtx, vpn: number): KGen<boolean> {
  k.mightSleep(t, 'include/linux/uaccess.h:209');
  const mm = ictx.mm;
  if (vpn < 0 || vpn >= mm.pages) return false;
  const present = yield* k.step(t, `copy_to_user(${mm.name} page ${vpn})`, () => (Atomics.load(k.i32, pteAddr(k, mm, vpn)) & PTE_PRESENT) !== 0);
  if (present) return true;
  return (yield* fault_in(k, t, mm, vpn, true)) === 'ok';
}

/** iommufd_fault_fops_write: the group of the cookie (xa_erase) answered with the code and freed. */
function* write(k: Kernel, t: KTask, f: number, cookie: number, code: number): KGen<number> {
  if (!Number.isInteger(cookie) || cookie <= 0 || cookie >= IOMMUFD_FAULT_DEPTH) return -EINVAL;
  yield* mutex_lock(k, t, mutexOf(k, f));
  const group = yield* k.step(t, 'xa_erase(&fault->response, response.cookie)', () => {
    const g = objLoad(k, t, f, FLT.response + cookie);
    objStore(k, t, f, FLT.response + cookie, 0);
    return g;
  });
  if (group !== 0) {
    yield* k.fn.iopf_group_response(t, group, code);
    yield* k.fn.iopf_free_group(t, group);
  }
  yield* mutex_unlock(k, t, mutexOf(k, f));
  return group === 0 ? -EINVAL : 0;
}

/** The groups in fault->response that `which` picks, erased (in cookie order). */
function responseTake(k: Kernel, t: KTask, f: number, which: (group: number) => boolean): number[] {
  const out: number[] = [];
  for (let c = 1; c < IOMMUFD_FAULT_DEPTH; c++) {
    const g = objLoad(k, t, f, FLT.response + c);
    if (g === 0 || !which(g)) continue;
    objStore(k, t, f, FLT.response + c, 0);
    out.push(g);
  }
  return out;
}

/** The group answered INVALID and freed (the auto response's and the destroy's). */
function* respondInvalid(k: Kernel, t: KTask, group: number): KGen {
  yield* k.fn.iopf_group_response(t, group, RESP_INVALID);
  yield* k.fn.iopf_free_group(t, group);
}

/** iommufd_auto_response_faults: hwpt's fault's groups of `handle` — on the deliver list, then read — answered. */
function* autoResponse(k: Kernel, t: KTask, hwpt: number, handle: number): KGen {
  const f = yield* k.step(t, 'hwpt->fault', () => objLoad(k, t, hwpt, HWPT.fault));
  if (f === 0) return;
  yield* mutex_lock(k, t, mutexOf(k, f));
  // list_move of the handle's groups to a free list, under fault->lock.
  yield* spin_lock(k, t, lockOf(k, f));
  const freeList = yield* k.step(t, 'list_for_each_entry_safe(&fault->deliver)', () => {
    const keep: number[] = [];
    const out: number[] = [];
    const n = objLoad(k, t, f, FLT.deliver_count);
    const head = objLoad(k, t, f, FLT.deliver_head);
    for (let i = 0; i < n; i++) {
      const g = objLoad(k, t, f, FLT.deliver + ((head + i) % IOMMUFD_FAULT_DEPTH));
      (objLoad(k, t, g, GRP.attach_handle) === handle ? out : keep).push(g);
    }
    for (let i = 0; i < IOMMUFD_FAULT_DEPTH; i++) objStore(k, t, f, FLT.deliver + i, keep[i] ?? 0);
    objStore(k, t, f, FLT.deliver_head, 0);
    objStore(k, t, f, FLT.deliver_count, keep.length);
    return out;
  });
  yield* spin_unlock(k, t, lockOf(k, f));
  for (const g of freeList) yield* respondInvalid(k, t, g);
  const read = yield* k.step(t, 'xa_for_each(&fault->response): xa_erase', () => responseTake(k, t, f, (g) => objLoad(k, t, g, GRP.attach_handle) === handle));
  for (const g of read) yield* respondInvalid(k, t, g);
  yield* mutex_unlock(k, t, mutexOf(k, f));
}

/** iommufd_fault_destroy: nobody else holds the fault — what is left on the list and in response is answered. */
function* destroy(k: Kernel, t: KTask, f: number): KGen {
  for (;;) {
    const g = yield* k.step(t, 'list_first_entry(&fault->deliver)', () => {
      const n = objLoad(k, t, f, FLT.deliver_count);
      if (n === 0) return 0;
      const head = objLoad(k, t, f, FLT.deliver_head);
      objStore(k, t, f, FLT.deliver_head, (head + 1) % IOMMUFD_FAULT_DEPTH);
      objStore(k, t, f, FLT.deliver_count, n - 1);
      return objLoad(k, t, f, FLT.deliver + head);
    });
    if (g === 0) break;
    yield* respondInvalid(k, t, g);
  }
  const read = yield* k.step(t, 'xa_for_each(&fault->response): xa_erase', () => responseTake(k, t, f, () => true));
  for (const g of read) yield* respondInvalid(k, t, g);
}

/** iommufd_fault_iopf_enable: the first enable of the device turns IOPF on (iopf_queue_add_device) unless its driver did. */
function* iopfEnable(k: Kernel, t: KTask, idev: number): KGen<number> {
  const { dev } = yield* idevDevice(k, t, idev);
  const lock = objectLock(k, '&idev->iopf_lock', idev, IDEV.iopf_lock);
  yield* mutex_lock(k, t, lock);
  let rc = 0;
  const first = yield* k.step(t, 'idev->iopf_enabled', () => objLoad(k, t, idev, IDEV.iopf_enabled) === 0);
  if (first && (yield* k.step(t, 'dev->iommu->fault_param', () => iopfFaultParam(k, dev))) === 0) {
    const queue = iopfQueueOf(k, dev);
    rc = queue ? yield* k.fn.iopf_queue_add_device(t, queue, dev) : -ENODEV;
    if (rc === 0) yield* k.step(t, 'iommu_dev_enable_feature(IOPF)', () => objStore(k, t, idev, IDEV.iopf_added, 1));
  }
  if (rc === 0) yield* k.step(t, 'idev->iopf_enabled++', () => objStore(k, t, idev, IDEV.iopf_enabled, objLoad(k, t, idev, IDEV.iopf_enabled) + 1));
  yield* mutex_unlock(k, t, lock);
  return rc;
}

/** iommufd_fault_iopf_disable: the last one turns IOPF off again if the enable turned it on. */
function* iopfDisable(k: Kernel, t: KTask, idev: number): KGen {
  const { dev } = yield* idevDevice(k, t, idev);
  const lock = objectLock(k, '&idev->iopf_lock', idev, IDEV.iopf_lock);
  yield* mutex_lock(k, t, lock);
  const off = yield* k.step(t, '--idev->iopf_enabled', () => {
    const n = objLoad(k, t, idev, IDEV.iopf_enabled) - 1;
    objStore(k, t, idev, IDEV.iopf_enabled, Math.max(0, n));
    const added = n === 0 && objLoad(k, t, idev, IDEV.iopf_added) === 1;
    if (added) objStore(k, t, idev, IDEV.iopf_added, 0);
    return added;
  });
  const queue = iopfQueueOf(k, dev);
  if (off && queue) yield* k.fn.iopf_queue_remove_device(t, queue, dev);
  yield* mutex_unlock(k, t, lock);
}



