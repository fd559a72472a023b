// The explore suite (issue #7, item 5): how fast `iommu-sim explore` goes through schedules, for every race
// script in races/ (as written, the bug in), with the random and the PCT strategy, on one thread and on a piscina
// pool of 2 worker threads — schedules per second, steps per schedule, and the schedules and time it took to
// reach the first failing schedule (a finding or a failed check).
//
// The unit of work is the one `explore` uses: a chunk of executions from consecutive seeds (exploreChunk,
// src/scenario/chunk.ts), each judged by the race's expectation, stopping at the first that decides it. One
// thread runs the chunks in this thread; the pool runs them on workers/explore.js (the worker `explore` uses),
// two lanes keeping both threads busy. Both take the chunks in the same order (seeds seed, seed+chunk, …), so
// they run the same executions. Each exploration goes on past
// its first failure (as `explore --keep-going`) until its time budget is spent, and past the budget until the
// first failure or a cap, so that time-to-first-finding is measured even for the rarer races. The pool is
// started and warmed up before the clock starts (its start-up is reported apart).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { PACKAGE_ROOT, workerUrl } from '../src/runtime/paths.js';
import { run } from '../src/runtime/run.js';
import type { StrategyName } from '../src/runtime/scheduler.js';
import { type ChunkResult, type ChunkTask, exploreChunk } from '../src/scenario/chunk.js';
import { RACE_FILE } from '../src/cli/matrix.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import type { Scenario } from '../src/scenario/scenario.js';
import { type BenchResult, type DetailRow, fastestOfRounds, type Profile, profileOf, type SuiteOptions, type SuiteResult } from './measure.js';

interface Sizes {
  /** The sustained run of the ~100-step race (the targets' figure): warm-up and clocked time, per mode. */
  readonly sustainMs: number;
  /** Clocked rounds of it, the modes taking turns; each keeps its fastest. */
  readonly sustainRounds: number;
  /** Explore at least this long per (race, strategy, mode). */
  readonly minMs: number;
  /** …and on, until the first failure, for at most this long. */
  readonly firstCapMs: number;
  /** Executions per chunk (pool task). */
  readonly chunk: number;
  /** Executions run in this thread to count steps per schedule. */
  readonly probe: number;
}

const SIZES: Readonly<Record<Profile, Sizes>> = {
  quick: { sustainMs: 300, sustainRounds: 1, minMs: 100, firstCapMs: 300, chunk: 8, probe: 4 },
  report: { sustainMs: 4_000, sustainRounds: 3, minMs: 350, firstCapMs: 1_500, chunk: 16, probe: 12 },
  full: { sustainMs: 10_000, sustainRounds: 3, minMs: 2_000, firstCapMs: 10_000, chunk: 16, probe: 50 },
};

export const POOL_WORKERS = 2;
const STRATEGIES: readonly StrategyName[] = ['random', 'pct'];

/** Runs one chunk: in this thread, or on a pool thread. */
type Executor = (task: ChunkTask) => Promise<ChunkResult>;

export interface ExploreSample {
  readonly executions: number;
  readonly chunks: number;
  readonly elapsedMs: number;
  /** Slowest chunk, in ms per execution (the tail). */
  readonly worstMsPerExecution: number;
  readonly first: { readonly schedules: number; readonly ms: number; readonly kind: string } | null;
}

/**
 * Explore with `lanes` chunks in flight: at least `minMs`, then on until the first failure or `firstCapMs`.
 * `expectsFailure` false (a race judged by counters): stop at `minMs`.
 */
export async function exploreFor(
  exec: Executor,
  lanes: number,
  base: Omit<ChunkTask, 'seed' | 'runs'>,
  seed0: number,
  sz: Sizes,
  expectsFailure: boolean,
): Promise<ExploreSample> {
  const t0 = performance.now();
  let next = 0;
  let executions = 0;
  let chunks = 0;
  let worst = 0;
  let first: ExploreSample['first'] = null;
  const more = (): boolean => {
    const ms = performance.now() - t0;
    if (ms < sz.minMs) return true;
    return expectsFailure && first === null && ms < sz.firstCapMs;
  };
  const lane = async (): Promise<void> => {
    while (more()) {
      // Chunks of consecutive seeds, as explore takes them: each execution has a seed of its own.
      const seed = seed0 + sz.chunk * next++;
      const c0 = performance.now();
      const r = await exec({ ...base, seed, runs: sz.chunk });
      const c1 = performance.now();
      executions += r.executions;
      chunks++;
      worst = Math.max(worst, (c1 - c0) / Math.max(1, r.executions));
      if (r.failed && first === null) {
        first = { schedules: executions, ms: c1 - t0, kind: r.findings[0]?.kind ?? 'check' };
      }
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return { executions, chunks, elapsedMs: performance.now() - t0, worstMsPerExecution: worst, first };
}

/** Mean steps per execution over `n` executions (the run's own count, not the chunk's last execution's). */
async function stepsPerSchedule(base: Omit<ChunkTask, 'seed' | 'runs'>, seed: number, n: number): Promise<number> {
  let steps = 0;
  let executions = 0;
  await run({
    workload: { name: base.model, params: base.params },
    runtime: 'deterministic',
    strategy: base.strategy,
    depth: base.depth,
    seed,
    runs: n,
    allRuns: true,
    keepTrace: false,
    onExecution: (r) => {
      steps += r.steps;
      executions++;
    },
  });
  return steps / Math.max(1, executions);
}

export interface RaceFile {
  readonly file: string;
  readonly scenario: Scenario;
}

/** Every race script in races/ (YAML, JSON or TypeScript), by name. */
export async function raceFiles(dir = join(PACKAGE_ROOT, 'races')): Promise<RaceFile[]> {
  const files = readdirSync(dir)
    .filter((f) => RACE_FILE.test(f))
    .sort();
  const out: RaceFile[] = [];
  for (const f of files) out.push({ file: f, scenario: await loadScenarioFile(join(dir, f)) });
  return out;
}

function rateResult(name: string, s: ExploreSample): BenchResult {
  return {
    name,
    hz: (s.executions * 1000) / s.elapsedMs,
    meanNs: (s.elapsedMs * 1e6) / Math.max(1, s.executions),
    p99Ns: s.worstMsPerExecution * 1e6,
    samples: s.chunks,
  };
}

export async function exploreSuite(opts: SuiteOptions & { races?: readonly RaceFile[] }): Promise<SuiteResult> {
  const sz = SIZES[profileOf(opts)];
  const races = opts.races ?? (await raceFiles());
  const results: BenchResult[] = [];
  const rows: DetailRow[] = [];
  const ratios: Record<string, number> = {};
  const speedups: number[] = [];
  const p0 = performance.now();
  const pool = new Piscina({ filename: workerUrl('explore').href, minThreads: POOL_WORKERS, maxThreads: POOL_WORKERS });
  try {
    const inThread: Executor = (t) => exploreChunk(t);
    const onPool: Executor = (t) => pool.run(t) as Promise<ChunkResult>;
    // Start both pool threads and load every race's model in them and here (JIT, module loading): one
    // execution of each race, before any clock starts.
    opts.onCase?.('warm-up: every race once, in this thread and on the pool');
    for (const { scenario: s } of races) {
      const t: ChunkTask = { model: s.model, params: scenarioParams(s), strategy: 'pct', depth: s.explore.depth, seed: 1, runs: 1 };
      // A race that throws is reported below, with its error.
      await Promise.all([inThread(t), ...Array.from({ length: POOL_WORKERS }, () => onPool(t))]).catch(() => undefined);
    }
    const poolStartMs = performance.now() - p0;
    for (const { file, scenario: s } of races) {
      const race = file.replace(RACE_FILE, '');
      const expectsFailure = s.expect.findings.length > 0;
      for (const strategy of STRATEGIES) {
        opts.onCase?.(`${race} (${strategy})`);
        const base = { model: s.model, params: scenarioParams(s), strategy, depth: s.explore.depth, expect: s.expect };
        const row = { race, model: s.model, strategy, depth: strategy === 'pct' ? s.explore.depth : null, expectsFinding: expectsFailure };
        try {
          const steps = await stepsPerSchedule(base, s.explore.seed, sz.probe);
          const one = await exploreFor(inThread, 1, base, s.explore.seed, sz, expectsFailure);
          const two = await exploreFor(onPool, POOL_WORKERS, base, s.explore.seed, sz, expectsFailure);
          const r1 = rateResult(`explore/${race}/${strategy} (1 thread)`, one);
          const r2 = rateResult(`explore/${race}/${strategy} (${POOL_WORKERS}-worker pool)`, two);
          results.push(r1, r2);
          ratios[`explore/${race}/${strategy} pool vs 1 thread`] = r2.hz / r1.hz;
          speedups.push(r2.hz / r1.hz);
          for (const [mode, x, r] of [
            ['1 thread', one, r1],
            [`${POOL_WORKERS}-worker pool`, two, r2],
          ] as const) {
            rows.push({
              ...row,
              mode,
              stepsPerSchedule: Math.round(steps),
              schedules: x.executions,
              seconds: x.elapsedMs / 1000,
              schedulesPerSec: r.hz,
              firstSchedules: x.first?.schedules ?? null,
              firstMs: x.first?.ms ?? null,
              firstKind: x.first?.kind ?? null,
              error: null,
            });
          }
        } catch (err) {
          // A race whose model throws (an actor or task crashing) is a result too: reported, not fatal to the rest.
          rows.push({ ...row, mode: 'error', error: err instanceof Error ? err.message : String(err) });
        }
      }
    }
    const sustained = await sustainedRun(races, rows, inThread, onPool, sz, opts.onCase);
    if (sustained) {
      results.push(...sustained.results);
      Object.assign(ratios, sustained.ratios);
    }
    ratios['explore pool vs 1 thread'] = Math.exp(speedups.reduce((a, r) => a + Math.log(r), 0) / Math.max(1, speedups.length));
    return {
      suite: 'explore',
      results,
      ratios,
      details: { explore: rows, pool: [{ workers: POOL_WORKERS, startAndWarmupMs: poolStartMs, chunk: sz.chunk }], sustained: sustained?.rows ?? [] },
    };
  } finally {
    await pool.destroy();
  }
}

/** `explore`'s own chunk size: the sustained run explores as the command does. */
const SUSTAIN_CHUNK = 64;

/**
 * The race closest to 100 steps a schedule (PCT), explored for `sustainMs` on one thread and on the pool, each
 * after as long a warm-up on the same race (the per-race table above measures a few hundred ms, mostly warm-up
 * and pool hand-offs), next to what the machine itself gives two threads of plain JavaScript: the targets'
 * figures, with the limit they are judged against.
 */
async function sustainedRun(
  races: readonly RaceFile[],
  rows: readonly DetailRow[],
  inThread: Executor,
  onPool: Executor,
  sz: Sizes,
  onCase?: (name: string) => void,
): Promise<{ results: BenchResult[]; ratios: Record<string, number>; rows: DetailRow[] } | undefined> {
  const pct = rows.filter((r) => r.strategy === 'pct' && r.mode === '1 thread' && typeof r.stepsPerSchedule === 'number');
  const pick = [...pct].sort((a, b) => Math.abs((a.stepsPerSchedule as number) - 100) - Math.abs((b.stepsPerSchedule as number) - 100))[0];
  const found = races.find((r) => r.file.replace(RACE_FILE, '') === pick?.race);
  if (!pick || !found) return undefined;
  const s = found.scenario;
  // As `explore --keep-going --time` explores: a chunk runs all its schedules, failing ones counted, so that the
  // figure is schedules explored, not chunks started (the race fails at most schedules).
  const base = { model: s.model, params: scenarioParams(s), strategy: 'pct' as const, depth: s.explore.depth, keepGoing: true };
  const timed = { ...sz, minMs: sz.sustainMs, chunk: SUSTAIN_CHUNK };
  const modes = [
    ['1 thread', inThread, 1],
    [`${POOL_WORKERS}-worker pool`, onPool, POOL_WORKERS],
  ] as const;
  for (const [mode, exec, lanes] of modes) {
    onCase?.(`sustained: ${pick.race} (pct), ${mode}: ${sz.sustainMs} ms warm-up`);
    await exploreFor(exec, lanes, base, 1_000_000, timed, false);
  }
  // Then the two in alternating rounds, each keeping its fastest (the same seeds every round, so the rounds
  // differ in timing only): a round that shared a core with something else costs neither mode its figure.
  const measured = await fastestOfRounds(
    sz.sustainRounds,
    modes.map(([mode, exec, lanes]) => async () => {
      onCase?.(`sustained: ${pick.race} (pct), ${mode}: ${sz.sustainMs} ms clocked, fastest of ${sz.sustainRounds} rounds`);
      return { mode, x: await exploreFor(exec, lanes, base, s.explore.seed, timed, false) };
    }),
    (m) => m.mode,
    (m) => m.x.executions / m.x.elapsedMs,
  );
  onCase?.('the machine: plain JavaScript on one thread and on two');
  const parallel = await parallelLimit(POOL_WORKERS);
  const sample = (mode: string): ExploreSample => {
    const m = measured.get(mode);
    if (!m) throw new Error(`explore bench: no sustained result for ${mode}`);
    return m.x;
  };
  const one = rateResult(`explore_sustained/${pick.race}/pct (1 thread)`, sample('1 thread'));
  const pool = rateResult(`explore_sustained/${pick.race}/pct (${POOL_WORKERS}-worker pool)`, sample(`${POOL_WORKERS}-worker pool`));
  return {
    results: [one, pool],
    ratios: { 'explore sustained pool vs 1 thread': pool.hz / one.hz, 'plain JS 2 threads vs 1 (the machine)': parallel },
    rows: [
      {
        race: pick.race,
        stepsPerSchedule: pick.stepsPerSchedule,
        seconds: sz.sustainMs / 1000,
        rounds: sz.sustainRounds,
        oneThread: one.hz,
        pool: pool.hz,
        poolVsOne: pool.hz / one.hz,
        machineTwoVsOne: parallel,
      },
    ],
  };
}

/**
 * How much faster `threads` worker threads get through `threads` times the work of one, for allocating
 * JavaScript with nothing shared: the most a pool of that many workers can gain on this machine (V8's own
 * compiler and GC threads want cores too). Three rounds of each.
 */
export async function parallelLimit(threads: number): Promise<number> {
  const { Worker } = await import('node:worker_threads');
  const body = `
    const { parentPort } = require('node:worker_threads');
    let keep = [];
    let x = 0;
    for (let i = 0; i < 12e6; i++) {
      const o = { i, s: 'k' + (i & 1023), a: [i, i + 1] };
      keep.push(o);
      if (keep.length > 4096) keep = [];
      x += o.a[1];
    }
    parentPort.postMessage(x);`;
  const wall = async (n: number): Promise<number> => {
    const t0 = performance.now();
    await Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(body, { eval: true });
            w.once('message', () => {
              void w.terminate();
              resolve();
            });
            w.once('error', reject);
          }),
      ),
    );
    return performance.now() - t0;
  };
  // Each side's fastest round: interference only ever slows a round down (a best ratio would pair a slowed
  // single-thread round with an undisturbed parallel one).
  let one = Number.POSITIVE_INFINITY;
  let many = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    one = Math.min(one, await wall(1));
    many = Math.min(many, await wall(threads));
  }
  return (threads * one) / many;
}
