// Race scripts with actors (issue #6): the `domains` and `ioasid` models' scripted actors and every step they
// take, the ordering constraints `after` (an actor's step waits for another's) and `while` (a step starts once a
// task so named holds a lock) in all three models — asserted on the order of the trace, over many seeds — a
// `while` that is never met ending in a hung-task report that says what it waited for, and the seed-002 race
// of PASID attach on a multi-device group: found with the policy that allows it, replayed, and absent when
// refused. Deterministic runtime, fixed seeds; one scripted run in the threaded runtime.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenarioFile, scenarioParams, validateScenario } from '../src/scenario/load.js';
import type { ScenarioInput } from '../src/scenario/scenario.js';
import type { RunResult } from '../src/runtime/result.js';
import { replay, run, Schedule } from '../src/runtime/run.js';
import type { StrategyName } from '../src/runtime/scheduler.js';

const RACES = join(import.meta.dirname, '..', 'races');

/** The scenario's run (its script compiled, validated as the CLI does), with the fix when asked. */
async function runScenario(s: ScenarioInput, seed: number, o: { fixed?: boolean; strategy?: StrategyName; runs?: number } = {}): Promise<RunResult> {
  const v = validateScenario(s, 'test.yaml');
  return run({ workload: { name: v.model, params: scenarioParams(v, o.fixed ?? false) }, runtime: 'deterministic', strategy: o.strategy ?? 'random', seed, runs: o.runs ?? 1 });
}

/** The trace as `who: label` lines, in schedule order. */
function steps(r: RunResult): string[] {
  const out: string[] = [];
  for (let i = 0; i < r.trace.length; i++) {
    const rec = r.trace.record(i);
    out.push(`${r.trace.actorName(rec.actor)}: ${r.trace.eventName(rec.event)}`);
  }
  return out;
}

/** The outcome lines of one scripted actor (`drv/0[3]: …`), in order. */
function outcomes(r: RunResult, actor: string): string[] {
  return steps(r)
    .map((l) => l.slice(l.indexOf(': ') + 2))
    .filter((l) => l.startsWith(`${actor}[`));
}

/** Index of the first trace line matching, from `from` on (-1: none). */
function find(lines: readonly string[], re: RegExp, from = 0): number {
  for (let i = from; i < lines.length; i++) if (re.test(lines[i] as string)) return i;
  return -1;
}

function lastBefore(lines: readonly string[], re: RegExp, before: number): number {
  for (let i = before - 1; i >= 0; i--) if (re.test(lines[i] as string)) return i;
  return -1;
}

const kinds = (r: RunResult): string[] => r.findings.map((f) => f.kind);

const DOMAINS = { name: 'x', title: 'a script', model: 'domains' } as const;
const IOASID = { name: 'x', title: 'a script', model: 'ioasid', topology: { bits: 8, processes: 0, vms: 0 } } as const;

describe('domains: every step a scripted actor can take', () => {
  const s: ScenarioInput = {
    ...DOMAINS,
    topology: { groups: 2, groupSize: 1, processes: 1 },
    script: {
      'drv/0': [
        { alloc: { domain: 'A' } },
        { alloc: { domain: 'B', type: 'paging', iommu: 0 } },
        { attach: { domain: 'A', dev: 0 } },
        { detach: { domain: 'A', dev: 0 } },
        { attach: { domain: 'A', dev: 1, pasid: 3 } },
        { dma: { dev: 1, pasid: 3 } },
        { replace: { domain: 'B', dev: 1, pasid: 3 } },
        { attach: { domain: 'A', dev: 1, pasid: 3 } },
        { detach: { domain: 'B', dev: 1, pasid: 3 } },
        { dma: { dev: 1, pasid: 3 } },
        'synchronize_rcu',
        { free: 'A' },
        { free: 'B' },
      ],
      'proc/0': [{ bind: { dev: 0, mm: 0 } }, { after: 'iopf/0:1' }, { unbind: { dev: 0, mm: 0 } }],
      'iopf/0': [{ after: 'proc/0:0' }, { iopf: { dev: 0, pasid: 1 } }],
    },
  };

  for (const seed of [1, 2, 3]) {
    it(`runs them in order, each with the kernel's result (seed ${seed})`, async () => {
      const r = await runScenario(s, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(r.check.ok).toBe(true);
      expect(r.blocked).toEqual([]);
      expect(outcomes(r, 'drv/0')).toEqual([
        'drv/0[0]: iommu_domain_alloc(paging) = A',
        'drv/0[1]: iommu_domain_alloc(paging) = B',
        'drv/0[2]: iommu_attach_device(A, 0000:00:01.0) = 0',
        'drv/0[3]: iommu_detach_device(A, 0000:00:01.0)',
        'drv/0[4]: iommu_attach_device_pasid(A, 0000:00:02.0, 3) = 0',
        'drv/0[5]: DMA from 0000:00:02.0 PASID 3: completed',
        'drv/0[6]: iommu_replace_device_pasid(B, 0000:00:02.0, 3) = 0',
        // Another domain on an attached PASID: replace is the way.
        'drv/0[7]: iommu_attach_device_pasid(A, 0000:00:02.0, 3) = -EBUSY',
        'drv/0[8]: iommu_detach_device_pasid(B, 0000:00:02.0, 3)',
        'drv/0[9]: DMA from 0000:00:02.0 PASID 3: faulted',
        'drv/0[10]: synchronize_rcu()',
        'drv/0[11]: iommu_domain_free(A)',
        'drv/0[12]: iommu_domain_free(B)',
      ]);
      expect(outcomes(r, 'proc/0')).toEqual([
        'proc/0[0]: iommu_sva_bind_device(0000:00:01.0, mm/1) = PASID 1',
        'proc/0[1]: after iopf/0:1',
        'proc/0[2]: iommu_sva_unbind_device(0000:00:01.0, mm/1)',
      ]);
      expect(outcomes(r, 'iopf/0')).toEqual(['iopf/0[0]: after proc/0:0', 'iopf/0[1]: page request from 0000:00:01.0 PASID 1: handled for mm/1']);
      // Each actor is a kernel task named by its comm.
      expect(steps(r).some((l) => l.startsWith('drv0: '))).toBe(true);
    });
  }

  it('a domain freed while still attached is the leak check’s (the script is the kernel’s user: it must clean up)', async () => {
    const r = await runScenario({ ...DOMAINS, script: { 'drv/0': [{ alloc: { domain: 'A' } }, { attach: { domain: 'A', dev: 0, pasid: 1 } }] } }, 1);
    expect(kinds(r)).toContain('leak');
  });

  it('runs in the threaded runtime too, the same model', async () => {
    const v = validateScenario(s, 'test.yaml');
    const r = await run({ workload: { name: v.model, params: scenarioParams(v) }, runtime: 'threaded', seed: 1, workers: 2 });
    expect(r.findings.map((f) => f.title)).toEqual([]);
    expect(r.blocked).toEqual([]);
    expect(outcomes(r, 'iopf/0')).toEqual(['iopf/0[0]: after proc/0:0', 'iopf/0[1]: page request from 0000:00:01.0 PASID 1: handled for mm/1']);
  }, 60_000);
});

describe('ioasid: every step a scripted user can take', () => {
  const s: ScenarioInput = {
    ...IOASID,
    script: {
      'user/0': [
        { alloc_set: { set: 'S', quota: 2 } },
        { alloc: { set: 'S', id: 'X' } },
        { alloc: { set: 'S', id: 'Y' } },
        { alloc: { set: 'S', id: 'Z' } },
        { find: { set: 'S', id: 'X' } },
        { bind: 'X' },
        { unbind: 'X' },
        { adjust_set: { set: 'S', quota: 1 } },
        { free: 'Y' },
        { adjust_set: { set: 'S', quota: 1 } },
        'check',
        { free: 'X' },
        { free_set: 'S' },
        { alloc: { set: 'system', id: 'W' } },
        { find: { set: 'S', id: 'W' } },
        { free: 'W' },
      ],
    },
  };

  for (const seed of [1, 2]) {
    it(`runs them in order once the allocator is booted, each with the allocator's result (seed ${seed})`, async () => {
      const r = await runScenario(s, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(r.check.ok).toBe(true);
      const got = outcomes(r, 'user/0').map((l) => l.replace(/ \(\d+\)/, ' (n)').replace(/sid \d+/, 'sid n'));
      expect(got).toEqual([
        'user/0[0]: ioasid_alloc_set(quota 2) = S (sid n)',
        'user/0[1]: ioasid_alloc(S) = X (n)',
        'user/0[2]: ioasid_alloc(S) = Y (n)',
        'user/0[3]: ioasid_alloc(S) = -ENOSPC',
        // The private data of X: the script gives each ID its own.
        'user/0[4]: ioasid_find(S, X) = private 0x2000',
        'user/0[5]: ioasid_notify(X, BIND) = 0',
        'user/0[6]: ioasid_notify(X, UNBIND) = 0',
        // Never below what the set holds.
        'user/0[7]: ioasid_adjust_set(S, 1) = -EINVAL',
        'user/0[8]: ioasid_free(Y) = 0',
        'user/0[9]: ioasid_adjust_set(S, 1) = 0',
        "user/0[10]: subscribers' views: 0 divergent",
        'user/0[11]: ioasid_free(X) = 0',
        'user/0[12]: ioasid_free_set(S) = 0',
        'user/0[13]: ioasid_alloc(system) = W (n)',
        // An ID of another set (S is gone): -EINVAL or -EACCES, never its data.
        expect.stringMatching(/^user\/0\[14\]: ioasid_find\(S, W\) = -E(INVAL|ACCES|NOENT)$/),
        'user/0[15]: ioasid_free(W) = 0',
      ]);
      // The script starts once the allocator is booted.
      const lines = steps(r);
      expect(find(lines, /^user0: user\/0\[0\]/)).toBeGreaterThan(find(lines, /^swapper: boot done/));
    });
  }
});

describe('after: an actor’s step waits for another’s', () => {
  // drv/1 frees the domain drv/0 attaches and detaches — only once drv/0 is done with it.
  const ordered = (constrained: boolean): ScenarioInput => ({
    ...DOMAINS,
    script: {
      'drv/0': [{ alloc: { domain: 'A' } }, { attach: { domain: 'A', dev: 0, pasid: 2 } }, { detach: { domain: 'A', dev: 0, pasid: 2 } }],
      'drv/1': [...(constrained ? [{ after: 'drv/0:2' }] : []), { alloc: { domain: 'B' } }, { free: 'B' }],
    },
  });

  it('orders the steps it names, whatever the schedule (40 seeds, random and PCT)', async () => {
    for (const strategy of ['random', 'pct'] as const) {
      for (let seed = 1; seed <= 20; seed++) {
        const r = await runScenario(ordered(true), seed, { strategy });
        const lines = steps(r);
        const done = find(lines, /: drv\/0\[2\]: iommu_detach_device_pasid/);
        const after = find(lines, /: drv\/1\[0\]: after drv\/0:2$/);
        expect(done, `${strategy} seed ${seed}`).toBeGreaterThanOrEqual(0);
        expect(after, `${strategy} seed ${seed}`).toBeGreaterThan(done);
        // Nothing of drv/1's step 1 (its alloc) happens before the constraint is met.
        expect(find(lines, /^drv1: (kzalloc|iommu_domain_alloc|ida_alloc)/)).toBeGreaterThan(after);
      }
    }
  });

  it('and without it the scheduler does interleave them (the assertion above can fail)', async () => {
    let interleaved = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const lines = steps(await runScenario(ordered(false), seed));
      if (find(lines, /: drv\/1\[0\]: /) < find(lines, /: drv\/0\[2\]: /)) interleaved++;
    }
    expect(interleaved).toBeGreaterThan(0);
  });
});

describe('while: a step starts once a task so named holds a lock', () => {
  // drv/0 allocates once proc0 is inside its unbind, holding iommu_sva_lock (proc/0 unbinds once drv/0 waits).
  const s: ScenarioInput = {
    ...DOMAINS,
    script: {
      'proc/0': [{ bind: { dev: 0, mm: 0 } }, { after: 'drv/0:0' }, { unbind: { dev: 0, mm: 0 } }],
      'drv/0': [{ after: 'proc/0:0' }, { while: { task: 'proc0', holds: 'iommu_sva_lock' } }, { alloc: { domain: 'A' } }, { free: 'A' }],
    },
  };

  it('domains: the wait is met by proc0’s unbind taking iommu_sva_lock, and the next step starts inside it (random and PCT)', async () => {
    let inside = 0;
    let runs = 0;
    for (const strategy of ['random', 'pct'] as const) {
      for (let seed = 1; seed <= 20; seed++) {
        const r = await runScenario(s, seed, { strategy });
        expect(r.findings).toEqual([]);
        const lines = steps(r);
        const armed = find(lines, /: drv\/0\[0\]: after proc\/0:0$/);
        const met = find(lines, /^drv0: drv\/0\[1\]: while proc0 holds iommu_sva_lock$/);
        const lock = lastBefore(lines, /^proc0: mutex_lock\(iommu_sva_lock\)$/, met);
        // The acquisition that met it is the unbind's, after drv/0 started waiting — not the bind's.
        expect(lock, `${strategy} seed ${seed}`).toBeGreaterThan(armed);
        const unlock = find(lines, /^proc0: mutex_unlock\(iommu_sva_lock\)$/, lock);
        const released = find(lines, /: drv\/0\[1\]: proc0 had released iommu_sva_lock already$/) >= 0;
        // Either the wait was performed inside the critical section, or the trace says the holder had left.
        expect(met < unlock, `${strategy} seed ${seed}`).toBe(!released);
        if (!released) {
          inside++;
          // ... and then the next step's first point is the actor's very next one.
          expect(find(lines, /^drv0: /, met + 1)).toBe(find(lines, /^drv0: (kzalloc|iommu_domain_alloc|ida_alloc)/, met + 1));
        }
        runs++;
      }
    }
    // Mostly inside: the holder has many points left in its critical section when the wait is met.
    expect(inside).toBeGreaterThan(runs / 2);
  });

  it('a wait never met ends in a hung-task report saying what it waited for', async () => {
    // drv0 waits for itself to hold the lock: a task that exists, and a wait that can never be met.
    const r = await runScenario({ ...DOMAINS, script: { 'drv/0': [{ while: { task: 'drv0', holds: '&group->mutex' } }, { alloc: { domain: 'A' } }, { free: 'A' }] } }, 1);
    expect(kinds(r)).toEqual(['hung_task']);
    expect(r.findings[0]?.text).toMatch(/INFO: task drv0:\d+ blocked for more than 120 seconds[\s\S]*waiting on a task named drv0… to hold &group->mutex/);
  });

  it('a wait on a task the run does not have is refused before the run, listing the tasks', async () => {
    await expect(runScenario({ ...DOMAINS, script: { 'drv/0': [{ while: { task: 'nobody', holds: '&group->mutex' } }, { alloc: { domain: 'A' } }, { free: 'A' }] } }, 1)).rejects.toThrow(
      /drv\/0\[0\]: while: no task is named "nobody" or a name starting so \(the tasks: drv0/,
    );
  });

  it('ioasid: user/1 allocates while user0 holds ioasid_allocator_lock, past a quota checked outside the lock', async () => {
    const race = await loadScenarioFile(join(RACES, '003-scripted-quota-race.yaml'));
    const r = await run({ workload: { name: race.model, params: scenarioParams(race) }, runtime: 'deterministic', strategy: 'random', seed: 1, runs: 200 });
    expect(kinds(r)).toContain('quota');
    const lines = steps(r);
    const met = find(lines, /^user1: user\/1\[1\]: while user0 holds ioasid_allocator_lock$/);
    const lock = lastBefore(lines, /^user0: spin_lock_bh\(ioasid_allocator_lock\)$/, met);
    expect(lock).toBeGreaterThanOrEqual(0);
    expect(find(lines, /^user0: spin_unlock_bh\(ioasid_allocator_lock\)$/, lock)).toBeGreaterThan(met);
    const fixed = await run({ workload: { name: race.model, params: scenarioParams(race, true) }, runtime: 'deterministic', strategy: 'random', seed: 1, runs: 200 });
    expect(fixed.findings).toEqual([]);
  });

  it('sva: proc/1 binds once proc0 holds iommu_sva_lock in its unbind (the process spawns a task that waits)', async () => {
    const sva: ScenarioInput = {
      name: 'x',
      title: 'a script',
      model: 'sva',
      topology: { iommus: 'smmuv3', devices: 1, processes: 2 },
      script: {
        'proc/0': ['bind', { after: 'proc/1:0' }, 'unbind', 'exit'],
        'proc/1': [{ after: 'proc/0:0' }, { while: { task: 'proc0', holds: 'iommu_sva_lock' } }, 'bind', 'unbind', 'exit'],
      },
    };
    for (let seed = 1; seed <= 10; seed++) {
      const r = await runScenario(sva, seed);
      expect(r.findings).toEqual([]);
      expect(r.check.ok, r.check.problems.join('; ')).toBe(true);
      const lines = steps(r);
      const armed = find(lines, /^proc1: armed: while proc0 holds iommu_sva_lock$/);
      const met = find(lines, /^proc1: while proc0 holds iommu_sva_lock$/);
      expect(armed).toBeGreaterThanOrEqual(0);
      // proc/0 is told its step 0 is waited on only once the wait is armed: its unbind comes after.
      const lock = lastBefore(lines, /^proc0: mutex_lock\(iommu_sva_lock\)$/, met);
      expect(lock, `seed ${seed}`).toBeGreaterThan(armed);
      // proc/1's bind (its sys_bind task) starts after the wait was met.
      expect(find(lines, /^proc\/1: while\.held$/)).toBeGreaterThan(met);
      expect(find(lines, /^proc1: mutex_lock\(iommu_sva_lock\)$/, 0)).toBeGreaterThan(met);
    }
  });
});

describe('races/002-pasid-attach-multi-device-group.yaml', () => {
  it('allowed: the other device of the group reaches the attached domain (isolation), and the failing seed replays', async () => {
    const s = await loadScenarioFile(join(RACES, '002-pasid-attach-multi-device-group.yaml'));
    const r = await run({ workload: { name: s.model, params: scenarioParams(s) }, runtime: 'deterministic', strategy: s.explore.strategy, depth: s.explore.depth, seed: s.explore.seed, runs: s.explore.runs });
    expect(kinds(r)).toEqual(['isolation']);
    // Device 1's DMA lands in the page VFIO mapped in its domain for device 0: nothing was attached for device 1.
    expect(r.findings[0]?.title).toMatch(/^iommu-sim: isolation violation: DMA from 0000:00:02\.0 PASID 7 landed in mm\/\d+ \(an I\/O page table's memory/);
    expect(r.findings[0]?.text).toContain('no address space was bound to {device, PASID} when the DMA was issued: it should have faulted');
    // The owner's own results are the kernel's with the policy as written.
    expect(r.check.counters.vfio_unexpected).toBe(0);
    const again = replay(Schedule.decode(r.schedule.encode()));
    expect(again.matches).toBe(true);
    expect(again.findings.map((f) => f.title)).toEqual(r.findings.map((f) => f.title));
  });

  it('refused: the attach is -EINVAL, the other device’s DMA is blocked, no finding within the budget', async () => {
    const s = await loadScenarioFile(join(RACES, '002-pasid-attach-multi-device-group.yaml'));
    const r = await run({ workload: { name: s.model, params: scenarioParams(s, true) }, runtime: 'deterministic', strategy: s.explore.strategy, depth: s.explore.depth, seed: s.explore.seed, runs: s.explore.runs });
    expect(r.executions).toBe(s.explore.runs);
    expect(r.findings).toEqual([]);
    expect(r.check.counters.vfio_unexpected).toBe(0);
    expect(r.check.counters.peer_dmas_translated).toBe(0);
  });

  it('a singleton group with the policy allowed: nothing to reach, no finding', async () => {
    const s = await loadScenarioFile(join(RACES, '002-pasid-attach-multi-device-group.yaml'));
    const r = await run({ workload: { name: s.model, params: { ...scenarioParams(s), groups: 2, groupSize: 1 } }, runtime: 'deterministic', strategy: 'pct', seed: 1, runs: 200 });
    expect(r.findings).toEqual([]);
  });
});
