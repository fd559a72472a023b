// An error that happened in a worker thread, carried back to the CLI: a worker's errors cross as plain data, so
// their class is lost on the way; what the CLI's report needs of it (src/cli/failure.ts) is its kind.
import { ActorFailure, InputError, ReplayDivergence, RunStalled } from '../runtime/errors.js';
import { StepBudgetExceeded } from '../runtime/deterministic.js';
import { TaskFailure } from '../runtime/task.js';

/** input: refused input (exit 2); run: the run failed (a crash, a stall, a divergence: exit 1); internal: a bug. */
export type RemoteKind = 'input' | 'run' | 'internal';

export interface RemoteError {
  readonly kind: RemoteKind;
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

export function toRemote(err: unknown): RemoteError {
  if (!(err instanceof Error)) return { kind: 'internal', name: 'Error', message: String(err) };
  const kind: RemoteKind =
    err instanceof InputError || err instanceof RangeError
      ? 'input'
      : err instanceof ActorFailure || err instanceof TaskFailure || err instanceof RunStalled || err instanceof ReplayDivergence || err instanceof StepBudgetExceeded
        ? 'run'
        : 'internal';
  return { kind, name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
}

export class RemoteFailure extends Error {
  readonly kind: RemoteKind;
  constructor(e: RemoteError) {
    super(e.message);
    this.kind = e.kind;
    this.name = e.name;
    if (e.stack) this.stack = e.stack;
  }
}
