// Scripted kernel actors (issue #6, race scripts): a scenario's `script` section names actors (`drv/0`, `proc/1`,
// `user/0`),
// each running its steps in order as one kernel task (comm `drv0`), with two ordering constraints between them:
// `after: drv/0:2` waits until drv/0 has finished its step 2 (each actor publishes its progress in a word of
// shared memory), and `while: { task, holds }` waits until a task whose comm starts with `task` holds a lock of
// that class (src/kernel/lock.ts's holder watch: ready from that acquisition on, so the next step starts inside
// the holder's critical section unless the scheduler lets the holder leave first — the trace then says so).
// Both are blocking scheduling points, so a constraint that can never be met ends the run with a hung-task
// report saying what the actor waited for. This is the one script engine of every preset and every actor kind
// (the sva preset's processes `proc/N` too: src/workloads/sva-script.ts): each step is checked against its
// kind's zod schema (steps.ts, a union discriminated by `op`) and the topology (the model's `check`), then the
// `after` references and the one cycle check. Errors read `<model>: steps: drv/1[2]: …`, which the scenario
// loader turns into `script.drv/1[2]: …`.
import type { KTask } from '../kernel/context.js';
import { errname } from '../kernel/errno.js';
import { taskFinding } from '../kernel/findings.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { type LockHolderWatch, wait_for_lock_holder, watchLockHolders } from '../kernel/lock.js';
import type { z } from 'zod';
import { InputError } from '../runtime/errors.js';
import { firstIssue, formatStepIssue } from '../scenario/zod-errors.js';
import { type ActorSteps, actorUnion, COMMON_KINDS, meets, type NameKind, type StepKind } from './steps.js';

/** The constraints every scripted model takes, and the check of results every actor may make. */
export type OrderStep =
  /** Wait until `actor` has finished its step `step` (0-based). */
  | { readonly op: 'after'; readonly actor: string; readonly step: number }
  /** Wait until a task whose comm starts with `task` holds a lock of class `lock`; the next step starts then. */
  | { readonly op: 'while'; readonly task: string; readonly lock: string }
  /** Each named result must meet its expectation (steps.ts's `meets`); one that does not is a `script` finding. */
  | { readonly op: 'expect'; readonly results: Readonly<Record<string, string | number>> };

/** The names a step makes (its result kept under them) and the names it takes (its objects). */
export interface StepNames {
  readonly defines: readonly string[];
  readonly uses: readonly string[];
}

export interface ScriptActor<Op> {
  /** As the scenario names it: `drv/0`. */
  readonly name: string;
  /** Its kernel task's comm: `drv0`. */
  readonly comm: string;
  readonly steps: readonly (Op | OrderStep)[];
  /** Per step, the names it makes and takes (parseScript fills it from the kinds' `names`). */
  readonly names?: readonly StepNames[];
}

/**
 * What a step did: the trace's words, and the value it returns (an fd, a handle, a domain, an id, 0 or -errno)
 * when it returns one — kept under the step's names (`as`, or the object it named) for later steps and `expect`.
 */
export type StepOutcome = string | { readonly what: string; readonly ret: number };

export interface ScriptSpec<Op> {
  /** The model's name, for errors. */
  readonly model: string;
  /** The actor names the model takes (`drv`, `proc`: actors drv/N and proc/N). */
  readonly kinds: readonly string[];
  /** At most this many actors (each is a task of the run). */
  readonly maxActors: number;
  /**
   * The step kinds (src/workloads/steps.ts): one list every actor kind takes, or each actor kind's own
   * (steps.ts's PRESET_ACTORS); `after` and `while` are every actor's.
   */
  readonly steps: readonly StepKind[] | ActorSteps;
  /** What only the topology knows (a device it has, a process): throws an InputError prefixed by `at`. */
  check?(st: Op, at: string): void;
  /**
   * The steps may also come as a list, actor `kinds[0]/i`'s at index i (the sva model's `--set steps=[[…]]`),
   * and an actor past `actors` is none of the topology's.
   */
  readonly numbered?: { readonly actors: number };
  /** Names that exist before any step runs (ioasid's `system` set). */
  readonly predefined?: Readonly<Record<string, NameKind>>;
}

/** A step's field the topology bounds (a device, a PASID, a process): an integer in 0..n-1. */
export function withinTopology(at: string, field: string, v: number | undefined, n: number): void {
  if (v !== undefined && v >= n) throw new InputError(`${at}: ${field} must be an integer in 0..${n - 1}, got ${v}`);
}

/** The first thing wrong with an actor's steps (zod's first issue, at `steps[i].field`), naming the step. */
function actorError(at: string, issue: z.core.$ZodIssue | undefined, steps: readonly unknown[], kinds: readonly StepKind[]): string {
  const [, i] = issue?.path ?? [];
  if (!issue || typeof i !== 'number') return `${at}: not valid`;
  const o = steps[i];
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return `${at}[${i}]: not a step`;
  const st = o as Readonly<Record<string, unknown>>;
  const all = [...kinds, ...COMMON_KINDS];
  const kind = all.find((k) => k.op === st.op);
  if (!kind) return `${at}[${i}]: unknown step ${JSON.stringify(st.op)} (${all.map((k) => k.op).join(', ')})`;
  return `${at}[${i}]: ${kind.op}: ${formatStepIssue(issue, st, kind, 2)}`;
}

/** sva's list form names the process an `after` waits for by number: the name, as every model has it. */
function afterByName(st: unknown): unknown {
  const o = st as Readonly<Record<string, unknown>> | null;
  return o !== null && typeof o === 'object' && o.op === 'after' && typeof o.proc === 'number' && o.actor === undefined ? { op: 'after', actor: `proc/${o.proc}`, step: o.step } : st;
}

/** Each actor kind's step kinds, from the spec's list (every kind takes it) or its table. */
function stepsByKind(spec: ScriptSpec<unknown>): ActorSteps {
  const list = spec.steps as readonly StepKind[];
  return Array.isArray(list) ? Object.fromEntries(spec.kinds.map((k) => [k, list])) : (spec.steps as ActorSteps);
}

/** The actors and their raw steps: an object of actors, or (numbered) a list. */
function actorEntries(v: unknown, pre: string, spec: ScriptSpec<unknown>): [string, unknown][] {
  if (Array.isArray(v) && spec.numbered) {
    if (v.length > spec.numbered.actors) throw new InputError(`${pre}: ${spec.kinds[0]}/${v.length - 1}: no such process (the topology has ${spec.numbered.actors})`);
    return v.map((list, i) => [`${spec.kinds[0]}/${i}`, list]);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InputError(`${pre}: not an object of actors`);
  const entries = Object.entries(v as Record<string, unknown>);
  for (const [name] of entries) {
    const n = Number(name.slice(name.indexOf('/') + 1));
    // The numbered kind's actors are the topology's processes; another kind (sva's hp/N) is numbered on its own.
    if (spec.numbered && name.startsWith(`${spec.kinds[0]}/`) && n >= spec.numbered.actors) throw new InputError(`${pre}: ${name}: no such process (the topology has ${spec.numbered.actors})`);
  }
  return entries;
}

/**
 * The model's `steps` parameter (JSON: `{ "drv/0": [{ "op": … }, …], … }`) checked; undefined when it is ''.
 * Each actor against the one vocabulary (steps.ts's actorUnion: by actor kind, each step by `op`), each step
 * against the topology; then the `after` references and the absence of cycles —
 * the one ordering check of every model.
 */
export function parseScript<Op extends { readonly op: string }>(text: string, spec: ScriptSpec<Op>): ScriptActor<Op>[] | undefined {
  if (text === '') return undefined;
  const pre = `${spec.model}: steps`;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InputError(`${pre}: not JSON`);
  }
  const entries = actorEntries(v, pre, spec as ScriptSpec<unknown>);
  const nameRe = new RegExp(`^(${spec.kinds.join('|')})/(\\d+)$`);
  if (entries.length === 0) throw new InputError(`${pre}: no actor`);
  if (entries.length > spec.maxActors) throw new InputError(`${pre}: ${entries.length} actors, at most ${spec.maxActors}`);
  const byKind = stepsByKind(spec as ScriptSpec<unknown>);
  const schema = actorUnion(byKind);
  const actors = entries.map(([name, list]): ScriptActor<Op> => {
    const m = nameRe.exec(name);
    if (!m) throw new InputError(`${pre}: ${name}: not an actor of the ${spec.model} model (${spec.kinds.map((x) => `${x}/N`).join(', ')})`);
    if (!Array.isArray(list)) throw new InputError(`${pre}: ${name}: not a list of steps`);
    const wire = list.map(afterByName);
    const kind = m[1] as string;
    // Every step against its actor kind's union of step kinds: the one vocabulary (steps.ts).
    const r = schema.safeParse({ kind, steps: wire });
    if (!r.success) throw new InputError(actorError(`${pre}: ${name}`, firstIssue(r.error.issues), wire, byKind[kind] ?? []));
    const steps = r.data.steps as (Op | OrderStep)[];
    steps.forEach((step, i) => {
      if (!isAfter(step) && !isWhile(step) && !isExpect(step)) spec.check?.(step, `${pre}: ${name}[${i}]`);
    });
    return { name, comm: `${m[1]}${m[2]}`, steps, names: stepNames(steps, byKind[kind] ?? []) };
  });
  checkOrder(pre, actors);
  checkNames(pre, actors, byKind, spec.predefined ?? {});
  return actors;
}

/** The names each step makes and takes, by its kind's `names` (an `expect` takes the names it checks). */
function stepNames(steps: readonly { readonly op: string }[], kinds: readonly StepKind[]): StepNames[] {
  return steps.map((st) => {
    if (isExpect(st)) return { defines: [], uses: [] };
    const o = st as Readonly<Record<string, unknown>>;
    const fields = Object.entries(kinds.find((k) => k.op === st.op)?.names ?? {}).filter(([f]) => typeof o[f] === 'string');
    return { defines: fields.filter(([, n]) => n.defines).map(([f]) => o[f] as string), uses: fields.filter(([, n]) => !n.defines).map(([f]) => o[f] as string) };
  });
}

/** Where a name is made: the actor, the step, what it is. */
interface Made {
  readonly actor: string;
  readonly step: number;
  readonly op: string;
  readonly kind: NameKind;
}

const kindsOf = (k: NameKind | readonly NameKind[]): readonly NameKind[] => (typeof k === 'string' ? [k] : k);
const A: Readonly<Record<NameKind, string>> = { fd: 'an fd', handle: 'an SVA bond handle', domain: 'a domain', set: 'an ioasid_set', ioasid: 'an IOASID', ioas: 'an IOAS', hwpt: 'a hw_pagetable', fault: 'a fault object', value: 'a result' };

/** A name no step makes, in the words of what the step wanted: `no step binds a bond named h (… as: h)`. */
function neverMade(name: string, kind: NameKind, actor: string): string {
  const says: Readonly<Record<NameKind, string>> = {
    fd: `no step opens an fd named ${name} (open or bind with as: ${name})`,
    handle: `no step binds a bond named ${name} (bind with as: ${name})`,
    domain: `no step allocates domain ${name}`,
    set: `no step allocates set ${name} (alloc_set: { set: ${name}, quota: N })`,
    ioasid: `no step allocates IOASID ${name} (alloc: { set: S, id: ${name} })`,
    // A VMM's objects are its own (ids in its iommufd_ctx): another VMM's do not count (iommufd-script.ts).
    ioas: `no step of ${actor} allocates ${name} (ioas_alloc: ${name})`,
    hwpt: `no step of ${actor} allocates ${name} (hwpt_alloc: { hwpt: ${name}, … })`,
    fault: `no step of ${actor} allocates ${name} (fault_alloc: ${name})`,
    value: `no step keeps a result named ${name} (a step's as: ${name}, or an object it made)`,
  };
  return says[kind];
}

/**
 * Every name a step takes or checks is made by a step (of this actor, earlier; or of another actor, whose step the
 * schedule orders) or exists from the start, and is of the kind the step takes; one name is one kind of thing.
 */
function checkNames<Op extends { readonly op: string }>(pre: string, actors: readonly ScriptActor<Op>[], byKind: ActorSteps, predefined: Readonly<Record<string, NameKind>>): void {
  const made = new Map<string, Made[]>();
  for (const a of actors) {
    const kinds = byKind[a.name.slice(0, a.name.indexOf('/'))] ?? [];
    a.steps.forEach((st, i) => {
      const names = kinds.find((k) => k.op === st.op)?.names ?? {};
      const o = st as unknown as Readonly<Record<string, unknown>>;
      for (const [f, n] of Object.entries(names)) {
        if (!n.defines || typeof o[f] !== 'string') continue;
        const name = o[f] as string;
        const kind = kindsOf(n.kind)[0] as NameKind;
        const first = made.get(name)?.[0] ?? (predefined[name] ? { actor: '', step: -1, op: 'boot', kind: predefined[name] } : undefined);
        if (first && first.kind !== kind) throw new InputError(`${pre}: ${a.name}[${i}]: ${st.op}: ${name} is ${A[first.kind]} already (${first.actor ? `${first.actor}[${first.step}] ${first.op}` : 'from boot'}), not ${A[kind]}: one name, one thing`);
        made.set(name, [...(made.get(name) ?? []), { actor: a.name, step: i, op: st.op, kind }]);
      }
    });
  }
  for (const a of actors) {
    const kinds = byKind[a.name.slice(0, a.name.indexOf('/'))] ?? [];
    a.steps.forEach((st, i) => {
      const at = `${pre}: ${a.name}[${i}]: ${st.op}`;
      const o = st as unknown as Readonly<Record<string, unknown>>;
      const wanted: [string, readonly NameKind[] | undefined][] = isExpect(st)
        ? Object.keys(st.results).map((n) => [n, undefined])
        : Object.entries(kinds.find((k) => k.op === st.op)?.names ?? {}).flatMap(([f, n]): [string, readonly NameKind[]][] => (!n.defines && typeof o[f] === 'string' ? [[o[f] as string, kindsOf(n.kind)]] : []));
      for (const [name, want] of wanted) {
        const pre0 = predefined[name];
        const by = made.get(name) ?? [];
        const seen = by.filter((x) => x.actor !== a.name || x.step < i);
        if (pre0 === undefined && seen.length === 0) {
          const later = by.find((x) => x.actor === a.name);
          if (later) throw new InputError(`${at}: ${name} is made only later, by step ${later.step} (${later.op}): a step takes what an earlier one made`);
          throw new InputError(`${at}: ${neverMade(name, want?.[0] ?? 'value', a.name)}`);
        }
        const kind = pre0 ?? (seen[0] as Made).kind;
        if (want && !want.includes(kind)) {
          const src = seen[0];
          throw new InputError(`${at}: ${name} is ${A[kind]}${src ? ` (${src.actor}[${src.step}] ${src.op})` : ''}, not ${want.map((k) => A[k]).join(' or ')}`);
        }
      }
    });
  }
}

/** The order constraints: a step waits for the one before it and for its `after`; a cycle never ends. */
function checkOrder<Op extends { readonly op: string }>(pre: string, actors: readonly ScriptActor<Op>[]): void {
  const byName = new Map(actors.map((a) => [a.name, a]));
  const deps = new Map<string, string[]>();
  for (const a of actors) {
    a.steps.forEach((st, i) => {
      const d = i > 0 ? [`${a.name}:${i - 1}`] : [];
      if (isAfter(st)) {
        const other = byName.get(st.actor);
        const at = `${pre}: ${a.name}[${i}]: after ${st.actor}:${st.step}`;
        if (!other) throw new InputError(`${at}: no such actor (the script has ${actors.map((x) => x.name).join(', ')})`);
        if (st.step >= other.steps.length) throw new InputError(`${at}: no such step (${st.actor} has ${other.steps.length})`);
        d.push(`${st.actor}:${st.step}`);
      }
      deps.set(`${a.name}:${i}`, d);
    });
  }
  const state = new Map<string, 1 | 2>();
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === 2) return;
    if (state.get(n) === 1) throw new InputError(`${pre}: the ordering constraints have a cycle: ${[...path.slice(path.indexOf(n)), n].join(' → ')}`);
    state.set(n, 1);
    for (const m of deps.get(n) ?? []) visit(m, [...path, n]);
    state.set(n, 2);
  };
  for (const n of deps.keys()) visit(n, []);
}

/**
 * Runs the actors of a parsed script: declared with the workload (identically in every thread — it allocates
 * the progress words and the lock watches), then each actor's task calls `run`.
 */
export class ScriptRunner<Op extends { readonly op: string }> {
  private readonly progress: number;
  private readonly index: Map<string, number>;
  private readonly watches = new Map<string, LockHolderWatch>();
  /** Every name of the script, and the statics words of its result: [set by actor·step + 1, value]. */
  private readonly names: readonly string[];
  private readonly results: number;

  constructor(
    private readonly k: Kernel,
    readonly model: string,
    readonly actors: readonly ScriptActor<Op>[],
  ) {
    this.progress = k.statics.alloc(actors.length, 'script progress');
    this.index = new Map(actors.map((a, i) => [a.name, i]));
    this.names = [...new Set(actors.flatMap((a) => [...(a.names ?? []).flatMap((n) => [...n.defines, ...n.uses]), ...a.steps.flatMap((st) => (isExpect(st) ? Object.keys(st.results) : []))]))];
    this.results = this.names.length > 0 ? k.statics.alloc(2 * this.names.length, 'script results') : 0;
    for (const a of actors) {
      a.steps.forEach((st, i) => {
        if (!isWhile(st)) return;
        try {
          this.watches.set(`${a.name}:${i}`, watchLockHolders(k, st.task, st.lock));
        } catch (err) {
          if (!(err instanceof RangeError)) throw err;
          throw new InputError(`${model}: steps: ${a.name}[${i}]: while: ${err.message}`);
        }
      });
    }
  }

  /** The statics word (an offset in the statics area) where actor `a` publishes the steps it has finished. */
  progressWord(a: number): number {
    return this.progress + a;
  }

  /** Steps actor `a` has finished (a read of shared memory). */
  done(a: number): number {
    return Atomics.load(this.k.i32, this.k.mem.statics + this.progress + a);
  }

  /** A name's result: the value and the step that set it (`proc/0[1]`), or undefined while no step has. */
  result(name: string): { readonly value: number; readonly by: string } | undefined {
    const at = this.k.mem.statics + this.results + 2 * this.names.indexOf(name);
    const by = Atomics.load(this.k.i32, at);
    if (by === 0) return undefined;
    const a = this.actors[(by - 1) >> 16];
    return { value: Atomics.load(this.k.i32, at + 1), by: `${a?.name ?? '?'}[${(by - 1) & 0xffff}]` };
  }

  private keep(a: number, i: number, names: readonly string[], ret: number): void {
    for (const n of names) {
      const at = this.k.mem.statics + this.results + 2 * this.names.indexOf(n);
      Atomics.store(this.k.i32, at + 1, ret);
      Atomics.store(this.k.i32, at, ((a << 16) | i) + 1);
    }
  }

  /** A name the step takes whose step failed (-errno): the step is skipped, the trace says why. */
  private failedName(names: StepNames | undefined): string | undefined {
    for (const n of names?.uses ?? []) {
      const r = this.result(n);
      if (r && r.value < 0) return `${n} = ${errname(r.value)} (${r.by})`;
    }
    return undefined;
  }

  /** An `expect` step: the results that do not meet their expectation, as report lines. */
  private unmet(st: Extract<OrderStep, { op: 'expect' }>): string[] {
    return Object.entries(st.results).flatMap(([n, e]) => {
      const r = this.result(n);
      if (!r) return [`${n}: expected ${e}, but no step has set it yet`];
      return meets(r.value, e) ? [] : [`${n}: expected ${e}, got ${r.value < 0 ? errname(r.value) : r.value} (set by ${r.by})`];
    });
  }

  /** Actor a's steps in order; `op` does one step of the model and says what it did (for the trace). */
  *run(t: KTask, a: number, op: (t: KTask, s: Op) => KGen<StepOutcome>): KGen {
    const k = this.k;
    const actor = this.actors[a];
    if (!actor) throw new Error(`${this.model}: no scripted actor ${a}`);
    const at = k.mem.statics + this.progress + a;
    // Each step ends with a point that publishes it done; when a `while` comes next, that point arms it too, so
    // that a holder the publication lets go on (its `after`) cannot take and drop the lock unseen.
    const arm = (i: number): number => this.watches.get(`${actor.name}:${i}`)?.taken() ?? 0;
    let armed = 0;
    for (let i = 0; i < actor.steps.length; i++) {
      const st = actor.steps[i] as Op | OrderStep;
      if (isAfter(st)) {
        const other = this.index.get(st.actor) as number;
        const word = k.mem.statics + this.progress + other;
        const need = st.step + 1;
        yield k.point(
          t,
          `${actor.name}[${i}]: after ${st.actor}:${st.step}`,
          () => Atomics.load(k.i32, word) >= need,
          () => {
            Atomics.store(k.i32, at, i + 1);
            armed = arm(i + 1);
          },
          { what: `${st.actor} to finish its step ${st.step}` },
        );
        continue;
      }
      if (isWhile(st)) {
        // The step that follows starts at once: if it takes the same lock it queues behind the holder;
        // otherwise it runs inside the holder's critical section, interleaved as the scheduler chooses.
        const w = this.watches.get(`${actor.name}:${i}`) as LockHolderWatch;
        if (i === 0) armed = w.taken();
        const held = yield* wait_for_lock_holder(
          k,
          t,
          w,
          `${actor.name}[${i}]: while ${st.task} holds ${st.lock}`,
          () => {
            Atomics.store(k.i32, at, i + 1);
            armed = arm(i + 1);
          },
          armed,
        );
        // The scheduler let the holder leave before this actor went on: the trace says so.
        if (!held) yield* k.step(t, `${actor.name}[${i}]: ${st.task} had released ${st.lock} already`, () => undefined);
        continue;
      }
      if (isExpect(st)) {
        const shown = Object.entries(st.results).map(([n, e]) => `${n} ${e}`).join(', ');
        const bad = yield* k.step(t, `${actor.name}[${i}]: expect ${shown}`, () => {
          const u = this.unmet(st);
          Atomics.store(k.i32, at, i + 1);
          armed = arm(i + 1);
          return u;
        });
        if (bad.length > 0) k.report(taskFinding('script', t, t.lastStep, `iommu-sim: script expectation failed: ${actor.name}[${i}]: ${bad[0]}`, bad.slice(1)));
        continue;
      }
      const names = actor.names?.[i];
      // A step whose object a failed step named (the bind that returned -EBUSY) does not run: the trace says so.
      const failed = this.failedName(names);
      const out: StepOutcome = failed ? `${st.op}: skipped: ${failed}` : yield* op(t, st);
      const what = typeof out === 'string' ? out : out.what;
      const ret = typeof out === 'string' ? undefined : out.ret;
      yield* k.step(t, `${actor.name}[${i}]: ${what}`, () => {
        if (ret !== undefined && names) this.keep(a, i, names.defines, ret);
        Atomics.store(k.i32, at, i + 1);
        armed = arm(i + 1);
      });
    }
  }
}

type After = Extract<OrderStep, { op: 'after' }>;
type While = Extract<OrderStep, { op: 'while' }>;
type Expect = Extract<OrderStep, { op: 'expect' }>;

function isAfter<Op extends { readonly op: string }>(s: Op | OrderStep): s is After {
  return s.op === 'after';
}

function isWhile<Op extends { readonly op: string }>(s: Op | OrderStep): s is While {
  return s.op === 'while';
}

export function isExpect<Op extends { readonly op: string }>(s: Op | OrderStep): s is Expect {
  return s.op === 'expect';
}

/**
 * Refuse a `while` whose task is no task of the workload (`comms`: every name a task of it can have; the step
 * names a task or a prefix of one) — otherwise the step would wait for ever and end in a hung-task report.
 */
export function checkWhileTasks<Op extends { readonly op: string }>(model: string, actors: readonly ScriptActor<Op>[], comms: readonly string[]): void {
  for (const a of actors) {
    a.steps.forEach((st, i) => {
      if (!isWhile(st) || comms.some((c) => c.startsWith(st.task))) return;
      const shown = comms.length > 24 ? [...comms.slice(0, 24), `… (${comms.length} in all)`] : comms;
      throw new InputError(`${model}: steps: ${a.name}[${i}]: while: no task is named ${JSON.stringify(st.task)} or a name starting so (the tasks: ${shown.join(', ')})`);
    });
  }
}
