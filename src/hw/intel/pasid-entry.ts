// intel/pasid.h: the scalable-mode PASID directory entry (struct pasid_dir_entry { u64 val; }) and PASID-table entry
// (struct pasid_entry { u64 val[8]; }), as the model's 32-bit words: val[i] is words 2i (bits 0-31) and 2i+1
// (bits 32-63). The directory entry keeps its low word only (P and the table's address: the model's tables
// are numbered from 1, that number standing for the page's address).
import { array, struct } from '../../kernel/struct.js';

export const PASID_ENTRY = struct('pasid_entry', { val: array(16) });
export const PASID_ENTRY_WORDS = 16;
export const PASID_DIR_ENTRY = struct('pasid_dir_entry', { val: array(1) });

/** PASID[19:6] indexes the directory, PASID[5:0] the table (intel/pasid.h). */
export const PASID_PDE_SHIFT = 6;
export const PASID_PTE_MASK = 0x3f;

// val[0]
/** P */
export const PASID_PTE_PRESENT = 1;
/** FPD: faults on this entry are not reported. */
export const PASID_PTE_FPD = 2;
/** AW, bits 2-4 (pasid_set_address_width): the model's agaw 2, 4-level tables. */
export const PASID_AW_SHIFT = 2;
export const PASID_AW_MASK = 0x1c;
export const MODEL_AGAW = 2;
/** PGTT, bits 6-8 (pasid_set_translation_type). */
export const PASID_PGTT_SHIFT = 6;
export const PASID_PGTT_MASK = 0x1c0;
export const PASID_ENTRY_PGTT_FL_ONLY = 1;
// val[1]
/** DID, bits 64-79 (pasid_set_domain_id). */
export const PASID_DID_MASK = 0xffff;
/** PWSNP, bit 87 (pasid_set_page_snoop). */
export const PASID_PWSNP = 1 << 23;
// val[2]
/** SRE, bit 128 (pasid_set_sre): supervisor requests. */
export const PASID_SRE = 1;
/** NXE, bit 133 (pasid_set_nxe). */
export const PASID_NXE = 1 << 5;
/** FLPTR, bits 140-191 (pasid_set_flptr): VTD_PAGE_MASK of val[2]. */
export const VTD_PAGE_MASK_LO = 0xfffff000 | 0;

/** The table a directory entry points at (the model's number, 0: not present). */
export function pdeTable(pde: number): number {
  return (pde & PASID_PTE_PRESENT) === 0 ? 0 : pde >>> 12;
}

/** A directory entry pointing at table `leaf`. */
export function pdeFor(leaf: number): number {
  return (leaf << 12) | PASID_PTE_PRESENT;
}

/** The model's physical address of an address space's first-level table: (mm id + 1) << 12. */
export function pgdAddress(mmId: number): number {
  return ((mmId + 1) << 12) >>> 0;
}

/** One 64-bit value of the entry, for reports. */
export function hex64(lo: number, hi: number): string {
  return `0x${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`;
}

/** An entry's val[0..7], as the kernel would dump them. */
export function dumpEntry(words: readonly number[]): string {
  const vals: string[] = [];
  for (let i = 0; i < 8; i++) vals.push(hex64(words[2 * i] ?? 0, words[2 * i + 1] ?? 0));
  return vals.join(' ');
}
