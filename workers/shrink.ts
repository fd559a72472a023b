// Worker entry point of `iommu-sim shrink`: the shrink runs the workload back to back without a pause, so it
// runs here, leaving the CLI's thread free to see Ctrl-C and SIGTERM and to stop it with its summary so far.
import { parentPort, workerData } from 'node:worker_threads';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { type ShrinkJob, type ShrinkMessage, shrinkJob } from '../src/cli/shrink-run.js';

if (!parentPort) throw new Error('shrink must run in a worker thread');
const port = parentPort;
shrinkJob(workerData as ShrinkJob, (m: ShrinkMessage) => port.postMessage(m));
