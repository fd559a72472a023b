// spinlock_t: spin_lock / spin_unlock, the _irqsave and _bh variants. Taking one disables preemption (and
// interrupts or softirqs for the variants), which is what makes sleeping under it a bug (might_sleep) and what
// lockdep's irq-safety checks look at.
import { type Footprint, type FootprintFn, read } from '../runtime/footprint.js';
import type { StepEnv } from '../runtime/task.js';
import type { KTask } from './context.js';
import type { Kernel, KGen, Waits } from './kernel.js';
import {
  acquirePointFootprint,
  type LockRef,
  lockLabel,
  lockWaits,
  noteAcquired,
  noteReleased,
  owner,
  releasePointFootprint,
  SPINLOCK,
  staticLock,
  stepOnOrNot,
} from './lock.js';

export type Spinlock = LockRef;

/** DEFINE_SPINLOCK(name), in the kernel's static memory. */
export function defineSpinlock(k: Kernel, name: string): Spinlock {
  return staticLock(k, name, SPINLOCK.words);
}

function* acquire(k: Kernel, t: KTask, l: Spinlock, variant: string): KGen {
  k.lockdep.acquire(t, l, 'spinlock');
  const addr = l.addr();
  const lock = k.view(SPINLOCK);
  yield k.point(
    t,
    lockLabel(l, variant),
    () => lock.owner.READ_ONCE(addr) === 0,
    (env) => {
      lock.owner.WRITE_ONCE(addr, t.id);
      noteAcquired(k, t, l, 'spinlock', env);
    },
    lockWaits(k, l, 'spin', spinWaits),
    acquirePointFootprint(k, t, l, 'spinlock', [lock.owner.addr(addr)]),
  );
}

// A contended spin_lock spins on its CPU: CPU time with no scheduling point (the soft-lockup watchdog's).
function spinWaits(k: Kernel, l: LockRef, addr: number): Waits {
  return { what: `spinlock ${l.name}`, holder: () => owner(k, l), watch: [k.view(SPINLOCK).owner.addr(addr)], spins: true };
}

function* release(k: Kernel, t: KTask, l: Spinlock, variant: string): KGen {
  const addr = l.addr();
  const lock = k.view(SPINLOCK);
  yield* stepOnOrNot(k, t, lockLabel(l, variant), releasePointFootprint(k, t, l, [lock.owner.addr(addr)]), () => {
    if (noteReleased(k, t, l)) lock.owner.WRITE_ONCE(addr, 0);
  });
}

export function* spin_lock(k: Kernel, t: KTask, l: Spinlock): KGen {
  t.preemptCount++;
  yield* acquire(k, t, l, 'spin_lock');
}

export function* spin_unlock(k: Kernel, t: KTask, l: Spinlock): KGen {
  yield* release(k, t, l, 'spin_unlock');
  t.preemptCount--;
}

/** spin_lock_irqsave: returns the previous irq state for spin_unlock_irqrestore. */
export function* spin_lock_irqsave(k: Kernel, t: KTask, l: Spinlock): KGen<boolean> {
  const flags = t.irqsDisabled;
  t.irqsDisabled = true;
  t.preemptCount++;
  yield* acquire(k, t, l, 'spin_lock_irqsave');
  return flags;
}

export function* spin_unlock_irqrestore(k: Kernel, t: KTask, l: Spinlock, flags: boolean): KGen {
  yield* release(k, t, l, 'spin_unlock_irqrestore');
  t.preemptCount--;
  t.irqsDisabled = flags;
}

export function* spin_lock_bh(k: Kernel, t: KTask, l: Spinlock): KGen {
  t.softirqsDisabled++;
  t.preemptCount++;
  yield* acquire(k, t, l, 'spin_lock_bh');
}

export function* spin_unlock_bh(k: Kernel, t: KTask, l: Spinlock): KGen {
  yield* release(k, t, l, 'spin_unlock_bh');
  t.preemptCount--;
  t.softirqsDisabled--;
}

/**
 * raw_spin_lock_irqsave(l); body; raw_spin_unlock_irqrestore(l) as one point: for a critical section that only
 * stores to memory other CPUs read under the same lock (or, as a device reads a queue, only once a tail register
 * publishes it), with interrupts off, so that the kernel has no place inside it where another CPU could see it
 * half done. The point is ready when the lock is free and `ready` holds (a wait the body would spin on with the
 * lock held: only the order in which waiters then get in differs). Lockdep sees the acquire and the release, in
 * the context of the section, as around a body of its own.
 */
export function* spin_lock_irqsave_section<T>(
  k: Kernel,
  t: KTask,
  l: Spinlock,
  label: string,
  ready: () => boolean,
  body: (env: StepEnv) => T,
  what: string,
  /**
   * Every word `ready` and `body` read or write (footprint.ts), when the caller declares them: the section's
   * point then declares them with the lock's and lockdep's; without it the point takes the coarse fallback.
   */
  bodyFootprint?: Footprint | FootprintFn,
): KGen<T> {
  const flags = t.irqsDisabled;
  t.irqsDisabled = true;
  t.preemptCount++;
  k.lockdep.acquire(t, l, 'spinlock');
  const addr = l.addr();
  const lock = k.view(SPINLOCK);
  return (yield k.point(
    t,
    label,
    () => lock.owner.READ_ONCE(addr) === 0 && ready(),
    (env) => {
      noteAcquired(k, t, l, 'spinlock', env);
      try {
        return body(env);
      } finally {
        noteReleased(k, t, l);
        t.preemptCount--;
        t.irqsDisabled = flags;
      }
    },
    { what, holder: () => owner(k, l), spins: true },
    bodyFootprint === undefined ? undefined : sectionFootprint(k, t, l, bodyFootprint),
  )) as T;
}

/** The section's footprint: the lock word read, noteAcquired's share (its holder words cover the release's), the body's. */
function sectionFootprint(k: Kernel, t: KTask, l: Spinlock, body: Footprint | FootprintFn): FootprintFn | undefined {
  const word = read(k.view(SPINLOCK).owner.addr(l.addr()));
  return acquirePointFootprint(k, t, l, 'spinlock', typeof body === 'function' ? () => {
    const own = body();
    return own && [word, ...own];
  } : [word, ...body]);
}
