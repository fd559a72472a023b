// RCU and SRCU (src/kernel/rcu.ts, srcu.ts): read-side sections, true grace periods (synchronize_rcu never
// returns while a pre-existing reader is inside, and never waits for later ones), call_rcu callbacks in
// softirq context (seed 003: a callback that takes a mutex), suspicious rcu_dereference, and the free-while-
// readers-hold-it checker. Deterministic runtime, fixed seeds.
import { kernel, pause, runOnce, tasksWorkload, words } from './kernel-harness.js';
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import type { Kernel, KernelOptions } from '../src/kernel/kernel.js';
import { defineMutex, mutex_lock, mutex_unlock } from '../src/kernel/mutex.js';
import {
  call_rcu,
  cond_synchronize_rcu,
  defineKfreeRcu,
  defineRcuCallback,
  defineRcuPointer,
  kfree_rcu,
  lockdep_is_held,
  poll_state_synchronize_rcu,
  RCU_INIT_POINTER,
  rcu_assign_pointer,
  rcu_barrier,
  rcu_dereference,
  rcu_dereference_protected,
  rcu_init,
  rcu_read_lock,
  rcu_read_unlock,
  start_poll_synchronize_rcu,
  synchronize_rcu,
} from '../src/kernel/rcu.js';
import { defineSpinlock, spin_lock, spin_unlock } from '../src/kernel/spinlock.js';
import { call_srcu, defineSrcu, defineSrcuCallback, srcu_read_lock, srcu_read_unlock, synchronize_srcu } from '../src/kernel/srcu.js';
import type { Wire, Workload } from '../src/runtime/model.js';

function workload(k: Kernel, tasks: string[]): Workload {
  return tasksWorkload(k, 'rcu-test', tasks);
}

const run = runOnce;

describe('call_rcu callbacks run in softirq context (seed 003)', () => {
  function cbWorkload(lock: 'mutex' | 'spinlock'): Workload {
    const k = kernel();
    const m = defineMutex(k, 'ioasid_allocator_lock');
    const s = defineSpinlock(k, 'ioasid_allocator_spinlock');
    const cb = defineRcuCallback(k, 'ioasid_free_rcu', function* (t) {
      yield* k.call(
        t,
        'ioasid_free',
        (function* () {
          if (lock === 'mutex') {
            yield* mutex_lock(k, t, m);
            yield* mutex_unlock(k, t, m);
          } else {
            yield* spin_lock(k, t, s);
            yield* spin_unlock(k, t, s);
          }
        })(),
      );
    });
    k.task('sva_unbind', 'process', function* (t) {
      yield* k.call(t, 'mmu_notifier_put', call_rcu(k, t, cb, 42));
    });
    return workload(k, ['sva_unbind']);
  }

  it('a callback that takes a mutex: sleeping function called from invalid context, callback in the trace', () => {
    const r = run(cbWorkload('mutex'), 3);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.title).toBe('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283');
    expect(f?.text).toContain('in_atomic(): 1, irqs_disabled(): 0');
    expect(f?.text).toContain('preempt_count: 100');
    const trace = f?.text.split('Call Trace:')[1] ?? '';
    expect(trace).toContain(' <IRQ>');
    expect(trace.indexOf(' ioasid_free\n')).toBeLessThan(trace.indexOf(' ioasid_free_rcu\n'));
    expect(trace.indexOf(' ioasid_free_rcu\n')).toBeLessThan(trace.indexOf(' rcu_do_batch\n'));
    expect(trace.indexOf(' rcu_do_batch\n')).toBeLessThan(trace.indexOf(' rcu_core\n'));
  });

  it('the same callback taking a spinlock: no report', () => {
    const w = cbWorkload('spinlock');
    for (let seed = 1; seed <= 20; seed++) {
      const r = run(w, seed);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
  });
});

describe('grace periods', () => {
  const READERS = 3;

  /** Readers mark (section id, inside) in shared words; the updater checks them across synchronize_rcu. */
  function gpWorkload(sync: boolean, violations: { n: number; checks: number }): Workload {
    const k = kernel();
    rcu_init(k);
    const w = words(k, 2 * READERS);
    const inside = (i: number) => 2 * i;
    const section = (i: number) => 2 * i + 1;
    k.task('reader', 'process', function* (t, a) {
      const i = a as number;
      for (let round = 0; round < 3; round++) {
        yield* rcu_read_lock(k, t);
        yield* w.add(t, section(i), 1);
        yield* w.set(t, inside(i), 1);
        yield* pause(k, t, 2);
        yield* w.set(t, inside(i), 0);
        yield* rcu_read_unlock(k, t);
      }
    });
    k.task('updater', 'process', function* (t) {
      for (let round = 0; round < 4; round++) {
        const before = yield* k.step(t, 'look at readers', () =>
          Array.from({ length: READERS }, (_, i) => [w.get(inside(i)), w.get(section(i))]),
        );
        if (sync) yield* synchronize_rcu(k, t);
        else yield* pause(k, t, 1);
        yield* k.step(t, 'check readers', () => {
          violations.checks++;
          before.forEach(([was, sec], i) => {
            if (was === 1 && w.get(inside(i)) === 1 && w.get(section(i)) === sec) violations.n++;
          });
        });
      }
    });
    return workload(k, ['reader', 'reader', 'reader', 'updater']);
  }

  it('synchronize_rcu never returns while a reader that was inside when it began still is (200 seeds, random and PCT)', () => {
    const v = { n: 0, checks: 0 };
    const w = gpWorkload(true, v);
    for (let seed = 1; seed <= 200; seed++) {
      const r = run(w, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
    expect(v.checks).toBe(800);
    expect(v.n).toBe(0);
  });

  it('the same check catches an updater that does not wait (the test has teeth)', () => {
    const v = { n: 0, checks: 0 };
    const w = gpWorkload(false, v);
    for (let seed = 1; seed <= 200; seed++) run(w, seed, seed % 2 === 0);
    expect(v.n).toBeGreaterThan(0);
  });

  it('synchronize_rcu does not wait for readers that start after it: it ends while readers keep overlapping', () => {
    // Two readers hand over so that one of them is always inside; "wait until nobody reads" would never end
    // before they give up (MAX rounds), a grace period ends as soon as the readers it saw have left.
    const MAX = 200;
    const k = kernel();
    rcu_init(k);
    const w = words(k, 5); // [0,1] inside, [2] done, [3,4] rounds
    k.task('reader', 'process', function* (t, a) {
      const i = a as number;
      while (w.get(2) === 0 && w.get(3 + i) < MAX) {
        yield* rcu_read_lock(k, t);
        yield* w.set(t, i, 1);
        yield* w.add(t, 3 + i, 1);
        // Leave (marker down) only at a moment when the other one is inside: the check and the marker are
        // one point, so some reader is always registered.
        yield k.point(
          t,
          'leave when the other reader is inside',
          () => w.get(1 - i) === 1 || w.get(2) === 1 || w.get(3 + (1 - i)) >= MAX,
          () => {
            Atomics.store(k.i32, w.addr(i), 0);
          },
        );
        yield* rcu_read_unlock(k, t);
      }
    });
    k.task('updater', 'process', function* (t) {
      yield* w.until(t, 'both readers inside', () => w.get(0) === 1 && w.get(1) === 1);
      yield* synchronize_rcu(k, t);
      yield* w.set(t, 2, 1);
      yield* k.step(t, 'check', () => {
        expect(w.get(3)).toBeLessThan(MAX);
        expect(w.get(4)).toBeLessThan(MAX);
      });
    });
    const wl = workload(k, ['reader', 'reader', 'updater']);
    for (let seed = 1; seed <= 50; seed++) {
      const r = run(wl, seed);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
  });

  it('a polled grace period ends while a reader that entered after it began is still inside', () => {
    const k = kernel();
    rcu_init(k);
    const w = words(k, 3); // [0] started, [1] done, [2] early reader inside
    k.task('early_reader', 'process', function* (t) {
      yield* rcu_read_lock(k, t);
      yield* w.set(t, 2, 1);
      yield* pause(k, t, 3);
      yield* rcu_read_unlock(k, t);
    });
    k.task('updater', 'process', function* (t) {
      yield* w.until(t, 'early reader inside', () => w.get(2) === 1);
      const gp = yield* start_poll_synchronize_rcu(k, t);
      yield* w.set(t, 0, 1);
      yield* cond_synchronize_rcu(k, t, gp);
      yield* w.set(t, 1, 1);
    });
    k.task('late_reader', 'process', function* (t) {
      yield* w.until(t, 'grace period started', () => w.get(0) === 1);
      yield* rcu_read_lock(k, t);
      yield* w.until(t, 'updater done', () => w.get(1) === 1);
      yield* rcu_read_unlock(k, t);
    });
    const wl = workload(k, ['early_reader', 'updater', 'late_reader']);
    for (let seed = 1; seed <= 50; seed++) {
      const r = run(wl, seed);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
  });

  it('poll_state_synchronize_rcu is false while a pre-existing reader is inside, true once it has left', () => {
    const k = kernel();
    rcu_init(k);
    const w = words(k, 2);
    const seen: boolean[] = [];
    k.task('reader', 'process', function* (t) {
      yield* rcu_read_lock(k, t);
      yield* w.set(t, 0, 1);
      yield* w.until(t, 'polled', () => w.get(1) === 1);
      yield* rcu_read_unlock(k, t);
      yield* w.set(t, 0, 2);
    });
    k.task('poller', 'process', function* (t) {
      yield* w.until(t, 'reader inside', () => w.get(0) === 1);
      const gp = yield* start_poll_synchronize_rcu(k, t);
      seen.push(poll_state_synchronize_rcu(k, gp));
      yield* w.set(t, 1, 1);
      yield* w.until(t, 'reader gone', () => w.get(0) === 2);
      seen.push(poll_state_synchronize_rcu(k, gp));
    });
    const r = run(workload(k, ['reader', 'poller']), 5);
    expect(r.findings).toEqual([]);
    expect(seen).toEqual([false, true]);
  });

  it('call_rcu callbacks never run before the readers that were active at call time have left (200 seeds)', () => {
    const k = kernel();
    const w = words(k, 2 * READERS);
    let violations = 0;
    let ran = 0;
    const cb = defineRcuCallback(k, 'check_readers_rcu', function* (t, args) {
      const before = args as number[][];
      yield* k.step(t, 'check readers', () => {
        ran++;
        before.forEach(([was, sec], i) => {
          if (was === 1 && w.get(2 * i) === 1 && w.get(2 * i + 1) === sec) violations++;
        });
      });
    });
    k.task('reader', 'process', function* (t, a) {
      const i = a as number;
      for (let round = 0; round < 3; round++) {
        yield* rcu_read_lock(k, t);
        yield* w.add(t, 2 * i + 1, 1);
        yield* w.set(t, 2 * i, 1);
        yield* pause(k, t, 2);
        yield* w.set(t, 2 * i, 0);
        yield* rcu_read_unlock(k, t);
      }
    });
    k.task('updater', 'process', function* (t) {
      for (let round = 0; round < 4; round++) {
        const before = yield* k.step(
          t,
          'look at readers',
          (): Wire => Array.from({ length: READERS }, (_, i) => [w.get(2 * i), w.get(2 * i + 1)]),
        );
        yield* call_rcu(k, t, cb, before);
      }
      yield* rcu_barrier(k, t);
    });
    const wl = workload(k, ['reader', 'reader', 'reader', 'updater']);
    for (let seed = 1; seed <= 200; seed++) {
      const r = run(wl, seed, seed % 2 === 1);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
    expect(ran).toBe(800);
    expect(violations).toBe(0);
  });

  it('rcu_barrier returns only after every queued callback has run', () => {
    const k = kernel();
    let ran = 0;
    const cb = defineRcuCallback(k, 'count_rcu', function* (t) {
      yield* k.step(t, 'count', () => {
        ran++;
      });
    });
    const seen: number[] = [];
    k.task('updater', 'process', function* (t) {
      for (let i = 0; i < 3; i++) yield* call_rcu(k, t, cb);
      yield* rcu_barrier(k, t);
      seen.push(ran);
      ran = 0;
    });
    const wl = workload(k, ['updater']);
    for (let seed = 1; seed <= 20; seed++) run(wl, seed);
    expect(seen).toEqual(Array(20).fill(3));
  });

  it('synchronize_rcu inside a read-side section: might_sleep, and suspicious RCU usage', () => {
    const k = kernel();
    rcu_init(k);
    k.task('bad', 'process', function* (t) {
      yield* rcu_read_lock(k, t);
      yield* synchronize_rcu(k, t);
      yield* rcu_read_unlock(k, t);
    });
    const r = run(workload(k, ['bad']), 1);
    expect(r.findings.map((f) => f.title)).toEqual([
      'BUG: sleeping function called from invalid context at kernel/rcu/tree.c:3792',
      'WARNING: suspicious RCU usage',
    ]);
    expect(r.findings[0]?.text).toContain('RCU nest depth: 1, expected: 0');
    expect(r.findings[0]?.text).toContain('#0: (rcu_read_lock)');
    expect(r.findings[1]?.text).toContain('kernel/rcu/tree.c:3781 Illegal synchronize_rcu() in RCU read-side critical section!');
  });
});

describe('suspicious RCU usage', () => {
  function derefWorkload(mode: 'outside' | 'inside' | 'locked' | 'cond-unlocked' | 'protected', opts: KernelOptions = {}): Workload {
    const k = kernel(opts);
    const gp = defineRcuPointer(k, 'ioasid_data', 'drivers/iommu/ioasid.c:412');
    const m = defineMutex(k, 'ioasid_allocator_lock');
    const held = (t: KTask) => lockdep_is_held(t, m);
    k.task('user', 'process', function* (t) {
      yield* k.call(
        t,
        'ioasid_find',
        (function* () {
          switch (mode) {
            case 'outside':
              yield* rcu_dereference(k, t, gp);
              break;
            case 'inside':
              yield* rcu_read_lock(k, t);
              yield* rcu_dereference(k, t, gp);
              yield* rcu_read_unlock(k, t);
              break;
            case 'locked':
              yield* mutex_lock(k, t, m);
              yield* rcu_dereference(k, t, gp, held);
              yield* mutex_unlock(k, t, m);
              break;
            case 'cond-unlocked':
              yield* rcu_dereference(k, t, gp, held);
              break;
            case 'protected':
              yield* k.step(t, 'update', () => rcu_dereference_protected(k, t, gp, held));
              break;
          }
        })(),
      );
    });
    return workload(k, ['user']);
  }

  it('rcu_dereference outside a reader: the kernel layout', () => {
    const r = run(derefWorkload('outside'), 1);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.title).toBe('WARNING: suspicious RCU usage');
    const lines = f?.text.split('\n') ?? [];
    const dash = lines.indexOf('-----------------------------');
    expect(dash).toBeGreaterThan(0);
    expect(lines[dash + 1]).toBe('drivers/iommu/ioasid.c:412 suspicious rcu_dereference_check() usage!');
    expect(lines).toContain('other info that might help us debug this:');
    expect(lines).toContain('rcu_scheduler_active = 2, debug_locks = 1');
    expect(lines).toContain('stack backtrace:');
    expect(f?.text).toMatch(/no locks held by user\/\d+\./);
    expect(f?.text).toContain(' ioasid_find\n');
  });

  it('inside rcu_read_lock, or with the lockdep condition held: no report', () => {
    for (const mode of ['inside', 'locked'] as const) {
      const r = run(derefWorkload(mode), 1);
      expect(r.findings).toEqual([]);
    }
  });

  it('a lockdep condition that does not hold excuses nothing', () => {
    const r = run(derefWorkload('cond-unlocked'), 1);
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: suspicious RCU usage']);
  });

  it('rcu_dereference_protected without the update lock', () => {
    const r = run(derefWorkload('protected'), 1);
    expect(r.findings[0]?.text).toContain('drivers/iommu/ioasid.c:412 suspicious rcu_dereference_protected() usage!');
  });

  it("is off with the 'rcu' checker", () => {
    const r = run(derefWorkload('outside', { checkers: { rcu: false } }), 1);
    expect(r.findings).toEqual([]);
  });
});

describe('free while readers may still hold the object', () => {
  const OBJ = 0x4242;

  function freeWorkload(how: 'now' | 'synchronize_rcu' | 'kfree_rcu', handshake: boolean): Workload {
    const k = kernel();
    const gp = defineRcuPointer(k, 'domain');
    const w = words(k, 2); // [0] reader has it, [1] freer done
    const freeCb = defineKfreeRcu(k, 'domain_free_rcu', (t, obj) => k.step(t, 'kfree', (env) => k.freeing(t, obj, env)));
    k.task('init', 'process', function* (t) {
      yield* RCU_INIT_POINTER(k, t, gp, OBJ);
    });
    k.task('reader', 'process', function* (t) {
      yield* w.until(t, 'published', () => Atomics.load(k.i32, gp.addr()) !== 0);
      yield* k.call(
        t,
        'iommu_sva_handle_iopf',
        (function* () {
          yield* rcu_read_lock(k, t);
          const p = yield* rcu_dereference(k, t, gp);
          if (p !== 0) yield* w.set(t, 0, 1);
          if (handshake && p !== 0) yield* w.until(t, 'freer done', () => w.get(1) === 1);
          else yield* pause(k, t, 2);
          yield* rcu_read_unlock(k, t);
        })(),
      );
    });
    k.task('freer', 'process', function* (t) {
      yield* w.until(t, 'reader has it', () => w.get(0) === 1);
      yield* k.call(
        t,
        'iommu_domain_free',
        (function* () {
          yield* rcu_assign_pointer(k, t, gp, 0);
          if (how === 'kfree_rcu') {
            yield* kfree_rcu(k, t, freeCb, OBJ);
          } else {
            if (how === 'synchronize_rcu') yield* synchronize_rcu(k, t);
            yield* k.call(
              t,
              'kfree',
              k.step(t, 'kfree', (env) => k.freeing(t, OBJ, env)),
            );
          }
        })(),
      );
      yield* w.set(t, 1, 1);
    });
    return workload(k, ['init', 'reader', 'freer']);
  }

  it('kfree while a reader that dereferenced the object is still inside: reported with both tasks', () => {
    const r = run(freeWorkload('now', true), 1);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.title).toBe('BUG: RCU: object freed while readers may still hold it');
    expect(f?.kind).toBe('rcu');
    expect(f?.text).toContain('kfree() of object 0x4242 by task freer/');
    expect(f?.text).toMatch(/Dereferenced by task reader\/\d+ \(still inside rcu_read_lock\(\)\):/);
    expect(f?.text).toContain('(rcu_read_lock)');
    expect(f?.text).toContain(' iommu_sva_handle_iopf\n');
    expect(f?.text).toMatch(/Freed by task freer\/\d+:/);
    expect(f?.text).toContain(' iommu_domain_free\n');
  });

  it('synchronize_rcu or kfree_rcu between unpublishing and freeing: no report (100 seeds)', () => {
    for (const how of ['synchronize_rcu', 'kfree_rcu'] as const) {
      const w = freeWorkload(how, false);
      for (let seed = 1; seed <= 100; seed++) {
        const r = run(w, seed);
        expect(r.findings).toEqual([]);
        expect(r.blocked).toEqual([]);
      }
    }
  });

  it('freeing without a grace period is caught on some schedules without a handshake too', () => {
    const w = freeWorkload('now', false);
    let hits = 0;
    for (let seed = 1; seed <= 100; seed++) hits += run(w, seed).findings.length;
    expect(hits).toBeGreaterThan(0);
  });
});

describe('SRCU', () => {
  it('a reader may sleep (mutex_lock inside srcu_read_lock): no report', () => {
    const k = kernel();
    const ss = defineSrcu(k, 'ioasid_srcu');
    const m = defineMutex(k, 'm');
    k.task('reader', 'process', function* (t) {
      const idx = yield* srcu_read_lock(k, t, ss);
      yield* mutex_lock(k, t, m);
      yield* mutex_unlock(k, t, m);
      yield* srcu_read_unlock(k, t, ss, idx);
    });
    const r = run(workload(k, ['reader', 'reader']), 1);
    expect(r.findings).toEqual([]);
  });

  it('synchronize_srcu waits for pre-existing readers of its struct only (100 seeds)', () => {
    const k = kernel();
    const a = defineSrcu(k, 'srcu_a');
    const b = defineSrcu(k, 'srcu_b');
    const w = words(k, 4); // [0] a-reader inside, [1] b-reader inside, [2] sync done, [3] a-reader has entered
    k.task('reader_a', 'process', function* (t) {
      const idx = yield* srcu_read_lock(k, t, a);
      yield* w.set(t, 0, 1);
      yield* w.set(t, 3, 1);
      yield* pause(k, t, 3);
      yield* w.set(t, 0, 0);
      yield* srcu_read_unlock(k, t, a, idx);
    });
    k.task('reader_b', 'process', function* (t) {
      // Stays inside srcu_b until synchronize_srcu(srcu_a) has returned: waiting for it would deadlock.
      const idx = yield* srcu_read_lock(k, t, b);
      yield* w.set(t, 1, 1);
      yield* w.until(t, 'sync done', () => w.get(2) === 1);
      yield* srcu_read_unlock(k, t, b, idx);
    });
    k.task('updater', 'process', function* (t) {
      yield* w.until(t, 'readers entered', () => w.get(3) === 1 && w.get(1) === 1);
      yield* synchronize_srcu(k, t, a);
      yield* k.step(t, 'check', () => {
        expect(w.get(0)).toBe(0);
      });
      yield* w.set(t, 2, 1);
    });
    const wl = workload(k, ['reader_a', 'reader_b', 'updater']);
    for (let seed = 1; seed <= 100; seed++) {
      const r = run(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
  });

  it('synchronize_srcu inside a reader of the same struct: suspicious RCU usage', () => {
    const k = kernel();
    const ss = defineSrcu(k, 'kvm_srcu');
    k.task('bad', 'process', function* (t) {
      const idx = yield* srcu_read_lock(k, t, ss);
      yield* synchronize_srcu(k, t, ss);
      yield* srcu_read_unlock(k, t, ss, idx);
    });
    const r = run(workload(k, ['bad']), 1);
    expect(r.findings[0]?.title).toBe('WARNING: suspicious RCU usage');
    expect(r.findings[0]?.text).toContain('Illegal synchronize_srcu() in same-type SRCU (or in RCU) read-side critical section!');
  });

  it('call_srcu callbacks wait for the readers active at call time', () => {
    const k = kernel();
    const ss = defineSrcu(k, 'srcu');
    const w = words(k, 2);
    let violations = 0;
    let ran = 0;
    const cb = defineSrcuCallback(k, ss, 'free_srcu', function* (t) {
      yield* k.step(t, 'check', () => {
        ran++;
        if (w.get(0) === 1) violations++;
      });
    });
    k.task('reader', 'process', function* (t) {
      const idx = yield* srcu_read_lock(k, t, ss);
      yield* w.set(t, 0, 1);
      yield* w.set(t, 1, 1);
      yield* pause(k, t, 3);
      yield* w.set(t, 0, 0);
      yield* srcu_read_unlock(k, t, ss, idx);
    });
    k.task('updater', 'process', function* (t) {
      yield* w.until(t, 'reader entered', () => w.get(1) === 1);
      yield* call_srcu(k, t, ss, cb);
    });
    const wl = workload(k, ['reader', 'updater']);
    for (let seed = 1; seed <= 50; seed++) {
      const r = run(wl, seed);
      expect(r.findings).toEqual([]);
    }
    expect(ran).toBe(50);
    expect(violations).toBe(0);
  });
});

describe('read-side bookkeeping', () => {
  it('rcu_read_lock shows as a held lock and nests', () => {
    const k = kernel();
    rcu_init(k);
    const m = defineMutex(k, 'm');
    k.task('t', 'process', function* (t) {
      yield* rcu_read_lock(k, t);
      yield* rcu_read_lock(k, t);
      yield* mutex_lock(k, t, m);
      yield* mutex_unlock(k, t, m);
      yield* rcu_read_unlock(k, t);
      yield* rcu_read_unlock(k, t);
    });
    const r = run(workload(k, ['t']), 1);
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]?.text).toContain('RCU nest depth: 2, expected: 0');
    expect(r.findings[0]?.text).toMatch(/2 locks held by t\/\d+:/);
  });

  it('a task ending inside rcu_read_lock is reported by the task-exit check', () => {
    const k = kernel({ checkers: { lockdep: false } });
    rcu_init(k);
    k.task('t', 'process', function* (t) {
      yield* rcu_read_lock(k, t);
    });
    const r = run(workload(k, ['t']), 1);
    expect(r.findings[0]?.title).toMatch(/exited with rcu_read_lock\(\) held \(depth 1\)/);
  });

  it('using RCU without rcu_init at build time is an error, not silent corruption', () => {
    const k = kernel();
    k.task('t', 'process', function* (t) {
      yield* rcu_read_lock(k, t);
      yield* rcu_read_unlock(k, t);
    });
    expect(() => run(workload(k, ['t']), 1)).toThrow(/rcu_init/);
  });
});
