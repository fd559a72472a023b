// struct mutex: a sleeping lock. mutex_lock may sleep (might_sleep first), so taking one in atomic context —
// an RCU callback, under a spinlock — is the bug seed 003 is about.
import type { StepEnv } from '../runtime/task.js';
import type { KTask } from './context.js';
import type { Kernel, KGen, Waits } from './kernel.js';
import {
  acquirePointFootprint,
  type LockRef,
  lockLabel,
  lockWaits,
  MUTEX,
  noteAcquired,
  noteReleased,
  owner,
  releasePointFootprint,
  staticLock,
  stepOnOrNot,
} from './lock.js';

export type Mutex = LockRef;

/** DEFINE_MUTEX(name), in the kernel's static memory. */
export function defineMutex(k: Kernel, name: string): Mutex {
  return staticLock(k, name, MUTEX.words);
}

export function* mutex_lock(k: Kernel, t: KTask, m: Mutex): KGen {
  k.mightSleep(t, 'kernel/locking/mutex.c:283');
  k.lockdep.acquire(t, m, 'mutex');
  const addr = m.addr();
  const mutex = k.view(MUTEX);
  yield k.point(
    t,
    lockLabel(m, 'mutex_lock'),
    () => mutex.owner.READ_ONCE(addr) === 0,
    (env) => {
      mutex.owner.WRITE_ONCE(addr, t.id);
      noteAcquired(k, t, m, 'mutex', env);
    },
    lockWaits(k, m, 'mutex', mutexWaits),
    acquirePointFootprint(k, t, m, 'mutex', [mutex.owner.addr(addr)]),
  );
}

function mutexWaits(k: Kernel, m: LockRef, addr: number): Waits {
  return { what: `mutex ${m.name}`, holder: () => owner(k, m), watch: [k.view(MUTEX).owner.addr(addr)] };
}

/** mutex_trylock: never sleeps; true when taken. */
export function* mutex_trylock(k: Kernel, t: KTask, m: Mutex): KGen<boolean> {
  const addr = m.addr();
  const mutex = k.view(MUTEX);
  // A trylock adds no dependency but marks the class's usage: lockdep's graph (the fallback) while it is on.
  const fp = acquirePointFootprint(k, t, m, 'mutex', [mutex.owner.addr(addr)]);
  const perform = (env: StepEnv): boolean => {
    if (mutex.owner.READ_ONCE(addr) !== 0) return false;
    mutex.owner.WRITE_ONCE(addr, t.id);
    noteAcquired(k, t, m, 'mutex', env);
    return true;
  };
  return yield* stepOnOrNot(k, t, lockLabel(m, 'mutex_trylock'), fp, perform);
}

export function* mutex_unlock(k: Kernel, t: KTask, m: Mutex): KGen {
  const addr = m.addr();
  const mutex = k.view(MUTEX);
  const fp = releasePointFootprint(k, t, m, [mutex.owner.addr(addr)]);
  const perform = (): void => {
    if (noteReleased(k, t, m)) mutex.owner.WRITE_ONCE(addr, 0);
  };
  yield* stepOnOrNot(k, t, lockLabel(m, 'mutex_unlock'), fp, perform);
}

export function mutex_is_locked(k: Kernel, m: Mutex): boolean {
  return owner(k, m) !== 0;
}
