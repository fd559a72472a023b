// What the kernel does before user space starts (kernel_init): each IOMMU driver enables its unit's command
// queue and then its page request queue, the PCI bus scan gives each device its struct pci_dev (pci_device_add,
// src/hw/pci/pci.ts: the bus, its references and hot-unplug), and each PCI device is probed by the IOMMU core (iommu_probe_device),
// bound by its driver (which may start its kernel thread) and has its PCIe capabilities enabled (pci_enable_pasid, pci_enable_pri, pci_enable_ats).
// Each is a register or config-space write the hardware takes in order, and kernel_init waits until every unit
// and device has taken them (a config write is non-posted) before user space runs — processes' exec waits for
// it, as init does — and before the drivers' own work starts (the tasks it is given).
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { type Footprint, read } from '../runtime/footprint.js';
import type { Wire } from '../runtime/model.js';
import { type IommuUnit, QUEUE_CMDQ, QUEUE_PRQ } from './iommu.js';
import { CONFIG_ENABLED, type PciDevice } from './pci/device.js';
import { PciBus } from './pci/pci.js';

export interface Boot {
  /** The run's initial task. */
  readonly task: { readonly task: string; readonly args: null; readonly name: string };
  /** The PCI bus: the devices' struct pci_dev, lookups, removal. */
  readonly bus: PciBus;
  /** Wait until kernel_init is done (user space starts then). */
  wait(t: KTask): KGen;
}

/** The footprint of a register write the hardware's actor takes as a message: no word of the run's memory. */
const MMIO: Footprint = [];

export function defineBoot(k: Kernel, units: readonly IommuUnit[], devices: readonly PciDevice[], then: readonly { task: string; args?: Wire; name: string }[]): Boot {
  const done = k.statics.alloc(1, 'kernel_init done');
  const booted = (): boolean => Atomics.load(k.i32, k.mem.statics + done) === 1;
  const bus = new PciBus(k, devices);
  const hardwareReady = (): boolean => units.every((u) => u.queuesEnabled === (QUEUE_CMDQ | QUEUE_PRQ)) && devices.every((d) => d.config === CONFIG_ENABLED);
  k.task('kernel_init', 'kthread', function* (t) {
    for (const u of units) {
      yield* k.stepOn(t, `${u.name}: enable the ${u.spec.cmdqName}`, MMIO, (env) => env.send(u.actor, { type: 'cmdq.enable' }));
      yield* k.stepOn(t, `${u.name}: enable the ${u.spec.prqName}`, MMIO, (env) => env.send(u.actor, { type: 'prq.enable' }));
    }
    for (const d of devices) yield* k.fn.pci_device_add(t, d.info);
    for (const d of devices) {
      const caps = d.info.caps;
      const enables = [caps.pasid ? 'pci_enable_pasid' : '', caps.pri ? 'pci_enable_pri' : '', caps.ats ? 'pci_enable_ats' : ''].filter((x) => x !== '');
      yield* k.stepOn(t, `iommu_probe_device(${d.info.name})`, MMIO, (env) => env.send(d.info.actor, { type: 'probe' }));
      yield* k.stepOn(t, `accel_probe(${d.info.name})`, MMIO, (env) => env.send(d.info.actor, { type: 'driver.bind' }));
      // The driver's own kernel thread, when the workload has one (src/workloads/kthreads.ts).
      if (k.fns.has('accel_kthread_run')) yield* k.fn.accel_kthread_run(t, d.info);
      yield* k.stepOn(t, `${enables.join(', ') || 'no PCIe capability'} (${d.info.name})`, MMIO, (env) => env.send(d.info.actor, { type: 'enable' }));
    }
    yield k.point(t, 'wait for the hardware to take its configuration', hardwareReady, () => undefined, { what: 'the IOMMUs and devices to take their configuration' });
    yield* k.stepOn(t, 'kernel_init: run init', [k.mem.statics + done], (env) => {
      Atomics.store(k.i32, k.mem.statics + done, 1);
      for (const x of then) env.spawn(x.task, x.args ?? null, x.name);
    });
  });
  return {
    task: { task: 'kernel_init', args: null, name: 'kernel_init' },
    bus,
    *wait(t: KTask): KGen {
      yield k.point(t, 'wait for kernel_init', booted, () => undefined, { what: 'kernel_init to start user space' }, [read(k.mem.statics + done)]);
    },
  };
}
