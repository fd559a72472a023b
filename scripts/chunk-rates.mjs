#!/usr/bin/env node
// Issue #14's check that an exploration does not depend on how it is chunked: every race script as written,
// explored with --keep-going from the same first seed with --chunk 1 and with the default chunk; the two
// failure rates must agree within sampling error (their difference under 3 standard errors of a difference of
// two proportions). Prints a row per script; exits 1 if any pair disagrees.
//
// Usage: node scripts/chunk-rates.mjs [--runs N] [--workers N] [FILE...]   (FILE: scripts instead of every race)
import { readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dist = (p) => join(root, 'dist/src', p);
await import(dist('workloads/index.js'));
await import(dist('kernel/workloads.js'));
const { exploreScenario } = await import(dist('scenario/explore.js'));
const { loadScenarioFile, scenarioParams } = await import(dist('scenario/load.js'));

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const runs = opt('--runs', 256);
const workers = opt('--workers', 2);

const files = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--')).map((a) => resolve(a));
const scripts = files.length > 0 ? files : readdirSync(join(root, 'races')).filter((x) => /\.(ya?ml|ts)$/.test(x)).sort().map((x) => join(root, 'races', x));

let bad = 0;
for (const path of scripts) {
  const f = basename(path);
  const s = await loadScenarioFile(path);
  const base = { model: s.model, params: scenarioParams(s), strategy: s.explore.strategy, depth: s.explore.depth, seed: s.explore.seed, expect: s.expect, runs, workers, keepGoing: true };
  const one = await exploreScenario({ ...base, chunk: 1 });
  const dflt = await exploreScenario(base);
  const p = (one.failing + dflt.failing) / (one.executions + dflt.executions);
  const se = Math.sqrt(p * (1 - p) * (1 / one.executions + 1 / dflt.executions));
  const diff = Math.abs(one.failing / one.executions - dflt.failing / dflt.executions);
  const ok = se === 0 ? diff === 0 : diff < 3 * se;
  if (!ok) bad++;
  console.log(`${f.padEnd(46)} chunk 1: ${String(one.failing).padStart(4)}/${one.executions}  default: ${String(dflt.failing).padStart(4)}/${dflt.executions}  ${ok ? 'ok' : 'DIFFERENT'}${se > 0 ? ` (${(diff / se).toFixed(1)} SE)` : ''}`);
}
console.log(bad === 0 ? 'chunk-rates: every race fails at the same rate whatever the chunk' : `chunk-rates: ${bad} races differ`);
process.exit(bad === 0 ? 0 : 1);
