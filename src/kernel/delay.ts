// Delays and voluntary scheduling points (include/linux/delay.h, arch/x86/lib/delay.c, kernel/time/sleep_timeout.c,
// kernel/sched/core.c): ndelay/udelay/mdelay spin on the CPU for their time — CPU time with no scheduling point,
// which the soft-lockup watchdog counts (kernel/watchdog.ts) — while msleep and schedule_timeout sleep (state D:
// the hung-task watchdog's, never the soft-lockup one's) and cond_resched() lets the CPU reschedule. Times are
// simulated ms in the deterministic runtime (where a delay's end is a time the clock moves on to when nothing
// else can run) and real ms in the threaded one. Jiffies are ms here (HZ=1000). Their points wait on the clock and
// touch no shared memory: their footprint is empty.
import { WATCH_NOTHING } from '../runtime/task.js';
import type { KTask } from './context.js';
import type { Kernel, KGen } from './kernel.js';

/** Spin until `ms` have passed (delay_tsc's loop): a point that is CPU time while it waits. */
function* spin(k: Kernel, t: KTask, label: string, ms: number): KGen {
  const until = k.now() + ms;
  yield* k.call(
    t,
    '__const_udelay',
    k.call(
      t,
      'delay_tsc',
      (function* () {
        yield k.point(
          t,
          label,
          () => k.now() >= until,
          () => undefined,
          { what: label, spins: true, wakeAt: () => until, watch: WATCH_NOTHING },
          WATCH_NOTHING,
        );
      })(),
    ),
  );
}

/** ndelay(ns): busy-wait ns nanoseconds. */
export function ndelay(k: Kernel, t: KTask, ns: number): KGen {
  return spin(k, t, `ndelay(${ns})`, ns / 1e6);
}

/** udelay(us): busy-wait us microseconds. */
export function udelay(k: Kernel, t: KTask, us: number): KGen {
  return spin(k, t, `udelay(${us})`, us / 1000);
}

/** mdelay(ms): busy-wait ms milliseconds (the kernel's is a loop of udelay(1000): one wait here, the same CPU time). */
export function mdelay(k: Kernel, t: KTask, ms: number): KGen {
  return spin(k, t, `mdelay(${ms})`, ms);
}

/** Sleep until `ms` have passed, in state D (schedule_timeout_uninterruptible): a scheduling point. */
function* sleep(k: Kernel, t: KTask, label: string, what: string, ms: number, where: string): KGen {
  k.mightSleep(t, where);
  const until = k.now() + ms;
  yield* k.call(
    t,
    'schedule_timeout',
    (function* () {
      yield k.point(
        t,
        label,
        () => k.now() >= until,
        () => undefined,
        { what, wakeAt: () => until, watch: WATCH_NOTHING },
        WATCH_NOTHING,
      );
    })(),
  );
}

/** msleep(ms): sleep at least ms milliseconds, uninterruptibly. */
export function* msleep(k: Kernel, t: KTask, ms: number): KGen {
  yield* k.call(t, 'msleep', sleep(k, t, `msleep(${ms})`, `msleep(${ms})`, ms, 'kernel/time/sleep_timeout.c:302'));
}

/** schedule_timeout_uninterruptible(jiffies): sleep that long in state D; returns 0 (the time has passed). */
export function* schedule_timeout_uninterruptible(k: Kernel, t: KTask, jiffies: number): KGen<number> {
  yield* sleep(k, t, `schedule_timeout(${jiffies})`, `schedule_timeout(${jiffies})`, jiffies, 'kernel/time/sleep_timeout.c:94');
  return 0;
}

/** schedule_timeout(jiffies) after set_current_state(TASK_UNINTERRUPTIBLE): the same sleep. */
export const schedule_timeout = schedule_timeout_uninterruptible;

/**
 * cond_resched(): a voluntary scheduling point (__cond_resched). It reschedules — and the soft-lockup watchdog's
 * count starts again — only where the task may be preempted (should_resched(0): no preempt count, interrupts on).
 */
export function* cond_resched(k: Kernel, t: KTask): KGen {
  yield* k.resched(t, 'cond_resched()', () => undefined, WATCH_NOTHING);
}
