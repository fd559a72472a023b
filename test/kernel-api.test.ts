// The kernel API a patch is written against (src/api/kernel.ts, the package's `iommu-sim/kernel`): a patch in a
// file outside the repository, using nothing but ctx, replaces a kernel function of the model by name, takes a
// lock, allocates and frees an object, and the model's own checkers see what it does (KASAN the use-after-free it
// plants); an unknown name is refused with the nearest ones; and the API's primitives are the kernel's (lockdep,
// WARN_ON's report, kthreads, workqueues, completions, atomics on a patch's own struct).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelApi } from '../src/api/kernel.js';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { slabInit } from '../src/kernel/slab.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Finding, Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import { kernel, runOnce, tasksWorkload } from './kernel-harness.js';

declare module '../src/kernel/kfunc.js' {
  interface KernelFunctions {
    test_patched_fn(t: KTask): KGen;
  }
}

const ROOT = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'kernel-api-'));

/**
 * A patch of iommu_sva_unbind_device, written as a kernel developer would: under its own mutex it caches the
 * PASID in a kzalloc'd object and frees it — and, with `uaf`, reads it after the kfree.
 */
function patchFile(uaf: boolean): string {
  const file = join(dir, `unbind-cache-${uaf}.cjs`);
  writeFileSync(
    file,
    `exports.extend = (ctx) => {
  const { DEFINE_MUTEX, mutex_lock, mutex_unlock, kzalloc, kfree, READ_ONCE, WRITE_ONCE, struct, word, sizeof, view, GFP_KERNEL } = ctx.kernel;
  const PASID_CACHE = struct('pasid_cache', { pasid: word, users: word });
  const cache = view(PASID_CACHE);
  const pasid_cache_lock = DEFINE_MUTEX('pasid_cache_lock');
  const unbind = ctx.k.fns.current('iommu_sva_unbind_device');
  ctx.k.fns.replace('iommu_sva_unbind_device', function* (t, handle) {
    yield* mutex_lock(t, pasid_cache_lock);
    const c = yield* kzalloc(t, sizeof(PASID_CACHE), GFP_KERNEL);
    yield* WRITE_ONCE(t, c, cache.users, 1);
    yield* kfree(t, c);
    ${uaf ? 'yield* READ_ONCE(t, c, cache.users);' : ''}
    yield* mutex_unlock(t, pasid_cache_lock);
    return yield* unbind(t, handle);
  });
};
`,
  );
  return file;
}

function runSva(params: Record<string, Wire>, seed = 1) {
  const built = buildSva(params);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { built, r: runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true }) };
}

const of = (fs: readonly Finding[], kind: string): Finding[] => fs.filter((f) => f.kind === kind);

/** A patch of mmdrop that reads mm->iommu_mm through the kernel API, after the drop (`late`) or before it. */
function mmdropPatch(late: boolean): string {
  const file = join(dir, `mmdrop-read-${late}.cjs`);
  writeFileSync(
    file,
    `exports.extend = (ctx) => {
  const { READ_ONCE, mm_struct_of, structs, view } = ctx.kernel;
  const mm_struct = view(structs.mm_struct);
  ctx.k.fns.wrap('mmdrop', (mmdrop) => function* (t, mm) {
    ${late ? '' : 'yield* READ_ONCE(t, mm_struct_of(mm), mm_struct.iommu_mm);'}
    yield* mmdrop(t, mm);
    ${late ? 'yield* READ_ONCE(t, mm_struct_of(mm), mm_struct.iommu_mm);' : ''}
  });
};
`,
  );
  return file;
}

describe('a patch written against the kernel API, from a file outside the repository', () => {
  it('replaces a kernel function by name; KASAN sees the use-after-free it plants, naming the function', () => {
    const { built, r } = runSva({ processes: 1, script: 'life', extension: patchFile(true) });
    const kasan = of(r.findings, 'kasan');
    expect(kasan.map((f) => f.title)).toEqual([expect.stringMatching(/^BUG: KASAN: slab-use-after-free in iommu_sva_unbind_device/)]);
    expect(kasan[0]?.text).toContain('Freed by task');
    const info = built.model.k.fns.list().find((f) => f.name === 'iommu_sva_unbind_device');
    expect(info?.origins.at(-1)).toEqual({ kind: 'patch', by: patchFile(true), how: 'replace' });
  });

  it("READ_ONCE on mm_struct_of(mm) after the mm's last mmdrop is KASAN's use-after-free of the mm_struct; before it, nothing", () => {
    const late = of(runSva({ processes: 1, script: 'life', extension: mmdropPatch(true) }).r.findings, 'kasan');
    expect(late.map((f) => f.title)).toEqual([expect.stringMatching(/^BUG: KASAN: slab-use-after-free in mmdrop/)]);
    expect(late[0]?.text).toContain('which belongs to the cache mm_struct');
    expect(runSva({ processes: 1, script: 'life', extension: mmdropPatch(false) }).r.findings).toEqual([]);
  });

  it('the same patch without the stray read runs clean (the lock, the allocation and the free are balanced)', () => {
    const { r } = runSva({ processes: 1, script: 'life', extension: patchFile(false) });
    expect(r.findings).toEqual([]);
  });

  it('an unknown kernel function is refused with the nearest names', () => {
    const file = join(dir, 'typo.cjs');
    writeFileSync(file, "exports.extend = (ctx) => ctx.k.fns.replace('iommu_sva_unbind_devcie', function* () {});\n");
    expect(() => buildSva({ extension: file })).toThrow(/no kernel function 'iommu_sva_unbind_devcie'; nearest: iommu_sva_unbind_device, /);
    const wrap = join(dir, 'wrap-typo.cjs');
    writeFileSync(wrap, "exports.extend = (ctx) => ctx.k.fns.wrap('set_dev_pasid', (orig) => orig);\n");
    expect(() => buildSva({ extension: wrap })).toThrow(/no kernel function 'set_dev_pasid'; nearest: \w*set_dev_pasid/);
  });
});

describe('the API is the kernel’s own primitives', () => {
  it('WARN_ON reports where it fired, in the kernel’s words, and the run goes on', () => {
    const k = kernel();
    const api = kernelApi(k);
    const seen: boolean[] = [];
    k.fns.define('test_patched_fn', 'drivers/iommu/test.c', function* (t) {
      seen.push(api.WARN_ON(t, true, 'the patch’s invariant'), api.WARN_ON(t, false));
      yield* api.cond_resched(t);
    });
    k.task('caller', 'process', (t) => k.fn.test_patched_fn(t));
    const r = runOnce(tasksWorkload(k, 'warn', ['caller']), 1);
    expect(seen).toEqual([true, false]);
    expect(r.findings.map((f) => f.title)).toEqual([expect.stringMatching(/^WARNING: CPU: \d+ PID: \d+ at drivers\/iommu\/test\.c test_patched_fn$/)]);
    expect(r.findings[0]?.text).toContain('iommu-sim: the patch’s invariant');
  });

  it('a kthread started with kthread_run completes a completion; a work item runs and is flushed', () => {
    const k = kernel();
    slabInit(k);
    const api = kernelApi(k);
    const LOG = api.struct('test_log', { thread: api.word, work: api.word });
    const log = api.view(LOG);
    const done = api.DECLARE_COMPLETION('thread_done');
    const kt = api.kthread_create('test_kthread', function* (t, data) {
      yield* api.WRITE_ONCE(t, Number(data), log.thread, 7);
      yield* api.complete(t, done);
    });
    const work = api.INIT_WORK('test_work', function* (t, data) {
      yield* api.atomic_inc(t, Number(data), log.work);
    });
    const seen: number[] = [];
    k.task('starter', 'process', function* (t) {
      const p = yield* api.kzalloc(t, api.sizeof(LOG), api.GFP_KERNEL);
      yield* api.kthread_run(t, kt, p);
      yield* api.wait_for_completion(t, done);
      yield* api.queue_work(t, api.system_wq(), work, p);
      yield* api.flush_work(t, work);
      seen.push(yield* api.READ_ONCE(t, p, log.thread), yield* api.atomic_read(t, p, log.work));
      yield* api.kfree(t, p);
    });
    const r = runOnce(tasksWorkload(k, 'threads', ['starter']), 1);
    expect(r.findings).toEqual([]);
    expect(seen).toEqual([7, 1]);
  });

  it('lockdep sees the API’s locks: sleeping in a mutex_lock under spin_lock is reported', () => {
    const k = kernel();
    const api = kernelApi(k);
    const lock = api.DEFINE_SPINLOCK('test_spin');
    const m = api.DEFINE_MUTEX('test_mutex');
    k.task('bad', 'process', function* (t) {
      yield* api.spin_lock(t, lock);
      yield* api.mutex_lock(t, m);
      yield* api.mutex_unlock(t, m);
      yield* api.spin_unlock(t, lock);
    });
    const r = runOnce(tasksWorkload(k, 'sleep', ['bad']), 1);
    expect(r.findings.map((f) => f.title)).toContain('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283');
  });

  it('a refcount_t in a kzalloc’d object: the underflow is refcount’s report', () => {
    const k = kernel();
    slabInit(k);
    const api = kernelApi(k);
    const OBJ = api.struct('test_obj', { refs: api.word });
    const obj = api.view(OBJ);
    k.task('putter', 'process', function* (t) {
      const p = yield* api.kzalloc(t, api.sizeof(OBJ), api.GFP_KERNEL);
      const refs = api.refcount_of(p, obj.refs, 'obj->refs');
      yield* api.refcount_set(t, refs, 1);
      yield* api.refcount_dec_and_test(t, refs);
      yield* api.refcount_dec_and_test(t, refs);
      yield* api.kfree(t, p);
    });
    const r = runOnce(tasksWorkload(k, 'refs', ['putter']), 1);
    expect(r.findings.map((f) => f.title)).toEqual([expect.stringMatching(/refcount_t: underflow; use-after-free/)]);
  });

  it('WRITE_ONCE through a NULL pointer is KASAN’s null-ptr-deref and stores nothing; the same store to the object is not reported', () => {
    const k = kernel();
    slabInit(k);
    const api = kernelApi(k);
    // struct hlist_node: __hlist_del on an entry hlist_del_init already unhashed stores through pprev == NULL.
    const NODE = api.struct('test_hlist_node', { next: api.word, pprev: api.word });
    const node = api.view(NODE);
    const seen: number[] = [];
    let before = 0;
    k.task('deleter', 'process', function* (t) {
      const n = yield* api.kzalloc(t, api.sizeof(NODE), api.GFP_KERNEL);
      yield* api.WRITE_ONCE(t, n, node.next, 5);
      seen.push(yield* api.READ_ONCE(t, n, node.next));
      const pprev = yield* api.READ_ONCE(t, n, node.pprev);
      before = k.i32[node.next.off] as number;
      yield* api.WRITE_ONCE(t, pprev, node.next, 9);
    });
    const r = runOnce(tasksWorkload(k, 'null', ['deleter']), 1);
    expect(seen).toEqual([5]);
    expect(r.findings.map((f) => f.title)).toEqual(['BUG: KASAN: null-ptr-deref in deleter']);
    expect(r.findings[0]?.text).toContain('Write of size 4 at addr 0000000000000000 by task deleter/');
    expect(k.i32[node.next.off]).toBe(before);
  });
});

describe('a TypeScript patch type-checks against iommu-sim/kernel', () => {
  it('imports only types from the package entry point; a wrong call is a type error', () => {
    const pkg = mkdtempSync(join(tmpdir(), 'kernel-api-ts-'));
    mkdirSync(join(pkg, 'node_modules'));
    symlinkSync(ROOT, join(pkg, 'node_modules', 'iommu-sim'));
    const good = `import type { PatchContext, KTask, KGen } from 'iommu-sim/kernel';
export function extend(ctx: PatchContext): void {
  const { DEFINE_MUTEX, mutex_lock, mutex_unlock } = ctx.kernel;
  const lock = DEFINE_MUTEX('patch_lock');
  const unbind = ctx.k.fns.current('iommu_sva_unbind_device');
  ctx.k.fns.replace('iommu_sva_unbind_device', function* (t: KTask, handle: number): KGen<void> {
    yield* mutex_lock(t, lock);
    yield* mutex_unlock(t, lock);
    yield* unbind(t, handle);
  });
}
`;
    writeFileSync(join(pkg, 'good.ts'), good);
    writeFileSync(join(pkg, 'bad.ts'), good.replace('mutex_lock(t, lock)', 'mutex_lock(lock)'));
    const tsc = (file: string): string => {
      try {
        execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', file], { cwd: pkg, encoding: 'utf8' });
        return '';
      } catch (err) {
        return String((err as { stdout?: string }).stdout);
      }
    };
    expect(tsc('good.ts')).toBe('');
    expect(tsc('bad.ts')).toMatch(/bad\.ts\(7,\d+\): error TS2554: Expected 2 arguments, but got 1/);
  }, 60_000);
});
