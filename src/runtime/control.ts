// The threaded runtime's shared control block: the ticket counter every scheduling point draws from (a step's
// id, and a linearisation of the run), striped futex-style locks that make "take a ticket + perform a step on
// shared model memory" indivisible with respect to the objects the step touches (LEAP, Huang/Liu/Zhang FSE
// 2010: only steps on the same object are ordered, and each object's order is ticket order), the stop flag,
// and per-thread counters the main thread reads to detect quiescence. A step whose footprint is not declared
// takes the coarse lock exclusively (the fallback), which every striped step holds shared: it is ordered
// with every other locked step.

import { type Footprint, union, wordOf } from './footprint.js';

const TICKET = 0;
/**
 * The coarse lock, a reader-writer lock: a step on the fallback holds it exclusively (-1), a step on its
 * objects' stripes holds it shared (the count of such steps), so that a fallback step is atomic with respect
 * to every other locked step at the cost of one lock, not of every stripe.
 */
const COARSE = 1;
/** Threads sleeping on COARSE: an unlock notifies only when there are some (a notify is not free). */
const COARSE_WAITERS = 5;
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

/**
 * Lock stripes: an object (a shared-memory word: lock word, refcount, RCU pointer, xarray slot, struct field)
 * is locked by the stripe its index hashes to. Each stripe's word has a cache line of its own (STRIDE ints),
 * so that workers locking different stripes do not bounce one line.
 */
export const STRIPES = 16;
const STRIDE = 16;

/** The stripe of a shared-memory word (Fibonacci hashing: neighbouring fields of a struct spread out). */
export function stripeOf(word: number): number {
  return Math.imul(word, 0x9e3779b1) >>> (32 - Math.log2(STRIPES));
}

export class Control {
  readonly i32: Int32Array;
  /** Steps that locked only their stripes, and steps that took the coarse fallback (every stripe). */
  striped = 0;
  fallback = 0;
  /** Steps whose computed footprint changed under the locks and were locked again. */
  relocked = 0;
  /** The footprint of the step in hand, as locked (undefined: it holds the coarse fallback). */
  current: Footprint | undefined;
  private readonly stripesBase: number;
  /** The stripes of the step in hand, sorted (reused: a step allocates nothing here). */
  private readonly held = new Int32Array(STRIPES);
  private nheld = 0;
  private coarseHeld = false;

  constructor(
    readonly sab: SharedArrayBuffer,
    readonly threads: number,
    /** Off: every locked step takes the coarse fallback, as before per-object locking. */
    readonly striping = true,
  ) {
    this.i32 = new Int32Array(sab);
    this.stripesBase = Control.stripesAt(threads);
  }

  private static stripesAt(threads: number): number {
    // Aligned on a 64-byte line after the per-thread slots.
    return Math.ceil((HEADER + PER * threads) / STRIDE) * STRIDE;
  }

  /** threads = workers + 1 (the main thread's slot is the last: it sends the initial messages). */
  static create(threads: number, striping = true): Control {
    return new Control(new SharedArrayBuffer((Control.stripesAt(threads) + STRIPES * STRIDE) * 4), threads, striping);
  }

  ticket(): number {
    return Atomics.add(this.i32, TICKET, 1);
  }

  get tickets(): number {
    return Atomics.load(this.i32, TICKET);
  }

  /**
   * Run fn with a ticket, atomically with respect to every other step touching the footprint's objects (with
   * every locked step, for an undeclared footprint). `again` recomputes a computed footprint under the locks.
   */
  sequenced<T>(fn: (ticket: number) => T, bumpVersion = false, footprint?: Footprint, again?: () => Footprint | undefined): T {
    this.lockStep(footprint, again);
    try {
      const v = fn(Atomics.add(this.i32, TICKET, 1));
      this.count();
      // A step that may have written what blocked tasks wait on: they are worth trying again.
      if (bumpVersion) Atomics.add(this.i32, VERSION, 1);
      return v;
    } finally {
      this.unlockHeld();
    }
  }

  /**
   * If `ready()` holds, take a ticket and run `act` — all under the footprint's locks, so that the check, the
   * action and the ticket are one indivisible step — and bump the version. Returns undefined when not ready.
   */
  trySequenced<T>(ready: () => boolean, act: (ticket: number) => T, footprint?: Footprint, again?: () => Footprint | undefined): { value: T } | undefined {
    this.lockStep(footprint, again);
    try {
      if (!ready()) return undefined;
      const value = act(Atomics.add(this.i32, TICKET, 1));
      this.count();
      Atomics.add(this.i32, VERSION, 1);
      return { value };
    } finally {
      this.unlockHeld();
    }
  }

  /**
   * Lock the footprint; a computed one (`again`) is computed once more under the locks, and when it names a
   * word whose stripe is not held (what it walked changed meanwhile), the step unlocks and locks the union —
   * twice at most, then the coarse fallback; one that gives no footprint under the locks (a path it does not
   * follow, on memory as it is now) takes the coarse fallback at once.
   */
  private lockStep(footprint: Footprint | undefined, again: (() => Footprint | undefined) | undefined): void {
    let fp = footprint;
    for (let attempt = 0; ; attempt++) {
      this.lockFootprint(fp);
      this.current = this.coarseHeld ? undefined : fp;
      if (this.coarseHeld || again === undefined) return;
      const now = again();
      if (now !== undefined && this.holdsAll(now)) {
        this.current = union(fp as Footprint, now);
        return;
      }
      this.unlockHeld();
      this.relocked++;
      fp = now === undefined || attempt >= 2 ? undefined : union(fp as Footprint, now);
    }
  }

  private holdsAll(fp: Footprint): boolean {
    const held = this.held;
    for (const e of fp) {
      const s = stripeOf(wordOf(e));
      let found = false;
      for (let i = 0; i < this.nheld; i++) if (held[i] === s) found = true;
      if (!found) return false;
    }
    return true;
  }

  /** Whether a step of this footprint takes the coarse fallback (every stripe). */
  isFallback(footprint: Footprint | undefined): boolean {
    return footprint === undefined || !this.striping;
  }

  private count(): void {
    if (this.coarseHeld) this.fallback++;
    else this.striped++;
  }

  /**
   * The coarse lock exclusively (the fallback), or shared and then the stripes of the footprint in ascending
   * order (a fixed order, and the coarse lock always first: no deadlock); true for the fallback.
   */
  private lockFootprint(footprint: Footprint | undefined): boolean {
    const held = this.held;
    let n = 0;
    const coarse = this.isFallback(footprint);
    this.coarseHeld = coarse;
    if (coarse) {
      this.writeLock();
    } else {
      this.readLock();
      for (const e of footprint as Footprint) {
        const s = stripeOf(wordOf(e));
        // Insertion into the sorted, distinct list (a footprint is a few words).
        let i = n;
        while (i > 0 && (held[i - 1] as number) > s) i--;
        if (i > 0 && held[i - 1] === s) continue;
        held.copyWithin(i + 1, i, n);
        held[i] = s;
        n++;
      }
    }
    this.nheld = n;
    for (let i = 0; i < n; i++) this.lock(this.stripesBase + (held[i] as number) * STRIDE);
    return coarse;
  }

  private unlockHeld(): void {
    const held = this.held;
    for (let i = this.nheld - 1; i >= 0; i--) this.unlock(this.stripesBase + (held[i] as number) * STRIDE);
    this.nheld = 0;
    if (this.coarseHeld) this.writeUnlock();
    else this.readUnlock();
  }

  private readLock(): void {
    const a = this.i32;
    for (let spin = 0; ; spin++) {
      const c = Atomics.load(a, COARSE);
      if (c >= 0) {
        if (Atomics.compareExchange(a, COARSE, c, c + 1) === c) return;
      } else if (spin > 200) this.waitCoarse(c);
    }
  }

  private readUnlock(): void {
    const a = this.i32;
    if (Atomics.sub(a, COARSE, 1) === 1 && Atomics.load(a, COARSE_WAITERS) > 0) Atomics.notify(a, COARSE);
  }

  private writeLock(): void {
    const a = this.i32;
    for (let spin = 0; ; spin++) {
      const c = Atomics.compareExchange(a, COARSE, 0, -1);
      if (c === 0) return;
      if (spin > 200) this.waitCoarse(c);
    }
  }

  private writeUnlock(): void {
    const a = this.i32;
    Atomics.store(a, COARSE, 0);
    if (Atomics.load(a, COARSE_WAITERS) > 0) Atomics.notify(a, COARSE);
  }

  /**
   * Sleep while COARSE still holds `seen` (1 ms at most). Counted before the wait: an unlock after the count
   * notifies, and one before it changed the value the wait compares.
   */
  private waitCoarse(seen: number): void {
    const a = this.i32;
    Atomics.add(a, COARSE_WAITERS, 1);
    Atomics.wait(a, COARSE, seen, 1);
    Atomics.sub(a, COARSE_WAITERS, 1);
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
  private lock(at: number): void {
    const a = this.i32;
    let c = Atomics.compareExchange(a, at, 0, 1);
    if (c === 0) return;
    for (let spin = 0; spin < 200; spin++) {
      c = Atomics.compareExchange(a, at, 0, 1);
      if (c === 0) return;
    }
    if (c !== 2) c = Atomics.exchange(a, at, 2);
    while (c !== 0) {
      Atomics.wait(a, at, 2, 1);
      c = Atomics.exchange(a, at, 2);
    }
  }

  private unlock(at: number): void {
    if (Atomics.sub(this.i32, at, 1) !== 1) {
      Atomics.store(this.i32, at, 0);
      Atomics.notify(this.i32, at, 1);
    }
  }
}
