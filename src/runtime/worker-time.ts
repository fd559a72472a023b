// Where a threaded run's worker time went: running steps, waiting for a step's locks while another worker's step
// held them, idle with only blocked tasks left (and what they were blocked on), or idle with nothing to do. The
// threaded runtime's answer to "why did two workers not do twice the work" — lock_stat's contention figures and
// the scheduler's run-queue idle time, in one line (issue #19).
import type { Point } from './task.js';

/** Summed over a run's workers (or over the runs of a stress), in ms of host time. */
export interface WorkerTime {
  /** The workers' delivery loops, from their first step to their last, summed. */
  readonly totalMs: number;
  /** Waiting for a lock stripe or the coarse lock that another worker's step held (control.ts). */
  readonly lockWaitMs: number;
  /** Idle with tasks left, every one blocked: waiting for another worker's step to make one ready. */
  readonly blockedMs: number;
  /** Idle with no task, no message and no due timer. */
  readonly idleMs: number;
  /** What the blocked tasks were blocked on while their worker idled, the most first (ms split evenly). */
  readonly blockedOn: readonly BlockedOn[];
}

export interface BlockedOn {
  /** The pending point's label, a trailing instance number dropped (`QI_IWD 4` → `QI_IWD`). */
  readonly label: string;
  readonly ms: number;
}

/** How many blocking points a report keeps (the rest are summed into none). */
const KEEP = 8;

/** One worker's accumulator. */
export class WorkerTimer {
  private readonly began = performance.now();
  private blockedMs = 0;
  private idleMs = 0;
  private readonly on = new Map<string, number>();

  /** An idle wait of `ms`, with the tasks that were live (all blocked) when it began. */
  idled(ms: number, pending: Iterable<{ readonly pending?: Point | undefined }>): void {
    const labels: string[] = [];
    for (const t of pending) if (t.pending) labels.push(pointClass(t.pending.label));
    if (labels.length === 0) {
      this.idleMs += ms;
      return;
    }
    this.blockedMs += ms;
    const share = ms / labels.length;
    for (const l of labels) this.on.set(l, (this.on.get(l) ?? 0) + share);
  }

  report(lockWaitMs: number): WorkerTime {
    return {
      totalMs: performance.now() - this.began,
      lockWaitMs,
      blockedMs: this.blockedMs,
      idleMs: this.idleMs,
      blockedOn: top([...this.on].map(([label, ms]) => ({ label, ms }))),
    };
  }
}

/** A point's label without its instance number: the points of one kind add up. */
export function pointClass(label: string): string {
  return label.replace(/ \d+$/, '');
}

function top(xs: readonly BlockedOn[]): BlockedOn[] {
  return [...xs].sort((a, b) => b.ms - a.ms || (a.label < b.label ? -1 : 1)).slice(0, KEEP);
}

export const NO_TIME: WorkerTime = { totalMs: 0, lockWaitMs: 0, blockedMs: 0, idleMs: 0, blockedOn: [] };

/** The sum of several workers' (or runs') times. */
export function addWorkerTime(a: WorkerTime, b: WorkerTime): WorkerTime {
  const on = new Map<string, number>();
  for (const x of [...a.blockedOn, ...b.blockedOn]) on.set(x.label, (on.get(x.label) ?? 0) + x.ms);
  return {
    totalMs: a.totalMs + b.totalMs,
    lockWaitMs: a.lockWaitMs + b.lockWaitMs,
    blockedMs: a.blockedMs + b.blockedMs,
    idleMs: a.idleMs + b.idleMs,
    blockedOn: top([...on].map(([label, ms]) => ({ label, ms }))),
  };
}

/**
 * `worker time 10.2 s: 49 % running steps, 13 % waiting for step locks, 36 % idle with blocked tasks
 * (mutex_lock(iommu_sva_lock) 91 %, …), 2 % idle` — the shares of the workers' summed time.
 */
export function workerTimeLine(t: WorkerTime): string {
  if (t.totalMs <= 0) return 'worker time: none measured';
  const pct = (ms: number, of = t.totalMs): string => `${((100 * ms) / of).toFixed(0)} %`;
  const running = Math.max(0, t.totalMs - t.lockWaitMs - t.blockedMs - t.idleMs);
  const on = t.blockedOn.filter((b) => b.ms >= 0.01 * t.blockedMs).slice(0, 3);
  const why = on.length > 0 ? ` (${on.map((b) => `${b.label} ${pct(b.ms, t.blockedMs)}`).join(', ')})` : '';
  return (
    `worker time ${(t.totalMs / 1000).toFixed(1)} s: ${pct(running)} running steps, ${pct(t.lockWaitMs)} waiting for step locks, ` +
    `${pct(t.blockedMs)} idle with blocked tasks${why}, ${pct(t.idleMs)} idle`
  );
}
