// Workloads by name, so that every worker thread can build the same workload from (name, params).
import { InputError } from './errors.js';
import type { Wire, Workload, WorkloadFactory } from './model.js';
import { pingpongWorkload, streamWorkload } from './bench-workloads.js';
import { selftestWorkload } from './selftest.js';

const registry = new Map<string, WorkloadFactory>([
  ['selftest', selftestWorkload],
  ['stream', streamWorkload],
  ['pingpong', pingpongWorkload],
]);

export function registerWorkload(name: string, factory: WorkloadFactory): void {
  registry.set(name, factory);
}

export function buildWorkload(name: string, params: Readonly<Record<string, Wire>>): Workload {
  const f = registry.get(name);
  if (!f) throw new InputError(`unknown workload '${name}' (known: ${[...registry.keys()].join(', ')})`);
  return f(params);
}
