// Intel VT-d (drivers/iommu/intel/pasid.c, svm.c, dmar.c): a 512-bit scalable-mode PASID-table entry per
// {device, PASID} — P, FPD and SRE in the first word, the domain id, the first-level page-table pointer — that
// the hardware fetches in more than one access; an invalidation queue (QI) with wait descriptors; a page
// request queue drained by prq_event_thread; PASIDs from a per-IOMMU idr (the original intel-svm) unless the
// policy makes them system-wide. Teardown clears P first and flushes the PASID cache, the IOTLB and the
// device TLB before the entry may be reused (intel_pasid_tear_down_entry).
import type { DeviceInfo, IommuOps } from '../../core/types.js';
import { SVM_FLAG_SUPERVISOR_MODE } from '../../core/types.js';
import { EBUSY } from '../../kernel/errno.js';
import type { KTask } from '../../kernel/context.js';
import type { KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { cmd, type DriverEnv, flush, unitOf, writeEntry } from '../driver.js';
import { type FlavourSpec, OP_DEVTLB, OP_IOTLB, OP_PC } from '../flavour.js';
import { drainPrq } from '../queue.js';

const P = 1;
const FPD = 2;
const SRE = 4;
const W_FLAGS = 0;
const W_DID = 1;
const W_FLPTR = 2;

export const VTD: FlavourSpec = {
  flavour: 'vtd',
  unitName: (i) => `dmar${i}`,
  entryName: 'PASID',
  entry: {
    words: 8,
    fetch: [W_FLAGS, W_FLPTR],
    presentWord: W_FLAGS,
    present: (w) => ((w[W_FLAGS] ?? 0) & P) !== 0,
    mmOf: (w) => w[W_FLPTR] ?? 0,
    asidOf: () => 0,
  },
  tlbTag: 'pasid',
  cmdqName: 'QI',
  prqName: 'PRQ',
  prqThread: 'prq_event_thread',
  commandNames: { 1: 'P_IOTLB_INV', 2: 'PC_INV', 3: 'DEV_IOTLB_INV', 4: 'PAGE_GRP_RESP', 5: 'INV_WAIT' },
};

export function vtdOps(env: DriverEnv): IommuOps {
  const k = env.k;
  const teardown = function* (t: KTask, dev: DeviceInfo, pasid: number, why: 'unbind' | 'release'): KGen {
    const unit = unitOf(env, dev).unit;
    if ((unit.entryWord(dev.index, pasid, W_FLAGS) & P) === 0 && why === 'release') return;
    // Clear P (with FPD on the release path, so DMA still in flight faults quietly), then flush.
    yield* writeEntry(env, t, dev, pasid, [[W_FLAGS, why === 'release' ? FPD : 0, why === 'release' ? 'pasid_clear_entry_with_fpd' : 'pasid_clear_present']]);
    yield* flush(env, t, dev, [cmd(OP_PC, dev.index, pasid), cmd(OP_IOTLB, dev.index, pasid), cmd(OP_DEVTLB, dev.index, pasid)]);
    if (why === 'unbind') yield* writeEntry(env, t, dev, pasid, [[W_FLPTR, 0, 'intel_pasid_clear_entry'], [W_DID, 0, 'intel_pasid_clear_entry']]);
  };
  return {
    driver: 'intel-iommu',
    flavour: 'vtd',
    nativePasid: 'per-iommu',
    releaseNotifiesDriver: false,
    sva_supported: () => ({ err: 0, why: '' }),
    pasid_range: (dev) => [1, (1 << dev.caps.pasidBits) - 1],
    *set_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, flags: number): KGen<number> {
      return yield* k.call(
        t,
        'intel_pasid_setup_first_level',
        (function* () {
          const unit = unitOf(env, dev).unit;
          if ((unit.entryWord(dev.index, pasid, W_FLAGS) & P) !== 0) return -EBUSY;
          // The entry is not present, so the hardware caches nothing of it: write it, P last.
          yield* writeEntry(env, t, dev, pasid, [
            [W_FLPTR, mm.id + 1, 'pasid_set_flptr'],
            [W_DID, dev.iommu + 1, 'pasid_set_domain_id'],
            [W_FLAGS, P | ((flags & SVM_FLAG_SUPERVISOR_MODE) !== 0 ? SRE : 0), 'pasid_set_present'],
          ]);
          return 0;
        })(),
      );
    },
    *remove_dev_pasid(t, dev, pasid, _mm, why) {
      yield* k.call(t, why === 'release' ? 'intel_mm_release' : 'intel_pasid_tear_down_entry', teardown(t, dev, pasid, why));
    },
    *invalidate_range(t, dev, pasid, _mm, start, end) {
      yield* k.call(
        t,
        'intel_arch_invalidate_secondary_tlbs',
        flush(env, t, dev, [cmd(OP_IOTLB, dev.index, pasid, start, end), cmd(OP_DEVTLB, dev.index, pasid, start, end)]),
      );
    },
    drain_prq: (t, dev, pasid) => drainPrq(k, t, unitOf(env, dev), dev, pasid),
  };
}
