// Uniform random walk: at every step, each enabled channel equally likely. Cheap and surprisingly good at
// shallow bugs; PCT does better on deep ordering bugs.
import { Rng } from '../rng.js';
import type { Choice, Scheduler } from '../scheduler.js';

export class RandomScheduler implements Scheduler {
  readonly name = 'random';
  private readonly rng: Rng;
  private executions = 0;

  constructor(seed: number) {
    this.rng = Rng.derive(seed, 'random-scheduler');
  }

  newExecution(): boolean {
    this.executions++;
    return true;
  }

  next(enabled: readonly Choice[]): Choice {
    return enabled[this.rng.index(enabled.length)] as Choice;
  }

  endExecution(): void {}

  describe(): string {
    return `random: ${this.executions} executions`;
  }
}
