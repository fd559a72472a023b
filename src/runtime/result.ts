// What a run produces, whichever runtime ran it.
import type { ActorFinal, BlockedTask, Finding, Wire, WorkloadCheck } from './model.js';
import type { Schedule } from './schedule.js';
import type { SpawnCounts } from './spawn.js';
import type { Trace } from './trace.js';
import type { WorkerTime } from './worker-time.js';

export type RuntimeName = 'threaded' | 'deterministic';
export type Placement = 'sharded' | 'per-actor';

export interface Accounting {
  readonly sent: number;
  readonly delivered: number;
  readonly queued: number;
  /** sent == delivered + queued */
  readonly ok: boolean;
}

export interface RunResult {
  readonly runtime: RuntimeName;
  readonly strategy: string;
  readonly seed: number;
  readonly workload: { readonly name: string; readonly params: Readonly<Record<string, Wire>> };
  readonly placement?: Placement;
  readonly workers?: number;
  /**
   * Threaded runs: the locked steps (task points, atomic operations, deliveries of shared events) that took
   * only the lock stripes of the objects they declare, and those that took the coarse fallback lock.
   */
  readonly locking?: LockingCounts;
  /** Threaded runs: where the workers' time went (worker-time.ts), summed over the workers. */
  readonly workerTime?: WorkerTime;
  readonly steps: number;
  readonly timersFired: number;
  /** Model messages and atomic operations (a threaded run's spawn messages are in `spawns`, not here). */
  readonly accounting: Accounting;
  /**
   * Threaded: tasks spawned at run time that their worker dealt to another (runtime/spawn.ts), as messages
   * between workers — sent == taken + queued. Kept out of `accounting`, whose figures are the model's.
   */
  readonly spawns?: SpawnCounts;
  /** Threaded: the task points each worker performed, by worker index. */
  readonly taskPoints?: readonly number[];
  readonly trace: Trace;
  readonly traceHash: string;
  readonly finals: readonly ActorFinal[];
  readonly shared: Int32Array;
  readonly check: WorkloadCheck;
  /** What the workload's checkers reported (kernel-style reports). */
  readonly findings: readonly Finding[];
  /** Tasks that were still blocked when the run had nothing left to do. */
  readonly blocked: readonly BlockedTask[];
  readonly schedule: Schedule;
  readonly elapsedMs: number;
  /**
   * Threaded: the run was stopped by its caller's budget before it ended, at step `atStep` (the tickets drawn
   * when the stop flag was raised); `steps - atStep` points were already under way. Its findings happened; its
   * check and accounting describe a state halfway through and judge nothing.
   */
  readonly cut?: { readonly atStep: number };
}

export interface LockingCounts {
  readonly striped: number;
  readonly fallback: number;
  /** Striped steps whose computed footprint changed under their locks and were locked again (footprint.ts). */
  readonly relocked?: number;
}

/** The share of locked steps that took the coarse fallback lock (0 when none was locked). */
export function fallbackShare(l: LockingCounts): number {
  const all = l.striped + l.fallback;
  return all === 0 ? 0 : l.fallback / all;
}

/** `locked steps 1234, 5.0 % on the coarse fallback lock`: how much of a threaded run ran per object. */
export function lockingLine(l: LockingCounts): string {
  const again = l.relocked ? `, ${l.relocked} locked again` : '';
  return `locked steps ${l.striped + l.fallback}, ${(100 * fallbackShare(l)).toFixed(1)} % on the coarse fallback lock${again}`;
}

/** A run passes when its invariants and its accounting hold and no checker reported anything. */
export function passed(r: RunResult): boolean {
  return r.check.ok && r.accounting.ok && r.findings.length === 0;
}

export function accountingLine(a: Accounting): string {
  return `sent ${a.sent} == delivered ${a.delivered} + queued ${a.queued}: ${a.ok ? 'ok' : 'MISMATCH'}`;
}
