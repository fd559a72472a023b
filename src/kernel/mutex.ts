// struct mutex: a sleeping lock. mutex_lock may sleep (might_sleep first), so taking one in atomic context —
// an RCU callback, under a spinlock — is the bug seed 003 is about.
import type { KTask } from './context.js';
import type { Kernel, KGen, Waits } from './kernel.js';
import { type LockRef, lockLabel, lockWaits, MUTEX, noteAcquired, noteReleased, owner, staticLock } from './lock.js';

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
  );
}

function mutexWaits(k: Kernel, m: LockRef, addr: number): Waits {
  return { what: `mutex ${m.name}`, holder: () => owner(k, m), watch: [k.view(MUTEX).owner.addr(addr)] };
}

/** mutex_trylock: never sleeps; true when taken. */
export function* mutex_trylock(k: Kernel, t: KTask, m: Mutex): KGen<boolean> {
  const addr = m.addr();
  const mutex = k.view(MUTEX);
  return yield* k.step(t, lockLabel(m, 'mutex_trylock'), (env) => {
    if (mutex.owner.READ_ONCE(addr) !== 0) return false;
    mutex.owner.WRITE_ONCE(addr, t.id);
    noteAcquired(k, t, m, 'mutex', env);
    return true;
  });
}

export function* mutex_unlock(k: Kernel, t: KTask, m: Mutex): KGen {
  const addr = m.addr();
  yield* k.step(t, lockLabel(m, 'mutex_unlock'), () => {
    if (noteReleased(k, t, m)) k.view(MUTEX).owner.WRITE_ONCE(addr, 0);
  });
}

export function mutex_is_locked(k: Kernel, m: Mutex): boolean {
  return owner(k, m) !== 0;
}
