// Tasks: coroutines the runtimes schedule alongside actor deliveries. A task body is a generator that yields
// its next scheduling point (a Point); the runtime decides when each task's point is performed, so the
// deterministic strategies explore every order of them and the threaded runtime records the order in which
// they really happened. A Point is performed atomically with its ticket (under the sequencer in the threaded
// runtime), and between two points a task may touch only its own state or state its locks protect — which is
// what makes ticket order a faithful record of a threaded run. The runtime knows nothing of what a point
// means: the kernel layer (src/kernel) builds them.
import type { Footprint } from './footprint.js';
import { ENV, type ModelEvent, type Wire } from './model.js';

/** Task ids live above actor ids: TASK_BASE + 16 × (spawning step + 1) + index within that step. */
export const TASK_BASE = 1 << 20;
const PER_STEP = 16;

export function isTaskId(id: number): boolean {
  return id >= TASK_BASE;
}

/** The id of the index-th task spawned at step (-1: the run's initial tasks). */
export function taskIdAt(step: number, index: number): number {
  return TASK_BASE + (step + 1) * PER_STEP + index;
}

/** The step that spawned task id (-1: one of the run's initial tasks), and its index within that step. */
export function spawnOf(id: number): { readonly step: number; readonly index: number } {
  const off = id - TASK_BASE;
  return { step: Math.floor(off / PER_STEP) - 1, index: off % PER_STEP };
}

export interface TaskSelf {
  readonly id: number;
  readonly name: string;
  /** Whether the spawner named it (otherwise the name is `kind/N`). */
  readonly named: boolean;
  /** The actor or task that spawned it (ENV for the run's own tasks). */
  readonly owner: number;
}

/** What a point may do to the world when it is performed. */
export interface StepEnv {
  readonly step: number;
  readonly self: TaskSelf;
  /** Simulated ms in the deterministic runtime, real ms since start in the threaded one. */
  now(): number;
  /** Start another task (it runs when first scheduled); returns its id. */
  spawn(kind: string, args: Wire, name?: string): number;
  /** Send an event to an actor. */
  send(to: number, event: ModelEvent): void;
}

/** What a runtime gives a point's env: its clock, and spawning and sending on behalf of the task stepping. */
export interface StepEnvHost {
  now(): number;
  spawn(step: number, owner: number, kind: string, args: Wire, name?: string): number;
  send(from: number, to: number, event: ModelEvent, step: number): void;
}

/**
 * What a task's point may do while it is performed: one object per run (per worker, threaded), set to each task
 * step in turn — a point's perform uses it while it runs and keeps nothing of it.
 */
export class TaskStepEnv implements StepEnv {
  step = -1;
  self: TaskSelf = { id: -1, name: '', named: false, owner: ENV };

  constructor(private readonly host: StepEnvHost) {}

  at(step: number, self: TaskSelf): this {
    this.step = step;
    this.self = self;
    return this;
  }

  now(): number {
    return this.host.now();
  }

  spawn(kind: string, args: Wire, name?: string): number {
    return this.host.spawn(this.step, this.self.id, kind, args, name);
  }

  send(to: number, event: ModelEvent): void {
    this.host.send(this.self.id, to, event, this.step);
  }
}

export interface BlockedOn {
  readonly what: string;
  /** The task holding what is waited on, when one does (a waits-for edge for deadlock reports). */
  readonly holder?: number;
  /** Lines describing the waiter (its held locks, its call chain), rendered where it runs. */
  readonly context?: readonly string[];
  /** The waiter as its domain names it (e.g. `comm/pid`), when that differs from the task's name. */
  readonly who?: string;
}

export interface Point<T = unknown> {
  /** What the task is about to do, as a trace shows it: e.g. `mutex_lock(&group->mutex)`. */
  readonly label: string;
  /** Can it be performed now? Reads shared state only (in the threaded runtime: under the sequencer). */
  ready(): boolean;
  /** Perform it — only after ready() said yes, atomically with the step's ticket. The task resumes with the result. */
  perform(env: StepEnv): T;
  /** What a task that is not ready waits on. */
  blockedOn?: () => BlockedOn | undefined;
  /** A point that becomes ready by itself at this time (a timeout), in the runtime's ms. */
  wakeAt?: () => number | undefined;
  /**
   * The shared-memory words ready() reads (absolute indices into the run's shared Int32Array); empty when its
   * answer never changes (a point that is always ready). A promise that the answer changes only when one of
   * these words does or, with wakeAt, when that time comes: the deterministic runtime then keeps a point's
   * answer until one of them changes instead of asking again after every step that may have written shared
   * memory (which is what it does for a point without `watch`).
   */
  readonly watch?: readonly number[];
  /**
   * Every shared-memory word ready() and perform() read or write (absolute indices, footprint.ts's encoding),
   * when the point declares them: the threaded runtime then makes the step atomic with respect to those words
   * only (their lock stripes, control.ts) and records it in each one's access order. Undefined (and no
   * footprintOf): the step takes the coarse fallback lock (it is ordered with every other locked step), which
   * the run counts.
   */
  readonly footprint?: Footprint;
  /**
   * The footprint, computed when it depends on shared memory (a walk, a lookup): pure, evaluated before the
   * step locks and again under its locks (footprint.ts FootprintFn). Takes precedence over `footprint`.
   */
  readonly footprintOf?: () => Footprint | undefined;
}

/** A point's declared footprint, computed now if it is computed; undefined when it declares none. */
export function footprintNow(p: Point): Footprint | undefined {
  return p.footprintOf ? p.footprintOf() : p.footprint;
}

/** `watch` of a point whose ready() reads nothing (it is always ready). */
export const WATCH_NOTHING: readonly number[] = Object.freeze([]);

/** The earliest time a blocked task's point becomes ready by itself, if any does. */
export function earliestWake(tasks: Iterable<Task>): number | undefined {
  let best: number | undefined;
  for (const t of tasks) {
    const w = t.pending?.wakeAt?.();
    if (w !== undefined && (best === undefined || w < best)) best = w;
  }
  return best;
}

export type TaskBody = Generator<Point, void, unknown>;
export type TaskFactory = (args: Wire, self: TaskSelf) => TaskBody;

/** A task's first point: starting is a scheduling point of its own, so parent and child interleave. */
const START: Point<undefined> = { label: '(start)', ready: () => true, perform: () => undefined, watch: WATCH_NOTHING, footprint: WATCH_NOTHING };

export class TaskFailure extends Error {
  constructor(
    readonly task: string,
    readonly at: string,
    readonly error: unknown,
  ) {
    super(`task ${task} threw after '${at}': ${error instanceof Error ? error.message : String(error)}`);
    this.name = 'TaskFailure';
  }
}

export class Task implements TaskSelf {
  pending: Point | undefined = START;
  readonly named: boolean;
  /** Place in TaskTable.live's iteration order (a task that replaces one with the same id takes its place). */
  order = 0;
  private body: TaskBody | undefined;

  constructor(
    readonly id: number,
    readonly name: string,
    readonly kind: string,
    readonly owner: number,
    private readonly make: () => TaskBody,
    named = false,
  ) {
    this.named = named;
  }

  /** Perform the pending point (atomically with the step's ticket); returns what the task resumes with. */
  perform(env: StepEnv): unknown {
    const p = this.pending as Point;
    try {
      return p.perform(env);
    } catch (err) {
      this.pending = undefined;
      throw new TaskFailure(this.name, p.label, err);
    }
  }

  /** Run the body to its next point (outside the sequencer); false when the task has finished. */
  resume(value: unknown, after: string): boolean {
    try {
      this.body ??= this.make();
      const r = this.body.next(value);
      this.pending = r.done ? undefined : r.value;
    } catch (err) {
      this.pending = undefined;
      throw err instanceof TaskFailure ? err : new TaskFailure(this.name, after, err);
    }
    return this.pending !== undefined;
  }
}

/** Spawning, naming and bookkeeping shared by both runtimes. */
export class TaskTable {
  readonly live = new Map<number, Task>();
  readonly names = new Map<number, string>();
  private spawnStep = Number.NaN;
  private spawnIndex = 0;
  private spawned = 0;

  constructor(private readonly factories: Readonly<Record<string, TaskFactory>>) {}

  /** `index`: the run's initial tasks (step -1) are numbered by their place in Workload.initialTasks. */
  spawn(step: number, owner: number, kind: string, args: Wire, name?: string, index?: number): Task {
    return this.create(step, owner, kind, args, name, index ?? this.reserve(step, kind));
  }

  /**
   * The index of the next task `step` spawns, its kind checked: the threaded runtime numbers a task on the
   * spawning worker (the id returned to the spawner) and creates it, with that index, on the worker it deals it to.
   */
  reserve(step: number, kind: string): number {
    this.factoryOf(kind);
    if (step !== this.spawnStep) {
      this.spawnStep = step;
      this.spawnIndex = 0;
    }
    // Checked here too, so that the step spawning one too many fails, not the worker it was dealt to.
    if (this.spawnIndex >= PER_STEP) throw new Error(`more than ${PER_STEP} tasks spawned in one step (${step})`);
    return this.spawnIndex++;
  }

  /** The task `step` spawned as its index-th (reserve), created here. */
  create(step: number, owner: number, kind: string, args: Wire, name: string | undefined, index: number): Task {
    const factory = this.factoryOf(kind);
    if (index >= PER_STEP) throw new Error(`more than ${PER_STEP} tasks spawned in one step (${step})`);
    const id = taskIdAt(step, index);
    if (id > 0x7fffffff) throw new Error('task ids exhausted: the run is longer than 134 M steps');
    const label = name ?? `${kind}/${id - TASK_BASE}`;
    const self: TaskSelf = { id, name: label, owner, named: name !== undefined };
    const t = new Task(id, label, kind, owner, () => factory(args, self), name !== undefined);
    // Map.set on a live id keeps that entry's place: so does `order`.
    t.order = this.live.get(id)?.order ?? this.spawned++;
    this.live.set(id, t);
    this.names.set(id, label);
    return t;
  }

  private factoryOf(kind: string): TaskFactory {
    const factory = this.factories[kind];
    if (!factory) throw new Error(`no task '${kind}' in this workload (known: ${Object.keys(this.factories).join(', ') || 'none'})`);
    return factory;
  }

  finish(t: Task): void {
    this.live.delete(t.id);
  }
}
