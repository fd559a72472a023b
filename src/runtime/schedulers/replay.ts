// Replays a recorded schedule step by step (from either runtime). Any difference — a recorded step that is
// not enabled, a step that handles a different event, a run that ends early or goes on — stops the run with a
// ReplayDivergence saying where: step, actor, what was expected and what happened.
import { ReplayDivergence } from '../errors.js';
import type { Choice, Scheduler } from '../scheduler.js';
import type { Schedule } from '../schedule.js';

export class ReplayScheduler implements Scheduler {
  readonly name = 'replay';
  private started = false;

  constructor(
    private readonly schedule: Schedule,
    private readonly nameOf: (id: number) => string,
  ) {}

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
