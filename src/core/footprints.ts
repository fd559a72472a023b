// The footprints of the core's scheduling points (docs/threaded.md, issue #19): the shared-memory words a step
// of iommu.c, iommu-sva.c, io-pgfault.c, … reads and writes, so that the threaded runtime locks only those
// words' stripes instead of taking the coarse fallback lock. A field of a slab object is read or written with
// KASAN's check of the object in front of it (objLoad / objStore: kasanAccess), so an object's footprint
// carries the words KASAN reads too. Entries: footprint.ts's encoding (w written, read(w) only read).
import type { KTask } from '../kernel/context.js';
import type { Kernel } from '../kernel/kernel.js';
import { TRACK_WORDS } from '../kernel/kmemleak.js';
import { mmBase, type MmStruct } from '../kernel/mm/mm.js';
import { MMU_NOTIFIER, MMU_NOTIFIER_TABLE, type MmuNotifiers } from '../kernel/mm/mmu_notifier.js';
import { slabObjectWords } from '../kernel/slab.js';
import { read } from '../runtime/footprint.js';

/** Words of a slab object's header (slab.ts's struct slab_object: an object of one word takes HDR + 1). */
const HDR = slabObjectWords(1) - 1;

/**
 * The words kasanAccess reads to check an access to obj: the arena's bump mark (is obj carved?), the object's
 * header state and object_size. A NULL obj reads nothing (the oops is reported without a read). The report of a
 * bad access also reads the header's tracks and the stack depot's strings: those are written only with the
 * state word (kzalloc, kfree), so the read of state orders them.
 * TODO(integrate): replace by mem's kasanFootprint.
 */
export function kasanReadsFootprint(k: Kernel, obj: number, out: number[] = []): number[] {
  if (obj <= 0) return out;
  const h = obj - HDR;
  out.push(read(k.mem.arena), read(h), read(h + 1));
  return out;
}

/**
 * The footprint of plain accesses to fields of the slab object obj (objLoad / objStore): `reads` only read,
 * `writes` written (or read and written), with KASAN's reads of the object. Appended to `out` when given.
 */
export function objectFootprint(k: Kernel, obj: number, reads: readonly number[], writes: readonly number[] = [], out: number[] = []): number[] {
  kasanReadsFootprint(k, obj, out);
  if (obj <= 0) return out;
  for (const f of reads) out.push(read(obj + f));
  for (const f of writes) out.push(obj + f);
  return out;
}

/** Fields `from` .. `from + n - 1` of an object (a struct's array). */
export function fieldRange(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

/**
 * What subscriptionOf(k, n, opsId, data) reads (mmu_notifier.ts: the subscription table scanned for a live slot of
 * these ops and data): each slot's state, and the ops and data of the slots in use (all of them: where the scan stops is not
 * worth repeating). Computed: call it under the step.
 * TODO(integrate): replace by mm's footprint of subscriptionOf.
 */
export function subscriptionOfFootprint(k: Kernel, n: MmuNotifiers, opsId: number): number[] {
  const out: number[] = [];
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = k.mem.statics + n.off + MMU_NOTIFIER_TABLE.words + (sub - 1) * MMU_NOTIFIER.words;
    out.push(read(n.mn.state.addr(a)));
    if (n.mn.state.get(a) === 0) continue;
    out.push(read(n.mn.ops.addr(a)));
    if (n.mn.ops.get(a) === opsId) out.push(read(n.mn.data.addr(a)));
  }
  return out;
}

/** What a message of the mm's state reads (mmStateCode, mmPasid): mm->state and mm->pasid. */
export function mmStateFootprint(k: Kernel, mm: MmStruct): number[] {
  const base = mmBase(k, mm);
  return [read(mm.view.state.addr(base)), read(mm.view.pasid.addr(base))];
}

/** Strings a step interns before the one in hand: the heap words and table slots they take (internFootprint). */
export interface InternedBefore {
  words: number;
  readonly slots: number[];
}

/**
 * What k.mem.intern(s) touches when this thread has not met s yet (memory.ts's lookup): the table slots it probes,
 * read — the string an occupied slot names was written with the slot, so the slot's order covers it — and, when
 * s is new, the free slot, the heap's pool_used (the region header's first word) and the words the string takes,
 * written. `before`: what earlier interns of the same step took (a step may intern several new strings).
 * Computed: call it under the step.
 * TODO(integrate): replace by mem's internFootprint.
 */
export function internFootprint(k: Kernel, s: string, out: number[] = [], before: InternedBefore = { words: 0, slots: [] }): number[] {
  const mem = k.mem;
  const i32 = k.i32;
  const mask = mem.layout.stringSlots - 1;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  for (let probe = 0, slot = h & mask; probe <= mask; probe++, slot = (slot + 1) & mask) {
    const at = mem.stringTable + slot;
    const id = i32[at] as number;
    // A slot an earlier intern of the step took holds another string (one that did not match: it was new).
    if (id === 0 && !before.slots.includes(at)) {
      const used = (i32[mem.base] as number) + before.words;
      out.push(at, mem.base);
      for (let i = 0; i <= s.length; i++) out.push(mem.stringHeap + used + 1 + i);
      before.words += s.length + 1;
      before.slots.push(at);
      return out;
    }
    // (A slot taken by an earlier intern of the step is declared written already.)
    if (id !== 0) out.push(read(at));
    if (id !== 0 && mem.stringAt(id) === s) return out;
  }
  return out;
}

/** What setAllocTrack(k, t, at) touches: the task's comm and call chain interned, the track's words written. */
export function allocTrackFootprint(k: Kernel, t: KTask, at: number, out: number[] = []): number[] {
  const before: InternedBefore = { words: 0, slots: [] };
  internFootprint(k, t.comm, out, before);
  internFootprint(k, t.frames.join('\n'), out, before);
  for (let i = 0; i < TRACK_WORDS; i++) out.push(at + i);
  return out;
}
