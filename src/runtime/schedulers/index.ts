// Strategy by name.
import type { Scheduler, StrategyName, StrategyOptions } from '../scheduler.js';
import { DfsScheduler } from './dfs.js';
import { PctScheduler } from './pct.js';
import { RandomScheduler } from './random.js';

export function createScheduler(name: StrategyName, opts: StrategyOptions): Scheduler {
  switch (name) {
    case 'random':
      return new RandomScheduler(opts.seed);
    case 'pct':
      return new PctScheduler(opts.seed, opts.depth ?? 3, opts.maxSteps);
    case 'dfs':
      return new DfsScheduler(opts.depthBound, opts.preemptionBound);
  }
}
