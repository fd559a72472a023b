// The `domains` preset (seed 002): IOMMU groups of one or more devices, processes binding through shared SVA
// domains, page-fault handlers, a VFIO-like user — its parameters picked from the model's (src/workloads/params/),
// its defaults, its topology. The workload it builds is src/workloads/domains.ts's.
import type { MultiDevicePasid, PasidLookup } from '../../core/iommu.js';
import type { SvaUsers } from '../../core/sva-domain.js';
import { InputError } from '../../runtime/errors.js';
import type { Wire } from '../../runtime/model.js';
import { int, oneOf, type PresetSpec, parsePreset, pick } from '../params/define.js';
import { DOMAINS_BUGS, type DomainsBug, FAULTS } from '../params/faults.js';
import { POLICIES } from '../params/policies.js';
import { TOPOLOGY } from '../params/topology.js';
import { DOMAINS_SCRIPTS, type DomainsScript, WORKLOAD } from '../params/workload.js';
import { groupedTopology, type Topology } from '../topology.js';

export interface DomainsParams {
  readonly script: DomainsScript;
  readonly lookup: PasidLookup;
  readonly users: SvaUsers;
  readonly multiDevicePasid: MultiDevicePasid;
  /** IOMMU instances; group g sits behind instance g mod iommus. */
  readonly iommus: number;
  readonly groups: number;
  /** Devices in each group. */
  readonly groupSize: number;
  /** Processes (mm i+1 binds with PASID i+1). */
  readonly processes: number;
  /** Page-fault handler tasks. */
  readonly faults: number;
  /** Bind/unbind rounds of each process (and VFIO rounds in stress). */
  readonly rounds: number;
  /** Page requests each fault handler handles. */
  readonly lookups: number;
  /** max_pasids of every device (PASIDs 1 .. pasids-1; stress's VFIO task uses the last). */
  readonly pasids: number;
  /** bench: driver actors (one lookup loop each per `go`). */
  readonly drivers: number;
  /** A planted driver bug (negative control): a failing set_dev_pasid clears the entry it must leave alone. */
  readonly bug: DriverBug;
  readonly seed: number;
  /**
   * Scripted actors (JSON: `{ "drv/0": [{ "op": "attach", … }, …] }` — domains-script.ts); '' runs `script`.
   * Scenarios write it as their `script` section.
   */
  readonly steps: string;
}

/** The planted bugs of the domains preset (params/faults.ts). */
export type DriverBug = DomainsBug;
export const DRIVER_BUGS: readonly DriverBug[] = DOMAINS_BUGS;

export const DOMAINS_DEFAULTS: DomainsParams = {
  script: 'race',
  lookup: 'rcu',
  users: 'refcounted',
  multiDevicePasid: 'refused',
  iommus: 1,
  groups: 1,
  groupSize: 1,
  processes: 1,
  faults: 1,
  rounds: 1,
  lookups: 1,
  pasids: 8,
  drivers: 0,
  bug: 'none',
  seed: 1,
  steps: '',
};

/** The run's tasks are at most 16 (Workload.initialTasks), and each reader holds an RCU slot. */
export const MAX_INITIAL_TASKS = 16;

/** The domains preset's parameters: groups of devices, seed 002's policies, binds racing fault handlers. */
export const DOMAINS_PRESET: PresetSpec<DomainsParams> = {
  name: 'domains',
  summary: 'IOMMU groups and PASID-granular domains (seed 002): attach/detach/replace of {device, PASID}, SVA domains shared by the binds of one mm, fault handlers looking the domain up.',
  params: {
    ...pick('topology', TOPOLOGY, ['iommus', 'groups', 'groupSize', 'processes'], { iommus: int(1, 4), processes: int(1, 15) }),
    pasids: { concept: 'topology', schema: int(4, 1024, 'domains: max_pasids of every device (PASIDs 1..pasids-1; process i binds PASID i+1, stress\'s VFIO task uses the last).') },
    ...pick('policies', POLICIES, ['lookup', 'users', 'multiDevicePasid']),
    ...pick('faults', FAULTS, ['bug'], { bug: oneOf(DRIVER_BUGS) }),
    ...pick('workload', WORKLOAD, ['script', 'faults', 'rounds', 'lookups', 'drivers', 'seed', 'steps'], { script: oneOf(DOMAINS_SCRIPTS) }),
  },
  defaults: DOMAINS_DEFAULTS,
  check: (p) => {
    const tasks = p.steps !== '' || p.script === 'bench' || p.script === 'multi-device' ? 1 : p.processes + p.faults + (p.script === 'stress' ? 1 : 0);
    if (tasks > MAX_INITIAL_TASKS)
      throw new InputError(`domains: processes + faults (+1 VFIO task in stress) must be ≤ ${MAX_INITIAL_TASKS}, got ${tasks}`);
    // PASID i+1 for process i; the last PASID is the VFIO task's.
    if (p.processes > p.pasids - 2) throw new InputError(`domains: processes must be ≤ pasids - 2 (${p.pasids - 2}), got ${p.processes}`);
  },
};

export function domainsParams(raw: Readonly<Record<string, Wire>>): DomainsParams {
  return parsePreset(DOMAINS_PRESET, raw);
}

/** The preset's topology: `groups` groups of `groupSize` devices, group g behind unit g mod iommus. */
export function domainsTopology(p: DomainsParams): Topology {
  // VT-d units (`iommus` is a count); their attaches still go through hw/nohw.ts, not the VT-d driver.
  return groupedTopology(Array.from({ length: p.iommus }, () => 'vtd' as const), p.groups, p.groupSize, p.processes);
}
