#!/usr/bin/env node
// CPU time of the deterministic runtime on one build, for comparing two builds side by side on a machine other
// processes share (wall-clock benchmarks there move by ±50 %; a process's own CPU time much less). One case a
// run, after a warm-up: the kernel selftest's lock and xarray loops (lockdep, spinlock, mutex on every step), a
// fixed SVA race (slab, lockdep, the mm layer, MMU notifiers), the bind-task/exit race (exit_mmap, mmput) and
// the IOASID quota race. Prints one JSON line: executions, CPU seconds, executions per CPU second and the last
// trace hash (the same on both builds for a pure refactor). Run it alternately on the two builds, several
// times, and compare the minimum and the median.
//
// Usage: node scripts/cpu-time.mjs [ROOT] locks|xa|sva|exit|ioasid   (ROOT: a built checkout, default this one)
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const which = args.at(-1);
const root = args.length > 1 ? resolve(args[0]) : resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = (p) => import(join(root, 'dist/src', p));
await dist('kernel/workloads.js');
await dist('workloads/index.js');
const { loadScenarioFile, scenarioParams } = await dist('scenario/load.js');
const { run } = await dist('runtime/run.js');

async function race(file, runs) {
  const s = await loadScenarioFile(join(root, file));
  return { workload: { name: s.model, params: scenarioParams(s, true) }, runs, strategy: s.explore.strategy, depth: s.explore.depth };
}
const cases = {
  locks: async () => ({ workload: { name: 'kernel-selftest', params: { mode: 'locks', tasks: 4, iterations: 100 } }, runs: 200, strategy: 'random' }),
  xa: async () => ({ workload: { name: 'kernel-selftest', params: { mode: 'xa-mutex', tasks: 4, iterations: 100 } }, runs: 200, strategy: 'random' }),
  sva: () => race('races/000-scripted-reuse.ts', 800),
  exit: () => race('races/000-exit-racing-bind-task.yaml', 600),
  ioasid: () => race('races/003-quota-race.yaml', 1500),
};
if (!(which in cases)) {
  console.error(`usage: node scripts/cpu-time.mjs [ROOT] ${Object.keys(cases).join('|')}`);
  process.exit(2);
}
const c = await cases[which]();
await run({ ...c, runtime: 'deterministic', seed: 1000, runs: Math.ceil(c.runs / 4) }); // warm-up
const t0 = process.cpuUsage();
const r = await run({ ...c, runtime: 'deterministic', seed: 1, allRuns: true });
const d = process.cpuUsage(t0);
const cpu = (d.user + d.system) / 1e6;
console.log(JSON.stringify({ which, executions: r.executions, cpu, perSec: r.executions / cpu, traceHash: r.traceHash }));
process.exit(0);
