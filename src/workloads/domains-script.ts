// The `domains` model's scripted actors (issue #6; seed 002, drivers/iommu/iommu.c and iommu-sva.c): a race
// script's `drv/N`, `proc/N` and `iopf/N` — a driver or VFIO user, a process, a page-fault handler; the names are
// for the reader, every actor may take every step — each a kernel task running its steps in order:
//   alloc / free       iommu_domain_alloc(type) on an IOMMU instance, named (A, B…) for the steps that use it;
//                      iommu_domain_free — at once: a reader that may still hold it wants a synchronize_rcu first
//   attach / detach    iommu_attach_device / iommu_detach_device, or with a PASID the _device_pasid forms
//   replace            iommu_replace_device_pasid
//   bind / unbind      iommu_sva_bind_device / iommu_sva_unbind_device of process mm N (PASID: the mm's)
//   dma                a DMA from {device, PASID}: the domain the hardware reaches (the isolation oracle looks)
//   iopf               a page request from {device, PASID}: the SVA domain's lookup and the fault handled
//   synchronize_rcu
// plus the ordering constraints of script.ts (`after`, `while`). Each step's outcome is a point of the trace:
// `drv/0[1]: iommu_attach_device_pasid(A, 0000:00:01.0, 7) = -EINVAL`.
import type { Boot } from '../hw/boot.js';
import type { KTask } from '../kernel/context.js';
import { errname } from '../kernel/errno.js';
import type { KGen } from '../kernel/kernel.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import { synchronize_rcu } from '../kernel/rcu.js';
import { InputError } from '../runtime/errors.js';
import type {
  DomainType,
  GroupDevice,
} from '../core/iommu.js';
import { parseScript, type ScriptActor, ScriptRunner, withinTopology } from './script.js';
import { DOMAINS_KINDS } from './steps.js';
import type { DomainsModel } from './domains.js';

export type DomainsOp =
  | { readonly op: 'alloc'; readonly domain: string; readonly type: DomainType; readonly iommu: number }
  | { readonly op: 'free'; readonly domain: string }
  /** Without a PASID: the device (its RID). */
  | { readonly op: 'attach' | 'detach'; readonly domain: string; readonly dev: number; readonly pasid?: number }
  | { readonly op: 'replace'; readonly domain: string; readonly dev: number; readonly pasid: number }
  | { readonly op: 'bind' | 'unbind'; readonly dev: number; readonly mm: number }
  | { readonly op: 'dma' | 'iopf'; readonly dev: number; readonly pasid: number }
  | { readonly op: 'synchronize_rcu' };

export const DOMAINS_ACTOR_KINDS = ['drv', 'proc', 'iopf'] as const;

/** What the steps may name: the topology. */
export interface DomainsScriptTopology {
  readonly devices: number;
  readonly processes: number;
  readonly iommus: number;
  /** PASIDs 0 .. pasids-1 may be named (0 is IOMMU_NO_PASID: the kernel refuses it, the script may try). */
  readonly pasids: number;
  /** At most this many actors. */
  readonly maxActors: number;
}

/** The `steps` parameter checked against the topology; undefined when it is ''. */
export function parseDomainsScript(text: string, topo: DomainsScriptTopology): ScriptActor<DomainsOp>[] | undefined {
  const actors = parseScript<DomainsOp>(text, {
    model: 'domains',
    kinds: DOMAINS_ACTOR_KINDS,
    maxActors: topo.maxActors,
    steps: DOMAINS_KINDS,
    check(st, at) {
      if ('dev' in st) withinTopology(at, 'dev', st.dev, topo.devices);
      if ('pasid' in st) withinTopology(at, 'pasid', st.pasid, topo.pasids);
      if ('mm' in st) withinTopology(at, 'mm', st.mm, topo.processes);
      if (st.op === 'alloc') withinTopology(at, 'iommu', st.iommu, topo.iommus);
    },
  });
  if (!actors) return undefined;
  // A domain is named by the alloc that makes it: a step naming one that no step allocates is a typo.
  const allocated = new Set(actors.flatMap((a) => a.steps.flatMap((s) => (s.op === 'alloc' && 'domain' in s ? [s.domain] : []))));
  for (const a of actors) {
    a.steps.forEach((s, i) => {
      if ('domain' in s && !allocated.has(s.domain)) throw new InputError(`domains: steps: ${a.name}[${i}]: ${s.op}: no step allocates domain ${s.domain}`);
    });
  }
  return actors;
}

/** What the steps act on: the model's pieces. */
export type DomainsScriptEnv = Pick<DomainsModel, 'k' | 'devices' | 'mms' | 'domains' | 'groups' | 'hw' | 'sva'> & { readonly boot: Boot };

/**
 * Declare the scripted actors' task kind (`domains_script`, one task an actor, named by its comm) and what they
 * share: the named domains, one word each. Returns the run's initial tasks.
 */
export function defineDomainsScript(env: DomainsScriptEnv, actors: readonly ScriptActor<DomainsOp>[]): { task: string; args: number; name: string }[] {
  const { k, devices, mms, domains, groups, hw, sva, boot } = env;
  const runner = new ScriptRunner<DomainsOp>(k, 'domains', actors);
  const names = [...new Set(actors.flatMap((a) => a.steps.flatMap((s) => ('domain' in s ? [s.domain] : []))))];
  const slots = k.statics.alloc(Math.max(1, names.length), 'script domains');
  const slot = (name: string): number => k.mem.statics + slots + names.indexOf(name);
  const dev = (i: number): GroupDevice => devices[i] as GroupDevice;
  const res = (r: number): string => errname(r);

  function* domainOf(t: KTask, name: string): KGen<number> {
    return yield* k.step(t, `domain ${name}`, () => Atomics.load(k.i32, slot(name)));
  }

  function* step(t: KTask, s: DomainsOp): KGen<string> {
    switch (s.op) {
      case 'alloc': {
        const a = yield* domains.alloc(t, s.type, s.iommu);
        if (a.err !== 0) return `iommu_domain_alloc(${s.type}) = ${res(a.err)}`;
        yield* k.step(t, `${s.domain} = domain`, () => void Atomics.store(k.i32, slot(s.domain), a.dom));
        return `iommu_domain_alloc(${s.type}) = ${s.domain}`;
      }
      case 'free': {
        const d = yield* domainOf(t, s.domain);
        if (d === 0) return `iommu_domain_free(${s.domain}): never allocated`;
        yield* domains.free(t, d);
        return `iommu_domain_free(${s.domain})`;
      }
      case 'attach':
      case 'detach':
      case 'replace': {
        const d = yield* domainOf(t, s.domain);
        const x = dev(s.dev);
        if (s.pasid === undefined) {
          if (s.op === 'attach') return `iommu_attach_device(${s.domain}, ${x.name}) = ${res(yield* groups.iommu_attach_device(t, d, x))}`;
          yield* groups.iommu_detach_device(t, d, x);
          return `iommu_detach_device(${s.domain}, ${x.name})`;
        }
        const what = `(${s.domain}, ${x.name}, ${s.pasid})`;
        if (s.op === 'attach') return `iommu_attach_device_pasid${what} = ${res(yield* groups.iommu_attach_device_pasid(t, d, x, s.pasid))}`;
        if (s.op === 'replace') return `iommu_replace_device_pasid${what} = ${res(yield* groups.iommu_replace_device_pasid(t, d, x, s.pasid))}`;
        yield* groups.iommu_detach_device_pasid(t, d, x, s.pasid);
        return `iommu_detach_device_pasid${what}`;
      }
      case 'bind': {
        const mm = mms[s.mm] as MmStruct;
        const b = yield* sva.iommu_sva_bind_device(t, dev(s.dev), mm, mm.id);
        return `iommu_sva_bind_device(${dev(s.dev).name}, ${mm.name}) = ${b.err === 0 ? `PASID ${mm.id}` : res(b.err)}`;
      }
      case 'unbind': {
        const mm = mms[s.mm] as MmStruct;
        yield* sva.iommu_sva_unbind_device(t, dev(s.dev), mm.id);
        return `iommu_sva_unbind_device(${dev(s.dev).name}, PASID ${mm.id})`;
      }
      case 'dma': {
        const got = yield* hw.dma(t, dev(s.dev), s.pasid);
        return `DMA from ${dev(s.dev).name} PASID ${s.pasid}: ${got === 0 ? 'blocked' : 'translated'}`;
      }
      case 'iopf': {
        const mm = yield* sva.iommu_sva_iopf(t, dev(s.dev), s.pasid);
        return `page request from ${dev(s.dev).name} PASID ${s.pasid}: ${mm === 0 ? 'INVALID' : `handled for mm/${mm}`}`;
      }
      case 'synchronize_rcu':
        yield* synchronize_rcu(k, t);
        return 'synchronize_rcu()';
    }
  }

  k.task('domains_script', 'process', function* (t, args) {
    // A scripted actor is user space (or a driver's work): it starts once kernel_init has configured the hardware.
    yield* boot.wait(t);
    yield* runner.run(t, typeof args === 'number' ? args : 0, step);
  });
  return actors.map((a, i) => ({ task: 'domains_script', args: i, name: a.comm }));
}
