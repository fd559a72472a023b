// Tests of the shared-memory mailbox (src/runtime/mailbox.ts), its lanes (ring.ts) and its backpressure
// wrapper (outbox.ts). The mailbox is concurrency code, so the important cases run across real worker threads
// (workers/ring-test-worker.ts, compiled: run `npm run build` first); the edge and property tests run in one
// thread where interleavings can be chosen exactly. Threaded tests are bounded by message counts, never by
// wall-clock expectations, so they hold on a loaded 2-core machine.
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from '../src/runtime/outbox.js';
import { workerUrl } from '../src/runtime/paths.js';
import { createMailbox, Doorbell, laneSlots, Mailbox, type MailboxLayout, senderLane } from '../src/runtime/mailbox.js';
import { createRing, ENVELOPE_BYTES, Ring, ringBytes } from '../src/runtime/ring.js';
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

function drainAll(ring: Ring | Mailbox, max = 1 << 30): Drained[] {
  const out: Drained[] = [];
  ring.drain(max, (kind, to, from, buf, off, len, ints) => {
    expect(off % 4).toBe(0);
    expect(ints.buffer).toBe(buf.buffer);
    expect(ints.byteOffset).toBe(buf.byteOffset);
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

  constructor(on: { sab: SharedArrayBuffer } | { mailbox: MailboxLayout }, role: RingTestRole, params: Record<string, number>) {
    this.worker = new Worker(workerUrl('ring-test-worker'), { workerData: { ringTest: true, ...on, role, params } });
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

  it('appended messages stay invisible until publish(), then arrive one by one, in order, wrapping intact', () => {
    const ring = createRing(16, 32);
    const consumer = new Ring(ring.sab);
    for (let round = 0; round < 40; round++) {
      const sent: Drained[] = [];
      let used = 0;
      for (let i = 0; used < 9; i++) {
        const len = (round * 5 + i * 11) % 70;
        const payload = bytesOf(len, round + i);
        if (!ring.tryAppend(round, i, 3, payload)) break;
        used += ring.slotsFor(len);
        sent.push({ kind: round, to: i, from: 3, bytes: Array.from(payload) });
      }
      expect(consumer.ready()).toBe(false);
      expect(drainAll(consumer)).toEqual([]);
      ring.publish();
      expect(consumer.pendingMessages()).toBe(sent.length);
      expect(drainAll(consumer)).toEqual(sent);
    }
  });

  it('variable-length messages from another thread wrap around intact (byte for byte)', async () => {
    const slots = 16;
    const slotBytes = 40;
    const maxLen = 3 * slotBytes - ENVELOPE_BYTES; // 1..3 slots
    const count = 20_000;
    const seed = 4242;
    const ring = createRing(slots, slotBytes);
    const w = new TestWorker({ sab: ring.sab }, 'wrap-producer', { count, seed, maxLen });
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
    const w = new TestWorker({ sab: ring.sab }, 'filler', {});
    const r = (await w.next()) as FillerReport;
    await w.done();
    expect(r.pushed).toBe(64);
    expect(r.refusedAfterFull).toBe(100);
    const got = drainAll(ring);
    expect(got.map((m) => m.to)).toEqual([...Array(64).keys()]);
    expect(ring.tryPush(0, 0, 0, new Uint8Array(4))).toBe(true);
  }, 30_000);

  it('a payload is handed over in place in shared memory, and copied only when it wraps round the end', () => {
    const ring = createRing(4, 32);
    const seen: { shared: boolean; bytes: number[] }[] = [];
    const take = (): void => {
      ring.drain(10, (_k, _t, _f, buf, off, len) => {
        seen.push({ shared: buf.buffer instanceof SharedArrayBuffer, bytes: Array.from(buf.subarray(off, off + len)) });
      });
    };
    expect(ring.tryPush(1, 0, 0, bytesOf(8, 1))).toBe(true); // slot 0
    expect(ring.tryPush(1, 0, 0, bytesOf(8, 2))).toBe(true); // slot 1
    expect(ring.tryPush(1, 0, 0, bytesOf(8, 3))).toBe(true); // slot 2
    take();
    const wraps = bytesOf(40, 4); // 2 slots: 3 and 0
    expect(ring.slotsFor(wraps.length)).toBe(2);
    expect(ring.tryPush(1, 0, 0, wraps)).toBe(true);
    take();
    expect(seen.map((m) => m.shared)).toEqual([true, true, true, false]);
    expect(seen[3]?.bytes).toEqual(Array.from(wraps));
  });

  it('drain(max) may stop inside a publication; the rest is delivered by the next drain, in order', () => {
    const ring = createRing(32, 32);
    const sent: Drained[] = [];
    for (let i = 0; i < 10; i++) {
      const payload = bytesOf(i % 3 === 0 ? 40 : 4, i); // some 3-slot members
      expect(ring.tryAppend(1, i, 2, payload)).toBe(true);
      sent.push({ kind: 1, to: i, from: 2, bytes: Array.from(payload) });
    }
    ring.publish();
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
    for (let i = 0; i < 4; i++) expect(ring.tryAppend(1, i, 0, bytesOf(i === 2 ? 50 : 8, i))).toBe(true);
    ring.publish();
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
    const ring = new Mailbox(createMailbox(3, 8, 64, 1));
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
      ring.drain(3, (_k, to, _f, _buf, off, _len, ints) => {
        expect(ints[off >> 2]).toBe(to);
        seen.push(to);
      });
      out.flush();
    }
    expect(seen).toEqual([...Array(20).keys()]);
    expect(out.held).toBe(0);
    expect(() => out.send(0, 0, 0, new Uint8Array(ring.maxPayload + 1))).toThrow(RangeError);
  });
});

describe('mailbox across threads', () => {
  it('no loss, no duplication, per-producer order: 10^6 messages, 3 producers on 3 lanes, backpressure', async () => {
    const counts = [333_334, 333_333, 333_333];
    const total = counts.reduce((a, b) => a + b, 0);
    const layout = createMailbox(3, 256, 64);
    const consumer = new TestWorker({ mailbox: layout }, 'consumer', { producers: 3, total });
    // Producers 0 and 1 send through Outboxes, producer 2 in groups of 16 (one publication each).
    const producers = counts.map((count, id) => new TestWorker({ mailbox: layout }, 'producer', { id, count, batch: id === 2 ? 16 : 0 }));
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
    const box = new Mailbox(layout);
    expect(box.pendingMessages()).toBe(0);
    expect(sent).toBe(c.received + box.pendingMessages());
    expect(box.isEmpty()).toBe(true);
    // Backpressure was exercised: some producer had to hold messages back.
    expect(Math.max(reports[0].peakHeld, reports[1].peakHeld)).toBeGreaterThan(0);
    expect(reports.reduce((a, r) => a + r.heldTotal, 0)).toBeGreaterThan(0);
  }, 120_000);

  it('no lost wake-up: a consumer that parks whenever its lanes run dry is always woken by the next push', async () => {
    // Producers nap every 50 messages, so the consumer (no spinning) goes to sleep thousands of times, each
    // time racing the next publication on one of two lanes. A lost wake-up shows as a park that times out:
    // the producers never pause for the consumer's 1 s timeout.
    const counts = [20_000, 20_000];
    const layout = createMailbox(2, 64, 64);
    const consumer = new TestWorker({ mailbox: layout }, 'consumer', { producers: 2, total: 40_000, spinMicros: 0 });
    const producers = counts.map((count, id) => new TestWorker({ mailbox: layout }, 'producer', { id, count, pauseEvery: 50 }));
    await Promise.all(producers.map((p) => p.next()));
    const c = (await consumer.next()) as ConsumerReport;
    await Promise.all([consumer.done(), ...producers.map((p) => p.done())]);
    expect(c.errors).toBe(0);
    expect(c.received).toBe(40_000);
    expect(c.parks).toBeGreaterThan(100);
    expect(c.timeouts).toBe(0);
  }, 120_000);

  it('a parked consumer is woken by a push on any lane, by wake(), and by close()', async () => {
    const layout = createMailbox(3, 16, 64, 0);
    const bell = new Doorbell(layout.bell);
    const w = new TestWorker({ mailbox: layout }, 'parker', { rounds: 3, timeoutMs: 30_000, spinMicros: 20 });
    // Wait until the consumer is really blocked in Atomics.wait (the park counter moves just before).
    const parkedTimes = async (n: number): Promise<void> => {
      for (let i = 0; i < 20_000 && bell.stats().parks < n; i++) await sleep(1);
      expect(bell.stats().parks).toBe(n);
    };
    expect(((await w.next()) as ParkerEvent).type).toBe('parking');
    await parkedTimes(1);
    // The last lane, not the first: the consumer sleeps on one word for all of them.
    expect(senderLane(layout, 2).tryPushInts(1, 2, 3, Int32Array.of(11, 22, 33), 3)).toBe(true);
    let e = (await w.next()) as ParkerEvent;
    expect(e).toMatchObject({ type: 'parked', round: 0, result: 'message', payloads: [[11, 22, 33]] });
    expect(bell.stats().notifies).toBe(1);

    expect(((await w.next()) as ParkerEvent).type).toBe('parking');
    await parkedTimes(2);
    bell.wake();
    e = (await w.next()) as ParkerEvent;
    expect(e).toMatchObject({ type: 'parked', round: 1, result: 'timeout', payloads: [] });

    expect(((await w.next()) as ParkerEvent).type).toBe('parking');
    await parkedTimes(3);
    bell.close();
    e = (await w.next()) as ParkerEvent;
    expect(e).toMatchObject({ type: 'parked', round: 2, result: 'closed', payloads: [] });
    expect(bell.closed).toBe(true);
    expect(bell.stats().notifies).toBe(1);
    // A push that finds no consumer asleep does not ring.
    expect(senderLane(layout, 1).tryPushInts(1, 2, 3, Int32Array.of(1), 1)).toBe(true);
    expect(bell.stats().notifies).toBe(1);
    await w.done();
  }, 90_000);

  it('a wake() that comes before park() is not lost', () => {
    const box = new Mailbox(createMailbox(1, 8));
    box.wake();
    expect(box.park(30_000)).toBe('timeout');
    expect(box.stats().parks).toBe(0);
  });
});

describe('mailbox layout', () => {
  it('a lane per producer but the skipped one; lanes share the budget but never drop below 256 slots', () => {
    const layout = createMailbox(4, 32, 64, 2);
    expect(layout.lanes.map((l) => l === null)).toEqual([false, false, true, false]);
    expect(() => senderLane(layout, 2)).toThrow(RangeError);
    expect(() => senderLane(layout, 4)).toThrow(RangeError);
    expect(() => createMailbox(1, 8, 64, 0)).toThrow(RangeError);
    expect(() => new Doorbell(new SharedArrayBuffer(512))).toThrow(TypeError);
    expect(laneSlots(4096, 2)).toBe(2048);
    expect(laneSlots(4096, 3)).toBe(1024);
    expect(laneSlots(4096, 64)).toBe(256);
    expect(laneSlots(16, 2)).toBe(16);
  });

  it('the parked mark: set on an empty lane only, rung by the first publication after it, and only once', () => {
    const layout = createMailbox(1, 8);
    const lane = senderLane(layout, 0);
    const consumer = new Ring(layout.lanes[0] as SharedArrayBuffer);
    const bell = new Doorbell(layout.bell);
    expect(consumer.markParked()).toBe(true); // empty: the consumer may sleep
    expect(lane.tryPushInts(1, 0, 0, Int32Array.of(1), 1)).toBe(true);
    expect(bell.stats().notifies).toBe(1);
    expect(lane.tryPushInts(1, 0, 0, Int32Array.of(2), 1)).toBe(true);
    expect(bell.stats().notifies).toBe(1); // the first publication cleared the mark
    expect(consumer.markParked()).toBe(false); // not empty: the consumer must not sleep
    consumer.unmarkParked();
    expect(lane.tryPushInts(1, 0, 0, Int32Array.of(3), 1)).toBe(true);
    expect(bell.stats().notifies).toBe(1);
    expect(drainAll(consumer).map((m) => m.bytes[0])).toEqual([1, 2, 3]);
  });

  it('messages from every lane are delivered, each lane in order, lanes taking turns to go first', () => {
    const layout = createMailbox(3, 8, 32);
    const lanes = [0, 1, 2].map((p) => senderLane(layout, p));
    const box = new Mailbox(layout);
    for (let i = 0; i < 4; i++) for (const [p, l] of lanes.entries()) expect(l.tryPushInts(1, i, p, Int32Array.of(i), 1)).toBe(true);
    expect(box.pendingMessages()).toBe(12);
    const first: number[] = [];
    for (let d = 0; d < 3; d++) first.push(drainAll(box, 1)[0]?.from ?? -1);
    expect(first.sort()).toEqual([0, 1, 2]);
    const rest = drainAll(box);
    for (const p of [0, 1, 2]) expect(rest.filter((m) => m.from === p).map((m) => m.to)).toEqual([1, 2, 3]);
    expect(box.isEmpty()).toBe(true);
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
