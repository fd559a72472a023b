// A patch under review: VT-d's PASID teardown that clears the entry but "forgets" the PASID-cache invalidation —
// intel_pasid_tear_down_entry flushes only the PASID-based IOTLB and the device TLB. The patch replaces
// pasid_cache_invalidation_with_pasid (drivers/iommu/intel/pasid.c) by name with a function that submits nothing
// (no QI_PC descriptor). The stale-translation oracle catches the cached entry that outlives the binding.
//
//   static void
//   pasid_cache_invalidation_with_pasid(struct intel_iommu *iommu, u16 did, u32 pasid)
//   {
//   }
exports.extend = (ctx) => {
  // Only VT-d has it: on the other flavours the patch changes nothing.
  if (!ctx.k.fns.has('pasid_cache_invalidation_with_pasid')) return;
  ctx.k.fns.replace('pasid_cache_invalidation_with_pasid', function* (_t, _iommu, _did, _pasid) {
    // The patch: no QI_PC descriptor.
  });
};
