// A process of the random workload (`script: random`): after exec it does `ops` operations, each drawn from its
// own seeded generator with the scenario's rates — bind (open the device fd), dma (submit descriptors without
// waiting for them), munmap, unbind (close the fd, DMA possibly in flight), exit (with the fd open if it is) and
// mmap (of the fd's portal: the mapping keeps the file, so a later close releases nothing and the driver unbinds
// at exit_mmap) — the way a fuzzer drives a driver's uAPI. An operation that makes no sense in the state the process is in
// (dma without a bond, bind with one) is not drawn. It exits when its operations run out, closing the fd first
// when its last draw left one open.
import { assign, enqueueActions, setup } from 'xstate';
import { InputError } from '../runtime/errors.js';
import { type Effect, type Emitted, sendEffect, spawnEffect } from '../runtime/model.js';
import { rand, type SyscallReply } from './process.js';

export const RANDOM_OPS = ['bind', 'dma', 'munmap', 'unbind', 'exit', 'mmap'] as const;
export type RandomOp = (typeof RANDOM_OPS)[number];

/** The default rates: mostly DMA, a bind/unbind churn, an occasional munmap and exit (no mmap unless asked for). */
export const DEFAULT_RATES = 'bind:4,dma:8,munmap:1,unbind:3,exit:1';

/** `bind:4,dma:8,…` → a weight per operation (those not named weigh 0). */
export function parseRates(text: string): number[] {
  const w = RANDOM_OPS.map(() => 0);
  for (const part of text.split(',').filter((x) => x.trim() !== '')) {
    const m = /^\s*([\w-]+)\s*:\s*(\d+)\s*$/.exec(part);
    const op = m?.[1] as RandomOp | undefined;
    const i = op === undefined ? -1 : RANDOM_OPS.indexOf(op);
    if (!m || i < 0) throw new InputError(`sva: rates: expected op:weight, … with ops ${RANDOM_OPS.join(', ')}, got ${JSON.stringify(part.trim())}`);
    w[i] = Number(m[2]);
  }
  if ((w[0] ?? 0) === 0 || w.slice(1).reduce((a, b) => a + b, 0) === 0) throw new InputError(`sva: rates: bind and at least one other operation need a weight above 0, got ${JSON.stringify(text)}`);
  return w;
}

export interface RandomInput {
  readonly idx: number;
  readonly self: number;
  readonly devActor: number;
  readonly pages: number;
  readonly flags: number;
  /** Operations before the process exits. */
  readonly ops: number;
  /** Descriptors a `dma` submits. */
  readonly dmas: number;
  /** Weights, in RANDOM_OPS order. */
  readonly rates: readonly number[];
  readonly seed: number;
}

interface Ctx extends RandomInput {
  rng: number;
  done: number;
  handle: number;
  pasid: number;
  submitted: number;
  completed: number;
  next: RandomOp;
}

type Ev = { type: 'go' } | SyscallReply;

/** Draw the next operation among those that make sense now; `exit` once the operations run out. */
function draw(c: Ctx): Pick<Ctx, 'next' | 'rng' | 'done'> {
  if (c.done >= c.ops) return { next: c.handle > 0 ? 'unbind' : 'exit', rng: c.rng, done: c.done };
  const bound = c.handle > 0;
  const allowed = (op: RandomOp): boolean => (op === 'bind' ? !bound : op === 'dma' || op === 'unbind' || op === 'mmap' ? bound : true);
  const weights = RANDOM_OPS.map((op, i) => (allowed(op) ? (c.rates[i] ?? 0) : 0));
  const total = weights.reduce((a, b) => a + b, 0);
  const r = { rng: c.rng };
  if (total === 0) return { next: bound ? 'unbind' : 'exit', rng: r.rng, done: c.done + 1 };
  let x = rand(r) * total;
  let i = 0;
  while (i < weights.length - 1 && x >= (weights[i] ?? 0)) x -= weights[i++] ?? 0;
  return { next: RANDOM_OPS[i] as RandomOp, rng: r.rng, done: c.done + 1 };
}

/** murmur3's finalizer over (seed, idx): neighbouring seeds and processes start far apart (xorshift does not mix). */
function mix(seed: number, idx: number): number {
  let h = (seed ^ Math.imul(idx + 1, 0x9e3779b1)) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 1;
}

export const randomProcessMachine = setup({
  types: { context: {} as Ctx, events: {} as Ev, input: {} as RandomInput, emitted: {} as Emitted },
  actions: {
    draw: assign(({ context }) => draw(context)),
    exec: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_exec', { proc: context.idx }, `proc${context.idx}`))),
    bind: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_bind', { proc: context.idx, flags: context.flags }, `proc${context.idx}`))),
    submit: enqueueActions(({ context, enqueue }) => {
      const r = { rng: context.rng };
      let id = context.submitted;
      // One batch: an emit each is a deferred action each, and XState takes them off a queue with shift().
      const batch: Effect[] = [];
      for (let i = 0; i < context.dmas; i++) {
        const vpn = Math.floor(rand(r) * context.pages);
        batch.push(sendEffect(context.devActor, { type: 'submit', pasid: context.pasid, vpn, w: rand(r) < 0.5 ? 1 : 0, id: id++, from: context.self, cr: 0 }));
      }
      enqueue.emit({ type: 'rt.batch', effects: batch });
      enqueue.assign({ submitted: id, rng: r.rng });
      // Back to itself: the next draw is a step of its own, so other actors can run between the two.
      enqueue.emit(sendEffect(context.self, { type: 'go' }));
    }),
    munmap: enqueueActions(({ context, enqueue }) => {
      const r = { rng: context.rng };
      const start = Math.floor(rand(r) * context.pages);
      enqueue.assign({ rng: r.rng });
      enqueue.emit(spawnEffect('sys_munmap', { proc: context.idx, start, n: 1 }, `proc${context.idx}`));
    }),
    close: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_close', { proc: context.idx, handle: context.handle }, `proc${context.idx}`))),
    mmap: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_mmap', { proc: context.idx, handle: context.handle }, `proc${context.idx}`))),
    // do_exit: exit_files closes the fd if it is still open, exit_task_work releases it.
    exit: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('do_exit', { proc: context.idx }, `proc${context.idx}`))),
  },
}).createMachine({
  id: 'random-process',
  context: ({ input }) => ({ ...input, rng: mix(input.seed, input.idx), done: 0, handle: 0, pasid: 0, submitted: 0, completed: 0, next: 'bind' }),
  initial: 'waiting',
  on: { 'dma.done': { actions: assign(({ context }) => ({ completed: context.completed + 1 })) } },
  states: {
    waiting: { on: { go: 'exec' } },
    exec: { entry: 'exec', on: { 'exec.done': 'choosing' } },
    choosing: {
      entry: 'draw',
      always: [
        { guard: ({ context }) => context.next === 'bind', target: 'binding' },
        { guard: ({ context }) => context.next === 'dma', target: 'submitting' },
        { guard: ({ context }) => context.next === 'munmap', target: 'munmapping' },
        { guard: ({ context }) => context.next === 'unbind', target: 'closing' },
        { guard: ({ context }) => context.next === 'mmap', target: 'mapping' },
        { target: 'exiting' },
      ],
    },
    binding: {
      entry: 'bind',
      on: {
        bound: { target: 'choosing', actions: assign(({ event }) => ({ handle: event.handle, pasid: event.pasid })) },
        'bind.failed': 'choosing',
      },
    },
    submitting: { entry: 'submit', on: { go: 'choosing' } },
    munmapping: { entry: 'munmap', on: { munmapped: 'choosing' } },
    closing: { entry: 'close', on: { closed: { target: 'choosing', actions: assign({ handle: 0 }) } } },
    mapping: { entry: 'mmap', on: { mapped: 'choosing' } },
    exiting: { entry: 'exit', on: { exited: 'done' } },
    // Not a final state: the device still answers DMA the process left in flight, to a process that is gone.
    done: {},
  },
});
