// Ctrl-C and SIGTERM for long commands: the first signal aborts the command's AbortSignal, so that it stops its
// workers and children and prints its summary so far, then ends with 128 + the signal's number (130, 143) as a
// shell expects of a command stopped by a signal. A second signal ends the process at once, for a user who will
// not wait for the summary.
import { Exit } from './exit.js';

export type StopSignal = 'SIGINT' | 'SIGTERM';

const EXIT_CODES: Readonly<Record<StopSignal, number>> = { SIGINT: 130, SIGTERM: 143 };

export interface Interrupts {
  /** Aborted by the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** Which signal stopped the command, if one did. */
  readonly received: StopSignal | undefined;
  /** Run `f` when the command is interrupted (stop a child process); at once if it already was. */
  onStop(f: () => void): void;
  /** Put the default signal handling back (the command is done). */
  dispose(): void;
  /** When interrupted: a line on stderr saying what was stopped, then Exit(130 / 143). */
  exitIfStopped(tag: string, what?: string): void;
}

/** `1 run`, `2 runs`: a count in words that agree with it (summaries, exitIfStopped's line). */
export function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Catch SIGINT and SIGTERM for the duration of a command. Call dispose() when it ends (in a finally). */
export function interrupts(): Interrupts {
  const ac = new AbortController();
  let received: StopSignal | undefined;
  const stops: (() => void)[] = [];
  const handler = (sig: StopSignal): void => {
    if (received) {
      process.stderr.write(`\niommu-sim: ${sig} again: stopping without a summary\n`);
      process.exit(EXIT_CODES[sig]);
    }
    received = sig;
    process.stderr.write(`\niommu-sim: ${sig}: stopping; the summary so far follows (${sig} again to stop at once)\n`);
    ac.abort(new Error(`interrupted by ${sig}`));
    for (const f of stops.splice(0)) f();
  };
  const onInt = (): void => handler('SIGINT');
  const onTerm = (): void => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: ac.signal,
    get received() {
      return received;
    },
    onStop(f) {
      if (received) f();
      else stops.push(f);
    },
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
    exitIfStopped(tag, what = 'stopped') {
      if (!received) return;
      process.stderr.write(`${tag}: interrupted by ${received}; ${what}\n`);
      throw new Exit(EXIT_CODES[received]);
    },
  };
}

/** Run `body` with interrupts caught; the handlers are removed however it ends. */
export async function withInterrupts<T>(body: (i: Interrupts) => Promise<T>): Promise<T> {
  const i = interrupts();
  try {
    return await body(i);
  } finally {
    i.dispose();
  }
}
