// The threaded runtime's shared control block: the ticket counter every scheduling point draws from (the
// recorded interleaving), a futex-style lock that makes "take a ticket + perform an atomic operation on
// shared model memory" one indivisible step (so ticket order is the order the operations really happened
// in), the stop flag, and per-thread counters the main thread reads to detect quiescence.

const TICKET = 0;
const SEQ_LOCK = 1;
const STOP = 2;
const HEADER = 4;
/** Per-thread slots: GEN (bumped when it wakes), IDLE (1 idle, 2 waiting on a timer), SENT, DELIVERED. */
const PER = 4;
export const GEN = 0;
export const IDLE = 1;
export const SENT = 2;
export const DELIVERED = 3;

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
  sequenced<T>(fn: (ticket: number) => T): T {
    this.lock();
    try {
      return fn(Atomics.add(this.i32, TICKET, 1));
    } finally {
      this.unlock();
    }
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
