#!/usr/bin/env node
// The `bench sva` deterministic cases of two (or more) built trees side by side, for a criterion such as issue
// #17's "translation and invalidation rates within 0.8× of the start of the issue": every tree is loaded into ONE
// process and their runs are interleaved (A, B, B, A, …) case by case, so that a shared machine's load and the
// JIT's drift fall on each tree alike. A rate is the case's counter (IOTLB hits, IOTLB misses, invalidation
// commands, unbinds — what bench sva counts) per second of this process's CPU time over the whole run() (CPU, not
// wall time: on a machine other work shares, wall time counts its waits too); the run's own elapsedMs rate is
// printed beside it. Reported: the best run (load only ever slows a run down) and the median, and each tree's
// ratio to the first. Every run must be clean, as bench sva requires.
//
// Usage: node scripts/sva-compare.mjs TREE_A TREE_B [--runs N] [--case SUBSTR[,SUBSTR…]] [--json]
//   (each TREE a checkout with dist/ built, e.g. a worktree of the older commit)
import { join, resolve } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const trees = args.filter((a, i) => !a.startsWith('--') && !(args[i - 1] ?? '').startsWith('--')).map((t) => resolve(t));
if (trees.length < 2) {
  console.error('usage: node scripts/sva-compare.mjs TREE_A TREE_B [--runs N] [--case SUBSTR[,SUBSTR…]] [--json]');
  process.exit(2);
}
const RUNS = Number(opt('--runs', 7));
const only = opt('--case', '');
const JSON_OUT = args.includes('--json');

const runOf = {};
for (const t of trees) {
  const dist = (p) => import(join(t, 'dist/src', p));
  // The workload registry moved with issue #15 (actors/workloads.js before, workloads/index.js after).
  try {
    await dist('workloads/index.js');
  } catch {
    await dist('actors/workloads.js');
  }
  runOf[t] = (await dist('runtime/run.js')).run;
}

// bench sva's deterministic cases at their full sizes (bench/sva.bench.ts).
const CASES = [];
for (const f of ['vtd', 'amd', 'smmuv3']) {
  CASES.push([`${f} translate-iotlb-hit`, { iommus: f, devices: 1, processes: 1, pages: 1, atc: 0, script: 'stress', rounds: 1, dmas: 10000 }, 'iotlb_hits']);
  CASES.push([`${f} translate-iotlb-miss`, { iommus: f, devices: 1, processes: 1, pages: 1, atc: 0, script: 'stress', rounds: 1, dmas: 10000, iotlb: 0 }, 'iotlb_misses']);
  CASES.push([`${f} invalidation-commands`, { iommus: f, devices: 1, processes: 1, script: 'munmap', rounds: 1000, dmas: 0 }, 'commands']);
  CASES.push([`${f} bind+unbind`, { iommus: f, devices: 4, processes: 4, script: 'stress', rounds: 100, dmas: 0 }, 'unbinds']);
}
const selected = CASES.filter(([name]) => !only || only.split(',').some((o) => name.includes(o)));

async function once(tree, params, unit) {
  const c0 = process.cpuUsage();
  const r = await runOf[tree]({ workload: { name: 'sva', params }, runtime: 'deterministic', strategy: 'random', seed: 1, keepTrace: false });
  const c = process.cpuUsage(c0);
  if (!r.check.ok || r.findings.length > 0) throw new Error(`${tree}: the run is not clean: ${r.findings.map((f) => f.title).join('; ')}`);
  const units = r.check.counters[unit] ?? 0;
  return { cpu: units / ((c.user + c.system) / 1e6), wall: units / (r.elapsedMs / 1000) };
}

// Warm the JIT on every flavour in each tree, then two runs of each case before its measured ones.
const WARM = { iommus: 'vtd,amd,smmuv3', devices: 3, processes: 6, pages: 4, script: 'stress', rounds: 6, dmas: 200 };
for (const t of trees) for (let i = 0; i < 3; i++) await once(t, WARM, 'dmas');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const out = [];
for (const [name, params, unit] of selected) {
  for (const t of trees) for (let i = 0; i < 2; i++) await once(t, params, unit);
  const samples = trees.map(() => []);
  for (let i = 0; i < RUNS; i++) {
    const order = i % 2 === 0 ? trees.map((_, j) => j) : trees.map((_, j) => trees.length - 1 - j);
    for (const j of order) samples[j].push(await once(trees[j], params, unit));
  }
  const row = { case: name, unit, trees: {} };
  trees.forEach((t, j) => {
    const cpu = samples[j].map((s) => s.cpu);
    const wall = samples[j].map((s) => s.wall);
    row.trees[t] = { bestCpu: Math.max(...cpu), medianCpu: median(cpu), bestWall: Math.max(...wall), medianWall: median(wall) };
  });
  out.push(row);
  if (!JSON_OUT) {
    const a = row.trees[trees[0]];
    const cols = trees.map((t) => {
      const r = row.trees[t];
      const k = (x) => `${(x / 1000).toFixed(1)}k`;
      return `${k(r.bestCpu)} best (${(r.bestCpu / a.bestCpu).toFixed(2)}×), ${k(r.medianCpu)} median (${(r.medianCpu / a.medianCpu).toFixed(2)}×), elapsed best ${k(r.bestWall)}`;
    });
    console.log(`${name.padEnd(30)} ${unit}/CPU-s: ${cols.join(' | ')}`);
  }
}
if (JSON_OUT) console.log(JSON.stringify({ trees, runs: RUNS, results: out }, null, 2));
