// drivers/iommu/intel/cache.c: a domain's cache tags (one per {IOMMU, DID, PASID}, and one per device with ATS) and
// their flush — cache_tag_flush_range computes the naturally aligned range that covers [start, end)
// (calculate_psi_aligned_address), batches a PASID-based IOTLB invalidation (qi_batch_add_piotlb) and a device-TLB
// invalidation with PASID (qi_batch_add_pasid_dev_iotlb) and submits the batch, waiting for it
// (qi_batch_flush_descs → qi_submit_sync). The model's tags are the ones of {dev, pasid}: its DID is the one
// its PASID entry holds.
import type { DeviceInfo } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import type { DriverEnv } from '../driver.js';
import { vtdOf } from './dmar.js';
import { pciSid } from './hw.js';
import { PASID_DID_MASK } from './pasid-entry.js';
import { MAX_AGAW_PFN_WIDTH, type QiDesc, qi_desc_dev_iotlb_pasid, qi_desc_piotlb } from './qi.js';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    cache_tag_flush_range(t: KTask, dev: DeviceInfo, pasid: number, start: number, end: number): KGen;
    /** model: in pages; the kernel returns the address and writes *_pages and *_mask. */
    calculate_psi_aligned_address(start: number, end: number): PsiAligned;
    /** iommu.h's descriptor builders (pure: the qi_desc they fill is their result), in pages. */
    qi_desc_piotlb(did: number, pasid: number, vpn: number, npages: number): QiDesc;
    qi_desc_dev_iotlb_pasid(sid: number, pfsid: number, pasid: number, qdep: number, vpn: number, sizeOrder: number): QiDesc;
  }
}

/** The naturally aligned block calculate_psi_aligned_address returns: first page, pages, order. */
export type PsiAligned = { vpn: number; pages: number; mask: number };

/**
 * calculate_psi_aligned_address, in pages: the first page and the order of the smallest naturally aligned block
 * holding [start, end).
 */
export function calculatePsiAligned(start: number, end: number): PsiAligned {
  const pages = Math.max(1, end - start);
  let mask = Math.ceil(Math.log2(pages));
  const bitmask = 2 ** mask - 1;
  if ((start & bitmask) !== 0) {
    const endPfn = start + pages - 1;
    const shared = ~(start ^ endPfn) & ~bitmask;
    mask = shared !== 0 ? 31 - Math.clz32(shared & -shared) : MAX_AGAW_PFN_WIDTH;
  }
  const vpn = mask >= 31 ? 0 : start & ~(2 ** mask - 1);
  return { vpn, pages: 2 ** Math.min(mask, 31), mask };
}

/** cache.c's kernel functions, by name. */
export function defineIntelCache(env: DriverEnv): void {
  const k = env.k;
  k.fns.defineSync('calculate_psi_aligned_address', 'drivers/iommu/intel/cache.c', calculatePsiAligned);
  k.fns.defineSync('qi_desc_piotlb', 'drivers/iommu/intel/iommu.h', qi_desc_piotlb);
  k.fns.defineSync('qi_desc_dev_iotlb_pasid', 'drivers/iommu/intel/iommu.h', qi_desc_dev_iotlb_pasid);
  k.fns.define('cache_tag_flush_range', 'drivers/iommu/intel/cache.c', function* (t, dev, pasid, start, end) {
    const u = vtdOf(env, dev.iommu).unit;
    const p = u.pasidEntryPtr(dev.index, pasid);
    const did = p === 0 ? 0 : u.view.entry.val.READ_ONCE(p, 2) & PASID_DID_MASK;
    const all = start < 0;
    const { vpn, pages, mask } = all ? { vpn: 0, pages: -1, mask: MAX_AGAW_PFN_WIDTH } : k.fn.calculate_psi_aligned_address(start, end);
    const sid = pciSid(dev.name);
    const batch: QiDesc[] = [k.fn.qi_desc_piotlb(did, pasid, vpn, pages)];
    if (dev.caps.ats) batch.push(k.fn.qi_desc_dev_iotlb_pasid(sid, sid, pasid, 0, vpn, mask));
    yield* k.fn.qi_submit_sync(t, dev.iommu, batch, 0);
  });
}
