// The DMA API's side of the IOMMU core (seed 001; drivers/iommu/dma-iommu.c, iommu_probe_device and the
// default domain in drivers/iommu/iommu.c): at probe a device gets a default DMA domain — one per IOMMU
// instance shared by its devices (what seed 001 argues for: address spaces are scarce), one per device (what
// the ARM code did), or none, leaving the driver to manage its own (a composite DRM device). dma_map/unmap
// then go through that domain, an unmap flushing the IOTLB and ATC of every device attached to it. VFIO takes a
// device off its default domain only once the host driver has let go of its mappings: the model refuses a
// takeover while DMA-API mappings are live (-EBUSY), rather than pulling the domain from under them.
import type { KTask } from '../kernel/context.js';
import { EBUSY, ENODEV, errname } from '../kernel/errno.js';
import { callTrace, type KernelFinding, taskFinding } from '../kernel/findings.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import { kmemleak_not_leak } from '../kernel/slab.js';
import type { Domains, DomainType } from './domain.js';
import type { Sva } from './sva.js';
import type { DeviceInfo } from './types.js';

export type DefaultDomainPolicy = 'per-instance' | 'per-device' | 'none';
export const DEFAULT_DOMAIN_POLICIES: readonly DefaultDomainPolicy[] = ['none', 'per-instance', 'per-device'];

const V_DOMAIN = 0; // the domain {dev, PASID 0} is attached to (a slab object), 0: none
const V_OWNER = 1; // OWNER_*
const V_MAPPINGS = 2; // live DMA-API mappings the host driver holds
const V_WORDS = 3;
export const OWNER_NONE = 0;
export const OWNER_DMA_API = 1;
export const OWNER_VFIO = 2;
export const OWNER_DRIVER = 3;

export interface Outcome {
  readonly err: number;
  readonly why: string;
}

export class DmaApi {
  private readonly state: number;
  private readonly shared: number;
  readonly lock: Mutex;

  constructor(
    private readonly k: Kernel,
    private readonly sva: Sva,
    readonly domains: Domains,
    private readonly devices: readonly DeviceInfo[],
    readonly policy: DefaultDomainPolicy,
    /** Owner id of the kernel's pages (init_mm): what a DMA-API mapping maps. */
    private readonly kernelOwner: number,
  ) {
    this.state = k.statics.alloc(devices.length * V_WORDS, 'dma-iommu device state');
    this.shared = k.statics.alloc(Math.max(1, ...devices.map((d) => d.iommu + 1)), 'per-instance default domains');
    this.lock = defineMutex(k, '&group->mutex');
  }

  private v(dev: DeviceInfo, f: number): number {
    return this.k.mem.statics + this.state + dev.index * V_WORDS + f;
  }

  domainOf(dev: DeviceInfo): number {
    return this.k.i32[this.v(dev, V_DOMAIN)] as number;
  }

  ownerOf(dev: DeviceInfo): number {
    return this.k.i32[this.v(dev, V_OWNER)] as number;
  }

  mappings(dev: DeviceInfo): number {
    return this.k.i32[this.v(dev, V_MAPPINGS)] as number;
  }

  /** iommu_probe_device → iommu_setup_default_domain, as the policy says. */
  *probe(t: KTask, dev: DeviceInfo): KGen<Outcome> {
    const k = this.k;
    return yield* k.call(
      t,
      'iommu_probe_device',
      function* (this: DmaApi): KGen<Outcome> {
        if (this.policy === 'none') {
          yield* k.step(t, `${dev.name}: no default domain (driver-managed)`, () => void Atomics.store(k.i32, this.v(dev, V_OWNER), OWNER_DRIVER));
          return { err: 0, why: 'driver-managed' };
        }
        yield* mutex_lock(k, t, this.lock);
        try {
          let dom = this.policy === 'per-instance' ? (k.i32[k.mem.statics + this.shared + dev.iommu] as number) : 0;
          if (dom === 0) {
            const a = yield* this.domains.alloc(t, 'dma', dev.iommu);
            if (a.err < 0) {
              yield* k.step(t, `iommu_probe_device(${dev.name}): ${errname(a.err)}`, (env) => k.report(probeFailed(t, env.step, dev, a.err, a.why)));
              return { err: a.err, why: `iommu probe of ${dev.name} failed: ${a.why}` };
            }
            dom = a.dom;
            // A default domain lives as long as its device (or instance): not a leak at teardown.
            yield* kmemleak_not_leak(k, t, dom);
            if (this.policy === 'per-instance') yield* k.step(t, 'instance default domain', () => void Atomics.store(k.i32, k.mem.statics + this.shared + dev.iommu, dom));
          }
          const err = yield* this.attach(t, dev, dom, OWNER_DMA_API);
          return err < 0 ? { err, why: `${dev.name}: attaching its default domain failed` } : { err: 0, why: 'default domain' };
        } finally {
          yield* mutex_unlock(k, t, this.lock);
        }
      }.call(this),
    );
  }

  /** Attach {dev, PASID 0} to dom (a DMA or paging domain) for `owner`. */
  *attach(t: KTask, dev: DeviceInfo, dom: number, owner: number, pagesOwner = this.kernelOwner): KGen<number> {
    const k = this.k;
    const table = this.domains.pageTable(t, dom);
    if (!table) return -ENODEV;
    const err = yield* this.sva.attachTable(t, dev, 0, table, pagesOwner);
    if (err < 0) return err;
    yield* k.step(t, `${dev.name}: attached`, () => {
      Atomics.store(k.i32, this.v(dev, V_DOMAIN), dom);
      Atomics.store(k.i32, this.v(dev, V_OWNER), owner);
    });
    return 0;
  }

  /** Detach {dev, PASID 0} from its domain (flushing what the hardware caches of it). */
  *detach(t: KTask, dev: DeviceInfo): KGen<number> {
    const k = this.k;
    const dom = this.domainOf(dev);
    if (dom === 0) return 0;
    const table = this.domains.pageTable(t, dom);
    if (table) yield* this.sva.detachTable(t, dev, 0, table);
    yield* k.step(t, `${dev.name}: detached`, () => {
      Atomics.store(k.i32, this.v(dev, V_DOMAIN), 0);
    });
    return dom;
  }

  /** dma_map_page(dev, page): an IOVA (≥ 0) in dev's domain, or -errno. */
  *map(t: KTask, dev: DeviceInfo, pfn: number, write: boolean): KGen<number> {
    const k = this.k;
    const dom = this.domainOf(dev);
    if (dom === 0 || this.ownerOf(dev) !== OWNER_DMA_API) return -ENODEV;
    const iova = yield* this.domains.mapAny(t, dom, pfn, write);
    if (iova < 0) return iova;
    yield* k.step(t, 'dma_map_page', () => void Atomics.add(k.i32, this.v(dev, V_MAPPINGS), 1));
    return iova;
  }

  /** dma_unmap_page(dev, iova): clear the PTE, then flush every device attached to the domain. */
  *unmap(t: KTask, dev: DeviceInfo, iova: number): KGen<number> {
    const k = this.k;
    const dom = this.domainOf(dev);
    if (dom === 0) return -ENODEV;
    const err = yield* this.domains.unmap(t, dom, iova);
    if (err < 0) return err;
    const table = this.domains.pageTable(t, dom);
    if (table) {
      for (const d of this.devices) if (this.domainOf(d) === dom) yield* this.sva.flushTable(t, d, 0, table, iova, iova + 1);
    }
    yield* k.step(t, 'dma_unmap_page', () => void Atomics.sub(k.i32, this.v(dev, V_MAPPINGS), 1));
    return 0;
  }

  /**
   * vfio: take dev off its default domain and give it one VFIO owns. Refused while the host driver still has
   * DMA-API mappings (it must be unbound first, seed 001); otherwise the detach flushes the IOTLB and ATC.
   * `force` is the rejected alternative: pull the domain from under the live mappings (the host driver's DMA in
   * flight then translates through VFIO's domain), keeping the old one for the host driver's unmaps.
   */
  *vfioTakeover(t: KTask, dev: DeviceInfo, type: DomainType = 'paging', force = false): KGen<Outcome> {
    const k = this.k;
    return yield* k.call(
      t,
      'vfio_group_set_container',
      function* (this: DmaApi): KGen<Outcome> {
        yield* mutex_lock(k, t, this.lock);
        try {
          const live = this.mappings(dev);
          if (live > 0 && !force) return { err: -EBUSY, why: `${dev.name}: the host driver still holds ${live} DMA mapping${live > 1 ? 's' : ''}: unbind it first` };
          const old = yield* this.detach(t, dev);
          if (old !== 0 && this.policy === 'per-device' && live === 0) yield* this.domains.free(t, old);
          const a = yield* this.domains.alloc(t, type, dev.iommu);
          if (a.err < 0) return { err: a.err, why: `${dev.name}: ${a.why}` };
          // VFIO holds it until the container goes, which a run does not model: not a leak at teardown.
          yield* kmemleak_not_leak(k, t, a.dom);
          const err = yield* this.attach(t, dev, a.dom, OWNER_VFIO, 0);
          return err < 0 ? { err, why: `${dev.name}: attaching the VFIO domain failed` } : { err: 0, why: 'owned by VFIO' };
        } finally {
          yield* mutex_unlock(k, t, this.lock);
        }
      }.call(this),
    );
  }

}

/**
 * A device whose default domain could not be allocated is not added to its IOMMU: reported at that step, as
 * of_iommu_configure / acpi_iommu_configure_id log it (`dev_dbg(dev, "Adding to IOMMU failed: %pe")`), with the
 * call chain that failed. The driver core then binds its driver without the IOMMU's DMA ops.
 */
function probeFailed(t: KTask, step: number, dev: DeviceInfo, err: number, why: string): KernelFinding {
  const title = `pci ${dev.name}: Adding to IOMMU failed: ${errname(err)}`;
  return taskFinding('probe', t, step, title, [`iommu-sim: iommu_setup_default_domain: ${why}`, ...callTrace(t.chain())]);
}
