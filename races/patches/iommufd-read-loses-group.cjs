// iommufd_fault_fops_read as 07838f7fd529 ("iommufd: Add iommufd fault object") added it, before 3d49020a327c
// ("iommufd/fault: Use a separate spinlock to protect fault->deliver list"), which gave read() the two deliver
// list helpers — iommufd_fault_deliver_fetch and iommufd_fault_deliver_restore — and put a group whose copy to
// user space faulted back at the head of the list:
//
//   while (!list_empty(&fault->deliver) && count > done) {
//           group = list_first_entry(&fault->deliver, struct iopf_group, node);
//           …
//           list_for_each_entry(iopf, &group->faults, list) {
//                   …
//                   if (copy_to_user(buf + done, &data, fault_size)) {
//                           xa_erase(&fault->response, group->cookie);
//                           rc = -EFAULT;
//                           break;                  /* out of the inner loop only */
//                   }
//                   done += fault_size;
//           }
//           list_del(&group->node);                  /* … so the group goes off the list anyway */
//   }
//
// A group whose copy faulted is so on neither fault->deliver nor fault->response: nothing answers it or frees it
// (neither write(), nor the detach's iommufd_auto_response_faults, nor the fault's destroy).
//
// The model's read() is mainline's: fetch, then on a faulting copy xa_erase and restore. The patch makes that
// restore the pre-fix list_del: a restore that follows a failed copy_to_user in the same read() leaves the group
// off the list (it is already off it: the fetch took it). The restore of the other two paths (the group does not
// fit, xa_alloc fails) stays: there the pre-fix read broke out before its list_del, leaving the group on the list.
// The locking stays mainline's (fault->lock around the list, the other half of 3d49020a327c): what is pre-fix here
// is only where the group ends up, not which lock the page-request thread waits on.
exports.extend = (ctx) => {
  const { fns } = ctx.k;
  const faulted = new Set(); // tasks whose read() has just had a copy_to_user fault
  fns.wrap('iommufd_fault_fops_read', (read) =>
    function* (t, fault, groups, vpn) {
      faulted.delete(t.pid);
      const ret = yield* read(t, fault, groups, vpn);
      faulted.delete(t.pid);
      return ret;
    },
  );
  fns.wrap('copy_to_user', (copy) =>
    function* (t, ictx, vpn) {
      const ok = yield* copy(t, ictx, vpn);
      if (!ok) faulted.add(t.pid);
      return ok;
    },
  );
  fns.wrap('iommufd_fault_deliver_restore', (restore) =>
    function* (t, fault, group) {
      if (faulted.delete(t.pid)) return; // list_del(&group->node): the group stays off the list
      yield* restore(t, fault, group);
    },
  );
};
