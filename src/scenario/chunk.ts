// One unit of exploration work, the same in a pool worker and in the main thread: `runs` deterministic
// executions of a workload under one strategy and scheduler seed (PCT learns its step count across them),
// stopping at the first that fails. A piscina task costs ~30 µs and an execution tens of µs to ms, so a task
// carries many executions.
import type { Wire, Workload } from '../runtime/model.js';
import { Scratch } from '../runtime/deterministic.js';
import { run } from '../runtime/run.js';
import { buildWorkload } from '../runtime/workloads.js';
import type { StrategyName } from '../runtime/scheduler.js';
import { Coverage, type CoverageSummary } from './coverage.js';

export interface ChunkTask {
  readonly model: string;
  readonly params: Record<string, Wire>;
  readonly strategy: StrategyName;
  readonly depth: number;
  readonly seed: number;
  readonly runs: number;
  /** Run all `runs` executions, counting the failing ones, instead of stopping at the first (explore --keep-going). */
  readonly keepGoing?: boolean;
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
  readonly failed: boolean;
  /** Failing executions (at most 1 unless keepGoing), and how many by the kind of their first finding. */
  readonly failing: number;
  readonly failingKinds: Readonly<Record<string, number>>;
  readonly findings: readonly ChunkFinding[];
  readonly problems: readonly string[];
  readonly counters: Readonly<Record<string, number>>;
  readonly checkOk: boolean;
  readonly traceHash: string;
  /** The failing execution's schedule (encoded), when one failed. */
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

async function chunk(task: ChunkTask, built: Workload, scratch: Scratch): Promise<ChunkResult> {
  const coverage = new Coverage();
  const r = await run({
    built,
    scratch,
    onExecution: (x, w) => coverage.add(x, w),
    workload: { name: task.model, params: task.params },
    runtime: 'deterministic',
    strategy: task.strategy,
    depth: task.depth,
    seed: task.seed,
    runs: task.runs,
    allRuns: task.keepGoing ?? false,
    keepTrace: true,
  });
  const failed = r.failing > 0;
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
    traceHash: r.traceHash,
    schedule: failed ? r.schedule.encode() : null,
    explored: r.explored,
    coverage: coverage.summary(),
  };
}
