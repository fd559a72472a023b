// Invalidations over ranges on the one model (issue #16, deliverable 5): munmap over many pages and VMAs under
// mmap_lock for write, madvise(MADV_DONTNEED) under it for read, page migration with its PTE cleared and flushed
// under the page table lock — each telling the IOMMUs through the TLB flush (arch_invalidate_secondary_tlbs)
// before a page goes. Observed through the kernel functions by name (k.fns.wrap, as a patch would) and the page
// allocator's free hook, on the deterministic runtime with fixed seeds.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { type MmStruct, mmTableOf } from '../src/kernel/mm/mm.js';
import { ptePfn, pte } from '../src/kernel/mm/pagetable.js';
import { onPageFree } from '../src/kernel/mm/physmem.js';
import '../src/workloads/index.js';
import { runBuilt, scriptedSva, type Step } from './helpers.js';

const build = scriptedSva;
const run = runBuilt;

const SEEDS = [1, 2, 3, 4];
const dmaTo = (vpns: readonly number[]): Step[] => vpns.map((vpn) => ({ op: 'dma', vpn }));

/**
 * What the secondary TLBs were told and when pages were freed, in order: `inv` a range flushed for the process's
 * mm (after the flush completed), `free` a frame freed while it was mapped at `vpn` (from a snapshot of the page
 * table taken as the operation starts).
 */
function observe(b: ReturnType<typeof build>, op: 'do_munmap' | 'do_madvise' | 'migrate_pages') {
  const { k } = b.model;
  const mm = b.model.mm(0);
  const pm = mmTableOf(mm).pm;
  const events: ({ kind: 'inv'; start: number; end: number } | { kind: 'free'; vpn: number })[] = [];
  let mapped = new Map<number, number>();
  k.fns.wrap(
    '__mmu_notifier_arch_invalidate_secondary_tlbs',
    (orig) =>
      function* (t: KTask, m: MmStruct, start: number, end: number): KGen {
        yield* orig(t, m, start, end);
        if (m === mm) events.push({ kind: 'inv', start, end });
      },
    'test',
  );
  // While the operation runs: the page table as it started (pfn → vpn).
  let active = false;
  const around = function* <T>(m: MmStruct, body: KGen<T>): KGen<T> {
    if (m !== mm) return yield* body;
    mapped = new Map();
    for (let vpn = 0; vpn < mm.pages; vpn++) if (pte(k, mm, vpn) & 1) mapped.set(ptePfn(pte(k, mm, vpn)), vpn);
    active = true;
    const r = yield* body;
    active = false;
    return r;
  };
  if (op === 'do_munmap')
    k.fns.wrap('do_munmap', (orig) => (t: KTask, m: MmStruct, start: number, n: number) => around(m, orig(t, m, start, n)), 'test');
  if (op === 'do_madvise')
    k.fns.wrap(
      'do_madvise',
      (orig) => (t: KTask, m: MmStruct, start: number, n: number, advice) => around(m, orig(t, m, start, n, advice)),
      'test',
    );
  if (op === 'migrate_pages')
    k.fns.wrap('migrate_pages', (orig) => (t: KTask, m: MmStruct, start: number, n: number) => around(m, orig(t, m, start, n)), 'test');
  onPageFree(pm, (pfn) => {
    if (!active) return;
    const vpn = mapped.get(pfn);
    if (vpn !== undefined) events.push({ kind: 'free', vpn });
    mapped.delete(pfn);
  });
  /** The vpns freed with no flush of theirs before. */
  const unflushed = () => {
    const out: number[] = [];
    events.forEach((e, i) => {
      if (e.kind !== 'free') return;
      const told = events.slice(0, i).some((x) => x.kind === 'inv' && x.start <= e.vpn && e.vpn < x.end);
      if (!told) out.push(e.vpn);
    });
    return out;
  };
  return { events, unflushed, freed: () => events.flatMap((e) => (e.kind === 'free' ? [e.vpn] : [])) };
}

describe('munmap over many pages and VMAs', () => {
  // Two VMAs ([0, 4) and [5, 16): the hole at 4 keeps them apart), pages cached by the IOMMU in both.
  const steps = [
    [
      { op: 'bind' },
      { op: 'munmap', vpn: 4, n: 1, remap: false },
      ...dmaTo([0, 1, 2, 3, 5, 8, 11]),
      { op: 'munmap', vpn: 0, n: 16 },
      { op: 'unbind' },
      { op: 'exit' },
    ],
  ];

  for (const iommus of ['vtd', 'amd', 'smmuv3']) {
    it(`${iommus}: every page of the range is invalidated in the IOMMU before it is freed`, () => {
      for (const seed of SEEDS) {
        const b = build({ iommus }, steps);
        const o = observe(b, 'do_munmap');
        const r = run(b, seed);
        expect(r.findings.map((f) => f.title)).toEqual([]);
        // exec faulted in pages 0-7, the DMAs 8 and 11; the first munmap freed page 4 (the hole).
        expect(o.freed().sort((a, z) => a - z)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 11]);
        expect(o.unflushed()).toEqual([]);
      }
    });
  }

  it('bug=tlb-end-vma-no-notify: the first VMA’s pages are freed untold, and the IOMMU still maps them (stale translation)', () => {
    const b = build({ iommus: 'smmuv3', bug: 'tlb-end-vma-no-notify' }, steps);
    const r = run(b, 1);
    const stale = r.findings.filter((f) => f.kind === 'stale_translation');
    expect(stale.length).toBeGreaterThan(0);
    // The second VMA's pages were told (the flush that freed the batch); the first one's were not.
    for (const f of stale) expect(f.text).toMatch(/vpn [0-3]\}/);
  });
});

describe('madvise(MADV_DONTNEED)', () => {
  it('runs under mmap_lock for read: a page fault of the device proceeds while it zaps, and the zapped pages are flushed before they go', () => {
    for (const seed of SEEDS) {
      // The DMA to page 12 (not faulted in by exec) is not waited for: its page request is handled while madvise runs.
      const b = build({ iommus: 'vtd' }, [
        [
          { op: 'bind' },
          ...dmaTo([0, 1, 2]),
          { op: 'dma', vpn: 12, wait: false },
          { op: 'madvise', vpn: 0, n: 4 },
          ...dmaTo([0, 1]),
          { op: 'unbind' },
          { op: 'exit' },
        ],
      ]);
      const { k } = b.model;
      const mm = b.model.mm(0);
      const o = observe(b, 'do_madvise');
      const locks: string[] = [];
      let faulted = 0;
      k.fns.wrap(
        'handle_mm_fault',
        (orig) =>
          function* (t: KTask, m: MmStruct, vpn: number, write: boolean) {
            const ret = yield* orig(t, m, vpn, write);
            if (m === mm && vpn === 12 && ret === 'ok') faulted++;
            return ret;
          },
        'test',
      );
      k.fns.wrap(
        'zap_page_range_single',
        (orig) =>
          function* (t: KTask, m: MmStruct, start: number, end: number): KGen {
            locks.push(t.holds(m.mmapLock.addr())?.kind ?? 'none');
            // Hold on inside the zap until the device's fault on page 12 is through: it can only get through if the
            // zap's mmap_lock lets a reader in.
            yield k.point(
              t,
              'test: wait for the fault on page 12',
              () => faulted > 0,
              () => undefined,
              { what: 'the fault on page 12' },
            );
            yield* orig(t, m, start, end);
          },
        'test',
      );
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(locks).toEqual(['rwsem-read']);
      expect(faulted).toBe(1);
      expect(o.freed().sort()).toEqual([0, 1, 2, 3]);
      expect(o.unflushed()).toEqual([]);
    }
  });
});

describe('page migration', () => {
  const steps = [
    [{ op: 'bind' }, ...dmaTo([0, 1, 2]), { op: 'migrate', vpn: 0, n: 4 }, ...dmaTo([0, 1, 2]), { op: 'unbind' }, { op: 'exit' }],
  ];

  it('the secondary TLBs are told under the page table lock, in atomic context, before the old page is freed; the device then reaches the new page', () => {
    for (const seed of SEEDS) {
      const b = build({ iommus: 'vtd' }, steps);
      const { k } = b.model;
      const mm = b.model.mm(0);
      const o = observe(b, 'migrate_pages');
      const contexts: string[] = [];
      k.fns.wrap(
        'intel_arch_invalidate_secondary_tlbs',
        (orig) =>
          function* (t: KTask, dev, pasid: number, start: number, end: number): KGen {
            if (t.chain().includes('try_to_migrate_one'))
              contexts.push(`${t.inAtomic() ? 'atomic' : 'process'}${t.holds(mm.ptl.addr()) ? ', ptl' : ''}`);
            yield* orig(t, dev, pasid, start, end);
          },
        'test',
      );
      const before: number[] = [];
      const after: number[] = [];
      k.fns.wrap(
        'migrate_pages',
        (orig) =>
          function* (t: KTask, m: MmStruct, start: number, n: number) {
            for (let v = start; v < start + n; v++) before.push(ptePfn(pte(k, m, v)));
            const moved = yield* orig(t, m, start, n);
            for (let v = start; v < start + n; v++) after.push(ptePfn(pte(k, m, v)));
            return moved;
          },
        'test',
      );
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      // exec faulted in pages 0-7: all four move, each told once, atomic, under mm->page_table_lock.
      expect(contexts).toEqual(['atomic, ptl', 'atomic, ptl', 'atomic, ptl', 'atomic, ptl']);
      expect(o.freed()).toEqual([0, 1, 2, 3]);
      expect(o.unflushed()).toEqual([]);
      after.forEach((pfn, i) => {
        expect(pfn).not.toBe(0);
        expect(pfn).not.toBe(before[i]);
      });
    }
  });

  it('a callback that sleeps there is might_sleep’s BUG: sleeping function called from invalid context', () => {
    const b = build({ iommus: 'amd' }, steps);
    const { k } = b.model;
    k.fns.wrap(
      '__mmu_notifier_arch_invalidate_secondary_tlbs',
      (orig) =>
        function* (t: KTask, m: MmStruct, start: number, end: number): KGen {
          // A driver that takes a mutex in its arch_invalidate_secondary_tlbs.
          k.mightSleep(t, 'kernel/locking/mutex.c:283');
          yield* orig(t, m, start, end);
        },
      'test',
    );
    const r = run(b, 1);
    const bugs = r.findings.filter((f) => f.title.startsWith('BUG: sleeping function called from invalid context'));
    expect(bugs.length).toBeGreaterThan(0);
    expect(bugs[0]?.text).toContain('try_to_migrate_one');
  });
});

describe('a device DMA after any of them never reaches a freed page', () => {
  const steps = [
    [
      { op: 'bind' },
      ...dmaTo([0, 1, 2, 3, 9]),
      { op: 'munmap', vpn: 0, n: 10 },
      ...dmaTo([0, 3, 9]),
      { op: 'madvise', vpn: 0, n: 4 },
      ...dmaTo([0, 1]),
      { op: 'migrate', vpn: 0, n: 10 },
      ...dmaTo([0, 1, 9]),
      { op: 'unbind' },
      { op: 'exit' },
    ],
  ];

  for (const iommus of ['vtd', 'amd', 'smmuv3']) {
    it(`${iommus}: no stale translation, no DMA into a page the process does not own`, () => {
      for (const seed of SEEDS) {
        const r = run(build({ iommus }, steps), seed);
        expect(r.findings.map((f) => f.title)).toEqual([]);
        expect(r.blocked).toEqual([]);
      }
    });
  }

  it('invalidate_range_start / _end are blockable on every path: a callback that sleeps there is no BUG', () => {
    const b = build({ iommus: 'vtd' }, steps);
    const { k } = b.model;
    let calls = 0;
    for (const name of ['__mmu_notifier_invalidate_range_start', '__mmu_notifier_invalidate_range_end'] as const)
      k.fns.wrap(
        name,
        (orig) =>
          function* (t: KTask, m: MmStruct, start: number, end: number): KGen {
            calls++;
            k.mightSleep(t, 'kernel/locking/mutex.c:283');
            yield* orig(t, m, start, end);
          },
        'test',
      );
    const r = run(b, 1);
    expect(r.findings.map((f) => f.title)).toEqual([]);
    expect(calls).toBeGreaterThan(0);
  });

  it('bug=no-range-flush (the invalidation skipped): the oracles see it', () => {
    const r = run(build({ iommus: 'vtd', bug: 'no-range-flush' }, steps), 1);
    expect(r.findings.map((f) => f.kind)).toContain('stale_translation');
  });
});

describe('by kernel name', () => {
  it('the range paths, the TLB gather and the vendors’ callbacks are listed with the kernel files they model', () => {
    const files = (iommus: string) =>
      Object.fromEntries(
        build({ iommus }, [[{ op: 'bind' }]])
          .model.k.fns.list()
          .map((f) => [f.name, f.file]),
      );
    expect(files('vtd')).toMatchObject({
      do_madvise: 'mm/madvise.c',
      zap_page_range_single: 'mm/memory.c',
      unmap_vmas: 'mm/memory.c',
      migrate_pages: 'mm/migrate.c',
      remove_migration_pte: 'mm/migrate.c',
      try_to_migrate_one: 'mm/rmap.c',
      tlb_end_vma: 'include/asm-generic/tlb.h',
      tlb_flush_mmu_tlbonly: 'include/asm-generic/tlb.h',
      tlb_flush_mmu: 'mm/mmu_gather.c',
      tlb_finish_mmu: 'mm/mmu_gather.c',
      flush_tlb_mm_range: 'arch/x86/mm/tlb.c',
      __mmu_notifier_arch_invalidate_secondary_tlbs: 'mm/mmu_notifier.c',
      intel_arch_invalidate_secondary_tlbs: 'drivers/iommu/intel/svm.c',
    });
    expect(files('amd')).toMatchObject({ sva_arch_invalidate_secondary_tlbs: 'drivers/iommu/amd/pasid.c' });
    expect(files('smmuv3')).toMatchObject({
      arm_smmu_mm_arch_invalidate_secondary_tlbs: 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c',
    });
  });
});
