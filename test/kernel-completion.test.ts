// Completions and wait queues: a waiter never passes before complete() (and sees what was published before
// it), timeouts return 0 after simulated time has moved to the deadline, a waiter nobody completes is a hung
// task naming what it waits on, a wake-up that is never sent leaves a wait_event sleeping, and waiting in
// atomic context is a might_sleep report.
import { describe, expect, it } from 'vitest';
import {
  COMPLETION_ALL,
  complete,
  complete_all,
  completion_done,
  defineCompletion,
  reinit_completion,
  try_wait_for_completion,
  wait_for_completion,
  wait_for_completion_timeout,
} from '../src/kernel/completion.js';
import { kernelWorkload } from '../src/kernel/workload.js';
import { Kernel } from '../src/kernel/kernel.js';
import { defineSpinlock, spin_lock, spin_unlock } from '../src/kernel/spinlock.js';
import { defineWaitQueue, wait_event, wait_event_timeout, wake_up } from '../src/kernel/waitqueue.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Workload } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import type { Scheduler } from '../src/runtime/scheduler.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';

function workload(k: Kernel, initialTasks: NonNullable<Workload['initialTasks']>): Workload {
  return kernelWorkload(k, 'completion-test', initialTasks);
}

function once(w: Workload, seed = 1, s: Scheduler = new RandomScheduler(seed)): RunResult {
  s.newExecution();
  return runDeterministic({ workload: w, seed, scheduler: s });
}

/** A word of static shared memory, as a getter/setter pair (valid once attached). */
function word(k: Kernel, name: string) {
  const off = k.statics.alloc(1, name);
  return {
    get: () => Atomics.load(k.i32, k.mem.statics + off),
    set: (v: number) => Atomics.store(k.i32, k.mem.statics + off, v),
  };
}

describe('completion', () => {
  it('a waiter never passes before complete(), and sees what was published before it', () => {
    const k = new Kernel();
    const done = defineCompletion(k, 'setup_done');
    const data = word(k, 'data');
    const seen = word(k, 'seen');
    k.task('waiter', 'process', function* (t) {
      yield* wait_for_completion(k, t, done);
      yield* k.step(t, 'read data', () => seen.set(data.get() + 1));
    });
    k.task('completer', 'process', function* (t) {
      yield* k.step(t, 'publish', () => data.set(42));
      yield* k.step(t, 'other work', () => undefined);
      yield* complete(k, t, done);
    });
    const w = workload(k, [
      { task: 'waiter', args: 0 },
      { task: 'completer', args: 0 },
    ]);
    const s = new RandomScheduler(7);
    for (let i = 0; i < 200; i++) {
      const r = once(w, 7, s);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(seen.get()).toBe(43);
      expect(completion_done(k, done)).toBe(false); // the one completion was consumed
    }
  });

  it('complete() lets one waiter through, complete_all() every one until reinit_completion()', () => {
    const k = new Kernel();
    const one = defineCompletion(k, 'one');
    const all = defineCompletion(k, 'all');
    const passed = word(k, 'passed');
    const tried = word(k, 'tried');
    k.task('waiter', 'process', function* (t) {
      yield* wait_for_completion(k, t, all);
      yield* k.step(t, 'passed', () => passed.set(passed.get() + 1));
    });
    k.task('main', 'process', function* (t) {
      yield* complete(k, t, one);
      expect(yield* try_wait_for_completion(k, t, one)).toBe(true);
      expect(yield* try_wait_for_completion(k, t, one)).toBe(false);
      yield* complete_all(k, t, all);
      expect(completion_done(k, all)).toBe(true);
      yield* wait_for_completion(k, t, all); // complete_all is not consumed
      yield* reinit_completion(k, t, all);
      yield* k.step(t, 'tried', () => tried.set(completion_done(k, all) ? 2 : 1));
    });
    const r = once(
      workload(k, [
        { task: 'main', args: 0 },
        { task: 'waiter', args: 0 },
        { task: 'waiter', args: 1 },
        { task: 'waiter', args: 2 },
      ]),
      3,
    );
    // Waiters that had not passed before reinit_completion() are left waiting: that depends on the order.
    expect(tried.get()).toBe(1);
    expect(passed.get() + r.blocked.length).toBe(3);
    expect(r.findings.every((f) => f.kind === 'hung_task')).toBe(true);
    expect(COMPLETION_ALL).toBe(0x7fffffff);
  });

  it('wait_for_completion_timeout returns 0 once the time has passed (simulated time jumps there)', () => {
    const k = new Kernel();
    const c = defineCompletion(k, 'never_done');
    const results: number[] = [];
    k.task('waiter', 'process', function* (t) {
      const before = k.now();
      const left = yield* wait_for_completion_timeout(k, t, c, 500);
      results.push(left, k.now() - before);
    });
    const r = once(workload(k, [{ task: 'waiter', args: 0 }]));
    expect(r.findings).toEqual([]);
    expect(r.blocked).toEqual([]);
    expect(results[0]).toBe(0);
    expect(results[1]).toBeGreaterThanOrEqual(500);
  });

  it('wait_for_completion_timeout returns the time left when completed first', () => {
    const k = new Kernel();
    const c = defineCompletion(k, 'done');
    const results: number[] = [];
    k.task('waiter', 'process', function* (t) {
      results.push(yield* wait_for_completion_timeout(k, t, c, 500));
    });
    k.task('completer', 'process', function* (t) {
      yield* complete(k, t, c);
    });
    const r = once(
      workload(k, [
        { task: 'waiter', args: 0 },
        { task: 'completer', args: 0 },
      ]),
    );
    expect(r.findings).toEqual([]);
    expect(results[0]).toBeGreaterThan(0);
    expect(results[0]).toBeLessThanOrEqual(500);
  });

  it('a waiter that is never completed is a hung task naming the completion', () => {
    const k = new Kernel();
    const c = defineCompletion(k, '&bond->invalidate_done');
    k.task('unbinder', 'process', function* (t) {
      yield* k.call(t, 'iommu_sva_unbind_device', wait_for_completion(k, t, c));
    });
    const r = once(workload(k, [{ task: 'unbinder', args: 0 }]));
    expect(r.findings.map((f) => f.title)).toEqual(['INFO: task unbinder:0 blocked for more than 120 seconds.']);
    expect(r.findings[0]?.kind).toBe('hung_task');
    expect(r.findings[0]?.text).toContain('waiting on completion &bond->invalidate_done, no task holds it');
    expect(r.findings[0]?.text).toContain(' iommu_sva_unbind_device');
    expect(r.blocked.map((b) => b.blockedOn?.what)).toEqual(['completion &bond->invalidate_done']);
  });

  it('waiting for a completion in atomic context is a might_sleep report', () => {
    const k = new Kernel();
    const c = defineCompletion(k, 'done');
    const s = defineSpinlock(k, 'ioasid_allocator_lock');
    k.task('worker', 'process', function* (t) {
      yield* spin_lock(k, t, s);
      yield* wait_for_completion(k, t, c);
      yield* spin_unlock(k, t, s);
    });
    k.task('completer', 'process', function* (t) {
      yield* complete(k, t, c);
    });
    const r = once(
      workload(k, [
        { task: 'worker', args: 0 },
        { task: 'completer', args: 0 },
      ]),
    );
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: sleeping function called from invalid context at kernel/sched/completion.c:117']);
    expect(r.findings[0]?.text).toContain('in_atomic(): 1, irqs_disabled(): 0, non_block: 0, pid: 0, name: worker');
  });
});

describe('wait queues', () => {
  function waitAndWake(wakes: boolean) {
    const k = new Kernel();
    const wq = defineWaitQueue(k, '&iommu->prq_complete');
    const flag = word(k, 'flag');
    const passed = word(k, 'passed');
    k.task('waiter', 'process', function* (t) {
      yield* wait_event(k, t, wq, () => flag.get() !== 0);
      yield* k.step(t, 'passed', () => passed.set(flag.get()));
    });
    k.task('waker', 'process', function* (t) {
      yield* k.step(t, 'flag = 1', () => flag.set(1));
      if (wakes) yield* wake_up(k, t, wq);
    });
    const w = workload(k, [
      { task: 'waiter', args: 0 },
      { task: 'waker', args: 0 },
    ]);
    return { k, w, passed };
  }

  it('wait_event passes once the condition holds and the queue is woken, in every interleaving', () => {
    const { w, passed } = waitAndWake(true);
    const s = new RandomScheduler(5);
    for (let i = 0; i < 200; i++) {
      const r = once(w, 5, s);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(passed.get()).toBe(1);
    }
  });

  it('a condition made true without wake_up() leaves a waiter that already slept hung (a lost wake-up)', () => {
    const { w } = waitAndWake(false);
    const s = new RandomScheduler(5);
    let hung = 0;
    let fine = 0;
    for (let i = 0; i < 100; i++) {
      const r = once(w, 5, s);
      if (r.findings.length === 0) {
        fine++;
        continue;
      }
      hung++;
      expect(r.findings.map((f) => f.title)).toEqual(['INFO: task waiter:0 blocked for more than 120 seconds.']);
      expect(r.findings[0]?.text).toContain('waiting on wait_event &iommu->prq_complete');
    }
    // Whether the waiter saw the flag before sleeping depends on the interleaving: both happen.
    expect(hung).toBeGreaterThan(0);
    expect(fine).toBeGreaterThan(0);
  });

  it('wait_event_timeout returns 0 after the timeout, the time left when woken with the condition true', () => {
    const k = new Kernel();
    const wq = defineWaitQueue(k, 'wq');
    const flag = word(k, 'flag');
    const results: number[] = [];
    k.task('lonely', 'process', function* (t) {
      const before = k.now();
      results.push(yield* wait_event_timeout(k, t, wq, () => false, 250));
      results.push(k.now() - before);
    });
    k.task('waiter', 'process', function* (t) {
      results.push(yield* wait_event_timeout(k, t, wq, () => flag.get() !== 0, 1000));
    });
    k.task('waker', 'process', function* (t) {
      yield* k.step(t, 'flag = 1', () => flag.set(1));
      yield* wake_up(k, t, wq);
    });
    const r1 = once(workload(k, [{ task: 'lonely', args: 0 }]));
    expect(r1.findings).toEqual([]);
    expect(results[0]).toBe(0);
    expect(results[1]).toBeGreaterThanOrEqual(250);
    results.length = 0;
    const r2 = once(
      workload(k, [
        { task: 'waiter', args: 0 },
        { task: 'waker', args: 0 },
      ]),
    );
    expect(r2.findings).toEqual([]);
    expect(results[0]).toBeGreaterThan(0);
    expect(results[0]).toBeLessThanOrEqual(1000);
  });

  it('wait_event in atomic context is a might_sleep report', () => {
    const k = new Kernel();
    const wq = defineWaitQueue(k, 'wq');
    const s = defineSpinlock(k, 'lock');
    k.task('worker', 'process', function* (t) {
      yield* spin_lock(k, t, s);
      yield* wait_event(k, t, wq, () => true);
      yield* spin_unlock(k, t, s);
    });
    const r = once(workload(k, [{ task: 'worker', args: 0 }]));
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: sleeping function called from invalid context at include/linux/wait.h:333']);
    expect(r.findings[0]?.text).toContain('1 lock held by worker/0:');
  });
});
