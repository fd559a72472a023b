// A driver actor for kernel workloads' benchmarks: on `go n` it starts a task of its kind with argument n (one
// driver per worker thread puts the tasks where the runtime places the driver), and on `teardown` its teardown
// task, if it has one. It counts its `go`s (`loops`, in its final context).
import { assign, emit, setup } from 'xstate';
import { type Effect, spawnEffect } from '../runtime/model.js';

export const taskDriver = setup({
  types: {
    context: {} as { loops: number; kind: string; teardown: string },
    events: {} as { type: 'go'; n: number } | { type: 'teardown' },
    input: {} as { kind: string; teardown?: string },
    emitted: {} as Effect,
  },
}).createMachine({
  context: ({ input }) => ({ loops: 0, kind: input.kind, teardown: input.teardown ?? '' }),
  on: {
    go: { actions: [assign({ loops: ({ context }) => context.loops + 1 }), emit(({ context, event }) => spawnEffect(context.kind, event.n))] },
    teardown: { guard: ({ context }) => context.teardown !== '', actions: emit(({ context }) => spawnEffect(context.teardown, null)) },
  },
});
