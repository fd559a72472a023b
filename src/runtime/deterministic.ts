// The deterministic runtime: every actor in one thread, and a seeded Scheduler choosing the next step among
// the enabled ones. A step is the delivery of the head message of one channel (sender → receiver; per-channel
// FIFO, as the threaded transport guarantees), an atomic operation on shared memory, or a due timer. Time is
// simulated (each step costs STEP_MS; when nothing else can run, time jumps to the next timer). Same workload
// + same scheduler seed ⇒ the same trace, byte for byte.
import { Timers } from './clock.js';
import { ActorHost } from './host.js';
import { type AtomicDone, applyAtomic, type Effect, ENV, MEM, type ModelEvent, TIMER, type Workload } from './model.js';
import type { RunResult } from './result.js';
import { Schedule } from './schedule.js';
import { type Choice, channelKey, type Scheduler } from './scheduler.js';
import { ReplayScheduler } from './schedulers/replay.js';
import { EventNames, Trace, TraceLog } from './trace.js';

/** Simulated cost of one step, in ms (1 µs). */
export const STEP_MS = 0.001;

interface Pending {
  readonly event: ModelEvent | AtomicRequest;
  readonly sendStep: number;
  readonly seq: number;
}

interface AtomicRequest {
  readonly type: 'rt.atomic';
  readonly op: AtomicDone['op'];
  readonly index: number;
  readonly value: number;
  readonly expected: number;
  readonly tag: number;
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
  const shared = new Int32Array(workload.sharedWords);
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
  const route = (from: number, effects: readonly Effect[], step: number): void => {
    for (const e of effects) {
      if (e.type === 'rt.send') {
        if (!Number.isInteger(e.to) || e.to < 0 || e.to >= n) {
          throw new Error(`${workload.actors[from]?.name ?? from} sent '${e.event.type}' to unknown actor ${e.to}`);
        }
        enqueue(from, e.to, e.event, step);
      } else {
        enqueue(from, MEM, e, step);
      }
    }
  };

  for (const m of opts.initial ?? workload.initial) {
    if (!Number.isInteger(m.to) || m.to < 0 || m.to >= n) throw new Error(`initial message '${m.event.type}' to unknown actor ${m.to}`);
    enqueue(ENV, m.to, m.event, -1);
  }
  const ids = workload.actors.map((_, i) => i);
  // Effects of initial states (sent "before step 0", like the initial messages).
  for (const [from, effects] of host.start(ids)) route(from, effects, -1);

  let step = 0;
  const timerChoices: Choice[] = [];
  for (;;) {
    let choices: readonly Choice[] = enabled;
    timerChoices.length = 0;
    if (timers.size > 0) {
      const owners = replay ? timers.owners() : timers.dueOwners(now);
      if (owners.length === 0 && enabled.length === 0) {
        const t = timers.earliest();
        if (t) {
          now = Math.max(now, t.deadline);
          owners.push(t.owner);
        }
      }
      for (const o of owners) {
        timerChoices.push({ key: channelKey(TIMER, o), sender: TIMER, receiver: o, thread: o, seq: Number.MAX_SAFE_INTEGER });
      }
      if (timerChoices.length > 0) choices = [...enabled, ...timerChoices];
    }
    if (choices.length === 0) break;
    if (step >= maxSteps) throw new StepBudgetExceeded(`step budget of ${maxSteps} exhausted: the workload does not terminate`);
    const c = scheduler.next(choices, step);
    now += STEP_MS;
    if (c.sender === TIMER) {
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
        const ev = names.hash(`${a.op}[${a.index}]`);
        replay?.verify(step, MEM, ev, `${a.op}[${a.index}]`);
        log.push(step, MEM, ch.sender, p.sendStep, ev, old);
        const done: AtomicDone = { type: 'rt.atomic.done', op: a.op, index: a.index, old, tag: a.tag };
        enqueue(MEM, ch.sender, done, step);
      } else {
        const event = p.event as ModelEvent;
        const ev = names.hash(event.type);
        replay?.verify(step, ch.receiver, ev, event.type);
        const effects = host.deliver(ch.receiver, event);
        log.push(step, ch.receiver, ch.sender, p.sendStep, ev, names.hash(host.stateOf(ch.receiver)));
        route(ch.receiver, effects, step);
      }
    }
    step++;
    if (opts.onProgress && (step & 0xffff) === 0) opts.onProgress(step);
  }
  scheduler.endExecution(step);

  const finals = ids.map((i) => host.final(i));
  host.stopAll();
  const trace = new Trace(log.take(), workload.actors.map((a) => a.name), names.map);
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
    schedule: Schedule.fromTrace(trace, {
      workload: { name: workload.name, params: workload.params },
      seed: opts.seed,
      runtime: 'deterministic',
      strategy,
      traceHash,
      actors: trace.actorNames,
    }),
    elapsedMs: performance.now() - started,
  };
}
