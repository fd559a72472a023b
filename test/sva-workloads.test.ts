// The sva model's workloads beyond the fixed scripts (issue #6): the random workload with rates, a driver thread
// binding a task that exits (seed 000's iommu_bind_task), and extensions that replace the core's own steps —
// deterministic runtime, fixed seeds.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';
import { InputError } from '../src/runtime/errors.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { run } from '../src/runtime/run.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';

function once(params: Record<string, Wire>, seed = 1) {
  const built = buildSva(params);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
}

const RANDOM = { iommus: 'vtd,amd,smmuv3', devices: 3, processes: 4, script: 'random', rounds: 12, dmas: 2 } as const;

describe('the random workload (script=random, rates)', () => {
  it('draws every operation with the default rates, and the same seed gives the same trace', () => {
    const totals = { binds: 0, unbinds: 0, dmas: 0, munmaps: 0, exits: 0 };
    for (let seed = 1; seed <= 6; seed++) {
      const r = once({ ...RANDOM, seed }, seed);
      expect(r.findings).toEqual([]);
      expect(r.check.ok).toBe(true);
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.check.counters[k] ?? 0;
      expect(once({ ...RANDOM, seed }, seed).traceHash).toBe(r.traceHash);
    }
    for (const v of Object.values(totals)) expect(v).toBeGreaterThan(0);
    // Every process exits once; every bind is unbound (by close or by exit's close).
    expect(totals.exits).toBe(6 * 4);
    expect(totals.unbinds).toBe(totals.binds);
  });

  it('an operation with no weight is never drawn', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const c = once({ ...RANDOM, seed, rates: 'bind:1,unbind:1' }, seed).check.counters;
      expect(c.dmas).toBe(0);
      expect(c.munmaps).toBe(0);
      expect(c.binds).toBeGreaterThan(0);
    }
  });

  it('finds the PASID reuse of teardown=at-once, and nothing with drain', async () => {
    // More munmaps than the default rates: a munmap (mmap_lock for write, a TLB gather that flushes the IOMMUs)
    // is what keeps a process busy between an at-once unbind and its next bind, where the reuse shows.
    const reuse = { ...RANDOM, rates: 'bind:4,dma:8,munmap:3,unbind:3,exit:1' };
    // From seed 1 the first failing execution is seed 666 since VT-d's PASID teardown drains the PRQ (pasid.c):
    // 300 executions from seed 601 reach it, and the drain teardown runs the same 300 with no finding.
    const bad = await run({ workload: { name: 'sva', params: { ...reuse, teardown: 'at-once' } }, runtime: 'deterministic', strategy: 'pct', depth: 3, seed: 601, runs: 300 });
    expect(bad.findings.map((f) => f.kind)).toContain('stale_translation');
    const good = await run({ workload: { name: 'sva', params: { ...reuse, teardown: 'drain' } }, runtime: 'deterministic', strategy: 'pct', depth: 3, seed: 601, runs: 300 });
    expect(good.findings).toEqual([]);
  });

  it('refuses rates it cannot use, naming the parameter', () => {
    for (const rates of ['bind:x', 'fly:3', 'dma:3', 'bind:0,dma:1', 'bind:2']) expect(() => buildSva({ script: 'random', rates })).toThrow(InputError);
    expect(() => buildSva({ script: 'random', rates: 'fly:3' })).toThrow(/rates/);
  });
});

describe('iommu_bind_task from a driver thread racing the task\'s exit (script=bind-task-exit)', () => {
  it('with get_task_mm: the bind either holds the mm or gets -ESRCH, never a finding; both happen', () => {
    let bound = 0;
    let esrch = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const r = once({ iommus: 'amd', processes: 2, script: 'bind-task-exit', taskMm: 'get_task_mm' }, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      bound += r.check.counters.bind_task_bound ?? 0;
      esrch += r.check.counters.bind_task_esrch ?? 0;
      expect((r.check.counters.bind_task_bound ?? 0) + (r.check.counters.bind_task_esrch ?? 0)).toBe(2);
    }
    expect(bound).toBeGreaterThan(0);
    expect(esrch).toBeGreaterThan(0);
  });

  it('with task->mm unreferenced: KASAN or mmu_notifier\'s BUG_ON catches the bind on an exited mm', async () => {
    const r = await run({ workload: { name: 'sva', params: { iommus: 'amd', processes: 2, script: 'bind-task-exit', taskMm: 'raw' } }, runtime: 'deterministic', strategy: 'pct', depth: 3, seed: 1, runs: 500 });
    expect(['kasan', 'mm']).toContain(r.findings[0]?.kind);
  });
});

describe('extensions replacing a core step', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ext-'));
  it('a wrapped core step runs in place of the original, for every caller', () => {
    const file = join(dir, 'count-unbinds.cjs');
    writeFileSync(
      file,
      `exports.extend = (ctx) => {
        const orig = ctx.coreStep('unbind');
        ctx.setCoreStep('unbind', function* (t, handle) {
          yield* ctx.k.step(t, 'patched unbind', () => {});
          return yield* orig(t, handle);
        });
      };`,
    );
    const r = once({ processes: 2, script: 'life', extension: file });
    expect(r.findings).toEqual([]);
    expect(r.check.counters.unbinds).toBe(2);
    expect(r.trace.toText().match(/patched unbind/g)?.length).toBe(2);
  });

  it('an unknown core step is refused with the list of those that exist', () => {
    const file = join(dir, 'bad.cjs');
    writeFileSync(file, `exports.extend = (ctx) => ctx.setCoreStep('frobnicate', function* () {});`);
    expect(() => buildSva({ extension: file })).toThrow(/no core step 'frobnicate' \(bind, unbind, release/);
  });
});
