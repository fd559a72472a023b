// PASID allocation (seed 000 on the IOASID allocator of seed 003): the kernel functions iommu_alloc_pasid and
// iommu_free_pasid (drivers/iommu/iommu-sva.c's iommu_sva_alloc_pasid / iommu_sva_free_pasid, today's
// iommu_alloc_global_pasid), whose implementation is the placement policy — where a PASID comes from:
//   system     the system ioasid_set of the kernel's one IOASID allocator (ioasid.ts): one space for every IOMMU;
//   per-iommu  an IDA per IOMMU instance (a driver's old per-IOMMU idr): two IOMMUs may hand out the same PASID for
//              different mms — the aliasing hazard of ENQCMD's one PASID per process;
//   ssid       an IDA per IOMMU instance, indexing its context descriptors (substream IDs);
//   device     the device's driver (the svm ops' alloc_pasid: device-allocated PASIDs);
//   native     each IOMMU driver's own default (IommuOps.nativePasid).
// A PASID is shared by every bind of the same mm in the same scope (one PASID per process) unless PRIVATE_PASID
// asks for a new one, and freed when its last bind goes. A quarantined PASID (teardown "bounded wait then
// quarantine") stays allocated until the device that held it has drained; it is reclaimed lazily, on the next
// allocation in its scope.
//
// Seed 003 on the system placement, where the PASID is an IOASID: the subscribers of the IOASID notifier chain
// (VFIO, KVM, the IOMMU driver) hear of its life — IOASID_NOTIFY_BIND once it is the mm's (allocated for its first
// bind), IOASID_NOTIFY_UNBIND when its last bind goes, before it is freed. Where that free runs once the bond has
// an MMU notifier is policy `free` (iommu_free_pasid_deferred): at unbind (the bond's last unbind frees it,
// process context under iommu_sva_lock), from the bond's free_notifier (rcu: ioasid_free() from the MMU
// notifier's SRCU callback, softirq — what a mutex as the IOASID lock forbids), or deferred from there to a work
// item (workqueue: a kworker, process context).
import type { KTask } from '../kernel/context.js';
import { EEXIST, ENOSPC } from '../kernel/errno.js';
import { defineIda, type Ida, idaAllocated, ida_alloc_range, ida_free } from '../kernel/ida.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { setAllocTrack, TRACK_WORDS, unreferenced } from '../kernel/kmemleak.js';
import { MM_FREED, type MmStruct, type MmTable, mm_set_pasid, mmById, mmPasid, mmStateCode } from '../kernel/mm/mm.js';
import { defineWork, queue_work, system_wq, type WorkItem } from '../kernel/workqueue.js';
import { type Footprint, read } from '../runtime/footprint.js';
import type { StepEnv } from '../runtime/task.js';
import { allocTrackFootprint } from '../kernel/kmemleak.js';
import type { Wire } from '../runtime/model.js';
import { array, element, struct, type ViewOf, word } from '../kernel/struct.js';
import {
  defineIoasid,
  IOASID_NOTIFY_BIND,
  IOASID_NOTIFY_UNBIND,
  type Ioasid,
  type IoasidOptions,
  ioasidCapacity,
  ioasidOf,
  ioasidSetIds,
  ioasidSystemSid,
  ioasidWords,
} from './ioasid.js';
import type { Oracle } from './oracle.js';
import { type DeviceInfo, type IommuOps, PASID_PLACEMENTS, type PasidPlacement, type SvaPasidFree, SVM_FLAG_PRIVATE_PASID, type SvmOps } from './types.js';

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    /** A PASID for binding mm to dev (mm's own in dev's scope, or a new one): the PASID or -errno. Caller holds iommu_sva_lock. */
    iommu_alloc_pasid(t: KTask, dev: DeviceInfo, mm: MmStruct, flags: number): KGen<number>;
    /** Drop one bind's use of pasid; the last frees it, or parks it until dev has drained (`quarantine`). */
    iommu_free_pasid(t: KTask, dev: DeviceInfo, mm: MmStruct, pasid: number, quarantine: boolean): KGen;
    /**
     * model: the free of a bond's PASID that its MMU notifier's free_notifier does (policy free, seed 003): at once
     * in the notifier's SRCU callback (rcu), or queued to a kworker (workqueue).
     */
    iommu_free_pasid_deferred(t: KTask, dev: DeviceInfo, mm: MmStruct, pasid: number): KGen;
  }
}

/**
 * struct iommu_mm_data (include/linux/iommu.h: pasid, mm, sva_domains, sva_handles): an mm's PASID, here one
 * record per mm and scope (mainline has one scope, the system), in a static table.
 */
export const IOMMU_MM_DATA = struct('iommu_mm_data', {
  scope: word, // model: the allocator's scope + 1, 0: free slot
  mm: word, // mm id + 1
  pasid: word,
  users: word, // model: the binds using this PASID (mainline counts them on the domains' users)
  private: word, // model: 1 for an SVM_FLAG_PRIVATE_PASID allocation, never shared
  mm_pasid: word, // model: 1 when this PASID is the mm's own (mm->pasid), set when it was allocated
  track: array(TRACK_WORDS), // model: kmemleak's allocation track
});

/** A PASID held back until its device has drained (teardown "bounded wait then quarantine"): model only. */
export const PASID_QUARANTINE = struct('pasid_quarantine', {
  scope: word, // the allocator's scope + 1, 0: free slot
  pasid: word,
  dev: word, // device index + 1
});

export interface PasidEnv {
  readonly devices: readonly DeviceInfo[];
  readonly iommus: number;
  readonly placement: PasidPlacement;
  readonly mms: MmTable;
  opsOf(dev: DeviceInfo): IommuOps;
  svmOf(dev: DeviceInfo): SvmOps | undefined;
  /**
   * The seed-003 policies of the IOASID allocator, when this allocator declares it (the kernel has none yet):
   * its lock (ioasidLock) and notifier chain (ioasidChain). Default spinlock and atomic, as ioasid.c had.
   */
  readonly ioasid?: Pick<IoasidOptions, 'lock' | 'chain'>;
  /** Where a bond's PASID is freed once the bond has an MMU notifier (seed 003): unbind unless set. */
  readonly free?: SvaPasidFree;
}

type Placement = Exclude<PasidPlacement, 'native'>;

/** The IOASID allocator SVA allocates system PASIDs from when the kernel has none yet (no VM sets: 4 slots). */
const SVA_IOASID_SETS = 4;

/** Static words PasidAllocator takes for the system IOASID allocator (to size a kernel layout). */
export function pasidIoasidWords(pasidBits: number): number {
  return ioasidWords(Math.max(2, pasidBits), SVA_IOASID_SETS);
}

/**
 * The allocator's state and the definitions of iommu_alloc_pasid / iommu_free_pasid (one implementation per
 * placement). `get` and `put` only call them: the names are the truth, and a patch replacing one is seen here.
 */
export class PasidAllocator {
  /** One IDA per IOMMU (per-iommu and ssid placements). */
  private readonly idas: Ida[] = [];
  /** The kernel's IOASID allocator: the system placement's PASIDs are its system set's IDs. */
  readonly ioasid: Ioasid;
  private readonly shares: number;
  private readonly quarantine: number;
  private readonly slots: number;
  private readonly mmData: ViewOf<typeof IOMMU_MM_DATA>;
  private readonly parked: ViewOf<typeof PASID_QUARANTINE>;
  /** free=workqueue: a work_struct per iommu_mm_data, as each embeds its own (a shared one drops a queue_work while pending). */
  private readonly works: WorkItem[] = [];
  readonly capacity: number;

  constructor(
    private readonly k: Kernel,
    private readonly oracle: Oracle,
    private readonly env: PasidEnv,
    slots: number,
  ) {
    const bits = Math.max(1, ...env.devices.map((d) => d.caps.pasidBits));
    this.capacity = Math.min(1 << 20, 1 << bits);
    // Leaks are checked here, not by the IDAs or the IOASID allocator: a quarantined PASID is held on purpose.
    this.ioasid = ioasidOf(k) ?? defineIoasid(k, { ...env.ioasid, bits: Math.max(2, bits), maxSets: SVA_IOASID_SETS, leakCheck: false });
    for (let u = 0; u < env.iommus; u++) this.idas.push(defineIda(k, `iommu${u}->pasid_ida`, this.capacity, { leakCheck: false }));
    this.slots = slots;
    this.shares = k.statics.alloc(slots * IOMMU_MM_DATA.words, 'pasid shares');
    this.quarantine = k.statics.alloc(slots * PASID_QUARANTINE.words, 'pasid quarantine');
    this.mmData = k.struct(IOMMU_MM_DATA);
    this.parked = k.struct(PASID_QUARANTINE);
    if (env.free === 'workqueue') for (let s = 0; s < slots; s++) this.works.push(defineWork(k, 'iommu_sva_pasid_free_work', (t, data) => this.freeWork(t, data)));
    this.define();
    k.onEnd(() => this.leakCheck());
  }

  /** iommu_alloc_pasid and iommu_free_pasid, an implementation per placement (`native`: the driver's own). */
  private define(): void {
    const place = (v: PasidPlacement, dev: DeviceInfo): Placement => (v === 'native' ? this.env.opsOf(dev).nativePasid : v);
    const alloc = (v: PasidPlacement) => (t: KTask, dev: DeviceInfo, mm: MmStruct, flags: number) => this.alloc(t, dev, mm, flags, place(v, dev));
    const free = (v: PasidPlacement) => (t: KTask, dev: DeviceInfo, mm: MmStruct, pasid: number, q: boolean) => this.free(t, dev, mm, pasid, q, place(v, dev));
    const by = <F>(f: (v: PasidPlacement) => F) => Object.fromEntries(PASID_PLACEMENTS.map((v) => [v, f(v)])) as Record<PasidPlacement, F>;
    const file = 'drivers/iommu/iommu-sva.c';
    this.k.fns.definePolicy('iommu_alloc_pasid', file, 'pasidAlloc', this.env.placement, by(alloc));
    this.k.fns.definePolicy('iommu_free_pasid', file, 'pasidAlloc', this.env.placement, by(free));
    const now = (t: KTask, dev: DeviceInfo, mm: MmStruct, pasid: number) => this.k.fn.iommu_free_pasid(t, dev, mm, pasid, false);
    this.k.fns.definePolicy('iommu_free_pasid_deferred', file, 'free', this.env.free ?? 'unbind', {
      // unbind: the unbind freed it already and leaves the notifier nothing to free; called anyway, it frees now.
      unbind: now,
      rcu: now,
      workqueue: (t, dev, mm, pasid) => this.queueFree(t, dev, mm, pasid),
    });
  }

  /**
   * free=workqueue: the free goes to system_wq, on the work_struct of pasid's iommu_mm_data. The work holds
   * mm_count: the free_notifier's caller drops the notifier's own as soon as it returns, and the free still
   * clears mm->pasid.
   */
  private *queueFree(t: KTask, dev: DeviceInfo, mm: MmStruct, pasid: number): KGen {
    const scope = this.scopeOf(dev);
    const slot = yield* this.k.step(t, 'iommu_mm_data of PASID', () => {
      for (let s = 0; s < this.slots; s++) if (this.mmData.scope.get(this.share(s)) === scope + 1 && this.mmData.pasid.get(this.share(s)) === pasid) return s;
      throw new Error(`iommu_free_pasid_deferred: PASID ${pasid} is not allocated in ${dev.name}'s scope`);
    });
    yield* this.k.fn.mmgrab(t, mm);
    yield* queue_work(this.k, t, system_wq(this.k), this.works[slot] as WorkItem, { dev: dev.index, mm: mm.id, pasid });
  }

  /** The work item's function: the PASID's free, in a kworker. */
  private *freeWork(t: KTask, data: Wire): KGen {
    const { dev, mm, pasid } = data as { dev: number; mm: number; pasid: number };
    const d = this.env.devices[dev];
    const m = mmById(this.env.mms, mm);
    if (!d || !m) throw new Error(`iommu_sva_pasid_free_work: no device ${dev} or mm ${mm}`);
    yield* this.k.fn.iommu_free_pasid(t, d, m, pasid, false);
    yield* this.k.fn.mmdrop(t, m);
  }

  /** PASIDs allocated with no bind using them and not in quarantine: never freed. */
  private leakCheck(): void {
    const k = this.k;
    if (!k.enabled('leaks')) return;
    const held = new Set<string>();
    for (let s = 0; s < this.slots; s++) {
      const d = this.share(s);
      const q = this.q(s);
      if (this.mmData.scope.get(d) !== 0) held.add(`${this.mmData.scope.get(d) - 1}:${this.mmData.pasid.get(d)}`);
      if (this.parked.scope.get(q) !== 0) held.add(`${this.parked.scope.get(q) - 1}:${this.parked.pasid.get(q)}`);
    }
    const lines: string[] = [];
    const sid = ioasidSystemSid(k, this.ioasid);
    for (const p of sid === 0 ? [] : ioasidSetIds(k, this.ioasid, sid)) if (!held.has(`0:${p}`)) lines.push(`  PASID ${p} of the system ioasid_set`);
    this.idas.forEach((ida, u) => {
      for (const p of idaAllocated(k, ida)) if (!held.has(`${1 + u}:${p}`)) lines.push(`  PASID ${p} of ${ida.name}`);
    });
    for (const d of this.env.devices) {
      if (this.placementOf(d) !== 'device') continue;
      const scope = this.scopeOf(d);
      for (const p of this.env.svmOf(d)?.allocated_pasids?.(d) ?? []) if (!held.has(`${scope}:${p}`)) lines.push(`  PASID ${p} allocated by ${d.name}'s driver`);
    }
    this.freedMmCheck();
    if (lines.length === 0) return;
    const title = `leak: ${lines.length} PASID${lines.length > 1 ? 's' : ''} still allocated at teardown with no bind and no quarantine`;
    k.report({ kind: 'leak', title, text: [title, ...lines].join('\n'), step: -1, where: 'iommu_sva' });
  }

  /**
   * A PASID still allocated to an mm that has been freed: every bind of it held mm_count, so every one is gone,
   * and the last iommu_sva_pasid_put never came (or the mm was freed under a bind). The record is unreferenced.
   */
  private freedMmCheck(): void {
    const k = this.k;
    if (k.tasksLeftBlocked) return;
    for (let s = 0; s < this.slots; s++) {
      const d = this.share(s);
      if (this.mmData.scope.get(d) === 0) continue;
      const mm = mmById(this.env.mms, this.mmData.mm.get(d) - 1);
      if (!mm || mmStateCode(k, mm) !== MM_FREED) continue;
      const why = `PASID ${this.mmData.pasid.get(d)} is still allocated to ${mm.name} (users ${this.mmData.users.get(d)}), which has been freed (__mmdrop)`;
      k.report(unreferenced(k, d, IOMMU_MM_DATA.words, this.mmData.track.addr(d), why));
    }
  }

  /** The placement in force for dev (`native`: its IOMMU driver's own). */
  placementOf(dev: DeviceInfo): Placement {
    return this.env.placement === 'native' ? this.env.opsOf(dev).nativePasid : this.env.placement;
  }

  /** Scope ids: 0 system, 1+u IOMMU u, 1+iommus+d device d. */
  private scopeOf(dev: DeviceInfo, p: Placement = this.placementOf(dev)): number {
    return p === 'system' ? 0 : p === 'device' ? 1 + this.env.iommus + dev.index : 1 + dev.iommu;
  }

  /** Devices that tag DMA with PASIDs of dev's scope. */
  private scopeDevices(dev: DeviceInfo): DeviceInfo[] {
    const s = this.scopeOf(dev);
    return this.env.devices.filter((d) => this.scopeOf(d) === s);
  }

  /** Slot `slot`'s struct iommu_mm_data (its word offset). */
  private share(slot: number): number {
    return element(IOMMU_MM_DATA, this.k.mem.statics + this.shares, slot);
  }

  /** Quarantine slot `slot` (its word offset). */
  private q(slot: number): number {
    return element(PASID_QUARANTINE, this.k.mem.statics + this.quarantine, slot);
  }

  /** iommu_alloc_pasid (compatibility: the sva core calls this until it calls k.fn.iommu_alloc_pasid). */
  get(t: KTask, dev: DeviceInfo, mm: MmStruct, flags: number): KGen<number> {
    return this.k.fn.iommu_alloc_pasid(t, dev, mm, flags);
  }

  /** iommu_free_pasid (compatibility, as `get`). */
  put(t: KTask, dev: DeviceInfo, mm: MmStruct, pasid: number, quarantine: boolean): KGen {
    return this.k.fn.iommu_free_pasid(t, dev, mm, pasid, quarantine);
  }

  /** The PASID mm already has in dev's scope (its users + 1), 0 for none, -1 when it is outside dev's range. */
  private findShared(t: KTask, mm: MmStruct, scope: number, min: number, max: number): KGen<number> {
    return this.k.stepOn(t, 'iommu_sva_find_pasid', () => this.findSharedFootprint(mm, scope), () => {
      for (let s = 0; s < this.slots; s++) {
        const d = this.share(s);
        if (this.mmData.scope.get(d) === scope + 1 && this.mmData.mm.get(d) === mm.id + 1 && this.mmData.private.get(d) === 0) {
          const p = this.mmData.pasid.get(d);
          if (p < min || p > max) return -1; // outside this device's table: needs its own
          this.mmData.users.set(d, this.mmData.users.get(d) + 1);
          return p;
        }
      }
      return 0;
    });
  }

  /** What findShared reads as it scans the slots, up to the one it takes a use of (whose users it writes). */
  private findSharedFootprint(mm: MmStruct, scope: number): number[] {
    const md = this.mmData;
    const out: number[] = [];
    for (let s = 0; s < this.slots; s++) {
      const d = this.share(s);
      out.push(read(md.scope.addr(d)));
      if (md.scope.get(d) !== scope + 1) continue;
      out.push(read(md.mm.addr(d)));
      if (md.mm.get(d) !== mm.id + 1) continue;
      out.push(read(md.private.addr(d)));
      if (md.private.get(d) !== 0) continue;
      out.push(read(md.pasid.addr(d)), md.users.addr(d));
      return out;
    }
    return out;
  }

  /** What the reclaim of scope's parked PASIDs touches: every slot's scope, and a parked one's device state. */
  private reclaimFootprint(scope: number): number[] {
    const out: number[] = [];
    for (let s = 0; s < this.slots; s++) {
      const q = this.q(s);
      if (this.parked.scope.get(q) !== scope + 1) {
        out.push(read(this.parked.scope.addr(q)));
        continue;
      }
      const dev = this.env.devices[this.parked.dev.get(q) - 1] as DeviceInfo;
      const pasid = this.parked.pasid.get(q);
      out.push(this.parked.scope.addr(q), read(this.parked.dev.addr(q)), read(this.parked.pasid.addr(q)));
      out.push(...(this.env.svmOf(dev)?.drainedFootprint?.(dev, pasid) ?? []));
    }
    return out;
  }

  /** What iommu_sva_pasid_get touches besides `seen` (the oracle's reads): the slots up to the free one it fills. */
  private getFootprint(t: KTask, seen: Footprint): number[] {
    const md = this.mmData;
    const out = [...seen];
    for (let s = 0; s < this.slots; s++) {
      const d = this.share(s);
      if (md.scope.get(d) !== 0) {
        out.push(read(md.scope.addr(d)));
        continue;
      }
      out.push(md.scope.addr(d), md.mm.addr(d), md.pasid.addr(d), md.users.addr(d), md.private.addr(d), md.mm_pasid.addr(d));
      return allocTrackFootprint(this.k, t, md.track.addr(d), out);
    }
    return out;
  }

  /** What iommu_sva_pasid_put reads as it scans for pasid's slot, and that slot's users and scope it writes. */
  private putFootprint(scope: number, pasid: number): number[] {
    const md = this.mmData;
    const out: number[] = [];
    for (let s = 0; s < this.slots; s++) {
      const d = this.share(s);
      if (md.scope.get(d) !== scope + 1 || md.pasid.get(d) !== pasid) {
        out.push(read(md.scope.addr(d)));
        if (md.scope.get(d) === scope + 1) out.push(read(md.pasid.addr(d)));
        continue;
      }
      out.push(md.scope.addr(d), read(md.pasid.addr(d)), md.users.addr(d), read(md.mm_pasid.addr(d)));
      return out;
    }
    return out;
  }

  /** iommu_alloc_pasid with `placement`'s source of PASIDs. */
  private *alloc(t: KTask, dev: DeviceInfo, mm: MmStruct, flags: number, placement: Placement): KGen<number> {
    const k = this.k;
    const scope = this.scopeOf(dev, placement);
    const [min, max] = this.env.opsOf(dev).pasid_range(dev);
    const priv = (flags & SVM_FLAG_PRIVATE_PASID) !== 0;
    if (!priv) {
      const shared = yield* this.findShared(t, mm, scope, min, max);
      if (shared > 0) return shared;
    }
    yield* this.reclaim(t, scope);
    const pasid = yield* this.allocId(t, dev, mm, placement, min, max);
    if (pasid < 0) return pasid;
    // One PASID per process: mm->pasid is the mm's first shared PASID (what ENQCMD puts on the bus, from the
    // task's IA32_PASID), whichever scope it came from — system-wide, it names the mm on every IOMMU.
    const own = !priv && mmPasid(k, mm) === 0;
    const devs = this.scopeDevices(dev);
    const get = (env: StepEnv) => {
      this.oracle.pasidAllocated(env.step, pasid, devs, t.label);
      for (let s = 0; s < this.slots; s++) {
        const d = this.share(s);
        if (this.mmData.scope.get(d) !== 0) continue;
        this.mmData.scope.set(d, scope + 1);
        this.mmData.mm.set(d, mm.id + 1);
        this.mmData.pasid.set(d, pasid);
        this.mmData.users.set(d, 1);
        this.mmData.private.set(d, priv ? 1 : 0);
        this.mmData.mm_pasid.set(d, own ? 1 : 0);
        setAllocTrack(k, t, this.mmData.track.addr(d));
        return true;
      }
      return false;
    };
    // The oracle reads the devices' DMA in flight: declared when every counter can say what it reads.
    const inflight = this.oracle.pasidAllocatedFootprint(pasid, devs);
    const ok = yield* (inflight ? k.stepOn(t, 'iommu_sva_pasid_get', () => {
            const reads = inflight();
            return reads && this.getFootprint(t, reads);
          }, get) : k.step(t, 'iommu_sva_pasid_get', get));
    if (!ok) {
      yield* this.release(t, dev, scope, pasid);
      return -ENOSPC;
    }
    if (own) yield* mm_set_pasid(k, t, mm, pasid);
    // The IOASID is the mm's now: its subscribers hear it is bound (the IOMMU driver, to its PASID table).
    if (scope === 0) yield* k.fn.ioasid_notify(t, pasid, IOASID_NOTIFY_BIND);
    return pasid;
  }

  /** A new PASID in [min, max] from placement's allocator. */
  private *allocId(t: KTask, dev: DeviceInfo, mm: MmStruct, placement: Placement, min: number, max: number): KGen<number> {
    if (placement === 'device') {
      const svm = this.env.svmOf(dev);
      if (!svm?.alloc_pasid) return -ENOSPC;
      return yield* svm.alloc_pasid(t, dev, min, max);
    }
    if (placement !== 'system') return yield* ida_alloc_range(this.k, t, this.idas[dev.iommu] as Ida, min, max);
    const sid = yield* this.systemSet(t);
    // The IOASID's private data is the mm it was allocated for (ioasid_set_data(pasid, mm) in the series).
    return sid < 0 ? sid : yield* this.k.fn.ioasid_alloc(t, sid, min, max, mm.id + 1);
  }

  /**
   * The system ioasid_set, allocated on first use with the whole capacity as its quota (an IOMMU driver's init
   * in the series); a racing first use finds it made (-EEXIST) and takes it.
   */
  private *systemSet(t: KTask): KGen<number> {
    const a = this.ioasid;
    const sid = ioasidSystemSid(this.k, a);
    if (sid !== 0) return sid;
    const r = yield* this.k.fn.ioasid_alloc_system_set(t, ioasidCapacity(this.k, a) - 1);
    return r === -EEXIST ? ioasidSystemSid(this.k, a) : r;
  }

  /**
   * iommu_free_pasid: drop one bind's use of pasid. The last one frees it — or, with `quarantine`, keeps it
   * allocated until dev has drained. Caller holds iommu_sva_lock.
   */
  private *free(t: KTask, dev: DeviceInfo, mm: MmStruct, pasid: number, quarantine: boolean, placement: Placement): KGen {
    const k = this.k;
    const scope = this.scopeOf(dev, placement);
    // 0: still used, 1: the last use went, 2: … and it was the mm's own PASID.
    const last = yield* k.stepOn(t, 'iommu_sva_pasid_put', () => this.putFootprint(scope, pasid), () => {
      for (let s = 0; s < this.slots; s++) {
        const d = this.share(s);
        if (this.mmData.scope.get(d) !== scope + 1 || this.mmData.pasid.get(d) !== pasid) continue;
        const users = this.mmData.users.get(d) - 1;
        this.mmData.users.set(d, users);
        if (users > 0) return 0;
        this.mmData.scope.set(d, 0);
        return this.mmData.mm_pasid.get(d) === 1 ? 2 : 1;
      }
      throw new Error(`iommu_free_pasid: PASID ${pasid} is not allocated in ${dev.name}'s scope`);
    });
    if (last === 0) return;
    if (last === 2 && mmPasid(k, mm) === pasid) yield* mm_set_pasid(k, t, mm, 0);
    if (scope === 0) yield* k.fn.ioasid_notify(t, pasid, IOASID_NOTIFY_UNBIND);
    if (quarantine) yield* this.park(t, dev, scope, pasid);
    else yield* this.release(t, dev, scope, pasid);
  }

  /** Hold pasid back until dev has drained. */
  private park(t: KTask, dev: DeviceInfo, scope: number, pasid: number): KGen {
    return this.k.step(t, 'iommu_sva_pasid_quarantine', () => {
      for (let s = 0; s < this.slots; s++) {
        const q = this.q(s);
        if (this.parked.scope.get(q) !== 0) continue;
        this.parked.scope.set(q, scope + 1);
        this.parked.pasid.set(q, pasid);
        this.parked.dev.set(q, dev.index + 1);
        return;
      }
      throw new Error('iommu_sva_pasid_quarantine: quarantine full');
    });
  }

  /** PASIDs held in quarantine now, as [device index, pasid]. */
  quarantined(): [number, number][] {
    const out: [number, number][] = [];
    for (let s = 0; s < this.slots; s++) {
      const q = this.q(s);
      if (this.parked.scope.get(q) !== 0) out.push([this.parked.dev.get(q) - 1, this.parked.pasid.get(q)]);
    }
    return out;
  }

  /** Give pasid back to the allocator of its scope. */
  private *release(t: KTask, dev: DeviceInfo, scope: number, pasid: number): KGen {
    if (scope > this.env.iommus) {
      const svm = this.env.svmOf(dev);
      if (svm?.free_pasid) yield* svm.free_pasid(t, dev, pasid);
      return;
    }
    if (scope === 0) yield* this.k.fn.ioasid_free(t, pasid);
    else yield* ida_free(this.k, t, this.idas[scope - 1] as Ida, pasid);
  }

  /** Free the quarantined PASIDs of scope whose device has drained since. */
  private *reclaim(t: KTask, scope: number): KGen {
    const k = this.k;
    const reclaim = () => {
      const out: [number, number][] = [];
      for (let s = 0; s < this.slots; s++) {
        const q = this.q(s);
        if (this.parked.scope.get(q) !== scope + 1) continue;
        const dev = this.env.devices[this.parked.dev.get(q) - 1] as DeviceInfo;
        const pasid = this.parked.pasid.get(q);
        if (this.env.svmOf(dev)?.drained(dev, pasid) ?? true) {
          this.parked.scope.set(q, 0);
          out.push([dev.index, pasid]);
        }
      }
      return out;
    };
    // A parked PASID's device is asked whether it drained: declared when every device's driver can say what it reads.
    const sayable = this.env.devices.every((d) => (this.env.svmOf(d) ?? { drainedFootprint: true }).drainedFootprint !== undefined);
    const ready = yield* (sayable ? k.stepOn(t, 'iommu_sva_pasid_reclaim', () => this.reclaimFootprint(scope), reclaim) : k.step(t, 'iommu_sva_pasid_reclaim', reclaim));
    for (const [d, pasid] of ready) yield* this.release(t, this.env.devices[d] as DeviceInfo, scope, pasid);
  }
}
