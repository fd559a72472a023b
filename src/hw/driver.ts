// What the three IOMMU drivers share when they implement the core's ops (core/ops.ts): writing an entry one word per
// access, in the order the driver writes it, and the flush sequences built from each unit's commands.
import { IOMMU_DOMAIN } from '../core/iommu.js';
import type { IommuDomain } from '../core/ops.js';
import type { Stats } from '../core/stats.js';
import type { DeviceInfo } from '../core/types.js';
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import { objLoad } from '../kernel/slab.js';
import type { Word } from '../kernel/struct.js';
import type { Command } from './iommu.js';
import { submitSync, type UnitDriver } from './queue.js';

export interface DriverEnv {
  readonly k: Kernel;
  readonly units: readonly UnitDriver[];
  readonly stats: Stats;
}

export function unitOf(env: DriverEnv, dev: DeviceInfo): UnitDriver {
  const u = env.units[dev.iommu];
  if (!u) throw new Error(`no IOMMU unit ${dev.iommu} for ${dev.name}`);
  return u;
}

/**
 * Write fields of {dev, pasid}'s entry in the order given, one WRITE_ONCE per step (`what` names the helper):
 * each field is an accessor of the flavour's entry layout.
 */
export function* writeEntry(env: DriverEnv, t: KTask, dev: DeviceInfo, pasid: number, writes: readonly (readonly [Word, number, string])[]): KGen {
  const pe = entryOf(env, dev, pasid);
  for (const [field, v, what] of writes) {
    yield* env.k.step(t, what, () => {
      field.WRITE_ONCE(pe, v);
    });
  }
}

/** {dev, pasid}'s entry in its IOMMU's table (its word offset). */
export function entryOf(env: DriverEnv, dev: DeviceInfo, pasid: number): number {
  return unitOf(env, dev).unit.entryPtr(dev.index, pasid);
}

export function* flush(env: DriverEnv, t: KTask, dev: DeviceInfo, cmds: readonly Command[]): KGen {
  yield* submitSync(env.k, t, unitOf(env, dev), env.stats, cmds);
}

export function cmd(op: Command['op'], a: number, b: number, c = -1, d = -1): Command {
  return { op, a, b, c, d };
}

/** What a domain's entry points the hardware at: its mm (SVA) or I/O page table (paging, DMA). */
export function domainMm(domain: IommuDomain): MmStruct {
  if (!domain.mm) throw new Error(`set_dev_pasid of a ${domain.type} domain: these drivers install only domains with a page table`);
  return domain.mm;
}

/**
 * release_device detaching the device from the domain its per-device data names (intel's domain_detach_iommu,
 * arm-smmu's arm_smmu_detach_dev under smmu_domain->devices_lock, AMD's detach_device): the driver reads the
 * domain's id on this IOMMU — a KASAN-checked access, so the domain must still be live when the driver runs.
 */
export function* detachOnRelease(env: DriverEnv, t: KTask, domain: IommuDomain, what: string): KGen {
  if (domain.obj === 0) return;
  yield* env.k.step(t, what, () => void objLoad(env.k, t, domain.obj, IOMMU_DOMAIN.offset.asid));
}
