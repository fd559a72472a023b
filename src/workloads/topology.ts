// The topology every preset builds: IOMMU units (any mix of flavours), PCI devices in IOMMU groups behind them,
// processes and their mms, IOASID sets, the kernel's own DMA users — one object, whatever the preset, from which
// the actors of the hardware and the mm layer are made (hardwareActors: the one place their ActorSpecs are made,
// so that giving them other machines is a one-line change).
import type { Flavour } from '../hw/vendor.js';
import type { ActorSpec } from '../runtime/model.js';

export interface UnitTopology {
  readonly index: number;
  readonly flavour: Flavour;
}

export interface DeviceTopology {
  readonly index: number;
  /** As the kernel prints a PCI device: `0000:01:00.0`. */
  readonly name: string;
  /** The IOMMU unit it sits behind. */
  readonly iommu: number;
  /** Its IOMMU group (devices the IOMMU cannot isolate from each other share one). */
  readonly group: number;
}

export interface Topology {
  readonly units: readonly UnitTopology[];
  readonly devices: readonly DeviceTopology[];
  /** Processes, each with its mm (process i: mm i). */
  readonly processes: number;
  /** IOASID sets beside the system set (the ioasid preset's VMs: one each), and each one's quota. */
  readonly ioasidSets: readonly { readonly quota: number }[];
  /** Devices with a kernel DMA user (the first n). */
  readonly kernelUsers: number;
}

/** The PCI name of device d, on bus 1 + d/32 (32 devices a bus, function 0). */
export function pciBusName(d: number): string {
  return `0000:${(1 + Math.floor(d / 32)).toString(16).padStart(2, '0')}:${(d % 32).toString(16).padStart(2, '0')}.0`;
}

/** The PCI name of device i on bus 0 (the domains preset's numbering: 0000:00:01.0 for device 0). */
export function pciSlotName(i: number): string {
  return `0000:00:${(i + 1).toString(16).padStart(2, '0')}.0`;
}

/** `iommus` units of the flavours given (one each, in order) behind which `devices` are dealt round-robin, each in its own group. */
export function flatTopology(flavours: readonly Flavour[], devices: number, processes: number, kernelUsers = 0): Topology {
  return {
    units: flavours.map((flavour, index) => ({ index, flavour })),
    devices: Array.from({ length: devices }, (_, d) => ({ index: d, name: pciBusName(d), iommu: d % flavours.length, group: d })),
    processes,
    ioasidSets: [],
    kernelUsers,
  };
}

/** `groups` groups of `groupSize` devices; group g behind unit g mod units. */
export function groupedTopology(flavours: readonly Flavour[], groups: number, groupSize: number, processes: number): Topology {
  return {
    units: flavours.map((flavour, index) => ({ index, flavour })),
    devices: Array.from({ length: groups * groupSize }, (_, i) => {
      const group = Math.floor(i / groupSize);
      return { index: i, name: pciSlotName(i), iommu: group % flavours.length, group };
    }),
    processes,
    ioasidSets: [],
    kernelUsers: 0,
  };
}

/** No devices: processes and IOASID sets of the quotas given (the ioasid preset: the allocator and its users). */
export function setsTopology(processes: number, quotas: readonly number[]): Topology {
  return { units: [], devices: [], processes, ioasidSets: quotas.map((quota) => ({ quota })), kernelUsers: 0 };
}

/** The machines of the hardware and mm actors (src/actors/iommu-unit.ts, pci-device.ts, mm-context.ts). */
export interface HardwareLogic {
  /** An IOMMU unit's actor logic and input; undefined: the topology has no unit (the ioasid preset's benchmarks). */
  unit?(u: UnitTopology): Pick<ActorSpec, 'logic' | 'input'>;
  device?(d: DeviceTopology): Pick<ActorSpec, 'logic' | 'input'>;
  mm(i: number): Pick<ActorSpec, 'logic' | 'input'>;
}

/**
 * The ActorSpecs of the topology's IOMMU units (`iommu/N` as the preset's hardware names them: `names`), PCI
 * devices and mms (`mm/N+1` for process N), in that order.
 */
export function hardwareActors(topo: Topology, logic: HardwareLogic, names: { unit(u: number): string; device(d: number): string }): ActorSpec[] {
  const specs: ActorSpec[] = [];
  if (logic.unit) for (const u of topo.units) specs.push({ name: names.unit(u.index), ...logic.unit(u) });
  if (logic.device) for (const d of topo.devices) specs.push({ name: names.device(d.index), ...logic.device(d) });
  for (let i = 0; i < topo.processes; i++) specs.push({ name: `mm/${i + 1}`, ...logic.mm(i) });
  return specs;
}
