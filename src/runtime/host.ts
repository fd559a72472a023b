// Hosts XState actors for a runtime: creates them with the runtime's clock, delivers one event at a time,
// collects the effects they emit, and turns an actor that throws into an ActorFailure naming the actor, its
// state and the event. Both runtimes deliver through this class; only what happens around a delivery
// (ordering, transport, tickets) differs between them.
import { type Actor, type AnyStateMachine, createActor } from 'xstate';
import { spinFor, type Timer, type Timers } from './clock.js';
import { ActorFailure } from './errors.js';
import type { ActorFinal, BatchEffect, BusyEffect, Effect, LaterEffect, ModelEvent, Wire, Workload } from './model.js';

type Hosted = Actor<AnyStateMachine>;
type Persisted = ReturnType<Hosted['getPersistedSnapshot']>;

/**
 * What an actor's start left, the first time a workload's actor was started: its persisted initial snapshot
 * and the effects its initial state emitted, deep-frozen (they are shared by every later execution, so an
 * action that changed them in place would throw instead of leaking one execution into the next).
 */
interface Initial {
  readonly snapshot: Persisted;
  readonly effects: readonly Effect[];
}

/**
 * Per actor spec (a workload built once and explored many times keeps its specs). Computing an initial state
 * (context factory, entry actions, eventless transitions) is most of what creating an XState actor costs, and
 * a short execution creates every actor of its workload: starting from the persisted snapshot halves that.
 */
const initials = new WeakMap<Workload['actors'][number], Initial>();

export class ActorHost {
  private readonly actors = new Map<number, Hosted>();
  private readonly errors = new Map<number, unknown>();
  private readonly stateNames = new Map<number, { value: unknown; name: string }>();
  private effects: Effect[] = [];
  private spare: Effect[] = [];

  constructor(
    private readonly workload: Workload,
    private readonly timers: Timers,
    /** What an actor's busy time does (BusyEffect): by default, real time spent spinning. */
    private readonly busy: (actor: number, ns: number) => void = (_, ns) => spinFor(ns),
  ) {}

  /** Create and start the given actors; returns the effects each initial state emitted, in actor order. */
  start(ids: readonly number[]): [number, Effect[]][] {
    const out: [number, Effect[]][] = [];
    for (const id of ids) {
      const spec = this.workload.actors[id];
      if (!spec) throw new Error(`no actor #${id} in workload ${this.workload.name}`);
      const initial = initials.get(spec);
      const clock = this.timers.clockFor(id);
      const actor = initial
        ? createActor(spec.logic, { snapshot: initial.snapshot, clock, id: spec.name })
        : createActor(spec.logic, { input: spec.input, clock, id: spec.name });
      const timersBefore = this.timers.created;
      // An error observer makes XState treat a throw as handled (otherwise it rethrows from a macrotask).
      actor.subscribe({ error: (err: unknown) => this.errors.set(id, err) });
      const collect = (e: Effect): void => {
        this.effects.push(e);
      };
      const later = (e: LaterEffect): void => {
        clock.setTimeout(() => actor.send(e.event), e.ms);
      };
      actor.on('rt.send', collect);
      actor.on('rt.atomic', collect);
      actor.on('rt.spawn', collect);
      actor.on('rt.later', later);
      actor.on('rt.busy', (e: BusyEffect) => this.busy(id, e.ns));
      actor.on('rt.batch', (b: BatchEffect) => {
        for (const e of b.effects) {
          if (e.type === 'rt.later') later(e);
          else if (e.type === 'rt.busy') this.busy(id, e.ns);
          else this.effects.push(e);
        }
      });
      this.actors.set(id, actor);
      actor.start();
      this.check(id, undefined, 'xstate.init');
      const effects = [...this.takeEffects()];
      if (initial) {
        effects.push(...initial.effects);
      } else if (this.timers.created === timersBefore) {
        // An initial state that set a timer is not cached: a restored snapshot would not set it again.
        initials.set(spec, { snapshot: deepFreeze(actor.getPersistedSnapshot()), effects: deepFreeze(effects.slice()) });
      }
      out.push([id, effects]);
    }
    return out;
  }

  has(id: number): boolean {
    return this.actors.has(id);
  }

  /** Deliver one event; returns the effects the actor emitted while handling it. */
  deliver(id: number, event: ModelEvent): Effect[] {
    const actor = this.actors.get(id);
    if (!actor) throw new Error(`actor #${id} is not hosted here`);
    // Keep the snapshot, not its string: the state name is only needed if the actor throws.
    const before = actor.getSnapshot();
    actor.send(event);
    this.check(id, before, event.type);
    return this.takeEffects();
  }

  /** Fire a due timer of one of our actors (fn sends the delayed event: an `after`, a delayed raise, an rt.later). */
  fire(timer: Timer): Effect[] {
    const actor = this.actors.get(timer.owner);
    if (!actor) throw new Error(`actor #${timer.owner} is not hosted here`);
    const before = actor.getSnapshot();
    this.timers.take(timer);
    timer.fn();
    this.check(timer.owner, before, '(timer)');
    return this.takeEffects();
  }

  /**
   * The actor's state as a trace names it. Asked after every recorded delivery: the string of a compound
   * state value is kept while the value object stays the same (XState reuses it until the state changes).
   */
  stateOf(id: number): string {
    const actor = this.actors.get(id);
    if (!actor) return '(not hosted)';
    const value: unknown = actor.getSnapshot().value;
    if (typeof value === 'string') return value;
    const last = this.stateNames.get(id);
    if (last !== undefined && last.value === value) return last.name;
    const name = valueString(value);
    this.stateNames.set(id, { value, name });
    return name;
  }

  final(id: number): ActorFinal {
    const actor = this.actors.get(id);
    const name = this.workload.actors[id]?.name ?? `#${id}`;
    if (!actor) return { name, state: '(not hosted)', context: null };
    return { name, state: this.stateOf(id), context: actor.getSnapshot().context as Wire };
  }

  stopAll(): void {
    for (const a of this.actors.values()) a.stop();
  }

  /** The effects collected since the last call. Valid until the next delivery: two arrays take turns. */
  private takeEffects(): Effect[] {
    const out = this.effects;
    this.effects = this.spare;
    this.effects.length = 0;
    this.spare = out;
    return out;
  }

  private check(id: number, before: Snapshot | undefined, eventType: string): void {
    const actor = this.actors.get(id);
    const snap = actor?.getSnapshot();
    if (snap?.status === 'error' || this.errors.has(id)) {
      const err = this.errors.get(id) ?? (snap as { error?: unknown } | undefined)?.error;
      const state = before ? valueString(before.value) : '(start)';
      throw new ActorFailure(this.workload.actors[id]?.name ?? `#${id}`, state, eventType, err);
    }
  }
}

type Snapshot = ReturnType<Hosted['getSnapshot']>;

function valueString(v: unknown): string {
  if (typeof v === 'string') return v;
  // A machine without states has the value {}, a new object at every transition.
  if (v !== null && typeof v === 'object' && isEmpty(v)) return '{}';
  return JSON.stringify(v);
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
