// struct mm_struct and its two reference counts (kernel/fork.c: mm_init, mmget, mmput, __mmput, mmgrab, mmdrop,
// __mmdrop; kernel/exit.c: exit_mm). mm_users counts users of the address space (tasks, and anyone who needs the
// page tables to stay: an IOPF handler, get_user_pages); when it drops to 0, __mmput tears the address space down
// (exit_mmap) in the caller's context. mm_count counts holders of the struct itself (mm_users as one, MMU
// notifier subscriptions, lazy TLB users); when it drops to 0, __mmdrop frees it. The IOMMU depends on exactly
// this split: a bond holds mm_count, so the struct (and its PASID) outlives exit_mmap, and a page-fault handler
// must mmget_not_zero before touching the page tables.
//
// A static table of them: `count` user mms (ids 1..count) that start unused (zeroed memory) and are brought to
// life by mm_init (fork/exec), plus init_mm (id 0), live from boot with its first `pages` mapped (the kernel's
// direct map) and a vmalloc area above them, PMD-aligned, that vmalloc / vfree / ioremap map and unmap
// (vmalloc.ts), its table pages allocated on demand as a user mm's are (pgalloc.ts). A user mm's address space is
// its own [0, pages) and, from KERNEL_BASE(pages) on, the kernel half its PGD shares with init_mm: x86-64 copies
// init_mm's kernel PGD entries into every PGD (pgd_ctor) and preallocates the level below them so they never
// change (preallocate_vmalloc_pages), so the PMD and PTE pages under them are init_mm's — which a device bound to
// a process walks too when it is handed a kernel address (the leaf's U/S bit faults it, after the walk cached the
// upper-level entries: the setting of e37d5a2d60a3). A freed mm may be mm_init'ed again, as slab reuses a freed mm_struct: a stale pointer then sees
// a different address space, which is the kernel's ABA.
//
// Both counts behave like refcount_t here (the kernel has atomic_t, which would not notice): an underflow or an
// increment from 0 is reported in refcount_t's words and saturates the counter. Any operation on a freed mm is a
// KASAN use-after-free, with who set it up and who freed it.
import type { KTask } from '../context.js';
import { callTrace, heldLocksLines, taskFinding } from '../findings.js';
import { accessReport, fmtAddr, kaddr, type SlabObjectInfo, type SlabTrack } from '../kasan.js';
import type { Kernel, KGen } from '../kernel.js';
import { objLabel } from '../labels.js';
import { type Footprint, type FootprintFn, isRead, read, wordOf } from '../../runtime/footprint.js';
import { REFCOUNT_SATURATED } from '../refcount.js';
import { defineRwsem, down_read, RW_SEMAPHORE, type RwSemaphore, up_read } from '../rwsem.js';
import { SPINLOCK } from '../lock.js';
import { defineSpinlock, type Spinlock } from '../spinlock.js';
import type { MmuNotifiers } from './mmu_notifier.js';
import { array, struct, type ViewOf, type Word, word } from '../struct.js';
import { current, taskMmAddr } from '../task_struct.js';
import { defineMmapFunctions, PTE_PRESENT, PTE_WRITE, VM_READ, VM_WRITE } from './pagetable.js';
import { definePgalloc, PGTABLE_BUGS } from './pgalloc.js';
import { memblock_alloc_page, type PhysMem, setPtdesc } from './physmem.js';
import { defineVmalloc } from './vmalloc.js';

export interface MmStruct {
  readonly id: number;
  readonly name: string;
  /** Virtual pages of its page table (vpn 0..pages-1). */
  readonly pages: number;
  readonly mmapLock: RwSemaphore;
  /** mm->page_table_lock: the page table lock of every PTE of the mm (the model has no split PTE locks). */
  readonly ptl: Spinlock;
  /** The CPU ASID (= id): the SMMU shares it with the CPU. */
  readonly asid: number;
  /** Static offset of its words. */
  readonly off: number;
  /** Accessors of its struct mm_struct's fields (the same for every mm of a kernel), at mmBase. */
  readonly view: ViewOf<typeof MM_STRUCT>;
}

export interface MmTable {
  /** The user mms, mms[i].id === i + 1 (init_mm is not among them: see initMm, or mmById). */
  readonly mms: readonly MmStruct[];
  readonly initMm: MmStruct;
  readonly pm: PhysMem;
  /** A user mm's pages, and init_mm's direct map (init_mm.pages adds its vmalloc area). */
  readonly pages: number;
}

/**
 * The first page above a user mm's `pages` that a PGD entry of its own maps: where its kernel half starts (a
 * kernel address kvpn is user vpn KERNEL_BASE + kvpn), and where init_mm's vmalloc area starts (VMALLOC_START).
 */
export function kernelBase(pages: number): number {
  return pmdPagesOf(pages) << PMD_TABLE_SHIFT;
}

/** init_mm's pages: the direct map, then the vmalloc area [VMALLOC_START, VMALLOC_END) as large again. */
export function initMmPages(pages: number): number {
  return 2 * kernelBase(pages);
}

/** The kernel address a user mm's vpn is, in its kernel half; -1 for a user address (or none at all). */
export function kernelVpn(mm: MmStruct, vpn: number): number {
  if (mm.id === 0) return -1;
  const kv = vpn - kernelBase(mm.pages);
  return kv >= 0 && kv < initMmPages(mm.pages) ? kv : -1;
}

/** kernel/fork.c's planted bug: mm_pasid_drop in __mmput, as before 2667ed10d9f0 ("mm: Fix PASID use-after-free issue"). */
export type MmBug = 'none' | 'pasid-drop-at-mmput' | (typeof PGTABLE_BUGS)[number];
export const MM_BUGS: readonly MmBug[] = ['none', 'pasid-drop-at-mmput', ...PGTABLE_BUGS];

export type MmState = 'unused' | 'live' | 'exiting' | 'dead' | 'freed';

/**
 * struct mm_struct (include/linux/mm_types.h), the fields the model keeps: the two counts, the PASID, the page
 * table; the rest is the model's (its life state and KASAN's tracks, which the kernel keeps in slab metadata).
 */
export const MM_STRUCT = struct('mm_struct', {
  mm_users: word,
  mm_count: word,
  pasid: word, // mm->pasid as ENQCMD reads it (mainline: mm->iommu_mm->pasid; before 6.8, mm->pasid)
  iommu_mm: word, // mm->iommu_mm: the struct iommu_mm_data's address + 1, 0: none (published with smp_store_release)
  state: word, // model: MM_UNUSED … MM_FREED
  alloc_by: word, // model: interned comm/pid of whoever ran mm_init
  alloc_chain: word, // model: … and its call chain
  free_by: word, // model: … of whoever ran __mmdrop
  free_chain: word,
  // The page table's contents, then the model's VMA map (one word a page: VM_* flags): the PTEs (one a page:
  // what the PTE pages hold, PTRS_PER_PTE to a page), the PMD entries (one per PTE page: what the PMD pages hold),
  // the PGD entries (one per PMD page: what the PGD page holds), and the PGD page's pfn (mm->pgd). The table
  // pages themselves are physmem frames (owner: the mm, ptdesc: level and index) — see pgalloc.ts.
  pgd: array(0),
});

/** Pages a PTE page maps (PTRS_PER_PTE = 1 << PTE_TABLE_SHIFT): the model's small address spaces keep it small. */
export const PTE_TABLE_SHIFT = 2;
/** Pages a PMD page maps (PTRS_PER_PTE × PTRS_PER_PMD). */
export const PMD_TABLE_SHIFT = 4;
/** ptdesc levels (physmem's pt_level): 0 is a data page. */
export const PT_LEVEL_PTE = 1;
export const PT_LEVEL_PMD = 2;
export const PT_LEVEL_PGD = 3;

/** PTE pages an address space of `pages` needs at most. */
export function ptePagesOf(pages: number): number {
  return (pages + (1 << PTE_TABLE_SHIFT) - 1) >> PTE_TABLE_SHIFT;
}

/** PMD pages an address space of `pages` needs at most. */
export function pmdPagesOf(pages: number): number {
  return (pages + (1 << PMD_TABLE_SHIFT) - 1) >> PMD_TABLE_SHIFT;
}

/** Table pages (PGD, PMD and PTE pages) an address space of `pages` takes when fully populated. */
export function tablePagesOf(pages: number): number {
  return 1 + pmdPagesOf(pages) + ptePagesOf(pages);
}

/** Words of an mm's pgd array: PTEs, VMA map, PMD entries, PGD entries, mm->pgd. */
function dataWords(pages: number): number {
  return 2 * pages + ptePagesOf(pages) + pmdPagesOf(pages) + 1;
}

/** The mm table's header: model only. */
const MM_TABLE = struct('mm_table', {
  boot: word, // 0, 1 while a thread boots init_mm, 2 once booted
});

export const MM_UNUSED = 0;
export const MM_LIVE = 1;
export const MM_EXITING = 2;
export const MM_DEAD = 3;
export const MM_FREED = 4;
const STATE_NAMES: readonly MmState[] = ['unused', 'live', 'exiting', 'dead', 'freed'];

// Table words: the boot guard (0: not booted, 1: booting, 2: booted).

// Nominal source lines of the reports below (the function is what matters to a reader).
const MMPUT_SITE = 'kernel/fork.c:1356';
const MMDROP_WARN_LINE = 'kernel/fork.c:933';
const MMDROP_BUG_LINE = 'kernel/fork.c:921';

/** Static words defineMms takes (to size a kernel layout); the rw_semaphores are extra, 12 words each. */
export function mmTableWords(count: number, pages: number): number {
  // Each mm: its mm_struct, its page table, and its locks (mmap_lock, page_table_lock); init_mm's table is larger.
  const each = MM_STRUCT.words + RW_SEMAPHORE.words + SPINLOCK.words;
  return MM_TABLE.words + (count + 1) * each + count * dataWords(pages) + dataWords(initMmPages(pages));
}

export type MmDropHook = (mm: MmStruct, t: KTask, step: number) => void;
/** The shared words an MmDropHook reads and writes for mm (pure); a hook without one leaves __mmdrop undeclared. */
export type MmDropFootprint = (mm: MmStruct) => Footprint;

interface TableState {
  readonly table: MmTable;
  /** Run inside __mmdrop's perform, before the mm is marked freed. */
  readonly dropHooks: MmDropHook[];
  /** Their footprints, in order (undefined: the hook did not declare one). */
  readonly dropFootprints: (MmDropFootprint | undefined)[];
  /** Who may legitimately still hold an mm's mm_count at the end of a run (MMU notifier subscriptions). */
  readonly holders: ((mm: MmStruct) => number)[];
  /** mms already reported as used after free in this run (one report each). */
  readonly uafReported: Set<number>;
  /** Counters already saturated and reported in this run (refcount's WARN_ONCE, per counter). */
  readonly countReported: Set<number>;
}

const tables = new WeakMap<MmStruct, TableState>();

function stateOf(mm: MmStruct): TableState {
  const s = tables.get(mm);
  if (!s) throw new Error(`mm: ${mm.name} was not declared with defineMms`);
  return s;
}

/** The user mms and init_mm, declared with the workload. `pm` must have a frame for every page of init_mm. */
export function defineMms(k: Kernel, pm: PhysMem, count: number, pages: number, bug: MmBug = 'none'): MmTable {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`mm: bad mm count ${count}`);
  if (!Number.isInteger(pages) || pages < 1 || pages > 1 << 20) throw new RangeError(`mm: bad page count ${pages}`);
  if (pm.frames - 1 < pages + tablePagesOf(pages)) throw new RangeError(`mm: init_mm maps ${pages} pages, physmem has ${pm.frames - 1} frames`);
  const off = k.statics.alloc(MM_TABLE.words, 'mm table');
  const view = k.struct(MM_STRUCT);
  const mk = (id: number, name: string, size = pages): MmStruct => ({
    id,
    name,
    pages: size,
    // One lockdep class for all of them, as every mm_struct's mmap_lock is initialised at one place.
    mmapLock: defineRwsem(k, '&mm->mmap_lock'),
    ptl: defineSpinlock(k, '&mm->page_table_lock'),
    asid: id,
    off: k.statics.alloc(MM_STRUCT.words + dataWords(size), name),
    view,
  });
  const initMm = mk(0, 'init_mm', initMmPages(pages));
  const mms = Array.from({ length: count }, (_, i) => mk(i + 1, `mm/${i + 1}`));
  const table: MmTable = { mms, initMm, pm, pages };
  const st: TableState = { table, dropHooks: [], dropFootprints: [], holders: [], uafReported: new Set(), countReported: new Set() };
  for (const mm of [initMm, ...mms]) tables.set(mm, st);
  k.onAttach(() => {
    st.uafReported.clear();
    st.countReported.clear();
    boot(k, off, table);
  });
  k.onEnd(() => leakCheck(k, st));
  defineMmFunctions(k, bug);
  defineMmapFunctions(k);
  definePgalloc(k, bug, initMm);
  defineVmalloc(k, initMm, pages);
  return table;
}

/**
 * init_mm at boot: plain writes, before anything runs. The threaded runtime attaches every worker thread, and
 * at the end a fresh instance to the final memory, to the same shared memory: only the first attach boots, and
 * an attach that finds boot in progress on another thread waits for it, so nobody runs on a half-booted kernel
 * and the end-of-run checks see the run's memory, not a new boot.
 */
function boot(k: Kernel, off: number, table: MmTable): void {
  const i32 = k.i32;
  const guard = k.mem.statics + off + MM_TABLE.offset.boot;
  if (Atomics.compareExchange(i32, guard, 0, 1) !== 0) {
    while (Atomics.load(i32, guard) !== 2) Atomics.wait(i32, guard, 1, 10);
    return;
  }
  const mm = table.initMm;
  const b = mmBase(k, mm);
  mm.view.mm_users.set(b, 1);
  mm.view.mm_count.set(b, 1);
  mm.view.state.set(b, MM_LIVE);
  // The direct map's page tables (memblock, at boot), then its pages; the vmalloc area's come on demand.
  const direct = table.pages;
  const tableAt = (level: number, index: number): number => {
    const pfn = memblock_alloc_page(k, table.pm, ownerOf(mm));
    setPtdesc(k, table.pm, pfn, level, index);
    return (pfn << 2) | PTE_PRESENT;
  };
  Atomics.store(i32, pgdPfnAddr(k, mm), tableAt(PT_LEVEL_PGD, 0) >>> 2);
  for (let j = 0; j < pmdPagesOf(direct); j++) Atomics.store(i32, pgdEntryAddr(k, mm, j), tableAt(PT_LEVEL_PMD, j));
  for (let i = 0; i < ptePagesOf(direct); i++) Atomics.store(i32, pmdEntryAddr(k, mm, i), tableAt(PT_LEVEL_PTE, i));
  for (let vpn = 0; vpn < direct; vpn++) {
    const pfn = memblock_alloc_page(k, table.pm, ownerOf(mm));
    mm.view.pgd.set(b, vpn, (pfn << 2) | PTE_PRESENT | PTE_WRITE);
    mm.view.pgd.set(b, mm.pages + vpn, VM_READ | VM_WRITE);
  }
  Atomics.store(i32, guard, 2);
  Atomics.notify(i32, guard);
}

/** The page owner id of an mm's frames (physmem.ts): 0 means free, so it is id + 1. */
export function ownerOf(mm: MmStruct): number {
  return mm.id + 1;
}

/** The mm with this id (0: init_mm). */
export function mmById(table: MmTable, id: number): MmStruct | undefined {
  return id === 0 ? table.initMm : table.mms[id - 1];
}

/** The table an mm was declared in. */
export function mmTableOf(mm: MmStruct): MmTable {
  return stateOf(mm).table;
}

/**
 * Run `hook` inside __mmdrop's perform, before the mm is freed (mmu_notifier_subscriptions_destroy); `footprint`
 * says what it touches in shared memory (without one, __mmdrop's step takes the threaded runtime's coarse lock).
 */
export function onMmDrop(table: MmTable, hook: MmDropHook, footprint?: MmDropFootprint): void {
  const st = stateOf(table.initMm);
  st.dropHooks.push(hook);
  st.dropFootprints.push(footprint);
}

/** Declare who may still hold an mm's mm_count at the end of a run, for the leak check. */
export function addMmCountHolder(table: MmTable, holds: (mm: MmStruct) => number): void {
  stateOf(table.initMm).holders.push(holds);
}

// ---- words (for the rest of mm/) ----

export function mmBase(k: Kernel, mm: MmStruct): number {
  return k.mem.statics + mm.off;
}

/** Absolute offset of the PTE of vpn (the caller checks the range). */
export function pteAddr(k: Kernel, mm: MmStruct, vpn: number): number {
  return mm.view.pgd.addr(mmBase(k, mm), vpn);
}

/** Absolute offset of the PMD entry of PTE page i (vpn >> PTE_TABLE_SHIFT): the PTE page's pfn << 2 | present. */
export function pmdEntryAddr(k: Kernel, mm: MmStruct, i: number): number {
  return mm.view.pgd.addr(mmBase(k, mm), 2 * mm.pages + i);
}

/** Absolute offset of the PGD entry of PMD page j (vpn >> PMD_TABLE_SHIFT): the PMD page's pfn << 2 | present. */
export function pgdEntryAddr(k: Kernel, mm: MmStruct, j: number): number {
  return mm.view.pgd.addr(mmBase(k, mm), 2 * mm.pages + ptePagesOf(mm.pages) + j);
}

/** Absolute offset of mm->pgd: the PGD page's pfn (0: none). */
export function pgdPfnAddr(k: Kernel, mm: MmStruct): number {
  return mm.view.pgd.addr(mmBase(k, mm), 2 * mm.pages + ptePagesOf(mm.pages) + pmdPagesOf(mm.pages));
}

/** Absolute offset of the VMA word of vpn. */
export function vmaAddr(k: Kernel, mm: MmStruct, vpn: number): number {
  return mm.view.pgd.addr(mmBase(k, mm), mm.pages + vpn);
}

export function mmStateCode(k: Kernel, mm: MmStruct): number {
  return mm.view.state.READ_ONCE(mmBase(k, mm));
}

/** Perform only. */
export function setMmState(k: Kernel, mm: MmStruct, code: number): void {
  mm.view.state.WRITE_ONCE(mmBase(k, mm), code);
}

// ---- reads ----

export function mmUsers(k: Kernel, mm: MmStruct): number {
  return mm.view.mm_users.READ_ONCE(mmBase(k, mm));
}

export function mmCount(k: Kernel, mm: MmStruct): number {
  return mm.view.mm_count.READ_ONCE(mmBase(k, mm));
}

export function mmState(k: Kernel, mm: MmStruct): MmState {
  return STATE_NAMES[mmStateCode(k, mm)] ?? 'unused';
}

/** mm->pasid (0: none). */
export function mmPasid(k: Kernel, mm: MmStruct): number {
  return mm.view.pasid.READ_ONCE(mmBase(k, mm));
}

export function mmAsid(mm: MmStruct): number {
  return mm.asid;
}

// ---- KASAN ----

function track(k: Kernel, by: number, chain: number): SlabTrack {
  const label = k.mem.stringAt(by);
  const i = label.lastIndexOf('/');
  const c = k.mem.stringAt(chain);
  return { pid: i < 0 ? 0 : Number(label.slice(i + 1)), comm: i < 0 ? label : label.slice(0, i), chain: c === '' ? [] : c.split('\n') };
}

/** The mm_struct as KASAN and kmemleak describe an object (its allocation and free tracks). */
export function objectInfo(k: Kernel, mm: MmStruct): SlabObjectInfo {
  const b = mmBase(k, mm);
  const words = MM_STRUCT.words + dataWords(mm.pages);
  const freed = mm.view.state.get(b) === MM_FREED;
  return {
    obj: b,
    state: freed ? 'free' : 'allocated',
    words,
    slotWords: words,
    cache: 'mm_struct',
    alloc: track(k, mm.view.alloc_by.get(b), mm.view.alloc_chain.get(b)),
    free: freed ? track(k, mm.view.free_by.get(b), mm.view.free_chain.get(b)) : undefined,
  };
}

/**
 * KASAN's check of an access to mm by t (perform only): a freed mm is reported, once, as a use-after-free of the
 * mm_struct, and the access goes ahead as in the kernel. False when the mm is freed.
 */
export function mmAccess(k: Kernel, t: KTask, mm: MmStruct, field: number, write: boolean): boolean {
  if (mmStateCode(k, mm) !== MM_FREED) return true;
  const st = stateOf(mm);
  if (k.enabled('kasan') && !st.uafReported.has(mm.id)) {
    st.uafReported.add(mm.id);
    k.report(accessReport(k, t, 'slab-use-after-free', mmBase(k, mm) + field, write, objectInfo(k, mm)));
  }
  return false;
}

/** Field offsets mmAccess reports (the access is to that word of the mm_struct). */
export const MM_FIELD = { users: MM_STRUCT.offset.mm_users, count: MM_STRUCT.offset.mm_count, pasid: MM_STRUCT.offset.pasid, state: MM_STRUCT.offset.state, pgd: MM_STRUCT.offset.pgd } as const;

// ---- footprints (runtime/footprint.ts: the words a step reads and writes, for the threaded runtime's locks) ----

/** The words of a string in the stack depot (memory.ts stringAt: its length, then its characters), as reads. */
function stringReads(k: Kernel, id: number, out: number[]): void {
  // (Written once, before the slot that publishes them: ordering on the slot would do; declared all the same.)
  if (id <= 0) return;
  const n = k.i32[id] as number;
  for (let i = 0; i <= n; i++) out.push(read(id + i));
}

/**
 * What mmAccess reads besides the state word, on a freed mm: KASAN's report (objectInfo) reads the life tracks
 * and the strings they name. Read at the time it is asked (a FootprintFn's answer): pure.
 */
function uafReads(k: Kernel, mm: MmStruct): number[] {
  const b = mmBase(k, mm);
  const v = mm.view;
  const out = [read(v.alloc_by.addr(b)), read(v.alloc_chain.addr(b)), read(v.free_by.addr(b)), read(v.free_chain.addr(b))];
  for (const f of [v.alloc_by, v.alloc_chain, v.free_by, v.free_chain]) stringReads(k, Atomics.load(k.i32, f.addr(b)), out);
  return distinct(out);
}

/**
 * The footprint of a step on mm whose perform calls mmAccess (the state word, read) and touches `fp`: `fp` and the
 * state word while the mm is not freed, and KASAN's reads when it is. Evaluate it inside a FootprintFn.
 */
export function mmAccessFootprint(k: Kernel, mm: MmStruct, fp: Footprint): Footprint {
  const state = mm.view.state.addr(mmBase(k, mm));
  const withState = fp.some((e) => e === state || e === read(state)) ? fp : [...fp, read(state)];
  return mmStateCode(k, mm) === MM_FREED ? [...withState, ...uafReads(k, mm)] : withState;
}

/** The footprints of one mm's frequent steps, made once (points are made at every step). */
interface MmFootprints {
  readonly base: number;
  /** mmget, mmget_not_zero, mmput: mmAccess, then mm_users read and written. */
  readonly users: FootprintFn;
  /** mmgrab, mmdrop: mmAccess, then mm_count read and written. */
  readonly count: FootprintFn;
  /** mm_set_pasid: mmAccess, then mm->pasid written. */
  readonly pasid: FootprintFn;
  /** exit_mmap's steps: the state word read and written. */
  readonly state: Footprint;
  /** The state word and mm->pasid, read (mmStateCode and mmPasid). */
  readonly stateAndPasid: Footprint;
}

const footprints = new WeakMap<MmStruct, MmFootprints>();

function mmFootprints(k: Kernel, mm: MmStruct): MmFootprints {
  const b = mmBase(k, mm);
  const had = footprints.get(mm);
  if (had && had.base === b) return had;
  const v = mm.view;
  const state = v.state.addr(b);
  const on = (word: number): FootprintFn => {
    const live: Footprint = [read(state), word];
    return () => (mmStateCode(k, mm) === MM_FREED ? [...live, ...uafReads(k, mm)] : live);
  };
  const fps: MmFootprints = {
    base: b,
    users: on(v.mm_users.addr(b)),
    count: on(v.mm_count.addr(b)),
    pasid: on(v.pasid.addr(b)),
    state: [state],
    stateAndPasid: [read(state), read(v.pasid.addr(b))],
  };
  footprints.set(mm, fps);
  return fps;
}

/** The footprint of a step that reads mm's life state and PASID (mmStateCode, mmPasid) and nothing else shared. */
export function mmStateFootprint(k: Kernel, mm: MmStruct): Footprint {
  return mmFootprints(k, mm).stateAndPasid;
}

/** The footprint of exit_mmap's steps: mm's state word, read and written (setMmState). */
export function mmStateWriteFootprint(k: Kernel, mm: MmStruct): Footprint {
  return mmFootprints(k, mm).state;
}

// ---- the two counts ----

type Saturation = 'ADD_UAF' | 'SUB_UAF';

// refcount_warn_saturate's messages and lines (lib/refcount.c), as refcount.ts prints them.
const WARNINGS: Readonly<Record<Saturation, readonly [string, number]>> = {
  ADD_UAF: ['addition on 0; use-after-free', 25],
  SUB_UAF: ['underflow; use-after-free', 28],
};

function warnCount(k: Kernel, t: KTask, mm: MmStruct, field: Word, how: Saturation, op: string, old: number, step: number): void {
  const addr = field.addr(mmBase(k, mm));
  field.set(mmBase(k, mm), REFCOUNT_SATURATED);
  if (!k.enabled('refcount')) return;
  const seen = stateOf(mm).countReported;
  if (seen.has(addr)) return;
  seen.add(addr);
  const [msg, line] = WARNINGS[how];
  const name = `${mm.name}->${field === mm.view.mm_users ? 'mm_users' : 'mm_count'}`;
  const body = [
    `WARNING: PID: ${t.pid} at lib/refcount.c:${line} refcount_warn_saturate`,
    `Comm: ${t.comm} Not tainted (iommu-sim)`,
    'RIP: refcount_warn_saturate',
    `iommu-sim: ${op}(${name}) on a counter of ${old}; it is now saturated`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('refcount', t, step, `refcount_t: ${msg}.`, body));
}

/** atomic_inc of a count (perform only). */
function inc(k: Kernel, t: KTask, mm: MmStruct, field: Word, op: string, step: number): void {
  const b = mmBase(k, mm);
  const old = field.get(b);
  if (old === REFCOUNT_SATURATED) return;
  if (old <= 0) warnCount(k, t, mm, field, 'ADD_UAF', op, old, step);
  else field.set(b, old + 1);
}

/** atomic_inc_not_zero (perform only). */
function incNotZero(k: Kernel, mm: MmStruct, field: Word): boolean {
  const b = mmBase(k, mm);
  const old = field.get(b);
  if (old === 0) return false;
  if (old !== REFCOUNT_SATURATED) field.set(b, old + 1);
  return true;
}

/** atomic_dec_and_test (perform only): true when this put dropped the last reference. */
function decAndTest(k: Kernel, t: KTask, mm: MmStruct, field: Word, op: string, step: number): boolean {
  const b = mmBase(k, mm);
  const old = field.get(b);
  if (old === REFCOUNT_SATURATED) return false;
  if (old <= 0) {
    warnCount(k, t, mm, field, 'SUB_UAF', op, old, step);
    return false;
  }
  field.set(b, old - 1);
  return old === 1;
}

// ---- lifecycle: the functions of kernel/fork.c and kernel/exit.c, by name ----

declare module '../kfunc.js' {
  interface KernelFunctions {
    mm_init(t: KTask, mm: MmStruct): KGen;
    mmget(t: KTask, mm: MmStruct): KGen;
    mmget_not_zero(t: KTask, mm: MmStruct): KGen<boolean>;
    get_task_mm(t: KTask, mm: MmStruct, taskMm: number): KGen<boolean>;
    mmput(t: KTask, mm: MmStruct): KGen;
    __mmput(t: KTask, mm: MmStruct): KGen;
    mmgrab(t: KTask, mm: MmStruct): KGen;
    mmdrop(t: KTask, mm: MmStruct): KGen;
    __mmdrop(t: KTask, mm: MmStruct): KGen;
    /**
     * mm_pasid_drop (drivers/iommu/iommu-sva.c, called by __mmdrop): the mm's PASID and its struct iommu_mm_data
     * go with the mm_struct. Defined by the SVA core; without one, __mmdrop checks that nobody left mm->pasid set.
     */
    mm_pasid_drop(t: KTask, mm: MmStruct): KGen;
    exit_mm(t: KTask, mm: MmStruct): KGen;
    /** mm->pasid = pasid (0 clears it): the PASID the mm's ENQCMD uses (arch/x86: mm_pasid_set). */
    mm_set_pasid(t: KTask, mm: MmStruct, pasid: number): KGen;
  }
}

/**
 * The mm_struct's lifetime functions of k, by kernel name (once a kernel: every mm table shares them). They keep
 * their state in the mm_struct and the table's (stateOf), so that a patch replacing one by name reaches it.
 */
function defineMmFunctions(k: Kernel, bug: MmBug): void {
  if (k.fns.has('mm_init')) return;
  k.fns.define('mm_set_pasid', 'include/linux/sched/mm.h', function* (t, mm, pasid) {
    if (!Number.isInteger(pasid) || pasid < 0) throw new RangeError(`mm_set_pasid: bad PASID ${pasid}`);
    yield* k.stepOn(t, `mm_set_pasid(${mm.name}, ${pasid})`, mmFootprints(k, mm).pasid, () => {
      mmAccess(k, t, mm, MM_FIELD.pasid, true);
      mm.view.pasid.WRITE_ONCE(mmBase(k, mm), pasid);
    });
  });
  k.fns.define('mm_init', 'kernel/fork.c', function* (t, mm) {
    yield* mmInit(k, t, mm);
    // mm_alloc_pgd
    yield* k.fn.pgd_alloc(t, mm);
  });
  // One more user of the address space (the caller knows it has users: it holds one).
  k.fns.define('mmget', 'include/linux/sched/mm.h', function* (t, mm) {
    yield* k.stepOn(t, objLabel(mm, 'mmget', mm.name), mmFootprints(k, mm).users, (env) => {
      mmAccess(k, t, mm, MM_FIELD.users, true);
      inc(k, t, mm, mm.view.mm_users, 'mmget', env.step);
    });
  });
  // A user of the address space unless it is already being torn down.
  k.fns.define('mmget_not_zero', 'include/linux/sched/mm.h', function* (t, mm) {
    return yield* k.stepOn(t, objLabel(mm, 'mmget_not_zero', mm.name), mmFootprints(k, mm).users, () => {
      mmAccess(k, t, mm, MM_FIELD.users, true);
      return incNotZero(k, mm, mm.view.mm_users);
    });
  });
  k.fns.define('get_task_mm', 'kernel/fork.c', function* (t, mm, taskMm) {
    const fp: Footprint = [read(taskMm), mm.view.mm_users.addr(mmBase(k, mm))];
    return yield* k.stepOn(t, objLabel(mm, 'get_task_mm', mm.name), () => mmAccessFootprint(k, mm, fp), (env) => {
      if (Atomics.load(k.i32, taskMm) !== mm.id + 1) return false;
      mmAccess(k, t, mm, MM_FIELD.users, true);
      inc(k, t, mm, mm.view.mm_users, 'get_task_mm', env.step);
      return true;
    });
  });
  // Drop a user; the last one tears the address space down in the caller's context (so mmput may sleep).
  k.fns.define('mmput', 'kernel/fork.c', function* (t, mm) {
    k.mightSleep(t, MMPUT_SITE);
    const last = yield* k.stepOn(t, objLabel(mm, 'mmput', mm.name), mmFootprints(k, mm).users, (env) => {
      mmAccess(k, t, mm, MM_FIELD.users, true);
      return decAndTest(k, t, mm, mm.view.mm_users, 'mmput', env.step);
    });
    if (last) yield* k.fn.__mmput(t, mm);
  });
  k.fns.definePlanted('__mmput', 'kernel/fork.c', bug, {
    *none(t, mm) {
      yield* k.fn.exit_mmap(t, mm);
      yield* k.fn.mmdrop(t, mm);
    },
    // Before 2667ed10d9f0 ("mm: Fix PASID use-after-free issue"): the PASID went with the address space, while
    // the drivers' release — exit_files, after exit_mm — still had it programmed in their devices.
    *'pasid-drop-at-mmput'(t, mm) {
      yield* k.fn.exit_mmap(t, mm);
      if (k.fns.has('mm_pasid_drop')) yield* k.fn.mm_pasid_drop(t, mm);
      yield* k.fn.mmdrop(t, mm);
    },
  });
  // Hold the mm_struct (not the address space): it will not be freed, its pages may be.
  k.fns.define('mmgrab', 'include/linux/sched/mm.h', function* (t, mm) {
    yield* k.stepOn(t, objLabel(mm, 'mmgrab', mm.name), mmFootprints(k, mm).count, (env) => {
      mmAccess(k, t, mm, MM_FIELD.count, true);
      inc(k, t, mm, mm.view.mm_count, 'mmgrab', env.step);
    });
  });
  // Drop a hold on the mm_struct; the last one frees it (__mmdrop). Never sleeps.
  k.fns.define('mmdrop', 'include/linux/sched/mm.h', function* (t, mm) {
    const last = yield* k.stepOn(t, objLabel(mm, 'mmdrop', mm.name), mmFootprints(k, mm).count, (env) => {
      mmAccess(k, t, mm, MM_FIELD.count, true);
      return decAndTest(k, t, mm, mm.view.mm_count, 'mmdrop', env.step);
    });
    if (last) yield* k.fn.__mmdrop(t, mm);
  });
  const free = (t: KTask, mm: MmStruct) => {
    const label = objLabel(mm, '__mmdrop', mm.name);
    const fp = mmFreeFootprint(k, t, mm);
    return fp ? k.stepOn(t, label, fp, (env) => mmFree(k, t, mm, env.step)) : k.step(t, label, (env) => mmFree(k, t, mm, env.step));
  };
  k.fns.definePlanted('__mmdrop', 'kernel/fork.c', bug, {
    *none(t, mm) {
      if (mm.id !== 0) yield* k.fn.pgd_free(t, mm);
      // mm_pasid_drop before free_mm: the PASID is the mm's for as long as the mm_struct lives.
      if (mm.id !== 0 && k.fns.has('mm_pasid_drop')) yield* k.fn.mm_pasid_drop(t, mm);
      yield* free(t, mm);
    },
    *'pasid-drop-at-mmput'(t, mm) {
      if (mm.id !== 0) yield* k.fn.pgd_free(t, mm);
      yield* free(t, mm);
    },
  });
  k.fns.define('exit_mm', 'kernel/exit.c', function* (t, mm) {
    yield* down_read(k, t, mm.mmapLock);
    // task_lock(current); current->mm = NULL; task_unlock(current) — get_task_mm finds no mm from here on.
    const i = current(k, t);
    if (i >= 0) yield* k.stepOn(t, 'exit_mm: current->mm = NULL', [taskMmAddr(k, i)], () => void Atomics.store(k.i32, taskMmAddr(k, i), 0));
    yield* up_read(k, t, mm.mmapLock);
    yield* k.fn.mmput(t, mm);
  });
}

/**
 * mm_alloc() + mm_init() for fork/exec: the mm comes to life with one user (the task) and one count (the users
 * as a whole), no PASID, no VMAs. Only an unused or freed mm can be set up.
 */
function* mmInit(k: Kernel, t: KTask, mm: MmStruct): KGen {
  if (mm.id === 0) throw new Error('mm_init: init_mm is set up at boot');
  yield* k.stepOn(t, objLabel(mm, 'mm_init', mm.name), () => mmInitFootprint(k, t, mm), () => {
    const code = mmStateCode(k, mm);
    if (code !== MM_UNUSED && code !== MM_FREED) throw new Error(`mm_init: ${mm.name} is ${STATE_NAMES[code]}`);
    const i32 = k.i32;
    const b = mmBase(k, mm);
    // memset(mm, 0, sizeof(*mm)): a reused mm_struct starts from nothing.
    i32.fill(0, mm.view.pgd.addr(b), mm.view.pgd.addr(b, dataWords(mm.pages)));
    mm.view.mm_users.set(b, 1);
    mm.view.mm_count.set(b, 1);
    mm.view.pasid.set(b, 0);
    mm.view.iommu_mm.set(b, 0);
    mm.view.alloc_by.set(b, k.mem.intern(t.label));
    mm.view.alloc_chain.set(b, k.mem.intern(t.chain().join('\n')));
    mm.view.free_by.set(b, 0);
    mm.view.free_chain.set(b, 0);
    mm.view.state.set(b, MM_LIVE);
    const st = stateOf(mm);
    st.uafReported.delete(mm.id);
    st.countReported.delete(mm.view.mm_users.addr(b));
    st.countReported.delete(mm.view.mm_count.addr(b));
  });
}

/** What mm_init's step reads (the state word; the stack depot's lookups) and writes (the whole mm_struct). */
function mmInitFootprint(k: Kernel, t: KTask, mm: MmStruct): Footprint {
  const b = mmBase(k, mm);
  const v = mm.view;
  const out = [v.mm_users, v.mm_count, v.pasid, v.iommu_mm, v.state, v.alloc_by, v.alloc_chain, v.free_by, v.free_chain].map((f) => f.addr(b));
  for (let w = v.pgd.addr(b); w < v.pgd.addr(b, dataWords(mm.pages)); w++) out.push(w);
  return internsFootprint(k, out, [t.label, t.chain().join('\n')]);
}

/**
 * What __mmdrop's step touches: the drop hooks' words, mm->pasid (read), the free track and the state word
 * (written), the stack depot's; undefined when a hook declares nothing. init_mm's BUG touches nothing.
 */
function mmFreeFootprint(k: Kernel, t: KTask, mm: MmStruct): (() => Footprint) | undefined {
  if (mm.id === 0) return () => [];
  const st = stateOf(mm);
  const hooks = st.dropFootprints;
  if (hooks.some((h) => h === undefined)) return undefined;
  return () => {
    const b = mmBase(k, mm);
    const v = mm.view;
    const out: number[] = [read(v.pasid.addr(b)), v.free_by.addr(b), v.free_chain.addr(b), v.state.addr(b)];
    for (const h of hooks) if (h) out.push(...h(mm));
    return internsFootprint(k, out, [t.label, t.chain().join('\n')]);
  };
}

/** `fp` and what interning each of `strings` in turn reads and writes, each word once. */
function internsFootprint(k: Kernel, fp: number[], strings: readonly string[]): Footprint {
  k.mem.internFootprint(strings, fp);
  return distinct(fp);
}

/** Each word once: written where any entry writes it (footprint.ts union, for long lists). */
function distinct(fp: readonly number[]): number[] {
  const by = new Map<number, number>();
  for (const e of fp) {
    const had = by.get(wordOf(e));
    if (had === undefined || (isRead(had) && !isRead(e))) by.set(wordOf(e), e);
  }
  return [...by.values()];
}

/**
 * __mmdrop's step (perform): the checks of the last mm_count, then the mm_struct is freed. mm->pasid must be
 * 0 by now: mm_pasid_drop has freed it (mainline), or the last unbind did (seed 000).
 */
function mmFree(k: Kernel, t: KTask, mm: MmStruct, step: number): void {
  if (mm.id === 0) {
    // BUG_ON(mm == &init_mm): the kernel dies here; init_mm stays.
    const title = `kernel BUG at ${MMDROP_BUG_LINE}!`;
    const body = [
      'invalid opcode: 0000 [#1] PREEMPT SMP',
      `CPU: 0 PID: ${t.pid} Comm: ${t.comm} Not tainted (iommu-sim)`,
      'RIP: 0010:__mmdrop',
      'iommu-sim: the last mm_count of init_mm was dropped',
      ...heldLocksLines(t),
      ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
    ];
    k.report(taskFinding('oops', t, step, title, body));
    return;
  }
  const st = stateOf(mm);
  for (const h of st.dropHooks) h(mm, t, step);
  const b = mmBase(k, mm);
  warnPasidAtMmdrop(k, t, mm, step);
  mm.view.free_by.set(b, k.mem.intern(t.label));
  mm.view.free_chain.set(b, k.mem.intern(t.chain().join('\n')));
  mm.view.state.set(b, MM_FREED);
}

/**
 * __mmdrop's check (perform only): an mm freed with mm->pasid still set leaked its PASID — nobody freed it at
 * unbind (seed 000), nor in mm_pasid_drop just before (mainline).
 */
function warnPasidAtMmdrop(k: Kernel, t: KTask, mm: MmStruct, step: number): void {
  const pasid = mm.view.pasid.get(mmBase(k, mm));
  if (pasid === 0 || !k.enabled('leaks')) return;
  const title = `WARNING: CPU: 0 PID: ${t.pid} at ${MMDROP_WARN_LINE} __mmdrop`;
  const body = [
    `Comm: ${t.comm} Not tainted (iommu-sim)`,
    'RIP: 0010:__mmdrop',
    `iommu-sim: ${mm.name} is freed with PASID ${pasid} (0x${pasid.toString(16)}) still allocated to it (mm->pasid)`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('mm', t, step, title, body));
}

// The callers' names for them (other parts of the model call these; k.fn.NAME is the same call).

/** k.fn.mm_init */
export function mm_init(k: Kernel, t: KTask, mm: MmStruct): KGen {
  return k.fn.mm_init(t, mm);
}

/** k.fn.mmget: one more user of the address space. */
export function mmget(k: Kernel, t: KTask, mm: MmStruct): KGen {
  return k.fn.mmget(t, mm);
}

/** k.fn.mmget_not_zero: a user of the address space unless it is already being torn down. */
export function mmget_not_zero(k: Kernel, t: KTask, mm: MmStruct): KGen<boolean> {
  return k.fn.mmget_not_zero(t, mm);
}

/**
 * k.fn.get_task_mm: task_lock, read task->mm, mmget it, task_unlock — as one step, since exit_mm clears task->mm
 * under the same lock before its mmput. `taskMm` is the address of the task's task->mm word (the mm's id + 1,
 * 0 once the task is past exit_mm). False: the task has no mm any more.
 */
export function get_task_mm(k: Kernel, t: KTask, mm: MmStruct, taskMm: number): KGen<boolean> {
  return k.fn.get_task_mm(t, mm, taskMm);
}

/**
 * k.fn.mmput: drop a user; the last one tears the address space down (__mmput: exit_mmap, then mmdrop) in the
 * caller's context — which is why mmput may sleep, and why atomic contexts use mmput_async. `n` is the kernel's
 * one MMU notifier machinery (exit_mmap's __mmu_notifier_release finds it by name).
 */
export function mmput(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct): KGen {
  void n;
  return k.fn.mmput(t, mm);
}

/** mm->pasid = pasid (0 clears it): k.fn.mm_set_pasid. */
export function mm_set_pasid(k: Kernel, t: KTask, mm: MmStruct, pasid: number): KGen {
  return k.fn.mm_set_pasid(t, mm, pasid);
}

/**
 * k.fn.exit_mm (do_exit): the task lets go of its mm — under mmap_read_lock, so that a writer (a core dump,
 * munmap on another thread) finishes first; current->mm cleared under task_lock — and drops its user reference:
 * the last one tears the address space down here. exit_files is do_exit's next step (kernel/exit.ts).
 */
export function mm_exit(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct): KGen {
  void n;
  return k.fn.exit_mm(t, mm);
}

// ---- teardown ----

/**
 * kmemleak's view of mm_structs at the end: an mm past exit_mmap whose mm_count is still held by nothing that
 * should hold it (no MMU notifier subscription) is a leaked mmgrab. Live mms are processes that have not exited.
 */
function leakCheck(k: Kernel, st: TableState): void {
  if (!k.enabled('leaks')) return;
  const leaked = st.table.mms.filter((mm) => mmStateCode(k, mm) === MM_DEAD && mmCount(k, mm) > 0 && st.holders.every((h) => h(mm) === 0));
  if (leaked.length === 0) return;
  const title = `kmemleak: ${leaked.length} new suspected memory leak${leaked.length > 1 ? 's' : ''} (see /sys/kernel/debug/kmemleak)`;
  const body: string[] = [];
  for (const mm of leaked) {
    const o = objectInfo(k, mm);
    body.push(
      `unreferenced object 0x${fmtAddr(kaddr(k, o.obj))} (size ${o.words * 4}):`,
      `  comm "${o.alloc.comm}", pid ${o.alloc.pid}`,
      `  iommu-sim: ${mm.name} (mm_struct) is past exit_mmap with mm_count ${mmCount(k, mm)} and nothing holding it: a leaked mmgrab`,
      '  backtrace:',
      ...o.alloc.chain
        .slice()
        .reverse()
        .map((l) => `    ${l}`),
    );
  }
  k.report({ kind: 'leak', title, text: [title, ...body].join('\n'), step: -1, where: 'kmemleak' });
}
