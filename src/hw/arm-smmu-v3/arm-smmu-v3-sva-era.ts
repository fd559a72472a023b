// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c before Jason Gunthorpe's 2024 rework (v5.11 to v6.1, the
// iommu_ops sva_bind / sva_unbind era): the policy value notifier=bond. Every bind and unbind runs under the file's
// `static DEFINE_MUTEX(sva_lock)`: arm_smmu_sva_bind → __arm_smmu_sva_bind → arm_smmu_mmu_notifier_get, which
// shares the CPU's ASID (arm_smmu_alloc_shared_cd → arm_smmu_share_asid under arm_smmu_asid_lock) and writes the
// CD (arm_smmu_write_ctx_desc, whose arm_smmu_sync_cd walks the domain's masters under devices_lock); unbind's
// arm_smmu_mmu_notifier_put clears the CD and, unless the MMU notifier's release already did ("If we went through
// clear(), we've already invalidated"), invalidates the ASID's TLB entries and the ATCs. arm_smmu_mm_release, from
// exit_mmap's mmu_notifier_release, takes sva_lock too (process context, inside SRCU), swaps in the quiet CD (EPD0
// set: DMA still running raises no C_BAD_CD), invalidates, and marks the notifier cleared.
// The model: each device has a domain of its own, so an {smmu_domain, mm} notifier is the one {dev, PASID}; the
// core keeps the bond's refcount (struct iommu_sva users) and picks the PASID, so a bond is bound once and its
// notifier's refs stay 1. smmu_mn is live while its CD is valid and `cleared` while that CD is the quiet one (the
// state is the CD table's, in shared memory). The ASIDs are the mms' own and no private CD holds one: the steal
// path of arm_smmu_share_asid (a private domain's CD moved to a new ASID) does not arise, and arm_smmu_asid_xa is
// not kept — its xa_load and xa_insert are steps under the lock, the lock being what this era's model is about.
// The range invalidation stays mainline's arm_smmu_mm_arch_invalidate_secondary_tlbs (TLBI, then ATC_INV): the
// era's invalidate_range only invalidated the ATCs, as its SVA required BTM (the SMMU's TLB snooping the CPU's
// TLBIs), which the model's SMMU does not have. Read: arm-smmu-v3-sva.c of v5.11–v5.17 (bind with iommu_sva_alloc_pasid), and of v6.5 for
// the v6.2 rename (arm_smmu_sva_set_dev_pasid / arm_smmu_sva_remove_dev_pasid, still under sva_lock).
import type { DeviceInfo } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import { ENOMEM } from '../../kernel/errno.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../../kernel/mutex.js';
import { spin_lock_irqsave, spin_unlock_irqrestore } from '../../kernel/spinlock.js';
import type { DriverEnv } from '../driver.js';
import { CMDQ_OP_CFGI_CD, CTXDESC_CD_0_TCR_EPD0, CTXDESC_CD_0_V } from './arm-smmu-v3.h.js';
import { type ArmSmmuLocks, arm_smmu_make_sva_cd, cdValidAt, smmuOf } from './arm-smmu-v3.js';

const SVA = 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c';
const C = 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c';

/** What arm_smmu_write_ctx_desc writes: NULL (clear), &quiet_cd, or the mm's shared CD. */
export type CtxDesc = { readonly kind: 'clear' } | { readonly kind: 'quiet' } | { readonly kind: 'shared'; readonly mm: MmStruct };

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    arm_smmu_sva_bind(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number>;
    __arm_smmu_sva_bind(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number>;
    arm_smmu_sva_unbind(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen;
    arm_smmu_mmu_notifier_get(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number>;
    arm_smmu_mmu_notifier_put(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen;
    /** The mm's ASID, shared with the CPU: 0 or -errno. */
    arm_smmu_alloc_shared_cd(t: KTask, mm: MmStruct): KGen<number>;
    /** Under arm_smmu_asid_lock: is the ASID free on the SMMU side, or the mm's shared CD already (0), or -errno. */
    arm_smmu_share_asid(t: KTask, mm: MmStruct): KGen<number>;
    arm_smmu_write_ctx_desc(t: KTask, dev: DeviceInfo, ssid: number, cd: CtxDesc): KGen<number>;
  }
}

/** sva_lock, one per kernel (a static mutex of arm-smmu-v3-sva.c). */
const svaLocks = new WeakMap<Kernel, Mutex>();

/** The kernel's sva_lock (for tools and tests: a patch takes it by name through the registry's functions). */
export const svaLockOf = (k: Kernel): Mutex | undefined => svaLocks.get(k);

/** The era's arm_smmu_sync_cd: CMD_CFGI_CD for every master of the domain, gathered under devices_lock. */
export function eraSyncCd(env: DriverEnv, locks: ArmSmmuLocks) {
  const k = env.k;
  return function* (t: KTask, dev: DeviceInfo, ssid: number, leaf: boolean): KGen {
    const flags = yield* spin_lock_irqsave(k, t, locks.devices);
    yield* k.step(t, 'list_for_each_entry(master, &smmu_domain->devices, domain_head): arm_smmu_cmdq_batch_add', () => undefined);
    yield* spin_unlock_irqrestore(k, t, locks.devices, flags);
    yield* k.fn.arm_smmu_cmdq_issue_cmdlist(t, dev.iommu, [{ opcode: CMDQ_OP_CFGI_CD, sid: dev.index, ssid, leaf }], true);
  };
}

/** Is the CD at cdptr the quiet one (valid, EPD0 set): the notifier went through release. */
function cdQuiet(k: Kernel, cdptr: number): boolean {
  return cdValidAt(k, cdptr) && ((k.i32[cdptr] as number) & CTXDESC_CD_0_TCR_EPD0) !== 0;
}

/**
 * arm_smmu_write_ctx_desc: a new CD's qwords 1–3 first, a sync, then qword 0 with V and a sync; the quiet CD
 * sets EPD0 in qword 0; NULL clears qword 0. (The model also keeps mainline's cd_table->used_ssids, which its
 * blocked domain reads.)
 */
function defineWriteCtxDesc(env: DriverEnv): void {
  const k = env.k;
  k.fns.define('arm_smmu_write_ctx_desc', C, function* (t, dev, ssid, cd) {
    const cdptr = cd.kind === 'shared' ? yield* k.fn.arm_smmu_alloc_cd_ptr(t, dev, ssid) : k.fn.arm_smmu_get_cd_ptr(dev, ssid);
    if (cdptr === 0) return -ENOMEM;
    const used = smmuOf(env, dev.iommu).u.usedSsidsAddr(dev.index);
    if (cd.kind === 'clear') {
      yield* k.step(t, 'WRITE_ONCE(cdptr[0], 0)', () => {
        if (cdValidAt(k, cdptr)) Atomics.sub(k.i32, used, 1);
        Atomics.store(k.i32, cdptr, 0);
      });
    } else if (cd.kind === 'quiet') {
      yield* k.step(t, 'WRITE_ONCE(cdptr[0], val | CTXDESC_CD_0_TCR_EPD0)', () => void Atomics.or(k.i32, cdptr, CTXDESC_CD_0_TCR_EPD0));
    } else {
      const w = arm_smmu_make_sva_cd(cd.mm, cd.mm.asid);
      yield* k.step(t, 'cdptr[1..3] = ttbr, mair', () => {
        for (let i = 2; i < w.length; i++) Atomics.store(k.i32, cdptr + i, w[i] as number);
      });
      // "The SMMU accesses 64-bit values atomically": the rest of the CD is visible before V.
      yield* k.fn.arm_smmu_sync_cd(t, dev, ssid, true);
      yield* k.step(t, 'WRITE_ONCE(cdptr[0], val | CTXDESC_CD_0_V)', () => {
        if (!cdValidAt(k, cdptr)) Atomics.add(k.i32, used, 1);
        Atomics.store(k.i32, cdptr + 1, w[1] as number);
        Atomics.store(k.i32, cdptr, (w[0] as number) | CTXDESC_CD_0_V);
      });
    }
    yield* k.fn.arm_smmu_sync_cd(t, dev, ssid, true);
    return 0;
  });
}

/** The MMU notifier's get and put, per {smmu_domain, mm}. */
function defineNotifier(env: DriverEnv, locks: ArmSmmuLocks): void {
  const k = env.k;
  k.fns.define('arm_smmu_alloc_shared_cd', SVA, function* (t, mm) {
    yield* k.step(t, 'arm64_mm_context_get(mm)', () => undefined);
    yield* mutex_lock(k, t, locks.asid);
    const ret = yield* k.fn.arm_smmu_share_asid(t, mm);
    if (ret === 0) yield* k.step(t, 'xa_insert(&arm_smmu_asid_xa, asid, cd)', () => undefined);
    yield* mutex_unlock(k, t, locks.asid);
    return ret;
  });
  k.fns.define('arm_smmu_share_asid', SVA, function* (t, mm) {
    yield* k.step(t, `xa_load(&arm_smmu_asid_xa, ${mm.asid})`, () => undefined);
    return 0;
  });
  k.fns.define('arm_smmu_mmu_notifier_get', SVA, function* (t, dev, pasid, mm) {
    const err = yield* k.fn.arm_smmu_alloc_shared_cd(t, mm);
    if (err !== 0) return err;
    const ret = yield* k.fn.arm_smmu_write_ctx_desc(t, dev, pasid, { kind: 'shared', mm });
    if (ret === 0) yield* k.step(t, 'list_add(&smmu_mn->list, &smmu_domain->mmu_notifiers)', () => undefined);
    return ret;
  });
  k.fns.define('arm_smmu_mmu_notifier_put', SVA, function* (t, dev, pasid, mm) {
    const cdptr = k.fn.arm_smmu_get_cd_ptr(dev, pasid);
    const cleared = yield* k.step(t, 'list_del(&smmu_mn->list)', () => cdQuiet(k, cdptr));
    yield* k.fn.arm_smmu_write_ctx_desc(t, dev, pasid, { kind: 'clear' });
    // "If we went through clear(), we've already invalidated, and no new TLB entry can have been formed."
    if (!cleared) {
      yield* k.fn.arm_smmu_tlb_inv_asid(t, dev.iommu, mm.asid);
      yield* k.fn.arm_smmu_atc_inv_domain(t, dev, pasid, 0, 0);
    }
    yield* k.step(t, 'arm_smmu_free_shared_cd: arm64_mm_context_put(cd->mm)', () => undefined);
  });
}

/** The sva_lock half: bind, unbind and the notifier's release. */
export function defineSvaEra(env: DriverEnv, locks: ArmSmmuLocks): void {
  const k = env.k;
  const svaLock = defineMutex(k, 'sva_lock');
  svaLocks.set(k, svaLock);
  defineWriteCtxDesc(env);
  defineNotifier(env, locks);
  k.fns.define('__arm_smmu_sva_bind', SVA, function* (t, dev, pasid, mm) {
    const ret = yield* k.fn.arm_smmu_mmu_notifier_get(t, dev, pasid, mm);
    if (ret === 0) yield* k.step(t, 'list_add(&bond->list, &master->bonds)', () => undefined);
    return ret;
  });
  k.fns.define('arm_smmu_sva_bind', SVA, function* (t, dev, pasid, mm) {
    yield* mutex_lock(k, t, svaLock);
    const ret = yield* k.fn.__arm_smmu_sva_bind(t, dev, pasid, mm);
    yield* mutex_unlock(k, t, svaLock);
    return ret;
  });
  k.fns.define('arm_smmu_sva_unbind', SVA, function* (t, dev, pasid, mm) {
    yield* mutex_lock(k, t, svaLock);
    yield* k.step(t, 'list_del(&bond->list)', () => undefined);
    yield* k.fn.arm_smmu_mmu_notifier_put(t, dev, pasid, mm);
    yield* mutex_unlock(k, t, svaLock);
  });
}

/** The era's arm_smmu_mm_release (the policy value notifier=bond of arm_smmu_mm_release). */
export function eraMmRelease(env: DriverEnv) {
  const k = env.k;
  return function* (t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen {
    const svaLock = svaLocks.get(k) as Mutex;
    yield* mutex_lock(k, t, svaLock);
    const cdptr = k.fn.arm_smmu_get_cd_ptr(dev, pasid);
    if (yield* k.step(t, 'if (smmu_mn->cleared)', () => !cdValidAt(k, cdptr) || cdQuiet(k, cdptr))) {
      yield* mutex_unlock(k, t, svaLock);
      return;
    }
    // "DMA may still be running. Keep the cd valid to avoid C_BAD_CD events, but disable translation."
    yield* k.fn.arm_smmu_write_ctx_desc(t, dev, pasid, { kind: 'quiet' });
    yield* k.fn.arm_smmu_tlb_inv_asid(t, dev.iommu, mm.asid);
    yield* k.fn.arm_smmu_atc_inv_domain(t, dev, pasid, 0, 0);
    yield* k.step(t, 'smmu_mn->cleared = true', () => undefined);
    yield* mutex_unlock(k, t, svaLock);
  };
}
