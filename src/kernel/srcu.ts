// Sleepable RCU (kernel/rcu/srcutree.c, include/linux/srcu.h): each srcu_struct has its own readers and its
// own grace periods, so synchronize_srcu waits only for readers of that struct, and a reader may sleep. Readers
// register in a per-struct table in static shared memory (rcu.ts's ReaderTable); srcu_read_lock's idx is the
// reader's slot — one per task (a nested srcu_read_lock of the same struct gets the same idx), so the table
// holds every task of the workload (KernelOptions.readerSlots) however deep they nest. SRCU callbacks run from a workqueue with softirqs disabled (srcu_invoke_callbacks), as the
// kernel runs them.
import { read } from '../runtime/footprint.js';
import type { Wire } from '../runtime/model.js';
import type { KTask } from './context.js';
import type { Kernel, KGen } from './kernel.js';
import { type LockRef, lockHolderFootprint, noteAcquired, noteReleased } from './lock.js';
import { ReaderTable, rcu_read_lock_any_held, suspiciousRcuUsage, waitForReaders, withFrames } from './rcu.js';
import { struct, word } from './struct.js';
import { acquirePointFootprint, stepOnOrNot } from './lock.js';

/** struct srcu_struct, the words the model keeps of it (its readers are a ReaderTable beside it). */
const SRCU_STRUCT = struct('srcu_struct', {
  dep_map: word, // struct lockdep_map: the lock identity srcu_read_lock's dependencies are taken on
  srcu_cblist_len: word, // model: call_srcu callbacks not yet invoked (the length of srcu_data's srcu_cblist)
});

export interface SrcuStruct extends LockRef {
  readonly readers: ReaderTable;
  readonly callbacks: Set<string>;
}

/** The address of ssp's srcu_cblist_len. */
function cblistLen(k: Kernel, ssp: SrcuStruct): number {
  return k.view(SRCU_STRUCT).srcu_cblist_len.addr(ssp.addr());
}

/** A task's slot in each srcu_struct it is inside, and how deep. */
const nests = new WeakMap<KTask, Map<SrcuStruct, { slot: number; depth: number }>>();

/** DEFINE_STATIC_SRCU(name): `slots` tasks may be inside at once (the kernel's readerSlots unless given). */
export function defineSrcu(k: Kernel, name: string, slots = k.readerSlots): SrcuStruct {
  const off = k.statics.alloc(SRCU_STRUCT.words, name);
  return {
    name,
    addr: () => k.mem.statics + off + SRCU_STRUCT.offset.dep_map,
    readers: new ReaderTable(k, name, slots, 0),
    callbacks: new Set(),
  };
}

/** srcu_read_lock(ssp): enter a read-side section; returns the idx to give srcu_read_unlock. */
export function* srcu_read_lock(k: Kernel, t: KTask, ssp: SrcuStruct): KGen<number> {
  // Announced like a blocking lock (lockdep treats an unannounced acquisition as a trylock): srcu_read_lock
  // takes part in lockdep's dependencies as a recursive read.
  k.lockdep.acquire(t, ssp, 'srcu');
  // The slot this task reads in (claimed at its first, outermost lock), and lockdep's share of the acquisition.
  const claim = (): number[] => {
    const out: number[] = [];
    if (!nests.get(t)?.has(ssp)) ssp.readers.claimFootprint(t, out);
    return out;
  };
  return yield* stepOnOrNot(k, t, `srcu_read_lock(${ssp.name})`, acquirePointFootprint(k, t, ssp, 'srcu', claim), (env) => {
    let mine = nests.get(t);
    if (!mine) {
      mine = new Map();
      nests.set(t, mine);
    }
    let r = mine.get(ssp);
    if (!r) {
      r = { slot: ssp.readers.claim(t), depth: 0 };
      mine.set(ssp, r);
    }
    r.depth++;
    noteAcquired(k, t, ssp, 'srcu', env);
    return r.slot;
  });
}

/** srcu_read_unlock(ssp, idx). */
export function* srcu_read_unlock(k: Kernel, t: KTask, ssp: SrcuStruct, idx: number): KGen {
  // noteReleased (the holder watches), then the slot. A release of what t does not hold is lockdep's report, which
  // reads its graph: the coarse fallback (what t holds is its own: the same when the point is performed).
  const footprint = (): number[] => {
    const r = nests.get(t)?.get(ssp);
    if (!r || r.slot !== idx) return [];
    const out = [...lockHolderFootprint(k, t, ssp.name, false)];
    if (r.depth === 1) ssp.readers.retireFootprint(idx, out);
    else out.push(read(ssp.readers.taskWord(idx)));
    return out;
  };
  const label = `srcu_read_unlock(${ssp.name})`;
  yield* stepOnOrNot(k, t, label, t.holds(ssp.addr()) === undefined ? undefined : footprint, () => {
    const r = nests.get(t)?.get(ssp);
    if (!r || r.slot !== idx || ssp.readers.taskAt(idx) === 0) {
      throw new Error(`srcu_read_unlock(${ssp.name}): idx ${idx} is not a reader of it`);
    }
    noteReleased(k, t, ssp);
    if (--r.depth > 0) return;
    nests.get(t)?.delete(ssp);
    ssp.readers.retire(idx);
  });
}

/** srcu_read_lock_held(ssp). */
export function srcu_read_lock_held(t: KTask, ssp: SrcuStruct): boolean {
  return t.holds(ssp.addr()) !== undefined;
}

/**
 * synchronize_srcu(ssp): may sleep; returns once every reader of ssp that was inside when it was called has
 * left. Calling it inside a reader of the same struct (or of RCU) is `suspicious RCU usage` and a deadlock.
 */
export function* synchronize_srcu(k: Kernel, t: KTask, ssp: SrcuStruct): KGen {
  yield* k.call(
    t,
    'synchronize_srcu',
    (function* () {
      if (k.enabled('rcu') && (srcu_read_lock_held(t, ssp) || rcu_read_lock_any_held(t))) {
        suspiciousRcuUsage(
          k,
          t,
          t.lastStep,
          'kernel/rcu/srcutree.c:1404',
          'Illegal synchronize_srcu() in same-type SRCU (or in RCU) read-side critical section',
        );
      }
      k.mightSleep(t, 'kernel/rcu/srcutree.c:1410');
      const gp = yield* k.stepOn(t, `synchronize_srcu(${ssp.name}): start grace period`, ssp.readers.snapshotFootprint(), () =>
        ssp.readers.snapshot(),
      );
      yield waitForReaders(k, t, ssp.readers, gp, `an SRCU grace period of ${ssp.name}`);
    })(),
  );
}

export const synchronize_srcu_expedited = synchronize_srcu;

function callbackArgs(a: Wire): { args: Wire; gp: number[] } {
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Error('srcu callback: bad arguments');
  const gp = a.gp;
  if (!Array.isArray(gp) || !gp.every((x) => typeof x === 'number')) throw new Error('srcu callback: bad grace period');
  return { args: a.args ?? null, gp: gp as number[] };
}

/**
 * Declare an SRCU callback kind for ssp. It runs as a workqueue task once the grace period of its call_srcu has
 * elapsed, with softirqs disabled around it as srcu_invoke_callbacks does.
 */
export function defineSrcuCallback(k: Kernel, ssp: SrcuStruct, name: string, body: (t: KTask, args: Wire) => KGen): string {
  ssp.callbacks.add(name);
  return k.task(name, 'workqueue', function* (t, a) {
    const { args, gp } = callbackArgs(a);
    yield waitForReaders(k, t, ssp.readers, gp, `an SRCU grace period of ${ssp.name} (callback ${name})`);
    t.softirqsDisabled++;
    yield* withFrames(t, ['worker_thread', 'process_one_work', 'srcu_invoke_callbacks', name], body(t, args));
    t.softirqsDisabled--;
    yield* k.stepOn(t, 'srcu_invoke_callbacks: callback done', [cblistLen(k, ssp)], () => {
      k.view(SRCU_STRUCT).srcu_cblist_len.atomic_dec(ssp.addr());
    });
  });
}

/** call_srcu(ssp, head, func): run `cbKind` (from defineSrcuCallback for ssp) after an SRCU grace period. */
export function* call_srcu(k: Kernel, t: KTask, ssp: SrcuStruct, cbKind: string, args: Wire = null): KGen {
  if (!ssp.callbacks.has(cbKind)) throw new Error(`call_srcu: '${cbKind}' is not a callback of ${ssp.name} (defineSrcuCallback)`);
  yield* k.call(
    t,
    'call_srcu',
    k.stepOn(t, `call_srcu(${ssp.name}, ${cbKind})`, [cblistLen(k, ssp), ...ssp.readers.snapshotFootprint()], (env) => {
      k.view(SRCU_STRUCT).srcu_cblist_len.atomic_inc(ssp.addr());
      env.spawn(cbKind, { args, gp: ssp.readers.snapshot() });
    }),
  );
}

/** srcu_barrier(ssp): may sleep; waits until no call_srcu callback of ssp is pending. */
export function* srcu_barrier(k: Kernel, t: KTask, ssp: SrcuStruct): KGen {
  yield* k.call(
    t,
    'srcu_barrier',
    (function* () {
      k.mightSleep(t, 'kernel/rcu/srcutree.c:1640');
      const len = k.view(SRCU_STRUCT).srcu_cblist_len;
      const addr = len.addr(ssp.addr());
      yield k.point(
        t,
        `srcu_barrier(${ssp.name})`,
        () => len.READ_ONCE(ssp.addr()) === 0,
        () => undefined,
        {
          what: `pending SRCU callbacks of ${ssp.name}`,
          watch: [addr],
        },
        [read(addr)],
      );
    })(),
  );
}
