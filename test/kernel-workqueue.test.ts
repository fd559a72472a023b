// Workqueues (src/kernel/workqueue.ts): queue_work/flush_work/flush_workqueue/cancel_work_sync semantics, kworker
// names and context, non-reentrancy, ordered workqueues, delayed work, and the reports: a work function that
// returns holding a lock (`BUG: workqueue leaked lock or atomic`), flush_work from atomic context, flushing a
// work that needs a lock the flusher holds (deadlock). Deterministic runtime, fixed seeds.
import { kernel, pause, runOnce, tasksWorkload, words } from './kernel-harness.js';
import { describe, expect, it } from 'vitest';
import type { Kernel } from '../src/kernel/kernel.js';
import { defineMutex, mutex_lock, mutex_unlock } from '../src/kernel/mutex.js';
import { defineSpinlock, spin_lock, spin_unlock } from '../src/kernel/spinlock.js';
import {
  alloc_ordered_workqueue,
  alloc_workqueue,
  cancel_work_sync,
  defineWork,
  destroy_workqueue,
  flush_work,
  flush_workqueue,
  queue_delayed_work,
  queue_work,
  schedule_work,
  work_pending,
} from '../src/kernel/workqueue.js';
import type { Workload } from '../src/runtime/model.js';

function workload(k: Kernel, tasks: string[]): Workload {
  return tasksWorkload(k, 'workqueue-test', tasks);
}

const run = runOnce;

describe('queueing and flushing', () => {
  it('queue_work returns false while the item is pending, and the item then runs once', () => {
    const k = kernel();
    const wq = alloc_ordered_workqueue(k, 'iommu_pasid_wq');
    const w = words(k, 2); // [0] gate, [1] runs of item
    const blocker = defineWork(k, 'blocker', function* (t) {
      yield* w.until(t, 'gate', () => w.get(0) === 1);
    });
    const item = defineWork(k, 'free_pasid_work', function* (t) {
      yield* w.add(t, 1, 1);
    });
    const rets: boolean[] = [];
    k.task('driver', 'process', function* (t) {
      rets.push(yield* queue_work(k, t, wq, blocker));
      rets.push(yield* queue_work(k, t, wq, item));
      rets.push(work_pending(k, item));
      rets.push(yield* queue_work(k, t, wq, item));
      yield* w.set(t, 0, 1);
      yield* flush_workqueue(k, t, wq);
      rets.push(work_pending(k, item));
    });
    const wl = workload(k, ['driver']);
    for (let seed = 1; seed <= 20; seed++) {
      rets.length = 0;
      const r = run(wl, seed);
      expect(r.findings).toEqual([]);
      expect(rets).toEqual([true, true, true, false, false]);
      expect(w.get(1)).toBe(1);
    }
  });

  it('flush_work returns only once the item has run (100 seeds)', () => {
    const k = kernel();
    const wq = alloc_workqueue(k, 'wq', { unbound: true });
    const w = words(k, 1);
    const item = defineWork(k, 'item', function* (t) {
      yield* pause(k, t, 2);
      yield* w.set(t, 0, 1);
    });
    k.task('driver', 'process', function* (t) {
      yield* queue_work(k, t, wq, item);
      const waited = yield* flush_work(k, t, item);
      yield* k.step(t, 'check', () => {
        expect(w.get(0)).toBe(1);
        expect(typeof waited).toBe('boolean');
      });
    });
    const wl = workload(k, ['driver']);
    for (let seed = 1; seed <= 100; seed++) {
      const r = run(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
  });

  it('flush_workqueue waits for every item queued on it (100 seeds)', () => {
    const k = kernel();
    const wq = alloc_workqueue(k, 'wq');
    const w = words(k, 1);
    const items = ['a', 'b', 'c'].map((n) =>
      defineWork(k, n, function* (t) {
        yield* pause(k, t, 1);
        yield* w.add(t, 0, 1);
      }),
    );
    k.task('driver', 'process', function* (t) {
      for (const it of items) yield* queue_work(k, t, wq, it);
      yield* flush_workqueue(k, t, wq);
      yield* k.step(t, 'check', () => expect(w.get(0)).toBe(3));
    });
    const wl = workload(k, ['driver']);
    for (let seed = 1; seed <= 100; seed++) {
      const r = run(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
  });

  it('an item is never run by two workers at once, even when re-queued while it runs (200 seeds)', () => {
    const k = kernel();
    const wq = alloc_workqueue(k, 'wq', { unbound: true });
    const w = words(k, 3); // [0] running now, [1] overlaps, [2] runs
    const item = defineWork(k, 'item', function* (t) {
      yield* k.step(t, 'enter', () => {
        if (Atomics.add(k.i32, w.addr(0), 1) > 0) Atomics.add(k.i32, w.addr(1), 1);
        Atomics.add(k.i32, w.addr(2), 1);
      });
      yield* pause(k, t, 2);
      yield* k.step(t, 'leave', () => Atomics.sub(k.i32, w.addr(0), 1));
    });
    k.task('driver', 'process', function* (t) {
      for (let i = 0; i < 4; i++) {
        yield* queue_work(k, t, wq, item);
        yield* pause(k, t, 1);
      }
      yield* flush_workqueue(k, t, wq);
    });
    const wl = workload(k, ['driver', 'driver']);
    let maxRuns = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const r = run(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(w.get(1)).toBe(0);
      maxRuns = Math.max(maxRuns, w.get(2));
    }
    expect(maxRuns).toBeGreaterThan(1);
  });

  it('an ordered workqueue runs its items one at a time, in queueing order', () => {
    const k = kernel();
    const wq = alloc_ordered_workqueue(k, 'ordered');
    const order: string[] = [];
    const items = ['a', 'b', 'c', 'd'].map((n) =>
      defineWork(k, n, function* (t) {
        yield* k.step(t, `start ${n}`, () => order.push(`+${n}`));
        yield* pause(k, t, 1);
        yield* k.step(t, `end ${n}`, () => order.push(`-${n}`));
      }),
    );
    k.task('driver', 'process', function* (t) {
      for (const it of items) yield* queue_work(k, t, wq, it);
    });
    const wl = workload(k, ['driver']);
    for (let seed = 1; seed <= 50; seed++) {
      order.length = 0;
      const r = run(wl, seed);
      expect(r.findings).toEqual([]);
      expect(order).toEqual(['+a', '-a', '+b', '-b', '+c', '-c', '+d', '-d']);
    }
  });

  it('cancel_work_sync: a pending item does not run; it returns whether it was pending', () => {
    const k = kernel();
    const wq = alloc_ordered_workqueue(k, 'wq');
    const w = words(k, 2);
    const blocker = defineWork(k, 'blocker', function* (t) {
      yield* w.until(t, 'gate', () => w.get(0) === 1);
    });
    const item = defineWork(k, 'item', function* (t) {
      yield* w.add(t, 1, 1);
    });
    const rets: boolean[] = [];
    k.task('driver', 'process', function* (t) {
      yield* queue_work(k, t, wq, blocker);
      yield* queue_work(k, t, wq, item);
      rets.push(yield* cancel_work_sync(k, t, item));
      rets.push(yield* cancel_work_sync(k, t, item));
      yield* w.set(t, 0, 1);
      yield* flush_workqueue(k, t, wq);
      rets.push(yield* queue_work(k, t, wq, item));
      yield* flush_work(k, t, item);
    });
    const wl = workload(k, ['driver']);
    for (let seed = 1; seed <= 30; seed++) {
      rets.length = 0;
      const r = run(wl, seed);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(rets).toEqual([true, false, true]);
      expect(w.get(1)).toBe(1);
    }
  });

  it('delayed work runs no earlier than its delay (simulated time)', () => {
    const k = kernel();
    const wq = alloc_workqueue(k, 'wq');
    const at: number[] = [];
    const item = defineWork(k, 'deferred_free', function* (t) {
      yield* k.step(t, 'run', (env) => at.push(env.now()));
    });
    k.task('driver', 'process', function* (t) {
      yield* queue_delayed_work(k, t, wq, item, 50);
      yield* flush_work(k, t, item);
    });
    const r = run(workload(k, ['driver']), 1);
    expect(r.findings).toEqual([]);
    expect(at).toHaveLength(1);
    expect(at[0]).toBeGreaterThanOrEqual(50);
  });
});

describe('worker context and reports', () => {
  it('workers are named like kworkers and run in workqueue context (a mutex is fine there)', () => {
    const k = kernel();
    const unbound = alloc_workqueue(k, 'unbound', { unbound: true });
    const m = defineMutex(k, 'm');
    const seen: string[] = [];
    const item = defineWork(k, 'item', function* (t) {
      seen.push(`${t.kind} ${t.comm}`);
      yield* mutex_lock(k, t, m);
      yield* mutex_unlock(k, t, m);
    });
    const bound = defineWork(k, 'bound_item', (t) =>
      k.step(t, 'bound_item', () => {
        seen.push(`${t.kind} ${t.comm}`);
      }),
    );
    k.task('driver', 'process', function* (t) {
      yield* queue_work(k, t, unbound, item);
      yield* flush_work(k, t, item);
      yield* schedule_work(k, t, bound);
      yield* flush_work(k, t, bound);
    });
    const r = run(workload(k, ['driver']), 1);
    expect(r.findings).toEqual([]);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatch(/^workqueue kworker\/u8:\d+$/);
    expect(seen[1]).toMatch(/^workqueue kworker\/0:\d+$/);
  });

  function leakWorkload(unlock: boolean): Workload {
    const k = kernel();
    const wq = alloc_workqueue(k, 'wq', { unbound: true });
    const m = defineMutex(k, 'pasid_mutex');
    const item = defineWork(k, 'pasid_free_work', function* (t) {
      yield* mutex_lock(k, t, m);
      if (unlock) yield* mutex_unlock(k, t, m);
    });
    k.task('driver', 'process', function* (t) {
      yield* queue_work(k, t, wq, item);
    });
    return workload(k, ['driver']);
  }

  it('a work function that returns holding a lock: BUG: workqueue leaked lock or atomic', () => {
    const r = run(leakWorkload(false), 1);
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]?.title).toMatch(/^BUG: workqueue leaked lock or atomic: kworker\/u8:\d+\/0x00000000\/\d+$/);
    expect(r.findings[0]?.text).toContain('(pasid_mutex)');
    expect(r.findings[0]?.text).toContain('at: pasid_free_work');
  });

  it('the same work function releasing it: no report', () => {
    const w = leakWorkload(true);
    for (let seed = 1; seed <= 20; seed++) expect(run(w, seed).findings).toEqual([]);
  });

  it('flush_work under a spinlock: might_sleep; without it: none', () => {
    for (const locked of [true, false]) {
      const k = kernel();
      const wq = alloc_workqueue(k, 'wq');
      const s = defineSpinlock(k, 's');
      const item = defineWork(k, 'item', function* (t) {
        yield* pause(k, t, 1);
      });
      k.task('driver', 'process', function* (t) {
        yield* queue_work(k, t, wq, item);
        if (locked) yield* spin_lock(k, t, s);
        yield* flush_work(k, t, item);
        if (locked) yield* spin_unlock(k, t, s);
      });
      const r = run(workload(k, ['driver']), 1);
      if (locked) {
        expect(r.findings.map((f) => f.title)).toEqual(['BUG: sleeping function called from invalid context at kernel/workqueue.c:4177']);
        expect(r.findings[0]?.text).toContain(' flush_work\n');
      } else {
        expect(r.findings).toEqual([]);
      }
    }
  });

  it('flushing a work that needs a mutex the flusher holds: deadlock naming the worker', () => {
    const k = kernel();
    const wq = alloc_workqueue(k, 'wq', { unbound: true });
    const m = defineMutex(k, 'group_mutex');
    const item = defineWork(k, 'iopf_handler', function* (t) {
      yield* mutex_lock(k, t, m);
      yield* mutex_unlock(k, t, m);
    });
    k.task('unbind', 'process', function* (t) {
      yield* mutex_lock(k, t, m);
      yield* queue_work(k, t, wq, item);
      yield* flush_work(k, t, item);
      yield* mutex_unlock(k, t, m);
    });
    const wl = workload(k, ['unbind']);
    for (let seed = 1; seed <= 10; seed++) {
      const r = run(wl, seed);
      expect(r.findings).toHaveLength(1);
      const f = r.findings[0];
      expect(f?.title).toMatch(/^BUG: deadlock: /);
      expect(f?.title).toContain('unbind/');
      expect(f?.title).toContain('kworker/u8:');
      expect(f?.text).toContain('waits on work iopf_handler');
      expect(f?.text).toContain('waits on mutex group_mutex');
    }
  });

  it('queue_work on a destroyed workqueue: the kernel WARN, and the work is dropped', () => {
    const k = kernel();
    const wq = alloc_workqueue(k, 'wq');
    const item = defineWork(k, 'item', function* (t) {
      yield* pause(k, t, 1);
    });
    k.task('driver', 'process', function* (t) {
      yield* queue_work(k, t, wq, item);
      yield* destroy_workqueue(k, t, wq);
      yield* queue_work(k, t, wq, item);
    });
    const r = run(workload(k, ['driver']), 1);
    expect(r.findings.map((f) => f.title)).toEqual([
      expect.stringMatching(/^WARNING: CPU: 0 PID: \d+ at kernel\/workqueue.c:1615 __queue_work$/),
    ]);
    expect(r.findings[0]?.text).toContain('queue_work of item on workqueue wq, which has been destroyed');
  });

  it('declaring work items once the run has started is an error', () => {
    const k = kernel();
    k.task('t', 'process', function* (t) {
      yield* pause(k, t, 1);
      defineWork(k, 'late', (t2) => pause(k, t2, 0));
    });
    expect(() => run(workload(k, ['t']), 1)).toThrow(/declare workqueues/);
  });
});
