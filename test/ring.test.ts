// Tests of the shared-memory mailbox (src/runtime/ring.ts) and its backpressure wrapper (outbox.ts).
// The ring is concurrency code, so the important cases run across real worker threads
// (workers/ring-test-worker.ts, compiled: run `npm run build` first); the edge and property tests run in one
// thread where interleavings can be chosen exactly. Threaded tests are bounded by message counts, never by
// wall-clock expectations, so they hold on a loaded 2-core machine.
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from '../src/runtime/outbox.js';
import { workerUrl } from '../src/runtime/paths.js';
import { createRing, ENVELOPE_BYTES, Ring, RingBatch, ringBytes } from '../src/runtime/ring.js';
import {
  type ConsumerReport,
  type FillerReport,
  type ParkerEvent,
  type ProducerReport,
  type RingTestReport,
  type RingTestRole,
  wrapMessage,
} from '../workers/ring-test-worker.js';

interface Drained {
  kind: number;
  to: number;
  from: number;
  bytes: number[];
}

function drainAll(ring: Ring, max = 1 << 30): Drained[] {
  const out: Drained[] = [];
  ring.drain(max, (kind, to, from, buf, off, len) => {
    expect(off % 4).toBe(0);
    expect(buf.buffer).toBeInstanceOf(ArrayBuffer);
    out.push({ kind, to, from, bytes: Array.from(buf.subarray(off, off + len)) });
  });
  return out;
}

function bytesOf(n: number, salt: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + salt * 13 + 1) & 255;
  return b;
}

// Every worker a test started is terminated after it, also when the test failed or timed out, so a stuck
// worker never keeps spinning into the following tests.
const live = new Set<TestWorker>();
afterEach(async () => {
  await Promise.all([...live].map((w) => w.done()));
});

/** A worker playing one role, with its reports delivered in order through next(). */
class TestWorker {
  private readonly worker: Worker;
  private readonly inbox: RingTestReport[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;

  constructor(sab: SharedArrayBuffer, role: RingTestRole, params: Record<string, number>) {
    this.worker = new Worker(workerUrl('ring-test-worker'), { workerData: { ringTest: true, sab, role, params } });
    live.add(this);
    this.worker.on('message', (m: RingTestReport) => {
      this.inbox.push(m);
      this.waiter?.();
    });
    this.worker.on('error', (e: Error) => {
      this.failure = e;
      this.waiter?.();
    });
    this.worker.on('exit', (code) => {
      if (code !== 0 && this.failure === null) this.failure = new Error(`worker exited with ${code}`);
      this.waiter?.();
    });
  }

  async next(): Promise<RingTestReport> {
    while (this.inbox.length === 0) {
      if (this.failure !== null) throw this.failure;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
      this.waiter = null;
    }
    return this.inbox.shift() as RingTestReport;
  }

  async done(): Promise<void> {
    live.delete(this);
    await this.worker.terminate();
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('ring layout', () => {
  it('rejects bad geometry and oversized messages with RangeError', () => {
    expect(() => createRing(3)).toThrow(RangeError);
    expect(() => createRing(1)).toThrow(RangeError);
    expect(() => createRing(8, 36)).toThrow(RangeError);
    expect(() => createRing(8, 24)).toThrow(RangeError);
    expect(() => ringBytes(0)).toThrow(RangeError);
    const ring = createRing(4, 32);
    expect(ring.maxPayload).toBe(4 * 32 - ENVELOPE_BYTES);
    expect(() => ring.tryPush(0, 0, 0, new Uint8Array(ring.maxPayload + 1))).toThrow(RangeError);
    expect(() => ring.tryPush(0, 0, 0, new Uint8Array(8), 4, 8)).toThrow(RangeError);
    expect(ring.tryPush(0, 0, 0, new Uint8Array(ring.maxPayload))).toBe(true);
    expect(ring.usedSlots()).toBe(4);
  });

  it('a second view attaches from the buffer alone', () => {
    const a = createRing(16, 40);
    const b = new Ring(a.sab);
    expect(b.slots).toBe(16);
    expect(b.slotBytes).toBe(40);
    expect(() => new Ring(new SharedArrayBuffer(ringBytes(16, 40)))).toThrow(TypeError);
    expect(b.tryPush(5, 6, 7, bytesOf(30, 1))).toBe(true);
    expect(drainAll(a)).toEqual([{ kind: 5, to: 6, from: 7, bytes: Array.from(bytesOf(30, 1)) }]);
  });
});

describe('ring wrap-around', () => {
  it('every message size of 0..3 slots at every start slot, straddling the end included', () => {
    for (const slotBytes of [32, 40, 64]) {
      const slots = 8;
      const ring = createRing(slots, slotBytes);
      const filler = new Uint8Array(0);
      let pos = 0;
      let straddled = 0;
      for (let start = 0; start < slots; start++) {
        for (let k = 1; k <= 3; k++) {
          for (const len of [k === 1 ? 0 : (k - 1) * slotBytes - ENVELOPE_BYTES + 1, k * slotBytes - ENVELOPE_BYTES]) {
            // Move the ring's position to slot `start` with 1-slot fillers, then drain them.
            while (pos % slots !== start) {
              expect(ring.tryPush(0, 0, 0, filler)).toBe(true);
              pos++;
            }
            drainAll(ring);
            expect(ring.slotsFor(len)).toBe(k);
            if (start + k > slots) straddled++;
            const payload = bytesOf(len, start * 10 + k);
            expect(ring.tryPush(9, start, k, payload)).toBe(true);
            pos += k;
            expect(ring.pendingMessages()).toBe(1);
            expect(drainAll(ring)).toEqual([{ kind: 9, to: start, from: k, bytes: Array.from(payload) }]);
            // The same through the Int32 form.
            const n = len >> 2;
            while (pos % slots !== start) {
              expect(ring.tryPush(0, 0, 0, filler)).toBe(true);
              pos++;
            }
            drainAll(ring);
            const ints = new Int32Array(n).map((_, i) => i * 1_000_003 + start);
            expect(ring.tryPushInts(8, 1, 2, ints, n)).toBe(true);
            pos += ring.slotsFor(n * 4);
            const got = drainAll(ring);
            expect(got.length).toBe(1);
            expect(Array.from(new Int32Array(new Uint8Array(got[0].bytes).buffer))).toEqual(Array.from(ints));
          }
        }
      }
      expect(straddled).toBeGreaterThan(0);
      expect(ring.isEmpty()).toBe(true);
    }
  });

  it('a batch of variable-length messages wraps as a unit and arrives as individual messages', () => {
    const ring = createRing(16, 32);
    const batch = new RingBatch(ring);
    for (let round = 0; round < 40; round++) {
      const sent: Drained[] = [];
      for (let i = 0; ; i++) {
        const len = (round * 5 + i * 11) % 70;
        const payload = bytesOf(len, round + i);
        if (!batch.add(round, i, 3, payload)) break;
        sent.push({ kind: round, to: i, from: 3, bytes: Array.from(payload) });
        if (batch.usedSlots >= 9) break;
      }
      expect(ring.tryPushBatch(batch)).toBe(true);
      expect(batch.count).toBe(0);
      expect(drainAll(ring)).toEqual(sent);
    }
  });

  it('variable-length messages from another thread wrap around intact (byte for byte)', async () => {
    const slots = 16;
    const slotBytes = 40;
    const maxLen = 3 * slotBytes - ENVELOPE_BYTES; // 1..3 slots
    const count = 20_000;
    const seed = 4242;
    const ring = createRing(slots, slotBytes);
    const w = new TestWorker(ring.sab, 'wrap-producer', { count, seed, maxLen });
    let i = 0;
    let bad = 0;
    let idle = 0; // consecutive empty drains: bounded, so a dead producer fails the test instead of spinning on
    while (i < count) {
      const n = ring.drain(64, (kind, to, from, buf, off, len) => {
        const want = wrapMessage(seed, to, maxLen);
        if (kind !== 3 || from !== 7 || to !== i || len !== want.length) bad++;
        else for (let j = 0; j < len; j++) if (buf[off + j] !== want[j]) bad++;
        i++;
      });
      if (n > 0) idle = 0;
      else if (++idle > 20_000) throw new Error(`no message for ${idle} polls after ${i} of ${count}`);
      else await (idle < 1000 ? tick() : sleep(1));
    }
    expect(bad).toBe(0);
    expect((await w.next()).type).toBe('done');
    await w.done();
    expect(ring.isEmpty()).toBe(true);
  }, 60_000);
});

describe('ring edges', () => {
  it('full: tryPush fails exactly when the ring is full, nothing is overwritten, space returns after drain', () => {
    const ring = createRing(16, 64);
    let n = 0;
    while (ring.tryPush(1, n, 0, bytesOf(40, n))) n++;
    expect(n).toBe(16);
    expect(ring.usedSlots()).toBe(16);
    expect(ring.tryPush(1, 99, 0, new Uint8Array(0))).toBe(false);
    // 3-slot messages: 5 fit in 16 slots, then only a 1-slot message does.
    const got = drainAll(ring);
    expect(got.map((m) => m.to)).toEqual([...Array(16).keys()]);
    got.forEach((m, i) => {
      expect(m.bytes).toEqual(Array.from(bytesOf(40, i)));
    });
    const big = bytesOf(3 * 64 - ENVELOPE_BYTES, 5);
    let k = 0;
    while (ring.tryPush(2, k, 0, big)) k++;
    expect(k).toBe(5);
    expect(ring.tryPush(2, 5, 0, new Uint8Array(10))).toBe(true);
    expect(ring.tryPush(2, 6, 0, new Uint8Array(0))).toBe(false);
    expect(ring.pendingMessages()).toBe(6);
    // Space returns after a partial drain: two 3-slot messages free 6 slots.
    expect(ring.drain(2, () => {})).toBe(2);
    expect(ring.tryPush(2, 7, 0, big)).toBe(true);
    expect(ring.tryPush(2, 8, 0, big)).toBe(true);
    expect(ring.tryPush(2, 9, 0, new Uint8Array(0))).toBe(false);
    expect(drainAll(ring).map((m) => m.to)).toEqual([2, 3, 4, 5, 7, 8]);
  });

  it('full from another thread: a producer fills the ring, refused pushes change nothing', async () => {
    const ring = createRing(64, 32);
    const w = new TestWorker(ring.sab, 'filler', {});
    const r = (await w.next()) as FillerReport;
    await w.done();
    expect(r.pushed).toBe(64);
    expect(r.refusedAfterFull).toBe(100);
    const got = drainAll(ring);
    expect(got.map((m) => m.to)).toEqual([...Array(64).keys()]);
    expect(ring.tryPush(0, 0, 0, new Uint8Array(4))).toBe(true);
  }, 30_000);

  it('payload bytes in a continuation slot never pass for a later publication', () => {
    // A 2-slot message at position 0 whose bytes in slot 1's first word equal the marker that a message
    // at position 1 + slots would carry: once consumed, that slot must not look published a lap later.
    const slots = 4;
    const ring = createRing(slots, 32);
    const payload = new Uint8Array(12);
    new DataView(payload.buffer).setInt32(32 - ENVELOPE_BYTES, 1 + slots + 1, true);
    expect(ring.slotsFor(payload.length)).toBe(2);
    expect(ring.tryPush(1, 0, 0, payload)).toBe(true);
    expect(drainAll(ring).length).toBe(1);
    for (let i = 0; i < 3; i++) expect(ring.tryPush(2, i, 0, new Uint8Array(4))).toBe(true); // positions 2, 3, 4
    expect(ring.pendingMessages()).toBe(3);
    expect(drainAll(ring).map((m) => m.kind)).toEqual([2, 2, 2]);
    expect(ring.park(1, 0)).toBe('timeout');
  });

  it('drain(max) may stop inside a batch; the rest is delivered by the next drain, in order', () => {
    const ring = createRing(32, 32);
    const batch = new RingBatch(ring);
    const sent: Drained[] = [];
    for (let i = 0; i < 10; i++) {
      const payload = bytesOf(i % 3 === 0 ? 40 : 4, i); // some 3-slot members
      expect(batch.add(1, i, 2, payload)).toBe(true);
      sent.push({ kind: 1, to: i, from: 2, bytes: Array.from(payload) });
    }
    expect(ring.tryPushBatch(batch)).toBe(true);
    expect(ring.tryPush(1, 10, 2, bytesOf(8, 10))).toBe(true);
    sent.push({ kind: 1, to: 10, from: 2, bytes: Array.from(bytesOf(8, 10)) });
    const got: Drained[] = [];
    expect(ring.pendingMessages()).toBe(11);
    for (const max of [3, 1, 4, 100]) got.push(...drainAll(ring, max));
    expect(got).toEqual(sent);
    expect(ring.isEmpty()).toBe(true);
  });

  it('a throwing callback loses only its own message; the rest stays queued in order', () => {
    const ring = createRing(16, 32);
    const batch = new RingBatch(ring);
    for (let i = 0; i < 4; i++) batch.add(1, i, 0, bytesOf(i === 2 ? 50 : 8, i));
    expect(ring.tryPushBatch(batch)).toBe(true);
    expect(ring.tryPush(1, 4, 0, bytesOf(60, 4))).toBe(true);
    const seen: number[] = [];
    expect(() =>
      ring.drain(100, (_k, to) => {
        seen.push(to);
        if (to === 1) throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(seen).toEqual([0, 1]);
    expect(ring.pendingMessages()).toBe(3);
    const rest = drainAll(ring);
    expect(rest.map((m) => m.to)).toEqual([2, 3, 4]);
    expect(rest[0].bytes).toEqual(Array.from(bytesOf(50, 2)));
    expect(rest[2].bytes).toEqual(Array.from(bytesOf(60, 4)));
    expect(ring.isEmpty()).toBe(true);
  });

  it('empty: drain returns 0 and park times out', () => {
    const ring = createRing(8);
    expect(ring.isEmpty()).toBe(true);
    expect(ring.drain(100, () => {})).toBe(0);
    expect(ring.pendingMessages()).toBe(0);
    expect(ring.park(5, 10)).toBe('timeout');
    expect(ring.park(1, 0)).toBe('timeout');
    expect(ring.stats().parks).toBe(2);
    expect(ring.stats().notifies).toBe(0);
  });

  it('Outbox keeps per-producer order through the overflow list', () => {
    const ring = createRing(4, 32);
    const out = new Outbox(ring);
    const ints = new Int32Array(1);
    for (let i = 0; i < 20; i++) {
      ints[0] = i;
      if (i % 2 === 0) out.sendInts(1, i, 0, ints, 1);
      else out.send(1, i, 0, new Uint8Array(ints.buffer));
    }
    expect(out.held).toBe(16);
    expect(out.peakHeld).toBe(16);
    const seen: number[] = [];
    while (seen.length < 20) {
      ring.drain(3, (_k, to, _f, _buf, off) => {
        expect(ring.scratchInts[off >> 2]).toBe(to);
        seen.push(to);
      });
      out.flush();
    }
    expect(seen).toEqual([...Array(20).keys()]);
    expect(out.held).toBe(0);
    expect(() => out.send(0, 0, 0, new Uint8Array(ring.maxPayload + 1))).toThrow(RangeError);
  });
});

describe('ring across threads', () => {
  it('no loss, no duplication, per-producer order: 10^6 messages, 3 producers, 1 consumer, backpressure', async () => {
    const counts = [333_334, 333_333, 333_333];
    const total = counts.reduce((a, b) => a + b, 0);
    const ring = createRing(256, 64);
    const consumer = new TestWorker(ring.sab, 'consumer', { producers: 3, total });
    // Producers 0 and 1 send through Outboxes, producer 2 in batches of up to 16 (one publication each).
    const producers = counts.map((count, id) => new TestWorker(ring.sab, 'producer', { id, count, batch: id === 2 ? 16 : 0 }));
    const reports = (await Promise.all(producers.map((p) => p.next()))) as ProducerReport[];
    const c = (await consumer.next()) as ConsumerReport;
    await Promise.all([consumer.done(), ...producers.map((p) => p.done())]);
    expect(c.firstError).toBe('');
    expect(c.errors).toBe(0);
    expect(c.received).toBe(total);
    expect(c.perProducer).toEqual(counts);
    const sent = reports.reduce((a, r) => a + r.sent, 0);
    expect(sent).toBe(total);
    // Run-end accounting: sent == delivered + queued.
    expect(ring.pendingMessages()).toBe(0);
    expect(sent).toBe(c.received + ring.pendingMessages());
    expect(ring.isEmpty()).toBe(true);
    // Backpressure was exercised: some producer had to hold messages back.
    expect(Math.max(reports[0].peakHeld, reports[1].peakHeld)).toBeGreaterThan(0);
    expect(reports.reduce((a, r) => a + r.heldTotal, 0)).toBeGreaterThan(0);
  }, 120_000);

  it('a parked consumer is woken by a push from another thread, by wake(), and by close()', async () => {
    const ring = createRing(16);
    const w = new TestWorker(ring.sab, 'parker', { rounds: 3, timeoutMs: 30_000, spinMicros: 20 });
    // Wait until the consumer is really blocked in Atomics.wait (the park counter moves just before).
    const parkedTimes = async (n: number): Promise<void> => {
      for (let i = 0; i < 20_000 && ring.stats().parks < n; i++) await sleep(1);
      expect(ring.stats().parks).toBe(n);
    };
    expect(((await w.next()) as ParkerEvent).type).toBe('parking');
    await parkedTimes(1);
    expect(ring.tryPushInts(1, 2, 3, Int32Array.of(11, 22, 33), 3)).toBe(true);
    let e = (await w.next()) as ParkerEvent;
    expect(e).toMatchObject({ type: 'parked', round: 0, result: 'message', payloads: [[11, 22, 33]] });
    expect(ring.stats().notifies).toBe(1);

    expect(((await w.next()) as ParkerEvent).type).toBe('parking');
    await parkedTimes(2);
    ring.wake();
    e = (await w.next()) as ParkerEvent;
    expect(e).toMatchObject({ type: 'parked', round: 1, result: 'timeout', payloads: [] });

    expect(((await w.next()) as ParkerEvent).type).toBe('parking');
    await parkedTimes(3);
    ring.close();
    e = (await w.next()) as ParkerEvent;
    expect(e).toMatchObject({ type: 'parked', round: 2, result: 'closed', payloads: [] });
    expect(ring.closed).toBe(true);
    expect(ring.stats().notifies).toBe(1);
    await w.done();
  }, 90_000);

  it('a wake() that comes before park() is not lost', () => {
    const ring = createRing(8);
    ring.wake();
    expect(ring.park(30_000)).toBe('timeout');
    expect(ring.stats().parks).toBe(0);
  });
});

describe('ring property', () => {
  it('byte round trip: any interleaving of pushes (0..500 bytes) and drains preserves the stream', () => {
    const geometry = fc.record({
      slots: fc.constantFrom(2, 4, 8, 16, 32),
      slotBytes: fc.constantFrom(32, 40, 64, 136),
    });
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.record({ push: fc.uint8Array({ maxLength: 500 }), kind: fc.integer(), to: fc.integer() }) },
      { weight: 1, arbitrary: fc.record({ drain: fc.integer({ min: 0, max: 6 }) }) },
    );
    fc.assert(
      fc.property(geometry, fc.array(op, { maxLength: 120 }), ({ slots, slotBytes }, ops) => {
        const ring = createRing(slots, slotBytes);
        const queued: { kind: number; to: number; bytes: number[]; k: number }[] = [];
        const pushed: Drained[] = [];
        const received: Drained[] = [];
        let used = 0;
        const take = (max: number): void => {
          ring.drain(max, (kind, to, from, buf, off, len) => {
            received.push({ kind, to, from, bytes: Array.from(buf.subarray(off, off + len)) });
            used -= (queued.shift() as { k: number }).k;
          });
        };
        for (const o of ops) {
          if ('push' in o) {
            const k = Math.ceil((ENVELOPE_BYTES + o.push.length) / slotBytes);
            if (k > slots) {
              expect(() => ring.tryPush(o.kind, o.to, 1, o.push)).toThrow(RangeError);
              continue;
            }
            const ok = ring.tryPush(o.kind, o.to, 1, o.push);
            expect(ok).toBe(used + k <= slots);
            if (ok) {
              used += k;
              queued.push({ kind: o.kind, to: o.to, bytes: Array.from(o.push), k });
              pushed.push({ kind: o.kind, to: o.to, from: 1, bytes: Array.from(o.push) });
            }
          } else {
            take(o.drain);
          }
          expect(ring.usedSlots()).toBe(used);
          expect(ring.pendingMessages()).toBe(queued.length);
        }
        take(1 << 30);
        expect(received).toEqual(pushed);
        expect(ring.isEmpty()).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
