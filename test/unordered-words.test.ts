// Statistics words (Workload.unorderedWords): footprints still declare them, the threaded runtime neither locks
// them nor orders steps by them — as the kernel's percpu counters order nothing — and a run still replays.
import { describe, expect, it } from 'vitest';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { Control, stripeOf } from '../src/runtime/control.js';
import { read, UnorderedWords } from '../src/runtime/footprint.js';
import { ObjectLog } from '../src/runtime/hb.js';
import { replay, run } from '../src/runtime/run.js';
import { Schedule } from '../src/runtime/schedule.js';
import { buildWorkload } from '../src/runtime/workloads.js';

describe('unordered words', () => {
  it('are the words of their ranges, written or read', () => {
    const u = new UnorderedWords([
      { from: 10, to: 12 },
      { from: 40, to: 41 },
    ]);
    expect([9, 10, 11, 12, 39, 40, 41].map((w) => u.has(w))).toEqual([false, true, true, false, false, true, false]);
    expect(u.has(read(11))).toBe(true);
    expect(u.has(read(12))).toBe(false);
    expect(new UnorderedWords().empty).toBe(true);
  });

  it('give no happens-before entry: a step that only counts touches no object', () => {
    const log = new ObjectLog(4);
    const u = new UnorderedWords([{ from: 100, to: 110 }]);
    log.pushAll(7, [5, 105, read(6), read(101)], u);
    log.pushAll(8, [103], u);
    expect(Array.from(log.take())).toEqual([7, 5, 7, read(6)]);
  });

  it('are never locked: a step on them alone holds no stripe, one that also writes another word holds its stripe only', () => {
    const c = Control.create(2, true);
    c.unordered = new UnorderedWords([{ from: 100, to: 110 }]);
    expect(c.sequenced(() => c.stripesHeld, false, [104, read(101)])).toBe(0);
    expect(c.sequenced(() => c.stripesHeld, false, [104, 7])).toBe(1);
    expect(c.current).toEqual([104, 7]);
    // Without the ranges the same step takes the counter's stripe too (unless it hashes to 7's).
    const plain = Control.create(2, true);
    expect(plain.sequenced(() => plain.stripesHeld, false, [104, 7])).toBe(stripeOf(104) === stripeOf(7) ? 1 : 2);
  });

  it('the sva and domains workloads declare their statistics so, and their threaded runs replay to the same hash and counters', async () => {
    const sva = { name: 'sva', params: { iommus: 'vtd,amd', devices: 2, processes: 4, script: 'stress', dmas: 2, rounds: 1 } };
    const domains = { name: 'domains', params: { iommus: 'vtd,amd', groups: 2, groupSize: 2, processes: 4, faults: 4, script: 'stress', rounds: 2 } };
    for (const w of [sva, domains]) {
      expect(buildWorkload(w.name, w.params).unorderedWords?.length).toBeGreaterThan(0);
      const r = await run({ workload: w, runtime: 'threaded', seed: 3, workers: 2 });
      expect(r.check.problems).toEqual([]);
      const rp = replay(Schedule.decode(r.schedule.encode()));
      expect(rp.traceHash).toBe(r.traceHash);
      expect(rp.check.counters).toEqual(r.check.counters);
    }
  });
});
