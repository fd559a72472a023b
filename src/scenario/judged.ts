// A scenario run judged as it goes: the executions of `run` (deterministic, from seeds seed, seed+1, …) or its
// threaded runs (one per seed), each classed by the scenario's expectation (expect.ts), stopping at the first
// that decides the verdict — the same rule `explore`, `races` and the tests apply.
import type { RunResult } from '../runtime/result.js';
import { run, type RunOptions, type RunOutcome } from '../runtime/run.js';
import { decides, type Judged, type Tally, Tallier, type Verdict } from './expect.js';
import type { Expectation } from './scenario.js';

/** One threaded run of `run --runtime threaded --runs N`: its seed, trace hash and class. */
export interface ThreadedRun {
  readonly seed: number;
  readonly traceHash: string;
  readonly class: Judged['class'];
  readonly kind: string | null;
}

export interface JudgedRun {
  /** The reported execution: the first decisive one, or the last. */
  readonly outcome: RunOutcome;
  readonly tally: Tally;
  readonly verdict: Verdict;
  /** Threaded: every run, in order. */
  readonly threaded: readonly ThreadedRun[];
}

export function observed(r: RunResult): { findings: RunResult['findings']; counters: Readonly<Record<string, number>>; checkOk: boolean; problems: readonly string[] } {
  return { findings: r.findings, counters: r.check.counters, checkOk: r.check.ok, problems: r.check.problems };
}

export async function runJudged(e: Expectation, o: RunOptions): Promise<JudgedRun> {
  const tally = new Tallier(e);
  const classes: Judged['class'][] = [];
  let i = 0;
  const outcome = await run({
    ...o,
    decisive: (r) => {
      const j = tally.add(o.seed + i++, observed(r));
      classes.push(j.class);
      return decides(e, j);
    },
  });
  // Threaded: run() made one recorded run a seed (RunOutcome.threadedRuns), each judged above in turn.
  const threaded = (outcome.threadedRuns ?? []).map((t, k) => ({ seed: t.seed, traceHash: t.traceHash, class: classes[k] ?? 'clean', kind: t.failure ?? null }));
  return { outcome, tally: tally.tally(), verdict: tally.verdict(), threaded };
}
