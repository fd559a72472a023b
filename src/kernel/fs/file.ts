// struct file and its references (fs/file_table.c, fs/file.c, fs/open.c, kernel/task_work.c, mm/mmap.c's file
// mappings). A file is referenced by f_count: one per fd installed in a files_struct, one per VMA mapping it
// (vma->vm_file), one per fget a syscall holds. The last fput does not release the file there: from a user task
// it queues ____fput on the task's task_works, run when the task returns to user space or at exit_task_work; from
// a kernel thread (or once the task is past exit_task_work) the file goes on delayed_fput_list, emptied by the
// delayed_fput work on system_wq. Only then __fput calls f_op->release — which is why a driver's release (uacce's
// unbind) runs after exit_mm at process exit, and not at all while a mapping still holds the file.
//
// Files live in a static table (slots reused round-robin, so a stale pointer usually finds its file freed:
// KASAN's report, as the kernel's filp cache would give after its quarantine). f_op is a registered
// file_operations, whose open/release/mmap are kernel functions by name: a patch replacing one reaches it.
// A process's mappings of a file (its device portal) are kept here per mm, beside the anonymous VMA map of
// pagetable.ts: vpn mm.pages + slot, outside the address space the IOMMU translates.
import { read } from '../../runtime/footprint.js';
import { current, defineTasks, TASK_STRUCT, type Tasks } from '../task_struct.js';
import type { KTask } from '../context.js';
import { EBADF, EINVAL, EMFILE, ENFILE, ENOMEM } from '../errno.js';
import { accessReport, fmtAddr, kaddr, leakReport, type SlabObjectInfo, type SlabTrack } from '../kasan.js';
import type { Kernel, KGen } from '../kernel.js';
import type { KernelFunctions, KFnName } from '../kfunc.js';
import type { MmStruct } from '../mm/mm.js';
import { down_write, up_write } from '../rwsem.js';
import { array, element, struct, type ViewOf, word } from '../struct.js';
import { internFootprint } from '../memory.js';
import { defineWork, queue_delayed_work, system_wq, type WorkItem } from '../workqueue.js';

/** Open fds a process may have (its fdtable's size); fds are numbered from FD_BASE (0..2 are stdio). */
export const NR_OPEN = 8;
export const FD_BASE = 3;
/** File mappings an mm may have. */
export const NR_FILE_VMAS = 4;

/** FMODE_OPENED: f_op->open succeeded, so __fput calls f_op->release. */
const FMODE_OPENED = 1;
const F_LIVE = 1;
const F_FREED = 2;

/** struct file (include/linux/fs.h), the fields the model keeps, and KASAN's tracks (the filp cache's metadata). */
export const FILE = struct('file', {
  f_count: word,
  f_op: word, // its file_operations' id (registerFops)
  f_inode: word, // the char device's minor + 1
  f_mode: word, // FMODE_OPENED
  private_data: word, // the driver's (uacce: its queue)
  f_task_work: word, // model: its ____fput's place on a task's task_works (a sequence number), 0: not queued
  f_task: word, // model: … on process f_task - 1's
  f_llist: word, // on delayed_fput_list
  state: word, // model: 0 never used, F_LIVE, F_FREED
  alloc_by: word, // model: interned comm/pid and chain of who allocated and freed it
  alloc_chain: word,
  free_by: word,
  free_chain: word,
});

/** struct files_struct with its one fdtable: fd FD_BASE + n is fdt[n] (a file pointer, 0: free). */
export const FILES_STRUCT = struct('files_struct', {
  count: word,
  fdt: array(NR_OPEN),
});

/** A process's file mappings (vma->vm_file of each, 0: none), the model's beside the anonymous VMA map. */
const MM_FILE_VMAS = struct('mm_file_vmas', { vm_file: array(NR_FILE_VMAS) });

const FS_TABLE = struct('fs_table', {
  next_file: word, // model: where the round-robin search for a free slot starts
  task_work_seq: word, // model: the order task_work_add queued callbacks in
});

type FopOpen = (t: KTask, file: number, mm: MmStruct, flags: number) => KGen<number>;
type FopRelease = (t: KTask, file: number) => KGen;
type FopMmap = (t: KTask, file: number, mm: MmStruct, vpn: number) => KGen<number>;
type Named<F> = { [N in KFnName]: KernelFunctions[N] extends F ? N : never }[KFnName];

/** struct file_operations: each operation a kernel function, by name. */
export interface FileOperations {
  readonly name: string;
  readonly open: Named<FopOpen>;
  readonly release: Named<FopRelease>;
  readonly mmap?: Named<FopMmap>;
}

interface FsState {
  readonly files: number;
  /** mm ids 0..mms - 1 may have file mappings (init_mm and the processes'). */
  readonly mms: number;
  readonly tasks: Tasks;
  readonly off: { readonly table: number; readonly files: number; readonly filesStructs: number; readonly vmas: number };
  readonly f: ViewOf<typeof FILE>;
  readonly fs: ViewOf<typeof FILES_STRUCT>;
  readonly vm: ViewOf<typeof MM_FILE_VMAS>;
  readonly tab: ViewOf<typeof FS_TABLE>;
  readonly fops: FileOperations[];
  readonly delayedFput: WorkItem;
  readonly uafReported: Set<number>;
}

const states = new WeakMap<Kernel, FsState>();

function fsOf(k: Kernel): FsState {
  const s = states.get(k);
  if (!s) throw new Error('fs: defineFiles was not called for this kernel');
  return s;
}

declare module '../kfunc.js' {
  interface KernelFunctions {
    alloc_empty_file(t: KTask, fops: number, inode: number): KGen<number>;
    /** open(2) of a char device (its fops and minor) by current, whose mm is mm; `flags` reach f_op->open. fd or -errno. */
    do_sys_open(t: KTask, fops: number, inode: number, mm: MmStruct, flags: number): KGen<number>;
    fget(t: KTask, fd: number): KGen<number>;
    fput(t: KTask, file: number): KGen;
    ____fput(t: KTask, file: number): KGen;
    __fput(t: KTask, file: number): KGen;
    delayed_fput(t: KTask): KGen;
    task_work_run(t: KTask): KGen;
    close_fd(t: KTask, fd: number): KGen<number>;
    filp_close(t: KTask, file: number): KGen;
    exit_files(t: KTask): KGen;
    put_files_struct(t: KTask, files: number): KGen;
    exit_task_work(t: KTask): KGen;
    vm_mmap_pgoff(t: KTask, fd: number, mm: MmStruct): KGen<number>;
    vm_munmap(t: KTask, mm: MmStruct, vpn: number): KGen<number>;
    remove_vma(t: KTask, mm: MmStruct, vpn: number): KGen;
  }
}

/** Files that can be live at once: every fd of every process, and a mapping's file each whose fd is closed. */
function fileSlots(processes: number): number {
  return Math.max(8, (NR_OPEN + NR_FILE_VMAS) * processes);
}

/** Static words defineFiles (and the task_structs) take, to size a kernel layout. */
export function filesWords(processes: number): number {
  const p = Math.max(1, processes);
  return FS_TABLE.words + fileSlots(processes) * FILE.words + p * (FILES_STRUCT.words + TASK_STRUCT.words) + (processes + 1) * MM_FILE_VMAS.words;
}

/**
 * The files, files_structs and file mappings of `processes` processes (whose task_structs this declares too; the
 * processes' mms, ids 1..processes, may map files), and the fs functions by kernel name; once a kernel.
 */
export function defineFiles(k: Kernel, processes: number): void {
  if (states.has(k)) return;
  const n = fileSlots(processes);
  const tasks = defineTasks(k, processes);
  const off = {
    table: k.statics.alloc(FS_TABLE.words, 'fs table'),
    files: k.statics.alloc(n * FILE.words, 'struct file'),
    filesStructs: k.statics.alloc(Math.max(1, processes) * FILES_STRUCT.words, 'files_struct'),
    vmas: k.statics.alloc((processes + 1) * MM_FILE_VMAS.words, 'file mappings'),
  };
  const delayedFput = defineWork(k, 'delayed_fput_work', (t) => k.fn.delayed_fput(t));
  const st: FsState = {
    files: n,
    mms: processes + 1,
    tasks,
    off,
    f: k.struct(FILE),
    fs: k.struct(FILES_STRUCT),
    vm: k.struct(MM_FILE_VMAS),
    tab: k.struct(FS_TABLE),
    fops: [],
    delayedFput,
    uafReported: new Set(),
  };
  states.set(k, st);
  k.onAttach(() => {
    st.uafReported.clear();
    // Every process starts with its files_struct (fork gave it one): task->files, one user.
    for (let i = 0; i < processes; i++) {
      const at = tasks.at(i);
      if (tasks.view.files.get(at) !== 0 || tasks.view.work_exited.get(at) !== 0) continue;
      tasks.view.files.set(at, i + 1);
      st.fs.count.set(filesAt(k, st, i + 1), 1);
    }
  });
  k.onEnd(() => leakCheck(k, st));
  defineFileFunctions(k, st);
  defineOpenClose(k, st);
  defineMmapFunctions(k, st);
}

/** Register a driver's file_operations; its id is what f_op holds. */
export function registerFops(k: Kernel, ops: FileOperations): number {
  const st = fsOf(k);
  st.fops.push(ops);
  return st.fops.length;
}

// ---- words ----

function fileAt(k: Kernel, st: FsState, file: number): number {
  if (file < 1 || file > st.files) throw new Error(`fs: no file ${file}`);
  return element(FILE, k.mem.statics + st.off.files, file - 1);
}

function filesAt(k: Kernel, st: FsState, files: number): number {
  return element(FILES_STRUCT, k.mem.statics + st.off.filesStructs, files - 1);
}

/** mm's file mappings (its word offset), or -1: an mm no process runs in maps no file. */
function vmasAt(k: Kernel, st: FsState, mm: MmStruct): number {
  return mm.id < st.mms ? element(MM_FILE_VMAS, k.mem.statics + st.off.vmas, mm.id) : -1;
}

function opsOf(k: Kernel, st: FsState, file: number): FileOperations {
  const ops = st.fops[st.f.f_op.get(fileAt(k, st, file)) - 1];
  if (!ops) throw new Error(`fs: file ${file} has no f_op`);
  return ops;
}

/** file->private_data (perform, or a read of what the caller's reference keeps). */
export function filePrivate(k: Kernel, file: number): number {
  const st = fsOf(k);
  return st.f.private_data.get(fileAt(k, st, file));
}

/** The file's private_data word (its absolute offset): a step that reads or sets it declares it in its footprint. */
export function filePrivateAt(k: Kernel, file: number): number {
  const st = fsOf(k);
  return st.f.private_data.addr(fileAt(k, st, file));
}

export function setFilePrivate(k: Kernel, file: number, v: number): void {
  const st = fsOf(k);
  st.f.private_data.set(fileAt(k, st, file), v);
}

/** The char device's minor a file was opened on. */
export function fileInode(k: Kernel, file: number): number {
  const st = fsOf(k);
  return st.f.f_inode.get(fileAt(k, st, file)) - 1;
}

/** The vpns of mm's file mappings (exit_mmap removes each: remove_vma). */
export function fileVmas(k: Kernel, mm: MmStruct): number[] {
  const st = states.get(k);
  if (!st) return [];
  const at = vmasAt(k, st, mm);
  const out: number[] = [];
  if (at < 0) return out;
  for (let s = 0; s < NR_FILE_VMAS; s++) if (st.vm.vm_file.get(at, s) !== 0) out.push(mm.pages + s);
  return out;
}

/** The file pointer behind fd of process i (0: none), for tests. */
export function fdFile(k: Kernel, i: number, fd: number): number {
  const st = fsOf(k);
  const files = st.tasks.view.files.get(st.tasks.at(i));
  if (files === 0 || fd < FD_BASE || fd >= FD_BASE + NR_OPEN) return 0;
  return st.fs.fdt.get(filesAt(k, st, files), fd - FD_BASE);
}

// ---- KASAN ----

function track(k: Kernel, by: number, chain: number): SlabTrack {
  const label = k.mem.stringAt(by);
  const i = label.lastIndexOf('/');
  const c = k.mem.stringAt(chain);
  return { pid: i < 0 ? 0 : Number(label.slice(i + 1)), comm: i < 0 ? label : label.slice(0, i), chain: c === '' ? [] : c.split('\n') };
}

function objectInfo(k: Kernel, st: FsState, file: number): SlabObjectInfo {
  const b = fileAt(k, st, file);
  const freed = st.f.state.get(b) === F_FREED;
  return {
    obj: b,
    state: freed ? 'free' : 'allocated',
    words: FILE.words,
    slotWords: FILE.words,
    cache: 'filp',
    alloc: track(k, st.f.alloc_by.get(b), st.f.alloc_chain.get(b)),
    free: freed ? track(k, st.f.free_by.get(b), st.f.free_chain.get(b)) : undefined,
  };
}

/** KASAN's check of an access to a file by t (perform only): false, and reported once, when it is freed. */
function fileAccess(k: Kernel, t: KTask, st: FsState, file: number, field: number, write: boolean): boolean {
  const b = fileAt(k, st, file);
  if (st.f.state.get(b) === F_LIVE) return true;
  if (k.enabled('kasan') && !st.uafReported.has(file)) {
    st.uafReported.add(file);
    k.report(accessReport(k, t, 'slab-use-after-free', b + field, write, objectInfo(k, st, file)));
  }
  return false;
}

/** What fileAccess reads of a file: its state, and for KASAN's report the tracks (their strings are written once). */
function fileAccessFootprint(k: Kernel, st: FsState, file: number, out: number[]): void {
  const b = fileAt(k, st, file);
  const f = st.f;
  out.push(read(f.state.addr(b)), read(f.alloc_by.addr(b)), read(f.alloc_chain.addr(b)), read(f.free_by.addr(b)), read(f.free_chain.addr(b)));
}

/** Every word of a files_struct's fd table, written (a point that searches or empties it). */
function fdtFootprint(k: Kernel, st: FsState, files: number): number[] {
  const at = filesAt(k, st, files);
  const out: number[] = [];
  for (let s = 0; s < NR_OPEN; s++) out.push(st.fs.fdt.addr(at, s));
  return out;
}

/** Who t is and where it is, interned as a file's alloc or free track. */
function trackFootprint(k: Kernel, t: KTask, out: number[]): void {
  internFootprint(k, [t.label, t.chain().join('\n')], out);
}

// ---- the references: alloc, fget, fput and where the last one's release runs ----

function defineFileFunctions(k: Kernel, st: FsState): void {
  const { f } = st;
  k.fns.define('alloc_empty_file', 'fs/file_table.c', function* (t, fops, inode) {
    // The search from next_file reads each slot's state up to a free one, which it fills whole.
    const footprint = (): number[] => {
      const table = k.mem.statics + st.off.table;
      const out = [st.tab.next_file.addr(table)];
      const start = st.tab.next_file.get(table);
      for (let j = 0; j < st.files; j++) {
        const b = fileAt(k, st, ((start + j) % st.files) + 1);
        if (f.state.get(b) === F_LIVE) {
          out.push(read(f.state.addr(b)));
          continue;
        }
        for (let w = b; w < b + FILE.words; w++) out.push(w);
        trackFootprint(k, t, out);
        break;
      }
      return out;
    };
    return yield* k.stepOn(t, 'alloc_empty_file', footprint, () => {
      const start = st.tab.next_file.get(k.mem.statics + st.off.table);
      for (let j = 0; j < st.files; j++) {
        const file = ((start + j) % st.files) + 1;
        const b = fileAt(k, st, file);
        if (f.state.get(b) === F_LIVE) continue;
        k.i32.fill(0, b, b + FILE.words);
        f.f_count.set(b, 1);
        f.f_op.set(b, fops);
        f.f_inode.set(b, inode + 1);
        f.state.set(b, F_LIVE);
        f.alloc_by.set(b, k.mem.intern(t.label));
        f.alloc_chain.set(b, k.mem.intern(t.chain().join('\n')));
        st.tab.next_file.set(k.mem.statics + st.off.table, file % st.files);
        st.uafReported.delete(file);
        return file;
      }
      return -ENFILE;
    });
  });
  k.fns.define('fget', 'fs/file.c', function* (t, fd) {
    const files = filesOfCurrent(k, st, t);
    if (files === 0 || fd < FD_BASE || fd >= FD_BASE + NR_OPEN) return 0;
    const footprint = (): number[] => {
      const slot = st.fs.fdt.addr(filesAt(k, st, files), fd - FD_BASE);
      const out = [read(slot)];
      const file = k.i32[slot] as number;
      if (file > 0) {
        fileAccessFootprint(k, st, file, out);
        out.push(f.f_count.addr(fileAt(k, st, file)));
      }
      return out;
    };
    return yield* k.stepOn(t, `fget(${fd})`, footprint, () => {
      const file = st.fs.fdt.get(filesAt(k, st, files), fd - FD_BASE);
      if (file === 0 || !fileAccess(k, t, st, file, FILE.offset.f_count, true)) return 0;
      f.f_count.atomic_inc(fileAt(k, st, file));
      return file;
    });
  });
  k.fns.define('fput', 'fs/file_table.c', (t, file) => fput(k, st, t, file));
  k.fns.define('____fput', 'fs/file_table.c', (t, file) => k.fn.__fput(t, file));
  k.fns.define('__fput', 'fs/file_table.c', function* (t, file) {
    // (Computed, as the others below whose words are a file's: a bad file throws in the perform, as before.)
    const mode = (): number[] => {
      const out = [read(f.f_mode.addr(fileAt(k, st, file)))];
      fileAccessFootprint(k, st, file, out);
      return out;
    };
    const opened = yield* k.stepOn(t, '__fput: file->f_mode', mode, () => fileAccess(k, t, st, file, FILE.offset.f_mode, false) && (f.f_mode.get(fileAt(k, st, file)) & FMODE_OPENED) !== 0);
    // The driver's release only for a file whose open succeeded (FMODE_OPENED).
    if (opened) yield* (k.fn[opsOf(k, st, file).release] as FopRelease)(t, file);
    const footprint = (): number[] => {
      const b = fileAt(k, st, file);
      const out = [f.free_by.addr(b), f.free_chain.addr(b), f.state.addr(b), read(f.alloc_by.addr(b)), read(f.alloc_chain.addr(b))];
      trackFootprint(k, t, out);
      return out;
    };
    yield* k.stepOn(t, 'file_free', footprint, () => {
      const b = fileAt(k, st, file);
      if (!fileAccess(k, t, st, file, FILE.offset.state, true)) return;
      f.free_by.set(b, k.mem.intern(t.label));
      f.free_chain.set(b, k.mem.intern(t.chain().join('\n')));
      f.state.set(b, F_FREED);
    });
  });
  k.fns.define('delayed_fput', 'fs/file_table.c', function* (t) {
    // llist_del_all(&delayed_fput_list), then __fput of each.
    const llist: number[] = [];
    for (let file = 1; file <= st.files; file++) llist.push(f.f_llist.addr(fileAt(k, st, file)));
    const list = yield* k.stepOn(t, 'llist_del_all(&delayed_fput_list)', llist, () => {
      const out: number[] = [];
      for (let file = 1; file <= st.files; file++) {
        const b = fileAt(k, st, file);
        if (f.f_llist.get(b) === 0) continue;
        f.f_llist.set(b, 0);
        out.push(file);
      }
      return out;
    });
    for (const file of list) yield* k.fn.__fput(t, file);
  });
  k.fns.define('task_work_run', 'kernel/task_work.c', function* (t) {
    const i = current(k, t);
    if (i < 0) return;
    // The task's list, newest first (task_work_add pushes at the head); callbacks queued meanwhile run next round.
    for (;;) {
      const works = yield* k.stepOn(t, 'task_work_run: xchg(&task->task_works, NULL)', () => takeTaskWorksFootprint(k, st, i), () =>
        takeTaskWorks(k, st, i),
      );
      if (works.length === 0) return;
      for (const file of works) yield* k.fn.____fput(t, file);
    }
  });
  k.fns.define('exit_task_work', 'include/linux/task_work.h', function* (t) {
    const i = current(k, t);
    if (i < 0) return;
    yield* k.fn.task_work_run(t);
    // task_work_run(): its last xchg leaves &work_exited, so a later task_work_add fails (fput: delayed_fput).
    const exited = st.tasks.view.work_exited.addr(st.tasks.at(i));
    yield* k.stepOn(t, 'task->task_works = &work_exited', [exited], () => void st.tasks.view.work_exited.set(st.tasks.at(i), 1));
  });
}

/** What takeTaskWorks(i) touches: task_works, and when callbacks are queued, every file's f_task and its own files' callbacks. */
function takeTaskWorksFootprint(k: Kernel, st: FsState, i: number): number[] {
  const at = st.tasks.at(i);
  const works = st.tasks.view.task_works;
  if (works.get(at) === 0) return [read(works.addr(at))];
  const out = [works.addr(at)];
  for (let file = 1; file <= st.files; file++) {
    const b = fileAt(k, st, file);
    if (st.f.f_task.get(b) !== i + 1) out.push(read(st.f.f_task.addr(b)));
    else out.push(st.f.f_task.addr(b), st.f.f_task_work.addr(b));
  }
  return out;
}

/** The last fput's callbacks queued on process i's task_works, newest first; the list emptied. Perform only. */
function takeTaskWorks(k: Kernel, st: FsState, i: number): number[] {
  if (st.tasks.view.task_works.get(st.tasks.at(i)) === 0) return [];
  const works: [number, number][] = [];
  for (let file = 1; file <= st.files; file++) {
    const b = fileAt(k, st, file);
    if (st.f.f_task.get(b) !== i + 1) continue;
    works.push([st.f.f_task_work.get(b), file]);
    st.f.f_task.set(b, 0);
    st.f.f_task_work.set(b, 0);
  }
  st.tasks.view.task_works.set(st.tasks.at(i), 0);
  return works.sort((a, b) => b[0] - a[0]).map(([, file]) => file);
}

/**
 * What fput(file) by a task of process i (-1: none) may touch: KASAN's look at the file (its state, and for a report
 * its tracks), f_count, and for the last reference the task_work or delayed_fput_list fields it queues the file on.
 */
function fputFootprint(k: Kernel, st: FsState, i: number, file: number): number[] {
  const { f, tasks } = st;
  const b = fileAt(k, st, file);
  const table = k.mem.statics + st.off.table;
  const out = [read(f.state.addr(b)), read(f.alloc_by.addr(b)), read(f.alloc_chain.addr(b)), read(f.free_by.addr(b)), read(f.free_chain.addr(b))];
  out.push(f.f_count.addr(b), f.f_task_work.addr(b), f.f_task.addr(b), f.f_llist.addr(b), st.tab.task_work_seq.addr(table));
  if (i >= 0) out.push(read(tasks.view.work_exited.addr(tasks.at(i))), tasks.view.task_works.addr(tasks.at(i)));
  return out;
}

/**
 * fput: drop a reference; the last one queues ____fput on current's task_works (a user task not yet past
 * exit_task_work) or the file on delayed_fput_list, with the delayed_fput work scheduled (a kernel thread).
 */
function* fput(k: Kernel, st: FsState, t: KTask, file: number): KGen {
  const i = current(k, t);
  const { f, tasks } = st;
  const how = yield* k.stepOn(t, `fput(file ${file})`, () => fputFootprint(k, st, i, file), () => {
    const b = fileAt(k, st, file);
    if (!fileAccess(k, t, st, file, FILE.offset.f_count, true)) return 'none';
    if (f.f_count.atomic_dec_return(b) !== 0) return 'none';
    const at = i < 0 ? -1 : tasks.at(i);
    if (at >= 0 && tasks.view.work_exited.get(at) === 0) {
      // task_work_add(task, &file->f_task_work, TWA_RESUME)
      f.f_task_work.set(b, st.tab.task_work_seq.atomic_inc_return(k.mem.statics + st.off.table));
      f.f_task.set(b, i + 1);
      tasks.view.task_works.atomic_inc(at);
      return 'task_work';
    }
    f.f_llist.set(b, 1);
    return 'delayed';
  });
  // schedule_delayed_work(&delayed_fput_work, 1): one jiffy later, on system_wq.
  if (how === 'delayed') yield* queue_delayed_work(k, t, system_wq(k), st.delayedFput, 1);
}

// ---- fds: open, close, exit_files ----

function filesOfCurrent(k: Kernel, st: FsState, t: KTask): number {
  const i = current(k, t);
  return i < 0 ? 0 : st.tasks.view.files.get(st.tasks.at(i));
}

function defineOpenClose(k: Kernel, st: FsState): void {
  const { f, fs } = st;
  // open(2) of a char device: a file with its f_op, f_op->open, then the fd installed (get_unused_fd_flags first).
  k.fns.define('do_sys_open', 'fs/open.c', function* (t, fops, inode, mm, flags) {
    const files = filesOfCurrent(k, st, t);
    if (files === 0) return -EBADF;
    const slot = yield* k.stepOn(t, 'get_unused_fd_flags', fdtFootprint(k, st, files), () => {
      const at = filesAt(k, st, files);
      for (let s = 0; s < NR_OPEN; s++) {
        if (fs.fdt.get(at, s) !== 0) continue;
        fs.fdt.set(at, s, -1); // reserved (the kernel's open_fds bit) until fd_install
        return s;
      }
      return -EMFILE;
    });
    if (slot < 0) return slot;
    const file = yield* k.fn.alloc_empty_file(t, fops, inode);
    const ret = file < 0 ? file : yield* (k.fn[(st.fops[fops - 1] as FileOperations).open] as FopOpen)(t, file, mm, flags);
    if (file > 0 && ret === 0) yield* k.stepOn(t, 'file->f_mode |= FMODE_OPENED', () => [f.f_mode.addr(fileAt(k, st, file))], () => void f.f_mode.atomic_or(fileAt(k, st, file), FMODE_OPENED));
    // A failed open: the fd goes back (put_unused_fd) and the file with it, without a release.
    if (file > 0 && ret < 0) yield* k.fn.fput(t, file);
    yield* k.stepOn(t, ret < 0 ? 'put_unused_fd' : 'fd_install', [fs.fdt.addr(filesAt(k, st, files), slot)], () => void fs.fdt.set(filesAt(k, st, files), slot, ret < 0 ? 0 : file));
    return ret < 0 ? ret : FD_BASE + slot;
  });
  k.fns.define('close_fd', 'fs/file.c', function* (t, fd) {
    const files = filesOfCurrent(k, st, t);
    if (files === 0 || fd < FD_BASE || fd >= FD_BASE + NR_OPEN) return -EBADF;
    // pick_file under files->file_lock: the fd is free from here on.
    const file = yield* k.stepOn(t, `close_fd(${fd}): pick_file`, [fs.fdt.addr(filesAt(k, st, files), fd - FD_BASE)], () => {
      const at = filesAt(k, st, files);
      const file = fs.fdt.get(at, fd - FD_BASE);
      if (file <= 0) return 0;
      fs.fdt.set(at, fd - FD_BASE, 0);
      return file;
    });
    if (file === 0) return -EBADF;
    yield* k.fn.filp_close(t, file);
    return 0;
  });
  // filp_close: f_op->flush (none here), then the fd's reference goes.
  k.fns.define('filp_close', 'fs/open.c', (t, file) => k.fn.fput(t, file));
  k.fns.define('exit_files', 'kernel/exit.c', function* (t) {
    const i = current(k, t);
    if (i < 0) return;
    const files = yield* k.stepOn(t, 'task_lock: tsk->files = NULL', [st.tasks.view.files.addr(st.tasks.at(i))], () => {
      const at = st.tasks.at(i);
      const files = st.tasks.view.files.get(at);
      st.tasks.view.files.set(at, 0);
      return files;
    });
    if (files !== 0) yield* k.fn.put_files_struct(t, files);
  });
  k.fns.define('put_files_struct', 'fs/file.c', function* (t, files) {
    const last = yield* k.stepOn(t, 'atomic_dec_and_test(&files->count)', [fs.count.addr(filesAt(k, st, files))], () => fs.count.atomic_dec_return(filesAt(k, st, files)) === 0);
    if (!last) return;
    // close_files: every fd still open, in fd order.
    const open = yield* k.stepOn(t, 'close_files', fdtFootprint(k, st, files), () => {
      const at = filesAt(k, st, files);
      const out: number[] = [];
      for (let s = 0; s < NR_OPEN; s++) {
        const file = fs.fdt.get(at, s);
        fs.fdt.set(at, s, 0);
        if (file > 0) out.push(file);
      }
      return out;
    });
    for (const file of open) yield* k.fn.filp_close(t, file);
  });
}

// ---- file mappings: the portal's vma holds a reference on its file ----

function defineMmapFunctions(k: Kernel, st: FsState): void {
  const { vm } = st;
  // mmap(2) of an fd: mmap_region under mmap_lock for write — vma->vm_file = get_file(file), then f_op->mmap.
  k.fns.define('vm_mmap_pgoff', 'mm/util.c', function* (t, fd, mm) {
    const file = yield* k.fn.fget(t, fd);
    if (file === 0) return -EBADF;
    const mmap = vmasAt(k, st, mm) < 0 ? undefined : opsOf(k, st, file).mmap;
    let ret = -EINVAL;
    if (mmap) {
      yield* down_write(k, t, mm.mmapLock);
      const at = vmasAt(k, st, mm);
      const region = (): number[] => {
        const out = [st.f.f_count.addr(fileAt(k, st, file))];
        for (let s = 0; s < NR_FILE_VMAS; s++) out.push(vm.vm_file.addr(at, s));
        fileAccessFootprint(k, st, file, out);
        return out;
      };
      const slot = yield* k.stepOn(t, 'mmap_region: vma->vm_file = get_file(file)', region, () => {
        const at = vmasAt(k, st, mm);
        for (let s = 0; s < NR_FILE_VMAS; s++) {
          if (vm.vm_file.get(at, s) !== 0) continue;
          if (!fileAccess(k, t, st, file, FILE.offset.f_count, true)) return -EBADF;
          st.f.f_count.atomic_inc(fileAt(k, st, file));
          vm.vm_file.set(at, s, file);
          return s;
        }
        return -ENOMEM;
      });
      ret = slot < 0 ? slot : yield* (k.fn[mmap] as FopMmap)(t, file, mm, mm.pages + slot);
      // A failed f_op->mmap: the vma goes again, and its reference (fput; no vm_ops->close).
      if (slot >= 0 && ret < 0) {
        yield* k.stepOn(t, 'mmap_region: unmap_and_free_vma', [vm.vm_file.addr(at, slot)], () => void vm.vm_file.set(vmasAt(k, st, mm), slot, 0));
        yield* k.fn.fput(t, file);
      }
      yield* up_write(k, t, mm.mmapLock);
      if (slot >= 0 && ret === 0) ret = mm.pages + slot;
    }
    yield* k.fn.fput(t, file); // fdput
    return ret;
  });
  // munmap(2) of a file mapping: the vma detached under mmap_lock for write, then removed (its file put).
  k.fns.define('vm_munmap', 'mm/mmap.c', function* (t, mm, vpn) {
    const s = vpn - mm.pages;
    if (s < 0 || s >= NR_FILE_VMAS || vmasAt(k, st, mm) < 0) return -EINVAL;
    yield* down_write(k, t, mm.mmapLock);
    const had = yield* k.stepOn(t, `do_vmi_munmap(${mm.name}, ${vpn}, 1)`, [read(vm.vm_file.addr(vmasAt(k, st, mm), s))], () => vm.vm_file.get(vmasAt(k, st, mm), s) !== 0);
    if (had) yield* k.fn.remove_vma(t, mm, vpn);
    yield* up_write(k, t, mm.mmapLock);
    return 0;
  });
  // remove_vma: vm_ops->close (uacce_vma_close frees the region: nothing the model keeps), fput(vma->vm_file).
  k.fns.define('remove_vma', 'mm/mmap.c', function* (t, mm, vpn) {
    const at = vmasAt(k, st, mm);
    const file = yield* k.stepOn(t, 'remove_vma: vma->vm_file', at < 0 ? [] : [vm.vm_file.addr(at, vpn - mm.pages)], () => {
      const at = vmasAt(k, st, mm);
      const file = vm.vm_file.get(at, vpn - mm.pages);
      vm.vm_file.set(at, vpn - mm.pages, 0);
      return file;
    });
    if (file !== 0) yield* k.fn.fput(t, file);
  });
}

// ---- teardown ----

/**
 * kmemleak's view of files at the end: a file whose f_count is more than the fds, mappings and pending fputs
 * that hold it had an fget never put. A process that never exited still holds its fds (not a leak).
 */
function leakCheck(k: Kernel, st: FsState): void {
  if (!k.enabled('leaks') || k.tasksLeftBlocked) return;
  const holders = new Map<number, number>();
  const add = (file: number) => holders.set(file, (holders.get(file) ?? 0) + 1);
  for (let i = 0; i < st.tasks.count; i++) {
    const files = st.tasks.view.files.get(st.tasks.at(i));
    if (files === 0) continue;
    for (let s = 0; s < NR_OPEN; s++) {
      const file = st.fs.fdt.get(filesAt(k, st, files), s);
      if (file > 0) add(file);
    }
  }
  for (let m = 0; m < st.mms; m++) {
    const at = element(MM_FILE_VMAS, k.mem.statics + st.off.vmas, m);
    for (let s = 0; s < NR_FILE_VMAS; s++) {
      const file = st.vm.vm_file.get(at, s);
      if (file > 0) add(file);
    }
  }
  for (let file = 1; file <= st.files; file++) {
    const b = fileAt(k, st, file);
    if (st.f.state.get(b) !== F_LIVE) continue;
    const count = st.f.f_count.get(b);
    if (count === 0 || count <= (holders.get(file) ?? 0)) continue;
    const o = objectInfo(k, st, file);
    const r = leakReport(k, o, Array.from(k.i32.subarray(b, b + FILE.words)));
    k.report({ ...r, text: `${r.text}\n  iommu-sim: file 0x${fmtAddr(kaddr(k, b))} has f_count ${count}, held by ${holders.get(file) ?? 0} fds and mappings: an fget never put` });
  }
}
