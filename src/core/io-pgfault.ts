// drivers/iommu/io-pgfault.c: recoverable I/O page faults. Each IOMMU has an iopf_queue (its workqueue); each
// device that takes page requests has, between iopf_queue_add_device and iopf_queue_remove_device, an
// iommu_fault_param (dev->iommu->fault_param, published under RCU, kept alive by its `users` refcount) holding
// the partial list (requests of a group whose last one has not come) and the faults list (last requests
// reported and not yet answered). The driver's page-request thread reports each request with
// iommu_report_device_fault; the last one of a group gathers its partials into an iopf_group, finds the domain
// attached to {device, PASID} and calls its iopf_handler, which queues the group's work on the IOMMU's iopf
// workqueue. The work answers the group once (iopf_group_response → iommu_page_response → the driver's
// page_response). iopf_queue_remove_device answers what is still pending before the param goes.
//
// The model keeps the two lists by group index (a device has at most one outstanding group per PRGI, so the
// kernel's lists hold at most one entry per index): partial[grpid] counts the partial requests, faults[grpid] is
// the PASID + 1 of the last request awaiting its response. The model's devices ask for one page per group (read
// then write); the last request's access covers its partials'.
//
// Seed 000's policy "fault handling" stays a policy value of the SVA domain's work (iommu_sva_handle_iopf): a
// fault the core could not resolve goes to the device driver's fault callback (`callback`), or only the
// device-driver protocol hears of it (`protocol`). Seed 002's lookup and users policies apply where the domain is
// looked up (iommu_get_domain_for_dev_pasid, with the SVA domain's user reference held by the group until
// iopf_free_group).
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { MmStruct, MmTable } from '../kernel/mm/mm.js';
import type { MmuNotifiers } from '../kernel/mm/mmu_notifier.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import { objectLock } from '../kernel/lock.js';
import { defineKfreeRcu, defineRcuPointer, kfree_rcu, type RcuPointer, rcu_assign_pointer, rcu_dereference, rcu_read_lock, rcu_read_unlock } from '../kernel/rcu.js';
import { objectRefcount, refcount_dec_and_test, refcount_inc_not_zero, refcount_set } from '../kernel/refcount.js';
import { kfree, kzalloc, objLoad, objStore } from '../kernel/slab.js';
import { array, struct, word } from '../kernel/struct.js';
import { read } from '../runtime/footprint.js';
import { alloc_workqueue, defineWork, flush_workqueue, queue_work, type WorkItem, type Workqueue } from '../kernel/workqueue.js';
import { EBUSY, EINVAL, ENODEV, ENOMEM } from '../kernel/errno.js';
import { DOM, DOMAIN_TYPES, type DomainGet, IOMMU_ATTACH_HANDLE, type IommuGroups, iommuWarn } from './iommu.js';
import { fieldRange, objectFootprint } from './footprints.js';
import { type DeviceInfo, type DriverBug, type FaultHandling, RESP_INVALID, RESP_SUCCESS, type SvmOps } from './types.js';

const IO_PGFAULT_C = 'drivers/iommu/io-pgfault.c';
const IOMMU_SVA_C = 'drivers/iommu/iommu-sva.c';

/** Page request group indices a device uses (the PRGI is 9 bits; the model's devices use fewer: hw/iommu.ts). */
export const IOPF_GROUP_IDS = 64;

/** Static words io-pgfault.c takes per device (dev_iommu's lock and fault_param, the groups' work items). */
export const IOPF_DEVICE_WORDS = IOPF_GROUP_IDS * 4 + 8;

/** struct iommu_fault_param; the two lists by group index (see the header). */
const IOMMU_FAULT_PARAM = struct('iommu_fault_param', {
  lock: word,
  users: word,
  dev: word, // dev->index + 1
  queue: word, // the iopf_queue's index + 1
  partial: array(IOPF_GROUP_IDS),
  faults: array(IOPF_GROUP_IDS),
});
/** Words of a struct iommu_fault_param (one kzalloc'd per device with IOPF enabled: to size the slab arena). */
export const IOMMU_FAULT_PARAM_WORDS = IOMMU_FAULT_PARAM.words;
/** iommu_fault_param's field offsets (a patch replacing an io-pgfault.c function by name reads them). */
export const FP = IOMMU_FAULT_PARAM.offset;

/** struct iopf_group: its last fault (pasid, grpid, the page), its fault count, its param and its domain. */
const IOPF_GROUP = struct('iopf_group', {
  fault_param: word,
  pasid: word,
  grpid: word,
  vpn: word,
  write: word,
  fault_count: word,
  domain: word, // the SVA domain the group holds a user reference of (0: found through its attach handle)
  attach_handle: word, // group->attach_handle of a domain with an iopf_handler of its own (find_fault_handler)
});
/** iopf_group's field offsets. */
export const GRP = IOPF_GROUP.offset;

/**
 * When a device has a fault param: `attach` — from the first attach of a domain with a fault handler to its last
 * detach (mainline's iopf_for_domain_set / iopf_for_domain_remove: the last unbind calls iopf_queue_remove_device);
 * `probe` — the device driver enables IOPF before its first bind (iommu_dev_enable_feature(IOPF) at its probe)
 * and it stays until the device is released.
 */
export type IopfEnable = 'attach' | 'probe';
export const IOPF_ENABLES: readonly IopfEnable[] = ['attach', 'probe'];

/**
 * The handlers a domain that is not SVA may name in domain->iopf_handler (index + 1): the kernel functions the
 * report path calls with the group. The SVA domain's stays iommu_sva_iopf_handler, found by its type.
 */
export const IOPF_HANDLERS = ['iommufd_fault_iopf_handler'] as const;
export type IopfHandlerName = (typeof IOPF_HANDLERS)[number];

/** A page request as the driver reports it (struct iopf_fault's iommu_fault_page_request). */
export interface IopfFault {
  readonly pasid: number;
  readonly grpid: number;
  readonly vpn: number;
  readonly write: boolean;
  /** IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE. */
  readonly last: boolean;
}

/** model: the driver's ops->page_response, given with the queue the driver allocates. */
export type PageResponseOp = (t: KTask, dev: DeviceInfo, pasid: number, grpid: number, code: number) => KGen;

/** struct iopf_queue: its workqueue and the lock of its device list. */
export interface IopfQueue {
  readonly index: number;
  readonly name: string;
  readonly wq: Workqueue;
  readonly lock: Mutex;
  readonly page_response: PageResponseOp;
}

/** struct dev_iommu, the part io-pgfault.c uses: its lock and the RCU-published fault_param. */
export interface DevIommu {
  readonly dev: DeviceInfo;
  readonly lock: Mutex;
  readonly fault_param: RcuPointer;
  readonly queue: IopfQueue;
  /** model: a work item per group index, the iopf_group's work_struct (one outstanding group per index). */
  readonly works: readonly WorkItem[];
}

interface IopfState {
  readonly queues: IopfQueue[];
  readonly devs: Map<number, DevIommu>;
  readonly freeParam: string;
}

const states = new WeakMap<Kernel, IopfState>();

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    /** The device's iommu_fault_param with a reference (0: none, or on its way out). */
    iopf_get_dev_fault_param(t: KTask, dev: DeviceInfo): KGen<number>;
    /** Drop a reference on a fault param: the last one frees it after a grace period (kfree_rcu). */
    iopf_put_dev_fault_param(t: KTask, fp: number): KGen;
    iopf_queue_add_device(t: KTask, queue: IopfQueue, dev: DeviceInfo): KGen<number>;
    iopf_queue_remove_device(t: KTask, queue: IopfQueue, dev: DeviceInfo): KGen;
    iopf_queue_flush_dev(t: KTask, dev: DeviceInfo): KGen<number>;
    iopf_queue_discard_partial(t: KTask, queue: IopfQueue): KGen<number>;
    /** 0, or -errno: the caller then answers a failed last request itself. */
    iommu_report_device_fault(t: KTask, dev: DeviceInfo, evt: IopfFault): KGen<number>;
    /** A request that is not the last of its group on the param's partial list (fault_param->lock taken). */
    report_partial_fault(t: KTask, fp: number, evt: IopfFault): KGen;
    /**
     * model: the last request's half of iommu_report_device_fault, with the param the caller holds a reference
     * of — pending on fault_param->faults, iopf_group_alloc, find_fault_handler, domain->iopf_handler. 0, or
     * -errno (the caller answers the request and drops its reference).
     */
    iopf_report_last_fault(t: KTask, dev: DeviceInfo, evt: IopfFault, fp: number): KGen<number>;
    iommu_page_response(t: KTask, group: number, pasid: number, grpid: number, code: number): KGen<number>;
    iopf_group_response(t: KTask, group: number, code: number): KGen<number>;
    iopf_free_group(t: KTask, group: number): KGen;
    /** The SVA domain's iopf_handler: queue the group's work. 0 or -EBUSY. */
    iommu_sva_iopf_handler(t: KTask, group: number): KGen<number>;
    /** The SVA domain's group work: resolve the group's fault against domain->mm, answer, free the group. */
    iommu_sva_handle_iopf(t: KTask, group: number): KGen;
    /** The SVA domain's page request (seed 002): the mm id it was handled for, 0 when nothing SVA is attached. */
    iopf_handler(t: KTask, dev: DeviceInfo, pasid: number): KGen<number>;
  }
}

function state(k: Kernel): IopfState {
  let st = states.get(k);
  if (st) return st;
  st = { queues: [], devs: new Map(), freeParam: defineKfreeRcu(k, 'iommu_fault_param_free', (t, obj) => kfree(k, t, obj)) };
  states.set(k, st);
  defineQueueFunctions(k, st);
  return st;
}

/**
 * iopf_queue_alloc(name), declared with the workload (the driver's probe of its IOMMU): the queue's unbound
 * workqueue `iopf_queue/<name>`, and dev_iommu's lock and fault_param of the devices behind this IOMMU.
 */
export function iopf_queue_alloc(k: Kernel, name: string, devices: readonly DeviceInfo[], page_response: PageResponseOp): IopfQueue {
  const st = state(k);
  const queue: IopfQueue = {
    index: st.queues.length,
    name,
    wq: alloc_workqueue(k, `iopf_queue/${name}`, { unbound: true }),
    lock: defineMutex(k, '&queue->lock'),
    page_response,
  };
  st.queues.push(queue);
  for (const dev of devices) {
    const works = Array.from({ length: IOPF_GROUP_IDS }, (_, g) => defineWork(k, `iopf ${dev.name} group ${g}`, (t, data) => k.fn.iommu_sva_handle_iopf(t, data as number)));
    st.devs.set(dev.index, { dev, lock: defineMutex(k, '&param->lock'), fault_param: defineRcuPointer(k, `${dev.name} dev->iommu->fault_param`, 'drivers/iommu/io-pgfault.c:27'), queue, works });
  }
  return queue;
}

/** The iopf_queue dev is behind (the one its IOMMU driver allocated), if any. */
export function iopfQueueOf(k: Kernel, dev: DeviceInfo): IopfQueue | undefined {
  return states.get(k)?.devs.get(dev.index)?.queue;
}

/** dev->iommu->fault_param as it is now (0: none), for the driver that owns its lifetime. */
export function iopfFaultParam(k: Kernel, dev: DeviceInfo): number {
  const d = states.get(k)?.devs.get(dev.index);
  return d ? Atomics.load(k.i32, d.fault_param.addr()) : 0;
}

/** dev_iommu's lock and fault_param of dev (the lock iopf_queue_remove_device takes). */
export function devIommu(k: Kernel, dev: DeviceInfo): DevIommu {
  const d = state(k).devs.get(dev.index);
  if (!d) throw new Error(`io-pgfault: ${dev.name} is behind no iopf queue`);
  return d;
}

export const usersOf = (k: Kernel, fp: number) => objectRefcount(k, 'fault_param->users', fp, FP.users);
export const lockOf = (k: Kernel, fp: number) => objectLock(k, '&fault_param->lock', fp, FP.lock);

/** iopf_get_dev_fault_param: the param with a reference, or 0. */
function* getDevFaultParam(k: Kernel, t: KTask, dev: DeviceInfo): KGen<number> {
  const d = devIommu(k, dev);
  yield* rcu_read_lock(k, t);
  let fp = yield* rcu_dereference(k, t, d.fault_param);
  if (fp !== 0 && !(yield* refcount_inc_not_zero(k, t, usersOf(k, fp)))) fp = 0;
  yield* rcu_read_unlock(k, t);
  return fp;
}

/** iopf_put_dev_fault_param: the last put frees the param after a grace period (kfree_rcu). */
function* putDevFaultParam(k: Kernel, t: KTask, fp: number): KGen {
  if (yield* refcount_dec_and_test(k, t, usersOf(k, fp))) yield* kfree_rcu(k, t, state(k).freeParam, fp);
}

function defineQueueFunctions(k: Kernel, st: IopfState): void {
  k.fns.define('iopf_get_dev_fault_param', IO_PGFAULT_C, (t, dev) => getDevFaultParam(k, t, dev));
  k.fns.define('iopf_put_dev_fault_param', IO_PGFAULT_C, (t, fp) => putDevFaultParam(k, t, fp));
  k.fns.define('iopf_queue_add_device', IO_PGFAULT_C, (t, queue, dev) => addDevice(k, t, queue, dev));
  k.fns.define('iopf_queue_remove_device', IO_PGFAULT_C, (t, queue, dev) => removeDevice(k, t, queue, dev));
  k.fns.define('iopf_queue_flush_dev', IO_PGFAULT_C, function* (t, dev) {
    // "It's a driver bug to be here after iopf_queue_remove_device()": no lock, no reference.
    const at = devIommu(k, dev).fault_param.addr();
    const fp = yield* k.stepOn(t, 'dev->iommu->fault_param', [read(at)], () => Atomics.load(k.i32, at));
    if (fp === 0) {
      iommuWarn(k, t, `${IO_PGFAULT_C}:332`, 'iopf_queue_flush_dev', `iopf_queue_flush_dev(${dev.name}) with no fault param: after iopf_queue_remove_device, or before iopf_queue_add_device`);
      return -ENODEV;
    }
    const q = st.queues[objLoad(k, t, fp, FP.queue) - 1] as IopfQueue;
    yield* flush_workqueue(k, t, q.wq);
    return 0;
  });
  k.fns.define('iopf_queue_discard_partial', IO_PGFAULT_C, (t, queue) => discardPartial(k, t, st, queue));
  k.fns.define('iommu_page_response', IO_PGFAULT_C, (t, group, pasid, grpid, code) => pageResponse(k, t, group, pasid, grpid, code));
  k.fns.define('iopf_group_response', IO_PGFAULT_C, function* (t, group, code) {
    const pasid = objLoad(k, t, group, GRP.pasid);
    const grpid = objLoad(k, t, group, GRP.grpid);
    return yield* k.fn.iommu_page_response(t, group, pasid, grpid, code);
  });
}

function* addDevice(k: Kernel, t: KTask, queue: IopfQueue, dev: DeviceInfo): KGen<number> {
  const d = devIommu(k, dev);
  yield* mutex_lock(k, t, queue.lock);
  yield* mutex_lock(k, t, d.lock);
  let ret = 0;
  const at = d.fault_param.addr();
  if ((yield* k.stepOn(t, 'rcu_dereference_check(param->fault_param)', [read(at)], () => Atomics.load(k.i32, at))) !== 0) ret = -EBUSY;
  else {
    const fp = yield* kzalloc(k, t, IOMMU_FAULT_PARAM.words, 'GFP_KERNEL');
    if (fp === 0) ret = -ENOMEM;
    else {
      yield* refcount_set(k, t, usersOf(k, fp), 1);
      yield* k.stepOn(t, 'fault_param init', objectFootprint(k, fp, [], [FP.dev, FP.queue]), () => {
        objStore(k, t, fp, FP.dev, dev.index + 1);
        objStore(k, t, fp, FP.queue, queue.index + 1);
      });
      yield* rcu_assign_pointer(k, t, d.fault_param, fp);
    }
  }
  yield* mutex_unlock(k, t, d.lock);
  yield* mutex_unlock(k, t, queue.lock);
  return ret;
}

/**
 * iopf_queue_remove_device: the partial faults go, every last fault still pending is answered INVALID (the
 * device must not wait for it), the param is unpublished and the reference iopf_queue_add_device took dropped —
 * a group still being handled keeps it alive with its own, and its response then finds nothing pending.
 */
function* removeDevice(k: Kernel, t: KTask, queue: IopfQueue, dev: DeviceInfo): KGen {
  const d = devIommu(k, dev);
  yield* mutex_lock(k, t, queue.lock);
  yield* mutex_lock(k, t, d.lock);
  const at = d.fault_param.addr();
  const fp = yield* k.stepOn(t, 'rcu_dereference_check(param->fault_param)', [read(at)], () => Atomics.load(k.i32, at));
  if (fp === 0 || (yield* k.stepOn(t, 'fault_param->queue', objectFootprint(k, fp, [FP.queue]), () => objLoad(k, t, fp, FP.queue))) !== queue.index + 1) {
    iommuWarn(k, t, `${IO_PGFAULT_C}:501`, 'iopf_queue_remove_device', `${dev.name} has no fault param on iopf_queue/${queue.name}`);
  } else {
    yield* mutex_lock(k, t, lockOf(k, fp));
    // kfree the partial faults; the last faults pending, as [group index, PASID + 1].
    const lists = objectFootprint(k, fp, fieldRange(FP.faults, IOPF_GROUP_IDS), fieldRange(FP.partial, IOPF_GROUP_IDS));
    const pending = yield* k.stepOn(t, 'list_for_each_entry_safe(fault_param->partial, faults)', lists, () => {
      const out: [number, number][] = [];
      for (let g = 0; g < IOPF_GROUP_IDS; g++) {
        objStore(k, t, fp, FP.partial + g, 0);
        const pasid1 = objLoad(k, t, fp, FP.faults + g);
        if (pasid1 !== 0) out.push([g, pasid1]);
      }
      return out;
    });
    for (const [g, pasid1] of pending) {
      yield* queue.page_response(t, dev, pasid1 - 1, g, RESP_INVALID);
      yield* k.stepOn(t, 'list_del(&iopf->list)', objectFootprint(k, fp, [], [FP.faults + g]), () => objStore(k, t, fp, FP.faults + g, 0));
    }
    yield* mutex_unlock(k, t, lockOf(k, fp));
    yield* rcu_assign_pointer(k, t, d.fault_param, 0);
    yield* k.fn.iopf_put_dev_fault_param(t, fp);
  }
  yield* mutex_unlock(k, t, d.lock);
  yield* mutex_unlock(k, t, queue.lock);
}

/** iopf_queue_discard_partial: the queue overflowed, last requests may be lost — drop every partial fault. */
function* discardPartial(k: Kernel, t: KTask, st: IopfState, queue: IopfQueue): KGen<number> {
  yield* mutex_lock(k, t, queue.lock);
  for (const d of st.devs.values()) {
    if (d.queue !== queue) continue;
    const at = d.fault_param.addr();
    const fp = yield* k.stepOn(t, 'fault_param', [read(at)], () => Atomics.load(k.i32, at));
    if (fp === 0) continue;
    yield* mutex_lock(k, t, lockOf(k, fp));
    yield* k.stepOn(t, 'kfree(partial iopf)', objectFootprint(k, fp, [], fieldRange(FP.partial, IOPF_GROUP_IDS)), () => {
      for (let g = 0; g < IOPF_GROUP_IDS; g++) objStore(k, t, fp, FP.partial + g, 0);
    });
    yield* mutex_unlock(k, t, lockOf(k, fp));
  }
  yield* mutex_unlock(k, t, queue.lock);
  return 0;
}

/** iommu_page_response: answer the group through the driver if its last fault is still pending. */
function* pageResponse(k: Kernel, t: KTask, group: number, pasid: number, grpid: number, code: number): KGen<number> {
  const fp = objLoad(k, t, group, GRP.fault_param);
  // group->fault_param->dev: the param must outlive the group (the group holds a reference).
  const devIndex = (yield* k.stepOn(t, 'group->fault_param->dev', objectFootprint(k, fp, [FP.dev]), () => objLoad(k, t, fp, FP.dev))) - 1;
  const d = state(k).devs.get(devIndex);
  yield* mutex_lock(k, t, lockOf(k, fp));
  let ret = -EINVAL;
  const pending = yield* k.stepOn(t, 'fault_param->faults', objectFootprint(k, fp, [FP.faults + grpid]), () => objLoad(k, t, fp, FP.faults + grpid));
  // "no pending PRQ, drop response": iopf_queue_remove_device answered it already.
  if (d && pending === pasid + 1) {
    yield* d.queue.page_response(t, d.dev, pasid, grpid, code);
    yield* k.stepOn(t, 'list_del(&evt->list)', objectFootprint(k, fp, [], [FP.faults + grpid]), () => objStore(k, t, fp, FP.faults + grpid, 0));
    ret = 0;
  }
  yield* mutex_unlock(k, t, lockOf(k, fp));
  return ret;
}

// ---- the report path and the SVA domain's handler ----

/** What the report path and the SVA domain's handler read of iommu-sva.ts and sva-domain.ts. */
export interface DeviceFaultEnv {
  readonly mms: MmTable;
  readonly notifiers: MmuNotifiers;
  /** The SVA domain's user reference of a lookup (policy users), and its put. */
  readonly get: DomainGet;
  put(t: KTask, dom: number): KGen;
  svmOf(dev: DeviceInfo): SvmOps | undefined;
}

/**
 * iommu_report_device_fault and the group's life (iopf_free_group), and the SVA domain's handler (policy fault).
 * `bug` iopf-unreferenced-group re-creates the report path before "iommu: Use refcount for fault data access"
 * gave the group its reference of the param: the report drops its reference for the last request too.
 */
export function defineDeviceFault(k: Kernel, env: DeviceFaultEnv, fault: FaultHandling, bug: DriverBug = 'none'): void {
  const st = state(k);
  const report = (groupRef: boolean) => (t: KTask, dev: DeviceInfo, evt: IopfFault) => reportDeviceFault(k, t, dev, evt, groupRef);
  k.fns.define('report_partial_fault', IO_PGFAULT_C, (t, fp, evt) => reportPartialFault(k, t, fp, evt));
  k.fns.define('iopf_report_last_fault', IO_PGFAULT_C, (t, dev, evt, fp) => reportLastFault(k, env, t, dev, evt, fp));
  k.fns.definePlanted('iommu_report_device_fault', IO_PGFAULT_C, bug, { none: report(true), 'iopf-unreferenced-group': report(false) });
  k.fns.define('iopf_free_group', IO_PGFAULT_C, function* (t, group) {
    const [fp, dom] = yield* k.stepOn(t, 'group->fault_param, group->domain', objectFootprint(k, group, [GRP.fault_param, GRP.domain]), () => [objLoad(k, t, group, GRP.fault_param), objLoad(k, t, group, GRP.domain)]);
    if (dom !== 0) yield* env.put(t, dom);
    // Pair with iommu_report_device_fault().
    if (bug !== 'iopf-unreferenced-group') yield* k.fn.iopf_put_dev_fault_param(t, fp);
    yield* kfree(k, t, group);
  });
  k.fns.define('iommu_sva_iopf_handler', IOMMU_SVA_C, function* (t, group) {
    const fp = objLoad(k, t, group, GRP.fault_param);
    const reads = objectFootprint(k, group, [GRP.grpid], [], objectFootprint(k, fp, [FP.dev]));
    const [devIndex, grpid] = yield* k.stepOn(t, 'group->fault_param', reads, () => [objLoad(k, t, fp, FP.dev) - 1, objLoad(k, t, group, GRP.grpid)]);
    const d = st.devs.get(devIndex) as DevIommu;
    const queued = yield* queue_work(k, t, d.queue.wq, d.works[grpid] as WorkItem, group);
    return queued ? 0 : -EBUSY;
  });
  const handle = (callback: boolean) => (t: KTask, group: number) => handleGroup(k, env, t, group, callback);
  k.fns.definePolicy('iommu_sva_handle_iopf', IOMMU_SVA_C, 'fault', fault, { callback: handle(true), protocol: handle(false) });
}

/**
 * The report: a request without "last" joins the partial list (report_partial_fault) and the report is done; the
 * last one gathers its group, finds the domain attached to {dev, PASID} (with its user reference) and hands the
 * group to the domain's handler (iopf_report_last_fault).
 */
function* reportDeviceFault(k: Kernel, t: KTask, dev: DeviceInfo, evt: IopfFault, groupRef: boolean): KGen<number> {
  const fp = yield* k.fn.iopf_get_dev_fault_param(t, dev);
  if (fp === 0) return -EINVAL;
  if (!evt.last) {
    yield* k.fn.report_partial_fault(t, fp, evt);
    yield* k.fn.iopf_put_dev_fault_param(t, fp);
    // A request that is not the last does not need to be ack'd.
    return 0;
  }
  const ret = yield* k.fn.iopf_report_last_fault(t, dev, evt, fp);
  // On success the group holds the reference of a last request.
  if (ret < 0 || !groupRef) yield* k.fn.iopf_put_dev_fault_param(t, fp);
  return ret;
}

/** report_partial_fault: a request of a group whose last one has not come, on the param's partial list. */
function* reportPartialFault(k: Kernel, t: KTask, fp: number, evt: IopfFault): KGen {
  yield* mutex_lock(k, t, lockOf(k, fp));
  yield* k.stepOn(t, 'list_add(&iopf->list, &iopf_param->partial)', objectFootprint(k, fp, [], [FP.partial + evt.grpid]), () => objStore(k, t, fp, FP.partial + evt.grpid, objLoad(k, t, fp, FP.partial + evt.grpid) + 1));
  yield* mutex_unlock(k, t, lockOf(k, fp));
}

/** The last request of a group, under fault_param->lock: pending on the faults list, its group to the domain's handler. */
function* reportLastFault(k: Kernel, env: DeviceFaultEnv, t: KTask, dev: DeviceInfo, evt: IopfFault, fp: number): KGen<number> {
  yield* mutex_lock(k, t, lockOf(k, fp));
  yield* k.stepOn(t, 'list_add_tail(&evt_pending->list, &fault_param->faults)', objectFootprint(k, fp, [], [FP.faults + evt.grpid]), () => objStore(k, t, fp, FP.faults + evt.grpid, evt.pasid + 1));
  const ret = yield* handleIopf(k, env, t, dev, evt, fp);
  if (ret < 0) yield* k.stepOn(t, 'list_del(&evt_pending->list)', objectFootprint(k, fp, [], [FP.faults + evt.grpid]), () => objStore(k, t, fp, FP.faults + evt.grpid, 0));
  yield* mutex_unlock(k, t, lockOf(k, fp));
  return ret;
}

/** iommu_handle_iopf for a last request: the group, its domain, its handler (fault_param->lock held). */
function* handleIopf(k: Kernel, env: DeviceFaultEnv, t: KTask, dev: DeviceInfo, evt: IopfFault, fp: number): KGen<number> {
  const lock = lockOf(k, fp);
  const cleanupPartial = () => k.stepOn(t, 'cleanup_partial', objectFootprint(k, fp, [], [FP.partial + evt.grpid]), () => objStore(k, t, fp, FP.partial + evt.grpid, 0));
  // get_domain_for_iopf: the SVA domain's handler, found by its type; any other through its attach handle.
  const dom = yield* k.fn.iommu_get_domain_for_dev_pasid(t, dev, evt.pasid, 'sva', env.get);
  if (dom <= 0) {
    // find_fault_handler: a domain of another type is attached (-EBUSY) — its attach handle may name a domain
    // with an iopf_handler of its own (an iommufd hw_pagetable's). Nothing attached (0) has no handler at all.
    const own = dom === -EBUSY ? yield* findFaultHandler(k, t, dev, evt.pasid) : undefined;
    if (own) return yield* handleOwnIopf(k, t, evt, fp, own);
    yield* cleanupPartial();
    return -EINVAL;
  }
  const group = yield* kzalloc(k, t, IOPF_GROUP.words, 'GFP_KERNEL');
  if (group === 0) {
    yield* env.put(t, dom);
    yield* cleanupPartial();
    return -ENOMEM;
  }
  yield* k.stepOn(t, 'iopf_group init', groupInitFootprint(k, fp, evt.grpid, group), () => {
    const partial = objLoad(k, t, fp, FP.partial + evt.grpid);
    objStore(k, t, fp, FP.partial + evt.grpid, 0);
    for (const [f, v] of [[GRP.fault_param, fp], [GRP.pasid, evt.pasid], [GRP.grpid, evt.grpid], [GRP.vpn, evt.vpn], [GRP.write, evt.write ? 1 : 0], [GRP.fault_count, partial + 1], [GRP.domain, dom]] as const) objStore(k, t, group, f, v);
  });
  yield* mutex_unlock(k, t, lock);
  const ret = yield* k.fn.iommu_sva_iopf_handler(t, group);
  yield* mutex_lock(k, t, lock);
  if (ret !== 0) {
    // __iopf_free_group: the report's reference of the param is the caller's to drop.
    yield* env.put(t, dom);
    yield* kfree(k, t, group);
  }
  return ret;
}

/** iopf_group init: the group's partial count taken off the param, and every field of the new group written. */
function groupInitFootprint(k: Kernel, fp: number, grpid: number, group: number): number[] {
  return objectFootprint(k, group, [], fieldRange(0, IOPF_GROUP.words), objectFootprint(k, fp, [], [FP.partial + grpid]));
}

interface OwnHandler {
  readonly handle: number;
  readonly handler: IopfHandlerName;
}

/** The attach handle of {dev, PASID} (IOMMU_NO_PASID's for a request without one) if its domain has an iopf_handler. */
function* findFaultHandler(k: Kernel, t: KTask, dev: DeviceInfo, pasid: number): KGen<OwnHandler | undefined> {
  if (!k.fns.has('iommu_group_get')) return undefined;
  const g = k.fn.iommu_group_get(dev);
  const handle = yield* k.fn.iommu_attach_handle_get(t, g, pasid);
  if (handle <= 0) return undefined;
  const field = IOMMU_ATTACH_HANDLE.offset.domain;
  // The domain is read under the step: the footprint follows the handle as it is then.
  const walk = () => objectFootprint(k, k.i32[handle + field] as number, [DOM.type, DOM.iopf_handler], [], objectFootprint(k, handle, [field]));
  const h = yield* k.stepOn(t, 'attach_handle->domain->iopf_handler', walk, () => {
    const dom = objLoad(k, t, handle, IOMMU_ATTACH_HANDLE.offset.domain);
    return objLoad(k, t, dom, DOM.type) === DOMAIN_TYPES.indexOf('sva') + 1 ? 0 : objLoad(k, t, dom, DOM.iopf_handler);
  });
  const handler = IOPF_HANDLERS[h - 1];
  return handler ? { handle, handler } : undefined;
}

/**
 * The last request of a group for a domain with its own handler: the group (with the report's reference of the
 * param and its attach handle) goes to the handler, which owns it from then on (it answers and frees it).
 */
function* handleOwnIopf(k: Kernel, t: KTask, evt: IopfFault, fp: number, own: OwnHandler): KGen<number> {
  const lock = lockOf(k, fp);
  const group = yield* kzalloc(k, t, IOPF_GROUP.words, 'GFP_KERNEL');
  if (group === 0) {
    yield* k.stepOn(t, 'cleanup_partial', objectFootprint(k, fp, [], [FP.partial + evt.grpid]), () => objStore(k, t, fp, FP.partial + evt.grpid, 0));
    return -ENOMEM;
  }
  yield* k.stepOn(t, 'iopf_group init', groupInitFootprint(k, fp, evt.grpid, group), () => {
    const partial = objLoad(k, t, fp, FP.partial + evt.grpid);
    objStore(k, t, fp, FP.partial + evt.grpid, 0);
    for (const [f, v] of [[GRP.fault_param, fp], [GRP.pasid, evt.pasid], [GRP.grpid, evt.grpid], [GRP.vpn, evt.vpn], [GRP.write, evt.write ? 1 : 0], [GRP.fault_count, partial + 1], [GRP.attach_handle, own.handle]] as const) objStore(k, t, group, f, v);
  });
  yield* mutex_unlock(k, t, lock);
  const ret = yield* k.fn[own.handler](t, group);
  yield* mutex_lock(k, t, lock);
  if (ret !== 0) yield* kfree(k, t, group);
  return ret;
}

/**
 * The SVA domain's work (iommu_sva_handle_iopf): resolve the group against domain->mm, answer it, free it. With
 * `callback` (seed 000), a fault the core could not resolve goes to the device driver's fault callback.
 */
function* handleGroup(k: Kernel, env: DeviceFaultEnv, t: KTask, group: number, callback: boolean): KGen {
  const fields = [GRP.domain, GRP.pasid, GRP.vpn, GRP.write, GRP.fault_param];
  const [dom, pasid, vpn, write, fp] = yield* k.stepOn(t, 'group->faults', objectFootprint(k, group, fields), () => [
    objLoad(k, t, group, GRP.domain),
    objLoad(k, t, group, GRP.pasid),
    objLoad(k, t, group, GRP.vpn),
    objLoad(k, t, group, GRP.write) === 1,
    objLoad(k, t, group, GRP.fault_param),
  ]);
  let code = yield* iommu_sva_handle_mm(k, env, t, vpn, write, dom);
  if (callback && code !== RESP_SUCCESS) {
    const dev = state(k).devs.get(objLoad(k, t, fp, FP.dev) - 1)?.dev;
    const svm = dev ? env.svmOf(dev) : undefined;
    if (dev && svm?.fault) code = yield* svm.fault(t, dev, pasid, vpn, write);
  }
  yield* k.fn.iopf_group_response(t, group, code);
  yield* k.fn.iopf_free_group(t, group);
}

/**
 * Resolve a group's fault against domain->mm (the domain is the group's, by its user reference): iommu-sva.c's
 * iommu_sva_handle_mm (mmget_not_zero, mmap_read_lock, handle_mm_fault), the response code.
 */
function* iommu_sva_handle_mm(k: Kernel, env: DeviceFaultEnv, t: KTask, vpn: number, write: boolean, dom: number): KGen<number> {
  // domain->mm is read through the domain: KASAN's to report if the domain is already freed.
  const mmId = yield* k.stepOn(t, 'domain->mm', objectFootprint(k, dom, [DOM.mm]), () => objLoad(k, t, dom, DOM.mm) - 1);
  // init_mm (SUPERVISOR_MODE) takes no page requests: its faults are answered INVALID.
  const mm: MmStruct | undefined = mmId > 0 ? env.mms.mms[mmId - 1] : undefined;
  return mm ? yield* k.fn.iommu_sva_handle_mm(t, mm, vpn, write) : RESP_INVALID;
}

// ---- the domains preset's fault handlers ----

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
      k.stepOn(t, 'domain->mm', objectFootprint(k, dom, [DOM.mm]), () => objLoad(k, t, dom, DOM.mm) - 1),
    );
    yield* env.put(t, dom);
    return mmId;
  });
}
