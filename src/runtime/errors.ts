// Errors a run can end with. Each names what a user needs to find the problem: the actor and its state and
// event for a crash, the step and the expected/actual choice for a replay divergence, the stuck actors for a
// stall. None of them is ever swallowed into a hang.

export class ActorFailure extends Error {
  constructor(
    readonly actor: string,
    readonly state: string,
    readonly event: string,
    readonly error: unknown,
  ) {
    super(`actor ${actor} threw in state '${state}' handling event '${event}': ${describe(error)}`);
    this.name = 'ActorFailure';
  }
}

export class ReplayDivergence extends Error {
  constructor(
    readonly step: number,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`replay diverged at step ${step}: expected ${expected}, but ${actual}`);
    this.name = 'ReplayDivergence';
  }
}

export class RunStalled extends Error {
  constructor(readonly detail: string) {
    super(`run stalled: ${detail}`);
    this.name = 'RunStalled';
  }
}

export class InputError extends Error {
  override name = 'InputError';
}

export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
