// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h: the formats the driver and the SMMU share — the stream table
// entry, the context descriptor, the level-1 context-descriptor table's descriptor, the command queue's and the
// event queue's entries — and their fields by the header's macro names. The model's word is 32 bits: a 64-bit
// qword is two words, `lo` (bits 0–31) and `hi` (bits 32–63), and a field keeps its bit position within its half.
// Where the kernel holds a DMA address (S1ContextPtr, L2Ptr) the model holds a word offset in the run's memory.
import { array, struct, word } from '../../kernel/struct.js';

/** NUM_ENTRY_QWORDS: an STE and a CD are 8 qwords (64 bytes), 16 of the model's words. */
export const NUM_ENTRY_QWORDS = 8;

/**
 * struct arm_smmu_cd { __le64 data[NUM_ENTRY_QWORDS]; }: data[0] holds V, EPD0 and the ASID (with the TCR fields
 * the model does not vary), data[1] TTB0 (the model: the mm's id + 1 — its page table), data[3] MAIR.
 */
export const ARM_SMMU_CD = struct('arm_smmu_cd', {
  q0lo: word,
  q0hi: word,
  q1lo: word,
  q1hi: word,
  q2lo: word,
  q2hi: word,
  q3lo: word,
  q3hi: word,
  rsvd: array(8), // data[4..7]: RES0
});
export const CD_WORDS = ARM_SMMU_CD.words;
/** CTXDESC_CD_0_V: bit 31 of data[0]. */
export const CTXDESC_CD_0_V = 1 << 31;
/** CTXDESC_CD_0_TCR_EPD0: bit 14 — TTB0's walks disabled (arm_smmu_make_sva_cd with no mm: the quiet CD). */
export const CTXDESC_CD_0_TCR_EPD0 = 1 << 14;
/** CTXDESC_CD_0_AA64 (bit 41) and CTXDESC_CD_0_R (45), CTXDESC_CD_0_A (46): in data[0]'s high half. */
export const CTXDESC_CD_0_HI_AA64_R_A = (1 << 9) | (1 << 13) | (1 << 14);
/** CTXDESC_CD_0_ASID: bits 48–63, the high half's 16–31. */
export const CTXDESC_CD_0_ASID_SHIFT = 16;
/** data[3]: the MAIR the driver copies from the CPU's (a constant here). */
export const CD_MAIR = 0x04ff44;

/**
 * struct arm_smmu_ste { __le64 data[NUM_ENTRY_QWORDS]; }: data[0] V, Config, S1Fmt, S1ContextPtr, S1CDMax;
 * data[1] S1DSS, EATS. model: S1ContextPtr is the CD table's offset in the run's static memory, in bits 32–58
 * (the high half's 0–26) where the kernel has the table's DMA address in bits 6–51.
 */
export const ARM_SMMU_STE = struct('arm_smmu_ste', {
  q0lo: word,
  q0hi: word,
  q1lo: word,
  q1hi: word,
  rsvd: array(12),
});
export const STRTAB_STE_0_S1CTXPTR_MASK = (1 << 27) - 1;
export const STE_WORDS = ARM_SMMU_STE.words;
export const STRTAB_STE_0_V = 1;
/** STRTAB_STE_0_CFG: bits 1–3. */
export const STRTAB_STE_0_CFG_SHIFT = 1;
export const STRTAB_STE_0_CFG_ABORT = 0;
export const STRTAB_STE_0_CFG_BYPASS = 4;
export const STRTAB_STE_0_CFG_S1_TRANS = 5;
/** STRTAB_STE_0_S1FMT: bits 4–5. */
export const STRTAB_STE_0_S1FMT_SHIFT = 4;
export const STRTAB_STE_0_S1FMT_LINEAR = 0;
export const STRTAB_STE_0_S1FMT_64K_L2 = 2;
/** STRTAB_STE_0_S1CDMAX: bits 59–63, the high half's 27–31. */
export const STRTAB_STE_0_S1CDMAX_SHIFT = 27;
/** STRTAB_STE_1_S1DSS: bits 0–1 of data[1]. */
export const STRTAB_STE_1_S1DSS_TERMINATE = 0;
export const STRTAB_STE_1_S1DSS_BYPASS = 1;
export const STRTAB_STE_1_S1DSS_SSID0 = 2;
/** STRTAB_STE_1_EATS_TRANS: bits 28–29 of data[1] = 1 (ATS translation requests answered). */
export const STRTAB_STE_1_EATS_TRANS = 1 << 28;

export const steCfg = (q0lo: number): number => (q0lo >>> STRTAB_STE_0_CFG_SHIFT) & 7;
export const steS1fmt = (q0lo: number): number => (q0lo >>> STRTAB_STE_0_S1FMT_SHIFT) & 3;
export const steS1cdmax = (q0hi: number): number => q0hi >>> STRTAB_STE_0_S1CDMAX_SHIFT;
export const steS1ctxptr = (q0hi: number): number => q0hi & STRTAB_STE_0_S1CTXPTR_MASK;
export const steS1dss = (q1lo: number): number => q1lo & 3;

/**
 * CTXDESC_SPLIT: a leaf CD table holds 1 << CTXDESC_SPLIT CDs. model: the kernel's is 10 (CTXDESC_L2_ENTRIES 1024,
 * a 64 KiB leaf); the model's tables are smaller, so a device of 5 or more SSID bits gets a two-level table.
 */
export const CTXDESC_SPLIT = 4;
export const CTXDESC_L2_ENTRIES = 1 << CTXDESC_SPLIT;
/** struct arm_smmu_cdtab_l1 { __le64 l2ptr; }: V (bit 0) and L2Ptr — the model's `hi` is the leaf's word offset. */
export const ARM_SMMU_CDTAB_L1 = struct('arm_smmu_cdtab_l1', { lo: word, hi: word });
export const CTXDESC_L1_DESC_V = 1;

/** The command queue's entry: CMDQ_ENT_DWORDS = 2, four words. */
export const CMDQ_ENT = struct('arm_smmu_cmdq_entry', { q0lo: word, q0hi: word, q1lo: word, q1hi: word });

/** CMDQ_0_OP: bits 0–7. */
export const CMDQ_OP_CFGI_STE = 0x3;
export const CMDQ_OP_CFGI_CD = 0x5;
export const CMDQ_OP_TLBI_NH_ASID = 0x11;
export const CMDQ_OP_TLBI_NH_VA = 0x12;
export const CMDQ_OP_ATC_INV = 0x40;
export const CMDQ_OP_PRI_RESP = 0x41;
export const CMDQ_OP_RESUME = 0x44;
export const CMDQ_OP_CMD_SYNC = 0x46;
export type CmdqOp =
  | typeof CMDQ_OP_CFGI_STE
  | typeof CMDQ_OP_CFGI_CD
  | typeof CMDQ_OP_TLBI_NH_ASID
  | typeof CMDQ_OP_TLBI_NH_VA
  | typeof CMDQ_OP_ATC_INV
  | typeof CMDQ_OP_PRI_RESP
  | typeof CMDQ_OP_RESUME
  | typeof CMDQ_OP_CMD_SYNC;
export const CMDQ_OP_NAMES: Readonly<Record<CmdqOp, string>> = {
  [CMDQ_OP_CFGI_STE]: 'CMD_CFGI_STE',
  [CMDQ_OP_CFGI_CD]: 'CMD_CFGI_CD',
  [CMDQ_OP_TLBI_NH_ASID]: 'CMD_TLBI_NH_ASID',
  [CMDQ_OP_TLBI_NH_VA]: 'CMD_TLBI_NH_VA',
  [CMDQ_OP_ATC_INV]: 'CMD_ATC_INV',
  [CMDQ_OP_PRI_RESP]: 'CMD_PRI_RESP',
  [CMDQ_OP_RESUME]: 'CMD_RESUME',
  [CMDQ_OP_CMD_SYNC]: 'CMD_SYNC',
};
/** CMDQ_0_SSV: bit 11; CMDQ_CFGI_0_SSID / CMDQ_ATC_0_SSID / CMDQ_PRI_0_SSID: bits 12–31. */
export const CMDQ_0_SSV = 1 << 11;
export const CMDQ_0_SSID_SHIFT = 12;

/**
 * struct arm_smmu_cmdq_ent, decoded: what the driver builds (arm_smmu_cmdq_build_cmd encodes it). `sid` is the
 * master's StreamID (the model's: the device index); TLBI_NH_VA and ATC_INV name a page range [start, start + pages)
 * — pages 0: the whole address space (ATC_INV's size 52; range TLBI as with ARM_SMMU_FEAT_RANGE_INV).
 */
export type CmdqEnt =
  | { readonly opcode: typeof CMDQ_OP_CFGI_STE; readonly sid: number; readonly leaf: boolean }
  | { readonly opcode: typeof CMDQ_OP_CFGI_CD; readonly sid: number; readonly ssid: number; readonly leaf: boolean }
  | { readonly opcode: typeof CMDQ_OP_TLBI_NH_ASID; readonly asid: number }
  | { readonly opcode: typeof CMDQ_OP_TLBI_NH_VA; readonly asid: number; readonly start: number; readonly pages: number }
  | { readonly opcode: typeof CMDQ_OP_ATC_INV; readonly sid: number; readonly ssid: number; readonly start: number; readonly pages: number }
  | { readonly opcode: typeof CMDQ_OP_PRI_RESP; readonly sid: number; readonly ssid: number; readonly grpid: number; readonly resp: number }
  | { readonly opcode: typeof CMDQ_OP_RESUME; readonly sid: number; readonly stag: number; readonly resp: number }
  | { readonly opcode: typeof CMDQ_OP_CMD_SYNC; readonly seq: number };

/** arm_smmu_cmdq_build_cmd: the entry's four words. */
export function arm_smmu_cmdq_build_cmd(e: CmdqEnt): [number, number, number, number] {
  switch (e.opcode) {
    case CMDQ_OP_CFGI_STE:
      return [e.opcode, e.sid, e.leaf ? 1 : 0, 0];
    case CMDQ_OP_CFGI_CD:
      return [e.opcode | (e.ssid << CMDQ_0_SSID_SHIFT), e.sid, e.leaf ? 1 : 0, 0];
    case CMDQ_OP_TLBI_NH_ASID:
      return [e.opcode, e.asid << 16, 0, 0];
    case CMDQ_OP_TLBI_NH_VA:
      return [e.opcode, e.asid << 16, e.start, e.pages];
    case CMDQ_OP_ATC_INV:
      return [e.opcode | CMDQ_0_SSV | (e.ssid << CMDQ_0_SSID_SHIFT), e.sid, e.start, e.pages];
    case CMDQ_OP_PRI_RESP:
      return [e.opcode | CMDQ_0_SSV | (e.ssid << CMDQ_0_SSID_SHIFT), e.sid, e.grpid, e.resp];
    case CMDQ_OP_RESUME:
      // CMDQ_RESUME_0_RESP: bits 12-13; CMDQ_RESUME_0_SID: 32-63; CMDQ_RESUME_1_STAG: 0-15.
      return [e.opcode | (e.resp << 12), e.sid, e.stag & 0xffff, 0];
    case CMDQ_OP_CMD_SYNC:
      return [e.opcode, 0, e.seq, 0];
  }
}

/** The hardware's decode of an entry (the inverse of arm_smmu_cmdq_build_cmd); undefined: an illegal opcode. */
export function decodeCmd(q0lo: number, q0hi: number, q1lo: number, q1hi: number): CmdqEnt | undefined {
  const opcode = q0lo & 0xff;
  const ssid = q0lo >>> CMDQ_0_SSID_SHIFT;
  switch (opcode) {
    case CMDQ_OP_CFGI_STE:
      return { opcode, sid: q0hi, leaf: q1lo === 1 };
    case CMDQ_OP_CFGI_CD:
      return { opcode, sid: q0hi, ssid, leaf: q1lo === 1 };
    case CMDQ_OP_TLBI_NH_ASID:
      return { opcode, asid: q0hi >>> 16 };
    case CMDQ_OP_TLBI_NH_VA:
      return { opcode, asid: q0hi >>> 16, start: q1lo, pages: q1hi };
    case CMDQ_OP_ATC_INV:
      return { opcode, sid: q0hi, ssid, start: q1lo, pages: q1hi };
    case CMDQ_OP_PRI_RESP:
      return { opcode, sid: q0hi, ssid, grpid: q1lo, resp: q1hi };
    case CMDQ_OP_RESUME:
      return { opcode, sid: q0hi, stag: q1lo & 0xffff, resp: (q0lo >>> 12) & 3 };
    case CMDQ_OP_CMD_SYNC:
      return { opcode, seq: q1lo };
    default:
      return undefined;
  }
}

/** The event queue's entry: EVTQ_ENT_DWORDS = 4, eight words. */
export const EVTQ_ENT = struct('arm_smmu_evtq_entry', { q0lo: word, q0hi: word, q1lo: word, q1hi: word, q2lo: word, q2hi: word, q3lo: word, q3hi: word });
/** EVTQ_0_ID: bits 0–7; EVTQ_0_SSV bit 11; EVTQ_0_SSID bits 12–31; EVTQ_0_SID bits 32–63. */
export const EVT_ID_BAD_SUBSTREAMID_CONFIG = 0x08;
export const EVT_ID_BAD_CD_CONFIG = 0x0a;
export const EVT_ID_TRANSLATION_FAULT = 0x10;
/** EVTQ_1_RnW: bit 35 (the high half's bit 3). */
export const EVTQ_1_RnW = 1 << 3;
/** EVTQ_1_STALL: bit 31 — the transaction is stalled, waiting for a CMD_RESUME with its tag; EVTQ_1_STAG: bits 0–15. */
export const EVTQ_1_STALL = 1 << 31;
export const EVTQ_1_STAG_MASK = 0xffff;
/** event_str[] of arm-smmu-v3.c, for the ids the model raises. */
export const EVENT_STR: Readonly<Record<number, string>> = {
  [EVT_ID_BAD_SUBSTREAMID_CONFIG]: 'C_BAD_SUBSTREAMID',
  [EVT_ID_BAD_CD_CONFIG]: 'C_BAD_CD',
  [EVT_ID_TRANSLATION_FAULT]: 'F_TRANSLATION',
};

/** CMD_RESUME's response (CMDQ_RESUME_0_RESP): terminate silently, retry the transaction, abort it. */
export const CMDQ_RESUME_0_RESP_TERM = 0;
export const CMDQ_RESUME_0_RESP_RETRY = 1;
export const CMDQ_RESUME_0_RESP_ABORT = 2;

/** PRI_RESP codes (CMDQ_PRI_1_RESP). */
export const PRI_RESP_DENY = 0;
export const PRI_RESP_FAIL = 1;
export const PRI_RESP_SUCC = 2;
