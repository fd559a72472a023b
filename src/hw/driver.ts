// What the three IOMMU drivers share when they implement the core's ops (core/ops.ts): the attach of a domain the
// core attaches through a group (compatibility, the per-{device, PASID} allocation, replace), the release-time
// detach, and the attach path's fault injection and planted bug.
import { DOM, IOMMU_DOMAIN } from '../core/iommu.js';
import type { IommuDomain } from '../core/ops.js';
import type { Stats } from '../core/stats.js';
import type { DeviceInfo } from '../core/types.js';
import type { KTask } from '../kernel/context.js';
import { EINVAL, EOPNOTSUPP } from '../kernel/errno.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import { objLoad } from '../kernel/slab.js';
import type { Command } from './iommu.js';
import type { UnitDriver } from './queue.js';

export interface DriverEnv {
  readonly k: Kernel;
  readonly units: readonly UnitDriver[];
  readonly stats: Stats;
  /** The fault injection of the drivers' per-{device, PASID} allocation, when the model has it. */
  readonly faults?: EntryFaults;
  /** The planted bug of the attach path. */
  readonly attachBug?: AttachBug;
  /** The mm of an id (what an entry names), for a teardown that knows no domain (the blocked domain's). */
  mmOf?(id: number): MmStruct | undefined;
}

export function unitOf(env: DriverEnv, dev: DeviceInfo): UnitDriver {
  const u = env.units[dev.iommu];
  if (!u) throw new Error(`no IOMMU unit ${dev.iommu} for ${dev.name}`);
  return u;
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

/**
 * A planted bug of the attach path (the oracles' negative control): a failing set_dev_pasid clears the entry; VT-d's
 * replace rewrites the present entry in place (src/hw/intel/pasid.ts: the torn-entry oracle's control).
 */
export type AttachBug = 'none' | 'clear-on-failure' | 'pasid-replace-in-place';
export const ATTACH_BUGS: readonly AttachBug[] = ['none', 'clear-on-failure', 'pasid-replace-in-place'];

/**
 * model: the fault-injection knob of a driver's per-{device, PASID} allocation (VT-d's dev_pasid_info, the SMMU's
 * master_domain, AMD's pdom_dev_data), as a debugfs fault attribute would arm it: the errno the next allocation
 * for {dev, pasid} fails with, taken (cleared) by that allocation. Per entry, so that attachments racing with the
 * one under test are not hit.
 */
export class EntryFaults {
  private readonly armed: number;

  constructor(
    private readonly k: Kernel,
    devices: number,
    private readonly pasids: number,
  ) {
    this.armed = k.statics.alloc(Math.max(1, devices * pasids), 'set_dev_pasid fault injection');
  }

  private at(dev: DeviceInfo, pasid: number): number {
    return this.k.mem.statics + this.armed + dev.index * this.pasids + pasid;
  }

  /** Arm: the next allocation for {dev, pasid} fails with err (a write of the fault attribute: one step). */
  *arm(t: KTask, dev: DeviceInfo, pasid: number, err: number): KGen {
    const at = this.at(dev, pasid);
    yield* this.k.stepOn(t, `fail-nth: ${dev.name} PASID ${pasid} ${err}`, [at], () => void Atomics.store(this.k.i32, at, err));
  }

  /** The errno armed for {dev, pasid} (0: none), disarmed (perform only). */
  take(dev: DeviceInfo, pasid: number): number {
    return pasid < this.pasids ? Atomics.exchange(this.k.i32, this.at(dev, pasid), 0) : 0;
  }
}

/** What a driver does to {dev, pasid}'s entry for a domain the core attaches (its own entry format). */
export interface EntryOps {
  /** The entry is present now. */
  present(dev: DeviceInfo, pasid: number): boolean;
  /** Write a fresh entry (not present) pointing at mm. */
  install(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, domain: IommuDomain): KGen<number>;
  /** Point a present entry at mm with no window where it points nowhere, then flush what cached the old one. */
  replace(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, domain: IommuDomain): KGen;
  /** Tear the entry down (clear, flush). */
  remove(t: KTask, dev: DeviceInfo, pasid: number, domain: IommuDomain): KGen;
}

/**
 * set_dev_pasid (and attach_dev, PASID 0) of a domain the core attaches through a group — a paging domain, the
 * blocked domain — as the drivers do it: refuse a domain of another IOMMU instance (-EINVAL: VT-d's
 * paging_domain_compatible, the SMMU's arm_smmu_attach_prepare), allocate the per-{device, PASID} record (which
 * may fail: EntryFaults), then write the entry — over the old domain's when there is one (a replace). On a
 * failure the old domain stays installed; `clearOnFailure` is the planted bug that tears it down instead.
 */
export function* attachDomain(env: DriverEnv, t: KTask, ops: EntryOps, domain: IommuDomain, dev: DeviceInfo, pasid: number, clearOnFailure: boolean): KGen<number> {
  const k = env.k;
  if (domain.type === 'blocked' || domain.type === 'identity') {
    // Blocked: nothing translates; identity has no page table these drivers can point an entry at.
    if (domain.type === 'identity') return -EOPNOTSUPP;
    if (ops.present(dev, pasid)) yield* ops.remove(t, dev, pasid, domain);
    return 0;
  }
  const err = yield* k.step(t, 'domain_add_dev_pasid', () => {
    if (domain.obj !== 0 && objLoad(k, t, domain.obj, DOM.iommu) - 1 !== dev.iommu) return -EINVAL;
    return env.faults?.take(dev, pasid) ?? 0;
  });
  if (err !== 0) {
    if (clearOnFailure && ops.present(dev, pasid)) yield* ops.remove(t, dev, pasid, domain);
    return err;
  }
  const mm = domainMm(domain);
  if (ops.present(dev, pasid)) {
    yield* ops.replace(t, dev, pasid, mm, domain);
    return 0;
  }
  return yield* ops.install(t, dev, pasid, mm, domain);
}
