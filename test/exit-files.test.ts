// do_exit's order and struct file on the one model (issue #16, deliverables 5 and 6): exit_mm (exit_mmap) before
// exit_files, the device fd's release (the driver's unbind) only when the file's last reference goes — at the
// task's return to user space or exit_task_work, never while a mapping of its portal holds it —, several opens
// each released and unbound exactly once, and mm->pasid valid until __mmdrop. Each observes the run through the
// kernel functions by name (k.fns.wrap, as a patch would), on the deterministic runtime with fixed seeds.
import { describe, expect, it } from 'vitest';
import '../src/hw/pci/driver.js';
import type { KTask } from '../src/kernel/context.js';
import { defineFiles, type FileOperations, registerFops } from '../src/kernel/fs/file.js';
import type { KGen } from '../src/kernel/kernel.js';
import { type MmStruct, mmPasid } from '../src/kernel/mm/mm.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import { setCurrent } from '../src/kernel/task_struct.js';
import '../src/workloads/index.js';
import { kernel, runOnce, tasksWorkload, words } from './kernel-harness.js';

type Step = Record<string, unknown>;
const SEEDS = [1, 2, 3, 4, 5, 6];

function build(steps: Step[][], params: Record<string, Wire> = {}) {
  return buildSva({ iommus: 'vtd', ...params, processes: steps.length, steps: JSON.stringify(steps) });
}

function run(built: ReturnType<typeof build>, seed: number) {
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
}

/** Record `name`'s calls (and, with `after`, its returns) in `log`, with what `detail` says at the call. */
function trace(b: ReturnType<typeof build>, log: string[], name: string, opts: { after?: boolean; detail?: (t: KTask, args: unknown[]) => string } = {}) {
  b.model.k.fns.wrap(name, (orig) =>
    function* (t: KTask, ...args: unknown[]): KGen<unknown> {
      log.push(`${name}${opts.detail ? ` ${opts.detail(t, args)}` : ''}`);
      const r = yield* (orig as (t: KTask, ...a: unknown[]) => KGen<unknown>)(t, ...args);
      if (opts.after) log.push(`${name} done`);
      return r;
    },
  'test');
}

const inOrder = (log: readonly string[], a: string, b: string) => {
  expect(log, `${a} in the log`).toContain(a);
  expect(log, `${b} in the log`).toContain(b);
  expect(log.indexOf(a), `${a} before ${b}: ${log.join(', ')}`).toBeLessThan(log.indexOf(b));
};

describe('do_exit: exit_mm, exit_files, exit_task_work', () => {
  it('exit_mmap runs before the fd is released; the release runs in exit_task_work, with mm->pasid still set', () => {
    for (const seed of SEEDS) {
      const b = build([[{ op: 'open' }, { op: 'dma', n: 2 }, { op: 'exit' }]]);
      const { k } = b.model;
      const mm = b.model.mm(0);
      const log: string[] = [];
      for (const f of ['exit_mmap', 'exit_files', 'exit_task_work']) trace(b, log, f, { after: true });
      trace(b, log, 'uacce_fops_release', { detail: () => `pasid ${mmPasid(k, mm)}` });
      trace(b, log, '__mmdrop', { detail: (_t, [m]) => `${(m as MmStruct).name} pasid ${mmPasid(k, m as MmStruct)}` });
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const release = log.find((l) => l.startsWith('uacce_fops_release')) ?? '';
      expect(release).toMatch(/pasid [1-9]/);
      inOrder(log, 'exit_mmap done', 'exit_files');
      inOrder(log, 'exit_files done', 'exit_task_work');
      inOrder(log, 'exit_task_work', release);
      inOrder(log, release, 'exit_task_work done');
      // The SVA domain's mmgrab keeps the mm_struct — and its PASID — past the release's unbind.
      const drop = log.find((l) => l.startsWith(`__mmdrop ${mm.name}`)) ?? '';
      expect(drop).toBe(`__mmdrop ${mm.name} ${release.slice('uacce_fops_release '.length)}`);
      inOrder(log, release, drop);
      expect(mmPasid(k, mm)).toBe(0);
      expect(b.model.sva.liveBonds()).toEqual([]);
    }
  });

  it("bug=pasid-drop-at-mmput (kernel/fork.c before 2667ed10d9f0): the release finds the mm's PASID already dropped", () => {
    const b = build([[{ op: 'open' }, { op: 'dma', n: 1 }, { op: 'exit' }]], { bug: 'pasid-drop-at-mmput' });
    const { k } = b.model;
    const mm = b.model.mm(0);
    const seen: number[] = [];
    b.model.k.fns.wrap('uacce_fops_release', (orig) =>
      function* (t: KTask, file: number): KGen {
        seen.push(mmPasid(k, mm));
        yield* orig(t, file);
      },
    'test');
    run(b, 1);
    expect(seen).toEqual([0]);
  });
});

describe('struct file: the last reference releases', () => {
  it('close of an fd whose portal is mapped releases nothing; exit_mmap’s remove_vma puts the last reference', () => {
    for (const seed of SEEDS) {
      const b = build([[{ op: 'open', as: 'q' }, { op: 'mmap', fd: 'q' }, { op: 'close', fd: 'q' }, { op: 'dma', n: 1 }, { op: 'exit' }]]);
      const log: string[] = [];
      for (const f of ['close_fd', 'exit_mmap', 'exit_task_work']) trace(b, log, f, { after: true });
      trace(b, log, 'remove_vma');
      trace(b, log, 'uacce_fops_release');
      trace(b, log, 'iommu_sva_unbind_device');
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(log.filter((l) => l === 'uacce_fops_release')).toHaveLength(1);
      expect(log.filter((l) => l === 'iommu_sva_unbind_device')).toHaveLength(1);
      inOrder(log, 'close_fd done', 'exit_mmap');
      inOrder(log, 'remove_vma', 'exit_mmap done');
      // remove_vma's fput is a user task's: its ____fput waits for exit_task_work.
      inOrder(log, 'exit_task_work', 'uacce_fops_release');
      expect(b.model.sva.liveBonds()).toEqual([]);
    }
  });

  it('munmap of the portal after close releases the file on that munmap’s way back to user space', () => {
    for (const seed of SEEDS) {
      const b = build([[{ op: 'open' }, { op: 'mmap' }, { op: 'close' }, { op: 'munmap_portal' }, { op: 'dma', n: 1 }, { op: 'exit' }]]);
      const log: string[] = [];
      for (const f of ['vm_munmap', 'task_work_run', 'exit_mmap']) trace(b, log, f, { after: true });
      trace(b, log, 'uacce_fops_release');
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(log.filter((l) => l === 'uacce_fops_release')).toHaveLength(1);
      const rel = log.indexOf('uacce_fops_release');
      const munmapped = log.indexOf('vm_munmap done');
      expect(munmapped).toBeGreaterThanOrEqual(0);
      expect(rel).toBeGreaterThan(munmapped);
      expect(log.slice(munmapped, rel)).toContain('task_work_run');
      inOrder(log, 'uacce_fops_release', 'exit_mmap');
    }
  });

  it('several opens, on one device and another: each file released once, each unbound once; the shared bond goes at the last', () => {
    for (const seed of SEEDS) {
      const b = build([[{ op: 'open', dev: 0, as: 'a' }, { op: 'open', dev: 0, as: 'b' }, { op: 'open', dev: 1, as: 'c' }, { op: 'dma', n: 1, fd: 'c' }, { op: 'close', fd: 'a' }, { op: 'dma', n: 1, fd: 'b' }, { op: 'exit' }]], { devices: 2 });
      const releases: number[] = [];
      const binds: number[] = [];
      const unbinds: number[] = [];
      b.model.k.fns.wrap('uacce_fops_release', (orig) =>
        function* (t: KTask, file: number): KGen {
          releases.push(file);
          yield* orig(t, file);
        },
      'test');
      b.model.k.fns.wrap('iommu_sva_bind_device', (orig) =>
        function* (t: KTask, dev, mm, flags) {
          const r = yield* orig(t, dev, mm, flags);
          if (mm) binds.push(r.ret);
          return r;
        },
      'test');
      b.model.k.fns.wrap('iommu_sva_unbind_device', (orig) =>
        function* (t: KTask, handle: number): KGen {
          unbinds.push(handle);
          yield* orig(t, handle);
        },
      'test');
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(new Set(releases).size).toBe(3);
      expect(releases).toHaveLength(3);
      const [a, bb, c] = binds;
      expect(a).toBeGreaterThan(0);
      expect(bb).toBe(a);
      expect(c).not.toBe(a);
      expect(unbinds.slice().sort()).toEqual([a, bb, c].sort());
      expect(r.check.counters.binds).toBe(2);
      expect(r.check.counters.unbinds).toBe(2);
      expect(b.model.sva.liveBonds()).toEqual([]);
    }
  });

  it('a close of a named fd not open is refused when the script is checked, with where', () => {
    expect(() => build([[{ op: 'open', as: 'a' }, { op: 'close', fd: 'b' }]])).toThrow(/proc\/0\[1\]: close: no step opens an fd named b \(open or bind with as: b\)/);
    expect(() => build([[{ op: 'open', as: 'a' }, { op: 'close', fd: 'a' }, { op: 'mmap', fd: 'a' }]])).toThrow(/proc\/0\[2\]: mmap: proc\/0 has no fd open named a/);
    expect(() => build([[{ op: 'open', as: 'a' }, { op: 'mmap', fd: 'a' }, { op: 'close', fd: 'a' }, { op: 'munmap_portal', fd: 'a' }, { op: 'exit' }]])).not.toThrow();
  });
});

describe('fput: where the last reference’s release runs', () => {
  /**
   * A process (task `proc`) opens a file and hands a reference (fget) to a kernel thread; the one that drops the
   * last reference is `last`. Returns, per seed, the context and call chain the release ran in, and when.
   */
  function lastPut(last: 'process' | 'kthread' | 'never', seed: number) {
    const k = kernel();
    defineFiles(k, 1);
    const w = words(k, 3); // 0: the file handed over, 1: the kthread's put done, 2: the process closed
    const log: string[] = [];
    k.fns.define('uacce_fops_open', 'test', function* (t) {
      yield* k.step(t, 'open', () => undefined);
      return 0;
    });
    k.fns.define('uacce_fops_release', 'test', function* (t) {
      yield* k.step(t, 'release', () => void log.push(`release in ${t.kind}: ${t.chain().join(' > ')}`));
    });
    const fops = registerFops(k, { name: 'test_fops', open: 'uacce_fops_open', release: 'uacce_fops_release' } satisfies FileOperations);
    k.task('proc', 'process', function* (t) {
      setCurrent(k, t, 0);
      const fd = yield* k.fn.do_sys_open(t, fops, 0, undefined as never, 0);
      const file = yield* k.fn.fget(t, fd);
      yield* w.set(t, 0, file);
      if (last === 'process') yield* w.until(t, 'the kthread put its reference', () => w.get(1) === 1);
      yield* k.fn.close_fd(t, fd);
      log.push('closed');
      yield* k.fn.task_work_run(t); // back to user space
      log.push('returned to user');
      yield* w.set(t, 2, 1);
    });
    k.task('kthread', 'kthread', function* (t) {
      yield* w.until(t, 'a file', () => w.get(0) !== 0);
      if (last === 'kthread') yield* w.until(t, 'the process closed', () => w.get(2) === 1);
      if (last !== 'never') yield* k.fn.fput(t, w.get(0));
      yield* w.set(t, 1, 1);
    });
    const r = runOnce(tasksWorkload(k, 'fput', ['proc', 'kthread']), seed);
    return { r, log };
  }

  it('the process’s last fput (close) releases at its return to user space, through task_work_run', () => {
    for (const seed of SEEDS) {
      const { r, log } = lastPut('process', seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(log).toHaveLength(3);
      expect(log[0]).toBe('closed');
      expect(log[1]).toMatch(/^release in process: .*task_work_run > ____fput > __fput > uacce_fops_release$/);
      expect(log[2]).toBe('returned to user');
    }
  });

  it('a kernel thread’s last fput goes to delayed_fput: the release runs in a kworker', () => {
    for (const seed of SEEDS) {
      const { r, log } = lastPut('kthread', seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(log.slice(0, 2)).toEqual(['closed', 'returned to user']);
      expect(log[2]).toMatch(/^release in workqueue: .*delayed_fput > __fput > uacce_fops_release$/);
      expect(log).toHaveLength(3);
    }
  });

  it('a reference never put: the file outlives every fd and mapping, and kmemleak says so', () => {
    const { r, log } = lastPut('never', 1);
    expect(log).toEqual(['closed', 'returned to user']);
    expect(r.findings.map((f) => f.kind)).toEqual(['leak']);
    expect(r.findings[0]?.text).toMatch(/has f_count 1, held by 0 fds and mappings: an fget never put/);
  });
});
