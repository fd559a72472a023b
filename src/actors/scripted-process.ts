// A process that follows a scenario's script, step by step: exec happens first, then each step — bind (open the
// device fd), dma (submit n descriptors and, unless `nowait`, wait for them), munmap, unbind (close the fd),
// exit (with the fd still open if it was not closed) — with ordering constraints between processes: a step
// `after: proc/N:K` waits until process N has finished its step K (process N tells it, with `go`), and
// `while: { task, holds }` waits until a kernel task whose comm starts with `task` holds a lock of that class:
// an actor cannot block, so the process spawns a kernel task (`script_while`) blocked on the lock's holder watch
// (src/kernel/lock.ts), which tells it `while.held` from the point where the lock is taken. The wait counts
// acquisitions from the task's first point on (`while.armed`), so the processes waiting for the step before it
// are told only then: a holder they let go on cannot take and drop the lock before the wait sees it. The steps
// are the scenario's, checked by the one script engine (src/workloads/script.ts): the actors exist, and the
// constraints have no cycle.
import { assign, enqueueActions, setup } from 'xstate';
import type { Kernel } from '../kernel/kernel.js';
import { type LockHolderWatch, wait_for_lock_holder, watchLockHolders } from '../kernel/lock.js';
import { type Effect, type Emitted, sendEffect, spawnEffect } from '../runtime/model.js';
import type { SyscallReply } from './process.js';

export type ScriptStep =
  | { readonly op: 'bind' }
  | { readonly op: 'dma'; readonly n: number; readonly vpn: number; readonly write: boolean; readonly wait: boolean }
  | { readonly op: 'munmap'; readonly vpn: number }
  | { readonly op: 'unbind' }
  /** exit (do_exit); `wait: false` goes on at once: another thread of the process carries on meanwhile. */
  | { readonly op: 'exit'; readonly wait: boolean }
  /** Wait until `proc` has finished its step `step` (0-based). */
  | { readonly op: 'after'; readonly proc: number; readonly step: number }
  /** Wait until a task named `task…` holds a lock of class `lock`; `watch` is declareWhileStep's. */
  | { readonly op: 'while'; readonly task: string; readonly lock: string; readonly watch: number };

const whileWatches = new WeakMap<Kernel, LockHolderWatch[]>();

/**
 * Declare, with the workload, what a `while` step waits on: a holder watch, and (once per kernel) the task kind
 * that blocks on it for the process. Returns the watch's index for the step; a RangeError names an unknown lock.
 */
export function declareWhileStep(k: Kernel, task: string, lock: string): number {
  let ws = whileWatches.get(k);
  if (!ws) {
    const list: LockHolderWatch[] = [];
    ws = list;
    whileWatches.set(k, list);
    k.task('script_while', 'process', function* (t, args) {
      const w = list[typeof args === 'number' ? args : -1];
      if (!w) throw new Error(`script_while: no watch ${JSON.stringify(args)}`);
      let armed = 0;
      yield* k.step(t, `armed: while ${w.task} holds ${w.lock}`, (env) => {
        armed = w.taken();
        env.send(t.self.owner, { type: 'while.armed' });
      });
      yield* wait_for_lock_holder(k, t, w, `while ${w.task} holds ${w.lock}`, (env) => env.send(t.self.owner, { type: 'while.held' }), armed);
    });
  }
  ws.push(watchLockHolders(k, task, lock));
  return ws.length - 1;
}

export interface ScriptedInput {
  readonly idx: number;
  readonly self: number;
  readonly devActor: number;
  readonly flags: number;
  readonly steps: readonly ScriptStep[];
  /** Who waits on which of this process's steps: [step, actor to tell]. */
  readonly tell: readonly (readonly [number, number])[];
}

type Ev = { type: 'go'; from: number; step: number } | { type: 'while.armed' } | { type: 'while.held' } | SyscallReply;

interface Ctx extends ScriptedInput {
  /** The step being done (steps.length: done). */
  pc: number;
  /** 0 running the step, 1 waiting for its answer. */
  busy: number;
  /**
   * The device fds open, oldest first: a second bind of the same mm to the device shares the bond (its handle),
   * with the bond's users raised, as iommu_sva_bind_device does; unbind closes the newest, exit all of them.
   */
  handles: number[];
  pasid: number;
  submitted: number;
  completed: number;
  ok: number;
  failed: number;
  bindErr: number;
  /** `go`s received: "proc:step" keys. */
  gone: string[];
}

/** Start step pc (or finish): returns what the process emits and how its context changes. */
function advance(c: Ctx, emit: (e: Emitted) => void): Partial<Ctx> {
  let pc = c.pc;
  const patch: Partial<Ctx> = {};
  // Steps that need no answer run one after another in this same transition.
  for (;;) {
    const s = c.steps[pc];
    if (!s) return { ...patch, pc, busy: 0 };
    const name = `proc${c.idx}`;
    switch (s.op) {
      case 'after':
        if (!(patch.gone ?? c.gone).includes(`${s.proc}:${s.step}`)) return { ...patch, pc, busy: 1 };
        break;
      case 'while':
        emit(spawnEffect('script_while', s.watch, name));
        return { ...patch, pc, busy: 1 };
      case 'bind':
        emit(spawnEffect('sys_bind', { proc: c.idx, flags: c.flags }, name));
        return { ...patch, pc, busy: 1 };
      case 'dma': {
        let id = patch.submitted ?? c.submitted;
        // One batch: an emit each is a deferred action each, and XState takes them off a queue with shift().
        const batch: Effect[] = [];
        for (let i = 0; i < s.n; i++) {
          batch.push(sendEffect(c.devActor, { type: 'submit', pasid: patch.pasid ?? c.pasid, vpn: s.vpn, w: s.write ? 1 : 0, id: id++, from: c.self, cr: 0 }));
        }
        emit({ type: 'rt.batch', effects: batch });
        patch.submitted = id;
        if (s.wait) return { ...patch, pc, busy: 1 };
        break;
      }
      case 'munmap':
        emit(spawnEffect('sys_munmap', { proc: c.idx, start: s.vpn, n: 1 }, name));
        return { ...patch, pc, busy: 1 };
      case 'unbind': {
        const open = patch.handles ?? c.handles;
        // A bind that failed at run time left no fd to close: close(-EBADF) never reaches the driver.
        if (open.length === 0) break;
        emit(spawnEffect('sys_close', { proc: c.idx, handle: open[open.length - 1] as number }, name));
        return { ...patch, pc, busy: 1 };
      }
      case 'exit': {
        // exit_files closes every fd still open (the steps after an exit never touch them: parseSteps).
        emit(spawnEffect('do_exit', { proc: c.idx, handles: [...(patch.handles ?? c.handles)] }, name));
        if (s.wait) return { ...patch, pc, busy: 1 };
        break;
      }
    }
    tellDone(c, pc, emit);
    pc++;
  }
}

/** Tell who waits on `step` that it is done — unless a `while` follows it and has not been armed yet. */
function tellDone(c: Ctx, step: number, emit: (e: Effect) => void, armed = false): void {
  if (!armed && c.steps[step + 1]?.op === 'while') return;
  for (const [s, to] of c.tell) if (s === step) emit(sendEffect(to, { type: 'go', from: c.idx, step }));
}

export const scriptedProcessMachine = setup({
  types: { context: {} as Ctx, events: {} as Ev, input: {} as ScriptedInput, emitted: {} as Emitted },
  actions: {
    // The current step got its answer: tell who waits on it, then start the next ones.
    next: enqueueActions(({ context, event, enqueue }) => {
      const c: Ctx = { ...context };
      if (event.type === 'bound') Object.assign(c, { handles: [...c.handles, event.handle], pasid: event.pasid });
      if (event.type === 'bind.failed') c.bindErr = event.err;
      if (event.type === 'closed') c.handles = c.handles.slice(0, -1);
      if (event.type === 'exited') c.handles = [];
      tellDone(c, c.pc, (e) => enqueue.emit(e));
      c.pc++;
      const patch = advance(c, (e) => enqueue.emit(e));
      enqueue.assign({ ...c, ...patch });
    }),
    start: enqueueActions(({ context, enqueue }) => {
      enqueue.assign(advance(context, (e) => enqueue.emit(e)));
    }),
  },
  guards: {
    dmaWaitDone: ({ context }) => context.steps[context.pc]?.op === 'dma' && context.busy === 1 && context.completed + 1 >= context.submitted,
    afterMet: ({ context, event }) => {
      const s = context.steps[context.pc];
      return event.type === 'go' && s?.op === 'after' && context.busy === 1 && s.proc === event.from && s.step === event.step;
    },
  },
}).createMachine({
  id: 'scripted-process',
  context: ({ input }) => ({ ...input, pc: 0, busy: 0, handles: [], pasid: 0, submitted: 0, completed: 0, ok: 0, failed: 0, bindErr: 0, gone: [] }),
  initial: 'waiting',
  states: {
    waiting: {
      on: {
        go: { target: 'exec', actions: assign(({ context, event }) => (event.from >= 0 ? { gone: [...context.gone, `${event.from}:${event.step}`] } : {})) },
      },
    },
    exec: {
      entry: enqueueActions(({ context, enqueue }) => enqueue.emit(spawnEffect('sys_exec', { proc: context.idx }, `proc${context.idx}`))),
      on: {
        'exec.done': { target: 'running', actions: 'start' },
        go: { actions: assign(({ context, event }) => ({ gone: [...context.gone, `${event.from}:${event.step}`] })) },
      },
    },
    running: {
      always: { guard: ({ context }) => context.pc >= context.steps.length, target: 'done' },
      on: {
        go: [
          { guard: 'afterMet', actions: [assign(({ context, event }) => ({ gone: [...context.gone, `${event.from}:${event.step}`] })), 'next'] },
          { actions: assign(({ context, event }) => ({ gone: [...context.gone, `${event.from}:${event.step}`] })) },
        ],
        bound: { actions: 'next' },
        'bind.failed': { actions: 'next' },
        'while.armed': {
          guard: ({ context }) => context.steps[context.pc]?.op === 'while' && context.busy === 1,
          actions: enqueueActions(({ context, enqueue }) => tellDone(context, context.pc - 1, (e) => enqueue.emit(e), true)),
        },
        'while.held': { guard: ({ context }) => context.steps[context.pc]?.op === 'while' && context.busy === 1, actions: 'next' },
        closed: { actions: 'next' },
        munmapped: { actions: 'next' },
        // An exit that was not waited for answers later: only the step waiting for it goes on.
        exited: { guard: ({ context }) => context.steps[context.pc]?.op === 'exit' && context.busy === 1, actions: 'next' },
        'dma.done': [
          { guard: 'dmaWaitDone', actions: [assign(({ context, event }) => ({ completed: context.completed + 1, ok: context.ok + event.ok, failed: context.failed + 1 - event.ok })), 'next'] },
          { actions: assign(({ context, event }) => ({ completed: context.completed + 1, ok: context.ok + event.ok, failed: context.failed + 1 - event.ok })) },
        ],
      },
    },
    done: {
      on: { 'dma.done': { actions: assign(({ context, event }) => ({ completed: context.completed + 1, ok: context.ok + event.ok, failed: context.failed + 1 - event.ok })) } },
    },
  },
});
