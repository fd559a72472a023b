// The policy parameters: the choices the seeds argue about (DESIGN.md, "Policies"), each value an alternative
// implementation of a kernel path — they combine wherever their code runs.
import { DEFAULT_DOMAIN_POLICIES } from '../../core/dma-iommu.js';
import { IOPF_ENABLES } from '../../core/io-pgfault.js';
import { MULTI_DEVICE_PASID, PASID_LOOKUPS } from '../../core/iommu.js';
import { IOASID_CHAINS, IOASID_LOCKS } from '../../core/ioasid.js';
import { SVA_USERS } from '../../core/sva-domain.js';
import { FAULT_HANDLINGS, PASID_LIVES, PASID_PLACEMENTS, SVA_NOTIFIERS, SVA_PASID_FREES, type SvaPasidFree, TEARDOWNS } from '../../core/types.js';
import { WORK_QUEUES } from '../../actors/swq-process.js';
import { VFIO_TAKEOVERS } from '../kernel-users.js';
import { int, oneOf, type ParamTable } from './define.js';

/** seed 000's iommu_bind_task(dev, task): take the task's mm with get_task_mm, or use task->mm unreferenced. */
export type TaskMm = 'get_task_mm' | 'raw';
export const TASK_MMS: readonly TaskMm[] = ['get_task_mm', 'raw'];
/** A bond's PASID free (seed 003): at unbind, from the MMU notifier's free_notifier, or deferred from it to a work item. */
export type FreePolicy = SvaPasidFree;
export const FREE_POLICIES: readonly FreePolicy[] = SVA_PASID_FREES;

export const POLICIES = {
  pasidAlloc: oneOf(PASID_PLACEMENTS, 'Where PASIDs come from (seed 000): native (each flavour its own), one system-wide space, per IOMMU (intel idr), device-allocated (AMD v2), SMMU-indexed SSIDs.'),
  teardown: oneOf(TEARDOWNS, "PASID teardown at unbind (seed 000): wait for the device's drain, wait drainTimeoutMs then quarantine the PASID, or free it at once."),
  drainTimeoutMs: int(0, 3_600_000, "teardown=quarantine: how long unbind waits for the drain, in simulated milliseconds."),
  fault: oneOf(FAULT_HANDLINGS, 'Failed page requests (seed 000): the device-driver protocol only, or the driver fault callback (svm ops).'),
  taskMm: oneOf(TASK_MMS, "How iommu_bind_task holds the task's mm (seed 000, script bind-task-exit): get_task_mm's mm_users reference, or task->mm raw."),
  wq: oneOf(WORK_QUEUES, "How processes tag descriptors: dedicated work queues carry their bond's PASID, shared ones ENQCMD's (the task's IA32_PASID, from mm->pasid)."),
  defaultDomain: oneOf(DEFAULT_DOMAIN_POLICIES, 'Default DMA domains at probe (seed 001): none (driver-managed), one per IOMMU instance, or one per device.'),
  vfioTakeover: oneOf(VFIO_TAKEOVERS, 'Whether VFIO may take a device whose host driver still has DMA-API mappings (seed 001): refuse (-EBUSY) or force.'),
  lookup: oneOf(PASID_LOOKUPS, 'iommu_get_domain_for_dev_pasid (seed 002): under group->mutex, or RCU out of group->pasid_array.'),
  users: oneOf(SVA_USERS, 'SVA domain users (seed 002): refcounted per bind, or not (the last unbind frees the domain under a racing lookup).'),
  iopf: oneOf(IOPF_ENABLES, "When a device has its fault param (io-pgfault.c): attach — from the first attach of a domain with a fault handler to its last detach, whose iopf_queue_remove_device answers what is pending (mainline); probe — from before its first bind until the device is released."),
  multiDevicePasid: oneOf(MULTI_DEVICE_PASID, "PASID attach on multi-device groups (seed 002): refused (the kernel's choice, -EINVAL) or allowed (every device of the group)."),
  lock: oneOf(IOASID_LOCKS, "The IOASID allocator's lock (seed 003): a spinlock, or a mutex (which ioasid_free from an RCU callback may not take)."),
  chain: oneOf(IOASID_CHAINS, 'The IOASID notifier chain (seed 003): atomic (its callbacks may not sleep) or blocking (the allocator lock must then be a mutex).'),
  free: oneOf(FREE_POLICIES, "Where a bond's PASID is freed (seed 003): unbind (at its last unbind, under iommu_sva_lock), rcu (ioasid_free() from the bond's MMU notifier free_notifier, an SRCU callback run with bottom halves off: atomic context), or workqueue (deferred from there to a kworker, process context)."),
  pasidLife: oneOf(PASID_LIVES, "How long an mm's PASID lives: allocated at its first bind and freed with the mm by mm_pasid_drop at __mmdrop (mm, mainline), or a bind's, freed at its last unbind (unbind, seed 000)."),
  notifier: oneOf(SVA_NOTIFIERS, 'Who owns the MMU notifier of an SVA bind: the SVA domain, registered at its alloc and put at its free (domain, mainline), or each bond (bond, seed 000). It also picks the era of the AMD driver: mainline pasid.c and ppr.c (domain), or the v2 driver, iommu_v2.c (bond); and of the SMMUv3 SVA code: mainline arm-smmu-v3-sva.c (domain), or its sva_lock era (bond: arm_smmu_sva_bind / arm_smmu_sva_unbind, before the 2024 rework).'),
} satisfies ParamTable;
export type PolicyParam = keyof typeof POLICIES;
