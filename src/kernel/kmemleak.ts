// kmemleak for objects the model keeps in static tables rather than in the slab (a bond, a PASID's record): the
// allocation track is kept beside the object, as the slab keeps it in its header, and at teardown an object its
// owner finds unreferenced is reported in kmemleak's words (mm/kmemleak.c, print_unreferenced), with one line
// saying what should have freed it.
import type { KTask } from './context.js';
import type { KernelFinding } from './findings.js';
import { leakReport, type SlabTrack } from './kasan.js';
import type { Kernel } from './kernel.js';

/** Words of an allocation track: comm (interned), pid, call chain (interned). */
export const TRACK_WORDS = 3;

/** Record t as the allocator of the object whose track starts at `at` (absolute; call inside a perform). */
export function setAllocTrack(k: Kernel, t: KTask, at: number): void {
  const i32 = k.i32;
  i32[at] = k.mem.intern(t.comm);
  i32[at + 1] = t.pid;
  i32[at + 2] = k.mem.intern(t.chain().join('\n'));
}

export function allocTrack(k: Kernel, at: number): SlabTrack {
  const i32 = k.i32;
  const chain = k.mem.stringAt(i32[at + 2] as number);
  return { comm: k.mem.stringAt(i32[at] as number), pid: i32[at + 1] as number, chain: chain === '' ? [] : chain.split('\n') };
}

/** The report of an unreferenced static object of `words` words at `obj`, allocated as the track at `at` says. */
export function unreferenced(k: Kernel, obj: number, words: number, at: number, why: string): KernelFinding {
  const slot = 2 ** Math.max(3, Math.ceil(Math.log2(words * 4)));
  const info = { obj, state: 'allocated' as const, words, slotWords: slot / 4, cache: `kmalloc-${slot}`, alloc: allocTrack(k, at), free: undefined };
  const f = leakReport(k, info, Array.from(k.i32.subarray(obj, obj + Math.min(words, 8))));
  return { ...f, text: `${f.text}\n  iommu-sim: ${why}` };
}
