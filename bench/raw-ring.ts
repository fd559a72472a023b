// The physical limit the mailbox is measured against: the simplest possible single-producer /
// single-consumer ring of fixed 32-byte slots between two threads. Head and tail are Int32 words in a
// SharedArrayBuffer; there is no envelope, no variable length, no parked mark and no parking (the consumer
// spins). Whatever a mailbox lane (src/runtime/ring.ts) adds on top — the kind/to/from envelope, variable
// lengths, publication by exchange so that an idle consumer can sleep, several lanes per consumer — shows up
// as the gap between the two in bench/transport.ts.

/** Message size of the raw ring, in bytes and Int32 words. */
export const RAW_SLOT_BYTES = 32;
export const RAW_SLOT_WORDS = RAW_SLOT_BYTES >> 2;

// head and tail 128 bytes apart: each is written by one side only, and must not share a cache line (or an
// adjacent-line prefetch pair) with the other.
const R_HEAD = 0;
const R_TAIL = 32;
const R_HEADER_WORDS = 64;

export function rawRingBytes(slots: number): number {
  if (!Number.isInteger(slots) || slots < 2 || (slots & (slots - 1)) !== 0) {
    throw new RangeError(`raw ring: slots must be a power of two >= 2, got ${slots}`);
  }
  return (R_HEADER_WORDS + slots * RAW_SLOT_WORDS) * 4;
}

export class RawRing {
  readonly sab: SharedArrayBuffer;
  readonly slots: number;
  private readonly i32: Int32Array;
  private readonly mask: number;
  private cachedHead = 0; // producer's last view of head: re-read only when the ring looks full
  private head = 0; // consumer's private head
  private tail = 0; // producer's private tail

  static create(slots: number): RawRing {
    return new RawRing(new SharedArrayBuffer(rawRingBytes(slots)));
  }

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.i32 = new Int32Array(sab);
    this.slots = (this.i32.length - R_HEADER_WORDS) / RAW_SLOT_WORDS;
    this.mask = this.slots - 1;
    this.head = Atomics.load(this.i32, R_HEAD);
    this.tail = Atomics.load(this.i32, R_TAIL);
    this.cachedHead = this.head;
  }

  /** Spins until `n` slots are free (single producer). */
  private room(n: number): void {
    const t = this.tail;
    while (((t - this.cachedHead) | 0) + n > this.slots) this.cachedHead = Atomics.load(this.i32, R_HEAD);
  }

  /** Writes one 32-byte message (8 words of `msg` from `at`) and publishes it with its own tail store. */
  push1(msg: Int32Array, at = 0): void {
    this.room(1);
    const i32 = this.i32;
    const t = this.tail;
    const w = R_HEADER_WORDS + (t & this.mask) * RAW_SLOT_WORDS;
    for (let i = 0; i < RAW_SLOT_WORDS; i++) i32[w + i] = msg[at + i];
    this.tail = (t + 1) | 0;
    Atomics.store(i32, R_TAIL, this.tail);
  }

  /** Writes `count` consecutive messages from `msgs` and publishes them all with one tail store. */
  pushBatch(msgs: Int32Array, count: number): void {
    this.room(count);
    const i32 = this.i32;
    const mask = this.mask;
    let t = this.tail;
    for (let m = 0; m < count; m++) {
      const w = R_HEADER_WORDS + (t & mask) * RAW_SLOT_WORDS;
      const src = m * RAW_SLOT_WORDS;
      for (let i = 0; i < RAW_SLOT_WORDS; i++) i32[w + i] = msgs[src + i];
      t = (t + 1) | 0;
    }
    this.tail = t;
    Atomics.store(i32, R_TAIL, t);
  }

  /**
   * Consumes every message visible now (single consumer), folding each one's words into `sum[0]` so the
   * reads cannot be optimised away; returns how many. The head is handed back once per call.
   */
  drain(sum: Int32Array): number {
    const i32 = this.i32;
    const mask = this.mask;
    const t = Atomics.load(i32, R_TAIL);
    let h = this.head;
    const n = (t - h) | 0;
    if (n === 0) return 0;
    let s = sum[0];
    while (h !== t) {
      const w = R_HEADER_WORDS + (h & mask) * RAW_SLOT_WORDS;
      for (let i = 0; i < RAW_SLOT_WORDS; i++) s = (s + i32[w + i]) | 0;
      h = (h + 1) | 0;
    }
    sum[0] = s;
    this.head = h;
    Atomics.store(i32, R_HEAD, h);
    return n;
  }
}
