// IDA (exhaustion, double free, teardown leak, might_sleep for GFP_KERNEL) and the xarray (cmpxchg semantics,
// xa_insert's -EBUSY, capacity and entry errors, the lockdep-RCU splat for an unprotected xa_load).
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import { EBUSY, EINVAL, ENOSPC, errname } from '../src/kernel/errno.js';
import {
  defineIda,
  type Ida,
  ida_alloc,
  ida_alloc_max,
  ida_alloc_min,
  ida_alloc_range,
  ida_destroy,
  ida_free,
  ida_is_empty,
  idaAllocated,
} from '../src/kernel/ida.js';
import { kernelWorkload } from '../src/kernel/workload.js';
import { Kernel, type KernelOptions, type KGen } from '../src/kernel/kernel.js';
import { defineMutex, mutex_lock, mutex_unlock } from '../src/kernel/mutex.js';
import { defineSpinlock, spin_lock, spin_unlock } from '../src/kernel/spinlock.js';
import {
  __xa_cmpxchg,
  __xa_store,
  defineXArray,
  type XArray,
  xa_alloc,
  xa_cmpxchg,
  xa_empty,
  xa_erase,
  xa_insert,
  xa_load,
  xa_lock,
  xa_store,
  xa_unlock,
  xaEntries,
} from '../src/kernel/xarray.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';

/** One task running `body`; the run keeps going after findings so that a test sees all of them. */
function single(k: Kernel, body: (t: KTask) => KGen): RunResult {
  k.task('main', 'process', function* (t) {
    yield* body(t);
  });
  const w = kernelWorkload(k, 'ida-xarray-test', [{ task: 'main', args: null }]);
  const s = new RandomScheduler(1);
  s.newExecution();
  return runDeterministic({ workload: w, seed: 1, scheduler: s, keepGoing: true });
}

describe('IDA', () => {
  it('hands out the lowest free ID in range, -ENOSPC when exhausted', () => {
    const k = new Kernel();
    const ida = defineIda(k, 'pasid', 40);
    const got: number[] = [];
    const r = single(k, function* (t) {
      for (let i = 0; i < 4; i++) got.push(yield* ida_alloc_range(k, t, ida, 1, 4));
      got.push(yield* ida_alloc_range(k, t, ida, 1, 4)); // all of 1..4 taken
      yield* ida_free(k, t, ida, 2);
      got.push(yield* ida_alloc_range(k, t, ida, 1, 4)); // 2 again
      got.push(yield* ida_alloc_min(k, t, ida, 33), yield* ida_alloc_max(k, t, ida, 0), yield* ida_alloc(k, t, ida));
      got.push(
        yield* ida_alloc_range(k, t, ida, 38, 100),
        yield* ida_alloc_range(k, t, ida, 38, 100),
        yield* ida_alloc_range(k, t, ida, 38, 100),
      );
      got.push(yield* ida_alloc_range(k, t, ida, -1, 3), yield* ida_alloc_range(k, t, ida, 7, 6));
      got.push((yield* ida_is_empty(k, t, ida)) ? 1 : 0);
      yield* ida_destroy(k, t, ida);
      got.push((yield* ida_is_empty(k, t, ida)) ? 1 : 0);
    });
    expect(r.findings).toEqual([]);
    expect(got).toEqual([1, 2, 3, 4, -ENOSPC, 2, 33, 0, 5, 38, 39, -ENOSPC, -ENOSPC, -ENOSPC, 0, 1]);
    expect(errname(-ENOSPC)).toBe('-ENOSPC');
  });

  it('exhausting a whole IDA of 64 IDs', () => {
    const k = new Kernel();
    const ida = defineIda(k, 'asid', 64);
    const got: number[] = [];
    const r = single(k, function* (t) {
      for (let i = 0; i < 65; i++) got.push(yield* ida_alloc(k, t, ida, 'GFP_ATOMIC'));
      for (let i = 63; i >= 0; i--) yield* ida_free(k, t, ida, i);
    });
    expect(r.findings).toEqual([]);
    expect(got.slice(0, 64)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(got[64]).toBe(-ENOSPC);
  });

  it('double free: the kernel WARN', () => {
    const k = new Kernel();
    const ida = defineIda(k, 'pasid', 16);
    const r = single(k, function* (t) {
      const id = yield* ida_alloc(k, t, ida);
      yield* k.call(t, 'ioasid_free', ida_free(k, t, ida, id));
      yield* k.call(t, 'ioasid_free', ida_free(k, t, ida, id));
      yield* ida_free(k, t, ida, 99);
    });
    expect(r.findings.map((f) => [f.kind, f.title])).toEqual([
      ['ida', 'ida_free called for id=0 which is not allocated.'],
      ['ida', 'ida_free called for id=99 which is not allocated.'],
    ]);
    expect(r.findings[0]?.text).toContain(' ida_free\n ioasid_free\n main\n');
  });

  function leaky(ids: number[], free: boolean, opts: { leakCheck?: boolean; kernel?: KernelOptions } = {}): RunResult {
    const k = new Kernel(opts.kernel);
    const ida: Ida = defineIda(k, 'pasid', 32, opts.leakCheck === undefined ? {} : { leakCheck: opts.leakCheck });
    return single(k, function* (t) {
      for (const id of ids) expect(yield* ida_alloc_range(k, t, ida, id, id)).toBe(id);
      expect(idaAllocated(k, ida)).toEqual(ids);
      if (free) for (const id of ids) yield* ida_free(k, t, ida, id);
    });
  }

  it('IDs still allocated at teardown are a leak', () => {
    const r = leaky([1, 5, 9], false);
    expect(r.findings.map((f) => [f.kind, f.title])).toEqual([['leak', 'leak: IDA pasid: 3 IDs still allocated at teardown: 1, 5, 9']]);
  });

  it('no leak when freed, when the IDA opts out, or with leak checks off', () => {
    expect(leaky([1, 5, 9], true).findings).toEqual([]);
    expect(leaky([1, 5, 9], false, { leakCheck: false }).findings).toEqual([]);
    expect(leaky([1, 5, 9], false, { kernel: { checkers: { leaks: false } } }).findings).toEqual([]);
  });

  it('GFP_KERNEL under a spinlock sleeps in atomic context; GFP_ATOMIC does not', () => {
    for (const gfp of ['GFP_KERNEL', 'GFP_ATOMIC'] as const) {
      const k = new Kernel();
      const ida = defineIda(k, 'pasid', 8);
      const lock = defineSpinlock(k, 'pasid_lock');
      const r = single(k, function* (t) {
        yield* spin_lock(k, t, lock);
        const id = yield* ida_alloc(k, t, ida, gfp);
        yield* spin_unlock(k, t, lock);
        yield* ida_free(k, t, ida, id);
      });
      expect(r.findings.map((f) => f.title)).toEqual(
        gfp === 'GFP_KERNEL' ? ['BUG: sleeping function called from invalid context at include/linux/sched/mm.h:321'] : [],
      );
    }
  });
});

describe('xarray', () => {
  function withXa(body: (k: Kernel, t: KTask, xa: XArray) => KGen, capacity = 8): RunResult {
    const k = new Kernel();
    const xa = defineXArray(k, 'group->pasid_array', capacity);
    return single(k, (t) => body(k, t, xa));
  }

  it('xa_cmpxchg stores only when the current entry is old, and returns the current entry', () => {
    const got: number[] = [];
    let entries: [number, number][] = [];
    const r = withXa(function* (k, t, xa) {
      got.push(yield* xa_store(k, t, xa, 3, 5)); // empty before
      got.push(yield* xa_cmpxchg(k, t, xa, 3, 7, 9)); // 5 ≠ 7: no store, returns 5
      got.push(yield* xa_cmpxchg(k, t, xa, 3, 5, 9)); // 5 = 5: stores 9, returns 5
      got.push(yield* xa_cmpxchg(k, t, xa, 4, 0, 11)); // attach to a free slot: returns 0
      got.push(yield* xa_cmpxchg(k, t, xa, 4, 0, 12)); // already taken: returns 11, no store
      got.push(yield* xa_cmpxchg(k, t, xa, 4, 11, 0)); // cmpxchg to 0 erases
      got.push(yield* xa_cmpxchg(k, t, xa, 8, 0, 1)); // beyond capacity
      got.push(yield* xa_cmpxchg(k, t, xa, 2, 0, -3)); // not an entry
      yield* xa_lock(k, t, xa);
      got.push(yield* xa_load(k, t, xa, 3), yield* xa_load(k, t, xa, 4));
      yield* xa_unlock(k, t, xa);
      entries = xaEntries(k, xa);
    });
    expect(r.findings).toEqual([]);
    expect(got).toEqual([0, 5, 5, 0, 11, 11, -ENOSPC, -EINVAL, 9, 0]);
    expect(entries).toEqual([[3, 9]]);
  });

  it('xa_insert: -EBUSY when occupied; xa_erase returns the old entry; xa_alloc the lowest free index', () => {
    const got: number[] = [];
    const r = withXa(function* (k, t, xa) {
      got.push(yield* xa_insert(k, t, xa, 1, 100));
      got.push(yield* xa_insert(k, t, xa, 1, 200));
      got.push(yield* xa_insert(k, t, xa, 2, 0));
      got.push(yield* xa_insert(k, t, xa, 99, 1));
      got.push(yield* xa_alloc(k, t, xa, 300, 0, 3), yield* xa_alloc(k, t, xa, 301, 0, 3), yield* xa_alloc(k, t, xa, 302, 0, 3));
      got.push(yield* xa_alloc(k, t, xa, 303, 0, 3));
      got.push(yield* xa_erase(k, t, xa, 1), yield* xa_erase(k, t, xa, 1));
      for (const i of [0, 2, 3]) yield* xa_erase(k, t, xa, i);
      got.push((yield* xa_empty(k, t, xa)) ? 1 : 0);
    }, 4);
    expect(r.findings).toEqual([]);
    expect(got).toEqual([0, -EBUSY, -EINVAL, -ENOSPC, 0, 2, 3, -EBUSY, 100, 0, 1]);
  });

  it('xa_load outside RCU and without xa_lock: suspicious RCU usage', () => {
    const r = withXa(function* (k, t, xa) {
      yield* xa_store(k, t, xa, 1, 42);
      yield* k.call(
        t,
        'iommu_get_domain_for_dev_pasid',
        (function* () {
          expect(yield* xa_load(k, t, xa, 1)).toBe(42);
        })(),
      );
    });
    expect(r.findings.map((f) => [f.kind, f.title])).toEqual([['rcu', 'WARNING: suspicious RCU usage']]);
    const text = r.findings[0]?.text ?? '';
    expect(text).toContain('include/linux/xarray.h:1179 suspicious rcu_dereference_check() usage!');
    expect(text).toContain('no locks held by main/');
    expect(text).toContain(' xa_load\n iommu_get_domain_for_dev_pasid\n main\n');
  });

  it('xa_load inside rcu_read_lock, under xa_lock, or under a lock declared to protect the array: fine', () => {
    const k = new Kernel();
    const groupMutex = defineMutex(k, '&group->mutex');
    const xa = defineXArray(k, 'group->pasid_array', 8, { protectedBy: [groupMutex] });
    const got: number[] = [];
    const r = single(k, function* (t) {
      yield* xa_store(k, t, xa, 1, 42);
      // rcu_read_lock()/rcu_read_unlock() are rcu.ts's; the checker reads only the task's nesting depth.
      t.rcuDepth++;
      got.push(yield* xa_load(k, t, xa, 1));
      t.rcuDepth--;
      yield* xa_lock(k, t, xa);
      got.push(yield* xa_load(k, t, xa, 1));
      yield* xa_unlock(k, t, xa);
      yield* mutex_lock(k, t, groupMutex);
      got.push(yield* xa_load(k, t, xa, 1));
      yield* mutex_unlock(k, t, groupMutex);
    });
    expect(r.findings).toEqual([]);
    expect(got).toEqual([42, 42, 42]);
  });

  it('the splat is printed once per call site (RCU_LOCKDEP_WARN)', () => {
    const k = new Kernel();
    const xa = defineXArray(k, 'a', 2);
    const titles = (): string[] =>
      single(k, function* (t) {
        for (let i = 0; i < 3; i++) yield* k.call(t, 'site_a', xa_load(k, t, xa, 0));
        yield* k.call(t, 'site_b', xa_load(k, t, xa, 0));
      }).findings.map((f) => f.title);
    expect(titles()).toEqual(['WARNING: suspicious RCU usage', 'WARNING: suspicious RCU usage']);
  });

  it('with the rcu checker off there is no splat', () => {
    const k = new Kernel({ checkers: { rcu: false } });
    const xa = defineXArray(k, 'a', 2);
    expect(
      single(k, function* (t) {
        yield* xa_load(k, t, xa, 0);
      }).findings,
    ).toEqual([]);
  });

  it('__xa_* forms need xa_lock held', () => {
    const got: number[] = [];
    const r = withXa(function* (k, t, xa) {
      yield* xa_lock(k, t, xa);
      got.push(yield* __xa_store(k, t, xa, 0, 5), yield* __xa_cmpxchg(k, t, xa, 0, 5, 6));
      yield* xa_unlock(k, t, xa);
      yield* k.call(t, 'careless', __xa_store(k, t, xa, 1, 7, 'GFP_ATOMIC'));
    });
    expect(got).toEqual([0, 5]);
    expect(r.findings.map((f) => f.title)).toEqual(['WARNING: suspicious RCU usage']);
    expect(r.findings[0]?.text).toContain('suspicious rcu_dereference_protected() usage!');
  });

  it('GFP_KERNEL xa_store under another spinlock: might_sleep; under xa_lock alone (__xa_store) it may drop the lock', () => {
    const k = new Kernel();
    const xa = defineXArray(k, 'ioasid_xa', 4);
    const other = defineSpinlock(k, 'ioasid_allocator_lock');
    const r = single(k, function* (t) {
      yield* xa_lock(k, t, xa);
      yield* __xa_store(k, t, xa, 0, 1);
      yield* xa_unlock(k, t, xa);
      yield* spin_lock(k, t, other);
      yield* xa_store(k, t, xa, 1, 2, 'GFP_ATOMIC');
      yield* xa_store(k, t, xa, 2, 3);
      yield* spin_unlock(k, t, other);
    });
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: sleeping function called from invalid context at include/linux/sched/mm.h:321']);
    expect(r.findings[0]?.text).toContain(' xa_store\n main\n');
  });

  it('a mutation waits for xa_lock held by another task', () => {
    const k = new Kernel();
    const xa = defineXArray(k, 'x', 2);
    const order: string[] = [];
    k.task('holder', 'process', function* (t) {
      yield* xa_lock(k, t, xa);
      yield* k.step(t, 'spawn', (env) => {
        env.spawn('writer', null);
      });
      for (let i = 0; i < 5; i++) yield* k.step(t, 'work', () => undefined);
      yield* k.step(t, 'done', () => {
        order.push('holder done');
      });
      yield* xa_unlock(k, t, xa);
    });
    k.task('writer', 'process', function* (t) {
      yield* xa_store(k, t, xa, 0, 1);
      order.push('stored');
    });
    const w = kernelWorkload(k, 'xa-wait', [{ task: 'holder', args: null }]);
    for (let seed = 1; seed <= 10; seed++) {
      order.length = 0;
      const s = new RandomScheduler(seed);
      s.newExecution();
      expect(runDeterministic({ workload: w, seed, scheduler: s }).findings).toEqual([]);
      expect(order).toEqual(['holder done', 'stored']);
    }
  });
});
