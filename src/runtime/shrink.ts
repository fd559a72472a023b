// Shrinking a failing schedule: delta debugging (Zeller & Hildebrandt, "Simplifying and Isolating
// Failure-Inducing Input", IEEE TSE 28(2), 2002) over the steps of a recorded run. A candidate is a
// subsequence of the recorded steps; the guided scheduler follows it where it can and fills in the rest, so
// every candidate is a complete deterministic run. A candidate is kept when it fails the same way — the same
// finding kinds and the same first finding title up to numbers, or with no finding the same first failed
// check — in no more steps than the best run so far. ddmin removes chunks, halving them as it goes; a last
// pass tries removing single steps. When a round has made the run shorter, the next round starts over from
// that run's own schedule, so that steps the guide's default filled in become removable too. The result is the
// kept run's own recording: strict-replayable, and never longer than the input.
import { digestInts } from './hash.js';
import type { RunResult } from './result.js';
import { runDeterministic } from './deterministic.js';
import { replay } from './run.js';
import type { Schedule } from './schedule.js';
import { GuidedScheduler } from './schedulers/guided.js';
import { buildWorkload } from './workloads.js';

export interface ShrinkProgress {
  readonly runs: number;
  readonly maxRuns: number;
  /** Steps of the shortest run that fails the same way, so far. */
  readonly steps: number;
}

export interface ShrinkOptions {
  /** Runs of the workload allowed in all, the input's replay and the result's check included (default 2000). */
  readonly maxRuns?: number;
  readonly onProgress?: (p: ShrinkProgress) => void;
}

export interface ShrinkResult {
  /** The shrunk run's own schedule (the input itself when nothing shorter or simpler was found). */
  readonly schedule: Schedule;
  /** Steps of the input schedule and of the result. */
  readonly before: number;
  readonly after: number;
  /** Runs of the workload, the input's replay and the result's check included. */
  readonly runs: number;
  /** How the input fails: the first finding's title, or the first failed check. */
  readonly finding: string;
  /** What "the same way" compared: finding kinds and the normalised title (or failed check). */
  readonly signature: string;
  /** Recorded steps the guide had to follow to get the result; its other steps were the default's. */
  readonly guided: number;
  /** Rounds of ddmin + single-step pass (a round after one that made the run shorter starts from its schedule). */
  readonly rounds: number;
  /** The run budget ran out before the result was 1-minimal. */
  readonly exhausted: boolean;
}

/** The schedule does not fail: there is no failure to preserve. */
export class NothingToShrink extends Error {
  override name = 'NothingToShrink';
}

/**
 * How a run failed, as the string candidates must reproduce; undefined when it passed. Numbers (PASIDs,
 * pids, task ids, frames, counts) are normalised: a shorter run names other ones for the same failure.
 */
export function failureSignature(r: RunResult): string | undefined {
  if (r.findings.length > 0) {
    const kinds = [...new Set(r.findings.map((f) => f.kind))].sort().join(',');
    return `${kinds}: ${normalise(r.findings[0]?.title ?? '')}`;
  }
  if (!r.check.ok) return `check: ${normalise(r.check.problems[0] ?? '(no problem named)')}`;
  if (!r.accounting.ok) return 'accounting: sent != delivered + queued';
  return undefined;
}

function normalise(s: string): string {
  return s.replace(/0x[0-9a-f]+/gi, '0xN').replace(/\d+/g, 'N');
}

function describeFailure(r: RunResult): string {
  return r.findings[0]?.title ?? (r.check.ok ? 'the message accounting does not add up' : (r.check.problems[0] ?? 'a failed check'));
}

interface Best {
  readonly schedule: Schedule;
  readonly steps: number;
  readonly guided: number;
}

export function shrink(schedule: Schedule, opts: ShrinkOptions = {}): ShrinkResult {
  const maxRuns = Math.max(1, opts.maxRuns ?? 2000);
  // Candidates may use every run but the one that checks the result.
  const budget = maxRuns - 1;
  const meta = schedule.meta;
  // The reference is what `iommu-sim replay` shows for the input (a divergence propagates: not a failure of it).
  const original = replay(schedule);
  let runs = 1;
  const signature = failureSignature(original);
  if (signature === undefined) {
    throw new NothingToShrink(`the schedule does not fail: its replay passes every check in ${original.steps} steps (nothing to shrink)`);
  }
  let best: Best = { schedule, steps: schedule.length, guided: schedule.length };
  const progress = (): void => opts.onProgress?.({ runs, maxRuns, steps: best.steps });

  /** One candidate: follow `steps` of `base`; kept (and made the best) when it fails the same way, no longer. */
  const attempt = (base: Schedule, steps: readonly number[]): boolean => {
    runs++;
    const scheduler = new GuidedScheduler(base, steps);
    scheduler.newExecution();
    let r: RunResult;
    try {
      r = runDeterministic({
        workload: buildWorkload(meta.workload.name, meta.workload.params),
        seed: meta.seed,
        scheduler,
        // A run longer than the best is of no use: stop it there (StepBudgetExceeded, caught below).
        maxSteps: best.steps,
        ...(meta.initial ? { initial: meta.initial } : {}),
        ...(meta.keepGoing ? { keepGoing: true } : {}),
      });
    } catch {
      // A candidate that crashes (an actor or task throws on an order the model never meant to allow) or runs
      // past the best length is one that does not fail the same way: an outcome, not an error of the shrink.
      return false;
    } finally {
      if (runs % 16 === 0) progress();
    }
    if (r.steps > best.steps || failureSignature(r) !== signature) return false;
    // Within a round every kept candidate follows fewer steps than the one before (ddmin only removes).
    best = { schedule: r.schedule, steps: r.steps, guided: steps.length };
    return true;
  };

  let rounds = 0;
  let exhausted = false;
  for (;;) {
    rounds++;
    const base = best.schedule;
    const stepsBefore = best.steps;
    const seen = new Set<string>();
    // Configurations are tried once per round (ddmin's subsets and complements coincide at n = 2).
    const test = (c: readonly number[]): boolean => {
      const id = digestInts(Int32Array.from(c));
      if (seen.has(id)) return false;
      seen.add(id);
      if (runs >= budget) {
        exhausted = true;
        return false;
      }
      return attempt(base, c);
    };
    let c = ddmin(
      Array.from({ length: base.length }, (_, i) => i),
      test,
      () => runs >= budget,
    );
    // The last pass: single steps, from the end (where the failure is) back. ddmin's own last granularity
    // tried them too, but the test is not monotone: a step kept then may go now that others have.
    for (let i = c.length - 1; i >= 0 && runs < budget; i--) {
      const without = [...c.slice(0, i), ...c.slice(i + 1)];
      if (test(without)) c = without;
    }
    if (runs >= budget) exhausted = true;
    if (best.steps >= stepsBefore || exhausted) break;
  }

  // Belt and braces: the result must strict-replay and fail the same way, or the input is returned as it is.
  let result = best.schedule;
  if (result !== schedule) {
    runs++;
    let ok = false;
    try {
      const check = replay(result);
      ok = check.matches && failureSignature(check) === signature;
    } catch {
      ok = false;
    }
    if (!ok) {
      result = schedule;
      best = { schedule, steps: schedule.length, guided: schedule.length };
    }
  }
  progress();
  return {
    schedule: result,
    before: schedule.length,
    after: result.length,
    runs,
    finding: describeFailure(original),
    signature,
    guided: best.guided,
    rounds,
    exhausted,
  };
}

/**
 * ddmin (Zeller & Hildebrandt 2002, fig. 5): split the configuration into n chunks; keep a chunk alone if it
 * still fails, else the complement of a chunk; when neither does, double n; stop at single elements. Returns
 * a configuration every one of whose complements of a single element was tried (1-minimal) unless `stop`.
 */
export function ddmin(config: readonly number[], test: (c: readonly number[]) => boolean, stop: () => boolean): number[] {
  let c = [...config];
  let n = 2;
  while (c.length >= 2 && !stop()) {
    const chunks = split(c, n);
    let reduced = false;
    for (const chunk of chunks) {
      if (test(chunk)) {
        c = chunk;
        n = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      for (let i = 0; i < chunks.length; i++) {
        const complement = chunks.flatMap((ch, j) => (j === i ? [] : ch));
        if (test(complement)) {
          c = complement;
          n = Math.max(n - 1, 2);
          reduced = true;
          break;
        }
      }
    }
    if (!reduced) {
      if (n >= c.length) break;
      n = Math.min(c.length, 2 * n);
    }
  }
  return c;
}

/** n chunks of near-equal size, in order. */
function split(c: readonly number[], n: number): number[][] {
  const out: number[][] = [];
  let start = 0;
  for (let i = 0; i < n; i++) {
    const end = start + Math.floor((c.length - start) / (n - i));
    if (end > start) out.push(c.slice(start, end));
    start = end;
  }
  return out;
}
