// A recorded schedule: which channel (sender → receiver) each step took and which event it handled, with the
// workload parameters needed to run it again. Written by either runtime (`--record FILE`), replayed by the
// deterministic one. On disk it is msgpack with the steps as zig-zag varints: a few bytes a step.
import { readFileSync, writeFileSync } from 'node:fs';
import { pack, unpack } from 'msgpackr';
import { InputError } from './errors.js';
import type { ModelEvent, Wire } from './model.js';
import { REC, REC_INTS, type Trace } from './trace.js';

export const SCHEDULE_FORMAT = 'iommu-sim-schedule';
const VERSION = 1;

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
}

export class Schedule {
  constructor(
    readonly meta: ScheduleMeta,
    private readonly receivers: Int32Array,
    private readonly senders: Int32Array,
    private readonly events: Int32Array,
    private readonly eventNames: ReadonlyMap<number, string>,
  ) {}

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
    return new Schedule(meta, r, s, e, trace.eventNames);
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
      version: VERSION,
      meta: this.meta,
      events: table.map((h) => [h, this.eventNames.get(h) ?? '?']),
      steps: Uint8Array.from(bytes),
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
      throw new InputError(`${where}: not a schedule file (msgpack: ${(err as Error).message})`);
    }
    if (!isRecord(raw) || raw.format !== SCHEDULE_FORMAT) throw new InputError(`${where}: not an iommu-sim schedule file`);
    if (raw.version !== VERSION) throw new InputError(`${where}: schedule format version ${String(raw.version)} is not supported (expected ${VERSION})`);
    const meta = raw.meta as ScheduleMeta;
    const table = raw.events as [number, string][];
    const steps = raw.steps as Uint8Array;
    if (!isRecord(meta) || !Array.isArray(table) || !(steps instanceof Uint8Array)) {
      throw new InputError(`${where}: schedule file is damaged (meta, events or steps missing)`);
    }
    const r: number[] = [];
    const s: number[] = [];
    const e: number[] = [];
    const names = new Map<number, string>(table);
    let p = 0;
    const read = (): number => {
      let v = 0;
      let shift = 0;
      for (;;) {
        if (p >= steps.length) throw new InputError(`${where}: schedule steps are truncated`);
        const b = steps[p++] as number;
        v += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return v;
        shift += 7;
      }
    };
    while (p < steps.length) {
      r.push(unzigzag(read()));
      s.push(unzigzag(read()));
      const k = read();
      const entry = table[k];
      if (!entry) throw new InputError(`${where}: schedule step ${r.length - 1} names event #${k}, which is not in its table`);
      e.push(entry[0]);
    }
    return new Schedule(meta, Int32Array.from(r), Int32Array.from(s), Int32Array.from(e), names);
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
