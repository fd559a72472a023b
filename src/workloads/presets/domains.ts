// The `domains` preset (seed 002): IOMMU units of any flavour with groups of one or more devices behind them,
// processes binding through shared SVA domains, page-fault handlers, a VFIO-like user — its parameters picked from
// the model's (src/workloads/params/), its defaults, its topology. The workload it builds is
// src/workloads/domains.ts's, on the one model (model.ts).
import type { MultiDevicePasid, PasidLookup } from '../../core/iommu.js';
import type { SvaUsers } from '../../core/sva-domain.js';
import type { PasidPlacement, Teardown } from '../../core/types.js';
import type { Flavour } from '../../hw/vendor.js';
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
  readonly pasidAlloc: PasidPlacement;
  readonly teardown: Teardown;
  /** Flavour of each IOMMU unit, comma-separated; group g sits behind unit g mod units. */
  readonly iommus: string;
  readonly groups: number;
  /** Devices in each group. */
  readonly groupSize: number;
  /** Processes (mm i+1 for process i), binding with the PASID the allocator gives their mm. */
  readonly processes: number;
  /** Page-fault handler tasks. */
  readonly faults: number;
  /** Bind/unbind rounds of each process (and VFIO rounds in stress). */
  readonly rounds: number;
  /** Page requests each fault handler handles. */
  readonly lookups: number;
  /** Every device's PASID width (PASIDs 1 .. 2^pasidBits - 1; the VFIO tasks use the last). */
  readonly pasidBits: number;
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
  /** Patches under review (patch-loader.ts): the older one-file spelling, then the list; '' for none. */
  readonly extension: string;
  readonly patches: string;
}

/** The planted bugs of the domains preset (params/faults.ts). */
export type DriverBug = DomainsBug;
export const DRIVER_BUGS: readonly DriverBug[] = DOMAINS_BUGS;

export const DOMAINS_DEFAULTS: DomainsParams = {
  script: 'race',
  lookup: 'rcu',
  users: 'refcounted',
  multiDevicePasid: 'refused',
  pasidAlloc: 'native',
  teardown: 'drain',
  iommus: 'vtd',
  groups: 1,
  groupSize: 1,
  processes: 1,
  faults: 1,
  rounds: 1,
  lookups: 1,
  pasidBits: 3,
  drivers: 0,
  bug: 'none',
  seed: 1,
  steps: '',
  extension: '',
  patches: '',
};

/** The run's tasks are at most 16 (Workload.initialTasks), and each reader holds an RCU slot. */
export const MAX_INITIAL_TASKS = 16;

/** The domains preset's parameters: groups of devices, seed 002's policies, binds racing fault handlers. */
export const DOMAINS_PRESET: PresetSpec<DomainsParams> = {
  name: 'domains',
  summary: 'IOMMU groups and PASID-granular domains (seed 002): attach/detach/replace of {device, PASID}, SVA domains shared by the binds of one mm, fault handlers looking the domain up.',
  params: {
    ...pick('topology', TOPOLOGY, ['iommus', 'groups', 'groupSize', 'processes', 'pasidBits'], { processes: int(1, 15), pasidBits: int(2, 10) }),
    ...pick('policies', POLICIES, ['lookup', 'users', 'multiDevicePasid', 'pasidAlloc', 'teardown']),
    ...pick('faults', FAULTS, ['bug', 'extension', 'patches'], { bug: oneOf(DRIVER_BUGS) }),
    ...pick('workload', WORKLOAD, ['script', 'faults', 'rounds', 'lookups', 'drivers', 'seed', 'steps'], { script: oneOf(DOMAINS_SCRIPTS) }),
  },
  defaults: DOMAINS_DEFAULTS,
  check: (p) => {
    const tasks = p.steps !== '' || p.script === 'bench' || p.script === 'multi-device' ? 1 : p.processes + p.faults + (p.script === 'stress' ? 1 : 0);
    if (tasks > MAX_INITIAL_TASKS)
      throw new InputError(`domains: processes + faults (+1 VFIO task in stress) must be ≤ ${MAX_INITIAL_TASKS}, got ${tasks}`);
    // The allocator hands out the lowest free PASIDs, one a process at a time; the last PASID is the VFIO task's.
    const pasids = 1 << p.pasidBits;
    if (p.processes > pasids - 2) throw new InputError(`domains: processes must be ≤ 2^pasidBits - 2 (${pasids - 2}), got ${p.processes}`);
  },
};

export function domainsParams(raw: Readonly<Record<string, Wire>>): DomainsParams {
  return parsePreset(DOMAINS_PRESET, raw);
}

/** The preset's topology: `groups` groups of `groupSize` devices, group g behind unit g mod units. */
export function domainsTopology(p: DomainsParams): Topology {
  return groupedTopology(p.iommus.split(',') as Flavour[], p.groups, p.groupSize, p.processes);
}
