// The threaded runtime: actors on worker_threads, really racing on shared memory. Placement `sharded`
// spreads actors over N workers (default: the CPU count — more busy threads than cores only loses
// throughput); `per-actor` gives each actor its own thread, which then parks instead of spinning. The main
// thread sends the initial messages, watches for quiescence (every thread idle, counters stable, nothing in
// flight), then stops the workers and merges their logs by ticket. A step is atomic with respect to the shared
// objects it touches (control.ts's lock stripes), not to the whole run; the run's trace is the canonical
// linearisation of its happens-before (hb.ts: program order, messages, each object's access order), so that
// the same run has the same trace hash whatever the threads' timing. Nondeterministic, but every run is
// recorded and replays in the deterministic runtime.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { WireCodec } from './codec.js';
import { Control, DELIVERED, GEN, IDLE, IDLE_BLOCKED, IDLE_EMPTY, SENT, SPAWNS_SENT, SPAWNS_TAKEN, TRIED } from './control.js';
import { StepBudgetExceeded } from './deterministic.js';
import { RunStalled } from './errors.js';
import { lastTasks } from './watchdog.js';
import { type ActorFinal, type BlockedTask, ENV, type Finding, type Workload } from './model.js';
import { createMailbox, Doorbell, laneSlots, type MailboxLayout, senderLane } from './mailbox.js';
import { Outbox } from './outbox.js';
import { workerUrl } from './paths.js';
import type { Placement, RunResult } from './result.js';
import { outcomeOf, Schedule } from './schedule.js';
import { leftIn } from './spawn.js';
import { TASK_BASE } from './task.js';
import { canonicalise } from './hb.js';
import { REC_INTS, Trace } from './trace.js';
import { type FailureInfo, rebuildFailure, type WorkerInit, type WorkerReport } from './worker-host.js';
import { addWorkerTime, NO_TIME } from './worker-time.js';
import { buildWorkload } from './workloads.js';

/**
 * stop(): how long the workers may go without one more of them exiting before the rest are terminated. Long: a
 * worker still loading the model when the run stops (18 per-actor workers on 2 busy cores take tens of seconds)
 * sees the stop flag only once it starts; a worker stuck in a task's code is the host-time watchdog's to report.
 */
const STOP_QUIET_MS = 30_000;

export interface ThreadedOptions {
  readonly workload: Workload;
  readonly seed: number;
  readonly placement?: Placement;
  readonly workers?: number;
  /** Slots of each worker's mailbox, shared out among its lanes (mailbox.ts laneSlots). */
  readonly ringSlots?: number;
  readonly keepTrace?: boolean;
  /** Collect every finding instead of stopping the run at the first. */
  readonly keepGoing?: boolean;
  /** Give up when nothing is delivered for this long (ms). */
  readonly stallMs?: number;
  /** Stop a run that takes more steps (deliveries and task points): a loop that never ends. None by default. */
  readonly maxSteps?: number;
  /** Polled about every ms while the run goes: deliveries, messages sent, and steps (tickets drawn). */
  readonly onProgress?: (delivered: number, sent: number, steps: number) => void;
  readonly signal?: AbortSignal;
  /**
   * The caller's budget ran out (stress --duration): stop at the next scheduling point. Every worker checks the
   * stop flag before each point it takes, so at most one point per worker (the one under way) follows the stop;
   * the run ends cut (RunResult.cut) with its findings so far and no end-of-run checks.
   */
  readonly cut?: AbortSignal;
  /** Per-object lock stripes (default on); off, every locked step takes the one coarse lock. */
  readonly striping?: boolean;
}

/**
 * How long an idle worker polls before it parks, when there are no more workers than cores. Measured here
 * (pingpong, 2 workers): waking a parked thread takes 100-300 µs on this VM, so with a 50 µs poll both sides
 * of a request/response parked on almost every hop (~38 000 parks per 50 000 round trips, 6-30 k round
 * trips/s); 500 µs outlasts the peer's wake-up (~400 parks, ~100 k round trips/s). More workers than cores:
 * no polling at all (polling threads would steal the cores the others need).
 */
const IDLE_SPIN_MICROS = 500;

/**
 * Most worker threads one run may start. Every worker's mailbox has a lane for every other thread, so lanes
 * grow with the square of the threads: 128 workers take 128 × 128 lanes of 16 KiB (256 MiB of shared memory)
 * on top of 128 Node isolates. Past that a run takes minutes to start on a small machine, so it is refused.
 */
export const MAX_WORKERS = 128;

export function placementOf(n: number, placement: Placement, workers: number): number[] {
  return Array.from({ length: n }, (_, i) => (placement === 'per-actor' ? i : i % workers));
}

/**
 * A started set of worker threads hosting one workload. `runToQuiescence` injects messages (sent by ENV) and
 * waits until nothing is in flight; it can be called again (benchmarks inject one batch per iteration).
 * `finish` stops the workers and merges their logs into the run's result.
 */
export class ThreadedRuntime {
  readonly placement: Placement;
  readonly workers: number;
  private readonly started = performance.now();
  /** The run's time origin, shared by every worker's clock (absolute ms): recorded step times are comparable. */
  private readonly epoch = performance.timeOrigin + performance.now();
  private readonly ctl: Control;
  private readonly mailboxes: MailboxLayout[];
  private readonly bells: Doorbell[];
  private readonly shared: SharedArrayBuffer;
  private readonly where: number[];
  private readonly pool: Worker[];
  private readonly exited: Promise<void>[];
  private readonly outboxes: Outbox[];
  private readonly codec: WireCodec;
  private readonly reports: (WorkerReport & { type: 'done' })[] = [];
  private readonly mainSlot: number;
  private failure: FailureInfo | undefined;
  private exitedCount = 0;
  /** Per worker: whether its thread has exited (stop() names those that did not). */
  private readonly exitedFlags: boolean[] = [];
  /** Workers terminated by stop() because they did not exit. */
  private terminated: number[] = [];
  private injected = 0;
  /** ENV's messages in order, when they are not just the workload's initial ones (for the schedule). */
  private readonly injections: Workload['initial'][number][] = [];
  private custom = false;
  private stopped = false;
  /** Tickets drawn when the budget's stop flag was raised (opts.cut). */
  private cutAt: number | undefined;

  constructor(private readonly opts: ThreadedOptions) {
    const { workload } = opts;
    const n = workload.actors.length;
    this.placement = opts.placement ?? 'sharded';
    const cores = availableParallelism();
    // Initial tasks are dealt over the workers too: a workload of tasks alone still runs in parallel.
    const units = Math.max(n, workload.initialTasks?.length ?? 0);
    this.workers = this.placement === 'per-actor' ? Math.max(1, n) : Math.max(1, Math.min(opts.workers ?? cores, units));
    if (this.workers > MAX_WORKERS) {
      throw new RangeError(
        this.placement === 'per-actor'
          ? `placement per-actor: ${workload.name} has ${n} actors, a thread each; at most ${MAX_WORKERS} (use sharded placement)`
          : `threaded runtime: ${this.workers} workers; at most ${MAX_WORKERS}`,
      );
    }
    const threads = this.workers + 1;
    this.mainSlot = this.workers;
    this.ctl = Control.create(threads, opts.striping ?? true);
    // A lane per sending thread: the other workers and this one (never the worker itself: it queues locally).
    const slots = laneSlots(opts.ringSlots ?? 4096, threads - 1);
    this.mailboxes = Array.from({ length: this.workers }, (_, w) => createMailbox(threads, slots, 64, w));
    this.bells = this.mailboxes.map((mb) => new Doorbell(mb.bell));
    this.shared = new SharedArrayBuffer(Math.max(1, workload.sharedWords) * 4);
    this.where = placementOf(n, this.placement, this.workers);
    const init = (index: number): WorkerInit => ({
      index,
      workload: { name: workload.name, params: workload.params },
      placement: this.where,
      mailboxes: this.mailboxes,
      control: this.ctl.sab,
      shared: this.shared,
      threads,
      // The main thread sleeps between 1 ms polls: only workers compete for cores.
      spinMicros: this.workers > cores ? 0 : IDLE_SPIN_MICROS,
      keepTrace: opts.keepTrace ?? true,
      stopOnFinding: !opts.keepGoing,
      epoch: this.epoch,
      striping: opts.striping ?? true,
    });
    const url = workerUrl('actor-host');
    this.pool = Array.from({ length: this.workers }, (_, i) => new Worker(url, { workerData: init(i) }));
    this.exited = this.pool.map(
      (w, i) =>
        new Promise<void>((resolve) => {
          w.on('message', (r: WorkerReport) => {
            if (r.type === 'failed') this.failure ??= r.failure;
            else this.reports.push(r);
          });
          w.on('error', (err: Error) => {
            this.failure ??= { kind: 'error', name: err.name, message: `worker ${i} crashed: ${err.message}`, stack: err.stack ?? '' };
          });
          w.on('exit', () => {
            this.exitedCount++;
            this.exitedFlags[i] = true;
            resolve();
          });
        }),
    );
    this.codec = new WireCodec(workload.hotEvents);
    this.outboxes = this.mailboxes.map((mb) => new Outbox(senderLane(mb, this.mainSlot)));
  }

  /** Send messages from ENV (default: the workload's initial ones) and wait until nothing is in flight. */
  async runToQuiescence(messages: Workload['initial'] = this.opts.workload.initial): Promise<void> {
    for (const m of messages) {
      const w = this.where[m.to];
      if (w === undefined) throw new Error(`initial message to unknown actor ${m.to}`);
      const e = this.codec.encode(m.event, -1);
      (this.outboxes[w] as Outbox).send(e.kind, m.to, ENV, e.bytes, 0, e.len);
    }
    this.injected += messages.length;
    if (messages !== this.opts.workload.initial) this.custom = true;
    if (this.opts.keepTrace ?? true) this.injections.push(...messages);
    this.ctl.store(this.mainSlot, SENT, this.injected);
    await this.watch();
    // A failed worker ends the run here, not only at finish(): a caller injecting again must not wait on it.
    if (this.failure) {
      await this.stop();
      throw rebuildFailure(this.failure);
    }
  }

  private async watch(): Promise<void> {
    const { ctl, workers, opts } = this;
    const stallMs = opts.stallMs ?? 30_000;
    let lastDelivered = -1;
    let lastProgressAt = performance.now();
    for (;;) {
      // Woken as soon as a worker goes idle (or every ms, for progress, held messages and stalls).
      await ctl.idleEvent(1);
      for (const o of this.outboxes) if (o.held > 0) o.flush();
      if (this.failure) return;
      if (opts.signal?.aborted) throw new RunStalled('interrupted');
      if (opts.cut?.aborted && this.cutAt === undefined) {
        // Raise the flag first, then read the ticket: a step after this count was already past its check.
        ctl.stop();
        for (const b of this.bells) b.wake();
        this.cutAt = ctl.tickets;
      }
      if (ctl.stopped) return; // a worker stopped the run at a finding, or the budget did
      if (this.exitedCount > 0) {
        this.failure ??= { kind: 'error', name: 'Error', message: 'a worker exited before the run ended', stack: '' };
        return;
      }
      const gens: number[] = [];
      for (let w = 0; w < workers; w++) gens.push(ctl.load(w, GEN));
      let sent = ctl.load(this.mainSlot, SENT);
      let delivered = 0;
      // A task dealt to another worker and not yet created there keeps the run going (spawn.ts).
      let spawning = 0;
      let allIdle = true;
      for (let w = 0; w < workers; w++) {
        const idle = ctl.load(w, IDLE);
        if (idle !== IDLE_EMPTY && idle !== IDLE_BLOCKED) allIdle = false;
        // A worker whose tasks were tried before the last performed point may have been woken already.
        if (idle === IDLE_BLOCKED && ctl.load(w, TRIED) !== ctl.version) allIdle = false;
        sent += ctl.load(w, SENT);
        delivered += ctl.load(w, DELIVERED);
        spawning += ctl.load(w, SPAWNS_SENT) - ctl.load(w, SPAWNS_TAKEN);
      }
      const held = this.outboxes.reduce((h, o) => h + o.held, 0);
      let stable = true;
      for (let w = 0; w < workers; w++) if (ctl.load(w, GEN) !== gens[w]) stable = false;
      opts.onProgress?.(delivered, sent, ctl.tickets);
      if (allIdle && stable && held === 0 && sent === delivered && spawning === 0) return;
      const now = performance.now();
      // Progress is a delivery or a performed task point.
      const progress = delivered + ctl.version;
      if (opts.maxSteps !== undefined && progress > opts.maxSteps) {
        const last = lastTasks();
        throw new StepBudgetExceeded(`step budget of ${opts.maxSteps} exhausted: the workload does not terminate${last.length > 0 ? `; the workers were last in ${last.join(', ')}` : ''}`);
      }
      if (progress !== lastDelivered) {
        lastDelivered = progress;
        lastProgressAt = now;
      } else if (now - lastProgressAt > stallMs) {
        const states = Array.from(
          { length: workers },
          (_, w) => `worker ${w}: ${['busy', 'idle', 'waiting (timer or full ring)', 'only blocked tasks'][ctl.load(w, IDLE)] ?? '?'}`,
        );
        throw new RunStalled(
          `nothing delivered and no task point performed for ${stallMs} ms; sent ${sent}, delivered ${delivered}, held by main ${held}; ${states.join(', ')}`,
        );
      }
    }
  }

  /**
   * Stop every worker (waking parked ones) and wait for them to exit. Each stops at its next scheduling point,
   * which with more workers than free cores can take a while for all of them: the wait goes on while workers keep
   * exiting, and only those still running STOP_QUIET_MS after the last one exited are terminated.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ctl.stop();
    for (const b of this.bells) b.wake();
    let seen = -1;
    let quietSince = performance.now();
    while (this.exitedCount < this.workers) {
      if (this.exitedCount !== seen) {
        seen = this.exitedCount;
        quietSince = performance.now();
      } else if (performance.now() - quietSince > STOP_QUIET_MS) break;
      await Promise.race([Promise.all(this.exited), new Promise((resolve) => setTimeout(resolve, 50))]);
    }
    if (this.exitedCount === this.workers) return;
    this.terminated = this.pool.flatMap((_, i) => (this.exitedFlags[i] ? [] : [i]));
    await Promise.all(this.pool.map((w) => w.terminate()));
  }

  /** Stop and merge: the run's result, or the failure that ended it. */
  async finish(): Promise<RunResult> {
    await this.stop();
    const { workload } = this.opts;
    const n = workload.actors.length;
    if (this.failure) throw rebuildFailure(this.failure);
    if (this.reports.length !== this.workers) {
      const stuck = this.terminated.length > 0 ? `: worker ${this.terminated.join(', ')} had not exited ${STOP_QUIET_MS / 1000} s after the last one that did, and was terminated` : '';
      throw new Error(`only ${this.reports.length} of ${this.workers} workers reported${stuck}`);
    }
    const keepTrace = this.opts.keepTrace ?? true;
    const tickets = this.ctl.tickets;
    const eventNames = new Map<number, string>();
    const taskNames = new Map<number, string>();
    const findings: Finding[] = [];
    const blocked: BlockedTask[] = [];
    const finals: ActorFinal[] = new Array(n);
    let sent = this.injected;
    let delivered = 0;
    let queued = this.outboxes.reduce((h, o) => h + o.held, 0);
    let timersFired = 0;
    const locking = { striped: 0, fallback: 0, relocked: 0 };
    const spawns = { sent: 0, taken: 0, queued: 0 };
    for (const mb of this.mailboxes) {
      const left = leftIn(mb);
      queued += left.messages;
      spawns.queued += left.spawns;
    }
    const taskPoints = new Array<number>(this.workers).fill(0);
    let workerTime = NO_TIME;
    for (const r of this.reports) {
      workerTime = addWorkerTime(workerTime, r.time);
      spawns.sent += r.spawns.sent;
      spawns.taken += r.spawns.taken;
      spawns.queued += r.spawns.queued;
      taskPoints[r.index] = r.taskPoints;
      locking.striped += r.striped;
      locking.fallback += r.fallback;
      locking.relocked += r.relocked;
      for (const [h, s] of r.eventNames) eventNames.set(h, s);
      for (const [id, f] of r.finals) finals[id] = f;
      for (const [id, name] of r.taskNames) taskNames.set(id, name);
      findings.push(...r.findings);
      blocked.push(...r.blocked);
      sent += r.sent;
      delivered += r.delivered;
      queued += r.queued;
      timersFired += r.timersFired;
    }
    const trace = keepTrace
      ? canonicalTrace(this.reports, tickets, workload.actors.map((a) => a.name), eventNames, taskNames, findings)
      : new Trace(new Int32Array(0), workload.actors.map((a) => a.name), eventNames, taskNames);
    const times = trace.times;
    const traceHash = trace.hash();
    // The first finding is the one of the earliest step, whichever worker reported it.
    findings.sort((a, b) => (a.step < 0 ? Number.MAX_SAFE_INTEGER : a.step) - (b.step < 0 ? Number.MAX_SAFE_INTEGER : b.step));
    // A run cut by the budget did not end: end-of-run checks would judge a state halfway through.
    const halted = (findings.length > 0 && !this.opts.keepGoing) || this.cutAt !== undefined;
    if (!halted && workload.monitor) {
      // End-of-run checks on the final shared memory, once, from a fresh instance of the workload here.
      const mine = buildWorkload(workload.name, workload.params).monitor;
      if (mine) {
        // At the time of the last step, as a replay's end-of-run checks see it.
        // (The latest step time: canonical order is not the order of the times.)
        const end = times && times.length > 0 ? maxOf(times) / 1000 : performance.timeOrigin + performance.now() - this.epoch;
        mine.attach(new Int32Array(this.shared), () => end);
        if (blocked.length > 0) mine.stuck?.(blocked, end);
        mine.end?.();
        findings.push(...mine.findings);
      }
    }
    const shared = new Int32Array(this.shared).slice();
    const finalList = Array.from(finals);
    const check = workload.check(finalList, shared);
    const meta = { workload: { name: workload.name, params: workload.params }, seed: this.opts.seed };
    return {
      runtime: 'threaded',
      strategy: 'threaded',
      ...meta,
      placement: this.placement,
      workers: this.workers,
      locking,
      workerTime,
      steps: tickets,
      timersFired,
      accounting: { sent, delivered, queued, ok: sent === delivered + queued },
      spawns,
      taskPoints,
      trace,
      traceHash,
      finals: finalList,
      shared,
      check,
      findings,
      blocked,
      schedule: Schedule.fromTrace(trace, {
        ...meta,
        runtime: 'threaded',
        strategy: 'threaded',
        placement: this.placement,
        workers: this.workers,
        traceHash,
        actors: trace.actorNames,
        ...(this.custom ? { initial: this.injections } : {}),
        ...(this.opts.keepGoing ? { keepGoing: true } : {}),
        end: halted ? 'halted' : 'quiescent',
        outcome: outcomeOf(findings, check.ok),
      }),
      elapsedMs: performance.now() - this.started,
      ...(this.cutAt !== undefined ? { cut: { atStep: this.cutAt } } : {}),
    };
  }
}

/**
 * The run's trace in the canonical order of its happens-before (hb.ts): steps, send steps and task ids
 * renumbered, findings dated by the canonical step.
 */
function canonicalTrace(
  reports: readonly (WorkerReport & { type: 'done' })[],
  tickets: number,
  actorNames: readonly string[],
  eventNames: ReadonlyMap<number, string>,
  taskNames: ReadonlyMap<number, string>,
  findings: Finding[],
): Trace {
  const merged = mergeByTicket(reports, tickets);
  const c = canonicalise(merged.records, merged.times, reports.map((r) => r.objects));
  const names = new Map<number, string>();
  for (const [id, name] of taskNames) {
    const to = c.taskId(id);
    // An unnamed task is called after its id (task.ts `kind/N`): it takes its canonical number.
    names.set(to, name.replace(new RegExp(`/${id - TASK_BASE}$`), `/${to - TASK_BASE}`));
  }
  for (let i = 0; i < findings.length; i++) {
    const f = findings[i] as Finding;
    if (f.step >= 0 && f.step < tickets) findings[i] = { ...f, step: c.canonOf[f.step] as number };
  }
  return new Trace(c.records, actorNames, eventNames, names, c.times, c.hb);
}

/**
 * Tickets are dense, so each record has exactly one place; a gap or a duplicate is a runtime bug. Each
 * worker's step times are in the order of its records.
 */
function mergeByTicket(
  reports: readonly { readonly records: Int32Array; readonly times: Float64Array }[],
  tickets: number,
): { records: Int32Array; times: Float64Array } {
  const records = new Int32Array(tickets * REC_INTS);
  const times = new Float64Array(tickets);
  const seen = new Uint8Array(tickets);
  for (const r of reports) {
    if (r.times.length * REC_INTS !== r.records.length) throw new Error(`trace merge: ${r.times.length} step times for ${r.records.length / REC_INTS} records`);
    for (let o = 0, i = 0; o < r.records.length; o += REC_INTS, i++) {
      const t = r.records[o] as number;
      if (t >= tickets || seen[t]) throw new Error(`trace merge: ticket ${t} is out of range or logged twice`);
      seen[t] = 1;
      records.set(r.records.subarray(o, o + REC_INTS), t * REC_INTS);
      times[t] = r.times[i] as number;
    }
  }
  const missing = seen.indexOf(0);
  if (missing >= 0) throw new Error(`trace merge: no record for ticket ${missing}`);
  return { records, times };
}

function maxOf(a: Float64Array): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const x of a) if (x > m) m = x;
  return m;
}

export async function runThreaded(opts: ThreadedOptions): Promise<RunResult> {
  const rt = new ThreadedRuntime(opts);
  try {
    await rt.runToQuiescence();
  } catch (err) {
    await rt.stop();
    throw err;
  }
  return rt.finish();
}
