// A run's trace as Chrome/Perfetto trace-event JSON (ui.perfetto.dev opens it): a named track per kernel task
// (comm/pid, as the kernel's reports name it) and per actor, grouped as processes by the actor they belong to (an
// IOMMU with its threads, a device, a process with its syscalls' tasks; `kernel` for what the run itself started),
// a slice per step, lock holds as slices of their own, an arrow per message, the findings as instant events with
// their text, and — when the trace carries happens-before edges — the edges that lead to the finding as arrows.
// Time is the step number (10 µs a step), which is what a schedule is ordered by.
import { ENV, type Finding, MEM, TASK, TIMER, pseudoName } from '../runtime/model.js';
import { isTaskId } from '../runtime/task.js';
import type { HbEdge, Trace } from '../runtime/trace.js';
import { groupName, lockHolds, ownerOf, trackName } from './tracks.js';

export interface PerfettoEvent {
  name: string;
  ph: 'M' | 'X' | 's' | 'f' | 'i' | 'b' | 'e';
  pid: number;
  tid: number;
  cat?: string;
  ts?: number;
  dur?: number;
  id?: number;
  bp?: 'e';
  /** Instant events: t(hread) or g(lobal). */
  s?: 't' | 'g';
  args?: Record<string, string | number>;
}

export interface PerfettoTrace {
  traceEvents: PerfettoEvent[];
  displayTimeUnit: 'ns' | 'ms';
}

const STEP_US = 10;
const SLICE_US = 8;
const ts = (step: number): number => (step + 1) * STEP_US;

interface Track {
  readonly pid: number;
  readonly tid: number;
}

/**
 * `actorKinds`: each actor's kind by index (its machine's id: iommu, dev, mm, process), so a track reads
 * `iommu dmar0` or `process proc/0`; without it an actor's track reads `actor dmar0`.
 */
export function toPerfetto(trace: Trace, title: string, findings: readonly Finding[] = [], actorKinds: readonly string[] = []): PerfettoTrace {
  const events: PerfettoEvent[] = [];
  const tracks = trackTable(trace, title, events, (id) => actorLabel(trace, id, actorKinds[id]));
  const track = tracks.of;
  events.push({ name: 'initial messages', cat: 'env', ph: 'X', ts: 0, dur: SLICE_US, ...track(ENV), args: {} });
  let flow = 0;
  for (let i = 0; i < trace.length; i++) {
    const r = trace.record(i);
    const args: Record<string, string | number> = { step: r.step };
    if (r.sender !== TASK) args.from = trace.actorName(r.sender);
    if (r.actor === MEM) args.old = r.outcome;
    events.push({
      name: trace.eventName(r.event),
      cat: r.actor === MEM ? 'atomic' : isTaskId(r.actor) ? 'task' : 'event',
      ph: 'X',
      ts: ts(r.step),
      dur: SLICE_US,
      ...track(r.actor),
      args,
    });
    // A task's own step and a timer firing were sent by no one; everything else was sent, and gets an arrow.
    if (r.sender === TASK || r.sender === TIMER) continue;
    const id = ++flow;
    const from = r.sendStep >= 0 ? r.sender : ENV;
    const cat = r.actor === MEM || r.sender === MEM ? 'atomic' : 'message';
    events.push({ name: 'message', cat, ph: 's', id, ts: r.sendStep >= 0 ? ts(r.sendStep) + SLICE_US / 2 : SLICE_US / 2, ...track(from) });
    events.push({ name: 'message', cat, ph: 'f', bp: 'e', id, ts: ts(r.step) + SLICE_US / 2, ...track(r.actor) });
  }
  for (const h of lockHolds(trace)) {
    const id = ++flow;
    const { pid, tid } = track(h.task);
    const args = { lock: h.lock, task: trackName(trace, h.task), ...(h.released ? {} : { released: 'not in the trace' }) };
    events.push({ name: `holds ${h.lock}`, cat: 'lock', ph: 'b', id, ts: ts(h.from), pid, tid, args });
    events.push({ name: `holds ${h.lock}`, cat: 'lock', ph: 'e', id, ts: ts(h.to) + SLICE_US, pid, tid });
  }
  for (const f of findings) events.push(findingEvent(trace, f, tracks));
  for (const e of findingHb(trace, findings[0])) {
    const id = ++flow;
    const name = e.object < 0 ? 'happens-before: the coarse lock' : `happens-before: [${e.object}]`;
    events.push({ name, cat: 'hb', ph: 's', id, ts: ts(e.from) + SLICE_US / 2, ...track(trace.record(e.from).actor) });
    events.push({ name, cat: 'hb', ph: 'f', bp: 'e', id, ts: ts(e.to) + SLICE_US / 2, ...track(trace.record(e.to).actor) });
  }
  return { traceEvents: events, displayTimeUnit: 'ns' };
}

/**
 * Tracks and their metadata: a process (pid) per owning actor, `kernel` for the run's own tasks and for
 * `env`, `mem` and `timer`; a thread (tid) per actor and per task, named; every track that any event uses is
 * declared here first, so each has a name.
 */
/** An actor by kind and id: `iommu dmar0`, `process proc/0`; a name that starts with its kind stays as it is. */
function actorLabel(trace: Trace, id: number, kind: string | undefined): string {
  const name = trace.actorName(id);
  if (kind === undefined || kind === '') return `actor ${name}`;
  return name.startsWith(`${kind}/`) ? name : `${kind} ${name}`;
}

function trackTable(trace: Trace, title: string, events: PerfettoEvent[], actor: (id: number) => string) {
  const pids = new Map<number, number>();
  const tracks = new Map<number, Track>();
  const pidFor = (owner: number): number => {
    let pid = pids.get(owner);
    if (pid === undefined) {
      pid = pids.size + 1;
      pids.set(owner, pid);
      const name = owner === ENV ? `kernel — ${title}` : owner >= 0 ? actor(owner) : groupName(trace, owner);
      events.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name } });
      events.push({ name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } });
    }
    return pid;
  };
  const add = (id: number): Track => {
    let t = tracks.get(id);
    if (t) return t;
    const pid = pidFor(id < 0 ? ENV : ownerOf(trace, id));
    // Actors keep their index (+1: tid 0 is the process's own), tasks their id, the pseudo-actors a tid past both.
    t = { pid, tid: id >= 0 ? (isTaskId(id) ? id : id + 1) : 1_000 - id };
    tracks.set(id, t);
    const name = id < 0 ? pseudoName(id) : isTaskId(id) ? trackName(trace, id) : actor(id);
    events.push({ name: 'thread_name', ph: 'M', pid, tid: t.tid, args: { name } });
    return t;
  };
  add(ENV);
  for (let i = 0; i < trace.actorNames.length; i++) add(i);
  for (let i = 0; i < trace.length; i++) {
    const r = trace.record(i);
    add(r.actor);
    if (r.sender >= 0) add(r.sender);
    else if (r.sender === MEM || r.sender === TIMER) add(r.sender);
  }
  return { of: add };
}

/** The finding at its step on the track that took it; one made at the end of the run on the task it names. */
function findingEvent(trace: Trace, f: Finding, tracks: { of(id: number): Track }): PerfettoEvent {
  const args = { kind: f.kind, text: f.text, ...(f.where ? { where: f.where } : {}) };
  if (f.step >= 0 && f.step < trace.length) {
    return { name: f.title, cat: 'finding', ph: 'i', s: 't', ts: ts(f.step) + SLICE_US, ...tracks.of(trace.record(f.step).actor), args };
  }
  const named = f.where === undefined ? undefined : taskNamed(trace, f.where);
  const at = ts(trace.length);
  return named === undefined
    ? { name: f.title, cat: 'finding', ph: 'i', s: 'g', ts: at, ...tracks.of(ENV), args }
    : { name: f.title, cat: 'finding', ph: 'i', s: 't', ts: at, ...tracks.of(named), args };
}

function taskNamed(trace: Trace, where: string): number | undefined {
  for (let i = 0; i < trace.length; i++) {
    const id = trace.record(i).actor;
    if (isTaskId(id) && trackName(trace, id) === where) return id;
  }
  return undefined;
}

/**
 * The happens-before edges the finding's step depends on, when the trace has them (the threaded runtime's
 * per-object ordering): walking back from the finding, an edge counts when it ends at or before a step already
 * reached on its track, and then reaches its start.
 */
function findingHb(trace: Trace, f: Finding | undefined): HbEdge[] {
  const hb = trace.hb;
  if (hb.length === 0 || !f || f.step < 0 || f.step >= trace.length) return [];
  const reached = new Map<number, number>([[trace.record(f.step).actor, f.step]]);
  const out: HbEdge[] = [];
  for (const e of [...hb].sort((a, b) => b.to - a.to)) {
    if (e.to > f.step || e.from < 0 || e.from >= trace.length) continue;
    const toTrack = trace.record(e.to).actor;
    if ((reached.get(toTrack) ?? -1) < e.to) continue;
    out.push(e);
    const fromTrack = trace.record(e.from).actor;
    reached.set(fromTrack, Math.max(reached.get(fromTrack) ?? -1, e.from));
  }
  return out.reverse();
}
