// drivers/iommu/iommu.c (and struct iommu_domain / iommu_group of include/linux/iommu.h): domains of every type
// and the groups devices are attached through.
//
// struct iommu_domain (include/linux/iommu.h, drivers/iommu/iommu.c): what a device or a {device, PASID} is
// attached to. Blocked and identity domains translate nothing or everything; a DMA or paging (UNMANAGED)
// domain owns an I/O page table and one of its IOMMU instance's address spaces — a scarce resource on some
// IOMMUs (seed 001: Tegra has 4, later 128); an SVA domain shares a process's page tables and counts the
// binds that use it. Domains are slab objects, so a use after the last reference went is KASAN's to report.
// An I/O page table is an address space of the mm layer that no process owns: the hardware walks it exactly as
// it walks a process's (src/hw/unit.ts), and map/unmap write its PTEs.
//
// struct iommu_group and PASID-granular attach (seed 002; drivers/iommu/iommu.c): devices the IOMMU cannot
// isolate from each other share one group, its group->mutex, its current domain and group->pasid_array — the
// xarray of the domain attached to each PASID. iommu_attach_device / iommu_detach_device (and the _group
// forms) move the whole group between its default domain and another; iommu_attach_device_pasid,
// iommu_detach_device_pasid and iommu_replace_device_pasid work on one PASID; iommu_get_domain_for_dev_pasid
// is the lookup the page-fault path makes, under group->mutex or, as the seed asks ("RCU out of the
// xarray"), under rcu_read_lock() alone — which is only sound if nobody frees a domain a reader may still
// hold (see sva-domain.ts). The driver side (attach_dev, set_dev_pasid, remove_dev_pasid) is the IOMMU driver's
// ops table (ops.ts: iommu_ops, iommu_domain_ops), a vendor's (src/hw/<vendor>/).
// The entries of group->pasid_array are tagged as mainline's: a domain attached bare, or a struct
// iommu_attach_handle (an SVA bond's, an iommufd fault object's) naming its domain — iommu_attach_handle_get finds
// the handle of {group, PASID}. A user-space driver takes a group with iommu_group_claim_dma_owner: the blocking
// domain (0: the drivers' static blocked_domain) is attached while the group changes hands, the default domain
// again once it is released. Device lifetime: on BUS_NOTIFY_REMOVED_DEVICE (iommu_bus_notifier, from device_del —
// src/hw/pci/pci.ts) iommu_release_device runs the driver's release_device and then takes the device out of its
// group, the last one out freeing the group's default domain (the order 9ac8545199a1 fixed).
// The isolation oracle for PASID-tagged DMA lives here too: the group knows for which of its devices a PASID
// was attached, and a DMA from another member that reaches that domain is what the singleton rule ("PASID
// attach only for singleton groups", policy multiDevicePasid) exists to prevent — devices the IOMMU cannot
// isolate from each other reach whatever one of them has attached.
import type { KTask } from '../kernel/context.js';
import { devIommu, iopfFaultParam, iopfQueueOf } from './io-pgfault.js';
import { EBUSY, EINVAL, ENODEV, ENOENT, ENOMEM, ENOSPC, EOPNOTSUPP, EPERM } from '../kernel/errno.js';
import { callTrace, heldLocksLines, taskFinding } from '../kernel/findings.js';
import { defineIda, type Ida, ida_alloc_range, ida_free } from '../kernel/ida.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { type MmStruct, pteAddr } from '../kernel/mm/mm.js';
import { PTE_PRESENT, PTE_WRITE } from '../kernel/mm/pagetable.js';
import { pte_alloc_atomic } from '../kernel/mm/pgalloc.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import { rcu_init, rcu_read_lock, rcu_read_unlock } from '../kernel/rcu.js';
import { kasanAccess, kfree, kzalloc, objLoad, objStore } from '../kernel/slab.js';
import { element, struct, type ViewOf, word } from '../kernel/struct.js';
import { read } from '../runtime/footprint.js';
import { fieldRange, objectFootprint } from './footprints.js';
import { defineXArray, xa_cmpxchg, xa_erase, xa_load, xa_lock, xa_store, xa_unlock, type XArray } from '../kernel/xarray.js';
import { Oracle } from './oracle.js';
import { BLOCKED_DOMAIN, IOMMU_NO_PASID, type IommuDomain, type IommuOps } from './ops.js';
import type { DeviceInfo } from './types.js';

export type DomainType = 'blocked' | 'identity' | 'dma' | 'paging' | 'sva';
/** Where struct iommu_group keeps its mutex (words): what a NULL group's mutex_lock touches. */
const IOMMU_GROUP_MUTEX_OFFSET = 2;
export const DOMAIN_TYPES: readonly DomainType[] = ['blocked', 'identity', 'dma', 'paging', 'sva'];
/** DOM.type of an SVA domain. */
const SVA_TYPE = DOMAIN_TYPES.indexOf('sva') + 1;

/** struct iommu_domain (include/linux/iommu.h), a slab object: its fields are read with KASAN's check. */
export const IOMMU_DOMAIN = struct('iommu_domain', {
  type: word, // index in DOMAIN_TYPES + 1
  iommu: word, // model: IOMMU instance + 1 (0: none) — mainline reaches it through domain->owner / iommu_device
  asid: word, // model: address space in the instance + 1 (0: none) — the driver's domain id / ASID
  pgtable: word, // model: I/O page table, pool index + 1 (0: none) — the io-pgtable's root
  mm: word, // SVA: domain->mm, mm id + 1
  users: word, // SVA: domain->users, binds using it
  mapped: word, // model: live mappings
  flags: word, // model: SVM_FLAG_* of the bind that allocated an SVA domain (SUPERVISOR_MODE: init_mm)
  iopf_handler: word, // domain->iopf_handler of a domain that is not SVA: io-pgfault.ts's IOPF_HANDLERS index + 1 (0: none)
  iommufd_hwpt: word, // domain->iommufd_hwpt: the iommufd hw_pagetable object (core/iommufd) that owns the domain
});
/** Field offsets of struct iommu_domain, for objLoad / objStore. */
export const DOM = IOMMU_DOMAIN.offset;

export interface DomainConfig {
  readonly iommus: number;
  /** Address spaces each IOMMU instance has (seed 001: 4 or 128). */
  readonly addressSpaces: number;
  /** I/O page tables for DMA and paging domains (address spaces of the mm layer no process uses). */
  readonly pageTables: readonly MmStruct[];
  /** Name of instance i, for errors (the unit's name as its driver prints it). */
  unitName(i: number): string;
  /** The mm of an id (an SVA domain's domain->mm, for the driver that installs it); absent: none known. */
  mmOf?(id: number): MmStruct | undefined;
}

export interface DomainAlloc {
  /** The domain (a slab object), or 0. */
  readonly dom: number;
  /** 0 or -errno. */
  readonly err: number;
  readonly why: string;
}

export class Domains {
  private readonly spaces: Ida[];
  private readonly tables: Ida;
  /** struct iommu_domain's accessors, for the drivers' plain loads (handle). */
  private readonly domain: ViewOf<typeof IOMMU_DOMAIN>;

  constructor(
    private readonly k: Kernel,
    readonly cfg: DomainConfig,
  ) {
    // A domain that is never freed is kmemleak's to report (its struct); its address space and table go with it.
    this.spaces = Array.from({ length: cfg.iommus }, (_, i) =>
      defineIda(k, `${cfg.unitName(i)} address spaces`, Math.max(1, cfg.addressSpaces), { leakCheck: false }),
    );
    this.tables = defineIda(k, 'io page tables', Math.max(1, cfg.pageTables.length), { leakCheck: false });
    this.domain = k.view(IOMMU_DOMAIN);
    k.fns.define('iommu_domain_alloc', IOMMU_C, (t, type, iommu, mm, flags) => this.allocDomain(t, type, iommu, mm, flags ?? 0));
    k.fns.define('iommu_domain_free', IOMMU_C, (t, dom) => this.freeDomain(t, dom));
    k.fns.define('iommu_map', IOMMU_C, (t, dom, iova, pfn, write) => this.mapPage(t, dom, iova, pfn, write));
    k.fns.define('iommu_unmap', IOMMU_C, (t, dom, iova) => this.unmapPage(t, dom, iova));
  }

  /** iommu_domain_alloc(type) on IOMMU instance `iommu`; an SVA domain names its mm (and the bind's flags). */
  alloc(t: KTask, type: DomainType, iommu: number, mm?: MmStruct, flags = 0): KGen<DomainAlloc> {
    return this.k.fn.iommu_domain_alloc(t, type, iommu, mm, flags);
  }

  private *allocDomain(t: KTask, type: DomainType, iommu: number, mm: MmStruct | undefined, flags: number): KGen<DomainAlloc> {
    const k = this.k;
    if (iommu < 0 || iommu >= this.cfg.iommus) return { dom: 0, err: -EINVAL, why: `no IOMMU instance ${iommu}` };
    const paging = type === 'dma' || type === 'paging';
    let asid = -1;
    let table = -1;
    if (paging) {
      asid = yield* ida_alloc_range(k, t, this.spaces[iommu] as Ida, 0, this.cfg.addressSpaces - 1);
      if (asid < 0) {
        return { dom: 0, err: -ENOSPC, why: `${this.cfg.unitName(iommu)}: all ${this.cfg.addressSpaces} address spaces are in use` };
      }
      table = yield* ida_alloc_range(k, t, this.tables, 0, this.cfg.pageTables.length - 1);
      if (table < 0) {
        yield* ida_free(k, t, this.spaces[iommu] as Ida, asid);
        return { dom: 0, err: -ENOMEM, why: 'no I/O page table left' };
      }
    }
    const dom = yield* kzalloc(k, t, IOMMU_DOMAIN.words, 'GFP_KERNEL', 'iommu_domain');
    if (dom === 0) {
      // Unwind what was taken for it (found by failslab: these leaked).
      if (asid >= 0) yield* ida_free(k, t, this.spaces[iommu] as Ida, asid);
      if (table >= 0) yield* ida_free(k, t, this.tables, table);
      return { dom: 0, err: -ENOMEM, why: 'kzalloc(iommu_domain) failed' };
    }
    const init = objectFootprint(k, dom, [], [DOM.type, DOM.iommu, DOM.asid, DOM.pgtable, DOM.mm, DOM.flags]);
    if (table >= 0) init.push(...this.tableWords(this.cfg.pageTables[table] as MmStruct));
    yield* k.stepOn(t, `iommu_domain_alloc(${type})`, init, () => {
      objStore(k, t, dom, DOM.type, DOMAIN_TYPES.indexOf(type) + 1);
      objStore(k, t, dom, DOM.iommu, iommu + 1);
      objStore(k, t, dom, DOM.asid, asid + 1);
      objStore(k, t, dom, DOM.pgtable, table + 1);
      objStore(k, t, dom, DOM.mm, mm ? mm.id + 1 : 0);
      objStore(k, t, dom, DOM.flags, flags);
      if (table >= 0) this.clearTable(this.cfg.pageTables[table] as MmStruct);
    });
    // iommu_sva_domain_alloc's mmgrab(mm): domain->mm outlives every user of the domain, whatever the mm's
    // own exit does (only where the model's mms have a lifecycle — cfg.mmOf; the domains preset's are ids).
    if (type === 'sva' && mm && this.cfg.mmOf) yield* k.fn.mmgrab(t, mm);
    return { dom, err: 0, why: '' };
  }

  /** iommu_domain_free(): its address space and page table go back; the memory is freed. */
  free(t: KTask, dom: number): KGen {
    return this.k.fn.iommu_domain_free(t, dom);
  }

  private *freeDomain(t: KTask, dom: number): KGen {
    const k = this.k;
    const fields = objectFootprint(k, dom, [DOM.iommu, DOM.asid, DOM.pgtable, DOM.type, DOM.mm]);
    const [iommu, asid, table, mmId] = yield* k.stepOn(t, 'iommu_domain_free', fields, () => [objLoad(k, t, dom, DOM.iommu) - 1, objLoad(k, t, dom, DOM.asid) - 1, objLoad(k, t, dom, DOM.pgtable) - 1, objLoad(k, t, dom, DOM.type) === SVA_TYPE ? objLoad(k, t, dom, DOM.mm) - 1 : -1] as const);
    // if (domain->type == IOMMU_DOMAIN_SVA) mmdrop(domain->mm): the alloc's mmgrab.
    const mm = mmId >= 0 ? this.cfg.mmOf?.(mmId) : undefined;
    if (mm) yield* k.fn.mmdrop(t, mm);
    if (asid >= 0) yield* ida_free(k, t, this.spaces[iommu] as Ida, asid);
    if (table >= 0) yield* ida_free(k, t, this.tables, table);
    yield* kfree(k, t, dom);
  }

  /**
   * dom as a driver sees it on attach (0: the blocking domain). Its fields are read when the driver reads them,
   * as the hardware-facing code does: plain loads, no KASAN check (the driver's own step does that).
   */
  handle(dom: number): IommuDomain {
    if (dom === 0) return BLOCKED_DOMAIN;
    const d = this.domain;
    const cfg = this.cfg;
    return {
      obj: dom,
      get flags(): number {
        return d.flags.get(dom);
      },
      get type(): DomainType {
        return DOMAIN_TYPES[d.type.get(dom) - 1] ?? 'blocked';
      },
      get mm(): MmStruct | undefined {
        const table = d.pgtable.get(dom) - 1;
        if (table >= 0) return cfg.pageTables[table];
        const mm = d.mm.get(dom) - 1;
        return mm >= 0 ? cfg.mmOf?.(mm) : undefined;
      },
    };
  }

  /** The words handle(dom).mm reads, appended to `out` (a hardware step's footprint declares them). */
  mmReads(dom: number, out: number[]): void {
    if (dom === 0) return;
    out.push(this.domain.pgtable.addr(dom));
    if (this.domain.pgtable.get(dom) - 1 < 0) out.push(this.domain.mm.addr(dom));
  }

  /** handle(dom), or undefined for 0 (set_dev_pasid's `old`: nothing was attached). */
  handleOrNone(dom: number): IommuDomain | undefined {
    return dom === 0 ? undefined : this.handle(dom);
  }

  /** The domain's type (a KASAN-checked read: the caller must hold a reference). */
  type(t: KTask, dom: number): DomainType {
    return DOMAIN_TYPES[objLoad(this.k, t, dom, DOM.type) - 1] ?? 'blocked';
  }

  /** The address space the hardware walks for dom: its I/O page table, or the SVA domain's mm id. */
  pageTable(t: KTask, dom: number): MmStruct | undefined {
    const table = objLoad(this.k, t, dom, DOM.pgtable) - 1;
    return table >= 0 ? this.cfg.pageTables[table] : undefined;
  }

  /** iommu_map(domain, iova, paddr): one page. */
  map(t: KTask, dom: number, iova: number, pfn: number, write: boolean): KGen<number> {
    return this.k.fn.iommu_map(t, dom, iova, pfn, write);
  }

  private mapPage(t: KTask, dom: number, iova: number, pfn: number, write: boolean): KGen<number> {
    const k = this.k;
    return k.step(t, `iommu_map(iova ${iova})`, () => {
      const pt = this.pageTable(t, dom);
      if (!pt || iova < 0 || iova >= pt.pages) return -EINVAL;
      if (!pte_alloc_atomic(k, t, pt, iova)) return -ENOMEM;
      const at = pteAddr(k, pt, iova);
      Atomics.store(k.i32, at, (pfn << 2) | PTE_PRESENT | (write ? PTE_WRITE : 0));
      objStore(k, t, dom, DOM.mapped, objLoad(k, t, dom, DOM.mapped) + 1);
      return 0;
    });
  }

  /**
   * alloc_iova + iommu_map in one step (the IOVA allocator and the page table under the domain's lock): the
   * lowest free IOVA, mapped to pfn, or -ENOSPC.
   */
  *mapAny(t: KTask, dom: number, pfn: number, write: boolean): KGen<number> {
    const k = this.k;
    return yield* k.step(t, 'alloc_iova + iommu_map', () => {
      const pt = this.pageTable(t, dom);
      if (!pt) return -EINVAL;
      for (let v = 0; v < pt.pages; v++) {
        const at = pteAddr(k, pt, v);
        if (((k.i32[at] as number) & PTE_PRESENT) !== 0) continue;
        if (!pte_alloc_atomic(k, t, pt, v)) return -ENOMEM;
        Atomics.store(k.i32, at, (pfn << 2) | PTE_PRESENT | (write ? PTE_WRITE : 0));
        objStore(k, t, dom, DOM.mapped, objLoad(k, t, dom, DOM.mapped) + 1);
        return v;
      }
      return -ENOSPC;
    });
  }

  /** iommu_unmap(domain, iova): clears the PTE; the caller flushes the IOTLB and ATC of every attachment. */
  unmap(t: KTask, dom: number, iova: number): KGen<number> {
    return this.k.fn.iommu_unmap(t, dom, iova);
  }

  private unmapPage(t: KTask, dom: number, iova: number): KGen<number> {
    const k = this.k;
    // The page table is the domain's (domain->pgtable, read under the step).
    const words = () => {
      const pt = this.cfg.pageTables[(k.i32[dom + DOM.pgtable] as number) - 1];
      const fp = objectFootprint(k, dom, [DOM.pgtable], [DOM.mapped]);
      if (pt && iova >= 0 && iova < pt.pages) fp.push(pteAddr(k, pt, iova));
      return fp;
    };
    return k.stepOn(t, `iommu_unmap(iova ${iova})`, words, () => {
      const pt = this.pageTable(t, dom);
      if (!pt || iova < 0 || iova >= pt.pages) return -EINVAL;
      const at = pteAddr(k, pt, iova);
      if ((Atomics.load(k.i32, at) & PTE_PRESENT) === 0) return -EINVAL;
      Atomics.store(k.i32, at, 0);
      objStore(k, t, dom, DOM.mapped, objLoad(k, t, dom, DOM.mapped) - 1);
      return 0;
    });
  }

  /** The PTE words clearTable writes. */
  private tableWords(pt: MmStruct): number[] {
    return fieldRange(pteAddr(this.k, pt, 0), pt.pages);
  }

  private clearTable(pt: MmStruct): void {
    const a = pteAddr(this.k, pt, 0);
    this.k.i32.fill(0, a, a + pt.pages);
  }
}

/**
 * The kernel's XA_ZERO_ENTRY: a reserved slot. Attach reserves the PASID with it and stores the domain only
 * once the driver has set it up ("The new domain cannot be visible until the operation succeeds as we cannot
 * tolerate PRIs becoming concurrently queued and then failing attach"); a lookup reads it as NULL. No slab
 * object lives at word 1, so it cannot be mistaken for a domain.
 */
export const XA_ZERO_ENTRY = 1;

/**
 * struct iommu_attach_handle (include/linux/iommu.h): what a PASID user (an SVA bond's struct iommu_sva, an
 * iommufd fault object) attaches with, so that the fault path finds its user from {device, PASID}. A slab object
 * whose first word is the handle; the core sets its domain at attach.
 */
export const IOMMU_ATTACH_HANDLE = struct('iommu_attach_handle', {
  domain: word,
});

/**
 * The tag of a group->pasid_array entry (mainline's xa_tag_pointer): the entry is a domain attached without a
 * handle, or an attach handle naming its domain. Tagged as (object << 1) | tag, so that no entry is
 * XA_ZERO_ENTRY (1) and none is 0.
 */
export const IOMMU_PASID_ARRAY_DOMAIN = 0;
export const IOMMU_PASID_ARRAY_HANDLE = 1;
export type PasidArrayTag = typeof IOMMU_PASID_ARRAY_DOMAIN | typeof IOMMU_PASID_ARRAY_HANDLE;

/** iommu_make_pasid_array_entry's tagging (the handle's domain is set by the caller, in a step). */
export function pasidArrayEntry(obj: number, tag: PasidArrayTag): number {
  return obj * 2 + tag;
}

/** xa_pointer_tag(entry). */
export function pasidArrayTag(entry: number): PasidArrayTag {
  return (entry & 1) as PasidArrayTag;
}

/** xa_untag_pointer(entry): the domain or the handle. */
export function pasidArrayObject(entry: number): number {
  return entry >>> 1;
}

export { IOMMU_NO_PASID } from './ops.js';

/** struct device as the group layer sees it: the one DeviceInfo of the model (the name stays for its importers). */
export type GroupDevice = DeviceInfo;

/** Policy "domain-for-PASID lookup" (DESIGN.md): under group->mutex, or RCU out of the xarray. */
export type PasidLookup = 'mutex' | 'rcu';
export const PASID_LOOKUPS: readonly PasidLookup[] = ['mutex', 'rcu'];
/** Policy "PASID attach on multi-device groups": refused (the kernel's choice) or allowed (every device). */
export type MultiDevicePasid = 'refused' | 'allowed';
export const MULTI_DEVICE_PASID: readonly MultiDevicePasid[] = ['refused', 'allowed'];

export interface GroupPolicies {
  readonly lookup: PasidLookup;
  readonly multiDevicePasid: MultiDevicePasid;
}

export interface GroupsConfig {
  readonly devices: readonly GroupDevice[];
  /** The devices of each group, as indices into `devices`; every device in exactly one group. */
  readonly groups: readonly (readonly number[])[];
  /** max_pasids of every device: PASIDs 1 .. maxPasids-1 can be attached (the pasid_array's capacity). */
  readonly maxPasids: number;
  readonly policies: GroupPolicies;
}

export interface IommuGroup {
  readonly id: number;
  readonly mutex: Mutex;
  readonly pasidArray: XArray;
  readonly devices: readonly GroupDevice[];
}

/** struct iommu_group's domains (static): the one attached now (0: blocked), and the default domain. */
export const IOMMU_GROUP = struct('iommu_group', {
  domain: word, // 0: the blocking domain (the drivers' static blocked_domain), or nothing attached
  default_domain: word,
  owner: word, // a DMA owner other than the DMA API (VFIO, iommufd): its cookie, 0: none
  owner_cnt: word,
});

// Nominal source lines of the WARN_ONs below (the function is what a reader needs).
const DETACH_WARN = 'drivers/iommu/iommu.c:2207';
const DETACH_PASID_WARN = 'drivers/iommu/iommu.c:3436';
const REVERT_WARN = 'drivers/iommu/iommu.c:3361';
const RELEASE_WARN = 'drivers/iommu/iommu.c:627';
const RELEASE_OWNER_WARN = 'drivers/iommu/iommu.c:3272';

/** WARN_ON(cond) as the kernel prints it (the run goes on, as the kernel's does): kind `iommu`, not an oops. */
export function iommuWarn(k: Kernel, t: KTask, site: string, fn: string, why: string): void {
  const title = `WARNING: CPU: 0 PID: ${t.pid} at ${site} ${fn}`;
  const body = [
    `Comm: ${t.comm} Not tainted (iommu-sim)`,
    `RIP: 0010:${fn}`,
    `iommu-sim: ${why}`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('iommu', t, t.lastStep, title, body));
}

const IOMMU_C = 'drivers/iommu/iommu.c';

/** A lookup's user reference, taken inside the lookup's section (seed 002's iommu_sva_domain_get_user). */
export type DomainGet = (t: KTask, dom: number) => KGen<boolean>;

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    __iommu_group_set_default_domain(t: KTask, g: IommuGroup, dom: number): KGen<number>;
    iommu_attach_device(t: KTask, dom: number, dev: DeviceInfo): KGen<number>;
    iommu_attach_group(t: KTask, dom: number, g: IommuGroup): KGen<number>;
    iommu_detach_device(t: KTask, dom: number, dev: DeviceInfo): KGen;
    iommu_detach_group(t: KTask, dom: number, g: IommuGroup): KGen;
    /** A user-space driver takes the group (its cookie ≠ 0): blocked while it changes hands; -EBUSY, -EPERM. */
    iommu_group_claim_dma_owner(t: KTask, g: IommuGroup, owner: number): KGen<number>;
    /** The owner lets go: the group goes back to its default domain. */
    iommu_group_release_dma_owner(t: KTask, g: IommuGroup): KGen;
    /** iommu_group_release: the last device out; the group's default domain is freed, nothing is attached. */
    iommu_group_release(t: KTask, g: IommuGroup): KGen;
    /** `handle`: an iommu_attach_handle (a slab object) the entry names, or 0 (the domain itself, untagged). */
    iommu_attach_device_pasid(t: KTask, dom: number, dev: DeviceInfo, pasid: number, handle?: number): KGen<number>;
    iommu_replace_device_pasid(t: KTask, dom: number, dev: DeviceInfo, pasid: number, handle?: number): KGen<number>;
    /** The handle attached to {group, pasid}: -ENOENT when none (or a bare domain), -EBUSY when its domain is not of `type`. */
    iommu_attach_handle_get(t: KTask, g: IommuGroup, pasid: number, type?: DomainType): KGen<number>;
    iommu_detach_device_pasid(t: KTask, dom: number, dev: DeviceInfo, pasid: number): KGen;
    /** The group's RID attach with a handle (iommufd's): the handle is the pasid_array's IOMMU_NO_PASID entry. */
    iommu_attach_group_handle(t: KTask, dom: number, g: IommuGroup, handle: number): KGen<number>;
    /** Replace the group's domain and handle at once (no blocked window); the group must be owned (iommufd's). */
    iommu_replace_group_handle(t: KTask, g: IommuGroup, dom: number, handle: number): KGen<number>;
    iommu_detach_group_handle(t: KTask, dom: number, g: IommuGroup): KGen;
    /** dev->iommu_group (no reference is counted: the model's groups live as long as the run). */
    iommu_group_get(dev: DeviceInfo): IommuGroup;
    iommu_get_domain_for_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, type?: DomainType, get?: DomainGet): KGen<number>;
    /** The device leaves its group and the IOMMU core (BUS_NOTIFY_REMOVED_DEVICE). */
    iommu_release_device(t: KTask, dev: DeviceInfo): KGen;
    /** The driver lets go of the device (ops->release_device), under group->mutex. */
    iommu_deinit_device(t: KTask, dev: DeviceInfo): KGen;
    /** The device leaves its group's list; the last one out releases the group and frees its domains. */
    iommu_group_remove_device(t: KTask, dev: DeviceInfo): KGen;
    iommu_group_add_device(t: KTask, dev: DeviceInfo): KGen;
    /** iommu_domain_alloc(type) on IOMMU instance `iommu` (iommu_paging_domain_alloc / iommu_sva_domain_alloc). */
    iommu_domain_alloc(t: KTask, type: DomainType, iommu: number, mm?: MmStruct, flags?: number): KGen<DomainAlloc>;
    iommu_domain_free(t: KTask, dom: number): KGen;
    /** iommu_map(domain, iova, paddr): one page; 0 or -errno. */
    iommu_map(t: KTask, dom: number, iova: number, pfn: number, write: boolean): KGen<number>;
    /** iommu_unmap(domain, iova): the caller flushes the IOTLB and ATC of every attachment. */
    iommu_unmap(t: KTask, dom: number, iova: number): KGen<number>;
    iommu_get_domain_for_dev(t: KTask, dev: DeviceInfo): KGen<number>;
    /** iommu_bus_notifier(nb, action, dev): the IOMMU core's block on the PCI bus's notifier chain. */
    iommu_bus_notifier(t: KTask, action: number, dev: DeviceInfo): KGen<number>;
  }
}

/** include/linux/device/bus.h: the bus notifier's events the IOMMU core acts on. */
export const BUS_NOTIFY_ADD_DEVICE = 0x00000001;
export const BUS_NOTIFY_REMOVED_DEVICE = 0x00000003;
const NOTIFY_DONE = 0;

export class IommuGroups {
  readonly groups: readonly IommuGroup[];
  private readonly groupOfDev: number[];
  private readonly words: number;
  private readonly grp: ViewOf<typeof IOMMU_GROUP>;
  /** Per device: 1 once removed from its group (zeroed memory: every device starts in its group). */
  private readonly removed: number;
  /** Per device: the domain its driver's per-device data names (model: info->domain / master->domain). */
  private readonly attached: number;
  /** Per group and PASID: a bit per member (its place in the group) for which the PASID was attached. */
  private readonly owners: number;
  private readonly ops: (IommuOps | undefined)[] = [];
  /** The model's oracles (one per kernel): the group gives the isolation oracle what it knows. */
  private readonly oracle: Oracle;

  constructor(
    private readonly k: Kernel,
    private readonly domains: Domains,
    readonly cfg: GroupsConfig,
  ) {
    if (!Number.isInteger(cfg.maxPasids) || cfg.maxPasids < 2)
      throw new RangeError(`iommu groups: maxPasids must be ≥ 2, got ${cfg.maxPasids}`);
    rcu_init(k);
    this.groupOfDev = cfg.devices.map(() => -1);
    cfg.groups.forEach((members, g) => {
      for (const d of members) {
        if (this.groupOfDev[d] !== -1 || cfg.devices[d] === undefined)
          throw new RangeError(`iommu groups: device ${d} is in no or two groups`);
        this.groupOfDev[d] = g;
      }
    });
    if (this.groupOfDev.some((g) => g < 0)) throw new RangeError('iommu groups: every device must be in a group');
    this.words = k.statics.alloc(cfg.groups.length * IOMMU_GROUP.words, 'iommu_group');
    this.grp = k.struct(IOMMU_GROUP);
    this.removed = k.statics.alloc(cfg.devices.length, 'iommu_group devices');
    this.attached = k.statics.alloc(cfg.devices.length, 'dev_iommu domain');
    this.owners = k.statics.alloc(cfg.groups.length * cfg.maxPasids, 'iommu_group pasid owners');
    this.oracle = Oracle.of(k);
    this.groups = cfg.groups.map((members, id) => {
      // One lockdep class for every group's mutex, as the kernel initialises them all in one place.
      const mutex = defineMutex(k, '&group->mutex');
      // group->mutex serialises the writers: its holder may read the array without RCU.
      const pasidArray = defineXArray(k, 'group->pasid_array', cfg.maxPasids, { protectedBy: [mutex] });
      return { id, mutex, pasidArray, devices: members.map((d) => cfg.devices[d] as GroupDevice) };
    });
    this.defineFunctions();
  }

  /** The functions of iommu.c by kernel name; the seed-002 policies pick their implementations. */
  private defineFunctions(): void {
    const fns = this.k.fns;
    const { lookup, multiDevicePasid } = this.cfg.policies;
    fns.define('__iommu_group_set_default_domain', IOMMU_C, (t, g, dom) => this.impl_iommu_setup_default_domain(t, g, dom));
    fns.define('iommu_attach_device', IOMMU_C, (t, dom, dev) => this.impl_iommu_attach_device(t, dom, dev));
    fns.define('iommu_attach_group', IOMMU_C, (t, dom, g) => this.impl_iommu_attach_group(t, dom, g));
    fns.define('iommu_detach_device', IOMMU_C, (t, dom, dev) => this.impl_iommu_detach_device(t, dom, dev));
    fns.define('iommu_detach_group', IOMMU_C, (t, dom, g) => this.impl_iommu_detach_group(t, dom, g));
    fns.define('iommu_group_claim_dma_owner', IOMMU_C, (t, g, owner) => this.impl_iommu_group_claim_dma_owner(t, g, owner));
    fns.define('iommu_group_release_dma_owner', IOMMU_C, (t, g) => this.impl_iommu_group_release_dma_owner(t, g));
    fns.define('iommu_group_release', IOMMU_C, (t, g) => this.freeGroupDomains(t, g));
    fns.definePolicy('iommu_attach_device_pasid', IOMMU_C, 'multiDevicePasid', multiDevicePasid, {
      refused: (t, dom, dev, pasid, handle) => this.impl_iommu_attach_device_pasid(t, dom, dev, pasid, false, handle ?? 0),
      allowed: (t, dom, dev, pasid, handle) => this.impl_iommu_attach_device_pasid(t, dom, dev, pasid, true, handle ?? 0),
    });
    fns.definePolicy('iommu_replace_device_pasid', IOMMU_C, 'multiDevicePasid', multiDevicePasid, {
      refused: (t, dom, dev, pasid, handle) => this.impl_iommu_replace_device_pasid(t, dom, dev, pasid, false, handle ?? 0),
      allowed: (t, dom, dev, pasid, handle) => this.impl_iommu_replace_device_pasid(t, dom, dev, pasid, true, handle ?? 0),
    });
    fns.define('iommu_release_device', IOMMU_C, (t, dev) => this.impl_iommu_release_device(t, dev));
    fns.define('iommu_deinit_device', IOMMU_C, (t, dev) => this.impl_iommu_deinit_device(t, dev));
    fns.define('iommu_group_remove_device', IOMMU_C, (t, dev) => this.impl_iommu_group_remove_device(t, dev));
    fns.define('iommu_group_add_device', IOMMU_C, (t, dev) => this.impl_iommu_group_add_device(t, dev));
    fns.define('iommu_get_domain_for_dev', IOMMU_C, (t, dev) => this.impl_iommu_get_domain_for_dev(t, dev));
    fns.define('iommu_bus_notifier', IOMMU_C, (t, action, dev) => this.impl_iommu_bus_notifier(t, action, dev));
    fns.define('iommu_attach_handle_get', IOMMU_C, (t, g, pasid, type) => this.impl_iommu_attach_handle_get(t, g, pasid, type));
    fns.define('iommu_detach_device_pasid', IOMMU_C, (t, dom, dev, pasid) => this.impl_iommu_detach_device_pasid(t, dom, dev, pasid));
    fns.defineSync('iommu_group_get', IOMMU_C, (dev) => this.groupOf(dev));
    fns.define('iommu_attach_group_handle', IOMMU_C, (t, dom, g, handle) => this.impl_iommu_attach_group_handle(t, dom, g, handle));
    fns.define('iommu_replace_group_handle', IOMMU_C, (t, g, dom, handle) => this.impl_iommu_replace_group_handle(t, g, dom, handle));
    fns.define('iommu_detach_group_handle', IOMMU_C, (t, dom, g) => this.impl_iommu_detach_group_handle(t, dom, g));
    fns.definePolicy('iommu_get_domain_for_dev_pasid', IOMMU_C, 'lookup', lookup, {
      mutex: (t, dev, pasid, type, get) => this.impl_iommu_get_domain_for_dev_pasid(false, t, dev, pasid, type, get),
      rcu: (t, dev, pasid, type, get) => this.impl_iommu_get_domain_for_dev_pasid(true, t, dev, pasid, type, get),
    });
  }

  /** iommu_device_register: the driver of IOMMU instance `iommu` (at declaration, in every thread). */
  registerIommu(iommu: number, ops: IommuOps): void {
    this.ops[iommu] = ops;
  }

  /** dev->iommu_group. */
  groupOf(dev: GroupDevice): IommuGroup {
    return this.groups[this.groupOfDev[dev.index] ?? -1] as IommuGroup;
  }

  /** g's struct iommu_group (its word offset). */
  private gp(g: IommuGroup): number {
    return element(IOMMU_GROUP, this.k.mem.statics + this.words, g.id);
  }

  private opsOf(dev: GroupDevice): IommuOps | undefined {
    return this.ops[dev.iommu];
  }

  /** The devices in the group now (the caller holds group->mutex, which guards membership). */
  private members(g: IommuGroup): GroupDevice[] {
    const i32 = this.k.i32;
    return g.devices.filter((d) => (i32[this.k.mem.statics + this.removed + d.index] as number) === 0);
  }

  // ---- membership ----

  /** iommu_group_remove_device (k.fn): dev leaves its group; the group may become a singleton, or empty. */
  *iommu_group_remove_device(t: KTask, dev: GroupDevice): KGen {
    yield* this.k.fn.iommu_group_remove_device(t, dev);
  }

  /**
   * dev leaves the group's list; the last one out releases the group (iommu_group_release: its default domain
   * is freed, nothing is attached any more).
   */
  private *impl_iommu_group_remove_device(t: KTask, dev: GroupDevice): KGen {
    const k = this.k;
    const g = this.groupOf(dev);
    yield* mutex_lock(k, t, g.mutex);
    yield* k.stepOn(t, `list_del(${dev.name})`, [this.removedAddr(dev)], () => {
      k.i32[k.mem.statics + this.removed + dev.index] = 1;
    });
    if (this.members(g).length === 0) yield* k.fn.iommu_group_release(t, g);
    yield* mutex_unlock(k, t, g.mutex);
  }

  /** iommu_group_add_device (k.fn): dev (back) in the group it was declared in. */
  *iommu_group_add_device(t: KTask, dev: GroupDevice): KGen {
    yield* this.k.fn.iommu_group_add_device(t, dev);
  }

  private *impl_iommu_group_add_device(t: KTask, dev: GroupDevice): KGen {
    const k = this.k;
    const g = this.groupOf(dev);
    yield* mutex_lock(k, t, g.mutex);
    yield* k.stepOn(t, `iommu_group_add_device(${dev.name})`, [this.removedAddr(dev)], () => {
      k.i32[k.mem.statics + this.removed + dev.index] = 0;
    });
    yield* mutex_unlock(k, t, g.mutex);
  }

  // ---- device lifetime ----

  /** iommu_bus_notifier: a device deleted from its bus leaves the IOMMU core (probe is kernel_init's). */
  private *impl_iommu_bus_notifier(t: KTask, action: number, dev: GroupDevice): KGen<number> {
    if (action === BUS_NOTIFY_REMOVED_DEVICE) yield* this.k.fn.iommu_release_device(t, dev);
    return NOTIFY_DONE;
  }

  /**
   * iommu_release_device: the driver's release_device first (iommu_deinit_device: it stops the device using any
   * domain), then the device leaves its group — whose release, when it was the last, frees the group's domains.
   * The other order was 9ac8545199a1's use-after-free ("iommu: Fix use-after-free in iommu_release_device": the
   * group's release freed the default domain, then the driver's release_device detached the device from it);
   * mainline does both under group->mutex in __iommu_group_remove_device, in the same order.
   */
  private *impl_iommu_release_device(t: KTask, dev: GroupDevice): KGen {
    if (this.released(dev)) return;
    yield* this.k.fn.iommu_deinit_device(t, dev);
    yield* this.k.fn.iommu_group_remove_device(t, dev);
  }

  /** iommu_deinit_device's driver part: ops->release_device on the domain the driver's per-device data names. */
  private *impl_iommu_deinit_device(t: KTask, dev: GroupDevice): KGen {
    const k = this.k;
    const g = this.groupOf(dev);
    yield* mutex_lock(k, t, g.mutex);
    const ops = this.opsOf(dev);
    if (ops) yield* this.releasePasids(t, g, dev, ops);
    // The device leaves its IOMMU's iopf queue, what is pending answered (the drivers' release_device disables
    // IOPF); with iopf=attach the last SVA detach did it already.
    const queue = iopfQueueOf(k, dev);
    if (queue && (yield* k.stepOn(t, 'dev->iommu->fault_param', [read(devIommu(k, dev).fault_param.addr())], () => iopfFaultParam(k, dev))) !== 0) yield* k.fn.iopf_queue_remove_device(t, queue, dev);
    const dom = yield* k.stepOn(t, 'dev_iommu_priv_get(dev)->domain', [read(this.devDomainAddr(dev))], () => this.devDomain(dev));
    if (ops?.release_device) yield* ops.release_device(t, dev, this.domains.handle(dom));
    yield* k.stepOn(t, 'dev_iommu_free', [this.devDomainAddr(dev)], () => this.setDevDomain(dev, 0));
    yield* mutex_unlock(k, t, g.mutex);
  }

  /** model: the driver's per-device pointer to the domain its RID is attached to (the driver's per-device domain pointer). */
  private devDomain(dev: GroupDevice): number {
    return this.k.i32[this.devDomainAddr(dev)] as number;
  }

  private setDevDomain(dev: GroupDevice, dom: number): void {
    this.k.i32[this.devDomainAddr(dev)] = dom;
  }

  private devDomainAddr(dev: GroupDevice): number {
    return this.k.mem.statics + this.attached + dev.index;
  }

  /** The word saying dev left its group (iommu_group_remove_device). */
  private removedAddr(dev: GroupDevice): number {
    return this.k.mem.statics + this.removed + dev.index;
  }

  /** &group->domain and &group->default_domain. */
  private domainAddr(g: IommuGroup): number {
    return this.grp.domain.addr(this.gp(g));
  }

  private defaultAddr(g: IommuGroup): number {
    return this.grp.default_domain.addr(this.gp(g));
  }

  /**
   * model: the DMA API attached dom to dev's RID itself (dma-iommu.ts: iommu_setup_default_domain's attach): the
   * group records it as its domain and the driver's per-device pointer names it; `dflt` says what becomes of
   * group->default_domain — dom (freed with the group), left as it is, or cleared (the caller freed it).
   */
  *recordDomain(t: KTask, dev: GroupDevice, dom: number, dflt: 'set' | 'keep' | 'clear'): KGen {
    const g = this.groupOf(dev);
    const fp = [this.domainAddr(g), this.devDomainAddr(dev)];
    if (dflt !== 'keep') fp.push(this.defaultAddr(g));
    yield* this.k.stepOn(t, 'group->domain = domain', fp, () => {
      this.grp.domain.set(this.gp(g), dom);
      if (dflt !== 'keep') this.grp.default_domain.set(this.gp(g), dflt === 'set' ? dom : 0);
      this.setDevDomain(dev, dom);
    });
  }

  /**
   * model: what the driver's release_device does to the device's PASID table as a whole (its PASID or
   * context-descriptor table freed once the device-level entry is cleared or set to abort): no PASID
   * entry of dev stays reachable or cached. The pasid_array's entries stay until their owners detach (then dev,
   * no longer in the group, is not touched again).
   */
  private *releasePasids(t: KTask, g: IommuGroup, dev: GroupDevice, ops: IommuOps): KGen {
    for (const [pasid, entry] of this.pasidEntries(g)) {
      // IOMMU_NO_PASID's entry is the RID's handle (iommu_attach_group_handle): the RID is released below.
      if (entry === XA_ZERO_ENTRY || pasid === IOMMU_NO_PASID) continue;
      const dom = yield* this.entryDomain(t, entry);
      yield* ops.remove_dev_pasid(t, dev, pasid, this.domains.handle(dom), 'unbind');
    }
  }

  /** iommu_group_release: the group's default domain is freed, nothing is attached. */
  private *freeGroupDomains(t: KTask, g: IommuGroup): KGen {
    const k = this.k;
    const dflt = yield* k.stepOn(t, 'group->default_domain', [read(this.defaultAddr(g))], () => this.grp.default_domain.get(this.gp(g)));
    yield* k.stepOn(t, 'group->domain = NULL', [this.domainAddr(g), this.defaultAddr(g)], () => {
      this.grp.domain.set(this.gp(g), 0);
      this.grp.default_domain.set(this.gp(g), 0);
    });
    if (dflt !== 0) yield* this.domains.free(t, dflt);
  }

  /** Has dev left the IOMMU core (iommu_release_device, or iommu_group_remove_device)? Reads only. */
  released(dev: GroupDevice): boolean {
    return (this.k.i32[this.k.mem.statics + this.removed + dev.index] as number) !== 0;
  }

  // ---- the group's domain ----

  /** The second half of iommu_setup_default_domain (__iommu_group_set_domain with group->default_domain set): attach dom to every device and make it the group's default domain. */
  *iommu_setup_default_domain(t: KTask, g: IommuGroup, dom: number): KGen<number> {
    return yield* this.k.fn.__iommu_group_set_default_domain(t, g, dom);
  }

  private *impl_iommu_setup_default_domain(t: KTask, g: IommuGroup, dom: number): KGen<number> {
    const k = this.k;
    yield* mutex_lock(k, t, g.mutex);
    const cur = yield* k.stepOn(t, 'group->domain', [read(this.domainAddr(g))], () => this.grp.domain.get(this.gp(g)));
    const ret = yield* this.setGroupDomain(t, g, dom, cur);
    if (ret === 0) {
      yield* k.stepOn(t, 'group->default_domain = domain', [this.defaultAddr(g)], () => {
        this.grp.default_domain.set(this.gp(g), dom);
      });
    }
    yield* mutex_unlock(k, t, g.mutex);
    return ret;
  }

  /** iommu_attach_device: only for a device alone in its group (-EINVAL otherwise), as in the kernel. */
  *iommu_attach_device(t: KTask, dom: number, dev: GroupDevice): KGen<number> {
    return yield* this.k.fn.iommu_attach_device(t, dom, dev);
  }

  private *impl_iommu_attach_device(t: KTask, dom: number, dev: GroupDevice): KGen<number> {
    const k = this.k;
    const g = this.groupOf(dev);
    if (!this.opsOf(dev)) return -ENODEV;
    yield* mutex_lock(k, t, g.mutex);
    // Under the mutex: the device count must not change while we attach.
    const ret = this.members(g).length !== 1 ? -EINVAL : yield* this.attachGroup(t, g, dom);
    yield* mutex_unlock(k, t, g.mutex);
    return ret;
  }

  /** iommu_attach_group: the whole group, whatever its size. */
  *iommu_attach_group(t: KTask, dom: number, g: IommuGroup): KGen<number> {
    return yield* this.k.fn.iommu_attach_group(t, dom, g);
  }

  private *impl_iommu_attach_group(t: KTask, dom: number, g: IommuGroup): KGen<number> {
    const k = this.k;
    yield* mutex_lock(k, t, g.mutex);
    const ret = yield* this.attachGroup(t, g, dom);
    yield* mutex_unlock(k, t, g.mutex);
    return ret;
  }

  /** iommu_detach_device: back to the default domain (or blocked). WARN_ON a domain that is not attached. */
  *iommu_detach_device(t: KTask, dom: number, dev: GroupDevice): KGen {
    yield* this.k.fn.iommu_detach_device(t, dom, dev);
  }

  private *impl_iommu_detach_device(t: KTask, dom: number, dev: GroupDevice): KGen {
    const k = this.k;
    const g = this.groupOf(dev);
    yield* mutex_lock(k, t, g.mutex);
    const cur = yield* k.stepOn(t, 'group->domain', [read(this.domainAddr(g))], () => this.grp.domain.get(this.gp(g)));
    const n = this.members(g).length;
    if (cur !== dom)
      iommuWarn(
        k,
        t,
        DETACH_WARN,
        'iommu_detach_device',
        `${dev.name}: detaching a domain that is not the group's (domain != group->domain)`,
      );
    else if (n !== 1)
      iommuWarn(
        k,
        t,
        DETACH_WARN,
        'iommu_detach_device',
        `${dev.name}: its group has ${n} devices (list_count_nodes(&group->devices) != 1)`,
      );
    else yield* this.setCoreDomain(t, g, cur);
    yield* mutex_unlock(k, t, g.mutex);
  }

  /** iommu_detach_group. */
  *iommu_detach_group(t: KTask, dom: number, g: IommuGroup): KGen {
    yield* this.k.fn.iommu_detach_group(t, dom, g);
  }

  private *impl_iommu_detach_group(t: KTask, dom: number, g: IommuGroup): KGen {
    yield* this.detachToCore(t, dom, g, 'iommu_detach_group', false);
  }

  /**
   * Under group->mutex: the group back to its core domain (default or blocked) if `dom` is what it has (else the
   * WARN of `fn`); `eraseHandle`: the RID's attach handle erased from pasid_array too.
   */
  private *detachToCore(t: KTask, dom: number, g: IommuGroup, fn: string, eraseHandle: boolean): KGen {
    const k = this.k;
    yield* mutex_lock(k, t, g.mutex);
    const cur = yield* k.stepOn(t, 'group->domain', [read(this.domainAddr(g))], () => this.grp.domain.get(this.gp(g)));
    if (cur !== dom) iommuWarn(k, t, DETACH_WARN, fn, `group ${g.id}: detaching a domain that is not the group's`);
    else yield* this.setCoreDomain(t, g, cur);
    if (eraseHandle) yield* xa_erase(k, t, g.pasidArray, IOMMU_NO_PASID);
    yield* mutex_unlock(k, t, g.mutex);
  }

  /**
   * iommu_group_claim_dma_owner → __iommu_take_dma_ownership: refused while a domain other than the default
   * (or the blocking one) is attached (-EBUSY) or another owner has it (-EPERM); otherwise the blocking domain
   * is attached — nothing translates while the group changes hands — and the owner recorded. The same owner
   * again only counts.
   */
  private *impl_iommu_group_claim_dma_owner(t: KTask, g: IommuGroup, owner: number): KGen<number> {
    const k = this.k;
    if (owner === 0) return -EINVAL;
    yield* mutex_lock(k, t, g.mutex);
    const gp = this.gp(g);
    const owner4 = [read(this.grp.domain.addr(gp)), read(this.grp.default_domain.addr(gp)), read(this.grp.owner.addr(gp)), read(this.grp.owner_cnt.addr(gp))];
    const [cur, dflt, who, cnt] = yield* k.stepOn(t, 'group->owner', owner4, () => [this.grp.domain.get(gp), this.grp.default_domain.get(gp), this.grp.owner.get(gp), this.grp.owner_cnt.get(gp)] as const);
    let ret = 0;
    if (cnt > 0) ret = who === owner ? 0 : -EPERM;
    else if (cur !== 0 && cur !== dflt) ret = -EBUSY;
    else ret = yield* this.setGroupDomain(t, g, 0, cur);
    if (ret === 0) {
      yield* k.stepOn(t, 'group->owner = owner', [this.grp.owner.addr(gp), this.grp.owner_cnt.addr(gp)], () => {
        this.grp.owner.set(gp, owner);
        this.grp.owner_cnt.set(gp, cnt + 1);
      });
    }
    yield* mutex_unlock(k, t, g.mutex);
    return ret;
  }

  /** iommu_group_release_dma_owner: the last release puts the group back on its default domain. */
  private *impl_iommu_group_release_dma_owner(t: KTask, g: IommuGroup): KGen {
    const k = this.k;
    yield* mutex_lock(k, t, g.mutex);
    const gp = this.gp(g);
    const slots = g.pasidArray.slots();
    const counted = [read(this.grp.domain.addr(gp)), read(this.grp.owner_cnt.addr(gp)), ...fieldRange(slots, g.pasidArray.capacity).map(read)];
    const [cur, cnt, pasids] = yield* k.stepOn(t, 'group->owner_cnt', counted, () => [this.grp.domain.get(gp), this.grp.owner_cnt.get(gp), this.pasidEntries(g).length] as const);
    if (cnt === 0 || pasids > 0) {
      iommuWarn(k, t, RELEASE_OWNER_WARN, '__iommu_release_dma_ownership', `group ${g.id}: ${cnt === 0 ? 'released without an owner' : `released with ${pasids} PASID(s) still attached`}`);
    } else {
      yield* k.stepOn(t, 'group->owner = NULL', [this.grp.owner.addr(gp), this.grp.owner_cnt.addr(gp)], () => {
        this.grp.owner_cnt.set(gp, cnt - 1);
        if (cnt === 1) this.grp.owner.set(gp, 0);
      });
      if (cnt === 1) yield* this.setCoreDomain(t, g, cur);
    }
    yield* mutex_unlock(k, t, g.mutex);
  }

  /** The group's DMA owner now (0: the DMA API): reads only. */
  dmaOwner(g: IommuGroup): number {
    return this.grp.owner.get(this.gp(g));
  }

  /** iommu_get_domain_for_dev (k.fn): group->domain. */
  iommu_get_domain_for_dev(t: KTask, dev: GroupDevice): KGen<number> {
    return this.k.fn.iommu_get_domain_for_dev(t, dev);
  }

  /** group->domain (a racy read, as the kernel's: the caller owns the attachment). */
  private *impl_iommu_get_domain_for_dev(t: KTask, dev: GroupDevice): KGen<number> {
    const g = this.groupOf(dev);
    return yield* this.k.stepOn(t, 'iommu_get_domain_for_dev', [read(this.domainAddr(g))], () => this.grp.domain.READ_ONCE(this.gp(g)));
  }

  /** __iommu_attach_group: -EBUSY while a domain other than the default is attached. */
  private *attachGroup(t: KTask, g: IommuGroup, dom: number): KGen<number> {
    const k = this.k;
    const [cur, dflt] = yield* k.stepOn(
      t,
      'group->domain',
      [read(this.domainAddr(g)), read(this.defaultAddr(g))],
      () => [this.grp.domain.get(this.gp(g)), this.grp.default_domain.get(this.gp(g))] as const,
    );
    if (cur !== 0 && cur !== dflt) return -EBUSY;
    return yield* this.setGroupDomain(t, g, dom, cur);
  }

  /** __iommu_group_set_core_domain: the default domain, or blocked when there is none. */
  private *setCoreDomain(t: KTask, g: IommuGroup, cur: number): KGen {
    const k = this.k;
    const dflt = yield* k.stepOn(t, 'group->default_domain', [read(this.defaultAddr(g))], () => this.grp.default_domain.get(this.gp(g)));
    yield* this.setGroupDomain(t, g, dflt, cur);
  }

  /** __iommu_group_set_domain: attach_dev on every device; on a failure, the ones done go back to `cur`. */
  private *setGroupDomain(t: KTask, g: IommuGroup, dom: number, cur: number): KGen<number> {
    const k = this.k;
    if (dom === cur) return 0;
    const devs = this.members(g);
    for (let i = 0; i < devs.length; i++) {
      const dev = devs[i] as GroupDevice;
      const ops = this.opsOf(dev);
      const ret = ops ? yield* ops.default_domain_ops.attach_dev(t, this.domains.handle(dom), dev) : -ENODEV;
      if (ret !== 0) {
        for (const done of devs.slice(0, i)) yield* (this.opsOf(done) as IommuOps).default_domain_ops.attach_dev(t, this.domains.handle(cur), done);
        return ret;
      }
    }
    yield* k.stepOn(t, 'group->domain = domain', [this.domainAddr(g), ...devs.map((d) => this.devDomainAddr(d))], () => {
      this.grp.domain.set(this.gp(g), dom);
      for (const d of devs) this.setDevDomain(d, dom);
    });
    return 0;
  }

  // ---- PASIDs ----

  /** The group's policy check: may a PASID be attached to this group now (caller holds group->mutex)? */
  private pasidAllowed(g: IommuGroup, multi: boolean): boolean {
    // "To keep things simple, we currently don't support IOMMU groups with more than one device."
    return multi || this.members(g).length === 1;
  }

  private badPasid(pasid: number): boolean {
    return !Number.isInteger(pasid) || pasid === IOMMU_NO_PASID || pasid < 0 || pasid >= this.cfg.maxPasids;
  }

  /**
   * iommu_attach_device_pasid: the same domain again succeeds; another domain on an attached PASID is -EBUSY
   * (replace is the way); a group of more than one device is -EINVAL unless the policy allows it.
   */
  *iommu_attach_device_pasid(t: KTask, dom: number, dev: GroupDevice, pasid: number, handle = 0): KGen<number> {
    return yield* this.k.fn.iommu_attach_device_pasid(t, dom, dev, pasid, handle);
  }

  /** `multi`: the policy's value — whether a group of more than one device may have a PASID attached. */
  private *impl_iommu_attach_device_pasid(t: KTask, dom: number, dev: GroupDevice, pasid: number, multi: boolean, handle: number): KGen<number> {
    const k = this.k;
    const g = this.groupOf(dev);
    if (!this.opsOf(dev)) return -EOPNOTSUPP;
    if (this.badPasid(pasid) || dom <= XA_ZERO_ENTRY) return -EINVAL;
    yield* mutex_lock(k, t, g.mutex);
    let ret: number;
    if (!this.pasidAllowed(g, multi)) {
      ret = -EINVAL;
    } else {
      const curr = yield* xa_cmpxchg(k, t, g.pasidArray, pasid, 0, XA_ZERO_ENTRY);
      if (curr < 0) ret = curr;
      else if (curr !== 0 && (yield* this.entryDomain(t, curr)) === dom) {
        yield* this.attachedFor(t, g, dev, pasid);
        ret = 0;
      } else if (curr !== 0) ret = -EBUSY;
      else {
        // Before the driver installs it: from then on a DMA from dev may reach it.
        const before = yield* this.attachedFor(t, g, dev, pasid);
        ret = yield* this.setGroupPasid(t, g, dom, pasid, 0);
        // Published only now that the driver has it; a failure releases the reservation.
        if (ret === 0) yield* xa_store(k, t, g.pasidArray, pasid, yield* this.makeEntry(t, dom, handle));
        else {
          yield* xa_erase(k, t, g.pasidArray, pasid);
          yield* this.setAttachedFor(t, g, pasid, before);
        }
      }
    }
    yield* mutex_unlock(k, t, g.mutex);
    return ret;
  }

  /**
   * iommu_replace_device_pasid: swap the domain of an attached PASID without a window where it has none;
   * -EINVAL when nothing is attached. When the driver fails, the old domain stays attached and in use.
   */
  *iommu_replace_device_pasid(t: KTask, dom: number, dev: GroupDevice, pasid: number, handle = 0): KGen<number> {
    return yield* this.k.fn.iommu_replace_device_pasid(t, dom, dev, pasid, handle);
  }

  private *impl_iommu_replace_device_pasid(t: KTask, dom: number, dev: GroupDevice, pasid: number, multi: boolean, handle: number): KGen<number> {
    const k = this.k;
    const g = this.groupOf(dev);
    if (!this.opsOf(dev)) return -EOPNOTSUPP;
    if (this.badPasid(pasid) || dom <= XA_ZERO_ENTRY) return -EINVAL;
    yield* mutex_lock(k, t, g.mutex);
    let ret = 0;
    const curr = yield* xa_cmpxchg(k, t, g.pasidArray, pasid, 0, XA_ZERO_ENTRY);
    if (curr < 0) {
      ret = curr;
    } else if (curr === 0) {
      // No domain attached: not a replace. Release the reservation.
      yield* xa_erase(k, t, g.pasidArray, pasid);
      ret = -EINVAL;
    } else if (!this.pasidAllowed(g, multi)) {
      ret = -EINVAL;
    } else {
      const old = yield* this.entryDomain(t, curr);
      if (old !== dom || handle !== 0) {
        const before = yield* this.attachedFor(t, g, dev, pasid);
        if (old !== dom) ret = yield* this.setGroupPasid(t, g, dom, pasid, old);
        // Replaced, or the same domain with a new handle: the entry names what is attached now. A failed replace
        // leaves the old entry, as the driver left the old domain installed.
        if (ret === 0) yield* xa_store(k, t, g.pasidArray, pasid, yield* this.makeEntry(t, dom, handle));
        else yield* this.setAttachedFor(t, g, pasid, before);
      }
    }
    yield* mutex_unlock(k, t, g.mutex);
    return ret;
  }

  /** iommu_detach_device_pasid: every device of the group stops using dom for pasid; the entry goes. */
  *iommu_detach_device_pasid(t: KTask, dom: number, dev: GroupDevice, pasid: number): KGen {
    yield* this.k.fn.iommu_detach_device_pasid(t, dom, dev, pasid);
  }

  private *impl_iommu_detach_device_pasid(t: KTask, dom: number, dev: GroupDevice, pasid: number): KGen {
    const k = this.k;
    const g = this.groupOf(dev);
    // "Caller must be a probed driver on dev": once iommu_release_device ran, dev->iommu_group is NULL and
    // mutex_lock(&group->mutex) dereferences it.
    if (this.released(dev)) {
      // A NULL group: KASAN's report reads nothing.
      yield* k.stepOn(t, 'mutex_lock(&dev->iommu_group->mutex)', [], () => void kasanAccess(k, t, 0, IOMMU_GROUP_MUTEX_OFFSET, true));
      return;
    }
    yield* mutex_lock(k, t, g.mutex);
    const curr = yield* xa_load(k, t, g.pasidArray, pasid);
    if (curr === 0 || curr === XA_ZERO_ENTRY || (yield* this.entryDomain(t, curr)) !== dom) {
      // The kernel tears down whatever is there and warns; here the other attachment is left alone so that
      // the rest of the run stays meaningful.
      iommuWarn(
        k,
        t,
        DETACH_PASID_WARN,
        'iommu_detach_device_pasid',
        `${dev.name} PASID ${pasid}: detaching a domain that is not attached there`,
      );
    } else {
      for (const d of this.members(g)) yield* (this.opsOf(d) as IommuOps).remove_dev_pasid(t, d, pasid, this.domains.handle(dom), 'unbind');
      yield* xa_erase(k, t, g.pasidArray, pasid);
      yield* this.setAttachedFor(t, g, pasid, 0);
    }
    yield* mutex_unlock(k, t, g.mutex);
  }

  /**
   * iommu_attach_group_handle: the group's domain, as iommu_attach_group, with the handle published at
   * IOMMU_NO_PASID once the domain is attached (reserved first: -EBUSY when the RID has a handle already).
   */
  private *impl_iommu_attach_group_handle(t: KTask, dom: number, g: IommuGroup, handle: number): KGen<number> {
    const k = this.k;
    if (dom <= XA_ZERO_ENTRY || handle === 0) return -EINVAL;
    yield* mutex_lock(k, t, g.mutex);
    let ret = yield* xa_cmpxchg(k, t, g.pasidArray, IOMMU_NO_PASID, 0, XA_ZERO_ENTRY);
    if (ret === 0) {
      ret = yield* this.attachGroup(t, g, dom);
      if (ret === 0) yield* xa_store(k, t, g.pasidArray, IOMMU_NO_PASID, yield* this.makeEntry(t, dom, handle));
      else yield* xa_erase(k, t, g.pasidArray, IOMMU_NO_PASID);
    } else if (ret > 0) ret = -EBUSY;
    yield* mutex_unlock(k, t, g.mutex);
    return ret;
  }

  /**
   * iommu_replace_group_handle: __iommu_group_set_domain to the new domain, then its handle replaces the old one
   * at IOMMU_NO_PASID; a failure leaves the old domain and handle.
   */
  private *impl_iommu_replace_group_handle(t: KTask, g: IommuGroup, dom: number, handle: number): KGen<number> {
    const k = this.k;
    if (dom <= XA_ZERO_ENTRY || handle === 0) return -EINVAL;
    yield* mutex_lock(k, t, g.mutex);
    const cur = yield* k.stepOn(t, 'group->domain', [read(this.domainAddr(g))], () => this.grp.domain.get(this.gp(g)));
    const ret = yield* this.setGroupDomain(t, g, dom, cur);
    if (ret === 0) yield* xa_store(k, t, g.pasidArray, IOMMU_NO_PASID, yield* this.makeEntry(t, dom, handle));
    yield* mutex_unlock(k, t, g.mutex);
    return ret;
  }

  /** iommu_detach_group_handle: back to the core domain (default or blocked), the RID's handle erased. */
  private *impl_iommu_detach_group_handle(t: KTask, dom: number, g: IommuGroup): KGen {
    yield* this.detachToCore(t, dom, g, 'iommu_detach_group_handle', true);
  }

  /** pasid_array_entry_to_domain: a bare domain, or the domain its handle names (a KASAN-checked read). */
  private *entryDomain(t: KTask, entry: number): KGen<number> {
    const obj = pasidArrayObject(entry);
    if (pasidArrayTag(entry) === IOMMU_PASID_ARRAY_DOMAIN) return obj;
    return yield* this.k.stepOn(t, 'handle->domain', objectFootprint(this.k, obj, [IOMMU_ATTACH_HANDLE.offset.domain]), () => objLoad(this.k, t, obj, IOMMU_ATTACH_HANDLE.offset.domain));
  }

  /** iommu_make_pasid_array_entry: the handle (its domain set) or the bare domain, tagged. */
  private *makeEntry(t: KTask, dom: number, handle: number): KGen<number> {
    if (handle === 0) return pasidArrayEntry(dom, IOMMU_PASID_ARRAY_DOMAIN);
    yield* this.k.stepOn(t, 'handle->domain = domain', objectFootprint(this.k, handle, [], [IOMMU_ATTACH_HANDLE.offset.domain]), () => objStore(this.k, t, handle, IOMMU_ATTACH_HANDLE.offset.domain, dom));
    return pasidArrayEntry(handle, IOMMU_PASID_ARRAY_HANDLE);
  }

  /** iommu_attach_handle_get: the handle of {g, pasid}, -ENOENT (none, or a domain attached bare) or -EBUSY (another type). */
  private *impl_iommu_attach_handle_get(t: KTask, g: IommuGroup, pasid: number, type?: DomainType): KGen<number> {
    const k = this.k;
    yield* xa_lock(k, t, g.pasidArray);
    const entry = yield* xa_load(k, t, g.pasidArray, pasid);
    let ret: number;
    if (entry === 0 || entry === XA_ZERO_ENTRY || pasidArrayTag(entry) !== IOMMU_PASID_ARRAY_HANDLE) ret = -ENOENT;
    else {
      ret = pasidArrayObject(entry);
      const dom = yield* this.entryDomain(t, entry);
      if (type !== undefined && (yield* k.stepOn(t, 'handle->domain->type', objectFootprint(k, dom, [DOM.type]), () => this.domains.type(t, dom))) !== type) ret = -EBUSY;
    }
    yield* xa_unlock(k, t, g.pasidArray);
    return ret;
  }

  private ownersWord(g: IommuGroup, pasid: number): number {
    return this.k.mem.statics + this.owners + g.id * this.cfg.maxPasids + pasid;
  }

  /** dev asks for pasid (group->mutex held): its bit in the PASID's owners; returns the owners before. */
  private *attachedFor(t: KTask, g: IommuGroup, dev: GroupDevice, pasid: number): KGen<number> {
    const bit = 1 << g.devices.indexOf(dev);
    return yield* this.k.stepOn(t, 'iommu-sim: PASID attached for the device', [this.ownersWord(g, pasid)], () => Atomics.or(this.k.i32, this.ownersWord(g, pasid), bit));
  }

  private *setAttachedFor(t: KTask, g: IommuGroup, pasid: number, owners: number): KGen {
    yield* this.k.stepOn(t, 'iommu-sim: PASID owners', [this.ownersWord(g, pasid)], () => void Atomics.store(this.k.i32, this.ownersWord(g, pasid), owners));
  }

  /**
   * The isolation oracle, called by the hardware as a DMA from {dev, pasid} reaches domain dom (0: blocked), in
   * the point that reads the entry. Nothing may be reached through a PASID that was attached for other devices
   * of the group only: the request should have been blocked, and the domain belongs to another device's user.
   */
  dmaReached(t: KTask, dev: GroupDevice, pasid: number, dom: number, step: number): void {
    if (dom === 0 || pasid === IOMMU_NO_PASID || this.badPasid(pasid)) return;
    const g = this.groupOf(dev);
    const owners = Atomics.load(this.k.i32, this.ownersWord(g, pasid));
    if ((owners & (1 << g.devices.indexOf(dev))) !== 0) return;
    const attachedFor = g.devices.filter((_, i) => (owners & (1 << i)) !== 0);
    this.oracle.groupDmaReached(t, step, dev, pasid, dom, { id: g.id, devices: g.devices, attachedFor });
  }

  /**
   * The domain attached at {dev, pasid} for dev itself (0: none, or attached for other members of its group only):
   * the isolation oracle's truth for a DMA the device issues now. A plain read, no scheduling point.
   */
  domainAttachedFor(dev: GroupDevice, pasid: number): number {
    if (this.badPasid(pasid)) return 0;
    const g = this.groupOf(dev);
    if ((Atomics.load(this.k.i32, this.ownersWord(g, pasid)) & (1 << g.devices.indexOf(dev))) === 0) return 0;
    const entry = Atomics.load(this.k.i32, g.pasidArray.slots() + pasid);
    if (entry === 0 || entry === XA_ZERO_ENTRY) return 0;
    const obj = pasidArrayObject(entry);
    // The oracle's read, not the kernel's: no KASAN check (a handle lives as long as its entry is in the array).
    return pasidArrayTag(entry) === IOMMU_PASID_ARRAY_DOMAIN ? obj : (this.k.i32[obj + IOMMU_ATTACH_HANDLE.offset.domain] as number);
  }

  /** The words domainAttachedFor(dev, pasid) reads, appended to `out` (a hardware step's footprint declares them). */
  domainAttachedForReads(dev: GroupDevice, pasid: number, out: number[]): void {
    if (this.badPasid(pasid)) return;
    const g = this.groupOf(dev);
    out.push(this.ownersWord(g, pasid));
    if ((Atomics.load(this.k.i32, this.ownersWord(g, pasid)) & (1 << g.devices.indexOf(dev))) === 0) return;
    out.push(g.pasidArray.slots() + pasid);
    const entry = Atomics.load(this.k.i32, g.pasidArray.slots() + pasid);
    if (entry === 0 || entry === XA_ZERO_ENTRY || pasidArrayTag(entry) === IOMMU_PASID_ARRAY_DOMAIN) return;
    out.push(pasidArrayObject(entry) + IOMMU_ATTACH_HANDLE.offset.domain);
  }

  /** __iommu_set_group_pasid: set_dev_pasid on every device; on a failure, the ones done are reverted. */
  private *setGroupPasid(t: KTask, g: IommuGroup, dom: number, pasid: number, old: number): KGen<number> {
    const k = this.k;
    const devs = this.members(g);
    for (let i = 0; i < devs.length; i++) {
      const dev = devs[i] as GroupDevice;
      const ops = this.opsOf(dev);
      const ret = ops ? yield* ops.default_domain_ops.set_dev_pasid(t, this.domains.handle(dom), dev, pasid, this.domains.handleOrNone(old)) : -EOPNOTSUPP;
      if (ret === 0) continue;
      for (const done of devs.slice(0, i)) {
        const o = this.opsOf(done) as IommuOps;
        // Back to the old domain; failing to re-attach a previously good one is a driver bug.
        const back = old === 0 ? -1 : yield* o.default_domain_ops.set_dev_pasid(t, this.domains.handle(old), done, pasid, this.domains.handle(dom));
        if (back !== 0) {
          if (old !== 0)
            iommuWarn(
              k,
              t,
              REVERT_WARN,
              '__iommu_set_group_pasid',
              `${done.name} PASID ${pasid}: the driver failed to restore the old domain`,
            );
          yield* o.remove_dev_pasid(t, done, pasid, this.domains.handle(dom), 'unbind');
        }
      }
      return ret;
    }
    return 0;
  }

  /**
   * iommu_get_domain_for_dev_pasid(dev, pasid, type): the domain attached to {dev, pasid}, or 0 (NULL), or
   * -EBUSY (ERR_PTR) when it is not of `type`. Under group->mutex or RCU as the policy says. `get` runs inside
   * that section on a domain found (a user reference, seed 002's iommu_sva_domain_get_user); false makes the
   * lookup return NULL. What the caller may do with the domain once the section has ended is up to `get`.
   */
  *iommu_get_domain_for_dev_pasid(
    t: KTask,
    dev: GroupDevice,
    pasid: number,
    type?: DomainType,
    get?: DomainGet,
  ): KGen<number> {
    return yield* this.k.fn.iommu_get_domain_for_dev_pasid(t, dev, pasid, type, get);
  }

  /** `rcu`: the policy's value — under rcu_read_lock() alone, or under group->mutex. */
  private *impl_iommu_get_domain_for_dev_pasid(
    rcu: boolean,
    t: KTask,
    dev: GroupDevice,
    pasid: number,
    type?: DomainType,
    get?: DomainGet,
  ): KGen<number> {
    const k = this.k;
    const g = this.groupOf(dev);
    if (rcu) yield* rcu_read_lock(k, t);
    else yield* mutex_lock(k, t, g.mutex);
    const entry = yield* xa_load(k, t, g.pasidArray, pasid);
    let dom = entry === XA_ZERO_ENTRY || entry === 0 ? 0 : yield* this.entryDomain(t, entry);
    if (dom !== 0 && type !== undefined) {
      // A point of its own: under RCU this read races with whoever detaches and frees the domain.
      const ok = yield* k.stepOn(t, 'domain->type', objectFootprint(k, dom, [DOM.type]), () => this.domains.type(t, dom) === type);
      if (!ok) dom = -EBUSY;
    }
    if (dom > 0 && get && !(yield* get(t, dom))) dom = 0;
    if (rcu) yield* rcu_read_unlock(k, t);
    else yield* mutex_unlock(k, t, g.mutex);
    return dom;
  }

  // ---- reads (tests, invariant checks: no scheduling point) ----

  /** The domain attached to the group now (0: blocked). */
  groupDomain(g: IommuGroup): number {
    return this.grp.domain.READ_ONCE(this.gp(g));
  }

  /** group->pasid_array's present entries as [pasid, entry] (tagged: pasidArrayObject / pasidArrayTag; a reserved slot shows as XA_ZERO_ENTRY). */
  pasidEntries(g: IommuGroup): [number, number][] {
    const out: [number, number][] = [];
    const base = g.pasidArray.slots();
    for (let p = 0; p < g.pasidArray.capacity; p++) {
      const v = Atomics.load(this.k.i32, base + p);
      if (v !== 0) out.push([p, v]);
    }
    return out;
  }

  /** Teardown check (register with k.onEnd): a group releasing with PASIDs still attached, as the kernel WARNs. */
  checkReleased(): void {
    for (const g of this.groups) {
      const left = this.pasidEntries(g);
      if (left.length === 0) continue;
      const title = `WARNING: CPU: 0 PID: 0 at ${RELEASE_WARN} iommu_group_release`;
      const body = [
        'RIP: 0010:iommu_group_release',
        `iommu-sim: group ${g.id} (${g.devices.map((d) => d.name).join(', ')}) is released with ${left.length} PASID${left.length > 1 ? 's' : ''} still attached (xa_empty(&group->pasid_array) is false):`,
        ...left.map(([p, e]) => `  PASID ${p}: ${e === XA_ZERO_ENTRY ? 'XA_ZERO_ENTRY' : `${pasidArrayTag(e) === IOMMU_PASID_ARRAY_HANDLE ? 'handle' : 'domain'} 0x${pasidArrayObject(e).toString(16)}`}`),
      ];
      this.k.report({ kind: 'leak', title, text: [title, ...body].join('\n'), step: -1, where: `group ${g.id}` });
    }
  }
}
