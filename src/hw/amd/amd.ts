// AMD IOMMUv2 (drivers/iommu/amd/iommu_v2.c, the pre-5.x shape in seed 000): the device driver chooses the
// PASID and passes it in (amd_iommu_bind_pasid); a GCR3 table of 64-bit entries that hardware reads and the
// driver writes in one access each (__set_gcr3 / __clear_gcr3), so no torn entry; a command buffer with
// COMPLETION_WAIT; a PPR log. Its mm-release path calls the driver's invalidate_ctx callback before the
// context goes, and failed PPRs go to the driver's invalid-PPR callback (the core's fault handler).
import { type IommuDomainOps, type IommuOps, IOMMU_NO_PASID, type RemoveWhy } from '../../core/ops.js';
import type { DeviceInfo } from '../../core/types.js';
import { SVM_FLAG_SUPERVISOR_MODE } from '../../core/types.js';
import { EBUSY, EOPNOTSUPP } from '../../kernel/errno.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { cmd, type DriverEnv, domainMm, flush, unitOf, writeEntry } from '../driver.js';
import { type FlavourSpec, OP_DEVTLB, OP_IOTLB, OP_PC } from '../flavour.js';
import { drainPrq } from '../queue.js';

const V = 1;

export const AMD: FlavourSpec = {
  flavour: 'amd',
  unitName: (i) => `AMD-Vi${i}`,
  entryName: 'GCR3',
  entry: {
    words: 1,
    fetch: [0],
    presentWord: 0,
    present: (w) => ((w[0] ?? 0) & V) !== 0,
    mmOf: (w) => (w[0] ?? 0) >>> 1,
    asidOf: () => 0,
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
    mn_release(t: KTask, dev: DeviceInfo, pasid: number): KGen;
    mn_invalidate_range(t: KTask, dev: DeviceInfo, pasid: number, start: number, end: number): KGen;
  }
}

/** __clear_gcr3, then the device table entry (and the GCR3 entry cached with it), then the TLBs. */
function* amdClear(env: DriverEnv, t: KTask, dev: DeviceInfo, pasid: number, why: RemoveWhy): KGen {
  const unit = unitOf(env, dev).unit;
  if ((unit.entryWord(dev.index, pasid, 0) & V) === 0 && why === 'release') return;
  yield* writeEntry(env, t, dev, pasid, [[0, 0, '__clear_gcr3']]);
  yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid), cmd(OP_DEVTLB, dev.index, pasid)]);
}

/** The driver's kernel functions, by name (once per kernel: every AMD unit shares them). */
function defineAmdFunctions(env: DriverEnv): void {
  const k = env.k;
  if (k.fns.has('amd_iommu_bind_pasid')) return;
  k.fns.define('amd_iommu_bind_pasid', 'drivers/iommu/amd/iommu_v2.c', function* (t, dev, pasid, mm) {
    const unit = unitOf(env, dev).unit;
    if ((unit.entryWord(dev.index, pasid, 0) & V) !== 0) return -EBUSY;
    yield* writeEntry(env, t, dev, pasid, [[0, ((mm.id + 1) << 1) | V, '__set_gcr3']]);
    yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid)]);
    return 0;
  });
  k.fns.define('amd_iommu_unbind_pasid', 'drivers/iommu/amd/iommu_v2.c', (t, dev, pasid) => amdClear(env, t, dev, pasid, 'unbind'));
  k.fns.define('mn_release', 'drivers/iommu/amd/iommu_v2.c', (t, dev, pasid) => amdClear(env, t, dev, pasid, 'release'));
  k.fns.define('mn_invalidate_range', 'drivers/iommu/amd/iommu_v2.c', (t, dev, pasid, start, end) =>
    flush(env, t, dev, [cmd(OP_IOTLB, dev.index, pasid, start, end), cmd(OP_DEVTLB, dev.index, pasid, start, end)]),
  );
}

export function amdOps(env: DriverEnv): IommuOps {
  const k = env.k;
  defineAmdFunctions(env);
  const domainOps: IommuDomainOps = {
    // The RID's requests walk GCR3 entry 0.
    attach_dev: (t, domain, dev) => domainOps.set_dev_pasid(t, domain, dev, IOMMU_NO_PASID, undefined),
    set_dev_pasid: (t, domain, dev, pasid) => k.fn.amd_iommu_bind_pasid(t, dev, pasid, domainMm(domain)),
    iotlb_sync: (t, _domain, dev, pasid, start, end) => k.fn.mn_invalidate_range(t, dev, pasid, start, end),
  };
  return {
    driver: 'AMD-Vi',
    nativePasid: 'device',
    releaseNotifiesDriver: true,
    dev_enable_feat: (_dev, _feat, flags) =>
      (flags & SVM_FLAG_SUPERVISOR_MODE) !== 0 ? { err: -EOPNOTSUPP, why: 'AMD IOMMUv2 binds no supervisor PASIDs' } : { err: 0, why: '' },
    pasid_range: (dev) => [1, (1 << dev.caps.pasidBits) - 1],
    remove_dev_pasid: (t, dev, pasid, _domain, why) => (why === 'release' ? k.fn.mn_release(t, dev, pasid) : k.fn.amd_iommu_unbind_pasid(t, dev, pasid)),
    drain_prq: (t, dev, pasid) => drainPrq(k, t, unitOf(env, dev), dev, pasid),
    default_domain_ops: domainOps,
  };
}
