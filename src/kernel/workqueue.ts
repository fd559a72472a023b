// Workqueues (kernel/workqueue.c, include/linux/workqueue.h): workqueues and work items declared with the
// workload, queue_work (false when the item is already pending), delayed work, flush_work, cancel_work_sync,
// flush/drain/destroy_workqueue. Each queued instance runs as a worker task in 'workqueue' context named like
// the kernel's kworkers (`kworker/u8:N`), with worker_thread / process_one_work / the work function on its call
// chain; a work function that returns holding a lock gets kernel.ts's `BUG: workqueue leaked lock or atomic`.
// As in the kernel, an item is never run by two workers at once (a re-queue while it runs waits for it), an
// ordered workqueue runs its items one at a time in queueing order, and max_active bounds a workqueue's
// concurrently running items. All state is in static shared memory.
import { read } from '../runtime/footprint.js';
import type { Wire } from '../runtime/model.js';
import { type StepEnv, WATCH_NOTHING } from '../runtime/task.js';
import type { KTask } from './context.js';
import { callTrace, heldLocksLines, taskFinding } from './findings.js';
import type { Kernel, KGen } from './kernel.js';
import { attached, withFrames } from './rcu.js';
import { struct, type ViewOf, word } from './struct.js';

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

/** struct workqueue_struct, the counts the model keeps (the kernel's are per pool_workqueue). */
const WORKQUEUE_STRUCT = struct('workqueue_struct', {
  count: word, // model: items pending or running (what flush_workqueue waits for)
  nr_active: word, // items running (pwq->nr_active)
  next: word, // model: next ticket (ordered workqueues keep their order this way)
  serve: word, // model: ticket being served
  dead: word, // __WQ_DESTROYING: destroy_workqueue'd
});

/** struct work_struct (data, entry, func): its data word's PENDING bit, and the model's bookkeeping. */
const WORK_STRUCT = struct('work_struct', {
  data: word, // WORK_STRUCT_PENDING
  seq: word, // model: queueing generation: a worker of an older one (cancelled) does not run it
  running: word, // model: task id of the worker running it (worker->current_work, as find_worker_executing_work sees it)
  wq: word, // model: id of the workqueue it was last queued on (data's pool_workqueue, in the kernel)
});
/** WORK_STRUCT_PENDING: the work is queued (bit 0 of work->data, WORK_STRUCT_PENDING_BIT). */
const WORK_STRUCT_PENDING = 1;

const WORKER_KIND = 'worker_thread';

interface WqState {
  readonly wqs: Workqueue[];
  readonly works: WorkItem[];
  /** Static offset of the kworker name counter. */
  readonly counter: number;
  readonly system: Workqueue;
  readonly systemUnbound: Workqueue;
  readonly wq: ViewOf<typeof WORKQUEUE_STRUCT>;
  readonly work: ViewOf<typeof WORK_STRUCT>;
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
  st = { wqs, works, counter, system, systemUnbound, wq: k.struct(WORKQUEUE_STRUCT), work: k.struct(WORK_STRUCT) };
  states.set(k, st);
  const s = st;
  k.task(WORKER_KIND, 'workqueue', (t, a) => worker(k, s, t, a));
  return st;
}

function newWq(k: Kernel, wqs: Workqueue[], name: string, o: WorkqueueOptions): Workqueue {
  const wq: Workqueue = {
    id: wqs.length + 1,
    name,
    off: k.statics.alloc(WORKQUEUE_STRUCT.words, `workqueue ${name}`),
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
  const w: WorkItem = { id: st.works.length + 1, name, off: k.statics.alloc(WORK_STRUCT.words, `work ${name}`), fn };
  st.works.push(w);
  return w;
}

function qa(k: Kernel, wq: Workqueue): number {
  return k.mem.statics + wq.off;
}

function wa(k: Kernel, w: WorkItem): number {
  return k.mem.statics + w.off;
}

// ---- queueing ----

function enqueue(k: Kernel, st: WqState, t: KTask, wq: Workqueue, w: WorkItem, data: Wire, delayMs: number, env: StepEnv): boolean {
  const i32 = k.i32;
  const q = qa(k, wq);
  const a = wa(k, w);
  if (st.wq.dead.READ_ONCE(q) !== 0) {
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
  if ((st.work.data.READ_ONCE(a) & WORK_STRUCT_PENDING) !== 0) return false;
  st.work.data.atomic_or(a, WORK_STRUCT_PENDING);
  const seq = st.work.seq.atomic_inc_return(a);
  st.work.wq.WRITE_ONCE(a, wq.id);
  st.wq.count.atomic_inc(q);
  // A delayed item takes its place in an ordered queue when its timer fires.
  const ticket = delayMs > 0 ? -1 : st.wq.next.atomic_fetch_add(q, 1);
  const n = Atomics.add(i32, k.mem.statics + st.counter, 1);
  const at = delayMs > 0 ? env.now() + delayMs : -1;
  env.spawn(WORKER_KIND, { w: w.id, q: wq.id, seq, ticket, at, data }, `kworker/${wq.unbound ? 'u8' : '0'}:${n}`);
  return true;
}

/** What enqueue() touches: the workqueue's state and counts, the item's words, the kworker id counter. */
function enqueueFootprint(k: Kernel, st: WqState, wq: Workqueue, w: WorkItem): number[] {
  const q = qa(k, wq);
  const a = wa(k, w);
  return [
    read(st.wq.dead.addr(q)),
    st.wq.count.addr(q),
    st.wq.next.addr(q),
    st.work.data.addr(a),
    st.work.seq.addr(a),
    st.work.wq.addr(a),
    k.mem.statics + st.counter,
  ];
}

/** queue_work(wq, work): false when the item is already pending (it then runs once, with its first data). */
export function* queue_work(k: Kernel, t: KTask, wq: Workqueue, work: WorkItem, data: Wire = null): KGen<boolean> {
  const st = state(k);
  return yield* k.call(
    t,
    'queue_work',
    k.stepOn(t, `queue_work(${wq.name}, ${work.name})`, enqueueFootprint(k, st, wq, work), (env) => enqueue(k, st, t, wq, work, data, 0, env)),
  );
}

/** queue_delayed_work(wq, dwork, delay): runs no earlier than delayMs (simulated ms in the deterministic runtime). */
export function* queue_delayed_work(k: Kernel, t: KTask, wq: Workqueue, work: WorkItem, delayMs: number, data: Wire = null): KGen<boolean> {
  const st = state(k);
  return yield* k.call(
    t,
    'queue_delayed_work',
    k.stepOn(t, `queue_delayed_work(${wq.name}, ${work.name}, ${delayMs})`, enqueueFootprint(k, st, wq, work), (env) => enqueue(k, st, t, wq, work, data, delayMs, env)),
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
  const q = qa(k, wq);
  const wd = wa(k, work);
  let ticket = a.ticket;
  if (a.at >= 0) {
    const at = a.at;
    ticket = (yield k.point(
      t,
      `delayed_work_timer_fn(${work.name})`,
      () => k.now() >= at,
      () => st.wq.next.atomic_fetch_add(q, 1),
      { what: `the timer of delayed work ${work.name}`, wakeAt: () => at, watch: WATCH_NOTHING },
      [st.wq.next.addr(q)],
    )) as number;
  }
  const stale = (): boolean => st.work.seq.READ_ONCE(wd) !== a.seq || (st.work.data.READ_ONCE(wd) & WORK_STRUCT_PENDING) === 0;
  const turn = (): boolean => !wq.ordered || st.wq.serve.READ_ONCE(q) === ticket;
  const go = (yield k.point(
    t,
    `process_one_work(${work.name})`,
    () => turn() && (stale() || (st.work.running.READ_ONCE(wd) === 0 && st.wq.nr_active.READ_ONCE(q) < wq.maxActive)),
    () => {
      if (stale()) {
        // Cancelled (or re-queued as a newer instance) before it ran.
        if (wq.ordered) st.wq.serve.atomic_inc(q);
        return false;
      }
      st.work.data.atomic_andnot(wd, WORK_STRUCT_PENDING);
      st.work.running.WRITE_ONCE(wd, t.id);
      st.wq.nr_active.atomic_inc(q);
      return true;
    },
    {
      what: `a worker of ${wq.name} for ${work.name}`,
      holder: () => st.work.running.READ_ONCE(wd) || undefined,
      // turn(), stale() and the running and active counts
      watch: [st.wq.serve.addr(q), st.work.seq.addr(wd), st.work.data.addr(wd), st.work.running.addr(wd), st.wq.nr_active.addr(q)],
    },
    // The same words, written (serve only by an ordered workqueue's stale instance; seq only read).
    [st.wq.serve.addr(q), read(st.work.seq.addr(wd)), st.work.data.addr(wd), st.work.running.addr(wd), st.wq.nr_active.addr(q)],
  )) as boolean;
  if (!go) return;
  yield* withFrames(t, ['ret_from_fork', 'kthread', 'worker_thread', 'process_one_work', work.name], work.fn(t, a.data));
  const done = [st.work.running.addr(wd), st.wq.nr_active.addr(q), st.wq.count.addr(q), st.wq.serve.addr(q)];
  yield* k.stepOn(t, `process_one_work(${work.name}): done`, done, () => {
    st.work.running.cmpxchg(wd, t.id, 0);
    st.wq.nr_active.atomic_dec(q);
    st.wq.count.atomic_dec(q);
    if (wq.ordered) st.wq.serve.atomic_inc(q);
  });
}

// ---- waiting and cancelling ----

/** work_pending(work). A read: legal anywhere. */
export function work_pending(k: Kernel, work: WorkItem): boolean {
  const st = state(k);
  return (st.work.data.READ_ONCE(wa(k, work)) & WORK_STRUCT_PENDING) !== 0;
}

/** work_busy: pending or running. */
export function work_busy(k: Kernel, work: WorkItem): boolean {
  const st = state(k);
  return work_pending(k, work) || st.work.running.READ_ONCE(wa(k, work)) !== 0;
}

/**
 * flush_work(work): may sleep; waits until the item is neither pending nor running. Returns whether it had to
 * wait. Flushing a work that needs a lock the caller holds is a deadlock (the waits-for edge names the worker).
 */
export function* flush_work(k: Kernel, t: KTask, work: WorkItem): KGen<boolean> {
  const st = state(k);
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
          holder: () => st.work.running.READ_ONCE(wa(k, work)) || undefined,
          // work_busy()
          watch: [st.work.data.addr(wa(k, work)), st.work.running.addr(wa(k, work))],
        },
        [read(st.work.data.addr(wa(k, work))), read(st.work.running.addr(wa(k, work)))],
      );
      return busy;
    })(),
  );
}

/** cancel_work(work): un-queue it if pending (a running instance goes on); true when it was pending. */
export function* cancel_work(k: Kernel, t: KTask, work: WorkItem): KGen<boolean> {
  const st = state(k);
  const a = wa(k, work);
  // The workqueue whose count it drops is the one the item was last queued on: read from the item.
  const footprint = (): number[] => {
    const out = [st.work.data.addr(a), read(st.work.wq.addr(a))];
    const wq = st.wqs[st.work.wq.READ_ONCE(a) - 1];
    if (wq) out.push(st.wq.count.addr(qa(k, wq)));
    return out;
  };
  return yield* k.stepOn(t, `cancel_work(${work.name})`, footprint, () => {
    if ((st.work.data.READ_ONCE(a) & WORK_STRUCT_PENDING) === 0) return false;
    st.work.data.atomic_andnot(a, WORK_STRUCT_PENDING);
    const wq = st.wqs[st.work.wq.READ_ONCE(a) - 1];
    if (wq) st.wq.count.atomic_dec(qa(k, wq));
    return true;
  });
}

/** cancel_work_sync(work): may sleep; cancel, then wait for a running instance to finish. */
export function* cancel_work_sync(k: Kernel, t: KTask, work: WorkItem): KGen<boolean> {
  const st = state(k);
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
        () => st.work.running.READ_ONCE(a) === 0,
        () => undefined,
        {
          what: `work ${work.name}`,
          holder: () => st.work.running.READ_ONCE(a) || undefined,
          watch: [st.work.running.addr(a)],
        },
        [read(st.work.running.addr(a))],
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
    const r = st.work.running.READ_ONCE(a);
    if (r !== 0 && st.work.wq.READ_ONCE(a) === wq.id) return r;
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
        () => st.wq.count.READ_ONCE(qa(k, wq)) === 0,
        () => undefined,
        {
          what: `workqueue ${wq.name} to drain`,
          holder: () => runningOn(k, st, wq),
          watch: [st.wq.count.addr(qa(k, wq))],
        },
        [read(st.wq.count.addr(qa(k, wq)))],
      );
    })(),
  );
}

export const drain_workqueue = flush_workqueue;

/** destroy_workqueue(wq): drain it; queueing on it afterwards is a WARN (and the work is dropped). */
export function* destroy_workqueue(k: Kernel, t: KTask, wq: Workqueue): KGen {
  const st = state(k);
  yield* k.call(
    t,
    'destroy_workqueue',
    (function* () {
      yield* flush_workqueue(k, t, wq);
      yield* k.stepOn(t, `destroy_workqueue(${wq.name})`, [st.wq.dead.addr(qa(k, wq))], () => {
        st.wq.dead.WRITE_ONCE(qa(k, wq), 1);
      });
    })(),
  );
}
