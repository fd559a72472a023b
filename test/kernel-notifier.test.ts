// Notifier chains (src/kernel/notifier.ts) and rw_semaphores (src/kernel/rwsem.ts): seed 003's atomic chain
// whose callback sleeps and blocking chain called from softirq context, registration order and NOTIFY_STOP,
// unregister waiting for in-flight callers, the teardown leak check, and rwsem exclusion and deadlocks.
// Deterministic runtime, fixed seeds.
import { kernel, pause, runOnce, tasksWorkload, words } from './kernel-harness.js';
import { describe, expect, it } from 'vitest';
import { EEXIST, ENOENT } from '../src/kernel/errno.js';
import type { Kernel } from '../src/kernel/kernel.js';
import { defineMutex, mutex_lock, mutex_unlock } from '../src/kernel/mutex.js';
import {
  atomic_notifier_call_chain,
  atomic_notifier_chain_register,
  atomic_notifier_chain_unregister,
  blocking_notifier_call_chain,
  blocking_notifier_chain_register,
  defineNotifierBlock,
  defineNotifierChain,
  NOTIFY_BAD,
  NOTIFY_DONE,
  NOTIFY_OK,
  NOTIFY_STOP,
  type NotifierChainKind,
  notifier_call_chain,
  notifier_chain_register,
  notifier_chain_unregister,
  notifier_from_errno,
  notifier_to_errno,
  raw_notifier_call_chain,
  raw_notifier_chain_register,
} from '../src/kernel/notifier.js';
import { rcu_init, synchronize_rcu } from '../src/kernel/rcu.js';
import { defineRwsem, down_read, down_read_trylock, down_write, downgrade_write, up_read, up_write } from '../src/kernel/rwsem.js';
import type { Workload } from '../src/runtime/model.js';

function workload(k: Kernel, tasks: string[]): Workload {
  return tasksWorkload(k, 'notifier-test', tasks);
}

const run = runOnce;

describe('seed 003: what a notifier callback may do depends on the chain', () => {
  /** A chain of `kind` with one subscriber whose callback does `what`; `caller` calls the chain. */
  function chainWorkload(kind: NotifierChainKind, what: 'mutex' | 'synchronize_rcu' | 'nothing', caller: 'process' | 'softirq'): Workload {
    const k = kernel();
    rcu_init(k);
    const m = defineMutex(k, 'intel_svm_lock');
    const chain = defineNotifierChain(k, 'ioasid_chain', kind);
    const nb = defineNotifierBlock(k, 'intel_svm_ioasid_notify', function* (t, event) {
      if (what === 'mutex') {
        yield* mutex_lock(k, t, m);
        yield* mutex_unlock(k, t, m);
      } else if (what === 'synchronize_rcu') {
        yield* synchronize_rcu(k, t);
      }
      return event === 1 ? NOTIFY_OK : NOTIFY_DONE;
    });
    const w = words(k, 1);
    k.task('subscriber', 'process', function* (t) {
      yield* notifier_chain_register(k, t, chain, nb);
      yield* w.set(t, 0, 1);
    });
    k.task('ioasid_free', caller, function* (t) {
      yield* w.until(t, 'subscribed', () => w.get(0) === 1);
      yield* k.call(t, 'ioasid_free', notifier_call_chain(k, t, chain, 1, 0));
    });
    return workload(k, ['subscriber', 'ioasid_free']);
  }

  it('atomic chain, callback takes a mutex: sleeping function called from invalid context, under rcu_read_lock', () => {
    const r = run(chainWorkload('atomic', 'mutex', 'process'), 3);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.title).toBe('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283');
    expect(f?.text).toContain('RCU nest depth: 1, expected: 0');
    expect(f?.text).toContain('(rcu_read_lock)');
    const trace = f?.text.split('Call Trace:')[1] ?? '';
    expect(trace.indexOf(' intel_svm_ioasid_notify\n')).toBeLessThan(trace.indexOf(' notifier_call_chain\n'));
    expect(trace.indexOf(' notifier_call_chain\n')).toBeLessThan(trace.indexOf(' atomic_notifier_call_chain\n'));
    expect(trace).toContain(' ioasid_free\n');
  });

  it('atomic chain, callback calls synchronize_rcu: the same report', () => {
    const r = run(chainWorkload('atomic', 'synchronize_rcu', 'process'), 3);
    expect(r.findings[0]?.title).toBe('BUG: sleeping function called from invalid context at kernel/rcu/tree.c:3792');
    expect(r.findings[0]?.text).toContain(' intel_svm_ioasid_notify\n');
  });

  it('atomic chain, callback that does not sleep, even from softirq: no report', () => {
    for (const caller of ['process', 'softirq'] as const) {
      const w = chainWorkload('atomic', 'nothing', caller);
      for (let seed = 1; seed <= 20; seed++) expect(run(w, seed).findings).toEqual([]);
    }
  });

  it('blocking chain called from softirq context: might_sleep in down_read, in_atomic(): 1', () => {
    const r = run(chainWorkload('blocking', 'nothing', 'softirq'), 3);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.title).toBe('BUG: sleeping function called from invalid context at kernel/locking/rwsem.c:1525');
    expect(f?.text).toContain('in_atomic(): 1');
    const trace = f?.text.split('Call Trace:')[1] ?? '';
    expect(trace).toContain(' <IRQ>');
    expect(trace.indexOf(' down_read\n')).toBeLessThan(trace.indexOf(' blocking_notifier_call_chain\n'));
  });

  it('blocking chain called from process context, even with a callback that sleeps: no report', () => {
    for (const what of ['nothing', 'mutex', 'synchronize_rcu'] as const) {
      const w = chainWorkload('blocking', what, 'process');
      for (let seed = 1; seed <= 20; seed++) {
        const r = run(w, seed);
        expect(r.findings).toEqual([]);
        expect(r.blocked).toEqual([]);
      }
    }
  });

  it('SRCU chain: the callback may sleep', () => {
    const w = chainWorkload('srcu', 'mutex', 'process');
    for (let seed = 1; seed <= 20; seed++) expect(run(w, seed).findings).toEqual([]);
  });

  it('an empty blocking chain is not locked, so it is not reported from softirq (as in the kernel)', () => {
    const k = kernel();
    const chain = defineNotifierChain(k, 'empty_chain', 'blocking');
    k.task('irq', 'softirq', function* (t) {
      expect(yield* blocking_notifier_call_chain(k, t, chain, 0, 0)).toBe(NOTIFY_DONE);
    });
    expect(run(workload(k, ['irq']), 1).findings).toEqual([]);
  });
});

describe('chain semantics', () => {
  it('calls blocks by priority (equal priorities in registration order) and stops at NOTIFY_STOP_MASK', () => {
    const k = kernel();
    const chain = defineNotifierChain(k, 'chain', 'raw');
    const calls: string[] = [];
    const mk = (name: string, prio: number, ret: number) =>
      defineNotifierBlock(
        k,
        name,
        function* (t) {
          yield* k.step(t, name, () => calls.push(name));
          return ret;
        },
        prio,
      );
    const a = mk('a', 0, NOTIFY_OK);
    const b = mk('b', 10, NOTIFY_OK);
    const c = mk('c', 0, NOTIFY_STOP);
    const d = mk('d', -5, NOTIFY_OK);
    const results: number[] = [];
    k.task('t', 'process', function* (t) {
      for (const nb of [a, b, c, d]) expect(yield* raw_notifier_chain_register(k, t, chain, nb)).toBe(0);
      results.push(yield* raw_notifier_call_chain(k, t, chain, 7, 0));
    });
    expect(run(workload(k, ['t']), 1).findings).toEqual([]);
    expect(calls).toEqual(['b', 'a', 'c']);
    expect(results).toEqual([NOTIFY_STOP]);
  });

  it('registering twice: the kernel WARN and -EEXIST; unregistering an absent block: -ENOENT', () => {
    const k = kernel();
    const chain = defineNotifierChain(k, 'chain', 'blocking');
    const nb = defineNotifierBlock(k, 'iommu_bus_notifier', (t) => k.step(t, 'iommu_bus_notifier', () => NOTIFY_DONE));
    const other = defineNotifierBlock(k, 'other', (t) => k.step(t, 'other', () => NOTIFY_DONE));
    const rets: number[] = [];
    k.task('t', 'process', function* (t) {
      rets.push(yield* notifier_chain_unregister(k, t, chain, other));
      rets.push(yield* blocking_notifier_chain_register(k, t, chain, nb));
      rets.push(yield* blocking_notifier_chain_register(k, t, chain, nb));
    });
    const r = run(workload(k, ['t']), 1, false, true);
    expect(rets).toEqual([-ENOENT, 0, -EEXIST]);
    expect(r.findings.map((f) => f.title)).toEqual(['notifier callback iommu_bus_notifier already registered']);
    expect(r.findings[0]?.text).toContain('at kernel/notifier.c:29 notifier_chain_register');
    expect(r.findings[0]?.text).toContain('(chain.rwsem)');
  });

  it('the errno helpers round-trip', () => {
    expect(notifier_to_errno(notifier_from_errno(-ENOENT))).toBe(-ENOENT);
    expect(notifier_from_errno(0)).toBe(NOTIFY_OK);
    expect(notifier_to_errno(NOTIFY_OK)).toBe(0);
    expect(notifier_to_errno(NOTIFY_BAD)).toBe(-1);
  });

  it('after atomic_notifier_chain_unregister returns, no traversal calls the block any more (200 seeds)', () => {
    const k = kernel();
    const chain = defineNotifierChain(k, 'chain', 'atomic');
    const w = words(k, 3); // [0] registered, [1] unregister returned, [2] calls after it returned
    const nb = defineNotifierBlock(k, 'sub', function* (t) {
      yield* k.step(t, 'use subscriber', () => {
        if (w.get(1) === 1) Atomics.add(k.i32, w.addr(2), 1);
      });
      return NOTIFY_OK;
    });
    k.task('subscriber', 'process', function* (t) {
      yield* atomic_notifier_chain_register(k, t, chain, nb);
      yield* w.set(t, 0, 1);
      yield* pause(k, t, 2);
      yield* atomic_notifier_chain_unregister(k, t, chain, nb);
      yield* w.set(t, 1, 1);
    });
    k.task('publisher', 'process', function* (t) {
      yield* w.until(t, 'registered', () => w.get(0) === 1);
      for (let i = 0; i < 4; i++) yield* atomic_notifier_call_chain(k, t, chain, i, 0);
    });
    const wl = workload(k, ['subscriber', 'publisher', 'publisher']);
    for (let seed = 1; seed <= 200; seed++) {
      const r = run(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(w.get(2)).toBe(0);
    }
  });
});

describe('teardown leak check', () => {
  function leakWorkload(mustBeEmpty: boolean, unregister: boolean): Workload {
    const k = kernel();
    const chain = defineNotifierChain(k, 'ioasid_notifier', 'atomic', { mustBeEmptyAtTeardown: mustBeEmpty });
    const nb = defineNotifierBlock(k, 'kvm_ioasid_notifier', (t) => k.step(t, 'kvm_ioasid_notifier', () => NOTIFY_DONE));
    k.task('kvm', 'process', function* (t) {
      yield* notifier_chain_register(k, t, chain, nb);
      if (unregister) yield* notifier_chain_unregister(k, t, chain, nb);
    });
    return workload(k, ['kvm']);
  }

  it('a block left on a chain that must be empty at teardown is reported', () => {
    const r = run(leakWorkload(true, false), 1);
    expect(r.findings.map((f) => [f.kind, f.title])).toEqual([
      ['leak', 'leak: notifier block kvm_ioasid_notifier still registered on chain ioasid_notifier'],
    ]);
  });

  it('unregistered, or on a chain allowed to keep its blocks: no report', () => {
    expect(run(leakWorkload(true, true), 1).findings).toEqual([]);
    expect(run(leakWorkload(false, false), 1).findings).toEqual([]);
  });
});

describe('rw_semaphore', () => {
  it('writers exclude everyone, readers share (200 seeds)', () => {
    const k = kernel();
    const sem = defineRwsem(k, 'iommu_probe_rwsem');
    const w = words(k, 4); // [0] readers inside, [1] writers inside, [2] violations, [3] max readers seen
    const check = () => {
      const r = w.get(0);
      const wr = w.get(1);
      if (wr > 1 || (wr === 1 && r > 0)) Atomics.add(k.i32, w.addr(2), 1);
      if (r > w.get(3)) Atomics.store(k.i32, w.addr(3), r);
    };
    k.task('reader', 'process', function* (t) {
      for (let i = 0; i < 2; i++) {
        yield* down_read(k, t, sem);
        yield* k.step(t, 'in', () => {
          Atomics.add(k.i32, w.addr(0), 1);
          check();
        });
        yield* pause(k, t, 1);
        yield* k.step(t, 'out', () => Atomics.sub(k.i32, w.addr(0), 1));
        yield* up_read(k, t, sem);
      }
    });
    k.task('writer', 'process', function* (t) {
      for (let i = 0; i < 2; i++) {
        yield* down_write(k, t, sem);
        yield* k.step(t, 'in', () => {
          Atomics.add(k.i32, w.addr(1), 1);
          check();
        });
        yield* pause(k, t, 1);
        yield* k.step(t, 'out', () => Atomics.sub(k.i32, w.addr(1), 1));
        yield* up_write(k, t, sem);
      }
    });
    const wl = workload(k, ['reader', 'reader', 'reader', 'writer', 'writer']);
    let maxReaders = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const r = run(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(w.get(2)).toBe(0);
      maxReaders = Math.max(maxReaders, w.get(3));
    }
    expect(maxReaders).toBeGreaterThan(1);
  });

  it('down_read under a spinlock-like atomic context (softirq): might_sleep; trylock never sleeps', () => {
    const k = kernel();
    const sem = defineRwsem(k, 'sem');
    k.task('irq', 'softirq', function* (t) {
      if (yield* down_read_trylock(k, t, sem)) yield* up_read(k, t, sem);
      yield* down_read(k, t, sem);
      yield* up_read(k, t, sem);
    });
    const r = run(workload(k, ['irq']), 1);
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: sleeping function called from invalid context at kernel/locking/rwsem.c:1525']);
  });

  it('a recursive down_read with a writer queued in between deadlocks, and the report names both tasks', () => {
    const k = kernel();
    const sem = defineRwsem(k, 'mmap_lock');
    const w = words(k, 1);
    k.task('reader', 'process', function* (t) {
      yield* down_read(k, t, sem);
      yield* w.set(t, 0, 1);
      yield* pause(k, t, 3);
      yield* down_read(k, t, sem);
      yield* up_read(k, t, sem);
      yield* up_read(k, t, sem);
    });
    k.task('writer', 'process', function* (t) {
      yield* w.until(t, 'reader in', () => w.get(0) === 1);
      yield* down_write(k, t, sem);
      yield* up_write(k, t, sem);
    });
    const wl = workload(k, ['reader', 'writer']);
    let deadlocks = 0;
    let clean = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = run(wl, seed);
      if (r.findings.length === 0) clean++;
      for (const f of r.findings) {
        expect(f.title).toMatch(/^BUG: deadlock: (reader|writer)\/\d+ -> (reader|writer)\/\d+ -> /);
        expect(f.text).toContain('rwsem mmap_lock (read)');
        expect(f.text).toContain('rwsem mmap_lock (write)');
        deadlocks++;
      }
    }
    expect(deadlocks).toBeGreaterThan(0);
    expect(clean).toBeGreaterThan(0);
  });

  it('downgrade_write lets other readers in while the downgrader still reads', () => {
    const k = kernel();
    const sem = defineRwsem(k, 'sem');
    const w = words(k, 1);
    k.task('w', 'process', function* (t) {
      yield* down_write(k, t, sem);
      yield* downgrade_write(k, t, sem);
      yield* w.set(t, 0, 1);
      yield* w.until(t, 'the other reader in', () => w.get(0) === 2);
      yield* up_read(k, t, sem);
    });
    k.task('r', 'process', function* (t) {
      yield* w.until(t, 'downgraded', () => w.get(0) >= 1);
      yield* down_read(k, t, sem);
      yield* w.set(t, 0, 2);
      yield* up_read(k, t, sem);
    });
    const wl = workload(k, ['w', 'r']);
    for (let seed = 1; seed <= 20; seed++) {
      const r = run(wl, seed);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
    }
  });

  it('held-lock lines show a held rwsem, taken at its caller', () => {
    const k = kernel();
    const sem = defineRwsem(k, 'iommu_probe_rwsem');
    const m = defineMutex(k, 'm');
    k.task('t', 'process', function* (t) {
      yield* k.call(
        t,
        'iommu_probe_device',
        (function* () {
          yield* down_read(k, t, sem);
          yield* k.step(t, 'preempt_disable', () => {
            t.preemptCount++;
          });
          yield* mutex_lock(k, t, m);
        })(),
      );
    });
    const r = run(workload(k, ['t']), 1);
    expect(r.findings[0]?.text).toContain('#0: (iommu_probe_rwsem){++++}, at: iommu_probe_device');
  });
});
