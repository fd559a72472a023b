// The footprints of the mm layer's points (src/kernel/mm/ but pgalloc.ts: the mm_struct's counts, page tables and
// VMAs, page faults, migration, the TLB gather, MMU notifier subscriptions, vmalloc), checked against what each
// step wrote (runDeterministic's checkFootprints: a violation throws) on the random stress preset, on the scaling
// bench's domains preset (bind/unbind: the notifier table's steps) and on scripts that reach the rarer paths
// (madvise, migration, munmap, vmalloc / ioremap, a KASAN use-after-free of an mm); and every performed point of
// the area declares one. Deterministic runtime, fixed seeds, small sizes.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { kernel, pause, tasksWorkload, words } from './kernel-harness.js';
import { defineMms, mm_exit, mm_init, mm_set_pasid, mmget_not_zero } from '../src/kernel/mm/mm.js';
import { defineMmuNotifierOps, defineMmuNotifiers, mmu_notifier_register } from '../src/kernel/mm/mmu_notifier.js';
import { do_mmap, fault_in } from '../src/kernel/mm/pagetable.js';
import { definePhysMem } from '../src/kernel/mm/physmem.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Workload } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { Task } from '../src/runtime/task.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { buildSva } from '../src/workloads/sva.js';

/** The labels of the area's points (pgalloc.ts's are the mem part's; `call_srcu(…mmu_notifier_free_rcu)` is SRCU's). */
const MM_POINT =
  /^(mmget|mmget_not_zero|get_task_mm|mmput|mmgrab|mmdrop|__mmdrop|mm_init|mm_set_pasid|exit_mm:|exit_mmap|handle_mm_fault|set_pte_at|ptep_get_and_clear_full|ptep_clear_flush|remove_migration_pte|migration_entry_wait|mmap_region|detach_vmas|do_vmi_munmap|madvise_walk_vmas|do_pages_move|folio_copy|flush_tlb_mm_range|tlb_flush|mm_has_notifiers|mmu_notifier (alloc|walk)|mmu_notifier_(put|unregister|free_rcu)|hlist_add_head_rcu|hlist_del_init_rcu|find_get_mmu_notifier|free subscription|alloc_vmap_area|free_vmap_area|find_vmap_area|vunmap_pmd_range|pmd_set_huge|Trying to vfree)\b/;

/** The area's points performed in a run, by label shape, and how many of them declared no footprint. */
const performed = new Map<string, { n: number; undeclared: number }>();
const perform = Task.prototype.perform;

beforeEach(() => {
  performed.clear();
  Task.prototype.perform = function (this: Task, env) {
    const p = this.pending;
    if (p && MM_POINT.test(p.label)) {
      const shape = p.label.replace(/\d+/g, 'N');
      const c = performed.get(shape) ?? { n: 0, undeclared: 0 };
      c.n++;
      if (p.footprint === undefined && p.footprintOf === undefined) c.undeclared++;
      performed.set(shape, c);
    }
    return perform.call(this, env);
  };
});

afterEach(() => {
  Task.prototype.perform = perform;
});

function run(workload: Workload, seed: number): RunResult {
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload, seed, scheduler: s, checkFootprints: true, keepGoing: true });
}

function undeclared(): string[] {
  return [...performed].filter(([, c]) => c.undeclared > 0).map(([label, c]) => `${label}: ${c.undeclared}`);
}

function performedShapes(): string[] {
  return [...performed.keys()];
}

/** A kernel of two mms and eight notifier slots (test/kernel-mm.test.ts's sizes). */
function small() {
  const LAYOUT = { stringWords: 1 << 15, stringSlots: 1 << 10, staticWords: 1 << 14, arenaWords: 1 << 12, lockdepWords: 1 << 10 };
  const k = kernel({ layout: LAYOUT });
  const mms = defineMms(k, definePhysMem(k, 64), 2, 8);
  const n = defineMmuNotifiers(k, mms, 8);
  const mm1 = mms.mms[0];
  if (!mm1) throw new Error('no mm');
  return { k, n, mm1 };
}

describe('the mm layer declares its footprints, and they hold', () => {
  it('on the random stress preset (seeds 1-2)', async () => {
    const s = await loadScenarioFile(new URL('../stress/random.yaml', import.meta.url).pathname);
    for (const seed of [1, 2]) run(buildWorkload(s.model, { ...scenarioParams(s), rounds: 6 }), seed);
    expect(performedShapes()).toEqual(expect.arrayContaining(['handle_mm_fault(mm/N, N, write)', 'ptep_get_and_clear_full(mm/N, N)', 'mm_has_notifiers(mm/N)', 'mmu_notifier walk(mm/N)', 'mmput(mm/N)']));
    expect(undeclared()).toEqual([]);
  });

  it("on the scaling bench's domains preset: the notifier table's bind and unbind steps", () => {
    const params = { iommus: 'vtd,amd,smmuv3', groups: 3, groupSize: 2, processes: 6, faults: 6, script: 'stress', rounds: 16 };
    run(buildWorkload('domains', params), 1);
    expect(performedShapes()).toEqual(
      expect.arrayContaining(['mmu_notifier alloc(mm/N)', 'hlist_add_head_rcu(mm/N, subscription N)', 'mmu_notifier_put(subscription N)', 'mmu_notifier_free_rcu(subscription N)', 'free subscription N', 'mm_init(mm/N)']),
    );
    expect(undeclared()).toEqual([]);
  });

  it('on madvise, migration, munmap and exit under DMA, and vmalloc / vfree / ioremap / iounmap', () => {
    const script = {
      'proc/0': [{ op: 'bind' }, { op: 'dma', n: 2 }, { op: 'madvise', vpn: 0, n: 2 }, { op: 'dma', n: 2 }, { op: 'migrate', vpn: 0, n: 4 }, { op: 'munmap', vpn: 1, n: 2 }, { op: 'dma', n: 2 }, { op: 'unbind' }, { op: 'exit' }],
      'kthread/0': [{ op: 'vmalloc', n: 2 }, { op: 'vfree' }, { op: 'ioremap', n: 4 }, { op: 'iounmap' }],
    };
    // And an exit with the bond still held: mmu_notifier_release unlinks the subscription (mn_hlist_release).
    const exitBound = { 'proc/0': [{ op: 'bind' }, { op: 'dma', n: 2 }, { op: 'exit' }] };
    for (const seed of [1, 2, 3]) {
      for (const steps of [script, exitBound]) {
        const b = buildSva({ iommus: 'vtd', pages: 16, dmas: 2, processes: 1, steps: JSON.stringify(steps) });
        expect(run(b.workload, seed).findings.map((f) => f.title)).toEqual([]);
      }
    }
    expect(performedShapes()).toEqual(
      expect.arrayContaining(['madvise_walk_vmas(mm/N, N, N)', 'do_pages_move(mm/N, N, N)', 'ptep_clear_flush(mm/N, N)', 'remove_migration_pte(mm/N, N)', 'detach_vmas(mm/N, N, N)', 'alloc_vmap_area(N)', 'vunmap_pmd_range(init_mm, N, N)', 'pmd_set_huge(init_mm, N)', 'exit_mmap(mm/N)', '__mmdrop(mm/N)', 'hlist_del_init_rcu(mm/N: all)']),
    );
    expect(undeclared()).toEqual([]);
  });

  it('on mmu_notifier_register / unregister racing with exit (seeds 1-10)', () => {
    const { k, n, mm1 } = small();
    const w = words(k, 1);
    const opsId = defineMmuNotifierOps(n, {
      name: 'intel_mmuops',
      *release(t) {
        yield* pause(k, t, 2);
      },
    });
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* w.set(t, 0, yield* mmu_notifier_register(k, t, n, opsId, mm1, 0));
      yield* mm_set_pasid(k, t, mm1, 3);
      yield* do_mmap(k, t, mm1, 0, 2, true);
      yield* fault_in(k, t, mm1, 0, true);
      yield* fault_in(k, t, mm1, 1, true);
      yield* mm_set_pasid(k, t, mm1, 0);
      yield* mm_exit(k, t, n, mm1);
    });
    k.task('unbind', 'process', function* (t) {
      yield* w.until(t, 'bound', () => w.get(0) !== 0);
      yield* k.fn.mmu_notifier_unregister(t, w.get(0));
    });
    const wl = tasksWorkload(k, 'mm-fp', ['proc', 'unbind']);
    for (let seed = 1; seed <= 10; seed++) expect(run(wl, seed).findings).toEqual([]);
    expect(performedShapes()).toEqual(expect.arrayContaining(['mmu_notifier_unregister(subscription N)', 'hlist_del_init_rcu(subscription N)', 'free subscription N', 'mm_set_pasid(mm/N, N)']));
    expect(undeclared()).toEqual([]);
  });

  it("on an mm used after __mmdrop: KASAN's report reads the mm's tracks and their strings", () => {
    const { k, n, mm1 } = small();
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* k.call(t, 'do_exit', mm_exit(k, t, n, mm1));
      yield* k.call(t, 'iommu_sva_handle_iopf', mmget_not_zero(k, t, mm1));
    });
    const r = run(tasksWorkload(k, 'mm-fp', ['proc']), 1);
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: KASAN: slab-use-after-free in mmget_not_zero']);
    expect(performed.get('mmget_not_zero(mm/N)')).toEqual({ n: 1, undeclared: 0 });
    expect(undeclared()).toEqual([]);
  });
});
