// iommu_report_device_fault as it was between 3dfa64aecbaf ("iommu: Make iommu_report_device_fault() return
// void") and fca5b78511e9 ("iommu: Restore lost return in iommu_report_device_fault()", Barak Biber, 2024):
// "When iommu_report_device_fault gets called with a partial fault it is supposed to collect the fault into the
// group and then return. Instead the return was accidently deleted which results in trying to process the fault
// and an eventual crash."
//
//   if (!(fault->prm.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE)) {
//           report_partial_fault(iopf_param, fault);
//           iopf_put_dev_fault_param(iopf_param);
//           /* A request that is not the last does not need to be ack'd */
//   }                                     /* the lost return */
//   group = iopf_group_alloc(iopf_param, evt, &abort_group);
//   …
//   if (group->attach_handle->domain->iopf_handler(group))
//
// A non-last request so goes on as if it were its group's last: a group is made of it — holding the param the
// report has just put its reference of — and handed to the domain's handler, which answers and frees it
// (iopf_free_group puts the param once more).
exports.extend = (ctx) => {
  const { fn, fns } = ctx.k;
  const { EINVAL } = ctx.kernel;
  fns.replace('iommu_report_device_fault', function* (t, dev, evt) {
    const iopf_param = yield* fn.iopf_get_dev_fault_param(t, dev);
    if (!iopf_param) return -EINVAL;
    if (!evt.last) {
      yield* fn.report_partial_fault(t, iopf_param, evt);
      yield* fn.iopf_put_dev_fault_param(t, iopf_param);
      /* A request that is not the last does not need to be ack'd */
    }
    const ret = yield* fn.iopf_report_last_fault(t, dev, evt, iopf_param);
    if (ret < 0) yield* fn.iopf_put_dev_fault_param(t, iopf_param);
    return ret;
  });
};
