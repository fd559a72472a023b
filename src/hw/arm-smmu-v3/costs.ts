// The Arm SMMUv3's costs: how long the SMMU is busy with each configuration fetch it makes and each command it
// consumes (HwOut.busy; docs/costs.md lists them). Arm publishes no latencies for the architecture — they are an
// implementation's — so every figure is a model estimate, scaled from one memory access of the fetch it stands
// for; the ATC invalidation's round trip to the device is not here (the device answers in its own time: the
// `atc.inv` / `atc.done` messages).
import { costTable } from '../costs.js';

const SMMU = costTable({
  steFetchNs: { ns: 80, what: 'an STE fetch (one 64-byte line from the stream table in memory)', source: 'model estimate: one DRAM access' },
  l1cdFetchNs: { ns: 80, what: 'a level-1 CD descriptor fetch (8 bytes)', source: 'model estimate: one DRAM access' },
  cdQwordFetchNs: { ns: 80, what: 'one qword of a CD (the SMMU reads the CD in more than one access)', source: 'model estimate: one DRAM access' },
  cfgiNs: { ns: 40, what: 'decoding and executing a CFGI_STE / CFGI_CD (a configuration-cache lookup by StreamID)', source: 'model estimate' },
  tlbiAsidNs: { ns: 100, what: 'TLBI_NH_ASID: a scan of the TLB for one ASID', source: 'model estimate' },
  tlbiVaNs: { ns: 60, what: 'TLBI_NH_VA with a range: per command', source: 'model estimate' },
  tlbiVaPerPageNs: { ns: 2, what: 'TLBI_NH_VA with a range: per page of the range', source: 'model estimate' },
  atcInvNs: { ns: 60, what: "ATC_INV: building and sending the ATS Invalidate Request (the completion is the device's)", source: 'model estimate' },
  priRespNs: { ns: 40, what: 'PRI_RESP: sending the PRG Response message', source: 'model estimate' },
  resumeNs: { ns: 40, what: 'CMD_RESUME: looking up the stalled transaction by StreamID and STAG, to retry or abort it', source: 'model estimate' },
  cmdSyncNs: { ns: 40, what: 'CMD_SYNC: the completion write (SEV / MSI) once everything before it is done', source: 'model estimate' },
  evtqWriteNs: { ns: 80, what: 'writing an event record to the event queue in memory', source: 'model estimate: one DRAM write' },
});

export const ARM_SMMU_V3_COST_TABLE = SMMU;
export const ARM_SMMU_V3_COSTS = SMMU.ns;
