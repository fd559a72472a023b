// A step's footprint: the shared-memory words a scheduling point (or a shared event's handler) reads and
// writes. The threaded runtime makes the step atomic with respect to those words only (control.ts's lock
// stripes) and records it in each word's access order (hb.ts: LEAP, Huang/Liu/Zhang FSE 2010); the
// deterministic runtime can check a declaration against what the step really wrote (footprint-check.ts).
//
// One array of numbers, so that a point declares it without allocating more than the array: an entry w >= 0
// is a word the step writes (or reads and writes); an entry read(w) = -2 - w is a word it only reads. -1 is
// hb.ts's HB_ALL (the coarse fallback) and never an entry.

import type { WordRange } from './model.js';

/** The words a step touches; see the file header for the encoding. */
export type Footprint = readonly number[];

/** The entry for a word the step only reads. */
export function read(word: number): number {
  return -2 - word;
}

/** The entries for words the step only reads. */
export function reads(words: readonly number[]): number[] {
  return words.map(read);
}

/** Whether the entry is of a word only read. */
export function isRead(entry: number): boolean {
  return entry < -1;
}

/** The word an entry names. */
export function wordOf(entry: number): number {
  return entry >= 0 ? entry : -2 - entry;
}

/**
 * A point's or handler's footprint, computed: evaluated once before the step locks anything and once more under
 * the locks, so it must be pure (read shared memory, write nothing). The threaded runtime retries a step whose
 * second answer names a word the first did not (a walk that changed between the two), and the deterministic
 * runtime's checker (footprint-check.ts) refuses one that writes. Undefined: this time the step cannot say (it
 * would allocate a page-table page, say), and takes the coarse fallback.
 */
export type FootprintFn = () => Footprint | undefined;

/** Whether every entry of `inner` is covered by `outer` (a read by a read or a write, a write by a write). */
export function covers(outer: Footprint, inner: Footprint): boolean {
  for (const e of inner) {
    if (outer.includes(e)) continue;
    if (isRead(e) && outer.includes(wordOf(e))) continue;
    return false;
  }
  return true;
}

/** The union of two footprints, a word written in either written in the result. */
export function union(a: Footprint, b: Footprint): number[] {
  const at = new Map<number, number>();
  const out: number[] = [];
  for (const e of [...a, ...b]) {
    const w = wordOf(e);
    const i = at.get(w);
    if (i === undefined) {
      at.set(w, out.length);
      out.push(e);
    } else if (!isRead(e)) out[i] = w;
  }
  return out;
}

/**
 * The words of a workload's footprints that the threaded runtime orders nothing by (Workload.unorderedWords:
 * statistics, only ever added to atomically and read after the run): not locked, no happens-before edge.
 */
export class UnorderedWords {
  private readonly bounds: Int32Array;

  constructor(ranges: readonly WordRange[] = []) {
    this.bounds = Int32Array.from(ranges.flatMap((r) => [r.from, r.to]));
  }

  /** Whether the entry (a written word, or a read one) names such a word. */
  has(entry: number): boolean {
    const w = wordOf(entry);
    const b = this.bounds;
    for (let i = 0; i < b.length; i += 2) if (w >= (b[i] as number) && w < (b[i + 1] as number)) return true;
    return false;
  }

  get empty(): boolean {
    return this.bounds.length === 0;
  }
}
