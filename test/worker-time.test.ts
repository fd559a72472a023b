// Where a threaded run's worker time went (src/runtime/worker-time.ts): idle time split over what the blocked
// tasks wait on, sums over workers and runs, the summary line — and, in a real threaded run of the sva model
// (bounded: one run), shares that add up whatever the interleaving.
import { describe, expect, it } from 'vitest';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { run } from '../src/runtime/run.js';
import type { Point } from '../src/runtime/task.js';
import { addWorkerTime, NO_TIME, pointClass, type WorkerTime, WorkerTimer, workerTimeLine } from '../src/runtime/worker-time.js';

const pending = (label: string): { pending: Point } => ({ pending: { label, ready: () => false } as Point });

describe('worker time', () => {
  it('an idle wait with blocked tasks is split evenly over what they wait on (ties by label); without tasks it is plain idle', () => {
    const t = new WorkerTimer();
    t.idled(9, [pending('mutex_lock(iommu_sva_lock)'), pending('mutex_lock(iommu_sva_lock)'), pending('QI_IWD 4')]);
    t.idled(3, [pending('QI_IWD 17')]);
    t.idled(5, []);
    const r = t.report(2);
    expect(r.blockedMs).toBe(12);
    expect(r.idleMs).toBe(5);
    expect(r.lockWaitMs).toBe(2);
    expect(r.blockedOn).toEqual([
      { label: 'QI_IWD', ms: 6 },
      { label: 'mutex_lock(iommu_sva_lock)', ms: 6 },
    ]);
    expect(r.totalMs).toBeGreaterThanOrEqual(0);
  });

  it("a point's instance number is dropped, the rest of its label kept", () => {
    expect(pointClass('CMD_SYNC 134')).toBe('CMD_SYNC');
    expect(pointClass('mutex_lock(&uacce->mutex)')).toBe('mutex_lock(&uacce->mutex)');
    expect(pointClass('wait for 0000:01:02.0 to drain PASID 2')).toBe('wait for 0000:01:02.0 to drain PASID');
  });

  it('sums add every figure and merge the blocking points by label', () => {
    const a: WorkerTime = { totalMs: 100, lockWaitMs: 10, blockedMs: 30, idleMs: 5, blockedOn: [{ label: 'x', ms: 20 }, { label: 'y', ms: 10 }] };
    const b: WorkerTime = { totalMs: 50, lockWaitMs: 1, blockedMs: 20, idleMs: 0, blockedOn: [{ label: 'y', ms: 20 }] };
    expect(addWorkerTime(addWorkerTime(NO_TIME, a), b)).toEqual({
      totalMs: 150,
      lockWaitMs: 11,
      blockedMs: 50,
      idleMs: 5,
      blockedOn: [
        { label: 'y', ms: 30 },
        { label: 'x', ms: 20 },
      ],
    });
  });

  it('the line gives each share of the summed time and the top blocking points as shares of the blocked time', () => {
    const t: WorkerTime = { totalMs: 2000, lockWaitMs: 200, blockedMs: 800, idleMs: 100, blockedOn: [{ label: 'mutex_lock(iommu_sva_lock)', ms: 600 }, { label: 'QI_IWD', ms: 200 }] };
    expect(workerTimeLine(t)).toBe(
      'worker time 2.0 s: 45 % running steps, 10 % waiting for step locks, 40 % idle with blocked tasks (mutex_lock(iommu_sva_lock) 75 %, QI_IWD 25 %), 5 % idle',
    );
    expect(workerTimeLine(NO_TIME)).toBe('worker time: none measured');
  });

  it('a threaded sva run on 2 workers accounts its time: the parts fit in the whole, the blocking points in the blocked time', async () => {
    const params = { iommus: 'vtd,amd', devices: 2, processes: 4, script: 'stress', dmas: 2, rounds: 1 };
    const r = await run({ workload: { name: 'sva', params }, runtime: 'threaded', seed: 1, workers: 2, keepTrace: false });
    expect(r.check.problems).toEqual([]);
    const t = r.workerTime as WorkerTime;
    expect(t.totalMs).toBeGreaterThan(0);
    for (const part of [t.lockWaitMs, t.blockedMs, t.idleMs]) expect(part).toBeGreaterThanOrEqual(0);
    // Each worker's parts are measured inside its loop's span (float sums: a microsecond's slack).
    expect(t.lockWaitMs + t.blockedMs + t.idleMs).toBeLessThanOrEqual(t.totalMs + 1e-3);
    const on = t.blockedOn.reduce((s, b) => s + b.ms, 0);
    expect(on).toBeLessThanOrEqual(t.blockedMs + 1e-3);
    for (const b of t.blockedOn) expect(b.label).not.toMatch(/ \d+$/);
  });
});
