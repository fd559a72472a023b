// The DMA API's side of the IOMMU core (seed 001): drivers/iommu/dma-iommu.c (iommu_dma_map_page /
// iommu_dma_unmap_page) and the DMA-API parts of drivers/iommu/iommu.c (iommu_probe_device and
// iommu_setup_default_domain). At probe a device gets a default DMA domain — one per IOMMU instance shared by its
// devices (what seed 001 argues for: address spaces are scarce), one per device (what one vendor's DMA code did), or none,
// leaving the driver to manage its own (a composite DRM device): the `defaultDomain` policy is the implementation
// of iommu_setup_default_domain. dma_map/unmap then go through that domain, an unmap flushing the IOTLB and ATC
// of every device attached to it. VFIO takes a device off its default domain only once the host driver has let
// go of its mappings: the model refuses a takeover while DMA-API mappings are live (-EBUSY), rather than pulling
// the domain from under them.
import type { KTask } from '../kernel/context.js';
import { EBUSY, ENODEV, errname } from '../kernel/errno.js';
import { callTrace, type KernelFinding, taskFinding } from '../kernel/findings.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import { kmemleak_not_leak } from '../kernel/slab.js';
import { element, struct, type ViewOf, word } from '../kernel/struct.js';
import type { Domains, DomainType } from './iommu.js';
import type { Sva } from './iommu-sva.js';
import type { DeviceInfo } from './types.js';

export type DefaultDomainPolicy = 'per-instance' | 'per-device' | 'none';
export const DEFAULT_DOMAIN_POLICIES: readonly DefaultDomainPolicy[] = ['none', 'per-instance', 'per-device'];

/**
 * A device's DMA-API state: what the kernel keeps in dev->iommu_group (its domain, its DMA owner) and the
 * driver's live mappings, one record per device.
 */
export const DEV_IOMMU_DMA = struct('dev_iommu', {
  domain: word, // group->domain: the domain {dev, PASID 0} is attached to (a slab object), 0: none
  owner: word, // group->owner, as OWNER_*
  mappings: word, // model: live DMA-API mappings the host driver holds
});

/** An IOMMU instance's default domain (seed 001's per-instance policy): model only, one record per IOMMU. */
export const IOMMU_DEVICE_DMA = struct('iommu_device', {
  default_domain: word, // 0: none yet
});

export const OWNER_NONE = 0;
export const OWNER_DMA_API = 1;
export const OWNER_VFIO = 2;
export const OWNER_DRIVER = 3;

export interface Outcome {
  readonly err: number;
  readonly why: string;
}

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    iommu_probe_device(t: KTask, dev: DeviceInfo): KGen<Outcome>;
    /** Caller holds group->mutex. */
    iommu_setup_default_domain(t: KTask, dev: DeviceInfo): KGen<Outcome>;
    /** An IOVA (≥ 0) mapping pfn in dev's domain, or -errno. */
    iommu_dma_map_page(t: KTask, dev: DeviceInfo, pfn: number, write: boolean): KGen<number>;
    iommu_dma_unmap_page(t: KTask, dev: DeviceInfo, iova: number): KGen<number>;
    vfio_group_set_container(t: KTask, dev: DeviceInfo, type: DomainType, force: boolean): KGen<Outcome>;
  }
}

const FILE_IOMMU = 'drivers/iommu/iommu.c';
const FILE_DMA = 'drivers/iommu/dma-iommu.c';

/**
 * The DMA API over the kernel's IOMMU domains. Its functions are registered by kernel name at construction; the
 * methods are the model's call sites for them.
 */
export class DmaApi {
  private readonly state: number;
  private readonly shared: number;
  private readonly dev: ViewOf<typeof DEV_IOMMU_DMA>;
  private readonly unit: ViewOf<typeof IOMMU_DEVICE_DMA>;
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
    this.state = k.statics.alloc(devices.length * DEV_IOMMU_DMA.words, 'dma-iommu device state');
    this.shared = k.statics.alloc(Math.max(1, ...devices.map((d) => d.iommu + 1)) * IOMMU_DEVICE_DMA.words, 'per-instance default domains');
    this.dev = k.struct(DEV_IOMMU_DMA);
    this.unit = k.struct(IOMMU_DEVICE_DMA);
    this.lock = defineMutex(k, '&group->mutex');
    this.define();
  }

  private define(): void {
    const fns = this.k.fns;
    fns.define('iommu_probe_device', FILE_IOMMU, (t, dev) => this.probeDevice(t, dev));
    fns.definePolicy('iommu_setup_default_domain', FILE_IOMMU, 'defaultDomain', this.policy, {
      none: (t, dev) => this.noDefaultDomain(t, dev),
      'per-instance': (t, dev) => this.setupDefaultDomain(t, dev, true),
      'per-device': (t, dev) => this.setupDefaultDomain(t, dev, false),
    });
    fns.define('iommu_dma_map_page', FILE_DMA, (t, dev, pfn, write) => this.mapPage(t, dev, pfn, write));
    fns.define('iommu_dma_unmap_page', FILE_DMA, (t, dev, iova) => this.unmapPage(t, dev, iova));
    fns.define('vfio_group_set_container', 'drivers/vfio/container.c', (t, dev, type, force) => this.setContainer(t, dev, type, force));
  }

  /** dev's struct dev_iommu (its word offset). */
  private d(dev: DeviceInfo): number {
    return element(DEV_IOMMU_DMA, this.k.mem.statics + this.state, dev.index);
  }

  /** IOMMU u's record (its word offset). */
  private u(iommu: number): number {
    return element(IOMMU_DEVICE_DMA, this.k.mem.statics + this.shared, iommu);
  }

  domainOf(dev: DeviceInfo): number {
    return this.dev.domain.get(this.d(dev));
  }

  ownerOf(dev: DeviceInfo): number {
    return this.dev.owner.get(this.d(dev));
  }

  mappings(dev: DeviceInfo): number {
    return this.dev.mappings.get(this.d(dev));
  }

  /** The words domainOf and mappings read (a point's footprint). */
  domainAddr(dev: DeviceInfo): number {
    return this.dev.domain.addr(this.d(dev));
  }

  mappingsAddr(dev: DeviceInfo): number {
    return this.dev.mappings.addr(this.d(dev));
  }

  /** iommu_probe_device (k.fn). */
  probe(t: KTask, dev: DeviceInfo): KGen<Outcome> {
    return this.k.fn.iommu_probe_device(t, dev);
  }

  /** dma_map_page(dev, page) → iommu_dma_map_page (k.fn). */
  map(t: KTask, dev: DeviceInfo, pfn: number, write: boolean): KGen<number> {
    return this.k.fn.iommu_dma_map_page(t, dev, pfn, write);
  }

  /** dma_unmap_page(dev, iova) → iommu_dma_unmap_page (k.fn). */
  unmap(t: KTask, dev: DeviceInfo, iova: number): KGen<number> {
    return this.k.fn.iommu_dma_unmap_page(t, dev, iova);
  }

  /**
   * vfio: take dev off its default domain and give it one VFIO owns (vfio_group_set_container, k.fn). Refused
   * while the host driver still has DMA-API mappings (it must be unbound first, seed 001); otherwise the detach
   * flushes the IOTLB and ATC. `force` is the rejected alternative: pull the domain from under the live mappings
   * (the host driver's DMA in flight then translates through VFIO's domain), keeping the old one for the host
   * driver's unmaps.
   */
  vfioTakeover(t: KTask, dev: DeviceInfo, type: DomainType = 'paging', force = false): KGen<Outcome> {
    return this.k.fn.vfio_group_set_container(t, dev, type, force);
  }

  /** iommu_probe_device → iommu_setup_default_domain under group->mutex (the `none` policy takes no lock). */
  private *probeDevice(t: KTask, dev: DeviceInfo): KGen<Outcome> {
    if (this.policy === 'none') return yield* this.k.fn.iommu_setup_default_domain(t, dev);
    yield* mutex_lock(this.k, t, this.lock);
    try {
      return yield* this.k.fn.iommu_setup_default_domain(t, dev);
    } finally {
      yield* mutex_unlock(this.k, t, this.lock);
    }
  }

  /** defaultDomain=none: the driver manages its own domains (a composite DRM device). */
  private *noDefaultDomain(t: KTask, dev: DeviceInfo): KGen<Outcome> {
    yield* this.k.stepOn(t, `${dev.name}: no default domain (driver-managed)`, [this.dev.owner.addr(this.d(dev))], () => this.dev.owner.WRITE_ONCE(this.d(dev), OWNER_DRIVER));
    return { err: 0, why: 'driver-managed' };
  }

  /** A DMA domain for dev — its instance's (shared, made by its first device) or its own — attached. */
  private *setupDefaultDomain(t: KTask, dev: DeviceInfo, perInstance: boolean): KGen<Outcome> {
    const k = this.k;
    let dom = perInstance ? this.unit.default_domain.get(this.u(dev.iommu)) : 0;
    if (dom === 0) {
      const a = yield* this.domains.alloc(t, 'dma', dev.iommu);
      if (a.err < 0) {
        // The report is the task's own: no shared word.
        yield* k.stepOn(t, `iommu_probe_device(${dev.name}): ${errname(a.err)}`, [], (env) => k.report(probeFailed(t, env.step, dev, a.err, a.why)));
        return { err: a.err, why: `iommu probe of ${dev.name} failed: ${a.why}` };
      }
      dom = a.dom;
      // A default domain lives as long as its device (or instance): not a leak at teardown.
      yield* kmemleak_not_leak(k, t, dom);
      const made = dom;
      if (perInstance) yield* k.stepOn(t, 'instance default domain', [this.unit.default_domain.addr(this.u(dev.iommu))], () => this.unit.default_domain.WRITE_ONCE(this.u(dev.iommu), made));
    }
    const err = yield* this.attach(t, dev, dom, OWNER_DMA_API);
    if (err < 0) return { err, why: `${dev.name}: attaching its default domain failed` };
    // The group's default domain is its own (freed with the group); an instance's is shared, and stays.
    yield* this.sva.svaDomains.groups.recordDomain(t, dev, dom, perInstance ? 'keep' : 'set');
    return { err: 0, why: 'default domain' };
  }

  /** Attach {dev, PASID 0} to dom (a DMA or paging domain) for `owner`. */
  *attach(t: KTask, dev: DeviceInfo, dom: number, owner: number, pagesOwner = this.kernelOwner): KGen<number> {
    const k = this.k;
    const table = this.domains.pageTable(t, dom);
    if (!table) return -ENODEV;
    const err = yield* this.sva.attachTable(t, dev, 0, table, pagesOwner);
    if (err < 0) return err;
    yield* k.stepOn(t, `${dev.name}: attached`, [this.dev.domain.addr(this.d(dev)), this.dev.owner.addr(this.d(dev))], () => {
      this.dev.domain.WRITE_ONCE(this.d(dev), dom);
      this.dev.owner.WRITE_ONCE(this.d(dev), owner);
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
    yield* k.stepOn(t, `${dev.name}: detached`, [this.dev.domain.addr(this.d(dev))], () => this.dev.domain.WRITE_ONCE(this.d(dev), 0));
    return dom;
  }

  /** iommu_dma_map_page: an IOVA (≥ 0) in dev's domain, or -errno. */
  private *mapPage(t: KTask, dev: DeviceInfo, pfn: number, write: boolean): KGen<number> {
    const dom = this.domainOf(dev);
    if (dom === 0 || this.ownerOf(dev) !== OWNER_DMA_API) return -ENODEV;
    const iova = yield* this.domains.mapAny(t, dom, pfn, write);
    if (iova < 0) return iova;
    yield* this.k.stepOn(t, 'dma_map_page', [this.dev.mappings.addr(this.d(dev))], () => this.dev.mappings.atomic_inc(this.d(dev)));
    return iova;
  }

  /** iommu_dma_unmap_page: clear the PTE, then flush every device attached to the domain. */
  private *unmapPage(t: KTask, dev: DeviceInfo, iova: number): KGen<number> {
    const dom = this.domainOf(dev);
    if (dom === 0) return -ENODEV;
    const err = yield* this.domains.unmap(t, dom, iova);
    if (err < 0) return err;
    const table = this.domains.pageTable(t, dom);
    if (table) {
      for (const d of this.devices) if (this.domainOf(d) === dom) yield* this.sva.flushTable(t, d, 0, table, iova, iova + 1);
    }
    yield* this.k.stepOn(t, 'dma_unmap_page', [this.dev.mappings.addr(this.d(dev))], () => this.dev.mappings.atomic_dec(this.d(dev)));
    return 0;
  }

  /** vfio_group_set_container under group->mutex. */
  private *setContainer(t: KTask, dev: DeviceInfo, type: DomainType, force: boolean): KGen<Outcome> {
    const k = this.k;
    // The group's own mutex, the one iommu_attach_device_pasid and iommu_detach_device_pasid take: a teardown here
    // (which drains the PRQ through the driver) is serialised with a PASID attach enabling iopf on the device.
    const mutex = this.sva.svaDomains.groups.groupOf(dev).mutex;
    yield* mutex_lock(k, t, mutex);
    try {
      const live = this.mappings(dev);
      if (live > 0 && !force) return { err: -EBUSY, why: `${dev.name}: the host driver still holds ${live} DMA mapping${live > 1 ? 's' : ''}: unbind it first` };
      const old = yield* this.detach(t, dev);
      const freed = old !== 0 && this.policy === 'per-device' && live === 0;
      if (freed) yield* this.domains.free(t, old);
      const a = yield* this.domains.alloc(t, type, dev.iommu);
      if (a.err < 0) return { err: a.err, why: `${dev.name}: ${a.why}` };
      // VFIO holds it until the container goes, which a run does not model: not a leak at teardown.
      yield* kmemleak_not_leak(k, t, a.dom);
      const err = yield* this.attach(t, dev, a.dom, OWNER_VFIO, 0);
      if (err < 0) return { err, why: `${dev.name}: attaching the VFIO domain failed` };
      yield* this.sva.svaDomains.groups.recordDomain(t, dev, a.dom, freed ? 'clear' : 'keep');
      return { err: 0, why: 'owned by VFIO' };
    } finally {
      yield* mutex_unlock(k, t, mutex);
    }
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
