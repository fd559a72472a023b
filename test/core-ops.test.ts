// The one model's core (issue #15, part 1): one ops table the vendors implement, kernel functions by name with
// the seeds' policies as implementations, and the SVA bind path going through the SVA domain and the group's
// iommu_attach_device_pasid — deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import { ENODEV } from '../src/kernel/errno.js';
import type { KFnInfo } from '../src/kernel/kfunc.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildDomains } from '../src/workloads/domains.js';
import { buildSva } from '../src/workloads/sva.js';

const MIXED = { iommus: 'vtd,amd,smmuv3', devices: 3, processes: 3, script: 'life', dmas: 1 } as const;

function fn(list: readonly KFnInfo[], name: string): KFnInfo {
  const f = list.find((x) => x.name === name);
  if (!f) throw new Error(`${name} is not registered`);
  return f;
}

describe('kernel functions by name', () => {
  it('the core, iommu.c and each vendor register theirs under the kernel names and files', () => {
    const list = buildSva(MIXED).model.k.fns.list();
    expect(fn(list, 'iommu_sva_bind_device').file).toBe('drivers/iommu/iommu-sva.c');
    expect(fn(list, 'iommu_attach_device_pasid').file).toBe('drivers/iommu/iommu.c');
    expect(fn(list, 'iommu_sva_handle_iopf').file).toBe('drivers/iommu/iommu-sva.c');
    for (const name of ['iommu_report_device_fault', 'iommu_page_response', 'iopf_queue_add_device', 'iopf_queue_remove_device', 'iopf_queue_flush_dev']) {
      expect(fn(list, name).file).toBe('drivers/iommu/io-pgfault.c');
    }
    expect(fn(list, 'intel_svm_set_dev_pasid').file).toBe('drivers/iommu/intel/svm.c');
    expect(fn(list, 'arm_smmu_sva_set_dev_pasid').file).toBe('drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c');
    expect(fn(list, 'amd_iommu_bind_pasid').file).toBe('drivers/iommu/amd/iommu_v2.c');
  });

  it("a policy value is the implementation called, the others listed beside it", () => {
    const sva = buildSva({ ...MIXED, teardown: 'quarantine', fault: 'protocol' }).model.k.fns.list();
    expect(fn(sva, 'iommu_sva_stop_device_pasid').origins).toEqual([
      { kind: 'policy', policy: 'teardown', value: 'quarantine', values: ['drain', 'quarantine', 'at-once'] },
    ]);
    expect(fn(sva, 'iommu_sva_handle_iopf').origins[0]).toMatchObject({ policy: 'fault', value: 'protocol' });
    // The sva preset's page-request path takes seed 002's policies too.
    const sva002 = buildSva({ ...MIXED, lookup: 'mutex', users: 'unrefcounted' }).model.k.fns.list();
    expect(fn(sva002, 'iommu_get_domain_for_dev_pasid').origins[0]).toMatchObject({ policy: 'lookup', value: 'mutex' });
    expect(fn(sva002, 'iommu_report_device_fault').file).toBe('drivers/iommu/io-pgfault.c');
    const dom = buildDomains({ lookup: 'mutex', multiDevicePasid: 'allowed', groupSize: 2 }).model.k.fns.list();
    expect(fn(dom, 'iommu_get_domain_for_dev_pasid').origins[0]).toMatchObject({ policy: 'lookup', value: 'mutex', values: ['mutex', 'rcu'] });
    expect(fn(dom, 'iommu_attach_device_pasid').origins[0]).toMatchObject({ policy: 'multiDevicePasid', value: 'allowed' });
  });
});

describe('one SVA bind path', () => {
  const run = (patch?: (k: ReturnType<typeof buildSva>['model']['k']) => void) => {
    const built = buildSva(MIXED);
    patch?.(built.model.k);
    const s = new RandomScheduler(1);
    s.newExecution();
    return runDeterministic({ workload: built.workload, seed: 1, scheduler: s, keepGoing: true });
  };

  it('every flavour binds, DMAs and unbinds through the SVA domain and the group, with no finding', () => {
    const r = run();
    expect(r.findings).toEqual([]);
    expect(r.check.counters.binds).toBe(3);
    expect(r.check.counters.unbinds).toBe(3);
  });

  it('a patch replacing iommu_attach_device_pasid by name is what every bind calls', () => {
    let calls = 0;
    const r = run((k) =>
      k.fns.replace(
        'iommu_attach_device_pasid',
        // biome-ignore lint/correctness/useYield: the patched attach refuses at once
        function* () {
          calls++;
          return -ENODEV;
        },
        'test',
      ),
    );
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(r.check.counters.binds ?? 0).toBe(0);
    expect(r.check.counters.bind_failures).toBeGreaterThanOrEqual(3);
  });
});
