// The AMD IOMMU as the model builds it (src/hw/vendors.ts): its unit's memory and hardware (hw.ts), the driver's
// per-unit state (iommu->lock), its PPR thread (ppr.ts) and its iommu_ops (iommu.ts; the SVA path by era).
import { AMD_COST_TABLE } from './costs.js';
import type { Vendor } from '../vendor.js';
import { defineUnitDriver } from '../queue.js';
import { AMD } from './amd_iommu_types.js';
import { AmdIommu, AmdIommuHardware } from './hw.js';
import { amdOps } from './iommu.js';
import { definePprThread } from './ppr.js';

export const AMD_VI: Vendor = {
  flavour: 'amd',
  spec: AMD,
  costs: AMD_COST_TABLE,
  newUnit: (k, index, devices, opts, actor) => new AmdIommu(k, index, devices, opts, actor),
  newHardware: (unit, env) => new AmdIommuHardware(unit, env.devices, env.mms, env.oracle, env.stats, env.prqTask),
  unitDriver: defineUnitDriver,
  definePrqThread: definePprThread,
  ops: (denv, env) => amdOps(denv, env.notifier ?? 'domain'),
};
