// The vendors' command builders by their kernel names (k.fns): VT-d's qi_desc_piotlb and qi_desc_dev_iotlb_pasid
// (iommu.h's helpers behind qi_flush_piotlb / qi_flush_dev_iotlb_pasid and cache_tag_flush_range's batch), AMD's
// build_inv_iommu_pages, build_inv_iotlb_pages, build_completion_wait, build_inv_dte and build_complete_ppr, and
// SMMUv3's arm_smmu_cmdq_build_cmd. A patch that replaces one by name changes what the hardware decodes: a munmap's
// invalidation built for the wrong pages leaves the IOTLB mapping frames the mmu_gather frees (the stale
// translation oracle), where the model's own builder leaves nothing. Deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import { CMDQ_OP_TLBI_NH_VA, type CmdqEnt } from '../src/hw/arm-smmu-v3/arm-smmu-v3.h.js';
import type { Range } from '../src/hw/amd/iommu.js';
import type { QiDesc } from '../src/hw/intel/qi.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

type Model = ReturnType<typeof buildSva>['model'];

function run(params: Record<string, Wire>, seed: number, patch?: (m: Model) => void) {
  const built = buildSva(params);
  patch?.(built.model);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { r: runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true }), model: built.model };
}

/** A process whose device translates pages 3 and 4, then unmaps them: the IOTLB entries must go before the frames. */
const UNMAP = (iommus: string) => ({
  iommus,
  devices: 1,
  processes: 1,
  dmas: 2,
  pages: 16,
  steps: JSON.stringify([[{ op: 'bind' }, { op: 'dma', vpn: 3 }, { op: 'dma', vpn: 4 }, { op: 'munmap', vpn: 3, n: 2 }, { op: 'unbind' }, { op: 'exit' }]]),
});

/** Far from pages 3 and 4: an invalidation of [1024, …) covers neither. */
const AWAY = 1024;

const BUILDERS = {
  vtd: { names: ['qi_desc_piotlb', 'qi_desc_dev_iotlb_pasid'], file: 'drivers/iommu/intel/iommu.h' },
  amd: { names: ['build_inv_iommu_pages', 'build_inv_iotlb_pages', 'build_completion_wait', 'build_inv_dte', 'build_complete_ppr'], file: 'drivers/iommu/amd/iommu.c' },
  smmuv3: { names: ['arm_smmu_cmdq_build_cmd'], file: 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c' },
} as const;

/** Each flavour's builder replaced by one that aims the munmap's IOTLB invalidation at other pages. */
const MISAIMED: Record<keyof typeof BUILDERS, (m: Model) => void> = {
  vtd: (m) =>
    m.k.fns.wrap('qi_desc_piotlb', (orig) => (did: number, pasid: number, vpn: number, npages: number): QiDesc => orig(did, pasid, npages === -1 ? vpn : vpn + AWAY, npages), 'test'),
  amd: (m) =>
    m.k.fns.wrap(
      'build_inv_iommu_pages',
      (orig) => (range: Range, domid: number, pasid: number, gn: boolean) => orig(range[0] < 0 ? range : [range[0] + AWAY, range[1] + AWAY], domid, pasid, gn),
      'test',
    ),
  smmuv3: (m) =>
    m.k.fns.wrap('arm_smmu_cmdq_build_cmd', (orig) => (e: CmdqEnt) => orig(e.opcode === CMDQ_OP_TLBI_NH_VA && e.pages > 0 ? { ...e, start: e.start + AWAY } : e), 'test'),
};

describe('the vendors’ command builders, by kernel name', () => {
  for (const flavour of ['vtd', 'amd', 'smmuv3'] as const) {
    it(`${flavour}: listed by k.fns under their kernel names and file`, () => {
      const { model } = run(UNMAP(flavour), 1);
      const listed = new Map(model.k.fns.list().map((f) => [f.name, f]));
      for (const name of BUILDERS[flavour].names) {
        expect(listed.get(name)?.file).toBe(BUILDERS[flavour].file);
        expect(listed.get(name)?.generator).toBe(false);
      }
    });

    it(`${flavour}: the model's builder invalidates the unmapped pages; one replaced by name to aim elsewhere leaves a stale translation`, () => {
      for (let seed = 1; seed <= 3; seed++) expect(run(UNMAP(flavour), seed).r.findings.map((f) => f.title)).toEqual([]);
      const kinds = new Set<string>();
      for (let seed = 1; seed <= 3; seed++) for (const f of run(UNMAP(flavour), seed, MISAIMED[flavour]).r.findings) kinds.add(f.kind);
      expect(kinds).toContain('stale_translation');
    });
  }
});
