// Every preset builds the one topology object and makes its hardware and mm actors in one place
// (src/workloads/topology.ts, hardwareActors): the processes' mms are actors in every preset, the sva preset's
// IOMMU units and devices too, in the order the actor ids assume.
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { domainsTopology } from '../src/workloads/presets/domains.js';
import { ioasidParams, ioasidTopology } from '../src/workloads/presets/ioasid.js';
import { svaParams, svaTopology } from '../src/workloads/presets/sva.js';
import { domainsParams } from '../src/workloads/presets/domains.js';

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
    const t = domainsTopology(domainsParams({ iommus: 2, groups: 3, groupSize: 2, processes: 2 }));
    expect(t.devices.map((d) => [d.group, d.iommu])).toEqual([
      [0, 0],
      [0, 0],
      [1, 1],
      [1, 1],
      [2, 0],
      [2, 0],
    ]);
    expect(names('domains', { processes: 2 })).toEqual(['mm/1', 'mm/2']);
    // The bench's drivers keep actor ids 0..drivers-1.
    expect(names('domains', { script: 'bench', drivers: 2, processes: 1 })).toEqual(['driver/0', 'driver/1', 'mm/1']);
  });

  it("ioasid: a set per VM and an mm actor per process in scenario mode; the benchmarks' drivers only otherwise", () => {
    expect(ioasidTopology(ioasidParams({ vms: 3, quota: 2 })).ioasidSets).toEqual([{ quota: 2 }, { quota: 2 }, { quota: 2 }]);
    expect(names('ioasid', { processes: 2 })).toEqual(['mm/1', 'mm/2']);
    expect(names('ioasid', { mode: 'find-rcu', drivers: 2, bits: 8 })).toEqual(['driver/0', 'driver/1']);
  });
});
