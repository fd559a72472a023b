// `iommu-sim/kernel`: the kernel API a patch under review is written against — the model's own primitives
// (locks, RCU, SRCU, refcount_t, slab, completions, wait queues, workqueues, kthreads, delays, WARN_ON,
// READ_ONCE and atomics on the model's structs) under their kernel names, with the kernel's signatures less the
// `struct kernel` the model threads through: `kernelApi(k)` binds them to one model instance, and a patch gets
// that object as `ctx.kernel`, so it calls `mutex_lock(t, lock)` where the C says `mutex_lock(&lock)` — `t` is
// `current`, the task running the code. Nothing here is a copy: every function is the model's own, so lockdep,
// KASAN, kmemleak, might_sleep and the watchdogs see a patch's locks, objects and sleeps as the model's.
//
// Declarations (DEFINE_MUTEX, alloc_workqueue, INIT_WORK, kthread_create, the callback kinds of call_rcu and
// call_srcu) take static memory or declare a task kind: a patch makes them in `extend(ctx)`, while the model is
// built (every thread builds it identically), never while it runs.
//
// A patch in JavaScript reaches all of it through `ctx` (no import, so a file in /tmp works); one in TypeScript
// takes the types with `import type { PatchContext } from 'iommu-sim/kernel'` (and `definePatch` infers them).
import type { IommuGroup } from '../core/iommu.js';
import { IOMMU_ATTACH_HANDLE, IOMMU_DOMAIN, IOMMU_GROUP } from '../core/iommu.js';
import { IOMMU_SVA, SVA_MM_DATA } from '../core/iommu-sva.js';
import { IOMMUFD_DEVICE } from '../core/iommufd/device.js';
import { IOMMUFD_HWPT_PAGING } from '../core/iommufd/hw_pagetable.js';
import { IOMMUFD_IOAS } from '../core/iommufd/ioas.js';
import { IOASID_DATA, IOASID_SET } from '../core/ioasid.js';
import type { IommuDomain, IommuDomainOps, IommuOps } from '../core/ops.js';
import type { DeviceInfo, SvmOps } from '../core/types.js';
import { AMD_IOMMU } from '../hw/amd/hw.js';
import { PCI_DEV } from '../hw/pci/pci.js';
import * as completions from '../kernel/completion.js';
import type { Completion } from '../kernel/completion.js';
import type { ContextKind, KTask } from '../kernel/context.js';
import * as delay from '../kernel/delay.js';
import * as errno from '../kernel/errno.js';
import { callTrace, heldLocksLines, taskFinding } from '../kernel/findings.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { KernelFunctions, KFnInfo, KFnName, KFuncRegistry } from '../kernel/kfunc.js';
import { objectLock } from '../kernel/lock.js';
import { MM_STRUCT, type MmStruct, mmAccess, mmBase } from '../kernel/mm/mm.js';
import { MMU_NOTIFIER } from '../kernel/mm/mmu_notifier.js';
import * as mutexes from '../kernel/mutex.js';
import type { Mutex } from '../kernel/mutex.js';
import * as rcu from '../kernel/rcu.js';
import type { RcuCondition, RcuPointer } from '../kernel/rcu.js';
import * as refcount from '../kernel/refcount.js';
import type { Kref, KrefRelease, RefcountRef } from '../kernel/refcount.js';
import * as rwsem from '../kernel/rwsem.js';
import type { RwSemaphore } from '../kernel/rwsem.js';
import * as slab from '../kernel/slab.js';
import type { Gfp } from '../kernel/slab.js';
import * as spinlock from '../kernel/spinlock.js';
import type { Spinlock } from '../kernel/spinlock.js';
import * as srcu from '../kernel/srcu.js';
import type { SrcuStruct } from '../kernel/srcu.js';
import { type ArraySpec, array, type Fields, type StructType, type StructView, struct, type ViewOf, type Word, type WordSpec, word } from '../kernel/struct.js';
import { TASK_STRUCT } from '../kernel/task_struct.js';
import * as waitqueue from '../kernel/waitqueue.js';
import type { WaitQueue } from '../kernel/waitqueue.js';
import * as workqueue from '../kernel/workqueue.js';
import type { WorkFn, WorkItem, Workqueue, WorkqueueOptions } from '../kernel/workqueue.js';
import type { Wire } from '../runtime/model.js';
import type { CoreStepName, ExtensionContext } from '../workloads/extension.js';

// ---- types, by their kernel names where the kernel has one ----

export type { ArraySpec, Completion, ContextKind, DeviceInfo, Fields, Gfp, IommuDomain, IommuDomainOps, IommuGroup, IommuOps, KernelFunctions, KFnInfo, KFnName, KFuncRegistry };
export type { Kernel, KGen, Kref, KrefRelease, KTask, MmStruct, Mutex, RcuCondition, RcuPointer, RefcountRef, RwSemaphore, Spinlock, SrcuStruct, StructType, StructView, SvmOps };
export type { ViewOf, WaitQueue, Wire, Word, WordSpec, WorkFn, WorkItem, Workqueue, WorkqueueOptions, CoreStepName };
/** `current`: the task running the code, the first argument of every function here that may schedule. */
export type task_struct = KTask;
export type device = DeviceInfo;
export type mm_struct = MmStruct;
export type iommu_domain = IommuDomain;
export type iommu_ops = IommuOps;
export type iommu_domain_ops = IommuDomainOps;
export type iommu_group = IommuGroup;
export type mutex = Mutex;
export type spinlock_t = Spinlock;
export type rw_semaphore = RwSemaphore;
export type srcu_struct = SrcuStruct;
export type refcount_t = RefcountRef;
export type kref = Kref;
export type completion = Completion;
export type wait_queue_head_t = WaitQueue;
export type work_struct = WorkItem;
export type workqueue_struct = Workqueue;
export type gfp_t = Gfp;
/** What `extend(ctx)` is given: the kernel's function registry (`ctx.k.fns`), this API (`ctx.kernel`), the model. */
export type PatchContext = ExtensionContext;

/** A callback kind of call_rcu (`DEFINE_RCU_CALLBACK`), of call_srcu (`DEFINE_SRCU_CALLBACK`), a kthread's. */
export type RcuCallback = string;
export type SrcuCallback = string;
/** A kernel thread function declared with kthread_create: kthread_run starts a thread running it. */
export interface KThread {
  readonly kind: string;
  readonly name: string;
}
/** A kmem_cache: objects of `size` words, named as /proc/slabinfo and KASAN's reports name it. */
export interface KmemCache {
  readonly name: string;
  readonly size: number;
}

// ---- what needs no kernel: constants, struct declarations, the model's layouts ----

export const GFP_KERNEL: Gfp = 'GFP_KERNEL';
export const GFP_ATOMIC: Gfp = 'GFP_ATOMIC';
export const { EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, ENODEV, EINVAL, ENFILE, EMFILE, ENOSPC, ETIMEDOUT, EOPNOTSUPP } = errno;
export { errname } from '../kernel/errno.js';
/** `struct name { fields }`: a patch's own object layout (`word`, `array(n)` fields), for kzalloc and the accessors. */
export { array, struct, word };

/** sizeof(struct x), in the model's unit: 4-byte words (what kzalloc and kmem_cache_create take). */
export function sizeof<F extends Fields>(type: StructType<F>): number {
  return type.words;
}

/** The model's struct layouts by kernel name: what its objects hold, word by word (`kernel.view(layout)` reads them). */
export const structs = {
  iommu_sva: IOMMU_SVA,
  iommu_mm_data: SVA_MM_DATA,
  iommu_domain: IOMMU_DOMAIN,
  iommu_group: IOMMU_GROUP,
  iommu_attach_handle: IOMMU_ATTACH_HANDLE,
  mm_struct: MM_STRUCT,
  mmu_notifier: MMU_NOTIFIER,
  task_struct: TASK_STRUCT,
  pci_dev: PCI_DEV,
  ioasid_set: IOASID_SET,
  ioasid_data: IOASID_DATA,
  iommufd_device: IOMMUFD_DEVICE,
  iommufd_ioas: IOMMUFD_IOAS,
  iommufd_hwpt_paging: IOMMUFD_HWPT_PAGING,
  amd_iommu: AMD_IOMMU,
} as const;

/**
 * A patch's `extend`, typed: `module.exports = definePatch((ctx) => { … })` or `export const extend =
 * definePatch(…)` — the identity, there for TypeScript's inference of `ctx`.
 */
export function definePatch(extend: (ctx: PatchContext) => void): (ctx: PatchContext) => void {
  return extend;
}

const STATIC = {
  GFP_KERNEL,
  GFP_ATOMIC,
  ...{ EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, EBADF, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, ENODEV, EINVAL, ENFILE, EMFILE, ENOSPC, ETIMEDOUT, EOPNOTSUPP },
  errname: (err: number): string => errno.errname(err),
  struct: <const F extends Fields>(name: string, fields: F): StructType<F> => struct(name, fields),
  word,
  array: (n: number): ArraySpec => array(n),
  sizeof: <F extends Fields>(type: StructType<F>): number => sizeof(type),
  structs,
  definePatch: (extend: (ctx: PatchContext) => void): ((ctx: PatchContext) => void) => definePatch(extend),
} as const;

// ---- the kernel API of one model instance ----

/**
 * The kernel API bound to kernel `k`: what a patch gets as `ctx.kernel`. Every function that may schedule is a
 * generator taking the running task first (`yield* mutex_lock(t, lock)`); the others take what the C takes.
 */
export function kernelApi(k: Kernel) {
  return { ...STATIC, ...locks(k), ...rcuApi(k), ...refcounts(k), ...slabApi(k), ...waiting(k), ...workqueues(k), ...threads(k), ...checks(k), ...accessors(k) };
}

/** The whole API: `ctx.kernel`'s type. */
export type KernelApi = ReturnType<typeof kernelApi>;
export type KernelApiName = keyof KernelApi & string;

function locks(k: Kernel) {
  return {
    DEFINE_MUTEX: (name: string): Mutex => mutexes.defineMutex(k, name),
    /** mutex_init(&obj->lock): the mutex at field `f` of object `obj` (lockdep class `name`). */
    mutex_init: (obj: number, f: Word, name: string): Mutex => objectLock(k, name, obj, f.off),
    mutex_lock: (t: KTask, m: Mutex): KGen => mutexes.mutex_lock(k, t, m),
    mutex_trylock: (t: KTask, m: Mutex): KGen<boolean> => mutexes.mutex_trylock(k, t, m),
    mutex_unlock: (t: KTask, m: Mutex): KGen => mutexes.mutex_unlock(k, t, m),
    mutex_is_locked: (m: Mutex): boolean => mutexes.mutex_is_locked(k, m),
    DEFINE_SPINLOCK: (name: string): Spinlock => spinlock.defineSpinlock(k, name),
    spin_lock_init: (obj: number, f: Word, name: string): Spinlock => objectLock(k, name, obj, f.off),
    spin_lock: (t: KTask, l: Spinlock): KGen => spinlock.spin_lock(k, t, l),
    spin_unlock: (t: KTask, l: Spinlock): KGen => spinlock.spin_unlock(k, t, l),
    /** `flags = yield* spin_lock_irqsave(t, l)`: the C macro's flags, returned. */
    spin_lock_irqsave: (t: KTask, l: Spinlock): KGen<boolean> => spinlock.spin_lock_irqsave(k, t, l),
    spin_unlock_irqrestore: (t: KTask, l: Spinlock, flags: boolean): KGen => spinlock.spin_unlock_irqrestore(k, t, l, flags),
    spin_lock_bh: (t: KTask, l: Spinlock): KGen => spinlock.spin_lock_bh(k, t, l),
    spin_unlock_bh: (t: KTask, l: Spinlock): KGen => spinlock.spin_unlock_bh(k, t, l),
    DECLARE_RWSEM: (name: string): RwSemaphore => rwsem.defineRwsem(k, name),
    down_read: (t: KTask, s: RwSemaphore): KGen => rwsem.down_read(k, t, s),
    down_read_trylock: (t: KTask, s: RwSemaphore): KGen<boolean> => rwsem.down_read_trylock(k, t, s),
    up_read: (t: KTask, s: RwSemaphore): KGen => rwsem.up_read(k, t, s),
    down_write: (t: KTask, s: RwSemaphore): KGen => rwsem.down_write(k, t, s),
    down_write_trylock: (t: KTask, s: RwSemaphore): KGen<boolean> => rwsem.down_write_trylock(k, t, s),
    up_write: (t: KTask, s: RwSemaphore): KGen => rwsem.up_write(k, t, s),
    downgrade_write: (t: KTask, s: RwSemaphore): KGen => rwsem.downgrade_write(k, t, s),
    rwsem_is_locked: (s: RwSemaphore): boolean => rwsem.rwsem_is_locked(k, s),
    mmap_read_lock: (t: KTask, mm: MmStruct): KGen => rwsem.down_read(k, t, mm.mmapLock),
    mmap_read_unlock: (t: KTask, mm: MmStruct): KGen => rwsem.up_read(k, t, mm.mmapLock),
    mmap_write_lock: (t: KTask, mm: MmStruct): KGen => rwsem.down_write(k, t, mm.mmapLock),
    mmap_write_unlock: (t: KTask, mm: MmStruct): KGen => rwsem.up_write(k, t, mm.mmapLock),
    lockdep_is_held: (t: KTask, l: Mutex | Spinlock | RwSemaphore): boolean => rcu.lockdep_is_held(t, l),
  };
}

function rcuApi(k: Kernel) {
  return {
    rcu_read_lock: (t: KTask): KGen => rcu.rcu_read_lock(k, t),
    rcu_read_unlock: (t: KTask): KGen => rcu.rcu_read_unlock(k, t),
    rcu_read_lock_bh: (t: KTask): KGen => rcu.rcu_read_lock_bh(k, t),
    rcu_read_unlock_bh: (t: KTask): KGen => rcu.rcu_read_unlock_bh(k, t),
    rcu_read_lock_held: (t: KTask): boolean => rcu.rcu_read_lock_held(t),
    synchronize_rcu: (t: KTask): KGen => rcu.synchronize_rcu(k, t),
    /** The callback function of a call_rcu, declared once: it runs in softirq context after a grace period. */
    DEFINE_RCU_CALLBACK: (name: string, fn: (t: KTask, arg: Wire) => KGen): RcuCallback => rcu.defineRcuCallback(k, name, fn),
    call_rcu: (t: KTask, func: RcuCallback, arg: Wire = null): KGen => rcu.call_rcu(k, t, func, arg),
    rcu_barrier: (t: KTask): KGen => rcu.rcu_barrier(k, t),
    /** An `__rcu` pointer in static memory (its value: an object, 0 for NULL). */
    DEFINE_RCU_POINTER: (name: string): RcuPointer => rcu.defineRcuPointer(k, name),
    rcu_dereference: (t: KTask, p: RcuPointer, cond?: RcuCondition): KGen<number> => rcu.rcu_dereference(k, t, p, cond),
    rcu_dereference_protected: (t: KTask, p: RcuPointer, cond: RcuCondition): number => rcu.rcu_dereference_protected(k, t, p, cond),
    rcu_access_pointer: (p: RcuPointer): number => rcu.rcu_access_pointer(k, p),
    rcu_assign_pointer: (t: KTask, p: RcuPointer, v: number): KGen => rcu.rcu_assign_pointer(k, t, p, v),
    DEFINE_STATIC_SRCU: (name: string): SrcuStruct => srcu.defineSrcu(k, name),
    srcu_read_lock: (t: KTask, ssp: SrcuStruct): KGen<number> => srcu.srcu_read_lock(k, t, ssp),
    srcu_read_unlock: (t: KTask, ssp: SrcuStruct, idx: number): KGen => srcu.srcu_read_unlock(k, t, ssp, idx),
    synchronize_srcu: (t: KTask, ssp: SrcuStruct): KGen => srcu.synchronize_srcu(k, t, ssp),
    DEFINE_SRCU_CALLBACK: (ssp: SrcuStruct, name: string, fn: (t: KTask, arg: Wire) => KGen): SrcuCallback => srcu.defineSrcuCallback(k, ssp, name, fn),
    call_srcu: (t: KTask, ssp: SrcuStruct, func: SrcuCallback, arg: Wire = null): KGen => srcu.call_srcu(k, t, ssp, func, arg),
    srcu_barrier: (t: KTask, ssp: SrcuStruct): KGen => srcu.srcu_barrier(k, t, ssp),
  };
}

function refcounts(k: Kernel) {
  return {
    /** A static refcount_t (named as the reports name it: `domain->users`). */
    DEFINE_REFCOUNT: (name: string): RefcountRef => refcount.defineRefcount(k, name),
    /** The refcount_t at field `f` of slab object `obj` (KASAN checks the object at every operation). */
    refcount_of: (obj: number, f: Word, name: string): RefcountRef => refcount.objectRefcount(k, name, obj, f.off),
    refcount_set: (t: KTask, r: RefcountRef, n: number): KGen => refcount.refcount_set(k, t, r, n),
    refcount_read: (t: KTask, r: RefcountRef): KGen<number> => refcount.refcount_read(k, t, r),
    refcount_inc: (t: KTask, r: RefcountRef): KGen => refcount.refcount_inc(k, t, r),
    refcount_inc_not_zero: (t: KTask, r: RefcountRef): KGen<boolean> => refcount.refcount_inc_not_zero(k, t, r),
    refcount_add: (t: KTask, r: RefcountRef, i: number): KGen => refcount.refcount_add(k, t, r, i),
    refcount_dec: (t: KTask, r: RefcountRef): KGen => refcount.refcount_dec(k, t, r),
    refcount_dec_and_test: (t: KTask, r: RefcountRef): KGen<boolean> => refcount.refcount_dec_and_test(k, t, r),
    refcount_sub_and_test: (t: KTask, r: RefcountRef, i: number): KGen<boolean> => refcount.refcount_sub_and_test(k, t, r, i),
    refcount_dec_and_mutex_lock: (t: KTask, r: RefcountRef, m: Mutex): KGen<boolean> => refcount.refcount_dec_and_mutex_lock(k, t, r, m),
    refcount_dec_and_lock: (t: KTask, r: RefcountRef, l: Spinlock): KGen<boolean> => refcount.refcount_dec_and_lock(k, t, r, l),
    kref_init: (t: KTask, kr: Kref): KGen => refcount.kref_init(k, t, kr),
    kref_read: (t: KTask, kr: Kref): KGen<number> => refcount.kref_read(k, t, kr),
    kref_get: (t: KTask, kr: Kref): KGen => refcount.kref_get(k, t, kr),
    kref_get_unless_zero: (t: KTask, kr: Kref): KGen<boolean> => refcount.kref_get_unless_zero(k, t, kr),
    /** kref_put(kref, release): `release` runs in t when the count drops to 0; true then. */
    kref_put: (t: KTask, kr: Kref, release: (t: KTask) => KGen): KGen<boolean> => refcount.kref_put(k, t, kr, release),
  };
}

function slabApi(k: Kernel) {
  return {
    /** kmalloc(size, gfp): `size` in words (sizeof(layout)); the object, or 0 (NULL) when memory runs out. */
    kmalloc: (t: KTask, size: number, gfp: Gfp): KGen<number> => slab.kmalloc(k, t, size, gfp),
    kzalloc: (t: KTask, size: number, gfp: Gfp): KGen<number> => slab.kzalloc(k, t, size, gfp),
    kfree: (t: KTask, obj: number): KGen => slab.kfree(k, t, obj),
    kmem_cache_create: (name: string, size: number): KmemCache => ({ name, size }),
    kmem_cache_alloc: (t: KTask, c: KmemCache, gfp: Gfp): KGen<number> => slab.kmalloc(k, t, c.size, gfp, c.name),
    kmem_cache_zalloc: (t: KTask, c: KmemCache, gfp: Gfp): KGen<number> => slab.kzalloc(k, t, c.size, gfp, c.name),
    kmem_cache_free: (t: KTask, _c: KmemCache, obj: number): KGen => slab.kfree(k, t, obj),
    kmemleak_not_leak: (t: KTask, obj: number): KGen => slab.kmemleak_not_leak(k, t, obj),
  };
}

function waiting(k: Kernel) {
  return {
    DECLARE_COMPLETION: (name: string): Completion => completions.defineCompletion(k, name),
    /** The completion at field `f` of object `obj` (init_completion it before use). */
    completion_of: (obj: number, f: Word, name: string): Completion => completions.objectCompletion(k, name, obj, f.off),
    init_completion: (t: KTask, c: Completion): KGen => completions.init_completion(k, t, c),
    reinit_completion: (t: KTask, c: Completion): KGen => completions.reinit_completion(k, t, c),
    complete: (t: KTask, c: Completion): KGen => completions.complete(k, t, c),
    complete_all: (t: KTask, c: Completion): KGen => completions.complete_all(k, t, c),
    wait_for_completion: (t: KTask, c: Completion): KGen => completions.wait_for_completion(k, t, c),
    wait_for_completion_timeout: (t: KTask, c: Completion, ms: number): KGen<number> => completions.wait_for_completion_timeout(k, t, c, ms),
    try_wait_for_completion: (t: KTask, c: Completion): KGen<boolean> => completions.try_wait_for_completion(k, t, c),
    completion_done: (c: Completion): boolean => completions.completion_done(k, c),
    DECLARE_WAIT_QUEUE_HEAD: (name: string): WaitQueue => waitqueue.defineWaitQueue(k, name),
    /** wait_event(wq, condition): `cond` reads shared memory (a struct field), re-evaluated at each wake-up. */
    wait_event: (t: KTask, wq: WaitQueue, cond: () => boolean): KGen => waitqueue.wait_event(k, t, wq, cond),
    wait_event_timeout: (t: KTask, wq: WaitQueue, cond: () => boolean, ms: number): KGen<number> => waitqueue.wait_event_timeout(k, t, wq, cond, ms),
    wake_up: (t: KTask, wq: WaitQueue): KGen => waitqueue.wake_up(k, t, wq),
    wake_up_all: (t: KTask, wq: WaitQueue): KGen => waitqueue.wake_up_all(k, t, wq),
    msleep: (t: KTask, ms: number): KGen => delay.msleep(k, t, ms),
    /** schedule_timeout(timeout) in state TASK_UNINTERRUPTIBLE; a jiffy is a simulated ms. */
    schedule_timeout: (t: KTask, jiffies: number): KGen<number> => delay.schedule_timeout(k, t, jiffies),
    schedule_timeout_uninterruptible: (t: KTask, jiffies: number): KGen<number> => delay.schedule_timeout_uninterruptible(k, t, jiffies),
    udelay: (t: KTask, us: number): KGen => delay.udelay(k, t, us),
    ndelay: (t: KTask, ns: number): KGen => delay.ndelay(k, t, ns),
    mdelay: (t: KTask, ms: number): KGen => delay.mdelay(k, t, ms),
    cond_resched: (t: KTask): KGen => delay.cond_resched(k, t),
  };
}

function workqueues(k: Kernel) {
  return {
    alloc_workqueue: (name: string, opts: WorkqueueOptions = {}): Workqueue => workqueue.alloc_workqueue(k, name, opts),
    alloc_ordered_workqueue: (name: string): Workqueue => workqueue.alloc_ordered_workqueue(k, name),
    /** system_wq ("events"). */
    system_wq: (): Workqueue => workqueue.system_wq(k),
    system_unbound_wq: (): Workqueue => workqueue.system_unbound_wq(k),
    /** DECLARE_WORK / INIT_WORK: a work item running `fn(t, data)` (data: what queue_work was given). */
    INIT_WORK: (name: string, fn: WorkFn): WorkItem => workqueue.defineWork(k, name, fn),
    queue_work: (t: KTask, wq: Workqueue, work: WorkItem, data: Wire = null): KGen<boolean> => workqueue.queue_work(k, t, wq, work, data),
    queue_delayed_work: (t: KTask, wq: Workqueue, work: WorkItem, delayMs: number, data: Wire = null): KGen<boolean> =>
      workqueue.queue_delayed_work(k, t, wq, work, delayMs, data),
    schedule_work: (t: KTask, work: WorkItem, data: Wire = null): KGen<boolean> => workqueue.schedule_work(k, t, work, data),
    flush_work: (t: KTask, work: WorkItem): KGen<boolean> => workqueue.flush_work(k, t, work),
    cancel_work: (t: KTask, work: WorkItem): KGen<boolean> => workqueue.cancel_work(k, t, work),
    cancel_work_sync: (t: KTask, work: WorkItem): KGen<boolean> => workqueue.cancel_work_sync(k, t, work),
    cancel_delayed_work_sync: (t: KTask, work: WorkItem): KGen<boolean> => workqueue.cancel_delayed_work_sync(k, t, work),
    work_pending: (work: WorkItem): boolean => workqueue.work_pending(k, work),
    flush_workqueue: (t: KTask, wq: Workqueue): KGen => workqueue.flush_workqueue(k, t, wq),
    destroy_workqueue: (t: KTask, wq: Workqueue): KGen => workqueue.destroy_workqueue(k, t, wq),
  };
}

function threads(k: Kernel) {
  return {
    /** kthread_create's thread function, declared once (`name`: its comm); kthread_run starts a thread of it. */
    kthread_create: (name: string, fn: (t: KTask, data: Wire) => KGen): KThread => ({ kind: k.task(`kthread:${name}`, 'kthread', fn), name }),
    /** kthread_run(threadfn, data, namefmt): start a kernel thread running `kt` with `data`. */
    kthread_run: (t: KTask, kt: KThread, data: Wire = null): KGen<number> => k.step(t, `kthread_run(${kt.name})`, (env) => env.spawn(kt.kind, data, kt.name)),
  };
}

/** The kernel file of the innermost kernel function on t's call chain (where a WARN_ON says it fired). */
function siteOf(k: Kernel, t: KTask): { fn: string; file: string } {
  for (let i = t.frames.length - 1; i >= 0; i--) {
    const fn = t.frames[i] as string;
    const file = k.fns.fileOf(fn);
    if (file !== undefined) return { fn, file };
  }
  return { fn: t.frames.at(-1) ?? t.comm, file: 'patch' };
}

function checks(k: Kernel) {
  const warned = new Set<string>();
  const report = (t: KTask, title: (s: { fn: string; file: string }) => string, kind: 'iommu' | 'oops', head: string[], why: string): void => {
    const s = siteOf(k, t);
    const body = [...head, `CPU: ${t.cpu} PID: ${t.pid} Comm: ${t.comm} Not tainted (iommu-sim)`, `RIP: 0010:${s.fn}`, ...(why ? [`iommu-sim: ${why}`] : [])];
    k.report(taskFinding(kind, t, t.lastStep, title(s), [...body, ...heldLocksLines(t), ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq')]));
  };
  return {
    /** might_sleep(): reports a sleep from atomic context, RCU or with interrupts off (the task goes on). */
    might_sleep: (t: KTask): void => k.mightSleep(t, siteOf(k, t).fn),
    /** WARN_ON(cond): reports `WARNING: CPU: … at <file> <function>` when cond holds; returns cond. */
    WARN_ON: (t: KTask, cond: boolean, why = ''): boolean => {
      if (cond) report(t, (s) => `WARNING: CPU: ${t.cpu} PID: ${t.pid} at ${s.file} ${s.fn}`, 'iommu', [], why);
      return cond;
    },
    WARN_ON_ONCE: (t: KTask, cond: boolean, why = ''): boolean => {
      const key = siteOf(k, t).fn;
      if (cond && !warned.has(key)) {
        warned.add(key);
        report(t, (s) => `WARNING: CPU: ${t.cpu} PID: ${t.pid} at ${s.file} ${s.fn}`, 'iommu', [], why);
      }
      return cond;
    },
    /**
     * BUG_ON(cond): the oops `kernel BUG at <file>!`. The kernel kills the task; the model reports it and returns
     * true, so the patch's code returns at once (`if (BUG_ON(t, x)) return;`).
     */
    BUG_ON: (t: KTask, cond: boolean, why = ''): boolean => {
      if (cond) report(t, (s) => `kernel BUG at ${s.file}!`, 'oops', ['invalid opcode: 0000 [#1] PREEMPT SMP'], why);
      return cond;
    },
  };
}

/**
 * The address of field `f` of `p`, checked by KASAN when p is a slab object (kmalloc'd) or NULL (the page fault's
 * `BUG: kernel NULL pointer dereference` without KASAN); false: not touched.
 */
function reach(k: Kernel, t: KTask, p: number, f: Word, write: boolean, mm: MmStruct | undefined): boolean {
  // An mm_struct is not a slab object here (mm.ts keeps its life state): KASAN checks it as the model's own mm code does.
  if (mm) return mmAccess(k, t, mm, f.off, write);
  if (p === 0) return slab.kasanAccess(k, t, 0, f.off, write);
  return slab.objState(k, p) === 'invalid' || slab.kasanAccess(k, t, p, f.off, write);
}

function accessors(k: Kernel) {
  /** The mm_struct objects a patch was handed (mm_struct_of), by address: a freed one is KASAN's use-after-free. */
  const mms = new Map<number, MmStruct>();
  /** One access of p->f as a scheduling point of its own: what another CPU may interleave with. */
  const access = <T>(t: KTask, what: string, p: number, f: Word, write: boolean, body: () => T, none: T): KGen<T> =>
    k.step(t, what, () => (reach(k, t, p, f, write, mms.get(p)) ? body() : none));
  return {
    /** The accessors of a struct's fields in this kernel's memory (`view(structs.iommu_sva).users.get(p)`). */
    view: <F extends Fields>(type: StructType<F>): StructView<F> => k.struct(type),
    /** The mm_struct object of mm (its fields: `view(structs.mm_struct)`); READ_ONCE & co. on it after __mmdrop are KASAN's. */
    mm_struct_of: (mm: MmStruct): number => {
      const p = mmBase(k, mm);
      mms.set(p, mm);
      return p;
    },
    READ_ONCE: (t: KTask, p: number, f: Word): KGen<number> => access(t, 'READ_ONCE', p, f, false, () => f.READ_ONCE(p), 0),
    WRITE_ONCE: (t: KTask, p: number, f: Word, v: number): KGen => access(t, 'WRITE_ONCE', p, f, true, () => f.WRITE_ONCE(p, v), undefined),
    smp_load_acquire: (t: KTask, p: number, f: Word): KGen<number> => access(t, 'smp_load_acquire', p, f, false, () => f.smp_load_acquire(p), 0),
    smp_store_release: (t: KTask, p: number, f: Word, v: number): KGen => access(t, 'smp_store_release', p, f, true, () => f.smp_store_release(p, v), undefined),
    atomic_read: (t: KTask, p: number, f: Word): KGen<number> => access(t, 'atomic_read', p, f, false, () => f.READ_ONCE(p), 0),
    atomic_set: (t: KTask, p: number, f: Word, v: number): KGen => access(t, 'atomic_set', p, f, true, () => f.WRITE_ONCE(p, v), undefined),
    atomic_inc: (t: KTask, p: number, f: Word): KGen => access(t, 'atomic_inc', p, f, true, () => f.atomic_inc(p), undefined),
    atomic_dec: (t: KTask, p: number, f: Word): KGen => access(t, 'atomic_dec', p, f, true, () => f.atomic_dec(p), undefined),
    atomic_add: (t: KTask, p: number, f: Word, i: number): KGen => access(t, 'atomic_add', p, f, true, () => f.atomic_add(p, i), undefined),
    atomic_inc_return: (t: KTask, p: number, f: Word): KGen<number> => access(t, 'atomic_inc_return', p, f, true, () => f.atomic_inc_return(p), 0),
    atomic_dec_return: (t: KTask, p: number, f: Word): KGen<number> => access(t, 'atomic_dec_return', p, f, true, () => f.atomic_dec_return(p), 0),
    atomic_dec_and_test: (t: KTask, p: number, f: Word): KGen<boolean> => access(t, 'atomic_dec_and_test', p, f, true, () => f.atomic_dec_return(p) === 0, false),
    cmpxchg: (t: KTask, p: number, f: Word, old: number, v: number): KGen<number> => access(t, 'cmpxchg', p, f, true, () => f.cmpxchg(p, old, v), 0),
    xchg: (t: KTask, p: number, f: Word, v: number): KGen<number> => access(t, 'xchg', p, f, true, () => f.xchg(p, v), 0),
  };
}
