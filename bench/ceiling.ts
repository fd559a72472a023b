// The machine's own ceiling for threads of this model (issue #19): copies of one deterministic run, a worker
// thread each, sharing nothing (no memory, lock or message between them). What two copies get through over one
// is the most any runtime design can get from two threads of this code on this machine: each isolate's V8
// compiler and GC threads want cores too (one isolate running the model keeps about 1.5 cores busy), so a
// 2-core machine does not give two copies twice the work of one.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { Wire } from '../src/runtime/model.js';
import { workerUrl } from '../src/runtime/paths.js';

/** One copy's run: a workload, run in the deterministic runtime under a random schedule of `seed`. */
export interface CeilingJob {
  readonly workload: string;
  readonly params: Readonly<Record<string, Wire>>;
  readonly seed: number;
}

/** What workers/ceiling-worker.ts posts: ready once its workload is built, done after its run. */
export type CeilingMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly steps: number; readonly delivered: number; readonly problems: readonly string[] };

export interface IndependentRuns {
  /** Summed over the copies. */
  readonly steps: number;
  readonly delivered: number;
  /** From "go" to the last copy's result. */
  readonly ms: number;
}

async function nextMessage(w: Worker): Promise<CeilingMessage> {
  // events.once rejects on the worker's 'error' (an exception in the worker).
  const [m] = (await once(w, 'message')) as [CeilingMessage];
  return m;
}

/**
 * `copies` copies of `job`, a worker thread each, started at the same moment once every copy has built its
 * workload (thread and isolate start-up and building stay outside the time, as in the threaded runs).
 */
export async function independentRuns(job: CeilingJob, copies: number): Promise<IndependentRuns> {
  const url = workerUrl('ceiling-worker');
  const ws = Array.from({ length: copies }, () => new Worker(url, { workerData: job }));
  try {
    await Promise.all(ws.map(nextMessage));
    const results = Promise.all(ws.map(nextMessage));
    const t0 = performance.now();
    for (const w of ws) w.postMessage('go');
    const done = await results;
    const ms = performance.now() - t0;
    let steps = 0;
    let delivered = 0;
    for (const m of done) {
      if (m.type !== 'done') throw new Error(`ceiling: a copy sent ${m.type} where its result was expected`);
      if (m.problems.length > 0) throw new Error(`ceiling ${job.workload}: the run is not clean: ${m.problems.join('; ')}`);
      steps += m.steps;
      delivered += m.delivered;
    }
    return { steps, delivered, ms };
  } finally {
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

/**
 * How much of what the machine allows two threads the threaded runtime gets: its 2-worker speed-up over 1 worker
 * divided by two independent copies' over one (1: all of it).
 */
export function shareOfCeiling(twoWorkers: number, oneWorker: number, ceilingTwo: number, ceilingOne: number): number {
  return twoWorkers / oneWorker / (ceilingTwo / ceilingOne);
}
