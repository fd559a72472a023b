#!/usr/bin/env node
// Trace hashes of every shipped race and scenario, for checking that a refactor is pure: each script in races/
// and scenarios/ runs in the deterministic runtime, as written and with its `fix`, at three fixed seeds (one
// execution each, under the script's own strategy and depth — what `iommu-sim run FILE --seed N --runs 1`
// reports as its trace hash), plus the kernel selftest workload at the same seeds. Prints one line a run:
// `FILE  as-written|fixed  seed N  HASH`. Runs from dist/ (npm run build first).
//
// Usage: node scripts/trace-hashes.mjs [--seeds 1,2,3] > after.txt && diff before.txt after.txt
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = (p) => import(join(root, 'dist/src', p));
await dist('kernel/workloads.js');
await dist('workloads/index.js');
const { loadScenarioFile, scenarioParams } = await dist('scenario/load.js');
const { run } = await dist('runtime/run.js');

const args = process.argv.slice(2);
const i = args.indexOf('--seeds');
const seeds = (i >= 0 ? args[i + 1] : '1,2,3').split(',').map(Number);

const files = ['races', 'scenarios'].flatMap((d) =>
  readdirSync(join(root, d))
    .filter((f) => /\.(ya?ml|json|ts|mts|js|mjs)$/.test(f))
    .sort()
    .map((f) => join(d, f)),
);

for (const file of files) {
  const s = await loadScenarioFile(join(root, file));
  for (const fixed of s.fix ? [false, true] : [false]) {
    for (const seed of seeds) {
      const r = await run({
        workload: { name: s.model, params: scenarioParams(s, fixed) },
        runtime: 'deterministic',
        strategy: s.explore.strategy,
        depth: s.explore.depth,
        seed,
        runs: 1,
      });
      console.log(`${file}  ${fixed ? 'fixed' : 'as-written'}  seed ${seed}  ${r.traceHash}`);
    }
  }
}
for (const seed of seeds) {
  const r = await run({ workload: { name: 'kernel-selftest', params: {} }, runtime: 'deterministic', strategy: 'random', seed, runs: 1 });
  console.log(`kernel-selftest  -  seed ${seed}  ${r.traceHash}`);
}
process.exit(0);
