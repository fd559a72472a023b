// The vendor-neutral IOMMU core's vocabulary (seed 000): devices and their PCI capabilities, bind flags, the
// policies the seeds argue about, and the two ops tables — the one an IOMMU driver registers (struct
// iommu_ops / iommu_domain_ops in drivers/iommu/iommu.c) and the one a device driver registers (the svm ops
// of seed 000: invalidate_pasid, the fault handler, and AMD's device-allocated PASIDs). The core reaches a
// vendor or a device only through these.
import type { KTask } from '../kernel/context.js';
import type { KGen } from '../kernel/kernel.js';
import type { MmStruct } from '../kernel/mm/mm.js';

export type Flavour = 'vtd' | 'amd' | 'smmuv3';
export const FLAVOURS: readonly Flavour[] = ['vtd', 'amd', 'smmuv3'];

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
 * tables exit_mmap is freeing).
 */
export type DriverBug = 'none' | 'no-range-flush' | 'no-release-flush';
export const DRIVER_BUGS: readonly DriverBug[] = ['none', 'no-range-flush', 'no-release-flush'];

export interface SvaPolicies {
  readonly pasidAlloc: PasidPlacement;
  readonly teardown: Teardown;
  readonly fault: FaultHandling;
  /** The bounded wait of `quarantine`, in ms (simulated in the deterministic runtime). */
  readonly drainTimeoutMs: number;
  readonly bug: DriverBug;
}

export interface DeviceCaps {
  readonly ats: boolean;
  readonly pri: boolean;
  readonly pasid: boolean;
  /** Max PASID Width of the PASID capability (SSID bits for an SMMU master). */
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

/** What the IOMMU driver gives the core (struct iommu_ops + the SVA part of iommu_domain_ops). */
export interface IommuOps {
  /** The driver's name as the kernel prints it: `intel-iommu`, `AMD-Vi`, `arm-smmu-v3`. */
  readonly driver: string;
  readonly flavour: Flavour;
  /** The placement this driver uses when the policy says `native`. */
  readonly nativePasid: Exclude<PasidPlacement, 'native'>;
  /** AMD: the mm-release path tells the device driver first (amd_iommu_set_invalidate_ctx_cb). */
  readonly releaseNotifiesDriver: boolean;
  /** 0, or -errno and why, when this IOMMU cannot do SVA for dev (beyond the PCI capabilities). */
  sva_supported(dev: DeviceInfo, flags: number): { err: number; why: string };
  /** PASIDs this IOMMU can put in dev's table: [min, max]. */
  pasid_range(dev: DeviceInfo): readonly [number, number];
  /** Install mm at {dev, pasid}: write the PASID-table / CD / GCR3 entry, flush what the hardware may cache. */
  set_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, flags: number): KGen<number>;
  /** Stop the hardware walking {dev, pasid}: clear the entry, then flush the entry cache, IOTLB and ATC. */
  remove_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, why: 'unbind' | 'release'): KGen;
  /** The mm's page tables changed in [start, end): flush IOTLB and ATC for {dev, pasid}. */
  invalidate_range(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, start: number, end: number): KGen;
  /** Wait until no page request of {dev, pasid} is queued or being handled (intel_drain_pasid_prq). */
  drain_prq(t: KTask, dev: DeviceInfo, pasid: number): KGen;
}

/** What a device driver gives the core (seed 000's iommu_svm_ops, with AMD's callbacks mapped onto it). */
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
  /** The fault handler: a page request the core could not resolve; returns the response code to send. */
  fault?(t: KTask, dev: DeviceInfo, pasid: number, vpn: number, write: boolean): KGen<number>;
  /** Device-allocated PASIDs (AMD IOMMUv2: the driver picks and passes the PASID). */
  alloc_pasid?(t: KTask, dev: DeviceInfo, min: number, max: number): KGen<number>;
  free_pasid?(t: KTask, dev: DeviceInfo, pasid: number): KGen;
  /** The PASIDs it has allocated now (reads only), for the core's leak check. */
  allocated_pasids?(dev: DeviceInfo): number[];
}
