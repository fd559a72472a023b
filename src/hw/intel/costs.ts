// What each thing the VT-d hardware does costs it, in ns of the unit's time (HwOut.busy): a table fetch, the
// execution of each invalidation-queue descriptor, a page request. No public measurement gives these per
// operation for a given part; where none is cited the figure is the model's estimate, of the order of one
// memory access (a fetch) or of a few (a descriptor that scans a cache), so that relative costs are right —
// part `time` turns them into simulated time (until then HwOut.busy spends them in real time).
export interface VtdCosts {
  /** One 64-bit read of a PASID directory entry (PASID[19:6]). */
  readonly pasidDirRead: number;
  /** One 128-bit read of a PASID-table entry (a 512-bit entry is four). */
  readonly pasidEntryRead: number;
  /** A PASID-cache invalidation (QI_PC_TYPE). */
  readonly pcInv: number;
  /** A PASID-based IOTLB invalidation (QI_EIOTLB_TYPE). */
  readonly piotlbInv: number;
  /** Issuing a device-TLB invalidation with PASID (QI_DEIOTLB_TYPE): the device's answer is its own time. */
  readonly devtlbInv: number;
  /** A page group response (QI_PGRP_RESP_TYPE): a PCIe message to the device. */
  readonly pgrpResp: number;
  /** An invalidation wait descriptor (QI_IWD_TYPE) with its status write. */
  readonly invWait: number;
  /** Queuing one page request descriptor (page_req_dsc) in the PRQ. */
  readonly pageRequest: number;
}

export const VTD_COSTS: VtdCosts = {
  // model estimate: one DRAM read by the IOMMU's walker (~100 ns loaded latency).
  pasidDirRead: 100,
  // model estimate: one DRAM read; the four reads of an entry are issued back to back.
  pasidEntryRead: 100,
  // model estimate: a lookup and invalidation of a small fully associative cache.
  pcInv: 50,
  // model estimate: the IOTLB scan of a PASID's entries.
  piotlbInv: 100,
  // model estimate: forming and sending the ATS invalidation request (its completion is the device's).
  devtlbInv: 50,
  // model estimate: forming and sending a PRG response message.
  pgrpResp: 50,
  // model estimate: the ordered status write to memory.
  invWait: 100,
  // model estimate: one 256-bit write into the PRQ in memory.
  pageRequest: 100,
};
