// One worker thread of the threaded runtime: hosts its share of the actors and runs the delivery loop —
// drain the mailbox ring in batches, run same-thread messages and atomic operations from a local queue,
// fire due timers, flush held messages, publish counters, and park (never spin idle) when there is nothing
// to do. Every delivery, atomic operation and timer takes a ticket from the shared counter and is logged
// under it; the main thread merges the logs into the run's trace by ticket.
import { Timers } from './clock.js';
import { WireCodec } from './codec.js';
import { Control, DELIVERED, GEN, IDLE, SENT } from './control.js';
import { ActorFailure, describe } from './errors.js';
import { ActorHost } from './host.js';
import { type ActorFinal, type AtomicDone, applyAtomic, type Effect, MEM, type ModelEvent, TIMER, type Wire } from './model.js';
import { Outbox } from './outbox.js';
import { Ring } from './ring.js';
import { EventNames, TraceLog } from './trace.js';
import { buildWorkload } from './workloads.js';

export interface WorkerInit {
  readonly index: number;
  readonly workload: { readonly name: string; readonly params: Readonly<Record<string, Wire>> };
  /** Worker index of every actor. */
  readonly placement: readonly number[];
  readonly rings: readonly SharedArrayBuffer[];
  readonly control: SharedArrayBuffer;
  readonly shared: SharedArrayBuffer;
  readonly threads: number;
  /** Poll this long before parking; 0 when there are more threads than cores. */
  readonly spinMicros: number;
  readonly keepTrace: boolean;
}

export interface FailureInfo {
  readonly name: string;
  readonly message: string;
  readonly actor?: string;
  readonly state?: string;
  readonly event?: string;
  readonly stack?: string;
}

export type WorkerReport =
  | { readonly type: 'failed'; readonly index: number; readonly failure: FailureInfo }
  | {
      readonly type: 'done';
      readonly index: number;
      readonly records: Int32Array;
      readonly eventNames: readonly (readonly [number, string])[];
      readonly finals: readonly (readonly [number, ActorFinal])[];
      readonly sent: number;
      readonly delivered: number;
      readonly queued: number;
      readonly timersFired: number;
      readonly parks: number;
    };

type LocalItem =
  | { readonly atomic: false; readonly to: number; readonly from: number; readonly event: ModelEvent; readonly sendStep: number }
  | { readonly atomic: true; readonly from: number; readonly op: Extract<Effect, { type: 'rt.atomic' }>; readonly sendStep: number };

const BATCH = 256;

export function runWorker(init: WorkerInit, post: (r: WorkerReport) => void): void {
  try {
    post(workerLoop(init));
  } catch (err) {
    post({ type: 'failed', index: init.index, failure: failureInfo(err) });
  }
}

function workerLoop(init: WorkerInit): WorkerReport {
  const me = init.index;
  const ctl = new Control(init.control, init.threads);
  const workload = buildWorkload(init.workload.name, init.workload.params);
  const codec = new WireCodec(workload.hotEvents);
  const shared = new Int32Array(init.shared);
  const ring = new Ring(init.rings[me] as SharedArrayBuffer);
  const outboxes = init.rings.map((sab, w) => (w === me ? undefined : new Outbox(new Ring(sab))));
  const t0 = performance.now();
  const timers = new Timers(() => performance.now() - t0);
  const host = new ActorHost(workload, timers);
  const names = new EventNames();
  const log = new TraceLog(init.keepTrace ? 4096 : 1);
  const local: LocalItem[] = [];
  let localHead = 0;
  let sent = 0;
  let delivered = 0;
  let timersFired = 0;
  let parks = 0;
  const keep = init.keepTrace;

  const route = (from: number, effects: readonly Effect[], step: number): void => {
    for (const e of effects) {
      sent++;
      if (e.type === 'rt.atomic') {
        local.push({ atomic: true, from, op: e, sendStep: step });
        continue;
      }
      const w = init.placement[e.to];
      if (w === undefined) throw new Error(`${workload.actors[from]?.name ?? from} sent '${e.event.type}' to unknown actor ${e.to}`);
      if (w === me) {
        local.push({ atomic: false, to: e.to, from, event: e.event, sendStep: step });
      } else {
        const m = codec.encode(e.event, step);
        (outboxes[w] as Outbox).send(m.kind, e.to, from, m.bytes, 0, m.len);
      }
    }
  };
  const deliver = (to: number, from: number, event: ModelEvent, sendStep: number): void => {
    const ticket = ctl.ticket();
    const effects = host.deliver(to, event);
    delivered++;
    if (keep) log.push(ticket, to, from, sendStep, names.hash(event.type), names.hash(host.stateOf(to)));
    route(to, effects, ticket);
  };
  const onRing = (kind: number, to: number, from: number, buf: Uint8Array, off: number, len: number): void => {
    const d = codec.decode(kind, buf, off, len);
    deliver(to, from, d.event, d.sendStep);
  };
  const runLocal = (budget: number): number => {
    let n = 0;
    while (localHead < local.length && n < budget) {
      const item = local[localHead++] as LocalItem;
      n++;
      if (!item.atomic) {
        deliver(item.to, item.from, item.event, item.sendStep);
        continue;
      }
      const a = item.op;
      const { ticket, old } = ctl.sequenced((t) => ({ ticket: t, old: applyAtomic(shared, a.op, a.index, a.value, a.expected) }));
      delivered++;
      if (keep) log.push(ticket, MEM, item.from, item.sendStep, names.hash(`${a.op}[${a.index}]`), old);
      const done: AtomicDone = { type: 'rt.atomic.done', op: a.op, index: a.index, old, tag: a.tag };
      sent++;
      local.push({ atomic: false, to: item.from, from: MEM, event: done, sendStep: ticket });
    }
    if (localHead === local.length) {
      local.length = 0;
      localHead = 0;
    }
    return n;
  };
  const fireTimers = (): number => {
    let n = 0;
    const now = timers.now();
    for (const owner of timers.dueOwners(now)) {
      const t = timers.earliest(owner);
      if (!t) continue;
      const ticket = ctl.ticket();
      const effects = host.fire(t);
      timersFired++;
      if (keep) log.push(ticket, owner, TIMER, -1, names.hash('(timer)'), names.hash(host.stateOf(owner)));
      route(owner, effects, ticket);
      n++;
    }
    return n;
  };
  const held = (): number => {
    let h = 0;
    for (const o of outboxes) if (o) h += o.held;
    return h;
  };

  const mine: number[] = [];
  init.placement.forEach((w, actor) => {
    if (w === me) mine.push(actor);
  });
  for (const [from, effects] of host.start(mine)) route(from, effects, -1);

  while (!ctl.stopped) {
    let worked = ring.drain(BATCH, onRing);
    worked += runLocal(BATCH);
    if (timers.size > 0) worked += fireTimers();
    if (held() > 0) worked += flushAll(outboxes);
    ctl.store(me, SENT, sent);
    ctl.store(me, DELIVERED, delivered);
    if (worked > 0 || localHead < local.length) continue;
    const waiting = held();
    let timeout = 50;
    if (timers.size > 0) {
      const next = timers.earliest();
      timeout = next ? Math.max(0, Math.min(timeout, next.deadline - timers.now())) : timeout;
    }
    if (waiting > 0) timeout = 0.05; // a full ring elsewhere: retry soon
    ctl.store(me, IDLE, timers.size > 0 || waiting > 0 ? 2 : 1);
    parks++;
    ring.park(timeout, init.spinMicros);
    ctl.bump(me, GEN);
    ctl.store(me, IDLE, 0);
  }

  const finals = mine.map((id) => [id, host.final(id)] as const);
  host.stopAll();
  return {
    type: 'done',
    index: me,
    records: log.take(),
    eventNames: [...names.map.entries()],
    finals,
    sent,
    delivered,
    queued: ring.pendingMessages() + (local.length - localHead) + held(),
    timersFired,
    parks,
  };
}

function flushAll(outboxes: readonly (Outbox | undefined)[]): number {
  let n = 0;
  for (const o of outboxes) if (o && o.held > 0) n += o.flush();
  return n;
}

export function failureInfo(err: unknown): FailureInfo {
  if (err instanceof ActorFailure) {
    // The message is the actor's own error; the main thread rebuilds the ActorFailure around it.
    return { name: err.name, message: describe(err.error), actor: err.actor, state: err.state, event: err.event, stack: err.stack ?? '' };
  }
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack ?? '' };
  return { name: 'Error', message: String(err) };
}
