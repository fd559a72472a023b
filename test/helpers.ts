// Small helpers shared by the tests.
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { RunResult } from '../src/runtime/result.js';
import type { StrategyName } from '../src/runtime/scheduler.js';
import { createScheduler } from '../src/runtime/schedulers/index.js';
import { buildWorkload } from '../src/runtime/workloads.js';

export interface SelftestParams {
  actors?: number;
  messages?: number;
  bug?: number;
  seed?: number;
  crash?: number;
}

export function selftest(p: SelftestParams = {}) {
  return { name: 'selftest', params: { actors: 3, messages: 20, bug: 0, seed: 1, ...p } };
}

/** One deterministic execution of the selftest with a fresh scheduler. */
export function detRun(strategy: StrategyName, seed: number, p: SelftestParams = {}, depth = 3): RunResult {
  const w = selftest({ seed, ...p });
  const workload = buildWorkload(w.name, w.params);
  const scheduler = createScheduler(strategy, { seed, depth });
  scheduler.newExecution();
  return runDeterministic({ workload, seed, scheduler });
}
