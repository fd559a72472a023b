// Same workload + same seed ⇒ the same trace, byte for byte, for every strategy; another seed ⇒ another trace.
import { describe, expect, it } from 'vitest';
import { run } from '../src/runtime/run.js';
import { STRATEGIES } from '../src/runtime/scheduler.js';
import { detRun, selftest } from './helpers.js';

describe('deterministic runtime', () => {
  for (const strategy of STRATEGIES) {
    it(`${strategy}: seed 7 twice gives one hash, seed 8 another`, () => {
      const a = detRun(strategy, 7, { actors: 4, messages: 50 });
      const b = detRun(strategy, 7, { actors: 4, messages: 50 });
      const c = detRun(strategy, 8, { actors: 4, messages: 50 });
      expect(a.traceHash).toBe(b.traceHash);
      expect(Buffer.from(a.trace.records.buffer).equals(Buffer.from(b.trace.records.buffer))).toBe(true);
      expect(c.traceHash).not.toBe(a.traceHash);
      for (const r of [a, b, c]) {
        expect(r.check.problems).toEqual([]);
        expect(r.accounting.ok).toBe(true);
        expect(r.accounting.queued).toBe(0);
        expect(r.steps).toBe(r.trace.length);
      }
    });
  }

  it('different schedules of one workload give different outcomes (the workload really races)', () => {
    // Same workload seed, different scheduler seeds: the register's read sequence depends on the interleaving.
    const hashes = new Set<string>();
    const digests = new Set<string>();
    for (let s = 0; s < 8; s++) {
      const r = detRun('random', s, { actors: 4, messages: 30, seed: 1 });
      hashes.add(r.traceHash);
      digests.add(JSON.stringify(r.finals.map((f) => (f.context as { digest: number }).digest)));
    }
    expect(hashes.size).toBeGreaterThan(1);
    expect(digests.size).toBeGreaterThan(1);
  });

  it('a step count of zero is a valid workload: no messages, every actor finishes', () => {
    const r = detRun('random', 1, { messages: 0 });
    expect(r.check.ok).toBe(true);
    expect(r.steps).toBe(3); // one start message per actor
  });

  it('dfs explores a tiny workload exhaustively and says so', async () => {
    const r = await run({ workload: selftest({ actors: 2, messages: 1 }), runtime: 'deterministic', seed: 1, strategy: 'dfs', runs: 100_000 });
    expect(r.explored).toMatch(/space exhausted after \d+ executions/);
    expect(r.executions).toBeGreaterThan(1);
    expect(r.check.ok).toBe(true);
  });

  it('dfs executions are all distinct schedules', async () => {
    const { DfsScheduler } = await import('../src/runtime/schedulers/dfs.js');
    const { runDeterministic } = await import('../src/runtime/deterministic.js');
    const { buildWorkload } = await import('../src/runtime/workloads.js');
    const w = selftest({ actors: 2, messages: 1 });
    const workload = buildWorkload(w.name, w.params);
    const dfs = new DfsScheduler(1000, 1);
    const seen = new Set<string>();
    let n = 0;
    while (dfs.newExecution()) {
      seen.add(runDeterministic({ workload, seed: 1, scheduler: dfs }).traceHash);
      n++;
    }
    expect(dfs.isExhausted).toBe(true);
    expect(seen.size).toBe(n);
  });
});
