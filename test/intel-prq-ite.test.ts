// VT-d's invalidation time-out (drivers/iommu/intel/dmar.c, qi_check_fault's ITE): a device that never answers a
// device-TLB invalidation — the hardware gives up after its time-out, sets ITE with the device's SID, moves IQH
// past the descriptor and stops; qi_submit_sync's poll finds it in qi_check_fault, which prints qi_dump_fault's
// lines, marks every pending wait descriptor QI_ABORT, clears ITE ("Invalidation Time-out Error (ITE) cleared")
// and returns -EAGAIN: qi_submit_sync starts over (restart:) and submits the descriptors again — for ever, as the
// kernel does, interrupts off only between two restarts: a soft lockup, not a hard one. Deterministic runtime.
import { describe, expect, it } from 'vitest';
import type { VtdUnit } from '../src/hw/intel/hw.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

function run(params: Record<string, Wire>, seed: number) {
  const b = buildSva(params);
  const calls: string[] = [];
  b.model.k.fns.wrap(
    'qi_check_fault',
    (orig) =>
      function* (t, iommu, index, wait) {
        const rc = yield* orig(t, iommu, index, wait);
        if (rc !== 0) calls.push(`qi_check_fault ${rc}`);
        return rc;
      },
    'test',
  );
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { r: runDeterministic({ workload: b.workload, seed, scheduler: s, keepGoing: false, maxSteps: 2_000_000 }), unit: b.model.units[0] as VtdUnit, calls };
}

const NEVER = { iommus: 'vtd', devices: 1, processes: 1, teardown: 'drain', script: 'life', dmas: 4, misbehave: 'no-atc-response' };

describe('qi_check_fault: ITE', () => {
  it('each time-out: the dump, the wait aborted, ITE cleared, qi_submit_sync restarted — until the soft-lockup watchdog reports the spinning unbind', () => {
    const { r, unit, calls } = run(NEVER, 1);
    expect(r.findings.map((f) => f.kind)).toEqual(['soft_lockup']);
    expect(r.findings[0]?.title).toMatch(/^watchdog: BUG: soft lockup - CPU#\d stuck for 20s! \[proc0:\d+\]$/);
    // Each time-out in dmar.c's words: qi_dump_fault (the SID, the wait descriptor at IQH, the device-TLB
    // invalidation before it), then the ITE cleared.
    expect(unit.log.slice(0, 4)).toEqual([
      'DMAR: VT-d detected Invalidation Time-out Error: SID 100',
      expect.stringMatching(/^DMAR: QI HEAD: Invalidation Wait qw0 = 0x2000000e5, qw1 = 0x[\da-f]+$/),
      expect.stringMatching(/^DMAR: QI PRIOR: PASID-based Device-TLB Invalidation qw0 = 0x1000001010000\d8, qw1 = 0x0$/),
      'DMAR: Invalidation Time-out Error (ITE) cleared',
    ]);
    // One time-out a second (the hardware's 1 s): twenty of them before the 20 s soft lockup, each restarting.
    const cleared = unit.log.filter((l) => l === 'DMAR: Invalidation Time-out Error (ITE) cleared').length;
    expect(cleared).toBeGreaterThanOrEqual(19);
    expect(cleared).toBeLessThanOrEqual(20);
    expect(calls).toEqual(new Array(cleared).fill('qi_check_fault -11'));
    expect(r.trace.toText()).toContain('<- task: ITE: desc_status[head] = QI_ABORT; writel(DMA_FSTS_ITE, DMAR_FSTS_REG)');
  });

  it('a device that answers: no time-out, no message, no restart', () => {
    const { r, unit, calls } = run({ ...NEVER, misbehave: 'none' }, 1);
    expect(r.findings).toEqual([]);
    expect(unit.log).toEqual([]);
    expect(calls).toEqual([]);
  });
});
