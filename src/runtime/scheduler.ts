// The Scheduler interface of the deterministic runtime, after awslabs/shuttle: the runtime offers the set of
// enabled steps, the strategy picks one. One file a strategy in schedulers/. A strategy that explores many
// executions (dfs) says when it has none left.

/** One enabled step: the head message of a channel (sender → receiver), or a due timer. */
export interface Choice {
  /** Stable identity of the channel: the same (sender, receiver) pair has the same key in every execution. */
  readonly key: number;
  readonly sender: number;
  readonly receiver: number;
  /**
   * The logical thread whose progress this step is: the receiving actor, or for an atomic operation the actor
   * that asked for it. PCT assigns priorities to threads.
   */
  readonly thread: number;
  /** Global send order of the message (lower = older). */
  readonly seq: number;
}

export interface Scheduler {
  readonly name: string;
  /** Begin the next execution; false when the strategy has explored everything it will. */
  newExecution(): boolean;
  /** Pick one of `enabled` (never empty; its order is deterministic given the execution so far). */
  next(enabled: readonly Choice[], step: number): Choice;
  /** The execution ended after `steps` steps. */
  endExecution(steps: number): void;
  /** A line on what was explored, e.g. for dfs whether the space was exhausted. */
  describe(): string;
}

export type StrategyName = 'random' | 'pct' | 'dfs';
export const STRATEGIES: readonly StrategyName[] = ['random', 'pct', 'dfs'];

export interface StrategyOptions {
  seed: number;
  /** PCT: bug depth d (d - 1 priority change points). */
  depth?: number;
  /** PCT: the expected steps of an execution (k), over which change points are drawn. */
  maxSteps?: number;
  /** DFS: branch only at the first N steps (then always take the first choice). */
  depthBound?: number;
  /** DFS: at most N preemptions per execution. */
  preemptionBound?: number;
}

/** Senders below this (shifted) pack as sender × 2^32 + receiver, exactly: actors, pseudo-actors, early tasks. */
const WIDE_SENDERS = 2 ** 21;
/** A later task's receiver: an actor or a pseudo-actor (tasks send to actors only). */
const NARROW_RECEIVERS = 2 ** 21;

export function channelKey(sender: number, receiver: number): number {
  // Ids are ≥ -4 and < 2^31, and a double is exact below 2^53 only: 2^32 × 2^31 is not. A task of a run past
  // 65 k steps has an id above 2^21, and its channel to actor r collided with its channel to r + 1 (a doorbell
  // for the IOMMU delivered to the device). Such a sender's receiver is an actor, below 2^21: packed the other
  // way round, negative, apart from every other key. Keys of the first form keep their values (and order).
  const s = sender + 8;
  const r = receiver + 8;
  if (s < WIDE_SENDERS) return s * 2 ** 32 + r;
  if (r >= NARROW_RECEIVERS || r < 0 || s >= 2 ** 32) throw new RangeError(`channelKey: no exact key for channel ${sender} → ${receiver}`);
  return -(s * NARROW_RECEIVERS + r) - 1;
}
