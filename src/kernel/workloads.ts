// Registers the kernel's workloads by name, for every thread that may host them (imported for its effect by
// the worker entry point and the CLI).
import { registerWorkload } from '../runtime/workloads.js';
import { kernelSelftestWorkload } from './selftest.js';

registerWorkload('kernel-selftest', kernelSelftestWorkload);
