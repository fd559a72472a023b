// struct completion (kernel/sched/completion.c, include/linux/completion.h): one word `done` in shared
// memory. complete() adds one (a waiter consumes it), complete_all() pins it at UINT_MAX so every waiter,
// present and future, passes until reinit_completion(). Waiting may sleep (might_sleep first), and a waiter
// names the completion it waits on, so a completion nobody completes shows up in the hung-task report. Every
// step on a completion touches its one word (its footprint, docs/threaded.md).
import type { KTask } from './context.js';
import type { Kernel, KGen } from './kernel.js';
import { struct, type ViewOf, word } from './struct.js';

/** struct completion: `done` (its swait queue is the scheduler's waiters here). */
const COMPLETION = struct('completion', {
  done: word,
});

/** UINT_MAX of the kernel's `unsigned int done`, in an Int32 word. */
export const COMPLETION_ALL = 0x7fffffff;

export interface Completion {
  readonly name: string;
  /** Absolute word offset of `done` in shared memory. */
  addr(): number;
}

function doneOf(k: Kernel): ViewOf<typeof COMPLETION>['done'] {
  return k.view(COMPLETION).done;
}

/** DECLARE_COMPLETION(name): static, zero (not done) at the start of every run. */
export function defineCompletion(k: Kernel, name: string): Completion {
  const off = k.statics.alloc(COMPLETION.words, `completion ${name}`);
  return { name, addr: () => k.mem.statics + off };
}

/** A completion embedded in a dynamically allocated object, at `field` words from its start. */
export function objectCompletion(k: Kernel, name: string, obj: number, field: number): Completion {
  void k;
  return { name, addr: () => obj + field };
}

/** init_completion() of an embedded completion (a static one starts initialised). */
export function* init_completion(k: Kernel, t: KTask, c: Completion): KGen {
  yield* k.stepOn(t, `init_completion(${c.name})`, [c.addr()], () => {
    doneOf(k).WRITE_ONCE(c.addr(), 0);
  });
}

/** reinit_completion(): back to not done, e.g. after complete_all(). */
export function* reinit_completion(k: Kernel, t: KTask, c: Completion): KGen {
  yield* k.stepOn(t, `reinit_completion(${c.name})`, [c.addr()], () => {
    doneOf(k).WRITE_ONCE(c.addr(), 0);
  });
}

/** complete(): lets one waiter through (any context: it never sleeps). */
export function* complete(k: Kernel, t: KTask, c: Completion): KGen {
  yield* k.stepOn(t, `complete(${c.name})`, [c.addr()], () => {
    const a = c.addr();
    const done = doneOf(k).READ_ONCE(a);
    if (done !== COMPLETION_ALL) doneOf(k).WRITE_ONCE(a, done + 1);
  });
}

/** complete_all(): lets every waiter through until reinit_completion(). */
export function* complete_all(k: Kernel, t: KTask, c: Completion): KGen {
  yield* k.stepOn(t, `complete_all(${c.name})`, [c.addr()], () => {
    doneOf(k).WRITE_ONCE(c.addr(), COMPLETION_ALL);
  });
}

function consume(k: Kernel, c: Completion): void {
  const a = c.addr();
  const done = doneOf(k).READ_ONCE(a);
  if (done !== COMPLETION_ALL) doneOf(k).WRITE_ONCE(a, done - 1);
}

/** wait_for_completion(): sleeps (uninterruptibly) until done, then consumes one completion. */
export function* wait_for_completion(k: Kernel, t: KTask, c: Completion): KGen {
  k.mightSleep(t, 'kernel/sched/completion.c:117');
  const a = c.addr();
  yield k.point(
    t,
    `wait_for_completion(${c.name})`,
    () => doneOf(k).READ_ONCE(a) > 0,
    () => consume(k, c),
    { what: `completion ${c.name}`, watch: [a] },
    [a],
  );
}

/**
 * wait_for_completion_timeout(): 0 when `ms` passed first, else the time left (at least 1), as the kernel
 * returns jiffies left. The point wakes by itself at the deadline, so the deterministic runtime moves time
 * there when nothing else can run.
 */
export function* wait_for_completion_timeout(k: Kernel, t: KTask, c: Completion, ms: number): KGen<number> {
  k.mightSleep(t, 'kernel/sched/completion.c:117');
  const a = c.addr();
  const deadline = k.now() + ms;
  const left = yield k.point(
    t,
    `wait_for_completion_timeout(${c.name})`,
    () => doneOf(k).READ_ONCE(a) > 0 || k.now() >= deadline,
    (env) => {
      if (doneOf(k).READ_ONCE(a) <= 0) return 0;
      consume(k, c);
      return Math.max(1, Math.ceil(deadline - env.now()));
    },
    { what: `completion ${c.name}`, wakeAt: () => deadline, watch: [a] },
    [a],
  );
  return left as number;
}

/** try_wait_for_completion(): consumes one completion if there is one; never sleeps. */
export function* try_wait_for_completion(k: Kernel, t: KTask, c: Completion): KGen<boolean> {
  return yield* k.stepOn(t, `try_wait_for_completion(${c.name})`, [c.addr()], () => {
    if (doneOf(k).READ_ONCE(c.addr()) <= 0) return false;
    consume(k, c);
    return true;
  });
}

/** completion_done(): a read, true when a wait would not block. */
export function completion_done(k: Kernel, c: Completion): boolean {
  return doneOf(k).READ_ONCE(c.addr()) > 0;
}
