// Benchmark-only worker: one copy of the scaling bench's ceiling (bench/ceiling.ts). It builds its workload,
// says ready, and on "go" runs it once in the deterministic runtime, sharing nothing with the other copies.
import { parentPort, workerData } from 'node:worker_threads';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import type { CeilingJob, CeilingMessage } from '../bench/ceiling.js';
import { runProblems } from '../bench/measure.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildWorkload } from '../src/runtime/workloads.js';

if (!parentPort) throw new Error('ceiling-worker must run in a worker thread');
const port = parentPort;
const job = workerData as CeilingJob;
const workload = buildWorkload(job.workload, job.params);
const scheduler = new RandomScheduler(job.seed);
scheduler.newExecution();
const post = (m: CeilingMessage): void => port.postMessage(m);
port.once('message', () => {
  const r = runDeterministic({ workload, seed: job.seed, scheduler });
  post({ type: 'done', steps: r.steps, delivered: r.accounting.delivered, problems: runProblems(r) });
});
post({ type: 'ready' });
