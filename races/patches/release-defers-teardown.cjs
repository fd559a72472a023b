// A patch under review, as an extension replacing a core step (src/actors/extension.ts, `setCoreStep`): the MMU
// notifier's release no longer clears the PASID entry — "unbind will do it" — so that release stays cheap. Between
// exit_mmap freeing the page tables and the fd's close, the IOMMU still walks them: the stale-translation oracle
// sees cached entries pointing at freed frames. (`ctx.coreStep('release')` would give the original, to wrap it.)
exports.extend = (ctx) => {
  ctx.setCoreStep('release', function* (t, _mm, _handle) {
    yield* ctx.k.step(t, 'iommu_sva_mm_release (patched): teardown deferred to unbind', () => {});
  });
};
