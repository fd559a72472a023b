// uacce_fops_open as it was before 80fc671bcc01 ("uacce: Handle parent device removal or parent driver module
// rmmod", Zhangfei Gao, 2022): the open binds the caller's mm and sets its queue up without uacce->mutex and
// without looking at uacce->parent, so an open racing the device's remove (uacce_remove, from the driver's remove
// on a hot-unplug) can set its queue up after the remove has put the open queues: the device is released with
// the bond still on it, and the fd's close then unbinds from a device the IOMMU core has let go of
// (iommu_detach_device_pasid through a NULL dev->iommu_group). The fix takes uacce->mutex in open and fails it
// once the remove has cleared uacce->parent.
// The accelerator driver is built after the IOMMU drivers the extension is handed: the replacement is made once
// the model is built (when the kernel attaches its memory for the first execution).
exports.extend = (ctx) => {
  const k = ctx.k;
  let done = false;
  k.onAttach(() => {
    if (done) return;
    done = true;
    k.fns.replace('uacce_fops_open', (t, file, mm, flags) => k.fn.uacce_bind_queue(t, file, mm, flags), 'patch: uacce_fops_open before 80fc671bcc01');
  });
};
