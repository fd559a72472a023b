// The deterministic runtime: every actor and task in one thread, and a seeded Scheduler choosing the next
// step among the enabled ones. A step is the delivery of the head message of one channel (sender → receiver;
// per-channel FIFO, as the threaded transport guarantees), an atomic operation on shared memory, a due timer,
// or a task's next scheduling point. Time is simulated (each step costs STEP_MS; when nothing else can run,
// time jumps to the next timer). Same workload + same scheduler seed ⇒ the same trace, byte for byte.
import { Timers } from './clock.js';
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
import { Schedule } from './schedule.js';
import { type Choice, channelKey, type Scheduler } from './scheduler.js';
import { ReplayScheduler } from './schedulers/replay.js';
import { earliestWake, type StepEnv, type Task, TaskTable } from './task.js';
import { EventNames, Trace, TraceLog } from './trace.js';

/** Simulated cost of one step, in ms (1 µs). */
export const STEP_MS = 0.001;

type AtomicRequest = Extract<Effect, { type: 'rt.atomic' }>;

interface Pending {
  readonly event: ModelEvent | AtomicRequest;
  readonly sendStep: number;
  readonly seq: number;
}

/** A channel is its own Choice: the scheduler sees the head message's order through `seq`. */
class Channel implements Choice {
  readonly key: number;
  readonly thread: number;
  seq = 0;
  pos = -1; // index in the enabled list, -1 when empty
  readonly queue: Pending[] = [];
  head = 0;

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
}

export class StepBudgetExceeded extends Error {
  override name = 'StepBudgetExceeded';
}

/** Run one execution. The caller has already called `scheduler.newExecution()`. */
export function runDeterministic(opts: DeterministicOptions): RunResult {
  const started = performance.now();
  const { workload, scheduler } = opts;
  const maxSteps = opts.maxSteps ?? 50_000_000;
  let now = 0;
  const timers = new Timers(() => now);
  const host = new ActorHost(workload, timers);
  const shared = new Int32Array(new SharedArrayBuffer(Math.max(1, workload.sharedWords) * 4));
  const monitor = workload.monitor;
  monitor?.attach(shared, () => now);
  const tasks = new TaskTable(workload.tasks ?? {});
  const names = new EventNames();
  const log = new TraceLog();
  const channels = new Map<number, Channel>();
  const enabled: Channel[] = [];
  const n = workload.actors.length;
  let seq = 0;
  let sent = 0;
  let delivered = 0;
  let timersFired = 0;
  const replay = scheduler instanceof ReplayScheduler ? scheduler : undefined;
  const sharedEvents = new Set(workload.sharedEvents ?? []);

  const channel = (sender: number, receiver: number): Channel => {
    const key = channelKey(sender, receiver);
    let c = channels.get(key);
    if (!c) {
      c = new Channel(sender, receiver);
      channels.set(key, c);
    }
    return c;
  };
  const enqueue = (sender: number, receiver: number, event: Pending['event'], sendStep: number): void => {
    const c = channel(sender, receiver);
    const p: Pending = { event, sendStep, seq: seq++ };
    c.queue.push(p);
    sent++;
    if (c.pos < 0) {
      c.seq = p.seq;
      c.pos = enabled.length;
      enabled.push(c);
    }
  };
  const dequeue = (c: Channel): Pending => {
    const p = c.queue[c.head++] as Pending;
    if (c.head === c.queue.length) {
      c.queue.length = 0;
      c.head = 0;
      // swap-remove from the enabled list (deterministic: depends only on the history)
      const last = enabled.pop() as Channel;
      if (last !== c) {
        enabled[c.pos] = last;
        last.pos = c.pos;
      }
      c.pos = -1;
    } else {
      c.seq = (c.queue[c.head] as Pending).seq;
    }
    delivered++;
    return p;
  };
  const sendFrom = (from: number, to: number, event: ModelEvent, step: number): void => {
    if (!Number.isInteger(to) || to < 0 || to >= n) {
      throw new Error(`${workload.actors[from]?.name ?? tasks.names.get(from) ?? from} sent '${event.type}' to unknown actor ${to}`);
    }
    enqueue(from, to, event, step);
  };
  const spawn = (step: number, owner: number, kind: string, args: Wire, name?: string): number =>
    tasks.spawn(step, owner, kind, args, name).id;
  const route = (from: number, effects: readonly Effect[], step: number): void => {
    for (const e of effects) {
      if (e.type === 'rt.send') sendFrom(from, e.to, e.event, step);
      else if (e.type === 'rt.atomic') enqueue(from, MEM, e, step);
      else spawn(step, from, e.task, e.args, e.name);
    }
  };
  const taskEnv = (t: Task, step: number): StepEnv => ({
    step,
    self: t,
    now: () => now,
    spawn: (kind, args, name) => spawn(step, t.id, kind, args, name),
    send: (to, event) => sendFrom(t.id, to, event, step),
  });

  for (const m of opts.initial ?? workload.initial) {
    if (!Number.isInteger(m.to) || m.to < 0 || m.to >= n) throw new Error(`initial message '${m.event.type}' to unknown actor ${m.to}`);
    enqueue(ENV, m.to, m.event, -1);
  }
  (workload.initialTasks ?? []).forEach((it, i) => {
    tasks.spawn(-1, ENV, it.task, it.args, it.name, i);
  });
  const ids = workload.actors.map((_, i) => i);
  // Effects of initial states (sent "before step 0", like the initial messages).
  for (const [from, effects] of host.start(ids)) route(from, effects, -1);

  let step = 0;
  const extra: Choice[] = [];
  const stopOnFinding = !opts.keepGoing && monitor !== undefined;
  for (;;) {
    let choices: readonly Choice[] = enabled;
    extra.length = 0;
    if (timers.size > 0) {
      const owners = replay ? timers.owners() : timers.dueOwners(now);
      for (const o of owners) extra.push({ key: channelKey(TIMER, o), sender: TIMER, receiver: o, thread: o, seq: Number.MAX_SAFE_INTEGER });
    }
    for (const t of tasks.live.values()) {
      if (t.pending?.ready()) extra.push({ key: channelKey(TASK, t.id), sender: TASK, receiver: t.id, thread: t.id, seq: t.id });
    }
    if (extra.length > 0) choices = enabled.length > 0 ? [...enabled, ...extra] : extra;
    if (choices.length === 0) {
      // Nothing can run now: time jumps to the next timer or timeout, if there is one ahead.
      const t = timers.earliest()?.deadline;
      const w = earliestWake(tasks.live.values());
      const next = t === undefined ? w : w === undefined ? t : Math.min(t, w);
      if (next !== undefined && next > now) {
        now = next;
        monitor?.tick?.(now);
        continue;
      }
      break;
    }
    if (step >= maxSteps) throw new StepBudgetExceeded(`step budget of ${maxSteps} exhausted: the workload does not terminate`);
    const c = scheduler.next(choices, step);
    now += STEP_MS;
    if (c.sender === TASK) {
      const t = tasks.live.get(c.receiver) as Task;
      const label = t.pending?.label ?? '?';
      const ev = names.hash(label);
      replay?.verify(step, t.id, ev, label);
      log.push(step, t.id, TASK, -1, ev, 0);
      if (!t.resume(t.perform(taskEnv(t, step)), label)) tasks.finish(t);
    } else if (c.sender === TIMER) {
      const t = timers.earliest(c.receiver);
      if (!t) throw new Error(`scheduler chose a timer of ${c.receiver} that does not exist`);
      if (t.deadline > now) now = t.deadline;
      const effects = host.fire(t);
      timersFired++;
      const ev = names.hash('(timer)');
      replay?.verify(step, c.receiver, ev, '(timer)');
      log.push(step, c.receiver, TIMER, -1, ev, names.hash(host.stateOf(c.receiver)));
      route(c.receiver, effects, step);
    } else {
      const ch = c as Channel;
      const p = dequeue(ch);
      if (ch.receiver === MEM) {
        const a = p.event as AtomicRequest;
        const old = applyAtomic(shared, a.op, a.index, a.value, a.expected);
        const label = `${a.op}[${a.index}]`;
        const ev = names.hash(label);
        replay?.verify(step, MEM, ev, label);
        log.push(step, MEM, ch.sender, p.sendStep, ev, old);
        const done: AtomicDone = { type: 'rt.atomic.done', op: a.op, index: a.index, old, tag: a.tag };
        enqueue(MEM, ch.sender, done, step);
      } else {
        const event = p.event as ModelEvent;
        const ev = names.hash(event.type);
        replay?.verify(step, ch.receiver, ev, event.type);
        if (sharedEvents.has(event.type)) monitor?.delivering?.(step, ch.receiver);
        const effects = host.deliver(ch.receiver, event);
        log.push(step, ch.receiver, ch.sender, p.sendStep, ev, names.hash(host.stateOf(ch.receiver)));
        route(ch.receiver, effects, step);
      }
    }
    step++;
    if ((step & 0x3ff) === 0) {
      monitor?.tick?.(now);
      if (opts.onProgress && (step & 0xffff) === 0) opts.onProgress(step);
    }
    if (stopOnFinding && (monitor?.findings.length ?? 0) > 0) break;
  }
  const blocked = blockedTasks(tasks);
  const halted = stopOnFinding && (monitor?.findings.length ?? 0) > 0;
  if (!halted) {
    // Only a complete run ends with the replay's length check, the stuck-task report and teardown checks.
    scheduler.endExecution(step);
    if (blocked.length > 0) monitor?.stuck?.(blocked, now);
    monitor?.end?.();
  }

  const finals = ids.map((i) => host.final(i));
  host.stopAll();
  const trace = new Trace(log.take(), workload.actors.map((a) => a.name), names.map, tasks.names);
  const traceHash = trace.hash();
  let queued = 0;
  for (const c of channels.values()) queued += c.queue.length - c.head;
  const accounting = { sent, delivered, queued, ok: sent === delivered + queued };
  const strategy = scheduler.name;
  return {
    runtime: 'deterministic',
    strategy,
    seed: opts.seed,
    workload: { name: workload.name, params: workload.params },
    steps: step,
    timersFired,
    accounting,
    trace,
    traceHash,
    finals,
    shared,
    check: workload.check(finals, shared),
    findings: [...(monitor?.findings ?? [])],
    blocked,
    schedule: Schedule.fromTrace(trace, {
      workload: { name: workload.name, params: workload.params },
      seed: opts.seed,
      runtime: 'deterministic',
      strategy,
      traceHash,
      actors: trace.actorNames,
      ...(opts.initial ? { initial: opts.initial } : {}),
    }),
    elapsedMs: performance.now() - started,
  };
}

export function blockedTasks(tasks: TaskTable): BlockedTask[] {
  return [...tasks.live.values()].map((t) => ({
    id: t.id,
    name: t.name,
    label: t.pending?.label ?? '?',
    blockedOn: t.pending?.blockedOn?.(),
  }));
}
