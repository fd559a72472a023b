// The `sva` workload: a topology of IOMMUs of mixed flavours, PCI devices behind them, processes with their
// MM contexts, and the policies of DESIGN.md — built identically in every thread from its parameters. Actors:
// one per IOMMU unit, device, mm and process (in that order). Kernel code paths (syscalls, exit, the IOMMU
// drivers' page-request threads, RCU/SRCU callbacks) are kernel tasks; the oracles run in the steps that could
// break what they guard.
import { type DefaultDomainPolicy, DmaApi } from '../core/dma.js';
import { Domains } from '../core/domain.js';
import { Oracle } from '../core/oracle.js';
import { Stats, type StatName } from '../core/stats.js';
import { Sva } from '../core/sva.js';
import {
  type DeviceInfo,
  DRIVER_BUGS,
  type DriverBug,
  type FaultHandling,
  type Flavour,
  type IommuOps,
  type PasidPlacement,
  type SvaPolicies,
  type Teardown,
} from '../core/types.js';
import { AMD, amdOps } from '../hw/amd/amd.js';
import { type DriverEnv, flush } from '../hw/driver.js';
import type { FlavourSpec } from '../hw/flavour.js';
import { DEFAULT_UNIT, IommuUnit } from '../hw/iommu.js';
import { HW_HOT_EVENTS, HW_SHARED_EVENTS } from '../hw/messages.js';
import { type Misbehaviour, PciDevice } from '../hw/pci/device.js';
import { AccelDriver } from '../hw/pci/driver.js';
import { defineUnitDriver, definePrqThread } from '../hw/queue.js';
import { SMMUV3, smmuv3Ops } from '../hw/smmuv3/smmuv3.js';
import { IommuHardware } from '../hw/unit.js';
import { VTD, vtdOps } from '../hw/vtd/vtd.js';
import { Kernel } from '../kernel/kernel.js';
import { layoutWords, refuseOversized, staticsOffset } from '../kernel/memory.js';
import { defineMms, type MmStruct, mmById, mmTableWords } from '../kernel/mm/mm.js';
import { defineMmuNotifiers, mmuNotifierWords } from '../kernel/mm/mmu_notifier.js';
import { definePhysMem, onPageFree, pageOwner, physMemWords } from '../kernel/mm/physmem.js';
import { readerTableWords } from '../kernel/rcu.js';
import { slabInit } from '../kernel/slab.js';
import { InputError } from '../runtime/errors.js';
import { bool, int, oneOf, type PresetSpec, parsePreset, pick } from './params/define.js';
import { FAULTS } from './params/faults.js';
import { POLICIES, type TaskMm } from './params/policies.js';
import { TOPOLOGY } from './params/topology.js';
import { WORKLOAD } from './params/workload.js';
import type { ActorSpec, Wire, Workload } from '../runtime/model.js';
import { applyExtension, coreStepTable, KERNEL_PRIMITIVES } from './extension.js';
import { checkWhileTasks, type OrderStep, parseScript } from './script.js';
import { SVA_KINDS } from './steps.js';
import { defineSyscalls } from './syscalls.js';
import { flatTopology, hardwareActors } from './topology.js';
import { hardwareMachine } from '../actors/hardware.js';
import { defineKernelUsers, type KernelUse, type VfioTakeover, type VfioUse } from './kernel-users.js';
import { mmMachine } from '../actors/mm.js';
import { processMachine, type Script, SCRIPTS } from '../actors/process.js';
import { DEFAULT_RATES, parseRates, type RandomInput, randomProcessMachine } from '../actors/random-process.js';
import { declareWhileStep, type ScriptStep, scriptedProcessMachine } from '../actors/scripted-process.js';
import { type SwqInput, swqProcessMachine, type WorkQueue } from '../actors/swq-process.js';

export { TASK_MMS, type TaskMm } from './params/policies.js';

const SPECS: Readonly<Record<Flavour, FlavourSpec>> = { vtd: VTD, amd: AMD, smmuv3: SMMUV3 };

export interface SvaParams {
  /** Flavour of each IOMMU unit, comma-separated: `vtd,amd,smmuv3,vtd`. */
  readonly iommus: string;
  readonly devices: number;
  readonly processes: number;
  /** Virtual pages of each process. */
  readonly pages: number;
  /** Every device's capabilities: a subset of `ats,pri,pasid`. */
  readonly caps: string;
  readonly pasidBits: number;
  /** The SMMUs' SSIDSIZE. */
  readonly ssidBits: number;
  readonly trusted: boolean;
  readonly pasidAlloc: PasidPlacement;
  readonly teardown: Teardown;
  readonly fault: FaultHandling;
  readonly drainTimeoutMs: number;
  /** A planted driver bug (the oracles' negative control). */
  readonly bug: DriverBug;
  readonly misbehave: Misbehaviour;
  /** The misbehaving device (-1: all of them). */
  readonly misbehaveDevice: number;
  readonly script: Script;
  /** `script: random`: each operation's weight, `bind:4,dma:8,munmap:1,unbind:3,exit:1`; `rounds` operations. */
  readonly rates: string;
  /** How bind_task (script bind-task-exit) holds the task's mm: get_task_mm's mm_users reference, or none. */
  readonly taskMm: TaskMm;
  /** Process i starts when process i-1 has closed its fd. */
  readonly chain: boolean;
  readonly dmas: number;
  readonly rounds: number;
  readonly flags: number;
  readonly seed: number;
  readonly cmdCostNs: number;
  /** IOTLB entries of each IOMMU (0: every translation walks the tables). */
  readonly iotlb: number;
  /** ATC entries of each device (0: every DMA asks the IOMMU). */
  readonly atc: number;
  /** Page request queue entries of each IOMMU (small: overflow, and the hardware's auto-responses). */
  readonly prqDepth: number;
  /**
   * How processes tag their descriptors (src/actors/swq-process.ts): `dedicated` work queues carry their bond's
   * PASID, `shared` ones ENQCMD's — the task's IA32_PASID, loaded from mm->pasid.
   */
  readonly wq: WorkQueue;
  /** Devices each process opens (process i: devices i, i+1, … modulo `devices`); above 1, or with a shared wq, the processes are swq-process's. */
  readonly opens: number;
  /**
   * Scripted processes (JSON: an array, one list of steps per process — src/actors/scripted-process.ts); ''
   * runs `script` instead. Scenarios write it as their `script` section.
   */
  readonly steps: string;
  /** A CommonJS module whose extend(ctx) replaces or wraps ops (src/actors/extension.ts); '' for none. */
  readonly extension: string;
  /** Allocation failure injection, `cache:n`: the nth allocation from that slab cache fails ('' for none). */
  readonly failAlloc: string;
  readonly hungTaskSecs: number;
  /** Default DMA domains at probe (seed 001). */
  readonly defaultDomain: DefaultDomainPolicy;
  /** Address spaces of each IOMMU instance (seed 001: 4 on early Tegra, 128 later). */
  readonly addressSpaces: number;
  /** The kernel's own DMA users (seeds 001, 004). */
  readonly kernel: KernelUse;
  readonly kjobs: number;
  readonly kbuffers: number;
  /** Devices with a kernel user (the first n). */
  readonly kdevices: number;
  readonly vfio: VfioUse;
  /** Whether VFIO may take a device whose host driver still maps (seed 001: refuse). */
  readonly vfioTakeover: VfioTakeover;
  readonly drmContexts: number;
  readonly drmRounds: number;
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
  bug: 'none',
  misbehave: 'none',
  misbehaveDevice: 0,
  script: 'life',
  rates: DEFAULT_RATES,
  taskMm: 'get_task_mm',
  chain: false,
  dmas: 4,
  rounds: 2,
  flags: 0,
  seed: 1,
  cmdCostNs: 100,
  iotlb: 64,
  atc: 16,
  prqDepth: 128,
  wq: 'dedicated',
  opens: 1,
  steps: '',
  extension: '',
  failAlloc: '',
  hungTaskSecs: 120,
  defaultDomain: 'none',
  addressSpaces: 128,
  kernel: 'none',
  kjobs: 8,
  kbuffers: 2,
  kdevices: 1,
  vfio: 'none',
  vfioTakeover: 'refuse',
  drmContexts: 0,
  drmRounds: 2,
};



/** The sva preset's parameters: the hardware topology, seed 000/001/004's policies, processes that bind and DMA. */
export const SVA_PRESET: PresetSpec<SvaParams> = {
  name: 'sva',
  summary: 'IOMMU units of any flavour, PCI devices with ATS/PRI/PASID, processes that bind, DMA, fault, munmap, unbind and exit; the kernel\'s own DMA users.',
  params: {
    ...pick('topology', TOPOLOGY, ['iommus', 'devices', 'processes', 'pages', 'caps', 'pasidBits', 'ssidBits', 'trusted', 'iotlb', 'atc', 'prqDepth', 'cmdCostNs', 'addressSpaces', 'kdevices', 'opens']),
    ...pick('policies', POLICIES, ['pasidAlloc', 'teardown', 'fault', 'drainTimeoutMs', 'taskMm', 'wq', 'defaultDomain', 'vfioTakeover']),
    ...pick('faults', FAULTS, ['bug', 'misbehave', 'misbehaveDevice', 'extension', 'failAlloc'], { bug: oneOf(DRIVER_BUGS) }),
    ...pick('workload', WORKLOAD, ['script', 'rates', 'dmas', 'rounds', 'flags', 'seed', 'steps', 'hungTaskSecs', 'kernel', 'kjobs', 'kbuffers', 'vfio', 'drmContexts', 'drmRounds'], {
      script: oneOf(SCRIPTS),
      rounds: int(1, 1 << 16),
      seed: int(0, 0x7fffffff),
    }),
    chain: { concept: 'workload', schema: bool('sva: process i starts when process i-1 has closed its fd (the unbind-inflight races chain two processes).') },
  },
  defaults: SVA_DEFAULTS,
};

export function svaParams(raw: Readonly<Record<string, Wire>>): SvaParams {
  return parsePreset(SVA_PRESET, raw);
}

/** Everything a workload instance is made of (tests reach into it). */
export interface SvaModel {
  readonly params: SvaParams;
  readonly k: Kernel;
  readonly sva: Sva;
  readonly stats: Stats;
  readonly units: readonly IommuUnit[];
  readonly devices: readonly PciDevice[];
  readonly infos: readonly DeviceInfo[];
  mm(i: number): MmStruct;
  /** Actor ids. */
  readonly actors: { unit(u: number): number; device(d: number): number; mm(i: number): number; process(i: number): number };
  readonly dma: DmaApi;
  readonly domains: Domains;
  readonly kusers: ReturnType<typeof defineKernelUsers>;
}

export function buildSva(raw: Readonly<Record<string, Wire>>): { workload: Workload; model: SvaModel } {
  const p = svaParams(raw);
  const flavours = p.iommus.split(',') as Flavour[];
  const topo = flatTopology(flavours, p.devices, p.processes, p.kdevices);
  const U = flavours.length;
  const D = p.devices;
  const P = p.processes;
  const capSet = new Set(p.caps.split(','));
  const bonds = Math.max(8, 2 * P * p.opens + 8);
  // A VMM whose memory VFIO maps, when VFIO is in the run: an address space of its own.
  const vmm = p.vfio === 'none' ? 0 : 1;
  const frames = (P + 2) * p.pages + 16 + vmm * p.kbuffers;
  // I/O page tables for DMA and paging domains: address spaces of the mm layer that no process uses.
  const iopt = p.defaultDomain === 'none' && p.kernel === 'none' && p.vfio === 'none' && p.drmContexts === 0 ? 0 : Math.min(U * p.addressSpaces, D + p.kdevices + p.drmContexts + 4);
  // A PASID table entry (up to 8 words), the device's state (3) and the driver's (2) per PASID, its pasid_ida's bitmap.
  const perDevice = (1 << p.pasidBits) * (8 + 3 + 2) + Math.ceil((1 << p.pasidBits) / 32) + 512 + 4 * p.atc;
  const readerSlots = tasksAtOnce(p, bonds);
  const readers = readerTableWords(readerSlots);
  // The terms that grow with the parameters, named for the refusal of a topology too large to hold. A bond
  // takes 32 words: the iommu_sva record (11, with its kmemleak track), its PASID share (9) and quarantine (3).
  const sized: Record<string, number> = {
    'PASID state (devices × 2^pasidBits × 13 words)': D * perDevice,
    'address spaces (processes × pages)': mmTableWords(P + iopt + vmm, p.pages) + physMemWords(frames),
    'IOMMU caches and queues (iommus × (iotlb + prqDepth))': U * (4096 + 6 * p.iotlb + 6 * p.prqDepth),
    'bonds, notifiers and RCU/SRCU readers (processes)': mmuNotifierWords(bonds) + bonds * 32 + readers.rcu + readers.srcu,
  };
  const staticWords = (1 << 15) + Object.values(sized).reduce((a, b) => a + b, 0) + (U + 2) * (Math.ceil((1 << p.pasidBits) / 32) + 1);
  // Every task interns its label and comm (allocation owners, KASAN's alloc/free tracks, lockdep's sites): the
  // string table grows with the topology, or a large one fills it and lockdep turns itself off.
  const tasks = P + D + U;
  const layout = {
    stringWords: Math.max(1 << 17, 128 * tasks),
    stringSlots: Math.max(1 << 12, 2 ** Math.ceil(Math.log2(8 * tasks))),
    staticWords,
    arenaWords: 1 << 12,
    lockdepWords: 1 << 14,
  };
  refuseOversized('sva', layoutWords(layout), sized);
  const k = new Kernel({ layout, hungTaskSecs: p.hungTaskSecs, readerSlots });
  const [failCache, failNth] = p.failAlloc === '' ? [] : (p.failAlloc.split(':') as [string, string]);
  slabInit(k, failCache ? { failslab: { cache: failCache, nth: Number(failNth) } } : {});
  const actors = {
    unit: (u: number) => u,
    device: (d: number) => U + d,
    mm: (i: number) => U + D + i,
    process: (i: number) => U + D + P + i,
  };
  const infos: DeviceInfo[] = topo.devices.map((d) => ({
    index: d.index,
    name: d.name,
    iommu: d.iommu,
    caps: { ats: capSet.has('ats'), pri: capSet.has('pri'), pasid: capSet.has('pasid'), pasidBits: p.pasidBits },
    actor: actors.device(d.index),
    trusted: p.trusted,
  }));
  const pm = definePhysMem(k, frames + 2 * p.drmContexts);
  const mms = defineMms(k, pm, P + iopt + vmm, p.pages);
  const notifiers = defineMmuNotifiers(k, mms, bonds);
  const oracle = new Oracle(k);
  const stats = new Stats(k);
  const policies: SvaPolicies = { pasidAlloc: p.pasidAlloc, teardown: p.teardown, fault: p.fault, drainTimeoutMs: p.drainTimeoutMs, bug: p.bug };
  const sva = new Sva(k, mms, notifiers, oracle, stats, { devices: infos, iommus: U, policies, bonds });
  const domains = new Domains(k, { iommus: U, addressSpaces: p.addressSpaces, pageTables: mms.mms.slice(P, P + iopt), unitName: (u) => SPECS[flavours[u] as Flavour].unitName(u) });
  const dma = new DmaApi(k, sva, domains, infos, p.defaultDomain, mms.initMm.id + 1);
  const vmmMm = vmm ? mms.mms[P + iopt] : undefined;
  const ownerName = (o: number): string =>
    o === 0 ? 'a free frame' : vmmMm && o === vmmMm.id + 1 ? `${vmmMm.name} (a VMM's memory, mapped through VFIO)` : (mmById(mms, o - 1)?.name ?? `owner ${o}`);

  // A process's descriptors are for the address space it binds: its own mm, or init_mm in SUPERVISOR_MODE.
  const submitter = (from: number): number => {
    const i = from - actors.process(0);
    if (i < 0 || i >= P) return 0;
    return (p.flags & 2) !== 0 ? mms.initMm.id + 1 : (mms.mms[i] as MmStruct).id + 1;
  };
  const units = flavours.map((f, u) => new IommuUnit(k, u, SPECS[f], infos.filter((d) => d.iommu === u), { ...DEFAULT_UNIT, cmdCostNs: p.cmdCostNs, iotlbEntries: p.iotlb, prqDepth: p.prqDepth }, actors.unit(u)));
  const unitDrivers = units.map((u) => defineUnitDriver(k, u));
  const denv: DriverEnv = { k, units: unitDrivers, stats };
  flavours.forEach((f, u) => {
    const ops: IommuOps = f === 'vtd' ? vtdOps(denv) : f === 'amd' ? amdOps(denv) : smmuv3Ops(denv, p.ssidBits);
    sva.registerIommu(u, ops);
  });
  if (p.extension !== '') {
    applyExtension(p.extension, {
      k,
      sva,
      dma,
      units,
      devices: infos,
      iommuOps: (u) => sva.ops(infos.find((d) => d.iommu === u) ?? ({ iommu: u } as DeviceInfo)),
      setIommuOps: (u, ops) => sva.registerIommu(u, ops),
      ...coreStepTable(sva),
      flush: (t, dev, cmds) => flush(denv, t, dev, cmds),
      kernel: KERNEL_PRIMITIVES,
    });
  }
  const kusers = defineKernelUsers(
    // The IOMMU units' walk (they are built below; a job asks only once the run is going).
    { k, sva, dma, domains, stats, pm, mms, infos, reachable: (d, pasid) => hardware[d.iommu]?.reachable(d.index, pasid) ?? [] },
    { use: p.kernel, jobs: p.kjobs, buffers: p.kbuffers, devices: p.kdevices, vfio: p.vfio, takeover: p.vfioTakeover, vfioUser: vmmMm, drmContexts: p.drmContexts, drmRounds: p.drmRounds },
  );
  const prqTasks = unitDrivers.map((drv) => definePrqThread(k, drv, sva, stats, infos));
  const hardware = units.map((u, i) => new IommuHardware(u, infos, mms, oracle, stats, prqTasks[i] as string));
  const devices = infos.map(
    (info) =>
      new PciDevice(
        { k, sva, oracle, stats, pm, iommuActor: actors.unit(info.iommu), ownerName, completion: (cr, ok) => kusers.completion(cr, ok), submitter },
        info,
        p.misbehaveDevice === -1 || p.misbehaveDevice === info.index ? p.misbehave : 'none',
        p.atc,
      ),
  );
  const driver = new AccelDriver(k, sva, devices);

  // The oracles' views of the hardware.
  for (const u of units) for (const c of u.caches()) oracle.addCache(c);
  for (const dev of devices) {
    oracle.addCache({
      name: `${dev.info.name} ATC`,
      entriesForPfn: (pfn) => dev.atcEntries((_, __, pte) => pte >>> 2 === pfn).map((e) => `{PASID ${e.pasid}, vpn ${e.vpn}} → pfn 0x${pfn.toString(16)}`),
      entriesForPasid: (d, pasid) => (d !== dev.info.index ? [] : dev.atcEntries((p) => p === pasid).map((e) => `{PASID ${pasid}, vpn ${e.vpn}}`)),
    });
  }
  oracle.addDmaCounter({ inflight: (d, pasid) => devices[d]?.inflightCount(pasid) ?? 0 });
  onPageFree(pm, (pfn, t, step) => oracle.pageFreed(step, pfn, ownerName(pageOwner(k, pm, pfn)), t.label));
  k.onAttach(() => {
    for (const h of hardware) h.reset();
    for (const d of devices) d.reset();
  });
  k.onEnd(() => oracle.unanswered(units.flatMap((u) => u.outstandingGroups())));

  defineSyscalls({ k, params: p, processes: P, mms, notifiers, sva, driver, stats, infos, actors });

  const step = (): number => k.deliveryStep;
  const specs: ActorSpec[] = hardwareActors(
    topo,
    {
      unit: (u) => ({ logic: hardwareMachine(hardware[u.index] as IommuHardware, step), input: { self: actors.unit(u.index) } }),
      device: (d) => ({ logic: hardwareMachine(devices[d.index] as PciDevice, step), input: { self: actors.device(d.index) } }),
      mm: () => ({ logic: mmMachine }),
    },
    { unit: (u) => (hardware[u] as IommuHardware).actorName, device: (d) => (devices[d] as PciDevice).actorName },
  );
  const scripted = parseSteps(p.steps, P, k, taskComms(k, p, units));
  for (let i = 0; i < P && scripted; i++) {
    const tell: [number, number][] = [];
    scripted.forEach((steps, j) => {
      for (const st of steps) if (st.op === 'after' && st.proc === i) tell.push([st.step, actors.process(j)]);
    });
    specs.push({
      name: `proc/${i}`,
      logic: scriptedProcessMachine,
      input: { idx: i, self: actors.process(i), devActor: actors.device(i % D), flags: p.flags, steps: scripted[i] ?? [], tell } as unknown as Wire,
    });
  }
  const swq = p.wq === 'shared' || p.opens > 1;
  if (swq && (scripted || p.script !== 'life')) throw new InputError(`sva: wq: shared and opens > 1 run the swq-process lifecycle: script must be life, with no steps`);
  for (let i = 0; i < P && swq; i++) {
    const devs = Array.from({ length: Math.min(p.opens, D) }, (_, j): [number, number] => [(i + j) % D, actors.device((i + j) % D)]);
    const input: SwqInput = { idx: i, self: actors.process(i), devs, wq: p.wq, dmas: p.dmas, pages: p.pages, flags: p.flags };
    specs.push({ name: `proc/${i}`, logic: swqProcessMachine, input: input as unknown as Wire });
  }
  for (let i = 0; i < P && !scripted && !swq && p.script === 'random'; i++) {
    const input: RandomInput = { idx: i, self: actors.process(i), devActor: actors.device(i % D), pages: p.pages, flags: p.flags, ops: p.rounds, dmas: p.dmas, rates: parseRates(p.rates), seed: p.seed };
    specs.push({ name: `proc/${i}`, logic: randomProcessMachine, input: input as unknown as Wire });
  }
  for (let i = 0; i < P && !scripted && !swq && p.script !== 'random'; i++) {
    specs.push({
      name: `proc/${i}`,
      logic: processMachine,
      input: {
        idx: i,
        self: actors.process(i),
        devActor: actors.device(i % D),
        next: p.chain && i + 1 < P ? actors.process(i + 1) : -1,
        script: p.script,
        dmas: p.dmas,
        pages: p.pages,
        flags: p.flags,
        rounds: p.rounds,
        seed: p.seed,
      },
    });
  }

  const statics = staticsOffset(k.layout, k.base);
  const model: SvaModel = { params: p, k, sva, stats, units, devices, infos, mm: (i) => mms.mms[i] as MmStruct, actors, dma, domains, kusers };
  const workload: Workload = {
    name: 'sva',
    params: { ...p },
    actors: specs,
    initial: Array.from({ length: p.chain ? Math.min(1, P) : P }, (_, i) => ({ to: actors.process(i), event: { type: 'go' } })),
    sharedWords: k.words,
    hotEvents: { ...HW_HOT_EVENTS, go: [] },
    sharedEvents: HW_SHARED_EVENTS,
    tasks: k.taskFactories,
    initialTasks: iopt > 0 ? [{ task: 'iommu_probe', args: null, name: 'iommu_probe' }] : [],
    monitor: k,
    check: (finals, shared) => {
      const counters = stats.read(shared, statics) as Record<StatName, number> & Record<string, number>;
      const problems: string[] = [];
      for (const f of finals) {
        if (!f.name.startsWith('proc/')) continue;
        if (f.state !== 'done') problems.push(`${f.name} did not finish: ${f.state}`);
      }
      return { ok: problems.length === 0, problems, counters, notes: kusers.notes(shared) };
    },
  };
  return { workload, model };
}

/**
 * How many tasks the topology can have alive at once — every one may be inside RCU's or SRCU's read side, so
 * the reader tables get a slot each: a process's syscall and the driver's bind_task thread (scripted: one more
 * for each exit not waited for and each `while`), an SRCU and an RCU callback per bond, the page-request
 * threads, and the kernel's own DMA users, VFIO, DRM and probe.
 */
function tasksAtOnce(p: SvaParams, bonds: number): number {
  // Two a process at most (its syscall and bind_task), and one more as margin: a slot costs 16 words.
  let perProcess = 3 * p.processes;
  if (p.steps !== '') {
    let lists: unknown;
    try {
      lists = JSON.parse(p.steps);
    } catch {
      lists = undefined; // parseSteps refuses it
    }
    const extra = (st: unknown): number => {
      const o = (st ?? {}) as Record<string, unknown>;
      return o.op === 'while' || (o.op === 'exit' && o.wait === false) ? 1 : 0;
    };
    if (lists !== null && typeof lists === 'object' && !Array.isArray(lists)) lists = Object.values(lists);
    if (Array.isArray(lists)) perProcess += lists.reduce((n: number, l: unknown) => n + (Array.isArray(l) ? l.reduce((m: number, st) => m + extra(st), 0) : 0), 0);
  }
  return perProcess + 2 * bonds + p.iommus.split(',').length + p.kdevices + 16;
}

/** Kinds of task this workload always spawns with a name of their own (their comm is that name). */
const NAMED_KINDS = new Set(['sys_exec', 'sys_bind', 'sys_close', 'sys_munmap', 'do_exit', 'bind_task', 'script_while', 'kdma_user', 'vfio_takeover', 'drm_contexts']);

/** The comms the workload's tasks can have: what a `while` step may name (or a prefix of). */
function taskComms(k: Kernel, p: SvaParams, units: readonly IommuUnit[]): string[] {
  const prq = new Set(units.map((u) => `${u.spec.prqThread}/${u.index}`));
  const kinds = Object.keys(k.taskFactories).filter((kind) => !NAMED_KINDS.has(kind) && !prq.has(kind));
  const procs = Array.from({ length: p.processes }, (_, i) => [`proc${i}`, `bind_task/${i}`]).flat();
  const kernel = [
    ...(p.kernel === 'none' ? [] : Array.from({ length: Math.min(p.kdevices, p.devices) }, (_, d) => `kdma/${d}`)),
    ...(p.vfio === 'none' ? [] : ['vfio']),
    ...(p.drmContexts > 0 ? ['drm'] : []),
  ];
  return [...procs, ...units.map((u) => `${u.spec.prqThread}/${u.name}`), ...kernel, ...kinds];
}

/** A process's own steps (the ordering constraints are every model's: script.ts). */
type SvaOp = Exclude<ScriptStep, { op: 'after' | 'while' }>;

/**
 * The scripted processes' steps, checked by the one script engine (script.ts: kinds, actors, `after` targets, no
 * ordering cycle) and for what a process can still do (checkLifetime); undefined: none. With the run's kernel, a
 * `while` step declares what it waits on (a lock holder watch: the lock must exist).
 */
export function parseSteps(text: string, processes: number, k?: Kernel, comms?: readonly string[]): ScriptStep[][] | undefined {
  const actors = parseScript<SvaOp>(text, { model: 'sva', kinds: ['proc'], maxActors: Math.max(1, processes), steps: SVA_KINDS, numbered: { actors: processes } });
  if (!actors) return undefined;
  if (comms) checkWhileTasks('sva', actors, comms);
  // Process i's steps at index i (the list is dense up to the highest process named).
  const lists: (readonly (SvaOp | OrderStep)[])[] = [];
  for (const a of actors) lists[Number(a.name.slice('proc/'.length))] = a.steps;
  const out = Array.from({ length: lists.length }, (_, i) => lists[i] ?? []);
  return out.map((list, i) => {
    const steps = list.map((st, j): ScriptStep => {
      if (st.op !== 'while') return st.op === 'after' ? { op: 'after', proc: Number(st.actor.slice('proc/'.length)), step: st.step } : st;
      const at = `sva: steps: proc/${i}[${j}]`;
      if (!k) throw new InputError(`${at}: while: needs the run's kernel`);
      try {
        return { op: 'while', task: st.task, lock: st.lock, watch: declareWhileStep(k, st.task, st.lock) };
      } catch (err) {
        if (err instanceof RangeError) throw new InputError(`${at}: while: ${err.message}`);
        throw err;
      }
    });
    checkLifetime(steps, i);
    return steps;
  });
}

/**
 * What a process can still do at each step: close only an fd it opened (a second bind of the same mm shares the
 * bond, so binds and unbinds pair up), and nothing that needs its mm or its fds once its exit has begun — the
 * exit's mmput may be the last (exit_mmap runs) and exit_files closes every fd, and no other thread of the
 * process holds an mm_users reference in the model. Only `dma`, `after` and `while` may follow an exit that is
 * not waited for; nothing follows one that is.
 */
function checkLifetime(list: readonly ScriptStep[], i: number): void {
  let open = 0;
  let exit = -1;
  list.forEach((st, k2) => {
    const at = `sva: steps: proc/${i}[${k2}]`;
    if (exit >= 0) {
      const waited = (list[exit] as Extract<ScriptStep, { op: 'exit' }>).wait;
      if (waited || !['dma', 'after', 'while'].includes(st.op)) {
        const why = waited ? 'the process is gone' : 'only dma, after and while may follow an exit not waited for: no thread of the exiting process holds its mm, and exit_files closes its fds';
        throw new InputError(`${at}: ${st.op} after proc/${i}'s exit (step ${exit}): ${why}`);
      }
    }
    if (st.op === 'bind') open++;
    if (st.op === 'unbind') {
      if (open === 0) throw new InputError(`${at}: unbind: proc/${i} has no device fd open here (each unbind closes the fd of an earlier bind)`);
      open--;
    }
    if (st.op === 'exit') exit = k2;
  });
}

export function svaWorkload(raw: Readonly<Record<string, Wire>>): Workload {
  return buildSva(raw).workload;
}
