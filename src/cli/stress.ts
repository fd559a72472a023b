// Threaded stress: runs of a workload back to back, each recorded, until the duration has passed — with a status
// line per run in the manner of rcutorture's periodic `rcu-torture:` lines (the run's counters and findings),
// the counters summed and per second at the end, and each failing run's schedule saved for replay. Each run is
// judged by the scenario's expectation (src/scenario/expect.ts, as `run` and `explore` judge a schedule); the
// stress stops at the first run that decides the verdict unless kept going.
import type { Wire } from '../runtime/model.js';
import { type LockingCounts, type Placement, passed, type RunResult } from '../runtime/result.js';
import { run } from '../runtime/run.js';
import { decides, Tallier, type Verdict } from '../scenario/expect.js';
import { observed } from '../scenario/judged.js';
import type { Expectation } from '../scenario/scenario.js';
import { writeOutput } from './output.js';

export interface StressOptions {
  readonly tag: string;
  readonly model: string;
  readonly params: Record<string, Wire>;
  readonly seconds: number;
  readonly seed: number;
  /** What each run is judged by (default, as for a stress config: no finding of any kind, the check holds). */
  readonly expect?: Expectation;
  readonly placement: Placement;
  readonly workers?: number;
  readonly keepGoing: boolean;
  /** Where failing runs' schedules go: `<record>` for the first, `<record>.N` for later ones. */
  readonly record?: string;
  readonly json: boolean;
  readonly signal?: AbortSignal;
}

export interface StressOutcome {
  readonly ok: boolean;
  readonly verdict: Verdict;
  readonly runs: number;
  readonly seconds: number;
  readonly totals: Record<string, number>;
  readonly perSecond: Record<string, number>;
  readonly failures: readonly RunResult[];
  readonly saved: readonly string[];
  /** Locked steps over all runs: per object (lock stripes) and on the coarse fallback lock. */
  readonly locking: LockingCounts;
}

export async function stressRuns(o: StressOptions): Promise<StressOutcome> {
  const t0 = performance.now();
  const until = t0 + o.seconds * 1000;
  const totals: Record<string, number> = {};
  const failures: RunResult[] = [];
  const saved: string[] = [];
  const e: Expectation = o.expect ?? { findings: [], forbid: 'any', counters: {} };
  const tally = new Tallier(e);
  let lost = 0;
  let runs = 0;
  const locking = { striped: 0, fallback: 0 };
  // At least one run, however short the duration: a stress that ran nothing must not end in SUCCESS.
  while ((runs === 0 || performance.now() < until) && !o.signal?.aborted) {
    const seed = o.seed + runs;
    let r: RunResult;
    try {
      r = await run({
        workload: { name: o.model, params: { ...o.params, seed } },
        runtime: 'threaded',
        seed,
        placement: o.placement,
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        keepTrace: true,
        keepGoing: o.keepGoing,
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (err) {
      // Interrupted (src/cli/interrupt.ts): the run in flight is dropped, the finished ones are the summary.
      if (o.signal?.aborted) break;
      throw err;
    }
    runs++;
    locking.striped += r.locking?.striped ?? 0;
    locking.fallback += r.locking?.fallback ?? 0;
    for (const [k, v] of Object.entries(r.check.counters)) totals[k] = (totals[k] ?? 0) + v;
    const j = tally.add(seed, observed(r));
    // Messages lost between threads are the runtime's failure, whatever the scenario expects.
    if (!r.accounting.ok) lost++;
    // A run to save for replay: a finding, a failed check, or messages unaccounted for.
    if (!passed(r)) {
      failures.push(r);
      if (o.record) {
        const file = failures.length === 1 ? o.record : `${o.record}.${failures.length}`;
        if (writeOutput('--record', file, r.schedule.encode())) saved.push(file);
      }
    }
    if (!o.json) {
      const c = Object.entries(r.check.counters)
        .filter(([, v]) => v !== 0)
        .map(([k, v]) => `${k}: ${v}`)
        .join(' ');
      console.log(`${o.tag}-torture: run ${runs} seed ${seed}: ${c} findings: ${r.findings.length} (${(r.elapsedMs / 1000).toFixed(2)} s, hash ${r.traceHash})`);
    }
    if ((decides(e, j) || !r.accounting.ok) && !o.keepGoing) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  const perSecond = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, Math.round(v / seconds)]));
  const judged = tally.verdict();
  const verdict = lost > 0 ? { ok: false, lines: [...judged.lines, `${lost} runs lost messages (sent ≠ delivered + queued)`] } : judged;
  return { ok: verdict.ok, verdict, runs, seconds, totals, perSecond, failures, saved, locking };
}
