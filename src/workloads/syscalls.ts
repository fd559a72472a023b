// The process side of the kernel: the syscalls and exit path the processes' actors ask for (exec, open of the
// accelerator's char device and close of its fd, mmap and munmap of its portal, munmap, do_exit) and the driver
// thread that binds a task's mm (seed 000's iommu_bind_task) — kernel tasks with scheduling points, each running
// the task's task_works on its way back to user space (a close's last fput releases the file there), replying to
// the process's actor when they return and telling its mm's actor each change of the mm's state.
import type { Sva } from '../core/iommu-sva.js';
import { mmStateFootprint } from '../core/footprints.js';
import type { DeviceInfo } from '../core/types.js';
import { type AccelDriver, UACCE_FOPS } from '../hw/pci/driver.js';
import type { KTask } from '../kernel/context.js';
import { defineExit } from '../kernel/exit.js';
import { fdFile, registerFops } from '../kernel/fs/file.js';
import { leakReport } from '../kernel/kasan.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { get_task_mm, MM_LIVE, type MmStruct, type MmTable, mm_init, mmBase, mmPasid, mmput, mmStateCode, mmUsers, objectInfo as mmObjectInfo } from '../kernel/mm/mm.js';
import type { MmuNotifiers } from '../kernel/mm/mmu_notifier.js';
import { do_mmap, do_munmap, fault_in } from '../kernel/mm/pagetable.js';
import { setCurrent, taskMmAddr } from '../kernel/task_struct.js';
import type { Stats } from '../core/stats.js';
import { read } from '../runtime/footprint.js';
import type { Wire } from '../runtime/model.js';
import type { Boot } from '../hw/boot.js';
import type { TaskMm } from './params/policies.js';

export interface SyscallEnv {
  readonly k: Kernel;
  readonly params: { readonly pages: number; readonly taskMm: TaskMm };
  readonly processes: number;
  readonly mms: MmTable;
  readonly notifiers: MmuNotifiers;
  readonly sva: Sva;
  readonly driver: AccelDriver;
  readonly stats: Stats;
  readonly infos: readonly DeviceInfo[];
  /** Actor ids: process i's, its mm's. */
  readonly actors: { process(i: number): number; mm(i: number): number };
  /** kernel_init: exec waits for it (the hardware enabled before user space). */
  readonly boot: Boot;
}

/** What open(2) of the device node gave: the fd (or -errno), the PASID the driver bound, whether SVA was on offer. */
export interface Opened {
  readonly ret: number;
  readonly pasid: number;
  readonly capable: boolean;
}

/** A process's syscalls and exit, as its kernel code runs them (process i, in its own task's context). */
export interface Syscalls {
  /** execve: a fresh mm with its pages mapped, half of them faulted in; waits for kernel_init first. */
  exec(t: KTask, i: number): KGen;
  /** open(2) of dev's node: the driver binds the mm (or init_mm, SVA_FLAG_SUPERVISOR_MODE); ret is the fd or -errno. */
  open(t: KTask, i: number, flags: number, dev: DeviceInfo): KGen<Opened>;
  /** close(2): the fd's reference goes; the last one releases the file (the driver unbinds) on the way back. */
  close(t: KTask, i: number, fd: number): KGen<number>;
  /** mmap(2) of fd's portal: its vpn (beyond the anonymous pages) or -errno. */
  mmap(t: KTask, i: number, fd: number): KGen<number>;
  /** munmap(2) of a portal mapping (its vma's file reference goes). */
  munmapPortal(t: KTask, i: number, vpn: number): KGen<number>;
  /** munmap one range and (unless `remap` is false) map it again, populated. */
  munmap(t: KTask, i: number, start: number, n: number, remap?: boolean): KGen;
  /** madvise(MADV_DONTNEED) over a range: 0 or -errno. */
  madvise(t: KTask, i: number, start: number, n: number): KGen<number>;
  /** move_pages of a range's present pages to new ones: the pages moved, or -errno. */
  migrate(t: KTask, i: number, start: number, n: number): KGen<number>;
  /** do_exit: exit_mm, exit_files (every fd still open closed), exit_task_work (their releases). */
  exit(t: KTask, i: number): KGen;
}

/**
 * Declare the syscall tasks (sys_exec, sys_bind — open(2) —, bind_task, sys_close, sys_mmap, sys_munmap, do_exit) the
 * process actors spawn, the task_structs and files; returns the syscalls themselves, for a process that is a
 * kernel task (a scripted one).
 */
export function defineSyscalls(env: SyscallEnv): Syscalls {
  const { k, processes, mms, notifiers, sva, stats, infos, actors } = env;
  const proc = (args: Wire): { proc: number; mm: MmStruct; dev: DeviceInfo; actor: number } => {
    const { proc: i, dev } = args as { proc: number; dev?: number };
    return { proc: i, mm: mms.mms[i] as MmStruct, dev: infos[(dev ?? i) % infos.length] as DeviceInfo, actor: actors.process(i) };
  };
  defineExit(k, processes);
  const taskMm = (i: number): number => taskMmAddr(k, i);
  k.onEnd(() => exitedMmLeaks(k, mms.mms.slice(0, processes), (i) => Atomics.load(k.i32, taskMm(i))));
  const sys = processSyscalls(env, registerFops(k, UACCE_FOPS));
  const reply = (t: KTask, to: number, event: { type: string } & Record<string, Wire>) =>
    // A message to the process actor: no shared word.
    k.stepOn(t, `return to user: ${event.type}`, [], (e) => e.send(to, event));

  k.task('sys_exec', 'process', function* (t, args) {
    const { proc: i, actor } = proc(args);
    yield* sys.exec(t, i);
    yield* reply(t, actor, { type: 'exec.done' });
  });
  k.task('sys_bind', 'process', function* (t, args) {
    const { proc: i, mm, dev, actor } = proc(args);
    const r = yield* sys.open(t, i, (args as { flags: number }).flags, dev);
    const capable = r.capable ? 1 : 0;
    // Back in user space the task's IA32_PASID holds mm->pasid (what ENQCMD tags a descriptor with).
    if (r.ret >= 0) yield* k.stepOn(t, 'return to user: bound', [read(mm.view.pasid.addr(mmBase(k, mm)))], (e) => e.send(actor, { type: 'bound', handle: r.ret, pasid: r.pasid, capable, msr: mmPasid(k, mm) }));
    else yield* reply(t, actor, { type: 'bind.failed', err: r.ret, capable });
  });
  k.task('bind_task', 'kthread', function* (t, args) {
    // A device driver binding a process from a thread of its own, as amd_iommu_bind_pasid(pdev, pasid, task)
    // did: nothing keeps the task from exiting meanwhile but the reference the driver takes on its mm.
    const { proc: i, mm, dev } = proc(args);
    const flags = (args as { flags: number }).flags;
    const held = env.params.taskMm === 'get_task_mm' ? yield* get_task_mm(k, t, mm, taskMm(i)) : yield* k.stepOn(t, 'task->mm', [read(taskMm(i))], () => Atomics.load(k.i32, taskMm(i)) !== 0);
    if (!held) {
      yield* k.stepOn(t, 'bind_task: the task has exited (-ESRCH)', [stats.addr('bind_task_esrch')], () => stats.add('bind_task_esrch'));
      return;
    }
    const r = yield* sva.bind(t, dev, mm, flags);
    // The driver's reference goes as soon as the bond holds the mm; this mmput may be the last (exit_mmap here).
    if (env.params.taskMm === 'get_task_mm') yield* mmput(k, t, notifiers, mm);
    if (r.ret > 0) {
      yield* k.stepOn(t, 'bind_task: bound', [stats.addr('bind_task_bound')], () => stats.add('bind_task_bound'));
      yield* sva.unbind(t, r.ret);
    }
  });
  k.task('sys_close', 'process', function* (t, args) {
    const { proc: i, actor } = proc(args);
    yield* sys.close(t, i, (args as { handle: number }).handle);
    yield* reply(t, actor, { type: 'closed' });
  });
  k.task('sys_mmap', 'process', function* (t, args) {
    const { proc: i, actor } = proc(args);
    const vpn = yield* sys.mmap(t, i, (args as { handle: number }).handle);
    yield* reply(t, actor, { type: 'mapped', vpn });
  });
  k.task('sys_munmap', 'process', function* (t, args) {
    const { proc: i, actor } = proc(args);
    const { start, n } = args as { start: number; n: number };
    yield* sys.munmap(t, i, start, n);
    yield* reply(t, actor, { type: 'munmapped' });
  });
  k.task('do_exit', 'process', function* (t, args) {
    const { proc: i, actor } = proc(args);
    const { detached } = args as { detached?: boolean };
    yield* sys.exit(t, i);
    // A thread of a process that is a kernel task (a scripted one) has no actor to answer.
    if (!detached) yield* reply(t, actor, { type: 'exited' });
  });
  return sys;
}

/** The syscalls' kernel code, for process i (its mm, its device: i modulo the devices); `fops`: the driver's. */
function processSyscalls(env: SyscallEnv, fops: number): Syscalls {
  const { k, params: p, mms, notifiers, sva, driver, stats, actors, boot } = env;
  const mmOf = (i: number): MmStruct => mms.mms[i] as MmStruct;
  const tellMm = (t: KTask, i: number, mm: MmStruct) =>
    k.stepOn(t, `${mm.name}: state`, mmStateFootprint(k, mm), (e) => e.send(actors.mm(i), { type: 'mm.state', code: mmStateCode(k, mm), pasid: mmPasid(k, mm) }));
  // exit_to_user_mode: the task_works queued meanwhile (a last fput's ____fput) run before user space resumes.
  function* syscall<T>(t: KTask, i: number, body: KGen<T>): KGen<T> {
    setCurrent(k, t, i);
    const r = yield* body;
    yield* k.fn.task_work_run(t);
    return r;
  }
  return {
    exec: (t, i) =>
      syscall(
        t,
        i,
        (function* () {
          const mm = mmOf(i);
          yield* boot.wait(t);
          yield* mm_init(k, t, mm);
          yield* k.stepOn(t, 'current->mm = mm', [taskMmAddr(k, i)], () => void Atomics.store(k.i32, taskMmAddr(k, i), mm.id + 1));
          yield* do_mmap(k, t, mm, 0, p.pages, true);
          for (let v = 0; v < Math.ceil(p.pages / 2); v++) yield* fault_in(k, t, mm, v, true);
          yield* tellMm(t, i, mm);
        })(),
      ),
    open: (t, i, flags, dev) =>
      syscall(
        t,
        i,
        (function* (): KGen<Opened> {
          const mm = mmOf(i);
          const target = (flags & 2) !== 0 ? mms.initMm : mm;
          const cap = yield* sva.capable(t, dev, flags);
          const fd = yield* k.fn.do_sys_open(t, fops, dev.index, target, flags);
          const pasid = fd < 0 ? 0 : driver.pasidOf(fdFile(k, i, fd));
          yield* tellMm(t, i, mm);
          return { ret: fd, pasid, capable: cap.ret === 0 };
        })(),
      ),
    close: (t, i, fd) => syscall(t, i, k.fn.close_fd(t, fd)),
    mmap: (t, i, fd) => syscall(t, i, k.fn.vm_mmap_pgoff(t, fd, mmOf(i))),
    munmapPortal: (t, i, vpn) => syscall(t, i, k.fn.vm_munmap(t, mmOf(i), vpn)),
    munmap: (t, i, start, n, remap = true) =>
      syscall(
        t,
        i,
        (function* () {
          const mm = mmOf(i);
          yield* do_munmap(k, t, notifiers, mm, start, n);
          if (remap) {
            // mmap(MAP_POPULATE): the range is backed again, so the next munmap of it has pages to take back.
            yield* do_mmap(k, t, mm, start, n, true);
            for (let v = start; v < start + n; v++) yield* fault_in(k, t, mm, v, true);
          }
          yield* k.stepOn(t, 'munmap', [stats.addr('munmaps')], () => stats.add('munmaps'));
        })(),
      ),
    madvise: (t, i, start, n) => syscall(t, i, k.fn.do_madvise(t, mmOf(i), start, n, 'MADV_DONTNEED')),
    migrate: (t, i, start, n) => syscall(t, i, k.fn.migrate_pages(t, mmOf(i), start, n)),
    *exit(t, i) {
      const mm = mmOf(i);
      setCurrent(k, t, i);
      yield* k.stepOn(t, 'do_exit: PF_EXITING', [], (e) => e.send(actors.mm(i), { type: 'mm.exit' }));
      yield* k.fn.do_exit(t, mm);
      yield* k.stepOn(t, 'exit', [stats.addr('exits')], () => stats.add('exits'));
      yield* tellMm(t, i, mm);
    },
  };
}

/**
 * At teardown: a process whose task has exited (task->mm cleared by exit_mm) while its mm still has users never
 * reaches exit_mmap — someone took an mm_users reference (mmget) and never put it. kmemleak's report of the
 * mm_struct. `taskMm(i)`: process i's task->mm (mm id + 1; 0 before exec and after exit_mm).
 */
function exitedMmLeaks(k: Kernel, procMms: readonly MmStruct[], taskMm: (i: number) => number): void {
  if (!k.enabled('leaks') || k.tasksLeftBlocked) return;
  procMms.forEach((mm, i) => {
    if (mmStateCode(k, mm) !== MM_LIVE || taskMm(i) === mm.id + 1) return;
    const info = mmObjectInfo(k, mm);
    const f = leakReport(k, info, Array.from(k.i32.subarray(info.obj, info.obj + 8)));
    k.report({ ...f, text: `${f.text}\n  iommu-sim: proc/${i} has exited, yet ${mm.name} has mm_users ${mmUsers(k, mm)}: it never reaches exit_mmap (an mmget never put)` });
  });
}

