// The wire codec round-trips every event, hot (fixed Int32 layout) or not (msgpack), through a real ring.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KIND_MSGPACK, WireCodec } from '../src/runtime/codec.js';
import type { ModelEvent, Wire } from '../src/runtime/model.js';
import { createRing } from '../src/runtime/ring.js';

const wire: fc.Arbitrary<Wire> = fc.letrec<{ w: Wire }>((tie) => ({
  w: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('w'), { maxLength: 4 }),
    fc.dictionary(fc.string().filter((k) => k !== '__proto__'), tie('w'), { maxKeys: 4 }),
  ),
})).w;

const event: fc.Arbitrary<ModelEvent> = fc
  .tuple(fc.string({ minLength: 1 }), fc.dictionary(fc.string().filter((k) => k !== 'type' && k !== '__proto__'), wire, { maxKeys: 6 }))
  .map(([type, fields]) => ({ ...fields, type }));

const hot = { ping: ['from', 'iter'], go: ['n'] } as const;

function roundTrip(codec: WireCodec, e: ModelEvent, sendStep: number): { event: ModelEvent; sendStep: number; kind: number } {
  const ring = createRing(64, 64);
  const enc = codec.encode(e, sendStep);
  expect(ring.tryPush(enc.kind, 1, 2, enc.bytes, 0, enc.len)).toBe(true);
  let out: { event: ModelEvent; sendStep: number; kind: number } | undefined;
  ring.drain(1, (kind, _to, _from, buf, off, len, ints) => {
    out = { ...codec.decode(kind, buf, off, len, ints), kind };
  });
  if (!out) throw new Error('nothing drained');
  return out;
}

describe('wire codec', () => {
  it('round-trips arbitrary events through msgpack', () => {
    const codec = new WireCodec(hot);
    fc.assert(
      fc.property(event, fc.integer({ min: -1, max: 2 ** 31 - 1 }), (e, step) => {
        const back = roundTrip(codec, e, step);
        expect(back.sendStep).toBe(step);
        expect(back.event).toEqual(e);
      }),
      { numRuns: 300 },
    );
  });

  it('uses the fixed Int32 layout for hot events with int32 fields, msgpack otherwise', () => {
    const codec = new WireCodec(hot);
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (from, iter) => {
        const back = roundTrip(codec, { type: 'ping', from, iter }, 5);
        expect(back.kind).not.toBe(KIND_MSGPACK);
        expect(back.event).toEqual({ type: 'ping', from, iter });
      }),
    );
    // A non-integer field, or an extra one, falls back to msgpack and still round-trips.
    const odd: ModelEvent[] = [{ type: 'ping', from: 1.5, iter: 2 }, { type: 'ping', from: 1, iter: 2, extra: 'x' }, { type: 'go', n: 2 ** 40 }];
    for (const e of odd) {
      const back = roundTrip(codec, e, 0);
      expect(back.kind).toBe(KIND_MSGPACK);
      expect(back.event).toEqual(e);
    }
  });
});
