// Benchmark-only worker: the same actors and the same ActorHost as the threaded runtime, but messages travel
// by postMessage instead of the SharedArrayBuffer rings. It is the baseline the rings are measured against
// (bench/runtime.bench.ts, "actors over postMessage"); nothing else uses it.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { Timers } from '../src/runtime/clock.js';
import { ActorHost } from '../src/runtime/host.js';
import type { Effect, ModelEvent, Wire } from '../src/runtime/model.js';
import { buildWorkload } from '../src/runtime/workloads.js';

export interface PmBenchData {
  readonly workload: { readonly name: string; readonly params: Readonly<Record<string, Wire>> };
  readonly actor: number;
  readonly peer: MessagePort;
}

export type PmBenchCommand =
  | { readonly type: 'arm'; readonly field: string; readonly target: number }
  | { readonly type: 'inject'; readonly event: ModelEvent }
  | { readonly type: 'stop' };

interface Envelope {
  readonly to: number;
  readonly event: ModelEvent;
}

if (!parentPort) throw new Error('pm-actor-bench must run in a worker thread');
const main = parentPort;
const data = workerData as PmBenchData;
const workload = buildWorkload(data.workload.name, data.workload.params);
const host = new ActorHost(workload, new Timers(() => performance.now()));
const me = data.actor;
let field = '';
let target = Number.POSITIVE_INFINITY;

const route = (effects: readonly Effect[]): void => {
  for (const e of effects) {
    if (e.type !== 'rt.send') throw new Error('pm-actor-bench: atomic effects are not supported');
    if (e.to === me) deliver(e.event);
    else data.peer.postMessage({ to: e.to, event: e.event } satisfies Envelope);
  }
};
const deliver = (event: ModelEvent): void => {
  route(host.deliver(me, event));
  const ctx = host.final(me).context as Record<string, Wire>;
  if ((ctx[field] as number) >= target) {
    target = Number.POSITIVE_INFINITY;
    main.postMessage('reached');
  }
};
for (const [, effects] of host.start([me])) route(effects);
data.peer.on('message', (m: Envelope) => deliver(m.event));
main.on('message', (c: PmBenchCommand) => {
  if (c.type === 'arm') {
    field = c.field;
    target = c.target;
  } else if (c.type === 'inject') {
    deliver(c.event);
  } else {
    data.peer.close();
    main.close();
  }
});
