// The `hp` actor's steps (task `hpN`): pciehp, the PCIe hot-plug driver, removing a device from its slot while
// the rest of the script runs — a surprise removal (the device pulled out: gone at once, its DMA in flight and
// its outstanding page requests aborted, then pciehp_unconfigure_device without presence) or an orderly one (the
// attention button: pciehp_unconfigure_device with the device present — its driver's remove first, then the slot
// powered off). Declared here in zod with the text docs/steps.md shows; steps.ts registers the kind (HP_KINDS),
// src/workloads/hotplug.ts runs it. (No value import of steps.ts: it imports this file.)
import { flag, integer } from './step-fields.js';
import type { StepKind } from './steps.js';

export const HP_FIELDS = {
  unplug: {
    dev: integer(0, 1023, 'The device (its index in the topology).'),
    surprise: flag("true: the device is pulled out, gone at once; false: an orderly removal (its driver's remove first, then the slot powered off).").default(true),
  },
};

/** The hp kinds as declared (steps.ts adds every kind's common fields). */
export const HP_STEPS: readonly StepKind[] = [
  {
    op: 'unplug',
    text: "Remove the device from its slot: surprise — it is gone at once (its in-flight DMA and page requests aborted), then pciehp_unconfigure_device marks it disconnected and pci_stop_and_remove_bus_device removes it; orderly — pci_stop_and_remove_bus_device first (the driver's remove: its kernel threads, its queues, pci_disable_device; then iommu_release_device), then the slot is powered off.",
    fields: HP_FIELDS.unplug,
    short: 'dev',
  },
];

/** An `hp` actor's own step (`after` and `while` are every actor's: script.ts). */
export type HotplugOp = { readonly op: 'unplug'; readonly dev: number; readonly surprise: boolean };
