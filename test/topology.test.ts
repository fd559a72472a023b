// Every preset builds the one topology object and makes its hardware and mm actors in one place
// (src/workloads/topology.ts, hardwareActors): IOMMU units, PCI devices and the processes' mms are actors in
// every preset (the ioasid benchmarks have none of them), in the order the actor ids assume; kernel_init boots
// the units and devices of every preset (deterministic runtime, fixed seed).
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { domainsTopology } from '../src/workloads/presets/domains.js';
import { ioasidParams, ioasidTopology } from '../src/workloads/presets/ioasid.js';
import { svaParams, svaTopology } from '../src/workloads/presets/sva.js';
import { domainsParams } from '../src/workloads/presets/domains.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import { createScheduler } from '../src/runtime/schedulers/index.js';

/** One execution of the preset from seed 1: its actors' final states, and its findings. */
function runOnce(model: string, params: Record<string, string | number | boolean>) {
  const workload = buildWorkload(model, params);
  const scheduler = createScheduler('random', { seed: 1, depth: 3 });
  scheduler.newExecution();
  const r = runDeterministic({ workload, seed: 1, scheduler, keepGoing: true });
  return { states: Object.fromEntries(r.finals.map((f) => [f.name, f.state])), findings: r.findings, ok: r.check.ok };
}

const names = (model: string, params: Record<string, string | number | boolean>) => buildWorkload(model, params).actors.map((a) => a.name);

describe('the topology of every preset', () => {
  it('sva: units, then devices, then mms, then processes', () => {
    const n = names('sva', { iommus: 'vtd,smmuv3', devices: 3, processes: 2 });
    expect(n.filter((x) => x.startsWith('mm/'))).toEqual(['mm/1', 'mm/2']);
    expect(n.slice(-2)).toEqual(['proc/0', 'proc/1']);
    expect(n.length).toBe(2 + 3 + 2 + 2);
    const t = svaTopology(svaParams({ iommus: 'vtd,smmuv3', devices: 3 }));
    expect(t.units.map((u) => u.flavour)).toEqual(['vtd', 'smmuv3']);
    expect(t.devices.map((d) => d.iommu)).toEqual([0, 1, 0]);
  });

  it('domains: devices in groups behind the units, and an mm actor per process', () => {
    const t = domainsTopology(domainsParams({ iommus: 'vtd,smmuv3', groups: 3, groupSize: 2, processes: 2 }));
    expect(t.units.map((u) => u.flavour)).toEqual(['vtd', 'smmuv3']);
    expect(t.devices.map((d) => [d.group, d.iommu])).toEqual([
      [0, 0],
      [0, 0],
      [1, 1],
      [1, 1],
      [2, 0],
      [2, 0],
    ]);
    expect(names('domains', { processes: 2 })).toEqual(['dmar0', 'dev/0000:00:01.0', 'mm/1', 'mm/2']);
    expect(names('domains', { iommus: 'vtd,vtd', groups: 2, groupSize: 1, processes: 1 })).toEqual(['dmar0', 'dmar1', 'dev/0000:00:01.0', 'dev/0000:00:02.0', 'mm/1']);
    // The bench's drivers keep actor ids 0..drivers-1.
    expect(names('domains', { script: 'bench', drivers: 2, processes: 1 })).toEqual(['driver/0', 'driver/1', 'dmar0', 'dev/0000:00:01.0', 'mm/1']);
  });

  it("ioasid: a set per VM and an mm actor per process in scenario mode; the benchmarks' drivers only otherwise", () => {
    expect(ioasidTopology(ioasidParams({ vms: 3, quota: 2 })).ioasidSets).toEqual([{ quota: 2 }, { quota: 2 }, { quota: 2 }]);
    expect(names('ioasid', { processes: 2 })).toEqual(['dmar0', 'dev/0000:01:00.0', 'mm/1', 'mm/2']);
    expect(names('ioasid', { processes: 0, vms: 1 })).toEqual([]);
    expect(names('ioasid', { mode: 'find-rcu', drivers: 2, bits: 8 })).toEqual(['driver/0', 'driver/1']);
  });

  it('domains: kernel_init enables the units and probes, binds and enables the devices before the race runs; each process tells its mm actor', () => {
    const r = runOnce('domains', { iommus: 'vtd,vtd', groups: 2, groupSize: 1, processes: 2 });
    expect(r.findings).toEqual([]);
    expect(r.ok).toBe(true);
    expect([r.states.dmar0, r.states.dmar1]).toEqual(['idle', 'idle']);
    // Each device DMA'd under its process's PASID, which the unbind stopped and the device drained.
    expect([r.states['dev/0000:00:01.0'], r.states['dev/0000:00:02.0']]).toEqual(['drained', 'drained']);
    // Exec'd, bound, unbound: the mm keeps its PASID (mainline's mm->pasid, dropped only at __mmdrop), so its
    // actor stays bound.
    expect([r.states['mm/1'], r.states['mm/2']]).toEqual(['bound', 'bound']);
  });

  it('ioasid: the units and devices boot, and each process tells its mm actor the mm went live, bound and away', () => {
    const r = runOnce('ioasid', { processes: 2, vms: 0, bits: 8 });
    expect(r.findings).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.states.dmar0).toBe('idle');
    // The device DMA'd under the processes' PASIDs, which their unbinds stopped and the device drained.
    expect(r.states['dev/0000:01:00.0']).toBe('drained');
    // exit_mmap has run (dead), or the bond's reference went too (freed): never still live or bound.
    for (const mm of ['mm/1', 'mm/2']) expect(['dead', 'freed']).toContain(r.states[mm]);
  });
});
