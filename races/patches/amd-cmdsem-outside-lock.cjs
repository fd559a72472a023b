// iommu_completion_wait (drivers/iommu/amd/iommu.c) as it was before 9e249c484128 ("iommu/amd: serialize sequence
// allocation under concurrent TLB invalidations", Ankit Soni, v7.0; Fixes: d2a0cac10597, "iommu/amd: move
// wait_on_sem() out of spinlock"): the semaphore's next value is taken with atomic64_inc_return before
// iommu->lock, so two CPUs flushing through one IOMMU can queue their COMPLETION_WAITs in the other order than
// their values. The hardware then stores the higher value first and the lower one last, and the CPU waiting for
// the higher value, if it polls only after the second store, waits for a store that already came and went:
// wait_on_sem's LOOP_TIMEOUT runs out.
//
//   static int iommu_completion_wait(struct amd_iommu *iommu)
//   {
//           struct iommu_cmd cmd;
//           unsigned long flags;
//           int ret;
//           u64 data;
//
//           if (!iommu->need_sync)
//                   return 0;
//
//           data = atomic64_inc_return(&iommu->cmd_sem_val);
//           build_completion_wait(&cmd, iommu, data);
//
//           raw_spin_lock_irqsave(&iommu->lock, flags);
//
//           ret = __iommu_queue_command_sync(iommu, &cmd, false);
//           raw_spin_unlock_irqrestore(&iommu->lock, flags);
//
//           if (ret)
//                   return ret;
//
//           ret = wait_on_sem(iommu, data);
//
//           return ret;
//   }
//
// The lock, __iommu_queue_command_sync and the unlock are iommu_queue_command_sync(iommu, &cmd, false).

exports.extend = (ctx) => {
  const { fn, fns } = ctx.k;
  const { READ_ONCE, atomic_inc_return, structs, view } = ctx.kernel;
  // AMD only: on the other flavours the patch changes nothing.
  if (!fns.has('iommu_completion_wait') || !fns.has('get_cmdsem_val')) return;
  const amd_iommu = view(structs.amd_iommu);

  fns.replace('iommu_completion_wait', function* (t, iommu) {
    const p = iommu.unit.amd_iommu;
    if (!(yield* READ_ONCE(t, p, amd_iommu.need_sync))) return 0;
    const data = yield* atomic_inc_return(t, p, amd_iommu.cmd_sem_val);
    const cmd = fn.build_completion_wait(iommu, data);
    const ret = yield* fn.iommu_queue_command_sync(t, iommu, cmd, false);
    if (ret) return ret;
    return yield* fn.wait_on_sem(t, iommu, data);
  });
};
