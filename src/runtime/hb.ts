// Happens-before of a threaded run and its canonical linearisation (LEAP, Huang/Liu/Zhang FSE 2010). Each
// worker logs, beside its trace records, the shared objects (memory words) each of its steps touched under
// their lock stripes, or HB_ALL for a step that took the coarse fallback. A step happens before another when
// they are steps of one actor or task in program order, when one sent the message the other handled (or
// spawned the task taking it), or when both touched one object — in that object's access order, which is
// ticket order since the ticket is taken under the object's lock. Any order of the steps consistent with
// these edges is the same run: the canonical one (Kahn's algorithm, ties broken by the lowest (thread,
// program index)) numbers the steps, the task ids made from them and the messages' send steps, so that the
// trace and its hash do not depend on how the threads' timing interleaved unrelated steps.
import { type Footprint, isRead, type UnorderedWords, wordOf } from './footprint.js';
import { MEM, TASK } from './model.js';
import { TASK_BASE } from './task.js';
import { REC, REC_INTS } from './trace.js';

/** The object of a step that took the coarse fallback lock: it is ordered with every other locked step. */
export const HB_ALL = -1;
/** Tasks spawned in one step (task.ts PER_STEP): a task id is TASK_BASE + PER_STEP × (step + 1) + index. */
const PER_STEP = 16;

/** Append-only (ticket, object) pairs: the objects each step of one worker touched. */
export class ObjectLog {
  private data: Int32Array;
  private n = 0;

  constructor(initialPairs = 1024) {
    this.data = new Int32Array(Math.max(1, initialPairs) * 2);
  }

  push(ticket: number, object: number): void {
    if (this.n + 2 > this.data.length) {
      const bigger = new Int32Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = ticket;
    this.data[this.n++] = object;
  }

  /**
   * A step's footprint as locked (undefined: the fallback, HB_ALL), its entries as they are — reads stay reads —
   * but for the words nothing is ordered by (`unordered`: statistics), which give no edge.
   */
  pushAll(ticket: number, footprint: Footprint | undefined, unordered?: UnorderedWords): void {
    if (footprint === undefined) this.push(ticket, HB_ALL);
    else for (const e of footprint) if (!unordered?.has(e)) this.push(ticket, e);
  }

  take(): Int32Array {
    return this.data.slice(0, this.n);
  }
}

export interface Canonical {
  /** The records in canonical order, renumbered (steps, send steps, task ids). */
  readonly records: Int32Array;
  readonly times: Float64Array;
  /** Object edges (from, to, object) in canonical step numbers: each object's access order. */
  readonly hb: Int32Array;
  /** Ticket → canonical step. */
  readonly canonOf: Int32Array;
  /** A task id of the run → the id the canonical numbering gives it. */
  readonly taskId: (id: number) => number;
}

/** Edges as parallel arrays; `object` is -2 for program-order, message and spawn edges. */
interface Edges {
  from: number[];
  to: number[];
  object: number[];
}
const NOT_OBJECT = -2;

/** The step a task was spawned in (-1: an initial task), from its id (task.ts). */
function spawnStepOf(id: number): number {
  return Math.floor((id - TASK_BASE) / PER_STEP) - 1;
}

/** The thread a record is a step of: its actor or task (an atomic operation's: the one that asked for it). */
function threadOf(records: Int32Array, i: number): number {
  const o = i * REC_INTS;
  const actor = records[o + REC.actor] as number;
  return actor === MEM ? (records[o + REC.sender] as number) : actor;
}

/** Per ticket, its objects (CSR: objects[start[i] .. start[i+1])), from the workers' (ticket, object) pairs. */
function objectsByTicket(n: number, logs: readonly Int32Array[]): { start: Int32Array; objects: Int32Array } {
  const start = new Int32Array(n + 1);
  for (const l of logs) for (let o = 0; o < l.length; o += 2) start[(l[o] as number) + 1]++;
  for (let i = 0; i < n; i++) start[i + 1] += start[i] as number;
  const fill = start.slice(0, n);
  const objects = new Int32Array(start[n] as number);
  for (const l of logs) {
    for (let o = 0; o < l.length; o += 2) {
      const t = l[o] as number;
      objects[fill[t]++] = l[o + 1] as number;
    }
  }
  return { start, objects };
}

/** Every happens-before edge of the run, by ticket, and each step's program index within its thread. */
export function happensBefore(records: Int32Array, logs: readonly Int32Array[]): { edges: Edges; program: Int32Array } {
  const n = records.length / REC_INTS;
  const edges: Edges = { from: [], to: [], object: [] };
  const add = (from: number, to: number, object: number): void => {
    edges.from.push(from);
    edges.to.push(to);
    edges.object.push(object);
  };
  const program = new Int32Array(n);
  const lastOf = new Map<number, number>();
  const count = new Map<number, number>();
  const { start, objects } = objectsByTicket(n, logs);
  // Per object: its last write, and the steps that read it since (a write comes after each of them; reads of
  // one value are not ordered among themselves).
  const lastWrite = new Map<number, number>();
  const readsSince = new Map<number, number[]>();
  let lastFallback = -1;
  let sinceFallback: number[] = [];
  for (let i = 0; i < n; i++) {
    const o = i * REC_INTS;
    const th = threadOf(records, i);
    const prev = lastOf.get(th);
    if (prev !== undefined) add(prev, i, NOT_OBJECT);
    else if (th >= TASK_BASE && spawnStepOf(th) >= 0) add(spawnStepOf(th), i, NOT_OBJECT);
    lastOf.set(th, i);
    program[i] = count.get(th) ?? 0;
    count.set(th, (program[i] as number) + 1);
    const sendStep = records[o + REC.sendStep] as number;
    if (sendStep >= 0 && (records[o + REC.sender] as number) !== TASK) add(sendStep, i, NOT_OBJECT);
    for (let k = start[i] as number; k < (start[i + 1] as number); k++) {
      const obj = objects[k] as number;
      if (obj === HB_ALL) {
        if (lastFallback >= 0) add(lastFallback, i, HB_ALL);
        for (const t of sinceFallback) if (t !== i) add(t, i, HB_ALL);
        sinceFallback = [];
        lastFallback = i;
        continue;
      }
      const word = wordOf(obj);
      const written = lastWrite.get(word) ?? -1;
      const before = Math.max(written, lastFallback);
      if (before >= 0 && before !== i) add(before, i, before === lastFallback && written !== before ? HB_ALL : word);
      const readers = readsSince.get(word);
      if (isRead(obj)) {
        if (readers) readers.push(i);
        else readsSince.set(word, [i]);
      } else {
        // Reads before the last fallback step are ordered before it already.
        if (readers) for (const r of readers) if (r !== i && r > lastFallback) add(r, i, word);
        readsSince.delete(word);
        lastWrite.set(word, i);
      }
      if (sinceFallback[sinceFallback.length - 1] !== i) sinceFallback.push(i);
    }
  }
  return { edges, program };
}

/** The canonical linearisation of a threaded run's records (ticket order) and the objects its steps touched. */
export function canonicalise(records: Int32Array, times: Float64Array, logs: readonly Int32Array[]): Canonical {
  const n = records.length / REC_INTS;
  const { edges, program } = happensBefore(records, logs);
  const m = edges.from.length;
  const indeg = new Int32Array(n);
  const succStart = new Int32Array(n + 1);
  for (let e = 0; e < m; e++) {
    indeg[edges.to[e] as number]++;
    succStart[(edges.from[e] as number) + 1]++;
  }
  for (let i = 0; i < n; i++) succStart[i + 1] += succStart[i] as number;
  const fill = succStart.slice(0, n);
  const succ = new Int32Array(m);
  for (let e = 0; e < m; e++) succ[fill[edges.from[e] as number]++] = edges.to[e] as number;

  const canonOf = new Int32Array(n).fill(-1);
  const taskId = (id: number): number => {
    if (id < TASK_BASE) return id;
    const s = spawnStepOf(id);
    if (s < 0) return id;
    const c = canonOf[s] as number;
    if (c < 0) throw new Error(`happens-before: task ${id} runs before the step that spawned it`);
    return TASK_BASE + (c + 1) * PER_STEP + ((id - TASK_BASE) % PER_STEP);
  };
  // Ready steps, least (canonical thread, program index) first.
  const key = new Float64Array(n);
  const heap = new MinHeap((a, b) => (key[a] as number) - (key[b] as number) || (program[a] as number) - (program[b] as number));
  const ready = (i: number): void => {
    key[i] = taskId(threadOf(records, i));
    heap.push(i);
  };
  for (let i = 0; i < n; i++) if (indeg[i] === 0) ready(i);
  const order = new Int32Array(n);
  let c = 0;
  while (heap.size > 0) {
    const i = heap.pop();
    canonOf[i] = c;
    order[c++] = i;
    for (let k = succStart[i] as number; k < (succStart[i + 1] as number); k++) {
      const j = succ[k] as number;
      if (--indeg[j] === 0) ready(j);
    }
  }
  if (c !== n) throw new Error(`happens-before: a cycle among ${n - c} steps (a runtime bug: tickets are taken in real time)`);
  return { records: renumber(records, order, canonOf, taskId), times: permute(times, order), hb: objectEdges(edges, canonOf), canonOf, taskId };
}

function renumber(records: Int32Array, order: Int32Array, canonOf: Int32Array, taskId: (id: number) => number): Int32Array {
  const out = new Int32Array(records.length);
  for (let c = 0; c < order.length; c++) {
    const src = (order[c] as number) * REC_INTS;
    const dst = c * REC_INTS;
    const sendStep = records[src + REC.sendStep] as number;
    out[dst + REC.step] = c;
    out[dst + REC.actor] = taskId(records[src + REC.actor] as number);
    out[dst + REC.sender] = taskId(records[src + REC.sender] as number);
    out[dst + REC.sendStep] = sendStep >= 0 ? (canonOf[sendStep] as number) : sendStep;
    out[dst + REC.event] = records[src + REC.event] as number;
    out[dst + REC.outcome] = records[src + REC.outcome] as number;
  }
  return out;
}

function permute(times: Float64Array, order: Int32Array): Float64Array {
  if (times.length !== order.length) return times;
  const out = new Float64Array(times.length);
  for (let c = 0; c < order.length; c++) out[c] = times[order[c] as number] as number;
  return out;
}

/** The object edges as (from, to, object) triples in canonical numbering, ordered by their head. */
function objectEdges(edges: Edges, canonOf: Int32Array): Int32Array {
  const out: number[] = [];
  for (let e = 0; e < edges.from.length; e++) {
    const obj = edges.object[e] as number;
    if (obj !== NOT_OBJECT) out.push(canonOf[edges.from[e] as number] as number, canonOf[edges.to[e] as number] as number, obj);
  }
  const triples = Array.from({ length: out.length / 3 }, (_, k) => k);
  triples.sort((a, b) => (out[a * 3 + 1] as number) - (out[b * 3 + 1] as number) || (out[a * 3] as number) - (out[b * 3] as number));
  const sorted = new Int32Array(out.length);
  for (let k = 0; k < triples.length; k++) {
    const t = triples[k] as number;
    sorted.set(out.slice(t * 3, t * 3 + 3), k * 3);
  }
  return sorted;
}

/** A binary min-heap of step indices. */
class MinHeap {
  private readonly a: number[] = [];

  constructor(private readonly less: (x: number, y: number) => number) {}

  get size(): number {
    return this.a.length;
  }

  push(x: number): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[i] as number, a[p] as number) >= 0) break;
      [a[i], a[p]] = [a[p] as number, a[i] as number];
      i = p;
    }
  }

  pop(): number {
    const a = this.a;
    const top = a[0] as number;
    const last = a.pop() as number;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l] as number, a[m] as number) < 0) m = l;
        if (r < a.length && this.less(a[r] as number, a[m] as number) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as number, a[i] as number];
        i = m;
      }
    }
    return top;
  }
}
