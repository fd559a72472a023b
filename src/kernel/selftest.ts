// The kernel's own workload, in both runtimes (in the threaded one the tasks really race on shared memory):
// - `locks`: tasks contend on a spinlock and a mutex and update counters they protect with plain read-modify-
//   writes, so a lock that let two holders in would lose updates; `none` is the control without a lock;
// - `rcu`: readers dereference an RCU-published version and check it was not retired under them, while an
//   updater publishes new versions and retires the old one after synchronize_rcu; `rcu-nosync` is the control
//   that retires without waiting for a grace period;
// - `rcu-pair`, `xa-rcu`, `xa-mutex`: benchmark loops (bench/kernel.bench.ts) — rcu_read_lock/unlock pairs, and
//   xa_load by readers under RCU or under a mutex while one updater stores.
// `driver` actors spawn the mode's tasks on demand (`go n`), one driver per worker in the benchmarks.
import type { Wire, Workload } from '../runtime/model.js';
import { taskDriver } from './driver.js';
import type { KTask } from './context.js';
import { Kernel, type KGen } from './kernel.js';
import { staticsOffset } from './memory.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from './mutex.js';
import { defineRcuPointer, rcu_access_pointer, rcu_init, rcu_assign_pointer, rcu_dereference, rcu_read_lock, rcu_read_unlock, synchronize_rcu } from './rcu.js';
import { defineSpinlock, type Spinlock, spin_lock, spin_unlock } from './spinlock.js';
import { defineXArray, xa_load, xa_store } from './xarray.js';

/**
 * 'none' is the negative control: the same read-modify-write with a preemption point and no lock; 'racy' the
 * same again with the read and the write each a point on the counter's word (k.stepOn): a lost update the
 * threaded runtime records in the word's access order, so that its replay loses the same updates.
 */
export type LockChoice = 'spinlock' | 'mutex' | 'both' | 'none' | 'racy';
export type Mode = 'locks' | 'rcu' | 'rcu-nosync' | 'rcu-pair' | 'xa-rcu' | 'xa-mutex';
const MODES: readonly Mode[] = ['locks', 'rcu', 'rcu-nosync', 'rcu-pair', 'xa-rcu', 'xa-mutex'];
const LOCKS: readonly LockChoice[] = ['spinlock', 'mutex', 'both', 'none', 'racy'];
const XA_SLOTS = 64;

interface Params {
  readonly mode: Mode;
  readonly tasks: number;
  readonly iterations: number;
  readonly lock: LockChoice;
  readonly checkers: boolean;
  readonly drivers: number;
  /** Planted bug: the first locker returns still holding the mutex, so the others hang. */
  readonly leakLock: boolean;
}

function params(raw: Readonly<Record<string, Wire>>): Params {
  const n = (k: string, d: number): number => (typeof raw[k] === 'number' ? (raw[k] as number) : d);
  const mode = MODES.find((m) => m === raw.mode) ?? 'locks';
  if (raw.mode !== undefined && mode !== raw.mode) throw new RangeError(`kernel-selftest: unknown mode ${String(raw.mode)} (${MODES.join(', ')})`);
  const lock = LOCKS.find((c) => c === raw.lock) ?? 'both';
  const p = { mode, tasks: n('tasks', 4), iterations: n('iterations', 100), lock, checkers: raw.checkers !== false, drivers: n('drivers', 0), leakLock: raw.leakLock === true };
  if (!Number.isInteger(p.tasks) || p.tasks < 0 || p.tasks > 16) throw new RangeError(`kernel-selftest: tasks must be 0..16, got ${p.tasks}`);
  if (!Number.isInteger(p.iterations) || p.iterations < 0) throw new RangeError(`kernel-selftest: iterations must be ≥ 0, got ${p.iterations}`);
  return p;
}

export function kernelSelftestWorkload(raw: Readonly<Record<string, Wire>>): Workload {
  const p = params(raw);
  const off = { might_sleep: false, lockdep: false, kasan: false, rcu: false, hung_task: false, deadlock: false, refcount: false, leaks: false };
  const k = new Kernel(p.checkers ? {} : { checkers: off });
  const statics = staticsOffset(k.layout, k.base);
  const s = defineSpinlock(k, 'selftest_spinlock');
  const m = defineMutex(k, 'selftest_mutex');
  const spinCount = k.statics.alloc(1, 'spin_count');
  const mutexCount = k.statics.alloc(1, 'mutex_count');
  const violations = k.statics.alloc(1, 'rcu_violations');
  const reads = k.statics.alloc(1, 'reads');
  const rcuModes = p.mode === 'rcu' || p.mode === 'rcu-nosync' || p.mode === 'rcu-pair';
  const gp = rcuModes ? defineRcuPointer(k, 'selftest_gp', 'kernel/selftest.ts:0') : undefined;
  const retired = p.mode === 'rcu' || p.mode === 'rcu-nosync' ? k.statics.alloc(p.iterations + 2, 'retired') : 0;
  const xa = p.mode.startsWith('xa-') ? defineXArray(k, 'selftest_xa', XA_SLOTS, { protectedBy: [m] }) : undefined;
  if (xa) rcu_init(k);
  const count = (t: KTask, word: number): KGen => k.step(t, 'count', () => void Atomics.add(k.i32, k.mem.statics + word, 1));

  k.task('locker', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : p.iterations;
    if (p.leakLock && t.pid === 0) {
      yield* mutex_lock(k, t, m);
      return;
    }
    for (let i = 0; i < n; i++) yield* criticalSections(k, t, p.lock, s, m, spinCount, mutexCount);
  });
  k.task('rcu_reader', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : p.iterations;
    for (let i = 0; i < n; i++) {
      yield* rcu_read_lock(k, t);
      if (gp && p.mode !== 'rcu-pair') {
        const v = yield* rcu_dereference(k, t, gp);
        // Use the object: it must not have been retired while we are inside the read-side section.
        yield* k.step(t, 'use', () => {
          if (v > 0 && Atomics.load(k.i32, k.mem.statics + retired + v) === 1) Atomics.add(k.i32, k.mem.statics + violations, 1);
        });
      }
      yield* rcu_read_unlock(k, t);
    }
  });
  k.task('rcu_updater', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : p.iterations;
    if (!gp) return;
    for (let v = 1; v <= n + 1; v++) {
      const old = rcu_access_pointer(k, gp);
      yield* rcu_assign_pointer(k, t, gp, v);
      if (p.mode === 'rcu') yield* synchronize_rcu(k, t);
      if (old > 0) yield* k.step(t, 'retire', () => void Atomics.store(k.i32, k.mem.statics + retired + old, 1));
    }
  });
  k.task('xa_reader', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : p.iterations;
    if (!xa) return;
    for (let i = 0; i < n; i++) {
      if (p.mode === 'xa-rcu') yield* rcu_read_lock(k, t);
      else yield* mutex_lock(k, t, m);
      yield* xa_load(k, t, xa, i % XA_SLOTS);
      if (p.mode === 'xa-rcu') yield* rcu_read_unlock(k, t);
      else yield* mutex_unlock(k, t, m);
    }
    yield* count(t, reads);
  });
  k.task('xa_updater', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : p.iterations;
    if (!xa) return;
    for (let i = 0; i < n; i++) {
      if (p.mode === 'xa-mutex') yield* mutex_lock(k, t, m);
      yield* xa_store(k, t, xa, i % XA_SLOTS, i + 1, 'GFP_ATOMIC');
      if (p.mode === 'xa-mutex') yield* mutex_unlock(k, t, m);
    }
  });

  // What each driver spawns per `go`, and the run's initial tasks.
  const readerKind = p.mode === 'locks' ? 'locker' : p.mode.startsWith('xa-') ? 'xa_reader' : 'rcu_reader';
  const updaterKind = p.mode === 'rcu' || p.mode === 'rcu-nosync' ? 'rcu_updater' : p.mode.startsWith('xa-') ? 'xa_updater' : undefined;
  const initialTasks = Array.from({ length: p.tasks }, () => ({ task: readerKind, args: p.iterations }));
  if (updaterKind && p.tasks > 0) initialTasks[0] = { task: updaterKind, args: p.iterations };
  const actors = Array.from({ length: p.drivers }, (_, i) => ({
    name: `driver/${i}`,
    logic: taskDriver,
    // The first driver runs the mode's updater (if it has one), every other one a reader.
    input: { kind: i === 0 && updaterKind ? updaterKind : readerKind },
  }));

  return {
    name: 'kernel-selftest',
    params: { ...p },
    actors,
    initial: [],
    initialTasks,
    sharedWords: k.words,
    hotEvents: { go: ['n'] },
    tasks: k.taskFactories,
    monitor: k,
    check: (finals, shared) => {
      const word = (off: number): number => shared[statics + off] as number;
      let spawned = 0;
      for (const f of finals) spawned += (f.context as { loops?: number } | null)?.loops ?? 0;
      const problems: string[] = [];
      if (p.mode === 'locks' && spawned === 0) {
        const loops = p.tasks * p.iterations;
        const spinExpected = p.lock === 'mutex' ? 0 : loops;
        const mutexExpected = p.lock === 'mutex' || p.lock === 'both' ? loops : 0;
        if (word(spinCount) !== spinExpected) problems.push(`${p.lock === 'none' || p.lock === 'racy' ? 'unlocked' : 'spinlock'} counter ${word(spinCount)}, expected ${spinExpected}: lost updates`);
        if (word(mutexCount) !== mutexExpected) problems.push(`mutex counter ${word(mutexCount)}, expected ${mutexExpected}: lost updates`);
      }
      if (word(violations) > 0) problems.push(`${word(violations)} RCU reads used a version retired while they were inside their read-side section`);
      return {
        ok: problems.length === 0,
        problems,
        counters: { spinlock: word(spinCount), mutex: word(mutexCount), drivers: spawned, rcuViolations: word(violations), readers: word(reads) },
      };
    },
  };
}

/** One critical section under each chosen lock, each incrementing the counter it protects. */
function* criticalSections(k: Kernel, t: KTask, lock: LockChoice, s: Spinlock, m: Mutex, spinCount: number, mutexCount: number): KGen {
  const i32 = k.i32;
  if (lock === 'none') {
    const a = k.mem.statics + spinCount;
    const v = i32[a] as number;
    yield* k.step(t, 'cond_resched()', () => undefined);
    i32[a] = v + 1;
    return;
  }
  if (lock === 'racy') {
    const a = k.mem.statics + spinCount;
    const v = yield* k.stepOn(t, 'READ_ONCE(spin_count)', [a], () => i32[a] as number);
    yield* k.stepOn(t, 'WRITE_ONCE(spin_count)', [a], () => {
      i32[a] = v + 1;
    });
    return;
  }
  if (lock === 'spinlock' || lock === 'both') {
    yield* spin_lock(k, t, s);
    const a = k.mem.statics + spinCount;
    i32[a] = (i32[a] as number) + 1;
    yield* spin_unlock(k, t, s);
  }
  if (lock === 'mutex' || lock === 'both') {
    yield* mutex_lock(k, t, m);
    const a = k.mem.statics + mutexCount;
    i32[a] = (i32[a] as number) + 1;
    yield* mutex_unlock(k, t, m);
  }
}
