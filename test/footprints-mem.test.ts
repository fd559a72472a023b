// The footprints of the memory allocators' points (issue #19): kmalloc/kzalloc, kfree, kmemleak_not_leak,
// READ_ONCE/WRITE_ONCE of a slab object, alloc_page/free_page and the page-table pages' points declare what
// they touch, and the deterministic runtime's checker (checkFootprints) finds every word they write declared —
// on their common paths and on the rare ones (a double or invalid free, a use-after-free, the quarantine full
// or drained under memory pressure, failslab, a bad page), and in a shipped stress preset.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import { Kernel, type KGen } from '../src/kernel/kernel.js';
import { allocTrackFootprint, setAllocTrack, TRACK_WORDS } from '../src/kernel/kmemleak.js';
import { alloc_page, definePhysMem, free_page, onPageFree } from '../src/kernel/mm/physmem.js';
import { defineRcuPointer, rcu_dereference, rcu_read_lock, rcu_read_unlock } from '../src/kernel/rcu.js';
import { kfree, kmalloc, kmemleak_not_leak, kzalloc, objReadOnce, objWriteOnce, slabInit } from '../src/kernel/slab.js';
import { kernelWorkload } from '../src/kernel/workload.js';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { Task } from '../src/runtime/task.js';
import type { Workload } from '../src/runtime/model.js';
import { buildWorkload } from '../src/runtime/workloads.js';

/** The labels of this area's points (the allocators', the page-table pages'), by family. */
const FAMILIES: readonly [string, RegExp][] = [
  ['kmalloc', /^k(m|z)alloc\(\d+(, [\w-]+)?\)$/],
  ['kfree', /^kfree$/],
  ['kmemleak_not_leak', /^kmemleak_not_leak$/],
  ['READ_ONCE/WRITE_ONCE', /^(READ|WRITE)_ONCE\(\d+\)$/],
  ['alloc_page', /^alloc_page$/],
  ['free_page', /^free_page$/],
  ['page tables', /^(pgd_ctor|pmd_install|pgd_populate|free_pgd_range|flush_tlb_kernel_range|pmd_clear)\(|kernel_pgtable_work\.list/],
];

const familyOf = (label: string): string | undefined => FAMILIES.find(([, re]) => re.test(label))?.[0];

/** Performed points of this area's families: [family, declares a footprint]. */
let performed: [string, boolean][] = [];
const perform = Task.prototype.perform;

beforeEach(() => {
  performed = [];
  Task.prototype.perform = function (this: Task, env) {
    const p = this.pending;
    const family = p ? familyOf(p.label) : undefined;
    if (p && family) performed.push([family, p.footprint !== undefined || p.footprintOf !== undefined]);
    return perform.call(this, env);
  };
});

afterEach(() => {
  Task.prototype.perform = perform;
});

function checked(w: Workload, seed: number): RunResult {
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: w, seed, scheduler: s, checkFootprints: true, keepGoing: true });
}

function count(family: string, declared: boolean): number {
  return performed.filter(([f, d]) => f === family && d === declared).length;
}

/**
 * Two tasks allocating, freeing and touching slab objects and pages at once, one of them an RCU reader of an
 * object the other frees; then the error paths one by one.
 */
/** Whether allocators()'s kzalloc reused the dirty object it meant to (the zeroing path ran). */
let reused: boolean[] = [];

function allocators(pageHookDeclares: boolean): Workload {
  const k = new Kernel();
  slabInit(k, { quarantine: 3, failslab: { cache: 'flaky', nth: 2 } });
  const gp = defineRcuPointer(k, 'gp');
  const pm = definePhysMem(k, 6);
  const track = k.statics.alloc(TRACK_WORDS, "a static object's track");
  // A page-free hook that reads nothing of shared memory, saying so or not.
  onPageFree(pm, () => undefined, pageHookDeclares ? () => undefined : undefined);
  k.task('writer', 'process', function* (t) {
    const obj = yield* kzalloc(k, t, 4, 'GFP_KERNEL');
    yield* objWriteOnce(k, t, obj, 1, 7);
    yield* k.step(t, 'rcu_assign_pointer(gp)', (env) => {
      Atomics.store(k.i32, gp.addr(), obj);
      env.spawn('reader', null);
    });
    for (let i = 0; i < 5; i++) yield* kfree(k, t, yield* kmalloc(k, t, 2 + i, 'GFP_KERNEL'));
    yield* kfree(k, t, obj);
    yield* kfree(k, t, obj); // double free
    yield* kfree(k, t, 0);
    yield* kfree(k, t, obj + 1); // no object starts there: invalid-free
    // An object written, freed and pushed out of the quarantine: kzalloc reuses it and zeroes what it held.
    const dirty = yield* kmalloc(k, t, 4, 'GFP_KERNEL');
    yield* objWriteOnce(k, t, dirty, 2, 0x55);
    yield* kfree(k, t, dirty);
    for (let i = 0; i < 3; i++) yield* kfree(k, t, yield* kmalloc(k, t, 1, 'GFP_KERNEL'));
    reused.push((yield* kzalloc(k, t, 4, 'GFP_KERNEL')) === dirty);
    const kept = yield* kmalloc(k, t, 3, 'GFP_KERNEL', 'boot');
    yield* kmemleak_not_leak(k, t, kept);
    // A static object's allocation track (kmemleak.ts), in a point that declares it as callers do.
    const at = (): number => k.mem.statics + track;
    yield* k.call(t, 'static_obj_alloc', k.stepOn(t, 'track it', () => allocTrackFootprint(k, t, at()), () => setAllocTrack(k, t, at())));
    yield* objReadOnce(k, t, kept, 9); // out of bounds
    yield* kmalloc(k, t, 3, 'GFP_ATOMIC', 'flaky');
    yield* kmalloc(k, t, 3, 'GFP_ATOMIC', 'flaky'); // failslab: NULL
    const pages: number[] = [];
    for (let i = 0; i < 6; i++) pages.push(yield* alloc_page(k, t, pm, 1)); // the last ones find none
    for (const pfn of pages) if (pfn !== 0) yield* free_page(k, t, pm, pfn);
    yield* free_page(k, t, pm, pages[0] as number); // already free: bad page
    yield* alloc_page(k, t, pm, 1); // from the free list
  });
  k.task('reader', 'process', function* (t) {
    yield* rcu_read_lock(k, t);
    const obj = yield* rcu_dereference(k, t, gp);
    yield* objReadOnce(k, t, obj, 1); // may be after the free: use-after-free
    yield* rcu_read_unlock(k, t);
  });
  return kernelWorkload(k, 'footprints-mem', [{ task: 'writer', args: null }]);
}

/** Allocations until the arena is full: the quarantine is drained, then kmalloc returns NULL. */
function pressure(): Workload {
  // kernel-slab.test.ts's arena: room for exactly two 8-word objects after the allocator's own words.
  const k = new Kernel({ layout: { arenaWords: 3 + 30 + 4 + 2 * (12 + 8) } });
  slabInit(k, { quarantine: 4 });
  k.task('main', 'process', function* (t: KTask): KGen {
    const a = yield* kmalloc(k, t, 8, 'GFP_KERNEL');
    const b = yield* kmalloc(k, t, 8, 'GFP_KERNEL');
    yield* kfree(k, t, a);
    yield* kmalloc(k, t, 8, 'GFP_KERNEL'); // drains a out of the quarantine
    yield* kmalloc(k, t, 8, 'GFP_KERNEL'); // nothing left: NULL
    yield* kfree(k, t, b);
  });
  return kernelWorkload(k, 'footprints-mem-pressure', [{ task: 'main', args: null }]);
}

describe('footprints of the memory allocators', () => {
  it('declare every word they write on every path, whatever the interleaving', () => {
    const titles = new Set<string>();
    reused = [];
    for (let seed = 1; seed <= 8; seed++) {
      const r = checked(allocators(true), seed);
      for (const f of r.findings) titles.add(f.title.replace(/ in \S+$| {2}pfn:\w+$/, ''));
    }
    checked(pressure(), 1);
    expect(reused).toEqual(Array(8).fill(true));
    // The error paths ran under the checker.
    expect([...titles].sort()).toEqual(
      expect.arrayContaining([
        'BUG: Bad page state in process writer',
        'BUG: KASAN: double-free',
        'BUG: KASAN: invalid-free',
        'BUG: KASAN: slab-out-of-bounds',
      ]),
    );
    for (const [family] of FAMILIES) {
      if (family === 'page tables') continue;
      expect(count(family, false), `${family}: points without a footprint`).toBe(0);
      expect(count(family, true), `${family}: points performed`).toBeGreaterThan(0);
    }
  });

  it('a use-after-free read and a free under an RCU reader are declared too', () => {
    const titles = new Set<string>();
    for (let seed = 1; seed <= 40 && titles.size < 2; seed++) {
      for (const f of checked(allocators(true), seed).findings) {
        if (/slab-use-after-free|RCU: object freed/.test(f.title)) titles.add(f.title.replace(/ in \S+$/, ''));
      }
    }
    expect([...titles].sort()).toEqual(['BUG: KASAN: slab-use-after-free', 'BUG: RCU: object freed while readers may still hold it']);
  });

  it('free_page stays on the coarse lock while a page-free hook does not say what it reads', () => {
    checked(allocators(false), 1);
    expect(count('free_page', true)).toBe(0);
    expect(count('free_page', false)).toBeGreaterThan(0);
    expect(count('alloc_page', false)).toBe(0);
  });

  it('in the random stress preset: no violation, and only free_page (the oracle scans the caches) undeclared', async () => {
    const s = await loadScenarioFile('stress/random.yaml');
    const w = buildWorkload(s.model, scenarioParams(s));
    checked(w, 1);
    for (const [family] of FAMILIES) {
      if (family === 'free_page') continue;
      expect(count(family, false), `${family}: points without a footprint`).toBe(0);
    }
    expect(count('kmalloc', true) + count('kfree', true) + count('alloc_page', true)).toBeGreaterThan(100);
  });
});
