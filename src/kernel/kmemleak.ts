// kmemleak for objects the model keeps in static tables rather than in the slab (a bond, a PASID's record): the
// allocation track is kept beside the object, as the slab keeps it in its header, and at teardown an object its
// owner finds unreferenced is reported in kmemleak's words (mm/kmemleak.c, print_unreferenced), with one line
// saying what should have freed it.
import type { KTask } from './context.js';
import type { KernelFinding } from './findings.js';
import { leakReport, type SlabTrack } from './kasan.js';
import type { Kernel } from './kernel.js';
import { struct, word } from './struct.js';

/** What struct kmemleak_object keeps of its allocation: comm, pid and the stack (trace_handle), interned. */
export const KMEMLEAK_TRACK = struct('kmemleak_track', {
  comm: word,
  pid: word,
  trace_handle: word,
});

/** Words of an allocation track. */
export const TRACK_WORDS = KMEMLEAK_TRACK.words;

/** Record t as the allocator of the object whose track starts at `at` (absolute; call inside a perform). */
export function setAllocTrack(k: Kernel, t: KTask, at: number): void {
  const tr = k.view(KMEMLEAK_TRACK);
  tr.comm.set(at, k.mem.intern(t.comm));
  tr.pid.set(at, t.pid);
  tr.trace_handle.set(at, t.internedChain(k.mem));
}

/**
 * The words setAllocTrack(k, t, at) writes (footprint.ts's encoding), appended to out: the track's three words
 * and what interning t's comm and call chain puts in the stack depot. Pure: evaluate it in the caller's
 * footprint function, with the other words its perform touches.
 */
export function allocTrackFootprint(k: Kernel, t: KTask, at: number, out: number[] = []): number[] {
  for (let w = at; w < at + TRACK_WORDS; w++) out.push(w);
  return k.mem.internFootprint([t.comm, t.frames.join('\n')], out);
}

export function allocTrack(k: Kernel, at: number): SlabTrack {
  const tr = k.view(KMEMLEAK_TRACK);
  const chain = k.mem.stringAt(tr.trace_handle.get(at));
  return { comm: k.mem.stringAt(tr.comm.get(at)), pid: tr.pid.get(at), chain: chain === '' ? [] : chain.split('\n') };
}

/** The report of an unreferenced static object of `words` words at `obj`, allocated as the track at `at` says. */
export function unreferenced(k: Kernel, obj: number, words: number, at: number, why: string): KernelFinding {
  const slot = 2 ** Math.max(3, Math.ceil(Math.log2(words * 4)));
  const info = { obj, state: 'allocated' as const, words, slotWords: slot / 4, cache: `kmalloc-${slot}`, alloc: allocTrack(k, at), free: undefined };
  const f = leakReport(k, info, Array.from(k.i32.subarray(obj, obj + Math.min(words, 8))));
  return { ...f, text: `${f.text}\n  iommu-sim: ${why}` };
}
