// Exploration of a scenario at scale: executions from scheduler seeds seed, seed+1, … (the seeds `run` gives
// them: `run --seed N --runs 1` runs the one of seed N), in chunks of consecutive seeds fanned out over a piscina
// pool of worker threads, each execution judged by the scenario's expectation (expect.ts, as `run` judges it).
// Stops at the first execution that decides the verdict — one that fails it, or one that shows the expected
// finding — unless asked to keep going, or when the budget of executions or time is spent. Kept going, every
// chunk runs its whole share of the budget and counts its executions by class and by kind of finding, so that a
// race that fails at every schedule is still explored a chunk at a time. The decisive schedule comes back for
// replay.
import { Piscina } from 'piscina';
import { workerUrl } from '../runtime/paths.js';
import { addKinds } from '../runtime/run.js';
import type { StrategyName } from '../runtime/scheduler.js';
import type { Wire } from '../runtime/model.js';
import type { ChunkResult, ChunkTask } from './chunk.js';
import { Coverage, type CoverageSummary } from './coverage.js';
import { type ScheduleClass, type Tally, Tallier, type Verdict } from './expect.js';
import type { Expectation } from './scenario.js';

export interface ExploreOptions {
  readonly model: string;
  readonly params: Record<string, Wire>;
  readonly strategy: StrategyName;
  readonly depth: number;
  /** The first execution's seed. */
  readonly seed: number;
  /** What each execution is judged by. */
  readonly expect: Expectation;
  /** Executions in all. */
  readonly runs: number;
  readonly timeMs?: number;
  readonly workers: number;
  readonly keepGoing: boolean;
  /** Executions per pool task. */
  readonly chunk?: number;
  readonly onProgress?: (executions: number, failures: number, perSecond: number) => void;
  readonly signal?: AbortSignal;
}

export interface ExploreOutcome {
  readonly executions: number;
  readonly chunks: number;
  readonly elapsedMs: number;
  /** The chunks an execution decided, lowest seed first (each with its first decisive execution). */
  readonly failures: readonly ChunkResult[];
  /** Executions with a finding or a failed check in all, and by the kind of their first finding. */
  readonly failing: number;
  readonly failingKinds: Readonly<Record<string, number>>;
  /**
   * The executions judged, by class and seed: all of them when kept going; else those up to the first decisive
   * one (a chunk of later seeds that was already running is not judged), as `run` would have stopped there.
   */
  readonly tally: Tally;
  readonly verdict: Verdict;
  /** The first decisive execution: its seed, class and kind, how many schedules (seeds) up to it, and when its chunk came back. */
  readonly first: { readonly seed: number; readonly class: ScheduleClass; readonly kind: string | null; readonly schedules: number; readonly elapsedMs: number } | null;
  /** Stopped by: the first decisive execution, the budget of executions, the time limit, or an interrupt. */
  readonly stoppedBy: 'failure' | 'runs' | 'time' | 'interrupt';
  readonly coverage: CoverageSummary;
}

export async function exploreScenario(o: ExploreOptions): Promise<ExploreOutcome> {
  const started = performance.now();
  const chunk = Math.max(1, Math.min(o.chunk ?? 64, o.runs));
  const pool = new Piscina({ filename: workerUrl('explore').href, minThreads: o.workers, maxThreads: o.workers });
  const failures: ChunkResult[] = [];
  const done: { r: ChunkResult; at: number }[] = [];
  const coverage = new Coverage();
  let executions = 0;
  let failing = 0;
  const failingKinds: Record<string, number> = {};
  let chunks = 0;
  let dispatched = 0;
  let stoppedBy: ExploreOutcome['stoppedBy'] = 'runs';
  const deadline = o.timeMs === undefined ? Number.POSITIVE_INFINITY : started + o.timeMs;
  // The same budget for the chunks on the pool's threads (whose performance.now() has another origin): a chunk
  // in flight starts no execution after it.
  const until = o.timeMs === undefined ? undefined : Date.now() + o.timeMs;
  const stop = (): boolean => {
    if (o.signal?.aborted) {
      stoppedBy = 'interrupt';
      return true;
    }
    if (failures.length > 0 && !o.keepGoing) {
      stoppedBy = 'failure';
      return true;
    }
    if (performance.now() >= deadline) {
      stoppedBy = 'time';
      return true;
    }
    return dispatched >= o.runs;
  };
  try {
    // Keep every pool thread busy: a lane takes the next chunk as soon as its last one is back.
    const lane = async (): Promise<void> => {
      while (!stop()) {
        const runs = Math.min(chunk, o.runs - dispatched);
        const task: ChunkTask = { model: o.model, params: o.params, strategy: o.strategy, depth: o.depth, seed: o.seed + dispatched, runs, expect: o.expect, keepGoing: o.keepGoing, ...(until !== undefined ? { until } : {}) };
        chunks++;
        dispatched += runs;
        const r = (await pool.run(task)) as ChunkResult;
        done.push({ r, at: performance.now() - started });
        executions += r.executions;
        coverage.merge(r.coverage);
        if (r.failed) failures.push(r);
        failing += r.failing;
        addKinds(failingKinds, r.failingKinds);
        const secs = (performance.now() - started) / 1000;
        o.onProgress?.(executions, failing, secs > 0 ? executions / secs : 0);
      }
    };
    await Promise.all(Array.from({ length: o.workers }, lane));
    // Every seed was dispatched, but the budget cut chunks short of their last ones.
    if (stoppedBy === 'runs' && executions < dispatched && failures.length === 0 && until !== undefined && Date.now() >= until) stoppedBy = 'time';
  } finally {
    await pool.destroy();
  }
  // The lowest seed's failure first: the same exploration reports the same first failure whatever the timing.
  failures.sort((a, b) => a.seed - b.seed);
  done.sort((a, b) => a.r.seed - b.r.seed);
  const tallier = new Tallier(o.expect);
  const cut = o.keepGoing ? Number.POSITIVE_INFINITY : (failures[0]?.seed ?? Number.POSITIVE_INFINITY);
  for (const { r } of done) if (r.seed <= cut) tallier.merge(r.tally);
  const tally = tallier.tally();
  const d = tally.decisive;
  const at = done.find(({ r }) => d !== null && r.seed <= d.seed && d.seed < r.seed + r.executions)?.at ?? 0;
  // Its ordinal among the schedules run: chunks cut by the time budget leave seeds unexplored before it.
  const ordinal = d === null ? 0 : done.reduce((n, { r }) => n + (r.seed <= d.seed ? Math.min(r.executions, d.seed - r.seed + 1) : 0), 0);
  const first = d ? { seed: d.seed, class: d.judged.class, kind: d.observed.findings[0]?.kind ?? (d.observed.checkOk ? null : 'check'), schedules: ordinal, elapsedMs: at } : null;
  const verdict = tallier.verdict();
  return { executions, chunks, elapsedMs: performance.now() - started, failures, failing, failingKinds, tally, verdict, first, stoppedBy, coverage: coverage.summary() };
}
