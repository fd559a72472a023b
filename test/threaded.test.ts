// The threaded runtime under real parallelism (bounded in count): every run's invariants and accounting hold,
// and its recorded interleaving replays in the deterministic runtime to the same trace hash. Steps are atomic
// per object (lock stripes) and the trace is the canonical linearisation of the run's happens-before: a
// planted lost update between two threads is found within a bounded number of runs, and replays exactly.
import { describe, expect, it } from 'vitest';
import '../src/kernel/workloads.js';
import { read } from '../src/runtime/footprint.js';
import { canonicalise, HB_ALL } from '../src/runtime/hb.js';
import { MEM } from '../src/runtime/model.js';
import { fallbackShare } from '../src/runtime/result.js';
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

  it('a lost update that needs two threads (kernel-selftest racy) is found within 20 runs, and its recording replays to it', async () => {
    // Long enough for the two tasks to overlap in time even when the second worker starts late on a busy machine
    // (at 300 iterations the first task could finish before the other worker had loaded: no race in 20 runs).
    const workload = { name: 'kernel-selftest', params: { tasks: 2, iterations: 3000, lock: 'racy' } };
    const r = await run({ workload, runtime: 'threaded', seed: 1, workers: 2, runs: 20 });
    expect(r.executions).toBeLessThanOrEqual(20);
    expect(r.check.ok).toBe(false);
    expect(r.check.problems.join()).toMatch(/unlocked counter \d+, expected 6000: lost updates/);
    // The racing points declare their word: no step took the coarse lock, and each word's order was recorded.
    expect(r.locking?.fallback).toBe(0);
    expect(r.trace.hb.some((e) => e.object !== HB_ALL)).toBe(true);
    const rp = replay(Schedule.decode(r.schedule.encode()));
    expect(rp.matches).toBe(true);
    expect(rp.traceHash).toBe(r.traceHash);
    expect(rp.check.problems).toEqual(r.check.problems);
    expect(rp.trace.hb).toEqual(r.trace.hb);
    // `trace` shows each step's edges: which step touched the same word just before it.
    expect(rp.trace.toText()).toMatch(/: (READ|WRITE)_ONCE\(spin_count\) {2}after \d+ on \[\d+\]/);
  });

  it('declared footprints take only their stripes, undeclared ones the coarse fallback, counted; with striping off every locked step does', async () => {
    const workload = { name: 'kernel-selftest', params: { tasks: 2, iterations: 50, lock: 'mutex' } };
    const on = await run({ workload, runtime: 'threaded', seed: 1, workers: 2 });
    expect(on.check.problems).toEqual([]);
    // mutex_lock and mutex_unlock declare their footprints; with lockdep on, an acquisition whose lock chain the
    // worker has not validated yet declares none (it reads and may grow the graph): one per task here.
    expect((on.locking?.striped ?? 0) + (on.locking?.fallback ?? 0)).toBe(202);
    expect(on.locking?.fallback).toBeGreaterThan(0);
    expect(on.locking?.fallback).toBeLessThanOrEqual(2);
    expect(fallbackShare(on.locking ?? { striped: 0, fallback: 0 })).toBeLessThan(0.05);
    expect(replay(on.schedule).traceHash).toBe(on.traceHash);
    // Lockdep off: every locked step declares.
    const quiet = await run({ workload: { ...workload, params: { ...workload.params, checkers: false } }, runtime: 'threaded', seed: 1, workers: 2 });
    expect(quiet.locking).toEqual({ striped: 202, fallback: 0, relocked: 0 });
    const { runThreaded } = await import('../src/runtime/threaded.js');
    const { buildWorkload } = await import('../src/runtime/workloads.js');
    const off = await runThreaded({ workload: buildWorkload(workload.name, workload.params), seed: 1, workers: 2, striping: false });
    expect(off.locking).toEqual({ striped: 0, fallback: 202, relocked: 0 });
    expect(replay(off.schedule).traceHash).toBe(off.traceHash);
  });

  it('the canonical linearisation depends on the happens-before only, not on the order the tickets were taken in', () => {
    // [step, actor, sender, sendStep, event, outcome]: actors 0 and 1 each handle a message from ENV (-3), then
    // each asks for an atomic add on word 5 (a MEM step of its own, on that word).
    const canon = (steps: number[][], objects: number[]) => {
      const c = canonicalise(Int32Array.from(steps.flat()), new Float64Array(steps.length), [Int32Array.from(objects)]);
      return { records: Array.from(c.records), hb: Array.from(c.hb) };
    };
    const a0First = canon(
      [[0, 0, -3, -1, 7, 1], [1, 1, -3, -1, 7, 1], [2, MEM, 0, 0, 9, 0], [3, MEM, 1, 1, 9, 1]],
      [2, 5, 3, 5],
    );
    // The two deliveries took their tickets the other way round: the same run.
    const swapped = canon(
      [[0, 1, -3, -1, 7, 1], [1, 0, -3, -1, 7, 1], [2, MEM, 0, 1, 9, 0], [3, MEM, 1, 0, 9, 1]],
      [2, 5, 3, 5],
    );
    expect(swapped).toEqual(a0First);
    // Canonically: actor 0 (its delivery, its add), then actor 1; the word-5 edge goes from step 1 to step 3.
    expect(a0First.hb).toEqual([1, 3, 5]);
    // Actor 1's add on word 5 came first: another run.
    const a1First = canon(
      [[0, 0, -3, -1, 7, 1], [1, 1, -3, -1, 7, 1], [2, MEM, 1, 1, 9, 0], [3, MEM, 0, 0, 9, 1]],
      [2, 5, 3, 5],
    );
    expect(a1First.records).not.toEqual(a0First.records);
    // A step on the coarse fallback is ordered after every locked step before it, whatever its object.
    const fallback = canon(
      [[0, MEM, 0, -1, 9, 0], [1, 1, -3, -1, 8, 1], [2, MEM, 1, -1, 9, 0]],
      [0, 5, 1, HB_ALL, 2, 6],
    );
    expect(fallback.hb).toEqual([0, 1, HB_ALL, 1, 2, HB_ALL]);
    // Reads of word 5 (read(5) = -7) between two writes: each read after the first write, the second write
    // after the first (as every write) and both reads, and no edge between the reads — their tickets the other
    // way round is the same run.
    const steps = (r1: number, r2: number) => [[0, MEM, 0, -1, 9, 0], [1, r1, -3, -1, 8, 1], [2, r2, -3, -1, 8, 1], [3, MEM, 3, -1, 9, 0]];
    const reads = canon(steps(1, 2), [0, 5, 1, read(5), 2, read(5), 3, 5]);
    expect(reads.hb).toEqual([0, 1, 5, 0, 2, 5, 0, 3, 5, 1, 3, 5, 2, 3, 5]);
    expect(canon(steps(2, 1), [0, 5, 1, read(5), 2, read(5), 3, 5])).toEqual(reads);
  });
});
