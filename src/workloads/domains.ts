// The `domains` workload (seed 002; drivers/iommu/iommu.c, iommu-sva.c, io-pgfault.c): IOMMU groups of one or
// more devices, processes binding their mm to {device, PASID} through shared SVA domains, page-fault handlers
// looking the domain up with iommu_get_domain_for_dev_pasid, and a VFIO-like user attaching and replacing paging
// domains on a PASID — all kernel tasks, with every checker on, under the policies of DESIGN.md: the lookup
// (group->mutex or RCU), SVA domain users (refcounted or not) and PASID attach on multi-device groups.
//
// Scripts:
// - race: the seed's question. Each process binds, lets the device run, and unbinds (the last unbind frees the
//   SVA domain); each fault handler waits for its process's bind, then handles a page request — racing the
//   unbind. RCU lookups with unrefcounted users touch a freed domain (KASAN); the refcounted users do not.
// - stress: processes bind and unbind in rounds on devices of every group, fault handlers look up every
//   {device, PASID} (and the VFIO one, whose paging domain is of the wrong type), and the VFIO task runs the
//   attach / replace / detach semantics on its PASID, counting every result that is not the kernel's.
// - bench: one paging domain on {device 0, PASID 1} (set up by the run's first task); `driver` actors spawn
//   loops of lookups on `go n` and the teardown on `teardown` (bench/domains.bench.ts).
// - multi-device: the policy "PASID attach on multi-device groups". VFIO, owning device 0, attaches a paging
//   domain to {device 0, PASID pasids-1}, DMAs through it and detaches; meanwhile the driver of device 1 — the
//   other function of the same group — issues DMA tagged with that PASID, which nobody attached for it. Refused,
//   the attach is -EINVAL; allowed, it reaches every device of the group, and the isolation oracle (oracle.ts)
//   reports device 1's DMA reaching VFIO's domain.
// A scenario's `script` section (parameter `steps`) runs scripted actors instead (domains-script.ts).
// Teardown checks: kmemleak for domains, the groups' pasid_arrays and the driver's PASID entries empty, no
// bond or mm domain list left.
import type { KTask } from '../kernel/context.js';
import { EBUSY, EINVAL, ENOMEM } from '../kernel/errno.js';
import { Kernel, type KGen } from '../kernel/kernel.js';
import { staticsOffset } from '../kernel/memory.js';
import { defineMms, type MmStruct } from '../kernel/mm/mm.js';
import { definePhysMem } from '../kernel/mm/physmem.js';
import { synchronize_rcu } from '../kernel/rcu.js';
import { slabInit } from '../kernel/slab.js';
import type { Wire, Workload } from '../runtime/model.js';
import { taskDriver } from '../kernel/driver.js';
import {
  Domains,
  type GroupDevice,
  type GroupPolicies,
  IommuGroups,
} from '../core/iommu.js';
import { IOMMU_SVA } from '../core/iommu-sva.js';
import { SvaDomains } from '../core/sva-domain.js';
import { NoHwIommu } from '../hw/nohw.js';
import type { IommuUnit } from '../hw/iommu.js';
import { HW_HOT_EVENTS, HW_SHARED_EVENTS } from '../hw/messages.js';
import type { PciDevice } from '../hw/pci/device.js';
import { buildPresetHardware, hardwareWords, NO_SVA_PATH } from './hardware.js';
import type { Boot } from '../hw/boot.js';
import { defineDomainsScript, parseDomainsScript } from './domains-script.js';
import { checkWhileTasks } from './script.js';
import { type DomainsParams, domainsParams, domainsTopology, MAX_INITIAL_TASKS } from './presets/domains.js';
import { hardwareActors, pciSlotName } from './topology.js';
import { Refusals } from '../actors/lifecycle.js';
import { mmContextMachine } from '../actors/mm-context.js';

export { DOMAINS_SCRIPTS, type DomainsScript } from './params/workload.js';

export { DOMAINS_DEFAULTS, DOMAINS_PRESET, type DomainsParams, domainsParams, domainsTopology, MAX_INITIAL_TASKS } from './presets/domains.js';

/** Counters of what the run did, in shared memory (every thread adds to the same ones). */
export const DOMAINS_STATS = [
  'binds',
  'bind_failures',
  'unbinds',
  'dmas',
  'dma_blocked',
  'faults_handled',
  'faults_invalid',
  'faults_wrong_mm',
  'vfio_ops',
  'vfio_unexpected',
  'lookups',
  'lookup_misses',
  'peer_dmas',
  'peer_dmas_translated',
] as const;
export type DomainsStat = (typeof DOMAINS_STATS)[number];

/** I/O page tables for paging domains: the VFIO task's three and the benchmark's one. */
const PAGE_TABLES = 4;

export interface DomainsModel {
  readonly k: Kernel;
  readonly params: DomainsParams;
  readonly devices: readonly GroupDevice[];
  /** The processes' mms (mm i+1 for process i). */
  readonly mms: readonly MmStruct[];
  readonly domains: Domains;
  readonly groups: IommuGroups;
  readonly hw: NoHwIommu;
  readonly sva: SvaDomains;
  /** A counter's value now (the run's memory). */
  stat(name: DomainsStat): number;
  /** Add n to a counter (inside a performed point only). */
  count(name: DomainsStat, n?: number): void;
}

/** What the domains workload's tasks use: the model's pieces and the run's shared words. */
interface DomainsTaskEnv {
  readonly k: Kernel;
  readonly p: DomainsParams;
  readonly mms: readonly MmStruct[];
  readonly domains: Domains;
  readonly groups: IommuGroups;
  readonly hw: NoHwIommu;
  readonly sva: SvaDomains;
  /** Device i, modulo the topology's. */
  dev(i: number): GroupDevice;
  bump(t: KTask, name: DomainsStat, n?: number): KGen;
  count(name: DomainsStat, n?: number): void;
  /** Per process: 0 until its first bind has returned (then the round + 1, or -1 when it failed). */
  readonly bound: number;
  /** The bench's paging domain. */
  readonly benchDom: number;
  /** Whether a PASID may be attached to a device's group (the policy, and its size). */
  readonly pasidOk: boolean;
  /** kernel_init: the workload's tasks start once it has configured the hardware (user space starts then). */
  readonly boot: Boot;
}

/** script race and stress: the processes binding and the page-fault handlers racing their unbinds. */
function defineRaceTasks(env: DomainsTaskEnv): void {
  const { k, p, mms, hw, sva, dev, bump, count, bound, boot } = env;
  // A process: bind, let the device DMA, unbind — `rounds` times, on the next device each round.
  // TODO(#15, core): bind through the one SVA bind path (k.fn.iommu_sva_bind_device of core/iommu-sva.ts)
  // once SvaDomains (core/sva-domain.ts) is folded into it; this task then needs no change but the callee.
  k.task('proc', 'process', function* (t, args) {
    yield* boot.wait(t);
    const i = typeof args === 'number' ? args : 0;
    const mm = mms[i] as MmStruct;
    const pasid = mm.id;
    for (let r = 0; r < p.rounds; r++) {
      const d = dev(i + r);
      const b = yield* sva.iommu_sva_bind_device(t, d, mm, pasid);
      yield* k.step(t, 'bound', () => {
        count(b.err === 0 ? 'binds' : 'bind_failures');
        Atomics.store(k.i32, k.mem.statics + bound + i, b.err === 0 ? r + 1 : -1);
      });
      if (b.err !== 0) continue;
      const used = yield* hw.dma(t, d, pasid);
      yield* k.step(t, 'dma done', () => count(used === b.dom ? 'dmas' : 'dma_blocked'));
      yield* sva.iommu_sva_unbind_device(t, d, pasid);
      yield* bump(t, 'unbinds');
    }
  });

  // A page-fault handler (io-pgfault's workqueue): race, after its process's first bind; stress, right away.
  k.task('iopf', 'workqueue', function* (t, args) {
    const f = typeof args === 'number' ? args : 0;
    for (let n = 0; n < p.lookups; n++) {
      const owner = (f + (p.script === 'race' ? 0 : n)) % p.processes;
      const mm = mms[owner] as MmStruct;
      if (p.script === 'race' && n === 0) {
        const word = (): number => Atomics.load(k.i32, k.mem.statics + bound + owner);
        // The device can only fault once it has been bound: the page request follows the bind.
        yield k.point(
          t,
          'wait for a page request',
          () => word() !== 0,
          () => undefined,
          { what: `a page request from proc${owner}` },
        );
      }
      // Stress: every fourth request is on the VFIO task's PASID, whose paging domain is not an SVA domain.
      const vfio = p.script === 'stress' && n % 4 === 3;
      const d = dev(p.script === 'race' ? owner : owner + n);
      const got = yield* sva.iommu_sva_iopf(t, vfio ? dev(0) : d, vfio ? p.pasids - 1 : mm.id);
      yield* k.step(t, 'page response', () =>
        count(got === 0 ? 'faults_invalid' : got === mm.id || vfio ? 'faults_handled' : 'faults_wrong_mm'),
      );
    }
  });

}

/** script stress and multi-device: a VFIO-like user of a PASID, and a peer device's DMA. */
function defineVfioTasks(env: DomainsTaskEnv): void {
  const { k, p, domains, groups, hw, dev, count, pasidOk, boot } = env;
  // A VFIO/iommufd-like user of PASID pasids-1: the attach / replace / detach semantics, each result checked
  // (kernel_init starts it, as it starts the page-fault handlers: the processes take the other initial tasks).
  k.task('vfio', 'process', function* (t) {
    const pasid = p.pasids - 1;
    let unexpected = 0;
    let ops = 0;
    const expect = (got: number, want: number): void => {
      ops++;
      if (got !== want) unexpected++;
    };
    for (let r = 0; r < p.rounds; r++) {
      const d = dev(r);
      const other = (d.iommu + 1) % p.iommus;
      const a = yield* domains.alloc(t, 'paging', d.iommu);
      const b = yield* domains.alloc(t, 'paging', other);
      const c = yield* domains.alloc(t, 'paging', d.iommu);
      const doms = [a, b, c];
      if (doms.every((x) => x.err === 0)) {
        const first = yield* groups.iommu_attach_device_pasid(t, a.dom, d, pasid);
        expect(first, pasidOk ? 0 : -EINVAL);
        if (first === 0) {
          expect(yield* groups.iommu_attach_device_pasid(t, a.dom, d, pasid), 0);
          expect(yield* groups.iommu_attach_device_pasid(t, c.dom, d, pasid), -EBUSY);
          // A domain of another IOMMU instance is incompatible (when there is another one).
          const toB = yield* groups.iommu_replace_device_pasid(t, b.dom, d, pasid);
          expect(toB, p.iommus > 1 ? -EINVAL : 0);
          const cur = toB === 0 ? b.dom : a.dom;
          yield* hw.failNext(t, -ENOMEM, d, pasid);
          expect(yield* groups.iommu_replace_device_pasid(t, c.dom, d, pasid), -ENOMEM);
          expect(yield* hw.dma(t, d, pasid), cur);
          expect(yield* groups.iommu_replace_device_pasid(t, c.dom, d, pasid), 0);
          expect(yield* hw.dma(t, d, pasid), c.dom);
          yield* groups.iommu_detach_device_pasid(t, c.dom, d, pasid);
          expect(yield* hw.dma(t, d, pasid), 0);
        }
        expect(yield* groups.iommu_replace_device_pasid(t, a.dom, d, pasid), -EINVAL);
      }
      // A page-fault handler under RCU may have loaded one of them before the detach: wait for it.
      if (p.lookup === 'rcu') yield* synchronize_rcu(k, t);
      for (const x of doms) if (x.err === 0) yield* domains.free(t, x.dom);
    }
    yield* k.step(t, 'vfio results', () => {
      count('vfio_ops', ops);
      count('vfio_unexpected', unexpected);
    });
  });

  // Multi-device: VFIO owns device 0 and attaches a paging domain to one of its PASIDs, checking each result.
  k.task('pasid_owner', 'process', function* (t) {
    yield* boot.wait(t);
    const d = dev(0);
    const pasid = p.pasids - 1;
    let unexpected = 0;
    let ops = 1;
    const a = yield* domains.alloc(t, 'paging', d.iommu);
    if (a.err !== 0) unexpected++;
    else {
      const ret = yield* groups.iommu_attach_device_pasid(t, a.dom, d, pasid);
      if (ret !== (pasidOk ? 0 : -EINVAL)) unexpected++;
      if (ret === 0) {
        ops += 2;
        if ((yield* hw.dma(t, d, pasid)) !== a.dom) unexpected++;
        yield* groups.iommu_detach_device_pasid(t, a.dom, d, pasid);
        if ((yield* hw.dma(t, d, pasid)) !== 0) unexpected++;
      }
      yield* domains.free(t, a.dom);
    }
    yield* k.step(t, 'vfio results', () => {
      count('vfio_ops', ops);
      count('vfio_unexpected', unexpected);
    });
  });
  // ... and the driver of device 1 tags its own DMA with that PASID: nothing is attached to {device 1, PASID}.
  k.task('peer_dma', 'process', function* (t) {
    yield* boot.wait(t);
    const d = dev(1);
    let translated = 0;
    for (let n = 0; n < p.lookups; n++) if ((yield* hw.dma(t, d, p.pasids - 1)) !== 0) translated++;
    yield* k.step(t, 'peer results', () => {
      count('peer_dmas', p.lookups);
      count('peer_dmas_translated', translated);
    });
  });

}

/** script bench: a paging domain looked up by loops, torn down at the end. */
function defineBenchTasks(env: DomainsTaskEnv): void {
  const { k, p, domains, groups, dev, count, benchDom, boot } = env;
  // The benchmark: a paging domain on {device 0, PASID 1}, looked up by loops, torn down at the end.
  k.task('bench_setup', 'process', function* (t) {
    yield* boot.wait(t);
    const a = yield* domains.alloc(t, 'paging', dev(0).iommu);
    if (a.err !== 0) throw new Error(`domains bench: ${a.why}`);
    const ret = yield* groups.iommu_attach_device_pasid(t, a.dom, dev(0), 1);
    if (ret !== 0) throw new Error(`domains bench: iommu_attach_device_pasid returned ${ret}`);
    yield* k.step(t, 'bench domain', () => Atomics.store(k.i32, k.mem.statics + benchDom, a.dom));
  });
  k.task('lookup_loop', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : 0;
    let misses = 0;
    for (let i = 0; i < n; i++) if ((yield* groups.iommu_get_domain_for_dev_pasid(t, dev(0), 1, 'paging')) <= 0) misses++;
    yield* k.step(t, 'count lookups', () => {
      count('lookups', n);
      count('lookup_misses', misses);
    });
  });
  k.task('bench_teardown', 'process', function* (t) {
    const dom = yield* k.step(t, 'bench domain', () => Atomics.exchange(k.i32, k.mem.statics + benchDom, 0));
    if (dom === 0) return;
    yield* groups.iommu_detach_device_pasid(t, dom, dev(0), 1);
    if (p.lookup === 'rcu') yield* synchronize_rcu(k, t);
    yield* domains.free(t, dom);
  });
}

/** At teardown (kmemleak): SVA bonds, mm domain lists or driver PASID entries left, and the groups' pasid_arrays. */
function reportLeftovers(k: Kernel, groups: IommuGroups, sva: SvaDomains, hw: NoHwIommu): void {
  if (!k.enabled('leaks')) return;
  groups.checkReleased();
  const left = [
    ...sva.leftovers(),
    ...hw.entries().map(([d, ps, dom]) => `${pciSlotName(d)} PASID ${ps} still points at domain 0x${dom.toString(16)}`),
  ];
  if (left.length === 0) return;
  const title = 'kmemleak: iommu-sim: SVA bonds or PASID entries left at teardown';
  k.report({ kind: 'leak', title, text: [title, ...left.map((l) => `  ${l}`)].join('\n'), step: -1, where: 'teardown' });
}

type TaskStart = { task: string; args: Wire; name: string };

/** The run's first tasks: the scripted actors' (`scripted`, already declared), or the script's. */
function domainsInitialTasks(p: DomainsParams, scripted: TaskStart[] | undefined): TaskStart[] {
  if (scripted) return scripted;
  if (p.script === 'bench') return [{ task: 'bench_setup', args: null, name: 'bench_setup' }];
  if (p.script === 'multi-device') return [{ task: 'pasid_owner', args: null, name: 'vfio0' }, { task: 'peer_dma', args: null, name: 'drv1' }];
  return Array.from({ length: p.processes }, (_, i) => ({ task: 'proc', args: i, name: `proc${i}` }));
}

/**
 * What kernel_init starts once the hardware is configured (race and stress): the page-fault handlers and the
 * VFIO task — the processes and kernel_init itself are the initial tasks (at most MAX_INITIAL_TASKS).
 */
function domainsBootTasks(p: DomainsParams): TaskStart[] {
  if (p.steps !== '' || p.script === 'bench' || p.script === 'multi-device') return [];
  const tasks: TaskStart[] = Array.from({ length: p.faults }, (_, f) => ({ task: 'iopf', args: f, name: `iopf${f}` }));
  if (p.script === 'stress') tasks.push({ task: 'vfio', args: null, name: 'vfio0' });
  return tasks;
}

/** The run's check: every result the kernel's, every page request against its own mm, every lookup found. */
function domainsCheck(counters: Record<DomainsStat, number>) {
  const problems: string[] = [];
  if (counters.faults_wrong_mm > 0) problems.push(`${counters.faults_wrong_mm} page requests were handled against another process's mm`);
  if (counters.dma_blocked > 0) problems.push(`${counters.dma_blocked} DMAs right after a successful bind did not go through the bound SVA domain`);
  if (counters.vfio_unexpected > 0) problems.push(`${counters.vfio_unexpected} of ${counters.vfio_ops} attach/replace/detach results were not the kernel's`);
  if (counters.lookup_misses > 0) problems.push(`${counters.lookup_misses} benchmark lookups did not find the attached domain`);
  return { ok: problems.length === 0, problems, counters };
}

/** Task kinds always started with a name of their own (an initial task's). */
const DOMAINS_NAMED_KINDS = new Set(['domains_script', 'proc', 'iopf', 'vfio', 'pasid_owner', 'peer_dma', 'bench_setup', 'lookup_loop', 'bench_teardown']);

export function buildDomains(raw: Readonly<Record<string, Wire>>): { workload: Workload; model: DomainsModel } {
  const p = domainsParams(raw);
  const topo = domainsTopology(p);
  const pasidBits = Math.ceil(Math.log2(p.pasids));
  const ndev = p.groups * p.groupSize;
  // The bench's drivers first (bench/domains.bench.ts sends `go` to actors 0..drivers-1), then the units, devices, mms.
  const drivers = p.script === 'bench' ? p.drivers : 0;
  const unitActor = (u: number): number => drivers + u;
  const nmms = p.processes + PAGE_TABLES;
  // Sized to the scenario: a deterministic exploration allocates the whole region once per execution.
  const layout = {
    stringWords: 1 << 15,
    stringSlots: 1 << 10,
    lockdepWords: 1 << 14,
    staticWords: (1 << 12) + ndev * (IOMMU_SVA.words * p.pasids + 4 * p.pasids) + (nmms + 1) * 32 + p.groups * (p.pasids + 8) + hardwareWords(topo, pasidBits),
    arenaWords: (1 << 12) + 64 * p.processes,
  };
  const k = new Kernel({ layout });
  slabInit(k);
  const pm = definePhysMem(k, 4);
  const table = defineMms(k, pm, nmms, 1);
  const mms = table.mms.slice(0, p.processes);
  const devices: GroupDevice[] = topo.devices.map((d) => ({
    index: d.index,
    name: d.name,
    iommu: d.iommu,
    caps: { ats: true, pri: true, pasid: true, pasidBits },
    actor: drivers + topo.units.length + d.index,
    trusted: false,
  }));
  const domains = new Domains(k, {
    iommus: p.iommus,
    addressSpaces: 8,
    pageTables: table.mms.slice(p.processes),
    unitName: (i) => `iommu${i}`,
  });
  const policies: GroupPolicies = { lookup: p.lookup, multiDevicePasid: p.multiDevicePasid };
  const groups = new IommuGroups(k, domains, {
    devices,
    groups: Array.from({ length: p.groups }, (_, g) => Array.from({ length: p.groupSize }, (_, j) => g * p.groupSize + j)),
    maxPasids: p.pasids,
    policies,
  });
  const hw = new NoHwIommu(k, ndev, p.pasids, p.bug);
  hw.onDma = (t, d, pasid, dom, step) => groups.dmaReached(t, d, pasid, dom, step);
  for (let i = 0; i < p.iommus; i++) groups.registerIommu(i, hw);
  const sva = new SvaDomains(k, groups, domains, { mms: nmms, iommus: p.iommus, devices: ndev, maxPasids: p.pasids, users: p.users });

  const statsOff = k.statics.alloc(DOMAINS_STATS.length, 'domains stats');
  const index = (name: DomainsStat): number => DOMAINS_STATS.indexOf(name);
  const count = (name: DomainsStat, n = 1): void => void Atomics.add(k.i32, k.mem.statics + statsOff + index(name), n);
  const bump = (t: KTask, name: DomainsStat, n = 1): KGen => k.step(t, `count ${name}`, () => count(name, n));
  // Per process: 0 until its first bind has returned (then the round + 1, or -1 when it failed).
  const bound = k.statics.alloc(p.processes, 'bound');
  const benchDom = k.statics.alloc(1, 'bench domain');
  const model: DomainsModel = {
    k,
    params: p,
    devices,
    mms,
    domains,
    groups,
    hw,
    sva,
    stat: (name) => Atomics.load(k.i32, k.mem.statics + statsOff + index(name)),
    count,
  };
  const dev = (i: number): GroupDevice => devices[((i % ndev) + ndev) % ndev] as GroupDevice;
  /** Whether a PASID may be attached to dev's group (the policy, and its size). */
  const pasidOk = p.groupSize === 1 || p.multiDevicePasid === 'allowed';

  // The units and devices, booted by kernel_init; the workload's tasks wait for it, as user space does.
  const hwm = buildPresetHardware(k, topo, { infos: devices, mms: table, sva: NO_SVA_PATH, unitActor, userTasks: domainsBootTasks(p) });
  const env: DomainsTaskEnv = { k, p, mms, domains, groups, hw, sva, dev, bump, count, bound, benchDom, pasidOk, boot: hwm.boot };
  defineRaceTasks(env);
  defineVfioTasks(env);
  defineBenchTasks(env);

  k.onEnd(() => reportLeftovers(k, groups, sva, hw));

  // kernel_init is one of the initial tasks: the script's actors take the others.
  const scripted = parseDomainsScript(p.steps, { devices: ndev, processes: p.processes, iommus: p.iommus, pasids: p.pasids, maxActors: MAX_INITIAL_TASKS - 1 });
  const initialTasks = domainsInitialTasks(p, scripted ? defineDomainsScript({ k, devices, mms, domains, groups, hw, sva, boot: hwm.boot }, scripted) : undefined);
  // The tasks this run can have: its initial ones, and those spawned without a name (callbacks: their kind).
  if (scripted) checkWhileTasks('domains', scripted, [...initialTasks.map((it) => it.name), ...Object.keys(k.taskFactories).filter((kind) => !DOMAINS_NAMED_KINDS.has(kind))]);
  const statics = staticsOffset(k.layout, k.base);
  const refusals = new Refusals(k, () => k.deliveryStep);
  const workload: Workload = {
    name: 'domains',
    params: { ...p },
    actors: [
      ...Array.from({ length: drivers }, (_, i) => ({ name: `driver/${i}`, logic: taskDriver, input: { kind: 'lookup_loop', teardown: 'bench_teardown' } })),
      ...hardwareActors(topo, { ...hwm.logic(refusals), mm: (i) => ({ logic: mmContextMachine(`mm/${i + 1}`, refusals) }) }, { unit: (u) => (hwm.units[u] as IommuUnit).name, device: (d) => (hwm.devices[d] as PciDevice).actorName }),
    ],
    initial: [],
    initialTasks: [hwm.boot.task, ...initialTasks],
    sharedWords: k.words,
    hotEvents: { ...HW_HOT_EVENTS, go: ['n'] },
    sharedEvents: HW_SHARED_EVENTS,
    tasks: k.taskFactories,
    monitor: k,
    check: (_finals, shared) => domainsCheck(Object.fromEntries(DOMAINS_STATS.map((s, i) => [s, shared[statics + statsOff + i] as number])) as Record<DomainsStat, number>),
  };
  return { workload, model };
}

export function domainsWorkload(raw: Readonly<Record<string, Wire>>): Workload {
  return buildDomains(raw).workload;
}
