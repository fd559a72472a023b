// The memory-management part of the simulated kernel, in one import: physical frames (physmem.ts),
// mm_struct and its lifetime (mm.ts), page tables, faults, unmapping and migration (pagetable.ts), the TLB
// gather and flush (mmu_gather.ts), MMU notifiers (mmu_notifier.ts).
export * from './mm.js';
export * from './mmu_gather.js';
export * from './mmu_notifier.js';
export * from './pagetable.js';
export * from './physmem.js';
