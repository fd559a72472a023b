// do_exit (kernel/exit.c), the part of it the IOMMU depends on, in its order: exit_mm (current->mm cleared under
// task_lock, then mmput: the last one runs __mmput — exit_mmap, whose remove_vma puts each mapping's file — and
// mmdrop; the mm_struct, and with it mm->pasid, stays while a bond's mmgrab holds it), exit_files (every fd
// closed: filp_close → fput, the last fput queued on the task's task_works), then exit_task_work (those ____fputs
// run: __fput → f_op->release, the driver's unbind). So a device's release always sees an mm past exit_mmap.
import type { KTask } from './context.js';
import { defineFiles } from './fs/file.js';
import type { Kernel, KGen } from './kernel.js';
import type { MmStruct } from './mm/mm.js';

declare module './kfunc.js' {
  interface KernelFunctions {
    /** do_exit of the current task, whose mm is `mm` (the model's processes have one thread each). */
    do_exit(t: KTask, mm: MmStruct): KGen;
  }
}

/** do_exit by name, and the fs it closes (defineFiles: `processes` task_structs and their files). */
export function defineExit(k: Kernel, processes: number): void {
  defineFiles(k, processes);
  if (k.fns.has('do_exit')) return;
  k.fns.define('do_exit', 'kernel/exit.c', function* (t, mm) {
    yield* k.fn.exit_mm(t, mm);
    yield* k.fn.exit_files(t);
    yield* k.fn.exit_task_work(t);
  });
}
