// The `kthread` actor's steps (task `kthreadN`): a kernel thread using init_mm's vmalloc area while the rest of
// the script runs — vmalloc / vfree of kernel memory, ioremap / iounmap of a device's MMIO range (huge PMD
// mappings where a whole PMD range fits, which free the PTE table a vfree'd area left there). Declared here in zod
// with the text docs/steps.md shows; steps.ts registers the kind (KTHREAD_KINDS), kernel-users.ts runs it. (No
// value import of steps.ts: it imports this file.)
import { integer, named as name } from './step-fields.js';
import type { StepKind } from './steps.js';

const pages = (text: string) => integer(1, 64, text);

export const KTHREAD_FIELDS = {
  vmalloc: {
    n: pages('Pages.').default(1),
    as: name('The name vfree refers to the area by.').optional(),
  },
  vfree: { area: name('The area, as named by its vmalloc; left out: the newest vmalloc area.').optional() },
  ioremap: {
    n: pages('Pages of MMIO (4 — a PMD range of the model — or a multiple maps with huge PMD entries).').default(4),
    as: name('The name iounmap refers to the mapping by.').optional(),
  },
  iounmap: { area: name('The mapping, as named by its ioremap; left out: the newest.').optional() },
};

/** The kthread kinds as declared (steps.ts adds every kind's common fields). */
export const KTHREAD_STEPS: readonly StepKind[] = [
  {
    op: 'vmalloc',
    example: '{ vmalloc: { n: 2, as: buf } }',
    text: "vmalloc: a vmap area of n pages in init_mm's vmalloc area, a fresh page for each, mapped with PTE and PMD table pages allocated on demand (__pte_alloc_kernel). The outcome gives the kernel page and the vpn a process's device reaches it at (its PGD's kernel half).",
    fields: KTHREAD_FIELDS.vmalloc,
    bare: true,
  },
  {
    op: 'vfree',
    example: '{ vfree: buf }',
    text: "vfree: the area's PTEs cleared (vunmap_range_noflush), the CPUs' TLBs flushed (flush_tlb_kernel_range: the IOMMUs are not told), its pages freed; its page tables stay.",
    fields: KTHREAD_FIELDS.vfree,
    bare: true,
    short: 'area',
  },
  {
    op: 'ioremap',
    example: '{ ioremap: { n: 4, as: io } }',
    text: "ioremap of a device's MMIO range above RAM: a vmap area aligned to a PMD range, mapped with huge PMD entries where a whole one fits — a PMD entry that still points at a PTE table has it freed first (vmap_try_huge_pmd → pmd_free_pte_page → pagetable_free_kernel).",
    fields: KTHREAD_FIELDS.ioremap,
    bare: true,
  },
  {
    op: 'iounmap',
    example: '{ iounmap: io }',
    text: 'iounmap: the mapping cleared (huge PMD entries whole), the CPUs\' TLBs flushed, the area free again.',
    fields: KTHREAD_FIELDS.iounmap,
    bare: true,
    short: 'area',
  },
];

/** A `kthread` actor's own step (`after` and `while` are every actor's: script.ts). */
export type KthreadOp =
  | { readonly op: 'vmalloc' | 'ioremap'; readonly n: number; readonly as?: string }
  | { readonly op: 'vfree' | 'iounmap'; readonly area?: string };

export const KTHREAD_OPS: readonly string[] = KTHREAD_STEPS.map((s) => s.op);
