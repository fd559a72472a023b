// The sva preset's scripts: the scripted processes' steps (`steps`), parsed and checked by the one script engine
// (script.ts) and for what a process can still do at each step; the comms a `while` step may name; the tasks a
// script adds to those alive at once.
import type { IommuUnit } from '../hw/iommu.js';
import type { Kernel } from '../kernel/kernel.js';
import { InputError } from '../runtime/errors.js';
import { declareWhileStep, type ScriptStep } from '../actors/scripted-process.js';
import type { SvaParams } from './presets/sva.js';
import { checkWhileTasks, type OrderStep, parseScript } from './script.js';
import { SVA_KINDS } from './steps.js';

/** The tasks a script keeps alive beyond a process's two: one for each exit not waited for and each `while`. */
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
    return o.op === 'while' || (o.op === 'exit' && o.wait === false) ? 1 : 0;
  };
  if (lists !== null && typeof lists === 'object' && !Array.isArray(lists)) lists = Object.values(lists);
  if (!Array.isArray(lists)) return 0;
  return lists.reduce((n: number, l: unknown) => n + (Array.isArray(l) ? l.reduce((m: number, st) => m + extra(st), 0) : 0), 0);
}

/** Kinds of task this workload always spawns with a name of their own (their comm is that name). */
export const NAMED_KINDS = new Set(['sys_exec', 'sys_bind', 'sys_close', 'sys_munmap', 'do_exit', 'bind_task', 'script_while', 'kdma_user', 'vfio_takeover', 'drm_contexts']);

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
export function checkLifetime(list: readonly ScriptStep[], i: number): void {
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
