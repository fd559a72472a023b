// What differs between the three IOMMUs at the hardware level (seed 000): the format of the entry that binds
// a PASID to an address space (VT-d's 512-bit PASID-table entry, the SMMUv3's 64-byte context descriptor,
// AMD's 64-bit GCR3 table entry — the only one hardware reads and software writes in one access), how the
// IOTLB is tagged (by {domain, PASID}, or by the ASID the SMMU shares with the CPU), and the names each gives
// its queues and commands — kept so that traces read like the driver.
export const OP_IOTLB = 1;
export const OP_PC = 2;
export const OP_DEVTLB = 3;
export const OP_PAGE_RESP = 4;
export const OP_WAIT = 5;
export type CommandOp = typeof OP_IOTLB | typeof OP_PC | typeof OP_DEVTLB | typeof OP_PAGE_RESP | typeof OP_WAIT;

export interface EntryFormat {
  /** 32-bit words the model keeps of an entry. */
  readonly words: number;
  /** The words the hardware fetches, in order, each in an access of its own (not atomic with a CPU rewrite). */
  readonly fetch: readonly number[];
  /** The word holding the present / valid bit. */
  readonly presentWord: number;
  present(w: readonly number[]): boolean;
  /** The address space the entry points at: mm id + 1 (0: none). */
  mmOf(w: readonly number[]): number;
  /** ASID (SMMU), or 0. */
  asidOf(w: readonly number[]): number;
}

export interface FlavourSpec {
  readonly flavour: 'vtd' | 'amd' | 'smmuv3';
  /** Unit names as the kernel prints them: dmar0, AMD-Vi0 (iommu0), smmu0. */
  unitName(i: number): string;
  readonly entry: EntryFormat;
  readonly entryName: string;
  readonly tlbTag: 'pasid' | 'asid';
  readonly cmdqName: string;
  readonly prqName: string;
  readonly prqThread: string;
  readonly commandNames: Readonly<Record<CommandOp, string>>;
}
