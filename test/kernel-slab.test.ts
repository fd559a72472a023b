// The slab allocator and its checkers: KASAN (use-after-free found by exploring schedules, with both call
// chains in the report; double free; out of bounds; NULL), kmemleak at teardown, might_sleep for GFP_KERNEL
// under a spinlock, and the quarantine that keeps freed memory from being reused at once.
import { describe, expect, it } from 'vitest';
import type { Wire, Workload } from '../src/runtime/model.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { RunResult } from '../src/runtime/result.js';
import type { Scheduler } from '../src/runtime/scheduler.js';
import { PctScheduler } from '../src/runtime/schedulers/pct.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import type { KTask } from '../src/kernel/context.js';
import { kernelWorkload } from '../src/kernel/workload.js';
import { Kernel, type KGen } from '../src/kernel/kernel.js';
import { objectRefcount, refcount_dec_and_test, refcount_set } from '../src/kernel/refcount.js';
import {
  kfree,
  kmalloc,
  kmemleak_not_leak,
  kzalloc,
  objInfo,
  objLoad,
  objState,
  objStore,
  slabInit,
  slabStats,
} from '../src/kernel/slab.js';
import { defineSpinlock, spin_lock, spin_unlock } from '../src/kernel/spinlock.js';

function workload(k: Kernel, initialTasks: { task: string; args: Wire }[]): Workload {
  return kernelWorkload(k, 'slab-test', initialTasks);
}

function once(w: Workload, seed = 1, keepGoing = false): RunResult {
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: w, seed, scheduler: s, keepGoing });
}

/** Executions of one workload under one scheduler until the first finding; the run that found it. */
function explore(w: Workload, s: Scheduler, budget: number): { r: RunResult | undefined; executions: number } {
  for (let i = 1; i <= budget; i++) {
    s.newExecution();
    const r = runDeterministic({ workload: w, seed: i, scheduler: s });
    if (r.findings.length > 0) return { r, executions: i };
  }
  return { r: undefined, executions: budget };
}

const OBJ_WORDS = 4;
const F_REF = 0;
const F_DATA = 1;

/**
 * An object shared by a user and a releaser. Buggy: the releaser frees it while the user may still read it.
 * Fixed: each holds a reference and the last put frees.
 */
function sharedObject(refcounted: boolean): Workload {
  const k = new Kernel();
  slabInit(k);
  slabInit(k);
  const ptr = k.statics.alloc(1, 'foo_ptr');
  const ptrAddr = (): number => k.mem.statics + ptr;
  function* put(t: KTask, obj: number): KGen {
    if (!refcounted) {
      yield* kfree(k, t, obj);
      return;
    }
    if (yield* refcount_dec_and_test(k, t, objectRefcount(k, 'foo->ref', obj, F_REF))) yield* kfree(k, t, obj);
  }
  k.task('main', 'process', function* (t) {
    const obj = yield* k.call(t, 'foo_create', kzalloc(k, t, OBJ_WORDS, 'GFP_KERNEL', 'foo_cache'));
    objStore(k, t, obj, F_DATA, 42);
    yield* refcount_set(k, t, objectRefcount(k, 'foo->ref', obj, F_REF), 2);
    yield* k.step(t, 'publish', (env) => {
      k.i32[ptrAddr()] = obj;
      env.spawn('user', null);
      env.spawn('releaser', null);
    });
  });
  k.task('user', 'process', function* (t) {
    yield* k.call(
      t,
      'foo_use',
      (function* () {
        const obj = yield* k.step(t, 'load foo_ptr', () => k.i32[ptrAddr()] as number);
        yield* k.step(t, 'think', () => undefined);
        expect(objLoad(k, t, obj, F_DATA)).toBe(42);
        // Buggy: the user takes no reference, so it has none to drop.
        if (refcounted) yield* put(t, obj);
      })(),
    );
  });
  k.task('releaser', 'process', function* (t) {
    yield* k.call(
      t,
      'foo_release',
      (function* () {
        const obj = yield* k.step(t, 'load foo_ptr', () => k.i32[ptrAddr()] as number);
        yield* put(t, obj);
      })(),
    );
  });
  return workload(k, [{ task: 'main', args: null }]);
}

describe('KASAN', () => {
  for (const [name, make] of [
    ['random', () => new RandomScheduler(7)],
    ['pct', () => new PctScheduler(7, 2)],
  ] as const) {
    it(`finds the use-after-free with ${name} exploration, naming where it was allocated and freed`, () => {
      const { r, executions } = explore(sharedObject(false), make(), 200);
      expect(r, `no finding in ${executions} executions`).toBeDefined();
      const f = r?.findings[0];
      expect(f?.kind).toBe('kasan');
      expect(f?.title).toBe('BUG: KASAN: slab-use-after-free in foo_use');
      const text = f?.text ?? '';
      expect(text).toMatch(/^Read of size 4 at addr ffff888[0-9a-f]{9} by task user\/\d+$/m);
      // The reader's stack, then who allocated it and who freed it.
      expect(text).toContain('Call Trace:\n <TASK>\n foo_use\n user\n </TASK>');
      expect(text).toMatch(/Allocated by task \d+:\n kmem_cache_zalloc\n foo_create\n main\n/);
      expect(text).toMatch(/Freed by task \d+:\n kfree\n foo_release\n releaser\n/);
      expect(text).toMatch(
        /The buggy address belongs to the object at ffff888[0-9a-f]{9}\n which belongs to the cache foo_cache of size 16/,
      );
      expect(text).toContain('The buggy address is located 4 bytes inside of\n freed 16-byte region [');
    });
  }

  it('reports nothing when both users hold a reference and the last put frees', () => {
    const w = sharedObject(true);
    for (const s of [new RandomScheduler(7), new PctScheduler(7, 2), new PctScheduler(8, 3)]) {
      const { r, executions } = explore(w, s, 150);
      expect(r?.findings.map((f) => f.title) ?? [], `after ${executions} executions`).toEqual([]);
    }
  });

  it('the same schedule reproduces the same report', () => {
    const a = explore(sharedObject(false), new RandomScheduler(3), 200);
    const b = explore(sharedObject(false), new RandomScheduler(3), 200);
    expect(a.executions).toBe(b.executions);
    expect(a.r?.findings[0]?.text).toBe(b.r?.findings[0]?.text);
  });

  it('double free: both call chains', () => {
    const k = new Kernel();
    slabInit(k);
    k.task('main', 'process', function* (t) {
      const obj = yield* k.call(t, 'bar_alloc', kmalloc(k, t, 3, 'GFP_KERNEL'));
      yield* k.call(t, 'bar_teardown', kfree(k, t, obj));
      yield* k.call(t, 'bar_error_path', kfree(k, t, obj));
    });
    const r = once(workload(k, [{ task: 'main', args: null }]));
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.title).toBe('BUG: KASAN: double-free in kfree');
    expect(f?.text).toMatch(/^Free of addr ffff888[0-9a-f]{9} by task main\/\d+$/m);
    expect(f?.text).toContain(' kfree\n bar_error_path\n main\n');
    expect(f?.text).toMatch(/Allocated by task \d+:\n kmalloc\n bar_alloc\n main\n/);
    expect(f?.text).toMatch(/Freed by task \d+:\n kfree\n bar_teardown\n main\n/);
    expect(f?.text).toContain('which belongs to the cache kmalloc-16 of size 16');
  });

  it('kfree(NULL) is fine, kfree of something that is no object is an invalid-free', () => {
    const k = new Kernel();
    slabInit(k);
    const word = k.statics.alloc(1, 'not_an_object');
    k.task('main', 'process', function* (t) {
      yield* kfree(k, t, 0);
      yield* kfree(k, t, k.mem.statics + word);
    });
    const r = once(workload(k, [{ task: 'main', args: null }]));
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: KASAN: invalid-free in kfree']);
  });

  it('out of bounds and NULL accesses', () => {
    const k = new Kernel();
    slabInit(k);
    k.task('main', 'process', function* (t) {
      const obj = yield* kzalloc(k, t, 3, 'GFP_KERNEL');
      yield* k.call(
        t,
        'baz_overrun',
        (function* () {
          objStore(k, t, obj, 3, 1);
          yield* k.step(t, 'x', () => undefined);
        })(),
      );
      yield* k.call(
        t,
        'baz_null',
        (function* () {
          expect(objLoad(k, t, 0, 2)).toBe(0);
          yield* k.step(t, 'x', () => undefined);
        })(),
      );
      yield* kfree(k, t, obj);
    });
    const r = once(workload(k, [{ task: 'main', args: null }]), 1, true);
    expect(r.findings.map((f) => f.title)).toEqual([
      'BUG: KASAN: slab-out-of-bounds in baz_overrun',
      'BUG: KASAN: null-ptr-deref in baz_null',
    ]);
    expect(r.findings[0]?.text).toContain('The buggy address is located 0 bytes to the right of\n allocated 12-byte region [');
    expect(r.findings[1]?.text).toMatch(/^Read of size 4 at addr 0000000000000008 by task main\/\d+$/m);
  });

  it('with KASAN off, a use-after-free goes unreported and a NULL dereference is still an oops', () => {
    const k = new Kernel({ checkers: { kasan: false } });
    slabInit(k);
    k.task('main', 'process', function* (t) {
      const obj = yield* kmalloc(k, t, 2, 'GFP_KERNEL');
      yield* kfree(k, t, obj);
      objLoad(k, t, obj, 0);
      objLoad(k, t, 0, 0);
    });
    const r = once(workload(k, [{ task: 'main', args: null }]));
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: kernel NULL pointer dereference, address: 0000000000000000']);
  });
});

describe('kmemleak', () => {
  function leaky(free: boolean, notLeak = false, checkers = {}): RunResult {
    const k = new Kernel({ checkers });
    slabInit(k);
    k.task('leaker', 'process', function* (t) {
      const obj = yield* k.call(t, 'leaky_init', kmalloc(k, t, 3, 'GFP_KERNEL'));
      objStore(k, t, obj, 0, 0x11223344);
      if (notLeak) yield* kmemleak_not_leak(k, t, obj);
      if (free) yield* kfree(k, t, obj);
    });
    return once(workload(k, [{ task: 'leaker', args: null }]));
  }

  it('reports an object still allocated at teardown with its allocation backtrace', () => {
    const r = leaky(false);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.kind).toBe('leak');
    expect(f?.title).toMatch(/^unreferenced object 0xffff888[0-9a-f]{9} \(size 12\):$/);
    expect(f?.text).toMatch(/^ {2}comm "leaker", pid \d+$/m);
    expect(f?.text).toContain('  hex dump (first 12 bytes):\n    44 33 22 11');
    expect(f?.text).toContain('  backtrace:\n    kmalloc\n    leaky_init\n    leaker');
  });

  it('nothing when it is freed, marked kmemleak_not_leak, or leak checks are off', () => {
    expect(leaky(true).findings).toEqual([]);
    expect(leaky(false, true).findings).toEqual([]);
    expect(leaky(false, false, { leaks: false }).findings).toEqual([]);
  });

  it('many leaks: the first ones one by one, then the count', () => {
    const k = new Kernel();
    slabInit(k, { leakReportLimit: 2 });
    k.task('leaker', 'process', function* (t) {
      for (let i = 0; i < 5; i++) yield* kmalloc(k, t, 1, 'GFP_ATOMIC');
    });
    const r = once(workload(k, [{ task: 'leaker', args: null }]));
    expect(r.findings.map((f) => f.title.replace(/0x[0-9a-f]+/, 'ADDR'))).toEqual([
      'unreferenced object ADDR (size 4):',
      'unreferenced object ADDR (size 4):',
      'kmemleak: 5 new suspected memory leaks (see /sys/kernel/debug/kmemleak)',
    ]);
  });
});

describe('gfp', () => {
  function underSpinlock(gfp: 'GFP_KERNEL' | 'GFP_ATOMIC'): RunResult {
    const k = new Kernel();
    slabInit(k);
    const lock = defineSpinlock(k, 'qux_lock');
    k.task('main', 'process', function* (t) {
      yield* spin_lock(k, t, lock);
      const obj = yield* k.call(t, 'qux_add', kmalloc(k, t, 2, gfp));
      yield* spin_unlock(k, t, lock);
      yield* kfree(k, t, obj);
    });
    return once(workload(k, [{ task: 'main', args: null }]));
  }

  it('GFP_KERNEL under a spinlock: might_sleep', () => {
    const r = underSpinlock('GFP_KERNEL');
    expect(r.findings).toHaveLength(1);
    expect(r.findings[0]?.kind).toBe('might_sleep');
    expect(r.findings[0]?.title).toBe('BUG: sleeping function called from invalid context at include/linux/sched/mm.h:321');
    expect(r.findings[0]?.text).toContain('in_atomic(): 1, irqs_disabled(): 0');
    expect(r.findings[0]?.text).toContain('(qux_lock){....}, at: main');
    expect(r.findings[0]?.text).toContain(' kmalloc\n qux_add\n main\n');
  });

  it('GFP_ATOMIC under a spinlock: fine', () => {
    expect(underSpinlock('GFP_ATOMIC').findings).toEqual([]);
  });
});

describe('quarantine', () => {
  function reuse(quarantine: number): { first: number[]; later: number[]; states: string[] } {
    const k = new Kernel();
    slabInit(k, { quarantine });
    const first: number[] = [];
    const later: number[] = [];
    const states: string[] = [];
    k.task('main', 'process', function* (t) {
      for (let i = 0; i < 5; i++) first.push(yield* kmalloc(k, t, 2, 'GFP_KERNEL'));
      for (let i = 0; i < 4; i++) yield* kfree(k, t, first[i] ?? 0);
      states.push(objState(k, first[0] ?? 0));
      later.push(yield* kmalloc(k, t, 2, 'GFP_KERNEL')); // quarantine full, nothing reusable yet
      yield* kfree(k, t, first[4] ?? 0); // pushes the oldest (first[0]) out of the quarantine
      states.push(objState(k, first[0] ?? 0));
      later.push(yield* kmalloc(k, t, 2, 'GFP_KERNEL'));
      for (const o of [...later, first[1], first[2], first[3], first[4]])
        if (objState(k, o ?? 0) === 'allocated') yield* kfree(k, t, o ?? 0);
    });
    const r = once(workload(k, [{ task: 'main', args: null }]));
    expect(r.findings).toEqual([]);
    return { first, later, states };
  }

  it('a freed object is not reused until it leaves the FIFO quarantine', () => {
    const { first, later, states } = reuse(4);
    expect(states).toEqual(['quarantined', 'free']);
    expect(first).not.toContain(later[0]);
    expect(later[1]).toBe(first[0]);
  });

  it('without a quarantine memory is reused at once (a use-after-free would read the new object)', () => {
    const { first, later } = reuse(0);
    expect(later[0]).toBe(first[3]); // LIFO free list, as SLUB
  });

  it('memory pressure drains the quarantine before an allocation fails; then kmalloc returns NULL', () => {
    // Metadata 3 + 30 + 4 words, then room for exactly two 8-word objects (12-word header + 8).
    const k = new Kernel({ layout: { arenaWords: 3 + 30 + 4 + 2 * (12 + 8) } });
    slabInit(k, { quarantine: 4 });
    const got: number[] = [];
    k.task('main', 'process', function* (t) {
      const a = yield* kmalloc(k, t, 8, 'GFP_KERNEL');
      const b = yield* kmalloc(k, t, 8, 'GFP_KERNEL');
      yield* kfree(k, t, a);
      const c = yield* kmalloc(k, t, 8, 'GFP_KERNEL');
      const d = yield* kmalloc(k, t, 8, 'GFP_KERNEL');
      const huge = yield* kmalloc(k, t, 1 << 20, 'GFP_KERNEL');
      got.push(a, b, c, d, huge);
      yield* kfree(k, t, b);
      yield* kfree(k, t, c);
    });
    const r = once(workload(k, [{ task: 'main', args: null }]));
    expect(r.findings).toEqual([]);
    const [a, b, c, d, huge] = got;
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
    expect(c).toBe(a);
    expect(d).toBe(0);
    expect(huge).toBe(0);
  });

  it('reports state and tracks through objInfo and slabStats, reset for every execution', () => {
    const k = new Kernel();
    slabInit(k);
    let seen: ReturnType<typeof objInfo>;
    let stats: ReturnType<typeof slabStats> | undefined;
    k.task('main', 'process', function* (t) {
      const a = yield* k.call(t, 'f', kmalloc(k, t, 5, 'GFP_KERNEL', 'my_cache'));
      const b = yield* kmalloc(k, t, 1, 'GFP_KERNEL');
      yield* kfree(k, t, b);
      seen = objInfo(k, a);
      stats = slabStats(k);
      yield* kfree(k, t, a);
    });
    const w = workload(k, [{ task: 'main', args: null }]);
    for (let i = 0; i < 2; i++) {
      expect(once(w).findings).toEqual([]);
      expect(seen?.state).toBe('allocated');
      expect(seen?.words).toBe(5);
      expect(seen?.slotWords).toBe(8);
      expect(seen?.cache).toBe('my_cache');
      expect(seen?.alloc.chain).toEqual(['main', 'f', 'kmem_cache_alloc']);
      expect(stats).toEqual({ allocated: 1, quarantined: 1, free: 0, usedWords: 12 + 8 + 12 + 2 });
    }
  });
});
