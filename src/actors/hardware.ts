// The actor hosting one piece of hardware (an IOMMU unit or a PCI device): every message is handed to the
// hardware model, and what the hardware says (messages, a message to itself later, a threaded interrupt
// handler to start) becomes the runtime's effects. Targetless transitions only: this is the hot path, and the
// hardware's state lives in shared memory where the oracles and the driver see it.
import { emit, setup } from 'xstate';
import { type Effect, type Emitted, type LaterEffect, sendEffect, spawnEffect } from '../runtime/model.js';
import type { HwMessage } from '../hw/messages.js';
import type { Hardware, HwOut } from '../hw/out.js';

export function hardwareMachine(hw: Hardware, step: () => number) {
  // One HwOut for every message: what a message's handling says goes to the array of that message.
  let said: (Effect | LaterEffect)[] = [];
  const out: HwOut = {
    send: (to, msg) => said.push(sendEffect(to, msg)),
    later: (msg, ms) => said.push({ type: 'rt.later', event: msg, ms }),
    spawn: (task, args, name) => said.push(spawnEffect(task, args, name)),
  };
  return setup({
    types: {
      context: {} as { self: number },
      events: {} as HwMessage,
      input: {} as { self: number },
      emitted: {} as Emitted,
    },
    actions: {
      // One emit of everything the hardware said (enqueueActions would resolve an action per effect).
      handle: emit(({ context, event }) => {
        said = [];
        hw.handle(context.self, event, out, step());
        return { type: 'rt.batch', effects: said };
      }),
    },
  }).createMachine({
    id: hw.actorName,
    context: ({ input }) => ({ self: input.self }),
    initial: 'running',
    states: { running: { on: { '*': { actions: 'handle' } } } },
  });
}
