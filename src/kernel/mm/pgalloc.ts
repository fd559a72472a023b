// Page-table pages (include/asm-generic/pgalloc.h: pgd_alloc / pgd_free, __pte_alloc / __pmd_alloc, pte_free;
// mm/memory.c: pmd_install, free_pgtables → free_pgd_range → free_pmd_range → free_pte_range). Each table of an
// mm — its PGD page, a PMD page per PMD_TABLE_SHIFT pages, a PTE page per PTE_TABLE_SHIFT pages — is a physmem
// frame owned by the mm and marked as a table by its ptdesc (level, index), so a walker can tell a table page from
// a freed or reused one. What a table holds lives beside the mm_struct (mm.ts: pmdEntryAddr, pgdEntryAddr, and
// the PTEs), addressed by the table's (mm, level, index): a walker reaches it through the frame's ptdesc, so a
// walker holding a stale pointer to a frame that is no longer that table reads whatever the frame is now.
//
// Tables are allocated on demand by a fault (__pte_alloc, installed under the page table lock: pmd_install) and
// freed by munmap and exit_mmap after the PTEs are gone (free_pgtables: a table whose whole range no VMA covers
// any more), through the unmap's TLB gather: pte_free_tlb → tlb_remove_table, so that the gather's TLB flush —
// which tells the secondary TLBs (the IOMMUs' paging-structure caches too) — comes before the free
// (tlb_flush_mmu → tlb_table_flush). The PGD page goes with the mm_struct (__mmdrop → mm_free_pgd).
//
// A planted bug, pgtable-free-before-flush, frees the tables at once (pte_free instead of pte_free_tlb): a device
// whose IOMMU cached an upper-level entry walks into a freed page.
//
// init_mm's tables are frames like a user mm's: the direct map's from boot (mm.ts), the vmalloc area's allocated
// on demand (__pte_alloc_kernel, under init_mm.page_table_lock) and freed only by pmd_free_pte_page, when a huge
// mapping replaces the PTE table under a PMD entry (vmalloc.ts: vmap_try_huge_pmd) — vunmap never frees a kernel
// table. Nothing tells the secondary TLBs of a kernel page-table change (no mmu_notifier: init_mm has none), yet
// the kernel half of every user PGD is init_mm's, so an IOMMU bound to a process caches entries that point at
// kernel tables. Mainline (5ba2f0a15564 "mm: introduce deferred freeing for kernel page tables", e37d5a2d60a3
// "iommu/sva: invalidate stale IOTLB entries for kernel address space") frees a kernel table through
// pagetable_free_kernel: queued on kernel_pgtable_work, whose function first has every SVA mm's IOMMUs drop what
// they cached (iommu_sva_invalidate_kva_range), then frees the pages. The planted kernel-pgtable-free-no-sva-flush
// is the code before: the table freed at once, the IOMMUs' paging-structure caches still pointing at it.
import { read } from '../../runtime/footprint.js';
import type { KTask } from '../context.js';
import type { Kernel, KGen } from '../kernel.js';
import { defineSpinlock, type Spinlock, spin_lock, spin_unlock } from '../spinlock.js';
import { defineWork, schedule_work, type WorkItem } from '../workqueue.js';
import {
  type MmStruct,
  mmTableOf,
  ownerOf,
  PMD_TABLE_SHIFT,
  PT_LEVEL_PGD,
  PT_LEVEL_PMD,
  PT_LEVEL_PTE,
  PTE_TABLE_SHIFT,
  pgdEntryAddr,
  pgdPfnAddr,
  pmdEntryAddr,
  pmdPagesOf,
  ptePagesOf,
  vmaAddr,
} from './mm.js';
import { type MmuGather, tlb_remove_table } from './mmu_gather.js';
import { alloc_page, alloc_page_atomic, allocPagesFootprint, free_page, ptdescFootprint, setPtdesc } from './physmem.js';

/** A table entry's present bit (pmd_present / pgd_present): entries are pfn << 2 | 1. */
export const TABLE_PRESENT = 1;
/** A PMD entry that maps its range itself (_PAGE_PSE, pmd_leaf): ioremap's huge mappings; pfn << 2 | 3. */
export const TABLE_HUGE = 2;

/** mm/memory.c's and mm/pgtable-generic.c's planted bugs. */
export const PGTABLE_BUGS = ['pgtable-free-before-flush', 'kernel-pgtable-free-no-sva-flush'] as const;

/** iommu_sva_invalidate_kva_range's end for everything from start on (TLB_FLUSH_ALL). */
export const TLB_FLUSH_ALL = -1;

declare module '../kfunc.js' {
  interface KernelFunctions {
    pgd_alloc(t: KTask, mm: MmStruct): KGen;
    pgd_free(t: KTask, mm: MmStruct): KGen;
    __pte_alloc(t: KTask, mm: MmStruct, vpn: number): KGen<boolean>;
    /** __pmd_alloc: the PMD page for vpn, installed in its PGD entry unless one is there. False: no memory. */
    __pmd_alloc(t: KTask, mm: MmStruct, vpn: number): KGen<boolean>;
    free_pgtables(t: KTask, tlb: MmuGather, start: number, end: number): KGen;
    /** __pte_alloc_kernel (+ __pmd_alloc for init_mm): the vmalloc area's tables for kernel address vpn. False: no memory. */
    __pte_alloc_kernel(t: KTask, vpn: number): KGen<boolean>;
    /** flush_tlb_kernel_range: the CPUs' TLBs for kernel addresses [start, end) — nothing more (no notifier). */
    flush_tlb_kernel_range(t: KTask, start: number, end: number): KGen;
    /** pmd_free_pte_page (arch/x86/mm/pgtable.c): the PTE table under the PMD entry of vpn cleared and freed. 1: done. */
    pmd_free_pte_page(t: KTask, vpn: number): KGen<number>;
    /** pte_free_kernel → pagetable_dtor_free → pagetable_free: a kernel table page (ptdesc_test_kernel) goes to pagetable_free_kernel. */
    pte_free_kernel(t: KTask, pfn: number): KGen;
    pagetable_free_kernel(t: KTask, pfn: number): KGen;
    __pagetable_free(t: KTask, pfn: number): KGen;
    kernel_pgtable_work_func(t: KTask): KGen;
    /**
     * iommu_sva_invalidate_kva_range (drivers/iommu/iommu-sva.c): every SVA mm's secondary TLBs drop what they
     * cached of kernel addresses [start, end) (end TLB_FLUSH_ALL: everything from start). Defined by the SVA core.
     */
    iommu_sva_invalidate_kva_range(t: KTask, start: number, end: number): KGen;
  }
}

/** kernel_pgtable_work (mm/pgtable-generic.c): its lock, its list of table pages (a count, then the pfns), the work. */
interface KernelPgtableWork {
  readonly lock: Spinlock;
  readonly list: number;
  readonly capacity: number;
  readonly work: WorkItem;
}

/** The table-page functions of k, by kernel name (once a kernel); `bug` may plant pgtable-free-before-flush or kernel-pgtable-free-no-sva-flush. */
export function definePgalloc(k: Kernel, bug: string, initMm: MmStruct): void {
  if (k.fns.has('pgd_alloc')) return;
  defineKernelPgtables(k, bug, initMm);
  k.fns.define('pgd_alloc', 'arch/x86/mm/pgtable.c', (t, mm) => pgdAlloc(k, t, mm));
  k.fns.define('pgd_free', 'arch/x86/mm/pgtable.c', (t, mm) => pgdFree(k, t, mm));
  k.fns.define('__pte_alloc', 'mm/memory.c', (t, mm, vpn) => pteAlloc(k, t, mm, vpn));
  k.fns.define('__pmd_alloc', 'mm/memory.c', (t, mm, vpn) => installTable(k, t, mm, PT_LEVEL_PMD, vpn >> PMD_TABLE_SHIFT, pgdEntryAddr(k, mm, vpn >> PMD_TABLE_SHIFT)));
  k.fns.definePlanted('free_pgtables', 'mm/memory.c', bug, {
    none: (t, tlb, start, end) => freePgtables(k, t, tlb, start, end, false),
    'pgtable-free-before-flush': (t, tlb, start, end) => freePgtables(k, t, tlb, start, end, true),
  });
}

/** mm_alloc_pgd: the PGD page (mm->pgd), allocated as mm_init sets the mm up. */
function* pgdAlloc(k: Kernel, t: KTask, mm: MmStruct): KGen {
  const pm = mmTableOf(mm).pm;
  const pfn = yield* alloc_page(k, t, pm, ownerOf(mm));
  const fp = pfn !== 0 ? ptdescFootprint(k, pm, pfn, [pgdPfnAddr(k, mm)]) : [pgdPfnAddr(k, mm)];
  yield* k.stepOn(t, `pgd_ctor(${mm.name})`, fp, () => {
    if (pfn !== 0) setPtdesc(k, pm, pfn, PT_LEVEL_PGD, 0);
    Atomics.store(k.i32, pgdPfnAddr(k, mm), pfn);
  });
}

/** mm_free_pgd (__mmdrop): the PGD page goes with the mm_struct. mm->pgd keeps pointing at it, as a stale pointer does. */
function* pgdFree(k: Kernel, t: KTask, mm: MmStruct): KGen {
  const pfn = Atomics.load(k.i32, pgdPfnAddr(k, mm));
  if (pfn !== 0) yield* free_page(k, t, mmTableOf(mm).pm, pfn);
}

/** The PMD page index and PTE page index of vpn. */
function tableIndices(vpn: number): { pmd: number; pte: number } {
  return { pmd: vpn >> PMD_TABLE_SHIFT, pte: vpn >> PTE_TABLE_SHIFT };
}

/**
 * __pmd_alloc + __pte_alloc for vpn: a table page for each missing level, installed under the page table lock
 * unless a racing fault installed one first (pmd_install; then the new page is freed). False: no memory.
 */
function* pteAlloc(k: Kernel, t: KTask, mm: MmStruct, vpn: number): KGen<boolean> {
  const { pmd, pte } = tableIndices(vpn);
  if (!(yield* installTable(k, t, mm, PT_LEVEL_PMD, pmd, pgdEntryAddr(k, mm, pmd)))) return false;
  return yield* installTable(k, t, mm, PT_LEVEL_PTE, pte, pmdEntryAddr(k, mm, pte));
}

function* installTable(k: Kernel, t: KTask, mm: MmStruct, level: number, index: number, entry: number): KGen<boolean> {
  if ((Atomics.load(k.i32, entry) & TABLE_PRESENT) !== 0) return (Atomics.load(k.i32, entry) & TABLE_HUGE) === 0;
  const pm = mmTableOf(mm).pm;
  const pfn = yield* alloc_page(k, t, pm, ownerOf(mm));
  if (pfn === 0) return false;
  yield* spin_lock(k, t, mm.ptl);
  const what = level === PT_LEVEL_PTE ? 'pmd_install' : 'pgd_populate';
  const installed = yield* k.stepOn(t, `${what}(${mm.name}, ${index})`, ptdescFootprint(k, pm, pfn, [entry]), () => {
    if ((Atomics.load(k.i32, entry) & TABLE_PRESENT) !== 0) return false;
    setPtdesc(k, pm, pfn, level, index);
    Atomics.store(k.i32, entry, (pfn << 2) | TABLE_PRESENT);
    return true;
  });
  yield* spin_unlock(k, t, mm.ptl);
  if (!installed) yield* free_page(k, t, pm, pfn);
  return true;
}

/**
 * The words pte_alloc_atomic(k, t, mm, vpn) touches (footprint.ts's encoding), appended to out: the root's word
 * and the two entries it reads, and for each missing table the page allocation and the entry it installs.
 * Computed from memory as it is now (pure): evaluate it in the caller's footprint function.
 */
export function pteAllocAtomicFootprint(k: Kernel, t: KTask, mm: MmStruct, vpn: number, out: number[] = []): number[] {
  const { pmd, pte } = tableIndices(vpn);
  const pm = mmTableOf(mm).pm;
  const root = pgdPfnAddr(k, mm);
  const entries = [pgdEntryAddr(k, mm, pmd), pmdEntryAddr(k, mm, pte)];
  const missing = entries.filter((e) => (Atomics.load(k.i32, e) & TABLE_PRESENT) === 0);
  const noRoot = Atomics.load(k.i32, root) === 0;
  const pages = missing.length + (noRoot ? 1 : 0);
  // The frames come zeroed as allocPagesFootprint declares them (their ptdesc included); the entries are
  // written only when their table is missing, but a failed allocation stops it first: declared written anyway.
  out.push(noRoot ? root : read(root));
  for (const e of entries) out.push(missing.includes(e) ? e : read(e));
  return pages === 0 ? out : allocPagesFootprint(k, t, pm, pages, out);
}

/**
 * The tables an I/O page table needs for iova, allocated inside the caller's perform (io-pgtable allocates its
 * table pages GFP_ATOMIC under the domain's lock, in map). False: no memory.
 */
export function pte_alloc_atomic(k: Kernel, t: KTask, mm: MmStruct, vpn: number): boolean {
  const { pmd, pte } = tableIndices(vpn);
  const pm = mmTableOf(mm).pm;
  if (Atomics.load(k.i32, pgdPfnAddr(k, mm)) === 0) {
    // The I/O page table's root, with its first mapping (no mm_init sets it up).
    const root = alloc_page_atomic(k, t, pm, ownerOf(mm));
    if (root === 0) return false;
    setPtdesc(k, pm, root, PT_LEVEL_PGD, 0);
    Atomics.store(k.i32, pgdPfnAddr(k, mm), root);
  }
  const levels: readonly [number, number, number][] = [
    [PT_LEVEL_PMD, pmd, pgdEntryAddr(k, mm, pmd)],
    [PT_LEVEL_PTE, pte, pmdEntryAddr(k, mm, pte)],
  ];
  for (const [level, index, entry] of levels) {
    if ((Atomics.load(k.i32, entry) & TABLE_PRESENT) !== 0) continue;
    const pfn = alloc_page_atomic(k, t, pm, ownerOf(mm));
    if (pfn === 0) return false;
    setPtdesc(k, pm, pfn, level, index);
    Atomics.store(k.i32, entry, (pfn << 2) | TABLE_PRESENT);
  }
  return true;
}

/** Does any VMA cover a page of [start, end)? (A plain read: the caller holds mmap_lock for write.) */
function anyVma(k: Kernel, mm: MmStruct, start: number, end: number): boolean {
  for (let vpn = start; vpn < Math.min(end, mm.pages); vpn++) if (Atomics.load(k.i32, vmaAddr(k, mm, vpn)) !== 0) return true;
  return false;
}

/** A table cleared from its parent entry: its pfn, its level and the first page it maps. */
interface FreedTable {
  readonly pfn: number;
  readonly level: number;
  readonly vpn: number;
}

/**
 * free_pgtables over [start, end) (the caller holds mmap_lock for write, the VMAs of the range detached and their
 * PTEs zapped): free_pgd_range frees each PTE page, then each PMD page, that maps part of the range and whose
 * whole range no VMA covers (the floor and ceiling of the neighbouring VMAs) — cleared from its parent entry,
 * then handed to the gather (pte_free_tlb / pmd_free_tlb), which frees it after its TLB flush.
 */
function* freePgtables(k: Kernel, t: KTask, tlb: MmuGather, start: number, end: number, now: boolean): KGen {
  const mm = tlb.mm;
  const fp = () => freePgdRangeFootprint(k, mm, start, end);
  const freed = yield* k.stepOn(t, `free_pgd_range(${mm.name}, ${start}, ${end})`, fp, () => {
    const out: FreedTable[] = [];
    const pteSpan = 1 << PTE_TABLE_SHIFT;
    const pmdSpan = 1 << PMD_TABLE_SHIFT;
    for (let i = start >> PTE_TABLE_SHIFT; i < Math.min(ptePagesOf(mm.pages), (end + pteSpan - 1) >> PTE_TABLE_SHIFT); i++) {
      out.push(...clearEntry(k, mm, pmdEntryAddr(k, mm, i), PT_LEVEL_PTE, i * pteSpan, pteSpan));
    }
    for (let j = start >> PMD_TABLE_SHIFT; j < Math.min(pmdPagesOf(mm.pages), (end + pmdSpan - 1) >> PMD_TABLE_SHIFT); j++) {
      out.push(...clearEntry(k, mm, pgdEntryAddr(k, mm, j), PT_LEVEL_PMD, j * pmdSpan, pmdSpan));
    }
    return out;
  });
  const pm = mmTableOf(mm).pm;
  for (const f of freed) {
    if (now) yield* free_page(k, t, pm, f.pfn);
    else tlb_remove_table(tlb, f.vpn, f.pfn);
  }
}

/**
 * The words free_pgd_range over [start, end) touches: the entries it reads and those it clears, the VMA words
 * it looks at. Walked as freePgtables walks (the PTE tables first, then the PMD tables, seeing the entries the
 * first pass cleared as clear); pure.
 */
function freePgdRangeFootprint(k: Kernel, mm: MmStruct, start: number, end: number): number[] {
  const words = new Map<number, boolean>(); // word → written
  const see = (w: number): number => {
    if (!words.has(w)) words.set(w, false);
    return words.get(w) === true ? 0 : Atomics.load(k.i32, w);
  };
  const covered = (vpn: number, span: number): boolean => {
    for (let v = vpn; v < Math.min(vpn + span, mm.pages); v++) if (see(vmaAddr(k, mm, v)) !== 0) return true;
    return false;
  };
  const clear = (entry: number, vpn: number, span: number, under: readonly number[]): void => {
    if ((see(entry) & TABLE_PRESENT) === 0 || covered(vpn, span)) return;
    if (under.some((e) => (see(e) & TABLE_PRESENT) !== 0)) return;
    words.set(entry, true);
  };
  const pteSpan = 1 << PTE_TABLE_SHIFT;
  const pmdSpan = 1 << PMD_TABLE_SHIFT;
  for (let i = start >> PTE_TABLE_SHIFT; i < Math.min(ptePagesOf(mm.pages), (end + pteSpan - 1) >> PTE_TABLE_SHIFT); i++) {
    clear(pmdEntryAddr(k, mm, i), i * pteSpan, pteSpan, []);
  }
  for (let j = start >> PMD_TABLE_SHIFT; j < Math.min(pmdPagesOf(mm.pages), (end + pmdSpan - 1) >> PMD_TABLE_SHIFT); j++) {
    const first = (j * pmdSpan) >> PTE_TABLE_SHIFT;
    const under: number[] = [];
    for (let i = first; i < Math.min(first + (1 << (PMD_TABLE_SHIFT - PTE_TABLE_SHIFT)), ptePagesOf(mm.pages)); i++) under.push(pmdEntryAddr(k, mm, i));
    clear(pgdEntryAddr(k, mm, j), j * pmdSpan, pmdSpan, under);
  }
  return [...words].map(([w, written]) => (written ? w : read(w)));
}

/** pmd_clear / pud_clear of one entry (inside free_pgd_range's perform) when no VMA covers what it maps. */
function clearEntry(k: Kernel, mm: MmStruct, entry: number, level: number, vpn: number, span: number): FreedTable[] {
  const e = Atomics.load(k.i32, entry);
  if ((e & TABLE_PRESENT) === 0 || anyVma(k, mm, vpn, vpn + span)) return [];
  // A PMD page goes only once every PTE page under it has gone (free_pmd_range ran first).
  if (level === PT_LEVEL_PMD) {
    const first = vpn >> PTE_TABLE_SHIFT;
    for (let i = first; i < Math.min(first + (1 << (PMD_TABLE_SHIFT - PTE_TABLE_SHIFT)), ptePagesOf(mm.pages)); i++) {
      if ((Atomics.load(k.i32, pmdEntryAddr(k, mm, i)) & TABLE_PRESENT) !== 0) return [];
    }
  }
  Atomics.store(k.i32, entry, 0);
  return [{ pfn: e >>> 2, level, vpn }];
}

// ---- init_mm's tables ----

/** The kernel-table functions: __pte_alloc_kernel, pmd_free_pte_page and the free path of a kernel table page. */
function defineKernelPgtables(k: Kernel, bug: string, initMm: MmStruct): void {
  const capacity = ptePagesOf(initMm.pages) + pmdPagesOf(initMm.pages);
  const kw: KernelPgtableWork = {
    lock: defineSpinlock(k, 'kernel_pgtable_work.lock'),
    list: k.statics.alloc(1 + capacity, 'kernel_pgtable_work.list'),
    capacity,
    work: defineWork(k, 'kernel_pgtable_work', (t) => k.fn.kernel_pgtable_work_func(t)),
  };
  const pm = () => mmTableOf(initMm).pm;
  k.fns.define('__pte_alloc_kernel', 'mm/memory.c', (t, vpn) => pteAlloc(k, t, initMm, vpn));
  k.fns.define('flush_tlb_kernel_range', 'arch/x86/mm/tlb.c', function* (t, start, end) {
    // IPIs to every CPU (or INVLPGB): nothing the model keeps. The IOMMUs are not told here.
    yield* k.stepOn(t, `flush_tlb_kernel_range(${start}, ${end})`, [], () => undefined);
  });
  k.fns.define('pmd_free_pte_page', 'arch/x86/mm/pgtable.c', (t, vpn) => pmdFreePtePage(k, t, initMm, vpn));
  k.fns.define('pte_free_kernel', 'include/asm-generic/pgalloc.h', function* (t, pfn) {
    // pagetable_free: ptdesc_test_kernel — a kernel table: ptdesc_clear_kernel, pagetable_free_kernel.
    yield* k.fn.pagetable_free_kernel(t, pfn);
  });
  k.fns.define('__pagetable_free', 'include/linux/mm.h', (t, pfn) => free_page(k, t, pm(), pfn));
  k.fns.definePlanted('pagetable_free_kernel', 'mm/pgtable-generic.c', bug, {
    none: (t, pfn) => queueKernelPgtable(k, t, kw, pfn),
    // Before 5ba2f0a15564 / e37d5a2d60a3: pagetable_free → __pagetable_free, the IOMMUs never told.
    'kernel-pgtable-free-no-sva-flush': (t, pfn) => k.fn.__pagetable_free(t, pfn),
  });
  k.fns.define('kernel_pgtable_work_func', 'mm/pgtable-generic.c', (t) => kernelPgtableWork(k, t, kw));
}

/**
 * pmd_free_pte_page (x86): the PTE table under vpn's PMD entry goes — pmd_clear, the CPUs' paging-structure
 * caches flushed (INVLPG of one address of the range), then pte_free_kernel. 0 when the entry maps no table.
 */
function* pmdFreePtePage(k: Kernel, t: KTask, initMm: MmStruct, vpn: number): KGen<number> {
  const entry = pmdEntryAddr(k, initMm, vpn >> PTE_TABLE_SHIFT);
  const pfn = yield* k.stepOn(t, `pmd_clear(init_mm, ${vpn})`, [entry], () => {
    const e = Atomics.load(k.i32, entry);
    if ((e & TABLE_PRESENT) === 0 || (e & TABLE_HUGE) !== 0) return 0;
    Atomics.store(k.i32, entry, 0);
    return e >>> 2;
  });
  if (pfn === 0) return 0;
  yield* k.fn.flush_tlb_kernel_range(t, vpn, vpn + 1);
  yield* k.fn.pte_free_kernel(t, pfn);
  return 1;
}

/** pagetable_free_kernel (CONFIG_ASYNC_KERNEL_PGTABLE_FREE): the page on kernel_pgtable_work's list, the work scheduled. */
function* queueKernelPgtable(k: Kernel, t: KTask, kw: KernelPgtableWork, pfn: number): KGen {
  yield* spin_lock(k, t, kw.lock);
  const head = k.mem.statics + kw.list;
  const slot = (): number[] => [head, head + 1 + Math.min(Atomics.load(k.i32, head), kw.capacity - 1)];
  yield* k.stepOn(t, 'list_add(&pt->pt_list, &kernel_pgtable_work.list)', slot, () => {
    const n = Atomics.load(k.i32, head);
    if (n >= kw.capacity) throw new Error(`kernel_pgtable_work: more than ${kw.capacity} table pages queued`);
    Atomics.store(k.i32, head + 1 + n, pfn);
    Atomics.store(k.i32, head, n + 1);
  });
  yield* spin_unlock(k, t, kw.lock);
  yield* schedule_work(k, t, kw.work);
}

/**
 * kernel_pgtable_work_func: the list spliced off under its lock; every SVA mm's IOMMUs drop what they cached of
 * the kernel's addresses (iommu_sva_invalidate_kva_range(PAGE_OFFSET, TLB_FLUSH_ALL)); then the pages are freed.
 */
function* kernelPgtableWork(k: Kernel, t: KTask, kw: KernelPgtableWork): KGen {
  yield* spin_lock(k, t, kw.lock);
  const head = k.mem.statics + kw.list;
  const list = (): number[] => {
    const out = [head];
    for (let i = 0; i < Atomics.load(k.i32, head); i++) out.push(read(head + 1 + i));
    return out;
  };
  const pfns = yield* k.stepOn(t, 'list_splice_tail_init(&kernel_pgtable_work.list, &page_list)', list, () => {
    const n = Atomics.load(k.i32, head);
    const out = Array.from({ length: n }, (_, i) => Atomics.load(k.i32, head + 1 + i));
    Atomics.store(k.i32, head, 0);
    return out;
  });
  yield* spin_unlock(k, t, kw.lock);
  if (pfns.length === 0) return;
  if (k.fns.has('iommu_sva_invalidate_kva_range')) yield* k.fn.iommu_sva_invalidate_kva_range(t, 0, TLB_FLUSH_ALL);
  for (const pfn of pfns) yield* k.fn.__pagetable_free(t, pfn);
}
