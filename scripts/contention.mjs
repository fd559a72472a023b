// Per-object contention of the stress presets from their declared footprints, the input of docs/threaded.md's
// "Estimate at 16 and 64 cores". Each preset (the scaling suite's report sizes) runs in the deterministic runtime
// under a few random schedules; every step is recorded with its thread (an actor, or a task) and what the threaded
// runtime would lock for it:
//   - a task point: its footprint (src/runtime/footprint.ts: words written, words only read), or the coarse
//     fallback when it declares none;
//   - a delivery of one of the workload's sharedEvents: Workload.footprintOf's answer, or the fallback;
//   - any other delivery: nothing (an actor's own state).
// The estimate replays that order on n workers as a list schedule, every step one unit long: a step starts when
// its thread's previous step has ended, when its worker is free, and when the steps it conflicts with have
// ended — the last write of each word it touches, for a write also the reads since; a fallback step conflicts
// with everything. Actors are dealt over the workers as the sharded placement does (actor i on worker i mod n),
// the run's initial tasks round-robin, and a task spawned at run time as the threaded runtime deals it
// (src/runtime/spawn.ts: its spawner's worker's k-th spawn goes to worker (spawner + k) mod n; each spawn is
// recorded when it happens, within the spawning step). The speed-up is steps ÷
// makespan: what per-object locking allows, before the runtime's own costs (the ticket counter, waking, messages).
// Printed per preset: steps, the fallback share, the share of steps that write the most written word, the share
// of steps of the busiest thread (an actor or task: its steps are in program order, so 1 / share bounds the
// speed-up), and S(2), S(16), S(64). Runs from dist/ (npm run build first):  node scripts/contention.mjs [--seeds N]
import { parseArgs } from 'node:util';
import Table from 'cli-table3';

import { benchPresets, dist } from './presets.mjs';

const { runDeterministic } = await dist('runtime/deterministic.js');
const { RandomScheduler } = await dist('runtime/schedulers/random.js');
const { buildWorkload } = await dist('runtime/workloads.js');
const { Task, TaskTable, footprintNow, spawnOf, TASK_BASE } = await dist('runtime/task.js');
const { spawnTarget } = await dist('runtime/spawn.js');
const { ActorHost } = await dist('runtime/host.js');
const { isRead, wordOf, UnorderedWords } = await dist('runtime/footprint.js');

const { values: opt } = parseArgs({ options: { seeds: { type: 'string', default: '3' } } });
const seeds = Number(opt.seeds);

const presets = benchPresets;

const FALLBACK = null;
const NOTHING = [];
/** Not a step: task `thread` was spawned by `owner` (ENV: one of the run's initial tasks). */
const SPAWN = 'spawn';
/** The run's steps and spawns in order: [thread, owner (for a spawn), footprint | FALLBACK | SPAWN]. */
let steps = [];
const perform = Task.prototype.perform;
Task.prototype.perform = function (env) {
  steps.push([this.id, -1, this.pending ? ordered(footprintNow(this.pending)) : NOTHING]);
  return perform.call(this, env);
};
const create = TaskTable.prototype.create;
TaskTable.prototype.create = function (step, owner, ...rest) {
  const t = create.call(this, step, owner, ...rest);
  steps.push([t.id, owner, SPAWN]);
  return t;
};
let shared = new Set();
let workload;
let unordered = new UnorderedWords();
/** What the threaded runtime locks of a footprint: all but the words it orders nothing by (statistics). */
const ordered = (fp) => (fp === undefined ? FALLBACK : fp.filter((e) => !unordered.has(e)));
const deliver = ActorHost.prototype.deliver;
ActorHost.prototype.deliver = function (to, event) {
  const fp = shared.has(event.type) ? ordered(workload.footprintOf?.(to, event)) : NOTHING;
  steps.push([to, -1, fp]);
  return deliver.call(this, to, event);
};

/** The list schedule of `steps` on n workers: its makespan, in steps. */
function makespan(n) {
  const workerOf = new Map();
  const where = (thread) => workerOf.get(thread) ?? thread % n;
  const dealt = new Array(n).fill(0);
  const deal = (task, owner) => {
    if (owner < 0) return spawnOf(task).index % n;
    const w = where(owner);
    return spawnTarget(w, ++dealt[w], n);
  };
  const threadEnd = new Map();
  const workerEnd = new Float64Array(n);
  const lastWrite = new Map();
  const lastRead = new Map(); // the latest end among the reads since the last write
  let fallbackEnd = 0;
  let allEnd = 0;
  for (const [thread, owner, fp] of steps) {
    if (fp === SPAWN) {
      workerOf.set(thread, deal(thread, owner));
      continue;
    }
    const w = where(thread);
    let start = Math.max(threadEnd.get(thread) ?? 0, workerEnd[w], fallbackEnd);
    if (fp === FALLBACK) start = Math.max(start, allEnd);
    else {
      for (const e of fp) {
        const word = wordOf(e);
        start = Math.max(start, lastWrite.get(word) ?? 0);
        if (!isRead(e)) start = Math.max(start, lastRead.get(word) ?? 0);
      }
    }
    const end = start + 1;
    threadEnd.set(thread, end);
    workerEnd[w] = end;
    allEnd = Math.max(allEnd, end);
    if (fp === FALLBACK) fallbackEnd = end;
    else {
      for (const e of fp) {
        const word = wordOf(e);
        if (isRead(e)) lastRead.set(word, Math.max(lastRead.get(word) ?? 0, end));
        else {
          lastWrite.set(word, end);
          lastRead.delete(word);
        }
      }
    }
  }
  return allEnd;
}

function measure(p) {
  workload = buildWorkload(p.workload, p.params);
  unordered = new UnorderedWords(workload.unorderedWords);
  shared = new Set(workload.sharedEvents ?? []);
  const sum = { steps: 0, fallback: 0, hottest: 0, busiest: 0, span: { 2: 0, 16: 0, 64: 0 } };
  for (let seed = 1; seed <= seeds; seed++) {
    steps = [];
    const sched = new RandomScheduler(seed);
    sched.newExecution();
    const r = runDeterministic({ workload, seed, scheduler: sched });
    if (!r.check.ok || r.findings.length > 0) throw new Error(`${p.name} seed ${seed}: not clean`);
    const writes = new Map();
    const perThread = new Map();
    const only = steps.filter(([, , fp]) => fp !== SPAWN);
    for (const [thread] of only) perThread.set(thread, (perThread.get(thread) ?? 0) + 1);
    sum.busiest += Math.max(...perThread.values());
    for (const [, , fp] of only) {
      if (fp === FALLBACK) sum.fallback++;
      else for (const e of fp) if (!isRead(e)) writes.set(e, (writes.get(e) ?? 0) + 1);
    }
    sum.steps += only.length;
    sum.hottest += Math.max(0, ...writes.values());
    for (const n of [2, 16, 64]) sum.span[n] += makespan(n);
  }
  const pct = (x) => `${((100 * x) / sum.steps).toFixed(1)} %`;
  const speedup = (n) => (sum.steps / sum.span[n]).toFixed(2);
  return [p.name, Math.round(sum.steps / seeds), pct(sum.fallback), pct(sum.hottest), pct(sum.busiest), speedup(2), speedup(16), speedup(64)];
}

const table = new Table({ head: ['preset', 'steps', 'fallback', 'hottest word', 'busiest thread', 'S(2)', 'S(16)', 'S(64)'], style: { head: [], border: [] } });
for (const p of presets) table.push(measure(p));
console.log(table.toString());
console.log(`${seeds} random schedules a preset (seeds 1..${seeds}); shares are of all steps; S(n) = steps ÷ makespan on n workers.`);
