// The hard-lockup detector (kernel/watchdog.c with watchdog_perf.c's NMI): a task spinning with interrupts off —
// spin_lock_irqsave held, or local_irq_disable() — for longer than watchdog_thresh of simulated time is reported
// as the NMI watchdog reports it ("NMI watchdog: Watchdog detected hard LOCKUP on cpu N"), not as a soft lockup
// (the soft-lockup detector is a timer interrupt: it cannot run); the same loop with interrupts on is the soft
// lockup it was; with cond_resched() and interrupts on, nothing. Deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import { cond_resched, udelay } from '../src/kernel/delay.js';
import { local_irq_disable, local_irq_enable } from '../src/kernel/irqflags.js';
import type { Kernel, KernelOptions, KGen } from '../src/kernel/kernel.js';
import { defineSpinlock, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore } from '../src/kernel/spinlock.js';
import type { Finding } from '../src/runtime/model.js';
import { kernel, runOnce, tasksWorkload, words } from './kernel-harness.js';

const SEEDS = [1, 2, 3];

/** The planted bug: `iterations` × udelay(1000) with no scheduling point (or with cond_resched() after each). */
function* plantedLoop(k: Kernel, t: KTask, iterations: number, resched = false): KGen {
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

type Irqs = 'irqsave' | 'local_irq_disable' | 'spin_lock' | 'on' | 'cond_resched';

/** The loop inside what `irqs` says: a spinlock taken with interrupts off, local_irq_disable, a plain spinlock, nothing. */
const looper = (irqs: Irqs, iterations: number) => (k: Kernel) => {
  const lock = defineSpinlock(k, 'planted_lock');
  k.task('looper', 'kthread', function* (t) {
    if (irqs === 'irqsave') {
      const flags = yield* spin_lock_irqsave(k, t, lock);
      yield* plantedLoop(k, t, iterations);
      yield* spin_unlock_irqrestore(k, t, lock, flags);
    } else if (irqs === 'local_irq_disable') {
      local_irq_disable(t);
      yield* plantedLoop(k, t, iterations);
      local_irq_enable(t);
    } else if (irqs === 'spin_lock') {
      yield* spin_lock(k, t, lock);
      yield* plantedLoop(k, t, iterations);
      yield* spin_unlock(k, t, lock);
    } else {
      yield* plantedLoop(k, t, iterations, irqs === 'cond_resched');
    }
    // Back with interrupts on, it runs on a little: the soft-lockup timer could fire now.
    yield* udelay(k, t, 1000);
  });
  return ['looper'];
};

function run(opts: KernelOptions, define: (k: Kernel) => string[], seed: number): readonly Finding[] {
  const k = kernel(opts);
  return runOnce(tasksWorkload(k, 'watchdog', define(k)), seed, false, true).findings;
}

const titles = (fs: readonly Finding[]) => fs.map((f) => `${f.kind}: ${f.title.replace(/\d+\]$/, 'N]').replace(/CPU#\d/, 'CPU#n').replace(/cpu \d$/, 'cpu n')}`);

describe('hard lockup (the NMI watchdog)', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: 25 s of udelay(1000) under spin_lock_irqsave is a hard lockup, reported once, in the kernel's words, with its call chain — not a soft lockup`, () => {
      const fs = run({}, looper('irqsave', 25_000), seed);
      expect(titles(fs)).toEqual(['hard_lockup: NMI watchdog: Watchdog detected hard LOCKUP on cpu n']);
      const f = fs[0] as Finding;
      const cpu = /cpu (\d)$/.exec(f.title)?.[1];
      const lines = f.text.split('\n');
      expect(lines).toContain('Modules linked in:');
      expect(lines).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^CPU: ${cpu} PID: \\d+ Comm: looper Not tainted \\(iommu-sim\\)$`))]));
      expect(lines).toContain('RIP: 0010:delay_tsc');
      const trace = lines.slice(lines.indexOf(' <TASK>') + 1, lines.indexOf(' </TASK>'));
      expect(trace).toEqual([' delay_tsc', ' __const_udelay', ' planted_poll_loop', ' looper']);
      // Reported once past watchdog_thresh (10 s) of interrupts off.
      expect(lines.find((l) => l.startsWith('iommu-sim: '))).toMatch(/^iommu-sim: 10\.0\d\d s of CPU time with interrupts off \(since step \d+\), past watchdog_thresh/);
    });
  }

  it('local_irq_disable() around the loop is the same hard lockup', () => {
    expect(titles(run({}, looper('local_irq_disable', 25_000), 1))).toEqual(['hard_lockup: NMI watchdog: Watchdog detected hard LOCKUP on cpu n']);
  });

  it('the same loop with interrupts on is a soft lockup (under a plain spinlock, or with nothing held); with cond_resched(), nothing', () => {
    expect(titles(run({}, looper('spin_lock', 25_000), 1))).toEqual(['soft_lockup: watchdog: BUG: soft lockup - CPU#n stuck for 20s! [looper:N]']);
    expect(titles(run({}, looper('on', 25_000), 1))).toEqual(['soft_lockup: watchdog: BUG: soft lockup - CPU#n stuck for 20s! [looper:N]']);
    expect(run({}, looper('cond_resched', 25_000), 1)).toEqual([]);
  });

  it('interrupts off for less than watchdog_thresh: nothing (9 s); watchdog_thresh=5 reports it at 5 s; 0 turns it off', () => {
    expect(run({}, looper('irqsave', 9_000), 1)).toEqual([]);
    const at5 = run({ watchdogThresh: 5 }, looper('irqsave', 9_000), 1);
    expect(titles(at5)).toEqual(['hard_lockup: NMI watchdog: Watchdog detected hard LOCKUP on cpu n']);
    expect(at5[0]?.text).toMatch(/iommu-sim: 5\.0\d\d s of CPU time with interrupts off/);
    expect(run({ watchdogThresh: 0 }, looper('irqsave', 25_000), 1)).toEqual([]);
  });

  it('a spin-wait with interrupts off (spins: true) is a hard lockup once it has waited past watchdog_thresh', () => {
    const fs = run(
      {},
      (k) => {
        const w = words(k, 1);
        k.task('poller', 'kthread', function* (t) {
          local_irq_disable(t);
          yield* k.call(
            t,
            'planted_wait_desc_poll',
            (function* () {
              yield k.point(t, 'poll the status word', () => w.get(0) === 1, () => undefined, { what: 'the status word', spins: true });
            })(),
          );
          local_irq_enable(t);
        });
        return ['poller'];
      },
      1,
    );
    expect(titles(fs)).toEqual(['hard_lockup: NMI watchdog: Watchdog detected hard LOCKUP on cpu n']);
    expect(fs[0]?.text).toContain(' planted_wait_desc_poll');
  });
});
