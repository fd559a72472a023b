// drivers/iommu/amd/pasid.c (mainline, since v6.9): SVA on the AMD IOMMU through the core's SVA domain. Binding
// is the SVA domain's set_dev_pasid (iommu_sva_set_dev_pasid: the GCR3 entry of the PASID points at the mm's
// page table); unbinding, amd_iommu_remove_dev_pasid → remove_pdom_dev_pasid → remove_dev_pasid →
// amd_iommu_clear_gcr3, whose update_gcr3 flushes the PASID (iommu.c). The domain's MMU notifier:
// sva_arch_invalidate_secondary_tlbs (amd_iommu_dev_flush_pasid_pages of the range) and sva_mn_release (every
// {device, PASID} of the domain removed). The model: the GCR3 entry being valid stands for the pdom_dev_data on
// the domain's dev_data_list, and the core calls the notifier's callbacks once per {device, PASID} of the
// domain; sva_pdom->lock (a spinlock around these) is not modelled.
import type { IommuDomain } from '../../core/ops.js';
import type { DeviceInfo } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import { EINVAL } from '../../kernel/errno.js';
import type { KGen } from '../../kernel/kernel.js';
import { type DriverEnv, domainMm, unitOf } from '../driver.js';
import { iopfForDomainRemove } from '../queue.js';
import { AMD_PASID_BITS } from './hw.js';
import { gcr3Footprint, gcr3Valid } from './iommu.js';

const P = 'drivers/iommu/amd/pasid.c';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    iommu_sva_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number): KGen<number>;
    amd_iommu_remove_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, old: IommuDomain): KGen;
    remove_pdom_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    remove_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    sva_mn_release(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    sva_arch_invalidate_secondary_tlbs(t: KTask, dev: DeviceInfo, pasid: number, start: number, end: number): KGen;
  }
}

/** is_pasid_valid: PASID 0 is the RID's, and the device's PASIDs are what its capability and the IOMMU allow. */
function isPasidValid(dev: DeviceInfo, pasid: number): boolean {
  return pasid > 0 && pasid < 1 << Math.min(dev.caps.pasidBits, AMD_PASID_BITS);
}

export function defineAmdPasid(env: DriverEnv): void {
  const k = env.k;
  k.fns.define('iommu_sva_set_dev_pasid', P, function* (t, domain, dev, pasid) {
    if (!isPasidValid(dev, pasid)) return -EINVAL;
    return yield* k.fn.amd_iommu_set_gcr3(t, dev, pasid, domainMm(domain));
  });
  k.fns.define('remove_dev_pasid', P, function* (t, dev, pasid) {
    yield* k.fn.amd_iommu_clear_gcr3(t, dev, pasid);
  });
  k.fns.define('remove_pdom_dev_pasid', P, function* (t, dev, pasid) {
    const fp = () => gcr3Footprint(env, dev, pasid);
    if (yield* k.stepOn(t, 'for_each_pdom_dev_data', fp, () => gcr3Valid(env, dev, pasid))) yield* k.fn.remove_dev_pasid(t, dev, pasid);
  });
  // The model also removes a paging domain attached at a PASID this way (its entry is a GCR3 entry too), and
  // drops the device's iopf enable with the SVA domain (the core's iopf_for_domain_remove).
  k.fns.define('amd_iommu_remove_dev_pasid', P, function* (t, dev, pasid, old) {
    yield* k.fn.remove_pdom_dev_pasid(t, dev, pasid);
    yield* iopfForDomainRemove(k, t, unitOf(env, dev), old, dev);
  });
  k.fns.define('sva_mn_release', P, (t, dev, pasid) => k.fn.remove_pdom_dev_pasid(t, dev, pasid));
  // From the TLB flush, in atomic context: the range's IOTLB and ATC entries, spinning on the command buffer.
  k.fns.define('sva_arch_invalidate_secondary_tlbs', P, (t, dev, pasid, start, end) =>
    k.fn.amd_iommu_dev_flush_pasid_pages(t, dev, pasid, [start, end]),
  );
}
