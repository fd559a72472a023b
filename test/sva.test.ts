// Acceptance of the IOMMU model, part 1 (issue #4): the whole SVA life per flavour, the release path, refused
// binds, the free-at-once race found by PCT (and not found with the fix), a drain that never finishes, and the
// threaded runtime on a mixed topology — every concurrent case in the deterministic runtime with fixed seeds, or
// asserting only what holds in every interleaving.
import { describe, expect, it } from 'vitest';
import { buildSva } from '../src/workloads/sva.js';
import { errname } from '../src/kernel/errno.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { replay, run } from '../src/runtime/run.js';
import { PctScheduler } from '../src/runtime/schedulers/pct.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import '../src/workloads/index.js';

const FLAVOURS = ['vtd', 'amd', 'smmuv3'] as const;

function once(params: Record<string, Wire>, seed: number, pct = false) {
  const built = buildSva(params);
  const s = pct ? new PctScheduler(seed, 3) : new RandomScheduler(seed);
  s.newExecution();
  const r = runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
  return { r, model: built.model };
}

function proc(r: RunResult, i: number): Record<string, number> {
  const f = r.finals.find((x) => x.name === `proc/${i}`);
  return (f?.context ?? {}) as Record<string, number>;
}

function titles(r: RunResult): string[] {
  return r.findings.map((f) => f.title);
}

describe('SVA: the whole life, per flavour', () => {
  for (const f of FLAVOURS) {
    it(`${f}: bind → DMA → page fault (PRI, or a stall on SMMUv3) → response → DMA completes → unbind → PASID freed, no stale entry`, () => {
      for (let seed = 1; seed <= 40; seed++) {
        const { r, model } = once({ iommus: f, script: 'life', dmas: 6 }, seed, seed % 2 === 0);
        expect(titles(r)).toEqual([]);
        expect(r.check.problems).toEqual([]);
        const c = r.check.counters;
        expect(c.binds).toBe(1);
        expect(c.unbinds).toBe(1);
        expect(c.dmas).toBe(6);
        expect(c.dma_faults).toBe(0);
        // Half the pages were not faulted in at exec: their DMA went through a page request group (two requests for
        // a write, the last one flagged) and one response for the group.
        // SMMUv3's SVA faults by stall (arm_smmu_handle_event): one stalled transaction, reported alone, resumed by
        // CMD_RESUME — a group of one.
        if (f === 'smmuv3') expect(c.page_requests).toBe(c.page_request_groups);
        else expect(c.page_requests).toBeGreaterThan(c.page_request_groups as number);
        expect(c.page_request_groups).toBeGreaterThan(0);
        expect(c.page_responses).toBe(c.page_request_groups);
        expect(proc(r, 0).ok).toBe(6);
        // Nothing is left: no bond, no PASID, no entry, no quarantine (the oracle checked the caches at unbind).
        expect(model.sva.liveBonds()).toEqual([]);
        expect(model.sva.pasids.quarantined()).toEqual([]);
        expect(model.units[0]?.entry(0, proc(r, 0).pasid as number).every((w) => w === 0)).toBe(true);
      }
    });

    it(`${f}: process exit while bound with DMA in flight — release, then exit_files unbinds`, () => {
      let released = 0;
      for (let seed = 1; seed <= 40; seed++) {
        const { r, model } = once({ iommus: f, script: 'exit', dmas: 6, processes: 2, devices: 1 }, seed, seed % 2 === 1);
        expect(titles(r)).toEqual([]);
        expect(r.check.problems).toEqual([]);
        expect(r.check.counters.unbinds).toBe(2);
        released += r.check.counters.releases as number;
        expect(model.sva.liveBonds()).toEqual([]);
      }
      // exit_mmap ran with the bond in place (the MMU notifier's release stopped the walks) in these runs.
      expect(released).toBe(80);
    });
  }
});

describe('SVA: refused binds and the capability check', () => {
  for (const [caps, missing] of [
    ['ats,pri', 'PASID'],
    ['ats,pasid', 'PRI'],
    ['pri,pasid', 'ATS'],
  ] as const) {
    it(`a device without ${missing}: bind refused with -ENODEV, iommu_sva_capable false`, () => {
      const { r } = once({ caps, script: 'life' }, 1);
      expect(titles(r)).toEqual([]);
      const p = proc(r, 0);
      expect(errname(p.bindErr as number)).toBe('-ENODEV');
      expect(p.capable).toBe(0);
      expect(r.check.counters.bind_failures).toBe(1);
      expect(r.check.counters.dmas).toBe(0);
    });
  }

  it('a device with every capability: the capability check is true', () => {
    const { r } = once({ script: 'life' }, 1);
    expect(proc(r, 0).capable).toBe(1);
  });

  it('SUPERVISOR_MODE from an untrusted device is refused with -EOPNOTSUPP; AMD and SMMU refuse it for any device', () => {
    expect(errname(proc(once({ flags: 2 }, 1).r, 0).bindErr as number)).toBe('-EOPNOTSUPP');
    for (const f of ['amd', 'smmuv3']) expect(errname(proc(once({ iommus: f, flags: 2, trusted: true }, 1).r, 0).bindErr as number)).toBe('-EOPNOTSUPP');
  });
});

describe('SVA: teardown "free at once" races with a second bind of the same PASID', () => {
  const race = { teardown: 'at-once', processes: 2, sequential: true, script: 'unbind-inflight', dmas: 6 };

  for (const f of FLAVOURS) {
    it(`${f}: PCT finds an isolation or stale-translation finding, and its schedule replays it`, async () => {
      const out = await run({ workload: { name: 'sva', params: { ...race, iommus: f } }, runtime: 'deterministic', strategy: 'pct', seed: 1, runs: 500 });
      const found = out.findings.find((x) => x.kind === 'isolation' || x.kind === 'stale_translation');
      expect(found, `${out.executions} executions`).toBeDefined();
      const again = replay(out.schedule);
      expect(again.matches).toBe(true);
      expect(again.findings.map((x) => x.title)).toContain(found?.title);
    });
  }

  it('the oracles find DMA landing in the second process — not only the early PASID-reuse check', () => {
    let isolation = 0;
    const s = new PctScheduler(7, 3);
    const w = buildSva({ ...race, iommus: 'vtd' }).workload;
    for (let i = 0; i < 600 && isolation === 0; i++) {
      s.newExecution();
      const r = runDeterministic({ workload: w, seed: 7, scheduler: s, keepGoing: true });
      isolation += r.findings.filter((x) => x.kind === 'isolation').length;
    }
    expect(isolation).toBeGreaterThan(0);
  });

  it('with "wait for drain": no finding in 10 000 PCT schedules', async () => {
    const out = await run({ workload: { name: 'sva', params: { ...race, teardown: 'drain', dmas: 4 } }, runtime: 'deterministic', strategy: 'pct', seed: 3, runs: 10_000 });
    expect(out.executions).toBe(10_000);
    expect(out.findings.map((x) => x.title)).toEqual([]);
    expect(out.check.ok).toBe(true);
    // A budget for a loaded machine: 10 000 schedules of the page-request path (iopf groups and their work).
  }, 600_000);
});

describe('SVA: a device whose drain never finishes', () => {
  it('"wait for drain": the hung-task report names the unbinding task and the device it waits on', () => {
    const { r } = once({ teardown: 'drain', misbehave: 'no-drain', script: 'unbind-inflight', dmas: 4 }, 1);
    const hung = r.findings.filter((x) => x.kind === 'hung_task');
    expect(hung.length).toBeGreaterThan(0);
    const first = hung[0]?.text ?? '';
    expect(first).toMatch(/^INFO: task proc0:\d+ blocked for more than 120 seconds\./);
    expect(first).toContain('waiting on device 0000:01:00.0 to drain PASID 1');
    expect(first).toContain('iommu_sva_unbind_device');
  });

  it('"bounded wait then quarantine": no hang, and the PASID is not handed out again while the device has not drained', () => {
    for (let seed = 1; seed <= 20; seed++) {
      // Seed 000's PASID lifetime: the PASID is the bind's, freed (or quarantined) at its unbind.
      const { r, model } = once({ teardown: 'quarantine', misbehave: 'no-drain', processes: 3, sequential: true, script: 'unbind-inflight', dmas: 4, pasidLife: 'unbind' }, seed);
      expect(titles(r)).toEqual([]);
      expect(r.check.problems).toEqual([]);
      const first = proc(r, 0).pasid;
      // Each unbind on the device that never drains quarantines its PASID; later binds got other PASIDs.
      expect(model.sva.pasids.quarantined().map(([, p]) => p)).toContain(first);
      expect(proc(r, 1).pasid).not.toBe(first);
      expect(proc(r, 2).pasid).not.toBe(first);
      expect(r.check.counters.quarantined).toBe(3);
    }
  });

  it('"bounded wait then quarantine" with a slow drain: within the wait, the PASID is freed and reused; past it, quarantined', () => {
    const slow = { teardown: 'quarantine', misbehave: 'slow-drain', processes: 2, sequential: true, script: 'unbind-inflight', dmas: 4, pasidLife: 'unbind' };
    for (let seed = 1; seed <= 10; seed++) {
      // The device drains in 50 ms: a 1 s bounded wait sees it, and the next bind gets the same PASID back.
      const patient = once({ ...slow, drainTimeoutMs: 1000 }, seed).r;
      expect(titles(patient)).toEqual([]);
      expect(patient.check.counters.quarantined).toBe(0);
      expect(proc(patient, 1).pasid).toBe(proc(patient, 0).pasid);
      // A 1 ms wait gives up: the PASID is quarantined and the next bind gets another one.
      const hasty = once({ ...slow, drainTimeoutMs: 1 }, seed).r;
      expect(titles(hasty)).toEqual([]);
      expect(hasty.check.counters.quarantined).toBeGreaterThan(0);
      expect(proc(hasty, 1).pasid).not.toBe(proc(hasty, 0).pasid);
    }
  });
});

describe('SVA: the threaded runtime', () => {
  const topology = { iommus: 'vtd,amd,smmuv3,vtd', devices: 8, processes: 24, script: 'stress', rounds: 2, dmas: 6, pasidBits: 7, ssidBits: 7 };
  for (const placement of ['sharded', 'per-actor'] as const) {
    it(`mixed flavours, ${placement}: no finding, the counters add up, and the recording replays exactly`, async () => {
      const params = placement === 'per-actor' ? { ...topology, devices: 4, processes: 4 } : topology;
      const r = await run({ workload: { name: 'sva', params }, runtime: 'threaded', seed: 5, workers: 2, placement });
      expect(r.findings.map((x) => x.text)).toEqual([]);
      expect(r.check.problems).toEqual([]);
      const c = r.check.counters;
      expect(c.binds).toBe(c.unbinds);
      expect(c.binds).toBeGreaterThanOrEqual(params.processes);
      expect(c.dmas).toBeGreaterThan(0);
      const again = replay(r.schedule);
      expect(again.matches).toBe(true);
    }, 60_000);
  }
});

describe('SVA: the oracles catch a driver that skips a flush (negative controls)', () => {
  for (const f of FLAVOURS) {
    it(`${f}: invalidate_range that flushes nothing → an IOTLB/ATC entry outlives the munmap (stale translation)`, () => {
      let stale = 0;
      for (let seed = 1; seed <= 20 && stale === 0; seed++) {
        const { r } = once({ iommus: f, bug: 'no-range-flush', script: 'munmap', rounds: 6, dmas: 8, pages: 4 }, seed);
        stale += r.findings.filter((x) => x.kind === 'stale_translation' && x.title.includes('freed while')).length;
      }
      expect(stale).toBeGreaterThan(0);
      // And the same runs with the flush find nothing.
      for (let seed = 1; seed <= 20; seed++) expect(titles(once({ iommus: f, script: 'munmap', rounds: 6, dmas: 8, pages: 4 }, seed).r)).toEqual([]);
    });

    it(`${f}: a release that leaves the entry in place → the hardware reaches freed memory after exit_mmap`, () => {
      let found = 0;
      for (let seed = 1; seed <= 40 && found === 0; seed++) {
        const { r } = once({ iommus: f, bug: 'no-release-flush', script: 'exit', dmas: 8, processes: 2 }, seed, seed % 2 === 0);
        found += r.findings.filter((x) => x.kind === 'stale_translation' || x.kind === 'isolation').length;
      }
      expect(found).toBeGreaterThan(0);
    });
  }
});
