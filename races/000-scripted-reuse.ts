// Seed 000, written as a script in TypeScript (typed by the scenario schema: `npx tsc --noEmit` checks it, and
// `iommu-sim run` loads it as it is): process 0 binds, queues DMA without waiting and unbinds at once; process 1
// binds only after process 0's unbind has returned (its step 2), and gets the same PASID under "free at once".
import { defineScenario } from 'iommu-sim';

export default defineScenario({
  name: '000-scripted-reuse',
  seed: '000',
  title: 'Scripted — unbind with DMA queued, then a second process binds after it',
  model: 'sva',
  topology: { iommus: 'smmuv3', devices: 1, processes: 2 },
  policies: { teardown: 'at-once' },
  script: {
    'proc/0': ['bind', { dma: { n: 6, vpn: 7, wait: false } }, 'unbind', 'exit'],
    'proc/1': [{ after: 'proc/0:2' }, 'bind', { dma: { n: 2, vpn: 1 } }, 'unbind', 'exit'],
  },
  fix: { teardown: 'drain' },
  // As 000-pasid-reuse-before-drain: the PASID handed out again, the DMA landing in the other mm, or the page-request
  // thread taking the freed mm of the PASID's old bond (KASAN); anything else is forbidden.
  expect: { findings: ['stale_translation', 'isolation', 'kasan'], forbid: 'any' },
  explore: { strategy: 'pct', depth: 3, runs: 1000, seed: 1 },
});
