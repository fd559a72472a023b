// The `sva` workload: a topology of IOMMUs of mixed flavours, PCI devices behind them, processes with their
// MM contexts, and the policies of DESIGN.md — built identically in every thread from its parameters. Actors:
// one per IOMMU unit, device, mm and process (in that order). Kernel code paths (syscalls, exit, the IOMMU
// drivers' page-request threads, RCU/SRCU callbacks) are kernel tasks; the oracles run in the steps that could
// break what they guard.
import { DmaApi } from '../core/dma-iommu.js';
import { pasidIoasidWords } from '../core/pasid.js';
import {
  Domains,
  IommuGroups,
} from '../core/iommu.js';
import { SvaDomains } from '../core/sva-domain.js';
import { Oracle } from '../core/oracle.js';
import { Stats, type StatName } from '../core/stats.js';
import { Sva } from '../core/iommu-sva.js';
import type { DeviceInfo, Flavour, IommuOps, SvaPolicies } from '../core/types.js';
import { AMD, amdOps } from '../hw/amd/amd.js';
import { type DriverEnv, flush } from '../hw/driver.js';
import type { FlavourSpec } from '../hw/flavour.js';
import { DEFAULT_UNIT, IommuUnit } from '../hw/iommu.js';
import { HW_HOT_EVENTS, HW_SHARED_EVENTS } from '../hw/messages.js';
import { PciDevice } from '../hw/pci/device.js';
import { AccelDriver } from '../hw/pci/driver.js';
import { defineUnitDriver, definePrqThread } from '../hw/queue.js';
import { IOPF_DEVICE_WORDS } from '../core/io-pgfault.js';
import { SMMUV3, smmuv3Ops } from '../hw/smmuv3/smmuv3.js';
import { IommuHardware } from '../hw/unit.js';
import { VTD, vtdOps } from '../hw/vtd/vtd.js';
import { Kernel } from '../kernel/kernel.js';
import { layoutWords, refuseOversized, staticsOffset } from '../kernel/memory.js';
import { defineMms, type MmStruct, mmById, mmTableWords } from '../kernel/mm/mm.js';
import { defineMmuNotifiers, mmuNotifierWords } from '../kernel/mm/mmu_notifier.js';
import { definePhysMem, onPageFree, type PhysMem, pageOwner, physMemWords } from '../kernel/mm/physmem.js';
import { readerTableWords } from '../kernel/rcu.js';
import { slabInit } from '../kernel/slab.js';
import { InputError } from '../runtime/errors.js';
import type { ActorSpec, Wire, Workload } from '../runtime/model.js';
import { applyExtension, coreStepTable, KERNEL_PRIMITIVES } from './extension.js';
import { checkWhileTasks, type OrderStep, parseScript } from './script.js';
import { SVA_KINDS } from './steps.js';
import { type SvaParams, svaParams, svaTopology } from './presets/sva.js';
import { defineSyscalls } from './syscalls.js';
import { hardwareActors } from './topology.js';
import { processActors } from './processes.js';
import { iommuUnitMachine } from '../actors/iommu-unit.js';
import { Refusals } from '../actors/lifecycle.js';
import { mmContextMachine } from '../actors/mm-context.js';
import { pciDeviceMachine } from '../actors/pci-device.js';
import { defineBoot } from '../hw/boot.js';
import { defineKernelUsers, } from './kernel-users.js';
import { declareWhileStep, type ScriptStep, } from '../actors/scripted-process.js';

export { TASK_MMS, type TaskMm } from './params/policies.js';

const SPECS: Readonly<Record<Flavour, FlavourSpec>> = { vtd: VTD, amd: AMD, smmuv3: SMMUV3 };

export { SVA_DEFAULTS, SVA_PRESET, type SvaParams, svaParams } from './presets/sva.js';

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
  const topo = svaTopology(p);
  const U = flavours.length;
  const D = p.devices;
  const P = p.processes;
  const capSet = new Set(p.caps.split(','));
  const { k, bonds, vmm, frames, iopt } = svaKernel(p, U);
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
  const policies: SvaPolicies = { pasidAlloc: p.pasidAlloc, teardown: p.teardown, fault: p.fault, drainTimeoutMs: p.drainTimeoutMs, bug: p.bug, ioasidLock: p.lock, free: p.free };
  const domains = new Domains(k, {
    iommus: U,
    addressSpaces: p.addressSpaces,
    pageTables: mms.mms.slice(P, P + iopt),
    unitName: (u) => SPECS[flavours[u] as Flavour].unitName(u),
    mmOf: (id) => mmById(mms, id),
  });
  // Every device alone in its group: SVA binds attach {device, PASID} through it (iommu_attach_device_pasid).
  const groups = new IommuGroups(k, domains, { devices: infos, groups: infos.map((d) => [d.index]), maxPasids: 1 << p.pasidBits, policies: { lookup: p.lookup, multiDevicePasid: 'refused' } });
  const svaDomains = new SvaDomains(k, groups, domains, { mms: mms.mms.length, iommus: U, devices: D, maxPasids: 1 << p.pasidBits, users: p.users, bonds: false });
  const sva = new Sva(k, mms, notifiers, oracle, stats, svaDomains, { devices: infos, iommus: U, policies, bonds });
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
  const { unitDrivers, denv } = registerDrivers(k, sva, stats, units, flavours, p.ssidBits);
  if (p.extension !== '') {
    applyExtension(p.extension, {
      k,
      sva,
      dma,
      units,
      devices: infos,
      iommuOps: (u) => sva.ops(infos.find((d) => d.iommu === u) ?? ({ iommu: u } as DeviceInfo)),
      setIommuOps: (u, ops) => sva.registerIommu(u, ops),
      ...coreStepTable(k),
      flush: (t, dev, cmds) => flush(denv, t, dev, cmds),
      kernel: KERNEL_PRIMITIVES,
    });
  }
  const kusers = defineKernelUsers(
    // The IOMMU units' walk (they are built below; a job asks only once the run is going).
    { k, sva, dma, domains, stats, pm, mms, infos, reachable: (d, pasid) => hardware[d.iommu]?.reachable(d.index, pasid) ?? [] },
    { use: p.kernel, jobs: p.kjobs, buffers: p.kbuffers, devices: p.kdevices, vfio: p.vfio, takeover: p.vfioTakeover, vfioUser: vmmMm, drmContexts: p.drmContexts, drmRounds: p.drmRounds },
  );
  const prqTasks = unitDrivers.map((drv) => definePrqThread(k, drv, stats, infos, p.iopf));
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

  watchHardware(k, oracle, pm, units, devices, ownerName);
  k.onAttach(() => {
    for (const h of hardware) h.reset();
    for (const d of devices) d.reset();
  });
  k.onEnd(() => oracle.unanswered(units.flatMap((u) => u.outstandingGroups())));

  const boot = defineBoot(k, units, devices, iopt > 0 ? [{ task: 'iommu_probe', name: 'iommu_probe' }] : []);
  defineSyscalls({ k, params: p, processes: P, mms, notifiers, sva, driver, stats, infos, actors, boot });

  const step = (): number => k.deliveryStep;
  const refusals = new Refusals(k, step);
  const specs: ActorSpec[] = hardwareActors(
    topo,
    {
      unit: (u) => ({ logic: iommuUnitMachine(hardware[u.index] as IommuHardware, actors.unit(u.index), step, refusals) }),
      device: (d) => ({ logic: pciDeviceMachine(devices[d.index] as PciDevice, actors.device(d.index), step, refusals) }),
      mm: (i) => ({ logic: mmContextMachine(`mm/${i + 1}`, refusals) }),
    },
    { unit: (u) => (hardware[u] as IommuHardware).actorName, device: (d) => (devices[d] as PciDevice).actorName },
  );
  const scripted = parseSteps(p.steps, P, k, taskComms(k, p, units));
  specs.push(...processActors(p, scripted, actors));

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
    initialTasks: [boot.task],
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

/** Each unit's queue and driver (its command submission, its page-request thread's), and its flavour's ops. */
function registerDrivers(k: Kernel, sva: Sva, stats: Stats, units: readonly IommuUnit[], flavours: readonly Flavour[], ssidBits: number) {
  const unitDrivers = units.map((u) => defineUnitDriver(k, u));
  const denv: DriverEnv = { k, units: unitDrivers, stats };
  flavours.forEach((f, u) => {
    const ops: IommuOps = f === 'vtd' ? vtdOps(denv) : f === 'amd' ? amdOps(denv) : smmuv3Ops(denv, ssidBits);
    sva.registerIommu(u, ops);
  });
  return { unitDrivers, denv };
}

/** The oracles' views of the hardware: the IOTLBs and ATCs, the DMA in flight, the frames freed. */
function watchHardware(k: Kernel, oracle: Oracle, pm: PhysMem, units: readonly IommuUnit[], devices: readonly PciDevice[], ownerName: (o: number) => string): void {
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
}

/**
 * The run's kernel, its shared memory sized to the topology (a topology too large to hold is refused naming what
 * takes the memory), and the sizes the workload is built with: bonds, the VMM's mm, physical frames, I/O page
 * tables.
 */
function svaKernel(p: SvaParams, U: number): { k: Kernel; bonds: number; vmm: number; frames: number; iopt: number } {
  const D = p.devices;
  const P = p.processes;
  const bonds = Math.max(8, 2 * P * p.opens + 8);
  // A VMM whose memory VFIO maps, when VFIO is in the run: an address space of its own.
  const vmm = p.vfio === 'none' ? 0 : 1;
  const frames = (P + 2) * p.pages + 16 + vmm * p.kbuffers;
  // I/O page tables for DMA and paging domains: address spaces of the mm layer that no process uses.
  const iopt = p.defaultDomain === 'none' && p.kernel === 'none' && p.vfio === 'none' && p.drmContexts === 0 ? 0 : Math.min(U * p.addressSpaces, D + p.kdevices + p.drmContexts + 4);
  // A PASID table entry (up to 8 words), the device's state (3) and the driver's (2) per PASID, its pasid_ida's bitmap.
  const perDevice = (1 << p.pasidBits) * (8 + 3 + 2 + 2) + Math.ceil((1 << p.pasidBits) / 32) + 512 + 4 * p.atc + IOPF_DEVICE_WORDS;
  const readerSlots = tasksAtOnce(p, bonds);
  const readers = readerTableWords(readerSlots);
  // The terms that grow with the parameters, named for the refusal of a topology too large to hold. A bond
  // takes 32 words: the iommu_sva record (11, with its kmemleak track), its PASID share (9) and quarantine (3).
  const sized: Record<string, number> = {
    'PASID state (devices × 2^pasidBits × 15 words)': D * perDevice,
    'address spaces (processes × pages)': mmTableWords(P + iopt + vmm, p.pages) + physMemWords(frames),
    'IOMMU caches and queues (iommus × (iotlb + prqDepth))': U * (4096 + 6 * p.iotlb + 6 * p.prqDepth),
    'bonds, notifiers and RCU/SRCU readers (processes)': mmuNotifierWords(bonds) + bonds * 32 + readers.rcu + readers.srcu,
  };
  const staticWords = (1 << 15) + Object.values(sized).reduce((a, b) => a + b, 0) + (U + 2) * (Math.ceil((1 << p.pasidBits) / 32) + 1) + pasidIoasidWords(p.pasidBits);
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
  return { k, bonds, vmm, frames, iopt };
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
