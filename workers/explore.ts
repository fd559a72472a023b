// Worker entry point of the exploration pool (piscina): one task explores a chunk of deterministic executions
// of a workload from one scheduler seed, and sends back what it found and, if an execution failed, its schedule.
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { type ChunkResult, type ChunkTask, exploreChunk } from '../src/scenario/chunk.js';

export default function explore(task: ChunkTask): Promise<ChunkResult> {
  return exploreChunk(task);
}
