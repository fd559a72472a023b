// The mailbox of one actor thread: a lane (an SPSC ring, ring.ts) per thread that sends to it, and one
// doorbell the consumer sleeps on when every lane is empty.
//
// Parking without a lost wake-up, with one word to sleep on for many lanes:
// - the consumer stores PARKED = 1 in the doorbell, then sets the parked mark of every lane's tail word with
//   an atomic OR that returns the tail; it sleeps in Atomics.wait(PARKED, 1) only if every lane was empty;
// - a producer publishes with an exchange of its lane's tail word; if the old word carried the mark, it
//   stores PARKED = 0 and notifies.
// All of these are seq-cst read-modify-writes or stores (JS atomics are sequentially consistent among
// themselves). For any one lane, the producer's exchange either comes before the consumer's OR, which then
// returns a tail past the head, and the consumer does not sleep; or after it, and then it sees the mark and
// its store of 0 comes after the consumer's store of 1: if it lands before the wait starts, the wait returns
// at once for the changed value, otherwise the notify wakes it. wake() and close() store their flag before
// clearing PARKED, and the consumer checks the flags after setting it, for the same reason.
//
// A producer thus pays nothing for parking on the common path: the exchange is its publication anyway.
//
// Whether the consumer polls before it parks is park.ts's policy (WaitGovernor): only while the threads that
// have work fit on the cores other processes leave free, and not while its polls keep coming back empty.
import { WaitGovernor } from './park.js';
import { createRing, type MessageHandler, Ring } from './ring.js';

const MAGIC = 0x42454c4c; // 'BELL'

// Doorbell words, hot ones 128 bytes apart.
const B_MAGIC = 0;
const B_CLOSED = 1; // 1 once close() was called
const B_WAKE = 2; // a pending wake() permit, consumed by park()
const B_PARKED = 32; // 1 while the consumer is (about to be) asleep in Atomics.wait
const B_PARKS = 64; // statistics: times the consumer blocked
const B_NOTIFIES = 96; // statistics: notifies issued by producers
const BELL_WORDS = 128;

export type ParkResult = 'message' | 'timeout' | 'closed';

/**
 * The shared memory of one mailbox, as it travels to other threads (workerData): the doorbell, and the lane
 * of each producer thread by its index (null for a thread that never sends here, such as the consumer).
 */
export interface MailboxLayout {
  readonly bell: SharedArrayBuffer;
  readonly lanes: readonly (SharedArrayBuffer | null)[];
}

/**
 * Lane size for a mailbox of `budgetSlots` slots shared by `lanes` producers: an equal share, but never
 * less than min(budgetSlots, 256) slots each (16 KiB of 64-byte slots), so that a thread per actor does not
 * make lanes too small for one message.
 */
export function laneSlots(budgetSlots: number, lanes: number): number {
  const share = 2 ** Math.floor(Math.log2(Math.max(1, budgetSlots / Math.max(1, lanes))));
  return Math.max(Math.min(budgetSlots, 256), share);
}

/** Formats a mailbox with a lane of `slots` slots for every producer index in [0, producers) but `skip`. */
export function createMailbox(producers: number, slots: number, slotBytes = 64, skip = -1): MailboxLayout {
  if (!Number.isInteger(producers) || producers < 1) throw new RangeError(`mailbox: producers must be >= 1, got ${producers}`);
  const bell = new SharedArrayBuffer(BELL_WORDS * 4);
  Atomics.store(new Int32Array(bell), B_MAGIC, MAGIC);
  const lanes = Array.from({ length: producers }, (_, p) => (p === skip ? null : createRing(slots, slotBytes).sab));
  if (lanes.every((l) => l === null)) throw new RangeError('mailbox: no lane left');
  return { bell, lanes };
}

/** Any thread's handle on a mailbox's doorbell: producers ring it, anyone may wake or close the mailbox. */
export class Doorbell {
  private readonly i32: Int32Array;

  constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength !== BELL_WORDS * 4) throw new TypeError('mailbox: not a doorbell buffer');
    this.i32 = new Int32Array(sab);
    if (Atomics.load(this.i32, B_MAGIC) !== MAGIC) throw new TypeError('mailbox: doorbell not formatted (use createMailbox)');
  }

  /** Called by a producer whose publication found its lane marked parked: wakes the consumer. */
  ring(): void {
    const i32 = this.i32;
    Atomics.store(i32, B_PARKED, 0);
    Atomics.add(i32, B_NOTIFIES, 1);
    Atomics.notify(i32, B_PARKED, 1);
  }

  /**
   * Wakes the consumer now, or makes its next park() return at once if it is not parked (a permit, so a
   * stop request set just before cannot be missed by a consumer about to park).
   */
  wake(): void {
    Atomics.store(this.i32, B_WAKE, 1);
    this.rouse();
  }

  /** Marks the mailbox closed and wakes the consumer; producers may still push (the consumer decides). */
  close(): void {
    Atomics.store(this.i32, B_CLOSED, 1);
    this.rouse();
  }

  get closed(): boolean {
    return Atomics.load(this.i32, B_CLOSED) === 1;
  }

  stats(): { parks: number; notifies: number } {
    return { parks: Atomics.load(this.i32, B_PARKS), notifies: Atomics.load(this.i32, B_NOTIFIES) };
  }

  private rouse(): void {
    Atomics.store(this.i32, B_PARKED, 0);
    Atomics.notify(this.i32, B_PARKED);
  }

  // ------------------------------------------------------------------ the consumer's side, for Mailbox.park

  /** Takes a pending wake() permit. */
  takeWake(): boolean {
    return Atomics.exchange(this.i32, B_WAKE, 0) === 1;
  }

  /** A wake() permit is pending (not taken). */
  woken(): boolean {
    return Atomics.load(this.i32, B_WAKE) === 1;
  }

  announce(): void {
    Atomics.store(this.i32, B_PARKED, 1);
  }

  withdraw(): void {
    Atomics.store(this.i32, B_PARKED, 0);
  }

  sleep(timeoutMs: number): void {
    Atomics.add(this.i32, B_PARKS, 1);
    Atomics.wait(this.i32, B_PARKED, 1, timeoutMs);
  }
}

/** A producer thread's lane into a mailbox: pushes ring the mailbox's doorbell. */
export function senderLane(layout: MailboxLayout, producer: number): Ring {
  const sab = layout.lanes[producer];
  if (sab === undefined || sab === null) throw new RangeError(`mailbox: no lane for producer ${producer}`);
  return new Ring(sab, new Doorbell(layout.bell));
}

/** The consumer thread's view of its mailbox: drains every lane and sleeps on the doorbell. */
export class Mailbox {
  readonly bell: Doorbell;
  /** Decides, at each park(), whether to poll first (park.ts). */
  readonly waits: WaitGovernor;
  private readonly lanes: Ring[];
  private next = 0; // the lane the next drain starts with: every lane gets to go first in turn

  /** `waits`: the consumer's spin-or-park policy; by default one that counts only this thread as runnable. */
  constructor(layout: MailboxLayout, waits: WaitGovernor = new WaitGovernor()) {
    this.waits = waits;
    this.bell = new Doorbell(layout.bell);
    this.lanes = layout.lanes.flatMap((sab) => (sab === null ? [] : [new Ring(sab)]));
    if (this.lanes.length === 0) throw new RangeError('mailbox: no lane');
  }

  /**
   * Delivers up to `max` published messages to `onMessage` (see Ring.drain), lane by lane, each lane's in
   * its producer's order, and returns how many. Consumer thread only.
   */
  drain(max: number, onMessage: MessageHandler): number {
    const lanes = this.lanes;
    let n = 0;
    for (let i = 0; i < lanes.length && n < max; i++) {
      const lane = lanes[this.next] as Ring;
      this.next = this.next + 1 === lanes.length ? 0 : this.next + 1;
      n += lane.drain(max - n, onMessage);
    }
    return n;
  }

  /** True when a published message waits in some lane (consumer thread only). */
  ready(): boolean {
    for (const l of this.lanes) if (l.ready()) return true;
    return false;
  }

  /** True when every lane is empty. */
  isEmpty(): boolean {
    for (const l of this.lanes) if (!l.isEmpty()) return false;
    return true;
  }

  /** Published messages waiting in all lanes (see Ring.pendingMessages). */
  pendingMessages(): number {
    let n = 0;
    for (const l of this.lanes) n += l.pendingMessages();
    return n;
  }

  /**
   * Waits for the next message without burning a core: polls for up to `spinMicros` when `waits` allows it
   * (park.ts), then blocks on the doorbell for up to `timeoutMs`. Returns 'message' when one is readable,
   * 'closed' after close() with nothing readable, 'timeout' otherwise — also when woken by wake(), whose permit
   * it consumes (the caller then checks whatever stop request came with the wake). Consumer thread only.
   */
  park(timeoutMs: number, spinMicros = 50): ParkResult {
    const bell = this.bell;
    if (this.ready()) return 'message';
    if (bell.closed) return 'closed';
    if (bell.takeWake()) return 'timeout';
    const micros = spinMicros > 0 ? this.waits.spinFor(spinMicros) : 0;
    if (micros > 0) {
      const polled = this.poll(micros);
      this.waits.spun(polled !== null);
      if (polled === 'message' || polled === 'closed') return polled;
    }
    // Announce, mark every lane, then look again at everything a waker could have done before that.
    bell.announce();
    let empty = true;
    for (const l of this.lanes) empty = l.markParked() && empty;
    const early = !empty ? 'message' : bell.closed ? 'closed' : bell.takeWake() ? 'timeout' : null;
    if (early === null) bell.sleep(timeoutMs);
    for (const l of this.lanes) l.unmarkParked(); // a lane nobody published on since still has its mark
    bell.withdraw(); // still set after a timeout
    if (early !== null) return early;
    if (this.ready()) return 'message';
    if (bell.closed) return 'closed';
    bell.takeWake();
    return 'timeout';
  }

  /** Polls for up to `micros` µs: what came (a wake() permit is left for park() to take), or null. */
  private poll(micros: number): ParkResult | 'woken' | null {
    const bell = this.bell;
    const until = performance.now() + micros / 1000;
    for (let i = 1; ; i++) {
      if (this.ready()) return 'message';
      if ((i & 31) === 0) {
        if (bell.closed) return 'closed';
        if (bell.woken()) return 'woken';
        if (performance.now() >= until) return null;
      }
    }
  }

  wake(): void {
    this.bell.wake();
  }

  close(): void {
    this.bell.close();
  }

  get closed(): boolean {
    return this.bell.closed;
  }

  stats(): { parks: number; notifies: number } {
    return this.bell.stats();
  }
}
