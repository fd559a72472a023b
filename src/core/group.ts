// struct iommu_group and attach / detach live in iommu.ts (drivers/iommu/iommu.c); this name stays for importers.
export * from './iommu.js';
