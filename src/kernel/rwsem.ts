// struct rw_semaphore (kernel/locking/rwsem.c): many readers or one writer, both sleeping. A waiting writer
// holds off new readers (as the kernel's handoff does), which is what turns a recursive down_read into a
// deadlock when a writer queues in between. Lock words: the writer's task id, the reader count, the waiting
// writers, one waiting writer's id and the ids of the first readers — so a blocked task can name whom it waits
// for, for hung-task and deadlock reports.
import type { KTask } from './context.js';
import type { Kernel, KGen } from './kernel.js';
import { type LockRef, lockLabel, noteAcquired, noteReleased, staticLock } from './lock.js';

export type RwSemaphore = LockRef;

const R_OWNER = 0; // writer's task id, 0: none
const R_READERS = 1;
const R_WAITW = 2; // writers waiting
const R_WAITER = 3; // one waiting writer's id
const R_IDS = 4; // reader ids (the first READER_IDS readers)
const READER_IDS = 8;
const WORDS = R_IDS + READER_IDS;

/** DECLARE_RWSEM(name), in the kernel's static memory. */
export function defineRwsem(k: Kernel, name: string): RwSemaphore {
  return staticLock(k, name, WORDS);
}

function word(k: Kernel, s: RwSemaphore, i: number): number {
  return Atomics.load(k.i32, s.addr() + i);
}

function canRead(k: Kernel, s: RwSemaphore): boolean {
  return word(k, s, R_OWNER) === 0 && word(k, s, R_WAITW) === 0;
}

function canWrite(k: Kernel, s: RwSemaphore): boolean {
  return word(k, s, R_OWNER) === 0 && word(k, s, R_READERS) === 0;
}

function firstReader(k: Kernel, s: RwSemaphore): number | undefined {
  for (let i = 0; i < READER_IDS; i++) {
    const id = word(k, s, R_IDS + i);
    if (id !== 0) return id;
  }
  return undefined;
}

function takeRead(k: Kernel, s: RwSemaphore, t: KTask): void {
  const a = s.addr();
  Atomics.add(k.i32, a + R_READERS, 1);
  for (let i = 0; i < READER_IDS; i++) {
    if (Atomics.load(k.i32, a + R_IDS + i) === 0) {
      Atomics.store(k.i32, a + R_IDS + i, t.id);
      break;
    }
  }
}

function dropRead(k: Kernel, s: RwSemaphore, t: KTask): void {
  const a = s.addr();
  Atomics.sub(k.i32, a + R_READERS, 1);
  for (let i = 0; i < READER_IDS; i++) {
    if (Atomics.load(k.i32, a + R_IDS + i) === t.id) {
      Atomics.store(k.i32, a + R_IDS + i, 0);
      break;
    }
  }
}

/** might_sleep() as seen from inside fn (the trace shows fn; the lock's acquire site stays the caller's). */
function mightSleepIn(k: Kernel, t: KTask, fn: string, where: string): void {
  t.frames.push(fn);
  try {
    k.mightSleep(t, where);
  } finally {
    t.frames.pop();
  }
}

export function* down_read(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  mightSleepIn(k, t, 'down_read', 'kernel/locking/rwsem.c:1525');
  k.lockdep.acquire(t, s, 'rwsem-read');
  yield k.point(
    t,
    lockLabel(s, 'down_read'),
    () => canRead(k, s),
    (env) => {
      takeRead(k, s, t);
      noteAcquired(k, t, s, 'rwsem-read', env);
    },
    {
      what: `rwsem ${s.name} (read)`,
      // canRead()
      watch: [s.addr() + R_OWNER, s.addr() + R_WAITW],
      holder: () => {
        const w = word(k, s, R_OWNER);
        return w !== 0 ? w : word(k, s, R_WAITER) || undefined;
      },
    },
  );
}

/** down_read_trylock: never sleeps; fails while a writer holds it or waits for it. */
export function* down_read_trylock(k: Kernel, t: KTask, s: RwSemaphore): KGen<boolean> {
  return yield* k.step(t, lockLabel(s, 'down_read_trylock'), (env) => {
    if (!canRead(k, s)) return false;
    takeRead(k, s, t);
    noteAcquired(k, t, s, 'rwsem-read', env);
    return true;
  });
}

export function* up_read(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  yield* k.step(t, lockLabel(s, 'up_read'), () => {
    if (noteReleased(k, t, s)) dropRead(k, s, t);
  });
}

export function* down_write(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  mightSleepIn(k, t, 'down_write', 'kernel/locking/rwsem.c:1578');
  k.lockdep.acquire(t, s, 'rwsem-write');
  const a = s.addr();
  // Queueing is a step of its own: from then on new readers wait behind this writer.
  const got = yield* k.step(t, lockLabel(s, 'down_write'), (env) => {
    if (canWrite(k, s)) {
      Atomics.store(k.i32, a + R_OWNER, t.id);
      noteAcquired(k, t, s, 'rwsem-write', env);
      return true;
    }
    Atomics.add(k.i32, a + R_WAITW, 1);
    Atomics.store(k.i32, a + R_WAITER, t.id);
    return false;
  });
  if (got) return;
  yield k.point(
    t,
    `down_write(${s.name}): wait`,
    () => canWrite(k, s),
    (env) => {
      Atomics.store(k.i32, a + R_OWNER, t.id);
      Atomics.sub(k.i32, a + R_WAITW, 1);
      Atomics.compareExchange(k.i32, a + R_WAITER, t.id, 0);
      noteAcquired(k, t, s, 'rwsem-write', env);
    },
    {
      what: `rwsem ${s.name} (write)`,
      // canWrite()
      watch: [a + R_OWNER, a + R_READERS],
      holder: () => {
        const w = word(k, s, R_OWNER);
        return w !== 0 ? w : firstReader(k, s);
      },
    },
  );
}

/** down_write_trylock: never sleeps. */
export function* down_write_trylock(k: Kernel, t: KTask, s: RwSemaphore): KGen<boolean> {
  return yield* k.step(t, lockLabel(s, 'down_write_trylock'), (env) => {
    if (!canWrite(k, s)) return false;
    Atomics.store(k.i32, s.addr() + R_OWNER, t.id);
    noteAcquired(k, t, s, 'rwsem-write', env);
    return true;
  });
}

export function* up_write(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  yield* k.step(t, lockLabel(s, 'up_write'), () => {
    if (noteReleased(k, t, s)) Atomics.store(k.i32, s.addr() + R_OWNER, 0);
  });
}

/** downgrade_write: the writer becomes a reader without letting another writer in between. */
export function* downgrade_write(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  yield* k.step(t, lockLabel(s, 'downgrade_write'), (env) => {
    if (!noteReleased(k, t, s)) return;
    takeRead(k, s, t);
    Atomics.store(k.i32, s.addr() + R_OWNER, 0);
    noteAcquired(k, t, s, 'rwsem-read', env);
  });
}

export function rwsem_is_locked(k: Kernel, s: RwSemaphore): boolean {
  return word(k, s, R_OWNER) !== 0 || word(k, s, R_READERS) !== 0;
}

/** The writer holding s (0: none). */
export function rwsem_owner(k: Kernel, s: RwSemaphore): number {
  return word(k, s, R_OWNER);
}
