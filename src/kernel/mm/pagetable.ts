// Page tables, VMAs, page faults and unmapping (mm/mmap.c: do_mmap, do_munmap, exit_mmap; mm/memory.c:
// handle_mm_fault, unmap_vmas; mm/mmu_gather.c: the "free the pages only after the TLBs are flushed" rule).
//
// One PTE word per virtual page, `(pfn << 2) | bits`, read by hardware walkers (the IOMMU's page-table walk)
// inside their own sequenced steps; every PTE store is one word in one point, so a walker sees each PTE either
// before or after a change, as hardware does. The VMA map is one word a page (VM_READ | VM_WRITE, 0: no VMA),
// written under mmap_lock held for write and read under it held for read. Anonymous memory is demand-paged:
// do_mmap only creates the VMA, a fault allocates the frame.
//
// Unmapping follows the kernel's order, which the IOMMU depends on: detach the VMAs (no new fault finds them),
// mmu_notifier_invalidate_range_start, clear the PTEs of each VMA into a TLB gather (mmu_gather.ts), whose flushes
// — at each VMA's end, when its batch is full, at tlb_finish_mmu — tell every secondary MMU to invalidate its TLBs
// for the range (flush_tlb_mm_range → arch_invalidate_secondary_tlbs) before the gathered frames are freed;
// mmu_notifier_invalidate_range_end. A device that cached a translation can no longer reach a frame by the time
// it is reused. munmap does it under mmap_lock for write, madvise(MADV_DONTNEED) under it for read (faults go on;
// the VMAs stay), page migration under neither: each PTE becomes a migration entry and is flushed under the page
// table lock (atomic: the secondary TLBs are told there), a fault on it waits for the migration, and the old frame
// is freed once the new one is mapped. VMAs are runs of pages with the same flags (vma_merge joins the others).
// Ranges are [start, end) in pages.
import type { KTask } from '../context.js';
import { EEXIST, EINVAL, ENOMEM } from '../errno.js';
import { callTrace, heldLocksLines, taskFinding } from '../findings.js';
import { fileVmas } from '../fs/file.js';
import type { Kernel, KGen } from '../kernel.js';
import { objArgLabel } from '../labels.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import { down_read, down_write, up_read, up_write } from '../rwsem.js';
import { spin_lock, spin_unlock } from '../spinlock.js';
import {
  MM_DEAD,
  MM_EXITING,
  MM_FIELD,
  MM_LIVE,
  type MmStruct,
  mmAccess,
  mmAccessFootprint,
  mmStateWriteFootprint,
  mmStateCode,
  mmTableOf,
  ownerOf,
  PTE_TABLE_SHIFT,
  pmdEntryAddr,
  pteAddr,
  setMmState,
  vmaAddr,
} from './mm.js';
import { type MmuGather, tlb_gather_mmu, tlb_remove_page } from './mmu_gather.js';
import { TABLE_PRESENT } from './pgalloc.js';
import type { MmuNotifiers } from './mmu_notifier.js';
import { alloc_page, free_page } from './physmem.js';

export const PTE_PRESENT = 1;
export const PTE_WRITE = 2;

/** VMA flags (one word a page). */
export const VM_READ = 1;
export const VM_WRITE = 2;

// Nominal source line of mmap_assert_locked's lockdep assertion.
const MMAP_ASSERT_SITE = 'include/linux/mmap_lock.h:71';

function inRange(mm: MmStruct, vpn: number): boolean {
  return Number.isInteger(vpn) && vpn >= 0 && vpn < mm.pages;
}

/** The PTE of vpn (0 outside the table). A plain read: hardware walkers call it inside a sequenced step. */
export function pte(k: Kernel, mm: MmStruct, vpn: number): number {
  return inRange(mm, vpn) ? Atomics.load(k.i32, pteAddr(k, mm, vpn)) : 0;
}

export function ptePfn(p: number): number {
  return p >>> 2;
}

export function pteWritable(p: number): boolean {
  return (p & (PTE_PRESENT | PTE_WRITE)) === (PTE_PRESENT | PTE_WRITE);
}

function mkPte(pfn: number, write: boolean): number {
  return (pfn << 2) | PTE_PRESENT | (write ? PTE_WRITE : 0);
}

/** A migration entry: not present, bit 1 set, the pfn of the page being migrated (make_migration_entry). */
function migrationEntry(pfn: number): number {
  return (pfn << 2) | PTE_WRITE;
}

export function isMigrationEntry(p: number): boolean {
  return (p & PTE_PRESENT) === 0 && (p & PTE_WRITE) !== 0;
}

/** Is vpn inside a VMA? (A plain read.) */
export function vmaMapped(k: Kernel, mm: MmStruct, vpn: number): boolean {
  return inRange(mm, vpn) && Atomics.load(k.i32, vmaAddr(k, mm, vpn)) !== 0;
}

/** Is vpn inside a writable VMA? */
export function vmaWritable(k: Kernel, mm: MmStruct, vpn: number): boolean {
  return inRange(mm, vpn) && (Atomics.load(k.i32, vmaAddr(k, mm, vpn)) & VM_WRITE) !== 0;
}

/** mmap_assert_locked / mmap_assert_write_locked (lockdep_assert_held), inside a perform. */
function assertLocked(k: Kernel, t: KTask, mm: MmStruct, fn: string, write: boolean, step: number): void {
  if (!k.enabled('lockdep')) return;
  const h = t.holds(mm.mmapLock.addr());
  if (h && (!write || h.kind === 'rwsem-write')) return;
  const title = `WARNING: CPU: 0 PID: ${t.pid} at ${MMAP_ASSERT_SITE} ${fn}`;
  const body = [
    `Comm: ${t.comm} Not tainted (iommu-sim)`,
    `RIP: 0010:${fn}`,
    `iommu-sim: ${fn} on ${mm.name} without its mmap_lock held${write ? ' for write' : ''} (lockdep_assert_held(&mm->mmap_lock))`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('lockdep', t, step, title, body));
}

declare module '../kfunc.js' {
  interface KernelFunctions {
    do_mmap(t: KTask, mm: MmStruct, start: number, n: number, write: boolean): KGen<number>;
    handle_mm_fault(t: KTask, mm: MmStruct, vpn: number, write: boolean): KGen<'ok' | 'sigsegv'>;
    do_munmap(t: KTask, mm: MmStruct, start: number, count: number): KGen<number>;
    exit_mmap(t: KTask, mm: MmStruct): KGen;
    unmap_vmas(t: KTask, tlb: MmuGather, vmas: readonly VmaRange[], start: number, end: number): KGen;
    zap_page_range_single(t: KTask, mm: MmStruct, start: number, end: number): KGen;
    do_madvise(t: KTask, mm: MmStruct, start: number, count: number, advice: Madvice): KGen<number>;
    migrate_pages(t: KTask, mm: MmStruct, start: number, count: number): KGen<number>;
    try_to_migrate_one(t: KTask, mm: MmStruct, vpn: number): KGen<number>;
    remove_migration_pte(t: KTask, mm: MmStruct, vpn: number, src: number, dst: number): KGen<boolean>;
  }
}

/** madvise(2) advice the model has. */
export type Madvice = 'MADV_DONTNEED';

/** The address-space functions of k (mm/mmap.c, mm/memory.c), by kernel name; once a kernel. */
export function defineMmapFunctions(k: Kernel): void {
  if (k.fns.has('do_mmap')) return;
  k.fns.define('do_mmap', 'mm/mmap.c', (t, mm, start, n, write) => doMmap(k, t, mm, start, n, write));
  k.fns.define('handle_mm_fault', 'mm/memory.c', (t, mm, vpn, write) => handleMmFault(k, t, mm, vpn, write));
  k.fns.define('do_munmap', 'mm/mmap.c', (t, mm, start, count) => doMunmap(k, t, mm, start, count));
  k.fns.define('exit_mmap', 'mm/mmap.c', (t, mm) => exitMmap(k, t, mm));
  k.fns.define('unmap_vmas', 'mm/memory.c', (t, tlb, vmas, start, end) => unmapVmas(k, t, tlb, vmas, start, end));
  k.fns.define('zap_page_range_single', 'mm/memory.c', (t, mm, start, end) => zapPageRangeSingle(k, t, mm, start, end));
  k.fns.define('do_madvise', 'mm/madvise.c', (t, mm, start, count, advice) => doMadvise(k, t, mm, start, count, advice));
  k.fns.define('migrate_pages', 'mm/migrate.c', (t, mm, start, count) => migratePages(k, t, mm, start, count));
  k.fns.define('try_to_migrate_one', 'mm/rmap.c', (t, mm, vpn) => tryToMigrateOne(k, t, mm, vpn));
  k.fns.define('remove_migration_pte', 'mm/migrate.c', (t, mm, vpn, src, dst) => removeMigrationPte(k, t, mm, vpn, src, dst));
}

/**
 * do_mmap(MAP_ANONYMOUS | MAP_FIXED_NOREPLACE): a VMA over [start, start + n), no frames yet. Takes mmap_lock
 * for write. Returns start, -EINVAL for an empty or negative range or an mm that is not live, -ENOMEM past the
 * end of the address space, -EEXIST over an existing VMA.
 */
function* doMmap(k: Kernel, t: KTask, mm: MmStruct, start: number, n: number, write: boolean): KGen<number> {
  if (!Number.isInteger(start) || !Number.isInteger(n) || n <= 0 || start < 0) return -EINVAL;
  if (start + n > mm.pages) return -ENOMEM;
  yield* down_write(k, t, mm.mmapLock);
  const vmas = vmaWords(k, mm, start, start + n, false);
  const ret = yield* k.stepOn(t, `mmap_region(${mm.name}, ${start}, ${n})`, () => mmAccessFootprint(k, mm, vmas), () => {
    mmAccess(k, t, mm, MM_FIELD.pgd, true);
    if (mmStateCode(k, mm) !== MM_LIVE) return -EINVAL;
    for (let vpn = start; vpn < start + n; vpn++) if (Atomics.load(k.i32, vmaAddr(k, mm, vpn)) !== 0) return -EEXIST;
    const flags = VM_READ | (write ? VM_WRITE : 0);
    for (let vpn = start; vpn < start + n; vpn++) Atomics.store(k.i32, vmaAddr(k, mm, vpn), flags);
    return start;
  });
  yield* up_write(k, t, mm.mmapLock);
  return ret;
}

/** k.fn.do_mmap */
export function do_mmap(k: Kernel, t: KTask, mm: MmStruct, start: number, n: number, write: boolean): KGen<number> {
  return k.fn.do_mmap(t, mm, start, n, write);
}

/**
 * handle_mm_fault: the caller holds mmap_lock for read (lockdep says so when it does not). A fault outside a
 * VMA, a write to a read-only VMA, a fault on an mm that is exiting or gone, and a fault that finds no memory
 * (VM_FAULT_OOM) all fail ('sigsegv'). Otherwise a zeroed frame owned by the mm is mapped — writable when the
 * VMA is — unless a racing fault mapped one first.
 */
function* handleMmFault(k: Kernel, t: KTask, mm: MmStruct, vpn: number, write: boolean): KGen<'ok' | 'sigsegv'> {
  for (;;) {
    const fp: Footprint = inRange(mm, vpn) ? [read(vmaAddr(k, mm, vpn)), read(pteAddr(k, mm, vpn)), read(pmdEntryAddr(k, mm, vpn >> PTE_TABLE_SHIFT))] : [];
    const need = yield* k.stepOn(t, objArgLabel(mm, 'handle_mm_fault', mm.name, vpn, write ? ', write' : ''), () => mmAccessFootprint(k, mm, fp), (env) => {
      assertLocked(k, t, mm, 'handle_mm_fault', false, env.step);
      if (!mmAccess(k, t, mm, MM_FIELD.pgd, false)) return 'sigsegv';
      if (mmStateCode(k, mm) !== MM_LIVE || !inRange(mm, vpn)) return 'sigsegv';
      const vma = Atomics.load(k.i32, vmaAddr(k, mm, vpn));
      if (vma === 0 || (write && (vma & VM_WRITE) === 0)) return 'sigsegv';
      const p = Atomics.load(k.i32, pteAddr(k, mm, vpn));
      if ((p & PTE_PRESENT) !== 0) return 'ok';
      if (isMigrationEntry(p)) return 'migrating';
      // __handle_mm_fault: pmd_alloc, then pte_alloc, when the tables of vpn are not there yet.
      return (Atomics.load(k.i32, pmdEntryAddr(k, mm, vpn >> PTE_TABLE_SHIFT)) & TABLE_PRESENT) === 0 ? 'table' : 'alloc';
    });
    if (need === 'table' && !(yield* k.fn.__pte_alloc(t, mm, vpn))) return 'sigsegv';
    if (need !== 'migrating') return need === 'alloc' || need === 'table' ? yield* doAnonymousPage(k, t, mm, vpn) : need;
    // do_swap_page → migration_entry_wait: sleep until the migration put the page back, then fault again.
    yield k.point(
      t,
      objArgLabel(mm, 'migration_entry_wait', mm.name, vpn),
      () => !isMigrationEntry(pte(k, mm, vpn)),
      () => undefined,
      { what: `the migration of ${mm.name}'s page ${vpn}` },
      inRange(mm, vpn) ? [read(pteAddr(k, mm, vpn))] : [],
    );
  }
}

/** do_anonymous_page: a zeroed frame for vpn, unless a racing fault mapped one first. */
function* doAnonymousPage(k: Kernel, t: KTask, mm: MmStruct, vpn: number): KGen<'ok' | 'sigsegv'> {
  const pm = mmTableOf(mm).pm;
  const pfn = yield* alloc_page(k, t, pm, ownerOf(mm));
  if (pfn === 0) return 'sigsegv';
  const installed = yield* k.stepOn(t, objArgLabel(mm, 'set_pte_at', mm.name, vpn), [pteAddr(k, mm, vpn), read(vmaAddr(k, mm, vpn))], () => {
    const at = pteAddr(k, mm, vpn);
    // pte_none() under the page-table lock: another fault may have mapped it meanwhile.
    if (Atomics.load(k.i32, at) !== 0) return false;
    const writable = (Atomics.load(k.i32, vmaAddr(k, mm, vpn)) & VM_WRITE) !== 0;
    Atomics.store(k.i32, at, mkPte(pfn, writable));
    return true;
  });
  if (!installed) yield* free_page(k, t, pm, pfn);
  return 'ok';
}

/**
 * Fault a page in, as get_user_pages or an IOPF handler does (the model's helper, no kernel function of its
 * own): mmap_read_lock, handle_mm_fault, unlock.
 */
export function* fault_in(k: Kernel, t: KTask, mm: MmStruct, vpn: number, write: boolean): KGen<'ok' | 'sigsegv'> {
  yield* down_read(k, t, mm.mmapLock);
  const r = yield* k.fn.handle_mm_fault(t, mm, vpn, write);
  yield* up_read(k, t, mm.mmapLock);
  return r;
}

/** The VMA words of [start, end) (a caller's range, checked), written or only read. */
function vmaWords(k: Kernel, mm: MmStruct, start: number, end: number, onlyRead: boolean): number[] {
  const out: number[] = [];
  for (let vpn = Math.max(0, start); vpn < Math.min(end, mm.pages); vpn++) out.push(onlyRead ? read(vmaAddr(k, mm, vpn)) : vmaAddr(k, mm, vpn));
  return out;
}

/** A VMA's pages [start, end). */
export interface VmaRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The VMAs over [start, end) (inside a perform): maximal runs of pages in a VMA with the same flags — anonymous
 * VMAs side by side with the same flags are one, as vma_merge makes them.
 */
function vmasIn(k: Kernel, mm: MmStruct, start: number, end: number): VmaRange[] {
  const out: VmaRange[] = [];
  let from = -1;
  let flags = 0;
  for (let vpn = start; vpn <= end; vpn++) {
    const f = vpn < end ? Atomics.load(k.i32, vmaAddr(k, mm, vpn)) : 0;
    if (from >= 0 && f !== flags) {
      out.push({ start: from, end: vpn });
      from = -1;
    }
    if (from < 0 && f !== 0) {
      from = vpn;
      flags = f;
    }
  }
  return out;
}

/**
 * zap_pte_range: under the page table lock, clear each PTE of [start, end) and gather its page; a full batch
 * stops the walk (force_flush): the TLBs flushed under the lock, the pages freed after it, then on.
 */
function* zapPteRange(k: Kernel, t: KTask, tlb: MmuGather, start: number, end: number): KGen {
  const mm = tlb.mm;
  let vpn = start;
  while (vpn < end) {
    yield* spin_lock(k, t, mm.ptl);
    let force = false;
    for (; vpn < end && !force; vpn++) {
      const at = vpn;
      const old = yield* k.stepOn(t, objArgLabel(mm, 'ptep_get_and_clear_full', mm.name, at), [pteAddr(k, mm, at)], () => Atomics.exchange(k.i32, pteAddr(k, mm, at), 0));
      // A migration entry has no page of the mm's to free: the migration holds it.
      if ((old & PTE_PRESENT) !== 0) force = tlb_remove_page(tlb, at, ptePfn(old));
    }
    if (force) yield* k.fn.tlb_flush_mmu_tlbonly(t, tlb);
    yield* spin_unlock(k, t, mm.ptl);
    if (force) yield* k.fn.tlb_flush_mmu(t, tlb);
  }
}

/** unmap_single_vma: tlb_start_vma (nothing to do), the PTEs, tlb_end_vma (the VMA's range flushed). */
function* unmapSingleVma(k: Kernel, t: KTask, tlb: MmuGather, vma: VmaRange): KGen {
  yield* zapPteRange(k, t, tlb, vma.start, vma.end);
  yield* k.fn.tlb_end_vma(t, tlb);
}

/** unmap_vmas: invalidate_range_start over [start, end), each VMA, invalidate_range_end. */
function* unmapVmas(k: Kernel, t: KTask, tlb: MmuGather, vmas: readonly VmaRange[], start: number, end: number): KGen {
  yield* k.fn.__mmu_notifier_invalidate_range_start(t, tlb.mm, start, end);
  for (const vma of vmas) yield* unmapSingleVma(k, t, tlb, vma);
  yield* k.fn.__mmu_notifier_invalidate_range_end(t, tlb.mm, start, end);
}

/**
 * Tear down [start, end) (the caller holds mmap_lock for write): detach the VMAs (no new fault finds them), then
 * unmap_region: unmap_vmas with one gather, whose flushes invalidate the secondary TLBs before its pages are freed,
 * and tlb_finish_mmu. `fullmm`: exit_mmap's gather (the whole mm flushed at once).
 */
function* unmapRange(k: Kernel, t: KTask, mm: MmStruct, start: number, end: number, fullmm: boolean): KGen {
  const vmas = yield* k.stepOn(t, `detach_vmas(${mm.name}, ${start}, ${end})`, vmaWords(k, mm, start, end, false), () => {
    const found = vmasIn(k, mm, start, end);
    for (const v of found) for (let vpn = v.start; vpn < v.end; vpn++) Atomics.store(k.i32, vmaAddr(k, mm, vpn), 0);
    return found;
  });
  if (vmas.length === 0 && !fullmm) return;
  const tlb = tlb_gather_mmu(mm, fullmm);
  if (vmas.length > 0) yield* k.fn.unmap_vmas(t, tlb, vmas, start, end);
  // unmap_region / exit_mmap: the page tables no VMA needs any more, into the same gather (freed after its flush).
  yield* k.fn.free_pgtables(t, tlb, start, end);
  yield* k.fn.tlb_finish_mmu(t, tlb);
}

/**
 * do_munmap: mmap_lock for write, then unmap [start, start + count) in the order above. 0, or -EINVAL for a bad
 * range or an mm that is not live. Unmapping a hole is not an error.
 */
function* doMunmap(k: Kernel, t: KTask, mm: MmStruct, start: number, count: number): KGen<number> {
  if (!Number.isInteger(start) || !Number.isInteger(count) || count <= 0 || start < 0 || start + count > mm.pages) return -EINVAL;
  yield* down_write(k, t, mm.mmapLock);
  const live = yield* k.stepOn(t, `do_vmi_munmap(${mm.name}, ${start}, ${count})`, () => mmAccessFootprint(k, mm, []), (env) => {
    assertLocked(k, t, mm, 'do_vmi_munmap', true, env.step);
    return mmAccess(k, t, mm, MM_FIELD.pgd, true) && mmStateCode(k, mm) === MM_LIVE;
  });
  if (live) yield* unmapRange(k, t, mm, start, start + count, false);
  yield* up_write(k, t, mm.mmapLock);
  return live ? 0 : -EINVAL;
}

/**
 * zap_page_range_single: the PTEs of one VMA's [start, end) go, the VMA stays (madvise(MADV_DONTNEED)): its own
 * gather and notifier range (MMU_NOTIFY_CLEAR), the caller holding mmap_lock for read.
 */
function* zapPageRangeSingle(k: Kernel, t: KTask, mm: MmStruct, start: number, end: number): KGen {
  const tlb = tlb_gather_mmu(mm);
  yield* k.fn.__mmu_notifier_invalidate_range_start(t, mm, start, end);
  yield* unmapSingleVma(k, t, tlb, { start, end });
  yield* k.fn.__mmu_notifier_invalidate_range_end(t, mm, start, end);
  yield* k.fn.tlb_finish_mmu(t, tlb);
}

/**
 * do_madvise(MADV_DONTNEED) over [start, start + count): mmap_lock for read — page faults go on meanwhile — and
 * each VMA of the range zapped (madvise_dontneed_single_vma). 0; -ENOMEM when part of the range has no VMA (the
 * rest is still zapped); -EINVAL for a bad range or an mm that is not live.
 */
function* doMadvise(k: Kernel, t: KTask, mm: MmStruct, start: number, count: number, advice: Madvice): KGen<number> {
  void advice;
  if (!Number.isInteger(start) || !Number.isInteger(count) || count <= 0 || start < 0 || start + count > mm.pages) return -EINVAL;
  yield* down_read(k, t, mm.mmapLock);
  const vmas = vmaWords(k, mm, start, start + count, true);
  const found = yield* k.stepOn(t, `madvise_walk_vmas(${mm.name}, ${start}, ${count})`, () => mmAccessFootprint(k, mm, vmas), (env) => {
    assertLocked(k, t, mm, 'madvise_walk_vmas', false, env.step);
    if (!mmAccess(k, t, mm, MM_FIELD.pgd, false) || mmStateCode(k, mm) !== MM_LIVE) return undefined;
    const vmas = vmasIn(k, mm, start, start + count);
    return { vmas, hole: vmas.reduce((n, v) => n + v.end - v.start, 0) < count };
  });
  for (const v of found?.vmas ?? []) yield* k.fn.zap_page_range_single(t, mm, v.start, v.end);
  yield* up_read(k, t, mm.mmapLock);
  return found === undefined ? -EINVAL : found.hole ? -ENOMEM : 0;
}

/**
 * try_to_migrate_one for the page at vpn: invalidate_range_start, then under the page table lock the PTE
 * replaced by a migration entry and flushed (ptep_clear_flush → flush_tlb_page: the secondary TLBs told in
 * atomic context), then invalidate_range_end. The page's pfn, 0 when there was none to migrate.
 */
function* tryToMigrateOne(k: Kernel, t: KTask, mm: MmStruct, vpn: number): KGen<number> {
  yield* k.fn.__mmu_notifier_invalidate_range_start(t, mm, vpn, vpn + 1);
  yield* spin_lock(k, t, mm.ptl);
  const src = yield* k.stepOn(t, objArgLabel(mm, 'ptep_clear_flush', mm.name, vpn), [pteAddr(k, mm, vpn)], () => {
    const at = pteAddr(k, mm, vpn);
    const old = Atomics.load(k.i32, at);
    if ((old & PTE_PRESENT) === 0) return 0;
    Atomics.store(k.i32, at, migrationEntry(ptePfn(old)));
    return ptePfn(old);
  });
  if (src !== 0) yield* k.fn.flush_tlb_mm_range(t, mm, vpn, vpn + 1);
  yield* spin_unlock(k, t, mm.ptl);
  yield* k.fn.__mmu_notifier_invalidate_range_end(t, mm, vpn, vpn + 1);
  return src;
}

/** remove_migration_pte: under the page table lock, the migration entry of src becomes a PTE of dst (false: gone). */
function* removeMigrationPte(k: Kernel, t: KTask, mm: MmStruct, vpn: number, src: number, dst: number): KGen<boolean> {
  yield* spin_lock(k, t, mm.ptl);
  const done = yield* k.stepOn(t, objArgLabel(mm, 'remove_migration_pte', mm.name, vpn), [pteAddr(k, mm, vpn), read(vmaAddr(k, mm, vpn))], () => {
    const at = pteAddr(k, mm, vpn);
    // munmap or madvise zapped the entry meanwhile: the page is no longer mapped there.
    if (Atomics.load(k.i32, at) !== migrationEntry(src)) return false;
    Atomics.store(k.i32, at, mkPte(dst, (Atomics.load(k.i32, vmaAddr(k, mm, vpn)) & VM_WRITE) !== 0));
    return true;
  });
  yield* spin_unlock(k, t, mm.ptl);
  return done;
}

/** One page's migration (migrate_pages_batch): a new page, unmap, copy, remap, the old page freed. 1: moved. */
function* migrateOne(k: Kernel, t: KTask, mm: MmStruct, vpn: number): KGen<number> {
  const pm = mmTableOf(mm).pm;
  const dst = yield* alloc_page(k, t, pm, ownerOf(mm));
  if (dst === 0) return 0;
  const src = yield* k.fn.try_to_migrate_one(t, mm, vpn);
  if (src === 0) {
    yield* free_page(k, t, pm, dst);
    return 0;
  }
  // The frames' contents are not modelled: the copy touches no shared word.
  yield* k.stepOn(t, `folio_copy(pfn 0x${src.toString(16)} → 0x${dst.toString(16)})`, [], () => undefined);
  const moved = yield* k.fn.remove_migration_pte(t, mm, vpn, src, dst);
  if (!moved) yield* free_page(k, t, pm, dst);
  // The migration's reference was the old page's last: it goes back to the allocator.
  yield* free_page(k, t, pm, src);
  return moved ? 1 : 0;
}

/**
 * migrate_pages for the pages of [start, start + count), as move_pages(2) asks: the pages looked up under
 * mmap_lock for read, then migrated without it (the rmap walk's locks only). The pages moved, or -EINVAL.
 */
function* migratePages(k: Kernel, t: KTask, mm: MmStruct, start: number, count: number): KGen<number> {
  if (!Number.isInteger(start) || !Number.isInteger(count) || count <= 0 || start < 0 || start + count > mm.pages) return -EINVAL;
  yield* down_read(k, t, mm.mmapLock);
  const ptes: number[] = [];
  for (let vpn = start; vpn < start + count; vpn++) ptes.push(read(pteAddr(k, mm, vpn)));
  const vpns = yield* k.stepOn(t, `do_pages_move(${mm.name}, ${start}, ${count})`, () => mmAccessFootprint(k, mm, ptes), () => {
    if (!mmAccess(k, t, mm, MM_FIELD.pgd, false) || mmStateCode(k, mm) !== MM_LIVE) return undefined;
    const out: number[] = [];
    for (let vpn = start; vpn < start + count; vpn++) if ((Atomics.load(k.i32, pteAddr(k, mm, vpn)) & PTE_PRESENT) !== 0) out.push(vpn);
    return out;
  });
  yield* up_read(k, t, mm.mmapLock);
  if (vpns === undefined) return -EINVAL;
  let moved = 0;
  for (const vpn of vpns) moved += yield* migrateOne(k, t, mm, vpn);
  return moved;
}

/** k.fn.do_munmap (`n`: the kernel's one MMU notifier machinery, which the invalidations find by name). */
export function do_munmap(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct, start: number, count: number): KGen<number> {
  void n;
  return k.fn.do_munmap(t, mm, start, count);
}

/**
 * exit_mmap (from __mmput, mm_users gone): mm exiting, mmu_notifier_release first — secondary MMUs stop
 * walking and flush before any page goes — then every VMA unmapped (PTEs cleared, frames freed), mm dead.
 * The kernel takes mmap_lock for read to unmap and then for write to free the page tables; here it is held for
 * write throughout.
 */
function* exitMmap(k: Kernel, t: KTask, mm: MmStruct): KGen {
  yield* k.stepOn(t, `exit_mmap(${mm.name})`, mmStateWriteFootprint(k, mm), () => {
    const code = mmStateCode(k, mm);
    if (code !== MM_LIVE) throw new Error(`exit_mmap: ${mm.name} is not live (state ${code})`);
    setMmState(k, mm, MM_EXITING);
  });
  yield* k.fn.__mmu_notifier_release(t, mm);
  yield* down_write(k, t, mm.mmapLock);
  yield* unmapRange(k, t, mm, 0, mm.pages, true);
  // remove_vma of each file mapping (a device portal): its vm_file's reference goes (fs/file.ts).
  for (const vpn of fileVmas(k, mm)) yield* k.fn.remove_vma(t, mm, vpn);
  yield* up_write(k, t, mm.mmapLock);
  yield* k.stepOn(t, `exit_mmap(${mm.name}): done`, mmStateWriteFootprint(k, mm), () => setMmState(k, mm, MM_DEAD));
}
