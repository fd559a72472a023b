// Page-table pages and the IOMMU's paging-structure caches (issue #17, deliverable 6): an mm's PGD, PMD and PTE
// pages are frames it owns, allocated on demand and freed by munmap / exit_mmap through the TLB gather after the
// flush that covers them (mm/memory.c free_pgtables, mm/mmu_gather.c tlb_remove_table); the IOMMU's page walk
// caches the upper-level entries it reads, the invalidations that flush the IOTLB drop them, and the
// stale-translation oracle covers table pages: a table freed while a paging-structure cache still points at it,
// and a walk through such an entry. Deterministic runtime, fixed seeds; observed through the page allocator's
// free hook and the kernel functions by name.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { type MmStruct, mmTableOf, ownerOf, PT_LEVEL_PGD, PT_LEVEL_PMD, PT_LEVEL_PTE, PTE_TABLE_SHIFT } from '../src/kernel/mm/mm.js';
import { onPageFree, pageOwner, ptdescIndex, ptdescLevel } from '../src/kernel/mm/physmem.js';
import '../src/workloads/index.js';
import { runBuilt, scriptedSva } from './helpers.js';

const build = scriptedSva;
const run = runBuilt;

const SEEDS = [1, 2, 3];
const FLAVOURS = ['vtd', 'amd', 'smmuv3'];

/** The mm's table pages as they are freed, and the ranges the secondary TLBs were told of, in order. */
function observe(b: ReturnType<typeof build>) {
  const { k } = b.model;
  const mm = b.model.mm(0);
  const pm = mmTableOf(mm).pm;
  const events: ({ kind: 'inv'; start: number; end: number } | { kind: 'table'; level: number; index: number })[] = [];
  k.fns.wrap(
    '__mmu_notifier_arch_invalidate_secondary_tlbs',
    (orig) =>
      function* (t: KTask, m: MmStruct, start: number, end: number): KGen {
        yield* orig(t, m, start, end);
        if (m === mm) events.push({ kind: 'inv', start, end });
      },
    'test',
  );
  onPageFree(pm, (pfn) => {
    const level = ptdescLevel(k, pm, pfn);
    if (level !== 0 && pageOwner(k, pm, pfn) === ownerOf(mm)) events.push({ kind: 'table', level, index: ptdescIndex(k, pm, pfn) });
  });
  /** The mm's frames still allocated, by ptdesc level (0: data pages). */
  const owned = () => {
    const levels: number[] = [];
    for (let pfn = 1; pfn < pm.frames; pfn++) if (pageOwner(k, pm, pfn) === ownerOf(mm)) levels.push(ptdescLevel(k, pm, pfn));
    return levels;
  };
  return { events, owned };
}

describe('page-table pages: allocated on demand, freed after the flush that covers them', () => {
  // VMAs [0, 4) and [8, 16) once the first munmap has left its hole: PTE page 1 (pages 4-7) has no VMA left.
  const steps = [[{ op: 'bind' }, { op: 'dma', vpn: 5 }, { op: 'munmap', vpn: 4, n: 4, remap: false }, { op: 'unbind' }, { op: 'exit' }]];

  for (const iommus of FLAVOURS) {
    it(`${iommus}: munmap frees the PTE page of the hole after a flush of its range; exit_mmap frees the rest`, () => {
      for (const seed of SEEDS) {
        const b = build({ iommus }, steps);
        const o = observe(b);
        const r = run(b, seed);
        expect(r.findings.map((f) => f.title)).toEqual([]);
        const tables = o.events.flatMap((e, i) => (e.kind === 'table' ? [{ ...e, i }] : []));
        // exec faulted pages 0-7 in: PTE pages 0 and 1 only (on demand). PTE page 1 goes first (the munmap), then
        // at exit_mmap PTE page 0 and the PMD page.
        expect(tables[0]).toMatchObject({ level: PT_LEVEL_PTE, index: 1 });
        expect(tables.filter((t) => t.level === PT_LEVEL_PTE).map((t) => t.index)).toEqual([1, 0]);
        expect(tables.filter((t) => t.level === PT_LEVEL_PMD).map((t) => t.index)).toEqual([0]);
        for (const t of tables) {
          if (t.level !== PT_LEVEL_PTE) continue;
          const first = t.index << PTE_TABLE_SHIFT;
          const told = o.events.slice(0, t.i).some((e) => e.kind === 'inv' && e.start < first + (1 << PTE_TABLE_SHIFT) && e.end > first);
          expect(told, `PTE page ${t.index} freed before any flush of its range`).toBe(true);
        }
        // Nothing of the address space is left but, while the mm_struct lives, its PGD page.
        expect(o.owned().filter((l) => l !== PT_LEVEL_PGD)).toEqual([]);
      }
    });
  }
});

describe('the paging-structure cache and the stale-translation oracle on table pages', () => {
  // A hole at [4, 6) (VMAs [0, 4) and [6, 16)); pages 6 and 7 dropped (madvise) so the last munmap zaps nothing and
  // no leaf flush covers PTE page 1. The DMA to 4 faults (no VMA there) — after its walk cached the PMD entry that
  // points at PTE page 1. The munmap of [6, 8) leaves PTE page 1 without a VMA: free_pgtables frees it.
  const steps = [
    [
      { op: 'bind' },
      { op: 'munmap', vpn: 4, n: 2, remap: false },
      { op: 'madvise', vpn: 6, n: 2 },
      { op: 'dma', vpn: 4 },
      { op: 'munmap', vpn: 6, n: 2, remap: false },
      { op: 'dma', vpn: 5 },
      { op: 'unbind' },
      { op: 'exit' },
    ],
  ];

  for (const iommus of FLAVOURS) {
    it(`${iommus}: mainline (pte_free_tlb: freed after the gather's flush) leaves nothing stale`, () => {
      for (const seed of SEEDS) {
        const b = build({ iommus }, steps);
        const o = observe(b);
        expect(run(b, seed).findings.map((f) => f.title)).toEqual([]);
        // The gather's flush was for the freed table alone: no PTE of [6, 8) was present.
        const freed = o.events.findIndex((e) => e.kind === 'table' && e.level === PT_LEVEL_PTE && e.index === 1);
        expect(o.events.slice(0, freed).some((e) => e.kind === 'inv' && e.start <= 4 && e.end > 4)).toBe(true);
      }
    });

    it(`${iommus}: bug=pgtable-free-before-flush is caught at the free and at the walk through the cached entry`, () => {
      for (const seed of SEEDS) {
        const r = run(build({ iommus, bug: 'pgtable-free-before-flush' }, steps), seed);
        const stale = r.findings.filter((f) => f.kind === 'stale_translation');
        const atFree = stale.find((f) => /freed while/.test(f.title));
        expect(atFree?.text).toMatch(/paging-structure cache: \{.*PMD entry of vpn 4-7\} → PTE table pfn/);
        const atWalk = stale.find((f) => /walked PTE table page/.test(f.title));
        expect(atWalk?.title).toMatch(/of mm\/1, which is (free|now a)/);
        expect(atWalk?.text).toMatch(/cached upper-level entry/);
        expect(atWalk?.text).toMatch(/page last freed by/);
      }
    });
  }
});
