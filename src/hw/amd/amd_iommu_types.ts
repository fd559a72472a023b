// The AMD IOMMU's in-memory formats (drivers/iommu/amd/amd_iommu_types.h) as the model lays them out: the device
// table entry, the GCR3 table entry, the command buffer's iommu_cmd with its opcodes and bits, and the PPR log
// entry. The model's word is 32 bits: a kernel u64 is two words (lo, hi) where the model needs both halves, one
// where it needs only the low bits (said at each). Addresses the hardware follows (the GCR3 root pointer, a GCR3
// entry's table or CR3) are the model's numbers — a table number + 1, an mm id + 1 — in the field's place.
import { array, struct, word } from '../../kernel/struct.js';
import { entryFormat, type FlavourSpec } from '../flavour.js';

/**
 * struct dev_table_entry { u64 data[4]; }: data[0] and data[1], two words each; data[2..3] (interrupt remapping)
 * are not modelled. data0_lo: V (bit 0), TV (bit 1). data0_hi: the kernel's bits 32..63 — GV (55), GLX (56..57).
 * data1_lo: the domain ID (bits 0..15) and, where the kernel keeps GCR3 root pointer bits [30:15] (bits 16..31),
 * the model's root pointer: the number + 1 of the GCR3 table the unit set up (setup_gcr3_table). data1_hi: unused.
 */
export const DEV_TABLE_ENTRY = struct('dev_table_entry', { data0_lo: word, data0_hi: word, data1_lo: word, data1_hi: word });

export const DTE_FLAG_V = 1 << 0;
export const DTE_FLAG_TV = 1 << 1;
/** DTE_FLAG_GV: bit 55 of data[0], bit 23 of its high word. */
export const DTE_FLAG_GV_HI = 1 << (55 - 32);
/** DTE_GLX_SHIFT: bits 56..57 of data[0]. */
export const DTE_GLX_SHIFT_HI = 56 - 32;
export const DTE_GLX_MASK = 3;
export const DEV_DOMID_MASK = 0xffff;
/** DTE_GCR3_30_15's place in data[1] (the model's root pointer: table number + 1). */
export const DTE_GCR3_SHIFT = 16;

/**
 * A GCR3 table entry: a bare u64 (`*pte = (gcr3 & PAGE_MASK) | GCR3_VALID`), read by the hardware in one access.
 * The model's one word: GCR3_VALID, and above it the mm id + 1 (a leaf: the guest CR3) or the next level's table
 * number + 1 (GLX > 0: a root entry).
 */
export const GCR3_ENTRY = struct('gcr3_entry', { val: word });
export const GCR3_VALID = 1;
export const GCR3_ADDR_SHIFT = 1;
/** Entries per GCR3 table page (4 KiB of u64): the kernel's 512, the model's too. */
export const GCR3_TABLE_ENTRIES = 512;
export const GCR3_LEVEL_BITS = 9;

/** struct iommu_cmd { u32 data[4]; }: the kernel's layout exactly. */
export const IOMMU_CMD = struct('iommu_cmd', { data: array(4) });

/** LOOP_TIMEOUT: the turns of wait_on_sem's poll, udelay(1) each (2 s), before "Completion-Wait loop timed out". */
export const LOOP_TIMEOUT = 2000000;

export const CMD_COMPL_WAIT = 0x01;
export const CMD_INV_DEV_ENTRY = 0x02;
export const CMD_INV_IOMMU_PAGES = 0x03;
export const CMD_INV_IOTLB_PAGES = 0x04;
export const CMD_COMPLETE_PPR = 0x07;
export type AmdCmdType =
  | typeof CMD_COMPL_WAIT
  | typeof CMD_INV_DEV_ENTRY
  | typeof CMD_INV_IOMMU_PAGES
  | typeof CMD_INV_IOTLB_PAGES
  | typeof CMD_COMPLETE_PPR;
export const CMD_NAMES: Readonly<Record<AmdCmdType, string>> = {
  [CMD_COMPL_WAIT]: 'CMD_COMPL_WAIT',
  [CMD_INV_DEV_ENTRY]: 'CMD_INV_DEV_ENTRY',
  [CMD_INV_IOMMU_PAGES]: 'CMD_INV_IOMMU_PAGES',
  [CMD_INV_IOTLB_PAGES]: 'CMD_INV_IOTLB_PAGES',
  [CMD_COMPLETE_PPR]: 'CMD_COMPLETE_PPR',
};
/** CMD_SET_TYPE: the opcode in data[1] bits 28..31. */
export const CMD_TYPE_SHIFT = 28;
export const CMD_COMPL_WAIT_STORE_MASK = 0x01;
export const CMD_INV_IOMMU_PAGES_SIZE_MASK = 0x01;
export const CMD_INV_IOMMU_PAGES_PDE_MASK = 0x02;
export const CMD_INV_IOMMU_PAGES_GN_MASK = 0x04;
/** CMD_INV_IOMMU_ALL_PAGES_ADDRESS 0x7fffffffffffffff: its high word (the low one is all ones). */
export const CMD_INV_ALL_PAGES_HI = 0x7fffffff;
export const PPR_STATUS_SHIFT = 12;
export const PPR_STATUS_MASK = 0xf;
export const PAGE_SHIFT = 12;

/**
 * A PPR log entry (two u64, raw[0] and raw[1]; four words). raw[0]: DeviceID (0..15), PASID[15:0] (16..31), the
 * tag (32..41: PRG index 0..8, last-in-group 9), PASID[19:16] (42..45), flags (48..59), the request type
 * (60..63, PPR_REQ_FAULT; 0 until the hardware has written the entry). raw[1]: the address. The model's DeviceID
 * is the device's index, its address the page number << PAGE_SHIFT in the low word.
 */
export const PPR_LOG_ENTRY = struct('ppr_log_entry', { raw0_lo: word, raw0_hi: word, raw1_lo: word, raw1_hi: word });
export const PPR_REQ_FAULT = 0x01;
export const PPR_FLAG_WRITE = 0x008;
export const PPR_FLAG_GN = 0x040;
/** PPR_TAG's last-in-group bit (0x200). */
export const PPR_TAG_LAST = 0x200;

/** The AMD unit as the shared code reads it: its names and the GCR3 entry's format. */
export const AMD: FlavourSpec = {
  flavour: 'amd',
  names: { cmdqLock: 'iommu->lock', drainPrq: 'amd_iommu_drain_ppr', pageResponse: 'amd_iommu_page_response' },
  unitName: (i) => `AMD-Vi${i}`,
  entryName: 'GCR3',
  entry: entryFormat(GCR3_ENTRY, {
    fetch: ['val'],
    present: (w) => ((w[0] ?? 0) & GCR3_VALID) !== 0,
    mmOf: (w) => (w[0] ?? 0) >>> GCR3_ADDR_SHIFT,
    asidOf: () => 0,
  }),
  // No deviceEntry: the DTE is the AMD unit's own (hw.ts: AmdIommu.readDte, its blocks()).
  tlbTag: 'pasid',
  kernelHalf: true,
  cmdqName: 'command buffer',
  prqName: 'PPR log',
  prqThread: 'amd_iommu_ppr',
  commandNames: {
    1: 'INVALIDATE_IOMMU_PAGES',
    2: 'INVALIDATE_DEVTAB_ENTRY',
    3: 'INVALIDATE_IOTLB_PAGES',
    4: 'COMPLETE_PPR_REQUEST',
    5: 'COMPLETION_WAIT',
  },
};
