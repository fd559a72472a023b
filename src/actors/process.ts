// A user process of the workload: exec (an mm with its pages mapped, half of them faulted in), open the
// accelerator's device fd (bind), submit DMA work under its PASID, and then — by script — close the fd when
// the work is done, close it with work still in flight, or exit with the fd open and work in flight (do_exit:
// the mm goes through exit_mmap and the MMU-notifier release before exit_files closes the fd and
// exit_task_work's last fput releases it — the driver's unbind). `stress` does seeded random
// rounds of all of these; `bind-task-exit` has the device driver bind the process from a kernel thread of its
// own (seed 000's iommu_bind_task(dev, task), AMD's amd_iommu_bind_pasid(pdev, pasid, task)) while the process
// exits. Kernel work runs as syscall tasks the process spawns; each answers with an event.
import { assign, enqueueActions, setup } from 'xstate';
import { type Effect, type Emitted, sendEffect, spawnEffect } from '../runtime/model.js';

export type Script = 'life' | 'exit' | 'unbind-inflight' | 'stress' | 'munmap' | 'bind-task-exit' | 'random';
export const SCRIPTS: readonly Script[] = ['life', 'exit', 'unbind-inflight', 'stress', 'munmap', 'bind-task-exit', 'random'];

export interface ProcessInput {
  readonly idx: number;
  /** Its own actor id (dma.done comes back to it). */
  readonly self: number;
  readonly devActor: number;
  /** The process to send `go` once this one has closed its fd (-1: none). */
  readonly next: number;
  readonly script: Script;
  readonly dmas: number;
  readonly pages: number;
  readonly flags: number;
  readonly rounds: number;
  readonly seed: number;
}

/** What the syscall tasks answer a process with, and the device's answer to its DMA. */
export type SyscallReply =
  | { type: 'exec.done' }
  /** `handle`: the fd open(2) returned. */
  | { type: 'bound'; handle: number; pasid: number; capable: number }
  | { type: 'bind.failed'; err: number; capable: number }
  | { type: 'closed' }
  | { type: 'munmapped' }
  /** mmap(2) of the fd's portal: its vpn, or -errno. */
  | { type: 'mapped'; vpn: number }
  | { type: 'exited' }
  | { type: 'dma.done'; id: number; ok: number };

export type ProcessEvent = { type: 'go' } | SyscallReply;

interface Ctx extends ProcessInput {
  round: number;
  rng: number;
  handle: number;
  pasid: number;
  submitted: number;
  completed: number;
  ok: number;
  failed: number;
  bindErr: number;
  capable: number;
  exitBound: boolean;
}

/** xorshift32: the process's own seeded choices (the same in both runtimes). */
export function rand(c: { rng: number }): number {
  let x = c.rng | 0 || 1;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  c.rng = x;
  return (x >>> 0) / 0x100000000;
}

export const processMachine = setup({
  types: {
    context: {} as Ctx,
    events: {} as ProcessEvent,
    input: {} as ProcessInput,
    emitted: {} as Emitted,
  },
  actions: {
    exec: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_exec', { proc: context.idx }, `proc${context.idx}`))),
    bind: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_bind', { proc: context.idx, flags: context.flags }, `proc${context.idx}`))),
    bindTask: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('bind_task', { proc: context.idx, flags: context.flags }, `bind_task/${context.idx}`))),
    submit: enqueueActions(({ context, enqueue }) => {
      const c = { rng: context.rng };
      let id = context.submitted;
      // One batch: an emit each is a deferred action each, and XState takes them off a queue with shift().
      const batch: Effect[] = [];
      for (let i = 0; i < context.dmas; i++) {
        // Scripted: alternate a page faulted in at exec with one that is not (a page request through PRI).
        const vpn = context.script === 'stress' ? Math.floor(rand(c) * context.pages) : i % 2 === 0 ? context.pages - 1 - ((i >> 1) % context.pages) : (i >> 1) % context.pages;
        const w = context.script === 'stress' ? (rand(c) < 0.5 ? 1 : 0) : (i + 1) % 2;
        batch.push(sendEffect(context.devActor, { type: 'submit', pasid: context.pasid, vpn, w, id: id++, from: context.self, cr: 0 }));
      }
      enqueue.emit({ type: 'rt.batch', effects: batch });
      enqueue.assign({ submitted: id, rng: c.rng });
    }),
    close: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_close', { proc: context.idx, handle: context.handle }, `proc${context.idx}`))),
    munmap: enqueueActions(({ context, enqueue }) => {
      const c = { rng: context.rng };
      const start = Math.floor(rand(c) * context.pages);
      enqueue.assign({ rng: c.rng });
      enqueue.emit(spawnEffect('sys_munmap', { proc: context.idx, start, n: 1 }, `proc${context.idx}`));
    }),
    // do_exit: exit_files closes whatever fd is still open (the kernel knows the process's fds, not the process).
    exit: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('do_exit', { proc: context.idx }, `proc${context.idx}`))),
    signalNext: enqueueActions(({ context, enqueue }) => {
      if (context.next >= 0) enqueue.emit(sendEffect(context.next, { type: 'go' }));
    }),
    count: assign(({ context, event }) =>
      event.type === 'dma.done' ? { completed: context.completed + 1, ok: context.ok + (event.ok === 1 ? 1 : 0), failed: context.failed + (event.ok === 1 ? 0 : 1) } : {},
    ),
  },
  guards: {
    allDone: ({ context }) => context.completed >= context.submitted,
    exitsBound: ({ context }) => context.script === 'exit',
    closesInFlight: ({ context }) => context.script === 'unbind-inflight',
    moreRounds: ({ context }) => context.script === 'stress' && context.round + 1 < context.rounds,
  },
}).createMachine({
  id: 'process',
  context: ({ input }) => ({
    ...input,
    round: 0,
    rng: (input.seed * 0x9e3779b1 + input.idx * 0x85ebca6b + 1) | 0,
    handle: 0,
    pasid: 0,
    submitted: 0,
    completed: 0,
    ok: 0,
    failed: 0,
    bindErr: 0,
    capable: 0,
    exitBound: false,
  }),
  // Every process waits for `go` (from the run, or from the process before it in a chain): an initial state
  // that spawned would spawn hundreds of tasks in one step.
  initial: 'waiting',
  on: { 'dma.done': { actions: 'count' } },
  states: {
    waiting: { on: { go: 'exec' } },
    exec: {
      entry: 'exec',
      on: {
        'exec.done': [
          // The driver's thread binds this task while it exits: nothing orders the two.
          { guard: ({ context }) => context.script === 'bind-task-exit', target: 'exiting', actions: ['bindTask', 'signalNext'] },
          { target: 'binding' },
        ],
      },
    },
    binding: {
      entry: 'bind',
      on: {
        bound: { target: 'working', actions: assign(({ event }) => ({ handle: event.handle, pasid: event.pasid, capable: event.capable })) },
        'bind.failed': { target: 'exiting', actions: [assign(({ event }) => ({ bindErr: event.err, capable: event.capable, exitBound: false })), 'signalNext'] },
      },
    },
    working: {
      entry: 'submit',
      always: [
        { guard: 'exitsBound', target: 'exiting', actions: assign({ exitBound: true }) },
        { guard: 'closesInFlight', target: 'closing' },
        { guard: 'allDone', target: 'draining' },
      ],
    },
    draining: {
      always: [
        {
          guard: ({ context }) => context.script === 'stress' && context.round + 1 >= context.rounds && (context.rng & 7) === 0,
          target: 'exiting',
          actions: assign({ exitBound: true }),
        },
        { guard: ({ context }) => context.script === 'munmap' || (context.script === 'stress' && (context.rng & 1) === 0), target: 'munmapping' },
        { target: 'closing' },
      ],
    },
    munmapping: {
      entry: 'munmap',
      on: {
        munmapped: [
          // `munmap`: one munmap a round, all within one bind (each one invalidates the IOTLB and ATC).
          {
            guard: ({ context }) => context.script === 'munmap' && context.round + 1 < context.rounds,
            target: 'munmapping',
            reenter: true,
            actions: assign(({ context }) => ({ round: context.round + 1 })),
          },
          { target: 'closing' },
        ],
      },
    },
    closing: {
      entry: 'close',
      on: {
        closed: [
          { guard: 'moreRounds', target: 'binding', actions: [assign(({ context }) => ({ round: context.round + 1, handle: 0 })), 'signalNext'] },
          { target: 'exiting', actions: [assign({ handle: 0 }), 'signalNext'] },
        ],
      },
    },
    exiting: {
      entry: 'exit',
      on: { exited: [{ guard: ({ context }) => context.exitBound, target: 'done', actions: 'signalNext' }, { target: 'done' }] },
    },
    // Not a final state: the device still answers DMA the process left in flight, to a process that is gone.
    done: {},
  },
});
