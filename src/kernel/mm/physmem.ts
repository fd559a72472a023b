// Physical page frames (mm/page_alloc.c, with mm/page_owner.c's tracking and bad_page()'s report): an order-0
// page allocator over a fixed number of frames in static shared memory. Each frame records its owner (the mm
// whose memory it is, or any other nonzero id a kernel user picks), the DMA writes that landed on it and who
// allocated and freed it last, so that a stale IOMMU translation is caught where it matters: when the frame is
// freed while a device can still reach it (onPageFree), or when a device writes into a frame that now belongs
// to someone else (pageOwner at dmaWrite time).
//
// Freed frames go on a LIFO list and are handed out again first, as the per-CPU page lists do: a page freed
// too early is reused at once, so a device that still writes to it writes into another owner's memory.
//
// Words: a 3-word header, then FRAME_WORDS per frame (frame 0 included: it is never handed out, pfn 0 is NULL).
import { read } from '../../runtime/footprint.js';
import type { StepEnv } from '../../runtime/task.js';
import type { KTask } from '../context.js';
import { callTrace, heldLocksLines, taskFinding } from '../findings.js';
import type { Kernel, KGen } from '../kernel.js';
import { MIGHT_ALLOC_SITE } from '../slab.js';
import { struct, type ViewOf, word } from '../struct.js';

declare module '../kfunc.js' {
  interface KernelFunctions {
    /** alloc_pages(GFP_KERNEL, 0) of a page for `owner` (an mm id + 1, a page table's …): its pfn, 0 when out. */
    alloc_pages(t: KTask, pm: PhysMem, owner: number): KGen<number>;
    /** __free_pages(page, 0): a frame already free is `BUG: Bad page state` (and is not freed again). */
    __free_pages(t: KTask, pm: PhysMem, pfn: number): KGen;
  }
}

const PAGE_ALLOC_C = 'mm/page_alloc.c';

export interface PhysMem {
  readonly frames: number;
  /** Static offset of the allocator's words. */
  readonly off: number;
  /** Accessors of the allocator's state and of its frames' struct page. */
  readonly view: { readonly physmem: ViewOf<typeof PHYSMEM>; readonly page: ViewOf<typeof PAGE> };
}

/** The allocator's state (the kernel's zone counters and free_area): model only. */
const PHYSMEM = struct('physmem', {
  nr_inuse: word, // frames allocated now
  bump: word, // frames handed out from the never-used top so far (zeroed memory: none)
  free_list: word, // head of the free list (a pfn, 0: empty)
});

/**
 * struct page, the model's fields: who owns the frame (page_owner's record, with its allocation and free
 * stacks) and what DMA wrote to it.
 */
const PAGE = struct('page', {
  owner: word, // model: the owner id, 0: free
  writes: word, // model: DMA writes that landed
  tag: word, // model: the last DMA writer's tag
  lru: word, // the free-list link (page->buddy_list), a pfn
  alloc_by: word, // page_owner: interned comm/pid of the last allocator (0: memblock, at boot)
  alloc_chain: word, // page_owner->handle: its stack
  free_by: word, // page_owner->free_pid (and comm)
  free_chain: word, // page_owner->free_handle
  pt_level: word, // struct ptdesc: 0 for a data page, else the table's level (PT_LEVEL_*) while it is one
  pt_index: word, // ptdesc->pt_index: which table of that level in its mm (the first vpn it maps >> the level's shift)
});
export const FRAME_WORDS = PAGE.words;

/** Static words definePhysMem takes for `frames` frames (to size a kernel layout). */
export function physMemWords(frames: number): number {
  return PHYSMEM.words + frames * PAGE.words;
}

export type PageFreeHook = (pfn: number, t: KTask, step: number) => void;
/** What a page-free hook reads of shared memory for a frame (footprint.ts's encoding), appended to out. Pure. */
export type PageFreeFootprint = (pfn: number, out: number[]) => void;

const freeHooks = new WeakMap<PhysMem, PageFreeHook[]>();
/** Each hook's footprint, undefined for a hook that declares none (free_page then takes the coarse lock). */
const freeFootprints = new WeakMap<PhysMem, (PageFreeFootprint | undefined)[]>();

/** The machine's RAM: `frames` page frames, pfn 1..frames-1 allocatable. */
export function definePhysMem(k: Kernel, frames: number): PhysMem {
  if (!Number.isInteger(frames) || frames < 2 || frames > 1 << 28) throw new RangeError(`physmem: bad frame count ${frames}`);
  const pm: PhysMem = { frames, off: k.statics.alloc(physMemWords(frames), `physmem (${frames} frames)`), view: { physmem: k.struct(PHYSMEM), page: k.struct(PAGE) } };
  freeHooks.set(pm, []);
  freeFootprints.set(pm, []);
  if (!k.fns.has('alloc_pages')) {
    k.fns.define('alloc_pages', PAGE_ALLOC_C, (t, pm, owner) => allocPages(k, t, pm, owner));
    k.fns.define('__free_pages', PAGE_ALLOC_C, (t, pm, pfn) => freePages(k, t, pm, pfn));
  }
  return pm;
}

/**
 * Run `hook` inside free_page's perform, before the frame is marked free: the IOMMU's stale-translation
 * oracle scans its TLBs there. Register at declaration, identically in every thread.
 */
export function onPageFree(pm: PhysMem, hook: PageFreeHook, footprint?: PageFreeFootprint): void {
  hooksOf(pm).push(hook);
  freeFootprints.get(pm)?.push(footprint);
}

function hooksOf(pm: PhysMem): PageFreeHook[] {
  const h = freeHooks.get(pm);
  if (!h) throw new Error('physmem: not declared with definePhysMem');
  return h;
}

function header(k: Kernel, pm: PhysMem): number {
  return k.mem.statics + pm.off;
}

function frame(k: Kernel, pm: PhysMem, pfn: number): number {
  return k.mem.statics + pm.off + PHYSMEM.words + pfn * PAGE.words;
}

function valid(pm: PhysMem, pfn: number): boolean {
  return Number.isInteger(pfn) && pfn >= 0 && pfn < pm.frames;
}

/** Take a frame for `owner` (perform only, or at boot); 0 when none is left. */
function take(k: Kernel, pm: PhysMem, owner: number): number {
  const h = header(k, pm);
  let pfn = pm.view.physmem.free_list.get(h);
  if (pfn !== 0) {
    const f = frame(k, pm, pfn);
    pm.view.physmem.free_list.set(h, pm.view.page.lru.get(f));
    pm.view.page.lru.set(f, 0);
  } else {
    const used = pm.view.physmem.bump.get(h);
    if (used + 1 >= pm.frames) return 0;
    pfn = used + 1;
    pm.view.physmem.bump.set(h, pfn);
  }
  const f = frame(k, pm, pfn);
  pm.view.page.owner.set(f, owner);
  // A page comes zeroed (user pages are cleared on fault): no write has landed on this incarnation yet.
  pm.view.page.writes.set(f, 0);
  pm.view.page.tag.set(f, 0);
  pm.view.page.pt_level.set(f, 0);
  pm.view.page.pt_index.set(f, 0);
  pm.view.physmem.nr_inuse.set(h, pm.view.physmem.nr_inuse.get(h) + 1);
  return pfn;
}

function checkOwner(owner: number): void {
  if (!Number.isInteger(owner) || owner <= 0) throw new RangeError(`physmem: owner ${owner} (0 means free)`);
}

/**
 * memblock_alloc for one page at boot: a plain write, for attach hooks only (nothing runs yet). Frames are
 * handed out in order, so boot is the same in every run.
 */
export function memblock_alloc_page(k: Kernel, pm: PhysMem, owner: number): number {
  checkOwner(owner);
  return take(k, pm, owner);
}

/** alloc_page(GFP_KERNEL): the frame's pfn, 0 when memory is exhausted. May sleep (reclaim). */
export function alloc_page(k: Kernel, t: KTask, pm: PhysMem, owner: number): KGen<number> {
  checkOwner(owner);
  return k.fn.alloc_pages(t, pm, owner);
}

function* allocPages(k: Kernel, t: KTask, pm: PhysMem, owner: number): KGen<number> {
  k.mightSleep(t, MIGHT_ALLOC_SITE);
  return yield* k.stepOn(
    t,
    'alloc_page',
    () => allocPageFootprint(k, t, pm),
    () => takeFor(k, t, pm, owner),
  );
}

/** The words of a frame's struct page, read or written. */
function frameWords(k: Kernel, pm: PhysMem, pfn: number, write: boolean, out: number[]): void {
  const f = frame(k, pm, pfn);
  for (let w = f; w < f + PAGE.words; w++) out.push(write ? w : read(w));
}

/**
 * The words alloc_page (and alloc_page_atomic inside a caller's perform) touches, appended to out: the free
 * list's head or the bump mark, the frame taken and the count in use, and the interned allocator and stack.
 * Computed from memory as it is now (pure): evaluate it in a point's footprint function.
 */
export function allocPageFootprint(k: Kernel, t: KTask, pm: PhysMem, out: number[] = []): number[] {
  return allocPagesFootprint(k, t, pm, 1, out);
}

/** The words of n alloc_page_atomic calls in turn in one perform (as allocPageFootprint: pure). */
export function allocPagesFootprint(k: Kernel, t: KTask, pm: PhysMem, n: number, out: number[] = []): number[] {
  const h = header(k, pm);
  const v = pm.view.physmem;
  let head = v.free_list.get(h);
  let used = -1;
  let popped = false;
  let taken = 0;
  for (; taken < n; taken++) {
    let pfn = head;
    if (pfn !== 0) {
      popped = true;
      head = pm.view.page.lru.get(frame(k, pm, pfn));
    } else {
      if (used < 0) used = v.bump.get(h);
      if (used + 1 >= pm.frames) break;
      pfn = ++used;
    }
    frameWords(k, pm, pfn, true, out);
  }
  out.push(popped ? v.free_list.addr(h) : read(v.free_list.addr(h)));
  // The bump mark is read once the list ran dry, written when a frame was carved from it.
  if (used >= 0) out.push(used > v.bump.get(h) ? v.bump.addr(h) : read(v.bump.addr(h)));
  if (taken === 0) return out;
  out.push(v.nr_inuse.addr(h));
  return k.mem.internFootprint([t.label, t.frames.join('\n')], out);
}

/** The words setPtdesc(pfn) writes: the frame's ptdesc level and index. */
export function ptdescFootprint(k: Kernel, pm: PhysMem, pfn: number, out: number[] = []): number[] {
  const f = frame(k, pm, pfn);
  out.push(pm.view.page.pt_level.addr(f), pm.view.page.pt_index.addr(f));
  return out;
}

/**
 * The words free_page of pfn touches, appended to out: the frame, the free list's head and the count in use,
 * the interned freer and stack, and what the page-free hooks read (every hook declares it: freePages).
 */
function freePageFootprint(k: Kernel, t: KTask, pm: PhysMem, pfn: number): number[] {
  const out: number[] = [];
  const f = frame(k, pm, pfn);
  if (pm.view.page.owner.get(f) === 0) {
    // bad_page reads the frame's page_owner record; without KASAN only the owner.
    if (k.enabled('kasan')) frameWords(k, pm, pfn, false, out);
    else out.push(read(pm.view.page.owner.addr(f)));
    return out;
  }
  for (const fp of freeFootprints.get(pm) ?? []) fp?.(pfn, out);
  const h = header(k, pm);
  out.push(pm.view.physmem.free_list.addr(h), pm.view.physmem.nr_inuse.addr(h));
  frameWords(k, pm, pfn, true, out);
  return k.mem.internFootprint([t.label, t.frames.join('\n')], out);
}

/** A free frame for owner, marked with who allocated it (KASAN's "Allocated by task"); 0 when none is left. */
function takeFor(k: Kernel, t: KTask, pm: PhysMem, owner: number): number {
  const pfn = take(k, pm, owner);
  if (pfn !== 0) {
    const f = frame(k, pm, pfn);
    pm.view.page.alloc_by.set(f, k.mem.intern(t.label));
    pm.view.page.alloc_chain.set(f, k.mem.intern(t.chain().join('\n')));
  }
  return pfn;
}

/** __free_page: freeing a frame that is already free is `BUG: Bad page state` (and is not done). */
export function free_page(k: Kernel, t: KTask, pm: PhysMem, pfn: number): KGen {
  if (!valid(pm, pfn) || pfn === 0) throw new RangeError(`free_page: pfn ${pfn} is not a page frame of this machine`);
  return k.fn.__free_pages(t, pm, pfn);
}

function freePages(k: Kernel, t: KTask, pm: PhysMem, pfn: number): KGen {
  // A page-free hook that does not say what it reads (the stale-translation oracle's caches) leaves free_page on
  // the coarse lock.
  const declared = freeFootprints.get(pm)?.every((f) => f !== undefined) ?? false;
  const free = (env: StepEnv): void => {
    const f = frame(k, pm, pfn);
    if (pm.view.page.owner.get(f) === 0) {
      if (k.enabled('kasan')) badPage(k, t, pm, pfn, env.step);
      return;
    }
    for (const h of hooksOf(pm)) h(pfn, t, env.step);
    const hd = header(k, pm);
    pm.view.page.owner.set(f, 0);
    pm.view.page.pt_level.set(f, 0);
    pm.view.page.free_by.set(f, k.mem.intern(t.label));
    pm.view.page.free_chain.set(f, k.mem.intern(t.chain().join('\n')));
    pm.view.page.lru.set(f, pm.view.physmem.free_list.get(hd));
    pm.view.physmem.free_list.set(hd, pfn);
    pm.view.physmem.nr_inuse.set(hd, pm.view.physmem.nr_inuse.get(hd) - 1);
  };
  return declared ? k.stepOn(t, 'free_page', () => freePageFootprint(k, t, pm, pfn), free) : k.step(t, 'free_page', free);
}

/**
 * GFP_ATOMIC allocation inside a perform (io-pgtable's table pages, allocated under the domain's lock in map):
 * the frame's pfn, 0 when memory is exhausted.
 */
export function alloc_page_atomic(k: Kernel, t: KTask, pm: PhysMem, owner: number): number {
  checkOwner(owner);
  return takeFor(k, t, pm, owner);
}

/** pagetable_ctor: the frame becomes a page table of `level`, the index-th of its mm at that level (perform only). */
export function setPtdesc(k: Kernel, pm: PhysMem, pfn: number, level: number, index: number): void {
  const f = frame(k, pm, pfn);
  pm.view.page.pt_level.set(f, level);
  pm.view.page.pt_index.set(f, index);
}

/** The frame's ptdesc as a walker sees it: its level (0: not a page table now) and index. A plain read. */
export function ptdescLevel(k: Kernel, pm: PhysMem, pfn: number): number {
  return valid(pm, pfn) ? pm.view.page.pt_level.get(frame(k, pm, pfn)) : 0;
}

export function ptdescIndex(k: Kernel, pm: PhysMem, pfn: number): number {
  return valid(pm, pfn) ? pm.view.page.pt_index.get(frame(k, pm, pfn)) : 0;
}

/** page_owner's record of the frame: who allocated it last and who freed it last, and their stacks (oracle reports). */
export function pageHistory(k: Kernel, pm: PhysMem, pfn: number): string[] {
  if (!valid(pm, pfn)) return [];
  const f = frame(k, pm, pfn);
  const allocBy = k.mem.stringAt(pm.view.page.alloc_by.get(f));
  const freeBy = k.mem.stringAt(pm.view.page.free_by.get(f));
  const out = [allocBy === '' ? 'page last allocated at boot (memblock)' : `page last allocated by ${allocBy}:`];
  if (allocBy !== '') out.push(...stackLines(k, pm.view.page.alloc_chain.get(f)));
  if (freeBy !== '') out.push(`page last freed by ${freeBy}:`, ...stackLines(k, pm.view.page.free_chain.get(f)));
  return out;
}

/** The frame's owner id, 0 when free. A plain read: callable from any perform. */
export function pageOwner(k: Kernel, pm: PhysMem, pfn: number): number {
  return valid(pm, pfn) ? pm.view.page.owner.READ_ONCE(frame(k, pm, pfn)) : 0;
}

/** DMA writes that landed on the frame since it was last allocated. */
export function pageWrites(k: Kernel, pm: PhysMem, pfn: number): number {
  return valid(pm, pfn) ? pm.view.page.writes.READ_ONCE(frame(k, pm, pfn)) : 0;
}

/** The tag of the last DMA write that landed on the frame (0: none since it was allocated). */
export function pageLastWriter(k: Kernel, pm: PhysMem, pfn: number): number {
  return valid(pm, pfn) ? pm.view.page.tag.READ_ONCE(frame(k, pm, pfn)) : 0;
}

/** A device write lands on the frame (call inside a sequenced step). Frame 0 counts too: a DMA to NULL. */
export function dmaWrite(k: Kernel, pm: PhysMem, pfn: number, tag: number): void {
  if (!valid(pm, pfn)) throw new RangeError(`dmaWrite: pfn ${pfn} is not a page frame of this machine`);
  const f = frame(k, pm, pfn);
  pm.view.page.writes.atomic_inc(f);
  pm.view.page.tag.WRITE_ONCE(f, tag);
}

export function framesInUse(k: Kernel, pm: PhysMem): number {
  return pm.view.physmem.nr_inuse.READ_ONCE(header(k, pm));
}

// ---- the report ----

function hex5(n: number): string {
  return n.toString(16).padStart(5, '0');
}

function stackLines(k: Kernel, chain: number): string[] {
  const c = k.mem.stringAt(chain);
  if (c === '') return [' (stack is not available)'];
  return c
    .split('\n')
    .reverse()
    .map((l) => ` ${l}`);
}

function pidOf(label: string): string {
  const i = label.lastIndexOf('/');
  return i < 0 ? '0' : label.slice(i + 1);
}

function commOf(label: string): string {
  const i = label.lastIndexOf('/');
  return i < 0 ? label : label.slice(0, i);
}

/** bad_page(): dump_page with page_owner's last allocation and free, then the stack. */
function badPage(k: Kernel, t: KTask, pm: PhysMem, pfn: number, step: number): void {
  const f = frame(k, pm, pfn);
  const allocBy = k.mem.stringAt(pm.view.page.alloc_by.get(f));
  const freeBy = k.mem.stringAt(pm.view.page.free_by.get(f));
  const title = `BUG: Bad page state in process ${t.comm}  pfn:${hex5(pfn)}`;
  // A frame never handed out has no page_owner record at all.
  const owner =
    freeBy === ''
      ? ['page_owner info is not present (never set?)']
      : [
          'page_owner tracks the page as freed',
          allocBy === ''
            ? 'page last allocated at boot (memblock)'
            : `page last allocated via order 0, migratetype Unmovable, gfp_mask 0xcc0(GFP_KERNEL), pid ${pidOf(allocBy)}, tgid ${pidOf(allocBy)} (${commOf(allocBy)})`,
          ...(allocBy === '' ? [] : stackLines(k, pm.view.page.alloc_chain.get(f))),
          `page last free pid ${pidOf(freeBy)} tgid ${pidOf(freeBy)} stack trace:`,
          ...stackLines(k, pm.view.page.free_chain.get(f)),
        ];
  const body = [
    `page: refcount:-1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x${pfn.toString(16)}`,
    'flags: 0x0()',
    'page dumped because: nonzero _refcount',
    ...owner,
    freeBy === ''
      ? `iommu-sim: __free_pages of pfn 0x${pfn.toString(16)}, which was never allocated`
      : `iommu-sim: __free_pages of pfn 0x${pfn.toString(16)}, which is already free (a double free)`,
    'Modules linked in:',
    `CPU: 0 PID: ${t.pid} Comm: ${t.comm} Tainted: G    B              (iommu-sim)`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('mm', t, step, title, body));
}
