// iommu_sva_unbind_device as it was before 06e14c36e20b ("iommu/sva: Fix crash in iommu_sva_unbind_device()",
// Lizhi Hou, 2026): the last unbind of an mm's SVA domain frees the domain (iommu_domain_free → mmdrop), then looks
// at domain->mm->iommu_mm to take the mm off iommu_sva_mms. Once the process has exited, that mmdrop or the MMU
// notifier's can be the mm's last: the look is a use-after-free of the mm. The fix looks before the free.
//
//   void iommu_sva_unbind_device(struct iommu_sva *handle)
//   {
//           …
//           if (--domain->users == 0) {
//                   list_del(&domain->next);
//                   iommu_domain_free(domain);
//           }
//           if (list_empty(&iommu_mm->sva_domains)) {        /* iommu_mm = domain->mm->iommu_mm */
//                   …
exports.extend = (ctx) => {
  const { READ_ONCE, mm_struct_of, structs, view } = ctx.kernel;
  const mm_struct = view(structs.mm_struct);
  const domainMm = new Map(); // handle->domain->mm, as bind left it
  ctx.k.fns.wrap('iommu_sva_bind_device', (bind) =>
    function* (t, dev, mm, flags) {
      const r = yield* bind(t, dev, mm, flags);
      if (r.ret > 0) domainMm.set(r.ret, mm);
      return r;
    },
  );
  ctx.k.fns.wrap('iommu_sva_unbind_device', (unbind) =>
    function* (t, handle) {
      const mm = domainMm.get(handle);
      yield* unbind(t, handle); // … iommu_domain_free(domain): its mmdrop
      if (mm) yield* READ_ONCE(t, mm_struct_of(mm), mm_struct.iommu_mm); // domain->mm->iommu_mm, too late
    },
  );
};
