// A patch under review: the MMU notifier's release no longer clears the PASID entry — "unbind will do it" — so
// that release stays cheap. Between exit_mmap freeing the page tables and the fd's close, the IOMMU still walks
// them: the stale-translation oracle sees cached entries pointing at freed frames.
//
//   static void iommu_sva_mm_release(struct mmu_notifier *mn, struct mm_struct *mm)
//   {
//           /* teardown deferred to iommu_sva_unbind_device() */
//   }
//
// Written against the kernel API only (iommu-sim/kernel, handed over as ctx): the kernel function is replaced by
// its kernel name; `ctx.k.fns.current('iommu_sva_mm_release')` would give the original, to wrap it.
exports.extend = (ctx) => {
  ctx.k.fns.replace('iommu_sva_mm_release', function* (_t, _mm, _handle) {
    // teardown deferred to unbind
  });
};
