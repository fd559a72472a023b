// The vendors the model knows, by the flavour a topology names (src/hw/vendor.ts says what each provides).
import { AMD_VI } from './amd/vendor.js';
import { ARM_SMMU_V3 } from './arm-smmu-v3/arm-smmu-v3.js';
import type { Flavour, Vendor } from './vendor.js';
import { INTEL_VTD } from './intel/iommu.js';

export const VENDORS: Readonly<Record<Flavour, Vendor>> = { vtd: INTEL_VTD, amd: AMD_VI, smmuv3: ARM_SMMU_V3 };
