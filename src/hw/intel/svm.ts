// drivers/iommu/intel/svm.c: the SVA domain's set_dev_pasid (intel_svm_set_dev_pasid), the MMU notifier's
// release (intel_mm_release: the mm is going, its PASID entry is cleared with FPD set so that DMA still in flight
// faults quietly) and its secondary-TLB invalidation (intel_arch_invalidate_secondary_tlbs, from the CPU's TLB
// flush, through the domain's cache tags: cache.c). Also the driver's subscriber of the IOASID notifier chain
// of the seed-003 series (intel_svm_ioasid_notify: its struct intel_svm per PASID, under pasid_mutex).
import type { IoasidDriverSubscriber } from '../../core/ioasid-subscribers.js';
import type { IommuDomain } from '../../core/ops.js';
import type { DeviceInfo } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import { struct, word } from '../../kernel/struct.js';
import { type DriverEnv, domainMm } from '../driver.js';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    intel_svm_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old?: IommuDomain): KGen<number>;
    intel_mm_release(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    intel_arch_invalidate_secondary_tlbs(t: KTask, dev: DeviceInfo, pasid: number, start: number, end: number): KGen;
  }
}

/** The driver's per-PASID state on the IOASID chain (seed 003's struct intel_svm): PASID_STATE_*. */
export const INTEL_SVM = struct('intel_svm', { state: word });

/** The driver's IOASID-chain subscriber, for whoever builds the chain (src/workloads/ioasid.ts). */
export const INTEL_SVM_IOASID: IoasidDriverSubscriber = { nb: 'intel_svm_ioasid_notify', lock: 'pasid_mutex', record: INTEL_SVM };

/**
 * Install an SVA or paging domain's first-level entry: a fresh one, or (old: a domain is attached) a replace of
 * the present one.
 */
export function setupFirstLevel(env: DriverEnv, t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old: IommuDomain | undefined): KGen<number> {
  const k = env.k;
  return old === undefined
    ? k.fn.intel_pasid_setup_first_level(t, dev, pasid, domainMm(domain), domain.flags)
    : k.fn.intel_pasid_replace_first_level(t, dev, pasid, domainMm(domain), domain.flags);
}

/** svm.c's kernel functions, by name. */
export function defineIntelSvm(env: DriverEnv): void {
  const k = env.k;
  k.fns.define('intel_svm_set_dev_pasid', 'drivers/iommu/intel/svm.c', (t, domain, dev, pasid, old) => setupFirstLevel(env, t, domain, dev, pasid, old));
  k.fns.define('intel_mm_release', 'drivers/iommu/intel/svm.c', (t, dev, pasid) => k.fn.intel_pasid_tear_down_entry(t, dev, pasid, true));
  // From the TLB flush (flush_tlb_mm_range), often under the page table lock: the range's PASID-based IOTLB and
  // device-TLB entries, through the QI it spins on (qi_submit_sync never sleeps).
  k.fns.define('intel_arch_invalidate_secondary_tlbs', 'drivers/iommu/intel/svm.c', (t, dev, pasid, start, end) => k.fn.cache_tag_flush_range(t, dev, pasid, start, end));
}
