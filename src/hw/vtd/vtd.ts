// Intel VT-d (drivers/iommu/intel/pasid.c, svm.c, dmar.c): a 512-bit scalable-mode PASID-table entry per
// {device, PASID} — P, FPD and SRE in the first word, the domain id, the first-level page-table pointer — that
// the hardware fetches in more than one access; an invalidation queue (QI) with wait descriptors; a page
// request queue drained by prq_event_thread; PASIDs from a per-IOMMU idr (the original intel-svm) unless the
// policy makes them system-wide. Teardown clears P first and flushes the PASID cache, the IOTLB and the
// device TLB before the entry may be reused (intel_pasid_tear_down_entry).
import { type IommuDomain, type IommuDomainOps, type IommuOps, IOMMU_NO_PASID, type RemoveWhy } from '../../core/ops.js';
import type { DeviceInfo } from '../../core/types.js';
import { SVM_FLAG_SUPERVISOR_MODE } from '../../core/types.js';
import { EBUSY } from '../../kernel/errno.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { array, struct, type ViewOf, word } from '../../kernel/struct.js';
import { attachDomain, cmd, detachOnRelease, type DriverEnv, domainMm, type EntryOps, entryOf, flush, unitOf, writeEntry } from '../driver.js';
import { IommuUnit } from '../iommu.js';
import { IommuHardware } from '../unit.js';
import type { Vendor } from '../vendor.js';
import { entryFormat, type FlavourSpec, OP_DEVTLB, OP_IOTLB, OP_PC } from '../flavour.js';
import { definePrqThread, defineUnitDriver, drainPrq, iopfForDomainRemove, iopfSetDevPasid } from '../queue.js';

/**
 * The scalable-mode PASID-table entry (intel/pasid.h: struct pasid_entry { u64 val[8]; }), its fields named after
 * the helpers that set them; the model keeps one 32-bit word of each field, in the 8 words the table holds.
 */
export const PASID_ENTRY = struct('pasid_entry', {
  flags: word, // val[0]: P, FPD (pasid_set_present, pasid_clear_entry_with_fpd) — and SRE, see PASID_PTE_SRE
  did: word, // val[1]: pasid_set_domain_id
  flptr: word, // val[2]: pasid_set_flptr (here the mm id + 1: the first-level table is the mm's)
  val: array(5), // the rest of the 512 bits (PGTT, AW, …): not modelled
});

/** P (intel/pasid.h). */
export const PASID_PTE_PRESENT = 1;
/** FPD: faults on this entry are not reported (intel/pasid.h). */
export const PASID_PTE_FPD = 2;
/**
 * SRE (pasid_set_sre): supervisor requests enabled. The kernel's is bit 128 (bit 0 of val[2]); the model keeps it
 * in the flags word, which it writes last — as intel_pasid_setup_first_level makes the entry present last.
 */
export const PASID_PTE_SRE = 4;

const PE = PASID_ENTRY.offset;

export const VTD: FlavourSpec = {
  flavour: 'vtd',
  names: { cmdqLock: 'qi->q_lock', drainPrq: 'intel_drain_pasid_prq', pageResponse: 'intel_page_response' },
  unitName: (i) => `dmar${i}`,
  entryName: 'PASID',
  entry: entryFormat(PASID_ENTRY, {
    fetch: ['flags', 'flptr'],
    present: (w) => ((w[PE.flags] ?? 0) & PASID_PTE_PRESENT) !== 0,
    mmOf: (w) => w[PE.flptr] ?? 0,
    asidOf: () => 0,
  }),
  tlbTag: 'pasid',
  cmdqName: 'QI',
  prqName: 'PRQ',
  prqThread: 'prq_event_thread',
  commandNames: { 1: 'P_IOTLB_INV', 2: 'PC_INV', 3: 'DEV_IOTLB_INV', 4: 'PAGE_GRP_RESP', 5: 'INV_WAIT' },
};

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    intel_pasid_setup_first_level(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, flags: number): KGen<number>;
    intel_svm_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old?: IommuDomain): KGen<number>;
    intel_iommu_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old?: IommuDomain): KGen<number>;
    intel_pasid_replace_first_level(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, flags: number): KGen<number>;
    blocking_domain_attach_dev(t: KTask, dev: DeviceInfo): KGen<number>;
    intel_iommu_release_device(t: KTask, dev: DeviceInfo, domain: IommuDomain): KGen;
    intel_pasid_tear_down_entry(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    intel_mm_release(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    intel_arch_invalidate_secondary_tlbs(t: KTask, dev: DeviceInfo, pasid: number, start: number, end: number): KGen;
  }
}

type PasidEntry = ViewOf<typeof PASID_ENTRY>;

/** pasid_pte_is_present */
function pasidPteIsPresent(pe: PasidEntry, env: DriverEnv, dev: DeviceInfo, pasid: number): boolean {
  return (pe.flags.READ_ONCE(entryOf(env, dev, pasid)) & PASID_PTE_PRESENT) !== 0;
}

/** Clear P (with FPD on the release path, so DMA still in flight faults quietly), then flush. */
function* vtdTearDown(pe: PasidEntry, env: DriverEnv, t: KTask, dev: DeviceInfo, pasid: number, why: RemoveWhy): KGen {
  if (!pasidPteIsPresent(pe, env, dev, pasid) && why === 'release') return;
  yield* writeEntry(env, t, dev, pasid, [[pe.flags, why === 'release' ? PASID_PTE_FPD : 0, why === 'release' ? 'pasid_clear_entry_with_fpd' : 'pasid_clear_present']]);
  yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid), cmd(OP_DEVTLB, dev.index, pasid)]);
  if (why === 'unbind') yield* writeEntry(env, t, dev, pasid, [[pe.flptr, 0, 'intel_pasid_clear_entry'], [pe.did, 0, 'intel_pasid_clear_entry']]);
}

/** The driver's kernel functions, by name (once per kernel: every VT-d unit shares them). */
function defineVtdFunctions(env: DriverEnv): void {
  const k = env.k;
  if (k.fns.has('intel_pasid_setup_first_level')) return;
  // The entries' accessors, made once per kernel: every VT-d unit's table is an array of the one layout.
  const pe = k.view(PASID_ENTRY);
  k.fns.define('intel_pasid_setup_first_level', 'drivers/iommu/intel/pasid.c', function* (t, dev, pasid, mm, flags) {
    if (pasidPteIsPresent(pe, env, dev, pasid)) return -EBUSY;
    // The entry is not present, so the hardware caches nothing of it: write it, P last.
    yield* writeEntry(env, t, dev, pasid, [
      [pe.flptr, mm.id + 1, 'pasid_set_flptr'],
      [pe.did, dev.iommu + 1, 'pasid_set_domain_id'],
      [pe.flags, PASID_PTE_PRESENT | ((flags & SVM_FLAG_SUPERVISOR_MODE) !== 0 ? PASID_PTE_SRE : 0), 'pasid_set_present'],
    ]);
    return 0;
  });
  // The SVA domain's ops (intel_svm_domain_ops) and the paging domain's (intel_paging_domain_ops) both install a
  // first-level entry in this model: the mm's page table, or the I/O page table.
  const setup = (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old: IommuDomain | undefined): KGen<number> =>
    old === undefined
      ? k.fn.intel_pasid_setup_first_level(t, dev, pasid, domainMm(domain), domain.flags)
      : k.fn.intel_pasid_replace_first_level(t, dev, pasid, domainMm(domain), domain.flags);
  k.fns.define('intel_svm_set_dev_pasid', 'drivers/iommu/intel/svm.c', (t, domain, dev, pasid, old) => setup(t, domain, dev, pasid, old));
  k.fns.define('blocking_domain_attach_dev', 'drivers/iommu/intel/iommu.c', function* (t, dev) {
    if (pasidPteIsPresent(pe, env, dev, IOMMU_NO_PASID)) yield* vtdTearDown(pe, env, t, dev, IOMMU_NO_PASID, 'unbind');
    return 0;
  });
  // The domain goes (domain_detach_iommu), then the RID's entry (RID2PASID), so the device translates through nothing.
  k.fns.define('intel_iommu_release_device', 'drivers/iommu/intel/iommu.c', function* (t, dev, domain) {
    yield* detachOnRelease(env, t, domain, 'dmar_remove_one_dev_info: domain_detach_iommu(info->domain)');
    if (pasidPteIsPresent(pe, env, dev, IOMMU_NO_PASID)) yield* vtdTearDown(pe, env, t, dev, IOMMU_NO_PASID, 'unbind');
  });
  // A replace never rewrites a live entry in place: clear it, invalidate what the unit caches of it, then write
  // the new one (P last). DMA in between faults, as it would on a blocked PASID.
  k.fns.define('intel_pasid_replace_first_level', 'drivers/iommu/intel/pasid.c', function* (t, dev, pasid, mm, flags) {
    if (pasidPteIsPresent(pe, env, dev, pasid)) yield* vtdTearDown(pe, env, t, dev, pasid, 'unbind');
    return yield* k.fn.intel_pasid_setup_first_level(t, dev, pasid, mm, flags);
  });
  const entry: EntryOps = {
    present: (dev, pasid) => pasidPteIsPresent(pe, env, dev, pasid),
    install: (t, dev, pasid, mm, domain) => k.fn.intel_pasid_setup_first_level(t, dev, pasid, mm, domain.flags),
    *replace(t, dev, pasid, mm, domain) {
      yield* k.fn.intel_pasid_replace_first_level(t, dev, pasid, mm, domain.flags);
    },
    remove: (t, dev, pasid) => k.fn.intel_pasid_tear_down_entry(t, dev, pasid),
  };
  // A DMA-API table attached by dma.ts has no domain object: its entry is set up (or replaced) directly. A domain
  // the core attaches through a group goes through attachDomain (the planted bug clear-on-failure is a value of it).
  const setDevPasid = (clear: boolean) => (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number, old?: IommuDomain) =>
    domain.obj === 0 && domain.type !== 'blocked' ? setup(t, domain, dev, pasid, old) : attachDomain(env, t, entry, domain, dev, pasid, clear);
  k.fns.definePlanted('intel_iommu_set_dev_pasid', 'drivers/iommu/intel/iommu.c', env.attachBug ?? 'none', { none: setDevPasid(false), 'clear-on-failure': setDevPasid(true) });
  k.fns.define('intel_pasid_tear_down_entry', 'drivers/iommu/intel/pasid.c', (t, dev, pasid) => vtdTearDown(pe, env, t, dev, pasid, 'unbind'));
  k.fns.define('intel_mm_release', 'drivers/iommu/intel/svm.c', (t, dev, pasid) => vtdTearDown(pe, env, t, dev, pasid, 'release'));
  // From the TLB flush (flush_tlb_mm_range), often under the page table lock: the range's PASID-based IOTLB and
  // device-TLB entries, through the QI it spins on (qi_submit_sync never sleeps).
  k.fns.define('intel_arch_invalidate_secondary_tlbs', 'drivers/iommu/intel/svm.c', (t, dev, pasid, start, end) =>
    flush(env, t, dev, [cmd(OP_IOTLB, dev.index, pasid, start, end), cmd(OP_DEVTLB, dev.index, pasid, start, end)]),
  );
}

export function vtdOps(env: DriverEnv): IommuOps {
  const k = env.k;
  defineVtdFunctions(env);
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
      yield* k.fn.intel_pasid_tear_down_entry(t, dev, pasid);
      yield* iopfForDomainRemove(k, t, unitOf(env, dev), domain, dev);
    },
    drain_prq: (t, dev, pasid) => drainPrq(k, t, unitOf(env, dev), dev, pasid),
    release_device: (t, dev, domain) => k.fn.intel_iommu_release_device(t, dev, domain),
    default_domain_ops: domainOps,
  };
}

/** The vendor as the model builds it (src/hw/vendors.ts). */
export const INTEL_VTD: Vendor = {
  flavour: 'vtd',
  spec: VTD,
  newUnit: (k, index, devices, opts, actor) => new IommuUnit(k, index, VTD, devices, opts, actor),
  newHardware: (unit, env) => new IommuHardware(unit, env.devices, env.mms, env.oracle, env.stats, env.prqTask),
  unitDriver: defineUnitDriver,
  definePrqThread,
  ops: (denv, _env) => vtdOps(denv),
};
