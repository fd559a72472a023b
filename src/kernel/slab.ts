// The slab allocator (mm/slub.c) with KASAN's object tracking and quarantine (mm/kasan/generic.c,
// mm/kasan/quarantine.c) and kmemleak's teardown report (mm/kmemleak.c). Objects live in the kernel's shared
// arena so that threads really race on them; every word of allocator state — the bump pointer, the per-size
// free lists, the quarantine ring and each object's header — is in that shared memory and is written only
// inside a point's perform. A freed object waits in a FIFO quarantine before its memory can be reused, so a
// use-after-free reads a dead object (and is reported) rather than silently reading a new one.
//
// Arena layout (from k.mem.arena): struct kmalloc_arena (the bump mark, the quarantine ring's head and count, a
// free list a size class, then the ring), then the data: objects, each a struct slab_object header followed by
// its slot. A free-list link or ring entry is (header offset from the data start) + 1, so zero means "none".
import { read } from '../runtime/footprint.js';
import type { StepEnv } from '../runtime/task.js';
import type { KTask } from './context.js';
import { accessReport, freeReport, leakReport, nullDerefOops, type SlabObjectInfo, type SlabTrack } from './kasan.js';
import type { Kernel, KGen } from './kernel.js';
import { array, struct, type ViewOf, word } from './struct.js';

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

/** Size classes: class c holds objects of up to 2^c words (kmalloc_caches[] indexed by the shift, in words). */
const KMALLOC_SHIFT_HIGH = 29;

/**
 * The allocator's own words at the start of the arena: the model's kmalloc caches, one free list a size class
 * (each a kmem_cache's freelist), and KASAN's quarantine (mm/kasan/quarantine.c) as a FIFO ring.
 */
const KMALLOC_ARENA = struct('kmalloc_arena', {
  bump: word, // model: data words carved so far (the slab pages new_slab handed out)
  quarantine_head: word, // the ring's oldest entry
  quarantine_count: word, // entries in the ring
  freelist: array(KMALLOC_SHIFT_HIGH + 1), // kmalloc_caches[c]->freelist: a free object's header (+ 1), 0: empty
  global_quarantine: array(0), // the ring of quarantined objects' headers (+ 1), sized by SlabOptions.quarantine
});

/** struct kasan_track (mm/kasan/kasan.h): who allocated or freed an object; `stack` the interned call chain. */
const KASAN_TRACK = struct('kasan_track', {
  pid: word,
  comm: word, // interned task comm (kmemleak_object.comm)
  stack: word, // interned call chain (the stack depot handle)
});

/**
 * The header in front of each object: SLUB's bookkeeping (size, cache, freelist link), KASAN's alloc and free
 * meta (struct kasan_alloc_meta / kasan_free_meta) and kmemleak's flags.
 */
const SLAB_OBJECT = struct('slab_object', {
  state: word, // SLAB_OBJECT_MAGIC | allocated / quarantined / free (what KASAN's shadow says of it)
  object_size: word, // words asked for (s->object_size)
  size_class: word, // the slot holds 2^size_class words
  cache: word, // interned kmem_cache name, 0: kmalloc-N
  alloc_track: KASAN_TRACK, // kasan_alloc_meta.alloc_track
  free_track: KASAN_TRACK, // kasan_free_meta.free_track
  next: word, // freelist link (get_freepointer): the next free header (+ 1)
  flags: word, // kmemleak_object.flags
});
const HDR = SLAB_OBJECT.words;

/** The arena words an object of `words` words takes: its header and the slot of its size class (to size an arena). */
export function slabObjectWords(words: number): number {
  return HDR + 2 ** Math.ceil(Math.log2(Math.max(1, words)));
}

// The state word carries a magic so that a pointer that is no object is told apart (invalid-free, wild access).
const SLAB_OBJECT_MAGIC = 0x51ab0000;
const S_ALLOCATED = SLAB_OBJECT_MAGIC | 1;
const S_QUARANTINED = SLAB_OBJECT_MAGIC | 2;
const S_FREE = SLAB_OBJECT_MAGIC | 3;

/** kmemleak_not_leak paints an object grey: never reported as a leak. */
const OBJECT_GREY = 1;

const DEFAULT_QUARANTINE = 64;

/** The slab allocator of one Kernel: its accessors and options, plus its hooks registered once. */
class Slab {
  readonly quarantine: number;
  readonly leakLimit: number;
  readonly metaWords: number;
  private readonly failslab: { readonly cache: string; readonly nth: number; readonly counter: number } | undefined;
  /** The arena's own words (at k.mem.arena). */
  private readonly meta: ViewOf<typeof KMALLOC_ARENA>;
  /** Object headers (a header is at obj - HDR). */
  readonly hdr: ViewOf<typeof SLAB_OBJECT>;

  constructor(
    private readonly k: Kernel,
    opts: SlabOptions,
  ) {
    // The count of allocations from the failing cache is shared: every thread's allocations count.
    this.failslab = opts.failslab ? { ...opts.failslab, counter: k.statics.alloc(1, 'failslab') } : undefined;
    this.quarantine = opts.quarantine ?? DEFAULT_QUARANTINE;
    this.leakLimit = opts.leakReportLimit ?? 20;
    if (!Number.isInteger(this.quarantine) || this.quarantine < 0) throw new RangeError(`slab: bad quarantine size ${this.quarantine}`);
    this.metaWords = KMALLOC_ARENA.words + this.quarantine;
    if (this.metaWords + HDR + 2 > k.layout.arenaWords) throw new RangeError('slab: the arena is too small for its own metadata');
    this.meta = k.struct(KMALLOC_ARENA);
    this.hdr = k.struct(SLAB_OBJECT);
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

  /** Data words carved so far. */
  get used(): number {
    return this.meta.bump.get(this.arena);
  }

  /** Header of `obj` when it is an object this allocator handed out (any state), else undefined. */
  header(obj: number): number | undefined {
    const h = obj - HDR;
    if (!Number.isInteger(obj) || h < this.data || obj >= this.data + this.used) return undefined;
    const s = this.hdr.state.get(h);
    return s === S_ALLOCATED || s === S_QUARANTINED || s === S_FREE ? h : undefined;
  }

  info(h: number): SlabObjectInfo {
    const o = this.hdr;
    const mem = this.k.mem;
    const s = o.state.get(h);
    const slotWords = 1 << o.size_class.get(h);
    const track = (tr: typeof o.alloc_track): SlabTrack => {
      const c = mem.stringAt(tr.stack.get(h));
      return { pid: tr.pid.get(h), comm: mem.stringAt(tr.comm.get(h)), chain: c === '' ? [] : c.split('\n') };
    };
    const cache = o.cache.get(h);
    return {
      obj: h + HDR,
      state: s === S_ALLOCATED ? 'allocated' : s === S_QUARANTINED ? 'quarantined' : 'free',
      words: o.object_size.get(h),
      slotWords,
      cache: cache === 0 ? `kmalloc-${Math.max(8, slotWords * 4)}` : mem.stringAt(cache),
      alloc: track(o.alloc_track),
      free: s === S_ALLOCATED ? undefined : track(o.free_track),
    };
  }

  // ---- mutations: only from a point's perform ----

  private pushFree(h: number): void {
    const o = this.hdr;
    const c = o.size_class.get(h);
    o.state.set(h, S_FREE);
    o.next.set(h, this.meta.freelist.get(this.arena, c));
    this.meta.freelist.set(this.arena, c, h - this.data + 1);
  }

  private popFree(c: number): number {
    const head = this.meta.freelist.get(this.arena, c);
    if (head === 0) return 0;
    const h = this.data + head - 1;
    this.meta.freelist.set(this.arena, c, this.hdr.next.get(h));
    this.hdr.next.set(h, 0);
    return h;
  }

  private carve(c: number): number {
    const used = this.used;
    const need = HDR + (1 << c);
    if (used + need > this.dataWords) return 0;
    this.meta.bump.set(this.arena, used + need);
    const h = this.data + used;
    this.hdr.size_class.set(h, c);
    return h;
  }

  /** The quarantine's oldest object becomes reusable. */
  private evictOldest(): void {
    const m = this.meta;
    const a = this.arena;
    const count = m.quarantine_count.get(a);
    if (count === 0) return;
    const head = m.quarantine_head.get(a);
    const h = this.data + m.global_quarantine.get(a, head) - 1;
    m.global_quarantine.set(a, head, 0);
    m.quarantine_head.set(a, (head + 1) % this.quarantine);
    m.quarantine_count.set(a, count - 1);
    this.pushFree(h);
  }

  private quarantinePut(h: number): void {
    if (this.quarantine === 0 || !this.k.enabled('kasan')) {
      this.pushFree(h);
      return;
    }
    const m = this.meta;
    const a = this.arena;
    if (m.quarantine_count.get(a) === this.quarantine) this.evictOldest();
    const count = m.quarantine_count.get(a);
    const head = m.quarantine_head.get(a);
    m.global_quarantine.set(a, (head + count) % this.quarantine, h - this.data + 1);
    m.quarantine_count.set(a, count + 1);
    this.hdr.state.set(h, S_QUARANTINED);
  }

  allocate(t: KTask, words: number, cache: string | undefined, zero: boolean): number {
    const f = this.failslab;
    if (f && cache === f.cache && Atomics.add(this.i32, this.k.mem.statics + f.counter, 1) + 1 === f.nth) return 0;
    let c = 1;
    while (1 << c < words) c++;
    if (c > KMALLOC_SHIFT_HIGH || HDR + (1 << c) > this.dataWords) return 0;
    let h = this.popFree(c) || this.carve(c);
    // Memory pressure drains the quarantine (oldest first) before an allocation fails.
    while (h === 0 && this.meta.quarantine_count.get(this.arena) > 0) {
      this.evictOldest();
      h = this.popFree(c);
    }
    if (h === 0) return 0;
    const o = this.hdr;
    const mem = this.k.mem;
    o.state.set(h, S_ALLOCATED);
    o.object_size.set(h, words);
    o.cache.set(h, cache === undefined ? 0 : mem.intern(cache));
    o.alloc_track.pid.set(h, t.pid);
    o.alloc_track.comm.set(h, mem.intern(t.comm));
    o.alloc_track.stack.set(h, t.internedChain(mem));
    o.free_track.pid.set(h, 0);
    o.free_track.comm.set(h, 0);
    o.free_track.stack.set(h, 0);
    o.flags.set(h, 0);
    if (zero) this.i32.fill(0, h + HDR, h + HDR + (1 << c));
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
    if (this.hdr.state.get(h) !== S_ALLOCATED) {
      if (k.enabled('kasan')) k.report(freeReport(k, t, 'double-free', obj, this.info(h)));
      return;
    }
    // Other checkers (RCU: readers may still hold it) look at it while it is still allocated.
    k.freeing(t, obj, env);
    const tr = this.hdr.free_track;
    const mem = k.mem;
    tr.pid.set(h, t.pid);
    tr.comm.set(h, mem.intern(t.comm));
    tr.stack.set(h, t.internedChain(mem));
    this.quarantinePut(h);
  }

  setFlag(obj: number, flag: number): void {
    const h = this.header(obj);
    if (h !== undefined) this.hdr.flags.set(h, this.hdr.flags.get(h) | flag);
  }

  // ---- footprints (footprint.ts): the words each operation will touch, computed from memory as it is now ----
  // Pure: they read as the operation would and write nothing. The threaded runtime evaluates them before the
  // step locks and again under its locks, so what they read to decide (a free list's head, an object's state)
  // is itself declared.

  /**
   * The words header(obj) reads to find obj's header (the bump mark; a state word that is no header's), appended
   * to out; the header when obj is an object, whose own words the caller declares as it uses them.
   */
  headerFootprint(obj: number, out: number[]): number | undefined {
    const h = obj - HDR;
    if (!Number.isInteger(obj) || h < this.data) return undefined;
    out.push(read(this.meta.bump.addr(this.arena)));
    if (obj >= this.data + this.used) return undefined;
    if (this.header(obj) !== undefined) return h;
    out.push(read(this.hdr.state.addr(h)));
    return undefined;
  }

  /** Every word of header h, read or written (info() reads them all; alloc and free write most). */
  headerWords(h: number, write: boolean, out: number[]): void {
    for (let w = h; w < h + HDR; w++) out.push(write ? w : read(w));
  }

  /** What kasanAccess(obj, field) reads: the header's state and size, all of it when it reports. */
  kasanFootprint(obj: number, field: number, out: number[]): boolean {
    if (obj === 0) return false;
    const h = this.headerFootprint(obj, out);
    if (h === undefined) return false;
    const inBounds = Number.isInteger(field) && field >= 0 && field < this.hdr.object_size.get(h);
    if (!inBounds || (this.hdr.state.get(h) !== S_ALLOCATED && this.k.enabled('kasan'))) this.headerWords(h, false, out);
    else out.push(read(this.hdr.state.addr(h)), read(this.hdr.object_size.addr(h)));
    return inBounds;
  }

  /** allocate()'s words: failslab's count, the free list or bump mark (or the quarantine it drains), the object. */
  allocFootprint(t: KTask, words: number, cache: string | undefined, zero: boolean, out: number[]): number[] {
    const f = this.failslab;
    if (f && cache === f.cache) {
      const counter = this.k.mem.statics + f.counter;
      out.push(counter);
      if ((this.i32[counter] as number) + 1 === f.nth) return out;
    }
    let c = 1;
    while (1 << c < words) c++;
    if (c > KMALLOC_SHIFT_HIGH || HDR + (1 << c) > this.dataWords) return out;
    const h = this.takeFootprint(c, out);
    if (h === 0) return out;
    this.headerWords(h, true, out);
    const chain = t.frames.join('\n');
    this.k.mem.internFootprint(cache === undefined ? [t.comm, chain] : [cache, t.comm, chain], out);
    if (zero) for (let w = h + HDR; w < h + HDR + (1 << c); w++) out.push(w);
    return out;
  }

  /** The words popFree(c) || carve(c) and the pressure loop touch; the header allocate will use, or 0. */
  private takeFootprint(c: number, out: number[]): number {
    const m = this.meta;
    const a = this.arena;
    const list = m.freelist.addr(a, c);
    const head = m.freelist.get(a, c);
    if (head !== 0) {
      out.push(list);
      return this.data + head - 1;
    }
    const bump = m.bump.addr(a);
    if (this.used + HDR + (1 << c) <= this.dataWords) {
      out.push(read(list), bump);
      return this.data + this.used;
    }
    let count = m.quarantine_count.get(a);
    if (count === 0) {
      out.push(read(list), read(bump), read(m.quarantine_count.addr(a)));
      return 0;
    }
    // Memory pressure: the quarantine drains oldest first until an object of class c is free.
    out.push(list, read(bump), m.quarantine_count.addr(a), m.quarantine_head.addr(a));
    const lists = [c];
    for (let at = m.quarantine_head.get(a); count > 0; at = (at + 1) % this.quarantine, count--) {
      out.push(m.global_quarantine.addr(a, at));
      const q = this.data + m.global_quarantine.get(a, at) - 1;
      const qc = this.hdr.size_class.get(q);
      if (qc === c) return q;
      out.push(read(this.hdr.size_class.addr(q)), this.hdr.state.addr(q), this.hdr.next.addr(q));
      if (!lists.includes(qc)) {
        lists.push(qc);
        out.push(m.freelist.addr(a, qc));
      }
    }
    return 0;
  }

  /** free()'s words: the header (all of it), the free hooks' reads, the interned track, the quarantine. */
  freeFootprint(t: KTask, obj: number, out: number[]): number[] {
    if (obj === 0) return out;
    const h = this.headerFootprint(obj, out);
    if (h === undefined) return out;
    if (this.hdr.state.get(h) !== S_ALLOCATED) {
      this.headerWords(h, false, out);
      return out;
    }
    this.k.freeingFootprint(obj, out);
    this.headerWords(h, true, out);
    this.k.mem.internFootprint([t.comm, t.frames.join('\n')], out);
    const m = this.meta;
    const a = this.arena;
    if (this.quarantine === 0 || !this.k.enabled('kasan')) {
      out.push(m.freelist.addr(a, this.hdr.size_class.get(h)));
      return out;
    }
    out.push(m.quarantine_count.addr(a), m.quarantine_head.addr(a));
    let count = m.quarantine_count.get(a);
    let head = m.quarantine_head.get(a);
    if (count === this.quarantine) {
      // evictOldest: its ring entry is the one the new entry takes.
      const q = this.data + m.global_quarantine.get(a, head) - 1;
      out.push(read(this.hdr.size_class.addr(q)), this.hdr.state.addr(q), this.hdr.next.addr(q), m.freelist.addr(a, this.hdr.size_class.get(q)));
      head = (head + 1) % this.quarantine;
      count--;
    }
    out.push(m.global_quarantine.addr(a, (head + count) % this.quarantine));
    return out;
  }

  /** setFlag()'s words: finding the header, then its flags. */
  flagFootprint(obj: number, out: number[]): number[] {
    const h = this.headerFootprint(obj, out);
    if (h !== undefined) out.push(this.hdr.flags.addr(h));
    return out;
  }

  // ---- reads ----

  /** Every object carved so far, in address order. */
  *objects(): Generator<number> {
    const end = this.data + this.used;
    for (let h = this.data; h < end; h += HDR + (1 << this.hdr.size_class.get(h))) yield h;
  }

  /** kmemleak at teardown: every object still allocated is reported (nothing freed it by the end of the run). */
  private kmemleak(): void {
    const k = this.k;
    // A run that left tasks blocked holds what they hold (kmemleak would find it referenced): not judged.
    if (!k.enabled('leaks') || k.tasksLeftBlocked) return;
    let n = 0;
    for (const h of this.objects()) {
      if (this.hdr.state.get(h) !== S_ALLOCATED || (this.hdr.flags.get(h) & OBJECT_GREY) !== 0) continue;
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
  return yield* k.stepOn(
    t,
    `${zero ? 'kzalloc' : 'kmalloc'}(${words}${cache === undefined ? '' : `, ${cache}`})`,
    () => s.allocFootprint(t, words, cache, zero, []),
    () => s.allocate(t, words, cache, zero),
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
  const free = (env: StepEnv): void => s.free(t, obj, env);
  // A free hook that does not say what it reads (rcu.ts's reader table, …) leaves kfree on the coarse lock.
  const step = k.freeHooksDeclared ? k.stepOn(t, 'kfree', () => s.freeFootprint(t, obj, []), free) : k.step(t, 'kfree', free);
  yield* k.call(t, 'kfree', step);
}

/** kmemleak_not_leak(obj): an object meant to live past teardown (a boot-time allocation). */
export function* kmemleak_not_leak(k: Kernel, t: KTask, obj: number): KGen {
  const s = slab(k);
  yield* k.stepOn(
    t,
    'kmemleak_not_leak',
    () => s.flagFootprint(obj, []),
    () => s.setFlag(obj, OBJECT_GREY),
  );
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
  const st = s.hdr.state.get(h);
  const words = s.hdr.object_size.get(h);
  if (!Number.isInteger(field) || field < 0 || field >= words) {
    if (k.enabled('kasan')) k.report(accessReport(k, t, 'slab-out-of-bounds', abs, write, s.info(h)));
    return false;
  }
  if (st !== S_ALLOCATED && k.enabled('kasan')) k.report(accessReport(k, t, 'slab-use-after-free', abs, write, s.info(h)));
  return true;
}

/**
 * The words kasanAccess(k, t, obj, field, write) reads (footprint.ts's encoding), appended to out: the bump mark
 * and the object's state and size, its whole header when the access will be reported. Computed from memory as
 * it is now (pure): evaluate it in a point's footprint function (k.stepOn(t, label, () => …, perform)).
 */
export function kasanFootprint(k: Kernel, obj: number, field: number, out: number[] = []): number[] {
  slab(k).kasanFootprint(obj, field, out);
  return out;
}

/**
 * The words objLoad(k, t, obj, field) (write: objStore) touches: KASAN's check and, when the access goes ahead,
 * the word itself, read or written. Computed from memory as it is now, as kasanFootprint.
 */
export function slabObjectFootprint(k: Kernel, obj: number, field: number, write: boolean, out: number[] = []): number[] {
  if (slab(k).kasanFootprint(obj, field, out)) out.push(write ? obj + field : read(obj + field));
  return out;
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
  return yield* k.stepOn(
    t,
    `READ_ONCE(${field})`,
    () => slabObjectFootprint(k, obj, field, false),
    () => objLoad(k, t, obj, field),
  );
}

/** WRITE_ONCE(obj->field, v): a racy write, a scheduling point of its own. */
export function* objWriteOnce(k: Kernel, t: KTask, obj: number, field: number, v: number): KGen {
  yield* k.stepOn(
    t,
    `WRITE_ONCE(${field})`,
    () => slabObjectFootprint(k, obj, field, true),
    () => objStore(k, t, obj, field, v),
  );
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
    const st = s.hdr.state.get(h);
    if (st === S_ALLOCATED) allocated++;
    else if (st === S_QUARANTINED) quarantined++;
    else free++;
  }
  return { allocated, quarantined, free, usedWords: s.used };
}
