// The Arm SMMUv3's costs: how long the SMMU is busy with each configuration fetch it makes and each command it
// consumes (HwOut.busy). Arm publishes no latencies for the architecture — they are an implementation's — so every
// figure is a model estimate, scaled from one memory access of the fetch it stands for; the ATC invalidation's
// round trip to the device is not here (the device answers in its own time: the `atc.inv` / `atc.done` messages).
// TODO(issue #17 part time): type this with HwCosts from src/hw/costs.ts once it lands.

export const ARM_SMMU_V3_COSTS = {
  /** An STE fetch (one 64-byte line from the stream table in memory). model estimate: one DRAM access. */
  steFetchNs: 80,
  /** A level-1 CD descriptor fetch (8 bytes). model estimate: one DRAM access. */
  l1cdFetchNs: 80,
  /** One qword of a CD (the SMMU reads the CD in more than one access). model estimate: one DRAM access. */
  cdQwordFetchNs: 80,
  /** Decoding and executing a CFGI_STE / CFGI_CD (a configuration-cache lookup by StreamID). model estimate. */
  cfgiNs: 40,
  /** TLBI_NH_ASID: a scan of the TLB for one ASID. model estimate. */
  tlbiAsidNs: 100,
  /** TLBI_NH_VA with a range: per command, plus per page of the range. model estimates. */
  tlbiVaNs: 60,
  tlbiVaPerPageNs: 2,
  /** ATC_INV: building and sending the ATS Invalidate Request (the completion is the device's). model estimate. */
  atcInvNs: 60,
  /** PRI_RESP: sending the PRG Response message. model estimate. */
  priRespNs: 40,
  /** CMD_SYNC: the completion write (SEV / MSI) once everything before it is done. model estimate. */
  cmdSyncNs: 40,
  /** Writing an event record to the event queue in memory. model estimate: one DRAM write. */
  evtqWriteNs: 80,
} as const;

export type ArmSmmuV3Costs = typeof ARM_SMMU_V3_COSTS;
