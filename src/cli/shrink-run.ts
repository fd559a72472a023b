// `iommu-sim shrink` on a worker thread (workers/shrink.ts): the shrink itself is one synchronous loop of runs,
// in which the CLI's thread could not see a signal. Here it reports its progress as it goes and can be stopped
// (the worker terminated) with the figures so far.
import { Worker } from 'node:worker_threads';
import { workerUrl } from '../runtime/paths.js';
import { Schedule } from '../runtime/schedule.js';
import { NothingToShrink, type ShrinkProgress, type ShrinkResult, shrink } from '../runtime/shrink.js';
import { RemoteFailure, type RemoteError, toRemote } from './remote.js';

export interface ShrinkJob {
  readonly schedule: Uint8Array;
  readonly maxRuns: number;
}

/** A shrink's result as it crosses threads: the schedule encoded. */
export type ShrinkDone = Omit<ShrinkResult, 'schedule'> & { readonly schedule: Uint8Array };

export type ShrinkMessage =
  | ({ readonly type: 'progress' } & ShrinkProgress)
  | { readonly type: 'done'; readonly result: ShrinkDone }
  | { readonly type: 'nothing'; readonly message: string }
  | { readonly type: 'error'; readonly error: RemoteError };

/** The worker's side: shrink, and say how it went. */
export function shrinkJob(job: ShrinkJob, post: (m: ShrinkMessage) => void): void {
  try {
    const r = shrink(Schedule.decode(job.schedule), { maxRuns: job.maxRuns, onProgress: (p) => post({ type: 'progress', ...p }) });
    post({ type: 'done', result: { ...r, schedule: r.schedule.encode() } });
  } catch (err) {
    if (err instanceof NothingToShrink) post({ type: 'nothing', message: err.message });
    else post({ type: 'error', error: toRemote(err) });
  }
}

export type ShrinkOutcome =
  | { readonly kind: 'done'; readonly result: ShrinkResult }
  | { readonly kind: 'nothing'; readonly message: string }
  | { readonly kind: 'stopped'; readonly last: ShrinkProgress | undefined };

/** The CLI's side: run the shrink on a worker; `signal` terminates it. Errors of the shrink are thrown here. */
export function shrinkOnWorker(schedule: Schedule, maxRuns: number, onProgress: (p: ShrinkProgress) => void, signal: AbortSignal): Promise<ShrinkOutcome> {
  const job: ShrinkJob = { schedule: schedule.encode(), maxRuns };
  const worker = new Worker(workerUrl('shrink'), { workerData: job });
  let last: ShrinkProgress | undefined;
  return new Promise<ShrinkOutcome>((resolve, reject) => {
    const stop = (): void => {
      void worker.terminate();
      resolve({ kind: 'stopped', last });
    };
    signal.addEventListener('abort', stop, { once: true });
    worker.on('message', (m: ShrinkMessage) => {
      if (m.type === 'progress') {
        last = { runs: m.runs, maxRuns: m.maxRuns, steps: m.steps };
        onProgress(last);
        return;
      }
      signal.removeEventListener('abort', stop);
      void worker.terminate();
      if (m.type === 'done') resolve({ kind: 'done', result: { ...m.result, schedule: Schedule.decode(m.result.schedule, 'the shrunk schedule') } });
      else if (m.type === 'nothing') resolve({ kind: 'nothing', message: m.message });
      else reject(new RemoteFailure(m.error));
    });
    worker.on('error', (err) => {
      signal.removeEventListener('abort', stop);
      reject(err);
    });
    // Settled already unless the worker died without a word (out of memory): then say so.
    worker.on('exit', (code) => reject(new Error(`the shrink's worker thread exited with code ${code} before it reported`)));
  });
}
