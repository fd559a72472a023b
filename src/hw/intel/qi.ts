// The invalidation queue's descriptors (drivers/iommu/intel/iommu.h: struct qi_desc, the QI_* encodings) as the
// driver encodes them (qi_desc_piotlb, qi_desc_dev_iotlb_pasid, pasid_cache_invalidation_with_pasid,
// intel_page_response, qi_submit_sync's wait descriptor) and the hardware decodes them. A descriptor is 256
// bits: qw0..qw3, each two of the model's words (lo, hi); these types use qw0 and qw1 only.
import { struct, type ViewOf, word } from '../../kernel/struct.js';
import type { VtdUnit } from './hw.js';

export const QI_DESC = struct('qi_desc', { qw0: word, qw0_hi: word, qw1: word, qw1_hi: word, qw2: word, qw2_hi: word, qw3: word, qw3_hi: word });
/**
 * The driver's struct q_inval: the ring's free slots (free_head, free_tail; free_cnt kept as the slots in use, so
 * that zeroed memory is the empty queue dmar_enable_qi leaves: free_cnt = QI_LENGTH - in_use); desc_status is an
 * array of its own.
 */
export const Q_INVAL = struct('q_inval', { free_head: word, free_tail: word, in_use: word });
/**
 * The unit's registers: DMAR_IQH_REG, DMAR_IQT_REG (descriptor indexes; the kernel's are byte offsets),
 * DMAR_FSTS_REG (its IQE / ICE / ITE bits), DMAR_IQER_REG's ITESID, and the model's record of which wait
 * descriptors the hardware aborts for an ITE (those before IQT when software cleared it: ite_abort).
 */
export const VTD_REGS = struct('vtd_qi_regs', { iqh: word, iqt: word, fsts: word, itesid: word, ite_abort: word });

/** DMAR_FSTS_REG: Invalidation Queue Error, Invalidation Completion Error, Invalidation Time-out Error. */
export const DMA_FSTS_IQE = 1 << 4;
export const DMA_FSTS_ICE = 1 << 5;
export const DMA_FSTS_ITE = 1 << 6;

/** qi_type_string: a descriptor's type as qi_dump_fault prints it. */
export function qi_type_string(type: number): string {
  switch (type) {
    case QI_IWD_TYPE:
      return 'Invalidation Wait';
    case QI_EIOTLB_TYPE:
      return 'PASID-based IOTLB Invalidation';
    case QI_PC_TYPE:
      return 'PASID-cache Invalidation';
    case QI_DEIOTLB_TYPE:
      return 'PASID-based Device-TLB Invalidation';
    case QI_PGRP_RESP_TYPE:
      return 'Page Group Response';
    default:
      return 'UNKNOWN';
  }
}

export const QI_IWD_TYPE = 0x5;
export const QI_EIOTLB_TYPE = 0x6;
export const QI_PC_TYPE = 0x7;
export const QI_DEIOTLB_TYPE = 0x8;
export const QI_PGRP_RESP_TYPE = 0x9;

/** desc_status values. */
export const QI_FREE = 0;
export const QI_IN_USE = 1;
export const QI_DONE = 2;
export const QI_ABORT = 3;

export const QI_IWD_STATUS_WRITE = 1 << 5;
export const QI_IWD_FENCE = 1 << 6;
export const QI_IWD_PRQ_DRAIN = 1 << 7;
export const QI_PC_PASID_SEL = 1;
export const QI_GRAN_NONG_PASID = 2;
export const QI_GRAN_PSI_PASID = 3;
export const QI_DEV_EIOTLB_SIZE = 1 << 11;
/** MAX_AGAW_PFN_WIDTH: a mask this wide is "every address". */
export const MAX_AGAW_PFN_WIDTH = 52;
const VTD_PAGE_SHIFT = 12;

/** A descriptor's qw0 and qw1, each as (lo, hi). */
export interface QiDesc {
  readonly qw0: number;
  readonly qw0_hi: number;
  readonly qw1: number;
  readonly qw1_hi: number;
}

/** pasid_cache_invalidation_with_pasid: QI_PC_DID(did) | QI_PC_GRAN(QI_PC_PASID_SEL) | QI_PC_PASID(pasid) | QI_PC_TYPE. */
export function qi_desc_pc(did: number, pasid: number): QiDesc {
  return { qw0: ((did << 16) | (QI_PC_PASID_SEL << 4) | QI_PC_TYPE) >>> 0, qw0_hi: pasid, qw1: 0, qw1_hi: 0 };
}

/** qi_desc_piotlb: npages -1 is every address of the PASID (QI_GRAN_NONG_PASID), else a PSI of 2^mask pages at addr. */
export function qi_desc_piotlb(did: number, pasid: number, vpn: number, npages: number): QiDesc {
  if (npages === -1) return { qw0: ((did << 16) | (QI_GRAN_NONG_PASID << 4) | QI_EIOTLB_TYPE) >>> 0, qw0_hi: pasid, qw1: 0, qw1_hi: 0 };
  const mask = Math.ceil(Math.log2(Math.max(1, npages)));
  const addr = vpn & ~((1 << mask) - 1);
  return { qw0: ((did << 16) | (QI_GRAN_PSI_PASID << 4) | QI_EIOTLB_TYPE) >>> 0, qw0_hi: pasid, qw1: ((addr << VTD_PAGE_SHIFT) | mask) >>> 0, qw1_hi: addr >>> (32 - VTD_PAGE_SHIFT) };
}

/**
 * qi_desc_dev_iotlb_pasid: the device's SID and PFSID, the PASID, a naturally aligned range of 2^sizeOrder pages
 * at addr — with S set, the address's low bits up to the size's are ones (VT-d spec 6.5.2.6).
 */
export function qi_desc_dev_iotlb_pasid(sid: number, pfsid: number, pasid: number, qdep: number, vpn: number, sizeOrder: number): QiDesc {
  const qw0 = ((sid << 16) | ((qdep & 0x1f) << 4) | QI_DEIOTLB_TYPE | ((pfsid & 0xf) << 12)) >>> 0;
  const qw0_hi = (pasid | ((pfsid >>> 4) << 20)) >>> 0;
  let addr = BigInt(vpn) << BigInt(VTD_PAGE_SHIFT);
  let s = 0;
  if (sizeOrder > 0) {
    addr |= (1n << BigInt(VTD_PAGE_SHIFT + sizeOrder - 1)) - 1n;
    s = QI_DEV_EIOTLB_SIZE;
  }
  addr &= ~0xfffn;
  return { qw0, qw0_hi, qw1: (Number(addr & 0xffffffffn) | s) >>> 0, qw1_hi: Number((addr >> 32n) & 0xffffffffn) };
}

/** intel_page_response: QI_PGRP_PASID_P | QI_PGRP_RESP_CODE | QI_PGRP_DID(rid) | QI_PGRP_PASID; qw1: QI_PGRP_IDX, QI_PGRP_LPIG. */
export function qi_desc_pgrp_resp(sid: number, pasid: number, grpid: number, code: number): QiDesc {
  return { qw0: ((1 << 4) | (code << 12) | (sid << 16) | QI_PGRP_RESP_TYPE) >>> 0, qw0_hi: pasid, qw1: ((grpid << 3) | (1 << 2)) >>> 0, qw1_hi: 0 };
}

/** qi_submit_sync's wait descriptor: write QI_DONE at the status word `addr` (the model's word offset). */
export function qi_desc_wait(addr: number, drain: boolean): QiDesc {
  return { qw0: (QI_IWD_STATUS_WRITE | QI_IWD_FENCE | (drain ? QI_IWD_PRQ_DRAIN : 0) | QI_IWD_TYPE) >>> 0, qw0_hi: QI_DONE, qw1: addr >>> 0, qw1_hi: 0 };
}

/** What the hardware decodes of a descriptor: vpn ranges [start, end), -1 for every address. */
export type Decoded =
  | { readonly type: 'pc'; readonly did: number; readonly pasid: number }
  | { readonly type: 'piotlb'; readonly did: number; readonly pasid: number; readonly start: number; readonly end: number }
  | { readonly type: 'devtlb'; readonly sid: number; readonly pasid: number; readonly start: number; readonly end: number }
  | { readonly type: 'pgrp'; readonly sid: number; readonly pasid: number; readonly grp: number; readonly code: number }
  | { readonly type: 'wait'; readonly statusWrite: boolean; readonly drain: boolean; readonly data: number; readonly addr: number }
  | { readonly type: 'unknown' };

/** A range of 2^order pages: the model's vpns are below 2^20, so a larger one is every address. */
function psiRange(vpn: number, order: number): { start: number; end: number } {
  if (order >= 20) return { start: -1, end: -1 };
  return { start: vpn, end: vpn + 2 ** order };
}

/** The hardware's decode of the descriptor at p. */
export function decodeQi(u: VtdUnit, p: number): Decoded {
  const d: ViewOf<typeof QI_DESC> = u.view.desc;
  const qw0 = d.qw0.get(p) >>> 0;
  const qw0hi = d.qw0_hi.get(p) >>> 0;
  const qw1 = d.qw1.get(p) >>> 0;
  const qw1hi = d.qw1_hi.get(p) >>> 0;
  switch (qw0 & 0xf) {
    case QI_PC_TYPE:
      return { type: 'pc', did: qw0 >>> 16, pasid: qw0hi & 0xfffff };
    case QI_EIOTLB_TYPE: {
      const did = qw0 >>> 16;
      const pasid = qw0hi & 0xfffff;
      if (((qw0 >>> 4) & 3) !== QI_GRAN_PSI_PASID) return { type: 'piotlb', did, pasid, start: -1, end: -1 };
      const vpn = (qw1 >>> VTD_PAGE_SHIFT) | (qw1hi << (32 - VTD_PAGE_SHIFT));
      return { type: 'piotlb', did, pasid, ...psiRange(vpn, qw1 & 0x3f) };
    }
    case QI_DEIOTLB_TYPE: {
      const sid = qw0 >>> 16;
      const pasid = qw0hi & 0xfffff;
      const addr = (BigInt(qw1hi) << 32n) | BigInt(qw1 & ~0xfff);
      if ((qw1 & QI_DEV_EIOTLB_SIZE) === 0) {
        const vpn = Number(addr >> 12n);
        return { type: 'devtlb', sid, pasid, start: vpn, end: vpn + 1 };
      }
      // The least significant zero bit from bit 12 gives the size.
      let ones = 0;
      while (ones < MAX_AGAW_PFN_WIDTH && ((addr >> BigInt(VTD_PAGE_SHIFT + ones)) & 1n) === 1n) ones++;
      const order = ones + 1;
      const base = order >= 20 ? 0 : Number((addr >> 12n) & ~((1n << BigInt(order)) - 1n));
      return { type: 'devtlb', sid, pasid, ...psiRange(base, order) };
    }
    case QI_PGRP_RESP_TYPE:
      return { type: 'pgrp', sid: qw0 >>> 16, pasid: qw0hi & 0xfffff, grp: (qw1 >>> 3) & 0x1ff, code: (qw0 >>> 12) & 0xf };
    case QI_IWD_TYPE:
      return { type: 'wait', statusWrite: (qw0 & QI_IWD_STATUS_WRITE) !== 0, drain: (qw0 & QI_IWD_PRQ_DRAIN) !== 0, data: qw0hi, addr: qw1 };
    default:
      return { type: 'unknown' };
  }
}

/** The descriptors' names, as traces show them. */
export function qiName(d: QiDesc): string {
  switch (d.qw0 & 0xf) {
    case QI_PC_TYPE:
      return 'QI_PC';
    case QI_EIOTLB_TYPE:
      return 'QI_EIOTLB';
    case QI_DEIOTLB_TYPE:
      return 'QI_DEV_EIOTLB';
    case QI_PGRP_RESP_TYPE:
      return 'QI_PGRP_RESP';
    case QI_IWD_TYPE:
      return 'QI_IWD';
    default:
      return `QI type ${d.qw0 & 0xf}`;
  }
}
