// The hardware's shared events declare their footprints (src/hw/footprint.ts, issue #19): the sva stress workload
// on VT-d, AMD and SMMUv3 runs in the deterministic runtime with every declared footprint checked against what its
// delivery wrote (a violation throws), and the deliveries of the events the hardware handles on its hot path —
// translations, walks, commands, DMA, ATC invalidations, lifecycle and mm reports — all declare one.
import { describe, expect, it } from 'vitest';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Footprint } from '../src/runtime/footprint.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildWorkload } from '../src/runtime/workloads.js';

/** Deliveries of each shared event: how many, and how many declared no footprint (the coarse fallback). */
type Tally = Map<string, { n: number; undeclared: number; units: Set<number> }>;

function run(seed: number): Tally {
  const w = buildWorkload('sva', { iommus: 'vtd,amd,smmuv3', devices: 3, processes: 3, script: 'stress', dmas: 6, rounds: 2 });
  const asked = w.footprintOf?.bind(w);
  expect(asked).toBeDefined();
  const tally: Tally = new Map();
  w.footprintOf = (to, event): Footprint | undefined => {
    const fp = asked?.(to, event);
    const t = tally.get(event.type) ?? { n: 0, undeclared: 0, units: new Set<number>() };
    t.n++;
    if (fp === undefined) t.undeclared++;
    else t.units.add(to);
    tally.set(event.type, t);
    return fp;
  };
  const sched = new RandomScheduler(seed);
  sched.newExecution();
  // checkFootprints: a delivery that writes a word its footprint does not declare written throws.
  runDeterministic({ workload: w, seed, scheduler: sched, checkFootprints: true });
  return tally;
}

describe('the hardware footprints (hwdev)', () => {
  const tally = run(1);

  it('every hot-path event the run delivers declares its footprint', () => {
    const hot = ['ats.req', 'walk', 'submit', 'engine', 'ats.ok', 'ats.fault', 'pr', 'prs', 'cmdq.doorbell', 'cmdq.next', 'atc.inv', 'atc.done', 'mm.state', 'probe', 'enable'];
    for (const e of hot) expect(tally.get(e)?.n ?? 0, `${e} delivered`).toBeGreaterThan(0);
    // Nothing in this run takes a path the footprints do not follow (a stale table, an unplug, an ITE).
    const undeclared = [...tally].filter(([, t]) => t.undeclared > 0).map(([e, t]) => `${e}: ${t.undeclared} of ${t.n}`);
    expect(undeclared).toEqual([]);
  });

  it("each vendor's unit declares its page walks (the footprint follows the walk it will do)", () => {
    const walk = tally.get('walk');
    expect(walk).toBeDefined();
    // Three units, one per vendor, each with a declared walk; the rare paths not followed stay under a tenth.
    expect(walk?.units.size).toBe(3);
    expect(walk?.undeclared ?? 0).toBeLessThan((walk?.n ?? 0) / 10);
  });

  it('leaves few hardware deliveries on the coarse fallback lock, under another schedule too', () => {
    for (const t of [tally, run(2)]) {
      let n = 0;
      let undeclared = 0;
      for (const v of t.values()) {
        n += v.n;
        undeclared += v.undeclared;
      }
      expect(n).toBeGreaterThan(300);
      expect(undeclared / n).toBeLessThan(0.05);
    }
  });
});
