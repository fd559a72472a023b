// Guided replay: follows a recorded sequence of steps as far as it can, leniently. Where the next recorded
// step is not enabled it takes the first enabled one among the next few recorded steps (dropping those it
// passes over); where none of them is, and once the sequence is used up, it takes a deterministic default. So
// any subsequence of a schedule — what delta debugging (Zeller & Hildebrandt, TSE 2002) tries — still gives a
// complete, deterministic run, which records its own schedule for strict replay. Used by `shrink`.
//
// The default does not preempt: the thread that ran last goes on while it can, else the one that has waited
// longest. Few preemptions are what most concurrency bugs need (Musuvathi & Qadeer, CHESS), so the recorded
// steps that survive shrinking are the preemptions the failure depends on, and the rest reads as plain runs
// of one thread after another.
//
// Task ids name the step that spawned them (task.ts: TASK_BASE + 16 × (step + 1) + index), so once steps are
// left out the same task has another id. The guide renames them: a recorded step it followed maps to the step
// it was taken at, and a task spawned at the one is the task spawned at the other.
import type { Choice, Scheduler } from '../scheduler.js';
import { channelKey } from '../scheduler.js';
import type { Schedule } from '../schedule.js';
import { spawnOf, TASK_BASE, taskIdAt } from '../task.js';

/**
 * How many recorded steps are looked at when the next one is not enabled. A few get past a step that shrinking
 * took the cause of; many drop long stretches of the guide at once (on the README's sva race, 4 shrank it
 * further than 1, 2 or 16 did).
 */
const LOOKAHEAD = 4;

export class GuidedScheduler implements Scheduler {
  readonly name = 'guided';
  private started = false;
  /** Next position in `steps` to follow. */
  private cursor = 0;
  /** Recorded step → step of this run it was taken at. */
  private readonly taken = new Map<number, number>();
  /** Thread → the step it last ran at, for the default. */
  private readonly lastRun = new Map<number, number>();
  private last: number | undefined;
  private followed = 0;
  private defaults = 0;

  /** `steps`: indices into `schedule`, ascending — the subsequence to follow. */
  constructor(
    private readonly schedule: Schedule,
    private readonly steps: readonly number[],
  ) {}

  newExecution(): boolean {
    if (this.started) return false;
    this.started = true;
    return true;
  }

  next(enabled: readonly Choice[], step: number): Choice {
    const end = Math.min(this.steps.length, this.cursor + LOOKAHEAD);
    for (let j = this.cursor; j < end; j++) {
      const rec = this.steps[j] as number;
      const c = this.find(enabled, rec);
      if (c) {
        // Recorded steps passed over are dropped: the run has moved past the point where they made sense.
        this.cursor = j + 1;
        this.taken.set(rec, step);
        this.followed++;
        return this.ran(c, step);
      }
    }
    this.defaults++;
    return this.ran(this.fallback(enabled), step);
  }

  endExecution(): void {}

  describe(): string {
    return `guided by ${this.steps.length} of ${this.schedule.length} recorded steps: ${this.followed} followed, ${this.defaults} by default`;
  }

  /** The enabled step that recorded step `rec` names, with task ids renamed; undefined when none is. */
  private find(enabled: readonly Choice[], rec: number): Choice | undefined {
    const receiver = this.rename(this.schedule.receiver(rec));
    const sender = this.rename(this.schedule.sender(rec));
    if (receiver === undefined || sender === undefined) return undefined;
    const key = channelKey(sender, receiver);
    for (const c of enabled) if (c.key === key) return c;
    return undefined;
  }

  /** A recorded id as this run numbers it: tasks by the step that spawned them; undefined if not spawned here. */
  private rename(id: number): number | undefined {
    if (id < TASK_BASE) return id;
    const spawned = spawnOf(id);
    if (spawned.step < 0) return id; // the run's initial tasks: the same in every run
    const at = this.taken.get(spawned.step);
    return at === undefined ? undefined : taskIdAt(at, spawned.index);
  }

  /**
   * No preemption: the thread that ran last, its oldest step first. Else round-robin: the thread that has
   * waited longest (never run first), then the oldest message, then the lowest channel key — so a default tail
   * cannot starve the thread a failure depends on. A function of the run so far only.
   */
  private fallback(enabled: readonly Choice[]): Choice {
    let same: Choice | undefined;
    for (const c of enabled) if (c.thread === this.last && (!same || c.seq < same.seq)) same = c;
    if (same) return same;
    let best = enabled[0] as Choice;
    let bestAt = this.lastRun.get(best.thread) ?? -1;
    for (let i = 1; i < enabled.length; i++) {
      const c = enabled[i] as Choice;
      const at = this.lastRun.get(c.thread) ?? -1;
      if (at < bestAt || (at === bestAt && (c.seq < best.seq || (c.seq === best.seq && c.key < best.key)))) {
        best = c;
        bestAt = at;
      }
    }
    return best;
  }

  private ran(c: Choice, step: number): Choice {
    this.lastRun.set(c.thread, step);
    this.last = c.thread;
    return c;
  }
}
