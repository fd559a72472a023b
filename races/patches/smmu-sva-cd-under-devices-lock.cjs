// arm_smmu_sva_set_dev_pasid (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c) as it was before b5bf7778b722
// ("iommu/arm-smmu-v3: Do not use GFP_KERNEL under as spinlock", Jason Gunthorpe, v6.8-rc6): the bind, under the
// file's sva_lock, writes the mm's context descriptor into every master of the RID domain's devices list, holding
// smmu_domain->devices_lock (a spinlock, interrupts off) across arm_smmu_write_ctx_desc — which, on a two-level
// CD table whose leaf for the PASID is not there yet, allocates it with dmam_alloc_coherent(GFP_KERNEL):
//
//   arm_smmu_sva_set_dev_pasid()
//     mutex_lock(&sva_lock);
//     __arm_smmu_sva_bind()
//      arm_smmu_mmu_notifier_get()
//       spin_lock_irqsave(&smmu_domain->devices_lock, flags);
//       list_for_each_entry(master, &smmu_domain->devices, domain_head)
//               ret = arm_smmu_write_ctx_desc(master, mm_get_enqcmd_pasid(mm), cd);
//                       arm_smmu_get_cd_ptr() → arm_smmu_alloc_cd_leaf_table() → dmam_alloc_coherent(GFP_KERNEL)
//       spin_unlock_irqrestore(&smmu_domain->devices_lock, flags);
//
// The fix writes the CD of the one master being bound, with no spinlock held (mainline: arm_smmu_alloc_cd_ptr
// before arm_smmu_asid_lock, in arm_smmu_set_pasid). The model's stand-ins: the RID domain's devices list is the
// master being bound (a PCI device is alone in its group: the commit message's own argument), the CD's ASID is the
// mm's (arm_smmu_alloc_shared_cd's ASID sharing is not modelled), and sva_lock and devices_lock are the patch's
// own — the era's sva_lock is a static of this file; the devices_lock taken here stands for the RID domain's
// (a lock of the same name and class; the driver's own is not reachable from a patch).
exports.extend = (ctx) => {
  const { fn, fns } = ctx.k;
  const K = ctx.kernel;
  // SMMUv3 only: on the other flavours the patch changes nothing.
  if (!fns.has('arm_smmu_sva_set_dev_pasid')) return;
  const sva_lock = K.DEFINE_MUTEX('sva_lock');
  const devices_lock = K.DEFINE_SPINLOCK('&smmu_domain->devices_lock');

  // arm_smmu_write_ctx_desc(master, ssid, cd) of the era, installing a CD: its slot (the leaf allocated on
  // demand), then the entry written and synced (CMD_CFGI_CD + CMD_SYNC).
  function* arm_smmu_write_ctx_desc(t, dev, ssid, mm) {
    const cdptr = yield* fn.arm_smmu_alloc_cd_ptr(t, dev, ssid);
    if (cdptr === 0) return -K.ENOMEM;
    yield* fn.arm_smmu_write_cd_entry(t, dev, ssid, cdptr, fn.arm_smmu_make_sva_cd(mm, mm.asid));
    return 0;
  }

  fns.replace('arm_smmu_sva_set_dev_pasid', function* (t, domain, dev, pasid) {
    const mm = domain.mm;
    yield* K.mutex_lock(t, sva_lock);
    // arm_smmu_mmu_notifier_get: the CD into every master of the RID domain, under its devices_lock.
    const flags = yield* K.spin_lock_irqsave(t, devices_lock);
    const ret = yield* arm_smmu_write_ctx_desc(t, dev, pasid, mm);
    yield* K.spin_unlock_irqrestore(t, devices_lock, flags);
    yield* K.mutex_unlock(t, sva_lock);
    return ret;
  });
};
