// The far side of every case of bench/transport.ts: a consumer (or echo server) thread for the raw SPSC
// ring, the mailbox, postMessage, and the two round-trip cases. One entry point with a role, so each
// case spawns one worker and all cases pay the same thread start-up, scheduling and message-reading work:
// the consumer folds the words of every 32-byte message into a checksum, and acknowledges by storing its
// running count into a shared control word (or, for postMessage, by posting a count back).
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { RawRing } from '../bench/raw-ring.js';
import { Mailbox, type MailboxLayout, senderLane } from '../src/runtime/mailbox.js';
import { WaitGovernor } from '../src/runtime/park.js';

/** Control words shared with the benchmark thread (Int32 indices, 128 bytes apart). */
export const CTL_ACK = 0; // messages consumed so far (wraps; compare with `| 0` differences)
export const CTL_STOP = 32; // 1: the raw consumer must leave its spin loop
export const CTL_SUM = 64; // checksum, published at the end
export const CTL_WORDS = 96;

export type TransportRole = 'raw' | 'ring' | 'post' | 'rt-ring' | 'rt-post';

export interface TransportWorkerData {
  transportBench: true;
  role: TransportRole;
  ctl: SharedArrayBuffer;
  /** raw: the RawRing. */
  sab?: SharedArrayBuffer;
  /** ring: the mailbox; rt-ring: the request mailbox. */
  mailbox?: MailboxLayout;
  /** rt-ring: the response mailbox (this worker sends on its lane 0). */
  mailbox2?: MailboxLayout;
  /** post / rt-post: the port messages arrive on. */
  port?: MessagePort;
  /** post: acknowledge every `batch` messages. */
  batch?: number;
}

function raw(ctl: Int32Array, sab: SharedArrayBuffer): void {
  const ring = new RawRing(sab);
  const sum = new Int32Array(1);
  let consumed = 0;
  let idle = 0;
  for (;;) {
    const n = ring.drain(sum);
    if (n > 0) {
      consumed = (consumed + n) | 0;
      Atomics.store(ctl, CTL_ACK, consumed);
      idle = 0;
    } else if ((++idle & 1023) === 0 && Atomics.load(ctl, CTL_STOP) === 1) {
      break;
    }
  }
  Atomics.store(ctl, CTL_SUM, sum[0]);
}

function ring(ctl: Int32Array, layout: MailboxLayout): void {
  const r = new Mailbox(layout, new WaitGovernor({ runnable: () => 2 })); // the producer is busy
  let s = 0;
  // Folded in a local, as the raw consumer does: `s` lives in the closure's context, and a context store per
  // word doubled the time it took to consume a message (single-thread).
  const onMessage = (_k: number, _t: number, _f: number, _b: Uint8Array, off: number, len: number, ints: Int32Array): void => {
    const w = off >> 2;
    const end = w + (len >> 2);
    let acc = s;
    for (let i = w; i < end; i++) acc = (acc + ints[i]) | 0;
    s = acc;
  };
  let consumed = 0;
  for (;;) {
    const n = r.drain(1024, onMessage);
    if (n > 0) {
      consumed = (consumed + n) | 0;
      Atomics.store(ctl, CTL_ACK, consumed);
    } else if (r.park(1000) === 'closed') {
      break;
    }
  }
  Atomics.store(ctl, CTL_SUM, s);
}

function rtRing(ctl: Int32Array, reqLayout: MailboxLayout, respLayout: MailboxLayout): void {
  const req = new Mailbox(reqLayout, new WaitGovernor({ runnable: () => 2 })); // the requester is busy
  const resp = senderLane(respLayout, 0);
  let served = 0;
  // The response echoes the request's envelope and payload: a 32-byte message each way.
  const onMessage = (kind: number, to: number, from: number, buf: Uint8Array, off: number, len: number): void => {
    while (!resp.tryPush(kind, from, to, buf, off, len)) {
      // The requester drains its responses before sending more, so this only spins on a full response ring.
    }
  };
  for (;;) {
    const n = req.drain(64, onMessage);
    if (n > 0) served = (served + n) | 0;
    else if (req.park(1000) === 'closed') break;
  }
  Atomics.store(ctl, CTL_ACK, served);
}

function post(ctl: Int32Array, port: MessagePort, batch: number): void {
  let consumed = 0;
  let s = 0;
  port.on('message', (m: Uint8Array) => {
    const v = new Int32Array(m.buffer, m.byteOffset, m.byteLength >> 2);
    for (let i = 0; i < v.length; i++) s = (s + v[i]) | 0;
    consumed++;
    if (consumed % batch === 0) {
      Atomics.store(ctl, CTL_SUM, s);
      port.postMessage(consumed);
    }
  });
}

function rtPost(port: MessagePort): void {
  port.on('message', (m: Uint8Array) => port.postMessage(m));
}

const data = workerData as TransportWorkerData | null;
if (parentPort !== null && data !== null && typeof data === 'object' && data.transportBench === true) {
  const ctl = new Int32Array(data.ctl);
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`raw-ring-worker: role ${data.role} needs ${what}`);
    return v;
  };
  // Listener roles say they are listening; looping roles report when they leave their loop.
  switch (data.role) {
    case 'raw':
      raw(ctl, need(data.sab, 'sab'));
      break;
    case 'ring':
      ring(ctl, need(data.mailbox, 'mailbox'));
      break;
    case 'rt-ring':
      rtRing(ctl, need(data.mailbox, 'mailbox'), need(data.mailbox2, 'mailbox2'));
      break;
    case 'post':
      post(ctl, need(data.port, 'port'), need(data.batch, 'batch'));
      break;
    case 'rt-post':
      rtPost(need(data.port, 'port'));
      break;
  }
  parentPort.postMessage(data.role === 'post' || data.role === 'rt-post' ? 'listening' : 'done');
}
