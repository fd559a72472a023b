// init_mm's page-table pages (issue #17, deliverable 6): vmalloc / vfree / ioremap over init_mm's vmalloc area
// allocate table pages on demand and free one only where a huge mapping replaces a PTE table (pmd_free_pte_page);
// a kernel table page is freed through pagetable_free_kernel — mainline's (e37d5a2d60a3 with 5ba2f0a15564): on
// kernel_pgtable_work, after iommu_sva_invalidate_kva_range has every SVA mm's IOMMUs drop what they cached of
// the kernel half — or, planted (kernel-pgtable-free-no-sva-flush), at once. A process's device handed a kernel
// address walks its PGD's kernel half (init_mm's tables) and caches the upper-level entries before the U/S check
// faults it: the stale-translation oracle catches the planted free, at the free and at the walk through the
// cached entry. Deterministic runtime, fixed seeds; observed through the page allocator's free hook and the
// kernel functions by name.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { kernelBase, type MmStruct, mmTableOf, ownerOf, PT_LEVEL_PMD, PT_LEVEL_PTE, PTE_TABLE_SHIFT } from '../src/kernel/mm/mm.js';
import { onPageFree, pageOwner, ptdescIndex, ptdescLevel } from '../src/kernel/mm/physmem.js';
import '../src/workloads/index.js';
import { buildSva } from '../src/workloads/sva.js';
import { runBuilt, type Step } from './helpers.js';

const SEEDS = [1, 2, 3];
/** x86's IOMMUs: the PGDs they walk hold the kernel half (the SMMU's CDs disable TTB1 walks: arm64 has none). */
const FLAVOURS = ['vtd', 'amd'];
const PAGES = 16;
/** The kernel's first vmalloc page, and where a process's device reaches it (its PGD's kernel half). */
const VMALLOC_START = kernelBase(PAGES);
const USER_VPN = kernelBase(PAGES) + VMALLOC_START;

function build(params: Record<string, string | number | boolean>, script: Record<string, Step[]>) {
  return buildSva({ pages: PAGES, dmas: 2, processes: 1, ...params, steps: JSON.stringify(script) });
}

type Event = { kind: 'free'; level: number; index: number } | { kind: 'kva' } | { kind: 'unbind' } | { kind: 'inv'; mm: string; start: number; end: number };

/** init_mm's table pages as they are freed, iommu_sva_invalidate_kva_range's calls and the notifier calls they make. */
function observe(b: ReturnType<typeof build>) {
  const { k } = b.model;
  const initMm = mmTableOf(b.model.mm(0)).initMm;
  const pm = mmTableOf(initMm).pm;
  const events: Event[] = [];
  k.fns.wrap(
    'iommu_sva_invalidate_kva_range',
    (orig) =>
      function* (t: KTask, start: number, end: number): KGen {
        events.push({ kind: 'kva' });
        yield* orig(t, start, end);
      },
    'test',
  );
  k.fns.wrap(
    'iommu_sva_unbind_device',
    (orig) =>
      function* (t: KTask, handle: number): KGen {
        yield* orig(t, handle);
        events.push({ kind: 'unbind' });
      },
    'test',
  );
  k.fns.wrap(
    '__mmu_notifier_arch_invalidate_secondary_tlbs',
    (orig) =>
      function* (t: KTask, m: MmStruct, start: number, end: number): KGen {
        yield* orig(t, m, start, end);
        events.push({ kind: 'inv', mm: m.name, start, end });
      },
    'test',
  );
  onPageFree(pm, (pfn) => {
    const level = ptdescLevel(k, pm, pfn);
    if (level !== 0 && pageOwner(k, pm, pfn) === ownerOf(initMm)) events.push({ kind: 'free', level, index: ptdescIndex(k, pm, pfn) });
  });
  /** init_mm's table frames now, as [level, index]. */
  const tables = () => {
    const out: [number, number][] = [];
    for (let pfn = 1; pfn < pm.frames; pfn++) {
      if (pageOwner(k, pm, pfn) === ownerOf(initMm) && ptdescLevel(k, pm, pfn) !== 0) out.push([ptdescLevel(k, pm, pfn), ptdescIndex(k, pm, pfn)]);
    }
    return out;
  };
  return { events, tables };
}

const PTE_INDEX = VMALLOC_START >> PTE_TABLE_SHIFT;

describe("init_mm's vmalloc area: table pages on demand, freed only under a huge mapping", () => {
  it('vmalloc allocates a PTE and a PMD page, vfree keeps them, ioremap frees the PTE page after the IOMMUs are told', () => {
    let toldSeeds = 0;
    for (const seed of SEEDS) {
      const b = build({ iommus: 'vtd' }, {
        'proc/0': [{ op: 'bind' }, { op: 'after', actor: 'kthread/0', step: 4 }, { op: 'unbind' }, { op: 'exit' }],
        'kthread/0': [{ op: 'after', actor: 'proc/0', step: 0 }, { op: 'vmalloc', n: 2 }, { op: 'vfree' }, { op: 'ioremap', n: 4 }, { op: 'iounmap' }],
      });
      const o = observe(b);
      const r = runBuilt(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      // The vmalloc area's PMD page stays (nothing frees it); its PTE page went with the ioremap.
      const vmallocTables = o.tables().filter(([l, i]) => (l === PT_LEVEL_PMD && i >= 1) || (l === PT_LEVEL_PTE && i >= PTE_INDEX));
      expect(vmallocTables).toEqual([[PT_LEVEL_PMD, 1]]);
      const frees = o.events.filter((e) => e.kind === 'free');
      expect(frees).toEqual([{ kind: 'free', level: PT_LEVEL_PTE, index: PTE_INDEX }]);
      // Mainline: kernel_pgtable_work told every SVA mm's IOMMUs first (the bound process's kernel half).
      const at = o.events.findIndex((e) => e.kind === 'free');
      const kva = o.events.findIndex((e) => e.kind === 'kva');
      expect(kva).toBeGreaterThanOrEqual(0);
      expect(kva).toBeLessThan(at);
      // The work runs when a kworker gets to it: the process may have unbound by then (its unbind flushed all).
      const told = o.events.slice(kva, at).find((e) => e.kind === 'inv');
      const unbound = o.events.slice(0, kva).some((e) => e.kind === 'unbind');
      if (!unbound) expect(told).toMatchObject({ mm: 'mm/1', start: kernelBase(PAGES) });
      if (told) toldSeeds++;
    }
    expect(toldSeeds).toBeGreaterThan(0);
  });

  it('bug=kernel-pgtable-free-no-sva-flush frees the PTE page at once, no IOMMU told', () => {
    const b = build({ iommus: 'vtd', bug: 'kernel-pgtable-free-no-sva-flush' }, { 'kthread/0': [{ op: 'vmalloc' }, { op: 'vfree' }, { op: 'ioremap' }] });
    const o = observe(b);
    expect(runBuilt(b, 1).findings.map((f) => f.title)).toEqual([]);
    expect(o.events.filter((e) => e.kind !== 'inv')).toEqual([{ kind: 'free', level: PT_LEVEL_PTE, index: PTE_INDEX }]);
  });
});

describe("a process's device walks its PGD's kernel half: the stale-translation oracle on kernel table pages", () => {
  // The device is handed a kernel address (the vmalloc'd page's, in the process's kernel half): the walk caches
  // the PGD and PMD entries over init_mm's tables, then faults (U/S). The area is vfree'd, an ioremap over its PMD
  // range frees its PTE table, a vmalloc takes the freed frame; the device is handed the address again.
  const script = {
    'proc/0': [{ op: 'bind' }, { op: 'dma', vpn: USER_VPN }, { op: 'after', actor: 'kthread/0', step: 4 }, { op: 'dma', vpn: USER_VPN }, { op: 'unbind' }, { op: 'exit' }],
    'kthread/0': [{ op: 'vmalloc' }, { op: 'after', actor: 'proc/0', step: 1 }, { op: 'vfree' }, { op: 'ioremap' }, { op: 'vmalloc' }],
  };

  for (const iommus of FLAVOURS) {
    it(`${iommus}: mainline (pagetable_free_kernel on kernel_pgtable_work) leaves nothing stale`, () => {
      for (const seed of SEEDS) expect(runBuilt(build({ iommus }, script), seed).findings.map((f) => f.title)).toEqual([]);
    });

    it(`${iommus}: bug=kernel-pgtable-free-no-sva-flush is caught at the free and at the walk through the cached entry`, () => {
      for (const seed of SEEDS) {
        const r = runBuilt(build({ iommus, bug: 'kernel-pgtable-free-no-sva-flush' }, script), seed);
        const stale = r.findings.filter((f) => f.kind === 'stale_translation');
        const atFree = stale.find((f) => /freed while/.test(f.title));
        expect(atFree?.title).toMatch(/of init_mm freed while/);
        expect(atFree?.text).toMatch(new RegExp(`paging-structure cache: \\{.*PMD entry of vpn ${USER_VPN}-${USER_VPN + 3}\\} → PTE table pfn`));
        const atWalk = stale.find((f) => /walked PTE table page/.test(f.title));
        expect(atWalk?.title).toMatch(/of init_mm, which is now a page of init_mm/);
        expect(atWalk?.text).toMatch(/cached upper-level entry/);
      }
    });
  }

  it('vtd: the deferral alone is not the fix — kernel_pgtable_work without iommu_sva_invalidate_kva_range is caught', () => {
    let caught = 0;
    for (const seed of [...SEEDS, 4, 5, 6]) {
      const b = build({ iommus: 'vtd' }, script);
      b.model.k.fns.replace('iommu_sva_invalidate_kva_range', function* () {}, 'test: no IOMMU told');
      const r = runBuilt(b, seed);
      if (r.findings.some((f) => f.kind === 'stale_translation' && /of init_mm freed while/.test(f.title))) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  });

  it('smmuv3: an arm64 process has no kernel half (EPD1): the kernel address faults unwalked, nothing to catch', () => {
    for (const seed of SEEDS) {
      const r = runBuilt(build({ iommus: 'smmuv3', bug: 'kernel-pgtable-free-no-sva-flush' }, script), seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
    }
  });
});
