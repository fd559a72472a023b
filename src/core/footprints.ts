// The footprints of the core's scheduling points (docs/threaded.md, issue #19): the shared-memory words a step
// of iommu.c, iommu-sva.c, io-pgfault.c, … reads and writes, so that the threaded runtime locks only those
// words' stripes instead of taking the coarse fallback lock. A field of a slab object is read or written with
// KASAN's check of the object in front of it (objLoad / objStore: kasanAccess), so an object's footprint
// carries the words KASAN reads too. Entries: footprint.ts's encoding (w written, read(w) only read).
import type { Kernel } from '../kernel/kernel.js';
import { mmBase, type MmStruct } from '../kernel/mm/mm.js';
import { kasanFootprint } from '../kernel/slab.js';
import { read } from '../runtime/footprint.js';

/**
 * The footprint of plain accesses to fields of the slab object obj (objLoad / objStore): `reads` only read,
 * `writes` written (or read and written), with KASAN's reads of the object. Appended to `out` when given.
 */
export function objectFootprint(k: Kernel, obj: number, reads: readonly number[], writes: readonly number[] = [], out: number[] = []): number[] {
  if (obj <= 0) return out;
  // KASAN's check of the farthest field: the header's state and size, all of the header when it would report.
  kasanFootprint(k, obj, Math.max(0, ...reads, ...writes), out);
  for (const f of reads) out.push(read(obj + f));
  for (const f of writes) out.push(obj + f);
  return out;
}

/** Fields `from` .. `from + n - 1` of an object (a struct's array). */
export function fieldRange(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

/** What a message of the mm's state reads (mmStateCode, mmPasid): mm->state and mm->pasid. */
export function mmStateFootprint(k: Kernel, mm: MmStruct): number[] {
  const base = mmBase(k, mm);
  return [read(mm.view.state.addr(base)), read(mm.view.pasid.addr(base))];
}
