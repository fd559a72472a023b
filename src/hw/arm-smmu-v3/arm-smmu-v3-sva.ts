// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c: SVA on the SMMUv3 — an SVA domain's CD shares the CPU's ASID
// and points TTB0 at the mm's page table (arm_smmu_sva_set_dev_pasid → arm_smmu_set_pasid); the domain's MMU
// notifier invalidates the SMMU's TLB by that ASID, by range, and the masters' ATCs
// (arm_smmu_mm_arch_invalidate_secondary_tlbs, from the CPU's TLB flush in atomic context); and at exit_mmap its
// release swaps each master's CD for the quiet CD — V kept so that DMA still running raises no C_BAD_CD, TTB0's
// walks disabled (EPD0) — under the domain's devices_lock, then invalidates the ASID and the ATCs
// (arm_smmu_mm_release). Unbinding is the blocked domain's (arm_smmu_blocking_set_dev_pasid, arm-smmu-v3.ts).
// The file's older era, under sva_lock (notifier=bond), is arm-smmu-v3-sva-era.ts; arm_smmu_mm_release is the policy's.
import type { IommuDomain } from '../../core/ops.js';
import type { DeviceInfo } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { spin_lock_irqsave, spin_unlock_irqrestore } from '../../kernel/spinlock.js';
import { type DriverEnv, domainMm } from '../driver.js';
import type { SvaNotifier } from '../../core/types.js';
import { type ArmSmmuLocks, arm_smmu_make_sva_cd, cdValidAt, setPasidCd } from './arm-smmu-v3.js';
import { defineSvaEra, eraMmRelease } from './arm-smmu-v3-sva-era.js';

const SVA = 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    arm_smmu_sva_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number): KGen<number>;
    /** model: returns the CD's words (the kernel fills *target); no mm: the quiet CD (EPD0). */
    arm_smmu_make_sva_cd(mm: MmStruct | undefined, asid: number): number[];
    /** model: for the one {dev, PASID} the core names (mainline walks the domain's devices list). */
    arm_smmu_mm_release(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen;
    arm_smmu_mm_arch_invalidate_secondary_tlbs(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, start: number, end: number): KGen;
  }
}

/** Both eras' functions; `era` (the policy notifier) picks arm_smmu_mm_release's: mainline's or sva_lock's (arm-smmu-v3-sva-era.ts). */
export function defineSvaFunctions(env: DriverEnv, locks: ArmSmmuLocks, era: SvaNotifier): void {
  const k = env.k;
  k.fns.defineSync('arm_smmu_make_sva_cd', SVA, arm_smmu_make_sva_cd);
  defineSvaEra(env, locks);
  // "This does not need the arm_smmu_asid_lock because SVA domains never get reassigned" — arm_smmu_set_pasid
  // takes it around the CD write all the same.
  k.fns.define('arm_smmu_sva_set_dev_pasid', SVA, (t, domain, dev, pasid) => {
    const mm = domainMm(domain);
    return k.call(t, 'arm_smmu_set_pasid', setPasidCd(env, locks, t, dev, pasid, mm));
  });
  k.fns.definePolicy('arm_smmu_mm_release', SVA, 'notifier', era, { domain: mmRelease(env, locks), bond: eraMmRelease(env) });
  // The whole address space (an empty range): TLBI by ASID; otherwise by VA over the range. Then the ATCs.
  k.fns.define('arm_smmu_mm_arch_invalidate_secondary_tlbs', SVA, function* (t, dev, pasid, mm, start, end) {
    if (start < 0 || end <= start) yield* k.fn.arm_smmu_tlb_inv_asid(t, dev.iommu, mm.asid);
    else yield* k.fn.arm_smmu_tlb_inv_range_asid(t, dev.iommu, mm.asid, start, end);
    yield* k.fn.arm_smmu_atc_inv_domain(t, dev, pasid, start, end);
  });
}

/** Mainline's arm_smmu_mm_release: the quiet CD for each master under devices_lock, then the ASID and the ATCs. */
function mmRelease(env: DriverEnv, locks: ArmSmmuLocks) {
  const k = env.k;
  return function* (t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen {
    // "DMA may still be running. Keep the cd valid to avoid C_BAD_CD events, but disable translation."
    const flags = yield* spin_lock_irqsave(k, t, locks.devices);
    const cdptr = k.fn.arm_smmu_get_cd_ptr(dev, pasid);
    if (cdValidAt(k, cdptr)) yield* k.fn.arm_smmu_write_cd_entry(t, dev, pasid, cdptr, k.fn.arm_smmu_make_sva_cd(undefined, mm.asid));
    yield* spin_unlock_irqrestore(k, t, locks.devices, flags);
    yield* k.fn.arm_smmu_tlb_inv_asid(t, dev.iommu, mm.asid);
    yield* k.fn.arm_smmu_atc_inv_domain(t, dev, pasid, 0, 0);
  };
}
