// Small helpers shared by the tests.
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { RunResult } from '../src/runtime/result.js';
import type { StrategyName } from '../src/runtime/scheduler.js';
import { createScheduler } from '../src/runtime/schedulers/index.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import type { Wire, Workload } from '../src/runtime/model.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { buildSva } from '../src/workloads/sva.js';

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

/** A script step, as the `steps` parameter takes it (`{ op: 'munmap', vpn: 2 }`). */
export type Step = Record<string, unknown>;

/** The sva preset with a process per step list: 16 pages and 2 DMAs unless `params` says otherwise. */
export function scriptedSva(params: Record<string, Wire>, steps: Step[][]) {
  return buildSva({ pages: 16, dmas: 2, ...params, processes: steps.length, steps: JSON.stringify(steps) });
}

/** One random schedule of a built workload, going on past findings. */
export function runBuilt(built: { readonly workload: Workload }, seed: number): RunResult {
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
}
