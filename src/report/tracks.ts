// Who is who in a trace, for the race report and the Perfetto export: a lifeline (track) per actor and per kernel
// task, each task under the actor that spawned it — `proc/0` is the process's actor and `proc0` the kernel task it
// runs its syscalls in, `prq_event_thread/dmar0` the IOMMU's thread. The spawner is not guessed from names: a
// task id says which step spawned it (task.ts: TASK_BASE + 16 × (step + 1) + index), and that step's record says
// who took it. A task spawned by a task (an RCU callback queued by a syscall) goes up the chain to its actor.
import { ENV, MEM, TASK, TIMER } from '../runtime/model.js';
import { isTaskId, spawnOf, TASK_BASE } from '../runtime/task.js';
import type { Trace } from '../runtime/trace.js';

/** The actor or task that spawned task `id` (ENV for the run's own tasks); undefined for a non-task. */
export function spawnerOf(trace: Trace, id: number): number | undefined {
  if (!isTaskId(id)) return undefined;
  const { step } = spawnOf(id);
  if (step < 0 || step >= trace.length) return ENV;
  return trace.record(step).actor;
}

/** The actor a task belongs to (its spawner's, up the chain), the actor itself, or ENV for the kernel's own. */
export function ownerOf(trace: Trace, id: number): number {
  let at = id;
  // Spawners took earlier steps than what they spawned, so the chain is finite; the bound is a guard only.
  for (let hops = 0; hops < 64 && isTaskId(at); hops++) at = spawnerOf(trace, at) ?? ENV;
  return isTaskId(at) || at === MEM || at === TIMER || at === TASK ? ENV : at;
}

/** The pid a kernel report prints for task `id` (`by task proc0/1`, `Freed by task 9472`). */
export function pidOf(id: number): number {
  return id - TASK_BASE;
}

/** A track's name: a task as the kernel names it, comm/pid; an actor as its name (kind/id, or the unit's name). */
export function trackName(trace: Trace, id: number): string {
  const name = trace.actorName(id);
  if (!isTaskId(id)) return name;
  const pid = pidOf(id);
  return name.endsWith(`/${pid}`) ? name : `${name}/${pid}`;
}

/** What a group heading says: the actor's name, or `kernel` for tasks the run itself started. */
export function groupName(trace: Trace, owner: number): string {
  return owner === ENV ? 'kernel' : trace.actorName(owner);
}

/** The event a lock's acquisition or release step carries, by the kernel's API name. */
const ACQUIRE = /^(?:raw_)?(spin_lock(?:_irqsave|_irq|_bh)?|mutex_lock(?:_interruptible|_killable|_nested)?|down_read|down_write|read_lock|write_lock)\(([^,)]+)/;
const RELEASE = /^(?:raw_)?(spin_unlock(?:_irqrestore|_irq|_bh)?|mutex_unlock|up_read|up_write|read_unlock|write_unlock)\(([^,)]+)/;

export interface LockHold {
  readonly task: number;
  readonly lock: string;
  /** The step that took it and the one that released it (the task's last step when the trace shows no release). */
  readonly from: number;
  readonly to: number;
  readonly released: boolean;
}

/**
 * Each task's lock holds, from the step that took a lock to the one that released it, read from the steps' own
 * names. A lock taken twice in a row by one task (spin_lock_irqsave recorded with the spin_lock inside it) is one
 * hold, from the outer take to the outer release.
 */
export function lockHolds(trace: Trace): LockHold[] {
  const open = new Map<string, { task: number; lock: string; from: number; depth: number }>();
  const last = new Map<number, number>();
  const holds: LockHold[] = [];
  for (let i = 0; i < trace.length; i++) {
    const r = trace.record(i);
    if (!isTaskId(r.actor)) continue;
    last.set(r.actor, r.step);
    const name = trace.eventName(r.event);
    const take = ACQUIRE.exec(name);
    const give = take ? null : RELEASE.exec(name);
    const lock = (take ?? give)?.[2]?.trim();
    if (lock === undefined) continue;
    const key = `${r.actor} ${lock}`;
    const o = open.get(key);
    if (take) {
      if (o) o.depth++;
      else open.set(key, { task: r.actor, lock, from: r.step, depth: 1 });
    } else if (o && --o.depth === 0) {
      open.delete(key);
      holds.push({ task: o.task, lock, from: o.from, to: r.step, released: true });
    }
  }
  for (const o of open.values()) holds.push({ task: o.task, lock: o.lock, from: o.from, to: last.get(o.task) ?? o.from, released: false });
  return holds.sort((a, b) => a.from - b.from);
}
