// The `sva` workload: the one model (model.ts) on a topology of IOMMUs of mixed flavours with PCI devices dealt
// over them, and its processes — their syscalls (syscalls.ts) and their actors (built-in scripts, random rates or
// a scenario's script) — built identically in every thread from its parameters. Actors: one per IOMMU unit,
// device, mm and process (in that order). Kernel code paths (syscalls, exit, the IOMMU drivers' page-request
// threads, RCU/SRCU callbacks) are kernel tasks; the oracles run in the steps that could break what they guard.
import type { DmaApi } from '../core/dma-iommu.js';
import type { Domains } from '../core/iommu.js';
import type { Sva } from '../core/iommu-sva.js';
import type { Stats, StatName } from '../core/stats.js';
import type { DeviceInfo } from '../core/types.js';
import type { IommuUnit } from '../hw/iommu.js';
import { HW_HOT_EVENTS, HW_SHARED_EVENTS } from '../hw/messages.js';
import type { PciDevice } from '../hw/pci/device.js';
import type { Kernel } from '../kernel/kernel.js';
import { staticsOffset } from '../kernel/memory.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import { InputError } from '../runtime/errors.js';
import type { ActorSpec, Wire, Workload } from '../runtime/model.js';
import { declareWhileStep, type ScriptStep } from '../actors/scripted-process.js';
import type { defineKernelUsers } from './kernel-users.js';
import { buildModel } from './model.js';
import { type SvaParams, svaParams, svaTopology } from './presets/sva.js';
import { processActors } from './processes.js';
import { checkWhileTasks, type OrderStep, parseScript } from './script.js';
import { SVA_KINDS } from './steps.js';
import { defineSyscalls } from './syscalls.js';

export { TASK_MMS, type TaskMm } from './params/policies.js';

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
  const topo = svaTopology(p);
  const P = p.processes;
  const bonds = Math.max(8, 2 * P * p.opens + 8);
  const m = buildModel({ ...p, multiDevicePasid: 'refused' }, topo, {
    name: 'sva',
    bonds,
    workloadTasks: workloadTasks(p),
    // A process's descriptors are for the address space it binds: its own mm, or init_mm in SUPERVISOR_MODE.
    submitter: (from, { actors, mms }) => {
      const i = from - actors.next;
      if (i < 0 || i >= P) return 0;
      return (p.flags & 2) !== 0 ? mms.initMm.id + 1 : (mms.mms[i] as MmStruct).id + 1;
    },
  });
  const { k, sva, stats, units, devices, infos, mms, dma, domains, kusers } = m;
  const actors = { unit: m.actors.unit, device: m.actors.device, mm: m.actors.mm, process: (i: number) => m.actors.next + i };
  defineSyscalls({ k, params: p, processes: P, mms, notifiers: m.notifiers, sva, driver: m.driver, stats, infos, actors, boot: m.boot });
  const specs: ActorSpec[] = [...m.specs];
  const scripted = parseSteps(p.steps, P, k, taskComms(k, p, units));
  specs.push(...processActors(p, scripted, actors));

  const statics = staticsOffset(k.layout, k.base);
  const model: SvaModel = { params: p, k, sva, stats, units, devices, infos, mm: (i) => mms.mms[i] as MmStruct, actors, dma, domains, kusers };
  const workload: Workload = {
    name: 'sva',
    params: { ...p },
    actors: specs,
    initial: Array.from({ length: p.sequential ? Math.min(1, P) : P }, (_, i) => ({ to: actors.process(i), event: { type: 'go' } })),
    sharedWords: k.words,
    hotEvents: { ...HW_HOT_EVENTS, go: [] },
    sharedEvents: HW_SHARED_EVENTS,
    tasks: k.taskFactories,
    initialTasks: [m.boot.task],
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
 * How many of the workload's tasks can be alive at once — every one may be inside RCU's or SRCU's read side, so
 * the reader tables get a slot each (the model adds its own: an SRCU and an RCU callback per bond, the
 * page-request threads, the kernel's own DMA users, VFIO, DRM and probe): a process's syscall and the driver's
 * bind_task thread (scripted: one more for each exit not waited for and each `while`).
 */
function workloadTasks(p: SvaParams): number {
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
  return perProcess;
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
