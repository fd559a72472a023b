// The "no hardware" IOMMU driver: what a topology without an IOMMU unit model attaches through (the domains
// preset's groups). It implements the one ops table (core/ops.ts: iommu_ops + iommu_domain_ops) and keeps, in
// shared memory as a PASID table would, what each device's RID and each {device, PASID} translate through.
import { DOM } from '../core/iommu.js';
import { type IommuDomain, type IommuDomainOps, type IommuOps, IOMMU_NO_PASID, type RemoveWhy } from '../core/ops.js';
import type { DeviceInfo } from '../core/types.js';
import type { KTask } from '../kernel/context.js';
import { EINVAL } from '../kernel/errno.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { objLoad } from '../kernel/slab.js';

/**
 * The driver without hardware: what each device's RID and each {device, PASID} translate through, in
 * shared memory (as a PASID table would be). set_dev_pasid refuses a domain of another IOMMU instance with
 * -EINVAL (the drivers' "incompatible domain" check), and fails once with an injected errno on demand (a
 * failed allocation of the PASID entry). `dma` is the hardware using an entry: it reads the domain, so a
 * domain freed while still installed is KASAN's to report.
 */
export class NoHwIommu implements IommuOps {
  readonly driver = 'iommu-sim-nohw';
  readonly nativePasid = 'system';
  readonly releaseNotifiesDriver = false;
  readonly default_domain_ops: IommuDomainOps;
  /** Called as a DMA reaches its domain, in the point that reads the entry (the isolation oracle). */
  onDma: ((t: KTask, dev: DeviceInfo, pasid: number, dom: number, step: number) => void) | undefined;
  private readonly rid: number;
  private readonly table: number;
  private readonly inject: number;

  constructor(
    private readonly k: Kernel,
    private readonly devices: number,
    private readonly maxPasids: number,
    /** Negative control: a failing set_dev_pasid that clears the entry it should have left alone. */
    private readonly bug: 'none' | 'clear-on-failure' = 'none',
  ) {
    this.rid = k.statics.alloc(devices, 'nohw rid table');
    this.table = k.statics.alloc(devices * maxPasids, 'nohw pasid table');
    this.inject = k.statics.alloc(devices * maxPasids, 'nohw injected errors');
    this.default_domain_ops = {
      attach_dev: (t, domain, dev) => this.attach_dev(t, domain.obj, dev),
      set_dev_pasid: (t, domain, dev, pasid) => this.set_dev_pasid(t, domain.obj, dev, pasid),
      // Nothing caches a translation without hardware.
      *iotlb_sync() {},
    };
  }

  dev_enable_feat(): { err: number; why: string } {
    return { err: 0, why: '' };
  }

  pasid_range(): readonly [number, number] {
    return [1, this.maxPasids - 1];
  }

  /** Nothing queues page requests without hardware. */
  *drain_prq(): KGen {}

  private entry(dev: DeviceInfo, pasid: number): number {
    return this.k.mem.statics + this.table + dev.index * this.maxPasids + pasid;
  }

  private compatible(t: KTask, dom: number, dev: DeviceInfo): boolean {
    return dom === 0 || objLoad(this.k, t, dom, DOM.iommu) - 1 === dev.iommu;
  }

  /** Take the error injected for {dev, pasid} (IOMMU_NO_PASID: attach_dev), if one is armed (perform only). */
  private injected(dev: DeviceInfo, pasid: number): number {
    return Atomics.exchange(this.k.i32, this.k.mem.statics + this.inject + dev.index * this.maxPasids + pasid, 0);
  }

  private *attach_dev(t: KTask, dom: number, dev: DeviceInfo): KGen<number> {
    const k = this.k;
    return yield* k.call(
      t,
      'nohw_attach_dev',
      k.step(t, `attach_dev(${dev.name})`, () => {
        const err = this.injected(dev, IOMMU_NO_PASID);
        if (err !== 0) return err;
        if (!this.compatible(t, dom, dev)) return -EINVAL;
        Atomics.store(k.i32, k.mem.statics + this.rid + dev.index, dom);
        return 0;
      }),
    );
  }

  private *set_dev_pasid(t: KTask, dom: number, dev: DeviceInfo, pasid: number): KGen<number> {
    const k = this.k;
    return yield* k.call(
      t,
      'nohw_set_dev_pasid',
      k.step(t, `set_dev_pasid(${dev.name}, ${pasid})`, () => {
        let err = this.injected(dev, pasid);
        if (err === 0 && !this.compatible(t, dom, dev)) err = -EINVAL;
        if (err !== 0) {
          if (this.bug === 'clear-on-failure') Atomics.store(k.i32, this.entry(dev, pasid), 0);
          return err;
        }
        // One store: the hardware goes from the old domain to the new one with no window without either.
        Atomics.store(k.i32, this.entry(dev, pasid), dom);
        return 0;
      }),
    );
  }

  *remove_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, _domain: IommuDomain, _why: RemoveWhy): KGen {
    const k = this.k;
    yield* k.call(
      t,
      'nohw_remove_dev_pasid',
      k.step(t, `remove_dev_pasid(${dev.name}, ${pasid})`, () => {
        Atomics.store(k.i32, this.entry(dev, pasid), 0);
      }),
    );
  }

  /**
   * Make the next set_dev_pasid of {dev, pasid} fail with err (e.g. -ENOMEM), or with IOMMU_NO_PASID the next
   * attach_dev of dev. Per entry, so that other attachments racing with the one under test are not hit.
   */
  *failNext(t: KTask, err: number, dev: DeviceInfo, pasid: number = IOMMU_NO_PASID): KGen {
    const k = this.k;
    yield* k.step(t, `inject ${err} (${dev.name}, ${pasid})`, () => {
      Atomics.store(k.i32, k.mem.statics + this.inject + dev.index * this.maxPasids + pasid, err);
    });
  }

  /** A DMA from dev tagged with pasid: the domain it translates through (0: blocked), read as the hardware does. */
  *dma(t: KTask, dev: DeviceInfo, pasid: number): KGen<number> {
    const k = this.k;
    return yield* k.call(
      t,
      'nohw_dma',
      k.step(t, `dma(${dev.name}, ${pasid})`, (env) => {
        const dom = Atomics.load(k.i32, this.entry(dev, pasid));
        // The walk starts at the domain: a freed one is a use-after-free by the hardware.
        if (dom !== 0) objLoad(k, t, dom, DOM.iommu);
        this.onDma?.(t, dev, pasid, dom, env.step);
        return dom;
      }),
    );
  }

  // ---- reads ----

  /** The domain installed for {dev, pasid} now. */
  installed(dev: DeviceInfo, pasid: number): number {
    return Atomics.load(this.k.i32, this.entry(dev, pasid));
  }

  /** The domain dev's RID uses now. */
  ridDomain(dev: DeviceInfo): number {
    return Atomics.load(this.k.i32, this.k.mem.statics + this.rid + dev.index);
  }

  /** Every installed PASID entry as [device index, pasid, domain]. */
  entries(): [number, number, number][] {
    const out: [number, number, number][] = [];
    for (let d = 0; d < this.devices; d++) {
      for (let p = 0; p < this.maxPasids; p++) {
        const v = Atomics.load(this.k.i32, this.k.mem.statics + this.table + d * this.maxPasids + p);
        if (v !== 0) out.push([d, p, v]);
      }
    }
    return out;
  }
}
