// Which tasks can take a step, kept up to date by the deterministic runtime without asking every blocked task
// after every step. A point's ready() reads shared memory only (task.ts), so its answer can change only after
// a step that may have written shared memory — a task's point, an atomic operation, a delivery of a shared
// event, a timer — or, for a point with wakeAt, when that time comes. A blocked point that names the words it
// reads (Point.watch) is asked again only when one of them has changed: after each writing step the watched
// words are compared with the values they had, which costs one read per distinct word however many tasks wait
// on it. The ready tasks come out in TaskTable.live's order, so the scheduler sees exactly the choices it would
// see if every task were asked at every step.
import { TASK } from './model.js';
import { type Choice, channelKey } from './scheduler.js';
import type { Point, Task } from './task.js';

/** One watched word: its value when last compared, and the blocked tasks whose points read it. */
interface Watch {
  readonly addr: number;
  value: number;
  readonly tasks: TaskChoice[];
  /** Index in TaskReadiness.watchList; -1 while no task watches it (it stays in TaskReadiness.words). */
  pos: number;
}

// Where a task is kept between the times it is asked.
/** Asked when it takes a step only: its point's answer never changes (watch: []), or it has finished. */
const NOWHERE = 0;
/** Asked after every writing step: its point does not say what it reads. */
const POLLED = 1;
/**
 * Found ready at its first asking, and asked after the next writing step: most such points are taken at once (an
 * uncontended lock), and asking them is cheaper than watching their words. Still ready then, it watches them.
 */
const RECHECKED = 2;
/** Found blocked, or ready twice, and asked whenever a word it watches changes (until it takes its step). */
const WATCHING = 3;
type Place = typeof NOWHERE | typeof POLLED | typeof RECHECKED | typeof WATCHING;

/** A live task as the scheduler sees it (one object for the task's life) and what is known of its point. */
export class TaskChoice implements Choice {
  readonly key: number;
  readonly sender = TASK;
  readonly receiver: number;
  readonly thread: number;
  readonly seq: number;
  /** Task.order: the ready list is sorted by it. */
  readonly order: number;
  ready = false;
  /** The point `ready` answers for (undefined until first asked). */
  point: Point | undefined;
  place: Place = NOWHERE;
  /** Index in the POLLED or RECHECKED list. */
  slot = -1;
  /** WATCHING: the words (the first `nwatches`), this task's index in each one's task list, and their list. */
  readonly watches: Watch[] = [];
  readonly watchIdx: number[] = [];
  nwatches = 0;
  watching: readonly number[] | undefined;
  /** When a blocked point with wakeAt becomes ready by itself (then it is in TaskReadiness.timed). */
  wake = Number.POSITIVE_INFINITY;
  timed = -1;
  /** Generation at which it was last queued to be asked. */
  mark = -1;
  /** Finished, or replaced by a task of the same id. */
  gone = false;

  constructor(readonly task: Task) {
    this.key = channelKey(TASK, task.id);
    this.receiver = task.id;
    this.thread = task.id;
    this.seq = task.id;
    this.order = task.order;
  }
}

export class TaskReadiness {
  /** Tasks whose point is ready, in TaskTable.live's order. */
  readonly ready: TaskChoice[] = [];
  private readonly byId = new Map<number, TaskChoice>();
  private readonly words = new Map<number, Watch>();
  private readonly watchList: Watch[] = [];
  private readonly polled: TaskChoice[] = [];
  private readonly rechecked: TaskChoice[] = [];
  /** Blocked tasks whose point wakes by itself at some time. */
  private readonly timed: TaskChoice[] = [];
  /** Tasks to ask at the next refresh: the first `ndirty` (the array is reused, never shortened). */
  private readonly dirty: TaskChoice[] = [];
  private ndirty = 0;
  private gen = 0;
  private writes = true;

  constructor(private readonly mem: Int32Array) {}

  get(id: number): TaskChoice | undefined {
    return this.byId.get(id);
  }

  /** A task was spawned (it replaces a live task of the same id, as TaskTable.live does). */
  add(t: Task): void {
    const old = this.byId.get(t.id);
    if (old) this.remove(old);
    const c = new TaskChoice(t);
    this.byId.set(t.id, c);
    this.queue(c);
  }

  /** The task performed its point: it has a new one. */
  stepped(c: TaskChoice): void {
    this.queue(c);
  }

  /** The task has finished. */
  remove(c: TaskChoice): void {
    this.unplace(c);
    this.untime(c);
    if (c.ready) this.unready(c);
    c.point = undefined;
    c.gone = true;
    if (this.byId.get(c.task.id) === c) this.byId.delete(c.task.id);
  }

  /** A step may have written shared memory. */
  wrote(): void {
    this.writes = true;
  }

  /** Ask the tasks whose answer may have changed. */
  refresh(now: number): void {
    if (this.writes) {
      this.writes = false;
      const mem = this.mem;
      const watchList = this.watchList;
      for (let i = 0; i < watchList.length; i++) {
        const w = watchList[i] as Watch;
        const v = mem[w.addr] as number;
        if (v !== w.value) {
          w.value = v;
          const ts = w.tasks;
          for (let j = 0; j < ts.length; j++) this.queue(ts[j] as TaskChoice);
        }
      }
      const polled = this.polled;
      for (let i = 0; i < polled.length; i++) this.queue(polled[i] as TaskChoice);
      const rechecked = this.rechecked;
      for (let i = 0; i < rechecked.length; i++) this.queue(rechecked[i] as TaskChoice);
    }
    const timed = this.timed;
    for (let i = 0; i < timed.length; i++) {
      const c = timed[i] as TaskChoice;
      if (now >= c.wake) this.queue(c);
    }
    const n = this.ndirty;
    if (n === 0) return;
    const dirty = this.dirty;
    // (Asking a point queues nothing: ready() only reads.)
    for (let i = 0; i < n; i++) this.ask(dirty[i] as TaskChoice);
    this.ndirty = 0;
    this.gen++;
  }

  private queue(c: TaskChoice): void {
    if (c.mark === this.gen) return;
    c.mark = this.gen;
    this.dirty[this.ndirty++] = c;
  }

  private ask(c: TaskChoice): void {
    if (c.gone) return;
    const p = c.task.pending;
    if (!p) return;
    const fresh = p !== c.point;
    c.point = p;
    const r = p.ready();
    if (r !== c.ready) {
      if (r) this.readied(c);
      else this.unready(c);
    }
    const words = p.watch;
    // A point watches its words from the second time it is asked until it is performed, ready or not: waiters on
    // a contended lock go on being ready and blocked without registering again each time, and a task left ready
    // while the scheduler runs others (thousands of processes at their mmap_lock) is not asked at every step.
    const want: Place = words === undefined ? POLLED : words.length === 0 ? NOWHERE : r && fresh ? RECHECKED : WATCHING;
    if (want !== c.place || (want === WATCHING && fresh && words !== c.watching)) {
      this.unplace(c);
      this.placeAt(c, want, words);
    }
    const wake = r ? undefined : p.wakeAt?.();
    if (wake === undefined) {
      this.untime(c);
    } else {
      c.wake = wake;
      if (c.timed < 0) {
        c.timed = this.timed.length;
        this.timed.push(c);
      }
    }
  }

  private placeAt(c: TaskChoice, place: Place, words: readonly number[] | undefined): void {
    c.place = place;
    if (place === POLLED || place === RECHECKED) {
      const list = place === POLLED ? this.polled : this.rechecked;
      c.slot = list.length;
      list.push(c);
    } else if (place === WATCHING && words) {
      c.watching = words;
      for (const addr of words) {
        let w = this.words.get(addr);
        if (!w) {
          w = { addr, value: 0, tasks: [], pos: -1 };
          this.words.set(addr, w);
        }
        if (w.pos < 0) {
          w.value = this.mem[addr] as number;
          w.pos = this.watchList.length;
          this.watchList.push(w);
        }
        c.watches[c.nwatches] = w;
        c.watchIdx[c.nwatches] = w.tasks.length;
        c.nwatches++;
        w.tasks.push(c);
      }
    }
  }

  private unplace(c: TaskChoice): void {
    if (c.place === POLLED || c.place === RECHECKED) {
      swapRemove(c.place === POLLED ? this.polled : this.rechecked, c.slot, movedSlot);
      c.slot = -1;
    } else if (c.place === WATCHING) {
      for (let i = 0; i < c.nwatches; i++) {
        const w = c.watches[i] as Watch;
        const ts = w.tasks;
        const at = c.watchIdx[i] as number;
        const last = ts.pop() as TaskChoice;
        if (at < ts.length) {
          // `last` moves from the end (index ts.length) to at.
          ts[at] = last;
          for (let j = 0; j < last.nwatches; j++) {
            if (last.watches[j] === w && last.watchIdx[j] === ts.length) {
              last.watchIdx[j] = at;
              break;
            }
          }
        }
        if (ts.length === 0) {
          swapRemove(this.watchList, w.pos, movedWatch);
          w.pos = -1;
        }
      }
      c.nwatches = 0;
      c.watching = undefined;
    }
    c.place = NOWHERE;
  }

  private untime(c: TaskChoice): void {
    c.wake = Number.POSITIVE_INFINITY;
    if (c.timed >= 0) {
      swapRemove(this.timed, c.timed, movedTimed);
      c.timed = -1;
    }
  }

  private readied(c: TaskChoice): void {
    c.ready = true;
    this.ready.splice(this.place(c.order), 0, c);
  }

  private unready(c: TaskChoice): void {
    c.ready = false;
    this.ready.splice(this.place(c.order), 1);
  }

  /**
   * Where a task of this order is or goes in the ready list (live tasks' orders are distinct). A binary search:
   * with thousands of tasks a scan made every step cost the size of the topology.
   */
  private place(order: number): number {
    const list = this.ready;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((list[mid] as TaskChoice).order < order) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Remove a[i] by moving the last element there (`moved` learns its new index). */
function swapRemove<T>(a: T[], i: number, moved?: (m: T, i: number) => void): void {
  const last = a.pop() as T;
  if (i < a.length) {
    a[i] = last;
    moved?.(last, i);
  }
}

const movedSlot = (c: TaskChoice, i: number): void => {
  c.slot = i;
};
const movedTimed = (c: TaskChoice, i: number): void => {
  c.timed = i;
};
const movedWatch = (w: Watch, i: number): void => {
  w.pos = i;
};
