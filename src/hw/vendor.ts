// One IOMMU vendor as the model builds it — as drivers/iommu has each driver register its iommu_ops with the
// vendor-neutral core: the unit's memory (tables, caches, queues), the hardware behind the unit's actor, the
// driver's unit-level state (its queue lock, its page-request thread) and its iommu_ops. The model builder
// (src/workloads/model.ts) goes through this interface and src/hw/vendors.ts alone, so it names no vendor, and each
// vendor's folder holds all of its driver and hardware.
import type { IopfEnable } from '../core/io-pgfault.js';
import type { Oracle } from '../core/oracle.js';
import type { IommuOps } from '../core/ops.js';
import type { Stats } from '../core/stats.js';
import type { DeviceInfo, SvaNotifier } from '../core/types.js';
import type { Kernel } from '../kernel/kernel.js';
import type { MmTable } from '../kernel/mm/mm.js';
import type { CostTable } from './costs.js';
import type { DriverEnv } from './driver.js';
import type { FlavourSpec } from './flavour.js';
import type { IommuUnit, UnitOptions } from './iommu.js';
import type { UnitDriver } from './queue.js';
import type { IommuHardware } from './unit.js';

/** The IOMMU flavours a topology names (the `iommus` parameter). */
export type Flavour = 'vtd' | 'amd' | 'smmuv3';
export const FLAVOURS: readonly Flavour[] = ['vtd', 'amd', 'smmuv3'];

/** What a unit's hardware is given besides its memory. */
export interface HardwareEnv {
  /** Every device of the run, by index (a unit handles only its own). */
  readonly devices: readonly DeviceInfo[];
  readonly mms: MmTable;
  readonly oracle: Oracle;
  readonly stats: Stats;
  /** The task kind of the driver's page-request thread (Vendor.definePrqThread's). */
  readonly prqTask: string;
}

/** What the driver's ops are given besides the drivers' shared environment. */
export interface OpsEnv {
  /** SMMU substream ID bits (the parameter `ssidBits`). */
  readonly ssidBits: number;
  /** Who owns an SVA bind's MMU notifier (the policy `notifier`): the era of a driver's SVA path (AMD's v2 driver: bond). */
  readonly notifier?: SvaNotifier;
}

export interface Vendor {
  readonly flavour: Flavour;
  readonly spec: FlavourSpec;
  /**
   * The hardware's costs in simulated time (src/hw/<vendor>/costs.ts, typed by src/hw/costs.ts): what its
   * hardware hands HwOut.busy, and what docs/costs.md lists. Absent until the vendor fills its table in.
   */
  readonly costs?: CostTable<string>;
  /** Words of the unit's memory per device for its PASID tables (2^pasidBits × 8 when absent). */
  deviceWords?(pasidBits: number): number;
  /** Unit `index`'s memory, for the devices behind it. */
  newUnit(k: Kernel, index: number, devices: readonly DeviceInfo[], opts: UnitOptions, actor: number): IommuUnit;
  /** The hardware behind the unit's actor. */
  newHardware(unit: IommuUnit, env: HardwareEnv): IommuHardware;
  /** The driver's per-unit state: its command-queue lock (qi->q_lock, iommu->lock, cmdq->q.lock). */
  unitDriver(k: Kernel, unit: IommuUnit): UnitDriver;
  /** The driver's page-request thread for one unit (prq_event_thread, the PPR log's, arm_smmu_priq_thread): its task kind. */
  definePrqThread(k: Kernel, drv: UnitDriver, stats: Stats, devices: readonly DeviceInfo[], enable: IopfEnable): string;
  /** The driver's iommu_ops (its kernel functions registered by name, once per kernel). */
  ops(denv: DriverEnv, env: OpsEnv): IommuOps;
}
