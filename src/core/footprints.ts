// The footprints of the core's scheduling points (docs/threaded.md, issue #19): the shared-memory words a step
// of iommu.c, iommu-sva.c, io-pgfault.c, … reads and writes, so that the threaded runtime locks only those
// words' stripes instead of taking the coarse fallback lock. A field of a slab object is read or written with
// KASAN's check of the object in front of it (objLoad / objStore: kasanAccess), so an object's footprint
// carries the words KASAN reads too. Entries: footprint.ts's encoding (w written, read(w) only read).
import type { Kernel } from '../kernel/kernel.js';
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
