// Wire encoding of actor events crossing threads. Hot events whose fields are all int32 (pings, DMA
// requests, invalidation descriptors later) use a fixed Int32 layout: no allocation, no parsing. Everything
// else is msgpack. Every message starts with the Int32 step during which it was sent (for trace flows).
// Decoding always reads from the ring's private scratch copy, never from shared memory (see ring.ts).
import { Packr } from 'msgpackr';
import type { ModelEvent, Wire } from './model.js';

export const KIND_MSGPACK = 0;

export interface Decoded {
  readonly event: ModelEvent;
  readonly sendStep: number;
}

export class WireCodec {
  private readonly packr = new Packr({ useRecords: false, moreTypes: false });
  private readonly hotTypes: string[] = [];
  private readonly hotFields: (readonly string[])[] = [];
  private readonly hotIndex = new Map<string, number>();
  private scratch = new Uint8Array(256);
  private scratchI32 = new Int32Array(this.scratch.buffer);

  constructor(hot: Readonly<Record<string, readonly string[]>> = {}) {
    for (const [type, fields] of Object.entries(hot)) {
      this.hotIndex.set(type, this.hotTypes.length);
      this.hotTypes.push(type);
      this.hotFields.push(fields);
    }
  }

  /** Encode into a reused scratch buffer; valid until the next encode. */
  encode(event: ModelEvent, sendStep: number): { kind: number; bytes: Uint8Array; len: number } {
    const hi = this.hotIndex.get(event.type);
    if (hi !== undefined) {
      const fields = this.hotFields[hi] as readonly string[];
      const i32 = this.scratchI32;
      i32[0] = sendStep;
      let ok = true;
      for (let f = 0; f < fields.length; f++) {
        const v = event[fields[f] as string];
        if (typeof v !== 'number' || (v | 0) !== v) {
          ok = false;
          break;
        }
        i32[f + 1] = v;
      }
      if (ok && Object.keys(event).length === fields.length + 1) {
        return { kind: hi + 1, bytes: this.scratch, len: (fields.length + 1) * 4 };
      }
    }
    const body = this.packr.pack(event);
    const len = 4 + body.length;
    if (len > this.scratch.length) this.grow(len);
    this.scratchI32[0] = sendStep;
    this.scratch.set(body, 4);
    return { kind: KIND_MSGPACK, bytes: this.scratch, len };
  }

  /**
   * Decodes a message as a ring hands it over: `buf[off, off+len)`, with `ints` an Int32 view of the same
   * memory and `off` a multiple of 4 (see Ring.drain). Hot fields are read in place, shared memory or not.
   */
  decode(kind: number, buf: Uint8Array, off: number, len: number, ints: Int32Array): Decoded {
    const at = off >> 2;
    const sendStep = ints[at] as number;
    if (kind === KIND_MSGPACK) {
      // A private copy: msgpackr's native string extraction refuses shared memory and falls back to a slow
      // path (~8 µs past ~180 bytes), while the copy costs ~0.2 µs.
      const event = this.packr.unpack(buf.slice(off + 4, off + len)) as ModelEvent;
      return { event, sendStep };
    }
    const type = this.hotTypes[kind - 1];
    const fields = this.hotFields[kind - 1];
    if (type === undefined || fields === undefined) throw new Error(`wire: unknown message kind ${kind}`);
    const event: { type: string; [k: string]: Wire } = { type };
    for (let f = 0; f < fields.length; f++) event[fields[f] as string] = ints[at + f + 1] as number;
    return { event, sendStep };
  }

  private grow(min: number): void {
    let n = this.scratch.length;
    while (n < min) n *= 2;
    this.scratch = new Uint8Array(n);
    this.scratchI32 = new Int32Array(this.scratch.buffer);
  }
}
