// One lane of an actor thread's mailbox (mailbox.ts): a single-producer / single-consumer ring of fixed-size
// slots in a SharedArrayBuffer, carrying variable-length messages (an envelope kind/to/from plus payload
// bytes). Every thread that sends to a worker owns one lane of that worker's mailbox.
//
// Why a hand-rolled ring and not postMessage: postMessage costs a structured clone, a libuv wake-up and an
// event-loop turn per message (~1.6 µs one way, 75-110 µs a round trip on this machine); the simulator's hot
// paths (IOTLB lookups, PRI faults, invalidation fan-out) exchange millions of small messages, so the
// transport must be a couple of plain stores and one atomic per message, and an idle actor must sleep.
//
// Why a ring per producer and not one ring all producers share: the shared ring needed a CAS to reserve
// slots and a per-slot publication marker (Vyukov style) so that the consumer never read a half-written
// message of one producer while another had published after it; a push cost 81-101 ns against 36-44 ns for
// the bare SPSC ring of bench/raw-ring.ts (Node 24, one thread), and 0.3-0.5× its throughput between two
// threads. With one producer per ring:
// - The producer owns the tail and the consumer owns the head. A push is plain stores of the message and one
//   seq-cst exchange of the tail word, which publishes it: the consumer's seq-cst load of the tail orders
//   every byte written before. Positions are 31-bit counters that wrap (differences are taken `& POS`;
//   slots is a power of two, so `pos & mask` survives the wrap).
// - Bit 31 of the tail word is the consumer's "parked" mark (mailbox.ts sets it before it sleeps). The
//   exchange that publishes returns the old word, so the producer learns for free whether to ring the
//   doorbell: a separate load of a parked flag after the store cost 10-20 ns a push, a third of it.
// - The producer caches the head and reads the shared one only when the ring looks full.
// - tryAppend writes a message past the shared tail without publishing it; publish() then hands over every
//   appended message with one exchange (a batch, the `transport_64` case).
// - The consumer hands each payload to its callback in place, in shared memory, and gives its slots back
//   after the callback returned; only a payload that wraps round the ring's end is copied first, into a
//   private scratch buffer, so that every payload is one contiguous, 4-byte aligned range (Int32 fields
//   are read in place). Copying every payload cost a third of the consumer's time per message.
// - The head is handed back once per drain (or every quarter ring within a long one), not per message.
import type { Doorbell } from './mailbox.js';

const MAGIC = 0x4c414e45; // 'LANE'

/** Positions are 31-bit; bit 31 of the tail word is the consumer's parked mark. */
const POS = 0x7fffffff;
const PARKED = 1 << 31;

// Header words. The tail (producer) and the head (consumer) live 128 bytes apart so that neither false
// sharing nor the adjacent-line prefetcher couples the two threads.
const H_MAGIC = 0;
const H_SLOTS = 1;
const H_SLOT_BYTES = 2;
const H_TAIL = 32; // one past the last published position (producer) | PARKED (consumer)
const H_HEAD = 64; // first position not yet handed back (consumer)
const HEADER_WORDS = 96;
const HEADER_BYTES = HEADER_WORDS * 4;

// Message header inside its first slot (Int32 words).
const M_LEN = 0; // payload bytes
const M_KIND = 1;
const M_TO = 2;
const M_FROM = 3;
const M_PAYLOAD = 4;
/** Bytes in front of every payload: length and the kind/to/from envelope. */
export const ENVELOPE_BYTES = M_PAYLOAD * 4;

// Up to these sizes an element loop beats `subarray()` + `set()`, which allocates a view (~60 ns here).
const SMALL_COPY_BYTES = 192;

/** A message's payload is `buf[off, off+len)`; `ints` views the same memory as Int32 (see Ring.drain). */
export type MessageHandler = (kind: number, to: number, from: number, buf: Uint8Array, off: number, len: number, ints: Int32Array) => void;

function checkLayout(slots: number, slotBytes: number): void {
  if (!Number.isInteger(slots) || slots < 2 || slots > 1 << 24 || (slots & (slots - 1)) !== 0) {
    throw new RangeError(`ring: slots must be a power of two in [2, 2^24], got ${slots}`);
  }
  if (!Number.isInteger(slotBytes) || slotBytes < 32 || slotBytes % 8 !== 0 || slotBytes > 1 << 16) {
    throw new RangeError(`ring: slotBytes must be a multiple of 8 in [32, 65536], got ${slotBytes}`);
  }
  if (slots * slotBytes > 1 << 30) throw new RangeError('ring: more than 1 GiB of slots');
}

function checkRange(payload: Uint8Array, off: number, len: number): void {
  if ((off | 0) !== off || (len | 0) !== len || off < 0 || len < 0 || off + len > payload.length) {
    throw new RangeError(`ring: bad payload range off=${off} len=${len} of ${payload.length}`);
  }
}

function checkInts(ints: Int32Array, n: number): void {
  if ((n | 0) !== n || n < 0 || n > ints.length) throw new RangeError(`ring: bad int count ${n}`);
}

/** Size in bytes of the SharedArrayBuffer backing a ring of `slots` slots of `slotBytes` bytes. */
export function ringBytes(slots: number, slotBytes = 64): number {
  checkLayout(slots, slotBytes);
  return HEADER_BYTES + slots * slotBytes;
}

/** Allocates and formats a ring; hand `ring.sab` to the other thread, which attaches with `new Ring(sab)`. */
export function createRing(slots: number, slotBytes = 64): Ring {
  const sab = new SharedArrayBuffer(ringBytes(slots, slotBytes));
  const i32 = new Int32Array(sab);
  i32[H_SLOTS] = slots;
  i32[H_SLOT_BYTES] = slotBytes;
  Atomics.store(i32, H_MAGIC, MAGIC); // last: a Ring attached to a half-formatted buffer would be refused
  return new Ring(sab);
}

/**
 * Word access to a sender's payload. Reading `.buffer` and `.byteOffset` of a typed array costs ~20 ns each
 * in this V8, more than copying a small payload, so a word view is only built for a payload object seen
 * twice in a row (a sender encoding into one reused buffer) and then kept for it; other payloads are copied
 * bytewise or with `set()`. One per Ring view.
 */
class PayloadWords {
  private seen: Uint8Array | null = null;
  private cached: Uint8Array | null = null;
  private offset = 0;
  private length = 0; // of `words`
  words: Int32Array<ArrayBufferLike> = new Int32Array(0);

  /** Index in `words` of payload[off] when `len` bytes can be copied by words, else -1. */
  at(payload: Uint8Array, off: number, len: number): number {
    if (payload !== this.cached && !this.adopt(payload)) return -1;
    const at = this.offset + off;
    return (at & 3) === 0 && (at + len) >> 2 <= this.length ? at >> 2 : -1;
  }

  private adopt(payload: Uint8Array): boolean {
    if (payload !== this.seen) {
      this.seen = payload;
      return false;
    }
    const buf = payload.buffer;
    this.cached = payload;
    this.offset = payload.byteOffset;
    this.words = new Int32Array(buf, 0, buf.byteLength >> 2);
    this.length = this.words.length;
    return true;
  }
}

/**
 * Copies payload[off, off+len) to byte `dst` of the region [lo, end) of `u8`/`i32` (views of one buffer),
 * continuing at `lo` past `end`. `dst`, `lo` and `end` are multiples of 4.
 */
function copyIn(
  pw: PayloadWords,
  u8: Uint8Array,
  i32: Int32Array,
  dst: number,
  lo: number,
  end: number,
  payload: Uint8Array,
  off: number,
  len: number,
): void {
  const first = Math.min(len, end - dst); // a multiple of 4 whenever it is less than len
  if (len <= SMALL_COPY_BYTES) {
    const s0 = pw.at(payload, off, len);
    if (s0 >= 0) {
      const src = pw.words;
      const words = len >> 2;
      const d0 = dst >> 2;
      const a = Math.min(words, first >> 2);
      const l0 = (lo >> 2) - a;
      for (let i = 0; i < a; i++) i32[d0 + i] = src[s0 + i];
      for (let i = a; i < words; i++) i32[l0 + i] = src[s0 + i];
      for (let j = words << 2; j < len; j++) u8[j < first ? dst + j : lo - first + j] = payload[off + j];
      return;
    }
  }
  if (len <= 16) {
    for (let j = 0; j < first; j++) u8[dst + j] = payload[off + j];
    for (let j = first; j < len; j++) u8[lo - first + j] = payload[off + j];
  } else if (first === len) {
    u8.set(off === 0 && len === payload.length ? payload : payload.subarray(off, off + len), dst);
  } else {
    u8.set(payload.subarray(off, off + first), dst);
    u8.set(payload.subarray(off + first, off + len), lo);
  }
}

/**
 * One thread's view of a lane. Exactly one thread may push (tryAppend/tryPush/publish) and exactly one
 * other may drain; each side's state lives in that thread's Ring object. isEmpty/usedSlots/pendingMessages
 * may be asked from anywhere (exact when both sides are quiescent).
 */
export class Ring {
  readonly sab: SharedArrayBuffer;
  readonly slots: number;
  readonly slotBytes: number;
  /** Largest payload a single message may carry. */
  readonly maxPayload: number;

  private readonly i32: Int32Array;
  private readonly u8: Uint8Array;
  private readonly mask: number;
  private readonly slotWords: number;
  private readonly dataEndWord: number; // one past the last data word
  private readonly dataEndByte: number;
  private readonly oneSlotMax: number; // largest payload that fits one slot
  private readonly releaseSlots: number;
  // Producer-side state (valid in the producer thread only).
  private readonly bell: Doorbell | null;
  private readonly pw = new PayloadWords();
  private tail: number; // one past the last appended message
  private published: number; // the tail last stored for the consumer
  private cachedHead: number; // a head this view read: re-read only when the ring looks full
  // Consumer-side state (valid in the consumer thread only).
  private head: number;
  private scratchU8: Uint8Array | null = null;
  private scratchI32: Int32Array | null = null;

  /** `bell`: the doorbell a producer rings after publishing (a lane of a Mailbox); none for a bare ring. */
  constructor(sab: SharedArrayBuffer, bell: Doorbell | null = null) {
    if (!(sab instanceof SharedArrayBuffer)) throw new TypeError('ring: expected a SharedArrayBuffer');
    const i32 = new Int32Array(sab);
    if (sab.byteLength < HEADER_BYTES || Atomics.load(i32, H_MAGIC) !== MAGIC) {
      throw new TypeError('ring: buffer is not a formatted ring (use createRing)');
    }
    const slots = i32[H_SLOTS];
    const slotBytes = i32[H_SLOT_BYTES];
    checkLayout(slots, slotBytes);
    if (sab.byteLength !== HEADER_BYTES + slots * slotBytes) throw new TypeError('ring: buffer size mismatch');
    this.sab = sab;
    this.slots = slots;
    this.slotBytes = slotBytes;
    this.maxPayload = slots * slotBytes - ENVELOPE_BYTES;
    this.i32 = i32;
    this.u8 = new Uint8Array(sab);
    this.mask = slots - 1;
    this.slotWords = slotBytes >> 2;
    this.dataEndWord = HEADER_WORDS + slots * this.slotWords;
    this.dataEndByte = HEADER_BYTES + slots * slotBytes;
    this.oneSlotMax = slotBytes - ENVELOPE_BYTES;
    this.releaseSlots = Math.max(1, slots >> 2);
    this.bell = bell;
    this.head = Atomics.load(i32, H_HEAD);
    this.cachedHead = this.head;
    this.tail = Atomics.load(i32, H_TAIL) & POS;
    this.published = this.tail;
  }

  /** Slots a message with a payload of `len` bytes occupies; RangeError if it cannot fit the ring at all. */
  slotsFor(len: number): number {
    if (len <= this.oneSlotMax) return 1;
    const k = Math.ceil((ENVELOPE_BYTES + len) / this.slotBytes);
    if (k > this.slots) {
      throw new RangeError(`ring: a ${len}-byte payload needs ${k} slots, the ring has ${this.slots}`);
    }
    return k;
  }

  // ---------------------------------------------------------------------------------------------- producer

  /** True when k more slots fit behind this producer's tail; reads the shared head only if they seem not to. */
  private room(k: number): boolean {
    if (((this.tail - this.cachedHead) & POS) + k <= this.slots) return true;
    this.cachedHead = Atomics.load(this.i32, H_HEAD);
    return ((this.tail - this.cachedHead) & POS) + k <= this.slots;
  }

  /** Writes the envelope of a message at the tail and returns its payload's first word. */
  private begin(kind: number, to: number, from: number, len: number): number {
    const i32 = this.i32;
    const w = HEADER_WORDS + (this.tail & this.mask) * this.slotWords;
    i32[w + M_LEN] = len;
    i32[w + M_KIND] = kind;
    i32[w + M_TO] = to;
    i32[w + M_FROM] = from;
    return w + M_PAYLOAD; // within the first slot: a slot is at least 8 words
  }

  /**
   * Writes one message whose payload is `payload[off, off+len)` behind the tail, unpublished until the next
   * publish() or tryPush(). Returns false when the ring has no room (the caller keeps the message: nothing
   * is ever overwritten or dropped; publish what was appended before waiting for room). Producer only.
   */
  tryAppend(kind: number, to: number, from: number, payload: Uint8Array, off = 0, len: number = payload.length - off): boolean {
    checkRange(payload, off, len);
    const k = len <= this.oneSlotMax ? 1 : this.slotsFor(len);
    if (!this.room(k)) return false;
    const d0 = this.begin(kind, to, from, len);
    const i32 = this.i32;
    const s0 = len <= SMALL_COPY_BYTES ? this.pw.at(payload, off, len) : -1;
    if (s0 >= 0 && d0 + ((len + 3) >> 2) <= this.dataEndWord) {
      // The common case inlined: an aligned small payload that does not reach the end of the data area.
      const src = this.pw.words;
      const words = len >> 2;
      for (let i = 0; i < words; i++) i32[d0 + i] = src[s0 + i];
      if ((len & 3) !== 0) {
        const u8 = this.u8;
        for (let j = words << 2; j < len; j++) u8[(d0 << 2) + j] = payload[off + j];
      }
    } else {
      // The payload may run past the end of the data area: the rest continues at its start.
      copyIn(this.pw, this.u8, i32, d0 << 2, HEADER_BYTES, this.dataEndByte, payload, off, len);
    }
    this.tail = (this.tail + k) & POS;
    return true;
  }

  /** tryAppend with a payload of the first `n` Int32 values of `ints`, written word by word. */
  tryAppendInts(kind: number, to: number, from: number, ints: Int32Array, n: number): boolean {
    checkInts(ints, n);
    const k = n << 2 <= this.oneSlotMax ? 1 : this.slotsFor(n << 2);
    if (!this.room(k)) return false;
    const dst = this.begin(kind, to, from, n << 2);
    const i32 = this.i32;
    const first = Math.min(n, this.dataEndWord - dst);
    for (let i = 0; i < first; i++) i32[dst + i] = ints[i];
    for (let i = first; i < n; i++) i32[HEADER_WORDS - first + i] = ints[i];
    this.tail = (this.tail + k) & POS;
    return true;
  }

  /** Hands every appended message to the consumer with one store, and wakes it if it sleeps. Producer only. */
  publish(): void {
    const t = this.tail;
    if (t === this.published) return;
    this.published = t;
    // Also clears the parked mark: only the first publication after the consumer parked rings.
    if (Atomics.exchange(this.i32, H_TAIL, t) < 0) this.bell?.ring();
  }

  /** tryAppend, then publish: one message, handed over at once. */
  tryPush(kind: number, to: number, from: number, payload: Uint8Array, off = 0, len: number = payload.length - off): boolean {
    if (!this.tryAppend(kind, to, from, payload, off, len)) return false;
    this.publish();
    return true;
  }

  /** tryAppendInts, then publish. */
  tryPushInts(kind: number, to: number, from: number, ints: Int32Array, n: number): boolean {
    if (!this.tryAppendInts(kind, to, from, ints, n)) return false;
    this.publish();
    return true;
  }

  // ---------------------------------------------------------------------------------------------- consumer

  private scratch(): Int32Array {
    if (this.scratchI32 === null) {
      const buf = new ArrayBuffer(this.slots * this.slotBytes);
      this.scratchI32 = new Int32Array(buf);
      this.scratchU8 = new Uint8Array(buf);
    }
    return this.scratchI32;
  }

  /** True when a published message waits at the consumer's head (consumer thread only). */
  ready(): boolean {
    return (Atomics.load(this.i32, H_TAIL) & POS) !== this.head;
  }

  /**
   * Sets the parked mark and says whether the lane was empty then (consumer thread only): if it was, the
   * next publication sees the mark and rings the doorbell; if not, the caller must not sleep.
   */
  markParked(): boolean {
    return (Atomics.or(this.i32, H_TAIL, PARKED) & POS) === this.head;
  }

  /** Clears the parked mark, if no publication did (consumer thread only). */
  unmarkParked(): void {
    Atomics.and(this.i32, H_TAIL, POS);
  }

  /**
   * Delivers up to `max` published messages in order to `onMessage` and returns how many. The payload is
   * `buf[off, off+len)`, `ints` an Int32 view of the same memory (off is a multiple of 4), valid only until
   * the callback returns: consume or copy it. It is the ring's own shared memory unless the payload wraps
   * round the ring's end, when it is copied into a private scratch buffer first. Consumer thread only; the
   * callback must not call drain() again. If it throws, the messages after the one it threw for stay for the
   * next drain().
   */
  drain(max: number, onMessage: MessageHandler): number {
    const i32 = this.i32;
    let h = this.head;
    const t = Atomics.load(i32, H_TAIL) & POS; // one load: everything before it is published
    if (h === t || max <= 0) return 0;
    const u8 = this.u8;
    const mask = this.mask;
    const slotWords = this.slotWords;
    const oneSlotMax = this.oneSlotMax;
    const dataEndWord = this.dataEndWord;
    const releaseSlots = this.releaseSlots;
    let released = h;
    let delivered = 0;
    try {
      while (h !== t && delivered < max) {
        const w = HEADER_WORDS + (h & mask) * slotWords;
        const len = i32[w + M_LEN];
        const src = w + M_PAYLOAD;
        h = (h + (len <= oneSlotMax ? 1 : this.slotsFor(len))) & POS;
        delivered++;
        if (src + ((len + 3) >> 2) <= dataEndWord) {
          onMessage(i32[w + M_KIND], i32[w + M_TO], i32[w + M_FROM], u8, src << 2, len, i32);
        } else {
          const sc = this.unwrap(src, len);
          onMessage(i32[w + M_KIND], i32[w + M_TO], i32[w + M_FROM], this.scratchU8 as Uint8Array, 0, len, sc);
        }
        // The slots go back only now: the callback read the payload in place.
        if (((h - released) & POS) >= releaseSlots) {
          Atomics.store(i32, H_HEAD, h);
          released = h;
        }
      }
    } finally {
      this.head = h;
      if (released !== h) Atomics.store(i32, H_HEAD, h);
    }
    return delivered;
  }

  /** Copies a payload that runs past the ring's end into the scratch buffer, in one piece. */
  private unwrap(src: number, len: number): Int32Array {
    const sc = this.scratchI32 ?? this.scratch();
    const i32 = this.i32;
    const n = (len + 3) >> 2;
    const a = this.dataEndWord - src;
    for (let i = 0; i < a; i++) sc[i] = i32[src + i];
    for (let i = a; i < n; i++) sc[i] = i32[HEADER_WORDS - a + i];
    return sc;
  }

  /** True when no message is published and unconsumed (tail == head). */
  isEmpty(): boolean {
    return (Atomics.load(this.i32, H_TAIL) & POS) === Atomics.load(this.i32, H_HEAD);
  }

  /** Slots published and not yet handed back by the consumer. */
  usedSlots(): number {
    return ((Atomics.load(this.i32, H_TAIL) & POS) - Atomics.load(this.i32, H_HEAD)) & POS;
  }

  /**
   * Published messages waiting between head and tail, walked one by one. Exact in the consumer thread or
   * when both threads are quiescent (run-end accounting `sent == delivered + queued`).
   */
  pendingMessages(): number {
    const i32 = this.i32;
    const t = Atomics.load(i32, H_TAIL) & POS;
    let p = Atomics.load(i32, H_HEAD);
    let n = 0;
    while (p !== t) {
      p = (p + this.slotsFor(i32[HEADER_WORDS + (p & this.mask) * this.slotWords + M_LEN])) & POS;
      n++;
    }
    return n;
  }
}
