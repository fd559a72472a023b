// Wait queues (include/linux/wait.h, kernel/sched/wait.c): wait_event(wq, cond) sleeps until cond holds,
// re-checking it only when woken by wake_up(wq) — so, as in the kernel, a waker that makes cond true without
// calling wake_up() leaves the waiter asleep (a lost wake-up: the hung-task report names the queue). The
// queue head is one word in shared memory, a count of wake-ups; a waiter remembers the count it saw when it
// found cond false (prepare_to_wait) and sleeps until the count moves. cond is a pure function reading shared
// memory; it is evaluated inside performed points, atomically with the step.
import { type Footprint, type FootprintFn, read } from '../runtime/footprint.js';
import type { KTask } from './context.js';
import type { Kernel, KGen } from './kernel.js';

export interface WaitQueue {
  readonly name: string;
  /** Absolute word offset of the queue head (its wake-up count) in shared memory. */
  addr(): number;
}

/** DECLARE_WAIT_QUEUE_HEAD(name), in the kernel's static memory. */
export function defineWaitQueue(k: Kernel, name: string): WaitQueue {
  const off = k.statics.alloc(1, `wait queue ${name}`);
  return { name, addr: () => k.mem.statics + off };
}

/** A wait_queue_head_t embedded in a dynamically allocated object, at `field` words from its start. */
export function objectWaitQueue(k: Kernel, name: string, obj: number, field: number): WaitQueue {
  void k;
  return { name, addr: () => obj + field };
}

/**
 * The words a wait's condition reads (footprint.ts, as reads), when its caller declares them: the check step
 * then declares them with the queue head; without them it takes the coarse fallback.
 */
export type CondFootprint = Footprint | FootprintFn;

/** The check before sleeping: cond, or the wake-up count to sleep on. */
function* check(
  k: Kernel,
  t: KTask,
  wq: WaitQueue,
  cond: () => boolean,
  label: string,
  condFp: CondFootprint | undefined,
): KGen<number | true> {
  const perform = (): number | true => (cond() ? true : Atomics.load(k.i32, wq.addr()));
  if (condFp === undefined) return yield* k.step(t, label, perform);
  const head = read(wq.addr());
  return yield* k.stepOn(t, label, typeof condFp === 'function' ? () => {
    const own = condFp();
    return own && [head, ...own];
  } : [head, ...condFp], perform);
}

/** wait_event(): sleeps (uninterruptibly) until cond() is true, checking it each time wq is woken. */
export function* wait_event(k: Kernel, t: KTask, wq: WaitQueue, cond: () => boolean, condFp?: CondFootprint): KGen {
  k.mightSleep(t, 'include/linux/wait.h:333');
  const a = wq.addr();
  for (;;) {
    const seen = yield* check(k, t, wq, cond, `wait_event(${wq.name})`, condFp);
    if (seen === true) return;
    yield k.point(
      t,
      `schedule(${wq.name})`,
      () => Atomics.load(k.i32, a) !== seen,
      () => undefined,
      { what: `wait_event ${wq.name}`, watch: [a] },
      [read(a)],
    );
  }
}

/**
 * wait_event_timeout(): 0 if cond is still false when `ms` have passed, else the time left (at least 1, also
 * when cond became true just as the time ran out), as the kernel returns jiffies left.
 */
export function* wait_event_timeout(
  k: Kernel,
  t: KTask,
  wq: WaitQueue,
  cond: () => boolean,
  ms: number,
  condFp?: CondFootprint,
): KGen<number> {
  k.mightSleep(t, 'include/linux/wait.h:417');
  const a = wq.addr();
  const deadline = k.now() + ms;
  for (;;) {
    const seen = yield* check(k, t, wq, cond, `wait_event_timeout(${wq.name})`, condFp);
    if (seen === true) return Math.max(1, Math.ceil(deadline - k.now()));
    if (k.now() >= deadline) return 0;
    yield k.point(
      t,
      `schedule_timeout(${wq.name})`,
      () => Atomics.load(k.i32, a) !== seen || k.now() >= deadline,
      () => undefined,
      { what: `wait_event ${wq.name}`, wakeAt: () => deadline, watch: [a] },
      [read(a)],
    );
  }
}

/** wake_up(): wakes the queue's waiters so they re-check their conditions (call after making cond true). */
export function* wake_up(k: Kernel, t: KTask, wq: WaitQueue): KGen {
  yield* k.stepOn(t, `wake_up(${wq.name})`, [wq.addr()], () => {
    Atomics.add(k.i32, wq.addr(), 1);
  });
}

/** wake_up_all(): the same here, as exclusive waits are not modelled. */
export function* wake_up_all(k: Kernel, t: KTask, wq: WaitQueue): KGen {
  yield* k.stepOn(t, `wake_up_all(${wq.name})`, [wq.addr()], () => {
    Atomics.add(k.i32, wq.addr(), 1);
  });
}
