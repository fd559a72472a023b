// struct iommu_domain and its allocation live in iommu.ts (drivers/iommu/iommu.c); this name stays for importers.
export * from './iommu.js';
