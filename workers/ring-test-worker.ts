// Worker entry for test/ring.test.ts: the other side of a shared Ring or Mailbox, so the tests exercise real
// cross-thread publication, backpressure and parking rather than a single-threaded imitation. It receives
// {sab or mailbox, role, params} through workerData, plays one role and reports with postMessage; the deterministic
// message contents are exported so the test can check them byte for byte.
import { parentPort, workerData } from 'node:worker_threads';
import { Outbox } from '../src/runtime/outbox.js';
import { Mailbox, type MailboxLayout, senderLane } from '../src/runtime/mailbox.js';
import { Ring } from '../src/runtime/ring.js';

/** mulberry32: a tiny deterministic generator, so producer and checker agree on contents without sharing. */
export function prng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Content of message i of the wrap-around stream: its length and bytes derive from (seed, i) only. */
export function wrapMessage(seed: number, i: number, maxLen: number): Uint8Array {
  const r = prng((seed * 1_000_003 + i) | 0);
  const len = r() % (maxLen + 1);
  const b = new Uint8Array(len);
  for (let j = 0; j < len; j++) b[j] = r() & 255;
  return b;
}

/** Payload length of message `seq` of the many-producer stream: 8..97 bytes, so 1 or 2 slots of 64. */
export function mpLength(seq: number): number {
  return seq % 3 === 0 ? 8 : 8 + ((seq * 7) % 90);
}

/** Filler byte at index j of message `seq` of the many-producer stream. */
export function mpByte(seq: number, j: number): number {
  return ((seq + j) * 31) & 255;
}

export type RingTestRole = 'producer' | 'consumer' | 'wrap-producer' | 'filler' | 'parker';

export interface RingTestData {
  ringTest: true;
  /** wrap-producer, filler: a bare ring. */
  sab?: SharedArrayBuffer;
  /** producer (its lane is params.id), consumer, parker: a mailbox. */
  mailbox?: MailboxLayout;
  role: RingTestRole;
  params: Record<string, number>;
}

export interface ProducerReport {
  type: 'producer';
  id: number;
  sent: number;
  peakHeld: number;
  heldTotal: number;
}

export interface ConsumerReport {
  type: 'consumer';
  received: number;
  perProducer: number[];
  errors: number;
  firstError: string;
  /** park() calls that slept their whole timeout, after the first message. */
  timeouts: number;
  /** Times the consumer slept. */
  parks: number;
}

export interface FillerReport {
  type: 'filler';
  pushed: number;
  refusedAfterFull: number;
}

export interface ParkerEvent {
  type: 'parking' | 'parked';
  round: number;
  result?: string;
  payloads?: number[][];
}

export type RingTestReport = ProducerReport | ConsumerReport | FillerReport | ParkerEvent | { type: 'done' };

function post(m: RingTestReport): void {
  parentPort?.postMessage(m);
}

const sleepWord = new Int32Array(new SharedArrayBuffer(4));
function nap(ms: number): void {
  Atomics.wait(sleepWord, 0, 0, ms);
}

function producer(ring: Ring, p: Record<string, number>): void {
  const id = p.id;
  const count = p.count;
  const high = p.high ?? 512; // held messages before the producer starts waiting for the consumer
  const out = new Outbox(ring);
  // batch > 0: append groups of up to `batch` messages and publish each group with one store instead.
  const batch = p.batch ?? 0;
  let appended = 0;
  const ints = new Int32Array(2);
  const bytes = new Uint8Array(128);
  const header = new Int32Array(bytes.buffer, 0, 2);
  const append = (push: () => boolean): void => {
    if (!push()) {
      ring.publish(); // what was appended first must go before waiting for room
      while (!push()) nap(0.05);
    }
    if (++appended >= batch) {
      ring.publish();
      appended = 0;
    }
  };
  for (let seq = 0; seq < count; seq++) {
    if (seq % 3 === 0) {
      ints[0] = id;
      ints[1] = seq;
      if (batch === 0) out.sendInts(1, 0, id, ints, 2);
      else append(() => ring.tryAppendInts(1, 0, id, ints, 2));
    } else {
      const len = mpLength(seq);
      header[0] = id;
      header[1] = seq;
      for (let j = 8; j < len; j++) bytes[j] = mpByte(seq, j);
      if (batch === 0) out.send(2, 0, id, bytes, 0, len);
      else append(() => ring.tryAppend(2, 0, id, bytes, 0, len));
    }
    // pauseEvery > 0: a short nap now and then, so that the consumer runs dry and parks.
    const pauseEvery = p.pauseEvery ?? 0;
    if (pauseEvery > 0 && seq % pauseEvery === 0) {
      ring.publish();
      nap(0.2);
    }
    // Bounded local memory: past `high` held messages, wait (without spinning on a shared core) for room.
    if (out.held > high) {
      while (out.held > high >> 3) if (out.flush() === 0) nap(0.05);
    }
  }
  ring.publish();
  while (out.held > 0) if (out.flush() === 0) nap(0.05);
  post({ type: 'producer', id, sent: count, peakHeld: out.peakHeld, heldTotal: out.heldTotal });
}

function consumer(ring: Mailbox, p: Record<string, number>): void {
  const producers = p.producers;
  const total = p.total;
  const next = new Array<number>(producers).fill(0);
  let received = 0;
  let errors = 0;
  let firstError = '';
  let timeouts = 0;
  const fail = (why: string): void => {
    if (errors++ === 0) firstError = why;
  };
  const check = (kind: number, from: number, buf: Uint8Array, off: number, len: number, ints: Int32Array): string => {
    const id = ints[off >> 2];
    const seq = ints[(off >> 2) + 1];
    if (id !== from || id < 0 || id >= producers) return `bad producer id ${id} from ${from}`;
    if (seq !== next[id]) return `producer ${id}: expected seq ${next[id]}, got ${seq}`;
    next[id] = seq + 1;
    if (kind !== (seq % 3 === 0 ? 1 : 2) || len !== mpLength(seq)) return `seq ${seq}: kind ${kind} len ${len}`;
    for (let j = 8; j < len; j++) if (buf[off + j] !== mpByte(seq, j)) return `seq ${seq}: byte ${j} differs`;
    return '';
  };
  const onMessage = (kind: number, _to: number, from: number, buf: Uint8Array, off: number, len: number, ints: Int32Array): void => {
    received++;
    const why = check(kind, from, buf, off, len, ints);
    if (why !== '') fail(why);
  };
  const spinMicros = p.spinMicros ?? 50;
  let idle = 0;
  while (received < total) {
    if (ring.drain(256, onMessage) > 0) {
      idle = 0;
      continue;
    }
    // Once they started, producers never pause for a second: a park that sleeps its whole second slept
    // through a publication (a lost wake-up). Before the first message, the producers may still be starting.
    // (A park may also return 'timeout' early, woken by a producer that saw the mark of an earlier park.)
    const since = performance.now();
    const r = ring.park(1000, spinMicros);
    if (r === 'timeout' && received > 0 && performance.now() - since >= 900) timeouts++;
    if (r === 'timeout' && ++idle > 30) break; // 30 s without progress: something was lost, report it
    if (r === 'closed') break;
  }
  post({ type: 'consumer', received, perProducer: next, errors, firstError, timeouts, parks: ring.stats().parks });
}

function wrapProducer(ring: Ring, p: Record<string, number>): void {
  for (let i = 0; i < p.count; i++) {
    const m = wrapMessage(p.seed, i, p.maxLen);
    while (!ring.tryPush(3, i, 7, m)) nap(0.02);
  }
  post({ type: 'done' });
}

function filler(ring: Ring): void {
  const payload = new Int32Array(1);
  let pushed = 0;
  for (;;) {
    payload[0] = pushed;
    if (!ring.tryPushInts(4, pushed, 9, payload, 1)) break;
    pushed++;
  }
  let refusedAfterFull = 0;
  for (let i = 0; i < 100; i++) if (!ring.tryPushInts(4, -1, 9, payload, 1)) refusedAfterFull++;
  post({ type: 'filler', pushed, refusedAfterFull });
}

function parker(ring: Mailbox, p: Record<string, number>): void {
  for (let round = 0; round < p.rounds; round++) {
    post({ type: 'parking', round });
    const result = ring.park(p.timeoutMs, p.spinMicros ?? 50);
    const payloads: number[][] = [];
    ring.drain(1000, (_k, _t, _f, _buf, off, len, ints) => {
      payloads.push(Array.from(ints.subarray(off >> 2, (off + len) >> 2)));
    });
    post({ type: 'parked', round, result, payloads });
  }
}

const data = workerData as RingTestData | null;
if (parentPort !== null && data !== null && typeof data === 'object' && data.ringTest === true) {
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error(`ring-test-worker: role ${data.role} needs its buffer`);
    return v;
  };
  switch (data.role) {
    case 'producer':
      producer(senderLane(need(data.mailbox), data.params.id), data.params);
      break;
    case 'consumer':
      consumer(new Mailbox(need(data.mailbox)), data.params);
      break;
    case 'wrap-producer':
      wrapProducer(new Ring(need(data.sab)), data.params);
      break;
    case 'filler':
      filler(new Ring(need(data.sab)));
      break;
    case 'parker':
      parker(new Mailbox(need(data.mailbox)), data.params);
      break;
  }
}
