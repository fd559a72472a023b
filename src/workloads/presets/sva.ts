// The `sva` preset: IOMMU units of any flavour mix with PCI devices dealt round-robin over them, processes that
// bind, DMA, fault, munmap, unbind and exit (built-in scripts, random rates or a scenario's script), the kernel's
// own DMA users — its parameters picked from the model's (src/workloads/params/), its defaults, its topology.
// The workload it builds is src/workloads/sva.ts's.
import { DRIVER_BUGS, type DriverBug, SVA_PASID_FREES } from '../../core/types.js';
import type { Flavour } from '../../hw/vendor.js';
import { MM_BUGS, type MmBug } from '../../kernel/mm/mm.js';
import { type Script, SCRIPTS } from '../../actors/process.js';
import { DEFAULT_RATES } from '../../actors/random-process.js';
import type { WorkQueue } from '../../actors/swq-process.js';
import type { Wire } from '../../runtime/model.js';
import { bool, int, oneOf, type PresetSpec, parsePreset, pick } from '../params/define.js';
import { FAULTS } from '../params/faults.js';
import { POLICIES, type TaskMm } from '../params/policies.js';
import { TOPOLOGY } from '../params/topology.js';
import { WORKLOAD } from '../params/workload.js';
import { flatTopology, type Topology } from '../topology.js';
import { DOMAINS_DEFAULTS } from './domains.js';
import type { ModelParams } from '../model.js';

/** The sva preset's parameters: the model's (model.ts) and its workload's — processes, their scripts and syscalls. */
export interface SvaParams extends Omit<ModelParams, 'bug' | 'multiDevicePasid'> {
  /** Flavour of each IOMMU unit, comma-separated: `vtd,amd,smmuv3,vtd`. */
  readonly iommus: string;
  readonly devices: number;
  readonly processes: number;
  /** A planted bug of the SVA path or of the mm's exit path (the oracles' negative control). */
  readonly bug: DriverBug | MmBug;
  readonly script: Script;
  /** `script: random`: each operation's weight, `bind:4,dma:8,munmap:1,unbind:3,exit:1`; `rounds` operations. */
  readonly rates: string;
  /** How bind_task (script bind-task-exit) holds the task's mm: get_task_mm's mm_users reference, or none. */
  readonly taskMm: TaskMm;
  /** Process i starts when process i-1 has closed its fd. */
  readonly sequential: boolean;
  readonly dmas: number;
  readonly rounds: number;
  readonly flags: number;
  readonly seed: number;
  /**
   * How processes tag their descriptors (src/actors/swq-process.ts): `dedicated` work queues carry their bond's
   * PASID, `shared` ones ENQCMD's — the task's IA32_PASID, loaded from mm->pasid.
   */
  readonly wq: WorkQueue;
  /** Devices each process opens (process i: devices i, i+1, … modulo `devices`); above 1, or with a shared wq, the processes are swq-process's. */
  readonly opens: number;
  /**
   * Scripted processes (JSON: an array, one list of steps per process — src/workloads/sva-script.ts); ''
   * runs `script` instead. Scenarios write it as their `script` section.
   */
  readonly steps: string;
  /** Devices with a kernel user (the first n). */
  readonly kdevices: number;
  /** Patches under review (patch-loader.ts): the older one-file spelling, then the list; '' for none. */
  readonly extension: string;
  readonly patches: string;
}

export const SVA_DEFAULTS: SvaParams = {
  iommus: 'vtd',
  devices: 1,
  processes: 1,
  pages: 8,
  caps: 'ats,pri,pasid',
  pasidBits: 8,
  ssidBits: 6,
  trusted: false,
  pasidAlloc: 'native',
  teardown: 'drain',
  fault: 'protocol',
  drainTimeoutMs: 1000,
  lock: 'spinlock',
  free: 'unbind',
  pasidLife: 'mm',
  notifier: 'domain',
  lookup: DOMAINS_DEFAULTS.lookup,
  users: DOMAINS_DEFAULTS.users,
  iopf: 'attach',
  bug: 'none',
  misbehave: 'none',
  misbehaveDevice: 0,
  script: 'life',
  rates: DEFAULT_RATES,
  taskMm: 'get_task_mm',
  sequential: false,
  dmas: 4,
  rounds: 2,
  flags: 0,
  seed: 1,
  iotlb: 64,
  atc: 16,
  prqDepth: 128,
  wq: 'dedicated',
  opens: 1,
  steps: '',
  extension: '',
  patches: '',
  failAlloc: '',
  hungTaskSecs: 120,
  watchdogThresh: 10,
  rcuStallSecs: 21,
  cpus: 8,
  defaultDomain: 'none',
  addressSpaces: 128,
  kernel: 'none',
  kjobs: 8,
  kbuffers: 2,
  kthreads: 0,
  kdevices: 1,
  vfio: 'none',
  vfioTakeover: 'refuse',
  drmContexts: 0,
  drmRounds: 2,
};

/** The sva preset's parameters: the hardware topology, seed 000/001/002/003/004's policies, processes that bind and DMA. */
export const SVA_PRESET: PresetSpec<SvaParams> = {
  name: 'sva',
  summary: 'IOMMU units of any flavour, PCI devices with ATS/PRI/PASID, processes that bind, DMA, fault, munmap, unbind and exit; the kernel\'s own DMA users.',
  params: {
    ...pick('topology', TOPOLOGY, ['iommus', 'devices', 'processes', 'pages', 'caps', 'pasidBits', 'ssidBits', 'trusted', 'iotlb', 'atc', 'prqDepth', 'addressSpaces', 'kdevices', 'opens']),
    ...pick('policies', POLICIES, ['pasidAlloc', 'teardown', 'fault', 'drainTimeoutMs', 'taskMm', 'wq', 'defaultDomain', 'vfioTakeover', 'lock', 'free', 'pasidLife', 'notifier', 'lookup', 'users', 'iopf'], {
      free: oneOf(SVA_PASID_FREES),
    }),
    ...pick('faults', FAULTS, ['bug', 'misbehave', 'misbehaveDevice', 'extension', 'patches', 'failAlloc'], { bug: oneOf([...DRIVER_BUGS, ...MM_BUGS.filter((b) => b !== 'none')]) }),
    ...pick('workload', WORKLOAD, ['script', 'rates', 'dmas', 'rounds', 'flags', 'seed', 'steps', 'hungTaskSecs', 'watchdogThresh', 'rcuStallSecs', 'cpus', 'kernel', 'kjobs', 'kbuffers', 'kthreads', 'vfio', 'drmContexts', 'drmRounds'], {
      script: oneOf(SCRIPTS),
      rounds: int(1, 1 << 16),
      seed: int(0, 0x7fffffff),
    }),
    sequential: { concept: 'workload', schema: bool('sva: process i starts when process i-1 has closed its fd (the unbind-inflight races run two processes one after the other).') },
  },
  defaults: SVA_DEFAULTS,
};

export function svaParams(raw: Readonly<Record<string, Wire>>): SvaParams {
  return parsePreset(SVA_PRESET, raw);
}

/** The preset's topology: the units of the flavours listed, devices dealt round-robin, a process per mm. */
export function svaTopology(p: SvaParams): Topology {
  return flatTopology(p.iommus.split(',') as Flavour[], p.devices, p.processes, p.kdevices);
}
