// The fault parameters: planted bugs (the oracles' negative controls), misbehaving hardware and subscribers,
// allocation failures, and patches under review loaded as extensions.
import { SLEEPERS } from '../../core/ioasid-subscribers.js';
import { DRIVER_BUGS } from '../../core/types.js';
import { MISBEHAVIOURS } from '../../hw/pci/device.js';
import { MM_BUGS } from '../../kernel/mm/mm.js';
import { int, oneOf, type ParamTable, text } from './define.js';
import { patchListError } from '../patch-loader.js';

import { ATTACH_BUGS, type AttachBug } from '../../hw/driver.js';
import { IOMMUFD_BUGS, type IommufdBug } from '../../core/iommufd/index.js';
/**
 * domains: a failing set_dev_pasid clears the entry it must leave alone (a value of the drivers' attach path);
 * iommufd's replace answers the old handle's faults from the new hw_pagetable's fault object (its VMMs').
 */
export type DomainsBug = AttachBug | IommufdBug;
export const DOMAINS_BUGS: readonly DomainsBug[] = [...new Set([...ATTACH_BUGS, ...IOMMUFD_BUGS])];
/** ioasid: the allocator's quota checked outside its lock; VFIO stopping the chain on sets not its own. */
export type IoasidWorkloadBug = 'none' | 'unlocked-quota' | 'notify-stop';
export const IOASID_WORKLOAD_BUGS: readonly IoasidWorkloadBug[] = ['none', 'unlocked-quota', 'notify-stop'];

/** Every planted bug of the model; a preset takes those its code paths have. */
export const BUGS: readonly string[] = [...new Set([...DRIVER_BUGS, ...DOMAINS_BUGS, ...IOASID_WORKLOAD_BUGS, ...MM_BUGS])];

function failAllocError(v: string): string | undefined {
  return v === '' || /^[\w-]+:[1-9]\d*$/.test(v) ? undefined : `expected cache:n (e.g. iommu_domain:2), got ${JSON.stringify(v)}`;
}

export const FAULTS = {
  bug: oneOf(
    BUGS,
    "A planted bug, to see the oracles fire: no-range-flush (invalidate_range skips the IOTLB/ATC flush), no-release-flush (release skips the teardown), no-handle-sharing (iommu_sva_bind_device before \"iommu/sva: Restore SVA handle sharing\": every bind a handle of its own), iopf-unreferenced-group (an iopf group holds no reference of the device's fault param, io-pgfault.c before a74c077b9021), tlb-end-vma-no-notify (tlb_end_vma before fd1102f0aade resets the TLB gather's range without telling the secondary TLBs), clear-on-failure (a failing set_dev_pasid clears the entry), pasid-replace-in-place (VT-d's intel_pasid_replace_first_level rewrites the present entry in place, *pte = new_pte, as mainline does since v6.14: the torn-entry oracle's control), unlocked-quota (ioasid_alloc checks the set's quota outside the lock), notify-stop (VFIO stops the notifier chain on sets not its own), pasid-drop-at-mmput (__mmput drops the mm's PASID, kernel/fork.c before 2667ed10d9f0: the PASID goes with the address space while the devices' release still uses it), pgtable-free-before-flush (free_pgtables frees page-table pages at once, not through the TLB gather: an IOMMU's paging-structure cache still points at them), kernel-pgtable-free-no-sva-flush (pagetable_free_kernel frees a kernel page-table page at once, before e37d5a2d60a3: no iommu_sva_invalidate_kva_range, so an IOMMU that walked a process's kernel half still caches a pointer to it).",
  ),
  misbehave: oneOf(MISBEHAVIOURS, 'A misbehaving device: slow or no drain of a stopped PASID, DMA after stop, lost page responses, surprise removal, no ATC invalidation response, stray DMA.'),
  misbehaveDevice: int(-1, 1023, 'The misbehaving device (-1: all of them).'),
  failAlloc: text("Allocation failure injection, cache:n: the nth allocation from that slab cache fails ('' for none).", failAllocError, 'cache:n'),
  sleeper: oneOf(SLEEPERS, 'An IOASID notifier subscriber whose callback takes a mutex (seed 003: a sleeping subscriber on an atomic chain).'),
  extension: text("A patch under review, the older spelling of a one-file `patches` (applied first); '' for none.", undefined, 'file.cjs'),
  patches: text(
    "Patches under review, applied in order once the model is built (src/workloads/patch-loader.ts): modules (.cjs, .js, .mjs, .ts) whose extend(ctx) replaces or wraps kernel functions by name. Comma-separated (or a JSON array); relative names from the current directory; '' for none.",
    patchListError,
    'a.cjs,b.ts',
  ),
} satisfies ParamTable;
export type FaultParam = keyof typeof FAULTS;

