// A workload made of kernel tasks alone (no actors): what the kernel's tests and small scenarios need.
import type { Workload } from '../runtime/model.js';
import type { Kernel } from './kernel.js';

export function kernelWorkload(
  k: Kernel,
  name: string,
  initialTasks: NonNullable<Workload['initialTasks']>,
  check: Workload['check'] = () => ({ ok: true, problems: [], counters: {} }),
): Workload {
  return { name, params: {}, actors: [], initial: [], sharedWords: k.words, tasks: k.taskFactories, monitor: k, initialTasks, check };
}
