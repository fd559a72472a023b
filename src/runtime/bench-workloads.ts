// Workloads that measure the runtime itself (bench/runtime.bench.ts). `stream`: pairs of actors on different
// workers flood each other — every event is one XState transition at the receiver. `pingpong`: one
// request/response at a time between two actors, i.e. round-trip latency. Registered by name so that every
// worker thread can build them.
import { assign, enqueueActions, setup } from 'xstate';
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

const pingMachine = setup({
  types: { context: {} as PingCtx, events: {} as PingEv, input: {} as { peer: number }, emitted: {} as Effect },
  actions: {
    start: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'go' || event.n <= 0) return;
      enqueue.assign({ left: event.n - 1 });
      enqueue.emit(sendEffect(context.peer, { type: 'req', i: 0 }));
    }),
    answer: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === 'req') enqueue.emit(sendEffect(context.peer, { type: 'resp', i: event.i }));
    }),
    next: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'resp') return;
      enqueue.assign({ done: context.done + 1 });
      if (context.left > 0) {
        enqueue.assign({ left: context.left - 1 });
        enqueue.emit(sendEffect(context.peer, { type: 'req', i: event.i + 1 }));
      }
    }),
  },
}).createMachine({
  context: ({ input }) => ({ peer: input.peer, left: 0, done: 0 }),
  on: { go: { actions: 'start' }, req: { actions: 'answer' }, resp: { actions: 'next' } },
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
