// What the user reads when a command ends in an error, and its exit status: bad input is exit 2 with the
// file, field, step or flag (the errors say which); a failure of the model or of the simulator is exit 1 naming
// the actor or task, its state and event (src/runtime/errors.ts), and the command line that reproduces it. No
// JavaScript stack: a kernel developer reads the simulator's words, not its code. IOMMU_SIM_DEBUG=1 adds the
// stack for whoever debugs the simulator itself.
import { ActorFailure, InputError, ReplayDivergence, RunStalled } from '../runtime/errors.js';
import { StepBudgetExceeded } from '../runtime/deterministic.js';
import { TaskFailure } from '../runtime/task.js';
import { RemoteFailure } from './remote.js';

/** The exit status of a replay (replay, trace, shrink) that diverged from its recording. */
export const EXIT_DIVERGED = 3;

export interface FailureReport {
  /** 1: the run failed (a crash, a stall, an internal error); 2: the input was refused; 3: a replay diverged. */
  readonly code: 1 | 2 | 3;
  /** What to print on stderr, a line or a few, without a stack unless debugging. */
  readonly text: string;
}

/** The environment variable that puts JavaScript stacks back into error reports. */
export const DEBUG_ENV = 'IOMMU_SIM_DEBUG';

export function debugging(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[DEBUG_ENV];
  return v !== undefined && v !== '' && v !== '0';
}

/** `iommu-sim run x.yaml --seed 3`, quoted for a shell where needed. */
export function commandLine(args: readonly string[]): string {
  return ['iommu-sim', ...args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))].join(' ');
}

/** Commands whose runs are threaded unless told `--runtime deterministic`. */
const THREADED_BY_DEFAULT = new Set(['selftest', 'kselftest', 'sva', 'domains', 'ioasid', 'stress']);

/** Whether the command line ran the threaded runtime: its `--runtime`, else the command's default. */
export function ranThreaded(args: readonly string[]): boolean {
  const i = args.indexOf('--runtime');
  const inline = args.find((a) => a.startsWith('--runtime='));
  const runtime = inline !== undefined ? inline.slice('--runtime='.length) : i >= 0 ? args[i + 1] : undefined;
  return runtime !== undefined ? runtime === 'threaded' : THREADED_BY_DEFAULT.has(args[0] ?? '');
}

/** How to run it again, claiming an exact repeat only where the runtime gives one. */
function reproduce(args: readonly string[]): string {
  return ranThreaded(args)
    ? `run it again with: ${commandLine(args)} (threaded: each run takes its own interleaving, so it may not fail the same way; --runtime deterministic repeats exactly from a seed)`
    : `reproduce with: ${commandLine(args)} (a deterministic run repeats exactly from its seed)`;
}

/**
 * A run's failure that crossed a thread pool (piscina) as a plain Error: its class is lost, its words are not
 * (src/runtime/errors.ts, src/runtime/task.ts).
 */
function lostClass(err: unknown): err is Error {
  return err instanceof Error && /^(actor \S+ threw in state '|task \S+ threw after '|run stalled: |step budget of \d+ exhausted)/.test(err.message);
}

/** The error as the user reads it; `args` are the command's arguments (after `iommu-sim`). */
export function reportFailure(err: unknown, args: readonly string[], debug = debugging()): FailureReport {
  const stack = debug && err instanceof Error && err.stack ? `\n${err.stack}` : '';
  if (err instanceof InputError || (err instanceof RemoteFailure && err.kind === 'input')) return { code: 2, text: `iommu-sim: ${err.message}${stack}` };
  // The JavaScript engine's own limits hit by an input (a nesting or a size it cannot hold) are refused input
  // too; what the input was is in the message the command adds when it knows (load.ts does for scenarios).
  if (err instanceof RangeError) return { code: 2, text: `iommu-sim: ${err.message}${stack}` };
  const again = reproduce(args);
  // The schedule being replayed is already the reproduction: it is named in the command.
  if (err instanceof ReplayDivergence || (err instanceof RemoteFailure && err.name === 'ReplayDivergence')) {
    return { code: EXIT_DIVERGED, text: `iommu-sim: ${err.message}${stack}` };
  }
  if (
    err instanceof ActorFailure ||
    err instanceof TaskFailure ||
    err instanceof RunStalled ||
    err instanceof StepBudgetExceeded ||
    (err instanceof RemoteFailure && err.kind === 'run') ||
    lostClass(err)
  ) {
    return { code: 1, text: `iommu-sim: ${err.message}\niommu-sim: ${again}${stack}` };
  }
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const hint = debug ? '' : `\niommu-sim: this is a bug of the simulator; ${DEBUG_ENV}=1 adds the JavaScript stack to this report`;
  return { code: 1, text: `iommu-sim: internal error: ${what}\niommu-sim: ${again}${hint}${stack}` };
}
