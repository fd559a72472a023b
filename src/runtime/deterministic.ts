// The deterministic runtime: every actor and task in one thread, and a seeded Scheduler choosing the next
// step among the enabled ones. A step is the delivery of the head message of one channel (sender → receiver;
// per-channel FIFO, as the threaded transport guarantees), an atomic operation on shared memory, a due timer,
// or a task's next scheduling point. Time is simulated: each step costs STEP_MS; an actor whose hardware was busy
// handling a message (BusyEffect: a command's or a table fetch's cost) takes no delivery until that time has
// passed (its timers still fire); when nothing else can run, time jumps to the next timer, timeout or end of busy time, and with only
// blocked tasks left, to what the monitor still waits to see (a watchdog's timeout). Same workload + same scheduler seed ⇒ the same trace, byte for byte. A replay
// of a deterministic recording computes the same times again; a replay of a threaded one is handed the time
// each step was taken at, and fires a timer when the recording says it fired.
import { STEP_MS, Timers } from './clock.js';
import { FootprintChecker } from './footprint-check.js';
import { ActorHost } from './host.js';
import {
  type AtomicDone,
  applyAtomic,
  type BlockedTask,
  type Effect,
  ENV,
  MEM,
  type ModelEvent,
  TASK,
  TIMER,
  type Wire,
  type Workload,
} from './model.js';
import type { RunResult } from './result.js';
import { outcomeOf, Schedule } from './schedule.js';
import { type Choice, channelKey, type Scheduler } from './scheduler.js';
import { ReplayScheduler } from './schedulers/replay.js';
import { type TaskChoice, TaskReadiness } from './readiness.js';
import { earliestWake, type StepEnvHost, TaskStepEnv, TaskTable } from './task.js';
import { EventNames, Trace, TraceLog } from './trace.js';
import { watchEnter, watchLeave } from './watchdog.js';

/** Receivers are actors or pseudo-actors (≥ -8: model.ts), never tasks: this makes each an array index. */
const RECEIVER_BIAS = 8;

export { STEP_MS };

/** Below this (ms: 0.1 ns) two simulated times are the same (sums of ms fractions round). */
const TIME_EPS = 1e-7;

type AtomicRequest = Extract<Effect, { type: 'rt.atomic' }>;

/** A channel is its own Choice: the scheduler sees the head message's order through `seq`. */
class Channel implements Choice {
  readonly key: number;
  readonly thread: number;
  seq = 0;
  pos = -1; // index in the enabled list, -1 when empty, PARKED while its receiver is busy
  // The queue, oldest at head: parallel arrays, kept (not truncated) when the channel empties, so that a
  // message costs no allocation of the runtime's own.
  readonly events: (ModelEvent | AtomicRequest)[] = [];
  readonly sendSteps: number[] = [];
  readonly seqs: number[] = [];
  head = 0;
  tail = 0;

  constructor(
    readonly sender: number,
    readonly receiver: number,
  ) {
    this.key = channelKey(sender, receiver);
    this.thread = receiver === MEM ? sender : receiver;
  }
}

export interface DeterministicOptions {
  readonly workload: Workload;
  readonly seed: number;
  readonly scheduler: Scheduler;
  /** ENV's messages, when not the workload's initial ones (a replay of a run that injected others). */
  readonly initial?: Workload['initial'];
  /** Stop with an error after this many steps (a livelock guard). */
  readonly maxSteps?: number;
  /** Collect every finding instead of stopping at the first. */
  readonly keepGoing?: boolean;
  readonly onProgress?: (steps: number) => void;
  /**
   * Buffers to reuse from one execution to the next (an exploration's executions, one after another). The run's
   * memory then comes from the scratch, and a result's `shared` stays valid only until the execution after next.
   */
  readonly scratch?: Scratch;
  /**
   * Check every declared footprint against what its step wrote (footprint-check.ts): a step that writes a
   * word it does not declare stops the run with a FootprintViolation. Slow (a copy of memory a step): tests.
   */
  readonly checkFootprints?: boolean;
}

/**
 * What consecutive executions of one workload can reuse instead of allocating: the run's memory (two buffers
 * taking turns, so that a result's `shared` stays readable while the next execution runs), the trace log and
 * the table of event names. Nothing the model sees is carried: each execution's memory starts zeroed.
 */
export class Scratch {
  private readonly buffers: Int32Array[] = [];
  private turn = 0;
  readonly log = new TraceLog();
  /** Names of events and points seen (a trace's table then names more than its own: lookups only). */
  readonly names = new EventNames();

  /**
   * Zeroed memory of `words` words, not the one the previous call returned; the words of `unzeroed` keep what an
   * earlier execution left there (the monitor writes them before reading them). Zeroing is most of the cost of
   * a short execution's memory, and two pool threads zeroing hundreds of KiB each an execution share one cache.
   */
  memory(words: number, unzeroed?: readonly [number, number]): Int32Array {
    this.turn ^= 1;
    let m = this.buffers[this.turn];
    if (!m || m.length !== words) {
      m = new Int32Array(words);
      this.buffers[this.turn] = m;
    } else if (unzeroed && unzeroed[0] < unzeroed[1]) {
      m.fill(0, 0, unzeroed[0]);
      m.fill(0, unzeroed[1]);
    } else {
      m.fill(0);
    }
    return m;
  }
}

export class StepBudgetExceeded extends Error {
  override name = 'StepBudgetExceeded';
}

/** Run one execution. The caller has already called `scheduler.newExecution()`. */
export function runDeterministic(opts: DeterministicOptions): RunResult {
  const started = performance.now();
  const { workload, scheduler } = opts;
  const maxSteps = opts.maxSteps ?? 50_000_000;
  // Simulated ms, in an object: a captured `let` holding a double would box a new number at every step.
  const clock = { now: 0 };
  const timers = new Timers(() => clock.now);
  // One thread runs every actor and task: the memory need not be a SharedArrayBuffer (Atomics work on a plain
  // Int32Array), and a plain one is much cheaper to allocate, zero and copy (V8 does shared memory element by
  // element, and counts each new one towards its next garbage collection).
  const words = Math.max(1, workload.sharedWords);
  const monitor = workload.monitor;
  const shared = opts.scratch ? opts.scratch.memory(words, monitor?.writtenBeforeRead) : new Int32Array(words);
  monitor?.attach(shared, () => clock.now);
  const tasks = new TaskTable(workload.tasks ?? {});
  const readiness = new TaskReadiness(shared);
  const names = opts.scratch?.names ?? new EventNames();
  const log = opts.scratch?.log ?? new TraceLog();
  log.reset();
  // Channels by sender, then by receiver + RECEIVER_BIAS (actors and pseudo-actors: small indices). Two lookups by
  // small integers: a channel key is a double, and a Map keyed by doubles boxes and hashes a number a message.
  const channels: Channel[] = [];
  const bySender = new Map<number, Channel[]>();
  const enabled: Channel[] = [];
  const n = workload.actors.length;
  let seq = 0;
  let sent = 0;
  let delivered = 0;
  let timersFired = 0;
  const replay = scheduler instanceof ReplayScheduler ? scheduler : undefined;
  replay?.nameTasks((id) => tasks.names.get(id));
  // A threaded recording's step times: the clock is set to each, and never moves on by itself.
  const timed = replay?.timed ?? false;
  // A recording that halted at a finding ends where it ended: its replay takes every recorded step, then stops.
  const replayEnd = replay?.stopAt;
  let endedAsRecorded = false;
  const sharedEvents = new Set(workload.sharedEvents ?? []);
  const fpCheck = opts.checkFootprints ? new FootprintChecker(shared, workload.monitor?.describeWord?.bind(workload.monitor)) : undefined;
  // Hardware busy time: until busyUntil[a], actor a's channels are parked (off the enabled list). A threaded
  // recording's replay takes its steps as recorded: busy time spent there was real, and is not simulated again.
  const busyUntil = new Float64Array(n);
  const parked: Channel[] = [];
  const busied: number[] = [];
  let unparkAt = Number.POSITIVE_INFINITY;
  /** Is actor a still busy when the next step is taken (at clock.now + STEP_MS)? */
  const busyAtNext = (a: number): boolean => (busyUntil[a] as number) > clock.now + STEP_MS + TIME_EPS;
  const busy = (a: number, ns: number): void => {
    if (timed || ns <= 0) return;
    busyUntil[a] = Math.max(busyUntil[a] as number, clock.now) + ns / 1e6;
    busied.push(a);
  };
  const host = new ActorHost(workload, timers, busy);
  /** A delivery, its footprint checked when asked to and the workload declares one for a shared event. */
  const deliverChecked = (to: number, event: ModelEvent, step: number): Effect[] => {
    if (!fpCheck || !workload.footprintOf || !sharedEvents.has(event.type)) return host.deliver(to, event);
    const what = `${event.type} delivered to ${workload.actors[to]?.name ?? to} (step ${step})`;
    const fp = fpCheck.compute(what, () => workload.footprintOf?.(to, event));
    return fp ? fpCheck.step(what, fp, undefined, () => host.deliver(to, event)) : host.deliver(to, event);
  };
  const park = (c: Channel): void => {
    c.pos = PARKED;
    parked.push(c);
    unparkAt = Math.min(unparkAt, busyUntil[c.receiver] as number);
  };
  /** The actors that became busy in this step: their channels leave the enabled list. */
  const parkBusied = (): void => {
    for (const a of busied) {
      if (!busyAtNext(a)) continue;
      for (let i = enabled.length - 1; i >= 0; i--) {
        const c = enabled[i] as Channel;
        if (c.receiver !== a) continue;
        const last = enabled.pop() as Channel;
        if (last !== c) {
          enabled[i] = last;
          last.pos = i;
        }
        park(c);
      }
    }
    busied.length = 0;
  };
  /** Channels whose receiver is no longer busy at the next step go back on the enabled list, in parking order. */
  const unpark = (): void => {
    unparkAt = Number.POSITIVE_INFINITY;
    let kept = 0;
    for (const c of parked) {
      if (busyAtNext(c.receiver)) {
        parked[kept++] = c;
        unparkAt = Math.min(unparkAt, busyUntil[c.receiver] as number);
      } else {
        c.pos = enabled.length;
        enabled.push(c);
      }
    }
    parked.length = kept;
  };

  const channel = (sender: number, receiver: number): Channel => {
    let row = bySender.get(sender);
    if (row === undefined) {
      row = [];
      bySender.set(sender, row);
    }
    let c = row[receiver + RECEIVER_BIAS];
    if (c === undefined) {
      c = new Channel(sender, receiver);
      row[receiver + RECEIVER_BIAS] = c;
      channels.push(c);
    }
    return c;
  };
  const enqueue = (sender: number, receiver: number, event: ModelEvent | AtomicRequest, sendStep: number): void => {
    const c = channel(sender, receiver);
    const i = c.tail++;
    c.events[i] = event;
    c.sendSteps[i] = sendStep;
    c.seqs[i] = seq;
    sent++;
    if (c.pos === -1) {
      c.seq = seq;
      if (receiver >= 0 && busyAtNext(receiver)) {
        park(c);
      } else {
        c.pos = enabled.length;
        enabled.push(c);
      }
    }
    seq++;
  };
  /** Take the head message of c; returns its index in c's arrays (valid until the next enqueue on c). */
  const dequeue = (c: Channel): number => {
    const i = c.head++;
    if (c.head === c.tail) {
      c.head = 0;
      c.tail = 0;
      // swap-remove from the enabled list (deterministic: depends only on the history)
      const last = enabled.pop() as Channel;
      if (last !== c) {
        enabled[c.pos] = last;
        last.pos = c.pos;
      }
      c.pos = -1;
    } else {
      c.seq = c.seqs[c.head] as number;
    }
    delivered++;
    return i;
  };
  const sendFrom = (from: number, to: number, event: ModelEvent, step: number): void => {
    if (!Number.isInteger(to) || to < 0 || to >= n) {
      throw new Error(`${workload.actors[from]?.name ?? tasks.names.get(from) ?? from} sent '${event.type}' to unknown actor ${to}`);
    }
    enqueue(from, to, event, step);
  };
  const spawn = (step: number, owner: number, kind: string, args: Wire, name?: string): number => {
    const t = tasks.spawn(step, owner, kind, args, name);
    readiness.add(t);
    return t.id;
  };
  const route = (from: number, effects: readonly Effect[], step: number): void => {
    for (const e of effects) {
      if (e.type === 'rt.send') sendFrom(from, e.to, e.event, step);
      else if (e.type === 'rt.atomic') enqueue(from, MEM, e, step);
      else spawn(step, from, e.task, e.args, e.name);
    }
  };
  const envHost: StepEnvHost = { now: () => clock.now, spawn, send: sendFrom };
  const stepEnv = new TaskStepEnv(envHost);

  for (const m of opts.initial ?? workload.initial) {
    if (!Number.isInteger(m.to) || m.to < 0 || m.to >= n) throw new Error(`initial message '${m.event.type}' to unknown actor ${m.to}`);
    enqueue(ENV, m.to, m.event, -1);
  }
  (workload.initialTasks ?? []).forEach((it, i) => {
    readiness.add(tasks.spawn(-1, ENV, it.task, it.args, it.name, i));
  });
  const ids = workload.actors.map((_, i) => i);
  // Effects of initial states (sent "before step 0", like the initial messages).
  for (const [from, effects] of host.start(ids)) route(from, effects, -1);

  let step = 0;
  // The choices offered each step: channels, then due timers, then ready tasks (one array, refilled).
  const offered: Choice[] = [];
  const timerChoices = new Map<number, Choice>();
  const timerChoice = (o: number): Choice => {
    let c = timerChoices.get(o);
    if (!c) {
      c = { key: channelKey(TIMER, o), sender: TIMER, receiver: o, thread: o, seq: Number.MAX_SAFE_INTEGER };
      timerChoices.set(o, c);
    }
    return c;
  };
  const readyTasks = readiness.ready;
  const recent = new Array<number>(RECENT).fill(-1);
  const stopOnFinding = !opts.keepGoing && replayEnd === undefined && monitor !== undefined;
  for (;;) {
    if (replayEnd !== undefined && step >= replayEnd) {
      endedAsRecorded = true;
      break;
    }
    if (timed) clock.now = replay?.timeAt(step) ?? clock.now;
    if (unparkAt <= clock.now + STEP_MS + TIME_EPS) unpark();
    readiness.refresh(clock.now);
    let choices: readonly Choice[] = enabled;
    const due = timers.size > 0 ? (timed ? timers.owners() : timers.dueOwners(clock.now)) : undefined;
    if (due !== undefined && due.length > 0) {
      let n = 0;
      for (let i = 0; i < enabled.length; i++) offered[n++] = enabled[i] as Channel;
      for (const o of due) offered[n++] = timerChoice(o);
      for (let i = 0; i < readyTasks.length; i++) offered[n++] = readyTasks[i] as TaskChoice;
      offered.length = n;
      choices = offered;
    } else if (readyTasks.length > 0) {
      if (enabled.length === 0) {
        choices = readyTasks;
      } else {
        let n = 0;
        for (let i = 0; i < enabled.length; i++) offered[n++] = enabled[i] as Channel;
        for (let i = 0; i < readyTasks.length; i++) offered[n++] = readyTasks[i] as TaskChoice;
        offered.length = n;
        choices = offered;
      }
    }
    if (choices.length === 0) {
      if (timed) break; // the recorded times say when steps were taken: no jump of its own
      // Nothing can run now: time jumps to the next timer, timeout or end of busy time, if there is one ahead
      // (busy time ends before the step that may deliver: the step itself costs STEP_MS).
      const t = timers.earliest()?.deadline;
      const w = earliestWake(tasks.live.values());
      let next = t === undefined ? w : w === undefined ? t : Math.min(t, w);
      if (parked.length > 0) next = Math.min(next ?? Number.POSITIVE_INFINITY, unparkAt - STEP_MS);
      if (next !== undefined && next > clock.now) {
        clock.now = next;
        monitor?.tick?.(clock.now);
        continue;
      }
      // Only blocked tasks are left: idle time passes up to what the monitor still waits to see (a hung task's
      // or a stalled grace period's timeout); its end-of-run look at the blocked tasks (stuck) reports them.
      const idle = monitor?.idleUntil?.(clock.now);
      if (idle !== undefined && idle > clock.now) clock.now = idle;
      break;
    }
    if (step >= maxSteps) throw new StepBudgetExceeded(`step budget of ${maxSteps} exhausted: the workload does not terminate${busiest(recent, tasks)}`);
    const c = scheduler.next(choices, step);
    if (!timed) clock.now += STEP_MS;
    if (c.sender === TASK) {
      const tc = c as TaskChoice;
      const t = tc.task;
      const label = t.pending?.label ?? '?';
      const ev = names.hash(label);
      replay?.verify(step, t.id, ev, label);
      log.push(step, t.id, TASK, -1, ev, 0);
      // The host-time watchdog (watchdog.ts) watches the task's code from its point to its next one.
      // Sampled: which tasks took the last steps (a budget exhausted names the busiest).
      if ((step & 0xff) === 0) recent[(step >>> 8) & (RECENT - 1)] = t.id;
      watchEnter('task', t.name, label);
      let more: boolean;
      try {
        const p = t.pending;
        const what = fpCheck && p && (p.footprint || p.footprintOf) ? `${label} (task ${t.name}, step ${step})` : undefined;
        const fp = what && p ? (p.footprintOf ? fpCheck?.compute(what, p.footprintOf) : p.footprint) : undefined;
        if (what && fpCheck && fp) more = t.resume(fpCheck.step(what, fp, p?.watch, () => t.perform(stepEnv.at(step, t))), label);
        else more = t.resume(t.perform(stepEnv.at(step, t)), label);
      } finally {
        watchLeave();
      }
      if (more) {
        readiness.stepped(tc);
      } else {
        tasks.finish(t);
        readiness.remove(tc);
      }
      readiness.wrote();
    } else if (c.sender === TIMER) {
      const t = timers.earliest(c.receiver);
      if (!t) throw new Error(`scheduler chose a timer of ${c.receiver} that does not exist`);
      if (!timed && t.deadline > clock.now) clock.now = t.deadline;
      const effects = host.fire(t);
      timersFired++;
      // The delayed event may be a shared one (its handler writing shared memory).
      readiness.wrote();
      const ev = names.hash('(timer)');
      replay?.verify(step, c.receiver, ev, '(timer)');
      log.push(step, c.receiver, TIMER, -1, ev, names.hash(host.stateOf(c.receiver)));
      route(c.receiver, effects, step);
    } else {
      const ch = c as Channel;
      const i = dequeue(ch);
      const pending = ch.events[i] as ModelEvent | AtomicRequest;
      const sendStep = ch.sendSteps[i] as number;
      if (ch.receiver === MEM) {
        const a = pending as AtomicRequest;
        const old = applyAtomic(shared, a.op, a.index, a.value, a.expected);
        if (a.op !== 'load') readiness.wrote();
        const label = names.atomic(a.op, a.index);
        const ev = names.hash(label);
        replay?.verify(step, MEM, ev, label);
        log.push(step, MEM, ch.sender, sendStep, ev, old);
        const done: AtomicDone = { type: 'rt.atomic.done', op: a.op, index: a.index, old, tag: a.tag };
        enqueue(MEM, ch.sender, done, step);
      } else {
        const event = pending as ModelEvent;
        const ev = names.hash(event.type);
        replay?.verify(step, ch.receiver, ev, event.type);
        if (sharedEvents.has(event.type)) {
          monitor?.delivering?.(step, ch.receiver);
          readiness.wrote();
        }
        const effects = deliverChecked(ch.receiver, event, step);
        log.push(step, ch.receiver, ch.sender, sendStep, ev, names.hash(host.stateOf(ch.receiver)));
        route(ch.receiver, effects, step);
      }
    }
    if (busied.length > 0) parkBusied();
    step++;
    if ((step & 0x3ff) === 0) {
      monitor?.tick?.(clock.now);
      if (opts.onProgress && (step & 0xffff) === 0) opts.onProgress(step);
    }
    if (stopOnFinding && (monitor?.findings.length ?? 0) > 0) break;
  }
  const blocked = blockedTasks(tasks);
  const halted = endedAsRecorded || (stopOnFinding && (monitor?.findings.length ?? 0) > 0);
  if (!halted) {
    // Only a complete run ends with the replay's length check, the stuck-task report and teardown checks.
    scheduler.endExecution(step);
    if (blocked.length > 0) monitor?.stuck?.(blocked, clock.now);
    monitor?.end?.();
  }

  const finals = ids.map((i) => host.final(i));
  host.stopAll();
  const trace = new Trace(log.take(), workload.actors.map((a) => a.name), names.map, tasks.names);
  let queued = 0;
  for (const c of channels) queued += c.tail - c.head;
  const accounting = { sent, delivered, queued, ok: sent === delivered + queued };
  const strategy = scheduler.name;
  const check = workload.check(finals, shared);
  const findings = [...(monitor?.findings ?? [])];
  // The hash and the schedule are computed when first read: an exploration reads them of its last execution only.
  let traceHash: string | undefined;
  let schedule: Schedule | undefined;
  const hashOf = (): string => {
    traceHash ??= trace.hash();
    return traceHash;
  };
  return {
    runtime: 'deterministic',
    strategy,
    seed: opts.seed,
    workload: { name: workload.name, params: workload.params },
    steps: step,
    timersFired,
    accounting,
    trace,
    get traceHash(): string {
      return hashOf();
    },
    finals,
    shared,
    check,
    findings,
    blocked,
    get schedule(): Schedule {
      schedule ??= Schedule.fromTrace(trace, {
        workload: { name: workload.name, params: workload.params },
        seed: opts.seed,
        runtime: 'deterministic',
        strategy,
        traceHash: hashOf(),
        actors: trace.actorNames,
        ...(opts.initial ? { initial: opts.initial } : {}),
        ...(opts.keepGoing ? { keepGoing: true } : {}),
        end: halted ? 'halted' : 'quiescent',
        outcome: outcomeOf(findings, check.ok),
      });
      return schedule;
    },
    elapsedMs: performance.now() - started,
  };
}

/** Channel.pos of a channel whose receiver is busy (BusyEffect): it has messages, and is off the enabled list. */
const PARKED = -2;

/** Task steps sampled (one in 256) for a budget report. */
const RECENT = 64;

/** The task that took most of the sampled recent steps, and its next point: a loop that never ends is there. */
function busiest(recent: readonly number[], tasks: TaskTable): string {
  const counts = new Map<number, number>();
  for (const id of recent) if (id >= 0) counts.set(id, (counts.get(id) ?? 0) + 1);
  let best = -1;
  let most = 0;
  for (const [id, n] of counts) if (n > most) [best, most] = [id, n];
  if (best < 0) return '';
  const t = tasks.live.get(best);
  const share = Math.round((100 * most) / recent.filter((x) => x >= 0).length);
  return `; task ${tasks.names.get(best) ?? best} took ${share}% of the last steps${t?.pending ? ` (next point: ${t.pending.label})` : ''}`;
}

export function blockedTasks(tasks: TaskTable): BlockedTask[] {
  return [...tasks.live.values()].map((t) => ({
    id: t.id,
    name: t.name,
    label: t.pending?.label ?? '?',
    blockedOn: t.pending?.blockedOn?.(),
  }));
}
