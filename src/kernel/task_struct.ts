// struct task_struct, the fields of a user task the model keeps (include/linux/sched.h): task->mm (cleared by
// exit_mm under task_lock, read by get_task_mm), task->files (its files_struct, put by exit_files) and
// task->task_works (the callbacks run at its return to user space and by exit_task_work: ____fput). One per
// process of the workload, in static shared memory; `current` is which of them a kernel task runs for — a
// process's own task and the syscall tasks it spawns run for it, a kernel thread for none (PF_KTHREAD).
import type { KTask } from './context.js';
import type { Kernel } from './kernel.js';
import { element, struct, type ViewOf, word } from './struct.js';

export const TASK_STRUCT = struct('task_struct', {
  mm: word, // task->mm: the mm's id + 1, 0 before exec and after exit_mm
  files: word, // task->files: its files_struct's index + 1, 0 after exit_files
  task_works: word, // task->task_works: callbacks queued (model: a count; the callbacks are the files' f_task_work)
  work_exited: word, // task->task_works == &work_exited: exit_task_work has run, task_work_add fails
});

export interface Tasks {
  readonly count: number;
  readonly view: ViewOf<typeof TASK_STRUCT>;
  /** The task_struct of process i (its word offset). */
  at(i: number): number;
}

interface TaskState {
  readonly tasks: Tasks;
  /** Which process each kernel task runs for (task-local: only the task itself sets or reads its entry). */
  readonly current: WeakMap<KTask, number>;
}

const states = new WeakMap<Kernel, TaskState>();

/** The task_structs of `count` processes, declared with the workload (once a kernel: later calls get the same). */
export function defineTasks(k: Kernel, count: number): Tasks {
  const had = states.get(k);
  if (had) return had.tasks;
  const off = k.statics.alloc(Math.max(1, count) * TASK_STRUCT.words, 'task_structs');
  const tasks: Tasks = { count, view: k.struct(TASK_STRUCT), at: (i) => element(TASK_STRUCT, k.mem.statics + off, i) };
  states.set(k, { tasks, current: new WeakMap() });
  return tasks;
}

export function tasksOf(k: Kernel): Tasks | undefined {
  return states.get(k)?.tasks;
}

/** t runs for process i from now on (a process's task, or a syscall task it spawned). */
export function setCurrent(k: Kernel, t: KTask, i: number): void {
  const s = states.get(k);
  if (!s || i < 0 || i >= s.tasks.count) throw new Error(`task_struct: no process ${i}`);
  s.current.set(t, i);
}

/** The process t runs for, or -1: a kernel thread, a worker, an interrupt (no task_work, no files). */
export function current(k: Kernel, t: KTask): number {
  if (t.kind !== 'process') return -1;
  return states.get(k)?.current.get(t) ?? -1;
}

/** The address of process i's task->mm word (what get_task_mm and exit_mm read and clear). */
export function taskMmAddr(k: Kernel, i: number): number {
  const tasks = states.get(k)?.tasks;
  if (!tasks) throw new Error('task_struct: not declared');
  return tasks.view.mm.addr(tasks.at(i));
}
