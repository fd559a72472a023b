// Arm SMMUv3 (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c, -sva.c): a context-descriptor table indexed by
// SSID, with fewer SSID bits than PCIe's 20 (the SMMU's SSIDSIZE), so PASIDs are the SMMU's to allocate; a
// 64-byte CD with V and the ASID in its first word and TTB0 in the next, which the SMMU fetches in more than one
// access — hence arm_smmu_write_ctx_desc's order: TTB0, CFGI_CD + SYNC, then V. The TLB is tagged by the ASID
// the SMMU shares with the CPU, so one mm bound to several devices shares entries; a command queue with
// CMD_SYNC; a PRI queue handled by arm_smmu_priq_thread. Above the CD table, each master's STE: the blocked
// domain (arm_smmu_blocked_domain) installs an abort STE — or, while PASIDs still use the CD table, a CD-table STE
// whose S1DSS terminates the requests without a substream ID —, and blocks a {device, PASID} by clearing its CD
// (arm_smmu_blocking_set_dev_pasid, which puts the abort STE back once the last PASID is gone from a blocked RID).
import { BLOCKED_DOMAIN, type IommuDomain, type IommuDomainOps, type IommuOps, IOMMU_NO_PASID, type RemoveWhy } from '../../core/ops.js';
import type { DeviceInfo } from '../../core/types.js';
import { SVM_FLAG_SUPERVISOR_MODE } from '../../core/types.js';
import { EBUSY, EOPNOTSUPP } from '../../kernel/errno.js';
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
 * The context descriptor (arm-smmu-v3.h: struct arm_smmu_cd { __le64 data[NUM_ENTRY_QWORDS]; }), its fields
 * named after the CTXDESC_CD_<qword>_* macros of what they hold; the model keeps one 32-bit word of each, in 8.
 */
export const ARM_SMMU_CD = struct('arm_smmu_cd', {
  data0: word, // data[0]: CTXDESC_CD_0_V, CTXDESC_CD_0_ASID (and the TCR fields, not modelled)
  ttb0: word, // data[1]: CTXDESC_CD_1_TTB0_MASK (here the mm id + 1: TTB0 is the mm's page table)
  data: array(6), // TTB1, MAIR, …: not modelled
});

/** V: the CD is valid. The kernel's is bit 31 of data[0]; the model's word keeps it at bit 0. */
export const CTXDESC_CD_0_V = 1;
/** Where CTXDESC_CD_0_ASID starts: bit 48 of the kernel's data[0] (its high half), 16 of the model's word. */
export const CTXDESC_CD_0_ASID_SHIFT = 16;

const CD = ARM_SMMU_CD.offset;

/**
 * The stream table entry (arm-smmu-v3.h: struct arm_smmu_ste { __le64 data[8]; }): the model keeps one word, with
 * STRTAB_STE_0_V, STRTAB_STE_0_CFG (data[0]) and STRTAB_STE_1_S1DSS (data[1]) at its own bit positions.
 */
export const ARM_SMMU_STE = struct('arm_smmu_ste', { data0: word });
export const STRTAB_STE_0_V = 1;
const STE_CFG_SHIFT = 1;
const STE_S1DSS_SHIFT = 4;
export const STRTAB_STE_0_CFG_ABORT = 0;
export const STRTAB_STE_0_CFG_S1_TRANS = 5;
export const STRTAB_STE_1_S1DSS_TERMINATE = 0;
export const STRTAB_STE_1_S1DSS_SSID0 = 2;
const steCfg = (w: number): number => (w >>> STE_CFG_SHIFT) & 7;
const steS1dss = (w: number): number => (w >>> STE_S1DSS_SHIFT) & 3;
/** arm_smmu_make_abort_ste */
export const ABORT_STE = STRTAB_STE_0_V | (STRTAB_STE_0_CFG_ABORT << STE_CFG_SHIFT);
/** arm_smmu_make_cdtable_ste with s1dss: requests without a substream ID use CD 0 (SSID0) or are terminated. */
export const cdtableSte = (s1dss: number): number => STRTAB_STE_0_V | (STRTAB_STE_0_CFG_S1_TRANS << STE_CFG_SHIFT) | (s1dss << STE_S1DSS_SHIFT);

export const SMMUV3: FlavourSpec = {
  flavour: 'smmuv3',
  names: { cmdqLock: 'cmdq->q.lock', drainPrq: 'arm_smmu_flush_priq', pageResponse: 'arm_smmu_page_response' },
  unitName: (i) => `smmu${i}`,
  entryName: 'CD',
  entry: entryFormat(ARM_SMMU_CD, {
    fetch: ['data0', 'ttb0'],
    present: (w) => ((w[CD.data0] ?? 0) & CTXDESC_CD_0_V) !== 0,
    mmOf: (w) => w[CD.ttb0] ?? 0,
    asidOf: (w) => (w[CD.data0] ?? 0) >>> CTXDESC_CD_0_ASID_SHIFT,
  }),
  // The probe's STE: the CD table, S1DSS=SSID0. An abort STE aborts everything; S1DSS=TERMINATE, the RID's requests.
  deviceEntry: {
    name: 'STE',
    atProbe: cdtableSte(STRTAB_STE_1_S1DSS_SSID0),
    blocks: (w, pasid) =>
      (w & STRTAB_STE_0_V) === 0 || steCfg(w) === STRTAB_STE_0_CFG_ABORT || (pasid === IOMMU_NO_PASID && steS1dss(w) === STRTAB_STE_1_S1DSS_TERMINATE),
  },
  tlbTag: 'asid',
  cmdqName: 'cmdq',
  prqName: 'PRI queue',
  prqThread: 'arm_smmu_priq_thread',
  commandNames: { 1: 'CMD_TLBI_NH_VA', 2: 'CMD_CFGI_CD', 3: 'CMD_ATC_INV', 4: 'CMD_PRI_RESP', 5: 'CMD_SYNC' },
};

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    arm_smmu_write_ctx_desc(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number>;
    arm_smmu_sva_set_dev_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number): KGen<number>;
    arm_smmu_set_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number): KGen<number>;
    arm_smmu_sva_remove_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen;
    arm_smmu_mm_release(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen;
    arm_smmu_mm_arch_invalidate_secondary_tlbs(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, start: number, end: number): KGen;
    arm_smmu_release_device(t: KTask, dev: DeviceInfo, domain: IommuDomain): KGen;
    /** arm_smmu_blocked_domain's attach_dev: an abort STE (a CD-table STE terminating SSID 0 while PASIDs are in use). */
    arm_smmu_attach_dev_blocked(t: KTask, dev: DeviceInfo): KGen<number>;
    /** arm_smmu_blocked_domain's set_dev_pasid: the PASID's CD cleared, what was attached there removed. */
    arm_smmu_blocking_set_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, old: IommuDomain): KGen<number>;
    arm_smmu_install_ste_for_dev(t: KTask, dev: DeviceInfo, ste: number): KGen;
  }
}

type ArmSmmuCd = ViewOf<typeof ARM_SMMU_CD>;

/** data[0] & CTXDESC_CD_0_V */
function cdValid(cd: ArmSmmuCd, env: DriverEnv, dev: DeviceInfo, pasid: number): boolean {
  return (cd.data0.get(entryOf(env, dev, pasid)) & CTXDESC_CD_0_V) !== 0;
}

/** Clear V, then CFGI_CD, the ASID's TLB entries and the ATC; TTB0 goes on unbind only. */
function* smmuClear(cd: ArmSmmuCd, env: DriverEnv, t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, why: RemoveWhy): KGen {
  if (!cdValid(cd, env, dev, pasid) && why === 'release') return;
  yield* writeEntry(env, t, dev, pasid, [[cd.data0, 0, 'cdptr[0] = 0']]);
  yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, mm.asid, -1), cmd(OP_DEVTLB, dev.index, pasid)]);
  if (why === 'unbind') yield* writeEntry(env, t, dev, pasid, [[cd.ttb0, 0, 'cdptr[1] = 0']]);
}

/** The driver's kernel functions, by name (once per kernel: every SMMU shares them). */
function defineSmmuFunctions(env: DriverEnv): void {
  const k = env.k;
  if (k.fns.has('arm_smmu_write_ctx_desc')) return;
  // The CDs' accessors, made once per kernel: every SMMU's CD tables are arrays of the one layout.
  const cd = k.view(ARM_SMMU_CD);
  k.fns.define('arm_smmu_write_ctx_desc', 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c', function* (t, dev, pasid, mm) {
    if (cdValid(cd, env, dev, pasid)) return -EBUSY;
    yield* writeEntry(env, t, dev, pasid, [[cd.ttb0, mm.id + 1, 'cdptr[1] = TTB0']]);
    yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid)]);
    yield* writeEntry(env, t, dev, pasid, [[cd.data0, CTXDESC_CD_0_V | (mm.asid << CTXDESC_CD_0_ASID_SHIFT), 'cdptr[0] = V | ASID']]);
    yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid)]);
    return 0;
  });
  // A domain the core attaches through a group. A replace writes the new TTB0 and ASID over the valid CD, then
  // CFGI_CD, the old ASID's TLB entries and the ATC (the kernel's hitless CD update, arm_smmu_write_entry).
  const entry: EntryOps = {
    present: (dev, pasid) => cdValid(cd, env, dev, pasid),
    install: (t, dev, pasid, mm) => k.fn.arm_smmu_write_ctx_desc(t, dev, pasid, mm),
    *replace(t, dev, pasid, mm) {
      const oldAsid = cd.data0.get(entryOf(env, dev, pasid)) >>> CTXDESC_CD_0_ASID_SHIFT;
      yield* writeEntry(env, t, dev, pasid, [
        [cd.ttb0, mm.id + 1, 'cdptr[1] = TTB0'],
        [cd.data0, CTXDESC_CD_0_V | (mm.asid << CTXDESC_CD_0_ASID_SHIFT), 'cdptr[0] = V | ASID'],
      ]);
      yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, oldAsid, -1), cmd(OP_DEVTLB, dev.index, pasid)]);
    },
    remove: (t, dev, pasid, domain) => k.fn.arm_smmu_sva_remove_dev_pasid(t, dev, pasid, domain.mm ?? mmOfEntry(dev, pasid)),
  };
  // The CD's TTB0 names the mm (id + 1) it points at: the blocked domain's teardown flushes that mm's ASID.
  const mmOfEntry = (dev: DeviceInfo, pasid: number): MmStruct => {
    const mm = env.mmOf?.(cd.ttb0.get(entryOf(env, dev, pasid)) - 1);
    if (!mm) throw new Error(`${dev.name} CD ${pasid}: TTB0 names no mm`);
    return mm;
  };
  const setDevPasid = (clear: boolean) => (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number) =>
    domain.obj === 0 && domain.type !== 'blocked' ? k.fn.arm_smmu_write_ctx_desc(t, dev, pasid, domainMm(domain)) : attachDomain(env, t, entry, domain, dev, pasid, clear);
  k.fns.definePlanted('arm_smmu_set_pasid', 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c', env.attachBug ?? 'none', { none: setDevPasid(false), 'clear-on-failure': setDevPasid(true) });
  const sva = 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c';
  k.fns.define('arm_smmu_release_device', 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c', (t, _dev, domain) =>
    detachOnRelease(env, t, domain, 'arm_smmu_detach_dev: spin_lock_irqsave(&smmu_domain->devices_lock)'),
  );
  defineSmmuBlocked(env, cd, entry);
  k.fns.define('arm_smmu_sva_set_dev_pasid', sva, (t, domain, dev, pasid) => k.fn.arm_smmu_write_ctx_desc(t, dev, pasid, domainMm(domain)));
  k.fns.define('arm_smmu_sva_remove_dev_pasid', sva, (t, dev, pasid, mm) => smmuClear(cd, env, t, dev, pasid, mm, 'unbind'));
  k.fns.define('arm_smmu_mm_release', sva, (t, dev, pasid, mm) => smmuClear(cd, env, t, dev, pasid, mm, 'release'));
  // From the TLB flush, in atomic context: TLBI by the mm's ASID over the range, then the ATC of {dev, PASID},
  // spinning on the command queue.
  k.fns.define('arm_smmu_mm_arch_invalidate_secondary_tlbs', sva, (t, dev, pasid, mm, start, end) =>
    flush(env, t, dev, [cmd(OP_IOTLB, mm.asid, -1, start, end), cmd(OP_DEVTLB, dev.index, pasid, start, end)]),
  );
}

/** arm_smmu_ssids_in_use: a CD other than the RID's is valid. */
function ssidsInUse(cd: ArmSmmuCd, env: DriverEnv, dev: DeviceInfo): boolean {
  for (let pasid = 1; pasid < 1 << dev.caps.pasidBits; pasid++) if (cdValid(cd, env, dev, pasid)) return true;
  return false;
}

/** The blocked domain's ops (arm-smmu-v3.c: arm_smmu_blocked_domain) and the STE writes they make. */
function defineSmmuBlocked(env: DriverEnv, cd: ArmSmmuCd, entry: EntryOps): void {
  const k = env.k;
  const ste = k.view(ARM_SMMU_STE);
  const C = 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c';
  // arm_smmu_write_ste, then CFGI_STE (the entry cache's command here) and the stream's TLB and ATC entries.
  k.fns.define('arm_smmu_install_ste_for_dev', C, function* (t, dev, v) {
    yield* k.step(t, 'arm_smmu_write_ste', () => void ste.data0.WRITE_ONCE(unitOf(env, dev).unit.deviceEntryPtr(dev.index), v));
    yield* flush(env, t, dev, [cmd(OP_PC, dev.index, IOMMU_NO_PASID), cmd(OP_DEVTLB, dev.index, IOMMU_NO_PASID)]);
  });
  k.fns.define('arm_smmu_attach_dev_blocked', C, function* (t, dev) {
    const inUse = yield* k.step(t, 'arm_smmu_ssids_in_use(&master->cd_table)', () => ssidsInUse(cd, env, dev));
    yield* k.fn.arm_smmu_install_ste_for_dev(t, dev, inUse ? cdtableSte(STRTAB_STE_1_S1DSS_TERMINATE) : ABORT_STE);
    // arm_smmu_clear_cd(master, IOMMU_NO_PASID): "likely that we'll need to clear the CD but it's safe to try".
    if (cdValid(cd, env, dev, IOMMU_NO_PASID)) yield* k.call(t, 'arm_smmu_clear_cd', entry.remove(t, dev, IOMMU_NO_PASID, BLOCKED_DOMAIN));
    return 0;
  });
  k.fns.define('arm_smmu_blocking_set_dev_pasid', C, function* (t, dev, pasid, old) {
    if (old.mm) yield* k.fn.arm_smmu_sva_remove_dev_pasid(t, dev, pasid, old.mm);
    else if (cdValid(cd, env, dev, pasid)) yield* k.call(t, 'arm_smmu_clear_cd', entry.remove(t, dev, pasid, old));
    yield* iopfForDomainRemove(k, t, unitOf(env, dev), old, dev);
    // The last PASID gone from a master whose RID is blocked: the STE goes back to the abort STE. (The CDs and the
    // STE are written under the group's mutex, which the caller holds: a plain read.)
    const w = unitOf(env, dev).unit.deviceEntry(dev.index);
    if (steCfg(w) === STRTAB_STE_0_CFG_S1_TRANS && steS1dss(w) === STRTAB_STE_1_S1DSS_TERMINATE && !ssidsInUse(cd, env, dev)) yield* k.fn.arm_smmu_attach_dev_blocked(t, dev);
    return 0;
  });
}

/** `ssidBits`: the SMMU's SSIDSIZE; a master gets min(its PASID width, SSIDSIZE). */
export function smmuv3Ops(env: DriverEnv, ssidBits: number): IommuOps {
  const k = env.k;
  defineSmmuFunctions(env);
  const bits = (dev: DeviceInfo): number => Math.min(dev.caps.pasidBits, ssidBits);
  const domainOps: IommuDomainOps = {
    // CD 0 (SSID 0) is the stage-1 context of the master's requests without a substream ID, under a CD-table STE
    // with S1DSS=SSID0 (arm_smmu_make_cdtable_ste), installed again first if the RID was blocked.
    *attach_dev(t, domain, dev) {
      if (domain.type === 'blocked') return yield* k.fn.arm_smmu_attach_dev_blocked(t, dev);
      if (unitOf(env, dev).unit.blocks(dev.index, IOMMU_NO_PASID)) yield* k.fn.arm_smmu_install_ste_for_dev(t, dev, cdtableSte(STRTAB_STE_1_S1DSS_SSID0));
      return yield* domainOps.set_dev_pasid(t, domain, dev, IOMMU_NO_PASID, undefined);
    },
    set_dev_pasid: (t, domain, dev, pasid, old) =>
      domain.type === 'blocked' && old !== undefined
        ? k.fn.arm_smmu_blocking_set_dev_pasid(t, dev, pasid, old)
        : iopfSetDevPasid(k, t, unitOf(env, dev), domain, dev, old, () =>
            domain.type === 'sva' ? k.fn.arm_smmu_sva_set_dev_pasid(t, domain, dev, pasid) : k.fn.arm_smmu_set_pasid(t, domain, dev, pasid),
          ),
    iotlb_sync: (t, domain, dev, pasid, start, end) => k.fn.arm_smmu_mm_arch_invalidate_secondary_tlbs(t, dev, pasid, domainMm(domain), start, end),
  };
  return {
    driver: 'arm-smmu-v3',
    nativePasid: 'ssid',
    releaseNotifiesDriver: false,
    dev_enable_feat: (dev, _feat, flags) => {
      if ((flags & SVM_FLAG_SUPERVISOR_MODE) !== 0) return { err: -EOPNOTSUPP, why: 'arm-smmu-v3 SVA binds no supervisor contexts' };
      if (bits(dev) < 1) return { err: -EOPNOTSUPP, why: `${dev.name}: SMMU has no substream IDs` };
      return { err: 0, why: '' };
    },
    pasid_range: (dev) => [1, (1 << bits(dev)) - 1],
    *remove_dev_pasid(t, dev, pasid, domain, why) {
      if (why === 'release') return yield* k.fn.arm_smmu_mm_release(t, dev, pasid, domainMm(domain));
      // iommu_remove_dev_pasid: the blocked domain's set_dev_pasid over what was attached.
      yield* k.fn.arm_smmu_blocking_set_dev_pasid(t, dev, pasid, domain);
    },
    drain_prq: (t, dev, pasid) => drainPrq(k, t, unitOf(env, dev), dev, pasid),
    release_device: (t, dev, domain) => k.fn.arm_smmu_release_device(t, dev, domain),
    default_domain_ops: domainOps,
  };
}

/** The vendor as the model builds it (src/hw/vendors.ts). */
export const ARM_SMMU_V3: Vendor = {
  flavour: 'smmuv3',
  spec: SMMUV3,
  newUnit: (k, index, devices, opts, actor) => new IommuUnit(k, index, SMMUV3, devices, opts, actor),
  newHardware: (unit, env) => new IommuHardware(unit, env.devices, env.mms, env.oracle, env.stats, env.prqTask),
  unitDriver: defineUnitDriver,
  definePrqThread,
  ops: (denv, env) => smmuv3Ops(denv, env.ssidBits),
};
