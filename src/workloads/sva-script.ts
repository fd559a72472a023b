// The sva preset's scripted processes: a scenario's `proc/N`, each a kernel task (comm `procN`) that does exec,
// then its steps in order — open (an fd on a device's node, named with `as`: the driver binds; `bind` opens the
// process's own device), mmap (of an fd's portal) and munmap_portal, dma (submit n descriptors to an fd's device
// and, unless `wait: false`, wait for their completions), munmap, close (an fd: its release unbinds, unless a
// mapping still holds the file; `unbind` closes the newest), exit (do_exit; `wait: false` goes on at once, the
// exit running in another thread of the process) — through the same syscall code the process actors' tasks run
// (syscalls.ts), with the one script engine's ordering (script.ts: `after`, `while`). The DMA is the device's: it
// writes the process's completion record, which the waiting task reads. Here too: the steps checked for what a
// process can still do at each one, the comms a `while` may name, the tasks a script adds.
import type { DeviceInfo } from '../core/types.js';
import type { IommuUnit } from '../hw/iommu.js';
import type { KTask } from '../kernel/context.js';
import { ENODEV, errname } from '../kernel/errno.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { InputError } from '../runtime/errors.js';
import type { Wire } from '../runtime/model.js';
import type { SvaParams } from './presets/sva.js';
import { defineHotplugActors, type HotplugEnv, hotplugActors } from './hotplug.js';
import type { HotplugOp } from './hotplug-steps.js';
import { defineKthreadActors, isKthreadOp, kthreadActors, MAX_KTHREAD_ACTORS } from './kernel-users.js';
import type { KthreadOp } from './kthread-steps.js';
import { checkWhileTasks, parseScript, type ScriptActor, ScriptRunner, type StepOutcome, withinTopology } from './script.js';
import { PRESET_ACTORS } from './steps.js';
import type { Syscalls } from './syscalls.js';

/** A process's own steps (`after` and `while` are every actor's: script.ts). */
export type SvaOp =
  | { readonly op: 'open'; readonly dev?: number; readonly as?: string }
  | { readonly op: 'close'; readonly fd?: string }
  | { readonly op: 'mmap'; readonly fd?: string }
  | { readonly op: 'munmap_portal'; readonly fd?: string }
  | { readonly op: 'bind'; readonly dev?: number; readonly as?: string }
  | { readonly op: 'dma'; readonly n: number; readonly vpn: number; readonly write: boolean; readonly wait: boolean; readonly fd?: string }
  | { readonly op: 'munmap'; readonly vpn: number; readonly n: number; readonly remap: boolean }
  | { readonly op: 'madvise' | 'migrate'; readonly vpn: number; readonly n: number; readonly as?: string }
  | { readonly op: 'unbind'; readonly fd?: string }
  /** do_exit; `wait: false` goes on at once: another thread of the process carries on meanwhile. */
  | { readonly op: 'exit'; readonly wait: boolean };

/** A step of any actor of an sva script: a process's, pciehp's (`hp/N`), a kernel thread's (`kthread/N`). */
export type SvaScriptOp = SvaOp | HotplugOp | KthreadOp;

type Step = ScriptActor<SvaScriptOp>['steps'][number];

/** At most this many pciehp actors (`hp/N`) beside the processes. */
export const MAX_HOTPLUG_ACTORS = 4;

/** Scripted processes run as initial tasks, with kernel_init: at most this many (the runtime's 16). */
export const MAX_SCRIPTED_PROCESSES = 15;

/**
 * The first completion record of a scripted process (process i's is PROCESS_CR + i): the kernel DMA users'
 * records and the model's kernel-task DMA (model.ts, from 1 << 16) are numbered below it.
 */
export const PROCESS_CR = 1 << 20;

/** The tasks a script keeps alive beyond a process's two: one for each exit not waited for (its exit thread). */
export function scriptedExtraTasks(steps: string): number {
  if (steps === '') return 0;
  let lists: unknown;
  try {
    lists = JSON.parse(steps);
  } catch {
    return 0; // parseSteps refuses it
  }
  const extra = (st: unknown): number => {
    const o = (st ?? {}) as Record<string, unknown>;
    return o.op === 'exit' && o.wait === false ? 1 : 0;
  };
  // An hp actor is a task of its own (it runs iommu_release_device).
  let hp = 0;
  if (lists !== null && typeof lists === 'object' && !Array.isArray(lists)) {
    hp = Object.keys(lists).filter((n) => n.startsWith('hp/') || n.startsWith('kthread/')).length;
    lists = Object.values(lists);
  }
  if (!Array.isArray(lists)) return 0;
  return lists.reduce((n: number, l: unknown) => n + (Array.isArray(l) ? l.reduce((m: number, st) => m + extra(st), 0) : 0), hp);
}

/** Kinds of task this workload always spawns with a name of their own (their comm is that name). */
export const NAMED_KINDS = new Set(['sys_exec', 'sys_bind', 'sys_close', 'sys_mmap', 'sys_munmap', 'do_exit', 'bind_task', 'scripted_process', 'kdma_user', 'vfio_takeover', 'drm_contexts']);

/** The comms the workload's tasks can have: what a `while` step may name (or a prefix of). */
export function taskComms(k: Kernel, p: SvaParams, units: readonly IommuUnit[]): string[] {
  const prq = new Set(units.map((u) => `${u.spec.prqThread}/${u.index}`));
  const kinds = Object.keys(k.taskFactories).filter((kind) => !NAMED_KINDS.has(kind) && !prq.has(kind));
  const procs = Array.from({ length: p.processes }, (_, i) => [`proc${i}`, `bind_task/${i}`]).flat();
  const kernel = [
    ...(p.kernel === 'none' ? [] : Array.from({ length: Math.min(p.kdevices, p.devices) }, (_, d) => `kdma/${d}`)),
    ...(p.vfio === 'none' ? [] : ['vfio']),
    ...(p.drmContexts > 0 ? ['drm'] : []),
  ];
  const hp = Array.from({ length: MAX_HOTPLUG_ACTORS }, (_, j) => `hp${j}`);
  const kt = Array.from({ length: MAX_KTHREAD_ACTORS }, (_, j) => `kthread${j}`);
  return [...procs, ...units.map((u) => `${u.spec.prqThread}/${u.name}`), ...kernel, ...hp, ...kt, ...kinds];
}

/**
 * The scripted processes' steps, checked by the one script engine (script.ts: kinds, actors, `after` targets, no
 * ordering cycle) and for what a process can still do (checkLifetime); undefined: none. One actor a process of
 * the topology, `proc/i` at index i (a process the script does not name only execs). With the run's tasks'
 * comms, a `while` must name one of them.
 */
export function parseSteps(text: string, processes: number, comms?: readonly string[], devices = 1024): ScriptActor<SvaScriptOp>[] | undefined {
  const named = parseScript<SvaScriptOp>(text, {
    model: 'sva',
    kinds: ['proc', 'hp', 'kthread'],
    maxActors: Math.max(1, processes) + MAX_HOTPLUG_ACTORS + MAX_KTHREAD_ACTORS,
    steps: PRESET_ACTORS.sva,
    numbered: { actors: processes },
    check: (st, at) => {
      if (st.op === 'unplug' || st.op === 'open' || st.op === 'bind') withinTopology(at, 'dev', st.dev, devices);
    },
  });
  if (!named) return undefined;
  if (processes > MAX_SCRIPTED_PROCESSES) throw new InputError(`sva: steps: a script runs each process as a task started with the run: at most ${MAX_SCRIPTED_PROCESSES} processes, the topology has ${processes}`);
  if (comms) checkWhileTasks('sva', named, comms);
  const byName = new Map(named.map((a) => [a.name, a]));
  const procs = Array.from({ length: processes }, (_, i) => {
    const a = byName.get(`proc/${i}`) ?? { name: `proc/${i}`, comm: `proc${i}`, steps: [] };
    checkLifetime(a.steps, i);
    return a;
  });
  // The pciehp actors follow the processes (actor P + j of the script's runner).
  return [...procs, ...hotplugActors(named), ...kthreadActors(named)];
}

/**
 * What a process can still do at each step: close only an fd it has open (a named one by its name; `unbind`, or
 * a close with no name, the newest), mmap only an open fd, munmap_portal only a mapping it made (its fd may be
 * closed by then: the mapping holds the file), and nothing that needs its mm or its fds once its exit has begun —
 * the exit's mmput may be the last (exit_mmap runs) and exit_files closes every fd, and no other thread of the
 * process holds an mm_users reference in the model. Only `dma`, `after` and `while` may follow an exit that is
 * not waited for; nothing follows one that is (but `expect`, which checks the script's results, may follow both).
 */
export function checkLifetime(list: readonly Step[], i: number): void {
  const open: (string | undefined)[] = [];
  const maps: (string | undefined)[] = [];
  let exit = -1;
  list.forEach((st, k2) => {
    const at = `sva: steps: proc/${i}[${k2}]`;
    // An expect checks results the script kept: it needs nothing of the process.
    if (exit >= 0 && st.op !== 'expect') {
      const waited = (list[exit] as Extract<Step, { op: 'exit' }>).wait;
      if (waited || !['dma', 'after', 'while'].includes(st.op)) {
        const why = waited ? 'the process is gone' : 'only dma, after and while may follow an exit not waited for: no thread of the exiting process holds its mm, and exit_files closes its fds';
        throw new InputError(`${at}: ${st.op} after proc/${i}'s exit (step ${exit}): ${why}`);
      }
    }
    const find = (names: readonly (string | undefined)[], name: string | undefined, what: string): number => {
      const j = name === undefined ? names.length - 1 : names.lastIndexOf(name);
      if (j < 0) throw new InputError(`${at}: ${st.op}: proc/${i} has no ${what}${name === undefined ? '' : ` named ${name}`} here`);
      return j;
    };
    switch (st.op) {
      case 'bind':
      case 'open':
        if (st.as !== undefined && open.includes(st.as)) throw new InputError(`${at}: ${st.op}: proc/${i} already has an fd named ${st.as} open`);
        open.push(st.as);
        break;
      case 'unbind':
        if (open.length === 0) throw new InputError(`${at}: unbind: proc/${i} has no device fd open here (each unbind closes the fd of an earlier bind)`);
        open.splice(find(open, st.fd, 'fd open'), 1);
        break;
      case 'close':
        open.splice(find(open, st.fd, 'fd open'), 1);
        break;
      case 'mmap':
        maps.push(open[find(open, st.fd, 'fd open')]);
        break;
      case 'munmap_portal':
        maps.splice(find(maps, st.fd, 'portal mapped'), 1);
        break;
      case 'dma':
        if (st.fd !== undefined) find(open, st.fd, 'fd open');
        break;
      case 'exit':
        exit = k2;
        break;
    }
  });
}

export interface ScriptedProcessEnv {
  readonly k: Kernel;
  readonly sys: Syscalls;
  readonly infos: readonly DeviceInfo[];
  /** The bind flags (SVA_FLAG_*). */
  readonly flags: number;
  /** Process i's id as a DMA submitter (the device maps it to the address space its descriptors are for). */
  readonly submitter: (i: number) => number;
  /** What the script's pciehp actors (`hp/N`) remove devices with. */
  readonly hotplug: HotplugEnv;
}

/** What the workload takes from its scripted processes. */
export interface ScriptedProcesses {
  /** One task a process, started with the run. */
  readonly initialTasks: readonly { readonly task: string; readonly args: Wire; readonly name: string }[];
  /** The device's write of a process's completion record (`cr` ≥ PROCESS_CR), one a descriptor. */
  completion(cr: number, ok: boolean): void;
  /** The words completion(cr) writes (the process's two counters), for a device step's footprint. */
  completionWords(cr: number): readonly number[];
  /** The processes that did not get through their steps, read from the run's final memory. */
  unfinished(shared: ArrayLike<number>, statics: number): string[];
}

/** Declare the scripted processes' task: exec, then the steps on the one script engine. */
export function defineScriptedProcesses(env: ScriptedProcessEnv, all: readonly ScriptActor<SvaScriptOp>[]): ScriptedProcesses {
  const { k } = env;
  const runner = new ScriptRunner<SvaScriptOp>(k, 'sva', all);
  const hp = hotplugActors(all);
  const kt = kthreadActors(all);
  const actors = all.slice(0, all.length - hp.length - kt.length);
  const hpTasks = defineHotplugActors<SvaOp | KthreadOp>(env.hotplug, runner, hp, actors.length, () => {
    throw new Error('sva: an hp actor takes only hp steps');
  });
  const ktTasks = defineKthreadActors<SvaOp | HotplugOp>(k, runner, kt, actors.length + hp.length, () => {
    throw new Error('sva: a kthread actor takes only kthread steps');
  });
  // Per process: descriptors completed, and of those failed (the device's writes).
  const records = k.statics.alloc(2 * actors.length, 'scripted process completion records');
  const completed = (i: number): number => k.mem.statics + records + 2 * i;
  k.task('scripted_process', 'process', function* (t, args) {
    const i = args as number;
    yield* env.sys.exec(t, i);
    const op = processSteps(env, i, completed(i));
    yield* runner.run(t, i, (t2, st) => {
      if (st.op === 'unplug' || isKthreadOp(st)) throw new Error(`sva: proc/${i} takes no ${st.op} step`);
      return op(t2, st);
    });
  });
  return {
    initialTasks: [...actors.map((a, i) => ({ task: 'scripted_process', args: i, name: a.comm })), ...hpTasks, ...ktTasks],
    completion(cr, ok) {
      const i = cr - PROCESS_CR;
      if (!ok) Atomics.add(k.i32, completed(i) + 1, 1);
      Atomics.add(k.i32, completed(i), 1);
    },
    completionWords: (cr) => [completed(cr - PROCESS_CR), completed(cr - PROCESS_CR) + 1],
    unfinished: (shared, statics) =>
      all.flatMap((a, i) => {
        const done = shared[statics + runner.progressWord(i)] ?? 0;
        return done < a.steps.length ? [`${a.name} did not finish: ${done} of its ${a.steps.length} steps done`] : [];
      }),
  };
}

/** An fd a scripted process has open: its name, number, device and the PASID its open bound. */
interface OpenFd {
  readonly name: string | undefined;
  readonly fd: number;
  readonly dev: DeviceInfo;
  readonly pasid: number;
}

/**
 * Process i's steps, as its task does them: the fds it has open (newest last: several opens of one device share
 * its bond, its users raised), its portal mappings (by the name of the fd mapped), the descriptors it has
 * submitted (`completed`: its completion record).
 */
function processSteps(env: ScriptedProcessEnv, i: number, completed: number): (t: KTask, st: SvaOp) => KGen<StepOutcome> {
  const { k, sys } = env;
  const own = env.infos[i % env.infos.length] as DeviceInfo;
  const fds: OpenFd[] = [];
  const maps: { readonly name: string | undefined; readonly vpn: number }[] = [];
  let last: OpenFd | undefined;
  let submitted = 0;
  const byName = (list: readonly { readonly name: string | undefined }[], name: string | undefined): number => {
    if (name === undefined) return list.length - 1;
    for (let j = list.length - 1; j >= 0; j--) if (list[j]?.name === name) return j;
    return -1;
  };
  function* open(t: KTask, dev: DeviceInfo | undefined, name: string | undefined): KGen<StepOutcome> {
    if (!dev) return { what: 'open: no such device (-ENODEV)', ret: -ENODEV };
    const r = yield* sys.open(t, i, env.flags, dev);
    if (r.ret < 0) return { what: `open(${dev.name}) = ${errname(r.ret)}`, ret: r.ret };
    last = { name, fd: r.ret, dev, pasid: r.pasid };
    fds.push(last);
    return { what: `open(${dev.name}) = fd ${r.ret} (PASID ${r.pasid})`, ret: r.ret };
  }
  function* close(t: KTask, name: string | undefined): KGen<string> {
    const j = byName(fds, name);
    // An open that failed at run time left no fd to close: close(-EBADF) never reaches the driver.
    if (j < 0) return 'close: no fd open (-EBADF)';
    const [f] = fds.splice(j, 1) as [OpenFd];
    yield* sys.close(t, i, f.fd);
    return `close(fd ${f.fd})`;
  }
  return function* step(t, st) {
    switch (st.op) {
      case 'bind':
      case 'open':
        return yield* open(t, st.dev === undefined ? own : env.infos[st.dev], st.as);
      case 'unbind':
      case 'close':
        return yield* close(t, st.fd);
      case 'mmap': {
        const f = fds[byName(fds, st.fd)];
        if (!f) return 'mmap: no fd open (-EBADF)';
        const vpn = yield* sys.mmap(t, i, f.fd);
        if (vpn >= 0) maps.push({ name: f.name, vpn });
        return { what: vpn < 0 ? `mmap(fd ${f.fd}) = ${errname(vpn)}` : `mmap(fd ${f.fd}) = portal at vpn ${vpn}`, ret: vpn };
      }
      case 'munmap_portal': {
        const j = byName(maps, st.fd);
        if (j < 0) return 'munmap_portal: nothing mapped';
        const vpn = maps.splice(j, 1)[0]?.vpn ?? -1;
        yield* sys.munmapPortal(t, i, vpn);
        return `munmap(portal at vpn ${vpn})`;
      }
      case 'dma': {
        const f = st.fd === undefined ? last : fds[byName(fds, st.fd)];
        const dev = f?.dev ?? own;
        const pasid = f?.pasid ?? 0;
        const first = submitted;
        submitted += st.n;
        yield* k.step(t, `${dev.name}: submit ${st.n} descriptor${st.n > 1 ? 's' : ''} (PASID ${pasid}, vpn ${st.vpn})`, (e) => {
          for (let j = 0; j < st.n; j++) e.send(dev.actor, { type: 'submit', pasid, vpn: st.vpn, w: st.write ? 1 : 0, id: first + j, from: env.submitter(i), cr: PROCESS_CR + i });
        });
        if (!st.wait) return `dma: ${st.n} submitted`;
        const n = submitted;
        yield k.point(t, `wait for ${dev.name}'s completions`, () => Atomics.load(k.i32, completed) >= n, () => undefined, {
          what: `${dev.name} to complete descriptors ${first}..${n - 1}`,
        });
        return `dma: ${n} completed, ${Atomics.load(k.i32, completed + 1)} failed`;
      }
      case 'munmap':
        yield* sys.munmap(t, i, st.vpn, st.n, st.remap);
        return `munmap(${st.vpn}, ${st.n})`;
      case 'madvise': {
        const r = yield* sys.madvise(t, i, st.vpn, st.n);
        return { what: `madvise(${st.vpn}, ${st.n}, MADV_DONTNEED) = ${errname(r)}`, ret: r };
      }
      case 'migrate': {
        const moved = yield* sys.migrate(t, i, st.vpn, st.n);
        return { what: `move_pages(${st.vpn}, ${st.n}) = ${moved} moved`, ret: moved };
      }
      case 'exit': {
        fds.splice(0);
        if (st.wait) {
          yield* sys.exit(t, i);
          return 'exit';
        }
        // Another thread of the process exits it (exit_files closes the fds); this one goes on.
        yield* k.step(t, 'exit in another thread', (e) => void e.spawn('do_exit', { proc: i, detached: true }, `proc${i}`));
        return 'exit (not waited for)';
      }
    }
  };
}
