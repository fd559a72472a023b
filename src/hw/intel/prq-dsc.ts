// VT-d's page request queue in memory and its registers (drivers/iommu/intel/prq.c's struct page_req_dsc;
// iommu.h's DMAR_PQH_REG, DMAR_PQT_REG, DMAR_PRS_REG with DMA_PRS_PPR and DMA_PRS_PRO): the hardware writes a
// descriptor at PQT and moves PQT; prq_event_thread reads from PQH up to the PQT it read and writes PQH once at
// the end. A descriptor is 256 bits; the model keeps qw_0 and qw_1 (each two of its words: lo, hi), the fields
// the kernel reads — qw_2 and qw_3 (the private data prq_event_thread only traces) are not stored.
import { struct } from '../../kernel/struct.js';
import { word } from '../../kernel/struct.js';

export const PAGE_REQ_DSC = struct('page_req_dsc', {
  qw_0: word, // type:8, pasid_present:1, rsvd:7, rid:16
  qw_0_hi: word, // pasid:20, exe_req:1, pm_req:1
  qw_1: word, // rd_req:1, wr_req:1, lpig:1, prg_index:9, addr[19:0] (the page number's low 20 bits)
  qw_1_hi: word, // addr[51:20]
});

/**
 * The PRQ's registers as the model keeps them: PQH and PQT as descriptor counts that only grow (the kernel's are
 * byte offsets masked with PRQ_RING_MASK: the slot is the count modulo the ring's size), DMAR_PRS_REG, and the
 * threaded interrupt's state (the model's: whether prq_event_thread is running, as IRQF_ONESHOT keeps one).
 */
export const VTD_PRQ_REGS = struct('vtd_prq_regs', { pqh: word, pqt: word, prs: word, thread: word });

/** DMAR_PRS_REG: a page request is pending (set by the hardware at each write, cleared by the thread first). */
export const DMA_PRS_PPR = 1;
/** DMAR_PRS_REG: the queue overflowed — set by the hardware when full; requests are refused until software clears it. */
export const DMA_PRS_PRO = 2;

/** type 1: a page request descriptor (prq.c does not check the type). */
const PRQ_TYPE_PAGE_REQ = 1;

/** A page_req_dsc's fields as prq_event_thread reads them. */
export interface PageReqDsc {
  readonly rid: number;
  readonly pasid_present: boolean;
  readonly pasid: number;
  readonly rd_req: boolean;
  readonly wr_req: boolean;
  readonly lpig: boolean;
  readonly prg_index: number;
  /** The page number (the kernel's `addr` field: the address >> VTD_PAGE_SHIFT). */
  readonly addr: number;
}

/** The descriptor's four words the hardware writes (qw_0, qw_0_hi, qw_1, qw_1_hi). */
export function encodePageReq(d: PageReqDsc): [number, number, number, number] {
  return [
    (PRQ_TYPE_PAGE_REQ | (d.pasid_present ? 1 << 8 : 0) | ((d.rid & 0xffff) << 16)) >>> 0,
    d.pasid & 0xfffff,
    ((d.rd_req ? 1 : 0) | (d.wr_req ? 2 : 0) | (d.lpig ? 4 : 0) | ((d.prg_index & 0x1ff) << 3) | ((d.addr & 0xfffff) << 12)) >>> 0,
    Math.floor(d.addr / 2 ** 20) >>> 0,
  ];
}

export function decodePageReq(qw0: number, qw0hi: number, qw1: number, qw1hi: number): PageReqDsc {
  return {
    rid: qw0 >>> 16,
    pasid_present: (qw0 & (1 << 8)) !== 0,
    pasid: qw0hi & 0xfffff,
    rd_req: (qw1 & 1) !== 0,
    wr_req: (qw1 & 2) !== 0,
    lpig: (qw1 & 4) !== 0,
    prg_index: (qw1 >>> 3) & 0x1ff,
    addr: (qw1 >>> 12) + (qw1hi >>> 0) * 2 ** 20,
  };
}

/** The descriptor as handle_bad_prq_event prints it: `%08llx %08llx` of qw_0 and qw_1. */
export function pageReqHex(qw0: number, qw0hi: number, qw1: number, qw1hi: number): string {
  const hex = (hi: number, lo: number) => (hi >>> 0 ? (hi >>> 0).toString(16) + (lo >>> 0).toString(16).padStart(8, '0') : (lo >>> 0).toString(16).padStart(8, '0'));
  return `${hex(qw0hi, qw0)} ${hex(qw1hi, qw1)}`;
}
