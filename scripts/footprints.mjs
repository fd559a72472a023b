// The footprints of the stress presets' steps (docs/threaded.md, issue #19): each shipped stress config
// (stress/*.yaml) and the scaling bench's presets run in the deterministic runtime with every declared footprint
// checked against what its step wrote (src/runtime/footprint-check.ts: a violation is printed and exits 1), and
// the steps the threaded runtime would lock are counted: task points and deliveries of shared events, with or
// without a footprint. Printed per preset: the fallback share (locked steps with none: they take the coarse lock)
// and the undeclared points and shared events by count, most frequent first — the list of what to declare next.
// Runs from dist/ (npm run build first):  node scripts/footprints.mjs [--seeds N] [--top N] [--preset NAME]
import { parseArgs } from 'node:util';

import { benchPresets, dist, stressPreset } from './presets.mjs';

const { runDeterministic } = await dist('runtime/deterministic.js');
const { RandomScheduler } = await dist('runtime/schedulers/random.js');
const { buildWorkload } = await dist('runtime/workloads.js');
const { Task } = await dist('runtime/task.js');

const { values: opt } = parseArgs({ options: { seeds: { type: 'string', default: '1' }, top: { type: 'string', default: '25' }, preset: { type: 'string' } } });
const seeds = Number(opt.seeds);
const top = Number(opt.top);

const presets = [
  await stressPreset('random'),
  await stressPreset('hotplug'),
  await stressPreset('mixed'),
  ...benchPresets.map((p) => ({ ...p, name: `bench ${p.name}` })),
].filter((p) => opt.preset === undefined || p.name === opt.preset);

// Every performed point: its label and whether it declares a footprint.
let points = [];
const perform = Task.prototype.perform;
Task.prototype.perform = function (env) {
  const p = this.pending;
  points.push([p?.label ?? '?', p?.footprint !== undefined || p?.footprintOf !== undefined]);
  return perform.call(this, env);
};

const shape = (label) => label.replace(/\d+/g, 'N');
let failed = false;
for (const p of presets) {
  const w = buildWorkload(p.workload, p.params);
  const shared = new Set(w.sharedEvents ?? []);
  const undeclared = new Map();
  const tally = { locked: 0, fallback: 0 };
  const note = (name, declared) => {
    tally.locked++;
    if (declared) return;
    tally.fallback++;
    undeclared.set(name, (undeclared.get(name) ?? 0) + 1);
  };
  // With footprints checked, the deterministic runtime asks footprintOf once per shared delivery.
  const asked = w.footprintOf?.bind(w);
  if (asked) w.footprintOf = (to, event) => {
    const fp = asked(to, event);
    note(`event ${event.type}`, fp !== undefined);
    return fp;
  };
  try {
    for (let seed = 1; seed <= seeds; seed++) {
      points = [];
      const sched = new RandomScheduler(seed);
      sched.newExecution();
      const r = runDeterministic({ workload: w, seed, scheduler: sched, checkFootprints: true });
      for (const [label, declared] of points) note(shape(label), declared);
      if (asked) continue;
      for (let i = 0; i < r.trace.length; i++) {
        const name = r.trace.eventNames.get(r.trace.record(i).event);
        if (shared.has(name)) note(`event ${name}`, false);
      }
    }
  } catch (e) {
    failed = true;
    console.log(`${p.name}: ${e.name}: ${e.message}`);
    continue;
  }
  const pct = (n) => `${((100 * n) / Math.max(1, tally.locked)).toFixed(1)} %`;
  console.log(`${p.name}: ${tally.locked} locked steps, ${pct(tally.fallback)} on the coarse fallback`);
  const rows = [...undeclared].sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [name, n] of rows) console.log(`  ${String(n).padStart(6)}  ${pct(n).padStart(7)}  ${name}`);
}
process.exit(failed ? 1 : 0);

