// refcount_t and kref (lib/refcount.c, include/linux/refcount.h, include/linux/kref.h): a reference count in one
// word of shared memory, static or inside a slab object. Every operation is a scheduling point — the order of
// racing gets and puts is exactly what decides a use-after-free — and misuse is reported in the kernel's
// words, with the counter saturated the way the kernel saturates it (REFCOUNT_SATURATED: it then stays put,
// leaking the object rather than freeing it under a user). A counter inside a slab object is checked by KASAN
// on every access, so a get on an object already freed is a slab-use-after-free report.
import { read } from '../runtime/footprint.js';
import type { Wire } from '../runtime/model.js';
import type { StepEnv } from '../runtime/task.js';
import type { KTask } from './context.js';
import { callTrace, heldLocksLines, taskFinding } from './findings.js';
import type { Kernel, KGen } from './kernel.js';
import { type Mutex, mutex_lock, mutex_unlock } from './mutex.js';
import { kasanAccess } from './slab.js';
import { type Spinlock, spin_lock, spin_unlock } from './spinlock.js';
import { kasanFootprint } from './slab.js';

/** INT_MIN / 2: far from both 0 and overflow, so a saturated counter never reaches either again. */
export const REFCOUNT_SATURATED = -0x40000000;
export const REFCOUNT_MAX = 0x7fffffff;

export interface RefcountRef {
  /** What the report calls it: `domain->users`. */
  readonly name: string;
  /** Absolute word offset of the counter. */
  addr(): number;
  /** When the counter lives in a slab object: the object and the field, for KASAN. */
  readonly obj?: number;
  readonly field?: number;
}

export type Kref = RefcountRef;

/** A refcount_t in the kernel's static memory (declared with the workload). */
export function defineRefcount(k: Kernel, name: string): RefcountRef {
  const off = k.statics.alloc(1, name);
  state(k);
  return { name, addr: () => k.mem.statics + off };
}

/** The refcount_t at word `field` of slab object `obj`. */
export function objectRefcount(k: Kernel, name: string, obj: number, field: number): RefcountRef {
  void k;
  return { name, addr: () => obj + field, obj, field };
}

export const defineKref = defineRefcount;
export const objectKref = objectRefcount;

/** Counters already reported in this run: the kernel's WARN_ONCE, per counter rather than per call site. */
const reported = new WeakMap<Kernel, Set<number>>();

function state(k: Kernel): Set<number> {
  let s = reported.get(k);
  if (!s) {
    const set = new Set<number>();
    s = set;
    reported.set(k, set);
    k.onAttach(() => set.clear());
  }
  return s;
}

type Saturation = 'ADD_NOT_ZERO_OVF' | 'ADD_OVF' | 'ADD_UAF' | 'SUB_UAF' | 'DEC_LEAK';

const WARNINGS: Readonly<Record<Saturation, readonly [string, number]>> = {
  ADD_NOT_ZERO_OVF: ['saturated; leaking memory', 19],
  ADD_OVF: ['saturated; leaking memory', 22],
  ADD_UAF: ['addition on 0; use-after-free', 25],
  SUB_UAF: ['underflow; use-after-free', 28],
  DEC_LEAK: ['decrement hit 0; leaking memory', 31],
};

/** refcount_warn_saturate(): saturate the counter and WARN (once per counter per run). */
function warnSaturate(k: Kernel, t: KTask, r: RefcountRef, how: Saturation, op: string, old: number): void {
  const addr = r.addr();
  k.i32[addr] = REFCOUNT_SATURATED;
  if (!k.enabled('refcount')) return;
  const seen = state(k);
  if (seen.has(addr)) return;
  seen.add(addr);
  const [msg, line] = WARNINGS[how];
  const title = `refcount_t: ${msg}.`;
  const body = [
    `WARNING: PID: ${t.pid} at lib/refcount.c:${line} refcount_warn_saturate`,
    `Comm: ${t.comm} Not tainted (iommu-sim)`,
    'RIP: refcount_warn_saturate',
    `iommu-sim: ${op}(${r.name}) on a counter of ${old}; it is now saturated`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('refcount', t, t.lastStep, title, body));
}

/** KASAN for a counter inside an object; false when the word is not there to touch at all. */
function reachable(k: Kernel, t: KTask, r: RefcountRef, write: boolean): boolean {
  return r.obj === undefined ? true : kasanAccess(k, t, r.obj, r.field ?? 0, write);
}

/**
 * An operation's footprint: the counter (a saturation rewrites it too) and, in a slab object, KASAN's reads —
 * computed, as what KASAN reads depends on the object's state.
 */
function footprint(k: Kernel, r: RefcountRef, write: boolean): () => number[] {
  return () => {
    const out = [write ? r.addr() : read(r.addr())];
    if (r.obj !== undefined) kasanFootprint(k, r.obj, r.field ?? 0, out);
    return out;
  };
}

function op<T>(
  k: Kernel,
  t: KTask,
  label: string,
  r: RefcountRef,
  write: boolean,
  dflt: T,
  body: (addr: number, old: number, env: StepEnv) => T,
): KGen<T> {
  return k.stepOn(t, `${label}(${r.name})`, footprint(k, r, write), (env) => {
    if (!reachable(k, t, r, write)) return dflt;
    const addr = r.addr();
    return body(addr, k.i32[addr] as number, env);
  });
}

export function* refcount_set(k: Kernel, t: KTask, r: RefcountRef, n: number): KGen {
  yield* op(k, t, 'refcount_set', r, true, undefined, (addr) => {
    k.i32[addr] = n;
  });
}

export function* refcount_read(k: Kernel, t: KTask, r: RefcountRef): KGen<number> {
  return yield* op(k, t, 'refcount_read', r, false, 0, (_addr, old) => old);
}

/** refcount_add(i, r): "addition on 0" when the object was already on its way out. */
export function* refcount_add(k: Kernel, t: KTask, r: RefcountRef, i: number): KGen {
  yield* op(k, t, 'refcount_add', r, true, undefined, (addr, old) => {
    const sum = old + i;
    k.i32[addr] = sum | 0;
    if (old === 0) warnSaturate(k, t, r, 'ADD_UAF', 'refcount_add', old);
    else if (old < 0 || sum > REFCOUNT_MAX) warnSaturate(k, t, r, 'ADD_OVF', 'refcount_add', old);
  });
}

export function* refcount_inc(k: Kernel, t: KTask, r: RefcountRef): KGen {
  yield* op(k, t, 'refcount_inc', r, true, undefined, (addr, old) => {
    const sum = old + 1;
    k.i32[addr] = sum | 0;
    if (old === 0) warnSaturate(k, t, r, 'ADD_UAF', 'refcount_inc', old);
    else if (old < 0 || sum > REFCOUNT_MAX) warnSaturate(k, t, r, 'ADD_OVF', 'refcount_inc', old);
  });
}

/** refcount_add_not_zero: false (and no change) when the count is 0 — the lookup lost the race with the last put. */
export function* refcount_add_not_zero(k: Kernel, t: KTask, r: RefcountRef, i: number): KGen<boolean> {
  return yield* op(k, t, 'refcount_add_not_zero', r, true, false, (addr, old) => {
    if (old === 0) return false;
    const sum = old + i;
    k.i32[addr] = sum | 0;
    if (old < 0 || sum > REFCOUNT_MAX) warnSaturate(k, t, r, 'ADD_NOT_ZERO_OVF', 'refcount_add_not_zero', old);
    return true;
  });
}

export function* refcount_inc_not_zero(k: Kernel, t: KTask, r: RefcountRef): KGen<boolean> {
  return yield* refcount_add_not_zero(k, t, r, 1);
}

/** refcount_sub_and_test: true when this put dropped the last reference (the caller frees). */
export function* refcount_sub_and_test(k: Kernel, t: KTask, r: RefcountRef, i: number): KGen<boolean> {
  return yield* op(k, t, 'refcount_sub_and_test', r, true, false, (addr, old) => {
    const diff = old - i;
    k.i32[addr] = diff | 0;
    if (old > 0 && old === i) return true;
    if (old <= 0 || diff < 0) warnSaturate(k, t, r, 'SUB_UAF', 'refcount_sub_and_test', old);
    return false;
  });
}

export function* refcount_dec_and_test(k: Kernel, t: KTask, r: RefcountRef): KGen<boolean> {
  return yield* refcount_sub_and_test(k, t, r, 1);
}

/** refcount_dec: a put that must never be the last one ("decrement hit 0; leaking memory"). */
export function* refcount_dec(k: Kernel, t: KTask, r: RefcountRef): KGen {
  yield* op(k, t, 'refcount_dec', r, true, undefined, (addr, old) => {
    k.i32[addr] = (old - 1) | 0;
    if (old <= 1) warnSaturate(k, t, r, 'DEC_LEAK', 'refcount_dec', old);
  });
}

/** refcount_dec_not_one: decrement unless the count is 1 (then false: the caller takes the slow path). */
export function* refcount_dec_not_one(k: Kernel, t: KTask, r: RefcountRef): KGen<boolean> {
  return yield* op(k, t, 'refcount_dec_not_one', r, true, true, (addr, old) => {
    if (old === REFCOUNT_SATURATED) return true;
    if (old === 1) return false;
    if (old <= 0) {
      warnSaturate(k, t, r, 'SUB_UAF', 'refcount_dec_not_one', old);
      return true;
    }
    k.i32[addr] = old - 1;
    return true;
  });
}

/** refcount_dec_and_mutex_lock: true, with `m` held, when this put dropped the last reference. */
export function* refcount_dec_and_mutex_lock(k: Kernel, t: KTask, r: RefcountRef, m: Mutex): KGen<boolean> {
  if (yield* refcount_dec_not_one(k, t, r)) return false;
  yield* mutex_lock(k, t, m);
  if (!(yield* refcount_dec_and_test(k, t, r))) {
    yield* mutex_unlock(k, t, m);
    return false;
  }
  return true;
}

/** refcount_dec_and_lock: true, with `l` held, when this put dropped the last reference. */
export function* refcount_dec_and_lock(k: Kernel, t: KTask, r: RefcountRef, l: Spinlock): KGen<boolean> {
  if (yield* refcount_dec_not_one(k, t, r)) return false;
  yield* spin_lock(k, t, l);
  if (!(yield* refcount_dec_and_test(k, t, r))) {
    yield* spin_unlock(k, t, l);
    return false;
  }
  return true;
}

// ---- kref ----

export function* kref_init(k: Kernel, t: KTask, kr: Kref): KGen {
  yield* refcount_set(k, t, kr, 1);
}

export function* kref_read(k: Kernel, t: KTask, kr: Kref): KGen<number> {
  return yield* refcount_read(k, t, kr);
}

export function* kref_get(k: Kernel, t: KTask, kr: Kref): KGen {
  yield* refcount_inc(k, t, kr);
}

/** kref_get_unless_zero: a lookup's get, which fails once the last put has happened. */
export function* kref_get_unless_zero(k: Kernel, t: KTask, kr: Kref): KGen<boolean> {
  return yield* refcount_inc_not_zero(k, t, kr);
}

/**
 * What kref_put runs on the last put: a kernel code path run by the putting task (as the kernel calls
 * release()), or the kind of a task to spawn with `args` (a release deferred to a work item or RCU callback).
 */
export type KrefRelease = ((t: KTask) => KGen) | string;

/** kref_put: true when this put released the object. */
export function* kref_put(k: Kernel, t: KTask, kr: Kref, release: KrefRelease, args: Wire = null): KGen<boolean> {
  const last = yield* op(k, t, 'kref_put', kr, true, false, (addr, old, env) => {
    const diff = old - 1;
    k.i32[addr] = diff | 0;
    if (old === 1) {
      if (typeof release === 'string') env.spawn(release, args);
      return true;
    }
    if (old <= 0) warnSaturate(k, t, kr, 'SUB_UAF', 'kref_put', old);
    return false;
  });
  if (last && typeof release !== 'string') yield* release(t);
  return last;
}
