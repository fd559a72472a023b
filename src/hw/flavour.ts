// What differs between the three IOMMUs at the hardware level (seed 000): the format of the entry that binds
// a PASID to an address space (VT-d's 512-bit PASID-table entry, the SMMUv3's 64-byte context descriptor,
// AMD's 64-bit GCR3 table entry — the only one hardware reads and software writes in one access), how the
// IOTLB is tagged (by {domain, PASID}, or by the ASID the SMMU shares with the CPU), and the names each gives
// its queues and commands — kept so that traces read like the driver.
import type { Fields, StructType, WordSpec } from '../kernel/struct.js';
import type { Flavour } from './vendor.js';

export const OP_IOTLB = 1;
export const OP_PC = 2;
export const OP_DEVTLB = 3;
export const OP_PAGE_RESP = 4;
export const OP_WAIT = 5;
export type CommandOp = typeof OP_IOTLB | typeof OP_PC | typeof OP_DEVTLB | typeof OP_PAGE_RESP | typeof OP_WAIT;

/** The one-word fields of a layout's fields F: what the hardware can fetch in one access. */
export type WordField<F extends Fields> = { [K in keyof F]: F[K] extends WordSpec ? K : never }[keyof F] & string;

/**
 * How the hardware reads an entry. The decoders take the entry's words as the hardware assembled them — each
 * fetched field at its offset in `layout`, the rest 0.
 */
export interface EntryFormat {
  /** The entry as the kernel declares it (struct pasid_entry, struct arm_smmu_cd, a GCR3 table entry). */
  readonly layout: StructType<Fields>;
  /** The fields the hardware fetches, in order, each in an access of its own (not atomic with a CPU rewrite). */
  readonly fetch: readonly string[];
  present(w: readonly number[]): boolean;
  /** The address space the entry points at: mm id + 1 (0: none). */
  mmOf(w: readonly number[]): number;
  /** ASID (SMMU), or 0. */
  asidOf(w: readonly number[]): number;
}

/** An entry format whose fetched fields are checked against its layout (a misspelt or array field does not compile). */
export function entryFormat<const F extends Fields>(
  layout: StructType<F>,
  format: { readonly fetch: readonly WordField<F>[] } & Omit<EntryFormat, 'layout' | 'fetch'>,
): EntryFormat {
  return { layout: layout as unknown as StructType<Fields>, ...format };
}

/**
 * The per-device entry above the PASID table, where a flavour has one the driver writes to block the device (AMD's
 * device table entry, the SMMU's stream table entry): one word of it, that the hardware reads before it looks at
 * the PASID table. The model's memory starts zeroed and its boot does not write these: an entry still 0 reads as
 * `atProbe`, the one the driver wrote when the device was probed (translating through the PASID table).
 */
export interface DeviceEntryFormat {
  /** How the kernel names it (DTE, STE). */
  readonly name: string;
  readonly atProbe: number;
  /** Does the entry w make the hardware abort {device, pasid}'s requests (pasid 0: the RID's)? */
  blocks(w: number, pasid: number): boolean;
}

/** The driver's names for what the shared queue code does on its behalf (so that traces read like the driver). */
export interface DriverNames {
  /** The lock its command submission takes: qi->q_lock, iommu->lock, cmdq->q.lock. */
  readonly cmdqLock: string;
  /** Its drain of a PASID's page requests: intel_drain_pasid_prq, … */
  readonly drainPrq: string;
  /** Its page_response op: intel_page_response, … */
  readonly pageResponse: string;
}

export interface FlavourSpec {
  readonly flavour: Flavour;
  readonly names: DriverNames;
  /** The device-level entry (absent: the flavour's blocking domain only clears PASID-table entries). */
  readonly deviceEntry?: DeviceEntryFormat;
  /** Unit names as the kernel prints them: dmar0, AMD-Vi0 (iommu0), smmu0. */
  unitName(i: number): string;
  readonly entry: EntryFormat;
  readonly entryName: string;
  readonly tlbTag: 'pasid' | 'asid';
  /**
   * The CPU page tables it walks for SVA carry the kernel's half (x86: every PGD holds init_mm's kernel entries,
   * so a device handed a kernel address walks init_mm's tables); absent: arm64, whose user tables (TTBR0) have
   * none — the SMMU's context descriptor disables TTB1 walks (EPD1).
   */
  readonly kernelHalf?: boolean;
  readonly cmdqName: string;
  readonly prqName: string;
  readonly prqThread: string;
  readonly commandNames: Readonly<Record<CommandOp, string>>;
}
