// How hardware speaks: what a unit or a device does in response to a message is to send messages, to send
// itself one later (a slow device), or to start a kernel task (an interrupt's threaded handler). The actor
// hosting the hardware turns these into runtime effects.
import type { Wire } from '../runtime/model.js';
import type { HwMessage } from './messages.js';

export interface HwOut {
  send(to: number, msg: HwMessage): void;
  later(msg: HwMessage, ms: number): void;
  spawn(task: string, args: Wire, name?: string): void;
  /**
   * The message took the hardware `ns` of its time (a table fetch, a command's execution: the vendor's cost
   * table): the unit is busy that long — in the deterministic runtime its next delivery comes no sooner, on
   * simulated time; in the threaded runtime the actor's thread spins that long in real time.
   */
  busy(ns: number): void;
}


/** The hardware behind one actor: handles one message at a time; `step` dates what its oracles find. */
export interface Hardware {
  readonly actorName: string;
  handle(self: number, msg: HwMessage, out: HwOut, step: number): void;
  /** Forget per-execution state (a new execution of an exploration starts). */
  reset(): void;
}
