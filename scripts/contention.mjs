// Per-object contention of the stress presets, the input of docs/threaded.md's "Estimate at 16 and 64 cores":
// each preset (the scaling suite's workers curve, report sizes) runs in the deterministic runtime under a few
// random schedules; every performed task point is recorded with the shared words its ready() declares
// (`Point.watch`, src/runtime/task.ts), every delivery with whether its event is one of the workload's
// `sharedEvents` (a handler that touches shared memory and declares nothing). Printed per preset:
//   steps        every step (deliveries, task points, atomics, timers)
//   undeclared points   task points with no declared footprint (no `watch`): what falls back to a coarse lock
//   shared deliveries   deliveries of the workload's sharedEvents (their handlers declare nothing either)
//   always-ready        points whose ready() reads nothing (`watch: []`): their writes are not declared
//   hottest      the share of steps on the most used declared word (all of them serialise on it)
//   handoff@n    with tasks dealt round-robin over n threads, the share of steps whose word was last used by
//                another thread (a cache line moving between cores, and an order to record)
//   serial       undeclared points + shared deliveries + hottest: Amdahl's serial fraction (optimistic: the
//                always-ready points run in parallel); worst serial adds the always-ready points
// Runs from dist/ (npm run build first):  node scripts/contention.mjs [--seeds N]
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = (p) => import(join(root, 'dist/src', p));
await dist('kernel/workloads.js');
await dist('workloads/index.js');
const { loadScenarioFile, scenarioParams } = await dist('scenario/load.js');
const { runDeterministic } = await dist('runtime/deterministic.js');
const { RandomScheduler } = await dist('runtime/schedulers/random.js');
const { buildWorkload } = await dist('runtime/workloads.js');
const { Task } = await dist('runtime/task.js');

const argSeeds = process.argv.indexOf('--seeds');
const seeds = argSeeds > 0 ? Number(process.argv[argSeeds + 1]) : 3;

const mixed = scenarioParams(await loadScenarioFile(join(root, 'stress', 'mixed.yaml')));
// The report profile's sizes of bench/scaling.bench.ts (rounds 4, mixed on 6 devices).
const presets = [
  { name: 'sva', workload: 'sva', params: { iommus: 'vtd,amd,smmuv3', devices: 3, processes: 6, script: 'stress', dmas: 8, rounds: 4 } },
  { name: 'domains', workload: 'domains', params: { iommus: 'vtd,amd,smmuv3', groups: 3, groupSize: 2, processes: 6, faults: 6, script: 'stress', rounds: 64 } },
  { name: 'mixed', workload: 'sva', params: { ...mixed, devices: 6, processes: 24, rounds: 3 } },
];

// Every performed point: the task and the words it declares (undefined: none declared).
let log = [];
const perform = Task.prototype.perform;
Task.prototype.perform = function (env) {
  log.push({ task: this.id, watch: this.pending?.watch });
  return perform.call(this, env);
};

function measure(p) {
  const w = buildWorkload(p.workload, p.params);
  const shared = new Set(w.sharedEvents ?? []);
  const sum = { steps: 0, points: 0, undeclared: 0, sharedDeliveries: 0, empty: 0, hottest: 0, handoff: { 2: 0, 16: 0, 64: 0 } };
  for (let seed = 1; seed <= seeds; seed++) {
    log = [];
    const sched = new RandomScheduler(seed);
    sched.newExecution();
    const r = runDeterministic({ workload: w, seed, scheduler: sched });
    if (!r.check.ok || r.findings.length > 0) throw new Error(`${p.name} seed ${seed}: not clean`);
    let sharedDeliveries = 0;
    for (let i = 0; i < r.trace.length; i++) {
      const rec = r.trace.record(i);
      if (shared.has(r.trace.eventNames.get(rec.event))) sharedDeliveries++;
    }
    const uses = new Map();
    const last = { 2: new Map(), 16: new Map(), 64: new Map() };
    for (const { task, watch } of log) {
      if (watch === undefined) {
        sum.undeclared++;
        continue;
      }
      if (watch.length === 0) sum.empty++;
      for (const word of watch) uses.set(word, (uses.get(word) ?? 0) + 1);
      for (const n of [2, 16, 64]) {
        const thread = task % n;
        if (watch.some((word) => last[n].has(word) && last[n].get(word) !== thread)) sum.handoff[n]++;
        for (const word of watch) last[n].set(word, thread);
      }
    }
    sum.sharedDeliveries += sharedDeliveries;
    sum.points += log.length;
    sum.steps += r.steps;
    sum.hottest += Math.max(0, ...uses.values());
  }
  const pct = (x) => `${((100 * x) / sum.steps).toFixed(1)} %`;
  const serial = (sum.undeclared + sum.sharedDeliveries + sum.hottest) / sum.steps;
  // Pessimistic: an always-ready point declares what it reads (nothing), not what it writes; if every such point
  // also took the coarse lock, it would be serial too.
  const worst = serial + sum.empty / sum.steps;
  return {
    preset: p.name,
    steps: Math.round(sum.steps / seeds),
    points: pct(sum.points),
    'undeclared points': pct(sum.undeclared),
    'shared deliveries': pct(sum.sharedDeliveries),
    'always-ready': pct(sum.empty),
    hottest: pct(sum.hottest),
    'handoff@2': pct(sum.handoff[2]),
    'handoff@16': pct(sum.handoff[16]),
    'handoff@64': pct(sum.handoff[64]),
    serial: `${(100 * serial).toFixed(1)} %`,
    'Amdahl S(16)': (1 / (serial + (1 - serial) / 16)).toFixed(1),
    'Amdahl S(64)': (1 / (serial + (1 - serial) / 64)).toFixed(1),
    'worst serial': `${(100 * worst).toFixed(1)} %`,
    'worst S(64)': (1 / (worst + (1 - worst) / 64)).toFixed(1),
  };
}

console.table(presets.map(measure));
console.log(`${seeds} random schedules a preset (seeds 1..${seeds}); shares are of all steps.`);
