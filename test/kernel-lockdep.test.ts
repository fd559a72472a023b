// lockdep: one dependency graph per execution (an AB-BA in one execution is reported at the attempt, naming
// both call chains; each execution starts afresh), recursive locking, bad unlock balance, inconsistent
// softirq usage — each with the correct code that gives no report — and the real AB-BA deadlock found by
// PCT with lockdep off, replayed exactly from its recorded schedule.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import type { KernelFinding } from '../src/kernel/findings.js';
import { Kernel, type KernelOptions, type KGen } from '../src/kernel/kernel.js';
import { defineMutex, type Mutex, mutex_lock, mutex_trylock, mutex_unlock } from '../src/kernel/mutex.js';
import { defineSpinlock, spin_lock, spin_lock_bh, spin_unlock, spin_unlock_bh } from '../src/kernel/spinlock.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Workload } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { Schedule } from '../src/runtime/schedule.js';
import type { Scheduler } from '../src/runtime/scheduler.js';
import { PctScheduler } from '../src/runtime/schedulers/pct.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { ReplayScheduler } from '../src/runtime/schedulers/replay.js';

type Initial = NonNullable<Workload['initialTasks']>;

function workload(k: Kernel, initial: () => Initial): Workload {
  return {
    name: 'lockdep-test',
    params: {},
    actors: [],
    initial: [],
    sharedWords: k.words,
    tasks: k.taskFactories,
    monitor: k,
    get initialTasks() {
      return initial();
    },
    check: () => ({ ok: true, problems: [], counters: {} }),
  };
}

function once(w: Workload, seed = 1, s: Scheduler = new RandomScheduler(seed)): RunResult {
  s.newExecution();
  return runDeterministic({ workload: w, seed, scheduler: s });
}

/** Take a then b, in a function of its own (so the report's call chains name it). */
function* nested(k: Kernel, t: KTask, fn: string, a: Mutex, b: Mutex): KGen {
  yield* k.call(
    t,
    fn,
    (function* () {
      yield* mutex_lock(k, t, a);
      yield* mutex_lock(k, t, b);
      yield* mutex_unlock(k, t, b);
      yield* mutex_unlock(k, t, a);
    })(),
  );
}

function abba(opts: KernelOptions = {}) {
  const k = new Kernel(opts);
  const l1 = defineMutex(k, 'L1');
  const l2 = defineMutex(k, 'L2');
  k.task('ab', 'process', (t) => nested(k, t, 'take_ab', l1, l2));
  k.task('ba', 'process', (t) => nested(k, t, 'take_ba', l2, l1));
  k.task('both', 'process', function* (t) {
    yield* nested(k, t, 'take_ab', l1, l2);
    yield* nested(k, t, 'take_ba', l2, l1);
  });
  return k;
}

describe('lockdep: circular locking dependency', () => {
  it('an AB-BA in one execution is reported at the attempt, naming both chains; its schedule replays alone', () => {
    const k = abba();
    const w = workload(k, () => [{ task: 'both', args: 0 }]);
    const s = new RandomScheduler(1);

    const r1 = once(w, 1, s);
    expect(r1.findings.map((f) => f.title)).toEqual(['WARNING: possible circular locking dependency detected']);
    const text = r1.findings[0]?.text ?? '';
    const lines = text.split('\n');
    // The kernel's layout, in order.
    const expected = [
      'WARNING: possible circular locking dependency detected',
      'both/0 is trying to acquire lock:',
      '(L1){+.+.}, at: take_ba',
      'but task is already holding lock:',
      '(L2){+.+.}, at: take_ba',
      'which lock already depends on the new lock.',
      'the existing dependency chain (in reverse order) is:',
      '-> #1 (L2){+.+.}:',
      '       take_ab', // the first half's chain: L2 taken while holding L1
      '-> #0 (L1){+.+.}:',
      '       take_ba', // this attempt
      'other info that might help us debug this:',
      ' Possible unsafe locking scenario:',
      '       CPU0                    CPU1',
      '       ----                    ----',
      '  lock(L2);',
      '                               lock(L1);',
      '                               lock(L2);',
      '  lock(L1);',
      ' *** DEADLOCK ***',
      '1 lock held by both/0:',
      ' #0: (L2){+.+.}, at: take_ba',
      'stack backtrace:',
    ];
    let at = 0;
    for (const e of expected) {
      const i = lines.indexOf(e, at);
      expect(i, `'${e}' after line ${at} of:\n${text}`).toBeGreaterThanOrEqual(at);
      at = i + 1;
    }
    expect(text).not.toContain('Chain exists of:');
    expect(r1.findings[0]).toMatchObject({ kind: 'lockdep', task: 'both', pid: 0 });
    // Reported at the attempt: the task holds L2 and has not taken L1.
    expect((r1.findings[0] as KernelFinding | undefined)?.heldLocks).toEqual(['(L2){+.+.}, at: take_ba']);

    // The report depends on nothing but its own execution: the schedule replays alone, on a fresh kernel.
    const replay = new ReplayScheduler(Schedule.decode(r1.schedule.encode()), (id) => String(id));
    const again = once(workload(abba(), () => [{ task: 'both', args: 0 }]), 1, replay);
    expect(again.traceHash).toBe(r1.traceHash);
    expect(again.findings.map((f) => f.text)).toEqual(r1.findings.map((f) => f.text));

    // debug_locks was off for the rest of that execution only: the next execution is judged on its own.
    expect(once(w, 1, s).findings.map((f) => f.title)).toEqual(['WARNING: possible circular locking dependency detected']);
  });

  it('each execution is a boot of its own: an AB-BA split over two executions is not reported', () => {
    const k = abba();
    let phase = 'ab';
    const w = workload(k, () => [{ task: phase, args: 0 }]);
    const s = new RandomScheduler(1);
    expect(once(w, 1, s).findings).toEqual([]);
    expect(k.lockdep.dependencies()).toEqual([{ prev: 'L1', next: 'L2', prevSite: ['ab', 'take_ab'], nextSite: ['ab', 'take_ab'] }]);
    phase = 'ba';
    expect(once(w, 1, s).findings).toEqual([]);
    expect(k.lockdep.dependencies().map((d) => `${d.prev}->${d.next}`)).toEqual(['L2->L1']);
    expect(k.lockdep.debugLocks).toBe(true);
  });

  it('a longer cycle names the chain that closes it (A→B, B→C, then C→A)', () => {
    const k = new Kernel();
    const [a, b, c] = ['A', 'B', 'C'].map((n) => defineMutex(k, n)) as [Mutex, Mutex, Mutex];
    k.task('worker', 'process', function* (t) {
      yield* nested(k, t, 'ab_path', a, b);
      yield* nested(k, t, 'bc_path', b, c);
      yield* nested(k, t, 'ca_path', c, a);
    });
    const r = once(workload(k, () => [{ task: 'worker', args: 0 }]));
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: possible circular locking dependency detected']);
    const text = r.findings[0]?.text ?? '';
    expect(text).toContain(
      [
        '-> #2 (C){+.+.}:',
        '       bc_path',
        '       worker',
        '',
        '-> #1 (B){+.+.}:',
        '       ab_path',
        '       worker',
        '',
        '-> #0 (A){+.+.}:',
        '       ca_path',
      ].join('\n'),
    );
    expect(text).toContain(['Chain exists of:', '  A --> B --> C'].join('\n'));
    expect(text).toContain(
      ['  lock(C);', '                               lock(B);', '                               lock(C);', '  lock(A);'].join('\n'),
    );
  });

  it('a consistent lock order gives no report, over many interleavings of one exploration', () => {
    const k = new Kernel();
    const l1 = defineMutex(k, 'L1');
    const l2 = defineMutex(k, 'L2');
    const s = defineSpinlock(k, 'S');
    k.task('worker', 'process', function* (t) {
      yield* nested(k, t, 'ordered', l1, l2);
      yield* mutex_lock(k, t, l2);
      yield* spin_lock(k, t, s);
      yield* spin_unlock(k, t, s);
      yield* mutex_unlock(k, t, l2);
    });
    const w = workload(k, () => [0, 1, 2].map((i) => ({ task: 'worker', args: i })));
    const sch = new RandomScheduler(3);
    for (let i = 0; i < 100; i++) expect(once(w, 3, sch).findings).toEqual([]);
    expect(k.lockdep.debugLocks).toBe(true);
    expect(k.lockdep.dependencies().map((d) => `${d.prev}->${d.next}`)).toEqual(['L1->L2', 'L2->S']);
  });

  it('a trylock adds no dependency (trylock can be taken in any order)', () => {
    const k = new Kernel();
    const a = defineMutex(k, 'A');
    const b = defineMutex(k, 'B');
    k.task('worker', 'process', function* (t) {
      yield* mutex_lock(k, t, a);
      expect(yield* mutex_trylock(k, t, b)).toBe(true);
      yield* mutex_unlock(k, t, b);
      yield* mutex_unlock(k, t, a);
      yield* nested(k, t, 'b_then_a', b, a);
    });
    expect(once(workload(k, () => [{ task: 'worker', args: 0 }])).findings).toEqual([]);
    expect(k.lockdep.dependencies().map((d) => `${d.prev}->${d.next}`)).toEqual(['B->A']);
  });

  it('more lock classes than the table holds: lockdep says so and turns itself off', () => {
    const k = new Kernel();
    const locks = Array.from({ length: 257 }, (_, i) => defineSpinlock(k, `lock${i}`));
    k.task('worker', 'process', function* (t) {
      for (const l of locks) {
        yield* spin_lock(k, t, l);
        yield* spin_unlock(k, t, l);
      }
    });
    const r = once(workload(k, () => [{ task: 'worker', args: 0 }]));
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: MAX_LOCKDEP_KEYS too low!']);
    expect(r.findings[0]?.text).toContain('turning off the locking correctness validator.');
    expect(k.lockdep.debugLocks).toBe(false);
  });

  it('with the lockdep checker off, nothing is recorded or reported', () => {
    const k = abba({ checkers: { lockdep: false } });
    let phase = 'ab';
    const w = workload(k, () => [{ task: phase, args: 0 }]);
    const s = new RandomScheduler(1);
    expect(once(w, 1, s).findings).toEqual([]);
    phase = 'ba';
    expect(once(w, 1, s).findings).toEqual([]);
    expect(k.lockdep.dependencies()).toEqual([]);
  });
});

describe('lockdep: recursive locking and unlock balance', () => {
  it('taking a class already held is reported at the attempt', () => {
    const k = new Kernel();
    const m = defineMutex(k, '&group->mutex');
    k.task('worker', 'process', function* (t) {
      yield* k.call(
        t,
        'iommu_attach_group',
        (function* () {
          yield* mutex_lock(k, t, m);
          yield* k.call(
            t,
            '__iommu_attach_group',
            (function* () {
              yield* mutex_lock(k, t, m);
            })(),
          );
        })(),
      );
    });
    const r = once(workload(k, () => [{ task: 'worker', args: 0 }]));
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: possible recursive locking detected']);
    const text = r.findings[0]?.text ?? '';
    expect(text).toContain(
      [
        'worker/0 is trying to acquire lock:',
        '(&group->mutex){+.+.}, at: __iommu_attach_group',
        '',
        'but task is already holding lock:',
        '(&group->mutex){+.+.}, at: iommu_attach_group',
      ].join('\n'),
    );
    expect(text).toContain(
      ['       CPU0', '       ----', '  lock(&group->mutex);', '  lock(&group->mutex);', '', ' *** DEADLOCK ***'].join('\n'),
    );
    expect(text).toContain(' May be due to missing lock nesting notation');
  });

  it('two locks of different classes nest without a report', () => {
    const k = new Kernel();
    const a = defineMutex(k, 'A');
    const b = defineMutex(k, 'B');
    k.task('worker', 'process', (t) => nested(k, t, 'fn', a, b));
    expect(once(workload(k, () => [{ task: 'worker', args: 0 }])).findings).toEqual([]);
  });

  it('releasing a lock the task does not hold is a bad unlock balance', () => {
    const k = new Kernel();
    const m = defineMutex(k, 'ioasid_allocator_lock');
    k.task('worker', 'process', function* (t) {
      yield* k.call(t, 'ioasid_free', mutex_unlock(k, t, m));
    });
    const r = once(workload(k, () => [{ task: 'worker', args: 0 }]));
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: bad unlock balance detected!']);
    expect(r.findings[0]?.text).toContain(
      [
        'worker/0 is trying to release lock (ioasid_allocator_lock) at:',
        '[<0>] ioasid_free',
        'but there are no more locks to release!',
        '',
        'other info that might help us debug this:',
        'no locks held by worker/0.',
      ].join('\n'),
    );
  });

  it('a balanced lock and unlock is not reported', () => {
    const k = new Kernel();
    const m = defineMutex(k, 'ioasid_allocator_lock');
    k.task('worker', 'process', function* (t) {
      yield* mutex_lock(k, t, m);
      yield* mutex_unlock(k, t, m);
    });
    expect(once(workload(k, () => [{ task: 'worker', args: 0 }])).findings).toEqual([]);
  });
});

describe('lockdep: irq safety', () => {
  /** A softirq (an RCU callback) and a process both take `s`; `first` runs first and spawns the other. */
  function softirqVsProcess(first: 'rcu_cb' | 'user', bh: boolean) {
    const k = new Kernel();
    const s = defineSpinlock(k, 'ioasid_allocator_lock');
    const then = first === 'rcu_cb' ? 'user' : 'rcu_cb';
    k.task('rcu_cb', 'softirq', function* (t) {
      yield* k.call(
        t,
        'ioasid_free_rcu',
        (function* () {
          yield* spin_lock(k, t, s);
          yield* spin_unlock(k, t, s);
        })(),
      );
      if (first === 'rcu_cb') yield* k.step(t, 'spawn', (env) => env.spawn(then, 0));
    });
    k.task('user', 'process', function* (t) {
      yield* k.call(
        t,
        'ioasid_alloc',
        (function* () {
          if (bh) {
            yield* spin_lock_bh(k, t, s);
            yield* spin_unlock_bh(k, t, s);
          } else {
            yield* spin_lock(k, t, s);
            yield* spin_unlock(k, t, s);
          }
        })(),
      );
      if (first === 'user') yield* k.step(t, 'spawn', (env) => env.spawn(then, 0));
    });
    return { k, w: workload(k, () => [{ task: first, args: 0 }]) };
  }

  it('taken in softirq, then with softirqs enabled: {IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W}', () => {
    const { w } = softirqVsProcess('rcu_cb', false);
    const r = once(w);
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: inconsistent lock state']);
    const text = r.findings[0]?.text ?? '';
    expect(text).toMatch(/\ninconsistent \{IN-SOFTIRQ-W\} -> \{SOFTIRQ-ON-W\} usage\.\nuser\/\d+ \[HC0\[0\]:SC0\[0\]:HE1:SE1\] takes:\n/);
    expect(text).toContain(
      [
        '(ioasid_allocator_lock){+.-.}, at: ioasid_alloc',
        '{IN-SOFTIRQ-W} state was registered at:',
        '       ioasid_free_rcu',
        '       rcu_cb',
      ].join('\n'),
    );
    expect(text).toContain(
      ['       CPU0', '       ----', '  lock(ioasid_allocator_lock);', '  <Interrupt>', '    lock(ioasid_allocator_lock);'].join('\n'),
    );
    expect(text).toContain(' *** DEADLOCK ***');
  });

  it('taken with softirqs enabled, then in softirq: {SOFTIRQ-ON-W} -> {IN-SOFTIRQ-W}', () => {
    const { w } = softirqVsProcess('user', false);
    const r = once(w);
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: inconsistent lock state']);
    const text = r.findings[0]?.text ?? '';
    expect(text).toMatch(/\ninconsistent \{SOFTIRQ-ON-W\} -> \{IN-SOFTIRQ-W\} usage\.\nrcu_cb\/\d+ \[HC0\[0\]:SC1\[1\]:HE1:SE0\] takes:\n/);
    expect(text).toContain('takes:\n(ioasid_allocator_lock){+.+.}, at: ioasid_free_rcu\n');
    expect(text).toContain(['{SOFTIRQ-ON-W} state was registered at:', '       ioasid_alloc', '       user'].join('\n'));
    expect(text).toContain(' <IRQ>');
  });

  it('spin_lock_bh in process context is consistent with the softirq user, in either order', () => {
    for (const first of ['rcu_cb', 'user'] as const) {
      const { k, w } = softirqVsProcess(first, true);
      expect(once(w).findings).toEqual([]);
      expect(k.lockdep.usageOf('ioasid_allocator_lock')).toBe('+.-.');
    }
  });
});

describe('lockdep: irq-safe and irq-unsafe locks connected by a dependency', () => {
  /**
   * A is taken in softirq (an RCU callback) and under spin_lock_bh in process context; B is taken in process
   * context with softirqs enabled (unless bBh), and under A. `first` runs first and spawns the other.
   */
  function safeToUnsafe(first: 'rcu_cb' | 'user', bBh: boolean) {
    const k = new Kernel();
    const a = defineSpinlock(k, 'A');
    const b = defineSpinlock(k, 'B');
    const then = first === 'rcu_cb' ? 'user' : 'rcu_cb';
    k.task('rcu_cb', 'softirq', function* (t) {
      yield* k.call(
        t,
        'free_rcu',
        (function* () {
          yield* spin_lock(k, t, a);
          yield* spin_unlock(k, t, a);
        })(),
      );
      if (first === 'rcu_cb') yield* k.step(t, 'spawn', (env) => env.spawn(then, 0));
    });
    k.task('user', 'process', function* (t) {
      yield* k.call(
        t,
        'take_b',
        (function* () {
          if (bBh) {
            yield* spin_lock_bh(k, t, b);
            yield* spin_unlock_bh(k, t, b);
          } else {
            yield* spin_lock(k, t, b);
            yield* spin_unlock(k, t, b);
          }
        })(),
      );
      yield* k.call(
        t,
        'a_then_b',
        (function* () {
          yield* spin_lock_bh(k, t, a);
          yield* spin_lock(k, t, b);
          yield* spin_unlock(k, t, b);
          yield* spin_unlock_bh(k, t, a);
        })(),
      );
      if (first === 'user') yield* k.step(t, 'spawn', (env) => env.spawn(then, 0));
    });
    return workload(k, () => [{ task: first, args: 0 }]);
  }

  it('a new dependency from a SOFTIRQ-safe lock to a SOFTIRQ-unsafe one is reported at the attempt', () => {
    const r = once(safeToUnsafe('rcu_cb', false));
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected']);
    const text = r.findings[0]?.text ?? '';
    expect(text).toMatch(/\nuser\/\d+ \[HC0\[0\]:SC0\[2\]:HE1:SE0\] is trying to acquire:\n\(B\)\{\+\.\+\.\}, at: a_then_b\n/);
    expect(text).toContain(
      [
        'which would create a new lock dependency:',
        ' (A){+.-.} -> (B){+.+.}',
        '',
        'but this new dependency connects a SOFTIRQ-irq-safe lock:',
        ' (A){+.-.}',
        '',
        '... which became SOFTIRQ-irq-safe at:',
        '       free_rcu',
        '       rcu_cb',
        '',
        'to a SOFTIRQ-irq-unsafe lock:',
        ' (B){+.+.}',
        '',
        '... which became SOFTIRQ-irq-unsafe at:',
        '...',
        '       take_b',
      ].join('\n'),
    );
    expect(text).toContain(
      [
        '  lock(B);',
        '                               local_irq_disable();',
        '                               lock(A);',
        '                               lock(B);',
        '  <Interrupt>',
        '    lock(A);',
      ].join('\n'),
    );
  });

  it('a lock becoming SOFTIRQ-safe after it took a SOFTIRQ-unsafe one is an irq lock inversion', () => {
    const r = once(safeToUnsafe('user', false));
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: possible irq lock inversion dependency detected']);
    const text = r.findings[0]?.text ?? '';
    expect(text).toMatch(/\nrcu_cb\/\d+ just changed the state of lock:\n\(A\)\{\+\.\.\.\}, at: free_rcu\n/);
    expect(text).toContain(
      [
        'but this lock took another, SOFTIRQ-unsafe lock in the past:',
        ' (B){+.+.}',
        '',
        '',
        'and interrupts could create inverse lock ordering between them.',
      ].join('\n'),
    );
    expect(text).toContain('the shortest dependencies between 2nd lock and 1st lock:');
  });

  it('with B also taken with softirqs disabled, neither order is reported', () => {
    for (const first of ['rcu_cb', 'user'] as const) expect(once(safeToUnsafe(first, true)).findings).toEqual([]);
  });
});

describe('the AB-BA deadlock itself (lockdep off): found by PCT, replayed exactly', () => {
  const concurrent = () => {
    const k = abba({ checkers: { lockdep: false } });
    return workload(k, () => [
      { task: 'ab', args: 0 },
      { task: 'ba', args: 0 },
    ]);
  };

  it('PCT depth 2 finds the deadlock, and its schedule replays to the same finding and trace', () => {
    const w = concurrent();
    const pct = new PctScheduler(11, 2);
    let found: RunResult | undefined;
    let executions = 0;
    while (!found && executions < 1000) {
      executions++;
      const r = once(w, 11, pct);
      if (r.findings.length > 0) found = r;
    }
    expect(found, `no deadlock in ${executions} executions`).toBeDefined();
    if (!found) return;
    expect(found.findings.map((f) => f.kind)).toEqual(['deadlock']);
    const title = found.findings[0]?.title ?? '';
    expect(title).toMatch(/^BUG: deadlock: (ab\/0 -> ba\/1 -> ab\/0|ba\/1 -> ab\/0 -> ba\/1) wait on each other$/);
    expect(found.findings[0]?.text).toMatch(/waits on mutex L[12]/);
    expect(found.blocked.length).toBe(2);

    const back = Schedule.decode(found.schedule.encode());
    const replay = new ReplayScheduler(back, (id) => String(id));
    replay.newExecution();
    const again = runDeterministic({ workload: concurrent(), seed: 11, scheduler: replay });
    expect(again.traceHash).toBe(found.traceHash);
    expect(again.findings.map((f) => f.title)).toEqual([title]);
  });
});
