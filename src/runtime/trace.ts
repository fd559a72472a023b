// The trace of a run: one record per scheduling point, in schedule order. Both runtimes produce the same
// records for the same interleaving, so the trace hash is the proof that a replay reproduced a recording.
// Exports to text; the Perfetto export is src/report/perfetto.ts.
import { digestInts, fnv1a } from './hash.js';
import { type AtomicOp, MEM, pseudoName } from './model.js';

/** Int32 fields of one record. */
export const REC = { step: 0, actor: 1, sender: 2, sendStep: 3, event: 4, outcome: 5 } as const;
export const REC_INTS = 6;

export interface TraceRecord {
  readonly step: number;
  /** The actor that took the step (MEM for an atomic operation). */
  readonly actor: number;
  /** Who sent what it handled (ENV, TIMER, MEM or an actor). */
  readonly sender: number;
  /** The step during which the message was sent (-1: before the run started). */
  readonly sendStep: number;
  /** fnv1a of the event type (or of the atomic op name). */
  readonly event: number;
  /** fnv1a of the actor's state after the step, or the old value an atomic op returned. */
  readonly outcome: number;
}

/** Append-only Int32 record log that grows by doubling. */
export class TraceLog {
  private data: Int32Array;
  private n = 0;

  constructor(initialRecords = 1024) {
    this.data = new Int32Array(initialRecords * REC_INTS);
  }

  get length(): number {
    return this.n;
  }

  push(step: number, actor: number, sender: number, sendStep: number, event: number, outcome: number): void {
    let d = this.data;
    const o = this.n * REC_INTS;
    if (o + REC_INTS > d.length) {
      const bigger = new Int32Array(d.length * 2);
      bigger.set(d);
      this.data = d = bigger;
    }
    d[o] = step;
    d[o + 1] = actor;
    d[o + 2] = sender;
    d[o + 3] = sendStep;
    d[o + 4] = event;
    d[o + 5] = outcome;
    this.n++;
  }

  /** The records, trimmed (a copy the caller may transfer). */
  take(): Int32Array {
    return this.data.slice(0, this.n * REC_INTS);
  }

  /** Empty it, keeping its buffer (for the next execution of an exploration). */
  reset(): void {
    this.n = 0;
  }
}

/** Append-only log of step times (whole µs), one per record of a TraceLog kept beside it. */
export class TimeLog {
  private data: Float64Array;
  private n = 0;

  constructor(initial = 1024) {
    this.data = new Float64Array(Math.max(1, initial));
  }

  push(us: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = us;
  }

  take(): Float64Array {
    return this.data.slice(0, this.n);
  }
}

/**
 * A happens-before edge of a threaded run: step `from` touched `object` (a shared-memory word; HB_ALL, -1,
 * for a step that took the coarse fallback lock) before step `to` did. Each object's access order; program
 * order and messages (sendStep) are in the records themselves.
 */
export interface HbEdge {
  readonly from: number;
  readonly to: number;
  readonly object: number;
}

export class Trace {
  constructor(
    /** REC_INTS ints per record, ordered by step, steps dense from 0. */
    readonly records: Int32Array,
    readonly actorNames: readonly string[],
    /** fnv1a → name, for events and atomic ops. */
    readonly eventNames: ReadonlyMap<number, string>,
    /** Task id → name, for the tasks that took steps. */
    readonly taskNames: ReadonlyMap<number, string> = new Map(),
    /**
     * Threaded runs: the time of each step in whole µs (the clock its worker showed the model during it). Not
     * part of the hash: a replay is handed these times, it does not produce them.
     */
    readonly times?: Float64Array,
    /** Threaded runs: each object's access order as (from, to, object) triples (hb.ts). Not part of the hash. */
    readonly hbTriples?: Int32Array,
  ) {}

  get length(): number {
    return this.records.length / REC_INTS;
  }

  /** The happens-before edges between steps on one object (threaded recordings and their replays). */
  get hb(): readonly HbEdge[] {
    const t = this.hbTriples;
    if (!t) return [];
    const out: HbEdge[] = [];
    for (let o = 0; o + 2 < t.length; o += 3) out.push({ from: t[o] as number, to: t[o + 1] as number, object: t[o + 2] as number });
    return out;
  }

  /** Each step's incoming object edges, as toText shows them. */
  private hbByHead(): Map<number, string[]> {
    const m = new Map<number, string[]>();
    for (const e of this.hb) {
      const l = m.get(e.to) ?? [];
      l.push(e.object < 0 ? `after ${e.from} (coarse lock)` : `after ${e.from} on [${e.object}]`);
      m.set(e.to, l);
    }
    return m;
  }

  /** The same trace, with the recording's happens-before edges (a replay's trace shows its recording's). */
  withHb(hb: Int32Array): Trace {
    return new Trace(this.records, this.actorNames, this.eventNames, this.taskNames, this.times, hb);
  }

  record(i: number): TraceRecord {
    const r = this.records;
    const o = i * REC_INTS;
    return {
      step: r[o] as number,
      actor: r[o + 1] as number,
      sender: r[o + 2] as number,
      sendStep: r[o + 3] as number,
      event: r[o + 4] as number,
      outcome: r[o + 5] as number,
    };
  }

  /** Same workload + same interleaving ⇒ same hash, in either runtime. */
  hash(): string {
    return digestInts(this.records);
  }

  actorName(id: number): string {
    if (id < 0) return pseudoName(id);
    return this.actorNames[id] ?? this.taskNames.get(id) ?? `#${id}`;
  }

  eventName(h: number): string {
    return this.eventNames.get(h) ?? `event#${(h >>> 0).toString(16)}`;
  }

  /**
   * One line a step: `step actor <- sender event`; a threaded recording's steps also say which earlier steps
   * touched the same objects just before them (`after 12 on [345]`, `after 12 (coarse lock)`).
   */
  toText(limit = Number.POSITIVE_INFINITY): string {
    const lines: string[] = [];
    const n = Math.min(this.length, limit);
    const after = this.hbByHead();
    for (let i = 0; i < n; i++) {
      const r = this.record(i);
      const what =
        r.actor === MEM ? `${this.eventName(r.event)} -> old ${r.outcome}` : `${this.eventName(r.event)}`;
      const from = r.sendStep >= 0 ? ` (sent at ${r.sendStep})` : '';
      const hb = after.get(i);
      lines.push(`${String(r.step).padStart(7)}  ${this.actorName(r.actor)} <- ${this.actorName(r.sender)}: ${what}${from}${hb ? `  ${hb.join(', ')}` : ''}`);
    }
    if (n < this.length) lines.push(`... ${this.length - n} more steps`);
    return lines.join('\n');
  }
}

/** Name table builder shared by the runtimes. */
const OP_CODES: Readonly<Record<AtomicOp, number>> = { load: 0, store: 1, add: 2, xchg: 3, cas: 4 };

export class EventNames {
  readonly map = new Map<number, string>();
  private readonly byName = new Map<string, number>();
  private readonly atomics = new Map<number, string>();

  /** `op[index]`, an atomic operation's name in a trace: one string per (op, index), made once. */
  atomic(op: AtomicOp, index: number): string {
    if (!Number.isInteger(index) || index < 0) return `${op}[${index}]`;
    const key = index * 8 + OP_CODES[op];
    let s = this.atomics.get(key);
    if (s === undefined) {
      s = `${op}[${index}]`;
      this.atomics.set(key, s);
    }
    return s;
  }

  hash(name: string): number {
    let h = this.byName.get(name);
    if (h === undefined) {
      h = fnv1a(name);
      this.byName.set(name, h);
      this.map.set(h, name);
    }
    return h;
  }
}
