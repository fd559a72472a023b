// What every sleeping or spinning lock shares: an identity (a word of shared memory), a lockdep class, and the
// bookkeeping of the locks a task holds. The lock word holds the owner's task id (0: free), so a waiter can
// name who holds what it waits for. It also answers "does a task named T hold a lock of class L now?" for every
// thread at once — the race scripts' `while` constraint (a step that starts only while, say, proc0 holds
// &group->mutex): a watch declared with the workload counts, in shared memory, the matching holders and their
// acquisitions; the acquire and release points keep the counts, so a waiter blocks on a word instead of polling
// the tasks.
import { type Footprint, type FootprintFn, read } from '../runtime/footprint.js';
import type { StepEnv } from '../runtime/task.js';
import type { HeldLock, KTask, LockKind } from './context.js';
import type { Kernel, KGen, Waits } from './kernel.js';
import { struct, word } from './struct.js';

/** spinlock_t and struct mutex as the model keeps them: one word, the owner's task id (0: unlocked). */
export const SPINLOCK = struct('spinlock', {
  owner: word, // the kernel's raw_spinlock keeps owner (with CONFIG_DEBUG_SPINLOCK) beside the lock word
});
export const MUTEX = struct('mutex', {
  owner: word, // mutex->owner: the task_struct, here its id
});

export interface LockRef {
  /** Lockdep class name: `&group->mutex`, `ioasid_allocator_lock`. */
  readonly name: string;
  /** Absolute word offset of the lock in shared memory. */
  addr(): number;
}

/** A lock declared with the workload: its word is in the kernel's static region. */
export function staticLock(k: Kernel, name: string, words = 1): LockRef {
  const off = k.statics.alloc(words, name);
  const r = registry(k);
  r.names.add(name);
  const l: LockRef = { name, addr: () => k.mem.statics + off };
  r.statics.set(name, [...(r.statics.get(name) ?? []), l]);
  return l;
}

/** Every static lock of class `name` (DEFINE_SPINLOCK / DEFINE_MUTEX), in declaration order. */
export function staticLocksNamed(k: Kernel, name: string): readonly LockRef[] {
  return registries.get(k)?.statics.get(name) ?? [];
}

/** A lock inside a dynamically allocated object (slab), at `field` words from its start. */
export function objectLock(k: Kernel, name: string, obj: number, field: number): LockRef {
  void k;
  return { name, addr: () => obj + field };
}

const labels = new WeakMap<LockRef, Map<string, string>>();

/** `op(name)`, built once per lock and op: labels are hashed into the trace at every step. */
export function lockLabel(l: LockRef, op: string): string {
  let m = labels.get(l);
  if (!m) {
    m = new Map();
    labels.set(l, m);
  }
  let s = m.get(op);
  if (s === undefined) {
    s = `${op}(${l.name})`;
    m.set(op, s);
  }
  return s;
}

/** A lock's acquire points' Waits, by operation: made once per lock (and kernel and address), not per point. */
interface LockWaits {
  readonly k: Kernel;
  readonly addr: number;
  readonly byOp: Map<string, Waits>;
}
const lockWaitsOf = new WeakMap<LockRef, LockWaits>();

/**
 * The Waits of an acquire point of l by `op`, made by `make` the first time: a point is made at every step, and
 * what it waits on only names the lock and reads its words (a holder function, the words watched).
 */
export function lockWaits(k: Kernel, l: LockRef, op: string, make: (k: Kernel, l: LockRef, addr: number) => Waits): Waits {
  const addr = l.addr();
  let c = lockWaitsOf.get(l);
  if (c === undefined || c.k !== k || c.addr !== addr) {
    c = { k, addr, byOp: new Map() };
    lockWaitsOf.set(l, c);
  }
  let w = c.byOp.get(op);
  if (w === undefined) {
    w = make(k, l, addr);
    c.byOp.set(op, w);
  }
  return w;
}

/** The task holding l (0: none): the owner word of a spinlock or a mutex (the same word of both layouts). */
export function owner(k: Kernel, l: LockRef): number {
  return k.view(MUTEX).owner.READ_ONCE(l.addr());
}

/** Record that t now holds l (call inside the acquiring point's perform, so lockdep sees it in order). */
export function noteAcquired(k: Kernel, t: KTask, l: LockRef, kind: LockKind, env: StepEnv): HeldLock {
  const h: HeldLock = { addr: l.addr(), name: l.name, classId: k.lockdep.classOf(l.name), kind, site: t.chain() };
  k.lockdep.acquired(t, h, env);
  t.held.push(h);
  countHolder(k, t, l.name, 1);
  return h;
}

/** Drop l from t's held locks; false (and a lockdep report) when t does not hold it. */
export function noteReleased(k: Kernel, t: KTask, l: LockRef): boolean {
  const addr = l.addr();
  for (let i = t.held.length - 1; i >= 0; i--) {
    if (t.held[i]?.addr === addr) {
      t.held.splice(i, 1);
      countHolder(k, t, l.name, -1);
      return true;
    }
  }
  k.lockdep.badUnlock(t, l.name);
  return false;
}

// ---- footprints (docs/threaded.md): what the acquire and release points touch in shared memory ----

/** A footprint of no word. */
const NOTHING: Footprint = Object.freeze([]);

/**
 * noteAcquired()'s share of its point's footprint: lockdep's (lockdepAcquireFootprint) and the holder watches'.
 * Undefined when lockdep may write its graph: the point must then declare no footprint (the coarse fallback).
 */
export function noteAcquiredFootprint(k: Kernel, t: KTask, l: LockRef, kind: LockKind): Footprint | undefined {
  const dep = k.lockdep.acquireFootprint(t, l.name, l.addr(), kind);
  if (dep === undefined) return undefined;
  const holders = lockHolderFootprint(k, t, l.name, true);
  return holders.length === 0 ? dep : [...dep, ...holders];
}

/** noteReleased()'s share: the holder watches', or lockdep's bad-unlock report (undefined: the fallback). */
export function noteReleasedFootprint(k: Kernel, t: KTask, l: LockRef): Footprint | undefined {
  const holds = t.holds(l.addr()) !== undefined;
  const dep = k.lockdep.releaseFootprint(holds);
  if (dep === undefined || !holds) return dep;
  return lockHolderFootprint(k, t, l.name, false);
}

/**
 * The footprint of an acquire point of l: its perform touches `words` (the lock's own, computed when they
 * depend on memory) and calls noteAcquired(k, t, l, kind). Undefined (no footprint: the coarse fallback) when
 * lockdep may write its graph there; otherwise computed, as lockdep's share changes when a report in this
 * thread turns it off before the point is performed (see Lockdep.acquireFootprint).
 */
export function acquirePointFootprint(
  k: Kernel,
  t: KTask,
  l: LockRef,
  kind: LockKind,
  words: Footprint | FootprintFn,
): FootprintFn | undefined {
  if (noteAcquiredFootprint(k, t, l, kind) === undefined) return undefined;
  return () => {
    // (Undefined now — lockdep's chain cache only grows, so it should not be — takes the fallback.)
    const note = noteAcquiredFootprint(k, t, l, kind);
    const own = typeof words === 'function' ? words() : words;
    if (note === undefined || own === undefined) return undefined;
    return note.length === 0 ? own : [...own, ...note];
  };
}

/** The footprint of a release point of l writing `words` if t holds l (undefined: the fallback). */
export function releasePointFootprint(k: Kernel, t: KTask, l: LockRef, words: Footprint): Footprint | undefined {
  const note = noteReleasedFootprint(k, t, l);
  if (note === undefined) return undefined;
  return note.length === 0 ? words : [...words, ...note];
}

/** k.stepOn() on `footprint`, or k.step() (the coarse fallback) when it is undefined. */
export function stepOnOrNot<T>(
  k: Kernel,
  t: KTask,
  label: string,
  footprint: Footprint | FootprintFn | undefined,
  perform: (env: StepEnv) => T,
): KGen<T> {
  return footprint === undefined ? k.step(t, label, perform) : k.stepOn(t, label, footprint, perform);
}

// ---- who holds what ----

/** Model: a watch's counts in the static region (no kernel struct: what the race scripts' `while` waits on). */
const LOCK_HOLDER_WATCH = struct('lock_holder_watch', {
  holders: word, // locks of the class held now by matching tasks
  taken: word, // acquisitions by matching tasks so far
});

/** Holders of one lock class counted for tasks whose comm starts with `task`, at `off` in the static region. */
interface Watch {
  readonly task: string;
  readonly off: number;
}

interface Registry {
  /** The lock classes declared with staticLock, by name. */
  readonly names: Set<string>;
  /** The static locks of each class: a patch's DEFINE_MUTEX of a class the model declared too is one more. */
  readonly statics: Map<string, LockRef[]>;
  /** Watches by lock class name; undefined while there is none (the acquire path then costs one lookup). */
  watches: Map<string, Watch[]> | undefined;
}

const registries = new WeakMap<Kernel, Registry>();
/** Watches declared in this thread, any kernel: none (benchmarks, most runs) keeps the acquire path as it was. */
let watching = 0;

function registry(k: Kernel): Registry {
  let r = registries.get(k);
  if (!r) {
    r = { names: new Set(), statics: new Map(), watches: undefined };
    registries.set(k, r);
  }
  return r;
}

/**
 * The holder-watch words countHolder() writes when t takes (or lets go of) a lock of class `name`: none unless a
 * race script watches the class for tasks named like t. Fixed for the run (watches are declared before it).
 */
export function lockHolderFootprint(k: Kernel, t: KTask, name: string, acquire: boolean): Footprint {
  if (watching === 0) return NOTHING;
  const ws = registries.get(k)?.watches?.get(name);
  if (!ws) return NOTHING;
  const v = k.view(LOCK_HOLDER_WATCH);
  const out: number[] = [];
  for (const w of ws) {
    if (!t.comm.startsWith(w.task)) continue;
    const at = k.mem.statics + w.off;
    out.push(v.holders.addr(at));
    if (acquire) out.push(v.taken.addr(at));
  }
  return out;
}

/** Inside the acquire or release point's perform: one more (or one fewer) holder for the watches of this class. */
function countHolder(k: Kernel, t: KTask, name: string, delta: number): void {
  if (watching === 0) return;
  const ws = registries.get(k)?.watches?.get(name);
  if (!ws) return;
  for (const w of ws) {
    if (!t.comm.startsWith(w.task)) continue;
    const at = k.mem.statics + w.off;
    const v = k.view(LOCK_HOLDER_WATCH);
    v.holders.atomic_add(at, delta);
    if (delta > 0) v.taken.atomic_inc(at);
  }
}

/** The lock classes declared so far (statically: the ones a script may name), sorted. */
export function lockNames(k: Kernel): string[] {
  return [...registry(k).names].sort();
}

/** Whether tasks named `task…` hold a lock of class `lock` now, in any thread. */
export interface LockHolderWatch {
  readonly task: string;
  readonly lock: string;
  /** Locks of the class held now by matching tasks (a read of shared memory: legal anywhere). */
  holders(): number;
  /** Acquisitions by matching tasks so far in the run (only grows). */
  taken(): number;
  /** The words holders() and taken() read, as read entries of a footprint (valid once the run is attached). */
  reads(): Footprint;
}

/**
 * Declare, with the workload (identically in every thread, before the run), a watch on the holders of lock class
 * `lock` among the tasks whose comm starts with `task`. The class must have been declared (RangeError naming the
 * known ones otherwise).
 */
export function watchLockHolders(k: Kernel, task: string, lock: string): LockHolderWatch {
  const r = registry(k);
  if (k.attached) throw new Error('lock: watches are declared with the workload, before the run');
  if (task === '') throw new RangeError('lock: a watch needs a task name or prefix');
  if (!r.names.has(lock)) throw new RangeError(`no lock named ${JSON.stringify(lock)} (the model's locks: ${lockNames(k).join(', ')})`);
  const w: Watch = { task, off: k.statics.alloc(LOCK_HOLDER_WATCH.words, `holders of ${lock} named ${task}`) };
  watching++;
  r.watches ??= new Map();
  const list = r.watches.get(lock) ?? [];
  list.push(w);
  r.watches.set(lock, list);
  return {
    task,
    lock,
    holders: () => k.view(LOCK_HOLDER_WATCH).holders.READ_ONCE(k.mem.statics + w.off),
    taken: () => k.view(LOCK_HOLDER_WATCH).taken.READ_ONCE(k.mem.statics + w.off),
    reads: () => {
      const v = k.view(LOCK_HOLDER_WATCH);
      const at = k.mem.statics + w.off;
      return [read(v.holders.addr(at)), read(v.taken.addr(at))];
    },
  };
}

/**
 * Block t until a task the watch matches holds its lock: a scheduling point that becomes ready when one takes
 * it — never a poll — so a run where that never happens ends with the hung-task report saying what t waited
 * for. Ready from the first acquisition after `armed` (w.taken() read in a point of t's, by default the one
 * just performed) on, it stays ready if the holder lets go before t is scheduled (a scheduler may always choose
 * the holder first; a wait that could be missed that way would hang the run instead). `then` runs in the point;
 * the result says whether the lock was still held there.
 */
export function* wait_for_lock_holder(
  k: Kernel,
  t: KTask,
  w: LockHolderWatch,
  label = `while ${w.task} holds ${w.lock}`,
  then?: (env: StepEnv) => void,
  armed = w.taken(),
  /** Every word `then` reads or writes (footprint.ts): without it, a point with a `then` takes the coarse fallback. */
  thenFootprint?: Footprint,
): KGen<boolean> {
  const fp = then === undefined ? w.reads() : thenFootprint === undefined ? undefined : [...w.reads(), ...thenFootprint];
  return (yield k.point(
    t,
    label,
    () => w.holders() > 0 || w.taken() > armed,
    (env) => {
      then?.(env);
      return w.holders() > 0;
    },
    { what: `a task named ${w.task}… to hold ${w.lock}` },
    fp,
  )) as boolean;
}
