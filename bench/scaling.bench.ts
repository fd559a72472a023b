// The scaling suite (issue #7, item 3; issue #19, item 4): how the simulator's throughput and memory grow with
// its inputs.
// - workers: the stress presets — sva on one small mixed topology (VT-d, AMD, SMMUv3; 3 devices, 6 processes —
//   small enough for a thread per actor), domains (3 groups of 2 devices, one per flavour, 6 processes, VFIO) and
//   stress/mixed.yaml's configuration on fewer devices — in the threaded runtime with 1 worker, 2 workers, N
//   workers (the cores, at least 4: more than cores on a small machine), one thread per actor, and 2 workers
//   recorded (the trace kept for replay): events (delivered messages) and steps (every scheduling point) per
//   second, and the share of points on the coarse fallback lock when the run result counts it. Runs at the
//   `report` profile are 2-3 s at 1 worker (sva 24 rounds, domains 288 rounds, mixed 6 devices 3 rounds): each
//   worker isolate compiles the model on its own, and a 0.4 s run (the 4 rounds it was) measured mostly that;
//   longer, and the suite's runs (sva's 18 threads per actor the slowest) no longer fit in ~4 minutes;
// - ceiling: the same presets at the same sizes in the deterministic runtime (RandomScheduler, seed 1) on one
//   worker thread, then as two copies sharing nothing on two threads started together — the most two threads of
//   this model get on this machine (an isolate's compiler and GC threads want cores too: one run of the model
//   keeps about 1.5 cores busy), and what the 2-worker speed-up is set against (scaling_*2workers_vs_ceiling).
//   With `--noise` (a competing busy process beside the suite) only these two run;
// - topology: the sva workload (each process binds, DMAs once, unbinds and exits) on 4 IOMMUs, from 8 devices
//   and 32 processes to 512 devices and 2 048 processes (4 processes a device), 2 workers: events/s, steps/s,
//   and resident memory per actor (the process's peak RSS above what it was before the run, over the actors);
// - 10 000 actors: the runtime's own selftest workload with 10 000 actors on 2 workers, its peak RSS (target:
//   under 1 GiB);
// - exploration: deterministic schedules per second against the size of the scenario (processes on one device,
//   each binding, DMAing and unbinding), on one thread, with the steps of a schedule.
// Threaded figures are timed from the injection of the workload's initial messages to quiescence, after the
// workers have started and built the workload (start-up is reported apart). Every run must finish its work.
// The threaded ones run with --keep-going and list what the checkers reported: the workers curve's presets model
// mainline, whose races the checkers find now and then (races/000-amd-need-sync-skip.yaml), and at 9 000 actors
// the topology's lockdep runs out of lock classes, as the kernel's does (`BUG: MAX_LOCKDEP_KEYS too low!`).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import type { Wire } from '../src/runtime/model.js';
import { fallbackShare as lockedFallbackShare, type Placement, type RunResult } from '../src/runtime/result.js';
import { ThreadedRuntime } from '../src/runtime/threaded.js';
import { addWorkerTime, NO_TIME, type WorkerTime } from '../src/runtime/worker-time.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { exploreChunk } from '../src/scenario/chunk.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import { PACKAGE_ROOT } from '../src/runtime/paths.js';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { independentRuns, shareOfCeiling } from './ceiling.js';
import { type BenchResult, type DetailRow, type Profile, profileOf, runProblems, type SuiteOptions, type SuiteResult } from './measure.js';

interface Sizes {
  /** Rounds of sva's stress script in the workers curve and the ceiling (the length of its runs). */
  readonly rounds: number;
  /** Rounds of the domains preset's processes and VFIO user (tasks: a few hundred points a round). */
  readonly domainsRounds: number;
  /** Devices of the mixed preset (processes: 4 a device), and its rounds. */
  readonly mixedDevices: number;
  readonly mixedRounds: number;
  readonly runs: number;
  /** Devices of the topology points (processes: 4 a device). */
  readonly devices: readonly number[];
  readonly bigActors: number;
  /** Processes of the exploration points, and how long each is explored. */
  readonly exploreProcesses: readonly number[];
  readonly exploreMs: number;
}

// The workers curve and the ceiling share their sizes, so that their ratios compare like with like; `report`'s
// are long enough for steady state (the header says why), `quick`'s are a smoke run, not steady state.
const SIZES: Readonly<Record<Profile, Sizes>> = {
  quick: { rounds: 1, domainsRounds: 16, mixedDevices: 2, mixedRounds: 1, runs: 1, devices: [8, 32], bigActors: 1_000, exploreProcesses: [1, 2, 4], exploreMs: 100 },
  report: {
    rounds: 24,
    domainsRounds: 288,
    mixedDevices: 6,
    mixedRounds: 3,
    runs: 2,
    devices: [8, 32, 128, 512],
    bigActors: 10_000,
    exploreProcesses: [1, 2, 4, 8, 16, 32],
    exploreMs: 400,
  },
  full: {
    rounds: 64,
    domainsRounds: 768,
    mixedDevices: 16,
    mixedRounds: 3,
    runs: 3,
    devices: [8, 32, 128, 256, 512],
    bigActors: 10_000,
    exploreProcesses: [1, 2, 4, 8, 16, 32, 64],
    exploreMs: 2_000,
  },
};

const MiB = 1024 * 1024;

/** The process's peak resident set (VmHWM), in bytes; undefined off Linux. */
function peakRss(): number | undefined {
  if (!existsSync('/proc/self/status')) return undefined;
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Reset the peak to the current resident set (Linux ≥ 4.0: clear_refs 5), so each point has its own peak. */
function resetPeakRss(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Not Linux, or not allowed: the sampled peak below still holds.
  }
}

interface Sample {
  readonly result: RunResult;
  /** NaN when the run's work starts with its workers (runMs then includes start-up). */
  readonly startMs: number;
  readonly runMs: number;
  /** Peak resident set during the run above the resident set before the runtime was made, bytes. */
  readonly rssGrowth: number;
  readonly rssPeak: number;
}

/** One threaded run, timed after start-up, its memory sampled (every 10 ms, and the kernel's high-water mark). */
async function threadedRun(
  workload: string,
  params: Readonly<Record<string, Wire>>,
  placement: Placement,
  workers: number,
  keepGoing: boolean,
  keepTrace = false,
): Promise<Sample> {
  const w = buildWorkload(workload, params);
  resetPeakRss();
  const rss0 = process.memoryUsage().rss;
  let sampled = rss0;
  const timer = setInterval(() => {
    sampled = Math.max(sampled, process.memoryUsage().rss);
  }, 10);
  const made = performance.now();
  const rt = new ThreadedRuntime({ workload: w, seed: 1, workers, placement, keepTrace, keepGoing });
  // A workload with no initial message (domains: tasks alone) starts working as its workers start: its time
  // includes start-up. The others wait for their initial messages (their boot task's first steps aside).
  const tasksFirst = w.initial.length === 0;
  try {
    const t0 = performance.now();
    await rt.runToQuiescence([]);
    const t1 = performance.now();
    await rt.runToQuiescence();
    const t2 = performance.now();
    const result = await rt.finish();
    clearInterval(timer);
    const peak = Math.max(sampled, peakRss() ?? 0);
    const startMs = tasksFirst ? Number.NaN : t1 - t0;
    return { result, startMs, runMs: tasksFirst ? t2 - made : t2 - t1, rssGrowth: Math.max(0, peak - rss0), rssPeak: peak };
  } catch (err) {
    clearInterval(timer);
    await rt.stop();
    throw err;
  }
}

/**
 * A threaded run of the workers curve: kept going past a finding — the stress presets model mainline, and mainline
 * has races the checkers find now and then (races/000-amd-need-sync-skip.yaml) — but it must have done all its
 * work (its check and accounting hold); what it found is listed in the row.
 */
function finished(name: string, r: RunResult): void {
  const why = [...r.check.problems, ...(r.accounting.ok ? [] : ['accounting mismatch'])];
  if (why.length > 0 || !r.check.ok) throw new Error(`bench ${name}: the run did not finish its work: ${why.join('; ')}`);
}

/** The kinds of the findings of some runs, with their counts: `stale_translation ×2`; null for none. */
export function findingKinds(runs: readonly RunResult[]): string | null {
  const n = new Map<string, number>();
  for (const r of runs) for (const f of r.findings) n.set(f.kind, (n.get(f.kind) ?? 0) + 1);
  return n.size === 0 ? null : [...n].map(([k, c]) => `${k} ×${c}`).join(', ');
}

function clean(name: string, r: RunResult): void {
  const why = runProblems(r);
  if (why.length > 0 || !r.check.ok) throw new Error(`bench ${name}: the run is not clean: ${why.join('; ')}`);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function rate(name: string, units: readonly number[], ms: readonly number[]): BenchResult {
  const hz = median(units.map((u, i) => (u * 1000) / (ms[i] as number)));
  const total = units.reduce((a, b) => a + b, 0);
  const time = ms.reduce((a, b) => a + b, 0);
  return {
    name,
    hz,
    meanNs: (time * 1e6) / Math.max(1, total),
    p99Ns: Math.max(...units.map((u, i) => ((ms[i] as number) * 1e6) / Math.max(1, u))),
    samples: units.length,
  };
}

/** A stress preset of the workers curve: a workload and its parameters. */
interface StressPreset {
  readonly name: 'sva' | 'domains' | 'mixed';
  readonly workload: string;
  readonly params: Readonly<Record<string, Wire>>;
}

async function stressPresets(sz: Sizes): Promise<StressPreset[]> {
  const mixed = scenarioParams(await loadScenarioFile(join(PACKAGE_ROOT, 'stress', 'mixed.yaml')));
  return [
    { name: 'sva', workload: 'sva', params: { iommus: 'vtd,amd,smmuv3', devices: 3, processes: 6, script: 'stress', dmas: 8, rounds: sz.rounds } },
    { name: 'domains', workload: 'domains', params: { iommus: 'vtd,amd,smmuv3', groups: 3, groupSize: 2, processes: 6, faults: 6, script: 'stress', rounds: sz.domainsRounds } },
    // mixed.yaml's policies and script on fewer devices: its 580 actors take minutes to start a thread each.
    { name: 'mixed', workload: 'sva', params: { ...mixed, devices: sz.mixedDevices, processes: 4 * sz.mixedDevices, rounds: sz.mixedRounds } },
  ];
}

/** A run with more actors than this is not run with a thread per actor (its start-up alone takes minutes here). */
const PER_ACTOR_MAX = 32;

interface WorkersConfig {
  readonly label: string;
  readonly key: string;
  readonly placement: Placement;
  readonly workers: number;
  readonly keepTrace: boolean;
}

function workersConfigs(): WorkersConfig[] {
  const n = Math.max(4, availableParallelism());
  return [
    { label: '1 worker', key: '1worker', placement: 'sharded', workers: 1, keepTrace: false },
    { label: '2 workers', key: '2workers', placement: 'sharded', workers: 2, keepTrace: false },
    { label: `${n} workers (N)`, key: 'Nworkers', placement: 'sharded', workers: n, keepTrace: false },
    { label: 'per-actor', key: 'per_actor', placement: 'per-actor', workers: 1, keepTrace: false },
    { label: '2 workers recorded', key: '2workers_recorded', placement: 'sharded', workers: 2, keepTrace: true },
  ];
}

/**
 * The share of a run's locked steps that took the coarse fallback lock (undeclared footprint, issue #19 item 1),
 * from the run result's `locking` counts; null when it has none (a deterministic run), and the report prints n/a.
 */
export function fallbackShare(r: RunResult): number | null {
  return r.locking ? lockedFallbackShare(r.locking) : null;
}

/** The case name of one preset's configuration; sva's keep the names of the single-preset curve. */
function workersCase(p: StressPreset, c: WorkersConfig): string {
  return p.name === 'sva' ? `scaling/workers ${c.label.replace(/ \(N\)$/, '')} events` : `scaling/workers ${p.name} ${c.label.replace(/ \(N\)$/, '')} events`;
}

/** Events/s and steps/s of a preset's configurations and ceiling, by key (`1worker`, …, `ceiling1`, `ceiling2`). */
interface PresetRates {
  readonly events: Map<string, number>;
  readonly steps: Map<string, number>;
}

/** One configuration of a preset: its runs, cases and row. */
async function workersPoint(sz: Sizes, p: StressPreset, c: WorkersConfig, actors: number, out: Curve, rates: PresetRates): Promise<void> {
  const samples: Sample[] = [];
  for (let i = 0; i < sz.runs; i++) {
    const s = await threadedRun(p.workload, p.params, c.placement, c.workers, true, c.keepTrace);
    finished(`scaling workers ${p.name} ${c.label}`, s.result);
    samples.push(s);
  }
  const ms = samples.map((s) => s.runMs);
  const ev = rate(workersCase(p, c), samples.map((s) => s.result.accounting.delivered), ms);
  const st = rate(workersCase(p, c).replace(/ events$/, ' steps'), samples.map((s) => s.result.steps), ms);
  out.results.push(ev, st);
  rates.events.set(c.key, ev.hz);
  rates.steps.set(c.key, st.hz);
  const r0 = samples[0]?.result;
  const fb = samples.map((s) => fallbackShare(s.result));
  out.rows.push({
    preset: p.name,
    placement: c.label,
    threads: r0?.workers ?? null,
    actors,
    eventsPerSec: ev.hz,
    stepsPerSec: st.hz,
    runs: samples.length,
    startMs: Number.isNaN(samples[0]?.startMs) ? null : median(samples.map((s) => s.startMs)),
    dmasPerSec: median(samples.map((s) => ((s.result.check.counters.dmas ?? 0) * 1000) / s.runMs)),
    ...(Number.isNaN(samples[0]?.startMs) ? { note: 'start-up included: its tasks start with the workers' } : {}),
    fallbackShare: fb.every((x) => x !== null) ? median(fb as number[]) : null,
    ...workerTimeCells(samples.map((s) => s.result.workerTime)),
    findings: findingKinds(samples.map((s) => s.result)),
  });
}

/**
 * Where the runs' worker time went (src/runtime/worker-time.ts), summed over them: the shares waiting for step
 * locks, idle with only blocked tasks, idle with nothing, and what the blocked tasks waited on the most.
 */
export function workerTimeCells(times: readonly (WorkerTime | undefined)[]): DetailRow {
  const t = times.reduce<WorkerTime>((a, b) => (b ? addWorkerTime(a, b) : a), NO_TIME);
  if (t.totalMs <= 0) return {};
  const top = t.blockedOn[0];
  return {
    lockWaitShare: t.lockWaitMs / t.totalMs,
    blockedShare: t.blockedMs / t.totalMs,
    idleShare: t.idleMs / t.totalMs,
    blockedOn: top && t.blockedMs > 0 ? `${top.label} ${((100 * top.ms) / t.blockedMs).toFixed(0)} %` : null,
  };
}

/** The preset's ceiling: its workload in the deterministic runtime, one copy on a worker thread, then two at once. */
async function ceilingPoints(sz: Sizes, p: StressPreset, actors: number, out: Curve, rates: PresetRates, onCase: (n: string) => void): Promise<void> {
  const job = { workload: p.workload, params: p.params, seed: 1 };
  for (const copies of [1, 2]) {
    const label = copies === 1 ? '1 thread' : `${copies} independent threads`;
    onCase(`ceiling: ${p.name} stress, ${label} (deterministic, nothing shared)`);
    const runs = [];
    for (let i = 0; i < sz.runs; i++) runs.push(await independentRuns(job, copies));
    const ms = runs.map((r) => r.ms);
    const st = rate(`scaling/ceiling ${p.name} ${label} steps`, runs.map((r) => r.steps), ms);
    const ev = median(runs.map((r) => (r.delivered * 1000) / r.ms));
    out.results.push(st);
    rates.events.set(`ceiling${copies}`, ev);
    rates.steps.set(`ceiling${copies}`, st.hz);
    out.rows.push({ preset: p.name, placement: `ceiling: ${label}`, threads: copies, actors, eventsPerSec: ev, stepsPerSec: st.hz, runs: runs.length, note: 'deterministic copies, nothing shared' });
  }
}

/**
 * A preset's ratios, named `scaling_<name>` for sva (the single-preset curve's names) and `scaling_<preset>_<name>`
 * for the others. The ceiling is in steps/s, and so is the threaded speed-up set against it: both runtimes take a
 * step at every scheduling point of the same model, while the messages a run delivers vary more with its
 * schedule (sva, 40 rounds: 1 worker 20 200 events in 61 657 steps, 2 workers 23 294 in 63 641).
 */
export function presetRatios(preset: string, rates: PresetRates): Record<string, number> {
  const ratios: Record<string, number> = {};
  const key = (name: string): string => (preset === 'sva' ? `scaling_${name}` : `scaling_${preset}_${name}`);
  const put = (name: string, m: Map<string, number>, a: string, b: string): void => {
    const x = m.get(a);
    const y = m.get(b);
    if (x !== undefined && y !== undefined) ratios[key(name)] = x / y;
  };
  put('2workers_vs_1', rates.events, '2workers', '1worker');
  put('Nworkers_vs_1', rates.events, 'Nworkers', '1worker');
  put('per_actor_vs_2workers', rates.events, 'per_actor', '2workers');
  put('recording_on_vs_off', rates.events, '2workers_recorded', '2workers');
  put('ceiling_2_vs_1', rates.steps, 'ceiling2', 'ceiling1');
  const [w2, w1, c2, c1] = ['2workers', '1worker', 'ceiling2', 'ceiling1'].map((k) => rates.steps.get(k));
  if (w2 !== undefined && w1 !== undefined && c2 !== undefined && c1 !== undefined) ratios[key('2workers_vs_ceiling')] = shareOfCeiling(w2, w1, c2, c1);
  return ratios;
}

interface Curve {
  readonly results: BenchResult[];
  readonly rows: DetailRow[];
}

async function workersCurve(sz: Sizes, onCase: (n: string) => void, results: BenchResult[], rows: DetailRow[]): Promise<Record<string, number>> {
  let ratios: Record<string, number> = {};
  const out = { results, rows };
  for (const p of await stressPresets(sz)) {
    const actors = buildWorkload(p.workload, p.params).actors.length;
    const rates: PresetRates = { events: new Map(), steps: new Map() };
    for (const c of workersConfigs()) {
      if (c.placement === 'per-actor' && actors > PER_ACTOR_MAX) {
        rows.push({ preset: p.name, placement: c.label, threads: actors, actors, eventsPerSec: null, note: `not run: more than ${PER_ACTOR_MAX} actors` });
        continue;
      }
      onCase(`workers: ${p.name} stress, ${c.label}`);
      await workersPoint(sz, p, c, actors, out, rates);
    }
    await ceilingPoints(sz, p, actors, out, rates, onCase);
    ratios = { ...ratios, ...presetRatios(p.name, rates) };
  }
  return ratios;
}

async function topologyCurve(sz: Sizes, onCase: (n: string) => void, results: BenchResult[], rows: DetailRow[]): Promise<void> {
  for (const devices of sz.devices) {
    const processes = 4 * devices;
    // PASIDs and SSIDs for every process bound at once, and no more: each device's PASID state has 2^pasidBits
    // entries, and the kernel memory the model holds (512 MiB) takes 512 devices at 12 bits, not 1 024 at 13.
    const bits = Math.max(9, Math.ceil(Math.log2(processes + 1)));
    const params = { iommus: 'vtd,amd,smmuv3,vtd', devices, processes, script: 'life', dmas: 1, pages: 1, pasidBits: bits, ssidBits: bits };
    onCase(`topology: ${devices} devices, ${processes} processes`);
    const s = await threadedRun('sva', params, 'sharded', 2, true);
    const actors = buildWorkload('sva', params).actors.length;
    const c = s.result.check.counters;
    // The run is kept going past a finding (the figure is throughput); it must still have done all its work.
    if (!s.result.check.ok || (c.unbinds ?? 0) !== processes) {
      throw new Error(`bench scaling topology ${devices}/${processes}: the run did not finish its work: ${runProblems(s.result).join('; ')} (counters ${JSON.stringify(c)})`);
    }
    const ev = rate(`scaling/topology ${devices} devices ${processes} processes events`, [s.result.accounting.delivered], [s.runMs]);
    results.push(ev);
    rows.push({
      devices,
      processes,
      actors,
      eventsPerSec: ev.hz,
      stepsPerSec: (s.result.steps * 1000) / s.runMs,
      steps: s.result.steps,
      seconds: s.runMs / 1000,
      startMs: s.startMs,
      rssPeakMiB: s.rssPeak / MiB,
      rssGrowthMiB: s.rssGrowth / MiB,
      kibPerActor: s.rssGrowth / 1024 / actors,
      findings: s.result.findings.map((f) => f.title.split('\n')[0]).join('; ') || null,
    });
  }
}

async function bigRun(sz: Sizes, onCase: (n: string) => void, rows: DetailRow[]): Promise<void> {
  onCase(`${sz.bigActors} actors in one run (selftest, 2 workers)`);
  const s = await threadedRun('selftest', { actors: sz.bigActors, messages: 5, bug: 0, seed: 1 }, 'sharded', 2, false);
  clean('scaling big run', s.result);
  rows.push({
    workload: 'selftest',
    actors: sz.bigActors,
    steps: s.result.steps,
    seconds: s.runMs / 1000,
    startMs: s.startMs,
    rssPeakMiB: s.rssPeak / MiB,
    rssGrowthMiB: s.rssGrowth / MiB,
    kibPerActor: s.rssGrowth / 1024 / sz.bigActors,
  });
}

async function exploreCurve(sz: Sizes, onCase: (n: string) => void, results: BenchResult[], rows: DetailRow[]): Promise<void> {
  for (const processes of sz.exploreProcesses) {
    onCase(`exploration: ${processes} processes on one device`);
    const params = { iommus: 'vtd', devices: 1, processes, script: 'life', dmas: 2, pages: 2 };
    const task = { model: 'sva', params, strategy: 'random' as const, depth: 3, runs: 4 };
    await exploreChunk({ ...task, seed: 0 }); // JIT
    let executions = 0;
    let steps = 0;
    let seed = 1;
    const t0 = performance.now();
    while (performance.now() - t0 < sz.exploreMs) {
      const r = await exploreChunk({ ...task, seed: seed++ });
      if (r.failed) throw new Error(`bench scaling exploration (${processes} processes): a schedule failed: ${r.findings[0]?.title ?? r.problems[0]}`);
      executions += r.executions;
      // Every execution of this workload takes about as many steps: the chunk's last stands for its others.
      steps += r.steps * r.executions;
    }
    const ms = performance.now() - t0;
    const res = rate(`scaling/exploration ${processes} processes schedules`, [executions], [ms]);
    results.push(res);
    rows.push({ processes, stepsPerSchedule: steps / executions, schedulesPerSec: res.hz, stepsPerSec: (steps * 1000) / ms, schedules: executions });
  }
}

export async function scalingSuite(opts: SuiteOptions): Promise<SuiteResult> {
  const sz = SIZES[profileOf(opts)];
  const onCase = (n: string): void => opts.onCase?.(n);
  const results: BenchResult[] = [];
  const workers: DetailRow[] = [];
  const topology: DetailRow[] = [];
  const big: DetailRow[] = [];
  const exploration: DetailRow[] = [];
  if (opts.noise) {
    // Beside a competing busy process, only the threaded curve and its ceiling (what two threads get beside the
    // same process): the rest measures memory and one thread. One run a point: bench:report runs this suite twice,
    // and beside a busy process the spread between runs is the process's, not the runtime's.
    const ratios = await workersCurve({ ...sz, runs: 1 }, onCase, results, workers);
    return { suite: 'scaling', results, ratios, details: { workers } };
  }
  // The 10 000-actor run first, in the fresh process: its peak resident set is the process's own, not what the
  // runs before it left behind. Then the exploration points, then the threaded ones in growing size.
  await bigRun(sz, onCase, big);
  await exploreCurve(sz, onCase, results, exploration);
  const ratios = await workersCurve(sz, onCase, results, workers);
  await topologyCurve(sz, onCase, results, topology);
  return { suite: 'scaling', results, ratios, details: { workers, topology, bigRun: big, exploration } };
}
