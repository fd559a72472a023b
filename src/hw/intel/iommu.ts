// drivers/iommu/intel/iommu.c: the driver's iommu_ops (intel_iommu_ops) — the blocking domain
// (blocking_domain_attach_dev clears the RID's entry), intel_iommu_set_dev_pasid for a paging domain the core
// attaches through a group, the device's release (intel_iommu_release_device) — and the vendor as the model
// builds it. The driver's other files: pasid.c (pasid.ts), svm.c (svm.ts), cache.c (cache.ts), prq.c (prq.ts),
// dmar.c (dmar.ts: qi_submit_sync); its hardware: hw.ts. Locks, in the kernel's order: the group's mutex (the
// core's), iommu->lock (around a PASID entry's writes, pasid.c), qi->q_lock (qi_submit_sync, taken with iommu->lock
// released). PASIDs come from a per-IOMMU idr (the original intel-svm) unless the policy makes them system-wide.
import { type IommuDomain, type IommuDomainOps, type IommuOps, IOMMU_NO_PASID } from '../../core/ops.js';
import type { DeviceInfo } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import { attachDomain, detachOnRelease, type DriverEnv, domainMm, type EntryOps, unitOf } from '../driver.js';
import { iopfForDomainRemove, iopfSetDevPasid } from '../queue.js';
import { VTD_COST_TABLE } from './costs.js';
import type { Vendor } from '../vendor.js';
import { defineIntelCache } from './cache.js';
import { defineIntelDmar, defineVtdUnitDriver, vtdOf } from './dmar.js';
import { VTD, VtdHardware, VtdUnit, vtdDeviceWords } from './hw.js';
import { defineIntelPasid, pasidPresent } from './pasid.js';
import { defineIntelPrq, definePrqEventThread } from './prq.js';
import { defineIntelSvm, setupFirstLevel } from './svm.js';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    intel_iommu_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old?: IommuDomain): KGen<number>;
    blocking_domain_attach_dev(t: KTask, dev: DeviceInfo): KGen<number>;
    intel_iommu_release_device(t: KTask, dev: DeviceInfo, domain: IommuDomain): KGen;
  }
}

/** iommu.c's kernel functions, by name. */
function defineIntelIommu(env: DriverEnv): void {
  const k = env.k;
  const present = (dev: DeviceInfo, pasid: number) => pasidPresent(vtdOf(env, dev.iommu).unit, dev, pasid);
  k.fns.define('blocking_domain_attach_dev', 'drivers/iommu/intel/iommu.c', function* (t, dev) {
    if (present(dev, IOMMU_NO_PASID)) yield* k.fn.intel_pasid_tear_down_entry(t, dev, IOMMU_NO_PASID, false);
    return 0;
  });
  // The domain goes (domain_detach_iommu), then the RID's entry (RID2PASID), so the device translates through nothing.
  k.fns.define('intel_iommu_release_device', 'drivers/iommu/intel/iommu.c', function* (t, dev, domain) {
    yield* detachOnRelease(env, t, domain, 'dmar_remove_one_dev_info: domain_detach_iommu(info->domain)');
    if (present(dev, IOMMU_NO_PASID)) yield* k.fn.intel_pasid_tear_down_entry(t, dev, IOMMU_NO_PASID, false);
  });
  const entry: EntryOps = {
    present,
    install: (t, dev, pasid, mm, domain) => k.fn.intel_pasid_setup_first_level(t, dev, pasid, mm, domain.flags),
    *replace(t, dev, pasid, mm, domain) {
      yield* k.fn.intel_pasid_replace_first_level(t, dev, pasid, mm, domain.flags);
    },
    remove: (t, dev, pasid) => k.fn.intel_pasid_tear_down_entry(t, dev, pasid, false),
  };
  // A DMA-API table attached by dma.ts has no domain object: its entry is set up (or replaced) directly. A domain
  // the core attaches through a group goes through attachDomain (the planted bug clear-on-failure is a value of it).
  const setDevPasid = (clear: boolean) => (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old?: IommuDomain) =>
    domain.obj === 0 && domain.type !== 'blocked' ? setupFirstLevel(env, t, domain, dev, pasid, old) : attachDomain(env, t, entry, domain, dev, pasid, clear);
  k.fns.definePlanted('intel_iommu_set_dev_pasid', 'drivers/iommu/intel/iommu.c', env.attachBug ?? 'none', { none: setDevPasid(false), 'clear-on-failure': setDevPasid(true) });
}

/** The driver's kernel functions, by name (once per kernel: every VT-d unit shares them). */
function defineIntelDriver(env: DriverEnv): void {
  if (env.k.fns.has('intel_pasid_setup_first_level')) return;
  defineIntelDmar(env);
  defineIntelPasid(env, env.attachBug ?? 'none');
  defineIntelCache(env);
  defineIntelPrq(env);
  defineIntelSvm(env);
  defineIntelIommu(env);
}

/** intel_iommu_ops */
export function intelIommuOps(env: DriverEnv): IommuOps {
  const k = env.k;
  defineIntelDriver(env);
  const domainOps: IommuDomainOps = {
    // Scalable mode: the RID's requests use the PASID entry RID2PASID (IOMMU_NO_PASID). The blocking domain clears
    // it (device_block_translation); another domain replaces what is there.
    attach_dev: (t, domain, dev) =>
      domain.type === 'blocked' ? k.fn.blocking_domain_attach_dev(t, dev) : k.fn.intel_pasid_replace_first_level(t, dev, IOMMU_NO_PASID, domainMm(domain), domain.flags),
    set_dev_pasid: (t, domain, dev, pasid, old) =>
      iopfSetDevPasid(k, t, unitOf(env, dev), domain, dev, old, () =>
        domain.type === 'sva' ? k.fn.intel_svm_set_dev_pasid(t, domain, dev, pasid, old) : k.fn.intel_iommu_set_dev_pasid(t, domain, dev, pasid, old),
      ),
    iotlb_sync: (t, _domain, dev, pasid, start, end) => k.fn.intel_arch_invalidate_secondary_tlbs(t, dev, pasid, start, end),
  };
  return {
    driver: 'intel-iommu',
    nativePasid: 'per-iommu',
    releaseNotifiesDriver: false,
    dev_enable_feat: () => ({ err: 0, why: '' }),
    pasid_range: (dev) => [1, (1 << dev.caps.pasidBits) - 1],
    *remove_dev_pasid(t, dev, pasid, domain, why) {
      if (why === 'release') return yield* k.fn.intel_mm_release(t, dev, pasid);
      yield* k.fn.intel_pasid_tear_down_entry(t, dev, pasid, false);
      yield* iopfForDomainRemove(k, t, unitOf(env, dev), domain, dev);
    },
    drain_prq: (t, dev, pasid) => k.fn.intel_drain_pasid_prq(t, dev, pasid),
    release_device: (t, dev, domain) => k.fn.intel_iommu_release_device(t, dev, domain),
    default_domain_ops: domainOps,
  };
}

/** The vendor as the model builds it (src/hw/vendors.ts). */
export const INTEL_VTD: Vendor = {
  flavour: 'vtd',
  spec: VTD,
  costs: VTD_COST_TABLE,
  deviceWords: vtdDeviceWords,
  newUnit: (k, index, devices, opts, actor) => new VtdUnit(k, index, devices, opts, actor),
  newHardware: (unit, env) => {
    if (!(unit instanceof VtdUnit)) throw new Error(`${unit.name} is not a VT-d unit`);
    return new VtdHardware(unit, env);
  },
  unitDriver: defineVtdUnitDriver,
  definePrqThread: definePrqEventThread,
  ops: (denv, _env) => intelIommuOps(denv),
};
