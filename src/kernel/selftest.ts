// The kernel's own workload: tasks contending on a spinlock and a mutex and updating counters they protect
// with plain (non-atomic) read-modify-writes, so a lock that let two holders in at once would lose updates.
// Runs in both runtimes; in the threaded one the tasks really race on the lock words in shared memory. Also
// the benchmark workload of bench/kernel.bench.ts: `driver` actors spawn `n`-iteration loops on demand.
import { assign, emit, setup } from 'xstate';
import { type Effect, spawnEffect, type Wire, type Workload } from '../runtime/model.js';
import type { KTask } from './context.js';
import { Kernel, type KGen } from './kernel.js';
import { staticsOffset } from './memory.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from './mutex.js';
import { defineSpinlock, type Spinlock, spin_lock, spin_unlock } from './spinlock.js';

/** 'none' is the negative control: the same read-modify-write with a preemption point and no lock. */
export type LockChoice = 'spinlock' | 'mutex' | 'both' | 'none';

interface Params {
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
  const choices: readonly LockChoice[] = ['spinlock', 'mutex', 'both', 'none'];
  const lock: LockChoice = choices.find((c) => c === raw.lock) ?? 'both';
  const p = { tasks: n('tasks', 4), iterations: n('iterations', 100), lock, checkers: raw.checkers !== false, drivers: n('drivers', 0), leakLock: raw.leakLock === true };
  if (!Number.isInteger(p.tasks) || p.tasks < 0 || p.tasks > 16) throw new RangeError(`kernel-selftest: tasks must be 0..16, got ${p.tasks}`);
  if (!Number.isInteger(p.iterations) || p.iterations < 0) throw new RangeError(`kernel-selftest: iterations must be ≥ 0, got ${p.iterations}`);
  return p;
}

/** One critical section under each chosen lock, each incrementing the counter it protects. */
function* criticalSections(k: Kernel, t: KTask, p: Params, s: Spinlock, m: Mutex, spinCount: number, mutexCount: number): KGen {
  const i32 = k.i32;
  if (p.lock === 'none') {
    const a = k.mem.statics + spinCount;
    const v = i32[a] as number;
    yield* k.step(t, 'cond_resched()', () => undefined);
    i32[a] = v + 1;
    return;
  }
  if (p.lock === 'spinlock' || p.lock === 'both') {
    yield* spin_lock(k, t, s);
    const a = k.mem.statics + spinCount;
    i32[a] = (i32[a] as number) + 1;
    yield* spin_unlock(k, t, s);
  }
  if (p.lock === 'mutex' || p.lock === 'both') {
    yield* mutex_lock(k, t, m);
    const a = k.mem.statics + mutexCount;
    i32[a] = (i32[a] as number) + 1;
    yield* mutex_unlock(k, t, m);
  }
}

const driver = setup({
  types: { context: {} as { loops: number }, events: {} as { type: 'go'; n: number }, emitted: {} as Effect },
}).createMachine({
  context: { loops: 0 },
  on: {
    go: {
      actions: [
        assign({ loops: ({ context }) => context.loops + 1 }),
        emit(({ event }) => spawnEffect('locker', event.n)),
      ],
    },
  },
});

export function kernelSelftestWorkload(raw: Readonly<Record<string, Wire>>): Workload {
  const p = params(raw);
  const off = p.checkers ? {} : { might_sleep: false, lockdep: false, kasan: false, rcu: false, hung_task: false, deadlock: false, refcount: false, leaks: false };
  const k = new Kernel({ checkers: off });
  const s = defineSpinlock(k, 'selftest_spinlock');
  const m = defineMutex(k, 'selftest_mutex');
  const spinCount = k.statics.alloc(1, 'spin_count');
  const mutexCount = k.statics.alloc(1, 'mutex_count');
  k.task('locker', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : p.iterations;
    if (p.leakLock && t.pid === 0) {
      yield* mutex_lock(k, t, m);
      return;
    }
    for (let i = 0; i < n; i++) yield* criticalSections(k, t, p, s, m, spinCount, mutexCount);
  });
  return {
    name: 'kernel-selftest',
    params: { ...p },
    actors: Array.from({ length: p.drivers }, (_, i) => ({ name: `driver/${i}`, logic: driver })),
    initial: [],
    initialTasks: Array.from({ length: p.tasks }, () => ({ task: 'locker', args: p.iterations })),
    sharedWords: k.words,
    hotEvents: { go: ['n'] },
    tasks: k.taskFactories,
    monitor: k,
    check: (finals, shared) => {
      const loops = p.tasks * p.iterations;
      let spawned = 0;
      for (const f of finals) spawned += (f.context as { loops?: number } | null)?.loops ?? 0;
      const statics = staticsOffset(k.layout, k.base);
      const spins = shared[statics + spinCount] as number;
      const mutexes = shared[statics + mutexCount] as number;
      const problems: string[] = [];
      if (spawned === 0) {
        const spinExpected = p.lock === 'mutex' ? 0 : loops;
        const mutexExpected = p.lock === 'mutex' || p.lock === 'both' ? loops : 0;
        if (spins !== spinExpected) problems.push(`${p.lock === 'none' ? 'unlocked' : 'spinlock'} counter ${spins}, expected ${spinExpected}: lost updates`);
        if (mutexes !== mutexExpected) problems.push(`mutex counter ${mutexes}, expected ${mutexExpected}: lost updates`);
      }
      return { ok: problems.length === 0, problems, counters: { spinlock: spins, mutex: mutexes, drivers: spawned } };
    },
  };
}

