// Shared by every benchmark suite: run one case with tinybench and express it per unit of work (a message,
// an event, a step), so results from different suites line up in one table.
import { Bench } from 'tinybench';
import type { DetailRow } from '../src/report/types.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Workload } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';

export interface BenchResult {
  name: string;
  /** Units per second (messages, events, round trips or steps). */
  hz: number;
  /** Mean time per unit, in nanoseconds. */
  meanNs: number;
  /** 99th percentile of the per-unit time of one iteration, in nanoseconds. */
  p99Ns: number;
  /** Iterations measured. */
  samples: number;
}

// A detail table's row: figures that are not rates (time to first finding, memory, a curve's points).
export type { DetailRow, DetailValue } from '../src/report/types.js';

export interface SuiteResult {
  suite: string;
  results: BenchResult[];
  ratios: Record<string, number>;
  /** Tables of figures that do not fit a rate (the explore and scaling suites): the report's tables and charts. */
  details?: Record<string, DetailRow[]>;
}

/**
 * How long a suite measures: `quick` a smoke run (rough figures in seconds), `full` the long run, `report` in
 * between — sized so that `npm run bench:report` runs every suite, the policy matrix and the scaling curves in
 * about 14 minutes on 2 cores.
 */
export type Profile = 'quick' | 'report' | 'full';
export const PROFILES: readonly Profile[] = ['quick', 'report', 'full'];

export interface SuiteOptions {
  readonly quick: boolean;
  /** Overrides `quick` when given. */
  readonly profile?: Profile;
  readonly onCase?: (name: string) => void;
  /** A busy-looping process runs beside the suite (`bench --noise`): suites measure only what it is for. */
  readonly noise?: boolean;
}

export function profileOf(o: { readonly quick: boolean; readonly profile?: Profile }): Profile {
  return o.profile ?? (o.quick ? 'quick' : 'full');
}

export interface Budget {
  time: number;
  warmupTime: number;
  iterations: number;
  warmupIterations: number;
}

export const FULL_BUDGET: Budget = { time: 2500, warmupTime: 300, iterations: 10, warmupIterations: 3 };
export const QUICK_BUDGET: Budget = { time: 100, warmupTime: 20, iterations: 3, warmupIterations: 1 };
export const REPORT_BUDGET: Budget = { time: 700, warmupTime: 150, iterations: 5, warmupIterations: 2 };

export function budgetOf(p: Profile): Budget {
  return p === 'quick' ? QUICK_BUDGET : p === 'report' ? REPORT_BUDGET : FULL_BUDGET;
}

/** Measure `fn`, which does `perIteration` units of work per call. */
export async function measure(
  budget: Budget,
  name: string,
  perIteration: number,
  fn: () => unknown,
  async?: boolean,
): Promise<BenchResult> {
  // Only the budget's own fields: callers may pass a larger plan that also carries batch sizes.
  const { time, warmupTime, iterations, warmupIterations } = budget;
  const bench = new Bench({ name, time, warmupTime, iterations, warmupIterations, timestampProvider: 'hrtimeNow', throws: true });
  // `async` said by the caller rather than guessed by tinybench, when the caller knows.
  bench.add(name, fn, async === undefined ? {} : { async });
  await bench.run();
  const r = bench.getTask(name)?.result;
  if (r === undefined || (r.state !== 'completed' && r.state !== 'aborted-with-statistics')) {
    throw new Error(`bench ${name}: ${r?.state ?? 'no task'}`);
  }
  return {
    name,
    hz: (perIteration * 1000) / r.latency.mean,
    meanNs: (r.latency.mean * 1e6) / perIteration,
    p99Ns: (r.latency.p99 * 1e6) / perIteration,
    samples: r.latency.samplesCount,
  };
}

/**
 * Runs `cases` one after the other, `rounds` times over, and keeps each one's fastest result by name: a round
 * that shared a core with something else (V8's own threads, another process) only ever slows a case down, and
 * cases that take turns see the same machine, so ratios between them compare like with like.
 */
export async function fastestOfRounds<T>(
  rounds: number,
  cases: readonly (() => Promise<T>)[],
  name: (t: T) => string,
  rate: (t: T) => number,
): Promise<Map<string, T>> {
  const best = new Map<string, T>();
  for (let round = 0; round < rounds; round++) {
    for (const run of cases) {
      const t = await run();
      const had = best.get(name(t));
      if (had === undefined || rate(t) > rate(had)) best.set(name(t), t);
    }
  }
  return best;
}

/** What makes a run unclean: its check's problems, its findings, an accounting mismatch (none: clean). */
export function runProblems(r: RunResult): string[] {
  return [...r.check.problems, ...r.findings.map((f) => `${f.kind}: ${f.title}`), ...(r.accounting.ok ? [] : ['accounting mismatch'])];
}

export function ratio(results: readonly BenchResult[], a: string, b: string): number {
  const x = results.find((r) => r.name === a);
  const y = results.find((r) => r.name === b);
  if (!x || !y) throw new Error(`ratio ${a}/${b}: missing result`);
  return x.hz / y.hz;
}

/**
 * Deterministic-runtime steps per second on a workload: each iteration is one whole execution under a new
 * random schedule (executions of one workload differ in order, not in length for these workloads).
 */
/** Steps of one deterministic execution of the workload (random schedule, seed 1). */
export function probeSteps(workload: Workload): number {
  const probe = new RandomScheduler(1);
  probe.newExecution();
  return runDeterministic({ workload, seed: 1, scheduler: probe }).steps;
}

export async function measureDeterministic(budget: Budget, name: string, workload: Workload): Promise<BenchResult> {
  const steps = probeSteps(workload);
  let seed = 1;
  return measure(budget, name, steps, () => {
    const scheduler = new RandomScheduler(seed++);
    scheduler.newExecution();
    runDeterministic({ workload, seed: 1, scheduler });
  });
}
