// Where the threaded runtime runs a task spawned while the run goes (by a task's step or an actor's `rt.spawn`
// effect), and the message that carries it there. The policy: each worker deals the tasks it spawns round-robin
// over all the workers, starting with the next one — its k-th spawn (k = 1, 2, …) goes to worker (me + k) mod
// workers. A workload whose tasks are all spawned by one task (domains: its script spawns every process) then
// spreads them as the run's initial tasks are spread, instead of running every task step on one worker. The
// placement does not reach the trace: a task's id is made on the spawning worker from the spawning step and its
// index within it (task.ts), and hb.ts takes the spawn edge from the id. With placement per-actor the workers
// are the actors' threads, and spawned tasks are dealt over all of them the same way.
import { Mailbox, type MailboxLayout } from './mailbox.js';
import type { ModelEvent, Wire } from './model.js';

/**
 * The recipient of a spawn message on the rings: no actor (actor ids are ≥ 0, the trace's pseudo-senders
 * ENV..TASK are -1..-4). The receiving worker creates the task; the message's sender is the task's owner and its
 * send step the spawning step.
 */
export const SPAWN_TO = -5;

/** The worker a worker's `k`-th run-time spawn (k ≥ 1) goes to. */
export function spawnTarget(me: number, k: number, workers: number): number {
  return (me + k) % workers;
}

/** A task dealt to another worker, as the codec carries it (msgpack: its args are any Wire). */
export interface SpawnMessage extends ModelEvent {
  readonly type: 'rt.spawn';
  readonly task: string;
  readonly args: Wire;
  /** Its place among the tasks its step spawned (TaskTable.reserve on the spawning worker). */
  readonly index: number;
  /** The spawner's name for it; null when it gave none (the task is then named `kind/N`). */
  readonly name: string | null;
}

export function spawnMessage(task: string, args: Wire, name: string | undefined, index: number): SpawnMessage {
  return { type: 'rt.spawn', task, args, index, name: name ?? null };
}

/** Run-time spawns a worker dealt to others, created for others, and left in its rings when the run stopped. */
export interface SpawnCounts {
  readonly sent: number;
  readonly taken: number;
  readonly queued: number;
}

/**
 * The messages left in a worker's mailbox, model messages and spawns apart (drained, uncounted elsewhere). Only
 * once every worker has exited: then nothing is published any more, so a stopped run's count is exact.
 */
export function leftIn(layout: MailboxLayout): { messages: number; spawns: number } {
  let messages = 0;
  let spawns = 0;
  const count = (_kind: number, to: number): void => {
    if (to === SPAWN_TO) spawns++;
    else messages++;
  };
  const mb = new Mailbox(layout);
  let n: number;
  do n = mb.drain(4096, count);
  while (n > 0);
  return { messages, spawns };
}
