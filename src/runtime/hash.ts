// Small, stable, non-cryptographic hashes: trace records carry 32-bit digests of event types and actor states,
// and the same string must hash the same in every thread and every run.
import { hash } from 'node:crypto';

/** FNV-1a over the UTF-16 code units of a string, as a signed 32-bit integer. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** murmur3's fmix32 finaliser: spreads the bits of one 32-bit value. */
export function mix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** Combine a running digest with one more value (order-sensitive). */
export function combine(h: number, v: number): number {
  return mix32((h ^ (v | 0)) + 0x9e3779b9);
}

/** SHA-256 of an Int32Array's bytes, hex, first 16 characters: the printed trace hash. */
export function digestInts(ints: Int32Array): string {
  // The one-shot crypto.hash: a createHash object costs more than hashing a short trace.
  return hash('sha256', new Uint8Array(ints.buffer, ints.byteOffset, ints.byteLength), 'hex').slice(0, 16);
}
