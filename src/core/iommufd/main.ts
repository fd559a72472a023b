// drivers/iommu/iommufd/main.c: the iommufd file (/dev/iommu) of a user-space VMM — its iommufd_ctx and the
// objects it holds (IOAS, hw_pagetable, device, fault), each in ictx->objects by id. An object is a slab object
// whose header is struct iommufd_object: `users` counts the references that keep it (1: the objects xarray's;
// an attachment, a hw_pagetable's IOAS and fault, a fault's fd each hold one more), `shortterm_users` the ioctls
// using it now (iommufd_get_object / iommufd_put_object). Destroying one (IOMMU_DESTROY, iommufd_object_remove)
// is refused with -EBUSY unless the xarray's is its only reference; the object's own destroy then runs and it is
// freed. Closing the file (iommufd_fops_release) destroys whatever is left, the objects nobody else holds first.
//
// The model: one iommufd_ctx a VMM (its index), with its objects xarray, the VMM's mm (copy_to_user faults on it)
// and a user buffer (what read() copied out: the fault records' cookies).
import type { KTask } from '../../kernel/context.js';
import { EBUSY, ENOENT, ENOMEM } from '../../kernel/errno.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { objectRefcount, refcount_dec, refcount_dec_and_test, refcount_inc_not_zero, refcount_set } from '../../kernel/refcount.js';
import { kfree, kzalloc, objLoad, objStore } from '../../kernel/slab.js';
import { word } from '../../kernel/struct.js';
import { defineWaitQueue, wait_event, type WaitQueue, wake_up_all } from '../../kernel/waitqueue.js';
import { __xa_erase, defineXArray, xa_alloc, xa_load, xa_lock, xa_store, xa_unlock, type XArray, xaEntries } from '../../kernel/xarray.js';
import type { Domains, IommuGroups } from '../iommu.js';
import { iommuWarn, XA_ZERO_ENTRY } from '../iommu.js';
import type { DeviceInfo } from '../types.js';

export const MAIN_C = 'drivers/iommu/iommufd/main.c';

/** struct iommufd_object's fields, the header of every object (spread into each object's struct). */
export const IOMMUFD_OBJECT = {
  id: word,
  type: word, // IommufdObjType's index + 1
  users: word,
  shortterm_users: word,
  ictx: word, // model: the iommufd_ctx's index + 1
} as const;
/** The header's offsets (the same in every object's struct: it comes first). */
export const OBJ = { id: 0, type: 1, users: 2, shortterm_users: 3, ictx: 4 } as const;

/** enum iommufd_object_type, the kinds this model has. */
export const IOMMUFD_OBJ_TYPES = ['device', 'hwpt_paging', 'ioas', 'fault'] as const;
export type IommufdObjType = (typeof IOMMUFD_OBJ_TYPES)[number];

/** Ids a context may hand out (the objects xarray's capacity; id 0 is never used: XA_FLAGS_ALLOC1). */
export const IOMMUFD_MAX_OBJECTS = 32;
/** Fault records a read() copies out at most (the model's user buffer, in words after its count). */
export const IOMMUFD_UBUF_RECORDS = 16;

/** struct iommufd_ctx: its objects, its destroy wait queue; model: its VMM's mm and user buffer, open or not. */
export interface IommufdCtx {
  readonly index: number;
  readonly objects: XArray;
  readonly destroyWait: WaitQueue;
  readonly mm: MmStruct;
  /** Statics: [open, records read, cookie × IOMMUFD_UBUF_RECORDS]. */
  readonly words: number;
}

/** What the iommufd files work on: the IOMMU core, the devices, the VMMs' mms. */
export interface IommufdEnv {
  readonly domains: Domains;
  readonly groups: IommuGroups;
  readonly devices: readonly DeviceInfo[];
}

export interface IommufdState {
  readonly env: IommufdEnv;
  readonly ctxs: IommufdCtx[];
}

const states = new WeakMap<Kernel, IommufdState>();

export function iommufdState(k: Kernel): IommufdState {
  const st = states.get(k);
  if (!st) throw new Error('iommufd: not declared (defineIommufd)');
  return st;
}

export function initIommufdState(k: Kernel, env: IommufdEnv, mms: readonly MmStruct[]): IommufdState {
  const ctxs = mms.map((mm, index) => ({
    index,
    objects: defineXArray(k, 'ictx->objects', IOMMUFD_MAX_OBJECTS),
    destroyWait: defineWaitQueue(k, 'ictx->destroy_wait'),
    mm,
    words: k.statics.alloc(2 + IOMMUFD_UBUF_RECORDS, `iommufd ctx ${index}`),
  }));
  const st: IommufdState = { env, ctxs };
  states.set(k, st);
  return st;
}

export const usersOf = (k: Kernel, obj: number) => objectRefcount(k, 'obj->users', obj, OBJ.users);
export const shorttermOf = (k: Kernel, obj: number) => objectRefcount(k, 'obj->shortterm_users', obj, OBJ.shortterm_users);

/** The ctx an object belongs to. */
export function ctxOf(k: Kernel, t: KTask, obj: number): IommufdCtx {
  return iommufdState(k).ctxs[objLoad(k, t, obj, OBJ.ictx) - 1] as IommufdCtx;
}

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    iommufd_fops_open(t: KTask, ictx: IommufdCtx): KGen<number>;
    /** Close of /dev/iommu: every object left destroyed, those held by no one else first. */
    iommufd_fops_release(t: KTask, ictx: IommufdCtx): KGen;
    /** An object of `words` words (its header first), its id reserved (XA_ZERO_ENTRY) until finalize; 0 or -errno as obj. */
    iommufd_object_alloc(t: KTask, ictx: IommufdCtx, words: number, type: IommufdObjType): KGen<number>;
    iommufd_object_finalize(t: KTask, ictx: IommufdCtx, obj: number): KGen;
    /** An error path's: the reserved id released and the object freed, its destroy not run. */
    iommufd_object_abort(t: KTask, ictx: IommufdCtx, obj: number): KGen;
    /** The object of id and type with a short-term reference (users and shortterm_users), or -ENOENT. */
    iommufd_get_object(t: KTask, ictx: IommufdCtx, id: number, type: IommufdObjType): KGen<number>;
    iommufd_put_object(t: KTask, ictx: IommufdCtx, obj: number): KGen;
    /** IOMMU_DESTROY: 0, -ENOENT, or -EBUSY while anything but the xarray holds the object. */
    iommufd_object_remove(t: KTask, ictx: IommufdCtx, id: number): KGen<number>;
    /** The object's type's destroy (iommufd_object_ops[type].destroy), then kfree. */
    iommufd_object_destroy(t: KTask, obj: number): KGen;
  }
}

/** The destroy of each object type, by kernel name (defined by ioas.ts, hw_pagetable.ts, device.ts, fault.ts). */
const DESTROY = {
  device: 'iommufd_device_destroy',
  hwpt_paging: 'iommufd_hwpt_paging_destroy',
  ioas: 'iommufd_ioas_destroy',
  fault: 'iommufd_fault_destroy',
} as const satisfies Record<IommufdObjType, string>;

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    iommufd_device_destroy(t: KTask, obj: number): KGen;
    iommufd_hwpt_paging_destroy(t: KTask, obj: number): KGen;
    iommufd_ioas_destroy(t: KTask, obj: number): KGen;
    iommufd_fault_destroy(t: KTask, obj: number): KGen;
  }
}

export function defineMain(k: Kernel): void {
  k.fns.define('iommufd_fops_open', MAIN_C, function* (t, ictx) {
    yield* k.step(t, 'iommufd_fops_open', () => void Atomics.store(k.i32, k.mem.statics + ictx.words, 1));
    return 0;
  });
  k.fns.define('iommufd_object_alloc', MAIN_C, function* (t, ictx, words, type) {
    const obj = yield* kzalloc(k, t, words, 'GFP_KERNEL', `iommufd_${type}`);
    if (obj === 0) return -ENOMEM;
    yield* refcount_set(k, t, usersOf(k, obj), 1);
    yield* refcount_set(k, t, shorttermOf(k, obj), 1);
    // Reserve the id: a lookup finds nothing until the object is finalized.
    const id = yield* xa_alloc(k, t, ictx.objects, XA_ZERO_ENTRY, 1, IOMMUFD_MAX_OBJECTS - 1);
    if (id < 0) {
      yield* kfree(k, t, obj);
      return id;
    }
    yield* k.step(t, 'obj->id, obj->type', () => {
      objStore(k, t, obj, OBJ.id, id);
      objStore(k, t, obj, OBJ.type, IOMMUFD_OBJ_TYPES.indexOf(type) + 1);
      objStore(k, t, obj, OBJ.ictx, ictx.index + 1);
    });
    return obj;
  });
  k.fns.define('iommufd_object_finalize', MAIN_C, function* (t, ictx, obj) {
    const id = yield* k.step(t, 'obj->id', () => objLoad(k, t, obj, OBJ.id));
    yield* xa_store(k, t, ictx.objects, id, obj);
  });
  k.fns.define('iommufd_object_abort', MAIN_C, function* (t, ictx, obj) {
    const id = yield* k.step(t, 'obj->id', () => objLoad(k, t, obj, OBJ.id));
    yield* xa_lock(k, t, ictx.objects);
    yield* __xa_erase(k, t, ictx.objects, id);
    yield* xa_unlock(k, t, ictx.objects);
    yield* kfree(k, t, obj);
  });
  k.fns.define('iommufd_get_object', MAIN_C, (t, ictx, id, type) => getObject(k, t, ictx, id, type));
  k.fns.define('iommufd_put_object', MAIN_C, function* (t, ictx, obj) {
    // Users first, then shortterm: a destroy waiting for short-term users never sees users back from 0.
    yield* refcount_dec(k, t, usersOf(k, obj));
    if (yield* refcount_dec_and_test(k, t, shorttermOf(k, obj))) yield* wake_up_all(k, t, ictx.destroyWait);
  });
  k.fns.define('iommufd_object_remove', MAIN_C, (t, ictx, id) => removeObject(k, t, ictx, id));
  k.fns.define('iommufd_object_destroy', MAIN_C, function* (t, obj) {
    const type = IOMMUFD_OBJ_TYPES[(yield* k.step(t, 'obj->type', () => objLoad(k, t, obj, OBJ.type))) - 1] as IommufdObjType;
    yield* k.fn[DESTROY[type]](t, obj);
    yield* kfree(k, t, obj);
  });
  k.fns.define('iommufd_fops_release', MAIN_C, (t, ictx) => release(k, t, ictx));
}

/** iommufd_get_object: under xa_lock, an object of the type whose users is not already 0 (iommufd_lock_obj). */
function* getObject(k: Kernel, t: KTask, ictx: IommufdCtx, id: number, type: IommufdObjType): KGen<number> {
  if (!Number.isInteger(id) || id <= 0 || id >= IOMMUFD_MAX_OBJECTS) return -ENOENT;
  yield* xa_lock(k, t, ictx.objects);
  let obj = yield* xa_load(k, t, ictx.objects, id);
  if (obj === 0 || obj === XA_ZERO_ENTRY) obj = -ENOENT;
  else if ((yield* k.step(t, 'obj->type', () => objLoad(k, t, obj, OBJ.type))) !== IOMMUFD_OBJ_TYPES.indexOf(type) + 1) obj = -ENOENT;
  else if (!(yield* iommufdLockObj(k, t, obj))) obj = -ENOENT;
  yield* xa_unlock(k, t, ictx.objects);
  return obj;
}

/** iommufd_lock_obj: a users reference unless it is 0, then a short-term one unless that is (being destroyed). */
function* iommufdLockObj(k: Kernel, t: KTask, obj: number): KGen<boolean> {
  if (!(yield* refcount_inc_not_zero(k, t, usersOf(k, obj)))) return false;
  if (yield* refcount_inc_not_zero(k, t, shorttermOf(k, obj))) return true;
  yield* refcount_dec(k, t, usersOf(k, obj));
  return false;
}

/**
 * iommufd_object_remove(ictx, NULL, id, REMOVE_WAIT_SHORTTERM): refcount_dec_if_one(&obj->users) under xa_lock —
 * -EBUSY when anything else holds it — then the id goes, short-term users are waited for and the object is
 * destroyed.
 */
function* removeObject(k: Kernel, t: KTask, ictx: IommufdCtx, id: number): KGen<number> {
  if (!Number.isInteger(id) || id <= 0 || id >= IOMMUFD_MAX_OBJECTS) return -ENOENT;
  yield* xa_lock(k, t, ictx.objects);
  const obj = yield* xa_load(k, t, ictx.objects, id);
  let ret = 0;
  if (obj === 0 || obj === XA_ZERO_ENTRY) ret = -ENOENT;
  else if (!(yield* refcountDecIfOne(k, t, obj))) ret = -EBUSY;
  else yield* __xa_erase(k, t, ictx.objects, id);
  yield* xa_unlock(k, t, ictx.objects);
  if (ret !== 0) return ret;
  // iommufd_object_dec_wait_shortterm: the alloc's short-term reference, then wait for the ioctls using it.
  if (!(yield* refcount_dec_and_test(k, t, shorttermOf(k, obj)))) yield* wait_event(k, t, ictx.destroyWait, () => Atomics.load(k.i32, obj + OBJ.shortterm_users) === 0);
  yield* k.fn.iommufd_object_destroy(t, obj);
  return 0;
}

/** refcount_dec_if_one(&obj->users). */
function* refcountDecIfOne(k: Kernel, t: KTask, obj: number): KGen<boolean> {
  return yield* k.step(t, 'refcount_dec_if_one(&obj->users)', () => {
    if (objLoad(k, t, obj, OBJ.users) !== 1) return false;
    objStore(k, t, obj, OBJ.users, 0);
    return true;
  });
}

/**
 * iommufd_fops_release: destroy every object whose only reference is the xarray's, again until none is left (a
 * hw_pagetable before the IOAS and fault it holds); WARN_ON(!destroyed) — a reference nobody will drop — ends it.
 */
function* release(k: Kernel, t: KTask, ictx: IommufdCtx): KGen {
  for (;;) {
    const objs = yield* k.step(t, 'xa_for_each(&ictx->objects)', () => xaEntries(k, ictx.objects).filter(([, o]) => o !== XA_ZERO_ENTRY));
    if (objs.length === 0) break;
    let destroyed = 0;
    for (const [id, obj] of objs) {
      if (!(yield* refcountDecIfOne(k, t, obj))) continue;
      destroyed++;
      yield* xa_lock(k, t, ictx.objects);
      yield* __xa_erase(k, t, ictx.objects, id);
      yield* xa_unlock(k, t, ictx.objects);
      yield* k.fn.iommufd_object_destroy(t, obj);
    }
    if (destroyed === 0) {
      iommuWarn(k, t, `${MAIN_C}:262`, 'iommufd_fops_release', `${objs.length} object(s) still referenced by another at close: nothing destroyed`);
      break;
    }
  }
  yield* k.step(t, 'iommufd_fops_release', () => void Atomics.store(k.i32, k.mem.statics + ictx.words, 0));
}
