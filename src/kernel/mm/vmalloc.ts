// The vmalloc area of init_mm (mm/vmalloc.c: vmalloc, vfree, vmap_range_noflush / vunmap_range_noflush,
// vmap_try_huge_pmd; mm/ioremap.c: ioremap, iounmap). The area is init_mm's pages [VMALLOC_START, VMALLOC_END)
// above the direct map (mm.ts: kernelBase, initMmPages). A vmap area is a run of its pages taken under
// vmap_area_lock, recorded in init_mm's VMA words (one a page: the area's first page + 1, shifted past the VM_*
// flags), so vfree finds an area from its address as find_vmap_area does.
//
// vmalloc maps fresh pages, allocating the PTE and PMD table pages on demand (__pte_alloc_kernel); vfree clears the
// PTEs, flushes the CPUs' TLBs (flush_tlb_kernel_range — the model purges the lazy vmap area at once) and frees the
// pages; its table pages stay, as the kernel's do. ioremap maps a device's MMIO range (a BAR above RAM's frames)
// with huge PMD entries where a whole naturally aligned PMD range fits (ioremap_max_page_shift); a PMD entry that
// still points at a PTE table — a vfree'd area's — has it freed first (vmap_try_huge_pmd → pmd_free_pte_page),
// the one path on which a kernel table page is freed and reused while a secondary TLB may still hold a pointer
// to it (pgalloc.ts: pagetable_free_kernel).
import type { KTask } from '../context.js';
import type { Kernel, KGen } from '../kernel.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import { defineSpinlock, type Spinlock, spin_lock, spin_unlock } from '../spinlock.js';
import { kernelBase, type MmStruct, mmTableOf, ownerOf, PTE_TABLE_SHIFT, pmdEntryAddr, pteAddr, vmaAddr } from './mm.js';
import { PTE_PRESENT, PTE_WRITE, VM_READ, VM_WRITE } from './pagetable.js';
import { TABLE_HUGE, TABLE_PRESENT } from './pgalloc.js';
import { alloc_page, free_page } from './physmem.js';

/** The VMA-word bits of a vmap area page: VM_READ | VM_WRITE, VM_IOREMAP, then the area's first page + 1. */
const VM_IOREMAP = 4;
const AREA_SHIFT = 4;

declare module '../kfunc.js' {
  interface KernelFunctions {
    /** vmalloc(n pages): the area's first kernel vpn, 0 when there is no room or no memory. */
    vmalloc(t: KTask, n: number): KGen<number>;
    /** vfree(addr): the area's pages unmapped, the CPUs' TLBs flushed, the pages freed, the area free again. */
    vfree(t: KTask, addr: number): KGen;
    /** ioremap(phys, n pages): a device's MMIO range mapped (huge PMD entries where they fit); 0 when no room. */
    ioremap(t: KTask, phys: number, n: number): KGen<number>;
    iounmap(t: KTask, addr: number): KGen;
    alloc_vmap_area(t: KTask, n: number, align: number, flags: number): KGen<number>;
    free_vmap_area(t: KTask, addr: number): KGen;
    /** vmap_pages_range: PTEs for pfns from addr on, the tables allocated on demand. False: no memory. */
    vmap_pages_range(t: KTask, addr: number, pfns: readonly number[]): KGen<boolean>;
    /** vunmap_range_noflush: the PTEs (and huge PMD entries) of [start, end) cleared; the pfns that were mapped. */
    vunmap_range_noflush(t: KTask, start: number, end: number): KGen<number[]>;
    /** vmap_range_noflush: [addr, addr + n) mapped to phys on, huge where a PMD range fits. False: no memory. */
    vmap_range_noflush(t: KTask, addr: number, n: number, phys: number): KGen<boolean>;
    /** vmap_try_huge_pmd: a huge PMD entry for vpn, after pmd_free_pte_page of a PTE table there. */
    vmap_try_huge_pmd(t: KTask, addr: number, phys: number): KGen<boolean>;
  }
}

/** init_mm's vmalloc area and its lock. */
export interface Vmalloc {
  readonly initMm: MmStruct;
  readonly start: number;
  readonly end: number;
  readonly lock: Spinlock;
}

const areas = new WeakMap<Kernel, Vmalloc>();

/** The vmalloc area of k (defineVmalloc first). */
export function vmallocArea(k: Kernel): Vmalloc | undefined {
  return areas.get(k);
}

/** The vmalloc functions of k, by kernel name, over init_mm's vmalloc area (once a kernel). */
export function defineVmalloc(k: Kernel, initMm: MmStruct, directPages: number): Vmalloc {
  const had = areas.get(k);
  if (had) return had;
  const v: Vmalloc = { initMm, start: kernelBase(directPages), end: initMm.pages, lock: defineSpinlock(k, 'vmap_area_lock') };
  areas.set(k, v);
  const VM = 'mm/vmalloc.c';
  k.fns.define('alloc_vmap_area', VM, (t, n, align, flags) => allocVmapArea(k, t, v, n, align, flags));
  k.fns.define('free_vmap_area', VM, (t, addr) => freeVmapArea(k, t, v, addr));
  k.fns.define('vmap_pages_range', VM, (t, addr, pfns) => vmapPages(k, t, v, addr, pfns));
  k.fns.define('vunmap_range_noflush', VM, (t, start, end) => vunmapRange(k, t, v, start, end));
  k.fns.define('vmap_range_noflush', VM, (t, addr, n, phys) => vmapRange(k, t, addr, n, phys));
  k.fns.define('vmap_try_huge_pmd', VM, (t, addr, phys) => tryHugePmd(k, t, v, addr, phys));
  k.fns.define('vmalloc', VM, (t, n) => vmalloc(k, t, v, n));
  k.fns.define('vfree', VM, (t, addr) => vfree(k, t, v, addr));
  k.fns.define('ioremap', 'mm/ioremap.c', (t, phys, n) => ioremap(k, t, phys, n));
  k.fns.define('iounmap', 'mm/ioremap.c', (t, addr) => vfree(k, t, v, addr));
  return v;
}

/**
 * The VMA words of the whole vmalloc area, written and read: the footprints of the steps that search it or take
 * and give back its areas under vmap_area_lock (made once: points are made at every step).
 */
const areaFootprints = new WeakMap<Vmalloc, { base: number; written: Footprint; read: Footprint }>();

function areaWords(k: Kernel, v: Vmalloc): { written: Footprint; read: Footprint } {
  const base = vmaAddr(k, v.initMm, v.start);
  const had = areaFootprints.get(v);
  if (had && had.base === base) return had;
  const written: number[] = [];
  for (let vpn = v.start; vpn < v.end; vpn++) written.push(vmaAddr(k, v.initMm, vpn));
  const fps = { base, written, read: written.map(read) };
  areaFootprints.set(v, fps);
  return fps;
}

/** The first page of the area addr is in (-1: none), and its pages, read from init_mm's VMA words. */
function areaAt(k: Kernel, v: Vmalloc, addr: number): { first: number; n: number } {
  if (addr < v.start || addr >= v.end) return { first: -1, n: 0 };
  const word = Atomics.load(k.i32, vmaAddr(k, v.initMm, addr));
  const first = (word >>> AREA_SHIFT) - 1;
  if (first < 0) return { first: -1, n: 0 };
  let n = 0;
  while (first + n < v.end && Atomics.load(k.i32, vmaAddr(k, v.initMm, first + n)) >>> AREA_SHIFT === first + 1) n++;
  return { first, n };
}

/** alloc_vmap_area: the first free run of n pages aligned to `align`, under vmap_area_lock; 0 when none. */
function* allocVmapArea(k: Kernel, t: KTask, v: Vmalloc, n: number, align: number, flags: number): KGen<number> {
  yield* spin_lock(k, t, v.lock);
  const at = yield* k.stepOn(t, `alloc_vmap_area(${n})`, areaWords(k, v).written, () => {
    for (let s = v.start; s + n <= v.end; s += align) {
      let free = true;
      for (let i = 0; i < n && free; i++) free = Atomics.load(k.i32, vmaAddr(k, v.initMm, s + i)) === 0;
      if (!free) continue;
      for (let i = 0; i < n; i++) Atomics.store(k.i32, vmaAddr(k, v.initMm, s + i), ((s + 1) << AREA_SHIFT) | VM_READ | VM_WRITE | flags);
      return s;
    }
    return 0;
  });
  yield* spin_unlock(k, t, v.lock);
  return at;
}

function* freeVmapArea(k: Kernel, t: KTask, v: Vmalloc, addr: number): KGen {
  yield* spin_lock(k, t, v.lock);
  yield* k.stepOn(t, `free_vmap_area(${addr})`, areaWords(k, v).written, () => {
    const { first, n } = areaAt(k, v, addr);
    for (let i = 0; i < n; i++) Atomics.store(k.i32, vmaAddr(k, v.initMm, first + i), 0);
  });
  yield* spin_unlock(k, t, v.lock);
}

function* vmapPages(k: Kernel, t: KTask, v: Vmalloc, addr: number, pfns: readonly number[]): KGen<boolean> {
  for (let i = 0; i < pfns.length; i++) {
    if (!(yield* k.fn.__pte_alloc_kernel(t, addr + i))) return false;
    yield* k.stepOn(t, `set_pte_at(init_mm, ${addr + i})`, [pteAddr(k, v.initMm, addr + i)], () => {
      Atomics.store(k.i32, pteAddr(k, v.initMm, addr + i), ((pfns[i] as number) << 2) | PTE_PRESENT | PTE_WRITE);
    });
  }
  return true;
}

/** The PTEs and huge PMD entries of [start, end) cleared (one point a table, as vunmap_pte_range's loop runs). */
function* vunmapRange(k: Kernel, t: KTask, v: Vmalloc, start: number, end: number): KGen<number[]> {
  const span = 1 << PTE_TABLE_SHIFT;
  const out: number[] = [];
  for (let s = start; s < end; s = (s - (s % span)) + span) {
    const stop = Math.min(end, s - (s % span) + span);
    const pmd = pmdEntryAddr(k, v.initMm, s >> PTE_TABLE_SHIFT);
    const fp = [pmd];
    for (let vpn = s; vpn < stop; vpn++) fp.push(pteAddr(k, v.initMm, vpn));
    yield* k.stepOn(t, `vunmap_pmd_range(init_mm, ${s}, ${stop})`, fp, () => {
      const e = Atomics.load(k.i32, pmd);
      // pmd_clear_huge: a huge entry goes whole (ioremap areas are whole PMD ranges when they are huge).
      if ((e & TABLE_HUGE) !== 0) return void Atomics.store(k.i32, pmd, 0);
      for (let vpn = s; vpn < stop; vpn++) {
        const p = Atomics.load(k.i32, pteAddr(k, v.initMm, vpn));
        if ((p & PTE_PRESENT) !== 0) out.push(p >>> 2);
        Atomics.store(k.i32, pteAddr(k, v.initMm, vpn), 0);
      }
    });
  }
  return out;
}

/** vmap_range_noflush for an MMIO range: per PMD range, huge if it fits whole, else PTEs. */
function* vmapRange(k: Kernel, t: KTask, addr: number, n: number, phys: number): KGen<boolean> {
  const span = 1 << PTE_TABLE_SHIFT;
  for (let i = 0; i < n; ) {
    const vpn = addr + i;
    if (vpn % span === 0 && n - i >= span && (phys + i) % span === 0 && (yield* k.fn.vmap_try_huge_pmd(t, vpn, phys + i))) {
      i += span;
      continue;
    }
    if (!(yield* k.fn.vmap_pages_range(t, vpn, [phys + i]))) return false;
    i++;
  }
  return true;
}

/**
 * vmap_pmd_range's step for a whole PMD range: pmd_alloc_track (the PMD page on demand), then vmap_try_huge_pmd — a
 * PMD entry that points at a PTE table has it freed (pmd_free_pte_page) — and pmd_set_huge.
 */
function* tryHugePmd(k: Kernel, t: KTask, v: Vmalloc, addr: number, phys: number): KGen<boolean> {
  if (!(yield* k.fn.__pmd_alloc(t, v.initMm, addr))) return false;
  const pmd = pmdEntryAddr(k, v.initMm, addr >> PTE_TABLE_SHIFT);
  if ((Atomics.load(k.i32, pmd) & TABLE_PRESENT) !== 0 && (yield* k.fn.pmd_free_pte_page(t, addr)) === 0) return false;
  return yield* k.stepOn(t, `pmd_set_huge(init_mm, ${addr})`, [pmd], () => {
    if ((Atomics.load(k.i32, pmd) & TABLE_PRESENT) !== 0) return false;
    Atomics.store(k.i32, pmd, (phys << 2) | TABLE_PRESENT | TABLE_HUGE);
    return true;
  });
}

function* vmalloc(k: Kernel, t: KTask, v: Vmalloc, n: number): KGen<number> {
  if (!Number.isInteger(n) || n < 1) return 0;
  const addr = yield* k.fn.alloc_vmap_area(t, n, 1, 0);
  if (addr === 0) return 0;
  // __vmalloc_area_node: the pages, then vmap_pages_range.
  const pm = mmTableOf(v.initMm).pm;
  const pfns: number[] = [];
  for (let i = 0; i < n; i++) {
    const pfn = yield* alloc_page(k, t, pm, ownerOf(v.initMm));
    if (pfn === 0) break;
    pfns.push(pfn);
  }
  if (pfns.length === n && (yield* k.fn.vmap_pages_range(t, addr, pfns))) return addr;
  // vfree on the way out: what was mapped is unmapped, every page freed.
  yield* k.fn.vunmap_range_noflush(t, addr, addr + n);
  yield* k.fn.flush_tlb_kernel_range(t, addr, addr + n);
  for (const pfn of pfns) yield* free_page(k, t, pm, pfn);
  yield* k.fn.free_vmap_area(t, addr);
  return 0;
}

/**
 * vfree / iounmap: remove_vm_area (vunmap_range_noflush), the TLB flush of the lazy purge (done at once here),
 * the pages back (a vmalloc area's: MMIO is nobody's), the area free again. The page tables stay.
 */
function* vfree(k: Kernel, t: KTask, v: Vmalloc, addr: number): KGen {
  const { first, n } = yield* k.stepOn(t, `find_vmap_area(${addr})`, areaWords(k, v).read, () => areaAt(k, v, addr));
  if (first !== addr) {
    yield* k.stepOn(t, `Trying to vfree() nonexistent vm area (${addr})`, [], () => undefined);
    return;
  }
  const ioremapped = (Atomics.load(k.i32, vmaAddr(k, v.initMm, addr)) & VM_IOREMAP) !== 0;
  const pfns = yield* k.fn.vunmap_range_noflush(t, addr, addr + n);
  yield* k.fn.flush_tlb_kernel_range(t, addr, addr + n);
  if (!ioremapped) for (const pfn of pfns) yield* free_page(k, t, mmTableOf(v.initMm).pm, pfn);
  yield* k.fn.free_vmap_area(t, addr);
}

/** ioremap: an area aligned to a PMD range when it spans one (IOREMAP_MAX_ORDER), mapped to phys on. */
function* ioremap(k: Kernel, t: KTask, phys: number, n: number): KGen<number> {
  if (!Number.isInteger(n) || n < 1) return 0;
  const span = 1 << PTE_TABLE_SHIFT;
  const addr = yield* k.fn.alloc_vmap_area(t, n, n >= span ? span : 1, VM_IOREMAP);
  if (addr === 0) return 0;
  if (yield* k.fn.vmap_range_noflush(t, addr, n, phys)) return addr;
  yield* k.fn.iounmap(t, addr);
  return 0;
}
