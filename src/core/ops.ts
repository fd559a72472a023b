// include/linux/iommu.h: the one ops table an IOMMU driver gives the core — struct iommu_ops (per IOMMU
// instance: feature checks, PASID removal, the ops of the domains it allocates) and struct iommu_domain_ops (per
// domain: attach_dev, set_dev_pasid, the IOTLB sync). The vendor drivers (src/hw/<vendor>/) implement
// it; the core reaches a driver only
// through it (dev_iommu_ops) and names no vendor. Member names are mainline's; the few members mainline does not
// have are marked "model:" and say which mainline path they stand for.
import type { KTask } from '../kernel/context.js';
import type { KGen } from '../kernel/kernel.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import type { DomainType } from './iommu.js';
import type { DeviceInfo, PasidPlacement } from './types.js';

/**
 * struct iommu_domain as a driver sees it when asked to install it: its type, the slab object (the kernel's
 * pointer; 0 where the model keeps no object for it: the blocking domain, a seed-000 bond's implicit domain, a
 * DMA-API table attached by dma.ts), and what the hardware walks through it — the SVA domain's domain->mm, or a
 * paging domain's I/O page table (undefined: blocked or identity).
 */
export interface IommuDomain {
  readonly type: DomainType;
  readonly obj: number;
  readonly mm: MmStruct | undefined;
  /** SVM_FLAG_* of the bind that asked for it (SUPERVISOR_MODE: init_mm, privileged requests). */
  readonly flags: number;
}

/** IOMMU_NO_PASID: PASID 0 is the device's RID (its requests without a PASID); PASID attach refuses it. */
export const IOMMU_NO_PASID = 0;

/** IOMMU_DOMAIN_BLOCKED with no object: what {device, PASID} is left with after remove_dev_pasid. */
export const BLOCKED_DOMAIN: IommuDomain = { type: 'blocked', obj: 0, mm: undefined, flags: 0 };

/** struct iommu_domain_ops. */
export interface IommuDomainOps {
  /** Attach the device's RID (its requests without a PASID) to domain. 0 or -errno. */
  attach_dev(t: KTask, domain: IommuDomain, dev: DeviceInfo): KGen<number>;
  /**
   * Point {dev, pasid} at domain: write the PASID-table entry / CD / GCR3 entry, flush what the hardware may
   * cache. `old` is the domain it replaces (undefined: none); on failure the old one must stay installed.
   */
  set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old: IommuDomain | undefined): KGen<number>;
  /**
   * [start, end) of the address space domain walks changed: flush what {dev, pasid} caches of it (IOTLB, ATC).
   * For an SVA domain mainline reaches this from the driver's MMU notifier (arch_invalidate_secondary_tlbs);
   * for a paging domain it is iotlb_sync after an unmap.
   */
  iotlb_sync(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, start: number, end: number): KGen;
}

/** Why a PASID's entry goes: the bond's unbind, or the MMU notifier's release at exit_mmap (entry kept, FPD set). */
export type RemoveWhy = 'unbind' | 'release';

/** struct iommu_ops. */
export interface IommuOps {
  /** model: the driver's name as the kernel prints it (its dev_name prefix). */
  readonly driver: string;
  /** model: the placement this driver's own PASIDs follow when the policy says `native`. */
  readonly nativePasid: Exclude<PasidPlacement, 'native'>;
  /** model: the driver's mn_release tells the device driver first (an invalidate_ctx callback the device driver set). */
  readonly releaseNotifiesDriver: boolean;
  /**
   * dev_enable_feat(dev, IOMMU_DEV_FEAT_SVA): 0, or -errno and why, when this IOMMU cannot do SVA for dev (beyond
   * the PCI capabilities the core checks); `flags` are the bind's SVM_FLAG_*.
   */
  dev_enable_feat(dev: DeviceInfo, feat: 'sva', flags: number): { err: number; why: string };
  /** model: the PASIDs this IOMMU can put in dev's table, [1, dev->iommu->max_pasids - 1]. */
  pasid_range(dev: DeviceInfo): readonly [number, number];
  /** Stop the hardware walking {dev, pasid}: clear the entry, then flush the entry cache, IOTLB and ATC. */
  remove_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, domain: IommuDomain, why: RemoveWhy): KGen;
  /**
   * model: wait until no page request of {dev, pasid} is queued or being handled — the drain mainline does in
   * remove_dev_pasid (its own drain of the page request queue) or through iopf_queue_flush_dev.
   */
  drain_prq(t: KTask, dev: DeviceInfo, pasid: number): KGen;
  /**
   * release_device(dev): the device leaves the IOMMU core (iommu_deinit_device, on BUS_NOTIFY_REMOVED_DEVICE). The
   * driver must stop using the domain its RID is attached to (set it blocking) and free its per-device data: the
   * group's domains are freed after it returns. model: `domain` is what the driver's per-device data points at
   * (the driver's per-device domain pointer), kept by the core. Absent: nothing to do per device.
   */
  release_device?(t: KTask, dev: DeviceInfo, domain: IommuDomain): KGen;
  /** The ops of the domains this driver allocates (paging, and — one table in this model — SVA domains). */
  readonly default_domain_ops: IommuDomainOps;
}
