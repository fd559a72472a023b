// Footprints (runtime/footprint.ts) of what the synchronisation primitives' points (rcu.ts, srcu.ts, xarray.ts,
// refcount.ts, ida.ts, notifier.ts, workqueue.ts, fs/file.ts) reach in other parts of the kernel model: the stack
// depot's interning, KASAN's look at a slab header, lockdep's share of an acquisition. They only read shared memory;
// those that append to `out` keep a point's footprint one small array (points are made at every step).
import { type Footprint, type FootprintFn, read } from '../runtime/footprint.js';
import type { StepEnv } from '../runtime/task.js';
import type { KTask, LockKind } from './context.js';
import type { Kernel, KGen } from './kernel.js';
import type { LockRef } from './lock.js';
import { slabObjectWords } from './slab.js';

/**
 * What k.mem.intern(s) of each string in turn (in one perform) touches, as its probe does it: the hash-table slots
 * it reads up to the string or an empty slot, and when it would insert there, that slot, the heap's used mark and
 * the words the string is copied to (the first insertion moves the next one's). The heap words of a string found
 * are written once, before its slot publishes it: the slot orders them.
 */
// TODO(integrate): replace by mem's internFootprint (memory.ts, the same signature)
export function internFootprint(k: Kernel, strings: readonly string[], out: number[] = []): number[] {
  const m = k.mem;
  const i32 = m.i32;
  const mask = m.layout.stringSlots - 1;
  // pool_used is the memory header's first word.
  let used = i32[m.base] as number;
  const inserted: [slot: number, s: string][] = [];
  for (const s of strings) {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    for (let probe = 0, slot = h & mask; probe <= mask; probe++, slot = (slot + 1) & mask) {
      const mine = inserted.find(([at]) => at === slot);
      if (mine) {
        if (mine[1] === s) break;
        continue;
      }
      const at = i32[m.stringTable + slot] as number;
      if (at === 0) {
        if (used + s.length + 1 >= m.layout.stringWords) {
          out.push(read(m.stringTable + slot), read(m.base));
          break;
        }
        out.push(m.stringTable + slot, m.base);
        const off = m.stringHeap + used + 1;
        for (let w = off; w <= off + s.length; w++) out.push(w);
        used += s.length + 1;
        inserted.push([slot, s]);
        break;
      }
      out.push(read(m.stringTable + slot));
      if (m.stringAt(at) === s) break;
    }
  }
  return out;
}

/**
 * What kasanAccess(k, t, obj, …) reads: the arena's bump mark (an object is one the allocator handed out when it
 * lies below it) and the object's header (its state and size, and for a report its tracks).
 */
// TODO(integrate): replace by mem's kasanFootprint (slab.ts, the same signature)
export function kasanFootprint(k: Kernel, obj: number, field: number, out: number[] = []): number[] {
  void field;
  if (obj === 0) return out;
  const arena = k.mem.arena;
  out.push(read(arena)); // kmalloc_arena.bump, its first word
  const hdr = slabObjectWords(1) - 1;
  if (obj - hdr < arena) return out;
  for (let w = obj - hdr; w < obj; w++) out.push(read(w));
  return out;
}

/**
 * The footprint of an acquire point of l whose perform touches `words` and records the acquisition with lockdep
 * (noteAcquired): undefined — the point keeps the coarse fallback — while lockdep's share is not known here.
 */
// TODO(integrate): replace by locks' acquirePointFootprint (lock.ts, the same signature), which gives lockdep's
// share (a chain this thread validated reads nothing of the graph) and makes these points declare.
export function acquirePointFootprint(
  k: Kernel,
  t: KTask,
  l: LockRef,
  kind: LockKind,
  words: Footprint | FootprintFn,
): FootprintFn | undefined {
  void k;
  void t;
  void l;
  void kind;
  void words;
  return undefined;
}

/** k.stepOn() on `footprint`, or k.step() (the coarse fallback) when it is undefined. */
// TODO(integrate): replace by locks' stepOnOrNot (lock.ts, the same signature)
export function stepOnOrNot<T>(
  k: Kernel,
  t: KTask,
  label: string,
  footprint: Footprint | FootprintFn | undefined,
  perform: (env: StepEnv) => T,
): KGen<T> {
  return footprint === undefined ? k.step(t, label, perform) : k.stepOn(t, label, footprint, perform);
}
