// The actor hosting one piece of hardware (an IOMMU unit or a PCI device): every message is handed to the
// hardware model, and what the hardware says (messages, a message to itself later, a threaded interrupt
// handler to start) becomes the runtime's effects. Targetless transitions only: this is the hot path, and the
// hardware's state lives in shared memory where the oracles and the driver see it.
import { enqueueActions, setup } from 'xstate';
import { type Effect, sendEffect, spawnEffect } from '../runtime/model.js';
import type { HwMessage } from '../hw/messages.js';
import type { Hardware, HwOut } from '../hw/out.js';

export function hardwareMachine(hw: Hardware, step: () => number) {
  return setup({
    types: {
      context: {} as { self: number },
      events: {} as HwMessage,
      input: {} as { self: number },
      emitted: {} as Effect,
    },
    actions: {
      handle: enqueueActions(({ context, event, enqueue }) => {
        const out: HwOut = {
          send: (to, msg) => enqueue.emit(sendEffect(to, msg)),
          later: (msg, ms) => enqueue.raise(msg, { delay: ms }),
          spawn: (task, args, name) => enqueue.emit(spawnEffect(task, args, name)),
        };
        hw.handle(context.self, event, out, step());
      }),
    },
  }).createMachine({
    id: hw.actorName,
    context: ({ input }) => ({ self: input.self }),
    initial: 'running',
    states: { running: { on: { '*': { actions: 'handle' } } } },
  });
}
