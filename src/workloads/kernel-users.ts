// The kernel's own users of the IOMMU, as kernel tasks: device probe with the default-domain policy (seed
// 001); a host driver doing DMA-API map → DMA → unmap; a DSA/IAX-like in-kernel accelerator user doing 4 KiB
// jobs (page clearing, small compression jobs) under a system PASID, either option 1 — a PASID with its own DMA
// domain, mapped and unmapped per job, each unmap an IOTLB invalidation — or option 2 — init_mm bound in
// supervisor mode, trusted devices only, no IOMMU update per job (seed 004); VFIO taking a device over; and a
// composite DRM-like device that manages its own domains, one per process, switching its engines between them.
// Kernel submitters get their completion from a completion record the device writes in memory, as DSA does.
// And a script's `kthread/N` actors: kernel threads using init_mm's vmalloc area (vmalloc / vfree, ioremap /
// iounmap: kernel/mm/vmalloc.ts) while processes' devices run.
import type { DmaApi } from '../core/dma-iommu.js';
import { OWNER_DRIVER } from '../core/dma-iommu.js';
import type { Domains } from '../core/iommu.js';
import type { Stats } from '../core/stats.js';
import { read } from '../runtime/footprint.js';
import type { StepEnv } from '../runtime/task.js';
import type { Sva } from '../core/iommu-sva.js';
import { type DeviceInfo, SVM_FLAG_PRIVATE_PASID, SVM_FLAG_SUPERVISOR_MODE } from '../core/types.js';
import type { KTask } from '../kernel/context.js';
import { errname } from '../kernel/errno.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { KernelMemory } from '../kernel/memory.js';
import { kernelBase, type MmStruct, type MmTable, mmTableOf, ownerOf, PTE_TABLE_SHIFT } from '../kernel/mm/mm.js';
import { pte, ptePfn } from '../kernel/mm/pagetable.js';
import { alloc_page, free_page, type PhysMem } from '../kernel/mm/physmem.js';
import { mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import { vmallocArea } from '../kernel/mm/vmalloc.js';
import { KTHREAD_OPS, type KthreadOp } from './kthread-steps.js';
import type { ScriptActor, ScriptRunner } from './script.js';

export type KernelUse = 'none' | 'dma-api' | 'syspasid-map' | 'syspasid-bind';
export const KERNEL_USES: readonly KernelUse[] = ['none', 'dma-api', 'syspasid-map', 'syspasid-bind'];
export type VfioUse = 'none' | 'early' | 'late';
export const VFIO_USES: readonly VfioUse[] = ['none', 'early', 'late'];
/** Whether VFIO may take a device whose host driver still has DMA-API mappings (seed 001: it may not). */
export type VfioTakeover = 'refuse' | 'force';
export const VFIO_TAKEOVERS: readonly VfioTakeover[] = ['refuse', 'force'];

export interface KernelUsersConfig {
  readonly use: KernelUse;
  /** Jobs each kernel user runs. */
  readonly jobs: number;
  /** Kernel pages the jobs use as buffers (the pages a device is handed). */
  readonly buffers: number;
  /** Devices with a kernel user (the first n). */
  readonly devices: number;
  readonly vfio: VfioUse;
  readonly takeover: VfioTakeover;
  /** The address space whose pages VFIO's user maps (a VMM's), when VFIO is in the run. */
  readonly vfioUser: MmStruct | undefined;
  /** DRM contexts (processes) the composite device switches its engines between (0: none). */
  readonly drmContexts: number;
  readonly drmRounds: number;
}

export interface KernelUsersEnv {
  readonly k: Kernel;
  readonly sva: Sva;
  readonly dma: DmaApi;
  readonly domains: Domains;
  readonly stats: Stats;
  readonly pm: PhysMem;
  readonly mms: MmTable;
  readonly infos: readonly DeviceInfo[];
  /** The frames {dev, pasid}'s translation reaches now (the IOMMU's walk of what it points at). */
  reachable(dev: DeviceInfo, pasid: number): readonly number[];
}

/** Declares the tasks; returns the run's initial tasks and the completion records' writer for the devices. */
export function defineKernelUsers(env: KernelUsersEnv, cfg: KernelUsersConfig) {
  const { k, sva, dma, domains, stats, infos, mms } = env;
  const D = infos.length;
  const users = Math.min(cfg.devices, D);
  // One completion record per kernel user (device) and one per DRM engine.
  const crs = k.statics.alloc(2 * D + 2, 'completion records');
  const results = k.statics.alloc(D * 2 + 4, 'kernel user results');
  const whys = k.statics.alloc(D + 1, 'kernel user errors');
  const why = (i: number): number => k.mem.statics + whys + i;
  const cr = (i: number): number => k.mem.statics + crs + i;
  const result = (i: number): number => k.mem.statics + results + i;
  const initMm = mms.initMm;
  const kernelOwner = ownerOf(initMm);
  // The buffers are pages of the direct map (init_mm's vmalloc area lies above it).
  const buffers = Math.max(1, Math.min(cfg.buffers, mms.pages));

  /**
   * Seed 004's exposure, counted when a job is handed to the device: the kernel frames its {device, PASID}
   * translation reaches that no job hands it. The counter holds the most seen so far (`seen`, per user).
   */
  function countExposure(dev: DeviceInfo, pasid: number, seen: { n: number }): void {
    const handed = new Set(Array.from({ length: buffers }, (_, i) => kernelPfn(i)));
    let n = 0;
    for (const pfn of new Set(env.reachable(dev, pasid))) if (!handed.has(pfn)) n++;
    if (n <= seen.n) return;
    stats.add('exposed_pages', n - seen.n);
    seen.n = n;
  }

  /** Submit one descriptor and wait for its completion record: true if it completed. */
  function* job(t: KTask, dev: DeviceInfo, crIndex: number, pasid: number, vpn: number, id: number, exposure?: { n: number }): KGen<boolean> {
    // Counting the exposure walks the {device, PASID} translation: that step stays on the fallback lock.
    const submit = (e: StepEnv) => {
      if (exposure) countExposure(dev, pasid, exposure);
      Atomics.store(k.i32, cr(crIndex), 0);
      e.send(dev.actor, { type: 'submit', pasid, vpn, w: 1, id, from: 0, cr: crIndex + 1 });
    };
    const label = `${dev.name}: submit job ${id} (PASID ${pasid}, address ${vpn})`;
    if (exposure) yield* k.step(t, label, submit);
    else yield* k.stepOn(t, label, [cr(crIndex)], submit);
    const done = (yield k.point(
      t,
      `wait for ${dev.name}'s completion record`,
      () => Atomics.load(k.i32, cr(crIndex)) !== 0,
      () => Atomics.load(k.i32, cr(crIndex)),
      { what: `${dev.name} to write the completion record of job ${id}` },
      [read(cr(crIndex))],
    )) as number;
    const counter = done === 1 ? 'kernel_jobs' : 'kernel_job_faults';
    yield* k.stepOn(t, 'job done', [stats.addr(counter)], () => stats.add(counter));
    return done === 1;
  }

  const kernelPfn = (i: number): number => ptePfn(pte(k, initMm, i % buffers));

  k.task('iommu_probe', 'kthread', function* (t) {
    for (const dev of infos) {
      const r = yield* dma.probe(t, dev);
      yield* k.step(t, r.err < 0 ? `probe failed: ${r.why}` : `probed ${dev.name}`, () => {
        Atomics.store(k.i32, result(dev.index), r.err);
        if (r.err < 0) {
          stats.add('probe_failures');
          Atomics.store(k.i32, why(dev.index), k.mem.intern(r.why));
        }
      });
    }
    // Then the drivers start: their kernel users, VFIO, the DRM device.
    // Spawns: no shared word.
    if (cfg.use !== 'none') for (let d = 0; d < users; d++) yield* k.stepOn(t, 'driver probe', [], (e) => void e.spawn('kdma_user', d, `kdma/${d}`));
    if (cfg.vfio !== 'none' && D > 0) yield* k.stepOn(t, 'vfio', [], (e) => void e.spawn('vfio_takeover', 0, 'vfio'));
    if (cfg.drmContexts > 0) yield* k.stepOn(t, 'drm probe', [], (e) => void e.spawn('drm_contexts', null, 'drm'));
  });

  k.task('kdma_user', 'kthread', function* (t, args) {
    const dev = infos[args as number] as DeviceInfo;
    yield* kdmaJobs(t, dev);
    // Done, however the jobs ended (a failed probe or map included): the driver unbinds, and VFIO may go on.
    yield* k.stepOn(t, 'kdma user done', [result(2 * D)], () => void Atomics.add(k.i32, result(2 * D), 1));
  });

  function* kdmaJobs(t: KTask, dev: DeviceInfo): KGen {
    if (Atomics.load(k.i32, result(dev.index)) < 0) return;
    if (cfg.use === 'dma-api') {
      for (let j = 0; j < cfg.jobs; j++) {
        const iova = yield* dma.map(t, dev, kernelPfn(j), true);
        if (iova < 0) return;
        yield* k.stepOn(t, 'dma map', [stats.addr('dma_maps')], () => stats.add('dma_maps'));
        yield* job(t, dev, dev.index, 0, iova, j);
        yield* dma.unmap(t, dev, iova);
        yield* k.stepOn(t, 'dma unmap', [stats.addr('dma_unmaps')], () => stats.add('dma_unmaps'));
      }
    } else if (cfg.use === 'syspasid-map') {
      // Option 1: a PASID of its own with its own DMA domain; every job maps and unmaps (an IOTLB flush each).
      yield* mutex_lock(k, t, sva.lock);
      const pasid = yield* sva.pasids.get(t, dev, initMm, SVM_FLAG_PRIVATE_PASID);
      yield* mutex_unlock(k, t, sva.lock);
      if (pasid < 0) return;
      const a = yield* domains.alloc(t, 'dma', dev.iommu);
      const table = a.dom !== 0 ? domains.pageTable(t, a.dom) : undefined;
      // iommu_attach_device_pasid / iommu_detach_device_pasid: the driver's set_dev_pasid and remove_dev_pasid run
      // under group->mutex, serialised with every other attach and detach of the group (the iopf enable among them).
      const group = sva.svaDomains.groups.groupOf(dev);
      yield* mutex_lock(k, t, group.mutex);
      const attached = table ? yield* sva.attachTable(t, dev, pasid, table, kernelOwner) : -1;
      yield* mutex_unlock(k, t, group.mutex);
      if (table && attached === 0) {
        const exposure = { n: 0 };
        for (let j = 0; j < cfg.jobs; j++) {
          const iova = j % table.pages;
          yield* domains.map(t, a.dom, iova, kernelPfn(j), true);
          yield* job(t, dev, dev.index, pasid, iova, j, exposure);
          yield* domains.unmap(t, a.dom, iova);
          yield* sva.flushTable(t, dev, pasid, table, iova, iova + 1);
        }
        yield* mutex_lock(k, t, group.mutex);
        yield* sva.detachTable(t, dev, pasid, table);
        yield* mutex_unlock(k, t, group.mutex);
      }
      if (a.dom !== 0) yield* domains.free(t, a.dom);
      yield* mutex_lock(k, t, sva.lock);
      yield* sva.pasids.put(t, dev, initMm, pasid, false);
      yield* mutex_unlock(k, t, sva.lock);
    } else if (cfg.use === 'syspasid-bind') {
      // Option 2: init_mm bound in supervisor mode; jobs address kernel memory directly, no IOMMU update.
      const r = yield* sva.bind(t, dev, initMm, SVM_FLAG_SUPERVISOR_MODE);
      yield* k.stepOn(t, r.ret < 0 ? `system PASID refused: ${r.why}` : `system PASID ${r.pasid}`, [result(D + dev.index)], () => {
        Atomics.store(k.i32, result(D + dev.index), r.ret < 0 ? r.ret : r.pasid);
      });
      if (r.ret < 0) return;
      const exposure = { n: 0 };
      for (let j = 0; j < cfg.jobs; j++) yield* job(t, dev, dev.index, r.pasid, j % buffers, j, exposure);
      yield* sva.unbind(t, r.ret);
    }
  }

  k.task('vfio_takeover', 'process', function* (t, args) {
    const dev = infos[args as number] as DeviceInfo;
    const force = cfg.takeover === 'force';
    if (cfg.vfio === 'early' && cfg.use === 'dma-api') {
      // While the host driver is still bound and mapping: refused, unless the takeover is forced.
      const live = [read(dma.mappingsAddr(dev)), read(result(2 * D))];
      yield k.point(t, 'wait for a live DMA mapping', () => dma.mappings(dev) > 0 || Atomics.load(k.i32, result(2 * D)) >= users, () => undefined, undefined, live);
      if (dma.mappings(dev) > 0) {
        const r = yield* dma.vfioTakeover(t, dev, 'paging', force);
        yield* k.stepOn(t, `vfio: ${r.err < 0 ? r.why : 'took it'}`, [stats.addr(r.err < 0 ? 'vfio_refused' : 'vfio_takeovers')], () => stats.add(r.err < 0 ? 'vfio_refused' : 'vfio_takeovers'));
        if (r.err === 0) {
          yield* mapUserMemory(t, dev);
          return;
        }
      }
    }
    // After the host driver's users are done (the driver unbound): the takeover goes through.
    yield k.point(
      t,
      'wait for the host driver to unbind',
      () => Atomics.load(k.i32, result(2 * D)) >= (cfg.use === 'none' ? 0 : users),
      () => undefined,
      { what: 'the host driver to unbind' },
      [read(result(2 * D))],
    );
    const r = yield* dma.vfioTakeover(t, dev, 'paging', force);
    yield* k.stepOn(t, `vfio: ${r.err < 0 ? r.why : 'took it'}`, [stats.addr(r.err < 0 ? 'vfio_refused' : 'vfio_takeovers')], () => stats.add(r.err < 0 ? 'vfio_refused' : 'vfio_takeovers'));
    if (r.err === 0) yield* mapUserMemory(t, dev);
  });

  /** VFIO_IOMMU_MAP_DMA: the user (a VMM) maps its memory from IOVA 0, where a guest's RAM starts. */
  function* mapUserMemory(t: KTask, dev: DeviceInfo): KGen {
    const user = cfg.vfioUser;
    const dom = dma.domainOf(dev);
    if (!user || dom === 0) return;
    for (let i = 0; i < buffers; i++) {
      const pfn = yield* alloc_page(k, t, env.pm, ownerOf(user));
      if (pfn === 0) return;
      yield* domains.map(t, dom, i, pfn, true);
      yield* k.stepOn(t, 'VFIO_IOMMU_MAP_DMA', [stats.addr('vfio_maps')], () => stats.add('vfio_maps'));
    }
  }

  k.task('drm_contexts', 'process', function* (t) {
    // A composite device: its engines (every device) switch between one paging domain per process.
    const ctxs: { dom: number; owner: number; pfns: number[] }[] = [];
    for (let c = 0; c < cfg.drmContexts; c++) {
      const a = yield* domains.alloc(t, 'paging', infos[0]?.iommu ?? 0);
      if (a.err < 0) {
        yield* k.stepOn(t, `drm: context ${c}: ${a.why}`, [result(2 * D + 1)], () => void Atomics.store(k.i32, result(2 * D + 1), a.err));
        break;
      }
      const mm = mms.mms[c % mms.mms.length] as MmStruct | undefined;
      const owner = mm ? ownerOf(mm) : kernelOwner;
      const pfns: number[] = [];
      for (let i = 0; i < 2; i++) {
        const pfn = yield* alloc_page(k, t, env.pm, owner);
        if (pfn === 0) break;
        pfns.push(pfn);
        yield* domains.map(t, a.dom, i, pfn, true);
      }
      ctxs.push({ dom: a.dom, owner, pfns });
    }
    for (let round = 0; round < cfg.drmRounds; round++) {
      for (const ctx of ctxs) {
        for (const dev of infos) {
          yield* dma.detach(t, dev);
          if ((yield* dma.attach(t, dev, ctx.dom, OWNER_DRIVER, ctx.owner)) < 0) continue;
          yield* job(t, dev, D + dev.index, 0, round % Math.max(1, ctx.pfns.length), round);
        }
        yield* k.stepOn(t, 'drm: context switch', [stats.addr('drm_switches')], () => stats.add('drm_switches'));
      }
    }
    for (const dev of infos) yield* dma.detach(t, dev);
    for (const ctx of ctxs) {
      for (let i = 0; i < ctx.pfns.length; i++) {
        yield* domains.unmap(t, ctx.dom, i);
        yield* free_page(k, t, env.pm, ctx.pfns[i] as number);
      }
      yield* domains.free(t, ctx.dom);
    }
  });

  return {
    /** The device's completion-record write (1 done, 2 failed). */
    completion: (crIndex1: number, ok: boolean): void => {
      Atomics.store(k.i32, cr(crIndex1 - 1), ok ? 1 : 2);
    },
    /** The words completion(crIndex1) writes, for a record of the kernel users' own (a device step's footprint). */
    completionWords: (crIndex1: number): readonly number[] | undefined => (crIndex1 >= 1 && crIndex1 <= 2 * D + 2 ? [cr(crIndex1 - 1)] : undefined),
    probeResult: (dev: number): number => k.i32[result(dev)] as number,
    /** The kernel's log lines for failed probes, read from a run's final memory (check() gets a copy). */
    notes: (shared: Int32Array): string[] => {
      const mem = new KernelMemory(shared, k.layout, k.base);
      return infos.flatMap((d) => {
        const err = shared[mem.statics + results + d.index] as number;
        return err < 0 ? [`pci ${d.name}: Adding to IOMMU failed: ${errname(err)} (${mem.stringAt(shared[mem.statics + whys + d.index] as number)})`] : [];
      });
    },
    syspasidResult: (dev: number): number => k.i32[result(D + dev)] as number,
    drmResult: (): number => k.i32[result(2 * D + 1)] as number,
  };
}

// ---- the script's kernel threads (`kthread/N`) ----

/** At most this many kernel-thread actors (`kthread/N`) beside the processes. */
export const MAX_KTHREAD_ACTORS = 2;

/** The kthread actors of a script (names `kthread/N`). */
export function kthreadActors<Op extends { readonly op: string }>(actors: readonly ScriptActor<Op>[]): ScriptActor<Op>[] {
  return actors.filter((a) => a.name.startsWith('kthread/'));
}

/** Is st a kthread actor's own step? */
export function isKthreadOp(st: { readonly op: string }): st is KthreadOp {
  return KTHREAD_OPS.includes(st.op);
}

/**
 * Declare the kthread actors' task kind (`kthread_actor`) on a script's runner, where actor `i` of the runner is
 * `first + j` for the j-th kthread actor; returns their initial tasks. Each keeps the areas it mapped, by name
 * and in order (a vfree with no name takes the newest vmalloc area, an iounmap the newest ioremap).
 */
export function defineKthreadActors<Op extends { readonly op: string }>(
  k: Kernel,
  runner: ScriptRunner<Op | KthreadOp>,
  actors: readonly ScriptActor<Op | KthreadOp>[],
  first: number,
  other: (t: KTask, st: Op) => KGen<string>,
): { task: string; args: number; name: string }[] {
  if (actors.length === 0) return [];
  k.task('kthread_actor', 'kthread', function* (t, args) {
    const mapped: { readonly name: string | undefined; readonly addr: number; readonly io: boolean }[] = [];
    yield* runner.run(t, args as number, (t2, st) => (isKthreadOp(st) ? kthreadStep(k, t2, st, mapped) : other(t2, st as Op)));
  });
  return actors.map((a, j) => ({ task: 'kthread_actor', args: first + j, name: a.comm }));
}

/** One step of a kthread actor; what it did, for the trace. */
function* kthreadStep(k: Kernel, t: KTask, st: KthreadOp, mapped: { name: string | undefined; addr: number; io: boolean }[]): KGen<string> {
  const v = vmallocArea(k);
  if (!v) throw new Error('kthread: the model has no vmalloc area');
  const table = mmTableOf(v.initMm);
  if (st.op === 'vmalloc' || st.op === 'ioremap') {
    const io = st.op === 'ioremap';
    // The device's BAR: MMIO above RAM's frames, aligned to a PMD range.
    const span = 1 << PTE_TABLE_SHIFT;
    const bar = Math.ceil(table.pm.frames / span) * span;
    const addr = io ? yield* k.fn.ioremap(t, bar, st.n) : yield* k.fn.vmalloc(t, st.n);
    if (addr === 0) return `${st.op}(${st.n}) = NULL`;
    mapped.push({ name: st.as, addr, io });
    return `${st.op}(${st.n}) = kernel page ${addr} (a process's vpn ${kernelBase(table.pages) + addr})`;
  }
  const io = st.op === 'iounmap';
  const area = 'area' in st ? st.area : undefined;
  let j = -1;
  for (let i = mapped.length - 1; i >= 0 && j < 0; i--) {
    const m = mapped[i] as { name: string | undefined; addr: number; io: boolean };
    if (m.io === io && (area === undefined || m.name === area)) j = i;
  }
  if (j < 0) return `${st.op}(NULL)`;
  const { addr } = mapped.splice(j, 1)[0] as { addr: number };
  if (io) yield* k.fn.iounmap(t, addr);
  else yield* k.fn.vfree(t, addr);
  return `${st.op}(kernel page ${addr})`;
}
