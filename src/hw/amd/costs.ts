// What the AMD IOMMU's hardware spends on each thing it does, in nanoseconds of its time (HwOut.busy;
// docs/costs.md lists them): the table reads of a translation, each command of the command buffer, each PPR log
// write. AMD publishes no latencies for these (the IOMMU specification, pub. 48882, gives formats, not timings),
// so every figure is a model estimate, sized on the one thing they all are: an access by the IOMMU to system
// memory (a DRAM read or write, ~100 ns) or a message on the PCIe link.
import { costTable } from '../costs.js';
import { type AmdCmdType, CMD_COMPL_WAIT, CMD_COMPLETE_PPR, CMD_INV_DEV_ENTRY, CMD_INV_IOMMU_PAGES, CMD_INV_IOTLB_PAGES } from './amd_iommu_types.js';

const AMD = costTable({
  dteFetch: { ns: 100, what: 'the device table entry read (256 bits, one access) on a translation that misses the IOTLB', source: 'model estimate: one DRAM read' },
  gcr3Fetch: { ns: 100, what: "one GCR3 table level's entry read (64 bits, one access)", source: 'model estimate: one DRAM read' },
  pprLogWrite: { ns: 100, what: 'writing one PPR log entry (128 bits) to memory', source: 'model estimate: one DRAM write' },
  invIommuPages: { ns: 100, what: 'INVALIDATE_IOMMU_PAGES: the 128-bit command read; the IOTLB invalidation is in-unit', source: 'model estimate: one DRAM read' },
  invIotlbPages: { ns: 100, what: 'INVALIDATE_IOTLB_PAGES: the command read and the ATS invalidation request sent', source: 'model estimate: one DRAM read' },
  invDevEntry: { ns: 100, what: 'INVALIDATE_DEVTAB_ENTRY: the command read', source: 'model estimate: one DRAM read' },
  complWait: { ns: 100, what: 'COMPLETION_WAIT: the command read; its store to the semaphore a write after it', source: 'model estimate: one DRAM read' },
  completePpr: { ns: 100, what: 'COMPLETE_PPR_REQUEST: the command read and the PRG response message sent', source: 'model estimate: one DRAM read' },
});

export const AMD_COST_TABLE = AMD;

/** The figures by name, and each command type's (the device's own ATC invalidation time is the device's). */
export const AMD_COSTS = {
  ...AMD.ns,
  command: {
    [CMD_INV_IOMMU_PAGES]: AMD.ns.invIommuPages,
    [CMD_INV_IOTLB_PAGES]: AMD.ns.invIotlbPages,
    [CMD_INV_DEV_ENTRY]: AMD.ns.invDevEntry,
    [CMD_COMPL_WAIT]: AMD.ns.complWait,
    [CMD_COMPLETE_PPR]: AMD.ns.completePpr,
  } as Readonly<Record<AmdCmdType, number>>,
};
