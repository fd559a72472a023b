// The `ioasid` model's scripted actors (issue #6; seed 003, drivers/iommu/ioasid.c and the "IOASID extensions
// for guest SVA" series): a race script's `user/N` — a kernel user of the allocator (VFIO's PASID ioctls, an
// SVA bind) — each a kernel task that starts once the allocator is booted (capacity installed, subscribers
// registered, the system set allocated) and runs its steps in order:
//   alloc_set   ioasid_alloc_set(token, quota): a set, named (S…) for the steps that use it; `system` is the host's
//   alloc       ioasid_alloc(set): an ID, named (X…) for the steps that use it
//   free        ioasid_free(id)
//   find        ioasid_find(set, id): the fast path under RCU
//   adjust_set  ioasid_adjust_set(set, quota): the quota changed
//   free_set    ioasid_free_set(set, destroy)
//   bind / unbind   ioasid_notify(id, BIND | UNBIND)
//   check      every subscriber's view against the allocator's (the notifier-divergence oracle)
// plus the ordering constraints of script.ts (`after`, `while`). Each step's outcome is a point of the trace:
// `user/1[2]: ioasid_alloc(S) = -ENOSPC`.
import type { KTask } from '../kernel/context.js';
import { errname } from '../kernel/errno.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { InputError } from '../runtime/errors.js';
import {
  type Ioasid,
  IOASID_NOTIFY_BIND,
  IOASID_NOTIFY_UNBIND,
} from '../core/ioasid.js';
import { type IoasidSubscribers, ioasid_check_subscribers } from '../core/ioasid-subscribers.js';
import { parseScript, type ScriptActor, ScriptRunner, type StepOutcome } from './script.js';
import { IOASID_KINDS } from './steps.js';

export type IoasidOp =
  | { readonly op: 'alloc_set'; readonly set: string; readonly quota: number }
  | { readonly op: 'alloc'; readonly set: string; readonly id: string }
  | { readonly op: 'free' | 'bind' | 'unbind'; readonly id: string }
  | { readonly op: 'find'; readonly set: string; readonly id: string }
  | { readonly op: 'adjust_set'; readonly set: string; readonly quota: number }
  | { readonly op: 'free_set'; readonly set: string }
  | { readonly op: 'check' };

export const IOASID_ACTOR_KINDS = ['user'] as const;
/** The host's set, allocated at boot. */
export const SYSTEM_SET = 'system';

/** The `steps` parameter checked; undefined when it is ''. */
export function parseIoasidScript(text: string, maxActors: number): ScriptActor<IoasidOp>[] | undefined {
  const actors = parseScript<IoasidOp>(text, {
    model: 'ioasid',
    kinds: IOASID_ACTOR_KINDS,
    maxActors,
    steps: IOASID_KINDS,
    predefined: { [SYSTEM_SET]: 'set' },
    check(st, at) {
      if (st.op === 'alloc_set' && st.set === SYSTEM_SET) throw new InputError(`${at}: set: ${SYSTEM_SET} is the host's set, allocated at boot`);
    },
  });
  if (!actors) return undefined;
  // Sets and IDs are named by the step that makes them: naming one that no step makes is a typo.
  const sets = new Set([SYSTEM_SET, ...actors.flatMap((a) => a.steps.flatMap((s) => (s.op === 'alloc_set' && 'set' in s ? [s.set] : [])))]);
  const ids = new Set(actors.flatMap((a) => a.steps.flatMap((s) => (s.op === 'alloc' && 'id' in s ? [s.id] : []))));
  for (const a of actors) {
    a.steps.forEach((s, i) => {
      const at = `ioasid: steps: ${a.name}[${i}]: ${s.op}`;
      if ('set' in s && !sets.has(s.set)) throw new InputError(`${at}: no step allocates set ${s.set} (alloc_set: { set: ${s.set}, quota: N })`);
      if ('id' in s && !ids.has(s.id)) throw new InputError(`${at}: no step allocates IOASID ${s.id} (alloc: { set: S, id: ${s.id} })`);
    });
  }
  return actors;
}

export interface IoasidScriptEnv {
  readonly k: Kernel;
  readonly a: Ioasid;
  readonly subs: IoasidSubscribers | undefined;
  /** The installed capacity (IDs 1..cap-1). */
  readonly cap: number;
  /** The word (absolute) the boot task stores the system set's sid in, 0 until then. */
  bootWord(): number;
}

/** Declare the scripted actors' task kind (`ioasid_script`); returns the initial tasks that run them. */
export function defineIoasidScript(env: IoasidScriptEnv, actors: readonly ScriptActor<IoasidOp>[]): { task: string; args: number; name: string }[] {
  const { k, subs, cap } = env;
  const runner = new ScriptRunner<IoasidOp>(k, 'ioasid', actors);
  const setNames = [...new Set(actors.flatMap((x) => x.steps.flatMap((s) => ('set' in s && s.set !== SYSTEM_SET ? [s.set] : []))))];
  const idNames = [...new Set(actors.flatMap((x) => x.steps.flatMap((s) => ('id' in s ? [s.id] : []))))];
  const setSlots = k.statics.alloc(Math.max(1, setNames.length), 'script ioasid sets');
  const idSlots = k.statics.alloc(Math.max(1, idNames.length), 'script ioasids');
  const idSlot = (name: string): number => k.mem.statics + idSlots + idNames.indexOf(name);
  const setSlot = (name: string): number => (name === SYSTEM_SET ? env.bootWord() : k.mem.statics + setSlots + setNames.indexOf(name));
  // Distinct tokens and private data, so that a report or a lookup says which step made what.
  const token = (set: string): number => 1000 + setNames.indexOf(set);
  const priv = (id: string): number => 0x2000 + idNames.indexOf(id);

  function* sid(t: KTask, name: string): KGen<number> {
    return yield* k.step(t, `set ${name}`, () => Atomics.load(k.i32, setSlot(name)));
  }
  function* id(t: KTask, name: string): KGen<number> {
    return yield* k.step(t, `IOASID ${name}`, () => Atomics.load(k.i32, idSlot(name)));
  }

  /** The trace's words and the result kept under the step's names (a return code: 0 or -errno). */
  const rc = (what: string, r: number): StepOutcome => ({ what: `${what} = ${errname(r)}`, ret: r });

  function* step(t: KTask, s: IoasidOp): KGen<StepOutcome> {
    switch (s.op) {
      case 'alloc_set': {
        const r = yield* k.fn.ioasid_alloc_set(t, token(s.set), s.quota);
        if (r > 0) yield* k.step(t, `${s.set} = set`, () => void Atomics.store(k.i32, setSlot(s.set), r));
        return { what: `ioasid_alloc_set(quota ${s.quota}) = ${r > 0 ? `${s.set} (sid ${r})` : errname(r)}`, ret: r };
      }
      case 'alloc': {
        const r = yield* k.fn.ioasid_alloc(t, yield* sid(t, s.set), 1, cap - 1, priv(s.id));
        if (r > 0) yield* k.step(t, `${s.id} = IOASID`, () => void Atomics.store(k.i32, idSlot(s.id), r));
        return { what: `ioasid_alloc(${s.set}) = ${r > 0 ? `${s.id} (${r})` : errname(r)}`, ret: r };
      }
      case 'free':
        return rc(`ioasid_free(${s.id})`, yield* k.fn.ioasid_free(t, yield* id(t, s.id)));
      case 'bind':
      case 'unbind': {
        const r = yield* k.fn.ioasid_notify(t, yield* id(t, s.id), s.op === 'bind' ? IOASID_NOTIFY_BIND : IOASID_NOTIFY_UNBIND);
        return rc(`ioasid_notify(${s.id}, ${s.op === 'bind' ? 'BIND' : 'UNBIND'})`, r);
      }
      case 'find': {
        const r = yield* k.fn.ioasid_find(t, yield* sid(t, s.set), yield* id(t, s.id));
        return { what: `ioasid_find(${s.set}, ${s.id}) = ${r >= 0 ? `private 0x${r.toString(16)}` : errname(r)}`, ret: r >= 0 ? 0 : r };
      }
      case 'adjust_set':
        return rc(`ioasid_adjust_set(${s.set}, ${s.quota})`, yield* k.fn.ioasid_adjust_set(t, yield* sid(t, s.set), s.quota));
      case 'free_set':
        return rc(`ioasid_free_set(${s.set})`, yield* k.fn.ioasid_free_set(t, yield* sid(t, s.set), true));
      case 'check': {
        if (!subs) return 'no subscribers to check';
        const n = yield* ioasid_check_subscribers(k, t, subs, `in ${t.comm}'s script`);
        return `subscribers' views: ${n} divergent`;
      }
    }
  }

  k.task('ioasid_script', 'process', function* (t, args) {
    // The allocator is usable once booted: capacity, subscribers and the system set are in place.
    yield k.point(t, 'wait for boot', () => Atomics.load(k.i32, env.bootWord()) !== 0, () => undefined, { what: 'ioasid_init' });
    yield* runner.run(t, typeof args === 'number' ? args : 0, step);
  });
  return actors.map((x, i) => ({ task: 'ioasid_script', args: i, name: x.comm }));
}
