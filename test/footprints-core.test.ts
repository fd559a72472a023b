// The footprints of the core's points (src/core: iommu.c, iommu-sva.c, io-pgfault.c, the PASID allocator; the
// workloads' syscall, kthread and domains-preset tasks): two stress presets and the domains preset run in the deterministic
// runtime with every declared footprint checked against what its step wrote (checkFootprints), and the core's
// points are performed declared — none of them takes the threaded runtime's coarse fallback lock.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Oracle, type TranslationCache } from '../src/core/oracle.js';
import { Kernel } from '../src/kernel/kernel.js';
import '../src/kernel/workloads.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { Task } from '../src/runtime/task.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import '../src/workloads/index.js';

/** The core's points these presets perform (labels with digits as N), each to be performed with a footprint. */
const CORE_LABELS = [
  // io-pgfault.c: the report path and the SVA domain's group work.
  'list_add_tail(&evt_pending->list, &fault_param->faults)',
  'iopf_group init',
  'group->fault_param',
  'group->faults',
  'group->fault_param->dev',
  'fault_param->faults',
  'list_del(&evt->list)',
  'group->fault_param, group->domain',
  'domain->mm',
  'rcu_dereference_check(param->fault_param)',
  'fault_param init',
  // iommu.c: domains, groups, PASID attach.
  'domain->type',
  'iommu_domain_alloc(sva)',
  'iommu_domain_alloc(paging)',
  'iommu_domain_free',
  'iommu_unmap(iova N)',
  'dma_map_page',
  'dma_unmap_page',
  'kthread_should_stop',
  'descriptor done',
  'dma map',
  'job done',
  'kdma user done',
  'iommu-sim: PASID attached for the device',
  'iommu-sim: PASID owners',
  // iommu-sva.c and the SVA domains.
  'iommu_sva_find_bond',
  'kzalloc(iommu_sva)',
  'kzalloc(iommu_mm_data)',
  'iommu_sva: init',
  'iommu_sva: bond',
  'iommu_sva: bound',
  'iommu_sva: put bond',
  'kfree(iommu_sva)',
  'handle->domain = domain',
  'mm->iommu_mm',
  'smp_store_release(&mm->iommu_mm, iommu_mm)',
  'mm->iommu_mm->sva_domains',
  'list_add(&domain->next, &mm->iommu_mm->sva_domains)',
  'list_del(&domain->next)',
  'domain->notifier',
  'list_for_each_entry(dev_pasid, &domain->dev_pasids)',
  // The PASID allocator.
  'iommu_sva_find_pasid',
  'iommu_sva_pasid_put',
  // The workloads' tasks.
  'mm/N: state',
  'return to user: bound',
  'bound',
];

const shape = (label: string): string => label.replace(/\d+/g, 'N');

/** Performed points by label shape: [with a footprint, without]. */
let tally = new Map<string, [number, number]>();
const perform = Task.prototype.perform;

beforeAll(() => {
  Task.prototype.perform = function (this: Task, env) {
    const p = this.pending;
    if (p) {
      const n = tally.get(shape(p.label)) ?? [0, 0];
      n[p.footprint !== undefined || p.footprintOf !== undefined ? 0 : 1]++;
      tally.set(shape(p.label), n);
    }
    return perform.call(this, env);
  };
});

afterAll(() => {
  Task.prototype.perform = perform;
});

function run(workload: string, params: Readonly<Record<string, Wire>>, seed: number): void {
  const s = new RandomScheduler(seed);
  s.newExecution();
  runDeterministic({ workload: buildWorkload(workload, params), seed, scheduler: s, checkFootprints: true });
}

describe('footprints of the core (checkFootprints)', () => {
  it('run the random and hotplug stress presets, the domains preset and kernel DMA users without a violation, every core point declared', async () => {
    tally = new Map();
    const random = await loadScenarioFile(join(import.meta.dirname, '..', 'stress', 'random.yaml'));
    // A violation throws FootprintViolation, naming the step and the word.
    for (const seed of [1, 2]) run(random.model, scenarioParams(random), seed);
    // hotplug: the DMA API and the driver's kernel threads.
    const hotplug = await loadScenarioFile(join(import.meta.dirname, '..', 'stress', 'hotplug.yaml'));
    run(hotplug.model, scenarioParams(hotplug), 1);
    const domains = { iommus: 'vtd,amd,smmuv3', groups: 3, groupSize: 2, processes: 3, faults: 3, script: 'stress', rounds: 8 };
    run('domains', domains, 1);
    // Kernel users of the DMA API, and VFIO taking the device over.
    run('sva', { iommus: 'vtd', devices: 2, processes: 0, defaultDomain: 'per-device', kernel: 'dma-api', kdevices: 2, kjobs: 3, vfio: 'late' }, 1);
    const missing = CORE_LABELS.filter((l) => (tally.get(l)?.[0] ?? 0) === 0);
    const undeclared = CORE_LABELS.filter((l) => (tally.get(l)?.[1] ?? 0) > 0).map((l) => `${l}: ${tally.get(l)?.[1]}`);
    expect(missing).toEqual([]);
    expect(undeclared).toEqual([]);
  });
});

describe("the oracle's footprint of an unbind's stale-translation check", () => {
  const cache = (name: string, words?: number[]): TranslationCache => ({
    name,
    entriesForPfn: () => [],
    entriesForPasid: () => [],
    ...(words ? { pasidFootprint: () => words } : {}),
  });

  it('is the union of what every cache reads, and none at all when one cache cannot say', () => {
    const o = new Oracle(new Kernel());
    o.addCache(cache('IOTLB', [-12, -13]));
    o.addCache(cache('ATC', [-20]));
    expect(o.pasidUnboundFootprint(0, 1)?.()).toEqual([-12, -13, -20]);
    o.addCache(cache('PASID cache'));
    expect(o.pasidUnboundFootprint(0, 1)).toBeUndefined();
  });
});
