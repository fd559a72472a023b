// The vendor-neutral IOMMU core's vocabulary (seed 000): devices and their PCI capabilities, bind flags, the
// policies the seeds argue about, and the ops a device driver registers (the svm ops of seed 000:
// invalidate_pasid, the fault handler, and device-allocated PASIDs). The IOMMU driver's ops table
// (struct iommu_ops / iommu_domain_ops) is in ops.ts. The core reaches a vendor or a device only through these.
import type { KTask } from '../kernel/context.js';
import type { KGen } from '../kernel/kernel.js';
import type { Footprint } from '../runtime/footprint.js';
import type { IoasidLock } from './ioasid.js';

/** The IOMMU driver's ops (include/linux/iommu.h) live in ops.ts; re-exported for the importers of this file. */
export type { IommuOps } from './ops.js';

/** SVM_FLAG_PRIVATE_PASID: a new PASID for this bind, even if the mm has one (seed 000). */
export const SVM_FLAG_PRIVATE_PASID = 1;
/** SVM_FLAG_SUPERVISOR_MODE: bind the kernel address space (init_mm). */
export const SVM_FLAG_SUPERVISOR_MODE = 2;

/** Where PASIDs come from (DESIGN.md, policy "PASID allocation"). `native`: each driver's own. */
export type PasidPlacement = 'system' | 'per-iommu' | 'device' | 'ssid' | 'native';
export const PASID_PLACEMENTS: readonly PasidPlacement[] = ['native', 'system', 'per-iommu', 'device', 'ssid'];
/** What unbind does about DMA still in flight (policy "PASID teardown"). */
export type Teardown = 'drain' | 'quarantine' | 'at-once';
export const TEARDOWNS: readonly Teardown[] = ['drain', 'quarantine', 'at-once'];
/** Who hears of a page request the core could not resolve (policy "fault handling"). */
export type FaultHandling = 'callback' | 'protocol';
export const FAULT_HANDLINGS: readonly FaultHandling[] = ['callback', 'protocol'];

/**
 * Planted driver bugs, the negative controls of the oracles: skip the flush of invalidate_range (IOTLB and ATC
 * entries outlive a munmap), or the teardown in the MMU notifier's release (the hardware keeps walking page
 * tables exit_mmap is freeing); or iommu-sva.c before "iommu/sva: Restore SVA handle sharing" (no handle shared
 * per (mm, device): every bind a handle of its own, every unbind a detach); or io-pgfault.c before "iommu: Use
 * refcount for fault data access" (an iopf group holding no reference of the device's fault param); or the TLB
 * gather's tlb_end_vma before "mm: mmu_notifier fix for tlb_end_vma" (kernel/mm/mmu_gather.ts).
 */
export type DriverBug = 'none' | 'no-range-flush' | 'no-release-flush' | 'no-handle-sharing' | 'iopf-unreferenced-group' | 'tlb-end-vma-no-notify';
export const DRIVER_BUGS: readonly DriverBug[] = ['none', 'no-range-flush', 'no-release-flush', 'no-handle-sharing', 'iopf-unreferenced-group', 'tlb-end-vma-no-notify'];

export interface SvaPolicies {
  readonly pasidAlloc: PasidPlacement;
  readonly teardown: Teardown;
  readonly fault: FaultHandling;
  /** The bounded wait of `quarantine`, in ms (simulated in the deterministic runtime). */
  readonly drainTimeoutMs: number;
  readonly bug: DriverBug;
  /** The IOASID allocator's lock (seed 003), for the system placement's PASIDs: spinlock unless set. */
  readonly ioasidLock?: IoasidLock;
  /** Where a bond's PASID is freed (seed 003): at unbind, or from the MMU notifier's free_notifier (SRCU callback). */
  readonly free?: SvaPasidFree;
  /** How long an mm's PASID lives: mainline's (the mm's, until __mmdrop) unless set. */
  readonly pasidLife?: PasidLife;
  /** Who owns the MMU notifier: mainline's SVA domain unless set. */
  readonly notifier?: SvaNotifier;
}

/**
 * An mm's PASID lifetime (policy "PASID lifetime"): allocated at the mm's first bind and freed with the mm by
 * mm_pasid_drop at __mmdrop (mainline, `mm`), or a bind's, freed at its last unbind (seed 000, `unbind`).
 */
export type PasidLife = 'mm' | 'unbind';
export const PASID_LIVES: readonly PasidLife[] = ['mm', 'unbind'];
/** The MMU notifier's owner (policy "SVA notifier"): the SVA domain (mainline, `domain`) or each bond (seed 000, `bond`). */
export type SvaNotifier = 'domain' | 'bond';
export const SVA_NOTIFIERS: readonly SvaNotifier[] = ['domain', 'bond'];

/**
 * PASID free of a bond with an MMU notifier (seed 003): at unbind; from the notifier's free_notifier (an SRCU
 * callback, softirq); or deferred from there to a work item (a kworker, process context).
 */
export type SvaPasidFree = 'unbind' | 'rcu' | 'workqueue';
export const SVA_PASID_FREES: readonly SvaPasidFree[] = ['unbind', 'rcu', 'workqueue'];

export interface DeviceCaps {
  readonly ats: boolean;
  readonly pri: boolean;
  readonly pasid: boolean;
  /** Max PASID Width of the PASID capability (substream ID bits where the IOMMU calls PASIDs so). */
  readonly pasidBits: number;
}

/** struct device as the core sees it: fixed by the topology. */
export interface DeviceInfo {
  readonly index: number;
  /** A PCI address, as the kernel prints it: `0000:00:02.0`. */
  readonly name: string;
  readonly iommu: number;
  readonly caps: DeviceCaps;
  /** The device's actor (hardware). */
  readonly actor: number;
  /** Trusted devices may bind supervisor (init_mm). */
  readonly trusted: boolean;
}

/** PCI page response codes (PCIe r6 10.4.2.2). */
export const RESP_SUCCESS = 0;
export const RESP_INVALID = 1;
export const RESP_FAILURE = 0xf;

/** What a device driver gives the core (seed 000's iommu_svm_ops, with the vendors' device-driver callbacks mapped onto it). */
export interface SvmOps {
  /**
   * Ask the device to stop using pasid and wait until it has ("can basically take for ever"). With a timeout
   * (ms), returns false if the device had not drained by then.
   */
  invalidate_pasid(t: KTask, dev: DeviceInfo, pasid: number, timeoutMs?: number): KGen<boolean>;
  /** Let the device use pasid again (its PASID register is programmed before the first DMA). */
  start_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen;
  /** Has the device finished every DMA under pasid since it was told to stop? (reads only) */
  drained(dev: DeviceInfo, pasid: number): boolean;
  /** The shared words drained(dev, pasid) reads (footprint.ts; pure): absent, the PASID reclaim takes the fallback lock. */
  drainedFootprint?(dev: DeviceInfo, pasid: number): Footprint;
  /** The fault handler: a page request the core could not resolve; returns the response code to send. */
  fault?(t: KTask, dev: DeviceInfo, pasid: number, vpn: number, write: boolean): KGen<number>;
  /** Device-allocated PASIDs (the device driver picks and passes the PASID). */
  alloc_pasid?(t: KTask, dev: DeviceInfo, min: number, max: number): KGen<number>;
  free_pasid?(t: KTask, dev: DeviceInfo, pasid: number): KGen;
  /** The PASIDs it has allocated now (reads only), for the core's leak check. */
  allocated_pasids?(dev: DeviceInfo): number[];
}
