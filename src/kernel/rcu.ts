// RCU (kernel/rcu/tree.c, kernel/rcu/update.c, include/linux/rcupdate.h): read-side critical sections, grace
// periods (synchronize_rcu, call_rcu, the polled API, rcu_barrier), RCU-protected pointers, and the checkers
// that go with them: `suspicious RCU usage` for an rcu_dereference() outside a reader, and an object freed
// while a reader that dereferenced it is still inside its section (no kernel wording: the kernel only finds
// this later, as a KASAN use-after-free).
//
// Readers register in a shared table (one slot per reader: its task, a sequence number bumped when it leaves,
// and the objects it dereferenced), so that a grace period started on one thread sees readers on every thread.
// A grace period is a snapshot of the occupied slots with their sequence numbers; it has elapsed once every
// one of those slots has moved on. Readers that start after the snapshot are not waited for — a real grace
// period, not a "wait until nobody reads".
//
// rcu_init(k) declares the table: it must run when the workload is built (declaring an RCU pointer or callback
// does it), since static memory cannot be laid out once the run has started.
//
// The stall detector (kernel/rcu/tree_stall.h): a grace period that some reader of its snapshot still holds up
// rcu_cpu_stall_timeout (21 s) of simulated time after it started is reported as the kernel reports it, naming
// the readers — a task preempted or blocked inside its read-side section as rcu_preempt's blocked task, a task
// still running in it as a CPU that has not passed a quiescent state.
import { read, reads } from '../runtime/footprint.js';
import type { Wire } from '../runtime/model.js';
import { type StepEnv, TASK_BASE } from '../runtime/task.js';
import type { KTask } from './context.js';
import { callTrace, heldLocksLines, type KernelFinding, taskFinding } from './findings.js';
import type { Kernel, KGen, TimeWatcher } from './kernel.js';
import { type LockRef, lockHolderFootprint, noteAcquired, noteReleased, staticLock } from './lock.js';
import { array, struct, type ViewOf, word } from './struct.js';
import { internFootprint } from './memory.js';

/** Objects remembered per reader for the free check (the most recent ones). */
const RCU_DEREFS = 4;

/**
 * Model: one reader of RCU or of an srcu_struct (the kernel keeps rcu_read_lock_nesting in the task and per-CPU
 * lock/unlock counts in srcu_data; a table of readers is what lets a grace period on one thread see readers on
 * every other).
 */
const RCU_READER = struct('rcu_reader', {
  task: word, // task id inside, 0: free
  seq: word, // bumped each time a reader leaves the slot
  label: word, // interned comm/pid of the reader
  nr_derefs: word, // dereferences recorded so far (a ring of `derefs` entries)
  derefs: array(0), // `derefs` object handles, then as many interned "held locks + call trace" of each
});

/** A grace-period cookie: the readers active when it was taken, as (slot, sequence) pairs. */
export type RcuGp = number[];

/** Static words of RCU's reader table and of one srcu_struct's, for `slots` readers (to size a layout). */
export function readerTableWords(slots: number): { rcu: number; srcu: number } {
  return { rcu: slots * (RCU_READER.words + 2 * RCU_DEREFS), srcu: slots * RCU_READER.words };
}

/**
 * A table of readers in static shared memory, for RCU and for each srcu_struct. Its writes happen only in
 * a point's perform (claim, retire, record); everything else is a read.
 */
export class ReaderTable {
  private readonly off: number;
  private readonly words: number;
  private readonly r: ViewOf<typeof RCU_READER>;
  /** What snapshot() reads (every slot's task and seq): the same words at every call, so made once. */
  private snapshotWords: number[] | undefined;

  constructor(
    private readonly k: Kernel,
    readonly name: string,
    readonly slots: number,
    /** Dereferences remembered per slot (0: none). */
    readonly derefs: number,
  ) {
    this.words = RCU_READER.words + 2 * derefs;
    this.off = k.statics.alloc(slots * this.words, `${name} readers`);
    this.r = k.view(RCU_READER);
  }

  private slot(i: number): number {
    return this.k.mem.statics + this.off + i * this.words;
  }

  /** Take a free slot for t (perform only). */
  claim(t: KTask): number {
    const r = this.r;
    for (let i = 0; i < this.slots; i++) {
      const s = this.slot(i);
      if (r.task.READ_ONCE(s) !== 0) continue;
      r.task.WRITE_ONCE(s, t.id);
      r.label.WRITE_ONCE(s, this.derefs > 0 ? this.k.mem.intern(t.label) : 0);
      r.nr_derefs.WRITE_ONCE(s, 0);
      return i;
    }
    // Workloads size the table for every task they can have reading at once (KernelOptions.readerSlots).
    throw new Error(`${this.name}: more than ${this.slots} tasks inside its read side at once: the workload sized its reader table (readerSlots) too small`);
  }

  /** What claim(t) touches: the task words read up to the first free slot, that slot's words, the label interned. */
  claimFootprint(t: KTask, out: number[]): void {
    const r = this.r;
    for (let i = 0; i < this.slots; i++) {
      const s = this.slot(i);
      if (r.task.READ_ONCE(s) !== 0) {
        out.push(read(r.task.addr(s)));
        continue;
      }
      out.push(r.task.addr(s), r.label.addr(s), r.nr_derefs.addr(s));
      if (this.derefs > 0) internFootprint(this.k, [t.label], out);
      return;
    }
  }

  /** What retire(i) writes. */
  retireFootprint(i: number, out: number[]): void {
    const s = this.slot(i);
    out.push(this.r.seq.addr(s), this.r.nr_derefs.addr(s), this.r.task.addr(s));
  }

  /** What snapshot() reads (one array, made at the first call: do not change it). */
  snapshotFootprint(): readonly number[] {
    if (this.snapshotWords) return this.snapshotWords;
    const out: number[] = [];
    for (let i = 0; i < this.slots; i++) {
      const s = this.slot(i);
      out.push(read(this.r.task.addr(s)), read(this.r.seq.addr(s)));
    }
    this.snapshotWords = out;
    return out;
  }

  /** The reader leaves its slot: every grace period that saw it inside may now end (perform only). */
  retire(i: number): void {
    const r = this.r;
    const s = this.slot(i);
    r.seq.atomic_inc(s);
    r.nr_derefs.WRITE_ONCE(s, 0);
    r.task.WRITE_ONCE(s, 0);
  }

  /** The address of slot i's task word (what taskAt reads). */
  taskWord(i: number): number {
    return this.r.task.addr(this.slot(i));
  }

  taskAt(i: number): number {
    return this.r.task.READ_ONCE(this.slot(i));
  }

  /** The readers inside now. */
  snapshot(): RcuGp {
    const gp: RcuGp = [];
    const r = this.r;
    for (let i = 0; i < this.slots; i++) {
      const s = this.slot(i);
      if (r.task.READ_ONCE(s) !== 0) gp.push(i, r.seq.READ_ONCE(s));
    }
    return gp;
  }

  /** Has every reader of the snapshot left its section? */
  elapsed(gp: readonly number[]): boolean {
    const r = this.r;
    for (let j = 0; j + 1 < gp.length; j += 2) {
      if (r.seq.READ_ONCE(this.slot(gp[j] as number)) === gp[j + 1]) return false;
    }
    return true;
  }

  /** The words elapsed(gp) reads (Point.watch). */
  seqWords(gp: readonly number[]): number[] {
    const out: number[] = [];
    for (let j = 0; j + 1 < gp.length; j += 2) out.push(this.r.seq.addr(this.slot(gp[j] as number)));
    return out;
  }

  /** Every reader of the snapshot still inside. */
  blockers(gp: readonly number[]): number[] {
    const r = this.r;
    const out: number[] = [];
    for (let j = 0; j + 1 < gp.length; j += 2) {
      const s = this.slot(gp[j] as number);
      if (r.seq.READ_ONCE(s) === gp[j + 1]) {
        const task = r.task.READ_ONCE(s);
        if (task !== 0) out.push(task);
      }
    }
    return out;
  }

  /** A reader of the snapshot still inside (for waits-for edges), if any. */
  blocker(gp: readonly number[]): number | undefined {
    const r = this.r;
    for (let j = 0; j + 1 < gp.length; j += 2) {
      const s = this.slot(gp[j] as number);
      if (r.seq.READ_ONCE(s) === gp[j + 1]) {
        const task = r.task.READ_ONCE(s);
        if (task !== 0) return task;
      }
    }
    return undefined;
  }

  /**
   * What record(i, obj, site) touches: the slot's remembered objects, read; when obj is not among them, the
   * slot's ring and count written and the site interned.
   */
  recordFootprint(i: number, obj: number, site: () => string, out: number[]): void {
    if (this.derefs === 0) return;
    const r = this.r;
    const s = this.slot(i);
    const n = r.nr_derefs.READ_ONCE(s);
    const m = Math.min(n, this.derefs);
    for (let j = 0; j < m; j++) {
      if (r.derefs.READ_ONCE(s, j) !== obj) continue;
      out.push(read(r.nr_derefs.addr(s)));
      for (let x = 0; x <= j; x++) out.push(read(r.derefs.addr(s, x)));
      return;
    }
    out.push(r.nr_derefs.addr(s));
    for (let x = 0; x < 2 * this.derefs; x++) out.push(r.derefs.addr(s, x));
    internFootprint(this.k, [site()], out);
  }

  /** Remember that the reader in slot i dereferenced obj, and where (perform only). */
  record(i: number, obj: number, site: string): void {
    if (this.derefs === 0) return;
    const r = this.r;
    const s = this.slot(i);
    const n = r.nr_derefs.READ_ONCE(s);
    const m = Math.min(n, this.derefs);
    for (let j = 0; j < m; j++) if (r.derefs.READ_ONCE(s, j) === obj) return;
    const j = n % this.derefs;
    r.derefs.WRITE_ONCE(s, j, obj);
    r.derefs.WRITE_ONCE(s, this.derefs + j, this.k.mem.intern(site));
    r.nr_derefs.WRITE_ONCE(s, n + 1);
  }

  /**
   * The words holdersOf(obj) reads (footprint.ts's encoding), appended to out: every slot's task, an occupied
   * slot's recorded dereferences, and the label and site of one that names obj. Pure.
   */
  holdersFootprint(obj: number, out: number[]): void {
    const r = this.r;
    for (let i = 0; i < this.slots; i++) {
      const s = this.slot(i);
      out.push(read(r.task.addr(s)));
      if (r.task.READ_ONCE(s) === 0) continue;
      out.push(read(r.nr_derefs.addr(s)));
      const m = Math.min(r.nr_derefs.READ_ONCE(s), this.derefs);
      for (let j = 0; j < m; j++) {
        out.push(read(r.derefs.addr(s, j)));
        if (r.derefs.READ_ONCE(s, j) !== obj) continue;
        out.push(read(r.label.addr(s)), read(r.derefs.addr(s, this.derefs + j)));
        break;
      }
    }
  }

  /** Readers inside now that dereferenced obj: their task, label and where they did it. */
  holdersOf(obj: number): { task: number; label: string; site: string }[] {
    const out: { task: number; label: string; site: string }[] = [];
    const r = this.r;
    for (let i = 0; i < this.slots; i++) {
      const s = this.slot(i);
      const task = r.task.READ_ONCE(s);
      if (task === 0) continue;
      const m = Math.min(r.nr_derefs.READ_ONCE(s), this.derefs);
      for (let j = 0; j < m; j++) {
        if (r.derefs.READ_ONCE(s, j) !== obj) continue;
        const mem = this.k.mem;
        out.push({
          task,
          label: mem.stringAt(r.label.READ_ONCE(s)),
          site: mem.stringAt(r.derefs.READ_ONCE(s, this.derefs + j)),
        });
        break;
      }
    }
    return out;
  }
}

type Flavor = 'rcu_read_lock' | 'rcu_read_lock_bh' | 'rcu_read_lock_sched';

interface RcuState {
  readonly readers: ReaderTable;
  /** The lockdep maps the flavours show up as in held-lock lists (rcu_lock_map & co). */
  readonly maps: Readonly<Record<Flavor, LockRef>>;
  /** call_rcu callbacks queued and not yet run (static offset). */
  readonly pending: number;
  readonly callbacks: Set<string>;
  readonly stalls: StallDetector;
}

const states = new WeakMap<Kernel, RcuState>();
/** A task's reader slot and its nesting across all flavours (task-local). */
const readerOf = new WeakMap<KTask, { slot: number; nest: number }>();

/** Has the kernel been attached to a run (too late to declare static objects)? */
export function attached(k: Kernel): boolean {
  try {
    void k.mem;
    return true;
  } catch {
    return false;
  }
}

/**
 * rcu_init(): declare RCU's reader table and its free checker. Idempotent; call it when building the workload
 * (defineRcuPointer, defineRcuCallback and atomic notifier chains do).
 */
export function rcu_init(k: Kernel): void {
  if (states.has(k)) return;
  if (attached(k)) throw new Error('rcu: rcu_init(k) must be called when the workload is built, before the run starts');
  const st: RcuState = {
    readers: new ReaderTable(k, 'rcu', k.readerSlots, RCU_DEREFS),
    maps: {
      rcu_read_lock: staticLock(k, 'rcu_read_lock'),
      rcu_read_lock_bh: staticLock(k, 'rcu_read_lock_bh'),
      rcu_read_lock_sched: staticLock(k, 'rcu_read_lock_sched'),
    },
    pending: k.statics.alloc(1, 'rcu pending callbacks'),
    callbacks: new Set(),
    stalls: new StallDetector(k),
  };
  states.set(k, st);
  k.watch(st.stalls);
  k.onFree(
    (t, obj, env) => checkFree(k, st, t, obj, env),
    (obj, out) => {
      if (k.enabled('rcu')) st.readers.holdersFootprint(obj, out);
    },
  );
}

function rcu(k: Kernel): RcuState {
  const st = states.get(k);
  if (!st) throw new Error('rcu: not set up — call rcu_init(k) when building the workload');
  return st;
}

/** Run body with the task's call chain replaced by `frames` (a callback invoked from softirq or a worker). */
export function* withFrames<T>(t: KTask, frames: readonly string[], body: KGen<T>): KGen<T> {
  const saved = t.frames.splice(0, t.frames.length, ...frames);
  try {
    return yield* body;
  } finally {
    t.frames.splice(0, t.frames.length, ...saved);
  }
}

// ---- read side ----

function* readLock(k: Kernel, t: KTask, flavor: Flavor): KGen {
  const st = rcu(k);
  k.lockdep.acquire(t, st.maps[flavor], 'rcu');
  // lockdep neither validates nor records rcu_read_lock()'s map (check=0): nothing of its graph is touched.
  const footprint = (): number[] => {
    const out: number[] = [];
    if (!readerOf.has(t)) st.readers.claimFootprint(t, out);
    out.push(...lockHolderFootprint(k, t, st.maps[flavor].name, true));
    return out;
  };
  yield* k.stepOn(t, flavor, footprint, (env) => {
    let r = readerOf.get(t);
    if (!r) {
      r = { slot: st.readers.claim(t), nest: 0 };
      readerOf.set(t, r);
    }
    r.nest++;
    noteAcquired(k, t, st.maps[flavor], 'rcu', env);
  });
}

function* readUnlock(k: Kernel, t: KTask, flavor: Flavor): KGen<boolean> {
  const st = rcu(k);
  const name = flavor.replace('lock', 'unlock');
  const map = st.maps[flavor];
  const footprint = (): number[] => {
    const out = [...lockHolderFootprint(k, t, map.name, false)];
    const r = readerOf.get(t);
    if (r && r.nest === 1) st.readers.retireFootprint(r.slot, out);
    return out;
  };
  // A release of what t does not hold is lockdep's report, which reads its graph: the coarse fallback. (What t
  // holds is its own: the same when the point is performed.)
  const release = (): boolean => {
    const r = readerOf.get(t);
    if (!noteReleased(k, t, st.maps[flavor]) || !r) return false;
    if (--r.nest === 0) {
      st.readers.retire(r.slot);
      readerOf.delete(t);
    }
    return true;
  };
  const holds = t.holds(map.addr()) !== undefined;
  return yield* holds ? k.stepOn(t, name, footprint, release) : k.step(t, name, release);
}

export function* rcu_read_lock(k: Kernel, t: KTask): KGen {
  t.rcuDepth++;
  yield* readLock(k, t, 'rcu_read_lock');
}

export function* rcu_read_unlock(k: Kernel, t: KTask): KGen {
  if ((yield* readUnlock(k, t, 'rcu_read_lock')) && t.rcuDepth > 0) t.rcuDepth--;
}

/** rcu_read_lock_bh: a reader that also disables softirqs (local_bh_disable). */
export function* rcu_read_lock_bh(k: Kernel, t: KTask): KGen {
  t.softirqsDisabled++;
  yield* readLock(k, t, 'rcu_read_lock_bh');
}

export function* rcu_read_unlock_bh(k: Kernel, t: KTask): KGen {
  if ((yield* readUnlock(k, t, 'rcu_read_lock_bh')) && t.softirqsDisabled > 0) t.softirqsDisabled--;
}

/** rcu_read_lock_sched: a reader that also disables preemption. */
export function* rcu_read_lock_sched(k: Kernel, t: KTask): KGen {
  t.preemptCount++;
  yield* readLock(k, t, 'rcu_read_lock_sched');
}

export function* rcu_read_unlock_sched(k: Kernel, t: KTask): KGen {
  if ((yield* readUnlock(k, t, 'rcu_read_lock_sched')) && t.preemptCount > 0) t.preemptCount--;
}

/** rcu_read_lock_held(): inside rcu_read_lock(). */
export function rcu_read_lock_held(t: KTask): boolean {
  return t.rcuDepth > 0;
}

/** rcu_read_lock_any_held(): inside a reader of any flavour. */
export function rcu_read_lock_any_held(t: KTask): boolean {
  return readerOf.has(t);
}

/** lockdep_is_held(lock), for rcu_dereference_check / rcu_dereference_protected conditions. */
export function lockdep_is_held(t: KTask, l: LockRef): boolean {
  return t.holds(l.addr()) !== undefined;
}

// ---- pointers ----

/** An `__rcu` pointer: one word of shared memory holding an object handle (0: NULL). */
export interface RcuPointer {
  readonly name: string;
  /** FILE:LINE printed by `suspicious RCU usage` when the caller gives none. */
  readonly where: string;
  addr(): number;
}

/**
 * Condition that makes an access outside a reader legal (lockdep_is_held(t, &lock), …). It looks at the task only
 * (what it holds): the points that call it declare no shared word for it to read.
 */
export type RcuCondition = (t: KTask) => boolean;

const UNKNOWN_SITE = 'iommu-sim:0';

/** A static `__rcu` pointer (a global), in the kernel's static memory. */
export function defineRcuPointer(k: Kernel, name: string, where = UNKNOWN_SITE): RcuPointer {
  rcu_init(k);
  const off = k.statics.alloc(1, name);
  return { name, where, addr: () => k.mem.statics + off };
}

/** An `__rcu` pointer field of a dynamically allocated object, `field` words from its start. */
export function objectRcuPointer(name: string, obj: number, field: number, where = UNKNOWN_SITE): RcuPointer {
  return { name, where, addr: () => obj + field };
}

/**
 * RCU_LOCKDEP_WARN's report (lockdep_rcu_suspicious in kernel/locking/lockdep.c). `msg` is the kernel's, e.g.
 * `suspicious rcu_dereference_check() usage`.
 */
export function suspiciousRcuUsage(k: Kernel, t: KTask, step: number, where: string, msg: string): void {
  const body = [
    '      Not tainted (iommu-sim)',
    '-----------------------------',
    `${where} ${msg}!`,
    '',
    'other info that might help us debug this:',
    '',
    '',
    'rcu_scheduler_active = 2, debug_locks = 1',
    ...heldLocksLines(t),
    '',
    'stack backtrace:',
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('rcu', t, step, 'WARNING: suspicious RCU usage', body));
}

function derefSite(t: KTask): string {
  return [...heldLocksLines(t), ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq')].join('\n');
}

/**
 * rcu_dereference_check(p, c): load an RCU-protected pointer. Outside a read-side section, and unless `cond`
 * excuses it (the update-side lock is held), it is `suspicious RCU usage`. Inside one, the object is
 * remembered for the reader, so that freeing it before the reader leaves is reported.
 */
export function* rcu_dereference_check(k: Kernel, t: KTask, p: RcuPointer, cond?: RcuCondition, where?: string): KGen<number> {
  const st = rcu(k);
  const footprint = (): number[] => {
    const out = [read(p.addr())];
    const r = readerOf.get(t);
    if (!k.enabled('rcu') || !r) return out;
    const v = Atomics.load(k.i32, p.addr());
    if (v !== 0) st.readers.recordFootprint(r.slot, v, () => derefSite(t), out);
    return out;
  };
  return yield* k.stepOn(t, `rcu_dereference(${p.name})`, footprint, (env) => {
    const v = Atomics.load(k.i32, p.addr());
    if (!k.enabled('rcu')) return v;
    const r = readerOf.get(t);
    if (r) {
      if (v !== 0) st.readers.record(r.slot, v, derefSite(t));
    } else if (!cond?.(t)) {
      suspiciousRcuUsage(k, t, env.step, where ?? p.where, 'suspicious rcu_dereference_check() usage');
    }
    return v;
  });
}

/** rcu_dereference(p) — rcu_dereference_check(p, 0), or with the lockdep condition given. */
export function rcu_dereference(k: Kernel, t: KTask, p: RcuPointer, cond?: RcuCondition, where?: string): KGen<number> {
  return rcu_dereference_check(k, t, p, cond, where);
}

/**
 * rcu_dereference_protected(p, c): the update side's access, legal only when `cond` holds (it is not a read
 * side, so the pointer is not remembered for any reader). Not a scheduling point: the update lock orders it.
 */
export function rcu_dereference_protected(k: Kernel, t: KTask, p: RcuPointer, cond: RcuCondition, where?: string): number {
  if (k.enabled('rcu') && !cond(t)) {
    suspiciousRcuUsage(k, t, t.lastStep, where ?? p.where, 'suspicious rcu_dereference_protected() usage');
  }
  return Atomics.load(k.i32, p.addr());
}

/** rcu_access_pointer(p): the value, for a NULL test only (never dereferenced), legal anywhere. */
export function rcu_access_pointer(k: Kernel, p: RcuPointer): number {
  return Atomics.load(k.i32, p.addr());
}

/** rcu_assign_pointer(p, v): publish v to readers. */
export function* rcu_assign_pointer(k: Kernel, t: KTask, p: RcuPointer, v: number): KGen {
  yield* k.stepOn(t, `rcu_assign_pointer(${p.name})`, [p.addr()], () => {
    Atomics.store(k.i32, p.addr(), v);
  });
}

/** RCU_INIT_POINTER(p, v): initialise, or set NULL, without ordering (nothing new is published to readers). */
export function* RCU_INIT_POINTER(k: Kernel, t: KTask, p: RcuPointer, v: number): KGen {
  yield* k.stepOn(t, `RCU_INIT_POINTER(${p.name})`, [p.addr()], () => {
    Atomics.store(k.i32, p.addr(), v);
  });
}

/** rcu_replace_pointer(p, v, c): publish v and return the old value, under the update-side lock `cond`. */
export function* rcu_replace_pointer(k: Kernel, t: KTask, p: RcuPointer, v: number, cond: RcuCondition, where?: string): KGen<number> {
  return yield* k.stepOn(t, `rcu_replace_pointer(${p.name})`, [p.addr()], (env) => {
    if (k.enabled('rcu') && !cond(t)) {
      suspiciousRcuUsage(k, t, env.step, where ?? p.where, 'suspicious rcu_dereference_protected() usage');
    }
    return Atomics.exchange(k.i32, p.addr(), v);
  });
}

// ---- grace periods ----

/** A point that waits until every reader of gp has left (what it waits on shows in hung-task/deadlock reports). */
export function waitForReaders(k: Kernel, t: KTask, table: ReaderTable, gp: readonly number[], what: string) {
  // RCU's own grace periods are watched for stalls (an srcu_struct's are not: SRCU has no stall warning).
  const stalls = states.get(k)?.readers === table ? states.get(k)?.stalls : undefined;
  const wait = stalls?.waiting(t, table, gp, what);
  const watch = table.seqWords(gp);
  return k.point(
    t,
    `${what}: wait for readers`,
    () => table.elapsed(gp),
    () => {
      if (wait) stalls?.done(wait);
    },
    { what, holder: () => table.blocker(gp), watch },
    reads(watch),
  );
}

/** A task waiting for a grace period: since when, and on which readers. */
interface GpWait {
  readonly t: KTask;
  readonly since: number;
  readonly table: ReaderTable;
  readonly gp: readonly number[];
  readonly what: string;
  /** Its stall timeout has been looked at (reported, or the readers had left). */
  seen: boolean;
}

/**
 * kernel/rcu/tree_stall.h's check_cpu_stall / print_other_cpu_stall, on the run's simulated time: each grace
 * period waited for is looked at once rcu_cpu_stall_timeout has passed since it started, and a reader of its
 * snapshot still inside is reported (each reader once: the kernel's next warning for the same stall would come
 * 3 × the timeout later).
 */
class StallDetector implements TimeWatcher {
  private readonly waits = new Set<GpWait>();
  private readonly reported = new Set<number>();

  constructor(private readonly k: Kernel) {
    k.onAttach(() => {
      this.waits.clear();
      this.reported.clear();
    });
  }

  private get timeoutMs(): number {
    return this.k.rcuStallSecs * 1000;
  }

  waiting(t: KTask, table: ReaderTable, gp: readonly number[], what: string): GpWait | undefined {
    if (gp.length === 0) return undefined;
    const w: GpWait = { t, since: this.k.now(), table, gp, what, seen: false };
    this.waits.add(w);
    return w;
  }

  done(w: GpWait): void {
    this.waits.delete(w);
  }

  deadlines(): number[] {
    const out: number[] = [];
    if (!this.k.enabled('rcu_stall')) return out;
    for (const w of this.waits) if (!w.seen) out.push(w.since + this.timeoutMs);
    return out;
  }

  tick(now: number): void {
    if (!this.k.enabled('rcu_stall')) return;
    for (const w of this.waits) {
      if (w.seen || now < w.since + this.timeoutMs) continue;
      w.seen = true;
      const readers = w.table.blockers(w.gp).filter((id) => !this.reported.has(id));
      if (readers.length === 0) continue;
      for (const id of readers) this.reported.add(id);
      this.k.report(stallFinding(this.k, w, readers, now));
    }
  }
}

/**
 * "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:" (print_other_cpu_stall), then a line per CPU whose
 * reader is still running in its section (print_cpu_stall_info: "%d-....: (%lu ticks this GP)"; the idle,
 * softirq and fqs counters are not modelled and not printed), the readers preempted or blocked inside theirs
 * (rcu_print_task_stall: "Tasks blocked on level-0 rcu_node (CPUs 0-N): P%d"), "(detected by %d, t=%ld jiffies,
 * … ncpus=%d)" (HZ=1000: a jiffy is a ms; gp_seq and the callback count are not modelled), and each reader's
 * stack (sched_show_task for a blocked one, the NMI backtrace of a running one's CPU).
 */
function stallFinding(k: Kernel, w: GpWait, readers: readonly number[], now: number): KernelFinding {
  const title = 'rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:';
  const jiffies = Math.floor(now - w.since);
  const blocked: number[] = [];
  const running: number[] = [];
  for (const id of readers) {
    const r = k.taskById(id);
    const wait = r && k.waitOf(r);
    if (wait && !wait.spins) blocked.push(id);
    else running.push(id);
  }
  const pidOf = (id: number): number => id - TASK_BASE;
  const body: string[] = [];
  for (const id of running) body.push(`rcu: \t${k.cpuOf(id)}-....: (${jiffies} ticks this GP)`);
  if (blocked.length > 0) body.push(`rcu: \tTasks blocked on level-0 rcu_node (CPUs 0-${k.cpus - 1}): ${blocked.map((id) => `P${pidOf(id)}`).join(' ')}`);
  body.push(`rcu: \t(detected by ${w.t.cpu}, t=${jiffies} jiffies, ncpus=${k.cpus})`);
  for (const id of blocked) {
    const r = k.taskById(id);
    body.push(`task:${r?.comm ?? '?'} state:D pid:${pidOf(id)}`, ...(r ? callTrace(r.chain()) : []));
  }
  for (const id of running) {
    const r = k.taskById(id);
    const cpu = k.cpuOf(id);
    body.push(`Sending NMI from CPU ${w.t.cpu} to CPUs ${cpu}:`, `NMI backtrace for cpu ${cpu}`);
    if (r) body.push(`CPU: ${cpu} PID: ${r.pid} Comm: ${r.comm} Not tainted (iommu-sim)`, ...callTrace(r.chain(), r.kind === 'softirq' || r.kind === 'hardirq'));
  }
  const names = readers.map((id) => k.taskById(id)?.label ?? `pid ${pidOf(id)}`).join(', ');
  body.push(`iommu-sim: ${w.t.label} has waited ${((now - w.since) / 1000).toFixed(3)} s for ${w.what}, held up by ${names} inside rcu_read_lock()`);
  const first = k.taskById(readers[0] as number);
  return {
    kind: 'rcu',
    title,
    text: [title, ...body].join('\n'),
    step: first?.lastStep ?? -1,
    where: first?.label ?? w.t.label,
    ...(first ? { task: first.comm, pid: first.pid, callChain: first.chain() } : {}),
  };
}

/** get_state_synchronize_rcu / start_poll_synchronize_rcu: a cookie for the grace period starting now. */
export function* start_poll_synchronize_rcu(k: Kernel, t: KTask): KGen<RcuGp> {
  const st = rcu(k);
  return yield* k.stepOn(t, 'start_poll_synchronize_rcu', st.readers.snapshotFootprint(), () => st.readers.snapshot());
}

export const get_state_synchronize_rcu = start_poll_synchronize_rcu;

/** poll_state_synchronize_rcu(cookie): has that grace period elapsed? (A read: legal anywhere.) */
export function poll_state_synchronize_rcu(k: Kernel, gp: readonly number[]): boolean {
  return rcu(k).readers.elapsed(gp);
}

function checkSync(k: Kernel, t: KTask, fn: string): void {
  // Both reports, as the kernel prints both (RCU_LOCKDEP_WARN, then might_sleep in the wait).
  k.mightSleep(t, 'kernel/rcu/tree.c:3792');
  if (k.enabled('rcu') && rcu_read_lock_any_held(t)) {
    suspiciousRcuUsage(k, t, t.lastStep, 'kernel/rcu/tree.c:3781', `Illegal ${fn}() in RCU read-side critical section`);
  }
}

/** cond_synchronize_rcu(cookie): wait for that grace period unless it has already elapsed. */
export function* cond_synchronize_rcu(k: Kernel, t: KTask, gp: RcuGp): KGen {
  const st = rcu(k);
  yield* k.call(
    t,
    'cond_synchronize_rcu',
    (function* () {
      checkSync(k, t, 'cond_synchronize_rcu');
      yield waitForReaders(k, t, st.readers, gp, 'an RCU grace period');
    })(),
  );
}

/**
 * synchronize_rcu(): may sleep; returns once every reader that was inside a read-side section when it was
 * called has left it. Readers that enter afterwards are not waited for.
 */
export function* synchronize_rcu(k: Kernel, t: KTask): KGen {
  const st = rcu(k);
  yield* k.call(
    t,
    'synchronize_rcu',
    (function* () {
      checkSync(k, t, 'synchronize_rcu');
      const gp = yield* k.stepOn(t, 'synchronize_rcu: start grace period', st.readers.snapshotFootprint(), () => st.readers.snapshot());
      yield waitForReaders(k, t, st.readers, gp, 'an RCU grace period');
    })(),
  );
}

export const synchronize_rcu_expedited = synchronize_rcu;

/** The body of an RCU callback: `args` is what call_rcu was given. Runs in softirq context. */
export type RcuCallbackBody = (t: KTask, args: Wire) => KGen;

interface CallbackArgs {
  readonly args: Wire;
  readonly gp: number[];
}

function callbackArgs(a: Wire): CallbackArgs {
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Error('rcu callback: bad arguments');
  const gp = a.gp;
  if (!Array.isArray(gp) || !gp.every((x) => typeof x === 'number')) throw new Error('rcu callback: bad grace period');
  return { args: a.args ?? null, gp: gp as number[] };
}

/**
 * Declare an RCU callback kind (a `struct rcu_head` callback function). It runs as its own task in softirq
 * context once the grace period of its call_rcu has elapsed, with rcu_core / rcu_do_batch on its call chain,
 * so a callback that sleeps gets might_sleep's report with the callback in the trace.
 */
export function defineRcuCallback(k: Kernel, name: string, body: RcuCallbackBody): string {
  rcu_init(k);
  const st = rcu(k);
  st.callbacks.add(name);
  return k.task(name, 'softirq', function* (t, a) {
    const { args, gp } = callbackArgs(a);
    yield waitForReaders(k, t, st.readers, gp, `an RCU grace period (callback ${name})`);
    yield* withFrames(t, ['__do_softirq', 'rcu_core', 'rcu_do_batch', name], body(t, args));
    yield* k.stepOn(t, 'rcu_do_batch: callback done', [k.mem.statics + st.pending], () => {
      Atomics.sub(k.i32, k.mem.statics + st.pending, 1);
    });
  });
}

/** call_rcu(head, func): run the callback `cbKind` (declared with defineRcuCallback) after a grace period. */
export function* call_rcu(k: Kernel, t: KTask, cbKind: string, args: Wire = null): KGen {
  const st = rcu(k);
  if (!st.callbacks.has(cbKind)) throw new Error(`call_rcu: '${cbKind}' is not an RCU callback (declare it with defineRcuCallback)`);
  yield* k.call(
    t,
    'call_rcu',
    k.stepOn(t, `call_rcu(${cbKind})`, [k.mem.statics + st.pending, ...st.readers.snapshotFootprint()], (env) => {
      Atomics.add(k.i32, k.mem.statics + st.pending, 1);
      env.spawn(cbKind, { args, gp: st.readers.snapshot() });
    }),
  );
}

/** rcu_barrier(): may sleep; waits until no call_rcu callback is pending (here: every one queued so far has run). */
export function* rcu_barrier(k: Kernel, t: KTask): KGen {
  const st = rcu(k);
  const addr = (): number => k.mem.statics + st.pending;
  yield* k.call(
    t,
    'rcu_barrier',
    (function* () {
      k.mightSleep(t, 'kernel/rcu/tree.c:4051');
      yield k.point(
        t,
        'rcu_barrier',
        () => Atomics.load(k.i32, addr()) === 0,
        () => undefined,
        { what: 'pending RCU callbacks', watch: [addr()] },
        [read(addr())],
      );
    })(),
  );
}

/** Declare a kfree_rcu-style callback: after the grace period it calls `free(t, obj)` (e.g. slab's kfree). */
export function defineKfreeRcu(k: Kernel, name: string, free: (t: KTask, obj: number) => KGen): string {
  return defineRcuCallback(k, name, (t, args) => free(t, typeof args === 'number' ? args : 0));
}

/** kfree_rcu(obj, rhf): free obj with the callback `cbKind` (from defineKfreeRcu) after a grace period. */
export function kfree_rcu(k: Kernel, t: KTask, cbKind: string, obj: number): KGen {
  return call_rcu(k, t, cbKind, obj);
}

// ---- the free checker ----

function checkFree(k: Kernel, st: RcuState, t: KTask, obj: number, env: StepEnv): void {
  if (!k.enabled('rcu')) return;
  for (const r of st.readers.holdersOf(obj)) {
    // A reader freeing what it dereferenced is its own business (and KASAN's); another reader still inside
    // has had no grace period since it loaded the pointer.
    if (r.task === t.id) continue;
    const title = 'BUG: RCU: object freed while readers may still hold it';
    const body = [
      `kfree() of object 0x${obj.toString(16)} by task ${t.label} while ${r.label} is still inside the RCU read-side`,
      'critical section in which it dereferenced it: no grace period separates the two',
      '',
      `Dereferenced by task ${r.label} (still inside rcu_read_lock()):`,
      ...r.site.split('\n'),
      '',
      `Freed by task ${t.label}:`,
      ...heldLocksLines(t),
      ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
    ];
    k.report(taskFinding('rcu', t, env.step, title, body));
  }
}
