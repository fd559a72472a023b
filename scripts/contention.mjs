// Per-object contention of the stress presets from their declared footprints, the input of docs/threaded.md's
// "Estimate at 16 and 64 cores". Each preset (the scaling suite's, shorter: scripts/presets.mjs) runs in the
// deterministic runtime under a few random schedules; every step is recorded with its thread (an actor, or a
// task), the step that sent the message it handles (the trace's send step), and what the threaded runtime would
// lock for it:
//   - a task point: its footprint (src/runtime/footprint.ts: words written, words only read), less the words
//     nothing is ordered by (Workload.unorderedWords: statistics), or the coarse fallback when it declares none;
//   - a delivery of one of the workload's sharedEvents: Workload.footprintOf's answer, likewise, or the fallback;
//   - any other delivery: nothing (an actor's own state).
// The estimate places those steps on n workers as a greedy list schedule (scripts/list-schedule.mjs), every step
// one unit long: each worker, at each unit, runs the lowest-numbered of its steps whose predecessors have ended —
// its thread's previous step, the sender of its message, the last writer of each word it touches (for a write
// also the readers since), every step since the last fallback step (for a fallback step; every later step
// follows one). Actors are dealt over the workers as the sharded placement does (actor i on worker i mod n), the
// run's initial tasks round-robin, and a task spawned at run time as the threaded runtime deals it
// (src/runtime/spawn.ts: its spawner's worker's k-th spawn goes to worker (spawner + k) mod n; each spawn is
// recorded when it happens, within the spawning step). The speed-up is steps ÷ makespan: what per-object locking
// and the model's own dependencies allow, before the runtime's costs (the ticket counter, waking, messages).
// Printed per preset: steps, the fallback share, the share of steps that write the most written word, the share
// of steps of the busiest thread (an actor or task: its steps are in program order, so 1 / share bounds the
// speed-up), S(2), S(16), S(64), S(∞) = steps ÷ the longest chain of dependent steps (no number of workers does
// better), and that chain: the share of its links along one thread (program order), and what it passes from one
// thread to another by the most (a word, named by its static object; messages; the fallback lock), as shares of
// those crossings.
// Runs from dist/ (npm run build first):  node scripts/contention.mjs [--seeds N]
import { parseArgs } from 'node:util';
import Table from 'cli-table3';

import { criticalPath, FALLBACK as FALLBACK_LINK, listSchedule, MESSAGE, PROGRAM_ORDER } from './list-schedule.mjs';
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

/** The worker of each thread on n workers: actors and initial tasks dealt round-robin, spawns as spawn.ts deals. */
function placement(n) {
  const workerOf = new Map();
  const where = (thread) => workerOf.get(thread) ?? thread % n;
  const dealt = new Array(n).fill(0);
  for (const [thread, owner, fp] of steps) {
    if (fp !== SPAWN) continue;
    if (owner < 0) workerOf.set(thread, spawnOf(thread).index % n);
    else {
      const w = where(owner);
      workerOf.set(thread, spawnTarget(w, ++dealt[w], n));
    }
  }
  return where;
}

/** The steps as the list schedule takes them, with each one's send step from the run's trace (same order). */
function plan(only, trace) {
  const recs = trace.records;
  return only.map(([thread, , fp], i) => {
    if (recs[i * 6 + 1] !== thread) throw new Error(`step ${i}: the trace has actor ${recs[i * 6 + 1]}, the hooks ${thread}`);
    return { thread, fp: fp === FALLBACK ? null : fp, sendStep: recs[i * 6 + 3] };
  });
}

/** A critical-path link, as the table names it. */
function linkName(why, monitor) {
  if (why === PROGRAM_ORDER) return 'program order';
  if (why === MESSAGE) return 'messages';
  if (why === FALLBACK_LINK) return 'the fallback lock';
  const d = monitor?.describeWord?.(why) ?? `word ${why}`;
  return /\((?:static )?(.*?)(?: \+\d+)?\)$/.exec(d)?.[1] ?? d;
}

function measure(p) {
  workload = buildWorkload(p.workload, p.params);
  unordered = new UnorderedWords(workload.unorderedWords);
  shared = new Set(workload.sharedEvents ?? []);
  const sum = { steps: 0, fallback: 0, hottest: 0, busiest: 0, span: { 2: 0, 16: 0, 64: 0 }, chain: 0, links: new Map() };
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
    const steps1 = plan(only, r.trace);
    for (const n of [2, 16, 64]) {
      const where = placement(n);
      sum.span[n] += listSchedule(steps1, n, (i) => where(steps1[i].thread), { isRead, wordOf });
    }
    const cp = criticalPath(steps1, { isRead, wordOf });
    sum.chain += cp.length;
    for (const [why, k] of cp.links) {
      const name = linkName(why, workload.monitor);
      sum.links.set(name, (sum.links.get(name) ?? 0) + k);
    }
  }
  const pct = (x) => `${((100 * x) / sum.steps).toFixed(1)} %`;
  const speedup = (n) => (sum.steps / sum.span[n]).toFixed(2);
  // The chain runs mostly along one thread at a time; what matters is where it passes to another: those links.
  const all = [...sum.links].reduce((t, [, k]) => t + k, 0);
  const along = sum.links.get('program order') ?? 0;
  const crossings = [...sum.links].filter(([name]) => name !== 'program order').sort((a, b) => b[1] - a[1]);
  const crossed = all - along;
  const top = `${((100 * along) / Math.max(1, all)).toFixed(0)} % along a thread; crosses by ${crossings
    .slice(0, 3)
    .map(([name, k]) => `${name} ${((100 * k) / Math.max(1, crossed)).toFixed(0)} %`)
    .join(', ')}`;
  return [p.name, Math.round(sum.steps / seeds), pct(sum.fallback), pct(sum.hottest), pct(sum.busiest), speedup(2), speedup(16), speedup(64), (sum.steps / sum.chain).toFixed(2), top];
}

const table = new Table({ head: ['preset', 'steps', 'fallback', 'hottest word', 'busiest thread', 'S(2)', 'S(16)', 'S(64)', 'S(∞)', 'the longest chain'], style: { head: [], border: [] } });
for (const p of presets) table.push(measure(p));
console.log(table.toString());
console.log(`${seeds} random schedules a preset (seeds 1..${seeds}); shares are of all steps; S(n) = steps ÷ makespan on n workers; S(∞) = steps ÷ the longest chain of dependent steps.`);
