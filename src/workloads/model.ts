// The one model (issue #15): the kernel sized to a topology, its slab, physical memory, mms and MMU notifiers,
// the IOMMU core (domains, groups, SVA domains, the one SVA bind path, the DMA API), the IOMMU units of any mix
// of flavours with their vendor ops, the PCI devices, the kernel's own DMA users, the oracles and counters,
// kernel_init, and the actors of the units, devices and mms. Every preset is a configuration of it: a topology
// and a workload on top (sva.ts: syscalls and processes; domains.ts: a VFIO user, page-fault handlers, scripts).
//
// Interface (what a preset calls):
//   const m = buildModel(params, topology, options);
//   - params: ModelParams — the model's parameters, one meaning per name (src/workloads/params/: pages, caps,
//     pasidBits, the policies, the hardware's sizes, the kernel users, fault injection);
//   - topology: Topology (topology.ts) — units (flavours), devices in groups behind them, processes (an mm
//     each), kernel users;
//   - options: ModelOptions — the workload's name (for refusals), how many bonds and workload tasks the run may
//     have at once (the kernel's sizes), the first actor id, how a process actor's descriptors are tagged, what
//     kernel_init starts once the hardware is configured, I/O page tables for the workload's paging domains,
//     completion records for kernel tasks' own DMA, and whether the drivers' allocation takes fault injection.
//   It returns a Model: `k`, `sva` (k.fn.iommu_sva_bind_device is the bind path), `domains`, `groups`,
//   `svaDomains`, `dma` (the DMA API), `units`, `devices`, `infos` (struct device), `mms`, `notifiers`, `pm`,
//   `pageTables`, `driver` (the accelerator driver), `kusers`, `oracle`, `stats`, `boot` (kernel_init: Boot.wait,
//   Boot.task), `actors` (ids: unit, device, mm, and `next`, the workload's first), `specs` (the ActorSpecs of
//   units, devices and mms, in that order), `dmaWrite` (a kernel task's DMA through a device and its unit),
//   `entryMm` (what a unit's PASID entry points at) and `faults` (EntryFaults). The workload declares its tasks
//   and actors on it and makes the Workload (sva.ts's buildSva, domains.ts's buildDomains).
import { DmaApi, type DefaultDomainPolicy } from '../core/dma-iommu.js';
import { IOMMU_FAULT_PARAM_WORDS, IOPF_DEVICE_WORDS, type IopfEnable } from '../core/io-pgfault.js';
import { type MultiDevicePasid, type PasidLookup, Domains, IommuGroups } from '../core/iommu.js';
import { Sva } from '../core/iommu-sva.js';
import { Oracle } from '../core/oracle.js';
import { pasidIoasidWords } from '../core/pasid.js';
import { Stats } from '../core/stats.js';
import { read } from '../runtime/footprint.js';
import { SvaDomains, type SvaUsers } from '../core/sva-domain.js';
import { type DeviceInfo, DRIVER_BUGS, type DriverBug, type FaultHandling, type PasidLife, type PasidPlacement, type SvaNotifier, type SvaPasidFree, type SvaPolicies, type Teardown } from '../core/types.js';
import type { Flavour } from '../hw/vendor.js';
import { defineIoasid, IOASID_BITS_DEFAULT, type IoasidLock, type IoasidOptions, ioasidWords } from '../core/ioasid.js';
import { type Boot, defineBoot } from '../hw/boot.js';
import { ATTACH_BUGS, type AttachBug, type DriverEnv, EntryFaults } from '../hw/driver.js';
import { type FootprintSource, hardwareFootprintOf } from '../hw/footprint.js';
import { DEFAULT_UNIT, type IommuUnit } from '../hw/iommu.js';
import type { IommuHardware } from '../hw/unit.js';
import { VENDORS } from '../hw/vendors.js';
import { type Misbehaviour, PciDevice } from '../hw/pci/device.js';
import { AccelDriver } from '../hw/pci/driver.js';
import type { UnitDriver } from '../hw/queue.js';
import type { KTask } from '../kernel/context.js';
import { Kernel, type KGen } from '../kernel/kernel.js';
import { layoutWords, refuseOversized } from '../kernel/memory.js';
import { defineMms, MM_BUGS, tablePagesOf, type MmBug, type MmStruct, type MmTable, mmById, mmTableWords } from '../kernel/mm/mm.js';
import { defineMmuNotifiers, type MmuNotifiers, mmuNotifierWords } from '../kernel/mm/mmu_notifier.js';
import { definePhysMem, onPageFree, type PhysMem, pageOwner, physMemWords } from '../kernel/mm/physmem.js';
import { readerTableWords } from '../kernel/rcu.js';
import { slabInit, slabObjectWords } from '../kernel/slab.js';
import type { Footprint } from '../runtime/footprint.js';
import type { ActorSpec, ModelEvent, Wire } from '../runtime/model.js';
import { iommuUnitMachine } from '../actors/iommu-unit.js';
import { Refusals } from '../actors/lifecycle.js';
import { mmContextMachine } from '../actors/mm-context.js';
import { pciDeviceMachine } from '../actors/pci-device.js';
import type { IommufdBug } from '../core/iommufd/index.js';
import { coreStepTable, type ExtensionContext, kernelApi } from './extension.js';
import { applyPatches } from './patch-loader.js';
import { defineDriverKthreads, type DriverKthreads } from './kthreads.js';
import { defineKernelUsers, type KernelUse, type VfioTakeover, type VfioUse } from './kernel-users.js';
import { hardwareActors, type Topology } from './topology.js';


/** The model's parameters (each preset picks its own from src/workloads/params/ and may add its workload's). */
export interface ModelParams {
  /** Virtual pages of each process. */
  readonly pages: number;
  /** Every device's capabilities: a subset of `ats,pri,pasid`. */
  readonly caps: string;
  /** Every device's PASID width. */
  readonly pasidBits: number;
  /** The SMMUs' SSIDSIZE. */
  readonly ssidBits: number;
  readonly trusted: boolean;
  readonly pasidAlloc: PasidPlacement;
  readonly teardown: Teardown;
  readonly fault: FaultHandling;
  readonly drainTimeoutMs: number;
  /** The IOASID allocator's lock (seed 003). */
  readonly lock: IoasidLock;
  /** Where a bond's PASID is freed (seed 003). */
  readonly free: SvaPasidFree;
  /** mm->pasid's lifetime: mainline's (the mm's, dropped at __mmdrop) or seed 000's (the bind's). */
  readonly pasidLife: PasidLife;
  /** Whose MMU notifier: the SVA domain's (mainline) or each bond's (seed 000). */
  readonly notifier: SvaNotifier;
  /** When a device has its iopf fault param: from the first attach of a faulting domain (mainline), or from probe. */
  readonly iopf: IopfEnable;
  /** iommu_get_domain_for_dev_pasid's section (seed 002). */
  readonly lookup: PasidLookup;
  /** SVA domain users (seed 002). */
  readonly users: SvaUsers;
  /** PASID attach on groups of more than one device (seed 002). */
  readonly multiDevicePasid: MultiDevicePasid;
  /** A planted bug (the oracles' negative control): of the SVA path's drivers, or of the attach path. */
  readonly bug: PlantedBug;
  readonly misbehave: Misbehaviour;
  /** The misbehaving device (-1: all of them). */
  readonly misbehaveDevice: number;
  readonly iotlb: number;
  readonly atc: number;
  readonly prqDepth: number;
  /** failslab, `cache:n`: the nth allocation from that slab cache fails ('' for none). */
  readonly failAlloc: string;
  readonly hungTaskSecs: number;
  /** kernel.watchdog_thresh (s): the soft-lockup threshold is twice it. */
  readonly watchdogThresh: number;
  /** rcupdate.rcu_cpu_stall_timeout (s). */
  readonly rcuStallSecs: number;
  /** The machine's CPUs (a task's CPU is its pid modulo them). */
  readonly cpus: number;
  readonly defaultDomain: DefaultDomainPolicy;
  readonly addressSpaces: number;
  readonly kernel: KernelUse;
  readonly kjobs: number;
  readonly kbuffers: number;
  readonly kthreads: number;
  readonly vfio: VfioUse;
  readonly vfioTakeover: VfioTakeover;
  readonly drmContexts: number;
  readonly drmRounds: number;
}

/** The planted bugs of the one model: the SVA path's (core/types.ts), the attach path's (hw/driver.ts), iommufd's, the mm's (kernel/fork.c). */
export type PlantedBug = DriverBug | AttachBug | IommufdBug | MmBug;

/** What the workload tells the model about itself. */
export interface ModelOptions {
  /** The workload's name (a topology too large to hold is refused under it). */
  readonly name: string;
  /** Bonds (struct iommu_sva) that may exist at once. */
  readonly bonds: number;
  /** Workload tasks that may be alive at once (each gets an RCU and an SRCU reader slot). */
  readonly workloadTasks: number;
  /** The units' actor id is firstActor + unit (actors before it are the workload's own). */
  readonly firstActor?: number;
  /** I/O page tables to keep beyond the ones the kernel users need (paging domains of the workload). */
  readonly pageTables?: number;
  /** The address space a submitting actor's descriptors are for (id + 1), 0 when it is not a process. */
  submitter?(from: number, m: { readonly actors: ModelActors; readonly mms: MmTable }): number;
  /** What kernel_init starts once the hardware is configured, beyond the kernel users' probe. */
  readonly bootTasks?: readonly { task: string; args: Wire; name: string }[];
  /** Kernel tasks that issue DMA of their own at once (Model.dma: a completion record each). */
  readonly dmaSlots?: number;
  /** Arm the drivers' per-{device, PASID} allocation for fault injection (Model.faults). */
  readonly entryFaults?: boolean;
  /**
   * The kernel's IOASID allocator as the workload sizes it (its ID space, sets, lock and chain policies), declared
   * before the core so that the system PASID placement allocates from it; default: the core's own, sized to the
   * devices' PASIDs.
   */
  readonly ioasid?: IoasidOptions;
  /** Static words the workload's own state takes (its counters, the IOASID subscribers' views). */
  readonly staticWords?: number;
}

/** Actor ids: the units, devices and mms; `next` is the workload's first (processes). */
export interface ModelActors {
  unit(u: number): number;
  device(d: number): number;
  mm(i: number): number;
  readonly next: number;
}

export interface Model {
  readonly k: Kernel;
  readonly topo: Topology;
  readonly flavours: readonly Flavour[];
  readonly oracle: Oracle;
  readonly stats: Stats;
  readonly pm: PhysMem;
  readonly mms: MmTable;
  readonly notifiers: MmuNotifiers;
  readonly domains: Domains;
  readonly groups: IommuGroups;
  readonly svaDomains: SvaDomains;
  readonly sva: Sva;
  readonly dma: DmaApi;
  readonly infos: readonly DeviceInfo[];
  readonly units: readonly IommuUnit[];
  readonly hardware: readonly IommuHardware[];
  readonly devices: readonly PciDevice[];
  readonly driver: AccelDriver;
  readonly kusers: ReturnType<typeof defineKernelUsers>;
  readonly boot: Boot;
  /** The accelerator driver's kernel threads (the `kthreads` parameter; undefined: none). */
  readonly kthreads: DriverKthreads | undefined;
  readonly actors: ModelActors;
  /** The ActorSpecs of the units, devices and mms, in that order. */
  readonly specs: readonly ActorSpec[];
  /** The I/O page tables the model keeps for DMA and paging domains (address spaces no process uses). */
  readonly pageTables: readonly MmStruct[];
  /** The VMM's mm (VFIO's user), when VFIO is in the run. */
  readonly vmm: MmStruct | undefined;
  /** The fault injection of the drivers' per-{device, PASID} allocation (ModelOptions.entryFaults). */
  readonly faults: EntryFaults | undefined;
  /**
   * A DMA write by dev under pasid to address vpn, issued by a kernel task through the PCI device model and its
   * IOMMU unit (`slot`: the task's completion record, < ModelOptions.dmaSlots): true when it completed. The
   * isolation oracle judges where it lands.
   */
  dmaWrite(t: KTask, dev: DeviceInfo, pasid: number, vpn: number, slot: number): KGen<boolean>;
  /** The address space {dev, pasid}'s entry in its unit points at now (mm id + 1; 0: not present). */
  entryMm(dev: DeviceInfo, pasid: number): number;
  /** Route the devices' writes of completion records the workload numbers itself (true: taken). */
  addCompletion(c: (cr: number, ok: boolean) => boolean, words?: (cr: number) => readonly number[] | undefined): void;
  /** Workload.footprintOf of the hardware's shared events (src/hw/footprint.ts). */
  footprintOf(to: number, event: ModelEvent): Footprint | undefined;
}

/** What the hardware's builders share: the parameters, and the model's parts built before the hardware. */
interface Build {
  readonly k: Kernel;
  readonly p: ModelParams;
  readonly topo: Topology;
  readonly opts: ModelOptions;
  readonly infos: readonly DeviceInfo[];
  readonly actors: ModelActors;
  readonly mem: ReturnType<typeof modelMemory>;
  readonly core: ReturnType<typeof iommuCore>;
}

/** The kernel's sizes for a topology. */
interface Sizes {
  readonly vmm: number;
  readonly frames: number;
  readonly iopt: number;
}

export function buildModel(p: ModelParams, topo: Topology, opts: ModelOptions): Model {
  const sizes = modelSizes(p, topo, opts);
  const k = modelKernel(p, topo, opts, sizes);
  const [failCache, failNth] = p.failAlloc === '' ? [] : (p.failAlloc.split(':') as [string, string]);
  slabInit(k, failCache ? { failslab: { cache: failCache, nth: Number(failNth) } } : {});
  if (opts.ioasid) defineIoasid(k, opts.ioasid);
  const actors = modelActorIds(topo, opts.firstActor ?? 0);
  const infos = deviceInfos(p, topo, actors);
  const mem = modelMemory(k, p, topo, opts, sizes);
  const core = iommuCore(k, p, topo, opts, infos, mem);
  const hw = modelHardware({ k, p, topo, opts, infos, actors, mem, core }, sizes);
  const refusals = new Refusals(k, () => k.deliveryStep);
  const specs = modelActorSpecs(k, topo, actors, hw, refusals);
  const jobs = kernelDma(k, opts.dmaSlots ?? 0);
  const { addCompletion, ...parts } = hw;
  addCompletion(jobs.completion, jobs.words);
  const entryMm = (dev: DeviceInfo, pasid: number): number => {
    const u = hw.units[dev.iommu] as IommuUnit;
    const words = u.entry(dev.index, pasid);
    return u.spec.entry.present(words) ? u.spec.entry.mmOf(words) : 0;
  };
  const footprintOf = hardwareFootprintOf(
    new Map<number, FootprintSource>([...hw.hardware.map((h, i) => [actors.unit(i), h] as const), ...hw.devices.map((d, i) => [actors.device(i), d] as const)]),
    new Set(Array.from({ length: topo.processes }, (_, i) => actors.mm(i))),
  );
  return { k, topo, flavours: topo.units.map((u) => u.flavour), ...mem, ...core, ...parts, infos, actors, specs, dmaWrite: jobs.dma, entryMm, addCompletion, footprintOf };
}

/**
 * A scenario's patches (patch-loader.ts), in order, on the model a preset has finished building: every kernel
 * function it defines — the core's, the drivers', the mm's, io-pgfault's, iommufd's, IOASID's, the preset's own —
 * is registered by then, so a patch may replace any of them by name. Every preset calls it last.
 */
export function applyModelPatches(m: Model, files: readonly string[]): void {
  if (files.length > 0) applyPatches(files, extensionContext(m), m.k.fns);
}

/** What a patch's extend(ctx) is handed (its type and fields are extension.ts's). */
function extensionContext(m: Model): ExtensionContext {
  const { k, sva, dma, units, infos } = m;
  return {
    k,
    sva,
    dma,
    units,
    devices: infos,
    iommuOps: (u) => sva.ops(infos.find((d) => d.iommu === u) ?? ({ iommu: u } as DeviceInfo)),
    setIommuOps: (u, ops) => sva.registerIommu(u, ops),
    ...coreStepTable(k),
    kernel: kernelApi(k),
  };
}

/** Completion records at this index and above are the workload's kernel DMA (below: the kernel users'). */
const KERNEL_DMA_CR = 1 << 16;

/** DMA issued by kernel tasks: a descriptor to the device, a completion record it writes back (as DSA does). */
function kernelDma(k: Kernel, slots: number) {
  const crs = slots > 0 ? k.statics.alloc(slots, 'kernel DMA completion records') : 0;
  const cr = (slot: number): number => k.mem.statics + crs + slot;
  return {
    /** The words completion(crIndex1) writes (undefined: not this workload's record). */
    words(crIndex1: number): readonly number[] | undefined {
      return crIndex1 <= KERNEL_DMA_CR || crIndex1 > KERNEL_DMA_CR + slots ? undefined : [cr(crIndex1 - KERNEL_DMA_CR - 1)];
    },
    completion(crIndex1: number, ok: boolean): boolean {
      if (crIndex1 <= KERNEL_DMA_CR || crIndex1 > KERNEL_DMA_CR + slots) return false;
      Atomics.store(k.i32, cr(crIndex1 - KERNEL_DMA_CR - 1), ok ? 1 : 2);
      return true;
    },
    *dma(t: KTask, dev: DeviceInfo, pasid: number, vpn: number, slot: number): KGen<boolean> {
      if (slot < 0 || slot >= slots) throw new Error(`kernel DMA: slot ${slot} of ${slots}`);
      yield* k.stepOn(t, `${dev.name}: DMA write (PASID ${pasid}, address ${vpn})`, [cr(slot)], (e) => {
        Atomics.store(k.i32, cr(slot), 0);
        e.send(dev.actor, { type: 'submit', pasid, vpn, w: 1, id: slot, from: 0, cr: KERNEL_DMA_CR + slot + 1 });
      });
      const done = (yield k.point(
        t,
        `wait for ${dev.name}'s completion record`,
        () => Atomics.load(k.i32, cr(slot)) !== 0,
        () => Atomics.load(k.i32, cr(slot)),
        { what: `${dev.name} to complete the DMA of ${t.comm}` },
        [read(cr(slot))],
      )) as number;
      return done === 1;
    },
  };
}

/** The SVA path's value of a planted bug (the attach path's bugs leave it as it is). */
function svaBug(bug: PlantedBug): DriverBug {
  return (DRIVER_BUGS as readonly string[]).includes(bug) ? (bug as DriverBug) : 'none';
}

/** The attach path's value of a planted bug. */
function attachBug(bug: PlantedBug): AttachBug {
  return (ATTACH_BUGS as readonly string[]).includes(bug) ? (bug as AttachBug) : 'none';
}

/** Bonds, the VMM's mm, physical frames, I/O page tables: what the topology and the kernel users take. */
function modelSizes(p: ModelParams, topo: Topology, opts: ModelOptions): Sizes {
  const U = topo.units.length;
  const D = topo.devices.length;
  const P = topo.processes;
  // A VMM whose memory VFIO maps, when VFIO is in the run: an address space of its own.
  const vmm = p.vfio === 'none' ? 0 : 1;
  // I/O page tables for DMA and paging domains: address spaces of the mm layer that no process uses.
  const extra = opts.pageTables ?? 0;
  const kernelTables = p.defaultDomain === 'none' && p.kernel === 'none' && p.vfio === 'none' && p.drmContexts === 0 ? 0 : Math.min(U * p.addressSpaces, D + topo.kernelUsers + p.drmContexts + 4);
  // Every address space's page-table pages too (init_mm's, each process's, each I/O page table's, the VMM's).
  const frames = (P + 2) * p.pages + 16 + vmm * p.kbuffers + (P + 1 + kernelTables + extra + vmm) * tablePagesOf(p.pages);
  return { vmm, frames, iopt: kernelTables + extra };
}

/**
 * The run's kernel, its shared memory sized to the topology (a topology too large to hold is refused naming what
 * takes the memory).
 */
function modelKernel(p: ModelParams, topo: Topology, opts: ModelOptions, s: Sizes): Kernel {
  const U = topo.units.length;
  const D = topo.devices.length;
  const P = topo.processes;
  const bonds = opts.bonds;
  // The PASID tables (a vendor's Vendor.deviceWords, or an entry of its layout per PASID — with entries larger
  // than 8 words, the SMMU's 16-word CDs, a quarter word more per PASID for the tables above them: its L1 CD table
  // and leaf pointers), the device's state (3) and the driver's (2) per PASID, its pasid_ida's bitmap.
  const n = 1 << p.pasidBits;
  const unitTableWords = (f: Flavour): number => {
    const v = VENDORS[f];
    const w = v.spec.entry.layout.words;
    return v.deviceWords?.(p.pasidBits) ?? n * w + (w > 8 ? Math.ceil(n / 4) : 0);
  };
  const tableWords = Math.max(n * 8, ...topo.units.map((u) => unitTableWords(u.flavour)));
  const perPasid = Math.ceil(tableWords / n) + 7;
  const perDevice = tableWords + n * (3 + 2 + 2) + Math.ceil(n / 32) + 512 + 4 * p.atc + IOPF_DEVICE_WORDS;
  const readerSlots = opts.workloadTasks + 2 * bonds + U + topo.kernelUsers + 16;
  const readers = readerTableWords(readerSlots);
  // The terms that grow with the parameters, named for the refusal of a topology too large to hold. A bond
  // takes 32 words: the iommu_sva record (11, with its kmemleak track), its PASID share (9) and quarantine (3).
  const sized: Record<string, number> = {
    [`PASID state (devices × 2^pasidBits × ${perPasid} words)`]: D * perDevice,
    'address spaces (processes × pages)': mmTableWords(P + s.iopt + s.vmm, p.pages) + physMemWords(s.frames),
    'IOMMU caches and queues (iommus × (iotlb + prqDepth))': U * (4096 + 6 * p.iotlb + 6 * p.prqDepth),
    'bonds, notifiers and RCU/SRCU readers (processes)': mmuNotifierWords(bonds) + bonds * 32 + readers.rcu + readers.srcu,
    "the workload's own (IOASID space, subscribers)": (opts.ioasid ? ioasidWords(opts.ioasid.bits ?? IOASID_BITS_DEFAULT, opts.ioasid.maxSets) : 0) + (opts.staticWords ?? 0),
  };
  const staticWords = (1 << 15) + Object.values(sized).reduce((a, b) => a + b, 0) + (U + 2) * (Math.ceil((1 << p.pasidBits) / 32) + 1) + pasidIoasidWords(p.pasidBits);
  // Every task interns its label and comm (allocation owners, KASAN's alloc/free tracks, lockdep's sites): the
  // string table grows with the topology, or a large one fills it and lockdep turns itself off.
  const tasks = P + D + U;
  const layout = {
    stringWords: Math.max(1 << 17, 128 * tasks),
    stringSlots: Math.max(1 << 12, 2 ** Math.ceil(Math.log2(8 * tasks))),
    staticWords,
    // The slab arena: what every run needs, and what grows with the topology — each device's iommu_fault_param
    // (two at once: one waiting for its RCU free while the next attach allocates another), and per process and
    // bond the small objects (an SVA domain, a page-fault group). Too small, and kzalloc fails where the kernel's
    // would not: a bind of a large topology returns -ENOMEM.
    arenaWords: (1 << 12) + 2 * D * slabObjectWords(IOMMU_FAULT_PARAM_WORDS) + (P + bonds) * slabObjectWords(32),
    lockdepWords: 1 << 14,
  };
  refuseOversized(opts.name, layoutWords(layout), sized);
  return new Kernel({ layout, hungTaskSecs: p.hungTaskSecs, watchdogThresh: p.watchdogThresh, rcuStallSecs: p.rcuStallSecs, cpus: p.cpus, readerSlots });
}

function modelActorIds(topo: Topology, first: number): ModelActors {
  const U = topo.units.length;
  const D = topo.devices.length;
  return {
    unit: (u) => first + u,
    device: (d) => first + U + d,
    mm: (i) => first + U + D + i,
    next: first + U + D + topo.processes,
  };
}

/** struct device of each PCI device of the topology. */
function deviceInfos(p: ModelParams, topo: Topology, actors: ModelActors): DeviceInfo[] {
  const capSet = new Set(p.caps.split(','));
  return topo.devices.map((d) => ({
    index: d.index,
    name: d.name,
    iommu: d.iommu,
    caps: { ats: capSet.has('ats'), pri: capSet.has('pri'), pasid: capSet.has('pasid'), pasidBits: p.pasidBits },
    actor: actors.device(d.index),
    trusted: p.trusted,
  }));
}

/** Physical memory, the mms (processes', then the I/O page tables, then the VMM's) and their MMU notifiers. */
function modelMemory(k: Kernel, p: ModelParams, topo: Topology, opts: ModelOptions, s: Sizes) {
  const P = topo.processes;
  const pm = definePhysMem(k, s.frames + 2 * p.drmContexts);
  const mms = defineMms(k, pm, P + s.iopt + s.vmm, p.pages, (MM_BUGS as readonly string[]).includes(p.bug) ? (p.bug as MmBug) : 'none');
  const notifiers = defineMmuNotifiers(k, mms, opts.bonds, p.bug);
  return { pm, mms, notifiers, pageTables: mms.mms.slice(P, P + s.iopt), vmm: s.vmm ? mms.mms[P + s.iopt] : undefined };
}

/** The oracles, counters and the vendor-neutral core: domains, groups, SVA domains, the bind path, the DMA API. */
function iommuCore(k: Kernel, p: ModelParams, topo: Topology, opts: ModelOptions, infos: readonly DeviceInfo[], mem: ReturnType<typeof modelMemory>) {
  const U = topo.units.length;
  const { mms, notifiers } = mem;
  const oracle = new Oracle(k);
  const stats = new Stats(k);
  const policies: SvaPolicies = { pasidAlloc: p.pasidAlloc, teardown: p.teardown, fault: p.fault, drainTimeoutMs: p.drainTimeoutMs, bug: svaBug(p.bug), ioasidLock: p.lock, free: p.free, pasidLife: p.pasidLife, notifier: p.notifier };
  const domains = new Domains(k, {
    iommus: U,
    addressSpaces: p.addressSpaces,
    pageTables: mem.pageTables,
    unitName: (u) => VENDORS[topo.units[u]?.flavour ?? 'vtd'].spec.unitName(u),
    mmOf: (id) => mmById(mms, id),
  });
  const groupMembers = Array.from({ length: 1 + Math.max(-1, ...topo.devices.map((d) => d.group)) }, (_, g) => topo.devices.filter((d) => d.group === g).map((d) => d.index));
  const groups = new IommuGroups(k, domains, { devices: infos, groups: groupMembers, maxPasids: 1 << p.pasidBits, policies: { lookup: p.lookup, multiDevicePasid: p.multiDevicePasid } });
  const svaDomains = new SvaDomains(k, groups, domains, { mms: mms.mms.length, iommus: U, devices: infos.length, maxPasids: 1 << p.pasidBits, users: p.users });
  const sva = new Sva(k, mms, notifiers, oracle, stats, svaDomains, { devices: infos, iommus: U, policies, bonds: opts.bonds });
  const dma = new DmaApi(k, sva, domains, infos, p.defaultDomain, mms.initMm.id + 1);
  return { oracle, stats, domains, groups, svaDomains, sva, dma };
}

/**
 * The IOMMU units and their drivers, the kernel's own DMA users, the units' hardware, the PCI
 * devices and their accelerator driver, the oracles' views of the hardware, kernel_init.
 */
function modelHardware(b: Build, s: Sizes) {
  const { k, p, topo, opts, infos, mem, core } = b;
  const { sva, dma, domains, stats, oracle } = core;
  const { pm, mms, vmm } = mem;
  const { units, unitDrivers, denv } = modelUnits(b);
  const kusers = defineKernelUsers(
    // The IOMMU units' walk (they are built below; a job asks only once the run is going).
    { k, sva, dma, domains, stats, pm, mms, infos, reachable: (d, pasid) => hardware[d.iommu]?.reachable(d.index, pasid) ?? [] },
    { use: p.kernel, jobs: p.kjobs, buffers: p.kbuffers, devices: topo.kernelUsers, vfio: p.vfio, takeover: p.vfioTakeover, vfioUser: vmm, drmContexts: p.drmContexts, drmRounds: p.drmRounds },
  );
  const hardware = units.map((u, i) => {
    const vendor = VENDORS[topo.units[i]?.flavour ?? 'vtd'];
    const prqTask = vendor.definePrqThread(k, unitDrivers[i] as UnitDriver, stats, infos, p.iopf);
    return vendor.newHardware(u, { devices: infos, mms, oracle, stats, prqTask });
  });
  const ownerName = ownerNames(mem);
  const { devices, completions, completionWords } = pciDevices(b, ownerName, (cr, ok) => kusers.completion(cr, ok));
  completionWords.push(kusers.completionWords);
  const driver = new AccelDriver(k, sva, devices, opts.bonds);
  watchHardware(k, oracle, pm, units, devices, ownerName);
  k.onAttach(() => {
    for (const h of hardware) h.reset();
    for (const d of devices) d.reset();
  });
  k.onEnd(() => oracle.unanswered(units.flatMap((u) => u.outstandingGroups())));
  const probe = s.iopt - (opts.pageTables ?? 0) > 0 ? [{ task: 'iommu_probe', args: null, name: 'iommu_probe' }] : [];
  const boot = defineBoot(k, units, devices, [...probe, ...(opts.bootTasks ?? [])]);
  const addCompletion = (c: (cr: number, ok: boolean) => boolean, words?: (cr: number) => readonly number[] | undefined): void => {
    completions.push(c);
    if (words) completionWords.push(words);
  };
  const kthreads = p.kthreads > 0 ? defineDriverKthreads({ k, dma, pm, mms, infos, boot, noDefaultDomain: p.defaultDomain === 'none', addCompletion }, p.kthreads) : undefined;
  return { units, hardware, devices, driver, kusers, boot, kthreads, addCompletion, faults: denv.faults };
}

/** The IOMMU units, their drivers and vendor ops registered. */
function modelUnits(b: Build) {
  const { k, p, topo, opts, infos, actors, mem, core } = b;
  const { sva, stats } = core;
  const flavours = topo.units.map((u) => u.flavour);
  const unitOpts = { ...DEFAULT_UNIT, iotlbEntries: p.iotlb, prqDepth: p.prqDepth };
  const units = topo.units.map((u) => VENDORS[u.flavour].newUnit(k, u.index, infos.filter((d) => d.iommu === u.index), unitOpts, actors.unit(u.index)));
  const faults = opts.entryFaults ? new EntryFaults(k, infos.length, 1 << p.pasidBits) : undefined;
  const { unitDrivers, denv } = registerDrivers({ k, sva, stats, units, flavours, ssidBits: p.ssidBits, notifier: p.notifier, faults, attachBug: attachBug(p.bug), mmOf: (id) => mmById(mem.mms, id) });
  return { units, unitDrivers, denv };
}

/** How the oracles name the owner of a frame (an mm id + 1; 0: free). */
function ownerNames(mem: ReturnType<typeof modelMemory>): (o: number) => string {
  const { mms, vmm } = mem;
  const tables = new Set(mem.pageTables.map((pt) => pt.id + 1));
  return (o) =>
    o === 0
      ? 'a free frame'
      : vmm && o === vmm.id + 1
        ? `${vmm.name} (a VMM's memory, mapped through VFIO)`
        : tables.has(o)
          ? `${mmById(mms, o - 1)?.name ?? `owner ${o}`} (an I/O page table's memory: a DMA or paging domain's)`
          : (mmById(mms, o - 1)?.name ?? `owner ${o}`);
}

/**
 * The PCI devices: where their DMA's completion records go (the workload's kernel DMA, then the kernel users'),
 * and the isolation oracle's truth — the mm a bond binds at {dev, PASID}, or the address space of the domain the
 * group attached there for this device (a paging domain's I/O page table, an SVA domain's mm).
 */
function pciDevices(b: Build, ownerName: (o: number) => string, kernelUsers: (cr: number, ok: boolean) => void) {
  const { k, p, opts, infos, actors, mem, core } = b;
  const { sva, domains, groups, stats, oracle } = core;
  const { pm, mms } = mem;
  const submitter = (from: number): number => opts.submitter?.(from, { actors, mms }) ?? 0;
  const completions: ((cr: number, ok: boolean) => boolean)[] = [];
  const completion = (cr: number, ok: boolean): void => {
    for (const c of completions) if (c(cr, ok)) return;
    kernelUsers(cr, ok);
  };
  // The word a completion record's write lands on, when its writer says (each writer's records are a range of
  // their own: the kernel users', the kernel DMA's, the kthreads'), for a device step's footprint; a record no
  // writer names (a scripted process's) leaves the step on the fallback lock.
  const completionWords: ((cr: number) => readonly number[] | undefined)[] = [];
  const completionWordsOf = (cr: number): readonly number[] | undefined => {
    for (const w of completionWords) {
      const at = w(cr);
      if (at !== undefined) return at;
    }
    return undefined;
  };
  const boundMm = (d: number, pasid: number): number => {
    const bond = sva.boundMm(d, pasid);
    if (bond !== 0) return bond;
    const dom = groups.domainAttachedFor(infos[d] as DeviceInfo, pasid);
    return dom === 0 ? 0 : (domains.handle(dom).mm?.id ?? -1) + 1;
  };
  const boundMmReads = (d: number, pasid: number, out: number[]): void => {
    const w = sva.boundMmWord(d, pasid);
    if (w !== undefined) out.push(w);
    if (sva.boundMm(d, pasid) !== 0) return;
    const info = infos[d] as DeviceInfo;
    groups.domainAttachedForReads(info, pasid, out);
    domains.mmReads(groups.domainAttachedFor(info, pasid), out);
  };
  const devices = infos.map(
    (info) =>
      new PciDevice(
        { k, sva: { boundMm }, oracle, stats, pm, iommuActor: actors.unit(info.iommu), ownerName, completion, submitter, boundMmReads, completionWords: completionWordsOf },
        info,
        p.misbehaveDevice === -1 || p.misbehaveDevice === info.index ? p.misbehave : 'none',
        p.atc,
      ),
  );
  return { devices, completions, completionWords };
}

/** Each unit's queue and driver (its command submission, its page-request thread's), and its flavour's ops. */
function registerDrivers(env: {
  k: Kernel;
  sva: Sva;
  stats: Stats;
  units: readonly IommuUnit[];
  flavours: readonly Flavour[];
  ssidBits: number;
  notifier: SvaNotifier | undefined;
  faults: EntryFaults | undefined;
  attachBug: AttachBug;
  mmOf(id: number): MmStruct | undefined;
}) {
  const { k, sva, stats, units, flavours, ssidBits, notifier } = env;
  const unitDrivers = units.map((u, i) => VENDORS[flavours[i] as Flavour].unitDriver(k, u));
  const denv: DriverEnv = { k, units: unitDrivers, stats, faults: env.faults, attachBug: env.attachBug, mmOf: env.mmOf };
  flavours.forEach((f, u) => {
    sva.registerIommu(u, VENDORS[f].ops(denv, { ssidBits, notifier }));
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

/** The ActorSpecs of the units, devices and mms (the one place their machines are chosen). */
function modelActorSpecs(k: Kernel, topo: Topology, actors: ModelActors, hw: ReturnType<typeof modelHardware>, refusals: Refusals): ActorSpec[] {
  const step = (): number => k.deliveryStep;
  return hardwareActors(
    topo,
    {
      unit: (u) => ({ logic: iommuUnitMachine(hw.hardware[u.index] as IommuHardware, actors.unit(u.index), step, refusals) }),
      device: (d) => ({ logic: pciDeviceMachine(hw.devices[d.index] as PciDevice, actors.device(d.index), step, refusals) }),
      mm: (i) => ({ logic: mmContextMachine(`mm/${i + 1}`, refusals) }),
    },
    { unit: (u) => (hw.hardware[u] as IommuHardware).actorName, device: (d) => (hw.devices[d] as PciDevice).actorName },
  );
}
