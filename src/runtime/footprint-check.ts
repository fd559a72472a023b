// Checks footprints (footprint.ts) against what the steps really do, in the deterministic runtime: around each
// step that declares one, the run's memory is copied, the step performed, and every word it changed must be
// declared written; a computed footprint must change nothing; the words a point's ready() watches must be
// declared. A wrong declaration is a data race the threaded runtime would really run (two steps on one word
// that their locks do not order) and a recording that might not replay, so a violation stops the run with an
// error naming the step and the word. Reads that are not declared cannot be seen by a diff; `watch` covers
// ready()'s, the threaded runtime's replay checks (scripts/record-replay.sh) the rest.
import { type Footprint, isRead, wordOf } from './footprint.js';

export class FootprintViolation extends Error {
  override readonly name = 'FootprintViolation';
}

/** Bytes compared at once before a changed block is searched word by word. */
const BLOCK = 4096;

export class FootprintChecker {
  private readonly before: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly beforeBytes: Uint8Array;
  /** Steps checked, and steps whose footprint was computed. */
  checked = 0;

  constructor(
    private readonly shared: Int32Array,
    /** Names a word for a message (the kernel's region, struct and field), when the workload can. */
    private readonly describe: (word: number) => string = (w) => `word ${w}`,
  ) {
    this.before = new Int32Array(shared.length);
    this.bytes = new Uint8Array(shared.buffer, shared.byteOffset, shared.byteLength);
    this.beforeBytes = new Uint8Array(this.before.buffer);
  }

  /** Evaluate a computed footprint, which must write nothing. */
  compute(what: string, fn: () => Footprint | undefined): Footprint | undefined {
    this.before.set(this.shared);
    const fp = fn();
    const changed = this.changed();
    if (changed.length > 0) throw new FootprintViolation(`${what}: its computed footprint wrote ${this.words(changed)}: a footprint function must only read`);
    return fp;
  }

  /** Run `step` and check that every word it changed is declared written in `fp`, and `watch` declared. */
  step<T>(what: string, fp: Footprint, watch: readonly number[] | undefined, step: () => T): T {
    if (watch) {
      const missing = watch.filter((w) => !fp.some((e) => wordOf(e) === w));
      if (missing.length > 0) throw new FootprintViolation(`${what}: ready() watches ${this.words(missing)}, not in its footprint`);
    }
    this.before.set(this.shared);
    const v = step();
    this.checked++;
    const undeclared = this.changed().filter((w) => !fp.some((e) => !isRead(e) && e === w));
    if (undeclared.length > 0) {
      const asRead = undeclared.filter((w) => fp.includes(-2 - w));
      const note = asRead.length > 0 ? ` (${asRead.length} of them declared as read only)` : '';
      throw new FootprintViolation(`${what}: wrote ${this.words(undeclared)}, not declared written in its footprint${note}`);
    }
    return v;
  }

  /** The words that differ from the copy taken before (whole blocks compared first: most are equal). */
  private changed(): number[] {
    const out: number[] = [];
    const a = this.bytes;
    const b = this.beforeBytes;
    for (let off = 0; off < a.length; off += BLOCK) {
      const end = Math.min(a.length, off + BLOCK);
      if (Buffer.compare(a.subarray(off, end), b.subarray(off, end)) === 0) continue;
      for (let w = off >> 2; w < end >> 2; w++) if (this.shared[w] !== this.before[w]) out.push(w);
    }
    return out;
  }

  private words(ws: readonly number[]): string {
    const shown = ws.slice(0, 6).map((w) => this.describe(w));
    return `${ws.length === 1 ? '' : `${ws.length} words: `}${shown.join(', ')}${ws.length > 6 ? ', …' : ''}`;
  }
}
