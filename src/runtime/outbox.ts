// One producer thread's sending side towards one target Ring: backpressure without loss and without
// blocking.
//
// Why an overflow list and not a producer that waits for room: every actor thread is both a consumer (of
// its own ring) and a producer (into its peers' rings). If producers blocked on a full ring, two threads
// whose rings are both full, each blocked sending to the other, would never drain their own rings again:
// a deadlock. Holding the message locally keeps the thread free to drain, and the held messages go out on a
// later send() or flush(), in order — a message never overtakes an earlier one from the same Outbox, which
// is the only order actors rely on (per sender-receiver pair, like the hardware queues being modelled).
import type { Ring } from './ring.js';

interface Held {
  kind: number;
  to: number;
  from: number;
  bytes: Uint8Array; // private copy: the caller may reuse its buffer as soon as send() returns
}

export class Outbox {
  readonly ring: Ring;
  /** Most messages held at once since construction (a backpressure indicator for statistics and tests). */
  peakHeld = 0;
  /** Messages that had to wait in the overflow list at least once. */
  heldTotal = 0;
  // A FIFO as an array plus a read index: shift() would be O(n) per message under sustained backpressure.
  private queue: Held[] = [];
  private first = 0;

  constructor(ring: Ring) {
    this.ring = ring;
  }

  /** Messages waiting in the overflow list. */
  get held(): number {
    return this.queue.length - this.first;
  }

  /** Held messages addressed to `to` (a stopped run's accounting tells spawns from model messages by it). */
  heldTo(to: number): number {
    let n = 0;
    for (let i = this.first; i < this.queue.length; i++) if ((this.queue[i] as Held).to === to) n++;
    return n;
  }

  /**
   * Sends a message: pushed at once when nothing is held back and the ring has room, otherwise copied into
   * the overflow list behind the older held messages. Returns true when it went out now. Never drops.
   */
  send(kind: number, to: number, from: number, payload: Uint8Array, off = 0, len: number = payload.length - off): boolean {
    if (this.first !== this.queue.length) this.flush();
    if (this.first === this.queue.length && this.ring.tryPush(kind, to, from, payload, off, len)) return true;
    if ((off | 0) !== off || (len | 0) !== len || off < 0 || len < 0 || off + len > payload.length) {
      throw new RangeError(`outbox: bad payload range off=${off} len=${len} of ${payload.length}`);
    }
    this.ring.slotsFor(len); // a message that can never fit must fail here, not forever in flush()
    this.hold({ kind, to, from, bytes: payload.slice(off, off + len) });
    return false;
  }

  /** send() for a payload of the first `n` Int32 values of `ints`. */
  sendInts(kind: number, to: number, from: number, ints: Int32Array, n: number): boolean {
    if (this.first !== this.queue.length) this.flush();
    if (this.first === this.queue.length && this.ring.tryPushInts(kind, to, from, ints, n)) return true;
    if ((n | 0) !== n || n < 0 || n > ints.length) throw new RangeError(`outbox: bad int count ${n}`);
    this.ring.slotsFor(n << 2);
    // Copying the Int32 values keeps their in-memory (platform) byte order, the same bytes tryPushInts writes.
    const copy = ints.slice(0, n);
    this.hold({ kind, to, from, bytes: new Uint8Array(copy.buffer, copy.byteOffset, n << 2) });
    return false;
  }

  /** Retries held messages in order until one does not fit; returns how many went out. */
  flush(): number {
    const q = this.queue;
    let i = this.first;
    while (i < q.length) {
      const m = q[i];
      if (!this.ring.tryPush(m.kind, m.to, m.from, m.bytes)) break;
      i++;
    }
    const sent = i - this.first;
    if (i === q.length) {
      this.queue = [];
      this.first = 0;
    } else {
      this.first = i;
      if (i >= 1024 && i * 2 >= q.length) {
        this.queue = q.slice(i);
        this.first = 0;
      }
    }
    return sent;
  }

  private hold(m: Held): void {
    this.queue.push(m);
    this.heldTotal++;
    const h = this.queue.length - this.first;
    if (h > this.peakHeld) this.peakHeld = h;
  }
}
