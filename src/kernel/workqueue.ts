// Workqueues (kernel/workqueue.c, include/linux/workqueue.h): workqueues and work items declared with the
// workload, queue_work (false when the item is already pending), delayed work, flush_work, cancel_work_sync,
// flush/drain/destroy_workqueue. Each queued instance runs as a worker task in 'workqueue' context named like
// the kernel's kworkers (`kworker/u8:N`), with worker_thread / process_one_work / the work function on its call
// chain; a work function that returns holding a lock gets kernel.ts's `BUG: workqueue leaked lock or atomic`.
// As in the kernel, an item is never run by two workers at once (a re-queue while it runs waits for it), an
// ordered workqueue runs its items one at a time in queueing order, and max_active bounds a workqueue's
// concurrently running items. All state is in static shared memory.
import type { Wire } from '../runtime/model.js';
import { type StepEnv, WATCH_NOTHING } from '../runtime/task.js';
import type { KTask } from './context.js';
import { callTrace, heldLocksLines, taskFinding } from './findings.js';
import type { Kernel, KGen } from './kernel.js';
import { attached, withFrames } from './rcu.js';

/** A work function: `data` is what queue_work was given (the kernel's container_of). */
export type WorkFn = (t: KTask, data: Wire) => KGen;

export interface WorkqueueOptions {
  /** WQ_UNBOUND: workers named kworker/uN:M. */
  readonly unbound?: boolean;
  /** alloc_ordered_workqueue: one item at a time, in queueing order. */
  readonly ordered?: boolean;
  /** max_active (default 256). */
  readonly maxActive?: number;
}

export interface Workqueue {
  readonly id: number;
  readonly name: string;
  readonly off: number;
  readonly unbound: boolean;
  readonly ordered: boolean;
  readonly maxActive: number;
}

export interface WorkItem {
  readonly id: number;
  readonly name: string;
  readonly off: number;
  readonly fn: WorkFn;
}

// Workqueue words.
const Q_COUNT = 0; // items pending or running
const Q_ACTIVE = 1; // items running
const Q_NEXT = 2; // next ticket (ordered workqueues)
const Q_SERVE = 3; // ticket being served
const Q_DEAD = 4; // destroy_workqueue'd
const Q_WORDS = 5;

// Work item words.
const W_STATE = 0; // WORK_STRUCT_PENDING
const W_SEQ = 1; // queueing generation: a worker of an older one (cancelled) does not run it
const W_RUNNING = 2; // task id of the worker running it
const W_WQ = 3; // id of the workqueue it was last queued on
const W_WORDS = 4;
const PENDING = 1;

const WORKER_KIND = 'worker_thread';

interface WqState {
  readonly wqs: Workqueue[];
  readonly works: WorkItem[];
  /** Static offset of the kworker name counter. */
  readonly counter: number;
  readonly system: Workqueue;
  readonly systemUnbound: Workqueue;
}

const states = new WeakMap<Kernel, WqState>();

function state(k: Kernel): WqState {
  let st = states.get(k);
  if (st) return st;
  if (attached(k)) throw new Error('workqueue: declare workqueues and work items when the workload is built');
  const wqs: Workqueue[] = [];
  const works: WorkItem[] = [];
  const counter = k.statics.alloc(1, 'kworker ids');
  const system = newWq(k, wqs, 'events', {});
  const systemUnbound = newWq(k, wqs, 'events_unbound', { unbound: true });
  st = { wqs, works, counter, system, systemUnbound };
  states.set(k, st);
  const s = st;
  k.task(WORKER_KIND, 'workqueue', (t, a) => worker(k, s, t, a));
  return st;
}

function newWq(k: Kernel, wqs: Workqueue[], name: string, o: WorkqueueOptions): Workqueue {
  const wq: Workqueue = {
    id: wqs.length + 1,
    name,
    off: k.statics.alloc(Q_WORDS, `workqueue ${name}`),
    unbound: o.unbound ?? false,
    ordered: o.ordered ?? false,
    maxActive: o.ordered ? 1 : (o.maxActive ?? 256),
  };
  wqs.push(wq);
  return wq;
}

/** alloc_workqueue(name, flags, max_active), declared with the workload. */
export function alloc_workqueue(k: Kernel, name: string, opts: WorkqueueOptions = {}): Workqueue {
  return newWq(k, state(k).wqs, name, opts);
}

/** alloc_ordered_workqueue(name, flags). */
export function alloc_ordered_workqueue(k: Kernel, name: string, opts: Omit<WorkqueueOptions, 'ordered' | 'maxActive'> = {}): Workqueue {
  return alloc_workqueue(k, name, { ...opts, ordered: true, unbound: opts.unbound ?? true });
}

/** system_wq ("events"). */
export function system_wq(k: Kernel): Workqueue {
  return state(k).system;
}

/** system_unbound_wq ("events_unbound"). */
export function system_unbound_wq(k: Kernel): Workqueue {
  return state(k).systemUnbound;
}

/** DECLARE_WORK(name, fn): a work item declared with the workload. */
export function defineWork(k: Kernel, name: string, fn: WorkFn): WorkItem {
  const st = state(k);
  const w: WorkItem = { id: st.works.length + 1, name, off: k.statics.alloc(W_WORDS, `work ${name}`), fn };
  st.works.push(w);
  return w;
}

function qa(k: Kernel, wq: Workqueue): number {
  return k.mem.statics + wq.off;
}

function wa(k: Kernel, w: WorkItem): number {
  return k.mem.statics + w.off;
}

function ld(k: Kernel, at: number): number {
  return Atomics.load(k.i32, at);
}

// ---- queueing ----

function enqueue(k: Kernel, st: WqState, t: KTask, wq: Workqueue, w: WorkItem, data: Wire, delayMs: number, env: StepEnv): boolean {
  const i32 = k.i32;
  const q = qa(k, wq);
  const a = wa(k, w);
  if (ld(k, q + Q_DEAD) !== 0) {
    // __queue_work: WARN_ON_ONCE on a workqueue being destroyed.
    const title = `WARNING: CPU: 0 PID: ${t.pid} at kernel/workqueue.c:1615 __queue_work`;
    const body = [
      `queue_work of ${w.name} on workqueue ${wq.name}, which has been destroyed`,
      ...heldLocksLines(t),
      ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
    ];
    k.report(taskFinding('workqueue', t, env.step, title, body));
    return false;
  }
  if ((ld(k, a + W_STATE) & PENDING) !== 0) return false;
  Atomics.or(i32, a + W_STATE, PENDING);
  const seq = Atomics.add(i32, a + W_SEQ, 1) + 1;
  Atomics.store(i32, a + W_WQ, wq.id);
  Atomics.add(i32, q + Q_COUNT, 1);
  // A delayed item takes its place in an ordered queue when its timer fires.
  const ticket = delayMs > 0 ? -1 : Atomics.add(i32, q + Q_NEXT, 1);
  const n = Atomics.add(i32, k.mem.statics + st.counter, 1);
  const at = delayMs > 0 ? env.now() + delayMs : -1;
  env.spawn(WORKER_KIND, { w: w.id, q: wq.id, seq, ticket, at, data }, `kworker/${wq.unbound ? 'u8' : '0'}:${n}`);
  return true;
}

/** queue_work(wq, work): false when the item is already pending (it then runs once, with its first data). */
export function* queue_work(k: Kernel, t: KTask, wq: Workqueue, work: WorkItem, data: Wire = null): KGen<boolean> {
  const st = state(k);
  return yield* k.call(
    t,
    'queue_work',
    k.step(t, `queue_work(${wq.name}, ${work.name})`, (env) => enqueue(k, st, t, wq, work, data, 0, env)),
  );
}

/** queue_delayed_work(wq, dwork, delay): runs no earlier than delayMs (simulated ms in the deterministic runtime). */
export function* queue_delayed_work(k: Kernel, t: KTask, wq: Workqueue, work: WorkItem, delayMs: number, data: Wire = null): KGen<boolean> {
  const st = state(k);
  return yield* k.call(
    t,
    'queue_delayed_work',
    k.step(t, `queue_delayed_work(${wq.name}, ${work.name}, ${delayMs})`, (env) => enqueue(k, st, t, wq, work, data, delayMs, env)),
  );
}

/** schedule_work(work): queue_work on system_wq. */
export function schedule_work(k: Kernel, t: KTask, work: WorkItem, data: Wire = null): KGen<boolean> {
  return queue_work(k, t, system_wq(k), work, data);
}

// ---- the worker ----

interface WorkerArgs {
  readonly w: number;
  readonly q: number;
  readonly seq: number;
  readonly ticket: number;
  readonly at: number;
  readonly data: Wire;
}

function workerArgs(a: Wire): WorkerArgs {
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new Error('worker: bad arguments');
  const num = (x: Wire | undefined): number => {
    if (typeof x !== 'number') throw new Error('worker: bad arguments');
    return x;
  };
  return { w: num(a.w), q: num(a.q), seq: num(a.seq), ticket: num(a.ticket), at: num(a.at), data: a.data ?? null };
}

function* worker(k: Kernel, st: WqState, t: KTask, raw: Wire): KGen {
  const a = workerArgs(raw);
  const work = st.works[a.w - 1];
  const wq = st.wqs[a.q - 1];
  if (!work || !wq) throw new Error('worker: unknown work item or workqueue');
  const i32 = k.i32;
  const q = qa(k, wq);
  const wd = wa(k, work);
  let ticket = a.ticket;
  if (a.at >= 0) {
    const at = a.at;
    ticket = (yield k.point(
      t,
      `delayed_work_timer_fn(${work.name})`,
      () => k.now() >= at,
      () => Atomics.add(i32, q + Q_NEXT, 1),
      { what: `the timer of delayed work ${work.name}`, wakeAt: () => at, watch: WATCH_NOTHING },
    )) as number;
  }
  const stale = (): boolean => ld(k, wd + W_SEQ) !== a.seq || (ld(k, wd + W_STATE) & PENDING) === 0;
  const turn = (): boolean => !wq.ordered || ld(k, q + Q_SERVE) === ticket;
  const go = (yield k.point(
    t,
    `process_one_work(${work.name})`,
    () => turn() && (stale() || (ld(k, wd + W_RUNNING) === 0 && ld(k, q + Q_ACTIVE) < wq.maxActive)),
    () => {
      if (stale()) {
        // Cancelled (or re-queued as a newer instance) before it ran.
        if (wq.ordered) Atomics.add(i32, q + Q_SERVE, 1);
        return false;
      }
      Atomics.and(i32, wd + W_STATE, ~PENDING);
      Atomics.store(i32, wd + W_RUNNING, t.id);
      Atomics.add(i32, q + Q_ACTIVE, 1);
      return true;
    },
    {
      what: `a worker of ${wq.name} for ${work.name}`,
      holder: () => ld(k, wd + W_RUNNING) || undefined,
      // turn(), stale() and the running and active counts
      watch: [q + Q_SERVE, wd + W_SEQ, wd + W_STATE, wd + W_RUNNING, q + Q_ACTIVE],
    },
  )) as boolean;
  if (!go) return;
  yield* withFrames(t, ['ret_from_fork', 'kthread', 'worker_thread', 'process_one_work', work.name], work.fn(t, a.data));
  yield* k.step(t, `process_one_work(${work.name}): done`, () => {
    Atomics.compareExchange(i32, wd + W_RUNNING, t.id, 0);
    Atomics.sub(i32, q + Q_ACTIVE, 1);
    Atomics.sub(i32, q + Q_COUNT, 1);
    if (wq.ordered) Atomics.add(i32, q + Q_SERVE, 1);
  });
}

// ---- waiting and cancelling ----

/** work_pending(work). A read: legal anywhere. */
export function work_pending(k: Kernel, work: WorkItem): boolean {
  return (ld(k, wa(k, work) + W_STATE) & PENDING) !== 0;
}

/** work_busy: pending or running. */
export function work_busy(k: Kernel, work: WorkItem): boolean {
  return work_pending(k, work) || ld(k, wa(k, work) + W_RUNNING) !== 0;
}

/**
 * flush_work(work): may sleep; waits until the item is neither pending nor running. Returns whether it had to
 * wait. Flushing a work that needs a lock the caller holds is a deadlock (the waits-for edge names the worker).
 */
export function* flush_work(k: Kernel, t: KTask, work: WorkItem): KGen<boolean> {
  return yield* k.call(
    t,
    'flush_work',
    (function* () {
      k.mightSleep(t, 'kernel/workqueue.c:4177');
      const busy = work_busy(k, work);
      yield k.point(
        t,
        `flush_work(${work.name})`,
        () => !work_busy(k, work),
        () => undefined,
        {
          what: `work ${work.name}`,
          holder: () => ld(k, wa(k, work) + W_RUNNING) || undefined,
          // work_busy()
          watch: [wa(k, work) + W_STATE, wa(k, work) + W_RUNNING],
        },
      );
      return busy;
    })(),
  );
}

/** cancel_work(work): un-queue it if pending (a running instance goes on); true when it was pending. */
export function* cancel_work(k: Kernel, t: KTask, work: WorkItem): KGen<boolean> {
  const st = state(k);
  return yield* k.step(t, `cancel_work(${work.name})`, () => {
    const a = wa(k, work);
    if ((ld(k, a + W_STATE) & PENDING) === 0) return false;
    Atomics.and(k.i32, a + W_STATE, ~PENDING);
    const wq = st.wqs[ld(k, a + W_WQ) - 1];
    if (wq) Atomics.sub(k.i32, qa(k, wq) + Q_COUNT, 1);
    return true;
  });
}

/** cancel_work_sync(work): may sleep; cancel, then wait for a running instance to finish. */
export function* cancel_work_sync(k: Kernel, t: KTask, work: WorkItem): KGen<boolean> {
  return yield* k.call(
    t,
    'cancel_work_sync',
    (function* () {
      k.mightSleep(t, 'kernel/workqueue.c:4369');
      const was = yield* cancel_work(k, t, work);
      const a = wa(k, work);
      yield k.point(
        t,
        `cancel_work_sync(${work.name})`,
        () => ld(k, a + W_RUNNING) === 0,
        () => undefined,
        {
          what: `work ${work.name}`,
          holder: () => ld(k, a + W_RUNNING) || undefined,
          watch: [a + W_RUNNING],
        },
      );
      return was;
    })(),
  );
}

export const cancel_delayed_work = cancel_work;
export const cancel_delayed_work_sync = cancel_work_sync;
export const flush_delayed_work = flush_work;

function runningOn(k: Kernel, st: WqState, wq: Workqueue): number | undefined {
  for (const w of st.works) {
    const a = wa(k, w);
    const r = ld(k, a + W_RUNNING);
    if (r !== 0 && ld(k, a + W_WQ) === wq.id) return r;
  }
  return undefined;
}

/** flush_workqueue(wq): may sleep; waits until no item of wq is pending or running. */
export function* flush_workqueue(k: Kernel, t: KTask, wq: Workqueue): KGen {
  const st = state(k);
  yield* k.call(
    t,
    'flush_workqueue',
    (function* () {
      k.mightSleep(t, 'kernel/workqueue.c:3430');
      yield k.point(
        t,
        `flush_workqueue(${wq.name})`,
        () => ld(k, qa(k, wq) + Q_COUNT) === 0,
        () => undefined,
        {
          what: `workqueue ${wq.name} to drain`,
          holder: () => runningOn(k, st, wq),
          watch: [qa(k, wq) + Q_COUNT],
        },
      );
    })(),
  );
}

export const drain_workqueue = flush_workqueue;

/** destroy_workqueue(wq): drain it; queueing on it afterwards is a WARN (and the work is dropped). */
export function* destroy_workqueue(k: Kernel, t: KTask, wq: Workqueue): KGen {
  yield* k.call(
    t,
    'destroy_workqueue',
    (function* () {
      yield* flush_workqueue(k, t, wq);
      yield* k.step(t, `destroy_workqueue(${wq.name})`, () => {
        Atomics.store(k.i32, qa(k, wq) + Q_DEAD, 1);
      });
    })(),
  );
}
