// AMD IOMMUv2 (drivers/iommu/amd/iommu_v2.c, the pre-5.x shape in seed 000): the device driver chooses the
// PASID and passes it in (amd_iommu_bind_pasid); a GCR3 table of 64-bit entries that hardware reads and the
// driver writes in one access each (__set_gcr3 / __clear_gcr3), so no torn entry; a command buffer with
// COMPLETION_WAIT; a PPR log. Its mm-release path calls the driver's invalidate_ctx callback before the
// context goes, and failed PPRs go to the driver's invalid-PPR callback (the core's fault handler). Above the
// GCR3 table, each device's DTE: the blocked domain (amd/iommu.c's blocked_domain) clears it — V left set, no
// translation (TV, GV clear) — so the unit aborts every request of the device, with or without a PASID; a
// {device, PASID} is blocked by clearing its GCR3 entry (blocked_domain_set_dev_pasid).
import { type IommuDomain, type IommuDomainOps, type IommuOps, IOMMU_NO_PASID, type RemoveWhy } from '../../core/ops.js';
import type { DeviceInfo } from '../../core/types.js';
import { SVM_FLAG_SUPERVISOR_MODE } from '../../core/types.js';
import { EBUSY, EOPNOTSUPP } from '../../kernel/errno.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { struct, type ViewOf, word } from '../../kernel/struct.js';
import { attachDomain, cmd, detachOnRelease, type DriverEnv, domainMm, type EntryOps, entryOf, flush, unitOf, writeEntry } from '../driver.js';
import { IommuUnit } from '../iommu.js';
import { IommuHardware } from '../unit.js';
import type { Vendor } from '../vendor.js';
import { entryFormat, type FlavourSpec, OP_DEVTLB, OP_IOTLB, OP_PC } from '../flavour.js';
import { definePrqThread, defineUnitDriver, drainPrq, iopfForDomainRemove, iopfSetDevPasid } from '../queue.js';

/**
 * A GCR3 table entry: the kernel's is a bare u64 (__set_gcr3 writes `*pte = (cr3 & PAGE_MASK) | GCR3_VALID`), the
 * model's one word — GCR3_VALID and, above it, the mm id + 1 standing for the guest CR3.
 */
export const GCR3_ENTRY = struct('gcr3_entry', { val: word });

/**
 * The device table entry (amd_iommu_types.h: struct dev_table_entry { u64 data[4]; }): the model keeps one word of
 * data[0], its V, TV and GV bits (the kernel's bits 0, 1 and 55) — the GCR3 root and the rest are not modelled.
 */
export const DEV_TABLE_ENTRY = struct('dev_table_entry', { data0: word });
export const DTE_FLAG_V = 1;
export const DTE_FLAG_TV = 2;
/** GV: the GCR3 table (its PASIDs) is valid. The kernel's bit 55; the model's word keeps it at bit 2. */
export const DTE_FLAG_GV = 4;

/** amd_iommu_types.h */
export const GCR3_VALID = 1;
/** Where the model keeps the CR3 (the mm id + 1) in the entry. */
const GCR3_CR3_SHIFT = 1;

const GCR3 = GCR3_ENTRY.offset;

export const AMD: FlavourSpec = {
  flavour: 'amd',
  names: { cmdqLock: 'iommu->lock', drainPrq: 'amd_iommu_drain_ppr', pageResponse: 'amd_iommu_page_response' },
  unitName: (i) => `AMD-Vi${i}`,
  entryName: 'GCR3',
  entry: entryFormat(GCR3_ENTRY, {
    fetch: ['val'],
    present: (w) => ((w[GCR3.val] ?? 0) & GCR3_VALID) !== 0,
    mmOf: (w) => (w[GCR3.val] ?? 0) >>> GCR3_CR3_SHIFT,
    asidOf: () => 0,
  }),
  // set_dte_entry at probe: translation valid, the GCR3 table valid. TV clear aborts everything; GV clear, the PASIDs.
  deviceEntry: {
    name: 'DTE',
    atProbe: DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_GV,
    blocks: (w, pasid) => (w & DTE_FLAG_V) !== 0 && ((w & DTE_FLAG_TV) === 0 || (pasid !== IOMMU_NO_PASID && (w & DTE_FLAG_GV) === 0)),
  },
  tlbTag: 'pasid',
  cmdqName: 'command buffer',
  prqName: 'PPR log',
  prqThread: 'amd_iommu_ppr',
  commandNames: { 1: 'INVALIDATE_IOMMU_PAGES', 2: 'INVALIDATE_DEVTAB_ENTRY', 3: 'INVALIDATE_IOTLB_PAGES', 4: 'COMPLETE_PPR_REQUEST', 5: 'COMPLETION_WAIT' },
};

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    amd_iommu_bind_pasid(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number>;
    amd_iommu_unbind_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    amd_iommu_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number): KGen<number>;
    mn_release(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    amd_iommu_release_device(t: KTask, dev: DeviceInfo, domain: IommuDomain): KGen;
    sva_arch_invalidate_secondary_tlbs(t: KTask, dev: DeviceInfo, pasid: number, start: number, end: number): KGen;
    /** blocked_domain.ops->attach_dev: the RID's GCR3 entry goes (detach_device), then the DTE (clear_dte_entry). */
    blocked_domain_attach_device(t: KTask, dev: DeviceInfo): KGen<number>;
    /** blocked_domain.ops->set_dev_pasid: amd_iommu_remove_dev_pasid of what was attached there. */
    blocked_domain_set_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, old: IommuDomain): KGen<number>;
    amd_iommu_remove_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, old: IommuDomain): KGen;
    clear_dte_entry(t: KTask, dev: DeviceInfo): KGen;
    set_dte_entry(t: KTask, dev: DeviceInfo): KGen;
  }
}

type Gcr3Entry = ViewOf<typeof GCR3_ENTRY>;

function gcr3Valid(gcr3: Gcr3Entry, env: DriverEnv, dev: DeviceInfo, pasid: number): boolean {
  return (gcr3.val.get(entryOf(env, dev, pasid)) & GCR3_VALID) !== 0;
}

/** __clear_gcr3, then the device table entry (and the GCR3 entry cached with it), then the TLBs. */
function* amdClear(gcr3: Gcr3Entry, env: DriverEnv, t: KTask, dev: DeviceInfo, pasid: number, why: RemoveWhy): KGen {
  if (!gcr3Valid(gcr3, env, dev, pasid) && why === 'release') return;
  yield* writeEntry(env, t, dev, pasid, [[gcr3.val, 0, '__clear_gcr3']]);
  yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid), cmd(OP_DEVTLB, dev.index, pasid)]);
}

/** The driver's kernel functions, by name (once per kernel: every AMD unit shares them). */
function defineAmdFunctions(env: DriverEnv): void {
  const k = env.k;
  if (k.fns.has('amd_iommu_bind_pasid')) return;
  // The entries' accessors, made once per kernel: every AMD unit's GCR3 tables are arrays of the one layout.
  const gcr3 = k.view(GCR3_ENTRY);
  k.fns.define('amd_iommu_bind_pasid', 'drivers/iommu/amd/iommu_v2.c', function* (t, dev, pasid, mm) {
    if (gcr3Valid(gcr3, env, dev, pasid)) return -EBUSY;
    yield* writeEntry(env, t, dev, pasid, [[gcr3.val, ((mm.id + 1) << GCR3_CR3_SHIFT) | GCR3_VALID, '__set_gcr3']]);
    yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid)]);
    return 0;
  });
  // A domain the core attaches through a group: the GCR3 entry is one 64-bit word, so a replace is one write.
  const entry: EntryOps = {
    present: (dev, pasid) => gcr3Valid(gcr3, env, dev, pasid),
    install: (t, dev, pasid, mm) => k.fn.amd_iommu_bind_pasid(t, dev, pasid, mm),
    *replace(t, dev, pasid, mm) {
      yield* writeEntry(env, t, dev, pasid, [[gcr3.val, ((mm.id + 1) << GCR3_CR3_SHIFT) | GCR3_VALID, '__set_gcr3']]);
      yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid), cmd(OP_DEVTLB, dev.index, pasid)]);
    },
    remove: (t, dev, pasid) => k.fn.amd_iommu_unbind_pasid(t, dev, pasid),
  };
  const setDevPasid = (clear: boolean) => (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number) =>
    domain.obj === 0 && domain.type !== 'blocked' ? k.fn.amd_iommu_bind_pasid(t, dev, pasid, domainMm(domain)) : attachDomain(env, t, entry, domain, dev, pasid, clear);
  k.fns.definePlanted('amd_iommu_set_dev_pasid', 'drivers/iommu/amd/iommu.c', env.attachBug ?? 'none', { none: setDevPasid(false), 'clear-on-failure': setDevPasid(true) });
  k.fns.define('amd_iommu_unbind_pasid', 'drivers/iommu/amd/iommu_v2.c', (t, dev, pasid) => amdClear(gcr3, env, t, dev, pasid, 'unbind'));
  k.fns.define('amd_iommu_release_device', 'drivers/iommu/amd/iommu.c', (t, _dev, domain) => detachOnRelease(env, t, domain, 'detach_device: dev_data->domain'));
  k.fns.define('mn_release', 'drivers/iommu/amd/iommu_v2.c', (t, dev, pasid) => amdClear(gcr3, env, t, dev, pasid, 'release'));
  defineAmdBlocked(env, gcr3);
  // The SVA domain's arch_invalidate_secondary_tlbs (iommu_v2.c's mn_invalidate_range before v6.7): the range's
  // IOTLB and device-TLB entries of {dev, PASID} (amd_iommu_dev_flush_pasid_pages), spinning on the command
  // buffer — it runs from the TLB flush, in atomic context.
  k.fns.define('sva_arch_invalidate_secondary_tlbs', 'drivers/iommu/amd/pasid.c', (t, dev, pasid, start, end) =>
    flush(env, t, dev, [cmd(OP_IOTLB, dev.index, pasid, start, end), cmd(OP_DEVTLB, dev.index, pasid, start, end)]),
  );
}

/** The PASIDs of dev with a valid GCR3 entry (RID's included): what the device's ATC may hold translations of. */
function liveGcr3(gcr3: Gcr3Entry, env: DriverEnv, dev: DeviceInfo): number[] {
  const out: number[] = [];
  for (let pasid = 0; pasid < 1 << dev.caps.pasidBits; pasid++) if (gcr3Valid(gcr3, env, dev, pasid)) out.push(pasid);
  return out;
}

/** The blocked domain's ops (amd/iommu.c) and the DTE writes they make. */
function defineAmdBlocked(env: DriverEnv, gcr3: Gcr3Entry): void {
  const k = env.k;
  const dte = k.view(DEV_TABLE_ENTRY);
  const C = 'drivers/iommu/amd/iommu.c';
  const writeDte = (t: KTask, dev: DeviceInfo, v: number, what: string): KGen =>
    k.step(t, what, () => void dte.data0.WRITE_ONCE(unitOf(env, dev).unit.deviceEntryPtr(dev.index), v));
  // device_flush_dte (INVALIDATE_DEVTAB_ENTRY), then what the IOMMU and the device cache of the device's PASIDs.
  const flushDte = (t: KTask, dev: DeviceInfo, live: readonly number[]): KGen =>
    flush(env, t, dev, [cmd(OP_PC, dev.index, IOMMU_NO_PASID), cmd(OP_IOTLB, dev.index, -1), ...live.map((p) => cmd(OP_DEVTLB, dev.index, p))]);
  k.fns.define('clear_dte_entry', C, function* (t, dev) {
    const live = yield* k.step(t, 'dev_data->gcr3_info', () => liveGcr3(gcr3, env, dev));
    yield* writeDte(t, dev, DTE_FLAG_V, 'clear_dte_entry: data[0] = DTE_FLAG_V');
    yield* flushDte(t, dev, [IOMMU_NO_PASID, ...live.filter((p) => p !== IOMMU_NO_PASID)]);
  });
  k.fns.define('set_dte_entry', C, function* (t, dev) {
    yield* writeDte(t, dev, DTE_FLAG_V | DTE_FLAG_TV | DTE_FLAG_GV, 'set_dte_entry: data[0] = V | TV | GV');
    yield* flush(env, t, dev, [cmd(OP_PC, dev.index, IOMMU_NO_PASID)]);
  });
  k.fns.define('blocked_domain_attach_device', C, function* (t, dev) {
    if (gcr3Valid(gcr3, env, dev, IOMMU_NO_PASID)) yield* k.call(t, 'detach_device', amdClear(gcr3, env, t, dev, IOMMU_NO_PASID, 'unbind'));
    yield* k.fn.clear_dte_entry(t, dev);
    return 0;
  });
  k.fns.define('amd_iommu_remove_dev_pasid', C, function* (t, dev, pasid, old) {
    yield* k.fn.amd_iommu_unbind_pasid(t, dev, pasid);
    yield* iopfForDomainRemove(k, t, unitOf(env, dev), old, dev);
  });
  k.fns.define('blocked_domain_set_dev_pasid', C, function* (t, dev, pasid, old) {
    yield* k.fn.amd_iommu_remove_dev_pasid(t, dev, pasid, old);
    return 0;
  });
}

export function amdOps(env: DriverEnv): IommuOps {
  const k = env.k;
  defineAmdFunctions(env);
  const domainOps: IommuDomainOps = {
    // The RID's requests walk GCR3 entry 0, under a DTE that translates: a blocked DTE is set up again first.
    *attach_dev(t, domain, dev) {
      if (domain.type === 'blocked') return yield* k.fn.blocked_domain_attach_device(t, dev);
      if (unitOf(env, dev).unit.blocks(dev.index, IOMMU_NO_PASID)) yield* k.fn.set_dte_entry(t, dev);
      return yield* domainOps.set_dev_pasid(t, domain, dev, IOMMU_NO_PASID, undefined);
    },
    set_dev_pasid: (t, domain, dev, pasid, old) =>
      domain.type === 'blocked' && old !== undefined
        ? k.fn.blocked_domain_set_dev_pasid(t, dev, pasid, old)
        : iopfSetDevPasid(k, t, unitOf(env, dev), domain, dev, old, () =>
            domain.type === 'sva' ? k.fn.amd_iommu_bind_pasid(t, dev, pasid, domainMm(domain)) : k.fn.amd_iommu_set_dev_pasid(t, domain, dev, pasid),
          ),
    iotlb_sync: (t, _domain, dev, pasid, start, end) => k.fn.sva_arch_invalidate_secondary_tlbs(t, dev, pasid, start, end),
  };
  return {
    driver: 'AMD-Vi',
    nativePasid: 'device',
    releaseNotifiesDriver: true,
    dev_enable_feat: (_dev, _feat, flags) =>
      (flags & SVM_FLAG_SUPERVISOR_MODE) !== 0 ? { err: -EOPNOTSUPP, why: 'AMD IOMMUv2 binds no supervisor PASIDs' } : { err: 0, why: '' },
    pasid_range: (dev) => [1, (1 << dev.caps.pasidBits) - 1],
    *remove_dev_pasid(t, dev, pasid, domain, why) {
      if (why === 'release') return yield* k.fn.mn_release(t, dev, pasid);
      // iommu_remove_dev_pasid: the blocked domain's set_dev_pasid over what was attached.
      yield* k.fn.blocked_domain_set_dev_pasid(t, dev, pasid, domain);
    },
    drain_prq: (t, dev, pasid) => drainPrq(k, t, unitOf(env, dev), dev, pasid),
    release_device: (t, dev, domain) => k.fn.amd_iommu_release_device(t, dev, domain),
    default_domain_ops: domainOps,
  };
}

/** The vendor as the model builds it (src/hw/vendors.ts). */
export const AMD_VI: Vendor = {
  flavour: 'amd',
  spec: AMD,
  newUnit: (k, index, devices, opts, actor) => new IommuUnit(k, index, AMD, devices, opts, actor),
  newHardware: (unit, env) => new IommuHardware(unit, env.devices, env.mms, env.oracle, env.stats, env.prqTask),
  unitDriver: defineUnitDriver,
  definePrqThread,
  ops: (denv, _env) => amdOps(denv),
};
