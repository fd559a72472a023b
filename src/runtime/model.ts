// The contract between model code and the runtimes. A model is a set of XState v5 machines (one actor each)
// plus a little shared Int32 memory. Machines never touch a transport: they *emit* effects (send a message,
// perform an atomic operation on shared memory) and the runtime hosting them — threaded or deterministic —
// carries them out. That is what lets the same machine definitions run unchanged in both runtimes.
import type { Footprint } from './footprint.js';
import type { AnyStateMachine } from 'xstate';
import type { BlockedOn, TaskFactory } from './task.js';

/** Pseudo-actors that can appear as the sender or receiver of a step. Real actors are 0..n-1. */
export const ENV = -1; // the run itself: initial messages
export const MEM = -2; // shared memory: atomic operations are steps of their own
export const TIMER = -3; // a delayed event firing (XState `after`, through the runtime's clock)
export const TASK = -4; // the sender of a task's own step (tasks have ids ≥ TASK_BASE, see task.ts)

export function pseudoName(id: number): string {
  return id === ENV ? 'env' : id === MEM ? 'mem' : id === TIMER ? 'timer' : id === TASK ? 'task' : `#${id}`;
}

/** A value that survives msgpack and structured clone. */
export type Wire = number | string | boolean | null | Wire[] | { [k: string]: Wire };

/** Events between actors: a type and serialisable fields. */
export interface ModelEvent {
  readonly type: string;
  readonly [field: string]: Wire;
}

export type AtomicOp = 'load' | 'store' | 'add' | 'xchg' | 'cas';

/** What a machine emits (via XState `emit`) for its host to carry out. */
export type Effect =
  | { readonly type: 'rt.send'; readonly to: number; readonly event: ModelEvent }
  | {
      readonly type: 'rt.atomic';
      readonly op: AtomicOp;
      readonly index: number;
      readonly value: number;
      readonly expected: number;
      /** Echoed back in the completion event so a machine can tell its requests apart. */
      readonly tag: number;
    }
  | {
      /** Start a task of the workload (see task.ts) on this actor's thread. */
      readonly type: 'rt.spawn';
      readonly task: string;
      readonly args: Wire;
      readonly name?: string;
    };

/** An event the actor sends itself after `ms` (simulated or real): a runtime timer, as XState's delayed raise. */
export interface LaterEffect {
  readonly type: 'rt.later';
  readonly event: ModelEvent;
  readonly ms: number;
}

/**
 * The actor's hardware was busy `ns` handling the event it is handling (a table fetch, a command's execution: a
 * vendor's cost table). The deterministic runtime delivers the actor nothing more until that much simulated
 * time has passed (the clock moves on to it when it is the earliest thing); the threaded runtime spends it in
 * real time, as a spin on the actor's thread.
 */
export interface BusyEffect {
  readonly type: 'rt.busy';
  readonly ns: number;
}

/**
 * Several effects emitted at once: one XState `emit` action where `enqueueActions` would resolve one action per
 * effect (and build its enqueue helpers every time) — the hardware actors' handler, on the hot path.
 */
export interface BatchEffect {
  readonly type: 'rt.batch';
  readonly effects: readonly (Effect | LaterEffect | BusyEffect)[];
}

/** What a machine may emit: the host carries out batches and timers itself, and hands the runtime Effects. */
export type Emitted = Effect | LaterEffect | BusyEffect | BatchEffect;

/** Delivered to the requesting actor when its atomic operation has been performed (sender MEM). */
export interface AtomicDone extends ModelEvent {
  readonly type: 'rt.atomic.done';
  readonly op: AtomicOp;
  readonly index: number;
  readonly old: number;
  readonly tag: number;
}

export function sendEffect(to: number, event: ModelEvent): Effect {
  return { type: 'rt.send', to, event };
}

export function spawnEffect(task: string, args: Wire = null, name?: string): Effect {
  return name === undefined ? { type: 'rt.spawn', task, args } : { type: 'rt.spawn', task, args, name };
}

export function atomicEffect(op: AtomicOp, index: number, value = 0, expected = 0, tag = 0): Effect {
  return { type: 'rt.atomic', op, index, value, expected, tag };
}

/** Perform an atomic operation on an Int32Array (shared or not); returns the old value. */
export function applyAtomic(mem: Int32Array, op: AtomicOp, index: number, value: number, expected: number): number {
  switch (op) {
    case 'load':
      return Atomics.load(mem, index);
    case 'store':
      return Atomics.exchange(mem, index, value);
    case 'add':
      return Atomics.add(mem, index, value);
    case 'xchg':
      return Atomics.exchange(mem, index, value);
    case 'cas':
      return Atomics.compareExchange(mem, index, expected, value);
  }
}

export interface ActorSpec {
  /** Stable, human-readable name (used in traces and reports). */
  readonly name: string;
  readonly logic: AnyStateMachine;
  readonly input?: Wire;
}

/** What a finished actor looked like, for the workload's invariant checks. */
export interface ActorFinal {
  readonly name: string;
  readonly state: string;
  readonly context: Wire;
}

export interface WorkloadCheck {
  readonly ok: boolean;
  /** One line per violated invariant (empty when ok). */
  readonly problems: readonly string[];
  /** Workload-specific counters printed in the summary line. */
  readonly counters: Readonly<Record<string, number>>;
  /** What the run logged that is not a failure (a probe that failed as designed), one line each. */
  readonly notes?: readonly string[];
}

/**
 * A workload: built from (name, params) in every thread that hosts part of it, so it must be a pure
 * function of its parameters.
 */
export interface Workload {
  readonly name: string;
  readonly params: Readonly<Record<string, Wire>>;
  readonly actors: readonly ActorSpec[];
  /** Messages the run starts with, sent by ENV, in this order. */
  readonly initial: readonly { readonly to: number; readonly event: ModelEvent }[];
  /** Words of shared Int32 memory the actors operate on atomically. */
  readonly sharedWords: number;
  /** Event types whose fields are all small integers, encoded in a fixed Int32 layout on the wire. */
  readonly hotEvents?: Readonly<Record<string, readonly string[]>>;
  /**
   * Event types whose handlers read or write the shared memory directly (hardware walking tables in memory).
   * The threaded runtime delivers them under the sequencer, atomically with their ticket, as it performs task
   * points — so a threaded run that exercises them still replays. Other deliveries must not touch shared memory.
   */
  readonly sharedEvents?: readonly string[];
  /**
   * The footprint (footprint.ts) of delivering a shared event to actor `to`, when the workload can say it: pure,
   * evaluated before the delivery locks and again under its locks, like Point.footprintOf. Undefined (or no
   * method): the delivery takes the coarse fallback lock.
   */
  footprintOf?(to: number, event: ModelEvent): Footprint | undefined;
  /**
   * Ranges of words that steps change only by commutative atomic adds and that nothing reads before the run has
   * ended — statistics, as the kernel keeps them in per-CPU counters (`percpu_counter_add`): footprints still
   * declare them written (the checker holds them to it), but the threaded runtime neither locks them nor orders
   * steps by them, so two steps that only count do not wait for each other. The sum does not depend on the order.
   */
  readonly unorderedWords?: readonly WordRange[];
  check(actors: readonly ActorFinal[], shared: Int32Array): WorkloadCheck;
  /** Task bodies by kind, spawned by actors (effect `rt.spawn`) or by other tasks. */
  readonly tasks?: Readonly<Record<string, TaskFactory>>;
  /** Tasks the run starts with (at most 16), spawned by ENV in this order. */
  readonly initialTasks?: readonly { readonly task: string; readonly args: Wire; readonly name?: string }[];
  readonly monitor?: Monitor;
}

/** Words [from, to) of the shared memory. */
export interface WordRange {
  readonly from: number;
  readonly to: number;
}

/** A checker's report: kernel wording in `title` (the grep-able first line) and `text` (the whole report). */
export interface Finding {
  readonly kind: string;
  readonly title: string;
  readonly text: string;
  /** The step at which it was found (-1: at the end of the run). */
  readonly step: number;
  /** The task or actor it concerns. */
  readonly where?: string;
}

/** A task that could not proceed when the run had nothing else to do. */
export interface BlockedTask {
  readonly id: number;
  readonly name: string;
  readonly label: string;
  readonly blockedOn: BlockedOn | undefined;
}

/**
 * The workload's eyes in every thread: the kernel layer keeps its per-thread state and checkers here. The
 * runtime attaches it to the shared memory before the first step of every execution (each attach starts the
 * checkers afresh: an execution is judged on its own, and its schedule replays alone), stops the run at its first finding unless
 * asked to keep going, tells it when only blocked tasks are left, and asks for end-of-run checks once, on the
 * final shared memory.
 */
export interface Monitor {
  attach(shared: Int32Array, now: () => number): void;
  readonly findings: readonly Finding[];
  stuck?(blocked: readonly BlockedTask[], now: number): void;
  /** Names a word of shared memory (its region, object and field), for footprint-check.ts's messages. */
  describeWord?(word: number): string;
  /** The step (ticket) of the delivery about to run, for sharedEvents only: findings in it are dated by it. */
  delivering?(step: number, actor: number): void;
  /** Periodic check with the time (hung tasks while the run goes on). */
  tick?(now: number): void;
  /**
   * Nothing is left to run but blocked tasks, with no timer or timeout pending: the simulated time up to which
   * idle time may pass before the run ends (a hung-task timeout), or undefined to end it now.
   */
  idleUntil?(now: number): number | undefined;
  end?(): void;
  /**
   * Words [from, to) of the run's memory that the monitor always writes before it reads (the kernel's string
   * heap): a buffer reused from an earlier execution (Scratch) need not zero them.
   */
  readonly writtenBeforeRead?: readonly [from: number, to: number];
}

export type WorkloadFactory = (params: Readonly<Record<string, Wire>>) => Workload;
