// Hardware busy time in the deterministic runtime (HwOut.busy → BusyEffect): an actor that said its handling of
// a message took it `ns` of its time takes its next message no sooner, on the simulated clock, while other
// actors go on; when nothing else can run, the clock moves on to the end of the busy time. Under 1 µs (a step)
// a busy time delays nothing.
import { describe, expect, it } from 'vitest';
import { createMachine, emit } from 'xstate';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Monitor, Workload } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';

/** `hw` is busy `ns` per ping; `other` is not. Both get `n` pings; the monitor notes when each is delivered. */
function busyWorkload(ns: number, n: number): { w: Workload; times: Map<number, number[]> } {
  const hw = createMachine({ id: 'hw', on: { ping: { actions: emit(() => ({ type: 'rt.busy' as const, ns })) } } });
  const other = createMachine({ id: 'other', on: { ping: {} } });
  const times = new Map<number, number[]>([
    [0, []],
    [1, []],
  ]);
  let now: () => number = () => 0;
  const monitor: Monitor = {
    findings: [],
    attach: (_shared, clock) => {
      now = clock;
    },
    delivering: (_step, actor) => {
      times.get(actor)?.push(now());
    },
  };
  const w: Workload = {
    name: 'busy',
    params: {},
    actors: [
      { name: 'hw', logic: hw },
      { name: 'other', logic: other },
    ],
    initial: Array.from({ length: 2 * n }, (_, i) => ({ to: i % 2, event: { type: 'ping' } })),
    sharedWords: 1,
    sharedEvents: ['ping'],
    check: () => ({ ok: true, problems: [], counters: {} }),
    monitor,
  };
  return { w, times };
}

function run(ns: number, n: number, seed: number) {
  const { w, times } = busyWorkload(ns, n);
  const s = new RandomScheduler(seed);
  s.newExecution();
  const r = runDeterministic({ workload: w, seed, scheduler: s });
  return { r, hw: times.get(0) ?? [], other: times.get(1) ?? [] };
}

const gaps = (ts: readonly number[]): number[] => ts.slice(1).map((t, i) => t - (ts[i] as number));

describe('hardware busy time (deterministic runtime)', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: 50 µs a message keeps the unit's messages 50 µs apart and moves the clock; the other actor is not held`, () => {
      const { r, hw, other } = run(50_000, 20, seed);
      expect(r.accounting.ok).toBe(true);
      expect(hw).toHaveLength(20);
      for (const g of gaps(hw)) expect(g).toBeGreaterThanOrEqual(0.05 - 1e-9);
      // The last ping came 19 × 50 µs after the first: the clock moved on to each end of busy time.
      expect((hw[19] as number) - (hw[0] as number)).toBeGreaterThanOrEqual(19 * 0.05 - 1e-9);
      // `other` took its 20 pings in the steps between, none of them delayed past the unit's last one.
      expect(other).toHaveLength(20);
      expect(other[19] as number).toBeLessThanOrEqual(hw[19] as number);
    });
  }

  it('a busy time under one step (1 µs) changes nothing: the same trace as no busy time at all', () => {
    expect(run(500, 20, 1).r.traceHash).toBe(run(0, 20, 1).r.traceHash);
    expect(run(50_000, 20, 1).r.traceHash).not.toBe(run(0, 20, 1).r.traceHash);
  });
});
