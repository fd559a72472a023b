// The `domains` model's scripted actors (issue #6; seed 002, drivers/iommu/iommu.c and iommu-sva.c): a race
// script's `drv/N`, `proc/N` and `iopf/N` — a driver or VFIO user, a process, a page-fault handler; the names are
// for the reader, every actor may take every step — each a kernel task running its steps in order:
//   alloc / free       iommu_domain_alloc(type) on an IOMMU instance, named (A, B…) for the steps that use it,
//                      a page of its I/O page table's own mapped at IOVA 0 (what a DMA reaches); the page
//                      unmapped and freed, then iommu_domain_free — at once: a reader that may still hold it
//                      wants a synchronize_rcu first
//   attach / detach    iommu_attach_device / iommu_detach_device, or with a PASID the _device_pasid forms
//   replace            iommu_replace_device_pasid
//   bind / unbind      iommu_sva_bind_device / iommu_sva_unbind_device of process mm N (the PASID: the one
//                      allocator's, printed in the step's outcome); unbind undoes the actor's last bind of {dev, mm}
//   dma                a DMA write from {device, PASID} to address 0, by the PCI device through its IOMMU unit:
//                      completed or faulted (the isolation oracle and KASAN judge what it reaches)
//   iopf               a page request from {device, PASID}: the SVA domain's lookup and the fault handled
//   synchronize_rcu
// plus the ordering constraints of script.ts (`after`, `while`), and pciehp actors `hp/N` removing devices
// (hotplug-steps.ts: `unplug`). Each step's outcome is a point of the trace:
// `drv/0[1]: iommu_attach_device_pasid(A, 0000:00:01.0, 7) = -EINVAL`.
import type { KTask } from '../kernel/context.js';
import { EFAULT, ENOMEM, errname } from '../kernel/errno.js';
import type { KGen } from '../kernel/kernel.js';
import { type MmStruct, ownerOf } from '../kernel/mm/mm.js';
import { alloc_page, free_page } from '../kernel/mm/physmem.js';
import { synchronize_rcu } from '../kernel/rcu.js';
import { InputError } from '../runtime/errors.js';
import { objectFootprint } from '../core/footprints.js';
import { DOM, type DomainType } from '../core/iommu.js';
import type { DeviceInfo } from '../core/types.js';
import { defineHotplugActors, hotplugActors } from './hotplug.js';
import type { HotplugOp } from './hotplug-steps.js';
import { parseScript, type ScriptActor, ScriptRunner, type StepOutcome, withinTopology } from './script.js';
import { PRESET_ACTORS } from './steps.js';
import { defineVmmSteps, isVmmOp, type VmmOp } from './iommufd-script.js';
import type { IommufdBug } from '../core/iommufd/index.js';
import type { Model } from './model.js';

export type DomainsOp =
  | { readonly op: 'alloc'; readonly domain: string; readonly type: DomainType; readonly iommu: number }
  | { readonly op: 'free'; readonly domain: string }
  /** Without a PASID: the device (its RID). */
  | { readonly op: 'attach' | 'detach'; readonly domain: string; readonly dev: number; readonly pasid?: number }
  | { readonly op: 'replace'; readonly domain: string; readonly dev: number; readonly pasid: number }
  | { readonly op: 'bind'; readonly dev: number; readonly mm: number; readonly as?: string }
  /** By `handle` (a bind's `as`) or by {dev, mm}; parseDomainsScript fills dev and mm from the handle's bind. */
  | { readonly op: 'unbind'; readonly dev: number; readonly mm: number; readonly handle?: string }
  | { readonly op: 'dma' | 'iopf'; readonly dev: number; readonly pasid: number }
  | { readonly op: 'synchronize_rcu' };

export const DOMAINS_ACTOR_KINDS = ['drv', 'proc', 'iopf', 'vmm', 'hp'] as const;

/** A step of any of the preset's actors: theirs, a VMM's, or pciehp's. */
export type DomainsActorOp = DomainsOp | VmmOp | HotplugOp;

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
export function parseDomainsScript(text: string, topo: DomainsScriptTopology): ScriptActor<DomainsActorOp>[] | undefined {
  const actors = parseScript<DomainsActorOp>(text, {
    model: 'domains',
    kinds: DOMAINS_ACTOR_KINDS,
    maxActors: topo.maxActors,
    steps: PRESET_ACTORS.domains,
    check(st, at) {
      if ('dev' in st) withinTopology(at, 'dev', st.dev, topo.devices);
      if ('pasid' in st) withinTopology(at, 'pasid', st.pasid, topo.pasids);
      if ('mm' in st) withinTopology(at, 'mm', st.mm, topo.processes);
      if (st.op === 'alloc' && 'iommu' in st) withinTopology(at, 'iommu', st.iommu, topo.iommus);
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
  return actors.map((a) => (a.name.startsWith('vmm/') ? a : { ...a, steps: a.steps.map((s, i) => (s.op === 'unbind' ? unbindOf(actors, s as UnbindStep, `${a.name}[${i}]`) : s)) }));
}

type UnbindStep = { readonly op: 'unbind'; readonly dev?: number; readonly mm?: number; readonly handle?: string };

/** An unbind names its bond by handle (the bind's `as`: its dev and mm are the bind's) or by {dev, mm}. */
function unbindOf(actors: readonly ScriptActor<DomainsActorOp>[], s: UnbindStep, at: string): DomainsOp {
  if (s.handle === undefined) {
    if (s.dev === undefined || s.mm === undefined) throw new InputError(`domains: steps: ${at}: unbind: name the bond: { unbind: h } (a bind's as) or { unbind: { dev, mm } }`);
    return { op: 'unbind', dev: s.dev, mm: s.mm };
  }
  if (s.dev !== undefined || s.mm !== undefined) throw new InputError(`domains: steps: ${at}: unbind: a handle names its device and mm already: { unbind: ${s.handle} }`);
  const binds = actors.flatMap((a) => a.steps.filter((b): b is Extract<DomainsOp, { op: 'bind' }> => b.op === 'bind' && !a.name.startsWith('vmm/') && (b as { as?: string }).as === s.handle));
  const first = binds[0] as Extract<DomainsOp, { op: 'bind' }>;
  if (binds.some((b) => b.dev !== first.dev || b.mm !== first.mm)) throw new InputError(`domains: steps: ${at}: unbind: ${s.handle} names binds of different {dev, mm}: one name a bond`);
  return { op: 'unbind', dev: first.dev, mm: first.mm, handle: s.handle };
}

/** A domain with a page of its own mapped at IOVA 0 (owned by its I/O page table; none: pfn 0): what a DMA may reach. */
export interface Buffer {
  readonly dom: number;
  readonly pfn: number;
}

/** iommu_domain_alloc, and for a domain with a page table a page mapped at IOVA 0; dom 0 and why on failure. */
export function* allocBuffer(m: Model, t: KTask, type: DomainType, iommu: number): KGen<Buffer & { readonly why: string }> {
  const k = m.k;
  const a = yield* m.domains.alloc(t, type, iommu);
  if (a.err !== 0) return { dom: 0, pfn: 0, why: a.why };
  const table = yield* k.stepOn(t, 'domain->pgtable', objectFootprint(k, a.dom, [DOM.pgtable]), () => m.domains.pageTable(t, a.dom));
  if (!table) return { dom: a.dom, pfn: 0, why: '' };
  const pfn = yield* alloc_page(k, t, m.pm, ownerOf(table));
  yield* m.domains.map(t, a.dom, 0, pfn, true);
  return { dom: a.dom, pfn, why: '' };
}

/** Unmap and free the buffer's page (the stale-translation oracle looks at every cache), then the domain. */
export function* freeBuffer(m: Model, t: KTask, b: Buffer): KGen {
  if (b.pfn !== 0) {
    yield* m.domains.unmap(t, b.dom, 0);
    yield* free_page(m.k, t, m.pm, b.pfn);
  }
  yield* m.domains.free(t, b.dom);
}

/** What the steps act on: the model, the processes' mms, the first of the actors' DMA slots (Model.dmaWrite). */
export interface DomainsScriptEnv {
  readonly k: Model['k'];
  readonly m: Model;
  readonly mms: readonly MmStruct[];
  readonly slot: number;
  /** The planted bug of iommufd (its race scripts' negative control). */
  readonly iommufdBug?: IommufdBug;
}

/**
 * Declare the scripted actors' task kind (`domains_script`, one task an actor, named by its comm) and what they
 * share: the named domains, one word each. Returns the run's initial tasks.
 */
export function defineDomainsScript(env: DomainsScriptEnv, all: readonly ScriptActor<DomainsActorOp>[]): { task: string; args: number; name: string }[] {
  const { k, m, mms } = env;
  const { groups } = m;
  // The pciehp actors last: actor i of the runner is the i-th of the others, then the hp actors.
  const hp = hotplugActors(all);
  const actors = all.filter((a) => !hp.includes(a));
  const runner = new ScriptRunner<DomainsActorOp>(k, 'domains', [...actors, ...hp]);
  const vmm = defineVmmSteps(m, actors, mms, env.iommufdBug ?? 'none');
  const names = [...new Set(actors.flatMap((a) => a.steps.flatMap((s) => ('domain' in s ? [s.domain] : []))))];
  // Each named domain: its object and its buffer's page.
  const slots = k.statics.alloc(Math.max(1, 2 * names.length), 'script domains');
  const slot = (name: string, f = 0): number => k.mem.statics + slots + 2 * names.indexOf(name) + f;
  // The handle of each {device, mm}'s bond (iommu_sva_bind_device's; a second bind shares it).
  const handles = k.statics.alloc(Math.max(1, m.infos.length * mms.length), 'script bonds');
  const handle = (d: number, mm: number): number => k.mem.statics + handles + d * mms.length + mm;
  const dev = (i: number): DeviceInfo => m.infos[i] as DeviceInfo;
  const res = (r: number): string => errname(r);

  function* domainOf(t: KTask, name: string): KGen<number> {
    return yield* k.step(t, `domain ${name}`, () => Atomics.load(k.i32, slot(name)));
  }

  function* step(t: KTask, s: DomainsOp, actor: number): KGen<StepOutcome> {
    switch (s.op) {
      case 'alloc': {
        const a = yield* allocBuffer(m, t, s.type, s.iommu);
        // NULL: kept as -ENOMEM, so that `expect` and the steps naming the domain see a failed step.
        if (a.dom === 0) return { what: `iommu_domain_alloc(${s.type}) = NULL (${a.why})`, ret: -ENOMEM };
        yield* k.step(t, `${s.domain} = domain`, () => {
          Atomics.store(k.i32, slot(s.domain), a.dom);
          Atomics.store(k.i32, slot(s.domain, 1), a.pfn);
        });
        return { what: `iommu_domain_alloc(${s.type}) = ${s.domain}`, ret: a.dom };
      }
      case 'free': {
        const d = yield* domainOf(t, s.domain);
        if (d === 0) return `iommu_domain_free(${s.domain}): never allocated`;
        const pfn = yield* k.step(t, `${s.domain}'s page`, () => Atomics.load(k.i32, slot(s.domain, 1)));
        yield* freeBuffer(m, t, { dom: d, pfn });
        return `iommu_domain_free(${s.domain})`;
      }
      case 'attach':
      case 'detach':
      case 'replace': {
        const d = yield* domainOf(t, s.domain);
        const x = dev(s.dev);
        const ret = (what: string, r: number): StepOutcome => ({ what: `${what} = ${res(r)}`, ret: r });
        if (s.pasid === undefined) {
          if (s.op === 'attach') return ret(`iommu_attach_device(${s.domain}, ${x.name})`, yield* groups.iommu_attach_device(t, d, x));
          yield* groups.iommu_detach_device(t, d, x);
          return `iommu_detach_device(${s.domain}, ${x.name})`;
        }
        const what = `(${s.domain}, ${x.name}, ${s.pasid})`;
        if (s.op === 'attach') return ret(`iommu_attach_device_pasid${what}`, yield* groups.iommu_attach_device_pasid(t, d, x, s.pasid));
        if (s.op === 'replace') return ret(`iommu_replace_device_pasid${what}`, yield* groups.iommu_replace_device_pasid(t, d, x, s.pasid));
        yield* groups.iommu_detach_device_pasid(t, d, x, s.pasid);
        return `iommu_detach_device_pasid${what}`;
      }
      case 'bind': {
        const mm = mms[s.mm] as MmStruct;
        const b = yield* k.fn.iommu_sva_bind_device(t, dev(s.dev), mm, 0);
        if (b.ret > 0) yield* k.step(t, 'handle', () => void Atomics.store(k.i32, handle(s.dev, s.mm), b.ret));
        return { what: `iommu_sva_bind_device(${dev(s.dev).name}, ${mm.name}) = ${b.ret > 0 ? `PASID ${b.pasid}` : res(b.ret)}`, ret: b.ret };
      }
      case 'unbind': {
        const mm = mms[s.mm] as MmStruct;
        const h = yield* k.step(t, 'handle', () => Atomics.exchange(k.i32, handle(s.dev, s.mm), 0));
        if (h === 0) return `iommu_sva_unbind_device(${dev(s.dev).name}, ${mm.name}): no bond`;
        yield* k.fn.iommu_sva_unbind_device(t, h);
        return `iommu_sva_unbind_device(${dev(s.dev).name}, ${mm.name})`;
      }
      case 'dma': {
        const ok = yield* m.dmaWrite(t, dev(s.dev), s.pasid, 0, env.slot + actor);
        return { what: `DMA from ${dev(s.dev).name} PASID ${s.pasid}: ${ok ? 'completed' : 'faulted'}`, ret: ok ? 0 : -EFAULT };
      }
      case 'iopf': {
        const mm = yield* k.fn.iopf_handler(t, dev(s.dev), s.pasid);
        return `page request from ${dev(s.dev).name} PASID ${s.pasid}: ${mm === 0 ? 'INVALID' : `handled for mm/${mm}`}`;
      }
      case 'synchronize_rcu':
        yield* synchronize_rcu(k, t);
        return 'synchronize_rcu()';
    }
  }

  // A scripted actor is user space (or a driver's work): init starts it once the processes have exec'd.
  k.task('domains_script', 'process', function* (t, args) {
    const a = typeof args === 'number' ? args : 0;
    const name = actors[a]?.name ?? '';
    yield* runner.run(t, a, (t2, s) => {
      if (s.op === 'unplug') throw new Error(`domains: ${name} takes no hp step`);
      return isVmmOp(s, name) ? vmm(t2, s, name) : step(t2, s as DomainsOp, a);
    });
  });
  const hpTasks = defineHotplugActors<DomainsOp | VmmOp>({ k, bus: m.boot.bus, devices: m.devices, boot: m.boot }, runner, hp, actors.length, (t2, s) => step(t2, s as DomainsOp, 0));
  return [...actors.map((a, i) => ({ task: 'domains_script', args: i, name: a.comm })), ...hpTasks];
}
