// The runtime's own workload: N actors ping random peers and race on shared memory, so that different
// interleavings give different outcomes (different trace hashes) while invariants that must hold in every
// interleaving are checked at the end. Each actor, M times: an atomic exchange on a shared register (or, when
// a planted bug is asked for, a compare-and-swap on a chain of markers), then a ping to a random peer and a
// wait for its pong; meanwhile it answers every ping it gets.
//
// The planted bug of depth d: markers m_0 … m_d, m_j done by actor (j even ? 1 : 0) at its iteration ⌊j/2⌋ as
// cas(STAGE, j, j+1). STAGE reaches d+1 only if m_0 < m_1 < … < m_d in the schedule: d ordering constraints
// that alternate between two actors, which is what PCT with depth d is built to find.
import { assign, emit, setup } from 'xstate';
import { combine, mix32 } from './hash.js';
import {
  type ActorFinal,
  type AtomicDone,
  atomicEffect,
  type Effect,
  sendEffect,
  type Wire,
  type Workload,
  type WorkloadCheck,
} from './model.js';

const REG = 0;
const STAGE = 1;

export interface SelftestParams {
  readonly actors: number;
  readonly messages: number;
  /** Planted ordering bug depth (0 = none). */
  readonly bug: number;
  /** Actor 0 throws when its pong for this iteration (1-based) arrives (0 = never): the crash path. */
  readonly crash: number;
  readonly seed: number;
}

interface Ctx {
  id: number;
  crash: number;
  /** Within `running`: 0 while the iteration's atomic operation is pending, 1 while its ping awaits a pong. */
  phase: 0 | 1;
  n: number;
  m: number;
  bug: number;
  seed: number;
  iter: number;
  draws: number;
  pingsHandled: number;
  pongs: number;
  sumOld: number;
  sumWritten: number;
  digest: number;
}

type Ev =
  | { type: 'start' }
  | { type: 'ping'; from: number; iter: number }
  | { type: 'pong'; from: number; hops: number }
  | AtomicDone;

/** Marker index of (actor, iteration), or -1. */
function markerAt(ctx: Ctx, iteration: number): number {
  if (ctx.bug <= 0 || ctx.id > 1) return -1;
  const j = iteration * 2 + (ctx.id === 1 ? 0 : 1);
  return j <= ctx.bug ? j : -1;
}

/** The atomic operation of an iteration: a marker CAS, or the exchange on the shared register. */
function opFor(ctx: Ctx, iteration: number): Effect {
  const j = markerAt(ctx, iteration);
  return j >= 0 ? atomicEffect('cas', STAGE, j + 1, j, 1) : atomicEffect('xchg', REG, ctx.id + 1, 0, 1);
}

const machine = setup({
  types: {
    context: {} as Ctx,
    events: {} as Ev,
    input: {} as { id: number; n: number; m: number; bug: number; seed: number; crash: number },
    emitted: {} as Effect,
  },
  // Plain assign + emit rather than enqueueActions: this machine is the deterministic runtime's benchmark
  // workload, and XState's per-action overhead dominates a step.
  actions: {
    countPing: assign(({ context, event }) =>
        event.type === 'ping'
          ? { pingsHandled: context.pingsHandled + 1, digest: combine(context.digest, event.from * 65536 + event.iter) }
          : {},
    ),
    answerPing: emit(({ context, event }) =>
      sendEffect(event.type === 'ping' ? event.from : -1, { type: 'pong', from: context.id, hops: context.pingsHandled }),
    ),
    countWrite: assign(({ context }) => {
      const op = opFor(context, context.iter);
      return op.type === 'rt.atomic' && op.op === 'xchg' ? { sumWritten: context.sumWritten + op.value } : {};
    }),
    beginIteration: emit(({ context }) => opFor(context, context.iter)),
    pingPeer: emit(({ context }) => {
      const r = mix32(mix32(context.seed ^ (context.id * 0x9e3779b1)) + context.draws) >>> 0;
      const k = r % (context.n - 1);
      return sendEffect(k >= context.id ? k + 1 : k, { type: 'ping', from: context.id, iter: context.iter });
    }),
    countRead: assign(({ context, event }) =>
      event.type === 'rt.atomic.done'
        ? {
            phase: 1 as const,
            draws: context.draws + 1,
            sumOld: context.sumOld + (event.op === 'xchg' ? event.old : 0),
            digest: combine(context.digest, event.old),
          }
        : {},
    ),
    nextIteration: assign(({ context }) => {
      if (context.id === 0 && context.iter + 1 === context.crash) throw new Error(`planted crash at iteration ${context.crash}`);
      return { iter: context.iter + 1, pongs: context.pongs + 1, phase: 0 as const };
    }),
    // nextIteration and countWrite in one assign: the common pong.
    advance: assign(({ context }) => {
      if (context.id === 0 && context.iter + 1 === context.crash) throw new Error(`planted crash at iteration ${context.crash}`);
      const iter = context.iter + 1;
      const op = opFor(context, iter);
      const written = op.type === 'rt.atomic' && op.op === 'xchg' ? op.value : 0;
      return { iter, pongs: context.pongs + 1, phase: 0 as const, sumWritten: context.sumWritten + written };
    }),
  },
}).createMachine({
  id: 'selftest',
  context: ({ input }) => ({
    id: input.id,
    crash: input.crash,
    phase: 0,
    n: input.n,
    m: input.m,
    bug: input.bug,
    seed: input.seed,
    iter: 0,
    draws: 0,
    pingsHandled: 0,
    pongs: 0,
    sumOld: 0,
    sumWritten: 0,
    digest: 0,
  }),
  initial: 'idle',
  on: { ping: { actions: ['countPing', 'answerPing'] } },
  // The per-message alternation (atomic operation pending, then pong awaited) is `phase` in the context, not
  // two states: a targetless transition costs XState about half of one that exits and enters a state, and
  // this is the deterministic runtime's benchmark workload. States mark the lifecycle.
  states: {
    idle: {
      on: {
        start: [
          { guard: ({ context }) => context.m === 0, target: 'finished' },
          { target: 'running', actions: ['countWrite', 'beginIteration'] },
        ],
      },
    },
    running: {
      on: {
        'rt.atomic.done': { guard: ({ context }) => context.phase === 0, actions: ['pingPeer', 'countRead'] },
        pong: [
          {
            guard: ({ context }) => context.phase === 1 && context.iter + 1 >= context.m,
            target: 'finished',
            actions: 'nextIteration',
          },
          {
            guard: ({ context }) => context.phase === 1,
            actions: ['advance', 'beginIteration'],
          },
        ],
      },
    },
    finished: {},
  },
});

function num(params: Readonly<Record<string, Wire>>, key: string, fallback: number): number {
  const v = params[key];
  return typeof v === 'number' ? v : fallback;
}

export function selftestWorkload(raw: Readonly<Record<string, Wire>>): Workload {
  const p: SelftestParams = {
    actors: num(raw, 'actors', 4),
    messages: num(raw, 'messages', 100),
    bug: num(raw, 'bug', 0),
    seed: num(raw, 'seed', 1),
    crash: num(raw, 'crash', 0),
  };
  if (!Number.isInteger(p.actors) || p.actors < 2) throw new RangeError(`selftest needs at least 2 actors, got ${p.actors}`);
  if (!Number.isInteger(p.messages) || p.messages < 0) throw new RangeError(`selftest messages must be ≥ 0, got ${p.messages}`);
  if (!Number.isInteger(p.bug) || p.bug < 0) throw new RangeError(`selftest bug depth must be ≥ 0, got ${p.bug}`);
  if (p.bug > 0 && p.messages * 2 < p.bug + 1) {
    throw new RangeError(`a planted bug of depth ${p.bug} needs at least ${Math.ceil((p.bug + 1) / 2)} messages per actor`);
  }
  const actors = Array.from({ length: p.actors }, (_, id) => ({
    name: `selftest/${id}`,
    logic: machine,
    input: { id, n: p.actors, m: p.messages, bug: p.bug, seed: p.seed, crash: p.crash },
  }));
  return {
    name: 'selftest',
    // `crash` is left out of the parameters when unused, so that ordinary recordings do not mention it.
    params: p.crash ? { ...p } : { actors: p.actors, messages: p.messages, bug: p.bug, seed: p.seed },
    actors,
    initial: actors.map((_, id) => ({ to: id, event: { type: 'start' } })),
    sharedWords: 2,
    hotEvents: { start: [], ping: ['from', 'iter'], pong: ['from', 'hops'] },
    check: (finals, shared) => checkSelftest(p, finals, shared),
  };
}

function checkSelftest(p: SelftestParams, finals: readonly ActorFinal[], shared: Int32Array): WorkloadCheck {
  const problems: string[] = [];
  let pings = 0;
  let pongs = 0;
  let sumOld = 0;
  let sumWritten = 0;
  for (const f of finals) {
    const c = f.context as unknown as Ctx | null;
    if (f.state !== 'finished') problems.push(`${f.name} ended in state '${f.state}', not 'finished'`);
    if (!c) continue;
    if (c.iter !== p.messages) problems.push(`${f.name} completed ${c.iter} of ${p.messages} iterations`);
    pings += c.pingsHandled;
    pongs += c.pongs;
    sumOld += c.sumOld;
    sumWritten += c.sumWritten;
  }
  const expected = p.actors * p.messages;
  if (pings !== expected) problems.push(`pings handled ${pings}, expected ${expected}`);
  if (pongs !== expected) problems.push(`pongs received ${pongs}, expected ${expected}`);
  // Every exchange returns the previous value: what was read plus what is left equals what was written.
  const reg = shared[REG] as number;
  if (sumOld + reg !== sumWritten) {
    problems.push(`lost update on the shared register: read ${sumOld} + final ${reg} != written ${sumWritten}`);
  }
  const stage = shared[STAGE] as number;
  if (p.bug > 0 && stage >= p.bug + 1) {
    problems.push(`planted ordering bug of depth ${p.bug} triggered: markers m0 < … < m${p.bug} happened in order`);
  }
  return { ok: problems.length === 0, problems, counters: { pings, pongs, register: reg, stage } };
}
