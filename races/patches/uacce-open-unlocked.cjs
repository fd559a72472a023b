// uacce_fops_open as it was before 80fc671bcc01 ("uacce: Handle parent device removal or parent driver module
// rmmod", Zhangfei Gao, 2022): the open binds the caller's mm and sets its queue up without uacce->mutex and
// without looking at uacce->parent, so an open racing the device's remove (uacce_remove, from the driver's remove
// on a hot-unplug) can set its queue up after the remove has put the open queues: the device is released with
// the bond still on it, and the fd's close then unbinds from a device the IOMMU core has let go of
// (iommu_detach_device_pasid through a NULL dev->iommu_group). The fix takes uacce->mutex in open and fails it
// once the remove has cleared uacce->parent.
//
//   static int uacce_fops_open(struct inode *inode, struct file *filep)
//   {
//           …
//           ret = uacce_bind_queue(uacce, q);      /* no uacce->mutex, no uacce->parent check */
//           …
//   }
exports.extend = (ctx) => {
  const { fn, fns } = ctx.k;
  fns.replace('uacce_fops_open', (t, file, mm, flags) => fn.uacce_bind_queue(t, file, mm, flags));
};
