// The `ioasid` preset (seed 003): the IOASID allocator with its sets and subscribers, SVA processes and VMs —
// its parameters picked from the model's (src/workloads/params/), its defaults, its topology. The workload it
// builds is src/workloads/ioasid.ts's: in scenario mode a configuration of the one model (model.ts).
import type { IoasidChain, IoasidLock } from '../../core/ioasid.js';
import type { Sleeper } from '../../core/ioasid-subscribers.js';
import { InputError } from '../../runtime/errors.js';
import type { Wire } from '../../runtime/model.js';
import { int, oneOf, type PresetSpec, parsePreset, pick } from '../params/define.js';
import { FAULTS, IOASID_WORKLOAD_BUGS, type IoasidWorkloadBug } from '../params/faults.js';
import { type FreePolicy, POLICIES } from '../params/policies.js';
import { TOPOLOGY } from '../params/topology.js';
import { type IoasidMode, WORKLOAD } from '../params/workload.js';
import { flatTopology, setsTopology, type Topology } from '../topology.js';

export interface IoasidParams {
  readonly mode: IoasidMode;
  /** The ID space: 2^bits IDs installed as the capacity (IDs 1..2^bits - 1). */
  readonly bits: number;
  readonly lock: IoasidLock;
  readonly chain: IoasidChain;
  readonly free: FreePolicy;
  /** A subscriber whose callback takes a mutex. */
  readonly sleeper: Sleeper;
  readonly bug: IoasidWorkloadBug;
  /** Declare and register VFIO, KVM and the IOMMU driver (the benchmarks measure the allocator alone). */
  readonly subscribers: boolean;
  /** SVA processes (scenario). */
  readonly processes: number;
  /** VMs, one ioasid_set each (scenario). */
  readonly vms: number;
  /** vCPU threads of each VM allocating in its set at once. */
  readonly vcpus: number;
  /** Each VM's set quota. */
  readonly quota: number;
  /** Guest PASIDs each VM asks for (past the quota: -ENOSPC). */
  readonly pasids: number;
  /** DMA requests each SVA process has its device issue once bound (scenario). */
  readonly dmas: number;
  /** The system set's quota (0: what the VMs leave, at most PID_MAX_DEFAULT). */
  readonly systemQuota: number;
  /** find modes: lookups (or updates) per task when no driver spawns them. */
  readonly iterations: number;
  /** find modes: driver actors that spawn the loops on `go n` (driver 0 the updater, the others readers). */
  readonly drivers: number;
  readonly checkers: boolean;
  /** Accepted for symmetry with the other workloads' CLI (the scheduler's seed is the run's). */
  readonly seed: number;
  readonly hungTaskSecs: number;
  /** Scripted users (JSON: `{ "user/0": [{ "op": "alloc", … }, …] }` — ioasid-script.ts); scenario mode only. */
  readonly steps: string;
  /** Patches under review (patch-loader.ts), mode=scenario only: the older one-file spelling, then the list. */
  readonly extension: string;
  readonly patches: string;
}

export const IOASID_DEFAULTS: IoasidParams = {
  mode: 'scenario',
  bits: 20,
  lock: 'spinlock',
  chain: 'atomic',
  free: 'rcu',
  sleeper: 'none',
  bug: 'none',
  subscribers: true,
  processes: 2,
  vms: 2,
  vcpus: 2,
  quota: 4,
  pasids: 5,
  dmas: 2,
  systemQuota: 0,
  iterations: 100,
  drivers: 0,
  checkers: true,
  seed: 1,
  hungTaskSecs: 120,
  steps: '',
  extension: '',
  patches: '',
};

/** PID_MAX_DEFAULT: the system set's quota the series suggests ("e.g. PID_MAX"). */
export const PID_MAX_DEFAULT = 32768;
/** IDs the find benchmark looks up (1..FIND_IDS). */
export const FIND_IDS = 64;
/** Scripted users at most: with ioasid_init and a launcher, the run's initial tasks stay within 16. */
export const MAX_SCRIPT_USERS = 8;

/** The ioasid preset's parameters: seed 003's allocator, its sets and subscribers, SVA processes and VMs. */
export const IOASID_PRESET: PresetSpec<IoasidParams> = {
  name: 'ioasid',
  summary: 'The IOASID allocator (seed 003): capacity, sets with quotas, find under RCU, notifier chains to VFIO, KVM and the IOMMU driver; SVA processes bind through the one bind path with system PASIDs and DMA; a PASID is freed at unbind, from the MMU notifier\'s free_notifier, or from a workqueue.',
  params: {
    ...pick('topology', TOPOLOGY, ['bits', 'subscribers', 'processes', 'vms', 'vcpus', 'quota', 'systemQuota'], { processes: int(0, 64) }),
    ...pick('policies', POLICIES, ['lock', 'chain', 'free']),
    pasids: { concept: 'workload', schema: int(0, 1 << 20, 'ioasid: guest PASIDs each VM asks for (past its quota: -ENOSPC).') },
    ...pick('faults', FAULTS, ['sleeper', 'bug', 'extension', 'patches'], { bug: oneOf(IOASID_WORKLOAD_BUGS) }),
    ...pick('workload', WORKLOAD, ['mode', 'iterations', 'drivers', 'checkers', 'seed', 'hungTaskSecs', 'steps', 'dmas']),
  },
  defaults: IOASID_DEFAULTS,
  check: (p) => {
    if (p.steps !== '' && p.mode !== 'scenario') throw new InputError(`ioasid: steps: scripted users run in mode=scenario only, not ${p.mode}`);
    // The benchmark modes run the allocator alone, without the model a patch's ctx is made of.
    const patched = p.patches !== '' ? 'patches' : p.extension !== '' ? 'extension' : undefined;
    if (patched && p.mode !== 'scenario') throw new InputError(`ioasid: ${patched}: patches apply in mode=scenario only (the model), not ${p.mode} (the allocator alone)`);
    if (!p.checkers && p.mode === 'scenario') throw new InputError('ioasid: checkers=false is for the benchmark modes (alloc-free, find-rcu, find-lock): a scenario runs with the kernel\'s checkers');
    const cap = 2 ** p.bits;
    // The system set is allocated whatever the processes (a set of quota 0 is -EINVAL): it needs one IOASID at least.
    const system = Math.max(p.processes, p.systemQuota, 1);
    if (p.mode === 'scenario' && p.vms * p.quota + system > cap - 1) {
      throw new InputError(
        `ioasid: ${p.vms} VMs × quota ${p.quota} and a system set for ${system} PASIDs do not fit in ${cap - 1} IOASIDs (bits=${p.bits})`,
      );
    }
    if (p.mode === 'scenario' && p.systemQuota !== 0 && p.systemQuota < p.processes) {
      throw new InputError(`ioasid: systemQuota ${p.systemQuota} is below the ${p.processes} processes' PASIDs`);
    }
    if ((p.mode === 'find-rcu' || p.mode === 'find-lock') && cap - 1 < FIND_IDS) throw new InputError(`ioasid: find modes need bits ≥ 7`);
  },
};

export function ioasidParams(raw: Readonly<Record<string, Wire>>): IoasidParams {
  return parsePreset(IOASID_PRESET, raw);
}

/**
 * The preset's topology: the processes' mms and a set per VM (scenario mode only), and with processes the
 * accelerator they bind to, behind one VT-d unit.
 */
export function ioasidTopology(p: IoasidParams): Topology {
  const scenario = p.mode === 'scenario';
  const sets = setsTopology(scenario ? p.processes : 0, Array.from({ length: scenario ? p.vms : 0 }, () => p.quota));
  if (sets.processes === 0) return sets;
  return { ...flatTopology(['vtd'], 1, sets.processes), ioasidSets: sets.ioasidSets };
}
