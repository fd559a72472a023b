// Kernel memory: one region of the run's shared Int32 memory (a SharedArrayBuffer, so worker threads really
// race on it). Statically declared objects — locks, chains, allocators a workload declares up front — get
// offsets from a bump allocator that every thread runs identically at construction, so no thread has to write
// shared memory to agree on where things are. Call chains recorded at run time (KASAN's alloc/free stacks,
// lockdep's acquire sites) go to a shared string table, written only inside performed points (under the
// sequencer). The slab arena (slab.ts) and the lockdep graph (lockdep.ts) are regions of this memory too.

import { InputError } from '../runtime/errors.js';
import { read } from '../runtime/footprint.js';
import { array, struct, type ViewOf, WordMemory, word } from './struct.js';

/** Model: the header of the kernel's region (the string heap is the stack depot's pool of call chains). */
const KERNEL_MEMORY_HEADER = struct('kernel_memory_header', {
  pool_used: word, // words used in the string heap
  _reserved: array(7),
});
export const HEADER_WORDS = KERNEL_MEMORY_HEADER.words;

export interface MemoryLayout {
  /** Words of the string heap (call chains). */
  readonly stringWords: number;
  /** Slots of the string hash table (a power of two). */
  readonly stringSlots: number;
  /** Words for statically declared objects. */
  readonly staticWords: number;
  /** Words of the slab arena. */
  readonly arenaWords: number;
  /** Words of the lockdep region. */
  readonly lockdepWords: number;
}

export const DEFAULT_LAYOUT: MemoryLayout = {
  stringWords: 1 << 18,
  stringSlots: 1 << 13,
  staticWords: 1 << 14,
  arenaWords: 1 << 18,
  lockdepWords: 1 << 14,
};

/**
 * The most simulated kernel memory a workload may ask for (words; 512 MiB): a run holds it once, a threaded
 * run's every worker maps it, and an exploration's pool threads hold two copies each.
 */
export const MAX_KERNEL_WORDS = 2 ** 27;

/**
 * Refuse a topology whose kernel memory exceeds MAX_KERNEL_WORDS (an InputError: exit 2), naming the terms
 * that take the most, so that the user knows which parameters to lower.
 */
export function refuseOversized(workload: string, words: number, terms: Readonly<Record<string, number>>): void {
  if (words <= MAX_KERNEL_WORDS) return;
  const mib = (w: number): string => `${Math.ceil((w * 4) / 2 ** 20)} MiB`;
  const biggest = Object.entries(terms)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 2)
    .map(([what, w]) => `${what}: ${mib(w)}`);
  throw new InputError(`${workload}: the topology needs ${mib(words)} of simulated kernel memory, more than the ${mib(MAX_KERNEL_WORDS)} the model holds (${biggest.join('; ')}): lower those parameters`);
}

export function layoutWords(l: MemoryLayout): number {
  return HEADER_WORDS + l.stringSlots + l.stringWords + l.lockdepWords + l.staticWords + l.arenaWords;
}

/** Where the string heap starts for a layout at `base`. */
export function stringHeapOffset(l: MemoryLayout, base: number): number {
  return base + HEADER_WORDS + l.stringSlots;
}

/** Where the static region starts for a layout at `base`: the same in every thread, attached or not. */
export function staticsOffset(l: MemoryLayout, base: number): number {
  return base + HEADER_WORDS + l.stringSlots + l.stringWords + l.lockdepWords;
}

export class KernelMemory {
  readonly i32: Int32Array;
  readonly stringTable: number;
  readonly stringHeap: number;
  readonly lockdep: number;
  readonly statics: number;
  readonly arena: number;
  /**
   * Ids of strings this thread interned or found, so that a string is hashed and compared with the table once
   * (ids never change: the table only grows).
   */
  private readonly interned = new Map<string, number>();
  private readonly header: ViewOf<typeof KERNEL_MEMORY_HEADER>;

  constructor(
    shared: Int32Array,
    readonly layout: MemoryLayout,
    /** Where the kernel's region starts in the run's shared memory. */
    readonly base: number,
  ) {
    this.i32 = shared;
    this.header = KERNEL_MEMORY_HEADER.bind(new WordMemory(shared));
    this.stringTable = base + HEADER_WORDS;
    this.stringHeap = stringHeapOffset(layout, base);
    this.lockdep = this.stringHeap + layout.stringWords;
    this.statics = staticsOffset(layout, base);
    this.arena = this.statics + layout.staticWords;
    if (this.arena + layout.arenaWords > shared.length) {
      throw new RangeError(`kernel memory needs ${layoutWords(layout)} words from ${base}, the run has ${shared.length}`);
    }
  }

  /**
   * Intern a string in the shared table and return its id (an offset), or 0 when the heap is full. Writes
   * shared memory: call only from a point's perform (under the sequencer).
   */
  intern(s: string): number {
    const known = this.interned.get(s);
    if (known !== undefined) return known;
    const id = this.lookup(s);
    if (id !== 0) this.interned.set(s, id);
    return id;
  }

  /**
   * The words intern() of each string in turn touches (footprint.ts's encoding), appended to `out`: nothing for
   * a string this thread already knows; the probed slots, read, when the table has it; the slots probed, the
   * free slot, the string's heap words and pool_used, written, when it goes in. Pure: it reads the table as
   * lookup() does and writes nothing. A string's heap words are not listed when it is only read: they are
   * written once, in the step that fills its slot, and never again, so a step that reads the slot (or a word
   * holding the id, written after) is ordered after them.
   */
  internFootprint(strings: readonly string[], out: number[] = []): number[] {
    // The heap as the earlier strings of the list will have left it (intern runs them in order, in one perform).
    let used = -1;
    // Slots and strings the earlier strings of the list will have filled (rarely any: a small array).
    const filled: (number | string)[] = [];
    for (const s of strings) {
      if (this.interned.has(s) || filled.includes(s)) continue;
      const mask = this.layout.stringSlots - 1;
      for (let probe = 0, slot = hashString(s) & mask; probe <= mask; probe++, slot = (slot + 1) & mask) {
        if (filled.includes(slot)) continue;
        const at = this.i32[this.stringTable + slot] as number;
        if (at !== 0) {
          out.push(read(this.stringTable + slot));
          if (this.stringAt(at) === s) break;
          continue;
        }
        const poolUsed = this.header.pool_used.addr(this.base);
        if (used < 0) used = this.header.pool_used.get(this.base);
        if (used + s.length + 1 >= this.layout.stringWords) {
          out.push(read(this.stringTable + slot), read(poolUsed));
          break;
        }
        out.push(this.stringTable + slot, poolUsed);
        for (let w = this.stringHeap + used + 1; w <= this.stringHeap + used + 1 + s.length; w++) out.push(w);
        used += s.length + 1;
        filled.push(slot, s);
        break;
      }
    }
    return out;
  }

  private lookup(s: string): number {
    const i32 = this.i32;
    const mask = this.layout.stringSlots - 1;
    const h = hashString(s);
    for (let probe = 0, slot = h & mask; probe <= mask; probe++, slot = (slot + 1) & mask) {
      const at = i32[this.stringTable + slot] as number;
      if (at === 0) {
        const used = this.header.pool_used.get(this.base);
        if (used + s.length + 1 >= this.layout.stringWords) return 0;
        const off = this.stringHeap + used + 1; // +1: id 0 means "none"
        i32[off] = s.length;
        for (let i = 0; i < s.length; i++) i32[off + 1 + i] = s.charCodeAt(i);
        this.header.pool_used.set(this.base, used + s.length + 1);
        i32[this.stringTable + slot] = off;
        return off;
      }
      if (this.stringAt(at) === s) return at;
    }
    return 0;
  }

  /** The string an id stands for ('' for 0). Reading is safe from any thread. */
  stringAt(id: number): string {
    if (id <= 0) return '';
    const n = this.i32[id] as number;
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.i32[id + 1 + i] as number);
    return s;
  }
}

/** FNV-1a of the string's UTF-16 code units: the table's hash. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** The words interning `strings` in turn (in one perform) touches: KernelMemory.internFootprint. */
export function internFootprint(k: { readonly mem: KernelMemory }, strings: readonly string[], out: number[] = []): number[] {
  return k.mem.internFootprint(strings, out);
}

/** Deterministic static allocation: run identically in every thread at workload construction. */
export class StaticAllocator {
  private used = 0;
  /** What each allocation is, in offset order (for messages that name a word). */
  private readonly objects: { readonly off: number; readonly what: string }[] = [];

  constructor(private readonly capacity: number) {}

  /** Offset (relative to the static region) of a new object of `words` words. */
  alloc(words: number, what: string): number {
    if (this.used + words > this.capacity) throw new RangeError(`kernel static memory full allocating ${what} (${this.capacity} words)`);
    const off = this.used;
    this.used += words;
    this.objects.push({ off, what });
    return off;
  }

  /** The static object holding the word at `off` (relative to the region) and the word's offset in it. */
  objectAt(off: number): { readonly what: string; readonly word: number } | undefined {
    let lo = 0;
    let hi = this.objects.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.objects[mid] as { off: number }).off <= off) lo = mid;
      else hi = mid - 1;
    }
    const o = this.objects[lo];
    return o && o.off <= off && off < this.used ? { what: o.what, word: off - o.off } : undefined;
  }
}
