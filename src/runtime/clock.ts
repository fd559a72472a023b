// Time for actors. XState v5 takes a `clock` ({setTimeout, clearTimeout}) per actor; every delayed event
// (`after`) goes through it. The runtimes own the timers instead of Node's event loop: the deterministic
// runtime fires a timer as a scheduled step on simulated time, the threaded runtime fires due timers from its
// worker loop on real time (its event loop is asleep in Atomics.wait most of the time, so setTimeout would
// never run). A fired timer is a step like a delivery: it takes a ticket and is recorded.

/** Simulated cost of one step in the deterministic runtime, in ms (1 µs); a kernel task's step is that much CPU time. */
export const STEP_MS = 0.001;

/** XState's Clock shape (xstate does not export the type from its entry point). */
export interface ActorClock {
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(id: number): void;
}

export interface Timer {
  readonly id: number;
  readonly owner: number;
  readonly deadline: number;
  readonly fn: () => void;
}

export class Timers {
  private readonly pending = new Map<number, Timer>();
  private nextId = 1;

  /** `now()` in milliseconds: simulated in the deterministic runtime, real in the threaded one. */
  constructor(readonly now: () => number) {}

  /** The clock handed to one actor's XState system. */
  clockFor(owner: number): ActorClock {
    return {
      setTimeout: (fn: () => void, ms: number): number => {
        const id = this.nextId++;
        this.pending.set(id, { id, owner, deadline: this.now() + Math.max(0, ms), fn });
        return id;
      },
      clearTimeout: (id: number): void => {
        this.pending.delete(id);
      },
    };
  }

  get size(): number {
    return this.pending.size;
  }

  /** Timers ever set (ids are 1, 2, …). */
  get created(): number {
    return this.nextId - 1;
  }

  /** Earliest-deadline timer (ties: first created), optionally only one owner's. */
  earliest(owner?: number): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.pending.values()) {
      if (owner !== undefined && t.owner !== owner) continue;
      if (!best || t.deadline < best.deadline || (t.deadline === best.deadline && t.id < best.id)) best = t;
    }
    return best;
  }

  /** Owners with a timer due at `now`, each once, in order of their earliest due timer. */
  dueOwners(now: number): number[] {
    const owners: number[] = [];
    for (const t of this.pending.values()) {
      if (t.deadline <= now && !owners.includes(t.owner)) owners.push(t.owner);
    }
    return owners;
  }

  /** Owners with any pending timer (replay fires a recorded timer regardless of simulated time). */
  owners(): number[] {
    const owners: number[] = [];
    for (const t of this.pending.values()) if (!owners.includes(t.owner)) owners.push(t.owner);
    return owners;
  }

  take(t: Timer): void {
    this.pending.delete(t.id);
  }
}

/**
 * A worker's clock in the threaded runtime, as a replay can show it again: real ms since the run's epoch (one
 * origin for every worker), read once when a recorded step starts and held, in whole µs, until the step ends —
 * so that what the model reads during a step (a timer's deadline, a timeout's, a task's wait) is the time
 * recorded for it. It reads 0 while the actors start, as a replay's clock does. Not recording, it is the live
 * clock throughout.
 */
export class StepClock {
  /** The held time in µs, or -1 between steps. */
  private heldUs: number;
  /** This thread's performance.now() origin, in the run's time. */
  private readonly offset: number;

  constructor(
    epoch: number,
    private readonly hold: boolean,
  ) {
    this.heldUs = hold ? 0 : -1;
    this.offset = performance.timeOrigin - epoch;
  }

  private live(): number {
    return this.offset + performance.now();
  }

  readonly now = (): number => (this.heldUs >= 0 ? this.heldUs / 1000 : this.live());

  /** A recorded step starts: hold the time from now until end(); returns it in µs (what the step records). */
  begin(): number {
    if (!this.hold) return 0;
    this.heldUs = Math.max(0, Math.floor(this.live() * 1000));
    return this.heldUs;
  }

  end(): void {
    if (this.hold) this.heldUs = -1;
  }
}

/** Spin `ns` nanoseconds of real time on this thread (the threaded runtime's hardware busy time). */
export function spinFor(ns: number): void {
  if (ns <= 0) return;
  const until = performance.now() + ns / 1e6;
  while (performance.now() < until) {
    // spin: the hardware is busy, and so is the thread hosting it
  }
}
