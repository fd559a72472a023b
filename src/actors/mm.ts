// An MM context as an actor: the life of one mm_struct as the tasks working on it report it — created by
// exec, live, exiting (exit_mmap running), dead (page tables gone, mm_count still held: by a bond's MMU
// notifier, by a page-request handler), freed. It refuses a report that goes backwards, so a model bug that
// resurrects an mm fails the run naming the actor, its state and the event.
import { assign, setup } from 'xstate';
import type { Effect } from '../runtime/model.js';

export type MmEvent = { type: 'mm.state'; code: number };

/** MM_UNUSED … MM_FREED of src/kernel/mm/mm.ts, in order. */
const STATES = ['unused', 'live', 'exiting', 'dead', 'freed'] as const;

export const mmMachine = setup({
  types: {
    context: {} as { code: number; reports: number },
    events: {} as MmEvent,
    emitted: {} as Effect,
  },
  guards: {
    forward: ({ context, event }) => event.code >= context.code,
  },
}).createMachine({
  id: 'mm',
  context: { code: 0, reports: 0 },
  initial: 'unused',
  on: {
    'mm.state': [
      {
        guard: 'forward',
        actions: assign({ code: ({ event }) => event.code, reports: ({ context }) => context.reports + 1 }),
      },
      {
        actions: ({ context, event }) => {
          throw new Error(`mm went back from ${STATES[context.code]} to ${STATES[event.code] ?? event.code}`);
        },
      },
    ],
  },
  states: {
    unused: { always: { guard: ({ context }) => context.code >= 1, target: 'live' } },
    live: { always: { guard: ({ context }) => context.code >= 2, target: 'exiting' } },
    exiting: { always: { guard: ({ context }) => context.code >= 3, target: 'dead' } },
    dead: { always: { guard: ({ context }) => context.code >= 4, target: 'freed' } },
    freed: {},
  },
});
