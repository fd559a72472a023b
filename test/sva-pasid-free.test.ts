// Where the sva path frees a bond's PASID (policy `free`, seed 003) on the one model: at unbind, in process
// context under iommu_sva_lock, or in the bond's MMU notifier free_notifier — iommu_sva_free_notifier, run by
// mmu_notifier_free_rcu an SRCU grace period after the unbind's mmu_notifier_put — or queued from there to a kworker
// (iommu_free_pasid_deferred, policy workqueue). Which context it runs in shows
// through the IOASID allocator's lock (the system placement's PASIDs): a mutex there is might_sleep's finding,
// with the free_notifier on its call chain, only when the free is the callback's.
import { describe, expect, it } from 'vitest';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

function once(params: Record<string, Wire>, seed: number) {
  const built = buildSva(params);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
}

// free=rcu is a bond's PASID freed by the bond's notifier: seed 000's per-bond notifier and PASID lifetime.
const BASE = { iommus: 'smmuv3', processes: 2, script: 'life', dmas: 2, pasidAlloc: 'system', notifier: 'bond', pasidLife: 'unbind' } as const;

describe('sva: the PASID free policy (free) with the IOASID lock policy (lock)', () => {
  it('free=rcu with a mutex: UNBIND and ioasid_free sleep in the SRCU callback, under iommu_sva_free_notifier', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const r = once({ ...BASE, free: 'rcu', lock: 'mutex' }, seed);
      const texts = r.findings.filter((x) => x.kind === 'might_sleep').map((x) => x.text);
      const under = (fn: string) => new RegExp(`${fn}\n iommu_free_pasid\n iommu_free_pasid_deferred\n iommu_sva_free_notifier\n mmu_notifier_free_rcu`);
      expect(texts.some((t) => under('ioasid_notify').test(t))).toBe(true);
      expect(texts.some((t) => under('ioasid_free').test(t))).toBe(true);
    }
  });

  it('free=workqueue with a mutex: the free_notifier queues the free, a kworker runs it — no finding, every PASID freed', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const r = once({ ...BASE, free: 'workqueue', lock: 'mutex' }, seed);
      expect(r.findings.map((x) => x.title)).toEqual([]);
      expect(r.check.problems).toEqual([]);
      expect(r.check.counters.unbinds).toBe(2);
    }
  });

  it('free=unbind with a mutex, or free=rcu with the spinlock: no finding, every PASID freed', () => {
    for (const policy of [{ free: 'unbind', lock: 'mutex' }, { free: 'rcu', lock: 'spinlock' }] as const) {
      for (let seed = 1; seed <= 5; seed++) {
        const r = once({ ...BASE, ...policy }, seed);
        expect(r.findings.map((x) => x.title)).toEqual([]);
        expect(r.check.problems).toEqual([]);
        expect(r.check.counters.binds).toBe(2);
        expect(r.check.counters.unbinds).toBe(2);
      }
    }
  });
});
