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
// mmu_notifier_invalidate_range_start, clear the PTEs, mmu_notifier_invalidate_range_end (which has every
// secondary MMU invalidate its TLBs for the range: arch_invalidate_secondary_tlbs), and only then free the
// frames — a device that cached a translation can no longer reach a frame by the time it is reused.
// Ranges are [start, end) in pages.
import type { KTask } from '../context.js';
import { EEXIST, EINVAL, ENOMEM } from '../errno.js';
import { callTrace, heldLocksLines, taskFinding } from '../findings.js';
import { fileVmas } from '../fs/file.js';
import type { Kernel, KGen } from '../kernel.js';
import { objArgLabel } from '../labels.js';
import { down_read, down_write, up_read, up_write } from '../rwsem.js';
import {
  MM_DEAD,
  MM_EXITING,
  MM_FIELD,
  MM_LIVE,
  type MmStruct,
  mmAccess,
  mmStateCode,
  mmTableOf,
  ownerOf,
  pteAddr,
  setMmState,
  vmaAddr,
} from './mm.js';
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
  }
}

/** The address-space functions of k (mm/mmap.c, mm/memory.c), by kernel name; once a kernel. */
export function defineMmapFunctions(k: Kernel): void {
  if (k.fns.has('do_mmap')) return;
  k.fns.define('do_mmap', 'mm/mmap.c', (t, mm, start, n, write) => doMmap(k, t, mm, start, n, write));
  k.fns.define('handle_mm_fault', 'mm/memory.c', (t, mm, vpn, write) => handleMmFault(k, t, mm, vpn, write));
  k.fns.define('do_munmap', 'mm/mmap.c', (t, mm, start, count) => doMunmap(k, t, mm, start, count));
  k.fns.define('exit_mmap', 'mm/mmap.c', (t, mm) => exitMmap(k, t, mm));
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
  const ret = yield* k.step(t, `mmap_region(${mm.name}, ${start}, ${n})`, () => {
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
  const need = yield* k.step(t, objArgLabel(mm, 'handle_mm_fault', mm.name, vpn, write ? ', write' : ''), (env) => {
    assertLocked(k, t, mm, 'handle_mm_fault', false, env.step);
    if (!mmAccess(k, t, mm, MM_FIELD.pgd, false)) return 'sigsegv';
    if (mmStateCode(k, mm) !== MM_LIVE || !inRange(mm, vpn)) return 'sigsegv';
    const vma = Atomics.load(k.i32, vmaAddr(k, mm, vpn));
    if (vma === 0 || (write && (vma & VM_WRITE) === 0)) return 'sigsegv';
    return (Atomics.load(k.i32, pteAddr(k, mm, vpn)) & PTE_PRESENT) !== 0 ? 'ok' : 'alloc';
  });
  if (need !== 'alloc') return need;
  const pm = mmTableOf(mm).pm;
  const pfn = yield* alloc_page(k, t, pm, ownerOf(mm));
  if (pfn === 0) return 'sigsegv';
  const installed = yield* k.step(t, objArgLabel(mm, 'set_pte_at', mm.name, vpn), () => {
    const at = pteAddr(k, mm, vpn);
    // pte_same() under the page-table lock: another fault may have mapped it meanwhile.
    if ((Atomics.load(k.i32, at) & PTE_PRESENT) !== 0) return false;
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

/**
 * Tear down [start, end) (the caller holds mmap_lock for write): detach the VMAs, then — if anything was
 * mapped — invalidate_range_start, clear each PTE, invalidate_range_end (secondary TLBs flushed), free frames.
 */
function* unmapRange(k: Kernel, t: KTask, mm: MmStruct, start: number, end: number): KGen {
  const vpns = yield* k.step(t, `detach_vmas(${mm.name}, ${start}, ${end})`, () => {
    const out: number[] = [];
    for (let vpn = start; vpn < end; vpn++) {
      const at = vmaAddr(k, mm, vpn);
      if (Atomics.load(k.i32, at) === 0) continue;
      Atomics.store(k.i32, at, 0);
      out.push(vpn);
    }
    return out;
  });
  if (vpns.length === 0) return;
  yield* k.call(
    t,
    'unmap_vmas',
    (function* () {
      yield* k.fn.__mmu_notifier_invalidate_range_start(t, mm, start, end);
      const freed: number[] = [];
      for (const vpn of vpns) {
        const old = yield* k.step(t, objArgLabel(mm, 'ptep_get_and_clear', mm.name, vpn), () => Atomics.exchange(k.i32, pteAddr(k, mm, vpn), 0));
        if ((old & PTE_PRESENT) !== 0) freed.push(ptePfn(old));
      }
      yield* k.fn.__mmu_notifier_invalidate_range_end(t, mm, start, end);
      if (freed.length === 0) return;
      const pm = mmTableOf(mm).pm;
      yield* k.call(
        t,
        'tlb_finish_mmu',
        (function* () {
          for (const pfn of freed) yield* free_page(k, t, pm, pfn);
        })(),
      );
    })(),
  );
}

/**
 * do_munmap: mmap_lock for write, then unmap [start, start + count) in the order above. 0, or -EINVAL for a bad
 * range or an mm that is not live. Unmapping a hole is not an error.
 */
function* doMunmap(k: Kernel, t: KTask, mm: MmStruct, start: number, count: number): KGen<number> {
  if (!Number.isInteger(start) || !Number.isInteger(count) || count <= 0 || start < 0 || start + count > mm.pages) return -EINVAL;
  yield* down_write(k, t, mm.mmapLock);
  const live = yield* k.step(t, `do_vmi_munmap(${mm.name}, ${start}, ${count})`, (env) => {
    assertLocked(k, t, mm, 'do_vmi_munmap', true, env.step);
    return mmAccess(k, t, mm, MM_FIELD.pgd, true) && mmStateCode(k, mm) === MM_LIVE;
  });
  if (live) yield* unmapRange(k, t, mm, start, start + count);
  yield* up_write(k, t, mm.mmapLock);
  return live ? 0 : -EINVAL;
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
  yield* k.step(t, `exit_mmap(${mm.name})`, () => {
    const code = mmStateCode(k, mm);
    if (code !== MM_LIVE) throw new Error(`exit_mmap: ${mm.name} is not live (state ${code})`);
    setMmState(k, mm, MM_EXITING);
  });
  yield* k.fn.__mmu_notifier_release(t, mm);
  yield* down_write(k, t, mm.mmapLock);
  yield* unmapRange(k, t, mm, 0, mm.pages);
  // remove_vma of each file mapping (a device portal): its vm_file's reference goes (fs/file.ts).
  for (const vpn of fileVmas(k, mm)) yield* k.fn.remove_vma(t, mm, vpn);
  yield* up_write(k, t, mm.mmapLock);
  yield* k.step(t, `exit_mmap(${mm.name}): done`, () => setMmState(k, mm, MM_DEAD));
}
