// What the lifecycle machines of the IOMMU unit, the PCI device and the mm share: an event that the actor's
// state does not accept is refused — not handled, and reported as a `lifecycle` finding naming the actor, its
// state and the event (an illegal hardware or lifecycle transition: DMA from a device no driver enabled, an
// invalidation completion no command waits for, an mm reported going back to life). And the hot path: one
// HwOut per actor whose effects go out in one emit, the hardware's state staying in its class and in shared
// memory where the oracles and the driver read it.
import { type AnyStateMachine, type AnyStateNodeConfig, createMachine, emit } from 'xstate';
import type { Hardware, HwOut } from '../hw/out.js';
import type { HwMessage } from '../hw/messages.js';
import type { Kernel } from '../kernel/kernel.js';
import { type BusyEffect, type Effect, type LaterEffect, type ModelEvent, sendEffect, spawnEffect } from '../runtime/model.js';

/** Reports refused events: once per (actor, state, event) in an execution (one bad message tends to repeat). */
export class Refusals {
  private readonly seen = new Set<string>();

  constructor(
    private readonly k: Kernel,
    /** The step of the delivery running now (lifecycle events are shared events: they have one). */
    private readonly step: () => number,
  ) {
    k.onAttach(() => this.seen.clear());
  }

  refuse(actor: string, state: string, event: ModelEvent, accepts: readonly string[]): void {
    const key = `${actor}|${state}|${event.type}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const title = `iommu-sim: illegal transition: ${actor} in state ${state} refused ${event.type}`;
    const body = [
      `actor: ${actor}`,
      `state: ${state}`,
      `event: ${describe(event)}`,
      `${state} accepts: ${accepts.length > 0 ? accepts.join(', ') : 'nothing'}`,
    ];
    this.k.report({ kind: 'lifecycle', title, text: [title, ...body].join('\n'), step: this.step(), where: actor });
  }
}

function describe(e: ModelEvent): string {
  const fields = Object.entries(e)
    .filter(([k]) => k !== 'type')
    .map(([k, v]) => `${k} ${String(v)}`);
  return fields.length > 0 ? `${e.type} { ${fields.join(', ')} }` : e.type;
}

/**
 * The action that hands an event to the hardware: one emit of everything the hardware said (enqueueActions would
 * resolve an action per effect). `self` is the actor's id, as the hardware addresses messages to itself;
 * `settled` runs after the hardware handled the event (the machine reads the hardware's phase there once, not
 * once per guard of its `always` list).
 */
export function handleAction(hw: Hardware, self: number, step: () => number, settled: () => void = () => undefined) {
  let said: (Effect | LaterEffect | BusyEffect)[] = [];
  const out: HwOut = {
    send: (to, msg) => said.push(sendEffect(to, msg)),
    later: (msg, ms) => said.push({ type: 'rt.later', event: msg, ms }),
    spawn: (task, args, name) => said.push(spawnEffect(task, args, name)),
    // The runtime carries the busy time out (ActorHost): simulated in the deterministic one, spun in the threaded.
    busy: (ns) => {
      if (ns > 0) said.push({ type: 'rt.busy', ns });
    },
  };
  return emit(({ event }: { event: HwMessage }) => {
    said = [];
    hw.handle(self, event, out, step());
    settled();
    return { type: 'rt.batch' as const, effects: said };
  });
}

/** How a state takes an event: the first move whose `when` holds (none: refused). */
export interface Move {
  /** Where it goes (none: it stays). */
  readonly to?: string;
  readonly when?: (e: ModelEvent) => boolean;
  /** The hardware handles the event (before the machine moves on its own, by `always`). */
  readonly handle?: boolean;
}

export interface LifecycleState {
  /** The events this state accepts, and how; any other is refused. */
  readonly on: Readonly<Record<string, Move | readonly Move[]>>;
  /** After `ms` in this state (simulated in the deterministic runtime), `run` (then the phase is read again). */
  readonly after?: { readonly ms: number; readonly run: () => void };
}

/**
 * States that follow the hardware's own phase (a name among `states`), read after every event they took: the
 * machine moves to the state of that name (a guard per other phase state: a transient routing state would
 * cost a microstep more on every change, which the invalidation path makes twice a command).
 */
export interface PhaseStates {
  readonly states: readonly string[];
  readonly read: () => string;
}

export interface LifecycleSpec {
  readonly id: string;
  /** The actor's name, as findings name it. */
  readonly actor: string;
  readonly initial: string;
  readonly states: Readonly<Record<string, LifecycleState>>;
  /** What handles the events the states accept with `handle` (the hardware's class). */
  readonly handle?: ReturnType<typeof handleAction>;
  readonly phases?: PhaseStates;
  readonly refusals: Refusals;
}

/**
 * An XState machine from a lifecycle: each state names the events it accepts and where they lead; every other
 * event (the `*` transition, tried last) is refused and reported.
 */
export function lifecycleMachine(spec: LifecycleSpec): AnyStateMachine {
  const states: Record<string, AnyStateNodeConfig> = {};
  for (const [name, st] of Object.entries(spec.states)) {
    const accepts = Object.keys(st.on);
    const refuse = ({ event }: { event: ModelEvent }): void => spec.refusals.refuse(spec.actor, name, event, accepts);
    const on: Record<string, unknown> = {};
    for (const [type, m] of Object.entries(st.on)) {
      const moves: readonly Move[] = Array.isArray(m) ? m : [m as Move];
      const ts = moves.map((mv) => transition(mv, spec.handle));
      // Guarded moves that all fail: the event is refused in this state.
      on[type] = moves.every((mv) => mv.when) ? [...ts, { actions: refuse }] : ts.length === 1 ? ts[0] : ts;
    }
    on['*'] = { actions: refuse };
    const node: Record<string, unknown> = { on };
    const phases = spec.phases;
    if (phases?.states.includes(name)) node.always = phases.states.filter((to) => to !== name).map((to) => ({ target: to, guard: () => phases.read() === to }));
    if (st.after) node.after = { [st.after.ms]: { actions: st.after.run } };
    states[name] = node as AnyStateNodeConfig;
  }
  return createMachine({ id: spec.id, initial: spec.initial, states });
}

function transition(m: Move, handle: LifecycleSpec['handle']): Record<string, unknown> {
  const t: Record<string, unknown> = {};
  if (m.to !== undefined) t.target = m.to;
  if (m.when) {
    const when = m.when;
    t.guard = ({ event }: { event: ModelEvent }) => when(event);
  }
  if (m.handle) {
    if (!handle) throw new Error('lifecycle: a move handles its event, but the machine has no hardware');
    t.actions = handle;
  }
  return t;
}
