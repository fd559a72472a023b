// Shared Virtual Addressing in the vendor-neutral core (drivers/iommu/iommu-sva.c; seed 000's iommu_bind_task and
// the vendors' bind calls mapped onto one API): iommu_sva_bind_device(dev, mm, flags) returns
// a handle, iommu_sva_unbind_device(handle) undoes it, both under iommu_sva_lock. A bind goes through every
// enabling check (the capability check is the same call without a PASID, as the vendors' old availability checks were), finds
// or makes the mm's struct iommu_mm_data (iommu_alloc_mm_data: mm->pasid allocated once per mm, published with
// smp_store_release), shares the handle of an existing bond of (mm, device) — a refcount, only the last unbind
// detaches and frees it —, and attaches the mm's SVA domain on the device's IOMMU to {device, PASID}. The SVA
// domain carries the MMU notifier (registered when it is allocated, put when it is freed: free_notifier frees
// it after SRCU); the PASID goes with the mm, in mm_pasid_drop at __mmdrop. An unbind's order and waits are the
// teardown policy: stop the device and drain (its DMA, then its page requests), or wait a bounded time and
// quarantine the PASID, or free at once. The MMU notifier's release must stop the hardware walking the page
// tables before they go; its invalidation must reach the IOTLB and ATC.
//
// Seed 000's alternatives stay policies: pasidLife=unbind (the PASID is a bind's, freed at its last unbind;
// __mmdrop then WARNs at a PASID left set), notifier=bond (an MMU notifier per bond), fault=callback (the
// driver's fault callback hears of failed page requests); and bug=no-handle-sharing re-creates the code before
// "iommu/sva: Restore SVA handle sharing" (every bind a handle of its own).
import type { KTask } from '../kernel/context.js';
import { EINVAL, ENODEV, ENOMEM, EOPNOTSUPP, errname } from '../kernel/errno.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { StepEnv } from '../runtime/task.js';
import { setAllocTrack, TRACK_WORDS, unreferenced } from '../kernel/kmemleak.js';
import { initMmPages, kernelBase, MM_LIVE, mmBase, type MmStruct, type MmTable, mmById, mmState, mmStateCode } from '../kernel/mm/mm.js';
import { TLB_FLUSH_ALL } from '../kernel/mm/pgalloc.js';
import { defineSpinlock, type Spinlock, spin_lock_irqsave, spin_unlock_irqrestore } from '../kernel/spinlock.js';
import {
  defineMmuNotifierOps,
  type MmuNotifiers,
  mmu_notifier_put,
  mmu_notifier_register,
  subscriptionData,
  subscriptionOf,
} from '../kernel/mm/mmu_notifier.js';
import { down_read, up_read } from '../kernel/rwsem.js';
import { objLoad } from '../kernel/slab.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import { rcu_init } from '../kernel/rcu.js';
import { array, element, struct, type ViewOf, word } from '../kernel/struct.js';
import { type Footprint, read } from '../runtime/footprint.js';
import { objectFootprint } from './footprints.js';
import { allocTrackFootprint } from '../kernel/kmemleak.js';
import { subscriptionOfFootprint } from '../kernel/mm/mmu_notifier.js';
import { defineDeviceFault } from './io-pgfault.js';
import type { Oracle } from './oracle.js';
import { PasidAllocator } from './pasid.js';
import type { Stats } from './stats.js';
import type { SvaDomains } from './sva-domain.js';
import type { IommuDomain, IommuOps } from './ops.js';
import { DOM } from './iommu.js';
import {
  type DeviceInfo,
  RESP_INVALID,
  RESP_SUCCESS,
  SVM_FLAG_PRIVATE_PASID,
  SVM_FLAG_SUPERVISOR_MODE,
  type SvaPolicies,
  type SvmOps,
} from './types.js';

/**
 * struct iommu_sva (include/linux/iommu.h: handle, dev, users), declared once: a bond in a static table (here a
 * handle is its slot + 1; every preset binds through it). It also holds what mainline reaches through it (handle.domain->mm, mm->iommu_mm->pasid) and what the
 * vendor bonds before it held (a vendor bond's notifier and flags).
 */
export const IOMMU_SVA = struct('iommu_sva', {
  used: word, // model: 1 while the table slot is allocated (kzalloc'd), 0 when free
  dev: word, // device index + 1
  mm: word, // mm id + 1 (mainline: handle.domain->mm)
  pasid: word, // mainline: mm->iommu_mm->pasid
  users: word,
  notifier: word, // the MMU notifier subscription, 0: none (init_mm) (a vendor bond's notifier)
  flags: word, // SVM_FLAG_* (a vendor bond's flags)
  released: word, // model: the notifier's release ran (a vendor bond checked list_empty(&svm->devs))
  domain: word, // handle.domain: the SVA domain attached to {dev, pasid} (0: none yet)
  track: array(TRACK_WORDS), // model: kmemleak's allocation track
});

/**
 * struct iommu_mm_data (include/linux/iommu.h), one slot per mm (by mm id), kzalloc'd at the mm's first bind and
 * published as mm->iommu_mm; kfree'd by mm_pasid_drop. Its sva_domains list is sva-domain.ts's (per mm and
 * IOMMU), its sva_handles this file's bonds of the mm.
 */
export const SVA_MM_DATA = struct('iommu_mm_data', {
  used: word, // model: 1 while allocated
  pasid: word, // iommu_mm->pasid: the mm's PASID (mm_get_enqcmd_pasid)
  track: array(TRACK_WORDS), // model: kmemleak's allocation track
});

export interface SvaConfig {
  readonly devices: readonly DeviceInfo[];
  readonly iommus: number;
  readonly policies: SvaPolicies;
  /** Bonds that may exist at once. */
  readonly bonds: number;
}

/** A bind's result: a handle (> 0) or -errno with the reason, as a kernel developer wants to read it. */
export interface BindResult {
  readonly ret: number;
  readonly pasid: number;
  readonly why: string;
}

/** The bond's implicit SVA domain as the driver sees it (this path keeps no struct iommu_domain object). */
function svaDomain(mm: MmStruct, flags: number): IommuDomain {
  return { type: 'sva', obj: 0, mm, flags };
}

/** A DMA-API I/O page table attached by dma.ts, as the driver sees it. */
function tableDomain(table: MmStruct): IommuDomain {
  return { type: 'dma', obj: 0, mm: table, flags: 0 };
}

const locks = new WeakMap<Kernel, Mutex>();

export function iommuSvaLock(k: Kernel): Mutex {
  let m = locks.get(k);
  if (!m) {
    m = defineMutex(k, 'iommu_sva_lock');
    locks.set(k, m);
  }
  return m;
}

const IOMMU_SVA_C = 'drivers/iommu/iommu-sva.c';

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    iommu_sva_bind_device(t: KTask, dev: DeviceInfo, mm: MmStruct | undefined, flags: number): KGen<BindResult>;
    iommu_sva_unbind_device(t: KTask, handle: number): KGen;
    /** iommu_alloc_mm_data (iommu_sva_lock held): the PASID mm's binds of dev use — the mm's, allocated once — or -errno. */
    iommu_alloc_mm_data(t: KTask, mm: MmStruct, dev: DeviceInfo, flags: number): KGen<number>;
    /** iommu_sva_handle_mm (the SVA domain's page request): mmget_not_zero, mmap_read_lock, handle_mm_fault. */
    iommu_sva_handle_mm(t: KTask, mm: MmStruct, vpn: number, write: boolean): KGen<number>;
    /** The bond's MMU notifier release (seed 000's iommu_notifier_release; mainline: the driver's mm release). */
    iommu_sva_mm_release(t: KTask, mm: MmStruct, handle: number): KGen;
    /** model: the bond's MMU notifier invalidate (seed 000's shape; mainline: the driver's arch_invalidate_secondary_tlbs). */
    iommu_sva_invalidate_range(t: KTask, mm: MmStruct, handle: number, start: number, end: number): KGen;
    /** model: the seed-000 teardown before the PASID entry goes (policy teardown); true: quarantine the PASID. */
    iommu_sva_stop_device_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen<boolean>;
    /**
     * The bond's MMU notifier free_notifier, an SRCU grace period after mmu_notifier_put (mmu_notifier_free_rcu,
     * softirq): frees the bond — and, with policy free=rcu, its PASID (ioasid_free() from the RCU callback of
     * MMU notifiers, seed 003).
     */
    iommu_sva_free_notifier(t: KTask, handle: number): KGen;
  }
}

export class Sva {
  readonly pasids: PasidAllocator;
  readonly lock: Mutex;
  private readonly iommuOps: (IommuOps | undefined)[];
  private readonly svm: (SvmOps | undefined)[];
  private readonly bonds: number;
  /** Per device, per PASID: the mm bound there now (id + 1; the oracle's ground truth). */
  private readonly boundTable: number[] = [];
  private readonly notifierOps: number;
  /** The SVA domains' MMU notifier ops (notifier=domain: the driver's mmu_notifier_ops' place). */
  private readonly domainOps: number;
  private readonly sva: ViewOf<typeof IOMMU_SVA>;
  private readonly mmData: number;
  /** Per mm, per device: the PASID its binds use there (its scope's; mainline: iommu_mm->pasid everywhere). */
  private readonly devPasid: number;
  private readonly mmd: ViewOf<typeof SVA_MM_DATA>;

  constructor(
    private readonly k: Kernel,
    private readonly mms: MmTable,
    private readonly notifiers: MmuNotifiers,
    private readonly oracle: Oracle,
    private readonly stats: Stats,
    /** The SVA domains of (mm, IOMMU) and the groups they are attached through (iommu_attach_device_pasid). */
    readonly svaDomains: SvaDomains,
    readonly cfg: SvaConfig,
  ) {
    rcu_init(k);
    this.lock = iommuSvaLock(k);
    k.onEnd(() => this.leakCheck());
    this.iommuOps = Array.from({ length: cfg.iommus }, () => undefined);
    this.svm = cfg.devices.map(() => undefined);
    this.bonds = k.statics.alloc(cfg.bonds * IOMMU_SVA.words, 'iommu_sva bonds');
    this.sva = k.struct(IOMMU_SVA);
    this.mmd = k.struct(SVA_MM_DATA);
    this.mmData = k.statics.alloc((mms.mms.length + 1) * SVA_MM_DATA.words, 'iommu_mm_data');
    this.devPasid = k.statics.alloc((mms.mms.length + 1) * cfg.devices.length, 'iommu_mm_data PASIDs');
    for (const d of cfg.devices) {
      const n = 1 << d.caps.pasidBits;
      this.boundTable.push(k.statics.alloc(n, `${d.name} bound`));
    }
    this.pasids = new PasidAllocator(
      k,
      oracle,
      {
        devices: cfg.devices,
        iommus: cfg.iommus,
        placement: cfg.policies.pasidAlloc,
        opsOf: (d) => this.ops(d),
        svmOf: (d) => this.svm[d.index],
        mms,
        ioasid: { lock: cfg.policies.ioasidLock ?? 'spinlock' },
        free: cfg.policies.free ?? 'unbind',
      },
      cfg.bonds,
    );
    this.defineFunctions();
    this.defineKvaFunctions();
    const sva = this;
    this.notifierOps = defineMmuNotifierOps(notifiers, {
      name: 'iommu_sva',
      release(t, mm, sub) {
        return sva.release(t, mm, subscriptionData(k, notifiers, sub));
      },
      arch_invalidate_secondary_tlbs(t, mm, sub, start, end) {
        return sva.invalidate(t, mm, subscriptionData(k, notifiers, sub), start, end);
      },
      free_notifier(t, sub) {
        return k.fn.iommu_sva_free_notifier(t, subscriptionData(k, notifiers, sub));
      },
    });
    this.domainOps = defineMmuNotifierOps(notifiers, {
      name: 'iommu_sva_domain',
      release: (t, mm, sub) => sva.domainRelease(t, mm, subscriptionData(k, notifiers, sub)),
      arch_invalidate_secondary_tlbs: (t, mm, sub, start, end) => sva.domainInvalidate(t, mm, subscriptionData(k, notifiers, sub), start, end),
      // The domain's memory goes an SRCU grace period after the put: no callback of it is running any more.
      free_notifier: (t, sub) => svaDomains.freeMemory(t, subscriptionData(k, notifiers, sub)),
    });
    if ((cfg.policies.notifier ?? 'domain') === 'domain') {
      svaDomains.notifier = {
        register: (t, dom, mm) => mmu_notifier_register(k, t, notifiers, this.domainOps, mm, dom),
        subscription: (dom) => subscriptionOf(k, notifiers, this.domainOps, dom),
        subscriptionFootprint: () => subscriptionOfFootprint(k, notifiers, this.domainOps),
        put: (t, sub) => mmu_notifier_put(k, t, notifiers, sub),
      };
    }
  }

  /** notifier=bond: each bond registers its own MMU notifier (seed 000). */
  private get bondNotifier(): boolean {
    return this.cfg.policies.notifier === 'bond';
  }

  /** Is pasid freed at the bind's last unbind (pasidLife=unbind, or a PRIVATE_PASID bind's own), not with the mm? */
  private freedAtUnbind(flags: number): boolean {
    return this.cfg.policies.pasidLife === 'unbind' || (flags & SVM_FLAG_PRIVATE_PASID) !== 0;
  }

  /** iommu-sva.c's functions by kernel name (once per kernel: one Sva per model). */
  private defineFunctions(): void {
    const fns = this.k.fns;
    const { bug, teardown } = this.cfg.policies;
    const bind = (share: boolean) => (t: KTask, dev: DeviceInfo, mm: MmStruct | undefined, flags: number) => this.impl_iommu_sva_bind_device(t, dev, mm, flags, share);
    fns.definePlanted('iommu_sva_bind_device', IOMMU_SVA_C, bug, { none: bind(true), 'no-handle-sharing': bind(false) });
    fns.define('iommu_sva_unbind_device', IOMMU_SVA_C, (t, handle) => this.impl_iommu_sva_unbind_device(t, handle));
    fns.define('iommu_alloc_mm_data', IOMMU_SVA_C, (t, mm, dev, flags) => this.impl_iommu_alloc_mm_data(t, mm, dev, flags));
    fns.definePolicy('mm_pasid_drop', IOMMU_SVA_C, 'pasidLife', this.cfg.policies.pasidLife ?? 'mm', {
      mm: (t, mm) => this.impl_mm_pasid_drop(t, mm),
      // The last unbind freed the PASID; __mmdrop checks it did.
      *unbind() {},
    });
    fns.define('iommu_sva_handle_mm', IOMMU_SVA_C, (t, mm, vpn, write) => this.impl_iommu_sva_handle_mm(t, mm, vpn, write));
    const release = (flush: boolean) => (t: KTask, mm: MmStruct, h: number) => this.impl_iommu_sva_mm_release(t, mm, h, flush);
    fns.definePlanted('iommu_sva_mm_release', IOMMU_SVA_C, bug, { none: release(true), 'no-release-flush': release(false) });
    const invalidate = (t: KTask, mm: MmStruct, h: number, start: number, end: number) => this.impl_iommu_sva_invalidate_range(t, mm, h, start, end);
    fns.definePlanted('iommu_sva_invalidate_range', IOMMU_SVA_C, bug, { none: invalidate, 'no-range-flush': function* () {} });
    fns.definePolicy('iommu_sva_stop_device_pasid', IOMMU_SVA_C, 'teardown', teardown, {
      drain: (t, dev, pasid) => this.stopDrain(t, dev, pasid),
      quarantine: (t, dev, pasid) => this.stopQuarantine(t, dev, pasid),
      // biome-ignore lint/correctness/useYield: at-once stops nothing, so it has no scheduling point
      *'at-once'() {
        return false;
      },
    });
    fns.definePolicy('iommu_sva_free_notifier', IOMMU_SVA_C, 'free', this.cfg.policies.free ?? 'unbind', {
      unbind: (t, h) => this.freeBond(t, h),
      rcu: (t, h) => this.freeBondAndPasid(t, h),
      workqueue: (t, h) => this.freeBondAndPasid(t, h),
    });
    const doms = this.svaDomains;
    defineDeviceFault(
      this.k,
      {
        mms: this.mms,
        notifiers: this.notifiers,
        get: (t, dom) => doms.iommu_sva_domain_get(t, dom),
        put: (t, dom) => doms.iommu_sva_domain_put(t, dom),
        svmOf: (d) => this.svm[d.index],
      },
      this.cfg.policies.fault,
      bug,
    );
  }

  // ---- registration (at declaration: iommu_device_register, the driver's probe) ----

  registerIommu(index: number, ops: IommuOps): void {
    this.iommuOps[index] = ops;
    this.svaDomains.groups.registerIommu(index, ops);
  }

  /** iommu_set_svm_ops(dev, ops) (seed 000). */
  setSvmOps(dev: DeviceInfo, ops: SvmOps): void {
    this.svm[dev.index] = ops;
  }

  ops(dev: DeviceInfo): IommuOps {
    const o = this.iommuOps[dev.iommu];
    if (!o) throw new Error(`no IOMMU driver registered for IOMMU ${dev.iommu} (${dev.name})`);
    return o;
  }

  // ---- what others read (plain loads, from any point or sequenced delivery) ----

  private at(base: number, i: number): number {
    return this.k.mem.statics + base + i;
  }

  /** The mm bound at {dev, pasid} now (id + 1), 0 when none: the isolation oracle's ground truth. */
  boundMm(dev: number, pasid: number): number {
    const d = this.cfg.devices[dev];
    if (!d || pasid < 0 || pasid >= 1 << d.caps.pasidBits) return 0;
    return this.k.i32[this.at(this.boundTable[dev] as number, pasid)] as number;
  }

  /** The word boundMm(dev, pasid) reads (undefined: none, it answers 0): a hardware step's footprint declares it. */
  boundMmWord(dev: number, pasid: number): number | undefined {
    const d = this.cfg.devices[dev];
    if (!d || pasid < 0 || pasid >= 1 << d.caps.pasidBits) return undefined;
    return this.at(this.boundTable[dev] as number, pasid);
  }

  /** The bond's struct iommu_sva (its word offset). */
  private bond(handle: number): number {
    return element(IOMMU_SVA, this.k.mem.statics + this.bonds, handle - 1);
  }

  bondField(handle: number, f: 'dev' | 'mm' | 'pasid' | 'users'): number {
    const b = this.bond(handle);
    if (f === 'users') return this.sva.users.get(b);
    if (f === 'pasid') return this.sva.pasid.get(b);
    return (f === 'dev' ? this.sva.dev.get(b) : this.sva.mm.get(b)) - 1;
  }

  /** Live bonds (handles), for leak checks. */
  liveBonds(): number[] {
    const out: number[] = [];
    for (let h = 1; h <= this.cfg.bonds; h++) if (this.sva.used.get(this.bond(h)) !== 0) out.push(h);
    return out;
  }

  /**
   * At teardown: bonds nothing can unbind any more — a process's, once its mm is past exit (the task is gone and
   * exit_files closed its fds); init_mm's (kernel users, supervisor binds), once no user mm is live either — are
   * leaks, with the MMU notifier subscription they keep registered and the mm_count it holds. A bond whose last
   * user has gone is being torn down, and a run that left tasks blocked is not judged (see tasksLeftBlocked).
   */
  private leakCheck(): void {
    const k = this.k;
    if (!k.enabled('leaks') || k.tasksLeftBlocked) return;
    const processesLive = this.mms.mms.some((mm) => mmStateCode(k, mm) === MM_LIVE);
    for (const h of this.liveBonds()) {
      const users = this.bondField(h, 'users');
      if (users <= 0) continue;
      const mm = mmById(this.mms, this.bondField(h, 'mm'));
      if (!mm) continue;
      const kernel = mm.id === this.mms.initMm.id;
      if (kernel ? processesLive : mmStateCode(k, mm) === MM_LIVE) continue;
      const dev = this.cfg.devices[this.bondField(h, 'dev')];
      const sub = this.sva.notifier.get(this.bond(h));
      const gone = kernel ? 'no task is left that could unbind it' : `${mm.name} is ${mmState(k, mm)}: its task has exited and closed its fds`;
      const held = sub > 0 ? `; its MMU notifier subscription ${sub} is still registered, holding ${mm.name}'s mm_count` : '';
      const why = `struct iommu_sva of ${mm.name} on ${dev?.name ?? '?'} PASID ${this.bondField(h, 'pasid')} (users ${users}) was never unbound; ${gone}${held}`;
      k.report(unreferenced(k, this.bond(h), IOMMU_SVA.words, this.sva.track.addr(this.bond(h)), why));
    }
  }

  // ---- attaching I/O page tables (DMA and paging domains) ----

  /**
   * Point {dev, pasid} at an I/O page table (a DMA or paging domain's; PASID 0 is the device's own requests,
   * RID2PASID). `owner` is whose pages it maps (the isolation oracle's truth). 0 or -errno.
   */
  *attachTable(t: KTask, dev: DeviceInfo, pasid: number, table: MmStruct, owner: number): KGen<number> {
    const k = this.k;
    const boundAt = this.at(this.boundTable[dev.index] as number, pasid);
    yield* k.stepOn(t, `attach ${table.name} to ${dev.name} PASID ${pasid}`, [boundAt], () => {
      Atomics.store(k.i32, this.at(this.boundTable[dev.index] as number, pasid), owner);
    });
    const err = yield* this.ops(dev).default_domain_ops.set_dev_pasid(t, tableDomain(table), dev, pasid, undefined);
    if (err < 0) yield* k.stepOn(t, 'attach failed', [boundAt], () => void Atomics.store(k.i32, this.at(this.boundTable[dev.index] as number, pasid), 0));
    return err;
  }

  /** Take {dev, pasid} off its I/O page table: clear the entry, flush, and check nothing cached survives. */
  *detachTable(t: KTask, dev: DeviceInfo, pasid: number, table: MmStruct): KGen {
    const k = this.k;
    yield* this.ops(dev).remove_dev_pasid(t, dev, pasid, tableDomain(table), 'unbind');
    const boundAt = this.at(this.boundTable[dev.index] as number, pasid);
    yield* this.unboundStep(t, `detach ${table.name} from ${dev.name} PASID ${pasid}`, dev, pasid, [boundAt], (env) => {
      Atomics.store(k.i32, boundAt, 0);
      this.oracle.pasidUnbound(env.step, dev.index, dev.name, pasid, t.label);
    });
  }

  /**
   * A step that unbinds {dev, pasid} and has the oracle look for cached entries that outlive it: on the words
   * `words` and what the hardware's caches say the look reads — or, when a cache cannot say, on the fallback lock.
   */
  private unboundStep(t: KTask, label: string, dev: DeviceInfo, pasid: number, words: readonly number[], perform: (env: StepEnv) => void): KGen {
    const caches = this.oracle.pasidUnboundFootprint(dev.index, pasid);
    const footprint = (): Footprint | undefined => {
      const look = caches?.();
      return look && [...words, ...look];
    };
    return caches ? this.k.stepOn(t, label, footprint, perform) : this.k.step(t, label, perform);
  }

  /** An I/O page table changed in [start, end): flush what {dev, pasid} may cache of it. */
  *flushTable(t: KTask, dev: DeviceInfo, pasid: number, table: MmStruct, start: number, end: number): KGen {
    yield* this.ops(dev).default_domain_ops.iotlb_sync(t, tableDomain(table), dev, pasid, start, end);
  }

  // ---- the capability check and bind ----

  /** Every enabling check of a bind, without a PASID: 0, or -errno and why. */
  checks(dev: DeviceInfo, mm: MmStruct | undefined, flags: number): { err: number; why: string } {
    const c = dev.caps;
    const missing = [!c.pasid && 'PASID', !c.pri && 'PRI', !c.ats && 'ATS'].filter((x): x is string => typeof x === 'string');
    if (missing.length > 0) return { err: -ENODEV, why: `${dev.name} has no ${missing.join(', ')} capability` };
    if ((flags & ~(SVM_FLAG_PRIVATE_PASID | SVM_FLAG_SUPERVISOR_MODE)) !== 0) return { err: -EINVAL, why: `unknown flags 0x${flags.toString(16)}` };
    const supervisor = (flags & SVM_FLAG_SUPERVISOR_MODE) !== 0;
    if (supervisor && mm && mm.id !== this.mms.initMm.id) return { err: -EINVAL, why: 'SUPERVISOR_MODE binds init_mm, not a process mm' };
    if (supervisor && !dev.trusted) return { err: -EOPNOTSUPP, why: `${dev.name} is not trusted with the kernel address space` };
    return this.ops(dev).dev_enable_feat(dev, 'sva', flags);
  }

  /** iommu_sva_capable(dev, flags) — the same checks as a bind, with no PASID (seed 000). */
  *capable(t: KTask, dev: DeviceInfo, flags: number): KGen<BindResult> {
    const r = yield* this.bind(t, dev, undefined, flags);
    return r;
  }

  /**
   * iommu_sva_bind_device(dev, mm, flags): a handle (> 0) or -errno. With mm undefined, only the checks run
   * (the capability check). SUPERVISOR_MODE binds init_mm.
   */
  *bind(t: KTask, dev: DeviceInfo, mm: MmStruct | undefined, flags: number): KGen<BindResult> {
    return yield* this.k.fn.iommu_sva_bind_device(t, dev, mm, flags);
  }

  /** `share`: false for the planted bug no-handle-sharing (every bind a handle of its own). */
  private *impl_iommu_sva_bind_device(t: KTask, dev: DeviceInfo, mm: MmStruct | undefined, flags: number, share: boolean): KGen<BindResult> {
    const k = this.k;
    const c = this.checks(dev, mm, flags);
    if (c.err !== 0 || mm === undefined) {
      if (c.err !== 0 && mm !== undefined) yield* k.stepOn(t, `bind refused: ${errname(c.err)}`, [this.stats.addr('bind_failures')], () => this.stats.add('bind_failures'));
      return { ret: c.err, pasid: 0, why: c.why };
    }
    yield* mutex_lock(k, t, this.lock);
    try {
      return yield* this.bindLocked(t, dev, mm, flags, share);
    } finally {
      yield* mutex_unlock(k, t, this.lock);
    }
  }

  private *bindLocked(t: KTask, dev: DeviceInfo, mm: MmStruct, flags: number, share: boolean): KGen<BindResult> {
    const k = this.k;
    // Mainline: the mm's PASID first (iommu_alloc_mm_data), then an existing bond of (mm, dev) is shared.
    const early = this.freedAtUnbind(flags) ? 0 : yield* k.fn.iommu_alloc_mm_data(t, mm, dev, flags);
    if (early < 0) return yield* this.failed(t, early, `no free PASID for ${dev.name}`);
    // A second bind of the same mm to the same device shares the bond (iommu_sva_bind_device's refcount).
    if (share && (flags & SVM_FLAG_PRIVATE_PASID) === 0) {
      const shared = yield* this.findBond(t, dev, mm);
      if (shared > 0) return { ret: shared, pasid: this.bondField(shared, 'pasid'), why: 'shared bond' };
    }
    const handle = yield* k.stepOn(t, 'kzalloc(iommu_sva)', () => this.bondAllocFootprint(t), () => {
      for (let h = 1; h <= this.cfg.bonds; h++) {
        const b = this.bond(h);
        if (this.sva.used.get(b) !== 0) continue;
        this.sva.used.set(b, 1);
        setAllocTrack(k, t, this.sva.track.addr(b));
        return h;
      }
      return 0;
    });
    if (handle === 0) return yield* this.failed(t, -ENOMEM, 'no room for another bond');
    const pasid = early > 0 ? early : yield* k.fn.iommu_alloc_pasid(t, dev, mm, flags);
    if (pasid < 0) {
      yield* k.stepOn(t, 'kfree(iommu_sva)', [this.sva.used.addr(this.bond(handle))], () => void this.sva.used.WRITE_ONCE(this.bond(handle), 0));
      return yield* this.failed(t, pasid, `no free PASID for ${dev.name}`);
    }
    // The bond is whole before the notifier can see it: exit_mmap may run its release as soon as it is registered.
    const b0 = this.bond(handle);
    const sva = this.sva;
    const init = [sva.dev, sva.mm, sva.pasid, sva.users, sva.flags, sva.released, sva.domain].map((f) => f.addr(b0));
    yield* k.stepOn(t, 'iommu_sva: init', init, () => {
      const sva = this.sva;
      const b = this.bond(handle);
      sva.dev.set(b, dev.index + 1);
      sva.mm.set(b, mm.id + 1);
      sva.pasid.set(b, pasid);
      sva.users.set(b, 1);
      sva.flags.set(b, flags);
      sva.released.set(b, 0);
      sva.domain.set(b, 0);
    });
    let sub = 0;
    if (this.bondNotifier && mm.id !== this.mms.initMm.id) {
      sub = yield* mmu_notifier_register(k, t, this.notifiers, this.notifierOps, mm, handle);
      if (sub < 0) {
        if (this.freedAtUnbind(flags)) yield* k.fn.iommu_free_pasid(t, dev, mm, pasid, false);
        yield* k.stepOn(t, 'kfree(iommu_sva)', [this.sva.used.addr(this.bond(handle))], () => void this.sva.used.WRITE_ONCE(this.bond(handle), 0));
        return yield* this.failed(t, sub, 'mmu_notifier_register failed');
      }
    }
    const boundAt = this.at(this.boundTable[dev.index] as number, pasid);
    yield* k.stepOn(t, 'iommu_sva: bond', [this.sva.notifier.addr(this.bond(handle)), boundAt], () => {
      this.sva.notifier.set(this.bond(handle), sub);
      // From here on a DMA under {dev, pasid} belongs to mm.
      k.i32[this.at(this.boundTable[dev.index] as number, pasid)] = mm.id + 1;
    });
    const svm = this.svm[dev.index];
    if (svm) yield* svm.start_pasid(t, dev, pasid);
    const a = yield* this.svaDomains.iommu_sva_domain_attach(t, dev, mm, pasid, flags);
    if (a.err < 0) {
      yield* this.teardown(t, handle, dev, mm, pasid, false, false, false);
      // out_free_handle: the handle goes with the failed bind (its notifier's SRCU free, seed 000's per-bond one).
      if (sub > 0) yield* mmu_notifier_put(k, t, this.notifiers, sub);
      else yield* this.freeBond(t, handle);
      return yield* this.failed(t, a.err, `${this.ops(dev).driver} could not install PASID ${pasid}: ${a.why}`);
    }
    yield* k.stepOn(t, 'handle->domain = domain', [this.sva.domain.addr(this.bond(handle))], () => this.sva.domain.set(this.bond(handle), a.dom));
    yield* k.stepOn(t, 'iommu_sva: bound', [this.stats.addr('binds')], () => this.stats.add('binds'));
    return { ret: handle, pasid, why: 'bound' };
  }

  /** The live, unreleased, shared bond of (mm, dev) with one more user, or 0 (mainline: mm->iommu_mm->sva_handles). */
  private findBond(t: KTask, dev: DeviceInfo, mm: MmStruct): KGen<number> {
    return this.k.stepOn(t, 'iommu_sva_find_bond', () => this.findBondFootprint(), () => {
      const sva = this.sva;
      for (let h = 1; h <= this.cfg.bonds; h++) {
        const b = this.bond(h);
        if (sva.used.get(b) === 1 && sva.dev.get(b) === dev.index + 1 && sva.mm.get(b) === mm.id + 1 && (sva.flags.get(b) & SVM_FLAG_PRIVATE_PASID) === 0 && sva.released.get(b) === 0 && sva.users.get(b) > 0) {
          sva.users.set(b, sva.users.get(b) + 1);
          return h;
        }
      }
      return 0;
    });
  }

  /** What kzalloc(iommu_sva) touches: the used words up to the first free slot, which it takes and tracks. */
  private bondAllocFootprint(t: KTask): number[] {
    const out: number[] = [];
    for (let h = 1; h <= this.cfg.bonds; h++) {
      const b = this.bond(h);
      if (this.sva.used.get(b) !== 0) {
        out.push(read(this.sva.used.addr(b)));
        continue;
      }
      out.push(this.sva.used.addr(b));
      return allocTrackFootprint(this.k, t, this.sva.track.addr(b), out);
    }
    return out;
  }

  /**
   * What findBond reads: every bond's fields it tests (the scan stops at the first match, so past it the reads are
   * declared but not made) — and the users count it raises, of every bond that would match now.
   */
  private findBondFootprint(): number[] {
    const sva = this.sva;
    const out: number[] = [];
    for (let h = 1; h <= this.cfg.bonds; h++) {
      const b = this.bond(h);
      out.push(read(sva.used.addr(b)));
      if (sva.used.get(b) !== 1) continue;
      out.push(read(sva.dev.addr(b)), read(sva.mm.addr(b)), read(sva.flags.addr(b)), read(sva.released.addr(b)), sva.users.addr(b));
    }
    return out;
  }

  /** Words of every bond's fields `fields`, read: what a scan of the bond table reads. */
  private bondReads(fields: readonly ('used' | 'dev' | 'mm' | 'flags' | 'released' | 'users')[]): number[] {
    const out: number[] = [];
    for (let h = 1; h <= this.cfg.bonds; h++) {
      const b = this.bond(h);
      for (const f of fields) out.push(read(this.sva[f].addr(b)));
    }
    return out;
  }

  private *failed(t: KTask, err: number, why: string): KGen<BindResult> {
    yield* this.k.stepOn(t, `bind failed: ${errname(err)}`, [this.stats.addr('bind_failures')], () => this.stats.add('bind_failures'));
    return { ret: err, pasid: 0, why };
  }

  // ---- unbind ----

  /** iommu_sva_unbind_device(handle). */
  *unbind(t: KTask, handle: number): KGen {
    yield* this.k.fn.iommu_sva_unbind_device(t, handle);
  }

  private *impl_iommu_sva_unbind_device(t: KTask, handle: number): KGen {
    const k = this.k;
    yield* mutex_lock(k, t, this.lock);
    try {
      const put = [read(this.sva.used.addr(this.bond(handle))), this.sva.users.addr(this.bond(handle))];
      const last = yield* k.stepOn(t, 'iommu_sva: put bond', put, () => {
        const b = this.bond(handle);
        if (this.sva.used.get(b) !== 1) throw new Error(`iommu_sva_unbind_device: handle ${handle} is not bound`);
        const users = this.sva.users.get(b) - 1;
        this.sva.users.set(b, users);
        return users === 0;
      });
      if (!last) return;
      const dev = this.cfg.devices[this.bondField(handle, 'dev')] as DeviceInfo;
      const mm = this.mms.mms[this.bondField(handle, 'mm') - 1] ?? this.mms.initMm;
      const pasid = this.bondField(handle, 'pasid');
      const quarantine = yield* this.stopDevice(t, dev, pasid);
      // free=rcu|workqueue: a bond with a notifier keeps its PASID until free_notifier (a quarantined one is parked now).
      const deferred = !quarantine && this.freeDeferred() && this.sva.notifier.get(this.bond(handle)) > 0;
      yield* this.teardown(t, handle, dev, mm, pasid, quarantine, deferred);
    } finally {
      yield* mutex_unlock(k, t, this.lock);
    }
    const sub = this.sva.notifier.get(this.bond(handle));
    if (sub > 0) yield* mmu_notifier_put(k, t, this.notifiers, sub);
    else yield* this.freeBond(t, handle);
  }

  /** The teardown policy's part before the PASID entry goes: true when the PASID must be quarantined. */
  private *stopDevice(t: KTask, dev: DeviceInfo, pasid: number): KGen<boolean> {
    return yield* this.k.fn.iommu_sva_stop_device_pasid(t, dev, pasid);
  }

  /** drain: stop the device and wait for its DMA, then its page requests ("can basically take forever"). */
  private *stopDrain(t: KTask, dev: DeviceInfo, pasid: number): KGen<boolean> {
    const svm = this.svm[dev.index];
    if (!svm) return false;
    yield* svm.invalidate_pasid(t, dev, pasid);
    yield* this.ops(dev).drain_prq(t, dev, pasid);
    return false;
  }

  /** quarantine: wait a bounded time; a device that has not drained by then leaves its PASID quarantined. */
  private *stopQuarantine(t: KTask, dev: DeviceInfo, pasid: number): KGen<boolean> {
    const svm = this.svm[dev.index];
    if (!svm) return false;
    const drained = yield* svm.invalidate_pasid(t, dev, pasid, this.cfg.policies.drainTimeoutMs);
    if (!drained) return true;
    yield* this.ops(dev).drain_prq(t, dev, pasid);
    return false;
  }

  /** `bound`: false for the undoing of a bind whose attach failed (no bind was counted, so no unbind is). */
  private *teardown(t: KTask, handle: number, dev: DeviceInfo, mm: MmStruct, pasid: number, quarantine: boolean, deferred = false, bound = true): KGen {
    const k = this.k;
    const dom = this.sva.domain.get(this.bond(handle));
    if (dom !== 0) yield* this.svaDomains.iommu_sva_domain_detach(t, dom, dev, pasid);
    const boundAt = this.at(this.boundTable[dev.index] as number, pasid);
    const counted = [boundAt, ...(bound ? [this.stats.addr('unbinds')] : []), ...(quarantine ? [this.stats.addr('quarantined')] : [])];
    yield* this.unboundStep(t, quarantine ? 'iommu_sva: quarantine PASID' : 'iommu_sva: unbound', dev, pasid, counted, (env) => {
      Atomics.store(k.i32, boundAt, 0);
      this.oracle.pasidUnbound(env.step, dev.index, dev.name, pasid, t.label);
      if (bound) this.stats.add('unbinds');
      if (quarantine) this.stats.add('quarantined');
    });
    // pasidLife=mm: the PASID stays the mm's, for its next bind, until mm_pasid_drop.
    if (deferred || !this.freedAtUnbind(this.sva.flags.get(this.bond(handle)))) return;
    yield* this.k.fn.iommu_free_pasid(t, dev, mm, pasid, quarantine);
    // free=rcu|workqueue: free_notifier must not free it again.
    if (this.freeDeferred()) yield* k.stepOn(t, 'iommu_sva: PASID freed at unbind', [this.sva.pasid.addr(this.bond(handle))], () => this.sva.pasid.set(this.bond(handle), 0));
  }

  /** Policy free: the PASID of a bond with a notifier is freed from its free_notifier, not at unbind. */
  private freeDeferred(): boolean {
    return (this.cfg.policies.free ?? 'unbind') !== 'unbind';
  }

  /** The bond's memory goes after the notifier's SRCU grace period (mmu_notifier_put → free_notifier). */
  private *freeBond(t: KTask, handle: number): KGen {
    yield* this.k.stepOn(t, 'kfree(iommu_sva)', [this.sva.used.addr(this.bond(handle))], () => {
      this.sva.used.WRITE_ONCE(this.bond(handle), 0);
    });
  }

  /**
   * free=rcu|workqueue: the PASID the unbind left to the notifier goes (now, or to a kworker), then the bond. A
   * PASID that is the mm's (pasidLife=mm) was never the bond's to free: mm_pasid_drop frees it at __mmdrop.
   */
  private *freeBondAndPasid(t: KTask, handle: number): KGen {
    const pasid = this.bondField(handle, 'pasid');
    if (pasid > 0 && this.freedAtUnbind(this.sva.flags.get(this.bond(handle)))) {
      const dev = this.cfg.devices[this.bondField(handle, 'dev')] as DeviceInfo;
      const mm = this.mms.mms[this.bondField(handle, 'mm') - 1] ?? this.mms.initMm;
      yield* this.k.fn.iommu_free_pasid_deferred(t, dev, mm, pasid);
    }
    yield* this.freeBond(t, handle);
  }

  // ---- the mm's PASID (struct iommu_mm_data) ----

  /** The mm's struct iommu_mm_data slot (its word offset). */
  private mmDataOf(mm: MmStruct): number {
    return element(SVA_MM_DATA, this.k.mem.statics + this.mmData, mm.id);
  }

  /** The word holding the PASID mm's binds use on dev. */
  private devPasidAt(mm: MmStruct, dev: DeviceInfo): number {
    return this.k.mem.statics + this.devPasid + mm.id * this.cfg.devices.length + dev.index;
  }

  /**
   * iommu_alloc_mm_data (iommu_sva_lock held): mm->iommu_mm, kzalloc'd at the mm's first bind, its PASID
   * allocated, then published with smp_store_release — a reader that sees mm->iommu_mm sees its PASID. Placements
   * other than the system one scope PASIDs: a device outside the first one's scope gets the mm's PASID of its own.
   */
  private *impl_iommu_alloc_mm_data(t: KTask, mm: MmStruct, dev: DeviceInfo, flags: number): KGen<number> {
    const k = this.k;
    const data = this.mmDataOf(mm);
    const iommuMm = mm.view.iommu_mm.addr(mmBase(k, mm));
    const [published, known] = yield* k.stepOn(t, 'mm->iommu_mm', [read(iommuMm), read(this.devPasidAt(mm, dev))], () => [mm.view.iommu_mm.get(mmBase(k, mm)), k.i32[this.devPasidAt(mm, dev)] as number] as const);
    if (known > 0) return known;
    if (published === 0) {
      yield* k.stepOn(t, 'kzalloc(iommu_mm_data)', () => allocTrackFootprint(k, t, this.mmd.track.addr(data), [this.mmd.used.addr(data)]), () => {
        this.mmd.used.set(data, 1);
        setAllocTrack(k, t, this.mmd.track.addr(data));
      });
    }
    const pasid = yield* k.fn.iommu_alloc_pasid(t, dev, mm, flags);
    if (pasid < 0) {
      if (published === 0) yield* k.stepOn(t, 'kfree(iommu_mm_data)', [this.mmd.used.addr(data)], () => this.mmd.used.set(data, 0));
      return pasid;
    }
    const publish = published === 0 ? [this.devPasidAt(mm, dev), this.mmd.pasid.addr(data), iommuMm] : [this.devPasidAt(mm, dev)];
    yield* k.stepOn(t, published === 0 ? 'smp_store_release(&mm->iommu_mm, iommu_mm)' : 'iommu_mm: PASID in this scope', publish, () => {
      k.i32[this.devPasidAt(mm, dev)] = pasid;
      if (published !== 0) return;
      this.mmd.pasid.set(data, pasid);
      mm.view.iommu_mm.smp_store_release(mmBase(k, mm), mm.id + 1);
    });
    return pasid;
  }

  /**
   * mm_pasid_drop (pasidLife=mm; __mmdrop, which may run from an SRCU callback: nothing here sleeps): the mm's
   * PASIDs go back to their allocators and its iommu_mm_data is freed. Nobody else holds the mm: plain loads.
   */
  private *impl_mm_pasid_drop(t: KTask, mm: MmStruct): KGen {
    const k = this.k;
    if (mm.view.iommu_mm.get(mmBase(k, mm)) === 0) return;
    for (const dev of this.cfg.devices) {
      const pasid = k.i32[this.devPasidAt(mm, dev)] as number;
      if (pasid > 0) yield* k.fn.iommu_free_pasid(t, dev, mm, pasid, false);
    }
    const data = this.mmDataOf(mm);
    const dropped = [...this.cfg.devices.map((dev) => this.devPasidAt(mm, dev)), this.mmd.used.addr(data), this.mmd.pasid.addr(data), mm.view.iommu_mm.addr(mmBase(k, mm))];
    yield* k.stepOn(t, 'kfree(iommu_mm)', dropped, () => {
      for (const dev of this.cfg.devices) k.i32[this.devPasidAt(mm, dev)] = 0;
      this.mmd.used.set(data, 0);
      this.mmd.pasid.set(data, 0);
      mm.view.iommu_mm.WRITE_ONCE(mmBase(k, mm), 0);
    });
  }

  /** mm_get_enqcmd_pasid(mm): the PASID ENQCMD puts on the bus, 0 when the mm has none (reads only). */
  enqcmdPasid(mm: MmStruct): number {
    const k = this.k;
    const published = mm.view.iommu_mm.smp_load_acquire(mmBase(k, mm));
    return published === 0 ? 0 : this.mmd.pasid.READ_ONCE(element(SVA_MM_DATA, k.mem.statics + this.mmData, published - 1));
  }

  /** The PASID mm's binds use on dev now (0: none yet), for tests and the leak check. */
  mmPasidOn(mm: MmStruct, dev: DeviceInfo): number {
    return this.k.i32[this.devPasidAt(mm, dev)] as number;
  }

  // ---- page requests: the SVA domain's handler ----

  /** iommu_sva_handle_mm: the fault resolved against mm, as a CPU fault of the task would be; the response code. */
  private *impl_iommu_sva_handle_mm(t: KTask, mm: MmStruct, vpn: number, write: boolean): KGen<number> {
    const k = this.k;
    if (!(yield* k.fn.mmget_not_zero(t, mm))) return RESP_INVALID;
    yield* down_read(k, t, mm.mmapLock);
    const r = yield* k.fn.handle_mm_fault(t, mm, vpn, write);
    yield* up_read(k, t, mm.mmapLock);
    yield* k.fn.mmput(t, mm);
    return r === 'ok' ? RESP_SUCCESS : RESP_INVALID;
  }

  // ---- the SVA domain's MMU notifier (notifier=domain) ----

  /**
   * The bonds whose {device, PASID} the SVA domain of mm on `dom`'s IOMMU serves (the driver's domain->dev_pasids):
   * matched by (mm, IOMMU) from the bond's init on, so a PASID entry being installed is not missed. Perform only.
   */
  private bondsOf(t: KTask, mm: MmStruct, dom: number, unreleased: boolean): number[] {
    const iommu = objLoad(this.k, t, dom, DOM.iommu) - 1;
    const out: number[] = [];
    for (const h of this.liveBonds()) {
      const b = this.bond(h);
      const dev = this.cfg.devices[this.sva.dev.get(b) - 1];
      if (this.sva.mm.get(b) !== mm.id + 1 || dev?.iommu !== iommu || (this.sva.flags.get(b) & SVM_FLAG_PRIVATE_PASID) !== 0) continue;
      if (!unreleased || this.sva.released.get(b) === 0) out.push(h);
    }
    return out;
  }

  /** What bondsOf reads: the domain's IOMMU and the bond table. */
  private bondsOfFootprint(dom: number): number[] {
    return objectFootprint(this.k, dom, [DOM.iommu], [], this.bondReads(['used', 'dev', 'mm', 'flags', 'released']));
  }

  /** The domain notifier's release (the driver's mm release): every {device, PASID} of the domain stops walking mm. */
  *domainRelease(t: KTask, mm: MmStruct, dom: number): KGen {
    const k = this.k;
    const bonds = yield* k.stepOn(t, 'list_for_each_entry(dev_pasid, &domain->dev_pasids)', this.bondsOfFootprint(dom), () => this.bondsOf(t, mm, dom, true));
    for (const h of bonds) yield* k.fn.iommu_sva_mm_release(t, mm, h);
  }

  /**
   * The domain notifier's arch_invalidate_secondary_tlbs, from the TLB flush (flush_tlb_mm_range) — under the page
   * table lock for a migration, so nothing here may sleep: the range flushed for every {device, PASID} of the domain.
   */
  *domainInvalidate(t: KTask, mm: MmStruct, dom: number, start: number, end: number): KGen {
    const k = this.k;
    const bonds = yield* k.stepOn(t, 'list_for_each_entry(dev_pasid, &domain->dev_pasids)', this.bondsOfFootprint(dom), () => this.bondsOf(t, mm, dom, false));
    for (const h of bonds) yield* k.fn.iommu_sva_invalidate_range(t, mm, h, start, end);
  }

  // ---- the MMU notifier ----

  /**
   * mm is going away (exit_mmap): stop the hardware walking its page tables, keep the PASID until unbind. A core
   * step (like bind, unbind and handleIopf): an extension may replace it on the instance.
   */
  *release(t: KTask, mm: MmStruct, handle: number): KGen {
    yield* this.k.fn.iommu_sva_mm_release(t, mm, handle);
  }

  /** `flush`: false for the planted bug no-release-flush (the hardware keeps walking tables exit_mmap frees). */
  private *impl_iommu_sva_mm_release(t: KTask, mm: MmStruct, handle: number, flush: boolean): KGen {
    const k = this.k;
    const dev = this.cfg.devices[this.bondField(handle, 'dev')] as DeviceInfo;
    const pasid = this.bondField(handle, 'pasid');
    yield* k.stepOn(t, 'iommu_sva: released', [this.sva.released.addr(this.bond(handle)), this.stats.addr('releases')], () => {
      this.sva.released.WRITE_ONCE(this.bond(handle), 1);
      this.stats.add('releases');
    });
    const ops = this.ops(dev);
    const svm = this.svm[dev.index];
    // A driver whose mn_release tells the device driver first (releaseNotifiesDriver) calls its invalidate_ctx callback before tearing the context down.
    if (ops.releaseNotifiesDriver && svm) yield* svm.invalidate_pasid(t, dev, pasid, 0);
    if (flush) yield* ops.remove_dev_pasid(t, dev, pasid, svaDomain(mm, 0), 'release');
  }

  *invalidate(t: KTask, mm: MmStruct, handle: number, start: number, end: number): KGen {
    yield* this.k.fn.iommu_sva_invalidate_range(t, mm, handle, start, end);
  }

  /** The planted bug no-range-flush is the policy value that skips it (IOTLB and ATC outlive a munmap). */
  private *impl_iommu_sva_invalidate_range(t: KTask, mm: MmStruct, handle: number, start: number, end: number): KGen {
    const dev = this.cfg.devices[this.bondField(handle, 'dev')] as DeviceInfo;
    yield* this.ops(dev).default_domain_ops.iotlb_sync(t, svaDomain(mm, 0), dev, this.bondField(handle, 'pasid'), start, end);
  }

  // ---- the kernel address space (e37d5a2d60a3) ----

  /** iommu_mms_lock: guards iommu_sva_mms (a spinlock, as the TLB-flush side may not sleep). */
  private mmsLock: Spinlock | undefined;

  /** iommu_sva_invalidate_kva_range by name (defined once, with the kernel's other SVA functions). */
  private defineKvaFunctions(): void {
    if (this.k.fns.has('iommu_sva_invalidate_kva_range')) return;
    this.mmsLock = defineSpinlock(this.k, 'iommu_mms_lock');
    this.k.fns.define('iommu_sva_invalidate_kva_range', IOMMU_SVA_C, (t, start, end) => this.invalidateKvaRange(t, start, end));
  }

  /**
   * The mms on iommu_sva_mms: mainline adds an mm as it gets its first SVA domain and takes it off once its last
   * is gone (after the unbind detached it, whose teardown flushed the PASID) — here, an mm with an SVA domain on
   * some IOMMU, or (notifier=bond, no domains) a bond with users. init_mm is among them when the model's system
   * PASID binds it (seed 004; mainline has no kernel SVA any more).
   */
  private svaMms(): MmStruct[] {
    const ids = new Set<number>();
    for (const h of this.liveBonds()) if (this.bondField(h, 'users') > 0) ids.add(this.bondField(h, 'mm'));
    for (const mm of [this.mms.initMm, ...this.mms.mms]) {
      for (let i = 0; i < this.cfg.iommus; i++) if (this.svaDomains.domainOf(mm, i) !== 0) ids.add(mm.id);
    }
    return [...ids].sort((a, b) => a - b).flatMap((id) => mmById(this.mms, id) ?? []);
  }

  /**
   * iommu_sva_invalidate_kva_range: under iommu_mms_lock, every mm on iommu_sva_mms has its secondary TLBs drop
   * what they cached of kernel addresses [start, end) (end TLB_FLUSH_ALL: to the end of the kernel's) —
   * mmu_notifier_arch_invalidate_secondary_tlbs(iommu_mm->mm, ...), at that mm's kernel half, which is where its
   * IOMMUs cached the kernel tables' entries. init_mm, bound in supervisor mode, registers no notifier: its
   * bonds are flushed directly at the kernel address (iommu_sva_invalidate_range, the notifier's own flush).
   */
  private *invalidateKvaRange(t: KTask, start: number, end: number): KGen {
    const k = this.k;
    const lock = this.mmsLock as Spinlock;
    const last = end === TLB_FLUSH_ALL ? initMmPages(this.mms.pages) : end;
    const flags = yield* spin_lock_irqsave(k, t, lock);
    const mms = yield* k.step(t, 'list_for_each_entry(iommu_mm, &iommu_sva_mms, mm_list_elm)', () => this.svaMms());
    for (const mm of mms) {
      if (mm.id !== this.mms.initMm.id) {
        const base = kernelBase(mm.pages);
        yield* k.fn.__mmu_notifier_arch_invalidate_secondary_tlbs(t, mm, base + start, base + last);
        continue;
      }
      const handles = yield* k.step(t, 'init_mm bonds', () => this.liveBonds().filter((h) => this.bondField(h, 'mm') === mm.id && this.bondField(h, 'users') > 0));
      for (const h of handles) yield* k.fn.iommu_sva_invalidate_range(t, mm, h, start, last);
    }
    yield* spin_unlock_irqrestore(k, t, lock, flags);
  }
}
