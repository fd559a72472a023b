// What a benchmark ran on, for the report's header: numbers quoted in a review need the CPU, the cores, the
// memory, the Node version, and how busy the machine already was (figures taken beside other load are rough).
import { arch, availableParallelism, cpus, loadavg, platform, release, totalmem } from 'node:os';

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly os: string;
  /** 1-minute load average when the run started (Linux; 0 elsewhere). */
  readonly loadAverage: number;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: totalmem() / 1024 ** 3,
    node: process.version,
    os: `${platform()} ${release()} ${arch()}`,
    loadAverage: loadavg()[0] ?? 0,
  };
}
