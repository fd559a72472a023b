// Exploration of a scenario at scale: chunks of deterministic executions, each from its own scheduler seed
// (seed, seed+1, …), fanned out over a piscina pool of worker threads; stops at the first failing execution
// unless asked to keep going, or when the budget of executions or time is spent. Kept going, every chunk runs
// its whole share of the budget and counts its failing executions, so that a race that fails at every schedule
// is still explored a chunk at a time. The first failure's schedule comes back for replay.
import { Piscina } from 'piscina';
import { workerUrl } from '../runtime/paths.js';
import { addKinds } from '../runtime/run.js';
import type { StrategyName } from '../runtime/scheduler.js';
import type { Wire } from '../runtime/model.js';
import type { ChunkResult, ChunkTask } from './chunk.js';
import { Coverage, type CoverageSummary } from './coverage.js';

export interface ExploreOptions {
  readonly model: string;
  readonly params: Record<string, Wire>;
  readonly strategy: StrategyName;
  readonly depth: number;
  readonly seed: number;
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
  /** The chunks that failed, lowest seed first (each with its first failing execution). */
  readonly failures: readonly ChunkResult[];
  /** Failing executions in all, and by the kind of their first finding. */
  readonly failing: number;
  readonly failingKinds: Readonly<Record<string, number>>;
  /** Stopped by: the first failure, the budget of executions, the time limit, or an interrupt. */
  readonly stoppedBy: 'failure' | 'runs' | 'time' | 'interrupt';
  readonly coverage: CoverageSummary;
}

export async function exploreScenario(o: ExploreOptions): Promise<ExploreOutcome> {
  const started = performance.now();
  const chunk = Math.max(1, Math.min(o.chunk ?? 64, o.runs));
  const pool = new Piscina({ filename: workerUrl('explore').href, minThreads: o.workers, maxThreads: o.workers });
  const failures: ChunkResult[] = [];
  const coverage = new Coverage();
  let executions = 0;
  let failing = 0;
  const failingKinds: Record<string, number> = {};
  let chunks = 0;
  let dispatched = 0;
  let stoppedBy: ExploreOutcome['stoppedBy'] = 'runs';
  const deadline = o.timeMs === undefined ? Number.POSITIVE_INFINITY : started + o.timeMs;
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
        const task: ChunkTask = { model: o.model, params: o.params, strategy: o.strategy, depth: o.depth, seed: o.seed + chunks, runs, keepGoing: o.keepGoing };
        chunks++;
        dispatched += runs;
        const r = (await pool.run(task)) as ChunkResult;
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
  } finally {
    await pool.destroy();
  }
  // The lowest seed's failure first: the same exploration reports the same first failure whatever the timing.
  failures.sort((a, b) => a.seed - b.seed);
  return { executions, chunks, elapsedMs: performance.now() - started, failures, failing, failingKinds, stoppedBy, coverage: coverage.summary() };
}
