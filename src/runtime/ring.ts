// The mailbox of one actor thread: a multi-producer / single-consumer ring of fixed-size slots in a
// SharedArrayBuffer, carrying variable-length messages (an envelope kind/to/from plus payload bytes).
//
// Why a hand-rolled ring and not postMessage: postMessage costs a structured clone, a libuv wake-up and an
// event-loop turn per message (~1.6 µs one way, 75-110 µs a round trip on this machine); the simulator's hot
// paths (IOTLB lookups, PRI faults, invalidation fan-out) exchange millions of small messages, so the
// transport must be a couple of atomics and a copy per message, and an idle actor must sleep, not spin.
//
// What the design answers to (measured on Node 20 / V8 11.3, where every Atomics call is an out-of-line
// builtin costing 10-20 ns while a plain typed-array access costs 1-2 ns; so atomics are counted):
// - Producers reserve consecutive slots with one CAS on the shared tail. Positions are 31-bit counters that
//   wrap (differences are taken `& POS`; slots is a power of two, so `pos & mask` survives the wrap); the
//   tail word's top bit is the consumer's "parked" flag, so the reservation CAS also tells a producer
//   whether it must wake the consumer: the common push is one CAS and one store, nothing else.
// - Publication is Vyukov style: the first word of a message's first slot becomes `pos + 1` ("published for
//   position pos") with a seq-cst store after every other byte of the message is written; the consumer
//   reads it with a seq-cst load, so it never sees a half-written message. Free space is judged from the
//   consumer's head (cached by producers) rather than per-slot "free" sequences, as a message spans slots.
// - A continuation slot's first word holds payload bytes, which could by chance equal a later lap's marker;
//   so the consumer overwrites the first word of every continuation slot it consumed with a stale marker
//   before handing the space back. Every first word then holds either the marker of the lap just consumed
//   or the current lap's, never a look-alike.
// - A batch (RingBatch) is reserved with one CAS and published with one seq-cst store; its first message
//   says how many follow, so the consumer takes them without an atomic load each.
// - The consumer copies payloads into a PRIVATE scratch buffer before the callback: msgpackr's native
//   string extraction refuses shared memory and falls back to a slow path (~8 µs past ~180 bytes), while
//   the copy costs ~0.2 µs. It copies a whole run of ready messages with one memcpy, 4-byte aligned, so
//   Int32 fields can be read in place.
// - The head is handed back once per run (or every quarter ring within a long run), not per message.
// - An idle consumer spins briefly, then sets the parked bit and sleeps in Atomics.wait on the tail word.

const MAGIC = 0x52494e47; // 'RING'

/** Positions are 31-bit; bit 31 of the tail word is the consumer's parked flag. */
const POS = 0x7fffffff;
const PARKED = 1 << 31;

// Header words. Hot words written by different parties live 128 bytes apart so that neither false sharing
// nor the adjacent-line prefetcher couples producers (tail) with the consumer (head).
const H_MAGIC = 0;
const H_SLOTS = 1;
const H_SLOT_BYTES = 2;
const H_CLOSED = 3; // 1 once close() was called
const H_WAKE = 4; // a pending wake() permit, consumed by park()
const H_TAIL = 32; // next position to reserve (producers, CAS) | PARKED
const H_HEAD = 64; // first position not yet handed back by the consumer
const H_PARKS = 96; // statistics: times the consumer blocked
const H_NOTIFIES = 97; // statistics: notifies issued by producers
const HEADER_WORDS = 128;
const HEADER_BYTES = HEADER_WORDS * 4;

// Message header inside its first slot (Int32 words).
const M_SEQ = 0; // publication marker: (pos + 1) & POS
const M_LEN = 1; // payload bytes
const M_KIND = 2;
const M_TO = 3;
const M_FROM = 4;
const M_REST = 5; // messages of the same batch that follow this one, published together with it
const M_PAYLOAD = 6;
/** Bytes in front of every payload: publication word, length, kind/to/from envelope, batch count. */
export const ENVELOPE_BYTES = M_PAYLOAD * 4;

// Up to these sizes an element loop beats `subarray()` + `set()`, which allocates a view (~60 ns here).
const SMALL_COPY_BYTES = 192;
const SMALL_RUN_WORDS = 128;

export type ParkResult = 'message' | 'timeout' | 'closed';

export type MessageHandler = (kind: number, to: number, from: number, buf: Uint8Array, off: number, len: number) => void;

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

/** Allocates and formats a ring; hand `ring.sab` to other threads, which attach with `new Ring(sab)`. */
export function createRing(slots: number, slotBytes = 64): Ring {
  const sab = new SharedArrayBuffer(ringBytes(slots, slotBytes));
  const i32 = new Int32Array(sab);
  i32[H_SLOTS] = slots;
  i32[H_SLOT_BYTES] = slotBytes;
  const slotWords = slotBytes >> 2;
  // Slot i starts out "published for position i - slots": one lap stale, so nothing looks published.
  for (let i = 0; i < slots; i++) i32[HEADER_WORDS + i * slotWords + M_SEQ] = (i - slots + 1) & POS;
  Atomics.store(i32, H_MAGIC, MAGIC); // last: a Ring attached to a half-formatted buffer would be refused
  return new Ring(sab);
}

/**
 * Word access to a sender's payload. Reading `.buffer` and `.byteOffset` of a typed array costs ~20 ns each
 * in this V8, more than copying a small payload, so a word view is only built for a payload object seen
 * twice in a row (a sender encoding into one reused buffer) and then kept for it; other payloads are copied
 * bytewise or with `set()`. One per Ring view and per RingBatch.
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
 * One thread's view of a shared ring. Any number of threads may push; exactly one thread may drain, park,
 * or ask pendingMessages() while producers run (the consumer-side state lives in that thread's Ring object).
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
  // Producer-side caches (this thread's view only).
  private owesNotify = false; // that reservation cleared the parked bit: wake the consumer after publishing
  private readonly pw = new PayloadWords();
  private tailGuess: number; // where this view expects the tail: the end of its own last reservation
  private cachedHead: number; // a head this view read; trusted only while the tail is where it left it
  // Consumer-side state (valid in the consumer thread only).
  private head: number;
  private trusted = 0; // following messages known published (the rest of an acquired batch)
  private scratchU8: Uint8Array | null = null;
  private scratchI32: Int32Array | null = null;

  constructor(sab: SharedArrayBuffer) {
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
    this.head = Atomics.load(i32, H_HEAD);
    this.cachedHead = this.head;
    this.tailGuess = Atomics.load(i32, H_TAIL) & POS;
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

  // ---------------------------------------------------------------------------------------------- producers

  /**
   * Reserves k consecutive slots and returns the first one's position (setting `owesNotify`), or -1 when
   * the ring lacks room (nothing changes then).
   *
   * The common case of one busy producer costs a single CAS: it is attempted with this view's guess of the
   * tail (the end of its previous reservation) and its cached head. A stale cached head only understates
   * the room, so it is re-read when the ring looks full, and whenever the tail is not where this view left
   * it (another producer pushed meanwhile), so that it never falls a whole 2^31 wrap behind. The remaining
   * blind spot is a tail that travelled exactly a multiple of 2^31 positions between two pushes of this
   * view: the usual ABA of a wrapping CAS counter.
   */
  private reserve(k: number): number {
    const i32 = this.i32;
    const slots = this.slots;
    let t = this.tailGuess; // expected tail word (position, maybe with the parked bit)
    let h = this.cachedHead;
    for (;;) {
      const p = t & POS;
      let d = (p - h) & POS;
      if (d + k > slots) {
        h = Atomics.load(i32, H_HEAD);
        d = (p - h) & POS;
        if (d > slots) {
          // The head passed our tail guess: the guess is stale, fetch the real tail.
          t = Atomics.load(i32, H_TAIL);
          continue;
        }
        if (d + k > slots) {
          this.tailGuess = p;
          this.cachedHead = h;
          return -1;
        }
      }
      const next = (p + k) & POS; // also clears the parked bit
      const seen = Atomics.compareExchange(i32, H_TAIL, t, next);
      if (seen === t) {
        this.owesNotify = (t & PARKED) !== 0;
        this.tailGuess = next;
        this.cachedHead = h;
        return p;
      }
      t = seen;
      h = Atomics.load(i32, H_HEAD);
    }
  }

  /**
   * Publishes the message whose first slot starts at word `w` (all its other bytes written before).
   *
   * No lost wake-up: the consumer parks only after an atomic OR of the parked bit into the tail word that
   * returned tail == head (nothing reserved, nothing unread). All later reservations are RMWs of the same
   * word, so the first of them sees the bit, clears it in its CAS and owes a notify, which it sends here
   * after its marker store. If that CAS lands before the consumer's Atomics.wait starts, the word no
   * longer holds the value wait expects and wait returns at once; otherwise the notify wakes it. Either
   * way the consumer is awake, and it does not sleep again while tail != head, i.e. until it has consumed
   * that message. A producer that saw no bit reserved before the consumer's OR, so the consumer's OR
   * returned a tail != head and it did not sleep at all.
   */
  private publish(w: number, pos: number): void {
    const i32 = this.i32;
    Atomics.store(i32, w, (pos + 1) & POS);
    if (this.owesNotify) {
      this.owesNotify = false;
      Atomics.add(i32, H_NOTIFIES, 1);
      Atomics.notify(i32, H_TAIL, 1);
    }
  }

  /**
   * Pushes one message whose payload is `payload[off, off+len)`. Returns false when the ring has no room
   * (the caller keeps the message: nothing is ever overwritten or dropped). Any thread may call this.
   */
  tryPush(kind: number, to: number, from: number, payload: Uint8Array, off = 0, len: number = payload.length - off): boolean {
    checkRange(payload, off, len);
    const k = len <= this.oneSlotMax ? 1 : this.slotsFor(len);
    const pos = this.reserve(k);
    if (pos < 0) return false;
    const i32 = this.i32;
    const w = HEADER_WORDS + (pos & this.mask) * this.slotWords;
    i32[w + M_LEN] = len;
    i32[w + M_KIND] = kind;
    i32[w + M_TO] = to;
    i32[w + M_FROM] = from;
    i32[w + M_REST] = 0;
    const d0 = w + M_PAYLOAD;
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
    this.publish(w, pos);
    return true;
  }

  /** Like tryPush with a payload of the first `n` Int32 values of `ints`, written word by word. */
  tryPushInts(kind: number, to: number, from: number, ints: Int32Array, n: number): boolean {
    checkInts(ints, n);
    const k = n << 2 <= this.oneSlotMax ? 1 : this.slotsFor(n << 2);
    const pos = this.reserve(k);
    if (pos < 0) return false;
    const i32 = this.i32;
    const w = HEADER_WORDS + (pos & this.mask) * this.slotWords;
    i32[w + M_LEN] = n << 2;
    i32[w + M_KIND] = kind;
    i32[w + M_TO] = to;
    i32[w + M_FROM] = from;
    i32[w + M_REST] = 0;
    const dst = w + M_PAYLOAD;
    const first = Math.min(n, this.dataEndWord - dst);
    for (let i = 0; i < first; i++) i32[dst + i] = ints[i];
    for (let i = first; i < n; i++) i32[HEADER_WORDS - first + i] = ints[i];
    this.publish(w, pos);
    return true;
  }

  /**
   * Pushes every message staged in `batch` with one reservation and one publication (all or nothing), then
   * clears the batch. The consumer still sees individual messages, in staging order.
   */
  tryPushBatch(batch: RingBatch): boolean {
    if (batch.ring.sab !== this.sab) throw new Error('ring: batch was made for another ring');
    const n = batch.count;
    if (n === 0) return true;
    const k = batch.usedSlots;
    const pos = this.reserve(k);
    if (pos < 0) return false;
    const i32 = this.i32;
    const mask = this.mask;
    const slotWords = this.slotWords;
    const w0 = HEADER_WORDS + (pos & mask) * slotWords;
    // Copy everything except the first message's marker word, which must change only at publication.
    const src = batch.bytes;
    const total = k * this.slotBytes;
    const dst = (w0 << 2) + 4;
    const first = Math.min(total - 4, this.dataEndByte - dst);
    this.u8.set(src.subarray(4, 4 + first), dst);
    if (first < total - 4) this.u8.set(src.subarray(4 + first, total), HEADER_BYTES);
    // Later messages' markers may be plain stores: the consumer reaches them only after acquiring the
    // first marker, whose seq-cst store below orders all of these writes before it; the first message's
    // M_REST tells the consumer how many of them it may take without an atomic load each.
    const starts = batch.starts;
    for (let m = 1; m < n; m++) {
      const p = (pos + starts[m]) & POS;
      i32[HEADER_WORDS + (p & mask) * slotWords + M_SEQ] = (p + 1) & POS;
    }
    i32[w0 + M_REST] = n - 1;
    this.publish(w0, pos);
    batch.clear();
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

  /**
   * Int32 view of the private scratch buffer handed to drain callbacks (same memory as their `buf`), so an
   * Int32 payload at `off` is `scratchInts[(off >> 2) + i]` without making a view per message.
   */
  get scratchInts(): Int32Array {
    return this.scratch();
  }

  /**
   * True when the message at the consumer's head is published (consumer thread only). The tail is looked
   * at first: polling the marker of a slot nobody has reserved yet would pull its cache line to this core
   * again and again, and the producer about to write it would pay a cross-core invalidation per message.
   */
  private ready(): boolean {
    if (this.trusted > 0) return true;
    const h = this.head;
    if ((Atomics.load(this.i32, H_TAIL) & POS) === h) return false;
    return Atomics.load(this.i32, HEADER_WORDS + (h & this.mask) * this.slotWords + M_SEQ) === ((h + 1) & POS);
  }

  /**
   * Delivers up to `max` published messages in order to `onMessage` and returns how many. The payload is
   * `buf[off, off+len)` of a private scratch buffer (off is a multiple of 4; `buf.buffer` is a plain
   * ArrayBuffer) that later messages overwrite: consume or copy it before returning. Consumer thread only;
   * the callback may push to this ring but must not call drain() again. If it throws, the messages after
   * the one it threw for stay in the ring for the next drain().
   */
  drain(max: number, onMessage: MessageHandler): number {
    const sc = this.scratchI32 ?? this.scratch();
    const scU8 = this.scratchU8 as Uint8Array;
    const i32 = this.i32;
    const mask = this.mask;
    const slotWords = this.slotWords;
    const slotBytes = this.slotBytes;
    const oneSlotMax = this.oneSlotMax;
    const limit = this.releaseSlots;
    let h = this.head;
    let released = h;
    let delivered = 0;
    let trusted = this.trusted;
    let inRun = false; // a callback of a run is executing: if it throws, the rest is re-acquired
    try {
      while (delivered < max) {
        // 1. Find a run of published messages at the head: only among reserved slots (see ready()), so one
        //    tail load per run, and at most a quarter ring, so the head is handed back regularly.
        let p = h;
        let m = 0;
        let span = 0;
        let t = trusted;
        const reserved = (Atomics.load(i32, H_TAIL) - h) & POS;
        while (delivered + m < max && span < limit && span < reserved) {
          const w = HEADER_WORDS + (p & mask) * slotWords;
          if (t > 0) t--;
          else if (Atomics.load(i32, w + M_SEQ) === ((p + 1) & POS)) t = i32[w + M_REST];
          else break;
          const len = i32[w + M_LEN];
          const k = len <= oneSlotMax ? 1 : Math.ceil((ENVELOPE_BYTES + len) / slotBytes);
          m++;
          span += k;
          p = (p + k) & POS;
        }
        if (m === 0) break;
        inRun = true;
        const s0 = HEADER_WORDS + (h & mask) * slotWords;
        const words = span * slotWords;
        if (words <= SMALL_RUN_WORDS) {
          // 2a. A short run (the consumer keeps up): copy each payload alone, read envelopes in place.
          for (let j = 0; j < m; j++) {
            const w = HEADER_WORDS + (h & mask) * slotWords;
            const len = i32[w + M_LEN];
            const src = w + M_PAYLOAD;
            const n = (len + 3) >> 2; // the reserved slots always cover the rounded-up length
            const a = Math.min(n, this.dataEndWord - src);
            for (let i = 0; i < a; i++) sc[i] = i32[src + i];
            for (let i = a; i < n; i++) sc[i] = i32[HEADER_WORDS - a + i];
            const k = len <= oneSlotMax ? 1 : this.clearContinuations(h, len);
            h = (h + k) & POS;
            delivered++;
            onMessage(i32[w + M_KIND], i32[w + M_TO], i32[w + M_FROM], scU8, 0, len);
          }
        } else {
          // 2b. A long run: one bulk copy of its slots (contiguous in the scratch even if the run wraps),
          //     then deliver from the copy.
          const firstWords = Math.min(words, this.dataEndWord - s0);
          scU8.set(this.u8.subarray(s0 << 2, (s0 + firstWords) << 2), 0);
          if (firstWords < words) {
            scU8.set(this.u8.subarray(HEADER_BYTES, HEADER_BYTES + ((words - firstWords) << 2)), firstWords << 2);
          }
          let q = 0;
          for (let j = 0; j < m; j++) {
            const len = sc[q + M_LEN];
            const k = len <= oneSlotMax ? 1 : this.clearContinuations(h, len);
            h = (h + k) & POS;
            delivered++;
            onMessage(sc[q + M_KIND], sc[q + M_TO], sc[q + M_FROM], scU8, (q + M_PAYLOAD) << 2, len);
            q += k * slotWords;
          }
        }
        inRun = false;
        trusted = t;
        Atomics.store(i32, H_HEAD, h);
        released = h;
        if (span < limit) break; // the run ended at the last published message: the caller comes back
      }
    } finally {
      this.head = h;
      // After a throw the run's undelivered messages are re-acquired one by one (their markers are final,
      // batch members' included), since the trust count is only known at the run's end.
      this.trusted = inRun ? 0 : trusted;
      if (released !== h) Atomics.store(i32, H_HEAD, h);
    }
    return delivered;
  }

  /**
   * Gives the continuation slots of the multi-slot message at `h` a stale marker, since their first words
   * held payload (see the file header); returns the message's slot count.
   */
  private clearContinuations(h: number, len: number): number {
    const k = Math.ceil((ENVELOPE_BYTES + len) / this.slotBytes);
    for (let c = 1; c < k; c++) {
      const r = (h + c) & POS;
      this.i32[HEADER_WORDS + (r & this.mask) * this.slotWords + M_SEQ] = (r + 1) & POS;
    }
    return k;
  }

  /** True when no slot is reserved or published (tail == head). */
  isEmpty(): boolean {
    return (Atomics.load(this.i32, H_TAIL) & POS) === Atomics.load(this.i32, H_HEAD);
  }

  /** Slots reserved or published and not yet handed back by the consumer. */
  usedSlots(): number {
    const t = Atomics.load(this.i32, H_TAIL) & POS;
    return (t - Atomics.load(this.i32, H_HEAD)) & POS;
  }

  /**
   * Published messages waiting between head and tail, walked one by one; stops at the first reserved but
   * unpublished message. Exact in the consumer thread or when all threads are quiescent (run-end accounting
   * `sent == delivered + queued`).
   */
  pendingMessages(): number {
    const i32 = this.i32;
    const t = Atomics.load(i32, H_TAIL) & POS;
    let p = Atomics.load(i32, H_HEAD);
    let n = 0;
    while (p !== t) {
      const w = HEADER_WORDS + (p & this.mask) * this.slotWords;
      if (Atomics.load(i32, w + M_SEQ) !== ((p + 1) & POS)) break;
      p = (p + this.slotsFor(i32[w + M_LEN])) & POS;
      n++;
    }
    return n;
  }

  /**
   * Waits for the next message without burning a core: polls for `spinMicros`, then blocks in Atomics.wait
   * for up to `timeoutMs`. Returns 'message' when one is readable or reserved (its producer is finishing
   * it), 'closed' after close() with nothing readable, 'timeout' otherwise — also when woken by wake(),
   * whose permit it consumes (the caller then checks whatever stop request came with the wake).
   * Consumer thread only.
   */
  park(timeoutMs: number, spinMicros = 50): ParkResult {
    const i32 = this.i32;
    if (this.ready()) return 'message';
    if (Atomics.load(i32, H_CLOSED) === 1) return 'closed';
    if (Atomics.exchange(i32, H_WAKE, 0) === 1) return 'timeout';
    if (spinMicros > 0) {
      const until = performance.now() + spinMicros / 1000;
      for (let i = 1; ; i++) {
        if (this.ready()) return 'message';
        if ((i & 31) === 0) {
          if (Atomics.load(i32, H_CLOSED) === 1) return 'closed';
          if (Atomics.load(i32, H_WAKE) === 1 || performance.now() >= until) break;
        }
      }
    }
    // Announce, then re-check everything a waker could have done before seeing the announcement (the
    // ordering argument is in publish(); close() and wake() store their flag before touching the tail).
    const before = Atomics.or(i32, H_TAIL, PARKED);
    if ((before & POS) !== this.head) {
      Atomics.and(i32, H_TAIL, POS);
      return 'message';
    }
    if (Atomics.load(i32, H_CLOSED) === 1) {
      Atomics.and(i32, H_TAIL, POS);
      return 'closed';
    }
    if (Atomics.exchange(i32, H_WAKE, 0) === 1) {
      Atomics.and(i32, H_TAIL, POS);
      return 'timeout';
    }
    Atomics.add(i32, H_PARKS, 1);
    Atomics.wait(i32, H_TAIL, this.head | PARKED, timeoutMs);
    Atomics.and(i32, H_TAIL, POS); // still set after a timeout or a wake()
    if (this.ready() || (Atomics.load(i32, H_TAIL) & POS) !== this.head) return 'message';
    if (Atomics.load(i32, H_CLOSED) === 1) return 'closed';
    Atomics.exchange(i32, H_WAKE, 0);
    return 'timeout';
  }

  /** Marks the ring closed and wakes the consumer; producers may still push (the consumer decides). */
  close(): void {
    Atomics.store(this.i32, H_CLOSED, 1);
    this.rouse();
  }

  get closed(): boolean {
    return Atomics.load(this.i32, H_CLOSED) === 1;
  }

  /**
   * Wakes the consumer now, or makes its next park() return at once if it is not parked (a permit, so a
   * stop request set just before cannot be missed by a consumer about to park).
   */
  wake(): void {
    Atomics.store(this.i32, H_WAKE, 1);
    this.rouse();
  }

  /** Clears the parked bit (so a wait not yet started returns at once) and wakes a sleeping consumer. */
  private rouse(): void {
    Atomics.and(this.i32, H_TAIL, POS);
    Atomics.notify(this.i32, H_TAIL);
  }

  stats(): { parks: number; notifies: number } {
    return { parks: Atomics.load(this.i32, H_PARKS), notifies: Atomics.load(this.i32, H_NOTIFIES) };
  }
}

/**
 * A producer-private staging area in the ring's own slot layout, pushed with Ring.tryPushBatch: one CAS and
 * one seq-cst publication for the whole batch instead of per message (the `transport_64` case). The staged
 * bytes go into the ring with one or two bulk copies.
 */
export class RingBatch {
  readonly ring: Ring;
  /** Messages staged. */
  count = 0;
  /** Slots the staged messages will occupy. */
  usedSlots = 0;
  /** Staged slots (read by Ring.tryPushBatch). */
  readonly bytes: Uint8Array;
  /** First slot of each staged message, relative to the batch (read by Ring.tryPushBatch). */
  readonly starts: Int32Array;
  private readonly i32: Int32Array;
  private readonly slotWords: number;
  private readonly oneSlotMax: number;
  private readonly pw = new PayloadWords();

  constructor(ring: Ring, maxSlots: number = ring.slots) {
    if (!Number.isInteger(maxSlots) || maxSlots < 1 || maxSlots > ring.slots) {
      throw new RangeError(`ring: batch capacity must be in [1, ${ring.slots}] slots, got ${maxSlots}`);
    }
    this.ring = ring;
    const buf = new ArrayBuffer(maxSlots * ring.slotBytes);
    this.bytes = new Uint8Array(buf);
    this.i32 = new Int32Array(buf);
    this.starts = new Int32Array(maxSlots);
    this.slotWords = ring.slotBytes >> 2;
    this.oneSlotMax = ring.slotBytes - ENVELOPE_BYTES;
  }

  get capacitySlots(): number {
    return this.starts.length;
  }

  clear(): void {
    this.count = 0;
    this.usedSlots = 0;
  }

  /** Writes the header of a new message and returns its payload word index, or -1 if the batch is full. */
  private begin(kind: number, to: number, from: number, len: number): number {
    const k = len <= this.oneSlotMax ? 1 : this.ring.slotsFor(len);
    const at = this.usedSlots;
    if (at + k > this.starts.length) return -1;
    const w = at * this.slotWords;
    const i32 = this.i32;
    i32[w + M_LEN] = len;
    i32[w + M_KIND] = kind;
    i32[w + M_TO] = to;
    i32[w + M_FROM] = from;
    i32[w + M_REST] = 0;
    this.starts[this.count++] = at;
    this.usedSlots = at + k;
    return w + M_PAYLOAD;
  }

  /** Stages a message; false (nothing staged) when the batch is full. */
  add(kind: number, to: number, from: number, payload: Uint8Array, off = 0, len: number = payload.length - off): boolean {
    checkRange(payload, off, len);
    const w = this.begin(kind, to, from, len);
    if (w < 0) return false;
    // The staging buffer is a plain ArrayBuffer: a copy loop of its own keeps the ring's copy (shared
    // memory) monomorphic.
    const s0 = len <= SMALL_COPY_BYTES ? this.pw.at(payload, off, len) : -1;
    if (s0 >= 0) {
      const src = this.pw.words;
      const i32 = this.i32;
      const words = len >> 2;
      for (let i = 0; i < words; i++) i32[w + i] = src[s0 + i];
      const b = this.bytes;
      for (let j = words << 2; j < len; j++) b[(w << 2) + j] = payload[off + j];
    } else if (len <= 16) {
      const b = this.bytes;
      for (let j = 0; j < len; j++) b[(w << 2) + j] = payload[off + j];
    } else {
      this.bytes.set(off === 0 && len === payload.length ? payload : payload.subarray(off, off + len), w << 2);
    }
    return true;
  }

  /** Stages a message whose payload is the first `n` Int32 values of `ints`. */
  addInts(kind: number, to: number, from: number, ints: Int32Array, n: number): boolean {
    checkInts(ints, n);
    const w = this.begin(kind, to, from, n << 2);
    if (w < 0) return false;
    const i32 = this.i32;
    for (let i = 0; i < n; i++) i32[w + i] = ints[i];
    return true;
  }
}
