// Shared by the kernel tests: a small kernel, a task-only workload, one deterministic execution, and test-only
// shared words (written inside points, so the runtime orders them like any other shared state).
import type { KTask } from '../src/kernel/context.js';
import { Kernel, type KernelOptions, type KGen } from '../src/kernel/kernel.js';
import { kernelWorkload } from '../src/kernel/workload.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Workload } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { PctScheduler } from '../src/runtime/schedulers/pct.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';

const SMALL = { stringWords: 1 << 15, stringSlots: 1 << 10, staticWords: 1 << 12, arenaWords: 1 << 10, lockdepWords: 1 << 10 };

export function kernel(opts: KernelOptions = {}): Kernel {
  return new Kernel({ layout: SMALL, ...opts });
}

/** A workload running one task of each given kind, the i-th with args i. */
export function tasksWorkload(k: Kernel, name: string, tasks: string[]): Workload {
  return kernelWorkload(
    k,
    name,
    tasks.map((task, i) => ({ task, args: i })),
  );
}

/** One execution: random scheduling, or PCT with depth 3. */
export function runOnce(w: Workload, seed: number, pct = false, keepGoing = false): RunResult {
  const s = pct ? new PctScheduler(seed, 3) : new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: w, seed, scheduler: s, keepGoing });
}

export function words(k: Kernel, n: number) {
  const off = k.statics.alloc(n, 'test words');
  const at = (i: number): number => k.mem.statics + off + i;
  return {
    addr: at,
    get: (i: number): number => Atomics.load(k.i32, at(i)),
    *set(t: KTask, i: number, v: number): KGen {
      yield* k.step(t, `set[${i}]=${v}`, () => {
        Atomics.store(k.i32, at(i), v);
      });
    },
    *add(t: KTask, i: number, v: number): KGen<number> {
      return yield* k.step(t, `add[${i}]`, () => Atomics.add(k.i32, at(i), v) + v);
    },
    *until(t: KTask, what: string, cond: () => boolean): KGen {
      yield k.point(t, `wait ${what}`, cond, () => undefined, { what });
    },
  };
}

export function* pause(k: Kernel, t: KTask, n: number): KGen {
  for (let i = 0; i < n; i++) yield* k.step(t, 'cpu_relax', () => undefined);
}
