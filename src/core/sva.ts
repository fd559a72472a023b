// The seed-000 SVA path now lives in iommu-sva.ts (drivers/iommu/iommu-sva.c); this name stays for importers.
export * from './iommu-sva.js';
