#!/usr/bin/env node
// Where a benchmark case's time goes, on any built tree of iommu-sim (this one, or a worktree of an older commit:
// the benchmark criterion of issue #15 compares two): per unit the case counts (a bind+unbind pair, a DMA-API
// job, …), the scheduling points it takes — kernel-task points, actor deliveries, atomics — which are exact and
// load-independent; and, with --time N, the CPU µs per point over N runs after a warm-up, and how much of it the
// actors' deliveries (XState plus the hardware's handling of the event) take, by actor kind and event (CPU time
// read around each delivery: its own cost, about a µs, is in the figures).
//
// Usage: node scripts/points-per-op.mjs TREE [--time N] [--case NAME]   (TREE: a checkout with dist/ built)
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const tree = resolve(args[0] ?? '.');
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const timeRuns = Number(opt('--time') ?? 0);
const only = opt('--case');

const dist = (p) => import(join(tree, 'dist/src', p));
// The workload registry moved with issue #15 (actors/workloads.js before, workloads/index.js after).
try {
  await dist('workloads/index.js');
} catch {
  await dist('actors/workloads.js');
}
const { run } = await dist('runtime/run.js');
const { ActorHost } = await dist('runtime/host.js');

const CASES = [];
for (const f of ['vtd', 'amd', 'smmuv3']) {
  CASES.push([`${f} translate-iotlb-hit`, { iommus: f, devices: 1, processes: 1, pages: 1, atc: 0, script: 'stress', rounds: 1, dmas: 10000 }, 'iotlb_hits']);
  CASES.push([`${f} translate-iotlb-miss`, { iommus: f, devices: 1, processes: 1, pages: 1, atc: 0, script: 'stress', rounds: 1, dmas: 10000, iotlb: 0 }, 'iotlb_misses']);
  CASES.push([`${f} bind+unbind`, { iommus: f, devices: 4, processes: 4, script: 'stress', rounds: 100, dmas: 0 }, 'unbinds']);
  CASES.push([`${f} invalidation-commands`, { iommus: f, devices: 1, processes: 1, script: 'munmap', rounds: 1000, dmas: 0 }, 'commands']);
}
CASES.push(['syspasid option1', { iommus: 'vtd', devices: 1, processes: 0, trusted: true, kernel: 'syspasid-map', kjobs: 3000, kbuffers: 1 }, 'kernel_jobs']);
CASES.push(['syspasid option2', { iommus: 'vtd', devices: 1, processes: 0, trusted: true, kernel: 'syspasid-bind', kjobs: 3000, kbuffers: 1 }, 'kernel_jobs']);
for (const p of ['per-instance', 'per-device']) {
  CASES.push([`default-domain ${p}`, { iommus: 'smmuv3', devices: 4, processes: 0, defaultDomain: p, kernel: 'dma-api', kdevices: 4, kjobs: 500 }, 'kernel_jobs']);
}

const once = (params, keepTrace) => run({ workload: { name: 'sva', params }, runtime: 'deterministic', strategy: 'random', seed: 1, keepTrace });

/** Exact points per unit, by kind (a trace record's actor is a task id, an actor index, or MEM for an atomic). */
async function points(params, unit) {
  const r = await once(params, true);
  if (!r.check.ok || r.findings.length > 0) throw new Error(`the run is not clean: ${r.findings.map((f) => f.title).join('; ')}`);
  const units = r.check.counters[unit];
  const t = r.trace;
  const actors = t.actorNames.length;
  let task = 0;
  let delivery = 0;
  let other = 0;
  for (let i = 0; i < t.length; i++) {
    const a = t.record(i).actor;
    if (a >= 1 << 20) task++;
    else if (a >= 0 && a < actors) delivery++;
    else other++;
  }
  return { units, steps: r.steps, perUnit: r.steps / units, task: task / units, delivery: delivery / units, other: other / units };
}

/** CPU µs per point over n runs, and the share of it spent in actor deliveries, by actor kind and event. */
async function timing(params, n) {
  for (let i = 0; i < 2; i++) await once(params, false);
  const spent = new Map();
  const deliver = ActorHost.prototype.deliver;
  ActorHost.prototype.deliver = function (id, event) {
    // CPU time (one thread runs the run): wall time would count the host's other processes too.
    const t0 = process.cpuUsage();
    try {
      return deliver.call(this, id, event);
    } finally {
      const used = process.cpuUsage(t0);
      const kind = (this.workload?.actors?.[id]?.name ?? '?').replace(/[\d:.]+/g, 'N');
      const key = `${kind} ${event.type}`;
      const e = spent.get(key) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += (used.user + used.system) / 1000;
      spent.set(key, e);
    }
  };
  let steps = 0;
  const c0 = process.cpuUsage();
  try {
    for (let i = 0; i < n; i++) steps += (await once(params, false)).steps;
  } finally {
    ActorHost.prototype.deliver = deliver;
  }
  const c = process.cpuUsage(c0);
  const cpuUs = c.user + c.system;
  const top = [...spent].sort((a, b) => b[1].ms - a[1].ms).slice(0, 6);
  const deliveriesUs = [...spent.values()].reduce((a, e) => a + e.ms * 1000, 0);
  return { usPerPoint: cpuUs / steps, deliveryShare: deliveriesUs / cpuUs, top: top.map(([k, e]) => `${k} ${e.n / n}× ${((e.ms * 1000) / e.n).toFixed(1)} µs`) };
}

for (const [name, params, unit] of CASES) {
  if (only && !name.includes(only)) continue;
  const p = await points(params, unit);
  let line = `${name.padEnd(28)} ${unit} ${p.units}: ${p.perUnit.toFixed(1)} points each (task ${p.task.toFixed(1)}, deliveries ${p.delivery.toFixed(1)}, other ${p.other.toFixed(1)})`;
  if (timeRuns > 0) {
    const t = await timing(params, timeRuns);
    line += `; ${t.usPerPoint.toFixed(2)} CPU µs/point, deliveries ${(100 * t.deliveryShare).toFixed(0)}% of it: ${t.top.join(', ')}`;
  }
  console.log(line);
}
