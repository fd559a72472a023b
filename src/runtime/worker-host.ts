// One worker thread of the threaded runtime: hosts its share of the actors and runs the delivery loop —
// drain the mailbox (a lane per sending thread) in batches, run same-thread messages and atomic operations
// from a local queue, fire due timers, flush held messages, publish counters, and park (never spin idle)
// when there is nothing to do. Every delivery, atomic operation and timer takes a ticket from the shared
// counter and is logged under it, with the time the model saw during it (StepClock) and the shared objects it
// touched under their locks (its footprint; the coarse fallback for one that declares none); the main thread
// merges the logs by ticket and orders them canonically by their happens-before (hb.ts).
import { StepClock, Timers } from './clock.js';
import { WireCodec } from './codec.js';
import { BUSY, Control, DELIVERED, GEN, IDLE, IDLE_BLOCKED, IDLE_EMPTY, IDLE_WAITING, SENT, SPAWNS_SENT, SPAWNS_TAKEN, TRIED, WAITING } from './control.js';
import { ActorFailure, describe } from './errors.js';
import { ActorHost } from './host.js';
import { blockedTasks } from './deterministic.js';
import {
  type ActorFinal,
  type AtomicDone,
  applyAtomic,
  type BlockedTask,
  type Effect,
  ENV,
  type Finding,
  MEM,
  type ModelEvent,
  TASK,
  TIMER,
  type Wire,
} from './model.js';
import { Outbox } from './outbox.js';
import { adaptiveSpin, WaitGovernor } from './park.js';
import { Doorbell, Mailbox, type MailboxLayout, senderLane } from './mailbox.js';
import { UnorderedWords } from './footprint.js';
import { SPAWN_TO, type SpawnCounts, type SpawnMessage, spawnMessage, spawnTarget } from './spawn.js';
import { earliestWake, footprintNow, type Point, TaskFailure, TaskStepEnv, TaskTable, taskIdAt } from './task.js';
import { HB_ALL, ObjectLog } from './hb.js';
import { EventNames, TimeLog, TraceLog } from './trace.js';
import { watchEnter, watchLeave } from './watchdog.js';
import { type WorkerTime, WorkerTimer } from './worker-time.js';
import { buildWorkload } from './workloads.js';

export interface WorkerInit {
  readonly index: number;
  readonly workload: { readonly name: string; readonly params: Readonly<Record<string, Wire>> };
  /** Worker index of every actor. */
  readonly placement: readonly number[];
  /** Every worker's mailbox, with a lane for each thread (the main thread's index is `threads - 1`). */
  readonly mailboxes: readonly MailboxLayout[];
  readonly control: SharedArrayBuffer;
  readonly shared: SharedArrayBuffer;
  readonly threads: number;
  /** Poll this long before parking; 0 when there are more threads than cores. */
  readonly spinMicros: number;
  readonly keepTrace: boolean;
  /** Stop the whole run at the first finding (unless false). */
  readonly stopOnFinding: boolean;
  /** The run's time origin (absolute ms, performance.timeOrigin + now()), the same for every worker. */
  readonly epoch: number;
  /** Per-object locks (control.ts stripes); off, every locked step takes the coarse fallback. */
  readonly striping: boolean;
}

export type FailureInfo =
  | { readonly kind: 'actor'; readonly actor: string; readonly state: string; readonly event: string; readonly message: string }
  | { readonly kind: 'task'; readonly task: string; readonly at: string; readonly message: string }
  | { readonly kind: 'error'; readonly name: string; readonly message: string; readonly stack: string };

export type WorkerReport =
  | { readonly type: 'failed'; readonly index: number; readonly failure: FailureInfo }
  | {
      readonly type: 'done';
      readonly index: number;
      readonly records: Int32Array;
      /** The time of each record's step, in µs (StepClock). */
      readonly times: Float64Array;
      /** (ticket, object) pairs: the shared objects each step touched under their locks (hb.ts). */
      readonly objects: Int32Array;
      /** Locked steps that took only their objects' stripes, and steps that took the coarse fallback. */
      readonly striped: number;
      readonly fallback: number;
      /** Striped steps locked again because their computed footprint changed under the locks. */
      readonly relocked: number;
      /** Where this worker's time went (worker-time.ts). */
      readonly time: WorkerTime;
      readonly eventNames: readonly (readonly [number, string])[];
      readonly finals: readonly (readonly [number, ActorFinal])[];
      /** Model messages (and atomic operations): RunResult.accounting. */
      readonly sent: number;
      readonly delivered: number;
      readonly queued: number;
      /** Tasks spawned at run time and dealt to another worker (spawn.ts): kept out of `sent` and `delivered`. */
      readonly spawns: SpawnCounts;
      /** Task points this worker performed. */
      readonly taskPoints: number;
      readonly timersFired: number;
      readonly parks: number;
      readonly findings: readonly Finding[];
      readonly blocked: readonly BlockedTask[];
      readonly taskNames: readonly (readonly [number, string])[];
    };

type LocalItem =
  | { readonly atomic: false; readonly to: number; readonly from: number; readonly event: ModelEvent; readonly sendStep: number }
  | { readonly atomic: true; readonly from: number; readonly op: Extract<Effect, { type: 'rt.atomic' }>; readonly sendStep: number };

const BATCH = 256;
/** Points a task may perform in a row before the worker turns to its other work. */
const TASK_SLICE = 32;

export function runWorker(init: WorkerInit, post: (r: WorkerReport) => void): void {
  try {
    post(workerLoop(init));
  } catch (err) {
    post({ type: 'failed', index: init.index, failure: failureInfo(err) });
  }
}

function workerLoop(init: WorkerInit): WorkerReport {
  const me = init.index;
  const ctl = new Control(init.control, init.threads, init.striping);
  const workload = buildWorkload(init.workload.name, init.workload.params);
  ctl.unordered = new UnorderedWords(workload.unorderedWords);
  const codec = new WireCodec(workload.hotEvents);
  const shared = new Int32Array(init.shared);
  const inbox = new Mailbox(init.mailboxes[me] as MailboxLayout);
  const peers = init.mailboxes.map((mb, w) => (w === me ? undefined : new Doorbell(mb.bell)));
  const outboxes = init.mailboxes.map((mb, w) => (w === me ? undefined : new Outbox(senderLane(mb, me))));
  const waits = workerWaits(ctl, me, outboxes);
  const clock = new StepClock(init.epoch, init.keepTrace);
  const timers = new Timers(clock.now);
  const host = new ActorHost(workload, timers);
  const names = new EventNames();
  const log = new TraceLog(init.keepTrace ? 4096 : 1);
  const times = new TimeLog(init.keepTrace ? 4096 : 1);
  const objects = new ObjectLog(init.keepTrace ? 4096 : 1);
  /** An atomic operation's footprint: its word (one array, reused). */
  const word = [0];
  const tasks = new TaskTable(workload.tasks ?? {});
  const monitor = workload.monitor;
  monitor?.attach(shared, () => timers.now());
  let triedAt = Number.NaN; // the version at which every live task was last found blocked
  const local: LocalItem[] = [];
  let localHead = 0;
  let sent = 0;
  let delivered = 0;
  let timersFired = 0;
  let parks = 0;
  let taskPoints = 0;
  const keep = init.keepTrace;
  const workers = peers.length;
  /** Run-time spawns dealt so far (spawn.ts's policy), sent to other workers, and taken from them. */
  let dealt = 0;
  let spawnsSent = 0;
  let spawnsTaken = 0;

  const sendFrom = (from: number, to: number, event: ModelEvent, step: number): void => {
    sent++;
    const w = init.placement[to];
    if (w === undefined) throw new Error(`${workload.actors[from]?.name ?? tasks.names.get(from) ?? from} sent '${event.type}' to unknown actor ${to}`);
    if (w === me) {
      local.push({ atomic: false, to, from, event, sendStep: step });
    } else {
      const m = codec.encode(event, step);
      (outboxes[w] as Outbox).send(m.kind, to, from, m.bytes, 0, m.len);
    }
  };
  const route = (from: number, effects: readonly Effect[], step: number): void => {
    for (const e of effects) {
      if (e.type === 'rt.send') sendFrom(from, e.to, e.event, step);
      else if (e.type === 'rt.atomic') {
        sent++;
        local.push({ atomic: true, from, op: e, sendStep: step });
      } else spawn(step, from, e.task, e.args, e.name);
    }
  };
  /** Number the task here, create it on the worker the policy deals it to (spawn.ts); its id either way. */
  const spawn = (step: number, owner: number, kind: string, args: Wire, name?: string): number => {
    triedAt = Number.NaN;
    const index = tasks.reserve(step, kind);
    const w = workers === 1 ? me : spawnTarget(me, ++dealt, workers);
    if (w === me) return tasks.create(step, owner, kind, args, name, index).id;
    spawnsSent++;
    const m = codec.encode(spawnMessage(kind, args, name, index), step);
    (outboxes[w] as Outbox).send(m.kind, SPAWN_TO, owner, m.bytes, 0, m.len);
    return taskIdAt(step, index);
  };
  const taskEnv = new TaskStepEnv({ now: () => timers.now(), spawn, send: sendFrom });
  /** Try every live task whose point may have become ready; wake workers sleeping on blocked tasks. */
  const runTasks = (): number => {
    if (tasks.live.size === 0) return 0;
    const v = ctl.version;
    if (v === triedAt) {
      // Nothing changed since every task was found blocked: only a timeout can make one ready.
      const wake = earliestWake(tasks.live.values());
      if (wake === undefined || wake > timers.now()) return 0;
    }
    let n = 0;
    // (Map iteration tolerates deletions; tasks spawned meanwhile are visited too, which is fine.)
    for (const t of tasks.live.values()) {
      // Like a CPU, keep running a task while it can proceed (up to a time slice), then go round.
      for (let slice = 0; slice < TASK_SLICE; slice++) {
        const p = t.pending;
        // Asked first without the sequencer, as a hint: a blocked task (most of those tried) then costs no turn of
        // the lock another worker may be waiting for. Its answer may be stale, so a ready one is asked again
        // under the sequencer; a stale "blocked" was written by a point performed after `v` was read, which
        // bumped the version: the task is tried again before this worker sleeps on it.
        // The stop flag is checked before every point, so that a run stopped midway (its budget, a finding
        // elsewhere) takes at most the point each worker is already in.
        if (!p || ctl.stopped || !readyHint(p)) break;
        const done = ctl.trySequenced(
          () => p.ready(),
          (ticket) => {
            const us = clock.begin();
            if (keep) {
              log.push(ticket, t.id, TASK, -1, names.hash(p.label), 0);
              times.push(us);
              objects.pushAll(ticket, ctl.current, ctl.unordered);
            }
            // The host-time watchdog (watchdog.ts) watches the task's code from its point to its next one.
            watchEnter('task', t.name, p.label);
            try {
              return t.perform(taskEnv.at(ticket, t));
            } catch (err) {
              watchLeave();
              throw err;
            }
          },
          footprintNow(p),
          p.footprintOf,
        );
        if (!done) break;
        n++;
        taskPoints++;
        // The body runs on to its next point within the step (as in the deterministic runtime): same clock.
        let more: boolean;
        try {
          more = t.resume(done.value, p.label);
        } finally {
          watchLeave();
          clock.end();
        }
        if (!more) {
          tasks.finish(t);
          break;
        }
      }
    }
    if (n > 0) {
      for (let w = 0; w < peers.length; w++) {
        if (w !== me && ctl.load(w, WAITING) === 1) peers[w]?.wake();
      }
    } else {
      triedAt = v;
    }
    return n;
  };
  const sharedEvents = new Set(workload.sharedEvents ?? []);
  /** A step may have written what tasks here or elsewhere wait on: try them again, wake the sleeping workers. */
  const wrote = (): void => {
    triedAt = Number.NaN;
    for (let w = 0; w < peers.length; w++) {
      if (w !== me && ctl.load(w, WAITING) === 1) peers[w]?.wake();
    }
  };
  const deliver = (to: number, from: number, event: ModelEvent, sendStep: number): void => {
    let ticket: number;
    let effects: Effect[];
    let us: number;
    if (sharedEvents.has(event.type)) {
      // The handler reads or writes shared memory: run it under the locks of the footprint the workload gives
      // it (the coarse fallback lock when it gives none), atomically with its ticket.
      const again = workload.footprintOf ? () => workload.footprintOf?.(to, event) : undefined;
      [ticket, effects, us] = ctl.sequenced(
        (t) => {
          const at = clock.begin();
          monitor?.delivering?.(t, to);
          if (keep) objects.pushAll(t, ctl.current, ctl.unordered);
          return [t, host.deliver(to, event), at] as const;
        },
        true,
        workload.footprintOf?.(to, event),
        again,
      );
      wrote();
    } else {
      ticket = ctl.ticket();
      us = clock.begin();
      effects = host.deliver(to, event);
    }
    delivered++;
    if (keep) {
      log.push(ticket, to, from, sendStep, names.hash(event.type), names.hash(host.stateOf(to)));
      times.push(us);
    }
    route(to, effects, ticket);
    clock.end();
  };
  const onRing = (kind: number, to: number, from: number, buf: Uint8Array, off: number, len: number, ints: Int32Array): void => {
    const d = codec.decode(kind, buf, off, len, ints);
    if (to === SPAWN_TO) {
      takeSpawn(from, d.event as SpawnMessage, d.sendStep);
      return;
    }
    // Stopped: the rest of the batch stays queued (counted in `queued`), not delivered.
    if (ctl.stopped) local.push({ atomic: false, to, from, event: d.event, sendStep: d.sendStep });
    else deliver(to, from, d.event, d.sendStep);
  };
  /** A task another worker spawned and dealt here; stopped, it stays queued (counted in `spawns.queued`). */
  let spawnsLeft = 0;
  const takeSpawn = (owner: number, m: SpawnMessage, step: number): void => {
    if (ctl.stopped) {
      spawnsLeft++;
      return;
    }
    tasks.create(step, owner, m.task, m.args, m.name ?? undefined, m.index);
    spawnsTaken++;
    triedAt = Number.NaN;
  };
  const runLocal = (budget: number): number => {
    let n = 0;
    while (localHead < local.length && n < budget && !ctl.stopped) {
      const item = local[localHead++] as LocalItem;
      n++;
      if (!item.atomic) {
        deliver(item.to, item.from, item.event, item.sendStep);
        continue;
      }
      const a = item.op;
      word[0] = a.index;
      const { ticket, old, us } = ctl.sequenced(
        (t) => ({ ticket: t, us: clock.begin(), old: applyAtomic(shared, a.op, a.index, a.value, a.expected) }),
        a.op !== 'load',
        word,
      );
      if (keep) objects.pushAll(ticket, ctl.isFallback(word) ? undefined : word, ctl.unordered);
      clock.end();
      if (a.op !== 'load') triedAt = Number.NaN;
      delivered++;
      if (keep) {
        log.push(ticket, MEM, item.from, item.sendStep, names.hash(names.atomic(a.op, a.index)), old);
        times.push(us);
      }
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
      if (ctl.stopped) break;
      const t = timers.earliest(owner);
      if (!t) continue;
      let ticket: number;
      let us: number;
      let effects: Effect[];
      if (sharedEvents.size > 0) {
        // The delayed event may be a shared one (as the deterministic runtime assumes): its handler may touch
        // shared memory it does not declare, so it takes the coarse fallback lock and is ordered by it.
        [ticket, us, effects] = ctl.sequenced((tk) => [tk, clock.begin(), host.fire(t)] as const, true);
        if (keep) objects.push(ticket, HB_ALL);
        wrote();
      } else {
        ticket = ctl.ticket();
        us = clock.begin();
        effects = host.fire(t);
      }
      timersFired++;
      if (keep) {
        log.push(ticket, owner, TIMER, -1, names.hash('(timer)'), names.hash(host.stateOf(owner)));
        times.push(us);
      }
      route(owner, effects, ticket);
      clock.end();
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
  // The run's initial tasks, dealt round-robin over the workers.
  (workload.initialTasks ?? []).forEach((it, i) => {
    if (i % workers === me) tasks.spawn(-1, ENV, it.task, it.args, it.name, i);
  });
  // The actors started at time 0, as in a replay; from here on, time runs.
  clock.end();
  let lastTick = 0;

  const found = (): boolean => init.stopOnFinding && (monitor?.findings.length ?? 0) > 0;
  const timer = new WorkerTimer();
  while (!ctl.stopped) {
    let worked = inbox.drain(BATCH, onRing);
    worked += runLocal(BATCH);
    worked += runTasks();
    if (timers.size > 0) worked += fireTimers();
    if (held() > 0) worked += flushAll(outboxes);
    if (monitor?.tick && timers.now() - lastTick > 50) {
      lastTick = timers.now();
      monitor.tick(lastTick);
    }
    ctl.store(me, SENT, sent);
    ctl.store(me, DELIVERED, delivered);
    ctl.store(me, SPAWNS_SENT, spawnsSent);
    ctl.store(me, SPAWNS_TAKEN, spawnsTaken);
    if (found()) {
      // First finding: stop every thread (the main thread sees the stop flag and collects reports).
      ctl.stop();
      for (const p of peers) p?.wake();
      break;
    }
    if (worked > 0 || localHead < local.length) continue;
    const waiting = held();
    let timeout = 50;
    if (timers.size > 0) {
      const next = timers.earliest();
      timeout = next ? Math.max(0, Math.min(timeout, next.deadline - timers.now())) : timeout;
    }
    if (waiting > 0) timeout = 0.05; // a full ring elsewhere: retry soon
    const wake = earliestWake(tasks.live.values());
    if (wake !== undefined) timeout = Math.max(0, Math.min(timeout, wake - timers.now()));
    const blocked = tasks.live.size > 0;
    if (blocked) {
      // Say we sleep on blocked tasks, then look at the version once more: a point performed before we said
      // so is seen here, one performed after it wakes us.
      ctl.store(me, WAITING, 1);
      if (ctl.version !== triedAt) {
        ctl.store(me, WAITING, 0);
        continue;
      }
    }
    const later = timers.size > 0 || waiting > 0 || wake !== undefined;
    // Blocked tasks are stuck only if nothing was performed since they were tried: say at which version.
    if (blocked) ctl.store(me, TRIED, triedAt);
    ctl.store(me, IDLE, later ? IDLE_WAITING : blocked ? IDLE_BLOCKED : IDLE_EMPTY);
    const woke = () => inbox.ready() || ctl.stopped || (blocked && ctl.version !== triedAt);
    // Only a state that can complete quiescence is worth waking the main thread for.
    const idleSince = performance.now();
    if (
      idleWait(inbox, waits, init.spinMicros, timeout, woke, () => {
        if (!later) ctl.announceIdle();
      })
    ) {
      parks++;
    }
    timer.idled(performance.now() - idleSince, tasks.live.values());
    ctl.bump(me, GEN);
    ctl.store(me, IDLE, BUSY);
    ctl.store(me, WAITING, 0);
  }

  const finals = mine.map((id) => [id, host.final(id)] as const);
  host.stopAll();
  return {
    type: 'done',
    index: me,
    records: log.take(),
    times: times.take(),
    objects: objects.take(),
    striped: ctl.striped,
    fallback: ctl.fallback,
    relocked: ctl.relocked,
    time: timer.report(ctl.lockWaitMs),
    eventNames: [...names.map.entries()],
    finals,
    sent,
    delivered,
    // What its mailbox still holds is counted by the main thread once every worker has exited (spawn.ts leftIn).
    queued: local.length - localHead + held() - heldSpawns(outboxes),
    spawns: { sent: spawnsSent, taken: spawnsTaken, queued: spawnsLeft + heldSpawns(outboxes) },
    taskPoints,
    timersFired,
    parks,
    findings: [...(monitor?.findings ?? [])],
    blocked: blockedTasks(tasks),
    taskNames: [...tasks.names.entries()],
  };
}

/**
 * A point's ready() asked outside the sequencer: a hint, which memory another worker is writing may make wrong
 * either way — or make throw (a pointer read half-updated): then it may be ready, and is asked under the lock.
 */
function readyHint(p: Point): boolean {
  try {
    return p.ready();
  } catch {
    return true;
  }
}

/**
 * A worker with nothing to do waits: polls a little first when park.ts's policy lets it (in a request/response
 * exchange the answer is usually microseconds away, and neither a park/wake nor waking the main thread — on 2
 * cores it takes a core — is worth paying then), else parks on its mailbox for up to `timeoutMs`; `beforePark`
 * runs just before it sleeps. Returns true when it parked.
 */
function idleWait(inbox: Mailbox, waits: WaitGovernor, spinMicros: number, timeoutMs: number, woke: () => boolean, beforePark: () => void): boolean {
  if (adaptiveSpin(waits, spinMicros, woke)) return false;
  if (timeoutMs > QUIET_PARK_MS) {
    // A first park that does not wake the main thread: in an exchange the next message usually comes within it,
    // and the main thread, which looks for quiescence every millisecond anyway, would only take a core from the
    // peer that sends it (on a busy host, one runnable thread too many for every hop).
    if (inbox.park(QUIET_PARK_MS, 0) !== 'timeout' || woke()) return true;
    timeoutMs -= QUIET_PARK_MS;
  }
  beforePark();
  inbox.park(timeoutMs, 0);
  return true;
}

/** How long an idle worker sleeps before it tells the main thread (ms): its quiescence poll's period. */
const QUIET_PARK_MS = 1;

/**
 * The spin-or-park policy of worker `me`: the runnable threads are itself, the peers not idle, and the peers it
 * has sent messages they have not taken yet — a peer it just woke is runnable from that moment (as the kernel's
 * try_to_wake_up makes a task TASK_RUNNING before it is on a CPU): with a busy process beside the run, spinning
 * then would hold the one core the peer needs to answer.
 */
function workerWaits(ctl: Control, me: number, outboxes: readonly (Outbox | undefined)[]): WaitGovernor {
  return new WaitGovernor({
    runnable: () => {
      let n = 1;
      for (let w = 0; w < outboxes.length; w++) {
        if (w !== me && (ctl.load(w, IDLE) === BUSY || !(outboxes[w] as Outbox).ring.isEmpty())) n++;
      }
      return n;
    },
  });
}

function heldSpawns(outboxes: readonly (Outbox | undefined)[]): number {
  let n = 0;
  for (const o of outboxes) if (o) n += o.heldTo(SPAWN_TO);
  return n;
}

function flushAll(outboxes: readonly (Outbox | undefined)[]): number {
  let n = 0;
  for (const o of outboxes) if (o && o.held > 0) n += o.flush();
  return n;
}

export function failureInfo(err: unknown): FailureInfo {
  // The message is the model's own error; the main thread rebuilds the ActorFailure / TaskFailure around it.
  if (err instanceof ActorFailure) return { kind: 'actor', actor: err.actor, state: err.state, event: err.event, message: describe(err.error) };
  if (err instanceof TaskFailure) return { kind: 'task', task: err.task, at: err.at, message: describe(err.error) };
  if (err instanceof Error) return { kind: 'error', name: err.name, message: err.message, stack: err.stack ?? '' };
  return { kind: 'error', name: 'Error', message: String(err), stack: '' };
}

/** The error a failure report stands for, as the main thread throws it. */
export function rebuildFailure(f: FailureInfo): Error {
  if (f.kind === 'actor') return new ActorFailure(f.actor, f.state, f.event, new Error(f.message));
  if (f.kind === 'task') return new TaskFailure(f.task, f.at, new Error(f.message));
  const err = new Error(f.message);
  err.name = f.name;
  err.stack = f.stack;
  return err;
}
