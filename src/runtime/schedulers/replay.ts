// Replays a recorded schedule step by step (from either runtime). Any difference — a recorded step that is
// not enabled, a step that handles a different event, a run that ends early or goes on — stops the run with a
// ReplayDivergence saying where: step, actor, what was expected and what happened. It also hands the runtime
// what the recording says of time (a threaded run's step times) and of its end (a run halted at a finding
// ends after its last recorded step, whatever is still enabled).
import { ReplayDivergence } from '../errors.js';
import type { Choice, Scheduler } from '../scheduler.js';
import type { Schedule } from '../schedule.js';

export class ReplayScheduler implements Scheduler {
  readonly name = 'replay';
  private started = false;
  /** Names of the tasks the replay has spawned so far (a task's id is its spawning step: see task.ts). */
  private taskName: (id: number) => string | undefined = () => undefined;

  constructor(
    private readonly schedule: Schedule,
    private readonly actorName: (id: number) => string,
  ) {}

  /** The runtime says how its tasks are named, so that a divergence names a task as the trace does. */
  nameTasks(name: (id: number) => string | undefined): void {
    this.taskName = name;
  }

  private nameOf(id: number): string {
    const t = this.taskName(id);
    return t === undefined ? this.actorName(id) : `task ${t}`;
  }

  /** The recording has step times (a threaded run): the clock follows them. */
  get timed(): boolean {
    return this.schedule.times !== undefined;
  }

  /** Where the replay stops by itself: after the last step of a recording that halted at a finding. */
  get stopAt(): number | undefined {
    return this.schedule.meta.end === 'halted' ? this.schedule.length : undefined;
  }

  /** The time the recorded step was taken at (timed recordings). */
  timeAt(step: number): number | undefined {
    return this.schedule.time(step);
  }

  newExecution(): boolean {
    if (this.started) return false;
    this.started = true;
    return true;
  }

  next(enabled: readonly Choice[], step: number): Choice {
    const s = this.schedule;
    if (step >= s.length) {
      throw new ReplayDivergence(
        step,
        `the run to end after ${s.length} steps`,
        `${enabled.length} steps are still enabled (${this.list(enabled)})`,
      );
    }
    const receiver = s.receiver(step);
    const sender = s.sender(step);
    for (const c of enabled) if (c.receiver === receiver && c.sender === sender) return c;
    throw new ReplayDivergence(
      step,
      `${this.nameOf(receiver)} to handle '${s.eventName(step)}' from ${this.nameOf(sender)}`,
      `no such step is enabled (enabled: ${this.list(enabled)})`,
    );
  }

  /** Called by the runtime with the event the chosen step actually handled. */
  verify(step: number, actor: number, event: number, eventName: string): void {
    if (this.schedule.event(step) !== event) {
      throw new ReplayDivergence(
        step,
        `${this.nameOf(actor)} to handle '${this.schedule.eventName(step)}'`,
        `it handled '${eventName}'`,
      );
    }
  }

  endExecution(steps: number): void {
    if (steps < this.schedule.length) {
      throw new ReplayDivergence(
        steps,
        `${this.nameOf(this.schedule.receiver(steps))} to handle '${this.schedule.eventName(steps)}' (${this.schedule.length} steps recorded)`,
        'the run ended: nothing was enabled',
      );
    }
  }

  describe(): string {
    return `replay of ${this.schedule.length} steps`;
  }

  private list(enabled: readonly Choice[]): string {
    const shown = enabled.slice(0, 8).map((c) => `${this.nameOf(c.sender)}→${this.nameOf(c.receiver)}`);
    return shown.join(', ') + (enabled.length > 8 ? `, … ${enabled.length - 8} more` : '');
  }
}
