// The slab allocator (mm/slub.c) with KASAN's object tracking and quarantine (mm/kasan/generic.c,
// mm/kasan/quarantine.c) and kmemleak's teardown report (mm/kmemleak.c). Objects live in the kernel's shared
// arena so that threads really race on them; every word of allocator state — the bump pointer, the per-size
// free lists, the quarantine ring and each object's header — is in that shared memory and is written only
// inside a point's perform. A freed object waits in a FIFO quarantine before its memory can be reused, so a
// use-after-free reads a dead object (and is reported) rather than silently reading a new one.
//
// Arena layout (word offsets from k.mem.arena):
//   [0] bump (data words used)  [1] quarantine head  [2] quarantine count  [3..3+CLASSES) free-list heads
//   [.. + quarantine] quarantine ring  then the data: objects, each HDR header words followed by its slot.
// A free-list link or ring entry is (header offset from the data start) + 1, so zero means "none".
import type { StepEnv } from '../runtime/task.js';
import type { KTask } from './context.js';
import { accessReport, freeReport, leakReport, nullDerefOops, type SlabObjectInfo, type SlabTrack } from './kasan.js';
import type { Kernel, KGen } from './kernel.js';

export type Gfp = 'GFP_KERNEL' | 'GFP_ATOMIC';

export interface SlabOptions {
  /** Objects held in the KASAN quarantine before their memory may be reused (0: reuse at once). */
  readonly quarantine?: number;
  /** kmemleak reports at most this many objects one by one, then one summary line. */
  readonly leakReportLimit?: number;
  /**
   * failslab (lib/fault-inject.c): the nth allocation (1-based) from the named cache fails, once — to drive the
   * error paths of its callers.
   */
  readonly failslab?: { readonly cache: string; readonly nth: number };
}

/** Where might_alloc() sits: a GFP_KERNEL allocation's might_sleep is reported from here. */
export const MIGHT_ALLOC_SITE = 'include/linux/sched/mm.h:321';

const M_BUMP = 0;
const M_QHEAD = 1;
const M_QCOUNT = 2;
const M_FREE = 3;
const CLASSES = 30;

// Object header.
const H_STATE = 0;
const H_WORDS = 1;
const H_CLASS = 2;
const H_CACHE = 3;
const H_ALLOC_PID = 4;
const H_ALLOC_COMM = 5;
const H_ALLOC_CHAIN = 6;
const H_FREE_PID = 7;
const H_FREE_COMM = 8;
const H_FREE_CHAIN = 9;
const H_NEXT = 10;
const H_FLAGS = 11;
const HDR = 12;

// The state word carries a magic so that a pointer that is no object is told apart (invalid-free, wild access).
const MAGIC = 0x51ab0000;
const S_ALLOCATED = MAGIC | 1;
const S_QUARANTINED = MAGIC | 2;
const S_FREE = MAGIC | 3;

const F_NOT_LEAK = 1;

const DEFAULT_QUARANTINE = 64;

/** The slab allocator of one Kernel: layout constants, plus its hooks registered once. */
class Slab {
  readonly quarantine: number;
  readonly leakLimit: number;
  readonly metaWords: number;
  private readonly failslab: { readonly cache: string; readonly nth: number; readonly counter: number } | undefined;

  constructor(
    private readonly k: Kernel,
    opts: SlabOptions,
  ) {
    // The count of allocations from the failing cache is shared: every thread's allocations count.
    this.failslab = opts.failslab ? { ...opts.failslab, counter: k.statics.alloc(1, 'failslab') } : undefined;
    this.quarantine = opts.quarantine ?? DEFAULT_QUARANTINE;
    this.leakLimit = opts.leakReportLimit ?? 20;
    if (!Number.isInteger(this.quarantine) || this.quarantine < 0) throw new RangeError(`slab: bad quarantine size ${this.quarantine}`);
    this.metaWords = M_FREE + CLASSES + this.quarantine;
    if (this.metaWords + HDR + 2 > k.layout.arenaWords) throw new RangeError('slab: the arena is too small for its own metadata');
    k.onEnd(() => this.kmemleak());
  }

  get i32(): Int32Array {
    return this.k.i32;
  }

  get arena(): number {
    return this.k.mem.arena;
  }

  /** Absolute offset of the first object header. */
  get data(): number {
    return this.arena + this.metaWords;
  }

  get dataWords(): number {
    return this.k.layout.arenaWords - this.metaWords;
  }

  /** Header of `obj` when it is an object this allocator handed out (any state), else undefined. */
  header(obj: number): number | undefined {
    const h = obj - HDR;
    if (!Number.isInteger(obj) || h < this.data || obj >= this.data + (this.i32[this.arena + M_BUMP] as number)) return undefined;
    const s = this.i32[h + H_STATE] as number;
    return s === S_ALLOCATED || s === S_QUARANTINED || s === S_FREE ? h : undefined;
  }

  info(h: number): SlabObjectInfo {
    const i32 = this.i32;
    const mem = this.k.mem;
    const s = i32[h + H_STATE] as number;
    const slotWords = 1 << (i32[h + H_CLASS] as number);
    const track = (pid: number, comm: number, chain: number): SlabTrack => {
      const c = mem.stringAt(chain);
      return { pid, comm: mem.stringAt(comm), chain: c === '' ? [] : c.split('\n') };
    };
    const cache = i32[h + H_CACHE] as number;
    return {
      obj: h + HDR,
      state: s === S_ALLOCATED ? 'allocated' : s === S_QUARANTINED ? 'quarantined' : 'free',
      words: i32[h + H_WORDS] as number,
      slotWords,
      cache: cache === 0 ? `kmalloc-${Math.max(8, slotWords * 4)}` : mem.stringAt(cache),
      alloc: track(i32[h + H_ALLOC_PID] as number, i32[h + H_ALLOC_COMM] as number, i32[h + H_ALLOC_CHAIN] as number),
      free:
        s === S_ALLOCATED
          ? undefined
          : track(i32[h + H_FREE_PID] as number, i32[h + H_FREE_COMM] as number, i32[h + H_FREE_CHAIN] as number),
    };
  }

  // ---- mutations: only from a point's perform ----

  private pushFree(h: number): void {
    const i32 = this.i32;
    const c = i32[h + H_CLASS] as number;
    i32[h + H_STATE] = S_FREE;
    i32[h + H_NEXT] = i32[this.arena + M_FREE + c] as number;
    i32[this.arena + M_FREE + c] = h - this.data + 1;
  }

  private popFree(c: number): number {
    const i32 = this.i32;
    const head = i32[this.arena + M_FREE + c] as number;
    if (head === 0) return 0;
    const h = this.data + head - 1;
    i32[this.arena + M_FREE + c] = i32[h + H_NEXT] as number;
    i32[h + H_NEXT] = 0;
    return h;
  }

  private carve(c: number): number {
    const i32 = this.i32;
    const used = i32[this.arena + M_BUMP] as number;
    const need = HDR + (1 << c);
    if (used + need > this.dataWords) return 0;
    i32[this.arena + M_BUMP] = used + need;
    const h = this.data + used;
    i32[h + H_CLASS] = c;
    return h;
  }

  /** The quarantine's oldest object becomes reusable. */
  private evictOldest(): void {
    const i32 = this.i32;
    const count = i32[this.arena + M_QCOUNT] as number;
    if (count === 0) return;
    const head = i32[this.arena + M_QHEAD] as number;
    const ring = this.arena + M_FREE + CLASSES;
    const h = this.data + (i32[ring + head] as number) - 1;
    i32[ring + head] = 0;
    i32[this.arena + M_QHEAD] = (head + 1) % this.quarantine;
    i32[this.arena + M_QCOUNT] = count - 1;
    this.pushFree(h);
  }

  private quarantinePut(h: number): void {
    if (this.quarantine === 0 || !this.k.enabled('kasan')) {
      this.pushFree(h);
      return;
    }
    const i32 = this.i32;
    if ((i32[this.arena + M_QCOUNT] as number) === this.quarantine) this.evictOldest();
    const count = i32[this.arena + M_QCOUNT] as number;
    const head = i32[this.arena + M_QHEAD] as number;
    i32[this.arena + M_FREE + CLASSES + ((head + count) % this.quarantine)] = h - this.data + 1;
    i32[this.arena + M_QCOUNT] = count + 1;
    i32[h + H_STATE] = S_QUARANTINED;
  }

  allocate(t: KTask, words: number, cache: string | undefined, zero: boolean): number {
    const f = this.failslab;
    if (f && cache === f.cache && Atomics.add(this.i32, this.k.mem.statics + f.counter, 1) + 1 === f.nth) return 0;
    let c = 1;
    while (1 << c < words) c++;
    if (c >= CLASSES || HDR + (1 << c) > this.dataWords) return 0;
    let h = this.popFree(c) || this.carve(c);
    // Memory pressure drains the quarantine (oldest first) before an allocation fails.
    while (h === 0 && (this.i32[this.arena + M_QCOUNT] as number) > 0) {
      this.evictOldest();
      h = this.popFree(c);
    }
    if (h === 0) return 0;
    const i32 = this.i32;
    const mem = this.k.mem;
    i32[h + H_STATE] = S_ALLOCATED;
    i32[h + H_WORDS] = words;
    i32[h + H_CACHE] = cache === undefined ? 0 : mem.intern(cache);
    i32[h + H_ALLOC_PID] = t.pid;
    i32[h + H_ALLOC_COMM] = mem.intern(t.comm);
    i32[h + H_ALLOC_CHAIN] = mem.intern(t.chain().join('\n'));
    i32[h + H_FREE_PID] = 0;
    i32[h + H_FREE_COMM] = 0;
    i32[h + H_FREE_CHAIN] = 0;
    i32[h + H_FLAGS] = 0;
    if (zero) i32.fill(0, h + HDR, h + HDR + (1 << c));
    return h + HDR;
  }

  free(t: KTask, obj: number, env: StepEnv): void {
    const k = this.k;
    if (obj === 0) return; // kfree(NULL) is a no-op
    const h = this.header(obj);
    if (h === undefined) {
      if (k.enabled('kasan')) k.report(freeReport(k, t, 'invalid-free', obj, undefined));
      return;
    }
    if ((this.i32[h + H_STATE] as number) !== S_ALLOCATED) {
      if (k.enabled('kasan')) k.report(freeReport(k, t, 'double-free', obj, this.info(h)));
      return;
    }
    // Other checkers (RCU: readers may still hold it) look at it while it is still allocated.
    k.freeing(t, obj, env);
    const i32 = this.i32;
    const mem = k.mem;
    i32[h + H_FREE_PID] = t.pid;
    i32[h + H_FREE_COMM] = mem.intern(t.comm);
    i32[h + H_FREE_CHAIN] = mem.intern(t.chain().join('\n'));
    this.quarantinePut(h);
  }

  setFlag(obj: number, flag: number): void {
    const h = this.header(obj);
    if (h !== undefined) this.i32[h + H_FLAGS] = (this.i32[h + H_FLAGS] as number) | flag;
  }

  // ---- reads ----

  /** Every object carved so far, in address order. */
  *objects(): Generator<number> {
    const end = this.data + (this.i32[this.arena + M_BUMP] as number);
    for (let h = this.data; h < end; h += HDR + (1 << (this.i32[h + H_CLASS] as number))) yield h;
  }

  /** kmemleak at teardown: every object still allocated is reported (nothing freed it by the end of the run). */
  private kmemleak(): void {
    const k = this.k;
    // A run that left tasks blocked holds what they hold (kmemleak would find it referenced): not judged.
    if (!k.enabled('leaks') || k.tasksLeftBlocked) return;
    let n = 0;
    for (const h of this.objects()) {
      const s = this.i32[h + H_STATE] as number;
      if (s !== S_ALLOCATED || ((this.i32[h + H_FLAGS] as number) & F_NOT_LEAK) !== 0) continue;
      n++;
      if (n > this.leakLimit) continue;
      const o = this.info(h);
      const dump = Array.from(this.i32.subarray(o.obj, o.obj + Math.min(o.words, 8)));
      k.report(leakReport(k, o, dump));
    }
    if (n > this.leakLimit) {
      const title = `kmemleak: ${n} new suspected memory leaks (see /sys/kernel/debug/kmemleak)`;
      k.report({ kind: 'leak', title, text: `${title}\n(the first ${this.leakLimit} are reported above)`, step: -1, where: 'kmemleak' });
    }
  }
}

const slabs = new WeakMap<Kernel, Slab>();

/**
 * Set up the slab allocator of k. Call it when the workload is built (identically in every thread) so that the
 * teardown leak check is registered in every instance, including the one the threaded runtime builds to check
 * the final memory; kmalloc sets it up with the defaults if nobody did.
 */
export function slabInit(k: Kernel, opts: SlabOptions = {}): void {
  const s = slabs.get(k);
  if (s) {
    if (opts.quarantine !== undefined && opts.quarantine !== s.quarantine) {
      throw new Error(`slab: already set up with a quarantine of ${s.quarantine} (call slabInit before any kmalloc)`);
    }
    return;
  }
  slabs.set(k, new Slab(k, opts));
}

function slab(k: Kernel): Slab {
  const s = slabs.get(k);
  // Set up at declaration, like every other kernel structure: a slab first met during a run would register
  // its teardown check (kmemleak) in this thread only, not in the instance that checks the final memory.
  if (!s) throw new Error('slab: call slabInit(k) when the workload is declared, before the run starts');
  return s;
}

function* allocate(k: Kernel, t: KTask, words: number, gfp: Gfp, cache: string | undefined, zero: boolean): KGen<number> {
  if (!Number.isInteger(words) || words < 0) throw new RangeError(`kmalloc: bad size ${words} words`);
  // might_alloc(): a GFP_KERNEL allocation may enter reclaim and sleep; GFP_ATOMIC never does.
  if (gfp === 'GFP_KERNEL') k.mightSleep(t, MIGHT_ALLOC_SITE);
  const s = slab(k);
  return yield* k.step(t, `${zero ? 'kzalloc' : 'kmalloc'}(${words}${cache === undefined ? '' : `, ${cache}`})`, () =>
    s.allocate(t, words, cache, zero),
  );
}

/**
 * kmalloc(size, gfp) — `words` 4-byte words; with `cache`, kmem_cache_alloc from that named cache. Returns the
 * object (an absolute word offset in shared memory) or 0 (NULL) when memory is exhausted. The contents are
 * whatever the memory held before, as in the kernel.
 */
export function* kmalloc(k: Kernel, t: KTask, words: number, gfp: Gfp, cache?: string): KGen<number> {
  return yield* k.call(t, cache === undefined ? 'kmalloc' : 'kmem_cache_alloc', allocate(k, t, words, gfp, cache, false));
}

/** kzalloc: kmalloc with the object zeroed. */
export function* kzalloc(k: Kernel, t: KTask, words: number, gfp: Gfp, cache?: string): KGen<number> {
  return yield* k.call(t, cache === undefined ? 'kzalloc' : 'kmem_cache_zalloc', allocate(k, t, words, gfp, cache, true));
}

/** kfree(obj): KASAN reports a double or invalid free; kfree(0) does nothing. */
export function* kfree(k: Kernel, t: KTask, obj: number): KGen {
  const s = slab(k);
  yield* k.call(
    t,
    'kfree',
    k.step(t, 'kfree', (env) => s.free(t, obj, env)),
  );
}

/** kmemleak_not_leak(obj): an object meant to live past teardown (a boot-time allocation). */
export function* kmemleak_not_leak(k: Kernel, t: KTask, obj: number): KGen {
  const s = slab(k);
  yield* k.step(t, 'kmemleak_not_leak', () => s.setFlag(obj, F_NOT_LEAK));
}

/**
 * KASAN's check of one word access (obj + field) by t: reports a bad access and says whether the word may be
 * touched. A use-after-free is reported and the access goes ahead, as in the kernel (the memory is still
 * there, in quarantine); an access outside any object — NULL, out of bounds, a wild pointer — is not done.
 */
export function kasanAccess(k: Kernel, t: KTask, obj: number, field: number, write: boolean): boolean {
  const s = slab(k);
  const abs = obj + field;
  if (obj === 0) {
    k.report(k.enabled('kasan') ? accessReport(k, t, 'null-ptr-deref', abs, write, undefined) : nullDerefOops(t, abs));
    return false;
  }
  const h = s.header(obj);
  if (h === undefined) {
    if (k.enabled('kasan')) k.report(accessReport(k, t, 'wild-memory-access', abs, write, undefined));
    return false;
  }
  const st = s.i32[h + H_STATE] as number;
  const words = s.i32[h + H_WORDS] as number;
  if (!Number.isInteger(field) || field < 0 || field >= words) {
    if (k.enabled('kasan')) k.report(accessReport(k, t, 'slab-out-of-bounds', abs, write, s.info(h)));
    return false;
  }
  if (st !== S_ALLOCATED && k.enabled('kasan')) k.report(accessReport(k, t, 'slab-use-after-free', abs, write, s.info(h)));
  return true;
}

/**
 * A plain read of word `field` of a slab object. Not a scheduling point: the caller holds whatever lock protects
 * the field (or reads what it alone owns). KASAN checks the object first.
 */
export function objLoad(k: Kernel, t: KTask, obj: number, field: number): number {
  if (!kasanAccess(k, t, obj, field, false)) return 0;
  return k.i32[obj + field] as number;
}

/** A plain write of word `field` of a slab object (the caller holds the lock that protects it). */
export function objStore(k: Kernel, t: KTask, obj: number, field: number, v: number): void {
  if (kasanAccess(k, t, obj, field, true)) k.i32[obj + field] = v;
}

/** READ_ONCE(obj->field): a racy read, a scheduling point of its own. */
export function* objReadOnce(k: Kernel, t: KTask, obj: number, field: number): KGen<number> {
  return yield* k.step(t, `READ_ONCE(${field})`, () => objLoad(k, t, obj, field));
}

/** WRITE_ONCE(obj->field, v): a racy write, a scheduling point of its own. */
export function* objWriteOnce(k: Kernel, t: KTask, obj: number, field: number, v: number): KGen {
  yield* k.step(t, `WRITE_ONCE(${field})`, () => objStore(k, t, obj, field, v));
}

export type ObjState = 'allocated' | 'quarantined' | 'free' | 'invalid';

/** What the allocator says about obj (for tests and invariant checks; reads only). */
export function objState(k: Kernel, obj: number): ObjState {
  const s = slab(k);
  const h = s.header(obj);
  return h === undefined ? 'invalid' : s.info(h).state;
}

/** KASAN's view of an object (its size, cache, allocation and free tracks), or undefined for a non-object. */
export function objInfo(k: Kernel, obj: number): SlabObjectInfo | undefined {
  const s = slab(k);
  const h = s.header(obj);
  return h === undefined ? undefined : s.info(h);
}

export interface SlabStats {
  readonly allocated: number;
  readonly quarantined: number;
  readonly free: number;
  /** Arena words carved so far (headers included). */
  readonly usedWords: number;
}

/** Counts of objects by state (reads only). */
export function slabStats(k: Kernel): SlabStats {
  const s = slab(k);
  let allocated = 0;
  let quarantined = 0;
  let free = 0;
  for (const h of s.objects()) {
    const st = s.i32[h + H_STATE] as number;
    if (st === S_ALLOCATED) allocated++;
    else if (st === S_QUARANTINED) quarantined++;
    else free++;
  }
  return { allocated, quarantined, free, usedWords: s.i32[s.arena + M_BUMP] as number };
}
