// The `vmm` actors of a script (a user-space VMM, task `vmmN`: iommufd-steps.ts): each step one system call on
// its iommufd file (src/core/iommufd/), by kernel name. The VMM keeps what user space keeps: the ids of the
// objects it named, of the devices it bound, and the cookies of the fault groups it read and has not answered.
// Each step's outcome is a point of the trace: `vmm/0[3]: iommufd_device_attach(0000:00:01.0, H, PASID 1) = 0`.
import type { KTask } from '../kernel/context.js';
import { EINVAL, errname } from '../kernel/errno.js';
import type { KGen } from '../kernel/kernel.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import { do_mmap, do_munmap } from '../kernel/mm/pagetable.js';
import { IOMMU_NO_PASID } from '../core/iommu.js';
import { defineIommufd, type IommufdBug, type IommufdCtx } from '../core/iommufd/index.js';
import { RESP_FAILURE, RESP_INVALID, RESP_SUCCESS, type DeviceInfo } from '../core/types.js';
import { InputError } from '../runtime/errors.js';
import type { ScriptActor, StepOutcome } from './script.js';
import type { Model } from './model.js';

export type VmmOp =
  | { readonly op: 'open' | 'close' }
  | { readonly op: 'ioas_alloc'; readonly ioas: string }
  | { readonly op: 'fault_alloc'; readonly fault: string }
  | { readonly op: 'bind' | 'unbind'; readonly dev: number }
  | { readonly op: 'hwpt_alloc'; readonly hwpt: string; readonly ioas: string; readonly dev: number; readonly fault?: string }
  | { readonly op: 'attach' | 'replace'; readonly dev: number; readonly hwpt: string; readonly pasid?: number }
  | { readonly op: 'detach'; readonly dev: number; readonly pasid?: number }
  | { readonly op: 'read'; readonly fault: string; readonly groups: number; readonly buf: number; readonly wait: boolean }
  | { readonly op: 'poll'; readonly fault: string }
  | { readonly op: 'respond'; readonly fault: string; readonly code: 'success' | 'invalid' | 'failure' }
  | { readonly op: 'munmap'; readonly vpn: number }
  | { readonly op: 'destroy'; readonly object: string };

const VMM_OPS = new Set(['open', 'close', 'ioas_alloc', 'fault_alloc', 'bind', 'unbind', 'hwpt_alloc', 'attach', 'replace', 'detach', 'poll', 'read', 'respond', 'munmap', 'destroy']);
const CODES = { success: RESP_SUCCESS, invalid: RESP_INVALID, failure: RESP_FAILURE } as const;

/** A vmm actor's step (the other kinds' steps are the domains script's). */
export function isVmmOp(s: { readonly op: string }, actor: string): s is VmmOp {
  return actor.startsWith('vmm/') && VMM_OPS.has(s.op);
}

/** VMM i's memory: process mm i of the topology (its copy_to_user faults go there). */
export function vmmMms(actors: readonly ScriptActor<unknown>[], mms: readonly MmStruct[]): MmStruct[] {
  const n = actors.filter((a) => a.name.startsWith('vmm/')).length;
  return Array.from({ length: n }, (_, i) => mms[i % mms.length] as MmStruct);
}

/** The object fields a step names, and the step kinds that make each (a name no step of its VMM makes is a typo). */
const MADE_BY: Readonly<Record<string, string>> = { ioas: 'ioas_alloc', fault: 'fault_alloc', hwpt: 'hwpt_alloc' };

/** Every named object a vmm's step uses is made by an alloc step of that vmm (an InputError naming the step). */
function checkVmmNames(actors: readonly ScriptActor<unknown>[]): void {
  for (const a of actors.filter((x) => x.name.startsWith('vmm/'))) {
    const steps = a.steps as readonly Record<string, unknown>[];
    // Its file is open from `open` to `close`: every other step of iommufd's is a syscall on it.
    const own = steps.map((s, i) => [s, i] as const).filter(([s]) => s.op !== 'after' && s.op !== 'while');
    const open = own.findIndex(([s]) => s.op === 'open');
    const close = own.findIndex(([s]) => s.op === 'close');
    const stray = own.find(([s], j) => s.op !== 'open' && (open < 0 || j < open || (close >= 0 && j > close)));
    if (stray) throw new InputError(`domains: steps: ${a.name}[${stray[1]}]: ${String(stray[0].op)}: /dev/iommu is not open (a vmm's steps come between its open and its close)`);
    const made = new Set(steps.flatMap((s) => Object.entries(MADE_BY).filter(([f, op]) => s.op === op && typeof s[f] === 'string').map(([f]) => s[f] as string)));
    steps.forEach((s, i) => {
      for (const f of [...Object.keys(MADE_BY), 'object']) {
        const v = s[f];
        if (typeof v === 'string' && !made.has(v)) throw new InputError(`domains: steps: ${a.name}[${i}]: ${String(s.op)}: no step of ${a.name} allocates ${v}`);
      }
    });
  }
}

/** Per VMM: the ids of its named objects and bound devices, and the cookies read (a FIFO) — its user-space state. */
export function defineVmmSteps(m: Model, actors: readonly ScriptActor<unknown>[], mms: readonly MmStruct[], bug: IommufdBug): (t: KTask, s: VmmOp, actor: string) => KGen<StepOutcome> {
  const k = m.k;
  const vmms = actors.filter((a) => a.name.startsWith('vmm/')).map((a) => a.name);
  // No VMM: nothing of iommufd is declared (the run's statics stay as they were); no step comes here.
  if (vmms.length === 0) return () => {
    throw new Error('iommufd: a vmm step without a vmm actor');
  };
  checkVmmNames(actors);
  const ctxs = defineIommufd(k, { domains: m.domains, groups: m.groups, devices: m.infos }, vmmMms(actors, mms), bug);
  const names = [...new Set(actors.flatMap((a) => a.steps.flatMap((s) => Object.entries(s as object).filter(([f]) => ['ioas', 'fault', 'hwpt', 'object'].includes(f)).map(([, v]) => String(v)))))];
  const ndev = m.infos.length;
  const COOKIES = 16;
  const per = names.length + ndev + 2 + COOKIES;
  const words = k.statics.alloc(Math.max(1, vmms.length * per), 'vmm user space');
  const base = (v: number): number => k.mem.statics + words + v * per;
  const nameWord = (v: number, name: string): number => base(v) + names.indexOf(name);
  const devWord = (v: number, d: number): number => base(v) + names.length + d;
  const fifo = (v: number): number => base(v) + names.length + ndev;
  const res = (r: number): string => (r < 0 ? errname(r) : String(r));
  const load = (t: KTask, at: number, what: string): KGen<number> => k.step(t, what, () => Atomics.load(k.i32, at));

  function* cookiesPush(t: KTask, v: number): KGen {
    const ctx = ctxs[v] as IommufdCtx;
    yield* k.step(t, 'user space: the cookies read', () => {
      const ubuf = k.mem.statics + ctx.words + 1;
      const n = Atomics.load(k.i32, ubuf);
      let tail = Atomics.load(k.i32, fifo(v) + 1);
      let last = 0;
      for (let r = 0; r < n; r++) {
        const c = Atomics.load(k.i32, ubuf + 1 + r);
        if (c === last) continue; // a group's records share its cookie
        last = c;
        Atomics.store(k.i32, fifo(v) + 2 + (tail % COOKIES), c);
        tail++;
      }
      Atomics.store(k.i32, fifo(v) + 1, tail);
      Atomics.store(k.i32, ubuf, 0);
    });
  }

  function* cookiesPop(t: KTask, v: number): KGen<number> {
    return yield* k.step(t, 'user space: the oldest cookie read', () => {
      const head = Atomics.load(k.i32, fifo(v));
      if (head === Atomics.load(k.i32, fifo(v) + 1)) return 0;
      Atomics.store(k.i32, fifo(v), head + 1);
      return Atomics.load(k.i32, fifo(v) + 2 + (head % COOKIES));
    });
  }

  /** The fault object of a name, looked up with a reference for the fd's syscall (fdget). */
  function* faultObj(t: KTask, ctx: IommufdCtx, v: number, name: string): KGen<number> {
    const id = yield* load(t, nameWord(v, name), `fault ${name}`);
    return yield* k.fn.iommufd_get_object(t, ctx, id, 'fault');
  }

  function* closeAll(t: KTask, ctx: IommufdCtx, v: number): KGen<string> {
    // The VFIO device fds first (vfio_iommufd_unbind: detach, unbind), then the fault fds, then /dev/iommu.
    const pasids = m.groups.cfg.maxPasids;
    for (let d = 0; d < ndev; d++) {
      const id = yield* load(t, devWord(v, d), 'idev id');
      if (id === 0) continue;
      for (let p = 0; p < pasids; p++) yield* k.fn.iommufd_device_detach(t, ctx, id, p);
      yield* k.fn.iommufd_object_remove(t, ctx, id);
    }
    for (const n of names) {
      const f = yield* faultObj(t, ctx, v, n);
      if (f <= 0) continue;
      yield* k.fn.iommufd_fault_fops_release(t, f);
      yield* k.fn.iommufd_put_object(t, ctx, f);
    }
    yield* k.fn.iommufd_fops_release(t, ctx);
    return 'close(iommufd)';
  }

  /** The trace's words and the result the step's names keep. */
  const out = (what: string, ret: number): StepOutcome => ({ what, ret });

  return function* vmmStep(t: KTask, s: VmmOp, actor: string): KGen<StepOutcome> {
    const v = vmms.indexOf(actor);
    const ctx = ctxs[v] as IommufdCtx;
    const dev = (d: number): DeviceInfo => m.infos[d] as DeviceInfo;
    const idevId = (d: number): KGen<number> => load(t, devWord(v, d), `idev ${d}`);
    const named = (n: string): KGen<number> => load(t, nameWord(v, n), n);
    const keep = (at: number, id: number): KGen => k.step(t, 'user space: the id', () => void (id > 0 && Atomics.store(k.i32, at, id)));
    const at = (p: number | undefined): string => (p === undefined ? '' : `, PASID ${p}`);
    switch (s.op) {
      case 'open':
        return `open(/dev/iommu) = ${res(yield* k.fn.iommufd_fops_open(t, ctx))}`;
      case 'close':
        return yield* closeAll(t, ctx, v);
      case 'ioas_alloc': {
        const id = yield* k.fn.iommufd_ioas_alloc_ioctl(t, ctx);
        yield* keep(nameWord(v, s.ioas), id);
        return out(`IOMMU_IOAS_ALLOC = ${id > 0 ? s.ioas : res(id)}`, id);
      }
      case 'fault_alloc': {
        const id = yield* k.fn.iommufd_fault_alloc(t, ctx);
        yield* keep(nameWord(v, s.fault), id);
        return out(`IOMMU_FAULT_QUEUE_ALLOC = ${id > 0 ? s.fault : res(id)}`, id);
      }
      case 'bind': {
        const id = yield* k.fn.iommufd_device_bind(t, ctx, dev(s.dev));
        yield* keep(devWord(v, s.dev), id);
        return out(`iommufd_device_bind(${dev(s.dev).name}) = ${res(id)}`, id);
      }
      case 'unbind': {
        const id = yield* idevId(s.dev);
        const r = id === 0 ? -EINVAL : yield* k.fn.iommufd_object_remove(t, ctx, id);
        if (r === 0) yield* k.step(t, 'user space: unbound', () => void Atomics.store(k.i32, devWord(v, s.dev), 0));
        return out(`iommufd_device_unbind(${dev(s.dev).name}) = ${res(r)}`, r);
      }
      case 'hwpt_alloc': {
        const faultId = s.fault === undefined ? 0 : yield* named(s.fault);
        const id = yield* k.fn.iommufd_hwpt_alloc(t, ctx, yield* idevId(s.dev), yield* named(s.ioas), faultId);
        yield* keep(nameWord(v, s.hwpt), id);
        return out(`IOMMU_HWPT_ALLOC(${dev(s.dev).name}, ${s.ioas}${s.fault ? `, fault ${s.fault}` : ''}) = ${id > 0 ? s.hwpt : res(id)}`, id);
      }
      case 'attach':
      case 'replace': {
        const pasid = s.pasid ?? IOMMU_NO_PASID;
        const f = s.op === 'attach' ? k.fn.iommufd_device_attach : k.fn.iommufd_device_replace;
        const r = yield* f(t, ctx, yield* idevId(s.dev), pasid, yield* named(s.hwpt));
        return out(`iommufd_device_${s.op}(${dev(s.dev).name}, ${s.hwpt}${at(s.pasid)}) = ${res(r)}`, r);
      }
      case 'detach': {
        const r = yield* k.fn.iommufd_device_detach(t, ctx, yield* idevId(s.dev), s.pasid ?? IOMMU_NO_PASID);
        return out(`iommufd_device_detach(${dev(s.dev).name}${at(s.pasid)}) = ${res(r)}`, r);
      }
      case 'read': {
        const f = yield* faultObj(t, ctx, v, s.fault);
        if (f < 0) return `read(${s.fault}) = ${res(f)}`;
        if (s.wait) yield* k.fn.iommufd_fault_fops_poll(t, f);
        const r = yield* k.fn.iommufd_fault_fops_read(t, f, s.groups, s.buf);
        yield* k.fn.iommufd_put_object(t, ctx, f);
        if (r > 0) yield* cookiesPush(t, v);
        return `read(${s.fault}) = ${res(r)} record${r === 1 ? '' : 's'}`;
      }
      case 'poll': {
        const f = yield* faultObj(t, ctx, v, s.fault);
        if (f < 0) return `poll(${s.fault}) = ${res(f)}`;
        yield* k.fn.iommufd_fault_fops_poll(t, f);
        yield* k.fn.iommufd_put_object(t, ctx, f);
        return `poll(${s.fault}) = POLLIN`;
      }
      case 'respond': {
        const f = yield* faultObj(t, ctx, v, s.fault);
        if (f < 0) return `write(${s.fault}) = ${res(f)}`;
        const cookie = yield* cookiesPop(t, v);
        const r = yield* k.fn.iommufd_fault_fops_write(t, f, cookie, CODES[s.code]);
        yield* k.fn.iommufd_put_object(t, ctx, f);
        return `write(${s.fault}, cookie ${cookie}, ${s.code}) = ${res(r)}`;
      }
      case 'munmap': {
        if (s.vpn >= ctx.mm.pages) return `munmap(${s.vpn}) = -EINVAL`;
        yield* do_munmap(k, t, m.notifiers, ctx.mm, s.vpn, 1);
        yield* do_mmap(k, t, ctx.mm, s.vpn, 1, true);
        return `munmap(${s.vpn}), mmap(${s.vpn})`;
      }
      case 'destroy': {
        const r = yield* k.fn.iommufd_object_remove(t, ctx, yield* named(s.object));
        return out(`IOMMU_DESTROY(${s.object}) = ${res(r)}`, r);
      }
    }
  };
}
