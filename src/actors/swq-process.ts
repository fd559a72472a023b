// A process that opens the work queues of several devices (an idxd user with a WQ on each of a socket's DSA
// devices, each behind its own IOMMU): exec, open (bind) each device in turn, submit `dmas` descriptors to each,
// wait for them, close every fd and exit. How a descriptor is tagged is the work queue's kind:
// - dedicated: the driver programmed the WQ with the PASID of this process's bond on that device;
// - shared: the process submits with ENQCMD, which tags the descriptor with the task's IA32_PASID MSR — one
//   value for every device, loaded by the kernel from mm->pasid. That is why the kernel allocates PASIDs
//   system-wide: an mm's PASID must name that mm on every IOMMU it is bound through (seed 000).
import { assign, enqueueActions, setup } from 'xstate';
import { type Effect, sendEffect, spawnEffect } from '../runtime/model.js';

export type WorkQueue = 'dedicated' | 'shared';
export const WORK_QUEUES: readonly WorkQueue[] = ['dedicated', 'shared'];

export interface SwqInput {
  readonly idx: number;
  readonly self: number;
  /** The devices it opens, in order: [device index, device actor]. */
  readonly devs: readonly (readonly [number, number])[];
  readonly wq: WorkQueue;
  readonly dmas: number;
  readonly pages: number;
  readonly flags: number;
}

/** What the kernel answers (sys_bind's `msr`: the task's IA32_PASID after the bind, 0 when invalid). */
type Ev =
  | { type: 'go' }
  | { type: 'exec.done' }
  | { type: 'bound'; handle: number; pasid: number; msr: number }
  | { type: 'bind.failed'; err: number }
  | { type: 'closed' }
  | { type: 'exited' }
  | { type: 'dma.done'; id: number; ok: number };

interface Ctx extends SwqInput {
  /** Per opened device: the bond's handle (0: the open failed) and PASID. */
  handles: number[];
  pasids: number[];
  msr: number;
  /** Devices opened (or closed, when closing) so far. */
  at: number;
  submitted: number;
  completed: number;
}

export const swqProcessMachine = setup({
  types: { context: {} as Ctx, events: {} as Ev, input: {} as SwqInput, emitted: {} as Effect },
  actions: {
    exec: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_exec', { proc: context.idx }, `proc${context.idx}`))),
    bind: enqueueActions(({ context, enqueue }) => {
      const dev = context.devs[context.at]?.[0] ?? 0;
      enqueue.emit(spawnEffect('sys_bind', { proc: context.idx, flags: context.flags, dev }, `proc${context.idx}`));
    }),
    submit: enqueueActions(({ context, enqueue }) => {
      let id = context.submitted;
      context.devs.forEach(([, actor], d) => {
        if ((context.handles[d] ?? 0) <= 0) return;
        // ENQCMD with no valid IA32_PASID faults in the CPU (#GP): nothing reaches the device.
        const pasid = context.wq === 'shared' ? context.msr : (context.pasids[d] ?? 0);
        if (pasid <= 0) return;
        for (let i = 0; i < context.dmas; i++) {
          // As `life` does: alternate a page faulted in at exec with one that is not (a page request).
          const vpn = i % 2 === 0 ? context.pages - 1 - ((i >> 1) % context.pages) : (i >> 1) % context.pages;
          enqueue.emit(sendEffect(actor, { type: 'submit', pasid, vpn, w: (i + 1) % 2, id: id++, from: context.self, cr: 0 }));
        }
      });
      enqueue.assign({ submitted: id });
    }),
    close: enqueueActions(({ context, enqueue }) => {
      const handle = context.handles[context.at] ?? 0;
      if (handle > 0) enqueue.emit(spawnEffect('sys_close', { proc: context.idx, handle }, `proc${context.idx}`));
      else enqueue.emit(sendEffect(context.self, { type: 'closed' }));
    }),
    exit: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('do_exit', { proc: context.idx }, `proc${context.idx}`))),
  },
}).createMachine({
  id: 'swq-process',
  context: ({ input }) => ({ ...input, handles: [], pasids: [], msr: 0, at: 0, submitted: 0, completed: 0 }),
  initial: 'waiting',
  on: { 'dma.done': { actions: assign(({ context }) => ({ completed: context.completed + 1 })) } },
  states: {
    waiting: { on: { go: 'exec' } },
    exec: { entry: 'exec', on: { 'exec.done': 'binding' } },
    binding: {
      entry: 'bind',
      on: {
        bound: {
          target: 'opened',
          actions: assign(({ context, event }) => ({ handles: [...context.handles, event.handle], pasids: [...context.pasids, event.pasid], msr: event.msr, at: context.at + 1 })),
        },
        'bind.failed': { target: 'opened', actions: assign(({ context }) => ({ handles: [...context.handles, 0], pasids: [...context.pasids, 0], at: context.at + 1 })) },
      },
    },
    opened: { always: [{ guard: ({ context }) => context.at < context.devs.length, target: 'binding' }, { target: 'working' }] },
    working: { entry: 'submit', always: { guard: ({ context }) => context.completed >= context.submitted, target: 'closing', actions: assign({ at: 0 }) } },
    closing: { entry: 'close', on: { closed: { target: 'closed', actions: assign(({ context }) => ({ at: context.at + 1 })) } } },
    closed: { always: [{ guard: ({ context }) => context.at < context.devs.length, target: 'closing' }, { target: 'exiting' }] },
    exiting: { entry: 'exit', on: { exited: 'done' } },
    done: {},
  },
});
