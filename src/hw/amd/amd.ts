// AMD IOMMUv2 (drivers/iommu/amd/iommu_v2.c, the pre-5.x shape in seed 000): the device driver chooses the
// PASID and passes it in (amd_iommu_bind_pasid); a GCR3 table of 64-bit entries that hardware reads and the
// driver writes in one access each (__set_gcr3 / __clear_gcr3), so no torn entry; a command buffer with
// COMPLETION_WAIT; a PPR log. Its mm-release path calls the driver's invalidate_ctx callback before the
// context goes, and failed PPRs go to the driver's invalid-PPR callback (the core's fault handler).
import type { DeviceInfo, IommuOps } from '../../core/types.js';
import { SVM_FLAG_SUPERVISOR_MODE } from '../../core/types.js';
import { EBUSY, EOPNOTSUPP } from '../../kernel/errno.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import { cmd, type DriverEnv, flush, unitOf, writeEntry } from '../driver.js';
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

export function amdOps(env: DriverEnv): IommuOps {
  const k = env.k;
  return {
    driver: 'AMD-Vi',
    flavour: 'amd',
    nativePasid: 'device',
    releaseNotifiesDriver: true,
    sva_supported: (_dev, flags) =>
      (flags & SVM_FLAG_SUPERVISOR_MODE) !== 0 ? { err: -EOPNOTSUPP, why: 'AMD IOMMUv2 binds no supervisor PASIDs' } : { err: 0, why: '' },
    pasid_range: (dev) => [1, (1 << dev.caps.pasidBits) - 1],
    *set_dev_pasid(t, dev, pasid, mm) {
      return yield* k.call(
        t,
        'amd_iommu_bind_pasid',
        (function* () {
          const unit = unitOf(env, dev).unit;
          if ((unit.entryWord(dev.index, pasid, 0) & V) !== 0) return -EBUSY;
          yield* writeEntry(env, t, dev, pasid, [[0, ((mm.id + 1) << 1) | V, '__set_gcr3']]);
          yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid)]);
          return 0;
        })(),
      );
    },
    *remove_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, _mm, why): KGen {
      yield* k.call(
        t,
        why === 'release' ? 'mn_release' : 'amd_iommu_unbind_pasid',
        (function* () {
          const unit = unitOf(env, dev).unit;
          if ((unit.entryWord(dev.index, pasid, 0) & V) === 0 && why === 'release') return;
          yield* writeEntry(env, t, dev, pasid, [[0, 0, '__clear_gcr3']]);
          // The device table entry (and the GCR3 entry cached with it) first, then the TLBs.
          yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid), cmd(OP_DEVTLB, dev.index, pasid)]);
        })(),
      );
    },
    *invalidate_range(t, dev, pasid, _mm, start, end) {
      yield* k.call(
        t,
        'mn_invalidate_range',
        flush(env, t, dev, [cmd(OP_IOTLB, dev.index, pasid, start, end), cmd(OP_DEVTLB, dev.index, pasid, start, end)]),
      );
    },
    drain_prq: (t, dev, pasid) => drainPrq(k, t, unitOf(env, dev), dev, pasid),
  };
}
