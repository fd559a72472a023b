// The runtime suite (issue #2): the transport against its physical limit and against postMessage, actors
// exchanging XState events across two workers against XState's own single-thread send rate and against the
// same actors over postMessage, actor round trips, and the deterministic runtime's steps per second. One
// process, one run, so the ratios compare like with like. The same stream of events is also measured with the
// run recorded (every delivery's ticket kept for replay, as `--record` does): `recording_on_vs_off`.
import { MessageChannel, Worker } from 'node:worker_threads';
import { createActor } from 'xstate';
import { applyAtomic, type Effect, type ModelEvent, type Wire, type Workload, type WorkloadCheck } from '../src/runtime/model.js';
import { workerUrl } from '../src/runtime/paths.js';
import { ThreadedRuntime } from '../src/runtime/threaded.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import type { PmBenchCommand } from '../workers/pm-actor-bench.js';
import {
  type BenchResult,
  type Budget,
  budgetOf,
  measure,
  measureDeterministic,
  probeSteps,
  type Profile,
  profileOf,
  ratio,
  type SuiteOptions,
  type SuiteResult,
  fastestOfRounds,
} from './measure.js';
import { transportBenchmarks } from './transport.js';

interface Sizes {
  streamEvents: number; // per actor per iteration
  streamRounds: number; // turns of the unrecorded and the recorded stream (see threadedCases)
  roundTrips: number;
  pmStreamEvents: number;
  pmRoundTrips: number;
  xstateSends: number;
  selftestMessages: number;
}

const FULL_SIZES: Sizes = {
  streamEvents: 50_000,
  streamRounds: 3,
  roundTrips: 20_000,
  pmStreamEvents: 20_000,
  pmRoundTrips: 2_000,
  xstateSends: 50_000,
  selftestMessages: 2_500,
};
// bench:report: batches small enough that the minimum iterations fit its budget (a round trip between two
// actors costs ~100 µs or more on a busy machine: 20 000 of them are seconds an iteration).
const REPORT_SIZES: Sizes = {
  streamEvents: 20_000,
  streamRounds: 3,
  roundTrips: 2_000,
  pmStreamEvents: 10_000,
  pmRoundTrips: 1_000,
  xstateSends: 50_000,
  selftestMessages: 2_500,
};
const QUICK_SIZES: Sizes = {
  streamEvents: 5_000,
  streamRounds: 1,
  roundTrips: 1_000,
  pmStreamEvents: 2_000,
  pmRoundTrips: 200,
  xstateSends: 5_000,
  selftestMessages: 250,
};

/** (c) stream pairs across two workers through the real threaded runtime; (f) its round trips. */
async function threadedCases(budget: Budget, s: Sizes): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  // The same stream unrecorded (the figure the runtime is judged by) and recorded (its trace kept), each on
  // its own started runtime. Their ratio is a target: they take turns over STREAM_ROUNDS rounds, each keeping
  // its fastest, so that neither side alone meets a busy spell of the machine (one pass each, one after the
  // other, put the ratio anywhere between 0.78× and 1.03× from report run to report run).
  const streams = [
    ['actors_xstate_2workers', false],
    ['actors_xstate_2workers_recorded', true],
  ] as const;
  const runtimes = streams.map(
    ([, keepTrace]) => new ThreadedRuntime({ workload: buildWorkload('stream', { pairs: 1, chunk: 64 }), seed: 1, workers: 2, keepTrace }),
  );
  try {
    const go = [0, 1].map((to) => ({ to, event: { type: 'go', n: s.streamEvents } }));
    const best = await fastestOfRounds(
      s.streamRounds,
      streams.map(([name], i) => () => measure(budget, name, 2 * s.streamEvents, () => (runtimes[i] as ThreadedRuntime).runToQuiescence(go))),
      (r) => r.name,
      (r) => r.hz,
    );
    for (const [name] of streams) out.push(best.get(name) as BenchResult);
  } finally {
    await Promise.all(runtimes.map((rt) => rt.stop()));
  }
  const pp = new ThreadedRuntime({ workload: buildWorkload('pingpong', {}), seed: 1, workers: 2, keepTrace: false });
  try {
    const go = [{ to: 0, event: { type: 'go', n: s.roundTrips } }];
    out.push(await measure(budget, 'roundtrip_actors', s.roundTrips, () => pp.runToQuiescence(go)));
  } finally {
    await pp.stop();
  }
  return out;
}

/** (d) the same actors over postMessage, and their round trips. */
async function postMessageCases(budget: Budget, s: Sizes): Promise<BenchResult[]> {
  const pair = (workload: string, params: Record<string, number>) => {
    const ch = new MessageChannel();
    const ws = [ch.port1, ch.port2].map(
      (peer, actor) =>
        new Worker(workerUrl('pm-actor-bench'), {
          workerData: { workload: { name: workload, params }, actor, peer },
          transferList: [peer],
        }),
    );
    const reached = (w: Worker): Promise<void> => new Promise((resolve) => w.once('message', () => resolve()));
    const send = (w: Worker, c: PmBenchCommand): void => w.postMessage(c);
    return { ws, reached, send };
  };
  const out: BenchResult[] = [];
  const st = pair('stream', { pairs: 1, chunk: 64 });
  try {
    // `received` only grows: each iteration waits for both actors to reach the running total.
    let total = 0;
    out.push(
      await measure(budget, 'actors_postmessage', 2 * s.pmStreamEvents, async () => {
        total += s.pmStreamEvents;
        const done = st.ws.map((w) => st.reached(w));
        for (const w of st.ws) st.send(w, { type: 'arm', field: 'received', target: total });
        for (const w of st.ws) st.send(w, { type: 'inject', event: { type: 'go', n: s.pmStreamEvents } });
        await Promise.all(done);
      }),
    );
  } finally {
    await Promise.all(st.ws.map((w) => w.terminate()));
  }
  const pp = pair('pingpong', {});
  try {
    let total = 0;
    out.push(
      await measure(budget, 'roundtrip_postmessage_actors', s.pmRoundTrips, async () => {
        total += s.pmRoundTrips;
        const w0 = pp.ws[0] as Worker;
        const done = pp.reached(w0);
        pp.send(w0, { type: 'arm', field: 'done', target: total });
        pp.send(w0, { type: 'inject', event: { type: 'go', n: s.pmRoundTrips } });
        await done;
      }),
    );
  } finally {
    await Promise.all(pp.ws.map((w) => w.terminate()));
  }
  return out;
}

/**
 * The deterministic runtime's ceiling on a workload: its actors on bare XState, each effect applied at once in
 * FIFO order (a send queued, an atomic operation done and answered) — no scheduler, no channels, no trace, no
 * checks. Counted in the runtime's steps of one execution (the atomic operations are steps there), so that
 * `deterministic_steps ÷ xstate_floor_selftest` is the share of a step left to everything that is not XState.
 */
async function xstateFloorCase(budget: Budget, w: Workload): Promise<BenchResult> {
  return measure(budget, 'xstate_floor_selftest', probeSteps(w), () => bareXState(w));
}

/**
 * One bare execution, checked (a ceiling that skipped part of the work would be no ceiling), before either
 * case is measured: it also warms XState's code, which the case measured first would otherwise pay for alone.
 */
function checkXStateFloor(w: Workload): void {
  const check = bareXState(w);
  if (!check.ok) throw new Error(`xstate_floor_selftest: the bare run failed the workload's check: ${check.problems.join('; ')}`);
}

/** One execution of the workload on bare XState; returns the workload's own check of it. */
function bareXState(w: Workload): WorkloadCheck {
  const mem = new Int32Array(w.sharedWords);
  const to: number[] = w.initial.map((m) => m.to);
  const events: ModelEvent[] = w.initial.map((m) => m.event);
  const actors = w.actors.map((spec, id) => {
    const a = createActor(spec.logic, { input: spec.input });
    const apply = (e: Effect): void => {
      if (e.type === 'rt.send') {
        to.push(e.to);
        events.push(e.event);
      } else if (e.type === 'rt.atomic') {
        to.push(id);
        events.push({ type: 'rt.atomic.done', op: e.op, index: e.index, old: applyAtomic(mem, e.op, e.index, e.value, e.expected), tag: e.tag });
      }
    };
    a.on('rt.send', apply);
    a.on('rt.atomic', apply);
    a.start();
    return a;
  });
  for (let i = 0; i < to.length; i++) actors[to[i] as number]?.send(events[i] as ModelEvent);
  const finals = actors.map((a, id) => {
    const snap = a.getSnapshot();
    a.stop();
    return { name: w.actors[id]?.name ?? `#${id}`, state: String(snap.value), context: snap.context as Wire };
  });
  return w.check(finals, mem);
}

/** (e) XState's own send rate in one thread, on the same machine the stream actors run. */
async function xstateCase(budget: Budget, s: Sizes): Promise<BenchResult> {
  const w = buildWorkload('stream', { pairs: 1, chunk: 64 });
  const spec = w.actors[1];
  if (!spec) throw new Error('stream workload has no actor 1');
  const actor = createActor(spec.logic, { input: spec.input });
  actor.start();
  const ev = { type: 'item', i: 0 };
  const r = await measure(budget, 'xstate_send', s.xstateSends, () => {
    for (let i = 0; i < s.xstateSends; i++) actor.send(ev);
  });
  actor.stop();
  return r;
}

export async function runtimeSuite(opts: SuiteOptions): Promise<SuiteResult> {
  const profile = profileOf(opts);
  const budget = budgetOf(profile);
  const sizes = profile === 'quick' ? QUICK_SIZES : profile === 'report' ? REPORT_SIZES : FULL_SIZES;
  const results: BenchResult[] = [];
  // Beside a competing busy process (`--noise`), only what crosses threads: one thread's figures say nothing of
  // how the threads wait for each other.
  if (!opts.noise) results.push(...(await singleThreadCases(opts, profile, budget, sizes)));
  opts.onCase?.('transport (raw ring, mailbox ring, postMessage, round trips)');
  results.push(...(await transportBenchmarks({ profile })));
  if (!opts.noise) {
    opts.onCase?.('xstate_send');
    results.push(await xstateCase(budget, sizes));
  }
  opts.onCase?.('actors across two workers (rings), unrecorded and recorded');
  results.push(...(await threadedCases(budget, sizes)));
  opts.onCase?.('actors across two workers (postMessage)');
  results.push(...(await postMessageCases(budget, sizes)));
  const threads = {
    transport_vs_raw: ratio(results, 'transport_1', 'raw_ring_1'),
    transport_batched_vs_raw_batched: ratio(results, 'transport_64', 'raw_ring_64'),
    transport_vs_postmessage: ratio(results, 'transport_1', 'postmessage'),
    recording_on_vs_off: ratio(results, 'actors_xstate_2workers_recorded', 'actors_xstate_2workers'),
    actors_vs_postmessage_actors: ratio(results, 'actors_xstate_2workers', 'actors_postmessage'),
    roundtrip_vs_postmessage: ratio(results, 'roundtrip_actors', 'roundtrip_postmessage_actors'),
    ring_roundtrip_vs_postmessage: ratio(results, 'roundtrip_ring', 'roundtrip_postmessage'),
  };
  if (opts.noise) return { suite: 'runtime', results, ratios: threads };
  return {
    suite: 'runtime',
    results,
    ratios: {
      ...threads,
      actors_vs_xstate_send: ratio(results, 'actors_xstate_2workers', 'xstate_send'),
      deterministic_vs_xstate_floor: ratio(results, 'deterministic_steps', 'xstate_floor_selftest'),
    },
  };
}

/** (g) first, on a fresh heap: the deterministic runtime and its XState floor. */
async function singleThreadCases(opts: SuiteOptions, profile: Profile, budget: Budget, sizes: Sizes): Promise<BenchResult[]> {
  // The threaded cases leave garbage and exiting workers behind: the deterministic runtime on the selftest
  // workload, where 3 of 4 steps are XState transitions, runs before them.
  opts.onCase?.('deterministic_steps');
  const selftest = buildWorkload('selftest', { actors: 4, messages: sizes.selftestMessages, bug: 0, seed: 1 });
  checkXStateFloor(selftest);
  // The runtime and its XState floor in alternating rounds, each keeping its fastest: a round slowed by
  // something else on the machine, or by V8 still compiling, then costs neither side its figure.
  const rounds = profile === 'quick' ? 1 : 3;
  // A round of each first, unrecorded: this is the first thing the suite's process runs, on a cold JIT.
  if (profile !== 'quick') {
    await measureDeterministic(budget, 'deterministic_steps', selftest);
    await xstateFloorCase(budget, selftest);
  }
  const best = await fastestOfRounds(
    rounds,
    [() => measureDeterministic(budget, 'deterministic_steps', selftest), () => xstateFloorCase(budget, selftest)],
    (r) => r.name,
    (r) => r.hz,
  );
  return ['deterministic_steps', 'xstate_floor_selftest'].map((name) => best.get(name) as BenchResult);
}
