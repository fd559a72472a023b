// What every sleeping or spinning lock shares: an identity (a word of shared memory), a lockdep class, and the
// bookkeeping of the locks a task holds. The lock word holds the owner's task id (0: free), so a waiter can
// name who holds what it waits for.
import type { StepEnv } from '../runtime/task.js';
import type { HeldLock, KTask, LockKind } from './context.js';
import type { Kernel } from './kernel.js';

export interface LockRef {
  /** Lockdep class name: `&group->mutex`, `ioasid_allocator_lock`. */
  readonly name: string;
  /** Absolute word offset of the lock in shared memory. */
  addr(): number;
}

/** A lock declared with the workload: its word is in the kernel's static region. */
export function staticLock(k: Kernel, name: string, words = 1): LockRef {
  const off = k.statics.alloc(words, name);
  return { name, addr: () => k.mem.statics + off };
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

export function owner(k: Kernel, l: LockRef): number {
  return Atomics.load(k.i32, l.addr());
}

/** Record that t now holds l (call inside the acquiring point's perform, so lockdep sees it in order). */
export function noteAcquired(k: Kernel, t: KTask, l: LockRef, kind: LockKind, env: StepEnv): HeldLock {
  const h: HeldLock = { addr: l.addr(), name: l.name, classId: k.lockdep.classOf(l.name), kind, site: t.chain() };
  k.lockdep.acquired(t, h, env);
  t.held.push(h);
  return h;
}

/** Drop l from t's held locks; false (and a lockdep report) when t does not hold it. */
export function noteReleased(k: Kernel, t: KTask, l: LockRef): boolean {
  const addr = l.addr();
  for (let i = t.held.length - 1; i >= 0; i--) {
    if (t.held[i]?.addr === addr) {
      t.held.splice(i, 1);
      return true;
    }
  }
  k.lockdep.badUnlock(t, l.name);
  return false;
}
