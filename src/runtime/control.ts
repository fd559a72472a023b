// The threaded runtime's shared control block: the ticket counter every scheduling point draws from (the
// recorded interleaving), a futex-style lock that makes "take a ticket + perform an atomic operation on
// shared model memory" one indivisible step (so ticket order is the order the operations really happened
// in), the stop flag, and per-thread counters the main thread reads to detect quiescence.

const TICKET = 0;
const SEQ_LOCK = 1;
const STOP = 2;
/** Bumped by every performed task point: blocked tasks are worth retrying only when it has moved. */
const VERSION = 3;
/** Bumped (and notified) by a worker about to park, so the main thread looks for quiescence at once. */
const IDLE_EVENTS = 4;
const HEADER = 8;
/**
 * Per-thread slots: GEN (bumped when it wakes), IDLE (see the constants below), SENT, DELIVERED, WAITING (1
 * while it sleeps with blocked tasks: wake it when the version moves), TRIED.
 */
const PER = 6;
export const GEN = 0;
export const IDLE = 1;
export const SENT = 2;
export const DELIVERED = 3;
export const WAITING = 4;
/** The version at which its tasks were last all found blocked (valid while IDLE is IDLE_BLOCKED). */
export const TRIED = 5;

export const BUSY = 0;
export const IDLE_EMPTY = 1; // nothing to do at all
export const IDLE_WAITING = 2; // a timer is pending or a full ring holds messages back: not quiescent
export const IDLE_BLOCKED = 3; // only blocked tasks left: quiescent, but stuck if it lasts

export class Control {
  readonly i32: Int32Array;

  constructor(
    readonly sab: SharedArrayBuffer,
    readonly threads: number,
  ) {
    this.i32 = new Int32Array(sab);
  }

  /** threads = workers + 1 (the main thread's slot is the last: it sends the initial messages). */
  static create(threads: number): Control {
    return new Control(new SharedArrayBuffer((HEADER + PER * threads) * 4), threads);
  }

  ticket(): number {
    return Atomics.add(this.i32, TICKET, 1);
  }

  get tickets(): number {
    return Atomics.load(this.i32, TICKET);
  }

  /** Run fn with a ticket, atomically with respect to every other sequenced step. */
  sequenced<T>(fn: (ticket: number) => T, bumpVersion = false): T {
    this.lock();
    try {
      const v = fn(Atomics.add(this.i32, TICKET, 1));
      // A step that may have written what blocked tasks wait on: they are worth trying again.
      if (bumpVersion) Atomics.add(this.i32, VERSION, 1);
      return v;
    } finally {
      this.unlock();
    }
  }

  /**
   * If `ready()` holds, take a ticket and run `act` — all under the sequencer, so that the check, the action
   * and the ticket are one indivisible step — and bump the version. Returns undefined when not ready.
   */
  trySequenced<T>(ready: () => boolean, act: (ticket: number) => T): { value: T } | undefined {
    this.lock();
    try {
      if (!ready()) return undefined;
      const value = act(Atomics.add(this.i32, TICKET, 1));
      Atomics.add(this.i32, VERSION, 1);
      return { value };
    } finally {
      this.unlock();
    }
  }

  /** A worker is about to park: wake the main thread's quiescence watch. */
  announceIdle(): void {
    Atomics.add(this.i32, IDLE_EVENTS, 1);
    Atomics.notify(this.i32, IDLE_EVENTS);
  }

  /** Resolves when a worker announces it is idle, or after `ms`. */
  async idleEvent(ms: number): Promise<void> {
    const seen = Atomics.load(this.i32, IDLE_EVENTS);
    const r = Atomics.waitAsync(this.i32, IDLE_EVENTS, seen, ms);
    if (r.async) await r.value;
  }

  get version(): number {
    return Atomics.load(this.i32, VERSION);
  }

  get stopped(): boolean {
    return Atomics.load(this.i32, STOP) !== 0;
  }

  stop(): void {
    Atomics.store(this.i32, STOP, 1);
  }

  slot(thread: number, field: number): number {
    return HEADER + thread * PER + field;
  }

  load(thread: number, field: number): number {
    return Atomics.load(this.i32, this.slot(thread, field));
  }

  store(thread: number, field: number, v: number): void {
    Atomics.store(this.i32, this.slot(thread, field), v);
  }

  bump(thread: number, field: number): void {
    Atomics.add(this.i32, this.slot(thread, field), 1);
  }

  // Drepper's futex mutex ("Futexes are tricky", mutex #2): 0 free, 1 locked, 2 locked with waiters.
  private lock(): void {
    const a = this.i32;
    let c = Atomics.compareExchange(a, SEQ_LOCK, 0, 1);
    if (c === 0) return;
    for (let spin = 0; spin < 200; spin++) {
      c = Atomics.compareExchange(a, SEQ_LOCK, 0, 1);
      if (c === 0) return;
    }
    if (c !== 2) c = Atomics.exchange(a, SEQ_LOCK, 2);
    while (c !== 0) {
      Atomics.wait(a, SEQ_LOCK, 2, 1);
      c = Atomics.exchange(a, SEQ_LOCK, 2);
    }
  }

  private unlock(): void {
    if (Atomics.sub(this.i32, SEQ_LOCK, 1) !== 1) {
      Atomics.store(this.i32, SEQ_LOCK, 0);
      Atomics.notify(this.i32, SEQ_LOCK, 1);
    }
  }
}
