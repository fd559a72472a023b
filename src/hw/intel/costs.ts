// What each thing the VT-d hardware does costs it, in ns of the unit's time (HwOut.busy; docs/costs.md lists
// them): a table fetch, the execution of each invalidation-queue descriptor, a page request. No public
// measurement gives these per operation for a given part, so each figure is the model's estimate, of the order
// of one memory access (a fetch) or of a few (a descriptor that scans a cache), so that relative costs are right.
import { costTable } from '../costs.js';

const VTD = costTable({
  pasidDirRead: { ns: 100, what: 'one 64-bit read of a PASID directory entry (PASID[19:6])', source: "model estimate: one DRAM read by the IOMMU's walker (~100 ns loaded latency)" },
  pasidEntryRead: { ns: 100, what: 'one 128-bit read of a PASID-table entry (a 512-bit entry is four)', source: 'model estimate: one DRAM read; the four reads of an entry are issued back to back' },
  pcInv: { ns: 50, what: 'a PASID-cache invalidation (QI_PC_TYPE)', source: 'model estimate: a lookup and invalidation of a small fully associative cache' },
  piotlbInv: { ns: 100, what: 'a PASID-based IOTLB invalidation (QI_EIOTLB_TYPE)', source: "model estimate: the IOTLB scan of a PASID's entries" },
  devtlbInv: { ns: 50, what: "issuing a device-TLB invalidation with PASID (QI_DEIOTLB_TYPE); the device's answer is its own time", source: 'model estimate: forming and sending the ATS invalidation request' },
  pgrpResp: { ns: 50, what: 'a page group response (QI_PGRP_RESP_TYPE): a PCIe message to the device', source: 'model estimate: forming and sending a PRG response message' },
  invWait: { ns: 100, what: 'an invalidation wait descriptor (QI_IWD_TYPE) with its status write', source: 'model estimate: the ordered status write to memory' },
  pageRequest: { ns: 100, what: 'queuing one page request descriptor (page_req_dsc) in the PRQ', source: 'model estimate: one 256-bit write into the PRQ in memory' },
});

export const VTD_COST_TABLE = VTD;
export const VTD_COSTS = VTD.ns;
