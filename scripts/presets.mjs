// What scripts/footprints.mjs and scripts/contention.mjs load and measure: the model from dist/ (npm run build
// first), and the scaling bench's stress presets (bench/scaling.bench.ts) beside the shipped stress configs
// (stress/*.yaml). The presets are shorter than the bench's report profile (sva 4 rounds, not 24; domains 64, not
// 288; mixed the same): the bench runs long so that V8 has compiled the model before it is timed, while what these
// scripts measure — shares of steps, dependencies between them — repeats round after round.
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const dist = (p) => import(join(root, 'dist/src', p));
await dist('kernel/workloads.js');
await dist('workloads/index.js');
const { loadScenarioFile, scenarioParams } = await dist('scenario/load.js');

/** A shipped stress config (stress/NAME.yaml) as a preset. */
export async function stressPreset(name) {
  const s = await loadScenarioFile(join(root, 'stress', `${name}.yaml`));
  return { name, workload: s.model, params: scenarioParams(s) };
}

const mixed = (await stressPreset('mixed')).params;
/** The scaling bench's presets, shorter (above). */
export const benchPresets = [
  { name: 'sva', workload: 'sva', params: { iommus: 'vtd,amd,smmuv3', devices: 3, processes: 6, script: 'stress', dmas: 8, rounds: 4 } },
  { name: 'domains', workload: 'domains', params: { iommus: 'vtd,amd,smmuv3', groups: 3, groupSize: 2, processes: 6, faults: 6, script: 'stress', rounds: 64 } },
  { name: 'mixed', workload: 'sva', params: { ...mixed, devices: 6, processes: 24, rounds: 3 } },
];
