// The kernel suite (issue #3): what the simulated kernel's primitives cost under the threaded runtime —
// spinlock and mutex acquisitions uncontended (one worker) and contended (two workers racing on the same lock
// word), and the same workload with every checker on vs off. Each iteration injects `go n` into driver actors
// that spawn lock loops, and waits until the run is quiescent.
import '../src/kernel/workloads.js';
import { ThreadedRuntime } from '../src/runtime/threaded.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { type BenchResult, FULL_BUDGET, measure, QUICK_BUDGET, ratio, type SuiteResult } from './measure.js';

async function lockCase(
  name: string,
  lock: 'spinlock' | 'mutex' | 'both',
  workers: number,
  checkers: boolean,
  n: number,
  budget: typeof FULL_BUDGET,
): Promise<BenchResult> {
  const workload = buildWorkload('kernel-selftest', { tasks: 0, drivers: workers, lock, checkers, iterations: 0 });
  const rt = new ThreadedRuntime({ workload, seed: 1, workers, keepTrace: false });
  const go = Array.from({ length: workers }, (_, to) => ({ to, event: { type: 'go', n } }));
  const perLoop = lock === 'both' ? 2 : 1;
  try {
    return await measure(budget, name, workers * n * perLoop, () => rt.runToQuiescence(go));
  } finally {
    await rt.stop();
  }
}

export async function kernelSuite(opts: { quick: boolean; onCase?: (name: string) => void }): Promise<SuiteResult> {
  const budget = opts.quick ? QUICK_BUDGET : FULL_BUDGET;
  const n = opts.quick ? 2_000 : 20_000;
  const results: BenchResult[] = [];
  const cases: [string, 'spinlock' | 'mutex' | 'both', number, boolean][] = [
    ['spinlock_uncontended', 'spinlock', 1, true],
    ['spinlock_contended_2threads', 'spinlock', 2, true],
    ['mutex_uncontended', 'mutex', 1, true],
    ['mutex_contended_2threads', 'mutex', 2, true],
    ['locks_checkers_on', 'both', 2, true],
    ['locks_checkers_off', 'both', 2, false],
  ];
  for (const [name, lock, workers, checkers] of cases) {
    opts.onCase?.(name);
    results.push(await lockCase(name, lock, workers, checkers, n, budget));
  }
  return {
    suite: 'kernel',
    results,
    ratios: {
      spinlock_contended_vs_uncontended: ratio(results, 'spinlock_contended_2threads', 'spinlock_uncontended'),
      mutex_contended_vs_uncontended: ratio(results, 'mutex_contended_2threads', 'mutex_uncontended'),
      checkers_on_vs_off: ratio(results, 'locks_checkers_on', 'locks_checkers_off'),
    },
  };
}
