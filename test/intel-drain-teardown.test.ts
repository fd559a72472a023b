// VT-d's PASID teardown drains the page requests of the PASID (mainline pasid.c ends intel_pasid_tear_down_entry
// with `if (!fault_ignore) intel_iommu_drain_pasid_prq(dev, pasid)`), so that no report of a request is still on
// its way when the caller frees what the report reaches: here an iommufd VMM detaching a fault-capable
// hw_pagetable from a PASID while its device faults — iommufd_hwpt_detach_device frees the attach handle that
// iommufd_fault_iopf_handler, run by prq_event_thread, reads. The control replaces the drain with a no-op (a patch
// through the public registry): KASAN's slab-use-after-free of the handle comes back.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import { run } from '../src/runtime/run.js';

const dir = mkdtempSync(join(tmpdir(), 'intel-drain-'));
writeFileSync(join(dir, 'nodrain.cjs'), "exports.extend = (ctx) => ctx.k.fns.replace('intel_drain_pasid_prq', function* () {});\n");
const scenario = (patches: string): string => `name: detach-while-faulting
title: an iommufd VMM detaches a fault-capable hw_pagetable from PASID 1 while its device faults there
model: domains
topology: { processes: 1 }
${patches}
script:
  vmm/0: [open, { bind: 0 }, { ioas_alloc: A }, { fault_alloc: F }, { hwpt_alloc: { hwpt: H, ioas: A, dev: 0, fault: F } },
          { attach: { dev: 0, hwpt: H, pasid: 1 } }, { read: { fault: F, wait: false } }, { read: { fault: F, wait: false } },
          { detach: { dev: 0, pasid: 1 } }, close]
  drv/0: [{ after: 'vmm/0:5' }, { dma: { dev: 0, pasid: 1 } }, { dma: { dev: 0, pasid: 1 } }]
expect: { findings: [] }
explore: { strategy: pct, runs: 1500, seed: 1 }
`;

async function kinds(patches: string): Promise<string[]> {
  const file = join(dir, `${patches ? 'nodrain' : 'mainline'}.yaml`);
  writeFileSync(file, scenario(patches));
  const s = await loadScenarioFile(file);
  const out = await run({ workload: { name: s.model, params: scenarioParams(s, false) }, runtime: 'deterministic', strategy: 'pct', seed: 1, runs: s.explore.runs });
  return out.findings.map((f) => `${f.kind}: ${f.title}`);
}

describe('VT-d: intel_pasid_tear_down_entry drains the PASID\'s page requests', () => {
  it('an iommufd detach racing the device\'s faults: clean with the drain, KASAN on the attach handle without it', async () => {
    expect(await kinds('')).toEqual([]);
    const without = await kinds('patches: [nodrain.cjs]');
    expect(without.length).toBeGreaterThan(0);
    expect(without[0]).toMatch(/^kasan: BUG: KASAN: slab-use-after-free in iommufd_fault_iopf_handler$/);
  }, 120_000);
});
