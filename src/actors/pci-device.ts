// A PCI device as an actor whose states are its lifecycle: `present` on the bus, `probed` (iommu_probe_device),
// `bound` (its driver's probe), `enabled` (pci_enable_ats / pri / pasid: the capabilities it has), then as its
// PASIDs go — `dma` (a PASID started: the device may issue under it), `stopping` (a PASID it was told to stop
// still has DMA in flight), `drained` (what it was told to stop has drained, no PASID running) — and
// `removed` (surprise removal: everything in flight aborted) or `disabled` (the driver's remove turned its bus
// mastering off: an orderly removal) and then `released` (pciehp removed it: the IOMMU core's
// iommu_release_device). The hardware (src/hw/pci/device.ts) handles what a state accepts and keeps the
// per-PASID state the phases are read from; what a state refuses — DMA or a stop before the driver enabled the
// device, a second probe or enable, a release of a device still on the bus or a second release, a probe after
// its release — is a `lifecycle` finding. Messages still in flight to a released device (a stop, an ATC
// invalidation sent before the kernel saw it go) reach nothing: the hardware, gone, drops them.
import type { AnyStateMachine } from 'xstate';
import { CONFIG_ENABLED, type DevicePhase, type PciDevice } from '../hw/pci/device.js';
import { handleAction, type LifecycleState, lifecycleMachine, type Move, type Refusals } from './lifecycle.js';

const HANDLE: Move = { handle: true };
/** What the device takes once enabled: work, translations, page responses, invalidations, stop, removal. */
const HARDWARE_EVENTS = ['submit', 'engine', 'ats.ok', 'ats.fault', 'ats.stall', 'prs', 'atc.inv', 'stop', 'drain.later', 'unplug', 'disable'] as const;
const RUNNING: readonly DevicePhase[] = ['enabled', 'dma', 'stopping', 'drained', 'disabled', 'removed'];

export function pciDeviceMachine(dev: PciDevice, self: number, step: () => number, refusals: Refusals): AnyStateMachine {
  // The phase as of the last event the device took (a kernel step, start_pasid, changes it too): the state the
  // machine follows.
  let phase: DevicePhase = 'enabled';
  const settle = (): void => {
    if (dev.config === CONFIG_ENABLED) phase = dev.phase;
  };
  const taken = Object.fromEntries(HARDWARE_EVENTS.map((e) => [e, HANDLE]));
  const release: Move = { to: 'released', handle: true };
  const states: Record<string, LifecycleState> = {
    present: { on: { probe: { to: 'probed', handle: true } } },
    probed: { on: { 'driver.bind': { to: 'bound', handle: true } } },
    bound: { on: { enable: { to: 'enabled', handle: true } } },
    released: { on: taken },
  };
  for (const here of RUNNING) {
    // Only a device that is gone, or that its driver's remove disabled (an orderly removal), is released.
    states[here] = { on: here === 'removed' || here === 'disabled' ? { ...taken, release } : taken };
  }
  return lifecycleMachine({ id: 'dev', actor: dev.actorName, initial: 'present', states, handle: handleAction(dev, self, step, settle), refusals, phases: { states: RUNNING, read: () => phase } });
}
