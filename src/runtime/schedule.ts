// A recorded schedule: the steps of one run (receiver, sender and event of each), what it was a run of, how it
// ended and — for a threaded run — the time each step was taken at and its happens-before edges on shared
// objects (each object's access order, in the canonical numbering of hb.ts), so that a replay is that run
// again. The
// file is msgpack; a file that is not one, of another version, truncated or damaged is refused (InputError)
// with what is wrong, before anything runs.
import { readFileSync, writeFileSync } from 'node:fs';
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { describe, InputError } from './errors.js';
import type { ModelEvent, Wire } from './model.js';
import { REC, REC_INTS, type Trace } from './trace.js';

export const SCHEDULE_FORMAT = 'iommu-sim-schedule';
/**
 * 2: the run's end (quiescent or halted at a finding) and outcome, and a threaded run's step times. A version
 * 1 file lacks what its replay needs to be exact: it is refused, and recorded again.
 */
export const SCHEDULE_VERSION = 2;

export interface ScheduleMeta {
  readonly workload: { readonly name: string; readonly params: Readonly<Record<string, Wire>> };
  readonly seed: number;
  /** How it was recorded. */
  readonly runtime: 'threaded' | 'deterministic';
  readonly strategy: string;
  readonly placement?: string;
  readonly workers?: number;
  readonly traceHash: string;
  readonly actors: readonly string[];
  /** Messages the run sent from ENV when they were not the workload's own initial messages. */
  readonly initial?: readonly { readonly to: number; readonly event: ModelEvent }[];
  /** The run went on past its first finding; a replay must too, or it stops short of the recorded steps. */
  readonly keepGoing?: boolean;
  /**
   * How the run ended: `quiescent` when nothing was left to do (a replay must end there too, with the end-of-run
   * checks), `halted` when it stopped at a finding — a threaded run's other workers may have taken steps
   * after it before they saw the stop: a replay takes every recorded step, then stops where the run stopped.
   */
  readonly end: 'quiescent' | 'halted';
  /** What the run found: the kinds of its findings (each once, in order) and whether the workload's check held. */
  readonly outcome: RecordedOutcome;
}

export interface RecordedOutcome {
  readonly kinds: readonly string[];
  readonly checkOk: boolean;
}

/** The outcome a replay must reproduce, from a run's findings and check. */
export function outcomeOf(findings: readonly { readonly kind: string }[], checkOk: boolean): RecordedOutcome {
  return { kinds: [...new Set(findings.map((f) => f.kind))], checkOk };
}

export function describeOutcome(o: RecordedOutcome): string {
  const found = o.kinds.length > 0 ? `findings of kind ${o.kinds.join(', ')}` : 'no finding';
  return `${found}, ${o.checkOk ? 'its check held' : 'its check failed'}`;
}

const wire: z.ZodType<Wire> = z.json();
const metaSchema = z.object({
  workload: z.object({ name: z.string().min(1), params: z.record(z.string(), wire) }),
  seed: z.number().int(),
  runtime: z.enum(['threaded', 'deterministic']),
  strategy: z.string(),
  placement: z.string().optional(),
  workers: z.number().int().min(1).optional(),
  traceHash: z.string(),
  actors: z.array(z.string()),
  initial: z.array(z.object({ to: z.number().int(), event: z.object({ type: z.string() }).catchall(wire) })).optional(),
  keepGoing: z.boolean().optional(),
  end: z.enum(['quiescent', 'halted']),
  outcome: z.object({ kinds: z.array(z.string()), checkOk: z.boolean() }),
});
const fileSchema = z.object({
  format: z.literal(SCHEDULE_FORMAT),
  version: z.literal(SCHEDULE_VERSION),
  meta: metaSchema,
  events: z.array(z.tuple([z.number().int(), z.string()])),
  steps: z.instanceof(Uint8Array),
  /** Threaded recordings: each step's time in µs, as zigzag varint deltas. */
  times: z.instanceof(Uint8Array).optional(),
  /** Threaded recordings: the object edges (from, to, object), varints (the object zigzag: -1 is HB_ALL). */
  hb: z.instanceof(Uint8Array).optional(),
});

export class Schedule {
  constructor(
    readonly meta: ScheduleMeta,
    private readonly receivers: Int32Array,
    private readonly senders: Int32Array,
    private readonly events: Int32Array,
    private readonly eventNames: ReadonlyMap<number, string>,
    /** Threaded recordings: the time of each step, in whole µs (the worker's clock while it took the step). */
    readonly times?: Float64Array,
    /** Threaded recordings: each object's access order as (from, to, object) triples (Trace.hbTriples). */
    readonly hb?: Int32Array,
  ) {
    if (times && times.length !== receivers.length) throw new Error(`schedule: ${times.length} step times for ${receivers.length} steps`);
  }

  static fromTrace(trace: Trace, meta: ScheduleMeta): Schedule {
    const n = trace.length;
    const r = new Int32Array(n);
    const s = new Int32Array(n);
    const e = new Int32Array(n);
    const rec = trace.records;
    for (let i = 0; i < n; i++) {
      const o = i * REC_INTS;
      r[i] = rec[o + REC.actor] as number;
      s[i] = rec[o + REC.sender] as number;
      e[i] = rec[o + REC.event] as number;
    }
    return new Schedule(meta, r, s, e, trace.eventNames, trace.times, trace.hbTriples);
  }

  get length(): number {
    return this.receivers.length;
  }
  receiver(i: number): number {
    return this.receivers[i] as number;
  }
  sender(i: number): number {
    return this.senders[i] as number;
  }
  event(i: number): number {
    return this.events[i] as number;
  }
  eventName(i: number): string {
    return this.eventNames.get(this.event(i)) ?? '?';
  }
  /** The time step i was taken at, in the runtime's ms (threaded recordings only). */
  time(i: number): number | undefined {
    const us = this.times?.[i];
    return us === undefined ? undefined : us / 1000;
  }

  encode(): Uint8Array {
    const table: number[] = [];
    const index = new Map<number, number>();
    const bytes: number[] = [];
    for (let i = 0; i < this.length; i++) {
      const ev = this.event(i);
      let k = index.get(ev);
      if (k === undefined) {
        k = table.length;
        index.set(ev, k);
        table.push(ev);
      }
      varint(bytes, zigzag(this.receiver(i)));
      varint(bytes, zigzag(this.sender(i)));
      varint(bytes, k);
    }
    return pack({
      format: SCHEDULE_FORMAT,
      version: SCHEDULE_VERSION,
      meta: this.meta,
      events: table.map((h) => [h, this.eventNames.get(h) ?? '?']),
      steps: Uint8Array.from(bytes),
      ...(this.times ? { times: encodeTimes(this.times) } : {}),
      ...(this.hb ? { hb: encodeHb(this.hb) } : {}),
    });
  }

  save(file: string): void {
    writeFileSync(file, this.encode());
  }

  static decode(buf: Uint8Array, where = 'schedule'): Schedule {
    let raw: unknown;
    try {
      raw = unpack(buf);
    } catch (err) {
      // msgpackr's message may go on with what it decoded: the first words say what went wrong.
      const why = describe(err).split(/[{\n]/)[0]?.trim().slice(0, 80);
      throw new InputError(`${where}: not a schedule file, or a truncated one (msgpack: ${why})`);
    }
    if (!isRecord(raw) || raw.format !== SCHEDULE_FORMAT) throw new InputError(`${where}: not an iommu-sim schedule file`);
    if (raw.version !== SCHEDULE_VERSION) {
      throw new InputError(
        `${where}: schedule format version ${String(raw.version)} is not supported (this iommu-sim reads version ${SCHEDULE_VERSION}); record the run again`,
      );
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
      throw new InputError(`${where}: schedule file is damaged (${issues.join('; ')})`);
    }
    const { meta, events: table, steps } = parsed.data;
    const r: number[] = [];
    const s: number[] = [];
    const e: number[] = [];
    const names = new Map<number, string>(table);
    const read = varintReader(steps, () => new InputError(`${where}: schedule steps are truncated`));
    while (!read.done()) {
      r.push(unzigzag(read.next()));
      s.push(unzigzag(read.next()));
      const k = read.next();
      const entry = table[k];
      if (!entry) throw new InputError(`${where}: schedule step ${r.length - 1} names event #${k}, which is not in its table`);
      e.push(entry[0]);
    }
    const times = parsed.data.times ? decodeTimes(parsed.data.times, r.length, where) : undefined;
    const hb = parsed.data.hb ? decodeHb(parsed.data.hb, r.length, where) : undefined;
    return new Schedule(meta, Int32Array.from(r), Int32Array.from(s), Int32Array.from(e), names, times, hb);
  }

  static load(file: string): Schedule {
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (err) {
      throw new InputError(`cannot read schedule ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return Schedule.decode(buf, file);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function varintReader(bytes: Uint8Array, truncated: () => Error): { next(): number; done(): boolean } {
  let p = 0;
  return {
    done: () => p >= bytes.length,
    next: (): number => {
      let v = 0;
      let shift = 0;
      for (;;) {
        if (p >= bytes.length || shift > 49) throw truncated();
        const b = bytes[p++] as number;
        v += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return v;
        shift += 7;
      }
    },
  };
}

/** Step times (whole µs) as zigzag varint deltas: consecutive steps are close in time. */
function encodeTimes(times: Float64Array): Uint8Array {
  const bytes: number[] = [];
  let prev = 0;
  for (const t of times) {
    varint(bytes, zigzag(t - prev));
    prev = t;
  }
  return Uint8Array.from(bytes);
}

function decodeTimes(bytes: Uint8Array, steps: number, where: string): Float64Array {
  const out = new Float64Array(steps);
  const read = varintReader(bytes, () => new InputError(`${where}: schedule step times are truncated`));
  let t = 0;
  for (let i = 0; i < steps; i++) {
    t += unzigzag(read.next());
    out[i] = t;
  }
  if (!read.done()) throw new InputError(`${where}: schedule has more step times than steps`);
  return out;
}

/** Object edges: each triple's head as a delta from the previous one's (they are sorted by head). */
function encodeHb(hb: Int32Array): Uint8Array {
  const bytes: number[] = [];
  let prev = 0;
  for (let o = 0; o + 2 < hb.length; o += 3) {
    const to = hb[o + 1] as number;
    varint(bytes, to - prev);
    varint(bytes, to - (hb[o] as number));
    varint(bytes, zigzag(hb[o + 2] as number));
    prev = to;
  }
  return Uint8Array.from(bytes);
}

function decodeHb(bytes: Uint8Array, steps: number, where: string): Int32Array {
  const out: number[] = [];
  const read = varintReader(bytes, () => new InputError(`${where}: schedule happens-before edges are truncated`));
  let to = 0;
  while (!read.done()) {
    to += read.next();
    const from = to - read.next();
    const object = unzigzag(read.next());
    if (from < 0 || to >= steps || from >= to) throw new InputError(`${where}: schedule happens-before edge ${from} → ${to} is not between two of its ${steps} steps`);
    out.push(from, to, object);
  }
  return Int32Array.from(out);
}

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function unzigzag(n: number): number {
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
}

function varint(out: number[], v: number): void {
  let x = v;
  while (x >= 0x80) {
    out.push((x & 0x7f) | 0x80);
    x = Math.floor(x / 128);
  }
  out.push(x);
}
