// kernel/fork.c's __mmput as it was before 2667ed10d9f0 ("mm: Fix PASID use-after-free issue", v5.18-rc6,
// Fenghua Yu): the mm's PASID was dropped with its address space, when the last user went — in do_exit that is
// exit_mm's mmput, before exit_files releases the device fds whose drivers still have the PASID programmed.
//
//   static inline void __mmput(struct mm_struct *mm)
//   {
//           …
//           exit_mmap(mm);
//           mm_put_huge_zero_page(mm);
//           set_mm_exe_file(mm, NULL);
//           …
//           mm_pasid_drop(mm);          /* moved to __mmdrop() by the fix */
//           mmdrop(mm);
//   }
//
// The fix's __mmdrop calls mm_pasid_drop too; after this __mmput that second call finds no PASID and does
// nothing (mm_pasid_drop checks the mm still has one, in the kernel of either day), so only __mmput is replaced.
exports.extend = (ctx) => {
  const { k } = ctx;
  k.fns.replace('__mmput', function* (t, mm) {
    yield* k.fn.exit_mmap(t, mm);
    yield* k.fn.mm_pasid_drop(t, mm);
    yield* k.fn.mmdrop(t, mm);
  });
};
