// The TLB gather of an unmap (mm/mmu_gather.c, include/asm-generic/tlb.h) and the TLB flush it ends in
// (arch/x86/mm/tlb.c: flush_tlb_mm_range). Zapping PTEs puts their pages in the gather and widens its range;
// the gather flushes the TLBs for that range — the CPU's, then every secondary TLB through
// mmu_notifier_arch_invalidate_secondary_tlbs, called from the architecture's flush as mainline does since
// 6bbd42e2df8f ("mmu_notifiers: call invalidate_range() when invalidating TLBs") — and only then frees the pages.
// It flushes when a VMA is done (tlb_end_vma), when its batch is full (zap_pte_range's force_flush: the TLB
// under the page table lock, the pages after it) and at tlb_finish_mmu.
//
// struct mmu_gather lives on the unmapping task's stack, so here it is the task's own object. Its batch is the
// on-stack bundle only (MMU_GATHER_BUNDLE pages): the model never gets another batch page, as the kernel does
// not when __tlb_next_batch's GFP_NOWAIT allocation fails — a long unmap frees pages every few pages, inside
// its invalidate_range_start / _end, which is where a secondary TLB that was not told is caught.
//
// A planted bug, tlb-end-vma-no-notify, is tlb_end_vma before fd1102f0aade ("mm: mmu_notifier fix for
// tlb_end_vma", v4.19) in the kernel of its day, where the architecture's flush did not call the notifier: the
// CPU TLB flushed and the gather's range reset, the secondary TLBs not told — the next flush of the gather tells
// them of the rest of the range only. That kernel told them of the whole range at invalidate_range_end
// (mmu_notifier.c plants that half).
import type { KTask } from '../context.js';
import type { Kernel, KGen } from '../kernel.js';
import type { MmStruct } from './mm.js';
import { mmTableOf } from './mm.js';
import { free_page } from './physmem.js';

/** include/asm-generic/tlb.h: the pages of the on-stack batch (tlb->local). */
export const MMU_GATHER_BUNDLE = 8;

/** struct mmu_gather: the mm, fullmm (exit_mmap's), the range to flush [start, end) in pages, the batched pfns. */
export interface MmuGather {
  readonly mm: MmStruct;
  readonly fullmm: boolean;
  start: number;
  end: number;
  readonly pages: number[];
  /** Table pages freed by free_pgtables (tlb_remove_table's batch): freed after the flush, as the pages are. */
  readonly tables: number[];
}

/** tlb_gather_mmu / tlb_gather_mmu_fullmm. */
export function tlb_gather_mmu(mm: MmStruct, fullmm = false): MmuGather {
  return { mm, fullmm, start: Number.POSITIVE_INFINITY, end: 0, pages: [], tables: [] };
}

/** __tlb_adjust_range for one PTE, and __tlb_remove_page: true when the batch is full (the caller must flush). */
export function tlb_remove_page(tlb: MmuGather, vpn: number, pfn: number): boolean {
  tlb.start = Math.min(tlb.start, vpn);
  tlb.end = Math.max(tlb.end, vpn + 1);
  tlb.pages.push(pfn);
  return tlb.pages.length >= MMU_GATHER_BUNDLE;
}

/**
 * pte_free_tlb / pmd_free_tlb → tlb_remove_table: the table page mapping from vpn joins the gather, whose range
 * grows to cover it (tlb->freed_tables: the flush must reach the paging-structure caches there too).
 */
export function tlb_remove_table(tlb: MmuGather, vpn: number, pfn: number): void {
  tlb.start = Math.min(tlb.start, vpn);
  tlb.end = Math.max(tlb.end, vpn + 1);
  tlb.tables.push(pfn);
}

/** __tlb_reset_range */
function resetRange(tlb: MmuGather): void {
  tlb.start = Number.POSITIVE_INFINITY;
  tlb.end = 0;
}

declare module '../kfunc.js' {
  interface KernelFunctions {
    flush_tlb_mm_range(t: KTask, mm: MmStruct, start: number, end: number): KGen;
    tlb_flush_mmu_tlbonly(t: KTask, tlb: MmuGather): KGen;
    tlb_flush_mmu(t: KTask, tlb: MmuGather): KGen;
    tlb_end_vma(t: KTask, tlb: MmuGather): KGen;
    tlb_finish_mmu(t: KTask, tlb: MmuGather): KGen;
  }
}

/** The gather's functions by kernel name; `bug` may plant tlb-end-vma-no-notify. Once a kernel. */
export function defineMmuGather(k: Kernel, bug: string): void {
  if (k.fns.has('flush_tlb_mm_range')) return;
  const tlbh = 'include/asm-generic/tlb.h';
  k.fns.define('flush_tlb_mm_range', 'arch/x86/mm/tlb.c', function* (t, mm, start, end) {
    // The CPUs' TLBs (IPIs to those running mm): nothing the model keeps. Then the secondary TLBs, after put_cpu().
    yield* k.stepOn(t, `flush_tlb_mm_range(${mm.name}, ${start}, ${end})`, [], () => undefined);
    yield* k.fn.__mmu_notifier_arch_invalidate_secondary_tlbs(t, mm, start, end);
  });
  k.fns.define('tlb_flush_mmu_tlbonly', tlbh, function* (t, tlb) {
    if (tlb.end <= tlb.start) return;
    // tlb_flush(): the whole mm for exit_mmap's gather (flush_tlb_mm), else the gathered range.
    if (tlb.fullmm) yield* k.fn.flush_tlb_mm_range(t, tlb.mm, 0, tlb.mm.pages);
    else yield* k.fn.flush_tlb_mm_range(t, tlb.mm, tlb.start, tlb.end);
    resetRange(tlb);
  });
  k.fns.define('tlb_flush_mmu', 'mm/mmu_gather.c', function* (t, tlb) {
    yield* k.fn.tlb_flush_mmu_tlbonly(t, tlb);
    // tlb_flush_mmu_free → tlb_batch_pages_flush: the TLBs no longer reach these pages.
    const pm = mmTableOf(tlb.mm).pm;
    for (const pfn of tlb.pages.splice(0)) yield* free_page(k, t, pm, pfn);
    // tlb_table_flush: the table pages, after the same flush.
    for (const pfn of tlb.tables.splice(0)) yield* free_page(k, t, pm, pfn);
  });
  const endVma = function* (t: KTask, tlb: MmuGather): KGen {
    if (!tlb.fullmm) yield* k.fn.tlb_flush_mmu_tlbonly(t, tlb);
  };
  k.fns.definePlanted('tlb_end_vma', tlbh, bug, {
    none: endVma,
    *'tlb-end-vma-no-notify'(t, tlb) {
      if (tlb.fullmm || tlb.end <= tlb.start) return;
      yield* k.stepOn(t, `tlb_flush(${tlb.mm.name}, ${tlb.start}, ${tlb.end})`, [], () => undefined);
      resetRange(tlb);
    },
  });
  k.fns.define('tlb_finish_mmu', 'mm/mmu_gather.c', (t, tlb) => k.fn.tlb_flush_mmu(t, tlb));
}
