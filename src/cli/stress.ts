// Threaded stress: runs of a workload back to back, each recorded, until the duration has passed — with a line
// per run (the run's counters and findings), a periodic status line in the manner of rcutorture's
// `rcu-torture:` lines (elapsed, runs, model events per second, findings) and, on a terminal, a progress bar of
// the budget; the counters summed and per second at the end, and each failing run's schedule saved for replay.
// The budget is honoured at scheduling points, not runs: once it has passed no run starts, and the run in
// flight is stopped at its next point (ThreadedOptions.cut) with its findings so far. Each run is judged by the
// scenario's expectation (src/scenario/expect.ts, as `run` and `explore` judge a schedule); the stress stops at
// the first run that decides the verdict unless kept going.
import { InvalidArgumentError } from 'commander';
import type { Wire } from '../runtime/model.js';
import { type LockingCounts, type Placement, passed, type RunResult } from '../runtime/result.js';
import { run } from '../runtime/run.js';
import { addWorkerTime, NO_TIME, type WorkerTime } from '../runtime/worker-time.js';
import { decides, Tallier, type Verdict } from '../scenario/expect.js';
import { observed } from '../scenario/judged.js';
import type { Expectation } from '../scenario/scenario.js';
import { counted } from './interrupt.js';
import { DURATION_FORMS, durationArg } from './options.js';
import { writeOutput } from './output.js';
import { type Progress, progress, rateOf } from './progress.js';
import { statusLines } from './status.js';

/** How often the status line is printed: every so many ms of the stress's clock, or every so many runs. */
export type StatusInterval = { readonly every: 'ms'; readonly n: number } | { readonly every: 'runs'; readonly n: number };

export const STATUS_FORMS = `a duration (${DURATION_FORMS}), a number of runs (5runs), or 0 for none`;

/** `--status-interval`: `10s`, `500ms`, `2m`, a number of seconds, `5runs`; 0 turns the status line off. */
export function statusIntervalArg(raw: string): StatusInterval | null {
  const runs = /^(\d+)\s*runs?$/.exec(raw.trim());
  if (runs) {
    const n = Number(runs[1]);
    if (n < 1) throw new InvalidArgumentError(`'${raw}': a status line every 0 runs (give 1 or more, or 0 for none).`);
    return { every: 'runs', n };
  }
  if (/^0+(\.0*)?\s*(ms|s|m)?$/.test(raw.trim())) return null;
  try {
    return { every: 'ms', n: durationArg()(raw) };
  } catch {
    throw new InvalidArgumentError(`'${raw}' is not a status interval (${STATUS_FORMS}).`);
  }
}

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
  /** The status line's interval (default every 10 s; null: none). */
  readonly status?: StatusInterval | null;
  /** The stress's clock in ms (default performance.now): what the budget and the status interval count. */
  readonly clock?: () => number;
}

export interface StressOutcome {
  readonly ok: boolean;
  readonly verdict: Verdict;
  /** Runs started: the finished ones and the one cut by the budget, if any. */
  readonly runs: number;
  readonly seconds: number;
  readonly totals: Record<string, number>;
  readonly perSecond: Record<string, number>;
  /** Model events (steps: deliveries, atomic operations, task points, timers) of every run, and per second. */
  readonly events: number;
  readonly eventsPerSecond: number;
  readonly failures: readonly RunResult[];
  readonly saved: readonly string[];
  /** Locked steps over all runs: per object (lock stripes) and on the coarse fallback lock. */
  readonly locking: LockingCounts;
  /** Where the workers' time went, over all runs (worker-time.ts). */
  readonly workerTime: WorkerTime;
  /** The run the budget stopped at its next scheduling point, if it was in flight then. */
  readonly cut: { readonly run: number; readonly seed: number; readonly atStep: number; readonly steps: number; readonly workers: number } | null;
  /** Status lines printed. */
  readonly statusLines: number;
}

/** The stress's live counters: the budget's clock, the status line and the bar. */
class Live {
  readonly t0: number;
  readonly until: number;
  readonly budget = new AbortController();
  /** Runs started (the one in flight included). */
  runs = 0;
  flying = false;
  events = 0;
  inFlight = 0;
  findings = 0;
  statusLines = 0;
  last: number;
  private nextStatus: number;

  constructor(
    private readonly o: StressOptions,
    private readonly clock: () => number,
    private readonly bar: Progress,
  ) {
    this.t0 = clock();
    this.last = this.t0;
    this.until = this.t0 + o.seconds * 1000;
    const s = this.status;
    this.nextStatus = s?.every === 'ms' ? this.t0 + s.n : Number.POSITIVE_INFINITY;
  }

  get status(): StatusInterval | null {
    return this.o.status === undefined ? { every: 'ms', n: 10_000 } : this.o.status;
  }

  /** Read the clock: raise the budget's stop once it has passed, print a status line when one is due. */
  now(): number {
    const t = this.clock();
    this.last = t;
    if (t >= this.until && this.runs > 0) this.budget.abort();
    if (t >= this.nextStatus) {
      const s = this.status;
      // An interval missed (no clock read during it) is skipped, as rcutorture's timer would be.
      if (s?.every === 'ms') this.nextStatus = t + s.n - ((t - this.t0) % s.n);
      this.statusLine();
    }
    return t;
  }

  /** A run's progress (about every ms): its steps so far. */
  poll(steps: number): void {
    this.inFlight = steps;
    this.now();
    this.bar.update(this.runs - 1, 0, this.barText());
  }

  /** A run ended (or was cut): its steps count, and a status line every n runs ended. */
  ended(steps: number, findings: number): void {
    this.events += steps;
    this.inFlight = 0;
    this.flying = false;
    this.findings += findings;
    const s = this.status;
    if (s?.every === 'runs' && this.runs % s.n === 0) this.statusLine();
  }

  statusLine(): void {
    if (this.o.json) return;
    const secs = (this.last - this.t0) / 1000;
    const events = this.events + this.inFlight;
    const finished = this.flying ? this.runs - 1 : this.runs;
    this.statusLines++;
    this.bar.log(
      `${this.o.tag}-torture: status: ${secs.toFixed(1)} s of ${this.o.seconds} s, runs ${finished}${this.flying ? ` (run ${this.runs} in flight)` : ''}, events ${events} (${rateOf(secs > 0 ? events / secs : 0)}/s), findings ${this.findings}`,
    );
  }

  private barText(): string {
    const secs = (this.last - this.t0) / 1000;
    const events = this.events + this.inFlight;
    return `run ${this.runs}, events ${events} (${rateOf(secs > 0 ? events / secs : 0)}/s), findings ${this.findings}`;
  }
}

export async function stressRuns(o: StressOptions): Promise<StressOutcome> {
  const clock = o.clock ?? (() => performance.now());
  const bar = progress(`${o.tag}-torture`, !o.json, { budgetMs: o.seconds * 1000, unit: 'runs', delayMs: 0 });
  const live = new Live(o, clock, bar);
  const totals: Record<string, number> = {};
  const failures: RunResult[] = [];
  const saved: string[] = [];
  const e: Expectation = o.expect ?? { findings: [], forbid: 'any', counters: {} };
  const tally = new Tallier(e);
  let lost = 0;
  let cut: StressOutcome['cut'] = null;
  const locking = { striped: 0, fallback: 0, relocked: 0 };
  let workerTime = NO_TIME;
  try {
    // At least one run, however short the duration: a stress that ran nothing must not end in SUCCESS.
    while ((live.runs === 0 || live.now() < live.until) && !o.signal?.aborted) {
      const seed = o.seed + live.runs;
      live.runs++;
      live.flying = true;
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
          onProgress: (_d, _s, steps) => live.poll(steps ?? 0),
          cut: live.budget.signal,
          ...(o.signal ? { signal: o.signal } : {}),
        });
      } catch (err) {
        // Interrupted (src/cli/interrupt.ts): the run in flight is dropped, the finished ones are the summary.
        if (o.signal?.aborted) {
          live.runs--;
          live.flying = false;
          break;
        }
        throw err;
      }
      locking.striped += r.locking?.striped ?? 0;
      locking.fallback += r.locking?.fallback ?? 0;
      locking.relocked += r.locking?.relocked ?? 0;
      if (r.workerTime) workerTime = addWorkerTime(workerTime, r.workerTime);
      if (r.cut) cut = { run: live.runs, seed, atStep: r.cut.atStep, steps: r.steps, workers: r.workers ?? 1 };
      const decided = judge(r, o, { totals, failures, saved, tally });
      if (!r.cut && !r.accounting.ok) lost++;
      if (!o.json) bar.log(runLine(o.tag, live.runs, r));
      live.ended(r.steps, r.findings.length);
      if (r.cut || ((decided || (!r.cut && !r.accounting.ok)) && !o.keepGoing)) break;
    }
    // The end, on the same clock (a cut run's workers may have taken a while to exit).
    live.now();
  } finally {
    bar.stop();
  }
  const seconds = (live.last - live.t0) / 1000;
  const perSecond = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, Math.round(v / seconds)]));
  const judged = tally.verdict();
  const lines = [...judged.lines];
  if (lost > 0) lines.push(`${lost} runs lost messages (sent ≠ delivered + queued)`);
  // Only a cut run was started, and it found nothing: nothing was judged.
  const nothing = live.runs > 0 && live.runs === (cut ? 1 : 0) && failures.length === 0;
  if (nothing) lines.push(`no run ended within the ${o.seconds} s budget (run 1 was stopped at step ${cut?.atStep}): nothing judged; give a longer --duration`);
  const verdict: Verdict = lost > 0 || nothing ? { ok: false, lines } : judged;
  const events = live.events;
  return { ok: verdict.ok, verdict, runs: live.runs, seconds, totals, perSecond, events, eventsPerSecond: Math.round(events / Math.max(seconds, 1e-3)), failures, saved, locking, workerTime, cut, statusLines: live.statusLines };
}

/**
 * Judge one run and keep what the summary needs; true when it decides the verdict. A run cut by the budget is
 * judged on its findings alone (they happened), and only if it has any: its check and counters describe a
 * state halfway through.
 */
function judge(
  r: RunResult,
  o: StressOptions,
  acc: { totals: Record<string, number>; failures: RunResult[]; saved: string[]; tally: Tallier },
): boolean {
  if (r.cut && r.findings.length === 0) return false;
  for (const [k, v] of Object.entries(r.check.counters)) acc.totals[k] = (acc.totals[k] ?? 0) + v;
  const seen = observed(r);
  const j = acc.tally.add(r.seed, r.cut ? { ...seen, checkOk: true, problems: [] } : seen);
  // A run to save for replay: a finding, a failed check, or messages unaccounted for.
  if (r.cut ? r.findings.length > 0 : !passed(r)) {
    acc.failures.push(r);
    if (o.record) {
      const file = acc.failures.length === 1 ? o.record : `${o.record}.${acc.failures.length}`;
      if (writeOutput('--record', file, r.schedule.encode())) acc.saved.push(file);
    }
  }
  return decides(o.expect ?? { findings: [], forbid: 'any', counters: {} }, j);
}

/**
 * The line of one run, as rcutorture's fit a terminal: its findings, its steps, where the budget stopped it; the
 * counters are the summary's (totals and per second), not repeated per run.
 */
function runLine(tag: string, n: number, r: RunResult): string {
  const head = `run ${n} seed ${r.seed}: findings ${r.findings.length}, ${counted(r.steps, 'step')}`;
  const tail = `(${(r.elapsedMs / 1000).toFixed(2)} s, hash ${r.traceHash})`;
  // A run stopped by the budget says where, which takes the line past 120 columns: its time and hash wrap.
  const text = r.cut ? `${head}, stopped by the budget at step ${r.cut.atStep} (${r.steps - r.cut.atStep} after, ${counted(r.workers ?? 1, 'worker')}) ${tail}` : `${head} ${tail}`;
  return statusLines(`${tag}-torture`, text).join('\n');
}
