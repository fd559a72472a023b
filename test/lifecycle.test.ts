// The IOMMU unit, PCI device and mm actors as lifecycle machines: an event a state refuses is a `lifecycle`
// finding naming the actor, its state and the event; and an exploration of a shipped race drives each of them
// through at least five of their states (deterministic runtime, fixed seeds).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { MM_DEAD } from '../src/kernel/mm/mm.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { ModelEvent, Workload } from '../src/runtime/model.js';
import { createScheduler } from '../src/runtime/schedulers/index.js';
import { exploreChunk } from '../src/scenario/chunk.js';
import { Coverage, statesByKind } from '../src/scenario/coverage.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import { buildSva } from '../src/workloads/sva.js';

const RACES = join(import.meta.dirname, '..', 'races');

/** One execution with ENV sending `extra` after the workload's own initial messages. */
function runWith(workload: Workload, to: number, event: ModelEvent, seed = 1) {
  const scheduler = createScheduler('random', { seed, depth: 3 });
  scheduler.newExecution();
  return runDeterministic({ workload, seed, scheduler, initial: [...workload.initial, { to, event }], keepGoing: true });
}

describe('lifecycle: an event the state refuses is a finding', () => {
  it('an invalidation completion no command waits for (an IOMMU unit that never had a device-TLB invalidation)', () => {
    const { workload, model } = buildSva({ processes: 0, devices: 1 });
    const unit = model.actors.unit(0);
    const r = runWith(workload, unit, { type: 'atc.done', dev: 0 });
    const f = r.findings.filter((x) => x.kind === 'lifecycle');
    expect(f).toHaveLength(1);
    const state = /state: (\S+)/.exec(f[0]?.text ?? '')?.[1];
    // Wherever the spurious completion lands, no command is waiting for it.
    expect(['off', 'cmdq_enabled', 'idle']).toContain(state);
    expect(f[0]?.title).toBe(`iommu-sim: illegal transition: dmar0 in state ${state} refused atc.done`);
    expect(f[0]?.text).toContain('event: atc.done { dev 0 }');
    expect(f[0]?.where).toBe('dmar0');
  });

  it('the same completion while the unit waits on a device-TLB invalidation is taken: no finding', () => {
    // The race's own runs: every device-TLB invalidation is answered once, in atc_wait.
    const { workload } = buildSva({ processes: 1, devices: 1, script: 'munmap', dmas: 2 });
    const scheduler = createScheduler('random', { seed: 3, depth: 3 });
    scheduler.newExecution();
    const r = runDeterministic({ workload, seed: 3, scheduler, keepGoing: true });
    expect(r.findings).toEqual([]);
    expect(r.check.ok).toBe(true);
  });

  it('an mm reported dead before its exec (or alive again after it died) is refused', () => {
    const { workload, model } = buildSva({ processes: 1, devices: 1 });
    const r = runWith(workload, model.actors.mm(0), { type: 'mm.state', code: MM_DEAD, pasid: 0 });
    const f = r.findings.filter((x) => x.kind === 'lifecycle');
    expect(f.length).toBeGreaterThan(0);
    expect(f[0]?.where).toBe('mm/1');
    expect(f[0]?.title).toMatch(/^iommu-sim: illegal transition: mm\/1 in state (unused|dead|freed) refused mm\.state$/);
  });

  it('a device asked to probe again once its driver bound it refuses it', () => {
    const { workload, model } = buildSva({ processes: 0, devices: 1 });
    const dev = model.actors.device(0);
    const r = runWith(workload, dev, { type: 'probe' });
    const f = r.findings.filter((x) => x.kind === 'lifecycle');
    // Either probe lands first (then kernel_init's is the second) or second: one of them is refused, after probed.
    expect(f).toHaveLength(1);
    expect(f[0]?.title).toMatch(/^iommu-sim: illegal transition: dev\/0000:01:00\.0 in state (probed|bound|enabled) refused probe$/);
  });
});

describe('coverage: the lifecycle actors go through their states', () => {
  it('000-patch-release-defers-teardown (fixed), 200 schedules from seed 1: the unit, the device and the mm each show ≥ 5 states', async () => {
    const s = await loadScenarioFile(join(RACES, '000-patch-release-defers-teardown.yaml'));
    const c = await exploreChunk({ model: s.model, params: scenarioParams(s, true), strategy: s.explore.strategy, depth: s.explore.depth, seed: 1, runs: 200 });
    expect(c.executions).toBe(200);
    expect(c.findings).toEqual([]);
    const states = statesByKind(c.coverage.triples);
    for (const kind of ['smmu', 'dev', 'mm']) expect(states[kind]?.length ?? 0, `${kind}: ${states[kind]?.join(', ')}`).toBeGreaterThanOrEqual(5);
    expect(states.dev).toEqual(expect.arrayContaining(['probed', 'bound', 'enabled', 'dma', 'stopping', 'drained']));
    expect(states.mm).toEqual(expect.arrayContaining(['live', 'bound', 'exiting', 'dead', 'freed']));
    expect(states.smmu).toEqual(expect.arrayContaining(['cmdq_enabled', 'idle', 'atc_wait', 'idle+prq_pending', 'atc_wait+prq_pending']));
    // Nothing is left `running`: every state is a lifecycle state.
    expect(c.coverage.triples.some((t) => t.includes('| running |'))).toBe(false);
  }, 60_000);

  it('000-invalidation-timeout: a device that never answers an ATS invalidation times the command out', async () => {
    const s = await loadScenarioFile(join(RACES, '000-invalidation-timeout.yaml'));
    const c = await exploreChunk({ model: s.model, params: scenarioParams(s), strategy: 'pct', depth: s.explore.depth, seed: 1, runs: 1 });
    expect(statesByKind(c.coverage.triples).dmar).toContain('cmd_timeout');
  }, 60_000);

  it('a page request queue of one entry overflows: the unit goes through +prq_overflow and back', () => {
    const { workload } = buildSva({ processes: 4, devices: 2, script: 'stress', prqDepth: 1, pages: 16 });
    const cov = new Coverage();
    for (const seed of [1, 2, 3]) {
      const scheduler = createScheduler('random', { seed, depth: 3 });
      scheduler.newExecution();
      const r = runDeterministic({ workload, seed, scheduler });
      expect(r.findings).toEqual([]);
      cov.add(r, workload);
    }
    const dmar = statesByKind(cov.summary().triples).dmar ?? [];
    expect(dmar.some((s) => s.endsWith('+prq_overflow'))).toBe(true);
    expect(dmar).toContain('idle');
  });
});
