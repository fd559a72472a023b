// lockdep, the kernel's lock validator (kernel/locking/lockdep.c): lock classes by name, one dependency
// graph between classes for the whole of one execution (a boot), irq-usage bits per class, and the kernel's
// reports in its words: circular dependency, recursive locking, bad unlock balance, inconsistent lock state,
// irq lock inversion and irq-safe → irq-unsafe lock order. Every report turns lockdep off (debug_locks_off())
// for the rest of the execution, as the kernel does for the rest of the boot.
//
// Each execution of an exploration is a boot of its own: it starts with an empty graph and lockdep on. A
// graph carried from earlier executions made a report depend on which executions happened to share a pool
// chunk (failure rates changed with --chunk), and made the failing execution's schedule replay differently
// alone.
//
// The graph lives in the kernel's shared memory (k.mem.lockdep) so that tasks on every thread add to the same
// one; it is written only inside performed points (acquired(), under the sequencer) and only read from task
// bodies (acquire(), which validates an attempt before the task yields its acquire point, so an AB-BA is
// reported even when the two tasks then deadlock, as in the kernel). Because performs of other tasks can run
// between a task's validation and its acquisition, acquired() validates each new dependency again before it
// adds it: validation and insertion are atomic there, as they are under the kernel's graph lock.
//
// The region at k.mem.lockdep is one struct lockdep_graph: lockdep.c's globals (debug_locks, nr_lock_classes,
// nr_list_entries), the lock_classes[] table (struct lock_class: name, usage_mask, usage_traces), one
// MAX_CLASSES² bit matrix per dependency type (-(SR)->, -(ER)->, -(SN)->, -(EN)->) and the list_entries[]
// (struct lock_list: the class pair and both call chains), one per class pair, in insertion order.
import { type Footprint, read } from '../runtime/footprint.js';
import { combine, fnv1a, mix32 } from '../runtime/hash.js';
import type { StepEnv } from '../runtime/task.js';
import type { ContextKind, HeldLock, KTask, LockKind } from './context.js';
import { callTrace, taskFinding } from './findings.js';
import type { Kernel } from './kernel.js';
import type { LockRef } from './lock.js';
import { array, element, struct, type ViewOf, word } from './struct.js';

/** lockdep's MAX_LOCKDEP_KEYS here: the adjacency matrices are MAX_CLASSES² bits. */
export const MAX_CLASSES = 256;

/** LOCK_TRACE_STATES: one stack trace a usage bit (enum lock_usage_bit, for hardirq and softirq). */
const LOCK_TRACE_STATES = 8;

/** struct lock_class: what the graph keeps of a class (its key is its name here). */
const LOCK_CLASS = struct('lock_class', {
  name: word, // interned
  usage_mask: word,
  usage_traces: array(LOCK_TRACE_STATES), // interned call chain where each usage bit was first set
  _pad: array(2), // model: to 12 words
});

/** struct lock_list: a dependency prev → next as first recorded, with both call chains (interned). */
const LOCK_LIST = struct('lock_list', {
  class_pair: word, // prev × MAX_CLASSES + next
  prev_trace: word,
  next_trace: word,
});

// Dependency types (below) each have a MAX_CLASSES² bit matrix: a row of ROW_WORDS words a class.
const ROW_WORDS = MAX_CLASSES / 32;
const MATRIX_WORDS = MAX_CLASSES * ROW_WORDS;
const DEP_TYPES = 4;

/** The graph, in the kernel's shared memory: lockdep.c's globals and tables. */
const LOCKDEP_GRAPH = struct('lockdep_graph', {
  debug_locks_off: word, // DEBUG_LOCKS_OFF once a report turned lockdep off (the kernel's debug_locks = 0)
  nr_lock_classes: word,
  nr_list_entries: word,
  nr_lost_entries: word, // model: dependencies not recorded for want of room (their bits are still set)
  _pad: array(4),
  lock_classes: array(MAX_CLASSES * LOCK_CLASS.words),
  dep_matrix: array(DEP_TYPES * MATRIX_WORDS),
  list_entries: array(0), // struct lock_list[], to the end of the region
});
const DEBUG_LOCKS_OFF = 1;
const LIST_ENTRIES_AT = LOCKDEP_GRAPH.offset.list_entries;

/** Below this the region cannot hold the graph and lockdep stays off. */
const MIN_WORDS = LIST_ENTRIES_AT + 16 * LOCK_LIST.words;

// Dependency types, as __calc_dep_bit() numbers them: is prev held shared (S) or exclusive (E), is next a
// recursive read (R) or not (N). A path with an -(*R)-> followed by an -(S*)-> is not a deadlock.
const DEP_S_MASK = (1 << 0) | (1 << 2);
const DEP_N_MASK = (1 << 2) | (1 << 3);

// enum lock_usage_bit, for the two irq states modelled (hardirq, softirq): state × 4 + direction × 2 + read.
const LOCK_USED_IN_HARDIRQ = 0;
const LOCK_ENABLED_HARDIRQ = 2;
const LOCK_USED_IN_SOFTIRQ = 4;
const LOCK_ENABLED_SOFTIRQ = 6;
/** LOCK_USAGE_READ_MASK: the _READ variant of a usage bit. */
const LOCK_USAGE_READ_MASK = 1;
const STATE_NAMES = ['HARDIRQ', 'SOFTIRQ'];
const USAGE_STR = [
  'IN-HARDIRQ-W',
  'IN-HARDIRQ-R',
  'HARDIRQ-ON-W',
  'HARDIRQ-ON-R',
  'IN-SOFTIRQ-W',
  'IN-SOFTIRQ-R',
  'SOFTIRQ-ON-W',
  'SOFTIRQ-ON-R',
];

const IDENT = 'iommu-sim #1 Not tainted';

/** A footprint of no word. */
const NOTHING: Footprint = Object.freeze([]);

/** hlock->read: 0 exclusive, 1 shared (rwsem down_read), 2 recursive read (srcu_read_lock). */
function readOf(kind: LockKind): number {
  return kind === 'rwsem-read' ? 1 : kind === 'srcu' || kind === 'rcu' ? 2 : 0;
}

/** rcu_read_lock()'s map is acquired with check=0: tracked as held, never validated. */
function checked(kind: LockKind): boolean {
  return kind !== 'rcu';
}

/** exclusive_bit(): the usage of the opposite direction (irq-safe vs irq-unsafe) of the same state. */
function exclusiveBit(bit: number): number {
  return (bit & ~3) | ((bit & 2) ^ 2);
}

/** A lock as lockdep prints it: class name and where it is (being) taken. */
interface LockView {
  readonly name: string;
  readonly kind: LockKind;
  readonly site: readonly string[];
}

/** The usage bits an acquisition under validation is about to give its class (not yet in shared memory). */
interface Pending {
  readonly slot: number;
  bits: number;
}

/** A recorded dependency prev → next, for tools and tests. */
export interface Dependency {
  readonly prev: string;
  readonly next: string;
  /** Call chain where prev was held when next was taken (innermost last). */
  readonly prevSite: readonly string[];
  /** Call chain where next was taken while prev was held (innermost last). */
  readonly nextSite: readonly string[];
}

const CONTEXT_CODE: Readonly<Record<ContextKind, number>> = { process: 1, softirq: 2, hardirq: 3, workqueue: 4, kthread: 5 };
const KIND_CODE: Readonly<Record<LockKind, number>> = { spinlock: 1, mutex: 2, 'rwsem-read': 3, 'rwsem-write': 4, srcu: 5, rcu: 6 };

export class Lockdep {
  /** Class ids handed out by classOf: a pure function of the order names are first seen in. */
  private readonly classes = new Map<string, number>();
  /** Class name → slot in the shared class table of the current execution. */
  private readonly slots = new Map<string, number>();
  /** The acquisition a task announced with acquire() and has not performed yet; unannounced ones are trylocks. */
  private readonly announced = new WeakMap<KTask, number>();
  /** Held locks taken by trylock: they add no dependencies, and the search for prev locks goes past them. */
  private readonly trylocked = new WeakSet<HeldLock>();
  /** debug_locks turned off by a report made in a task body (which must not write shared memory). */
  private offHere = false;
  /** Chains validated and recorded in this thread during the current execution. */
  private readonly validated = new Set<number>();

  /** The lock chains validated so far (chain keys), for coverage. */
  chains(): IterableIterator<number> {
    return this.validated.values();
  }
  /** Inside acquired(): a report made now can write the debug_locks flag at once. */
  private performing = false;
  /** Whether a run's memory is attached (the graph lives there). */
  private attachedRun = false;
  private readonly fits: boolean;
  /**
   * Each class's key in chain keys: a hash of its name, not its id — ids follow the order classes are first
   * used in, which differs from one kernel (one worker, one chunk) to the next, and coverage merges chain keys.
   */
  private readonly classKeys: number[] = [];
  /** findUsage's breadth-first search, reused (it runs at every new dependency; it does not nest). */
  private readonly bfsParent = new Int32Array(MAX_CLASSES);
  private readonly bfsQueue = new Int32Array(MAX_CLASSES);

  /** The graph's accessors: its globals, a class (lock_classes[slot]) and a recorded dependency. */
  private readonly graph: ViewOf<typeof LOCKDEP_GRAPH>;
  private readonly cls: ViewOf<typeof LOCK_CLASS>;
  private readonly entry: ViewOf<typeof LOCK_LIST>;

  constructor(readonly k: Kernel) {
    this.fits = k.layout.lockdepWords >= MIN_WORDS;
    this.graph = k.struct(LOCKDEP_GRAPH);
    this.cls = k.struct(LOCK_CLASS);
    this.entry = k.struct(LOCK_LIST);
    k.onAttach(() => this.attached());
  }

  // ---- public ----

  /** The id of a lock class (lockdep keys classes by name here). Same names in the same order ⇒ same ids. */
  classOf(name: string): number {
    let id = this.classes.get(name);
    if (id === undefined) {
      id = this.classes.size;
      this.classes.set(name, id);
      this.classKeys[id] = fnv1a(name);
    }
    return id;
  }

  /** debug_locks: false once lockdep has reported in this execution (or was never on). */
  get debugLocks(): boolean {
    return this.attachedRun ? this.active() : this.fits && this.k.enabled('lockdep') && !this.offHere;
  }

  /**
   * lock_acquire() before the lock is taken: runs in the task body just before it yields the acquire point.
   * Validates the attempt against the graph (reads only) and reports at the attempt, as the kernel does.
   */
  acquire(t: KTask, l: LockRef, kind: LockKind): void {
    if (!checked(kind)) return;
    this.announced.set(t, l.addr());
    // The chain cache first, as in acquired(): a cached chain reads no shared word.
    if (!this.fits || !this.k.enabled('lockdep') || this.offHere) return;
    if (this.validated.has(this.chainKey(t, l.name, kind))) return;
    if (!this.active()) return;
    this.validate(t, { name: l.name, kind, site: t.frames }, this.findSlot(l.name), false);
  }

  /**
   * What acquired() of lock `addr` (class `name`) by t will read and write in shared memory (footprint.ts's
   * entries), or undefined when it may write the graph — a chain this thread has not validated in this execution
   * (lookup_chain_cache() misses), or a trylock while lockdep is on —: such a step declares no footprint and takes
   * the coarse fallback lock (the graph is one object: declaring its words would order every acquisition anyway).
   * A cached chain touches no shared word; with lockdep off, acquired() reads `debug_locks`. Pure. Once defined it
   * stays defined until the task's acquire point is performed: the chain cache only grows, lockdep only turns
   * off, and what the chain key hashes (the task's held locks and irq state) is the task's own.
   */
  acquireFootprint(t: KTask, name: string, addr: number, kind: LockKind): Footprint | undefined {
    if (!checked(kind) || !this.fits || !this.k.enabled('lockdep')) return NOTHING;
    const flag = this.graph.debug_locks_off.addr(this.region);
    // A report made in a task body: the thread's next acquisition writes the flag (acquired()).
    if (this.offHere) return [flag];
    const announced = this.announced.get(t) === addr;
    if (announced && this.validated.has(this.chainKey(t, name, kind))) return NOTHING;
    return this.active() ? undefined : [read(flag)];
  }

  /**
   * What lock_release() reads and writes: nothing when t holds the lock; badUnlock() otherwise, which reads
   * `debug_locks` and, while lockdep is on, reports — turning it off and printing the held locks' classes from
   * the graph: undefined then (the coarse fallback). Pure, and fixed from the release point's making to its
   * perform (what t holds is its own; lockdep only turns off).
   */
  releaseFootprint(holds: boolean): Footprint | undefined {
    if (holds || !this.fits || !this.k.enabled('lockdep')) return NOTHING;
    return this.active() ? undefined : [read(this.graph.debug_locks_off.addr(this.region))];
  }

  /**
   * lookup_chain_cache(): the held-lock chain, the new lock and the context it is taken in. A chain that was
   * validated and recorded once needs neither again — a cycle through it would be found when the edge that
   * closes the cycle is added — which is what keeps lockdep's cost down on hot paths.
   */
  private chainKey(t: KTask, name: string, kind: LockKind): number {
    // Like the kernel's 64-bit chain_key: two 32-bit hashes over the context and the held classes (as in
    // lockdep, a collision would only skip a validation), kept exact in one double (53 bits).
    let a = mix32((CONTEXT_CODE[t.kind] << 4) | (t.softirqsDisabled > 0 ? 2 : 0) | (t.irqsDisabled ? 1 : 0));
    let b = mix32(a ^ 0x5bd1e995);
    for (const h of t.held) {
      const v = (this.classKeys[h.classId] as number) * 64 + KIND_CODE[h.kind] * 2 + (this.trylocked.has(h) ? 1 : 0);
      a = combine(a, v);
      b = combine(b, v ^ 0x27d4eb2d);
    }
    const v = (this.classKeys[this.classOf(name)] as number) * 64 + KIND_CODE[kind] * 2;
    a = combine(a, v);
    b = combine(b, v ^ 0x27d4eb2d);
    return (a >>> 0) * 2 ** 21 + ((b >>> 0) & 0x1fffff);
  }

  /**
   * The lock has been taken (inside the acquiring point's perform, before t.held grows): record the class,
   * its usage bits and the new dependencies. A lock taken without acquire() first is a trylock.
   */
  acquired(t: KTask, h: HeldLock, env: StepEnv): void {
    void env;
    const announced = this.announced.get(t) === h.addr;
    this.announced.delete(t);
    if (!checked(h.kind) || !this.fits || !this.k.enabled('lockdep')) return;
    if (this.offHere) this.graph.debug_locks_off.atomic_or(this.region, DEBUG_LOCKS_OFF);
    const trylock = !announced;
    const key = trylock ? undefined : this.chainKey(t, h.name, h.kind);
    // A chain validated before needs nothing, on or off: looked up before debug_locks, the hot path reads no
    // shared word (acquireFootprint), so acquisitions on other locks run in parallel in the threaded runtime.
    if (key !== undefined && this.validated.has(key)) return;
    if (!this.active()) return;
    if (trylock) this.trylocked.add(h);
    const slot = this.registerSlot(t, h.name);
    if (slot < 0) return;
    // Validated again, atomically with the update: other tasks' performs may have run since acquire(), and a
    // trylock skipped it.
    this.performing = true;
    try {
      if (!this.validate(t, h, slot, trylock)) return;
    } finally {
      this.performing = false;
    }
    this.markUsage(t, slot, h, trylock);
    if (trylock) return; // trylock can be done in any order: it adds no dependency
    let nextSite = 0;
    for (const prev of this.prevs(t)) {
      const prevSlot = this.findSlot(prev.name);
      if (prevSlot < 0 || prevSlot === slot) continue;
      const dep = depType(prev.kind, h.kind);
      if (this.hasDep(prevSlot, slot, dep)) continue;
      if (nextSite === 0) nextSite = this.k.mem.intern(h.site.join('\n'));
      this.addDep(prevSlot, slot, dep, this.k.mem.intern(prev.site.join('\n')), nextSite);
    }
    if (key !== undefined) this.validated.add(key);
  }

  /**
   * __lock_acquire()'s checks, in its order: mark_usage() (inconsistent state, irq inversion), then
   * validate_chain() (recursive locking, circular dependency, irq-safe → irq-unsafe). Reads only; false when
   * it reported. `slot` is -1 for a class no task has taken yet: it has no usage and no dependencies.
   */
  private validate(t: KTask, l: LockView, slot: number, trylock: boolean): boolean {
    const pending = { slot, bits: 0 };
    if (slot >= 0) {
      const conflict = this.usageConflict(t, slot, l.kind, trylock);
      if (conflict) {
        this.reportUsage(t, l, slot, conflict[0], conflict[1]);
        return false;
      }
      const mask = this.usage(slot);
      for (const bit of this.usageBits(t, l.kind, trylock)) {
        if ((mask & (1 << bit)) !== 0) continue;
        // mark_lock_irq(): an irq-safe lock must not take an irq-unsafe one, and conversely.
        const excl = exclusiveBit(bit);
        const exclMask = (1 << excl) | (1 << (excl + LOCK_USAGE_READ_MASK));
        const forwards = (bit & 2) === 0;
        const path = this.findUsage(slot, forwards, exclMask, false, pending);
        if (path) {
          this.reportInversion(t, l, path, forwards, bit);
          return false;
        }
        pending.bits |= 1 << bit;
      }
    }
    if (trylock) return true;
    const recursive = this.recursion(t, l);
    if (recursive) {
      this.reportRecursive(t, l, recursive);
      return false;
    }
    if (slot < 0) return true;
    for (const prev of this.prevs(t)) {
      const prevSlot = this.findSlot(prev.name);
      if (prevSlot < 0 || prevSlot === slot) continue;
      const dep = depType(prev.kind, l.kind);
      if (this.hasDep(prevSlot, slot, dep)) continue;
      const path = this.findPath(slot, prevSlot, readOf(l.kind) === 2, readOf(prev.kind) === 0);
      if (path) {
        this.reportCircular(t, l, prev, path);
        return false;
      }
      if (!this.checkIrqUsage(t, prev, prevSlot, l, slot, pending)) return false;
    }
    return true;
  }

  /** lock_release() of a lock the task does not hold (called from the releasing point's perform). */
  badUnlock(t: KTask, name: string): void {
    if (!this.active()) return;
    this.debugLocksOff(true);
    const chain = t.chain();
    const title = 'WARNING: bad unlock balance detected!';
    const body = [
      IDENT,
      '-------------------------------------',
      `${t.label} is trying to release lock (${name}) at:`,
      `[<0>] ${chain[chain.length - 1] ?? '?'}`,
      'but there are no more locks to release!',
      '',
      'other info that might help us debug this:',
      ...this.heldLines(t),
      ...this.backtrace(t),
    ];
    this.k.report(taskFinding('lockdep', t, t.lastStep, title, body));
  }

  /** The recorded dependencies (for tools and tests), in the order they were first recorded. */
  dependencies(): Dependency[] {
    const out: Dependency[] = [];
    if (!this.fits || !this.attachedRun) return out;
    const e = this.entry;
    const n = this.graph.nr_list_entries.READ_ONCE(this.region);
    for (let r = 0; r < n; r++) {
      const at = this.entryAt(r);
      const pair = e.class_pair.get(at);
      out.push({
        prev: this.className(Math.floor(pair / MAX_CLASSES)),
        next: this.className(pair % MAX_CLASSES),
        prevSite: this.chainAt(e.prev_trace.get(at)),
        nextSite: this.chainAt(e.next_trace.get(at)),
      });
    }
    return out;
  }

  /** The usage characters lockdep prints after a class name, e.g. `-.+.` (IN-HARDIRQ … SOFTIRQ-ON-R). */
  usageOf(name: string): string {
    return this.usageChars(this.fits && this.attachedRun ? this.findSlot(name) : -1);
  }

  // ---- state ----

  private get i32(): Int32Array {
    return this.k.i32;
  }

  /** The graph (struct lockdep_graph) in this run's memory. */
  private get region(): number {
    return this.k.mem.lockdep;
  }

  /** &lock_classes[slot] */
  private classAt(slot: number): number {
    return element(LOCK_CLASS, this.region + LOCKDEP_GRAPH.offset.lock_classes, slot);
  }

  /** &list_entries[r] */
  private entryAt(r: number): number {
    return element(LOCK_LIST, this.region + LIST_ENTRIES_AT, r);
  }

  private active(): boolean {
    return this.fits && this.k.enabled('lockdep') && !this.offHere && (this.graph.debug_locks_off.READ_ONCE(this.region) & DEBUG_LOCKS_OFF) === 0;
  }

  /**
   * debug_locks_off(): every report turns lockdep off, for the rest of the execution. A report from a task
   * body cannot write shared memory: the flag is written by this thread's next perform or attach.
   */
  private debugLocksOff(inPerform: boolean): void {
    this.offHere = true;
    if (inPerform) this.graph.debug_locks_off.atomic_or(this.region, DEBUG_LOCKS_OFF);
  }

  /** A new execution (a new boot): an empty graph, lockdep on, no chain cached. The run's memory is new. */
  private attached(): void {
    this.offHere = false;
    this.validated.clear();
    this.slots.clear();
    this.attachedRun = true;
  }

  // ---- classes ----

  /** The shared slot of a class, or -1 when no task has taken it yet. Reads only. */
  private findSlot(name: string): number {
    const cached = this.slots.get(name);
    if (cached !== undefined) return cached;
    const n = Math.min(this.graph.nr_lock_classes.READ_ONCE(this.region), MAX_CLASSES);
    for (let s = 0; s < n; s++) {
      const id = this.cls.name.READ_ONCE(this.classAt(s));
      if (id !== 0 && this.k.mem.stringAt(id) === name) {
        this.slots.set(name, s);
        return s;
      }
    }
    return -1;
  }

  /** The shared slot of a class, registering it (inside a perform only). -1 when the table is full. */
  private registerSlot(t: KTask, name: string): number {
    const found = this.findSlot(name);
    if (found >= 0) return found;
    const n = this.graph.nr_lock_classes.READ_ONCE(this.region);
    const id = n < MAX_CLASSES ? this.k.mem.intern(name) : 0;
    if (id === 0) {
      // The kernel turns lockdep off rather than validate part of the graph.
      this.debugLocksOff(true);
      const body = [
        'turning off the locking correctness validator.',
        `(class table: ${MAX_CLASSES} classes; string heap full: ${n < MAX_CLASSES})`,
      ];
      this.k.report(taskFinding('lockdep', t, t.lastStep, 'BUG: MAX_LOCKDEP_KEYS too low!', [...body, ...this.backtrace(t).slice(2)]));
      return -1;
    }
    this.cls.name.WRITE_ONCE(this.classAt(n), id);
    this.graph.nr_lock_classes.WRITE_ONCE(this.region, n + 1);
    this.slots.set(name, n);
    return n;
  }

  private className(slot: number): string {
    return this.k.mem.stringAt(this.cls.name.get(this.classAt(slot)));
  }

  private chainAt(id: number): string[] {
    const s = this.k.mem.stringAt(id);
    return s === '' ? [] : s.split('\n');
  }

  // ---- dependencies ----

  private depWord(dep: number, prev: number, next: number): number {
    return this.graph.dep_matrix.addr(this.region, dep * MATRIX_WORDS + prev * ROW_WORDS + (next >>> 5));
  }

  private hasDep(prev: number, next: number, dep: number): boolean {
    return ((this.i32[this.depWord(dep, prev, next)] as number) & (1 << (next & 31))) !== 0;
  }

  private depMask(prev: number, next: number): number {
    let m = 0;
    for (let d = 0; d < DEP_TYPES; d++) if (this.hasDep(prev, next, d)) m |= 1 << d;
    return m;
  }

  /** Add prev → next (inside a perform). The first dependency between two classes keeps its call chains. */
  private addDep(prev: number, next: number, dep: number, prevSite: number, nextSite: number): void {
    const g = this.graph;
    const region = this.region;
    if (this.depMask(prev, next) === 0) {
      const n = g.nr_list_entries.READ_ONCE(region);
      if (LIST_ENTRIES_AT + (n + 1) * LOCK_LIST.words <= this.k.layout.lockdepWords) {
        const at = this.entryAt(n);
        const e = this.entry;
        e.class_pair.set(at, prev * MAX_CLASSES + next);
        e.prev_trace.set(at, prevSite);
        e.next_trace.set(at, nextSite);
        g.nr_list_entries.WRITE_ONCE(region, n + 1);
      } else {
        g.nr_lost_entries.atomic_add(region, 1);
      }
    }
    Atomics.or(this.i32, this.depWord(dep, prev, next), 1 << (next & 31));
  }

  private record(prev: number, next: number): { prevSite: number; nextSite: number } | undefined {
    const e = this.entry;
    const n = this.graph.nr_list_entries.READ_ONCE(this.region);
    const key = prev * MAX_CLASSES + next;
    for (let r = 0; r < n; r++) {
      const at = this.entryAt(r);
      if (e.class_pair.get(at) === key) return { prevSite: e.prev_trace.get(at), nextSite: e.next_trace.get(at) };
    }
    return undefined;
  }

  /**
   * check_noncircular(): the shortest strong path from `from` (the lock being taken) to `to` (a lock held),
   * as slots from → … → to; a path through -(*R)-> -(S*)-> does not count. States are (class, arrived
   * only through *R), so the search is exact where the kernel's is per class.
   */
  private findPath(from: number, to: number, fromRecursiveRead: boolean, toExclusive: boolean): number[] | undefined {
    const states = MAX_CLASSES * 2;
    const parent = new Int32Array(states).fill(-2);
    const queue = new Int32Array(states);
    let head = 0;
    let tail = 0;
    const root = from * 2 + (fromRecursiveRead ? 1 : 0);
    parent[root] = -1;
    queue[tail++] = root;
    const i32 = this.i32;
    const matrix = this.graph.dep_matrix.addr(this.region);
    while (head < tail) {
      const s = queue[head++] as number;
      const c = s >> 1;
      const onlyXr = (s & 1) === 1;
      if (c === to && s !== root && (toExclusive || !onlyXr)) {
        const path: number[] = [];
        for (let p = s; p !== -1; p = parent[p] as number) path.push(p >> 1);
        return path.reverse();
      }
      for (let w = 0; w < ROW_WORDS; w++) {
        let bits = 0;
        for (let d = 0; d < DEP_TYPES; d++) {
          if (onlyXr && (DEP_S_MASK & (1 << d)) !== 0) continue;
          bits |= i32[matrix + d * MATRIX_WORDS + c * ROW_WORDS + w] as number;
        }
        while (bits !== 0) {
          const b = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
          const n = w * 32 + b;
          let mask = this.depMask(c, n);
          if (onlyXr) mask &= ~DEP_S_MASK;
          if (mask === 0) continue;
          const ns = n * 2 + ((mask & DEP_N_MASK) === 0 ? 1 : 0);
          if (parent[ns] !== -2) continue;
          parent[ns] = s;
          queue[tail++] = ns;
        }
      }
    }
    return undefined;
  }

  /** The held locks a new lock gets a dependency from: the top one, and past it while they were trylocks. */
  private *prevs(t: KTask): Generator<HeldLock> {
    for (let i = t.held.length - 1; i >= 0; i--) {
      const h = t.held[i] as HeldLock;
      if (!checked(h.kind)) continue;
      yield h;
      if (!this.trylocked.has(h)) return;
    }
  }

  /** check_deadlock(): the class is already held (read after read of a recursive or rwsem read is allowed). */
  private recursion(t: KTask, next: LockView): HeldLock | undefined {
    const nr = readOf(next.kind);
    for (const h of t.held) {
      if (h.name !== next.name || !checked(h.kind)) continue;
      const hr = readOf(h.kind);
      if (nr !== 0 && hr !== 0) continue;
      return h;
    }
    return undefined;
  }

  // ---- irq usage ----

  /** The usage bits this acquisition sets, in mark_usage()'s order. */
  private usageBits(t: KTask, kind: LockKind, trylock: boolean): number[] {
    const r = readOf(kind) !== 0 ? LOCK_USAGE_READ_MASK : 0;
    const bits: number[] = [];
    if (!trylock) {
      if (t.kind === 'hardirq') bits.push(LOCK_USED_IN_HARDIRQ + r);
      if (t.kind === 'softirq') bits.push(LOCK_USED_IN_SOFTIRQ + r);
    }
    if (hardirqsEnabled(t)) {
      bits.push(LOCK_ENABLED_HARDIRQ + r);
      if (softirqsEnabled(t)) bits.push(LOCK_ENABLED_SOFTIRQ + r);
    }
    return bits;
  }

  /** valid_state(): [the usage already registered, the new one] for the first new bit that conflicts. */
  private usageConflict(t: KTask, slot: number, kind: LockKind, trylock: boolean): [number, number] | undefined {
    if (slot < 0) return undefined;
    const mask = this.cls.usage_mask.READ_ONCE(this.classAt(slot));
    for (const bit of this.usageBits(t, kind, trylock)) {
      if ((mask & (1 << bit)) !== 0) continue;
      const excl = exclusiveBit(bit);
      if ((mask & (1 << excl)) !== 0) return [excl, bit];
      if ((bit & LOCK_USAGE_READ_MASK) === 0 && (mask & (1 << (excl + LOCK_USAGE_READ_MASK))) !== 0) return [excl + LOCK_USAGE_READ_MASK, bit];
    }
    return undefined;
  }

  /** A class's usage bits, with the bits an acquisition being validated is about to set. */
  private usage(slot: number, pending?: Pending): number {
    const mask = this.cls.usage_mask.READ_ONCE(this.classAt(slot));
    return pending && pending.slot === slot ? mask | pending.bits : mask;
  }

  /**
   * find_usage_forwards()/backwards(): the nearest class (from `start`, itself included or not) whose usage
   * meets `mask`, as the search path start, …, found. Forwards follows dependencies, backwards goes against
   * them. Read dependencies are followed like the others here.
   */
  private findUsage(start: number, forwards: boolean, mask: number, includeStart: boolean, pending?: Pending): number[] | undefined {
    const n = Math.min(this.graph.nr_lock_classes.READ_ONCE(this.region), MAX_CLASSES);
    const parent = this.bfsParent.fill(-2, 0, n);
    const queue = this.bfsQueue;
    let head = 0;
    let tail = 0;
    parent[start] = -1;
    queue[tail++] = start;
    while (head < tail) {
      const c = queue[head++] as number;
      if ((c !== start || includeStart) && (this.usage(c, pending) & mask) !== 0) {
        const path: number[] = [];
        for (let p = c; p !== -1; p = parent[p] as number) path.push(p);
        return path.reverse();
      }
      for (let d = 0; d < n; d++) {
        if (parent[d] !== -2) continue;
        if ((forwards ? this.depMask(c, d) : this.depMask(d, c)) === 0) continue;
        parent[d] = c;
        queue[tail++] = d;
      }
    }
    return undefined;
  }

  /**
   * check_irq_usage(): the new dependency prev → next must not connect a lock that is irq-safe (taken in
   * that irq, or leading to it) to one that is irq-unsafe (taken with that irq enabled, or after it).
   */
  private checkIrqUsage(t: KTask, prev: HeldLock, prevSlot: number, next: LockView, nextSlot: number, pending: Pending): boolean {
    for (const state of [LOCK_USED_IN_HARDIRQ, LOCK_USED_IN_SOFTIRQ]) {
      const safeMask = (1 << state) | (1 << (state + LOCK_USAGE_READ_MASK));
      const safe = this.findUsage(prevSlot, false, safeMask, true, pending);
      if (!safe) continue;
      const unsafe = this.findUsage(nextSlot, true, safeMask << 2, true, pending);
      if (!unsafe) continue;
      this.reportBadIrqDependency(t, prev, next, safe, unsafe, state, pending);
      return false;
    }
    return true;
  }

  /** mark_lock() for each new usage bit (inside a perform), keeping where it was first set. */
  private markUsage(t: KTask, slot: number, h: HeldLock, trylock: boolean): void {
    const c = this.cls;
    const cls = this.classAt(slot);
    let mask = c.usage_mask.get(cls);
    let site = 0;
    for (const bit of this.usageBits(t, h.kind, trylock)) {
      if ((mask & (1 << bit)) !== 0) continue;
      if (site === 0) site = this.k.mem.intern(h.site.join('\n'));
      c.usage_traces.set(cls, bit, site);
      mask |= 1 << bit;
    }
    c.usage_mask.WRITE_ONCE(cls, mask);
  }

  /** get_usage_chars(): per irq state, write then read: '.' unused, '-' irq-safe, '+' irq-unsafe, '?' both. */
  private usageChars(slot: number): string {
    const mask = slot < 0 ? 0 : this.cls.usage_mask.get(this.classAt(slot));
    let s = '';
    for (const state of [LOCK_USED_IN_HARDIRQ, LOCK_USED_IN_SOFTIRQ]) {
      for (const r of [0, LOCK_USAGE_READ_MASK]) {
        const usedIn = (mask & (1 << (state + r))) !== 0;
        const enabled = (mask & (1 << (state + 2 + r))) !== 0;
        s += usedIn ? (enabled ? '?' : '-') : enabled ? '+' : '.';
      }
    }
    return s;
  }

  // ---- reports ----

  private lockName(name: string): string {
    return `(${name}){${this.usageChars(this.findSlot(name))}}`;
  }

  private printLock(l: LockView): string {
    return `${this.lockName(l.name)}, at: ${l.site[l.site.length - 1] ?? '?'}`;
  }

  /** lockdep_print_held_locks(). */
  private heldLines(t: KTask): string[] {
    const n = t.held.length;
    if (n === 0) return [`no locks held by ${t.label}.`];
    return [`${n} lock${n > 1 ? 's' : ''} held by ${t.label}:`, ...t.held.map((h, i) => ` #${i}: ${this.printLock(h)}`)];
  }

  private backtrace(t: KTask): string[] {
    const irq = t.kind === 'softirq' || t.kind === 'hardirq';
    return ['', 'stack backtrace:', `PID: ${t.pid} Comm: ${t.comm} ${IDENT}`, ...callTrace(t.chain(), irq)];
  }

  private emit(t: KTask, title: string, body: string[]): void {
    this.debugLocksOff(this.performing);
    this.k.report(taskFinding('lockdep', t, t.lastStep, title, body));
  }

  /** print_circular_bug(): path runs from the class being taken to the class held, through the graph. */
  private reportCircular(t: KTask, next: LockView, prev: HeldLock, path: readonly number[]): void {
    const depth = path.length - 1;
    const body = [
      IDENT,
      '------------------------------------------------------',
      `${t.label} is trying to acquire lock:`,
      this.printLock(next),
      '',
      'but task is already holding lock:',
      this.printLock(prev),
      '',
      'which lock already depends on the new lock.',
      '',
      '',
      'the existing dependency chain (in reverse order) is:',
    ];
    for (let i = depth; i >= 1; i--) {
      const rec = this.record(path[i - 1] as number, path[i] as number);
      const site = rec ? this.chainAt(rec.nextSite) : [];
      body.push('', `-> #${i} ${this.lockName(this.className(path[i] as number))}:`, ...traceLines(site));
    }
    body.push('', `-> #0 ${this.lockName(next.name)}:`, ...traceLines(next.site));
    const source = next.name;
    const target = prev.name;
    const parent = this.className(path[depth - 1] as number);
    body.push('', 'other info that might help us debug this:', '');
    if (parent !== source) body.push('Chain exists of:', `  ${source} --> ${parent} --> ${target}`, '');
    body.push(
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0                    CPU1',
      '       ----                    ----',
      `  lock(${target});`,
      `                               lock(${parent});`,
      `                               lock(${target});`,
      `  lock(${source});`,
      '',
      ' *** DEADLOCK ***',
      '',
      ...this.heldLines(t),
      ...this.backtrace(t),
    );
    this.emit(t, 'WARNING: possible circular locking dependency detected', body);
  }

  /** print_deadlock_bug(). */
  private reportRecursive(t: KTask, next: LockView, prev: HeldLock): void {
    this.emit(t, 'WARNING: possible recursive locking detected', [
      IDENT,
      '--------------------------------------------',
      `${t.label} is trying to acquire lock:`,
      this.printLock(next),
      '',
      'but task is already holding lock:',
      this.printLock(prev),
      '',
      'other info that might help us debug this:',
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0',
      '       ----',
      `  lock(${prev.name});`,
      `  lock(${next.name});`,
      '',
      ' *** DEADLOCK ***',
      '',
      ' May be due to missing lock nesting notation',
      '',
      ...this.heldLines(t),
      ...this.backtrace(t),
    ]);
  }

  /** print_usage_bug(). */
  private reportUsage(t: KTask, l: LockView, slot: number, prevBit: number, newBit: number): void {
    const trace = this.cls.usage_traces.get(this.classAt(slot), prevBit);
    this.emit(t, 'WARNING: inconsistent lock state', [
      IDENT,
      '--------------------------------',
      `inconsistent {${USAGE_STR[prevBit]}} -> {${USAGE_STR[newBit]}} usage.`,
      `${t.label} ${irqContext(t)} takes:`,
      this.printLock(l),
      `{${USAGE_STR[prevBit]}} state was registered at:`,
      ...traceLines(this.chainAt(trace)),
      '',
      'other info that might help us debug this:',
      ' Possible unsafe locking scenario:',
      '',
      '       CPU0',
      '       ----',
      `  lock(${l.name});`,
      `  <Interrupt>`,
      `    lock(${l.name});`,
      '',
      ' *** DEADLOCK ***',
      '',
      ...this.heldLines(t),
      ...this.backtrace(t),
    ]);
  }

  /** Where a usage bit was first set; `site` when it is the acquisition being validated that sets it. */
  private usageTrace(slot: number, bit: number, pending: Pending, site: readonly string[]): readonly string[] {
    const mask = this.usage(slot);
    if ((mask & (1 << bit)) === 0 && pending.slot === slot && (pending.bits & (1 << bit)) !== 0) return site;
    return this.chainAt(this.cls.usage_traces.get(this.classAt(slot), bit));
  }

  /**
   * print_shortest_lock_dependencies(): from the class found back to the root of the search, each with its
   * usage and where it was acquired. `path` is the search path root, …, leaf; `rootSite` the root's stack.
   */
  private dependencyLines(path: readonly number[], forwards: boolean, rootSite: readonly string[]): string[] {
    const out: string[] = [];
    for (let depth = path.length - 1; depth >= 0; depth--) {
      const c = path[depth] as number;
      const pad = ' '.repeat(depth);
      out.push(`${pad}-> ${this.lockName(this.className(c))} {`);
      const mask = this.usage(c);
      for (let bit = 0; bit < USAGE_STR.length; bit++) {
        if ((mask & (1 << bit)) === 0) continue;
        const trace = this.chainAt(this.cls.usage_traces.get(this.classAt(c), bit));
        out.push(`${pad}   ${USAGE_STR[bit]} at:`, ...traceLines(trace));
      }
      out.push(`${pad} }`, `${pad} ... acquired at:`);
      if (depth === 0) {
        out.push(...traceLines(rootSite));
      } else {
        const parent = path[depth - 1] as number;
        const rec = forwards ? this.record(parent, c) : this.record(c, parent);
        out.push(...traceLines(rec ? this.chainAt(rec.nextSite) : []));
      }
      out.push('');
    }
    return out;
  }

  /** print_irq_lock_scenario(). */
  private irqScenario(safe: string, unsafe: string, prevClass: string, nextClass: string): string[] {
    const middle = prevClass === safe ? nextClass : prevClass;
    const out: string[] = [];
    if (middle !== unsafe) out.push('Chain exists of:', `  ${safe} --> ${middle} --> ${unsafe}`, '');
    out.push(
      ' Possible interrupt unsafe locking scenario:',
      '',
      '       CPU0                    CPU1',
      '       ----                    ----',
      `  lock(${unsafe});`,
      '                               local_irq_disable();',
      `                               lock(${safe});`,
      `                               lock(${middle});`,
      '  <Interrupt>',
      `    lock(${safe});`,
      '',
      ' *** DEADLOCK ***',
      '',
    );
    return out;
  }

  /** print_irq_inversion_bug(): `path` runs from the lock whose usage changes to the conflicting one. */
  private reportInversion(t: KTask, l: LockView, path: readonly number[], forwards: boolean, bit: number): void {
    const irq = STATE_NAMES[bit >> 2] ?? '?';
    const root = l.name;
    const other = this.className(path[path.length - 1] as number);
    const middle = this.className(path[1] as number);
    const scenario = forwards ? this.irqScenario(root, other, middle, other) : this.irqScenario(other, root, middle, root);
    this.emit(t, 'WARNING: possible irq lock inversion dependency detected', [
      IDENT,
      '--------------------------------------------------------',
      `${t.label} just changed the state of lock:`,
      this.printLock(l),
      forwards
        ? `but this lock took another, ${irq}-unsafe lock in the past:`
        : `but this lock was taken by another, ${irq}-safe lock in the past:`,
      ` ${this.lockName(other)}`,
      '',
      '',
      'and interrupts could create inverse lock ordering between them.',
      '',
      '',
      'other info that might help us debug this:',
      ...scenario,
      ...this.heldLines(t),
      '',
      'the shortest dependencies between 2nd lock and 1st lock:',
      ...this.dependencyLines(path, forwards, l.site),
      ...this.backtrace(t).slice(1),
    ]);
  }

  /** print_bad_irq_dependency(): `safe` runs back from prev, `unsafe` on from next, through the graph. */
  private reportBadIrqDependency(
    t: KTask,
    prev: HeldLock,
    next: LockView,
    safe: readonly number[],
    unsafe: readonly number[],
    state: number,
    pending: Pending,
  ): void {
    const safeSlot = safe[safe.length - 1] as number;
    const unsafeSlot = unsafe[unsafe.length - 1] as number;
    const safeUsage = this.usage(safeSlot, pending);
    const unsafeUsage = this.usage(unsafeSlot, pending);
    const bit1 = (safeUsage & (1 << state)) !== 0 ? state : state + LOCK_USAGE_READ_MASK;
    const bit2 = (unsafeUsage & (1 << (state + 2))) !== 0 ? state + 2 : state + 2 + LOCK_USAGE_READ_MASK;
    const irq = (STATE_NAMES[state >> 2] ?? '?') + (bit1 & LOCK_USAGE_READ_MASK ? '-READ' : '');
    const safeName = this.className(safeSlot);
    const unsafeName = this.className(unsafeSlot);
    this.emit(t, `WARNING: ${irq}-safe -> ${irq}-unsafe lock order detected`, [
      IDENT,
      '-----------------------------------------------------',
      `${t.label} ${irqContext(t)} is trying to acquire:`,
      this.printLock(next),
      '',
      'and this task is already holding:',
      this.printLock(prev),
      'which would create a new lock dependency:',
      ` ${this.lockName(prev.name)} -> ${this.lockName(next.name)}`,
      '',
      `but this new dependency connects a ${irq}-irq-safe lock:`,
      ` ${this.lockName(safeName)}`,
      '',
      `... which became ${irq}-irq-safe at:`,
      ...traceLines(this.usageTrace(safeSlot, bit1, pending, next.site)),
      '',
      `to a ${irq}-irq-unsafe lock:`,
      ` ${this.lockName(unsafeName)}`,
      '',
      `... which became ${irq}-irq-unsafe at:`,
      '...',
      ...traceLines(this.usageTrace(unsafeSlot, bit2, pending, next.site)),
      '',
      'other info that might help us debug this:',
      '',
      ...this.irqScenario(safeName, unsafeName, prev.name, next.name),
      ...this.heldLines(t),
      '',
      `the dependencies between ${irq}-irq-safe lock and the holding lock:`,
      ...this.dependencyLines(safe, false, prev.site),
      `the dependencies between the lock to be acquired and ${irq}-irq-unsafe lock:`,
      ...this.dependencyLines(unsafe, true, next.site),
      ...this.backtrace(t).slice(1),
    ]);
  }
}

function depType(prev: LockKind, next: LockKind): number {
  return (readOf(prev) === 0 ? 1 : 0) + (readOf(next) !== 2 ? 2 : 0);
}

/** `[HC0[0]:SC1[1]:HE1:SE0]`: hardirq context and count, softirq context and count, irqs and softirqs enabled. */
function irqContext(t: KTask): string {
  const hc = t.kind === 'hardirq' ? 1 : 0;
  const sc = t.kind === 'softirq' ? 1 : 0;
  return `[HC${hc}[${hc}]:SC${sc}[${sc + 2 * t.softirqsDisabled}]:HE${hardirqsEnabled(t) ? 1 : 0}:SE${softirqsEnabled(t) ? 1 : 0}]`;
}

function hardirqsEnabled(t: KTask): boolean {
  return !t.irqsDisabled && t.kind !== 'hardirq';
}

/** curr->softirqs_enabled: not in irq context and no local_bh_disable() (spin_lock_bh) in force. */
function softirqsEnabled(t: KTask): boolean {
  return t.softirqsDisabled === 0 && t.kind !== 'softirq' && t.kind !== 'hardirq';
}

/** A saved stack trace as print_lock_trace() prints it: innermost first. */
function traceLines(chain: readonly string[]): string[] {
  if (chain.length === 0) return ['       (no stack trace recorded)'];
  const out: string[] = [];
  for (let i = chain.length - 1; i >= 0; i--) out.push(`       ${chain[i]}`);
  return out;
}

/**
 * Lockdep's share of the footprint of t's acquisition of `lock` (noteAcquired's lock_acquire()): see
 * Lockdep.acquireFootprint. Undefined: the step may write the graph and must declare no footprint.
 */
export function lockdepAcquireFootprint(k: Kernel, t: KTask, lock: LockRef, kind: LockKind): Footprint | undefined {
  return k.lockdep.acquireFootprint(t, lock.name, lock.addr(), kind);
}

/** Lockdep's share of the footprint of t's release of `lock` (noteReleased's lock_release()): Lockdep.releaseFootprint. */
export function lockdepReleaseFootprint(k: Kernel, t: KTask, lock: LockRef): Footprint | undefined {
  return k.lockdep.releaseFootprint(t.holds(lock.addr()) !== undefined);
}
