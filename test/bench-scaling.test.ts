// The scaling bench's ratios against the machine's ceiling (two independent deterministic copies against one)
// and how the report lists them: pure functions of given rates, no timing.
import { describe, expect, it } from 'vitest';
import { shareOfCeiling } from '../bench/ceiling.js';
import { presetRatios } from '../bench/scaling.bench.js';
import { ceilingTable } from '../src/report/markdown.js';

const rates = (steps: Record<string, number>, events: Record<string, number> = {}) => ({ events: new Map(Object.entries(events)), steps: new Map(Object.entries(steps)) });

describe('scaling bench: the ceiling', () => {
  it('share of the ceiling: the 2-worker speed-up over the speed-up of two independent copies', () => {
    expect(shareOfCeiling(1.5, 1, 1.5, 1)).toBeCloseTo(1);
    expect(shareOfCeiling(12, 10, 24, 20)).toBeCloseTo(1);
    // 2 workers slower than 1 (0.8×) where two copies get 1.6×: half of what the machine allows.
    expect(shareOfCeiling(8, 10, 16, 10)).toBeCloseTo(0.5);
  });

  it("names a preset's ratios after the existing ones, the ceiling's in steps/s, the rest in events/s", () => {
    const r = rates({ '1worker': 100, '2workers': 90, ceiling1: 200, ceiling2: 300 }, { '1worker': 40, '2workers': 20 });
    expect(presetRatios('sva', r)).toEqual({ scaling_2workers_vs_1: 0.5, scaling_ceiling_2_vs_1: 1.5, scaling_2workers_vs_ceiling: 0.6 });
    expect(Object.keys(presetRatios('domains', r))).toEqual(['scaling_domains_2workers_vs_1', 'scaling_domains_ceiling_2_vs_1', 'scaling_domains_2workers_vs_ceiling']);
  });

  it('leaves out a ratio whose figures were not measured', () => {
    expect(presetRatios('mixed', rates({ '1worker': 100, '2workers': 90, ceiling1: 200 }))).toEqual({});
  });

  it('the report tabulates each preset that has both its workers and its ceiling, nothing for the others', () => {
    const row = (preset: string, placement: string, stepsPerSec: number) => ({ preset, placement, stepsPerSec, eventsPerSec: stepsPerSec / 3 });
    const t = ceilingTable([
      row('sva', '1 worker', 100),
      row('sva', '2 workers', 90),
      row('sva', 'ceiling: 1 thread', 200),
      row('sva', 'ceiling: 2 independent threads', 300),
      row('mixed', '1 worker', 100),
      row('mixed', '2 workers', 90),
    ]);
    expect(t?.split('\n')).toEqual([
      '| preset | 2 workers ÷ 1 | ceiling: 2 copies ÷ 1 | share of the ceiling |',
      '| --- | --- | --- | --- |',
      '| sva | 0.90× | 1.50× | 0.60× |',
    ]);
    expect(ceilingTable([row('mixed', '1 worker', 100)])).toBeNull();
  });
});

describe('scaling bench: worker time', () => {
  it("sums the runs' worker time into shares, naming the point blocked tasks waited at the most", async () => {
    const { workerTimeCells } = await import('../bench/scaling.bench.js');
    const a = { totalMs: 600, lockWaitMs: 60, blockedMs: 200, idleMs: 40, blockedOn: [{ label: 'mutex_lock(iommu_sva_lock)', ms: 150 }] };
    const b = { totalMs: 400, lockWaitMs: 40, blockedMs: 100, idleMs: 10, blockedOn: [{ label: 'QI_IWD', ms: 100 }] };
    expect(workerTimeCells([a, undefined, b])).toEqual({
      lockWaitShare: 0.1,
      blockedShare: 0.3,
      idleShare: 0.05,
      blockedOn: 'mutex_lock(iommu_sva_lock) 50 %',
    });
    // A deterministic run has none: no cells, the report prints a dash.
    expect(workerTimeCells([undefined])).toEqual({});
  });
});

describe('scaling bench: findings', () => {
  it("lists the kinds of the runs' findings with their counts, none as null", async () => {
    const { findingKinds } = await import('../bench/scaling.bench.js');
    const run = (kinds: string[]) => ({ findings: kinds.map((kind) => ({ kind })) }) as unknown as import('../src/runtime/result.js').RunResult;
    expect(findingKinds([run([]), run([])])).toBeNull();
    expect(findingKinds([run(['stale_translation']), run(['stale_translation', 'kasan'])])).toBe('stale_translation ×2, kasan ×1');
  });
});
