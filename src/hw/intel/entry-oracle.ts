// The torn-entry oracle: the hardware never uses a PASID-table entry that was not published whole. The driver
// publishes an entry's version when its write sequence completes (the point after which the hardware may use it:
// intel_pasid_setup_first_level's pasid_set_present, the end of intel_pasid_clear_entry, of a replace); every
// write of a sequence marks the entry as being written. Versions are numbered like a seqcount: odd while being
// written, even when whole. The entry the hardware assembles from its four 128-bit reads, when present, must
// equal a version that was whole at some instant between its first and its last read — the one current at the
// first read if none was published since, else one published in between (the record keeps the last two).
import type { DeviceInfo } from '../../core/types.js';
import { array, struct, word } from '../../kernel/struct.js';
import type { VtdUnit } from './hw.js';
import { dumpEntry, PASID_ENTRY_WORDS } from './pasid-entry.js';

/** model: the oracle's record of an entry's versions, next to the entry (one per PASID-table entry). */
export const ENTRY_VERSION = struct('pasid_entry_version', {
  seq: word, // even: the entry is whole (version seq); odd: a write sequence is in progress
  hash: word, // entryHash of the current version (seq, or seq - 1 while odd)
  prev_hash: word, // … of the version before it
  val: array(PASID_ENTRY_WORDS), // the current version's words (for the report)
});

/** A hash of an entry's words; the all-zero entry (a fresh table's) hashes to 0, as a fresh record holds. */
export function entryHash(words: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < PASID_ENTRY_WORDS; i++) h = Math.imul(h ^ (words[i] ?? 0), 0x01000193) ^ (h >>> 15);
  return h;
}

/** A write of {dev, pasid}'s entry begins or continues a write sequence (perform only, in the write's step). */
export function entryWriting(u: VtdUnit, dev: number, pasid: number): void {
  const v = u.view.version;
  const p = u.versionPtr(dev, pasid);
  const seq = v.seq.get(p);
  if ((seq & 1) === 0) v.seq.set(p, seq + 1);
}

/** The write sequence is complete: the entry as it is now is a version the hardware may use (perform only). */
export function entryPublish(u: VtdUnit, dev: number, pasid: number): void {
  const v = u.view.version;
  const p = u.versionPtr(dev, pasid);
  const words = u.entry(dev, pasid);
  const seq = v.seq.get(p);
  v.prev_hash.set(p, v.hash.get(p));
  v.hash.set(p, entryHash(words));
  for (let w = 0; w < PASID_ENTRY_WORDS; w++) v.val.set(p, w, words[w] as number);
  v.seq.set(p, (seq | 1) + 1);
}

/**
 * The hardware assembled `words` (present) for {dev, pasid}, its first read seeing version seq `seq1`: report
 * it unless it equals a version whole at some instant since. Returns whether it was torn.
 */
export function checkAssembled(u: VtdUnit, step: number, dev: DeviceInfo, pasid: number, words: readonly number[], hash: number, seq1: number): boolean {
  const v = u.view.version;
  const p = u.versionPtr(dev.index, pasid);
  const seq2 = v.seq.get(p);
  const cur = seq2 & ~1;
  // Versions published since the first read beyond the last two: the record cannot tell, so the oracle does not.
  if (cur - 4 >= seq1) return false;
  if (cur >= seq1 && hash === v.hash.get(p)) return false;
  if (cur - 2 >= seq1 && hash === v.prev_hash.get(p)) return false;
  const published = Array.from({ length: PASID_ENTRY_WORDS }, (_, w) => v.val.get(p, w));
  const title = `iommu-sim: torn PASID entry: ${u.name} used {${dev.name}, PASID ${pasid}} assembled from an entry being rewritten`;
  const lines = [
    title,
    `${u.name} fetched the 512-bit entry in four 128-bit reads (val[6..7], val[4..5], val[2..3], val[0..1]) while the`,
    'driver was writing it: what it assembled is present but is no version the driver published whole.',
    `  assembled:  ${dumpEntry(words)}`,
    `  published:  ${dumpEntry(published)} (version ${cur / 2}${(seq2 & 1) === 1 ? ', being rewritten' : ''})`,
    `  versions published between the first read and the last: ${Math.max(0, (cur - (seq1 & ~1)) / 2)}${(seq1 & 1) === 1 ? ' (the first read fell inside a write sequence)' : ''}`,
    'A present entry must not be rewritten in place: clear P, flush the PASID cache, IOTLB and device TLB, then write',
    'the new entry with P last (intel_pasid_tear_down_entry, intel_pasid_setup_first_level).',
  ];
  u.kernel.report({ kind: 'torn_entry', title, text: lines.join('\n'), step, where: u.name });
  return true;
}
