// The hardware of a preset whose kernel paths do not yet drive it (ioasid; TODO(#15): its preset moves onto
// model.ts's buildModel, then this file goes): the topology's IOMMU units
// (hw/iommu.ts, their queues and the driver's page-request thread) and PCI devices (hw/pci/device.ts), booted by
// kernel_init (hw/boot.ts: queues enabled, devices probed, bound and their PCIe capabilities enabled), and the
// lifecycle machines of their actors. The sva preset builds the same pieces with its own parameters (sva.ts).
import type { DeviceInfo, Flavour } from '../core/types.js';
import type { Sva } from '../core/iommu-sva.js';
import { Oracle } from '../core/oracle.js';
import { Stats } from '../core/stats.js';
import { AMD } from '../hw/amd/amd.js';
import { type Boot, defineBoot } from '../hw/boot.js';
import type { FlavourSpec } from '../hw/flavour.js';
import { DEFAULT_UNIT, IommuUnit } from '../hw/iommu.js';
import { ATC_ENTRIES, PciDevice } from '../hw/pci/device.js';
import { definePrqThread, defineUnitDriver } from '../hw/queue.js';
import { SMMUV3 } from '../hw/smmuv3/smmuv3.js';
import { IommuHardware } from '../hw/unit.js';
import { VTD } from '../hw/vtd/vtd.js';
import type { Kernel } from '../kernel/kernel.js';
import type { MmTable } from '../kernel/mm/mm.js';
import type { Wire } from '../runtime/model.js';
import { iommuUnitMachine } from '../actors/iommu-unit.js';
import type { Refusals } from '../actors/lifecycle.js';
import { pciDeviceMachine } from '../actors/pci-device.js';
import type { HardwareLogic, Topology } from './topology.js';

export const FLAVOUR_SPECS: Readonly<Record<Flavour, FlavourSpec>> = { vtd: VTD, amd: AMD, smmuv3: SMMUV3 };

/**
 * What a page request or a device's DMA needs from the SVA layer. The preset using this file issues neither
 * through the hardware yet, so it passes NO_SVA_PATH.
 */
export type SvaPath = Pick<Sva, 'boundMm' | 'handleIopf'>;

/** The hardware's SVA path where the preset's DMA does not go through the devices: reaching it is a model bug. */
export const NO_SVA_PATH: SvaPath = {
  boundMm(): number {
    throw new Error('iommu-sim: this preset issues no DMA through the PCI device model');
  },
  // biome-ignore lint/correctness/useYield: unreachable, it throws
  *handleIopf(): Generator<never, number> {
    throw new Error('iommu-sim: this preset queues no page request on the IOMMU unit model');
  },
};

/** Static words the units and devices of a topology take (their queues, caches and per-PASID state). */
export function hardwareWords(topo: Topology, pasidBits: number): number {
  const o = DEFAULT_UNIT;
  const unit = 64 * (o.iotlbEntries + o.pcacheEntries * 2 + o.queueDepth + o.prqDepth) + 256;
  const device = (1 << pasidBits) * 16 + 16 * ATC_ENTRIES + 256;
  return topo.units.length * unit + topo.devices.length * device;
}

export interface PresetHardware {
  readonly units: readonly IommuUnit[];
  readonly devices: readonly PciDevice[];
  readonly boot: Boot;
  /** The HardwareLogic of the units and devices (mm: the preset's). */
  logic(refusals: Refusals): Required<Pick<HardwareLogic, 'unit' | 'device'>>;
}

/**
 * The topology's units and devices; `infos` are its devices as the kernel knows them (`actor` set to their
 * actors' ids), `unitActor(u)` the units' actor ids; kernel_init spawns `userTasks` once the hardware is configured.
 */
export function buildPresetHardware(
  k: Kernel,
  topo: Topology,
  env: { infos: readonly DeviceInfo[]; mms: MmTable; sva: SvaPath; unitActor(u: number): number; userTasks: readonly { task: string; args: Wire; name: string }[] },
): PresetHardware {
  const oracle = Oracle.of(k);
  const stats = new Stats(k);
  const units = topo.units.map((u) => new IommuUnit(k, u.index, FLAVOUR_SPECS[u.flavour], env.infos.filter((d) => d.iommu === u.index), DEFAULT_UNIT, env.unitActor(u.index)));
  const prqTasks = units.map((u) => definePrqThread(k, defineUnitDriver(k, u), env.sva, stats, env.infos));
  const hardware = units.map((u, i) => new IommuHardware(u, env.infos, env.mms, oracle, stats, prqTasks[i] as string));
  const devices = env.infos.map(
    (info) =>
      new PciDevice(
        { k, sva: env.sva, oracle, stats, pm: env.mms.pm, iommuActor: env.unitActor(info.iommu), ownerName: (o) => `owner ${o}`, completion: () => undefined, submitter: () => 0 },
        info,
        'none',
      ),
  );
  k.onAttach(() => {
    for (const h of hardware) h.reset();
    for (const d of devices) d.reset();
  });
  const boot = defineBoot(k, units, devices, env.userTasks);
  const step = (): number => k.deliveryStep;
  return {
    units,
    devices,
    boot,
    logic: (refusals) => ({
      unit: (u) => ({ logic: iommuUnitMachine(hardware[u.index] as IommuHardware, env.unitActor(u.index), step, refusals) }),
      device: (d) => ({ logic: pciDeviceMachine(devices[d.index] as PciDevice, (env.infos[d.index] as DeviceInfo).actor, step, refusals) }),
    }),
  };
}
