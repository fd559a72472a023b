// refcount_t and kref: the kernel's warnings (underflow, saturation, addition on 0, decrement hit 0) with the
// counter saturated as the kernel does; kref_put's release; a lookup racing the last put, found by exploring
// schedules and fixed by kref_get_unless_zero; a counter inside a freed object is a KASAN use-after-free.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import { kernelWorkload } from '../src/kernel/workload.js';
import { Kernel, type KGen } from '../src/kernel/kernel.js';
import { defineMutex, mutex_is_locked, mutex_unlock } from '../src/kernel/mutex.js';
import {
  defineKref,
  defineRefcount,
  kref_get,
  kref_get_unless_zero,
  kref_init,
  kref_put,
  kref_read,
  objectRefcount,
  REFCOUNT_MAX,
  REFCOUNT_SATURATED,
  type RefcountRef,
  refcount_add,
  refcount_dec,
  refcount_dec_and_mutex_lock,
  refcount_dec_and_test,
  refcount_inc,
  refcount_inc_not_zero,
  refcount_read,
  refcount_set,
} from '../src/kernel/refcount.js';
import { kfree, kzalloc, slabInit } from '../src/kernel/slab.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire, Workload } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import type { Scheduler } from '../src/runtime/scheduler.js';
import { PctScheduler } from '../src/runtime/schedulers/pct.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';

function workload(k: Kernel, initialTasks: { task: string; args: Wire }[]): Workload {
  return kernelWorkload(k, 'refcount-test', initialTasks);
}

function once(w: Workload, keepGoing = true): RunResult {
  const s = new RandomScheduler(1);
  s.newExecution();
  return runDeterministic({ workload: w, seed: 1, scheduler: s, keepGoing });
}

/** One task running `body` against a static refcount; what it saw, and the findings. */
function single(body: (k: Kernel, t: KTask, r: RefcountRef, seen: (number | boolean)[]) => KGen): {
  r: RunResult;
  seen: (number | boolean)[];
} {
  const k = new Kernel();
  slabInit(k);
  const ref = defineRefcount(k, 'obj->refs');
  const seen: (number | boolean)[] = [];
  k.task('main', 'process', function* (t) {
    yield* k.call(t, 'obj_put', body(k, t, ref, seen));
  });
  return { r: once(workload(k, [{ task: 'main', args: null }])), seen };
}

describe('refcount_t warnings', () => {
  it('underflow; use-after-free: the counter saturates and stays saturated', () => {
    const { r, seen } = single(function* (k, t, ref, seen) {
      yield* refcount_set(k, t, ref, 1);
      seen.push(yield* refcount_dec_and_test(k, t, ref));
      seen.push(yield* refcount_dec_and_test(k, t, ref));
      seen.push(yield* refcount_read(k, t, ref));
      seen.push(yield* refcount_dec_and_test(k, t, ref)); // warned once for this counter
      seen.push(yield* refcount_read(k, t, ref));
    });
    expect(seen).toEqual([true, false, REFCOUNT_SATURATED, false, REFCOUNT_SATURATED]);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.kind).toBe('refcount');
    expect(f?.title).toBe('refcount_t: underflow; use-after-free.');
    expect(f?.text).toMatch(/^WARNING: PID: \d+ at lib\/refcount\.c:28 refcount_warn_saturate$/m);
    expect(f?.text).toContain('refcount_sub_and_test(obj->refs) on a counter of 0');
    expect(f?.text).toContain('Call Trace:\n <TASK>\n obj_put\n main\n </TASK>');
  });

  it('saturated; leaking memory: an overflow pins the object instead of wrapping to 0', () => {
    const { r, seen } = single(function* (k, t, ref, seen) {
      yield* refcount_set(k, t, ref, REFCOUNT_MAX);
      yield* refcount_inc(k, t, ref);
      seen.push(yield* refcount_read(k, t, ref));
      seen.push(yield* refcount_dec_and_test(k, t, ref));
      seen.push(yield* refcount_read(k, t, ref));
    });
    expect(r.findings.map((f) => f.title)).toEqual(['refcount_t: saturated; leaking memory.']);
    expect(seen).toEqual([REFCOUNT_SATURATED, false, REFCOUNT_SATURATED]);
  });

  it('addition on 0; use-after-free', () => {
    const { r, seen } = single(function* (k, t, ref, seen) {
      yield* refcount_add(k, t, ref, 2);
      seen.push(yield* refcount_read(k, t, ref));
    });
    expect(r.findings.map((f) => f.title)).toEqual(['refcount_t: addition on 0; use-after-free.']);
    expect(seen).toEqual([REFCOUNT_SATURATED]);
  });

  it('decrement hit 0; leaking memory', () => {
    const { r } = single(function* (k, t, ref) {
      yield* refcount_set(k, t, ref, 1);
      yield* refcount_dec(k, t, ref);
    });
    expect(r.findings.map((f) => f.title)).toEqual(['refcount_t: decrement hit 0; leaking memory.']);
  });

  it('correct use warns about nothing; inc_not_zero refuses a dead object', () => {
    const { r, seen } = single(function* (k, t, ref, seen) {
      yield* refcount_set(k, t, ref, 1);
      yield* refcount_inc(k, t, ref);
      yield* refcount_add(k, t, ref, 3);
      yield* refcount_dec(k, t, ref);
      seen.push(yield* refcount_read(k, t, ref));
      seen.push(yield* refcount_inc_not_zero(k, t, ref));
      for (let i = 0; i < 5; i++) seen.push(yield* refcount_dec_and_test(k, t, ref));
      seen.push(yield* refcount_inc_not_zero(k, t, ref));
      seen.push(yield* refcount_read(k, t, ref));
    });
    expect(r.findings).toEqual([]);
    expect(seen).toEqual([4, true, false, false, false, false, true, false, 0]);
  });

  it('the refcount checker can be switched off (the counter still saturates)', () => {
    const k = new Kernel({ checkers: { refcount: false } });
    slabInit(k);
    const ref = defineRefcount(k, 'x');
    let v = 0;
    k.task('main', 'process', function* (t) {
      yield* refcount_dec_and_test(k, t, ref);
      v = yield* refcount_read(k, t, ref);
    });
    expect(once(workload(k, [{ task: 'main', args: null }])).findings).toEqual([]);
    expect(v).toBe(REFCOUNT_SATURATED);
  });

  it('refcount_dec_and_mutex_lock: only the last put returns with the mutex held', () => {
    const k = new Kernel();
    slabInit(k);
    const ref = defineRefcount(k, 'bond->users');
    const m = defineMutex(k, 'bond_lock');
    const seen: boolean[] = [];
    k.task('main', 'process', function* (t) {
      yield* refcount_set(k, t, ref, 2);
      seen.push(yield* refcount_dec_and_mutex_lock(k, t, ref, m), mutex_is_locked(k, m));
      const last = yield* refcount_dec_and_mutex_lock(k, t, ref, m);
      seen.push(last, mutex_is_locked(k, m));
      if (last) yield* mutex_unlock(k, t, m);
    });
    expect(once(workload(k, [{ task: 'main', args: null }])).findings).toEqual([]);
    expect(seen).toEqual([false, false, true, true]);
  });
});

describe('kref', () => {
  it('kref_put runs the release callback once, in the task of the last put', () => {
    const k = new Kernel();
    slabInit(k);
    const kr = defineKref(k, 'dom->kref');
    const released: string[] = [];
    const results: boolean[] = [];
    function* release(t: KTask): KGen {
      yield* k.step(t, 'release', () => {
        released.push(t.comm);
      });
    }
    k.task('main', 'process', function* (t) {
      yield* kref_init(k, t, kr);
      yield* kref_get(k, t, kr);
      yield* k.step(t, 'spawn', (env) => {
        env.spawn('other', null);
      });
      results.push(yield* kref_put(k, t, kr, release));
    });
    k.task('other', 'process', function* (t) {
      results.push(yield* kref_put(k, t, kr, release));
    });
    for (let seed = 1; seed <= 5; seed++) {
      released.length = 0;
      results.length = 0;
      const s = new RandomScheduler(seed);
      s.newExecution();
      const r = runDeterministic({ workload: workload(k, [{ task: 'main', args: null }]), seed, scheduler: s });
      expect(r.findings).toEqual([]);
      expect(released).toHaveLength(1);
      expect(results.filter((x) => x)).toHaveLength(1);
    }
  });

  it('kref_put with a task kind spawns the release (deferred, e.g. to a work item)', () => {
    const k = new Kernel();
    slabInit(k);
    const kr = defineKref(k, 'dom->kref');
    const got: Wire[] = [];
    k.task('main', 'process', function* (t) {
      yield* kref_init(k, t, kr);
      yield* kref_put(k, t, kr, 'dom_release', 7);
    });
    k.task('dom_release', 'workqueue', function* (t, args) {
      got.push(args, yield* kref_read(k, t, kr));
    });
    expect(once(workload(k, [{ task: 'main', args: null }])).findings).toEqual([]);
    expect(got).toEqual([7, 0]);
  });

  /**
   * A lookup takes a reference on a published object while its owner drops the last one. With kref_get the
   * lookup can add to 0 (the object is being released); kref_get_unless_zero makes it fail instead.
   */
  const outcomes = new Set<string>();
  function lookupRace(unlessZero: boolean): Workload {
    const k = new Kernel();
    slabInit(k);
    const kr = defineKref(k, 'domain->users');
    k.task('owner', 'process', function* (t) {
      yield* kref_init(k, t, kr);
      yield* k.step(t, 'publish', (env) => {
        env.spawn('lookup', null);
      });
      yield* k.step(t, 'unbind', () => undefined);
      yield* kref_put(k, t, kr, function* () {});
    });
    k.task('lookup', 'process', function* (t) {
      yield* k.call(
        t,
        'get_domain_for_dev_pasid',
        (function* () {
          if (unlessZero) {
            const got = yield* kref_get_unless_zero(k, t, kr);
            outcomes.add(got ? 'got it' : 'too late');
            if (!got) return;
          } else {
            yield* kref_get(k, t, kr);
          }
          yield* kref_put(k, t, kr, function* () {});
        })(),
      );
    });
    return workload(k, [{ task: 'owner', args: null }]);
  }

  function explore(w: Workload, s: Scheduler, budget: number): RunResult | undefined {
    for (let i = 1; i <= budget; i++) {
      s.newExecution();
      const r = runDeterministic({ workload: w, seed: i, scheduler: s });
      if (r.findings.length > 0) return r;
    }
    return undefined;
  }

  it('a lookup racing the last put: addition on 0, found by exploration', () => {
    const r = explore(lookupRace(false), new PctScheduler(11, 2), 200);
    expect(r?.findings[0]?.title).toBe('refcount_t: addition on 0; use-after-free.');
    expect(r?.findings[0]?.text).toContain(' get_domain_for_dev_pasid\n lookup\n');
  });

  it('with kref_get_unless_zero the lookup fails cleanly', () => {
    const w = lookupRace(true);
    outcomes.clear();
    expect(explore(w, new PctScheduler(11, 2), 200)).toBeUndefined();
    expect(explore(w, new RandomScheduler(11), 200)).toBeUndefined();
    expect([...outcomes].sort()).toEqual(['got it', 'too late']); // both orders were explored
  });
});

describe('refcount in a slab object', () => {
  it('a get on a freed object is a KASAN use-after-free write (and, the count being 0, an addition on 0)', () => {
    const k = new Kernel();
    slabInit(k);
    k.task('main', 'process', function* (t) {
      const obj = yield* kzalloc(k, t, 2, 'GFP_KERNEL');
      const ref = objectRefcount(k, 'mm->pasid_users', obj, 1);
      yield* refcount_set(k, t, ref, 1);
      if (yield* refcount_dec_and_test(k, t, ref)) yield* k.call(t, 'mm_pasid_drop', kfree(k, t, obj));
      yield* k.call(t, 'iommu_sva_bind_device', refcount_inc(k, t, ref));
    });
    const r = once(workload(k, [{ task: 'main', args: null }]), false);
    expect(r.findings.map((f) => f.title)).toEqual([
      'BUG: KASAN: slab-use-after-free in iommu_sva_bind_device',
      'refcount_t: addition on 0; use-after-free.',
    ]);
    expect(r.findings[0]?.text).toMatch(/^Write of size 4 at addr ffff888[0-9a-f]{9} by task main\/\d+$/m);
    expect(r.findings[0]?.text).toMatch(/Freed by task \d+:\n kfree\n mm_pasid_drop\n main\n/);
  });
});
