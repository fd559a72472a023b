// What the AMD IOMMU's hardware spends on each thing it does, in nanoseconds of its time (HwOut.busy): the table
// reads of a translation, each command of the command buffer, each PPR log write. AMD publishes no latencies for
// these (the IOMMU specification, pub. 48882, gives formats, not timings), so every figure is a model estimate,
// sized on the one thing they all are: an access by the IOMMU to system memory (a DRAM read or write, ~100 ns)
// or a message on the PCIe link. Part time's vendor-neutral HwCosts type (src/hw/costs.ts) will type this table.
import {
  CMD_COMPL_WAIT,
  CMD_COMPLETE_PPR,
  CMD_INV_DEV_ENTRY,
  CMD_INV_IOMMU_PAGES,
  CMD_INV_IOTLB_PAGES,
  type AmdCmdType,
} from './amd_iommu_types.js';

export interface AmdCosts {
  /** The device table entry's read (256 bits, one access), on a translation that misses the IOTLB. */
  readonly dteFetch: number;
  /** One GCR3 table level's entry read (64 bits, one access). */
  readonly gcr3Fetch: number;
  /** Writing one PPR log entry (128 bits) to memory. */
  readonly pprLogWrite: number;
  /** Fetching and executing a command of each type (the device's own ATC invalidation time is the device's). */
  readonly command: Readonly<Record<AmdCmdType, number>>;
}

export const AMD_COSTS: AmdCosts = {
  dteFetch: 100, // model estimate: one DRAM read
  gcr3Fetch: 100, // model estimate: one DRAM read
  pprLogWrite: 100, // model estimate: one DRAM write
  command: {
    [CMD_INV_IOMMU_PAGES]: 100, // model estimate: the 128-bit command's read; the IOTLB's invalidation is in-unit
    [CMD_INV_IOTLB_PAGES]: 100, // model estimate: the command's read and the ATS invalidation request sent
    [CMD_INV_DEV_ENTRY]: 100, // model estimate: the command's read
    [CMD_COMPL_WAIT]: 100, // model estimate: the command's read; its store to the semaphore a write after it
    [CMD_COMPLETE_PPR]: 100, // model estimate: the command's read and the PRG response message sent
  },
};
