// Worker entry point of the threaded runtime: one thread hosting a share of the actors (src/runtime/worker-host.ts).
import { parentPort, workerData } from 'node:worker_threads';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { runWorker, type WorkerInit } from '../src/runtime/worker-host.js';

if (!parentPort) throw new Error('actor-host must run in a worker thread');
const port = parentPort;
runWorker(workerData as WorkerInit, (report) => port.postMessage(report));
