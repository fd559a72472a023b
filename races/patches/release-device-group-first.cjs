// iommu_release_device as it was before 9ac8545199a1 ("iommu: Fix use-after-free in iommu_release_device", Qian
// Cai, 2020): the device leaves its group first — the last device out releases the group, which frees its
// default domain — and only then does the driver's release_device run, detaching the device from the domain its
// per-device data still points at (arm_smmu_release_device → arm_smmu_detach_dev took smmu_domain->devices_lock
// of the freed domain: KASAN use-after-free). The fix calls ops->release_device first.
//
//   void iommu_release_device(struct device *dev)
//   {
//           …
//           iommu_group_remove_device(dev);
//           ops->release_device(dev);        /* iommu_deinit_device() in mainline */
//   }
exports.extend = (ctx) => {
  const { fn, fns } = ctx.k;
  fns.replace('iommu_release_device', function* (t, dev) {
    yield* fn.iommu_group_remove_device(t, dev);
    yield* fn.iommu_deinit_device(t, dev);
  });
};
