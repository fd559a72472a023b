// A patch under review, as an extension (src/workloads/extension.ts): VT-d's PASID teardown that clears the entry
// but "forgets" the PASID-cache invalidation — intel_pasid_tear_down_entry flushes only the PASID-based IOTLB and
// the device TLB. The patch replaces pasid_cache_invalidation_with_pasid (drivers/iommu/intel/pasid.c) by name
// with a function that submits nothing. The stale-translation oracle catches the cached entry that outlives the
// binding.
exports.extend = (ctx) => {
  if (!ctx.k.fns.has('pasid_cache_invalidation_with_pasid')) return;
  ctx.k.fns.replace(
    'pasid_cache_invalidation_with_pasid',
    function* () {
      // The patch: no QI_PC descriptor.
    },
    'races/patches/vtd-teardown-no-pc-flush.cjs',
  );
};
