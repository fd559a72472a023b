// The watchdogs on simulated time, deterministic with fixed seeds: the soft-lockup detector (a loop of udelay
// without a scheduling point, reported in kernel/watchdog.c's words; the same loop with cond_resched() not), the
// RCU stall detector (a grace period held up past rcu_cpu_stall_timeout) and khungtaskd (a task reported only
// once it has been blocked for hung_task_timeout_secs, saying how long). The clock gets there because a delay is
// a time the deterministic runtime moves on to when nothing else can run.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import { cond_resched, mdelay, msleep, udelay } from '../src/kernel/delay.js';
import type { Kernel, KernelOptions, KGen } from '../src/kernel/kernel.js';
import { rcu_init, rcu_read_lock, rcu_read_unlock, synchronize_rcu } from '../src/kernel/rcu.js';
import { defineSpinlock, spin_lock, spin_unlock } from '../src/kernel/spinlock.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Finding, Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import { kernel, runOnce, tasksWorkload, words } from './kernel-harness.js';

const SEEDS = [1, 2, 3];

/** The planted bug: a loop of udelay(1000) that never reaches a scheduling point (or does, with `resched`). */
function* plantedLoop(k: Kernel, t: KTask, iterations: number, resched: boolean): KGen {
  yield* k.call(
    t,
    'planted_poll_loop',
    (function* () {
      for (let i = 0; i < iterations; i++) {
        yield* udelay(k, t, 1000);
        if (resched) yield* cond_resched(k, t);
      }
    })(),
  );
}

function run(opts: KernelOptions, define: (k: Kernel) => string[], seed: number): { k: Kernel; findings: readonly Finding[] } {
  const k = kernel(opts);
  const tasks = define(k);
  const r = runOnce(tasksWorkload(k, 'watchdog', tasks), seed, false, true);
  return { k, findings: r.findings };
}

const of = (findings: readonly Finding[], kind: string): Finding[] => findings.filter((f) => f.kind === kind);

describe('soft lockup (kernel/watchdog.c)', () => {
  /** A looping kthread and a bystander that sleeps now and then (it must not be reported). */
  const loopers = (iterations: number, resched: boolean) => (k: Kernel) => {
    k.task('looper', 'kthread', (t) => plantedLoop(k, t, iterations, resched));
    k.task('sleeper', 'kthread', function* (t) {
      for (let i = 0; i < 30; i++) yield* msleep(k, t, 1000);
    });
    return ['sleeper', 'looper'];
  };

  for (const seed of SEEDS) {
    it(`seed ${seed}: 25 s of udelay(1000) with no scheduling point is reported once, in the kernel's words, with its call chain`, () => {
      const { findings } = run({}, loopers(25_000, false), seed);
      const lockups = of(findings, 'soft_lockup');
      expect(lockups).toHaveLength(1);
      const f = lockups[0] as Finding;
      // watchdog_thresh=10: reported once the CPU time passes 2 × 10 s (is_softlockup: time_after).
      // Its CPU: the n-th task to start runs on CPU n mod cpus (which task starts first is the schedule's).
      const m = /^watchdog: BUG: soft lockup - CPU#([01]) stuck for 20s! \[looper:(\d+)\]$/.exec(f.title);
      expect(m).not.toBeNull();
      const lines = f.text.split('\n');
      expect(lines).toContain('Modules linked in:');
      expect(lines).toContain(`CPU: ${m?.[1]} PID: ${m?.[2]} Comm: looper Not tainted (iommu-sim)`);
      expect(lines).toContain('RIP: 0010:delay_tsc');
      // The call trace, innermost first, from the delay up to the planted function and the task.
      const trace = lines.slice(lines.indexOf(' <TASK>') + 1, lines.indexOf(' </TASK>'));
      expect(trace).toEqual([' delay_tsc', ' __const_udelay', ' planted_poll_loop', ' looper']);
      expect(of(findings, 'hung_task')).toEqual([]);
    });

    it(`seed ${seed}: the same loop with cond_resched() is not reported`, () => {
      const { findings } = run({}, loopers(25_000, true), seed);
      expect(findings).toEqual([]);
    });
  }

  it('short of the threshold (19 s of udelay), nothing is reported; watchdog_thresh=5 reports it at 10 s', () => {
    expect(run({}, loopers(19_000, false), 1).findings).toEqual([]);
    const lockups = of(run({ watchdogThresh: 5 }, loopers(19_000, false), 1).findings, 'soft_lockup');
    expect(lockups.map((f) => f.title.replace(/\d+\]$/, 'N]').replace(/CPU#\d/, 'CPU#n'))).toEqual(['watchdog: BUG: soft lockup - CPU#n stuck for 10s! [looper:N]']);
  });

  it('watchdog_thresh=0 turns the detector off', () => {
    expect(run({ watchdogThresh: 0 }, loopers(25_000, false), 1).findings).toEqual([]);
  });

  it('cond_resched() under a spinlock cannot reschedule (preemption is off): the loop is still reported', () => {
    const { findings } = run(
      {},
      (k) => {
        const lock = defineSpinlock(k, 'planted_lock');
        k.task('looper', 'kthread', function* (t) {
          yield* spin_lock(k, t, lock);
          yield* plantedLoop(k, t, 25_000, true);
          yield* spin_unlock(k, t, lock);
        });
        return ['looper'];
      },
      1,
    );
    expect(of(findings, 'soft_lockup').map((f) => f.title.replace(/\d+\]$/, 'N]'))).toEqual(['watchdog: BUG: soft lockup - CPU#0 stuck for 20s! [looper:N]']);
  });

  it('a spin-wait (spins: true) is CPU time: a poll that waits 30 s is reported, one that waits 5 s is not; neither is a hung task', () => {
    const poll = (waitMs: number) => (k: Kernel) => {
      const w = words(k, 1);
      k.task('poller', 'kthread', function* (t) {
        yield* k.call(
          t,
          'planted_cmd_sync_poll',
          (function* () {
            yield k.point(t, 'poll the completion word', () => w.get(0) === 1, () => undefined, { what: 'the completion word', spins: true });
          })(),
        );
      });
      k.task('completer', 'kthread', function* (t) {
        yield* msleep(k, t, waitMs);
        yield* w.set(t, 0, 1);
      });
      return ['poller', 'completer'];
    };
    const long = run({}, poll(30_000), 1).findings;
    expect(long.map((f) => f.kind)).toEqual(['soft_lockup']);
    expect(long[0]?.text).toContain(' planted_cmd_sync_poll');
    expect(run({}, poll(5_000), 1).findings).toEqual([]);
  });

  it('mdelay counts as udelay does; a task spinning for ever at the end of the run is a soft lockup, not a hung task', () => {
    const { findings } = run(
      {},
      (k) => {
        const w = words(k, 1);
        k.task('stuck', 'kthread', function* (t) {
          yield* mdelay(k, t, 3_000);
          yield k.point(t, 'spin on a word nobody writes', () => w.get(0) === 1, () => undefined, { what: 'a word nobody writes', spins: true });
        });
        return ['stuck'];
      },
      1,
    );
    expect(findings.map((f) => f.kind)).toEqual(['soft_lockup']);
    expect(findings[0]?.title).toMatch(/stuck for 20s!/);
  });
});

describe('RCU stall (kernel/rcu/tree_stall.h)', () => {
  /** A reader that stays inside rcu_read_lock() for `ms` (udelay loops, rescheduling), and a synchronize_rcu(). */
  const heldGp = (ms: number, blocked: boolean) => (k: Kernel) => {
    rcu_init(k);
    const w = words(k, 1);
    k.task('reader', 'kthread', function* (t) {
      yield* rcu_read_lock(k, t);
      yield* w.set(t, 0, 1);
      yield* k.call(
        t,
        'planted_long_reader',
        (function* () {
          if (blocked) yield* msleep(k, t, ms);
          else for (let i = 0; i < ms; i++) {
            yield* udelay(k, t, 1000);
            yield* cond_resched(k, t);
          }
        })(),
      );
      yield* rcu_read_unlock(k, t);
    });
    k.task('updater', 'kthread', function* (t) {
      yield* w.until(t, 'the reader inside', () => w.get(0) === 1);
      yield* synchronize_rcu(k, t);
    });
    return ['reader', 'updater'];
  };

  for (const seed of SEEDS) {
    it(`seed ${seed}: a reader running 30 s inside its section stalls the grace period: reported as a CPU stall naming it`, () => {
      const { findings } = run({}, heldGp(30_000, false), seed);
      expect(findings.map((f) => f.kind)).toEqual(['rcu']);
      const f = findings[0] as Finding;
      expect(f.title).toBe('rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:');
      const lines = f.text.split('\n');
      // Reported at the first look after rcu_cpu_stall_timeout=21 s (HZ=1000: ticks and jiffies are ms).
      const m = /^rcu: \t([01])-\.\.\.\.: \((\d+) ticks this GP\)$/.exec(lines[1] ?? '');
      const [cpu, ticks] = [Number(m?.[1]), Number(m?.[2])];
      expect(ticks).toBeGreaterThanOrEqual(21_000);
      expect(ticks).toBeLessThan(21_100);
      // Detected by the updater's CPU: the other one of the two tasks.
      expect(lines[2]).toBe(`rcu: \t(detected by ${1 - cpu}, t=${ticks} jiffies, ncpus=8)`);
      expect(lines).toContain(`NMI backtrace for cpu ${cpu}`);
      expect(f.text).toContain(' planted_long_reader');
      expect(f.where).toMatch(/^reader\/\d+$/);
    });
  }

  it('a reader blocked inside its section is a task blocking the grace period (and sleeping there is might_sleep\'s)', () => {
    const { findings } = run({}, heldGp(30_000, true), 1);
    const stalls = of(findings, 'rcu').filter((f) => f.title.startsWith('rcu: INFO'));
    expect(stalls).toHaveLength(1);
    const lines = (stalls[0] as Finding).text.split('\n');
    expect(lines[1]).toMatch(/^rcu: \tTasks blocked on level-0 rcu_node \(CPUs 0-7\): P\d+$/);
    expect(lines).toContain(`task:reader state:D pid:${/P(\d+)$/.exec(lines[1] ?? '')?.[1]}`);
    expect(of(findings, 'might_sleep')).toHaveLength(1);
  });

  it('a reader that leaves after 10 s holds the grace period up short of the timeout: no stall; rcuStallSecs=5 reports it', () => {
    expect(run({}, heldGp(10_000, false), 1).findings).toEqual([]);
    expect(of(run({ rcuStallSecs: 5 }, heldGp(10_000, false), 1).findings, 'rcu').map((f) => f.title)).toEqual([
      'rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:',
    ]);
  });
});

describe('hung task (kernel/hung_task.c) on simulated time', () => {
  /** A waiter blocked (D) on a word its waker sets after `secs` seconds of msleep(1000). */
  const wokenAfter = (secs: number) => (k: Kernel) => {
    const w = words(k, 1);
    k.task('waiter', 'kthread', function* (t) {
      yield* w.until(t, 'the word', () => w.get(0) === 1);
    });
    k.task('waker', 'kthread', function* (t) {
      for (let i = 0; i < secs; i++) yield* msleep(k, t, 1000);
      yield* w.set(t, 0, 1);
    });
    return ['waiter', 'waker'];
  };

  it('blocked 100 s of simulated time (the clock moved on by the waker\'s sleeps): not reported', () => {
    const { k, findings } = run({}, wokenAfter(100), 1);
    expect(findings).toEqual([]);
    expect(k.now()).toBeGreaterThanOrEqual(100_000);
  });

  it('blocked 130 s: reported while the run goes on, once the timeout has passed, saying how long', () => {
    const { k, findings } = run({}, wokenAfter(130), 1);
    expect(findings.map((f) => f.kind)).toEqual(['hung_task']);
    const secs = Number(/^INFO: task waiter:\d+ blocked for more than (\d+) seconds\.$/.exec(findings[0]?.title ?? '')?.[1]);
    // khungtaskd looks as time passes (the runtime's periodic tick): at or soon after the 120 s.
    expect(secs).toBeGreaterThanOrEqual(120);
    expect(secs).toBeLessThanOrEqual(121);
    expect(k.now()).toBeGreaterThanOrEqual(130_000);
  });

  it('hung_task_timeout_secs is the scenario\'s: 30 s reports the 100 s wait', () => {
    const { findings } = run({ hungTaskSecs: 30 }, wokenAfter(100), 1);
    expect(findings.map((f) => f.title.replace(/:\d+ /, ':N '))).toEqual(['INFO: task waiter:N blocked for more than 30 seconds.']);
  });
});

describe('in the model: a planted loop in a patched iommu_sva_unbind_device (a test-only extension)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'softlockup-'));
  /** An unbind that first polls 25 000 × udelay(1000), with or without cond_resched(), then unbinds. */
  const patch = (resched: boolean): string => {
    const file = join(dir, `poll-${resched}.cjs`);
    writeFileSync(
      file,
      `exports.extend = (ctx) => {
        const orig = ctx.coreStep('unbind');
        const { udelay, cond_resched } = ctx.kernel;
        ctx.setCoreStep('unbind', function* (t, handle) {
          yield* ctx.k.call(t, 'planted_unbind_poll', (function* () {
            for (let i = 0; i < 25000; i++) {
              yield* udelay(t, 1000);
              ${resched ? 'yield* cond_resched(t);' : ''}
            }
          })());
          return yield* orig(t, handle);
        });
      };`,
    );
    return file;
  };
  const once = (params: Record<string, Wire>, seed: number) => {
    const built = buildSva(params);
    const s = new RandomScheduler(seed);
    s.newExecution();
    return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
  };

  it('without cond_resched(): the soft lockup, naming the process and the patched function; with it: nothing', () => {
    const bad = once({ processes: 1, script: 'life', extension: patch(false) }, 1);
    const lockups = of(bad.findings, 'soft_lockup');
    expect(lockups.map((f) => f.title)).toEqual([expect.stringMatching(/^watchdog: BUG: soft lockup - CPU#\d stuck for 20s! \[proc0:\d+\]$/)]);
    expect(lockups[0]?.text).toContain(' planted_unbind_poll');
    expect(lockups[0]?.text).toContain(' iommu_sva_unbind_device');
    const good = once({ processes: 1, script: 'life', extension: patch(true) }, 1);
    expect(good.findings).toEqual([]);
    expect(good.check.counters.unbinds).toBe(1);
  });
});
