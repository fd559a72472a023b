// Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010). Threads get
// distinct random priorities d, d+1, …; d-1 change points are drawn uniformly over the expected execution
// length k; the highest-priority enabled thread always runs, and at the i-th change point the running
// thread's priority drops to i (below every initial one). A bug of depth d is found in one execution with
// probability ≥ 1/(n·k^(d-1)). k is given (run.ts measures it once per workload) and stays fixed: learned
// from the executions before, as shuttle does, it made each execution's draw depend on which executions came
// before it in the same pool chunk, and an exploration's failure rate on how it was chunked.
import { Rng } from '../rng.js';
import type { Choice, Scheduler } from '../scheduler.js';

export class PctScheduler implements Scheduler {
  readonly name = 'pct';
  private readonly rng: Rng;
  private readonly priorities = new Map<number, number>();
  private changePoints: number[] = [];
  private last: number | undefined;
  private executions = 0;
  private readonly k: number;

  constructor(
    seed: number,
    readonly depth: number,
    maxSteps = 100,
  ) {
    if (!Number.isInteger(depth) || depth < 1) throw new RangeError(`pct depth must be an integer ≥ 1, got ${depth}`);
    this.rng = Rng.derive(seed, 'pct-scheduler');
    this.k = Math.max(1, maxSteps);
  }

  newExecution(): boolean {
    this.executions++;
    this.priorities.clear();
    this.changePoints = [];
    this.last = undefined;
    for (let i = 0; i < this.depth - 1; i++) this.changePoints.push(this.rng.int(1, this.k));
    return true;
  }

  next(enabled: readonly Choice[], step: number): Choice {
    // As in shuttle: at the i-th change point the thread that ran last drops to priority i, then the
    // highest-priority enabled thread runs.
    for (let i = 0; i < this.changePoints.length; i++) {
      if (this.changePoints[i] === step && this.last !== undefined) this.priorities.set(this.last, i + 1);
    }
    let best = enabled[0] as Choice;
    let bestPri = this.priorityOf(best.thread);
    for (let j = 1; j < enabled.length; j++) {
      const c = enabled[j] as Choice;
      const p = this.priorityOf(c.thread);
      // Within one thread, its oldest message first: PCT's choice is which thread, not which message.
      if (p > bestPri || (p === bestPri && c.seq < best.seq)) {
        best = c;
        bestPri = p;
      }
    }
    this.last = best.thread;
    return best;
  }

  endExecution(): void {}

  describe(): string {
    return `pct(depth ${this.depth}): ${this.executions} executions, k=${this.k}`;
  }

  /** A thread seen for the first time gets a random priority above all change-point priorities. */
  private priorityOf(thread: number): number {
    let p = this.priorities.get(thread);
    if (p === undefined) {
      // Distinct random initial priorities ≥ depth: a random real in [depth, depth + 1e6) is distinct with
      // overwhelming probability and keeps insertion of late-born threads uniform among existing ones.
      p = this.depth + this.rng.int(0, 0x3fffffff) / 1024;
      this.priorities.set(thread, p);
    }
    return p;
  }
}
