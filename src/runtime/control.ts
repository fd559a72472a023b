// The threaded runtime's shared control block: the ticket counter every scheduling point draws from (a step's
// id, and a linearisation of the run), striped reader-writer locks that make "take a ticket + perform a step on
// shared model memory" indivisible with respect to the objects the step touches (LEAP, Huang/Liu/Zhang FSE
// 2010: only steps on the same object are ordered, and each object's order is ticket order) — a stripe taken
// for writing by a step that writes one of its words, shared by steps that only read them — the stop flag,
// and per-thread counters the main thread reads to detect quiescence. A step whose footprint is not declared
// takes the coarse lock exclusively (the fallback), which every striped step holds shared: it is ordered
// with every other locked step.

import { type Footprint, isRead, UnorderedWords, union, wordOf } from './footprint.js';

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
 * while it sleeps with blocked tasks: wake it when the version moves), TRIED, SPAWNS_SENT, SPAWNS_TAKEN.
 */
const PER = 8;
export const GEN = 0;
export const IDLE = 1;
export const SENT = 2;
export const DELIVERED = 3;
export const WAITING = 4;
/** The version at which its tasks were last all found blocked (valid while IDLE is IDLE_BLOCKED). */
export const TRIED = 5;
/** Tasks it dealt to other workers, and tasks it created for them (spawn.ts): in flight, the run goes on. */
export const SPAWNS_SENT = 6;
export const SPAWNS_TAKEN = 7;

export const BUSY = 0;
export const IDLE_EMPTY = 1; // nothing to do at all
export const IDLE_WAITING = 2; // a timer is pending or a full ring holds messages back: not quiescent
export const IDLE_BLOCKED = 3; // only blocked tasks left: quiescent, but stuck if it lasts

/**
 * Lock stripes: an object (a shared-memory word: lock word, refcount, RCU pointer, xarray slot, struct field)
 * is locked by the stripe its index hashes to. Each stripe's word has a cache line of its own (STRIDE ints),
 * so that workers locking different stripes do not bounce one line.
 */
export const STRIPES = 32;
const STRIDE = 16;
/** A reader-writer lock word's bit set while a writer waits; the bits below it count the readers. */
const WRITER_WAITING = 1 << 30;
const READERS = WRITER_WAITING - 1;

/** log2(STRIPES): a step's stripes are one bit each of a 32-bit mask. */
const STRIPE_BITS = 5;

/** The stripe of a shared-memory word (Fibonacci hashing: neighbouring fields of a struct spread out). */
export function stripeOf(word: number): number {
  return Math.imul(word, 0x9e3779b1) >>> (32 - STRIPE_BITS);
}

export class Control {
  readonly i32: Int32Array;
  /** Steps that locked only their stripes, and steps that took the coarse fallback (every stripe). */
  striped = 0;
  fallback = 0;
  /** Steps whose computed footprint changed under the locks and were locked again. */
  relocked = 0;
  /** Words footprints name that no step is ordered by (Workload.unorderedWords): never locked. */
  unordered = new UnorderedWords();
  /** Host time this thread's steps waited for a stripe or the coarse lock another thread's step held, ms. */
  lockWaitMs = 0;
  /** The footprint of the step in hand, as locked (undefined: it holds the coarse fallback). */
  current: Footprint | undefined;
  private readonly stripesBase: number;
  /** The stripes of the step in hand, a bit each (taken in ascending order: no cycle of waiters). */
  private held = 0;
  /** The held stripes the step writes a word of (locked for writing); the others it holds shared. */
  private writes = 0;
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
        // What the step touches is what its footprint says under the locks (the first answer only chose them).
        this.current = now;
        return;
      }
      this.unlockHeld();
      this.relocked++;
      fp = now === undefined || attempt >= 2 ? undefined : union(fp as Footprint, now);
    }
  }

  /** Whether the step in hand holds every entry's stripe, a written word's for writing. */
  private holdsAll(fp: Footprint): boolean {
    for (const e of fp) {
      if (this.unordered.has(e)) continue;
      const bit = 1 << stripeOf(wordOf(e));
      if ((this.held & bit) === 0 || (!isRead(e) && (this.writes & bit) === 0)) return false;
    }
    return true;
  }

  /** How many lock stripes the step in hand holds (0 on the coarse fallback, or when it touches no ordered word). */
  get stripesHeld(): number {
    let n = 0;
    for (let m = this.held; m !== 0; m &= m - 1) n++;
    return n;
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
   * order (a fixed order, and the coarse lock always first: no deadlock) — a stripe for writing when the step
   * writes one of its words, shared when it only reads them.
   */
  private lockFootprint(footprint: Footprint | undefined): void {
    const coarse = this.isFallback(footprint);
    this.coarseHeld = coarse;
    this.held = 0;
    this.writes = 0;
    if (coarse) {
      this.writeLock(COARSE, COARSE_WAITERS);
      return;
    }
    this.readLock(COARSE, COARSE_WAITERS);
    let held = 0;
    let writes = 0;
    for (const e of footprint as Footprint) {
      if (this.unordered.has(e)) continue;
      const bit = 1 << stripeOf(wordOf(e));
      held |= bit;
      if (!isRead(e)) writes |= bit;
    }
    this.held = held;
    this.writes = writes;
    for (let m = held; m !== 0; m &= m - 1) {
      const s = 31 - Math.clz32(m & -m);
      const at = this.stripesBase + s * STRIDE;
      if ((writes >>> s) & 1) this.writeLock(at, at + 1);
      else this.readLock(at, at + 1);
    }
  }

  private unlockHeld(): void {
    for (let m = this.held; m !== 0; ) {
      const s = 31 - Math.clz32(m);
      m ^= 1 << s;
      const at = this.stripesBase + s * STRIDE;
      if ((this.writes >>> s) & 1) this.writeUnlock(at, at + 1);
      else this.readUnlock(at, at + 1);
    }
    this.held = 0;
    this.writes = 0;
    if (this.coarseHeld) this.writeUnlock(COARSE, COARSE_WAITERS);
    else this.readUnlock(COARSE, COARSE_WAITERS);
  }

  // Reader-writer locks (the coarse lock and each stripe): the word holds the readers' count, with WRITER_WAITING
  // set while a writer waits (new readers then wait too: a word every step reads must not starve the steps that
  // write a word of its stripe), or -1 while a writer holds it. `waiters` counts the threads asleep on it.
  private readLock(at: number, waiters: number): void {
    const a = this.i32;
    let since = 0;
    for (let spin = 0; ; spin++) {
      const c = Atomics.load(a, at);
      if (c >= 0 && (c & WRITER_WAITING) === 0) {
        if (Atomics.compareExchange(a, at, c, c + 1) === c) {
          this.waited(since);
          return;
        }
      } else if (spin > 200) this.sleep(at, waiters, c);
      if (since === 0) since = performance.now();
    }
  }

  private readUnlock(at: number, waiters: number): void {
    const a = this.i32;
    if ((Atomics.sub(a, at, 1) & READERS) === 1 && Atomics.load(a, waiters) > 0) Atomics.notify(a, at);
  }

  private writeLock(at: number, waiters: number): void {
    const a = this.i32;
    let since = 0;
    for (let spin = 0; ; spin++) {
      const c = Atomics.load(a, at);
      if (c === 0 || c === WRITER_WAITING) {
        if (Atomics.compareExchange(a, at, c, -1) === c) {
          this.waited(since);
          return;
        }
      } else {
        if (c > 0 && (c & WRITER_WAITING) === 0) Atomics.compareExchange(a, at, c, c | WRITER_WAITING);
        if (spin > 200) this.sleep(at, waiters, Atomics.load(a, at));
      }
      if (since === 0) since = performance.now();
    }
  }

  /** A lock taken after waiting since `since` (0: at the first try, nothing to count). */
  private waited(since: number): void {
    if (since !== 0) this.lockWaitMs += performance.now() - since;
  }

  private writeUnlock(at: number, waiters: number): void {
    const a = this.i32;
    Atomics.store(a, at, 0);
    if (Atomics.load(a, waiters) > 0) Atomics.notify(a, at);
  }

  /**
   * Sleep while the lock word still holds `seen` (1 ms at most). Counted before the wait: an unlock after the
   * count notifies, and one before it changed the value the wait compares.
   */
  private sleep(at: number, waiters: number, seen: number): void {
    const a = this.i32;
    Atomics.add(a, waiters, 1);
    Atomics.wait(a, at, seen, 1);
    Atomics.sub(a, waiters, 1);
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
}
