// One unit of exploration work, the same in a pool worker and in the main thread: `runs` deterministic
// executions of a workload under one strategy, from scheduler seeds seed, seed+1, … (each execution from its
// own seed, as `run --seed N --runs 1` runs it), each judged by the scenario's expectation (expect.ts), stopping
// at the first that decides the verdict unless kept going. A piscina task costs ~30 µs and an execution tens of
// µs to ms, so a task carries many executions.
import type { Wire, Workload } from '../runtime/model.js';
import { Scratch } from '../runtime/deterministic.js';
import type { RunResult } from '../runtime/result.js';
import { run } from '../runtime/run.js';
import { buildWorkload } from '../runtime/workloads.js';
import type { StrategyName } from '../runtime/scheduler.js';
import { Coverage, type CoverageSummary } from './coverage.js';
import { decides, type Tally, Tallier } from './expect.js';
import type { Expectation } from './scenario.js';

export interface ChunkTask {
  readonly model: string;
  readonly params: Record<string, Wire>;
  readonly strategy: StrategyName;
  readonly depth: number;
  /** The seed of the chunk's first execution; its i-th runs from seed + i. */
  readonly seed: number;
  readonly runs: number;
  /** What each execution is judged by (default: no finding of any kind, the workload's check holds). */
  readonly expect?: Expectation;
  /** Run all `runs` executions, counting the failing ones, instead of stopping at the first (explore --keep-going). */
  readonly keepGoing?: boolean;
  /** The exploration's time budget (Date.now() ms): start no execution after it (see RunOptions.until). */
  readonly until?: number;
}

export interface ChunkFinding {
  readonly kind: string;
  readonly title: string;
  readonly text: string;
}

export interface ChunkResult {
  readonly seed: number;
  readonly executions: number;
  readonly steps: number;
  /** An execution decided the verdict (the first is the one reported below). */
  readonly failed: boolean;
  /** Executions with a finding or a failed check, and how many by the kind of their first finding. */
  readonly failing: number;
  readonly failingKinds: Readonly<Record<string, number>>;
  readonly findings: readonly ChunkFinding[];
  readonly problems: readonly string[];
  readonly counters: Readonly<Record<string, number>>;
  readonly checkOk: boolean;
  /** The chunk's executions judged by the expectation, by class and seed. */
  readonly tally: Tally;
  /** The reported execution's seed (the first decisive one, or the last). */
  readonly executionSeed: number;
  readonly traceHash: string;
  /** The decisive execution's schedule (encoded), when one decided. */
  readonly schedule: Uint8Array | null;
  readonly explored: string;
  readonly coverage: CoverageSummary;
}

/**
 * What this thread keeps from one chunk to the next: the last workload built (each execution attaches
 * its checkers afresh, so a chunk's outcome does not depend on the chunks before it) and the run's buffers. A fresh build per chunk is fresh
 * closures, whose code V8 compiles and optimizes all over again on its helper threads: with chunks that end at
 * their first, failing execution, a thread spent more time building and compiling than exploring, and the
 * compiler threads took the second core from a 2-worker pool. Taken while a chunk runs, so two chunks in one
 * thread at once cannot share it.
 */
let kept: { readonly key: string; readonly workload: Workload; readonly scratch: Scratch } | undefined;

export async function exploreChunk(task: ChunkTask): Promise<ChunkResult> {
  const key = `${task.model}\0${JSON.stringify(task.params)}`;
  const mine = kept?.key === key ? kept : { key, workload: buildWorkload(task.model, task.params), scratch: kept?.scratch ?? new Scratch() };
  kept = undefined;
  try {
    return await chunk(task, mine.workload, mine.scratch);
  } finally {
    kept = mine;
  }
}

const CLEAN: Expectation = { findings: [], forbid: 'any', counters: {} };

async function chunk(task: ChunkTask, built: Workload, scratch: Scratch): Promise<ChunkResult> {
  const coverage = new Coverage();
  const e = task.expect ?? CLEAN;
  const tally = new Tallier(e);
  let judged = 0;
  const observe = (x: RunResult) => tally.add(task.seed + judged++, { findings: x.findings, counters: x.check.counters, checkOk: x.check.ok, problems: x.check.problems });
  const r = await run({
    built,
    scratch,
    onExecution: (x, w) => coverage.add(x, w),
    decisive: (x) => decides(e, observe(x)),
    workload: { name: task.model, params: task.params },
    runtime: 'deterministic',
    strategy: task.strategy,
    depth: task.depth,
    seed: task.seed,
    runs: task.runs,
    allRuns: task.keepGoing ?? false,
    keepTrace: true,
    ...(task.until !== undefined ? { until: task.until } : {}),
  });
  const failed = tally.decided;
  return {
    seed: task.seed,
    executions: r.executions,
    steps: r.steps,
    failed,
    failing: r.failing,
    failingKinds: r.failingKinds,
    findings: r.findings.map((f) => ({ kind: f.kind, title: f.title, text: f.text })),
    problems: r.check.problems,
    counters: r.check.counters,
    checkOk: r.check.ok,
    tally: tally.tally(),
    executionSeed: r.seed,
    traceHash: r.traceHash,
    schedule: failed ? r.schedule.encode() : null,
    explored: r.explored,
    coverage: coverage.summary(),
  };
}
