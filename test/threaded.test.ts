// The threaded runtime under real parallelism (bounded in count): every run's invariants and accounting hold,
// and its recorded interleaving replays in the deterministic runtime to the same trace hash.
import { describe, expect, it } from 'vitest';
import { replay, run } from '../src/runtime/run.js';
import { Schedule } from '../src/runtime/schedule.js';
import { selftest } from './helpers.js';

describe('threaded runtime', () => {
  it('sharded over 2 workers: 5 recorded runs each replay exactly', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await run({ workload: selftest({ actors: 4, messages: 200 }), runtime: 'threaded', seed: 1, workers: 2 });
      expect(r.check.problems).toEqual([]);
      expect(r.accounting).toEqual({ sent: r.steps, delivered: r.steps, queued: 0, ok: true });
      expect(r.workers).toBe(2);
      const rp = replay(Schedule.decode(r.schedule.encode()));
      expect(rp.traceHash).toBe(r.traceHash);
      expect(rp.finals).toEqual(r.finals);
      expect(Array.from(rp.shared)).toEqual(Array.from(r.shared));
    }
  });

  it('per-actor placement (8 threads on fewer cores, parking): 3 recorded runs each replay exactly', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await run({ workload: selftest({ actors: 8, messages: 50 }), runtime: 'threaded', seed: 2, placement: 'per-actor' });
      expect(r.workers).toBe(8);
      expect(r.check.problems).toEqual([]);
      expect(r.accounting.ok).toBe(true);
      expect(replay(r.schedule).traceHash).toBe(r.traceHash);
    }
  });

  it('--runs 3: three recorded runs, each with its own seed, trace hash and recording, each replaying exactly', async () => {
    const r = await run({ workload: selftest({ actors: 4, messages: 50 }), runtime: 'threaded', seed: 5, workers: 2, runs: 3 });
    expect(r.executions).toBe(3);
    expect(r.threadedRuns?.map((t) => t.seed)).toEqual([5, 6, 7]);
    for (const t of r.threadedRuns ?? []) {
      expect(t.schedule.meta.traceHash).toBe(t.traceHash);
      expect(replay(Schedule.decode(t.schedule.encode())).traceHash).toBe(t.traceHash);
    }
    expect(r.traceHash).toBe(r.threadedRuns?.[2]?.traceHash);
  });

  it('more threads than MAX_WORKERS are refused with a RangeError before any starts', async () => {
    const { MAX_WORKERS, ThreadedRuntime } = await import('../src/runtime/threaded.js');
    const { buildWorkload } = await import('../src/runtime/workloads.js');
    const w = selftest({ actors: MAX_WORKERS + 1, messages: 1 });
    const workload = buildWorkload(w.name, w.params);
    expect(() => new ThreadedRuntime({ workload, seed: 1, placement: 'per-actor' })).toThrow(/placement per-actor: .* 129 actors, a thread each; at most 128/);
    expect(() => new ThreadedRuntime({ workload, seed: 1, workers: MAX_WORKERS + 1 })).toThrow(RangeError);
  });

  it('a small ring forces backpressure without losing or duplicating a message', async () => {
    const { buildWorkload } = await import('../src/runtime/workloads.js');
    const workload = buildWorkload('stream', { pairs: 1, chunk: 512 });
    const { ThreadedRuntime } = await import('../src/runtime/threaded.js');
    const rt = new ThreadedRuntime({ workload, seed: 1, workers: 2, ringSlots: 16 });
    await rt.runToQuiescence([
      { to: 0, event: { type: 'go', n: 5000 } },
      { to: 1, event: { type: 'go', n: 5000 } },
    ]);
    const r = await rt.finish();
    expect(r.check.counters.received).toBe(10_000);
    expect(r.accounting.ok).toBe(true);
    expect(replay(r.schedule).traceHash).toBe(r.traceHash);
  });
});
