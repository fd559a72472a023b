// Workloads that measure the runtime itself (bench/runtime.bench.ts). `stream`: pairs of actors on different
// workers flood each other — every event is one XState transition at the receiver. `pingpong`: one
// request/response at a time between two actors, i.e. round-trip latency. Registered by name so that every
// worker thread can build them.
import { assign, emit, enqueueActions, setup } from 'xstate';
import { type Effect, sendEffect, type Wire, type Workload } from './model.js';

type StreamEv = { type: 'go'; n: number } | { type: 'item'; i: number };
interface StreamCtx {
  peer: number;
  self: number;
  chunk: number;
  received: number;
}

const streamMachine = setup({
  types: { context: {} as StreamCtx, events: {} as StreamEv, input: {} as Omit<StreamCtx, 'received'>, emitted: {} as Effect },
  actions: {
    countItem: assign({ received: ({ context }) => context.received + 1 }),
    // Up to `chunk` items per transition; the rest is asked of itself with another `go`.
    burst: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'go') return;
      const k = Math.min(event.n, context.chunk);
      for (let i = 0; i < k; i++) enqueue.emit(sendEffect(context.peer, { type: 'item', i }));
      if (event.n > k) enqueue.emit(sendEffect(context.self, { type: 'go', n: event.n - k }));
    }),
  },
}).createMachine({
  context: ({ input }) => ({ ...input, received: 0 }),
  on: { item: { actions: 'countItem' }, go: { actions: 'burst' } },
});

function num(p: Readonly<Record<string, Wire>>, k: string, d: number): number {
  const v = p[k];
  return typeof v === 'number' ? v : d;
}

/** These workloads have no invariants beyond the runtime's own accounting; they report a count. */
function counted(field: string): Workload['check'] {
  return (fs) => {
    let total = 0;
    for (const f of fs) {
      const c = f.context;
      if (c && typeof c === 'object' && !Array.isArray(c) && typeof c[field] === 'number') total += c[field] as number;
    }
    return { ok: true, problems: [], counters: { [field]: total } };
  };
}

export function streamWorkload(params: Readonly<Record<string, Wire>>): Workload {
  const pairs = num(params, 'pairs', 1);
  const chunk = num(params, 'chunk', 64);
  const actors = Array.from({ length: pairs * 2 }, (_, i) => ({
    name: `stream/${i}`,
    logic: streamMachine,
    input: { peer: i ^ 1, self: i, chunk },
  }));
  return {
    name: 'stream',
    params: { pairs, chunk },
    actors,
    initial: [],
    sharedWords: 1,
    hotEvents: { go: ['n'], item: ['i'] },
    check: counted('received'),
  };
}

type PingEv = { type: 'go'; n: number } | { type: 'req'; i: number } | { type: 'resp'; i: number };
interface PingCtx {
  peer: number;
  left: number;
  done: number;
}

// Plain assign/emit actions and guarded transitions (no enqueueActions): a round trip is two transitions,
// and XState's per-action overhead is most of its cost.
const pingMachine = setup({
  types: { context: {} as PingCtx, events: {} as PingEv, input: {} as { peer: number }, emitted: {} as Effect },
  actions: {
    arm: assign({ left: ({ event }) => (event.type === 'go' ? event.n - 1 : 0) }),
    request: emit(({ context, event }) => sendEffect(context.peer, { type: 'req', i: event.type === 'resp' ? event.i + 1 : 0 })),
    answer: emit(({ context, event }) => sendEffect(context.peer, { type: 'resp', i: event.type === 'req' ? event.i : 0 })),
    count: assign({ done: ({ context }) => context.done + 1, left: ({ context }) => Math.max(0, context.left - 1) }),
  },
}).createMachine({
  context: ({ input }) => ({ peer: input.peer, left: 0, done: 0 }),
  on: {
    go: { guard: ({ event }) => event.n > 0, actions: ['arm', 'request'] },
    req: { actions: 'answer' },
    resp: [{ guard: ({ context }) => context.left > 0, actions: ['count', 'request'] }, { actions: 'count' }],
  },
});

export function pingpongWorkload(params: Readonly<Record<string, Wire>>): Workload {
  void params;
  return {
    name: 'pingpong',
    params: {},
    actors: [0, 1].map((i) => ({ name: `pingpong/${i}`, logic: pingMachine, input: { peer: 1 - i } })),
    initial: [],
    sharedWords: 1,
    hotEvents: { go: ['n'], req: ['i'], resp: ['i'] },
    check: counted('done'),
  };
}
