// A candidate fix (not upstream) for iommu_completion_wait (drivers/iommu/amd/iommu.c, mainline): its unlocked
// `if (!iommu->need_sync) return 0;` reads need_sync false whenever the last command queued is a COMPLETION_WAIT
// — including one another CPU queued after this CPU's invalidations and has not yet seen complete. The caller then
// returns with its invalidations still in the command buffer. need_sync false does say that a COMPLETION_WAIT
// follows every command queued so far (each command sets it; only a COMPLETION_WAIT, queued in the same
// iommu->lock section as its value from get_cmdsem_val, clears it), so the fix waits for the newest one instead of
// returning: the value iommu->cmd_sem_val holds once need_sync reads false is that COMPLETION_WAIT's or a later
// one's, and the values reach the buffer in order (9e249c484128). With nothing pending the semaphore already holds
// that value and wait_on_sem returns after one read, as the early return did.
//
//   static int iommu_completion_wait(struct amd_iommu *iommu)
//   {
//           struct iommu_cmd cmd;
//           unsigned long flags;
//           int ret;
//           u64 data;
//
//           if (!READ_ONCE(iommu->need_sync)) {
//                   smp_rmb();      /* need_sync before cmd_sem_val: pairs with the lock's release */
//                   return wait_on_sem(iommu, READ_ONCE(iommu->cmd_sem_val));
//           }
//
//           raw_spin_lock_irqsave(&iommu->lock, flags);
//           data = get_cmdsem_val(iommu);
//           build_completion_wait(&cmd, iommu, data);
//           ret = __iommu_queue_command_sync(iommu, &cmd, false);
//           raw_spin_unlock_irqrestore(&iommu->lock, flags);
//
//           if (ret)
//                   return ret;
//
//           return wait_on_sem(iommu, data);
//   }
//
// The locked part is mainline's; the model's own iommu_completion_wait takes it as one scheduling point (the
// section only stores), which a patch cannot reach without the need_sync read in front of it, so here it is the
// lock, the room __iommu_queue_command_sync spins for (udelay(1) with the lock held), the copy, the unlock.

exports.extend = (ctx) => {
  const { fn, fns } = ctx.k;
  const { READ_ONCE, spin_lock_irqsave, spin_unlock_irqrestore, udelay, structs, view } = ctx.kernel;
  // AMD only: on the other flavours the patch changes nothing.
  if (!fns.has('iommu_completion_wait') || !fns.has('get_cmdsem_val')) return;
  const amd_iommu = view(structs.amd_iommu);

  function* queueCompletionWait(t, iommu) {
    const u = iommu.unit;
    const flags = yield* spin_lock_irqsave(t, iommu.lock);
    while (!(yield* ctx.k.step(t, `${u.name}: left`, () => u.cmdFree() > 2))) yield* udelay(t, 1);
    const data = yield* ctx.k.step(t, 'copy_cmd_to_buffer: CMD_COMPL_WAIT', (e) => {
      const d = fn.get_cmdsem_val(iommu);
      fn.__iommu_queue_command_sync(t, iommu, fn.build_completion_wait(iommu, d), false, e);
      return d;
    });
    yield* spin_unlock_irqrestore(t, iommu.lock, flags);
    return data;
  }

  fns.replace('iommu_completion_wait', function* (t, iommu) {
    const p = iommu.unit.amd_iommu;
    if (!(yield* READ_ONCE(t, p, amd_iommu.need_sync))) {
      // A COMPLETION_WAIT follows every command queued so far, this CPU's included: wait for the newest.
      return yield* fn.wait_on_sem(t, iommu, yield* READ_ONCE(t, p, amd_iommu.cmd_sem_val));
    }
    return yield* fn.wait_on_sem(t, iommu, yield* queueCompletionWait(t, iommu));
  });
};
