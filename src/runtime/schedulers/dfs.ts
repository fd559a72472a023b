// Bounded exhaustive depth-first search over schedules, for tiny workloads: every execution replays the
// prefix of the previous one and takes the next untried alternative at the deepest step that has one.
// Bounds keep it finite: branch only within the first `depthBound` steps, and allow at most
// `preemptionBound` preemptions (switching away from a thread that could have continued) per execution —
// most concurrency bugs need few (Musuvathi & Qadeer, CHESS). Says when the bounded space is exhausted.
import type { Choice, Scheduler } from '../scheduler.js';

interface Branch {
  /** Enabled choices at this step (checked on replay of the prefix: the workload must be deterministic). */
  readonly count: number;
  /** Indices into the enabled list that stay within the preemption bound; the non-preemptive one first. */
  readonly order: readonly number[];
  pos: number;
  readonly preemptive: readonly boolean[];
}

export class DfsScheduler implements Scheduler {
  readonly name = 'dfs';
  private readonly stack: Branch[] = [];
  private executions = 0;
  private exhausted = false;
  private preemptions = 0;
  private last: number | undefined;

  constructor(
    readonly depthBound = 1_000,
    readonly preemptionBound = 2,
  ) {}

  newExecution(): boolean {
    if (this.exhausted) return false;
    if (this.executions > 0 && !this.backtrack()) {
      this.exhausted = true;
      return false;
    }
    this.executions++;
    this.preemptions = 0;
    this.last = undefined;
    return true;
  }

  next(enabled: readonly Choice[], step: number): Choice {
    let branch = this.stack[step];
    if (branch) {
      if (branch.count !== enabled.length) {
        throw new Error(`dfs: the workload is not deterministic: step ${step} had ${branch.count} choices, now ${enabled.length}`);
      }
    } else {
      const lastEnabled = this.last !== undefined && enabled.some((c) => c.thread === this.last);
      const preemptive = enabled.map((c) => lastEnabled && c.thread !== this.last);
      const order: number[] = [];
      for (let i = 0; i < enabled.length; i++) if (!preemptive[i]) order.push(i);
      if (this.preemptions < this.preemptionBound) for (let i = 0; i < enabled.length; i++) if (preemptive[i]) order.push(i);
      branch = { count: enabled.length, order, pos: 0, preemptive };
      // Past the depth bound there is no branching: only the first alternative is ever taken.
      if (step < this.depthBound) this.stack.push(branch);
    }
    const index = branch.order[branch.pos] as number;
    if (branch.preemptive[index]) this.preemptions++;
    const chosen = enabled[index] as Choice;
    this.last = chosen.thread;
    return chosen;
  }

  endExecution(): void {}

  get isExhausted(): boolean {
    return this.exhausted;
  }

  describe(): string {
    const bound = `depth bound ${this.depthBound}, preemption bound ${this.preemptionBound}`;
    return this.exhausted
      ? `dfs: space exhausted after ${this.executions} executions (${bound})`
      : `dfs: ${this.executions} executions, space not exhausted (${bound})`;
  }

  private backtrack(): boolean {
    while (this.stack.length > 0) {
      const b = this.stack[this.stack.length - 1] as Branch;
      if (b.pos + 1 < b.order.length) {
        b.pos++;
        return true;
      }
      this.stack.pop();
    }
    return false;
  }
}
