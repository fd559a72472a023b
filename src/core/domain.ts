// struct iommu_domain (include/linux/iommu.h, drivers/iommu/iommu.c): what a device or a {device, PASID} is
// attached to. Blocked and identity domains translate nothing or everything; a DMA or paging (UNMANAGED)
// domain owns an I/O page table and one of its IOMMU instance's address spaces — a scarce resource on some
// IOMMUs (seed 001: Tegra has 4, later 128); an SVA domain shares a process's page tables and counts the
// binds that use it. Domains are slab objects, so a use after the last reference went is KASAN's to report.
// An I/O page table is an address space of the mm layer that no process owns: the hardware walks it exactly as
// it walks a process's (src/hw/unit.ts), and map/unmap write its PTEs.
import type { KTask } from '../kernel/context.js';
import { EINVAL, ENOMEM, ENOSPC } from '../kernel/errno.js';
import { defineIda, type Ida, ida_alloc_range, ida_free } from '../kernel/ida.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import { pteAddr } from '../kernel/mm/mm.js';
import { PTE_PRESENT, PTE_WRITE } from '../kernel/mm/pagetable.js';
import { kfree, kzalloc, objLoad, objStore } from '../kernel/slab.js';
import { BLOCKED_DOMAIN, type IommuDomain } from './ops.js';

export type DomainType = 'blocked' | 'identity' | 'dma' | 'paging' | 'sva';
export const DOMAIN_TYPES: readonly DomainType[] = ['blocked', 'identity', 'dma', 'paging', 'sva'];

/** Words of struct iommu_domain. */
export const D_TYPE = 0; // index in DOMAIN_TYPES + 1
export const D_IOMMU = 1; // IOMMU instance + 1 (0: none)
export const D_ASID = 2; // address space in the instance + 1 (0: none)
export const D_PGTABLE = 3; // I/O page table: pool index + 1 (0: none)
export const D_MM = 4; // SVA: mm id + 1
export const D_USERS = 5; // SVA: binds using it
export const D_MAPPED = 6; // live mappings
export const D_FLAGS = 7; // SVA: SVM_FLAG_* of the bind that allocated it (SUPERVISOR_MODE: init_mm)
const D_WORDS = 8;

export interface DomainConfig {
  readonly iommus: number;
  /** Address spaces each IOMMU instance has (seed 001: 4 or 128). */
  readonly addressSpaces: number;
  /** I/O page tables for DMA and paging domains (address spaces of the mm layer no process uses). */
  readonly pageTables: readonly MmStruct[];
  /** Name of instance i, for errors: `smmu0`. */
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

  constructor(
    private readonly k: Kernel,
    readonly cfg: DomainConfig,
  ) {
    // A domain that is never freed is kmemleak's to report (its struct); its address space and table go with it.
    this.spaces = Array.from({ length: cfg.iommus }, (_, i) =>
      defineIda(k, `${cfg.unitName(i)} address spaces`, Math.max(1, cfg.addressSpaces), { leakCheck: false }),
    );
    this.tables = defineIda(k, 'io page tables', Math.max(1, cfg.pageTables.length), { leakCheck: false });
  }

  /** iommu_domain_alloc(type) on IOMMU instance `iommu`; an SVA domain names its mm (and the bind's flags). */
  *alloc(t: KTask, type: DomainType, iommu: number, mm?: MmStruct, flags = 0): KGen<DomainAlloc> {
    const k = this.k;
    return yield* k.call(
      t,
      'iommu_domain_alloc',
      function* (this: Domains): KGen<DomainAlloc> {
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
        const dom = yield* kzalloc(k, t, D_WORDS, 'GFP_KERNEL', 'iommu_domain');
        if (dom === 0) {
          // Unwind what was taken for it (found by failslab: these leaked).
          if (asid >= 0) yield* ida_free(k, t, this.spaces[iommu] as Ida, asid);
          if (table >= 0) yield* ida_free(k, t, this.tables, table);
          return { dom: 0, err: -ENOMEM, why: 'kzalloc(iommu_domain) failed' };
        }
        yield* k.step(t, `iommu_domain_alloc(${type})`, () => {
          objStore(k, t, dom, D_TYPE, DOMAIN_TYPES.indexOf(type) + 1);
          objStore(k, t, dom, D_IOMMU, iommu + 1);
          objStore(k, t, dom, D_ASID, asid + 1);
          objStore(k, t, dom, D_PGTABLE, table + 1);
          objStore(k, t, dom, D_MM, mm ? mm.id + 1 : 0);
          objStore(k, t, dom, D_FLAGS, flags);
          if (table >= 0) this.clearTable(this.cfg.pageTables[table] as MmStruct);
        });
        return { dom, err: 0, why: '' };
      }.call(this),
    );
  }

  /** iommu_domain_free(): its address space and page table go back; the memory is freed. */
  *free(t: KTask, dom: number): KGen {
    const k = this.k;
    yield* k.call(
      t,
      'iommu_domain_free',
      function* (this: Domains): KGen {
        const [iommu, asid, table] = yield* k.step(t, 'iommu_domain_free', () => [objLoad(k, t, dom, D_IOMMU) - 1, objLoad(k, t, dom, D_ASID) - 1, objLoad(k, t, dom, D_PGTABLE) - 1] as const);
        if (asid >= 0) yield* ida_free(k, t, this.spaces[iommu] as Ida, asid);
        if (table >= 0) yield* ida_free(k, t, this.tables, table);
        yield* kfree(k, t, dom);
      }.call(this),
    );
  }

  /**
   * dom as a driver sees it on attach (0: the blocking domain). Its fields are read when the driver reads them,
   * as the hardware-facing code does: plain loads, no KASAN check (the driver's own step does that).
   */
  handle(dom: number): IommuDomain {
    if (dom === 0) return BLOCKED_DOMAIN;
    const i32 = this.k.i32;
    const cfg = this.cfg;
    return {
      obj: dom,
      get flags(): number {
        return i32[dom + D_FLAGS] as number;
      },
      get type(): DomainType {
        return DOMAIN_TYPES[(i32[dom + D_TYPE] as number) - 1] ?? 'blocked';
      },
      get mm(): MmStruct | undefined {
        const table = (i32[dom + D_PGTABLE] as number) - 1;
        if (table >= 0) return cfg.pageTables[table];
        const mm = (i32[dom + D_MM] as number) - 1;
        return mm >= 0 ? cfg.mmOf?.(mm) : undefined;
      },
    };
  }

  /** handle(dom), or undefined for 0 (set_dev_pasid's `old`: nothing was attached). */
  handleOrNone(dom: number): IommuDomain | undefined {
    return dom === 0 ? undefined : this.handle(dom);
  }

  /** The domain's type (a KASAN-checked read: the caller must hold a reference). */
  type(t: KTask, dom: number): DomainType {
    return DOMAIN_TYPES[objLoad(this.k, t, dom, D_TYPE) - 1] ?? 'blocked';
  }

  /** The address space the hardware walks for dom: its I/O page table, or the SVA domain's mm id. */
  pageTable(t: KTask, dom: number): MmStruct | undefined {
    const table = objLoad(this.k, t, dom, D_PGTABLE) - 1;
    return table >= 0 ? this.cfg.pageTables[table] : undefined;
  }

  /** iommu_map(domain, iova, paddr): one page. */
  *map(t: KTask, dom: number, iova: number, pfn: number, write: boolean): KGen<number> {
    const k = this.k;
    return yield* k.step(t, `iommu_map(iova ${iova})`, () => {
      const pt = this.pageTable(t, dom);
      if (!pt || iova < 0 || iova >= pt.pages) return -EINVAL;
      const at = pteAddr(k, pt, iova);
      Atomics.store(k.i32, at, (pfn << 2) | PTE_PRESENT | (write ? PTE_WRITE : 0));
      objStore(k, t, dom, D_MAPPED, objLoad(k, t, dom, D_MAPPED) + 1);
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
        Atomics.store(k.i32, at, (pfn << 2) | PTE_PRESENT | (write ? PTE_WRITE : 0));
        objStore(k, t, dom, D_MAPPED, objLoad(k, t, dom, D_MAPPED) + 1);
        return v;
      }
      return -ENOSPC;
    });
  }

  /** iommu_unmap(domain, iova): clears the PTE; the caller flushes the IOTLB and ATC of every attachment. */
  *unmap(t: KTask, dom: number, iova: number): KGen<number> {
    const k = this.k;
    return yield* k.step(t, `iommu_unmap(iova ${iova})`, () => {
      const pt = this.pageTable(t, dom);
      if (!pt || iova < 0 || iova >= pt.pages) return -EINVAL;
      const at = pteAddr(k, pt, iova);
      if ((Atomics.load(k.i32, at) & PTE_PRESENT) === 0) return -EINVAL;
      Atomics.store(k.i32, at, 0);
      objStore(k, t, dom, D_MAPPED, objLoad(k, t, dom, D_MAPPED) - 1);
      return 0;
    });
  }

  private clearTable(pt: MmStruct): void {
    const a = pteAddr(this.k, pt, 0);
    this.k.i32.fill(0, a, a + pt.pages);
  }
}
