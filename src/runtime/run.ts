// One entry point for running a workload in either runtime, exploring many deterministic executions, and
// replaying a recorded schedule. The CLI and the tests both go through here.
import { runDeterministic, Scratch } from './deterministic.js';
import { describe, InputError } from './errors.js';
import { pseudoName, type Wire, type Workload } from './model.js';
import type { Placement, RunResult, RuntimeName } from './result.js';
import { describeOutcome, outcomeOf, Schedule } from './schedule.js';
import type { Scheduler, StrategyName } from './scheduler.js';
import { createScheduler } from './schedulers/index.js';
import { RandomScheduler } from './schedulers/random.js';
import { ReplayScheduler } from './schedulers/replay.js';
import { runThreaded } from './threaded.js';
import { buildWorkload } from './workloads.js';

export interface RunOptions {
  readonly workload: { readonly name: string; readonly params: Readonly<Record<string, Wire>> };
  readonly runtime: RuntimeName;
  readonly seed: number;
  readonly strategy?: StrategyName;
  readonly depth?: number;
  /**
   * Deterministic: explore up to this many executions, stopping at the first that fails its checks (or that
   * `decisive` picks). Under random and pct, execution i runs from scheduler seed `seed + i` alone — what
   * `run --seed <seed + i> --runs 1` runs — so that an execution is named by its seed wherever it ran.
   * Threaded: this many recorded runs, from seeds seed, seed+1, …, stopping at the first that fails.
   */
  readonly runs?: number;
  /** Whether an execution (a threaded run) ends the run (default: one with a finding or a failed check); asked of each. */
  readonly decisive?: (r: RunResult) => boolean;
  /**
   * Deterministic, with runs > 1: run all of them instead of stopping at the first failing execution (explore
   * --keep-going). The outcome is then the first failing execution, with every failing one counted.
   */
  readonly allRuns?: boolean;
  readonly placement?: Placement;
  readonly workers?: number;
  readonly maxSteps?: number;
  readonly keepTrace?: boolean;
  /** Collect every finding instead of stopping at the first. */
  readonly keepGoing?: boolean;
  /** Deterministic: (executions, runs), or one execution's (steps, 0). Threaded: (delivered, sent, steps) about every ms. */
  readonly onProgress?: (done: number, total: number, steps?: number) => void;
  /**
   * Deterministic: each execution's result, with the workload it ran (coverage is gathered here). With runs > 1
   * its `shared` is reused by the execution after next (Scratch): read it here, do not keep it.
   */
  readonly onExecution?: (r: RunResult, w: Workload) => void;
  readonly signal?: AbortSignal;
  /** Threaded: the caller's budget ran out; stop the run in flight at its next scheduling point (ThreadedOptions.cut). */
  readonly cut?: AbortSignal;
  /**
   * Deterministic, runs > 1: the caller's time budget (Date.now() ms): no execution starts after it (the first
   * always does). A deterministic execution is not stopped midway: it is the unit a verdict is made of.
   */
  readonly until?: number;
  /**
   * Deterministic: buffers to reuse (see Scratch), e.g. one per thread across an exploration's chunks. Not to be
   * shared by two runs at once. Without it, a run of several executions makes its own.
   */
  readonly scratch?: Scratch;
  /**
   * Deterministic: the workload already built from `workload` (name, params), reused from an earlier run — its
   * functions stay compiled and optimized, which a fresh build's closures are not. Restarted before use.
   */
  readonly built?: Workload;
}

export interface RunOutcome extends RunResult {
  /** Executions tried (1 for the threaded runtime). */
  readonly executions: number;
  /** What the scheduler explored, e.g. "dfs: space exhausted after 12 executions". */
  readonly explored: string;
  /** Executions that failed (a finding, or the workload's check), and how many by the kind of the first finding. */
  readonly failing: number;
  readonly failingKinds: Readonly<Record<string, number>>;
  /** Threaded: each run in order, with its own trace hash and recording (the outcome is the last of them). */
  readonly threadedRuns?: readonly ThreadedRunRecord[];
}

/** One threaded run of several: its seed, its trace hash, how it failed (if it did) and its recording. */
export interface ThreadedRunRecord {
  readonly seed: number;
  readonly traceHash: string;
  readonly failure?: string;
  readonly schedule: Schedule;
}

/** Adds counts by kind into `into` (failing executions by kind, summed over runs, chunks or workers). */
export function addKinds(into: Record<string, number>, counts: Readonly<Record<string, number>>): void {
  for (const [k, n] of Object.entries(counts)) into[k] = (into[k] ?? 0) + n;
}

/** The kind a failing execution is counted under: its first finding's, or `check` when only the check failed. */
export function failureKind(r: RunResult): string | undefined {
  if (r.findings.length > 0) return r.findings[0]?.kind;
  return r.check.ok ? undefined : 'check';
}

export async function run(opts: RunOptions): Promise<RunOutcome> {
  const workload = opts.built ?? buildWorkload(opts.workload.name, opts.workload.params);
  if (opts.runtime === 'threaded') return threadedRuns(opts, workload);
  const strategy = opts.strategy ?? 'random';
  const depth = opts.depth ?? 3;
  const runs = opts.runs ?? 1;
  // One result is returned (the first decisive execution, or the last): the executions can share buffers.
  const scratch = opts.scratch ?? (runs > 1 ? new Scratch() : undefined);
  const schedulers = seededSchedulers(workload, strategy, depth, opts.seed, { ...(scratch ? { scratch } : {}), ...(opts.maxSteps ? { maxSteps: opts.maxSteps } : {}) });
  const decisive = opts.decisive ?? ((r: RunResult) => failureKind(r) !== undefined);
  let last: RunResult | undefined;
  let first: RunResult | undefined;
  let executions = 0;
  let failing = 0;
  const failingKinds: Record<string, number> = {};
  let scheduler = schedulers(0);
  while (executions < runs && !opts.signal?.aborted && !(executions > 0 && opts.until !== undefined && Date.now() >= opts.until)) {
    scheduler = schedulers(executions);
    if (!scheduler.newExecution()) break;
    last = runDeterministic({
      workload,
      seed: opts.seed + executions,
      scheduler,
      keepGoing: opts.keepGoing ?? false,
      ...(scratch ? { scratch } : {}),
      ...(opts.maxSteps ? { maxSteps: opts.maxSteps } : {}),
      // One long execution reports its steps (total unknown); an exploration reports executions.
      ...(runs === 1 && opts.onProgress ? { onProgress: (steps: number) => opts.onProgress?.(steps, 0) } : {}),
    });
    executions++;
    opts.onExecution?.(last, workload);
    opts.onProgress?.(executions, runs);
    const kind = failureKind(last);
    if (kind !== undefined) {
      failing++;
      addKinds(failingKinds, { [kind]: 1 });
    }
    // Asked of every execution: the caller may count them all (explore --keep-going).
    const decided = decisive(last);
    if (first === undefined && decided) {
      if (!opts.allRuns) break;
      // Kept past the executions after it: its lazy trace hash and schedule are taken now (the spread reads
      // them), and its memory copied out of the scratch, which they reuse.
      first = { ...last, ...(scratch ? { shared: last.shared.slice() } : {}) };
    }
    // Let a progress bar and Ctrl-C in between executions.
    if (runs > 1 && executions % 64 === 0) await new Promise((r) => setImmediate(r));
  }
  if (!last) throw new Error(`${scheduler.describe()}: no execution was run`);
  const explored = strategy === 'dfs' ? scheduler.describe() : `${strategy}${strategy === 'pct' ? `(depth ${depth})` : ''}: ${executions} executions, seeds ${opts.seed}..${opts.seed + executions - 1}`;
  return { ...(first ?? last), strategy, executions, explored, failing, failingKinds };
}

/**
 * The scheduler of execution i. dfs walks one space across executions (seeds do not name its executions).
 * random and pct start afresh from seed + i, so that an execution depends on its seed alone; pct's k (the
 * length its change points are drawn over) is measured once per workload (pctLength), the same for every seed
 * and chunk.
 */
function seededSchedulers(workload: Workload, strategy: StrategyName, depth: number, seed: number, probeOpts: { scratch?: Scratch; maxSteps?: number }): (i: number) => Scheduler {
  if (strategy === 'dfs') {
    const dfs = createScheduler('dfs', { seed, depth });
    return () => dfs;
  }
  if (strategy === 'random') return (i) => createScheduler('random', { seed: seed + i });
  const k = pctLength(workload, probeOpts.scratch, probeOpts.maxSteps);
  return (i) => createScheduler('pct', { seed: seed + i, depth, ...(k ? { maxSteps: k } : {}) });
}

/** Recorded threaded runs from seeds seed, seed+1, … until one decides (`decisive`: by default, one that fails) or `runs` are done; the last is the outcome. */
async function threadedRuns(opts: RunOptions, workload: Workload): Promise<RunOutcome> {
  const each: ThreadedRunRecord[] = [];
  const runs = opts.runs ?? 1;
  const decisive = opts.decisive ?? ((r: RunResult) => failureKind(r) !== undefined);
  let last: RunResult | undefined;
  const failingKinds: Record<string, number> = {};
  for (let i = 0; i < runs && !(i > 0 && (opts.signal?.aborted || opts.cut?.aborted)); i++) {
    last = await runThreaded({
      workload,
      seed: opts.seed + i,
      placement: opts.placement ?? 'sharded',
      ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
      keepTrace: opts.keepTrace ?? true,
      keepGoing: opts.keepGoing ?? false,
      ...(opts.maxSteps ? { maxSteps: opts.maxSteps } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.cut ? { cut: opts.cut } : {}),
    });
    const kind = failureKind(last);
    const r = last;
    each.push({ seed: r.seed, traceHash: r.traceHash, ...(kind ? { failure: kind } : {}), schedule: r.schedule });
    if (kind) addKinds(failingKinds, { [kind]: 1 });
    if (decisive(r) || r.cut) break;
  }
  const r = last as RunResult;
  const failing = Object.values(failingKinds).reduce((a, b) => a + b, 0);
  const explored = `threaded: ${r.workers} workers, ${r.placement}${each.length > 1 ? `, ${each.length} runs` : ''}`;
  return { ...r, executions: each.length, explored, failing, failingKinds, threadedRuns: each };
}

/** PCT's k of each workload built, measured once (a workload's length does not change between runs of it). */
const pctLengths = new WeakMap<Workload, number>();

/**
 * PCT's k for a workload: the steps of one execution under a random walk from a fixed seed, run to its end —
 * the same whatever the seed, the chunk or the executions before, so that chunking an exploration does not
 * change what PCT draws. A workload that cannot finish that execution keeps PCT's default guess.
 */
function pctLength(workload: Workload, scratch: Scratch | undefined, maxSteps: number | undefined): number | undefined {
  const known = pctLengths.get(workload);
  if (known !== undefined) return known;
  const scheduler = new RandomScheduler(0);
  scheduler.newExecution();
  let k: number | undefined;
  try {
    k = runDeterministic({ workload, seed: 0, scheduler, keepGoing: true, ...(scratch ? { scratch } : {}), ...(maxSteps ? { maxSteps } : {}) }).steps;
  } catch {
    // The executions themselves will say what is wrong with the workload.
    k = undefined;
  }
  if (k !== undefined) pctLengths.set(workload, Math.max(1, k));
  return k;
}

export interface ReplayOutcome extends RunResult {
  readonly recordedHash: string;
  /** The replay reproduced the recording: the same trace hash and the same outcome (finding kinds, check). */
  readonly matches: boolean;
  /** Why it did not, when it took every recorded step and still differs (a divergence of a step throws). */
  readonly mismatch?: string;
}

/**
 * Run a recorded schedule again, step by step, in the deterministic runtime. A recorded step that cannot be
 * taken throws a ReplayDivergence naming the step, what was expected and what was enabled; a replay that
 * takes every step but ends with another trace hash or another outcome says so in `mismatch`.
 */
export function replay(schedule: Schedule): ReplayOutcome {
  const meta = schedule.meta;
  const workload = recordedWorkload(meta);
  const names = workload.actors.map((a) => a.name);
  const scheduler = new ReplayScheduler(schedule, (id) => (id >= 0 ? (names[id] ?? `#${id}`) : pseudoName(id)));
  scheduler.newExecution();
  const r = runDeterministic({
    workload,
    seed: meta.seed,
    scheduler,
    ...(meta.initial ? { initial: meta.initial } : {}),
    ...(meta.keepGoing ? { keepGoing: true } : {}),
  });
  const outcome = outcomeOf(r.findings, r.check.ok);
  const sameOutcome = sameKinds(outcome.kinds, meta.outcome.kinds) && outcome.checkOk === meta.outcome.checkOk;
  const mismatch =
    r.traceHash !== meta.traceHash
      ? `every recorded step was taken, but the trace hash is ${r.traceHash}, not the recorded ${meta.traceHash} (an actor's state or an atomic operation's result differs)`
      : !sameOutcome
        ? `the recorded run ended with ${describeOutcome(meta.outcome)}; the replay with ${describeOutcome(outcome)}`
        : undefined;
  // A threaded recording's happens-before edges number the same steps as the replay's trace.
  const trace = schedule.hb ? r.trace.withHb(schedule.hb) : r.trace;
  return { ...r, trace, strategy: 'replay', recordedHash: meta.traceHash, matches: mismatch === undefined, ...(mismatch ? { mismatch } : {}) };
}

/** The workload a schedule names, built again; parameters it refuses are the file's fault (bad input). */
function recordedWorkload(meta: Schedule['meta']): Workload {
  try {
    return buildWorkload(meta.workload.name, meta.workload.params);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`the schedule's workload ${meta.workload.name} cannot be built from its parameters: ${describe(err)}`);
  }
}

/** The same kinds, in any order: a threaded run's workers report in their own order. */
function sameKinds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().join() === [...b].sort().join();
}

export { Schedule };
