// The xarray (lib/xarray.c, include/linux/xarray.h), small: a fixed-capacity index → entry map in the kernel's
// static shared memory with its own spinlock, xa_lock. Entries are positive ints (an object's address, an ID);
// 0 is the empty entry, and errors come back as negated errnos. Mutations take xa_lock inside, as the kernel's
// do, and are one scheduling point each; the __xa_* forms are for callers that hold xa_lock already.
// Readers are the interesting part (seed 002: "RCU out of the xarray"): an entry read with neither
// rcu_read_lock() nor xa_lock (nor a lock declared to protect the array, such as group->mutex) may be freed
// under the reader, and is reported as the kernel's lockdep-RCU splat. Strictly, the kernel's xa_load takes
// rcu_read_lock() itself and the splat comes from the caller's later rcu_dereference of the entry; reporting at
// the load names the same unprotected lookup.
import { read } from '../runtime/footprint.js';
import type { KTask } from './context.js';
import { EBUSY, EINVAL, ENOSPC } from './errno.js';
import { callTrace, heldLocksLines, taskFinding } from './findings.js';
import type { Kernel, KGen } from './kernel.js';
import { type LockRef, lockHolderFootprint, noteAcquired, noteReleased, owner } from './lock.js';
import { type Gfp, MIGHT_ALLOC_SITE } from './slab.js';
import { array, struct, word } from './struct.js';
import { acquirePointFootprint } from './lock.js';
import {
  type Spinlock,
  spin_lock,
  spin_lock_bh,
  spin_lock_irqsave,
  spin_unlock,
  spin_unlock_bh,
  spin_unlock_irqrestore,
} from './spinlock.js';

export interface XArrayOptions {
  /** Locks whose holder may read the array without RCU (the writers' lock, e.g. `&group->mutex`). */
  readonly protectedBy?: readonly LockRef[];
  /** Report unprotected xa_load (default: on, with the 'rcu' checker). */
  readonly rcuCheck?: boolean;
}

export interface XArray {
  readonly name: string;
  readonly capacity: number;
  readonly lock: Spinlock;
  readonly protectedBy: readonly LockRef[];
  readonly rcuCheck: boolean;
  /** Absolute word offset of entry 0. */
  slots(): number;
}

/** struct xarray: xa_lock, then the entries (the kernel's xa_head is a tree of xa_nodes; here one flat array). */
const XARRAY = struct('xarray', {
  xa_lock: word, // spinlock_t
  slots: array(0), // `capacity` entries
});

/** DEFINE_XARRAY(name) with indices 0 .. capacity-1, in the kernel's static memory. */
export function defineXArray(k: Kernel, name: string, capacity: number, opts: XArrayOptions = {}): XArray {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`xarray ${name}: bad capacity ${capacity}`);
  const off = k.statics.alloc(XARRAY.words + capacity, `xarray ${name}`);
  const lockName = `&${name}.xa_lock`;
  warned(k);
  return {
    name,
    capacity,
    lock: { name: lockName, addr: () => k.mem.statics + off + XARRAY.offset.xa_lock },
    protectedBy: opts.protectedBy ?? [],
    rcuCheck: opts.rcuCheck ?? true,
    slots: () => k.mem.statics + off + XARRAY.offset.slots,
  };
}

// ---- xa_lock ----

export function* xa_lock(k: Kernel, t: KTask, xa: XArray): KGen {
  yield* spin_lock(k, t, xa.lock);
}

export function* xa_unlock(k: Kernel, t: KTask, xa: XArray): KGen {
  yield* spin_unlock(k, t, xa.lock);
}

export function* xa_lock_irqsave(k: Kernel, t: KTask, xa: XArray): KGen<boolean> {
  return yield* spin_lock_irqsave(k, t, xa.lock);
}

export function* xa_unlock_irqrestore(k: Kernel, t: KTask, xa: XArray, flags: boolean): KGen {
  yield* spin_unlock_irqrestore(k, t, xa.lock, flags);
}

export function* xa_lock_bh(k: Kernel, t: KTask, xa: XArray): KGen {
  yield* spin_lock_bh(k, t, xa.lock);
}

export function* xa_unlock_bh(k: Kernel, t: KTask, xa: XArray): KGen {
  yield* spin_unlock_bh(k, t, xa.lock);
}

// ---- the lockdep-RCU splat ----

function protectedRead(t: KTask, xa: XArray): boolean {
  return t.rcuDepth > 0 || t.holds(xa.lock.addr()) !== undefined || xa.protectedBy.some((l) => t.holds(l.addr()) !== undefined);
}

const sites = new WeakMap<Kernel, Set<string>>();

function warned(k: Kernel): Set<string> {
  let s = sites.get(k);
  if (!s) {
    const set = new Set<string>();
    s = set;
    sites.set(k, set);
    k.onAttach(() => set.clear());
  }
  return s;
}

/** lockdep_rcu_suspicious() (kernel/locking/lockdep.c), as it prints. */
function suspicious(k: Kernel, t: KTask, where: string, what: string, note: string): void {
  if (!k.enabled('rcu')) return;
  // RCU_LOCKDEP_WARN warns once per call site: here, once per calling chain and run.
  const site = `${what} ${t.chain().join(' ')}`;
  const seen = warned(k);
  if (seen.has(site)) return;
  seen.add(site);
  const title = 'WARNING: suspicious RCU usage';
  const body = [
    '-----------------------------',
    `${where} suspicious ${what}() usage!`,
    '',
    'other info that might help us debug this:',
    '',
    '',
    `rcu_scheduler_active = 2, debug_locks = 1`,
    `iommu-sim: ${note}`,
    ...heldLocksLines(t),
    '',
    'stack backtrace:',
    `PID: ${t.pid} Comm: ${t.comm} Not tainted (iommu-sim)`,
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('rcu', t, t.lastStep, title, body));
}

/** The error for an index or entry this array cannot hold, or 0. */
function invalid(xa: XArray, index: number, entry: number): number {
  if (!Number.isInteger(index) || index < 0 || !Number.isInteger(entry) || entry < 0) return -EINVAL;
  if (index >= xa.capacity) return -ENOSPC;
  return 0;
}

// ---- reads ----

/** The footprint of a point on entry `index` alone: its slot (none for an index out of range: nothing is touched). */
function slotFootprint(xa: XArray, index: number, write: boolean): number[] {
  if (!Number.isInteger(index) || index < 0 || index >= xa.capacity) return [];
  return [write ? xa.slots() + index : read(xa.slots() + index)];
}

/** The footprint of an allocation of an index in [min, max]: the slots it searches, any of which it may fill. */
function rangeFootprint(xa: XArray, min: number, max: number): number[] {
  const out: number[] = [];
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0) return out;
  const hi = Math.min(max, xa.capacity - 1);
  for (let i = min; i <= hi; i++) out.push(xa.slots() + i);
  return out;
}

/** xa_load: the entry at index (0 when empty or out of range). */
export function* xa_load(k: Kernel, t: KTask, xa: XArray, index: number): KGen<number> {
  return yield* k.call(
    t,
    'xa_load',
    k.stepOn(t, `xa_load(${xa.name}[${index}])`, slotFootprint(xa, index, false), () => {
      if (xa.rcuCheck && !protectedRead(t, xa)) {
        suspicious(
          k,
          t,
          'include/linux/xarray.h:1179',
          'rcu_dereference_check',
          `xa_load(${xa.name}[${index}]) outside rcu_read_lock() and without ${xa.lock.name}: the entry may be freed under the reader`,
        );
      }
      return Number.isInteger(index) && index >= 0 && index < xa.capacity ? (k.i32[xa.slots() + index] as number) : 0;
    }),
  );
}

/** xa_empty (a point: it races with stores like any read). */
export function* xa_empty(k: Kernel, t: KTask, xa: XArray): KGen<boolean> {
  const footprint: number[] = [];
  for (let i = 0; i < xa.capacity; i++) footprint.push(read(xa.slots() + i));
  return yield* k.stepOn(t, `xa_empty(${xa.name})`, footprint, () => {
    for (let i = 0; i < xa.capacity; i++) if ((k.i32[xa.slots() + i] as number) !== 0) return false;
    return true;
  });
}

/** Present entries as [index, entry] (reads only: for tests and invariant checks). */
export function xaEntries(k: Kernel, xa: XArray): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < xa.capacity; i++) {
    const v = k.i32[xa.slots() + i] as number;
    if (v !== 0) out.push([i, v]);
  }
  return out;
}

// ---- mutations ----

type Mutation = (slot: number, cur: number) => number;

/** What each mutation does to the slot, given the current entry; returns the call's result. */
const store =
  (k: Kernel, entry: number): Mutation =>
  (slot, cur) => {
    k.i32[slot] = entry;
    return cur;
  };

const cmpxchg =
  (k: Kernel, old: number, entry: number): Mutation =>
  (slot, cur) => {
    if (cur === old) k.i32[slot] = entry;
    return cur;
  };

const insert =
  (k: Kernel, entry: number): Mutation =>
  (slot, cur) => {
    if (cur !== 0) return -EBUSY;
    k.i32[slot] = entry;
    return 0;
  };

/**
 * One mutation as one point: xa_lock is taken, the slot changed and the lock dropped atomically (nothing can
 * happen in between), and lockdep sees the acquisition. Waits while someone else holds xa_lock.
 */
function* locked<T>(
  k: Kernel,
  t: KTask,
  xa: XArray,
  label: string,
  gfp: Gfp,
  allocates: boolean,
  slots: readonly number[],
  body: () => T,
): KGen<T> {
  if (allocates && gfp === 'GFP_KERNEL') k.mightSleep(t, MIGHT_ALLOC_SITE);
  k.lockdep.acquire(t, xa.lock, 'spinlock');
  const addr = xa.lock.addr();
  // xa_lock's word (read: ready() waits for it free; the point takes and drops it at once, leaving it as it was),
  // the slots, and the holder watches its release counts; lockdep's share of the acquisition comes with it.
  const words = [read(addr), ...slots, ...lockHolderFootprint(k, t, xa.lock.name, false)];
  return (yield k.point(
    t,
    label,
    () => Atomics.load(k.i32, addr) === 0,
    (env) => {
      noteAcquired(k, t, xa.lock, 'spinlock', env);
      try {
        return body();
      } finally {
        noteReleased(k, t, xa.lock);
      }
    },
    { what: `spinlock ${xa.lock.name}`, holder: () => owner(k, xa.lock), watch: [addr] },
    acquirePointFootprint(k, t, xa.lock, 'spinlock', words),
  )) as T;
}

/** The same mutation by a caller that holds xa_lock (the __xa_* forms). */
function* unlocked<T>(
  k: Kernel,
  t: KTask,
  xa: XArray,
  label: string,
  gfp: Gfp,
  allocates: boolean,
  footprint: readonly number[],
  body: () => T,
): KGen<T> {
  if (allocates && gfp === 'GFP_KERNEL') {
    // __xas_nomem drops xa_lock around a blocking allocation: only what the caller holds besides it counts.
    const held = t.holds(xa.lock.addr()) !== undefined;
    if (held) t.preemptCount--;
    k.mightSleep(t, MIGHT_ALLOC_SITE);
    if (held) t.preemptCount++;
  }
  return yield* k.stepOn(t, label, footprint, () => {
    if (t.holds(xa.lock.addr()) === undefined && xa.rcuCheck) {
      suspicious(k, t, 'include/linux/xarray.h:1195', 'rcu_dereference_protected', `${label} without ${xa.lock.name} held`);
    }
    return body();
  });
}

function mutate(xa: XArray, k: Kernel, index: number, entry: number, m: Mutation): number {
  const bad = invalid(xa, index, entry);
  if (bad !== 0) return bad;
  const slot = xa.slots() + index;
  return m(slot, k.i32[slot] as number);
}

function alloc(k: Kernel, xa: XArray, entry: number, min: number, max: number): number {
  if (!Number.isInteger(entry) || entry <= 0 || !Number.isInteger(min) || !Number.isInteger(max) || min < 0) return -EINVAL;
  const hi = Math.min(max, xa.capacity - 1);
  for (let i = min; i <= hi; i++) {
    if ((k.i32[xa.slots() + i] as number) === 0) {
      k.i32[xa.slots() + i] = entry;
      return i;
    }
  }
  return -EBUSY;
}

/** xa_store: the previous entry, or -EINVAL / -ENOSPC; storing 0 erases. */
export function* xa_store(k: Kernel, t: KTask, xa: XArray, index: number, entry: number, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* k.call(
    t,
    'xa_store',
    locked(k, t, xa, `xa_store(${xa.name}[${index}], ${entry})`, gfp, entry !== 0, slotFootprint(xa, index, true), () => mutate(xa, k, index, entry, store(k, entry))),
  );
}

/** xa_erase: the entry that was there (0 if none). */
export function* xa_erase(k: Kernel, t: KTask, xa: XArray, index: number): KGen<number> {
  return yield* k.call(
    t,
    'xa_erase',
    locked(k, t, xa, `xa_erase(${xa.name}[${index}])`, 'GFP_ATOMIC', false, slotFootprint(xa, index, true), () => Math.max(0, mutate(xa, k, index, 0, store(k, 0)))),
  );
}

/**
 * xa_cmpxchg: store `entry` only if the current entry is `old`; returns the current entry (equal to `old` when
 * the exchange happened), or -EINVAL / -ENOSPC.
 */
export function* xa_cmpxchg(
  k: Kernel,
  t: KTask,
  xa: XArray,
  index: number,
  old: number,
  entry: number,
  gfp: Gfp = 'GFP_KERNEL',
): KGen<number> {
  return yield* k.call(
    t,
    'xa_cmpxchg',
    locked(k, t, xa, `xa_cmpxchg(${xa.name}[${index}], ${old}, ${entry})`, gfp, entry !== 0, slotFootprint(xa, index, true), () =>
      mutate(xa, k, index, entry, cmpxchg(k, old, entry)),
    ),
  );
}

/** xa_insert: 0, or -EBUSY when the index is occupied, -EINVAL for a 0 entry, -ENOSPC beyond the capacity. */
export function* xa_insert(k: Kernel, t: KTask, xa: XArray, index: number, entry: number, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* k.call(
    t,
    'xa_insert',
    locked(k, t, xa, `xa_insert(${xa.name}[${index}], ${entry})`, gfp, true, slotFootprint(xa, index, true), () =>
      entry === 0 ? -EINVAL : mutate(xa, k, index, entry, insert(k, entry)),
    ),
  );
}

/** xa_alloc: the lowest free index in [min, max] now holding `entry`, or -EBUSY when none is free. */
export function* xa_alloc(k: Kernel, t: KTask, xa: XArray, entry: number, min: number, max: number, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* k.call(
    t,
    'xa_alloc',
    locked(k, t, xa, `xa_alloc(${xa.name}, ${entry})`, gfp, true, rangeFootprint(xa, min, max), () => alloc(k, xa, entry, min, max)),
  );
}

/** xa_destroy: every entry erased. */
export function* xa_destroy(k: Kernel, t: KTask, xa: XArray): KGen {
  yield* k.call(
    t,
    'xa_destroy',
    locked(k, t, xa, `xa_destroy(${xa.name})`, 'GFP_ATOMIC', false, rangeFootprint(xa, 0, xa.capacity - 1), () => {
      k.i32.fill(0, xa.slots(), xa.slots() + xa.capacity);
    }),
  );
}

// ---- with xa_lock held by the caller ----

export function* __xa_store(k: Kernel, t: KTask, xa: XArray, index: number, entry: number, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* k.call(
    t,
    '__xa_store',
    unlocked(k, t, xa, `__xa_store(${xa.name}[${index}], ${entry})`, gfp, entry !== 0, slotFootprint(xa, index, true), () => mutate(xa, k, index, entry, store(k, entry))),
  );
}

export function* __xa_erase(k: Kernel, t: KTask, xa: XArray, index: number): KGen<number> {
  return yield* k.call(
    t,
    '__xa_erase',
    unlocked(k, t, xa, `__xa_erase(${xa.name}[${index}])`, 'GFP_ATOMIC', false, slotFootprint(xa, index, true), () => Math.max(0, mutate(xa, k, index, 0, store(k, 0)))),
  );
}

export function* __xa_cmpxchg(
  k: Kernel,
  t: KTask,
  xa: XArray,
  index: number,
  old: number,
  entry: number,
  gfp: Gfp = 'GFP_KERNEL',
): KGen<number> {
  return yield* k.call(
    t,
    '__xa_cmpxchg',
    unlocked(k, t, xa, `__xa_cmpxchg(${xa.name}[${index}], ${old}, ${entry})`, gfp, entry !== 0, slotFootprint(xa, index, true), () =>
      mutate(xa, k, index, entry, cmpxchg(k, old, entry)),
    ),
  );
}

export function* __xa_insert(k: Kernel, t: KTask, xa: XArray, index: number, entry: number, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* k.call(
    t,
    '__xa_insert',
    unlocked(k, t, xa, `__xa_insert(${xa.name}[${index}], ${entry})`, gfp, true, slotFootprint(xa, index, true), () =>
      entry === 0 ? -EINVAL : mutate(xa, k, index, entry, insert(k, entry)),
    ),
  );
}

export function* __xa_alloc(
  k: Kernel,
  t: KTask,
  xa: XArray,
  entry: number,
  min: number,
  max: number,
  gfp: Gfp = 'GFP_KERNEL',
): KGen<number> {
  return yield* k.call(
    t,
    '__xa_alloc',
    unlocked(k, t, xa, `__xa_alloc(${xa.name}, ${entry})`, gfp, true, rangeFootprint(xa, min, max), () => alloc(k, xa, entry, min, max)),
  );
}
