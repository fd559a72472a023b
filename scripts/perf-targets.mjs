#!/usr/bin/env node
// Issue #7's performance targets, measured in one run next to the limits they are judged against (XState's own
// send rate on the same machine, one thread and two). Runs the compiled code in dist/ (`npm run build` first),
// or another build: `node scripts/perf-targets.mjs --root /path/to/other/checkout` (same layout), which is
// how the before/after figures are taken. `--quick` for a short run, `--json` for one JSON object.
//
// The machine is often shared: every rate is the best of several rounds (interference only ever slows a round
// down), and the round-by-round figures are kept in the JSON.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const ROOT = resolve(option('--root', join(dirname(fileURLToPath(import.meta.url)), '..')));
const QUICK = flag('--quick');
const JSON_OUT = flag('--json');
const ROUNDS = Number(option('--rounds', QUICK ? 2 : 5));
const load = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);

// A child of this script measuring peak memory of a 10 000-actor run (in its own process, so that nothing else
// this script allocated counts).
if (flag('--child-10k')) {
  const { run } = await load('src/runtime/run.js');
  const runtime = option('--runtime', 'deterministic');
  const r = await run({ workload: { name: 'selftest', params: { actors: 10_000, messages: 5, bug: 0, seed: 1 } }, runtime, seed: 1 });
  const status = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  process.stdout.write(JSON.stringify({ actors: r.finals.length, steps: r.steps, ok: r.check.ok, peakRss: hwm }));
  process.exit(0);
}

await load('src/kernel/workloads.js');
await load('src/workloads/index.js');
const { buildWorkload } = await load('src/runtime/workloads.js');
const { runDeterministic } = await load('src/runtime/deterministic.js');
const { run } = await load('src/runtime/run.js');
const { RandomScheduler } = await load('src/runtime/schedulers/random.js');
const { runThreaded } = await load('src/runtime/threaded.js');
const { loadScenarioFile, scenarioParams } = await load('src/scenario/load.js');
const { exploreScenario } = await load('src/scenario/explore.js');
const { createActor } = await import('xstate');

const results = {};
const lines = [];
const say = (s) => {
  lines.push(s);
  if (!JSON_OUT) console.log(s);
};
const best = (xs) => Math.max(...xs);
const fmt = (x) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(2));

/** Best of ROUNDS of fn(), which returns a rate. */
async function rounds(fn) {
  const all = [];
  for (let i = 0; i < ROUNDS; i++) all.push(await fn(i));
  return { best: best(all), rounds: all.map((x) => Math.round(x)) };
}

// ---- limits ----

{
  // XState's own send rate on the selftest machine (the deterministic selftest's actors), one thread: the
  // ceiling of a runtime that delivers those events and does nothing else.
  const w = buildWorkload('selftest', { actors: 2, messages: 0, bug: 0, seed: 1 });
  const spec = w.actors[0];
  const n = QUICK ? 20_000 : 100_000;
  const r = await rounds(() => {
    const a = createActor(spec.logic, { input: spec.input });
    a.start();
    const ev = { type: 'ping', from: 1, iter: 0 };
    const t0 = performance.now();
    for (let i = 0; i < n; i++) a.send(ev);
    const ms = performance.now() - t0;
    a.stop();
    return (n / ms) * 1000;
  });
  results.xstateSend = r;
  say(`limit: XState send, selftest machine, one thread          ${fmt(r.best)} events/s`);
}

// ---- deterministic runtime: steps per second ----

function detRun(workload, seed) {
  const s = new RandomScheduler(seed);
  s.newExecution();
  const t0 = performance.now();
  const r = runDeterministic({ workload, seed, scheduler: s });
  return { steps: r.steps, ms: performance.now() - t0, hash: r.traceHash };
}

{
  // As `iommu-sim selftest --runtime deterministic --seed 7`: the first run is what the CLI measures (cold JIT).
  const w = buildWorkload('selftest', { actors: 4, messages: 1000, bug: 0, seed: 7 });
  const first = detRun(w, 7);
  const warm = await rounds(() => {
    const x = detRun(w, 7);
    return (x.steps / x.ms) * 1000;
  });
  results.selftest = { steps: first.steps, hash: first.hash, firstRun: (first.steps / first.ms) * 1000, warm };
  say(`deterministic selftest (seed 7, ${first.steps} steps): first run ${fmt(results.selftest.firstRun)} steps/s, warm ${fmt(warm.best)} steps/s  [target ≥ 200,000]`);
  // Deliveries are 3 of every 4 steps here: the rate at which XState alone would deliver them.
  say(`  (XState-bound ceiling for this workload: ${fmt((results.xstateSend.best * 4) / 3)} steps/s)`);
}

{
  const params = { iommus: 'vtd,amd,smmuv3,vtd', devices: QUICK ? 16 : 64, processes: QUICK ? 64 : 256, script: 'stress', seed: 1 };
  const w = buildWorkload('sva', params);
  const r = await rounds(() => {
    const x = detRun(w, 1);
    results.bigSteps = x.steps;
    return (x.steps / x.ms) * 1000;
  });
  results.bigTopology = r;
  say(`deterministic sva ${params.iommus} ${params.devices} devices ${params.processes} processes stress (${results.bigSteps} steps): ${fmt(r.best)} steps/s`);
}

// ---- exploration: schedules per second ----

async function explore(file, workers, runs, fixed, strategy) {
  const s = await loadScenarioFile(join(ROOT, 'races', file));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const out = await exploreScenario({
    model: s.model,
    params: scenarioParams(s, fixed),
    strategy: strategy ?? s.explore.strategy,
    depth: s.explore.depth,
    seed: s.explore.seed,
    runs,
    workers,
    keepGoing: false,
  });
  const c = process.cpuUsage(c0);
  // CPU time of every thread of the process (the pool's workers are threads of it): on a shared machine the
  // wall-clock scaling says how many cores were free as much as how well the pool scales.
  return { executions: out.executions, ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, failures: out.failures };
}

results.explore = {};
for (const [file, runs] of [
  ['003-quota-race.yaml', QUICK ? 2000 : 8000],
  ['000-pasid-reuse-before-drain.yaml', QUICK ? 500 : 2000],
]) {
  const s = await loadScenarioFile(join(ROOT, 'races', file));
  const probe = await run({ workload: { name: s.model, params: scenarioParams(s, true) }, runtime: 'deterministic', seed: 1, strategy: s.explore.strategy, runs: 20 });
  const row = {};
  const perCpu = {};
  for (const workers of [1, 2]) {
    const cpuRates = [];
    row[workers] = await rounds(async () => {
      const x = await explore(file, workers, runs, true);
      cpuRates.push((x.executions / x.cpuMs) * 1000);
      return (x.executions / x.ms) * 1000;
    });
    perCpu[workers] = best(cpuRates);
  }
  row.steps = probe.steps;
  row.scaling = row[2].best / row[1].best;
  row.perCpuSecond = perCpu;
  results.explore[file] = row;
  say(
    `explore ${file} --fixed (~${probe.steps} steps a schedule): 1 worker ${fmt(row[1].best)}/s, 2 workers ${fmt(row[2].best)}/s (×${row.scaling.toFixed(2)})  [target ≥ 1,000/s on a ~100-step race, ≥ 1.6× with 2]`,
  );
  say(`  per CPU-second of the process: 1 worker ${fmt(perCpu[1])}, 2 workers ${fmt(perCpu[2])} schedules`);
}

// ---- every race, found by PCT ----

{
  results.pct = {};
  const files = readdirSync(join(ROOT, 'races')).filter((f) => f.endsWith('.yaml')).sort();
  say('races found by PCT (1 worker, the scenario\'s depth and seed; budget 1000 schedules):');
  for (const file of files) {
    const s = await loadScenarioFile(join(ROOT, 'races', file));
    // In-process, as a pool task does it: the executions needed and the time they take (no thread start-up).
    const t0 = performance.now();
    let r;
    try {
      r = await run({
        workload: { name: s.model, params: scenarioParams(s, false) },
        runtime: 'deterministic',
        seed: s.explore.seed,
        strategy: 'pct',
        depth: s.explore.depth,
        runs: 1000,
      });
    } catch (err) {
      results.pct[file] = { error: String(err?.message ?? err) };
      say(`  ${file.padEnd(46)} error: ${results.pct[file].error}`);
      continue;
    }
    const ms = performance.now() - t0;
    const found = r.findings.length > 0 || !r.check.ok;
    results.pct[file] = { found, executions: r.executions, ms };
    say(`  ${file.padEnd(46)} ${found ? 'found' : 'NOT FOUND'} after ${String(r.executions).padStart(4)} schedules, ${ms.toFixed(0).padStart(5)} ms`);
  }
}

// ---- recording and checkers ----

async function threadedRate(workload, keepTrace) {
  const t0 = performance.now();
  const r = await runThreaded({ workload, seed: 1, placement: 'sharded', workers: 2, keepTrace, keepGoing: false });
  return (r.steps / (performance.now() - t0)) * 1000;
}

{
  results.recording = {};
  for (const [name, w] of [
    ['selftest', () => buildWorkload('selftest', { actors: 8, messages: QUICK ? 2000 : 10_000, bug: 0, seed: 1 })],
    ['sva', () => buildWorkload('sva', { iommus: 'vtd,amd', devices: 8, processes: 32, script: 'stress', seed: 1 })],
  ]) {
    const on = [];
    const off = [];
    for (let i = 0; i < ROUNDS; i++) {
      off.push(await threadedRate(w(), false));
      on.push(await threadedRate(w(), true));
    }
    const slower = best(off) / best(on);
    results.recording[name] = { on: on.map(Math.round), off: off.map(Math.round), slowdown: slower };
    say(`threaded ${name}, 2 workers: recording off ${fmt(best(off))} steps/s, on ${fmt(best(on))} steps/s: ${((slower - 1) * 100).toFixed(0)}% slower  [target ≤ 20%]`);
  }
}

{
  results.checkers = {};
  for (const mode of ['locks', 'rcu']) {
    const rate = (checkers) => {
      const w = buildWorkload('kernel-selftest', { mode, tasks: 4, iterations: QUICK ? 1000 : 4000, lock: 'both', checkers });
      const x = detRun(w, 1);
      return (x.steps / x.ms) * 1000;
    };
    const on = [];
    const off = [];
    // Alternating, after a round of each to warm up.
    rate(false);
    rate(true);
    for (let i = 0; i < ROUNDS + 2; i++) {
      off.push(rate(false));
      on.push(rate(true));
    }
    const slower = best(off) / best(on);
    results.checkers[mode] = { on: on.map(Math.round), off: off.map(Math.round), slowdown: slower };
    say(`deterministic kernel-selftest ${mode}: checkers off ${fmt(best(off))} steps/s, on ${fmt(best(on))} steps/s: ×${slower.toFixed(2)}  [target ≤ 1.5×]`);
  }
}

// ---- 10 000 actors ----

{
  results.tenThousand = {};
  for (const runtime of ['deterministic', 'threaded']) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child-10k', '--root', ROOT, '--runtime', runtime], { encoding: 'utf8' });
    const r = JSON.parse(out);
    results.tenThousand[runtime] = r;
    say(`${runtime}: ${r.actors} actors, ${r.steps} steps, ok ${r.ok}: peak resident ${(r.peakRss / 2 ** 20).toFixed(0)} MiB  [target < 1024 MiB]`);
  }
}

results.machine = { cpus: availableParallelism(), node: process.version, root: ROOT, rounds: ROUNDS };
if (JSON_OUT) process.stdout.write(`${JSON.stringify(results)}\n`);
