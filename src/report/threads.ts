// The threads that made a finding: the lifelines a reviewer needs to read first, out of the dozen a window of
// the trace holds. They are the lifeline that took the finding's step; the tasks and actors the finding's text
// names (a KASAN report's "Freed by task 9472", a device's "0000:01:00.0", "mm/2"); and, when it names no other
// task, the last other lifeline that touched an object the finding's lifeline had just touched (the `ida_free`
// of the PASID that the finding's `ida_alloc_range` handed out again), read from the arguments of the steps'
// kernel-function names. Each of those shows its last steps up to the finding.
import { ENV, type Finding, MEM, TIMER } from '../runtime/model.js';
import { isTaskId, TASK_BASE } from '../runtime/task.js';
import type { Trace } from '../runtime/trace.js';

/** Steps of its own each chosen lifeline shows, up to the finding. */
export const THREAD_STEPS = 12;
/** Steps of the finding's lifeline whose objects are looked for on the others. */
const OBJECT_STEPS = 20;

export interface Threads {
  /** Lifeline names (as the diagram keys them: Trace.actorName), the finding's first. */
  readonly lanes: readonly string[];
  /** Why each is there, for the reader. */
  readonly why: ReadonlyMap<string, string>;
  /** The steps shown, ascending, the last being the focus. */
  readonly steps: readonly number[];
}

export function findThreads(trace: Trace, finding: Finding | undefined, focus: number): Threads {
  const focusLane = trace.actorName(trace.record(focus).actor);
  const why = new Map<string, string>([[focusLane, finding && finding.step === focus ? 'made the finding' : 'took the last step']]);
  // Tasks and actors: a task the report names shows its last steps however long ago they were (a KASAN
  // report's freer); an actor it names only its steps within the span the threads already cover.
  const tasks: string[] = [focusLane];
  const actors: string[] = [];
  const tookStep = lanesUpTo(trace, focus);
  if (finding) {
    for (const [lane, how] of namedIn(trace, `${finding.where ?? ''}\n${finding.text}`)) {
      if (why.has(lane) || !tookStep.has(lane)) continue;
      why.set(lane, how);
      (isTaskLane(trace, lane) ? tasks : actors).push(lane);
    }
  }
  const steps = new Set<number>([focus]);
  for (const lane of tasks) for (const i of lastSteps(trace, lane, focus, THREAD_STEPS)) steps.add(i);
  if (tasks.length === 1) {
    const other = lastToShare(trace, focus, focusLane);
    if (other && !why.has(other.lane)) {
      why.set(other.lane, `last touched ${other.object} before it, at step ${other.step}: ${other.name}`);
      // Around the touch: a few of its steps before, the rest after, up to the finding.
      const before = lastSteps(trace, other.lane, other.step - 1, AROUND);
      const after = lastSteps(trace, other.lane, focus, Number.POSITIVE_INFINITY, other.step).slice(0, THREAD_STEPS - AROUND);
      for (const i of [...before, ...after]) steps.add(i);
    }
  }
  const start = Math.min(...steps);
  for (const lane of actors) {
    const own = lastSteps(trace, lane, focus, THREAD_STEPS, start);
    if (own.length === 0) why.delete(lane);
    for (const i of own) steps.add(i);
  }
  return { lanes: [...why.keys()], why, steps: [...steps].sort((a, b) => a - b) };
}

/** Steps of its own the thread that raced shows before the one where it touched the shared object. */
const AROUND = 4;

/** The last `n` steps of a lifeline at or before `hi` and at or after `lo`, ascending. */
function lastSteps(trace: Trace, lane: string, hi: number, n: number, lo = 0): number[] {
  const out: number[] = [];
  for (let i = hi; i >= lo && out.length < n; i--) if (trace.actorName(trace.record(i).actor) === lane) out.push(i);
  return out.reverse();
}

function lanesUpTo(trace: Trace, focus: number): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i <= focus; i++) out.add(trace.actorName(trace.record(i).actor));
  return out;
}

function isTaskLane(trace: Trace, lane: string): boolean {
  for (const [id, name] of trace.taskNames) if (name === lane && isTaskId(id)) return true;
  return false;
}

/**
 * Lifelines the text names: a task by the pid a kernel report prints (`by task proc0/1`, `Freed by task 9472`,
 * `pid: 7088`, `[comm:pid]`), an actor by its name or, for a device or a unit, the part after its kind.
 */
function namedIn(trace: Trace, text: string): [string, string][] {
  const out: [string, string][] = [];
  // A bare pid only after the words a report puts before one; comm/pid and [comm:pid] only when the comm is the
  // task's (so `mm/2` or a BDF's `0000:01` never reads as a pid).
  for (const m of text.matchAll(/\b(?:task|pid:?) (\d+)\b|\b([A-Za-z_][\w.-]*)\/(\d+)\b|\[([\w.-]+):(\d+)\]/g)) {
    const pid = Number(m[1] ?? m[3] ?? m[5]);
    const comm = m[2] ?? m[4];
    const name = trace.taskNames.get(TASK_BASE + pid);
    if (name === undefined || (comm !== undefined && name !== comm && name !== `${comm}/${pid}`)) continue;
    out.push([name, `named by the report (${m[0]})`]);
  }
  for (const name of trace.actorNames) {
    const tail = name.slice(name.indexOf('/') + 1);
    const key = contains(text, name) ? name : tail.length >= 4 && /\D/.test(tail) && contains(text, tail) ? tail : undefined;
    if (key !== undefined) out.push([name, `named by the report (${key})`]);
  }
  return out;
}

function contains(text: string, word: string): boolean {
  let at = text.indexOf(word);
  while (at >= 0) {
    const after = text[at + word.length] ?? ' ';
    const before = text[at - 1] ?? ' ';
    if (!/[\w/]/.test(before) && !/\w/.test(after)) return true;
    at = text.indexOf(word, at + 1);
  }
  return false;
}

/**
 * What a step's name says it touched: the arguments of a step named like a call, `ida_free(iommu0->pasid_ida, 1)`,
 * that name something, and any PCI device it names by its BDF (`0000:01:00.0: stop PASID 2`).
 */
export function objectsOf(name: string): string[] {
  const out = name.match(/\b[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b/g) ?? [];
  const m = /^[\w.]+\((.*)\)$/.exec(name);
  if (!m?.[1]) return out;
  const args = m[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => /[A-Za-z_]/.test(s) && !/^(GFP_|true$|false$|NULL$)/.test(s));
  return [...out, ...args];
}

/** The last step before `focus`, on another actor or task, that named an object the focus lifeline just named. */
function lastToShare(
  trace: Trace,
  focus: number,
  focusLane: string,
): { lane: string; name: string; step: number; object: string } | undefined {
  const objects = new Set<string>();
  let seen = 0;
  for (let i = focus; i >= 0 && seen < OBJECT_STEPS; i--) {
    const r = trace.record(i);
    if (trace.actorName(r.actor) !== focusLane) continue;
    seen++;
    for (const o of objectsOf(trace.eventName(r.event))) objects.add(o);
  }
  for (let i = focus - 1; i >= 0; i--) {
    const r = trace.record(i);
    const lane = trace.actorName(r.actor);
    if (lane === focusLane || r.actor === MEM || r.actor === ENV || r.actor === TIMER) continue;
    const object = objectsOf(trace.eventName(r.event)).find((o) => objects.has(o));
    if (object !== undefined) return { lane, name: trace.eventName(r.event), step: i, object };
  }
  return undefined;
}
