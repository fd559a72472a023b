// struct rw_semaphore (kernel/locking/rwsem.c): many readers or one writer, both sleeping. A waiting writer
// holds off new readers (as the kernel's handoff does), which is what turns a recursive down_read into a
// deadlock when a writer queues in between. The struct keeps the writer's task id, the reader count, the
// waiting writers, one waiting writer's id and the ids of the first readers — so a blocked task can name whom it
// waits for, for hung-task and deadlock reports.
import { type Footprint, read } from '../runtime/footprint.js';
import type { KTask } from './context.js';
import type { Kernel, KGen, Waits } from './kernel.js';
import {
  acquirePointFootprint,
  type LockRef,
  lockLabel,
  lockWaits,
  noteAcquired,
  noteReleased,
  releasePointFootprint,
  staticLock,
  stepOnOrNot,
} from './lock.js';
import { array, struct, type ViewOf, word } from './struct.js';

export type RwSemaphore = LockRef;

/** Readers whose ids a rw_semaphore keeps (the rest are counted only). */
const RWSEM_READER_IDS = 8;

/**
 * struct rw_semaphore: the kernel packs readers and flags into `count` and the writer into `owner`; the model
 * keeps them apart, with the ids a hung-task or deadlock report names.
 */
export const RW_SEMAPHORE = struct('rw_semaphore', {
  owner: word, // the writer's task id, 0: none
  count: word, // readers holding it
  nr_writers_waiting: word, // model: writers queued (RWSEM_FLAG_HANDOFF's effect: new readers wait behind them)
  waiter: word, // one waiting writer's id (the head of wait_list)
  readers: array(RWSEM_READER_IDS), // model: the ids of the first readers
});

/** DECLARE_RWSEM(name), in the kernel's static memory. */
export function defineRwsem(k: Kernel, name: string): RwSemaphore {
  return staticLock(k, name, RW_SEMAPHORE.words);
}

function sem(k: Kernel): ViewOf<typeof RW_SEMAPHORE> {
  return k.view(RW_SEMAPHORE);
}

function canRead(k: Kernel, s: RwSemaphore): boolean {
  const v = sem(k);
  const a = s.addr();
  return v.owner.READ_ONCE(a) === 0 && v.nr_writers_waiting.READ_ONCE(a) === 0;
}

function canWrite(k: Kernel, s: RwSemaphore): boolean {
  const v = sem(k);
  const a = s.addr();
  return v.owner.READ_ONCE(a) === 0 && v.count.READ_ONCE(a) === 0;
}

function firstReader(k: Kernel, s: RwSemaphore): number | undefined {
  const r = sem(k).readers;
  for (let i = 0; i < RWSEM_READER_IDS; i++) {
    const id = r.READ_ONCE(s.addr(), i);
    if (id !== 0) return id;
  }
  return undefined;
}

function takeRead(k: Kernel, s: RwSemaphore, t: KTask): void {
  const v = sem(k);
  const a = s.addr();
  v.count.atomic_add(a, 1);
  for (let i = 0; i < RWSEM_READER_IDS; i++) {
    if (v.readers.READ_ONCE(a, i) === 0) {
      v.readers.WRITE_ONCE(a, i, t.id);
      break;
    }
  }
}

function dropRead(k: Kernel, s: RwSemaphore, t: KTask): void {
  const v = sem(k);
  const a = s.addr();
  v.count.atomic_sub(a, 1);
  for (let i = 0; i < RWSEM_READER_IDS; i++) {
    if (v.readers.READ_ONCE(a, i) === t.id) {
      v.readers.WRITE_ONCE(a, i, 0);
      break;
    }
  }
}

// ---- footprints (docs/threaded.md) ----

/** canRead()'s words, read. */
function canReadWords(k: Kernel, a: number): number[] {
  const v = sem(k);
  return [read(v.owner.addr(a)), read(v.nr_writers_waiting.addr(a))];
}

/**
 * takeRead()'s words: `count`, and the reader slots it scans — read up to the first free one, which it writes
 * (all read when none is free). Computed: which slot is free depends on memory.
 */
function takeReadWords(k: Kernel, a: number, out: number[]): number[] {
  const v = sem(k);
  out.push(v.count.addr(a));
  for (let i = 0; i < RWSEM_READER_IDS; i++) {
    const slot = v.readers.addr(a, i);
    if (v.readers.READ_ONCE(a, i) === 0) {
      out.push(slot);
      break;
    }
    out.push(read(slot));
  }
  return out;
}

/** dropRead()'s words: `count`, and the reader slots it scans up to t's own, which it clears. */
function dropReadWords(k: Kernel, a: number, t: KTask): number[] {
  const v = sem(k);
  const out = [v.count.addr(a)];
  for (let i = 0; i < RWSEM_READER_IDS; i++) {
    const slot = v.readers.addr(a, i);
    if (v.readers.READ_ONCE(a, i) === t.id) {
      out.push(slot);
      break;
    }
    out.push(read(slot));
  }
  return out;
}

/** A writer's words: canWrite()'s (`owner` written, `count` read) and the queue's (`nr_writers_waiting`, `waiter`). */
function writerWords(k: Kernel, a: number): Footprint {
  const v = sem(k);
  return [v.owner.addr(a), read(v.count.addr(a)), v.nr_writers_waiting.addr(a), v.waiter.addr(a)];
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
    lockWaits(k, s, 'read', readWaits),
    acquirePointFootprint(k, t, s, 'rwsem-read', () => takeReadWords(k, s.addr(), canReadWords(k, s.addr()))),
  );
}

function readWaits(k: Kernel, s: LockRef): Waits {
  return {
    what: `rwsem ${s.name} (read)`,
    // canRead()
    watch: [sem(k).owner.addr(s.addr()), sem(k).nr_writers_waiting.addr(s.addr())],
    holder: () => {
      const w = sem(k).owner.READ_ONCE(s.addr());
      return w !== 0 ? w : sem(k).waiter.READ_ONCE(s.addr()) || undefined;
    },
  };
}

/** down_read_trylock: never sleeps; fails while a writer holds it or waits for it. */
export function* down_read_trylock(k: Kernel, t: KTask, s: RwSemaphore): KGen<boolean> {
  const fp = acquirePointFootprint(k, t, s, 'rwsem-read', () => takeReadWords(k, s.addr(), canReadWords(k, s.addr())));
  return yield* stepOnOrNot(k, t, lockLabel(s, 'down_read_trylock'), fp, (env) => {
    if (!canRead(k, s)) return false;
    takeRead(k, s, t);
    noteAcquired(k, t, s, 'rwsem-read', env);
    return true;
  });
}

export function* up_read(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  yield* stepOnOrNot(k, t, lockLabel(s, 'up_read'), upReadFootprint(k, t, s), () => {
    if (noteReleased(k, t, s)) dropRead(k, s, t);
  });
}

/** up_read's footprint: dropRead()'s words (computed: the slots it scans) and noteReleased()'s. */
function upReadFootprint(k: Kernel, t: KTask, s: RwSemaphore): (() => Footprint) | undefined {
  // What noteReleased() touches is fixed until the point is performed (t's held locks are its own).
  const note = releasePointFootprint(k, t, s, []);
  if (note === undefined) return undefined;
  if (t.holds(s.addr()) === undefined) return () => note;
  return () => {
    const own = dropReadWords(k, s.addr(), t);
    for (const e of note) own.push(e);
    return own;
  };
}

export function* down_write(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  mightSleepIn(k, t, 'down_write', 'kernel/locking/rwsem.c:1578');
  k.lockdep.acquire(t, s, 'rwsem-write');
  const a = s.addr();
  const v = sem(k);
  // Queueing is a step of its own: from then on new readers wait behind this writer.
  const fp = acquirePointFootprint(k, t, s, 'rwsem-write', writerWords(k, a));
  const got = yield* stepOnOrNot(k, t, lockLabel(s, 'down_write'), fp, (env) => {
    if (canWrite(k, s)) {
      v.owner.WRITE_ONCE(a, t.id);
      noteAcquired(k, t, s, 'rwsem-write', env);
      return true;
    }
    v.nr_writers_waiting.atomic_add(a, 1);
    v.waiter.WRITE_ONCE(a, t.id);
    return false;
  });
  if (got) return;
  yield k.point(
    t,
    `down_write(${s.name}): wait`,
    () => canWrite(k, s),
    (env) => {
      v.owner.WRITE_ONCE(a, t.id);
      v.nr_writers_waiting.atomic_sub(a, 1);
      v.waiter.cmpxchg(a, t.id, 0);
      noteAcquired(k, t, s, 'rwsem-write', env);
    },
    lockWaits(k, s, 'write', writeWaits),
    acquirePointFootprint(k, t, s, 'rwsem-write', writerWords(k, a)),
  );
}

function writeWaits(k: Kernel, s: LockRef, a: number): Waits {
  const v = sem(k);
  return {
    what: `rwsem ${s.name} (write)`,
    // canWrite()
    watch: [v.owner.addr(a), v.count.addr(a)],
    holder: () => {
      const w = v.owner.READ_ONCE(a);
      return w !== 0 ? w : firstReader(k, s);
    },
  };
}

/** down_write_trylock: never sleeps. */
export function* down_write_trylock(k: Kernel, t: KTask, s: RwSemaphore): KGen<boolean> {
  const v = sem(k);
  const fp = acquirePointFootprint(k, t, s, 'rwsem-write', [v.owner.addr(s.addr()), read(v.count.addr(s.addr()))]);
  return yield* stepOnOrNot(k, t, lockLabel(s, 'down_write_trylock'), fp, (env) => {
    if (!canWrite(k, s)) return false;
    v.owner.WRITE_ONCE(s.addr(), t.id);
    noteAcquired(k, t, s, 'rwsem-write', env);
    return true;
  });
}

export function* up_write(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  const owner = sem(k).owner;
  yield* stepOnOrNot(k, t, lockLabel(s, 'up_write'), releasePointFootprint(k, t, s, [owner.addr(s.addr())]), () => {
    if (noteReleased(k, t, s)) owner.WRITE_ONCE(s.addr(), 0);
  });
}

/** downgrade_write: the writer becomes a reader without letting another writer in between. */
export function* downgrade_write(k: Kernel, t: KTask, s: RwSemaphore): KGen {
  // Its noteAcquired() is not announced (a trylock to lockdep): the coarse fallback while lockdep is on.
  const released = releasePointFootprint(k, t, s, [sem(k).owner.addr(s.addr())]);
  const fp = released && acquirePointFootprint(k, t, s, 'rwsem-read', () => takeReadWords(k, s.addr(), [...released]));
  yield* stepOnOrNot(k, t, lockLabel(s, 'downgrade_write'), fp, (env) => {
    if (!noteReleased(k, t, s)) return;
    takeRead(k, s, t);
    sem(k).owner.WRITE_ONCE(s.addr(), 0);
    noteAcquired(k, t, s, 'rwsem-read', env);
  });
}

export function rwsem_is_locked(k: Kernel, s: RwSemaphore): boolean {
  const v = sem(k);
  return v.owner.READ_ONCE(s.addr()) !== 0 || v.count.READ_ONCE(s.addr()) !== 0;
}

/** The writer holding s (0: none). */
export function rwsem_owner(k: Kernel, s: RwSemaphore): number {
  return sem(k).owner.READ_ONCE(s.addr());
}
