// The `sva` workload: the one model (model.ts) on a topology of IOMMUs of mixed flavours with PCI devices dealt
// over them, and its processes — their syscalls (syscalls.ts) and their actors (built-in scripts, random rates or
// a scenario's script) — built identically in every thread from its parameters. Actors: one per IOMMU unit,
// device, mm and process (in that order). Kernel code paths (syscalls, exit, the IOMMU drivers' page-request
// threads, RCU/SRCU callbacks) are kernel tasks; the oracles run in the steps that could break what they guard.
import type { StatName } from '../core/stats.js';
import { HW_HOT_EVENTS, HW_SHARED_EVENTS } from '../hw/messages.js';
import { filesWords } from '../kernel/fs/file.js';
import { staticsOffset } from '../kernel/memory.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import type { ActorSpec, Wire, Workload } from '../runtime/model.js';
import { applyModelPatches, buildModel, type Model } from './model.js';
import { patchFiles } from './patch-loader.js';
import { type SvaParams, svaParams, svaTopology } from './presets/sva.js';
import { processActors } from './processes.js';
import { defineScriptedProcesses, PROCESS_CR, parseSteps, scriptedExtraTasks, taskComms } from './sva-script.js';
import { defineSyscalls } from './syscalls.js';

export { TASK_MMS, type TaskMm } from './params/policies.js';

export { SVA_DEFAULTS, SVA_PRESET, type SvaParams, svaParams } from './presets/sva.js';

/** Everything a workload instance is made of (tests reach into it): the model's parts, and the processes'. */
export interface SvaModel extends Pick<Model, 'k' | 'sva' | 'stats' | 'units' | 'hardware' | 'pm' | 'devices' | 'infos' | 'dma' | 'domains' | 'kusers' | 'kthreads' | 'boot'> {
  readonly params: SvaParams;
  mm(i: number): MmStruct;
  /** Actor ids. */
  readonly actors: { unit(u: number): number; device(d: number): number; mm(i: number): number; process(i: number): number };
}

export function buildSva(raw: Readonly<Record<string, Wire>>): { workload: Workload; model: SvaModel } {
  const p = svaParams(raw);
  const topo = svaTopology(p);
  const P = p.processes;
  const bonds = Math.max(8, 2 * P * p.opens + 8);
  const m = buildModel({ ...p, multiDevicePasid: 'refused' }, topo, {
    name: 'sva',
    bonds,
    workloadTasks: workloadTasks(p),
    // The processes' task_structs, files and file mappings (syscalls.ts: kernel/fs).
    staticWords: filesWords(P),
    // A process's descriptors are for the address space it binds: its own mm, or init_mm in SUPERVISOR_MODE.
    submitter: (from, { actors, mms }) => {
      const i = from - actors.next;
      if (i < 0 || i >= P) return 0;
      return (p.flags & 2) !== 0 ? mms.initMm.id + 1 : (mms.mms[i] as MmStruct).id + 1;
    },
  });
  const { k, sva, stats, units, devices, infos, mms, dma, domains, kusers } = m;
  const actors = { unit: m.actors.unit, device: m.actors.device, mm: m.actors.mm, process: (i: number) => m.actors.next + i };
  const sys = defineSyscalls({ k, params: p, processes: P, mms, notifiers: m.notifiers, sva, driver: m.driver, stats, infos, actors, boot: m.boot });
  const specs: ActorSpec[] = [...m.specs];
  // A script's processes are kernel tasks (sva-script.ts); otherwise each is an actor.
  const scriptActors = parseSteps(p.steps, P, taskComms(k, p, units), infos.length);
  const script = scriptActors && defineScriptedProcesses({ k, sys, infos, flags: p.flags, submitter: actors.process, hotplug: { k, bus: m.boot.bus, devices, boot: m.boot } }, scriptActors);
  if (script) {
    const n = scriptActors?.length ?? 0;
    m.addCompletion(
      (cr, ok) => {
        if (cr < PROCESS_CR || cr >= PROCESS_CR + n) return false;
        script.completion(cr, ok);
        return true;
      },
      (cr) => (cr < PROCESS_CR || cr >= PROCESS_CR + n ? undefined : script.completionWords(cr)),
    );
  }
  specs.push(...processActors(p, script !== undefined, actors));
  // Last: every kernel function of the run is registered (the syscalls', the script's, the model's).
  applyModelPatches(m, patchFiles(p));

  const statics = staticsOffset(k.layout, k.base);
  const model: SvaModel = { params: p, k, sva, stats, units, hardware: m.hardware, pm: m.pm, kthreads: m.kthreads, boot: m.boot, devices, infos, mm: (i) => mms.mms[i] as MmStruct, actors, dma, domains, kusers };
  const workload: Workload = {
    name: 'sva',
    params: { ...p },
    actors: specs,
    initial: script ? [] : Array.from({ length: p.sequential ? Math.min(1, P) : P }, (_, i) => ({ to: actors.process(i), event: { type: 'go' } })),
    sharedWords: k.words,
    hotEvents: { ...HW_HOT_EVENTS, go: [] },
    sharedEvents: HW_SHARED_EVENTS,
    footprintOf: m.footprintOf,
    unorderedWords: [stats.words(statics)],
    tasks: k.taskFactories,
    initialTasks: [m.boot.task, ...(script?.initialTasks ?? [])],
    monitor: k,
    check: (finals, shared) => {
      const counters = stats.read(shared, statics) as Record<StatName, number> & Record<string, number>;
      const problems: string[] = script?.unfinished(shared, statics) ?? [];
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
 * How many of the workload's tasks can be alive at once — every one may be inside RCU's or SRCU's read side, so
 * the reader tables get a slot each (the model adds its own: an SRCU and an RCU callback per bond, the
 * page-request threads, the kernel's own DMA users, VFIO, DRM and probe): a process's syscall and the driver's
 * bind_task thread (scripted: one more for each exit not waited for and each `while`).
 */
function workloadTasks(p: SvaParams): number {
  // Two a process at most (its syscall and bind_task), and one more as margin: a slot costs 16 words.
  return 3 * p.processes + scriptedExtraTasks(p.steps);
}

export function svaWorkload(raw: Readonly<Record<string, Wire>>): Workload {
  return buildSva(raw).workload;
}
