// The simulated kernel of one run, in one thread: memory layout, task contexts, checker switches and the
// findings they report. It is the workload's Monitor (src/runtime/model.ts): the runtime attaches it to the
// run's shared memory, lets it date findings by step, asks it about tasks left blocked (deadlock, hung task)
// and for teardown checks (leaks). Primitives (spinlock.ts, mutex.ts, rcu.ts, …) are declared on a Kernel at
// workload construction — identically in every thread — and keep their state in its shared memory.
import { STEP_MS } from '../runtime/clock.js';
import type { Footprint, FootprintFn } from '../runtime/footprint.js';
import type { BlockedTask, Monitor, Wire } from '../runtime/model.js';
import { type BlockedOn, type Point, type StepEnv, TASK_BASE, type TaskFactory, type TaskSelf, WATCH_NOTHING } from '../runtime/task.js';
import { type ContextKind, KTask } from './context.js';
import { callTrace, heldLocksLines, type KernelFinding, lockLine, taskFinding } from './findings.js';
import { Lockdep } from './lockdep.js';
import { DEFAULT_LAYOUT, KernelMemory, layoutWords, type MemoryLayout, StaticAllocator, stringHeapOffset } from './memory.js';
import { type Fields, type StructType, type StructView, WordMemory } from './struct.js';
import { KFuncRegistry, type KFnTable } from './kfunc.js';
import { hardLockupFinding, softLockupFinding } from './watchdog.js';

/** A kernel code path: yields scheduling points, returns T. */
export type KGen<T = void> = Generator<Point, T, unknown>;

export type CheckerName = 'might_sleep' | 'lockdep' | 'kasan' | 'rcu' | 'rcu_stall' | 'hung_task' | 'soft_lockup' | 'deadlock' | 'refcount' | 'leaks';

export interface KernelOptions {
  readonly layout?: Partial<MemoryLayout>;
  /** Where the kernel's region starts in the run's shared memory (words). */
  readonly base?: number;
  /** All checkers are on unless switched off here. */
  readonly checkers?: Partial<Record<CheckerName, boolean>>;
  /** hung_task_timeout_secs (simulated seconds in the deterministic runtime; 120 when not given). */
  readonly hungTaskSecs?: number;
  /** watchdog_thresh (s; 10 when not given): a soft lockup is 2 × this of CPU time with no scheduling point; 0: off. */
  readonly watchdogThresh?: number;
  /** rcu_cpu_stall_timeout (s; 21 when not given): a grace period held up this long is an RCU stall. */
  readonly rcuStallSecs?: number;
  /** The machine's CPUs (8 when not given): a task's CPU in reports is its pid modulo them. */
  readonly cpus?: number;
  /**
   * Tasks that may be inside RCU's read side, or one srcu_struct's, at once: the size of their reader tables
   * (a slot per reading task). A workload sizes it from its topology; 64 when not given.
   */
  readonly readerSlots?: number;
}

/** What a blocked task waits on, for hung-task and deadlock reports (kept on the task while it waits). */
export interface Waiting {
  readonly what: string;
  readonly since: number;
  readonly holder?: () => number | undefined;
  /** A busy-wait on the CPU (Waits.spins): running, not blocked — CPU time, never a hung task. */
  readonly spins: boolean;
}

/**
 * A checker that watches the run's simulated time (rcu.ts's stall detector): looked at as time passes (tick),
 * asked how far idle time must pass for it to see what it waits for, and at the end of a run with blocked tasks.
 */
export interface TimeWatcher {
  tick(now: number): void;
  /** The times at which it has something left to see. */
  deadlines(): number[];
}

/** What a point that may block waits on (Kernel.point). */
export interface Waits {
  readonly what: string;
  readonly holder?: () => number | undefined;
  readonly wakeAt?: () => number | undefined;
  /** The shared-memory words its ready() reads (Point.watch): the runtime asks it again only when one changes. */
  readonly watch?: readonly number[];
  /**
   * The task busy-waits on its CPU (cpu_relax, udelay: qi_submit_sync's wait descriptor, wait_on_sem, a CMD_SYNC
   * poll) instead of sleeping: the time it waits is CPU time with no scheduling point, which the soft-lockup
   * watchdog counts.
   */
  readonly spins?: boolean;
}

const ALWAYS = (): boolean => true;

// What a point's step is to the CPU accounting of the soft-lockup watchdog (KPoint.mode).
/** A step that runs: STEP_MS of CPU time. */
const RUNS = 0;
/** A point that may reschedule (a sleeping wait, cond_resched()): the CPU time since the last one starts again. */
const RESCHEDS = 1;
/** A busy-wait (Waits.spins): the step and the time waited are CPU time. */
const SPINS = 2;
type Mode = typeof RUNS | typeof RESCHEDS | typeof SPINS;

/** CPU time t has run with interrupts off since they were last on (none if they were on since its last step). */
function irqsOffFor(t: KTask): number {
  return t.irqsOnSinceStep ? 0 : t.irqsOffMs;
}

/** Reader slots of RCU and of each srcu_struct when the workload does not size them. */
export const DEFAULT_READER_SLOTS = 64;

/**
 * The results a KPoint's next() returns, one of each, reused: a point is made at every step, and `yield*` hands an
 * inner result on to its caller as it is (ECMA-262, yield*: GeneratorYield(innerResult)), every caller up to
 * Task.resume reading it at once and keeping nothing — so no result need be a new object.
 */
const YIELDED: { done: false; value: Point } = { done: false, value: { label: '', ready: () => true, perform: () => undefined } };
const RETURNED: { done: true; value: unknown } = { done: true, value: undefined };

/**
 * A scheduling point of a kernel task (one object, no closures of its own: points are made at every step). It
 * is also the generator k.step() returns — it yields itself once and returns what it was resumed with — so
 * that `yield* k.step(…)` costs no generator of its own.
 */
class KPoint<T> implements Point<T>, Generator<Point, T, unknown> {
  readonly wakeAt: (() => number | undefined) | undefined;
  readonly watch: readonly number[] | undefined;
  readonly footprint: Footprint | undefined;
  readonly footprintOf: FootprintFn | undefined;
  /** As a generator: 0 before the yield, 1 suspended at it, 2 done. */
  private state = 0;
  /** SPINS: when it was first found not ready (it spins from then on), or -1. */
  private spunFrom = -1;

  constructor(
    private readonly k: Kernel,
    private readonly t: KTask,
    readonly label: string,
    private readonly readyFn: () => boolean,
    private readonly fn: (env: StepEnv) => T,
    private readonly waits: Waits | undefined,
    private readonly mode: Mode,
    /** Point.footprint / footprintOf: the shared words ready() and perform() touch, when the caller declares them. */
    fp?: Footprint | FootprintFn,
  ) {
    // A patched kernel's points declare nothing: a patched function called from a perform may touch any word.
    if (k.fns.patched) fp = undefined;
    if (typeof fp === 'function') this.footprintOf = fp;
    else this.footprint = fp;
    this.wakeAt = waits?.wakeAt;
    this.watch = waits ? waits.watch : readyFn === ALWAYS ? WATCH_NOTHING : undefined;
  }

  // Methods rather than closures made per point: a point is made at every step.
  ready(): boolean {
    const r = this.readyFn();
    // A busy-wait spins from when it is first found not ready: until then the task was only not yet scheduled
    // (by the simulator, which is not a CPU's time).
    if (!r && this.mode === SPINS && this.spunFrom < 0) this.spunFrom = this.k.now();
    return r;
  }

  blockedOn(): BlockedOn | undefined {
    return this.waits ? this.waitingOn(this.waits) : undefined;
  }

  perform(env: StepEnv): T {
    const t = this.t;
    t.lastStep = env.step;
    if (this.mode === RESCHEDS) {
      t.cpuMs = 0;
      t.irqsOffMs = 0;
      t.irqsOnSinceStep = false;
    }
    else this.k.ranFor(t, this.mode === SPINS && this.spunFrom >= 0 ? STEP_MS + this.k.now() - this.spunFrom : STEP_MS, env.step);
    if (t.waits) this.k.waited(t);
    return this.fn(env);
  }

  private waitingOn(waits: Waits): BlockedOn {
    const h = waits.holder?.();
    const t = this.t;
    return { what: waits.what, ...(h !== undefined && h !== 0 ? { holder: h } : {}), context: waitContext(t), who: t.label };
  }

  [Symbol.iterator](): Generator<Point, T, unknown> {
    return this;
  }

  next(value?: unknown): IteratorResult<Point, T> {
    if (this.state === 0) {
      this.state = 1;
      YIELDED.value = this;
      return YIELDED as IteratorYieldResult<Point>;
    }
    const resumed = this.state === 1;
    this.state = 2;
    RETURNED.value = resumed ? value : undefined;
    return RETURNED as IteratorReturnResult<T>;
  }

  return(value: T): IteratorResult<Point, T> {
    this.state = 2;
    return { done: true, value };
  }

  throw(e: unknown): IteratorResult<Point, T> {
    this.state = 2;
    throw e;
  }
}

/**
 * What k.call() returns: the body's points, with fn on the task's call chain from the body's start to its end
 * (as a generator with try/finally would keep it), as an iterator rather than a generator — a generator level
 * costs every point yielded through it a resume and a suspend.
 */
class Frame<T> implements Generator<Point, T, unknown> {
  /** 0 not started, 1 running (fn pushed), 2 done. */
  private state = 0;

  constructor(
    private readonly t: KTask,
    private readonly fn: string,
    private readonly body: KGen<T>,
  ) {}

  [Symbol.iterator](): Generator<Point, T, unknown> {
    return this;
  }

  next(value?: unknown): IteratorResult<Point, T> {
    if (this.state !== 1) {
      if (this.state === 2) return { done: true, value: undefined as T };
      this.state = 1;
      this.t.frames.push(this.fn);
    }
    let r: IteratorResult<Point, T>;
    try {
      r = this.body.next(value);
    } catch (err) {
      this.end();
      throw err;
    }
    if (r.done) this.end();
    return r;
  }

  return(value: T): IteratorResult<Point, T> {
    if (this.state !== 1) {
      this.state = 2;
      return { done: true, value };
    }
    let r: IteratorResult<Point, T>;
    try {
      r = this.body.return(value);
    } catch (err) {
      this.end();
      throw err;
    }
    if (r.done) this.end();
    return r;
  }

  throw(e: unknown): IteratorResult<Point, T> {
    if (this.state !== 1) {
      this.state = 2;
      throw e;
    }
    let r: IteratorResult<Point, T>;
    try {
      r = this.body.throw(e);
    } catch (err) {
      this.end();
      throw err;
    }
    if (r.done) this.end();
    return r;
  }

  private end(): void {
    this.state = 2;
    this.t.frames.pop();
  }
}

/**
 * A kernel task's body as the runtime runs it: its context made at the first step, the body's points, then the
 * checks of its end — what a generator `{ start; yield* body(t, args); end }` would do, as an iterator: a
 * generator level costs every point of the task a resume and a suspend.
 */
class TaskRun implements Generator<Point, void, unknown> {
  private body: KGen | undefined;
  private t: KTask | undefined;
  private done = false;

  constructor(
    private readonly k: Kernel,
    private readonly self: TaskSelf,
    private readonly kind: string,
    private readonly context: ContextKind,
    private readonly make: (t: KTask, args: Wire) => KGen,
    private readonly args: Wire,
  ) {}

  [Symbol.iterator](): Generator<Point, void, unknown> {
    return this;
  }

  next(value?: unknown): IteratorResult<Point, void> {
    if (this.done) return { done: true, value: undefined };
    let body = this.body;
    if (body === undefined) {
      const t = this.k.started(this.self, this.kind, this.context);
      this.t = t;
      body = this.make(t, this.args);
      this.body = body;
      value = undefined;
    }
    let r: IteratorResult<Point, void>;
    try {
      r = body.next(value);
    } catch (err) {
      this.done = true;
      throw err;
    }
    if (r.done) {
      this.done = true;
      this.k.ended(this.t as KTask);
      return { done: true, value: undefined };
    }
    return r;
  }

  return(): IteratorResult<Point, void> {
    this.done = true;
    return { done: true, value: undefined };
  }

  throw(e: unknown): IteratorResult<Point, void> {
    this.done = true;
    throw e;
  }
}

export class Kernel implements Monitor {
  findings: KernelFinding[] = [];
  readonly layout: MemoryLayout;
  readonly base: number;
  readonly statics: StaticAllocator;
  readonly hungTaskSecs: number;
  /** The soft-lockup threshold: 2 × watchdog_thresh, in ms of CPU time (Infinity: off). */
  readonly softLockupMs: number;
  /** The hard-lockup threshold: watchdog_thresh, in ms of CPU time with interrupts off (Infinity: off). */
  readonly hardLockupMs: number;
  readonly rcuStallSecs: number;
  readonly cpus: number;
  readonly readerSlots: number;
  /** Contexts of the tasks running in this thread. */
  readonly tasks = new Map<number, KTask>();
  private memory: KernelMemory | undefined;
  /** The attached memory's words, for declared structs' accessors (struct.ts): set at each attach. */
  readonly words32 = new WordMemory();
  private readonly views = new Map<StructType<Fields>, unknown>();
  private clock: () => number = () => 0;
  private readonly checkers: Partial<Record<CheckerName, boolean>>;
  private readonly factories: Record<string, TaskFactory> = {};
  private readonly endHooks: (() => void)[] = [];
  private readonly freeHooks: ((t: KTask, obj: number, env: StepEnv) => void)[] = [];
  /** Each free hook's footprint (what it reads of shared memory for an object), undefined when it declares none. */
  private readonly freeFootprints: (((obj: number, out: number[]) => void) | undefined)[] = [];
  private readonly attachHooks: (() => void)[] = [];
  private readonly waiting = new Map<KTask, Waiting>();
  private readonly hungReported = new Set<number>();
  private readonly lockupReported = new Set<number>();
  private readonly watchers: TimeWatcher[] = [];
  /** Tasks started in this execution (the next one's CPU is this mod cpus). */
  private startedTasks = 0;
  /** When the run last found only blocked tasks left (idleUntil): idle time passed from there. */
  private idleFrom = 0;
  private leftBlocked = false;
  readonly lockdep: Lockdep;
  /** The model's kernel functions by name (kfunc.ts): defined by the modules that model them, patchable. */
  readonly fns = new KFuncRegistry((t, name, body) => this.call(t, name, body));
  /** The string heap: only ever appended to, and read only below its used mark, which the header (zeroed) holds. */
  readonly writtenBeforeRead: readonly [number, number];

  constructor(opts: KernelOptions = {}) {
    this.layout = { ...DEFAULT_LAYOUT, ...opts.layout };
    this.base = opts.base ?? 0;
    this.statics = new StaticAllocator(this.layout.staticWords);
    this.checkers = opts.checkers ?? {};
    this.hungTaskSecs = opts.hungTaskSecs ?? 120;
    const thresh = opts.watchdogThresh ?? 10;
    this.softLockupMs = thresh > 0 ? 2 * thresh * 1000 : Number.POSITIVE_INFINITY;
    this.hardLockupMs = thresh > 0 ? thresh * 1000 : Number.POSITIVE_INFINITY;
    this.rcuStallSecs = opts.rcuStallSecs ?? 21;
    this.cpus = opts.cpus ?? 8;
    this.readerSlots = opts.readerSlots ?? DEFAULT_READER_SLOTS;
    this.lockdep = new Lockdep(this);
    const heap = stringHeapOffset(this.layout, this.base);
    this.writtenBeforeRead = [heap, heap + this.layout.stringWords];
  }

  /** Call a kernel function by name: `k.fn.iommu_sva_bind_device(t, dev, mm)` runs its current implementation. */
  get fn(): KFnTable {
    return this.fns.table;
  }

  /** Monitor.describeWord: the kernel region a shared word is in, and the static object or slab offset. */
  describeWord(w: number): string {
    const m = this.mem;
    if (w < m.base || w >= m.arena + this.layout.arenaWords) return `word ${w} (outside the kernel's memory: a workload's or the hardware's)`;
    if (w >= m.arena) return `word ${w} (slab arena +${w - m.arena})`;
    if (w >= m.statics) {
      const o = this.statics.objectAt(w - m.statics);
      return `word ${w} (${o ? `static ${o.what} +${o.word}` : `static region +${w - m.statics}`})`;
    }
    if (w >= m.lockdep) return `word ${w} (lockdep graph +${w - m.lockdep})`;
    if (w >= m.stringHeap) return `word ${w} (string heap +${w - m.stringHeap})`;
    return `word ${w} (kernel memory header or string table +${w - m.base})`;
  }

  /** Words of shared memory the kernel needs (a workload's sharedWords must cover base + this). */
  get words(): number {
    return layoutWords(this.layout);
  }

  /** Whether a run's shared memory is attached (declarations happen before, points after). */
  get attached(): boolean {
    return this.memory !== undefined;
  }

  get mem(): KernelMemory {
    if (!this.memory) throw new Error('kernel: not attached to a run yet');
    return this.memory;
  }

  get i32(): Int32Array {
    return this.mem.i32;
  }

  /** Accessors of `type`'s fields on this kernel's memory (made once, at declaration). */
  struct<F extends Fields>(type: StructType<F>): StructView<F> {
    return type.bind(this.words32);
  }

  /**
   * The accessors of `type` on this kernel, made at the first call and shared by every later one: for code that
   * keeps no state of its own per kernel (a lock's operations) — a lookup by the type, no new accessors.
   */
  view<F extends Fields>(type: StructType<F>): StructView<F> {
    let v = this.views.get(type);
    if (v === undefined) {
      v = this.struct(type);
      this.views.set(type, v);
    }
    return v as StructView<F>;
  }

  now(): number {
    return this.clock();
  }

  enabled(c: CheckerName): boolean {
    return this.checkers[c] ?? true;
  }

  report(f: KernelFinding): void {
    this.findings.push(f);
  }

  /** The step of the shared-memory delivery running now (hardware actors date their findings by it). */
  deliveryStep = -1;

  // ---- Monitor ----

  delivering(step: number): void {
    this.deliveryStep = step;
  }

  /** A new execution: every checker starts afresh (each execution is judged on its own, as a boot is). */
  attach(shared: Int32Array, now: () => number): void {
    this.memory = new KernelMemory(shared, this.layout, this.base);
    this.words32.attach(shared);
    this.clock = now;
    this.findings = [];
    this.tasks.clear();
    this.waiting.clear();
    this.hungReported.clear();
    this.lockupReported.clear();
    this.startedTasks = 0;
    this.idleFrom = 0;
    this.leftBlocked = false;
    for (const h of this.attachHooks) h();
  }

  /** Called at attach, before the execution's first step: reset what the execution before it left. */
  onAttach(h: () => void): void {
    this.attachHooks.push(h);
  }

  /**
   * Called from kfree's perform (slab.ts) before an object is freed, so other checkers (RCU: a reader may
   * still hold it) can look at it while it is still allocated.
   */
  onFree(h: (t: KTask, obj: number, env: StepEnv) => void, footprint?: (obj: number, out: number[]) => void): void {
    this.freeHooks.push(h);
    this.freeFootprints.push(footprint);
  }

  /** Whether every free hook declares what it reads (onFree's footprint): kfree's point declares its own only then. */
  get freeHooksDeclared(): boolean {
    return this.freeFootprints.every((f) => f !== undefined);
  }

  /** The words the free hooks read for obj (footprint.ts's encoding), appended to out: pure, reads only. */
  freeingFootprint(obj: number, out: number[]): void {
    for (const f of this.freeFootprints) f?.(obj, out);
  }

  freeing(t: KTask, obj: number, env: StepEnv): void {
    for (const h of this.freeHooks) h(t, obj, env);
  }

  /** Teardown checks (leaks), run once on the final shared memory. */
  onEnd(h: () => void): void {
    this.endHooks.push(h);
  }

  /** Each hook checks its own switch (leak checks: k.enabled('leaks')). */
  end(): void {
    for (const h of this.endHooks) h();
  }

  /**
   * The CPU a task runs on, as the soft-lockup and RCU-stall reports print it: the model has no scheduler placing
   * tasks, so the n-th task to start in this thread's execution is on CPU n mod cpus (KTask.cpu). A task of
   * another thread (threaded runtime): its pid mod cpus.
   */
  cpuOf(id: number): number {
    const t = this.tasks.get(id);
    return t ? t.cpu : (id - TASK_BASE) % this.cpus;
  }

  /** A checker of simulated time besides the kernel's own (rcu.ts's stall detector). */
  watch(w: TimeWatcher): void {
    this.watchers.push(w);
  }

  /**
   * The task ran `ms` more of CPU time with no scheduling point (KPoint.perform): past the threshold, a soft lockup;
   * with interrupts off all along, past watchdog_thresh, a hard lockup (the watchdog's timer could not run).
   */
  ranFor(t: KTask, ms: number, step: number): void {
    if (t.irqsOnSinceStep) {
      // Interrupts were on for an instant since its last step: the watchdog's timer ran then.
      t.irqsOnSinceStep = false;
      t.irqsOffMs = 0;
      if (t.cpuMs > this.softLockupMs) this.softLockup(t, step, t.cpuMs);
    }
    const cpu = t.cpuMs + ms;
    t.cpuMs = cpu;
    if (t.irqsDisabled) {
      if (t.irqsOffMs === 0) t.irqsOffStep = step;
      t.irqsOffMs += ms;
    } else t.irqsOffMs = 0;
    this.lockup(t, step, 0);
  }

  /**
   * The lockup detectors on t, `more` ms of spinning after its last step: with interrupts off, the NMI watchdog
   * (hard lockup past watchdog_thresh); with them on, the watchdog's timer (soft lockup past 2 × watchdog_thresh).
   */
  private lockup(t: KTask, step: number, more: number): void {
    const off = irqsOffFor(t);
    if (t.irqsDisabled) {
      if (off + more > this.hardLockupMs) this.hardLockup(t, step, off + more);
    } else if (t.cpuMs + more > this.softLockupMs) this.softLockup(t, step, t.cpuMs + more);
  }

  /** When t, spinning since `since` with no step, will have run past its lockup threshold. */
  private lockupAt(t: KTask, since: number): number {
    return t.irqsDisabled ? since + this.hardLockupMs - irqsOffFor(t) : since + this.softLockupMs - t.cpuMs;
  }

  /** Whether a lockup detector has reported t in this execution. */
  lockedUp(t: KTask): boolean {
    return this.lockupReported.has(t.id);
  }

  /** kernel/watchdog.c's report, once per task and execution (the watchdog warns again only after a new touch). */
  private softLockup(t: KTask, step: number, cpuMs: number): void {
    if (!this.enabled('soft_lockup') || this.lockupReported.has(t.id)) return;
    this.lockupReported.add(t.id);
    this.report(softLockupFinding(t, t.cpu, step, cpuMs));
  }

  /** The NMI watchdog's report (the lockup detectors are one checker), once per task and execution. */
  private hardLockup(t: KTask, step: number, offMs: number): void {
    if (!this.enabled('soft_lockup') || this.lockupReported.has(t.id)) return;
    this.lockupReported.add(t.id);
    this.report(hardLockupFinding(t, t.cpu, step, offMs, t.irqsOffStep));
  }

  /** The task whose context this thread holds (RCU-stall reports name a reader by it). */
  taskById(id: number): KTask | undefined {
    return this.tasks.get(id);
  }

  /** What t waits on now, if it waits. */
  waitOf(t: KTask): Waiting | undefined {
    return this.waiting.get(t);
  }

  /**
   * The watchdogs, as time passes: the soft-lockup watchdog for tasks spinning in a busy-wait (a running task
   * is looked at when it takes its step), khungtaskd (kernel/hung_task.c, check_hung_task) for each task of this
   * thread blocked for hung_task_timeout_secs of simulated time — once, with how long it has really been blocked
   * — and the other watchers (RCU stalls).
   */
  tick(now: number): void {
    const hung = this.enabled('hung_task');
    const limit = this.hungTaskSecs * 1000;
    for (const [t, w] of this.waiting) {
      if (w.spins) {
        this.lockup(t, t.lastStep, now - w.since);
      } else if (hung && now >= w.since + limit && !this.hungReported.has(t.id)) {
        this.hungReported.add(t.id);
        const holder = w.holder?.();
        this.report(this.hungTask(t.lastStep, t.comm, t.pid, w.what, holder, waitContext(t), now - w.since));
      }
    }
    for (const w of this.watchers) w.tick(now);
  }

  /**
   * Only blocked tasks are left and nothing can wake them (no step, timer or timeout pending): idle time may pass,
   * up to the moment the watchdogs would have seen every one of them — khungtaskd each blocked task blocked for
   * its timeout, the soft-lockup watchdog each spinning one past its threshold, the RCU-stall detector each held
   * grace period. undefined: nothing of this thread waits to be seen.
   */
  idleUntil(now: number): number | undefined {
    this.idleFrom = now;
    let until: number | undefined;
    const later = (d: number): void => {
      if (d > now && d !== Number.POSITIVE_INFINITY) until = Math.max(until ?? d, d);
    };
    const hung = this.enabled('hung_task');
    for (const [t, w] of this.waiting) {
      if (w.spins) {
        if (!this.lockupReported.has(t.id) && this.enabled('soft_lockup')) later(this.lockupAt(t, w.since) + STEP_MS);
      } else if (hung && !this.hungReported.has(t.id)) {
        later(w.since + this.hungTaskSecs * 1000);
      }
    }
    for (const w of this.watchers) for (const d of w.deadlines()) later(d);
    return until;
  }

  /**
   * Whether the run ended with tasks blocked for ever (stuck() was told of them). Teardown leak checks then
   * stand back, as kmemleak does for what a task's stack still references: a blocked task is in the middle of
   * whatever it would have freed.
   */
  get tasksLeftBlocked(): boolean {
    return this.leftBlocked;
  }

  stuck(blocked: readonly BlockedTask[], now: number): void {
    if (blocked.length > 0) this.leftBlocked = true;
    // Waits-for edges from what each blocked task waits on; a cycle is a real deadlock.
    const byId = new Map(blocked.map((b) => [b.id, b]));
    const inCycle = new Set<number>();
    if (this.enabled('deadlock')) {
      for (const b of blocked) {
        if (inCycle.has(b.id)) continue;
        const path: BlockedTask[] = [];
        const seen = new Map<number, number>();
        let cur: BlockedTask | undefined = b;
        while (cur && !seen.has(cur.id)) {
          seen.set(cur.id, path.length);
          path.push(cur);
          const h: number | undefined = cur.blockedOn?.holder;
          cur = h === undefined ? undefined : byId.get(h);
        }
        if (cur && seen.has(cur.id)) {
          const cycle = path.slice(seen.get(cur.id));
          if (cycle.some((c) => inCycle.has(c.id))) continue;
          for (const c of cycle) inCycle.add(c.id);
          this.report(deadlockFinding(cycle));
        }
      }
    }
    // What the idle time showed the other watchers (RCU stalls), each as of when it would have seen it: nothing
    // moved while only blocked tasks were left.
    for (const w of this.watchers) {
      for (const d of w.deadlines().sort((a, b) => a - b)) if (d <= now) w.tick(Math.max(d, this.idleFrom));
    }
    // A task left spinning runs (state R): the soft-lockup watchdog's, once past its threshold.
    for (const b of blocked) {
      const t = this.tasks.get(b.id);
      const w = t && this.waiting.get(t);
      if (t && w?.spins && !inCycle.has(b.id)) this.lockup(t, t.lastStep, now - w.since);
    }
    // Everything else waits for ever: a hung task once the timeout has passed in simulated time; before that
    // (a runtime whose clock cannot skip ahead), what it is — blocked with nothing left to wake it.
    if (this.enabled('hung_task')) {
      for (const b of blocked) {
        if (inCycle.has(b.id) || this.hungReported.has(b.id) || this.lockupReported.has(b.id)) continue;
        this.hungReported.add(b.id);
        const [comm, pid] = splitLabel(b.blockedOn?.who ?? b.name);
        const since = this.waitingSince(b.id);
        const elapsed = since === undefined ? undefined : now - since;
        const what = b.blockedOn?.what ?? b.label;
        const ctx = b.blockedOn?.context ?? [];
        // Compared as the deadline the idle time ran to (since + timeout), not as a difference that rounds below it.
        if (since !== undefined && elapsed !== undefined && now >= since + this.hungTaskSecs * 1000) this.report(this.hungTask(-1, comm, pid, what, b.blockedOn?.holder, ctx, elapsed));
        else this.report(this.blockedForever(comm, pid, what, b.blockedOn?.holder, ctx, elapsed));
      }
    }
  }

  /** When the task with this id began its current wait (this thread's view; undefined when it has none). */
  private waitingSince(id: number): number | undefined {
    const t = this.tasks.get(id);
    return t ? this.waiting.get(t)?.since : undefined;
  }

  private hungTask(step: number, comm: string, pid: number, what: string, holder: number | undefined, ctx: readonly string[], elapsedMs: number): KernelFinding {
    // hung_task.c prints (jiffies - t->last_switch_time) / HZ: the whole seconds it has really been blocked.
    const title = `INFO: task ${comm}:${pid} blocked for more than ${Math.floor(elapsedMs / 1000)} seconds.`;
    const body = [
      '      Not tainted (iommu-sim)',
      '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
      `task:${comm} state:D pid:${pid}`,
      `iommu-sim: waiting on ${what}, ${this.holderLine(holder)}`,
      ...ctx,
    ];
    return { kind: 'hung_task', title, text: [title, ...body].join('\n'), step, where: `${comm}/${pid}`, task: comm, pid };
  }

  /** A task left blocked when the run ended before hung_task_timeout_secs had passed: no time is claimed. */
  private blockedForever(comm: string, pid: number, what: string, holder: number | undefined, ctx: readonly string[], elapsedMs: number | undefined): KernelFinding {
    const title = `INFO: task ${comm}:${pid} blocked, and nothing left in the run can wake it`;
    const body = [
      '      Not tainted (iommu-sim)',
      elapsedMs === undefined
        ? `iommu-sim: the run ended with this task blocked; khungtaskd (hung_task_timeout_secs=${this.hungTaskSecs}) had not looked yet`
        : `iommu-sim: blocked for ${(elapsedMs / 1000).toFixed(3)} s when the run ended, short of hung_task_timeout_secs=${this.hungTaskSecs}`,
      `task:${comm} state:D pid:${pid}`,
      `iommu-sim: waiting on ${what}, ${this.holderLine(holder)}`,
      ...ctx,
    ];
    return { kind: 'hung_task', title, text: [title, ...body].join('\n'), step: -1, where: `${comm}/${pid}`, task: comm, pid };
  }

  private holderLine(holder: number | undefined): string {
    return holder === undefined ? 'no task holds it' : `held by ${this.describeTask(holder)}`;
  }

  private describeTask(id: number): string {
    const t = this.tasks.get(id);
    return t ? t.label : `pid ${id - TASK_BASE}${id >= TASK_BASE ? '' : ' (not a task)'}`;
  }

  // ---- tasks ----

  /**
   * Declare a kind of kernel task: `body` runs with its own execution context. At its end, locks still held
   * and unbalanced RCU or preemption are reported as the kernel does.
   */
  task(kind: string, context: ContextKind, body: (t: KTask, args: Wire) => KGen): string {
    if (this.factories[kind]) throw new Error(`kernel: task kind '${kind}' declared twice`);
    this.factories[kind] = (args: Wire, self: TaskSelf) => new TaskRun(this, self, kind, context, body, args);
    return kind;
  }

  /** Task bodies for Workload.tasks. */
  get taskFactories(): Readonly<Record<string, TaskFactory>> {
    return this.factories;
  }

  /** A task's context comes to be (at its first step): TaskRun. */
  started(self: TaskSelf, kind: string, context: ContextKind): KTask {
    const t = new KTask(self, context, self.named ? self.name : kind);
    t.cpu = this.startedTasks++ % this.cpus;
    this.tasks.set(self.id, t);
    t.frames.push(kind);
    return t;
  }

  /** A task's body returned: TaskRun. */
  ended(t: KTask): void {
    t.frames.pop();
    this.taskEnded(t);
    this.tasks.delete(t.id);
  }

  private taskEnded(t: KTask): void {
    if (t.held.length > 0 && this.enabled('lockdep')) {
      const title =
        t.kind === 'workqueue'
          ? `BUG: workqueue leaked lock or atomic: ${t.comm}/0x${t.preemptCountValue().toString(16).padStart(8, '0')}/${t.pid}`
          : 'WARNING: lock held when returning to user space!';
      this.report(taskFinding('lockdep', t, t.lastStep, title, ['------------------------------------------------', ...heldLocksLines(t)]));
    }
    if (t.rcuDepth > 0 && this.enabled('rcu')) {
      this.report(taskFinding('rcu', t, t.lastStep, `WARNING: ${t.label} exited with rcu_read_lock() held (depth ${t.rcuDepth})`, heldLocksLines(t)));
    }
  }

  // ---- points ----

  /**
   * A scheduling point of task t. `perform` runs under the sequencer in the threaded runtime; while the point
   * is not ready the task is waiting on `waits.what` (for hung-task and deadlock reports).
   */
  point<T>(t: KTask, label: string, ready: () => boolean, perform: (env: StepEnv) => T, waits?: Waits, footprint?: Footprint | FootprintFn): Point<T> {
    if (!waits) return new KPoint(this, t, label, ready, perform, undefined, RUNS, footprint);
    const since = this.now();
    const spins = waits.spins === true;
    this.waiting.set(t, { what: waits.what, since, spins, holder: waits.holder });
    t.waits = true;
    return new KPoint(this, t, label, ready, perform, waits, spins ? SPINS : RESCHEDS, footprint);
  }

  /** The task's waiting point was performed: it waits no more. */
  waited(t: KTask): void {
    this.waiting.delete(t);
    t.waits = false;
  }

  /** A point that is always ready: an update of shared state that must be ordered against the others. */
  step<T>(t: KTask, label: string, perform: (env: StepEnv) => T): KGen<T> {
    return new KPoint(this, t, label, ALWAYS, perform, undefined, RUNS);
  }

  /**
   * k.step() on declared shared words: everything its perform reads or writes in shared memory is in
   * `footprint`, so the threaded runtime locks only those words' stripes (Point.footprint) and records the step
   * in their access order, instead of taking the coarse fallback lock.
   */
  stepOn<T>(t: KTask, label: string, footprint: Footprint | FootprintFn, perform: (env: StepEnv) => T): KGen<T> {
    return new KPoint(this, t, label, ALWAYS, perform, undefined, RUNS, footprint);
  }

  /**
   * A point at which the task may be rescheduled without blocking (cond_resched(): kernel/sched/core.c
   * __cond_resched): its CPU time without a scheduling point starts again — unless it cannot reschedule here
   * (preemption or interrupts disabled: should_resched(0) is false).
   */
  resched<T>(t: KTask, label: string, perform: (env: StepEnv) => T, footprint?: Footprint | FootprintFn): KGen<T> {
    const can = !t.inAtomic() && !t.irqsDisabled;
    return new KPoint(this, t, label, ALWAYS, perform, undefined, can ? RESCHEDS : RUNS, footprint);
  }

  /** Run a kernel function with its name on the call chain. */
  call<T>(t: KTask, fn: string, body: KGen<T>): KGen<T> {
    return new Frame(t, fn, body);
  }

  // ---- might_sleep ----

  /**
   * __might_sleep(): a task about to block must not be atomic, have interrupts off or be inside an RCU
   * read-side section. Reports like the kernel and lets the task go on (as the kernel does).
   */
  mightSleep(t: KTask, where: string): void {
    if (!this.enabled('might_sleep')) return;
    const atomic = t.inAtomic();
    if (!atomic && !t.irqsDisabled && t.rcuDepth === 0) return;
    const title = `BUG: sleeping function called from invalid context at ${where}`;
    const body = [
      `in_atomic(): ${atomic ? 1 : 0}, irqs_disabled(): ${t.irqsDisabled ? 1 : 0}, non_block: 0, pid: ${t.pid}, name: ${t.comm}`,
      `preempt_count: ${t.preemptCountValue().toString(16)}, expected: 0`,
      `RCU nest depth: ${t.rcuDepth}, expected: 0`,
      ...heldLocksLines(t),
      ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
    ];
    this.report(taskFinding('might_sleep', t, t.lastStep, title, body));
  }
}

function waitContext(t: KTask): string[] {
  return [...heldLocksLines(t), ...callTrace(t.chain())];
}

function splitLabel(name: string): [string, number] {
  const i = name.lastIndexOf('/');
  const pid = i >= 0 ? Number(name.slice(i + 1)) : Number.NaN;
  return Number.isInteger(pid) ? [name.slice(0, i), pid] : [name, 0];
}

function deadlockFinding(cycle: readonly BlockedTask[]): KernelFinding {
  const names = cycle.map((c) => c.blockedOn?.who ?? c.name);
  const title = `BUG: deadlock: ${names.join(' -> ')} -> ${names[0]} wait on each other`;
  const body: string[] = ['', 'Each task waits on what the next one holds:'];
  for (const c of cycle) {
    body.push(`  ${c.blockedOn?.who ?? c.name} waits on ${c.blockedOn?.what ?? c.label}`);
    for (const l of c.blockedOn?.context ?? []) body.push(`    ${l}`);
  }
  body.push('', ' *** DEADLOCK ***');
  return { kind: 'deadlock', title, text: [title, ...body].join('\n'), step: -1, where: names[0] ?? '' };
}

export { lockLine };
