// drivers/pci (probe.c, remove.c, search.c) as far as device lifetime goes: each PCI device's struct pci_dev is a
// slab object with a reference count (its struct device's kobject kref: pci_dev_get / pci_dev_put), created by
// kernel_init's bus scan (pci_device_add: the bus list holds the first reference) and freed by pci_release_dev on
// the last put. Lookups that return a device take a reference the caller must put (pci_get_domain_bus_and_slot).
// Removal — a hot-unplug seen by pciehp, or sysfs remove — is pci_stop_and_remove_bus_device in the kernel's
// order: the driver's remove (device_release_driver), then device_del's bus notifier (BUS_NOTIFY_REMOVED_DEVICE:
// the IOMMU core's iommu_release_device), then list_del from the bus and the bus's put. A reference leaked by a
// lookup keeps a removed device's pci_dev allocated: kmemleak reports it at teardown ("unreferenced object"), as
// the kernel's scan would once nothing on the bus points at it; a use after the last put is KASAN's. The driver's
// remove stops the driver's own kernel threads (kthreads, src/workloads/kthreads.ts) before its user queues, and
// ends with pci_disable_device; a surprise removal marks the device disconnected first (pci_dev_set_disconnected).
// Removals are serialized as pci_lock_rescan_remove does: a device is removed once.
import { BUS_NOTIFY_REMOVED_DEVICE } from '../../core/iommu.js';
import type { DeviceInfo } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import { leakReport } from '../../kernel/kasan.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { kref_get, kref_init, kref_put, objectKref } from '../../kernel/refcount.js';
import { kfree, kmemleak_not_leak, kzalloc, objInfo, objLoad, slabInit } from '../../kernel/slab.js';
import { struct, word } from '../../kernel/struct.js';
import type { PciDevice } from './device.js';

/** struct pci_dev, the words the model uses. */
export const PCI_DEV = struct('pci_dev', {
  refcount: word, // dev.kobj.kref
  devfn: word,
  bus: word, // bus->number
  segment: word, // pci_domain_nr(bus)
});

/**
 * The bus's per-device state (static): the pci_dev pointer, whether it was removed from the bus list, whether a
 * removal has begun (under pci_lock_rescan_remove), and pdev->error_state's pci_channel_io_perm_failure.
 */
const BUS_SLOT = struct('pci_bus_slot', { pdev: word, removed: word, removing: word, disconnected: word });

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    pci_device_add(t: KTask, dev: DeviceInfo): KGen;
    pci_dev_get(t: KTask, pdev: number): KGen<number>;
    pci_dev_put(t: KTask, pdev: number): KGen;
    /** A referenced struct pci_dev, or 0 (NULL): the caller puts it. */
    pci_get_domain_bus_and_slot(t: KTask, segment: number, bus: number, devfn: number): KGen<number>;
    pci_stop_and_remove_bus_device(t: KTask, dev: DeviceInfo): KGen;
    /** The device driver's remove (device_release_driver). */
    pci_device_remove(t: KTask, dev: DeviceInfo): KGen;
    /** pdev->error_state = pci_channel_io_perm_failure: the device is gone (pciehp, on a surprise removal). */
    pci_dev_set_disconnected(t: KTask, dev: DeviceInfo): KGen;
    /** The driver's kernel threads stopped (kthread_stop) and their work drained; defined when the driver has some. */
    accel_kthreads_stop(t: KTask, dev: DeviceInfo): KGen;
  }
}

const PROBE_C = 'drivers/pci/probe.c';
const REMOVE_C = 'drivers/pci/remove.c';
const SEARCH_C = 'drivers/pci/search.c';

/** `0000:00:02.0` → [segment, bus, devfn]. */
export function pciAddress(name: string): readonly [number, number, number] {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(name);
  if (!m) throw new Error(`pci: not a PCI address: ${name}`);
  const [, seg, bus, slot, fn] = m as unknown as [string, string, string, string, string];
  return [Number.parseInt(seg, 16), Number.parseInt(bus, 16), (Number.parseInt(slot, 16) << 3) | Number(fn)];
}

/** The PCI bus of a topology's devices: their struct pci_dev and the functions above, by kernel name. */
export class PciBus {
  private readonly slots: number;
  readonly hotplugTask: string;

  constructor(
    private readonly k: Kernel,
    private readonly devices: readonly PciDevice[],
  ) {
    // struct pci_dev is a slab object: the allocator is set up at declaration (a preset that set it up already keeps its options).
    slabInit(k);
    this.slots = k.statics.alloc(Math.max(1, devices.length) * BUS_SLOT.words, 'pci bus devices');
    this.hotplugTask = 'pciehp_ist';
    this.define();
    // pciehp's interrupt thread: a presence or link change of the slot (the device is gone) removes it.
    k.task(this.hotplugTask, 'kthread', (t, index) => this.pciehp(t, index as number));
    for (const d of devices) d.onSurpriseRemoval(this.hotplugTask);
    k.onEnd(() => this.kmemleak());
  }

  private define(): void {
    const fns = this.k.fns;
    fns.define('pci_device_add', PROBE_C, (t, dev) => this.add(t, dev));
    fns.define('pci_dev_get', PROBE_C, (t, pdev) => this.get(t, pdev));
    fns.define('pci_dev_put', PROBE_C, (t, pdev) => this.put(t, pdev));
    fns.define('pci_get_domain_bus_and_slot', SEARCH_C, (t, seg, bus, devfn) => this.lookup(t, seg, bus, devfn));
    fns.define('pci_stop_and_remove_bus_device', REMOVE_C, (t, dev) => this.remove(t, dev));
    fns.define('pci_device_remove', 'drivers/pci/pci-driver.c', (t, dev) => this.driverRemove(t, dev));
    fns.define('pci_dev_set_disconnected', 'drivers/pci/pci.h', (t, dev) =>
      this.k.step(t, `pci_dev_set_disconnected(${dev.name})`, () => {
        this.k.i32[this.slot(dev.index) + BUS_SLOT.offset.disconnected] = 1;
      }),
    );
  }

  private slot(index: number): number {
    return this.k.mem.statics + this.slots + index * BUS_SLOT.words;
  }

  /** dev's struct pci_dev (0 before the bus scan): reads only. */
  pdev(dev: DeviceInfo): number {
    return this.k.i32[this.slot(dev.index) + BUS_SLOT.offset.pdev] as number;
  }

  /** pci_dev_is_disconnected: a surprise removal saw the device gone. Reads only. */
  disconnected(dev: DeviceInfo): boolean {
    return (this.k.i32[this.slot(dev.index) + BUS_SLOT.offset.disconnected] as number) === 1;
  }

  /** Removed from the bus list (pci_destroy_dev)? Reads only. */
  removed(dev: DeviceInfo): boolean {
    return (this.k.i32[this.slot(dev.index) + BUS_SLOT.offset.removed] as number) === 1;
  }

  private kref(pdev: number) {
    return objectKref(this.k, 'pci_dev->dev.kobj.kref', pdev, PCI_DEV.offset.refcount);
  }

  /** pci_device_add: a new struct pci_dev with the bus list's reference (kmemleak finds it through the list). */
  private *add(t: KTask, dev: DeviceInfo): KGen {
    const k = this.k;
    const pdev = yield* kzalloc(k, t, PCI_DEV.words, 'GFP_KERNEL', 'pci_dev');
    if (pdev === 0) return;
    const [seg, bus, devfn] = pciAddress(dev.name);
    yield* kref_init(k, t, this.kref(pdev));
    yield* kmemleak_not_leak(k, t, pdev);
    const o = PCI_DEV.offset;
    const slot = this.slot(dev.index) + BUS_SLOT.offset.pdev;
    yield* k.stepOn(t, `list_add(${dev.name}, &bus->devices)`, [pdev + o.segment, pdev + o.bus, pdev + o.devfn, slot], () => {
      k.i32[pdev + o.segment] = seg;
      k.i32[pdev + o.bus] = bus;
      k.i32[pdev + o.devfn] = devfn;
      k.i32[slot] = pdev;
    });
  }

  private *get(t: KTask, pdev: number): KGen<number> {
    if (pdev !== 0) yield* kref_get(this.k, t, this.kref(pdev));
    return pdev;
  }

  /** pci_dev_put: the last put runs pci_release_dev, which frees the struct. */
  private *put(t: KTask, pdev: number): KGen {
    if (pdev === 0) return;
    const k = this.k;
    yield* kref_put(k, t, this.kref(pdev), function* (t2: KTask): KGen {
      yield* k.call(t2, 'pci_release_dev', kfree(k, t2, pdev));
    });
  }

  /** pci_get_domain_bus_and_slot: walks the bus list; the device found is returned with a reference. */
  private *lookup(t: KTask, segment: number, bus: number, devfn: number): KGen<number> {
    const k = this.k;
    const found = yield* k.step(t, 'bus_find_device(match_pci_dev_by_id)', () => {
      for (const d of this.devices) {
        if (this.removed(d.info)) continue;
        const pdev = this.pdev(d.info);
        if (pdev === 0) continue;
        if (objLoad(k, t, pdev, PCI_DEV.offset.segment) === segment && objLoad(k, t, pdev, PCI_DEV.offset.bus) === bus && objLoad(k, t, pdev, PCI_DEV.offset.devfn) === devfn) return pdev;
      }
      return 0;
    });
    return yield* this.get(t, found);
  }

  /**
   * The driver's remove (idxd_remove's order): its kernel threads stopped and their work drained, then its user
   * queues put (uacce_remove), then pci_disable_device — bus mastering off, the device issues nothing more.
   */
  private *driverRemove(t: KTask, dev: DeviceInfo): KGen {
    const k = this.k;
    if (k.fns.has('accel_kthreads_stop')) yield* k.fn.accel_kthreads_stop(t, dev);
    if (k.fns.has('accel_remove')) yield* k.fn.accel_remove(t, dev);
    else yield* k.step(t, `accel_remove(${dev.name})`, () => undefined);
    yield* k.step(t, `pci_disable_device(${dev.name})`, (env) => env.send(dev.actor, { type: 'disable' }));
  }

  /**
   * pci_stop_and_remove_bus_device: pci_stop_dev (the driver's remove), then pci_destroy_dev — device_del's
   * BUS_NOTIFY_REMOVED_DEVICE (the IOMMU core releases the device), list_del from the bus, put_device.
   */
  private *remove(t: KTask, dev: DeviceInfo): KGen {
    const k = this.k;
    // pci_lock_rescan_remove: a second remover (pciehp and sysfs, two slot events) finds the device going.
    const first = yield* k.step(t, `pci_lock_rescan_remove: ${dev.name} on the bus`, () => {
      const at = this.slot(dev.index) + BUS_SLOT.offset.removing;
      if (this.removed(dev) || this.pdev(dev) === 0 || k.i32[at] === 1) return false;
      k.i32[at] = 1;
      return true;
    });
    if (!first) return;
    yield* k.fn.pci_device_remove(t, dev);
    if (k.fns.has('iommu_bus_notifier')) yield* k.call(t, 'device_del', k.fn.iommu_bus_notifier(t, BUS_NOTIFY_REMOVED_DEVICE, dev));
    const pdev = yield* k.step(t, `list_del(${dev.name}, &bus->devices)`, (env) => {
      k.i32[this.slot(dev.index) + BUS_SLOT.offset.removed] = 1;
      // The device leaves the IOMMU core: its actor is told (iommu_release_device).
      env.send(dev.actor, { type: 'release' });
      return this.pdev(dev);
    });
    yield* k.fn.pci_dev_put(t, pdev);
  }

  /** pciehp_ist → pciehp_disable_slot → pciehp_unconfigure_device: the slot's device is removed. */
  private *pciehp(t: KTask, index: number): KGen {
    const d = this.devices[index];
    if (!d) return;
    yield* this.unconfigure(t, d.info, false);
  }

  /**
   * pciehp_unconfigure_device(ctrl, presence): with the device gone (no presence) it is marked disconnected
   * first, so that its driver's remove does not wait on hardware that will never answer; then it is removed.
   */
  *unconfigure(t: KTask, dev: DeviceInfo, presence: boolean): KGen {
    const k = this.k;
    yield* k.call(
      t,
      'pciehp_unconfigure_device',
      (function* (): KGen {
        if (!presence) yield* k.fn.pci_dev_set_disconnected(t, dev);
        yield* k.fn.pci_stop_and_remove_bus_device(t, dev);
      })(),
    );
  }

  /** kmemleak at teardown: a removed device's pci_dev still allocated — nothing on the bus points at it. */
  private kmemleak(): void {
    const k = this.k;
    if (!k.enabled('leaks') || k.tasksLeftBlocked) return;
    for (const d of this.devices) {
      const pdev = this.pdev(d.info);
      if (!this.removed(d.info) || pdev === 0) continue;
      const o = objInfo(k, pdev);
      if (o?.state !== 'allocated') continue;
      const refs = k.i32[pdev + PCI_DEV.offset.refcount] as number;
      const f = leakReport(k, o, Array.from(k.i32.subarray(pdev, pdev + PCI_DEV.words)));
      const why = `${d.info.name} was removed from its bus with ${refs} reference${refs === 1 ? '' : 's'} still held (a pci_dev_get or lookup without its pci_dev_put)`;
      k.report({ ...f, text: `${f.text}\n  iommu-sim: ${why}` });
    }
  }
}
