// drivers/iommu/intel/pasid.c: the per-device PASID directory and its tables (intel_pasid_get_entry allocates a
// table when the directory has none for the PASID, and installs it with a cmpxchg), the pasid_set_* helpers (each a
// read-modify-write of one 64-bit val[] word: a WRITE_ONCE, one step), and the entry's life under iommu->lock —
// intel_pasid_setup_first_level clears a non-present entry and writes it with P last, intel_pasid_tear_down_entry
// clears it (val[0] first: P goes before anything else) and then invalidates the PASID cache, the PASID-based IOTLB
// and the device TLB, each through qi_submit_sync (pasid_cache_invalidation_with_pasid, qi_flush_piotlb,
// devtlb_invalidation_with_pasid). Every write sequence ends by publishing the entry's version (entry-oracle.ts).
import { SVM_FLAG_SUPERVISOR_MODE } from '../../core/types.js';
import type { DeviceInfo } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import { EBUSY, EINVAL, ENODEV } from '../../kernel/errno.js';
import type { KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { spin_lock, spin_unlock } from '../../kernel/spinlock.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import type { DriverEnv } from '../driver.js';
import { type VtdUnitDriver, vtdOf } from './dmar.js';
import { entryPublish, entryWriting } from './entry-oracle.js';
import type { VtdUnit } from './hw.js';
import {
  MODEL_AGAW,
  PASID_ENTRY_WORDS,
  PASID_AW_MASK,
  PASID_AW_SHIFT,
  PASID_DID_MASK,
  PASID_ENTRY_PGTT_FL_ONLY,
  PASID_NXE,
  PASID_PGTT_MASK,
  PASID_PGTT_SHIFT,
  PASID_PTE_FPD,
  PASID_PTE_PRESENT,
  PASID_PWSNP,
  PASID_SRE,
  VTD_PAGE_MASK_LO,
  pdeFor,
  pgdAddress,
} from './pasid-entry.js';
import { qi_desc_pc } from './qi.js';
import { pciSid } from './hw.js';

/** A planted bug of the replace path (the torn-entry oracle's negative control). */
export type PasidReplaceBug = 'pasid-replace-in-place';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    intel_pasid_get_entry(t: KTask, dev: DeviceInfo, pasid: number): KGen<number>;
    intel_pasid_setup_first_level(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, flags: number): KGen<number>;
    intel_pasid_replace_first_level(t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct, flags: number): KGen<number>;
    intel_pasid_tear_down_entry(t: KTask, dev: DeviceInfo, pasid: number, faultIgnore: boolean): KGen;
    pasid_cache_invalidation_with_pasid(t: KTask, iommu: number, did: number, pasid: number): KGen;
    qi_flush_piotlb(t: KTask, iommu: number, did: number, pasid: number, vpn: number, npages: number): KGen;
    devtlb_invalidation_with_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen;
  }
}

/** One 64-bit store of the entry: val[i] := f(val[i]) — a WRITE_ONCE of a pasid_set_* helper (perform only). */
type ValWrite = readonly [what: string, i: number, f: (lo: number) => number];

/** The entry's word offset (its table exists: intel_pasid_get_entry ran). */
function entryAt(u: VtdUnit, dev: DeviceInfo, pasid: number): number {
  return u.entryPtr(dev.index, pasid);
}

/** pasid_pte_is_present (a read of val[0]; false when the PASID has no table). */
export function pasidPresent(u: VtdUnit, dev: DeviceInfo, pasid: number): boolean {
  const p = u.pasidEntryPtr(dev.index, pasid);
  return p !== 0 && (u.view.entry.val.READ_ONCE(p, 0) & PASID_PTE_PRESENT) !== 0;
}

/** pasid_get_domain_id */
function pasidDid(u: VtdUnit, dev: DeviceInfo, pasid: number): number {
  const p = u.pasidEntryPtr(dev.index, pasid);
  return p === 0 ? 0 : u.view.entry.val.READ_ONCE(p, 2) & PASID_DID_MASK;
}

/**
 * A write sequence of {dev, pasid}'s entry, one step per 64-bit store (the high word of each val[] the model keeps
 * 0 but for clears), published when the last is done.
 */
function* writeSequence(env: DriverEnv, t: KTask, u: VtdUnit, dev: DeviceInfo, pasid: number, writes: readonly ValWrite[]): KGen {
  const p = entryAt(u, dev, pasid);
  const val = u.view.entry.val;
  for (let n = 0; n < writes.length; n++) {
    const [what, i, f] = writes[n] as ValWrite;
    yield* env.k.stepOn(t, what, entryWriteFootprint(u, dev, pasid, p, i, n === writes.length - 1), () => {
      entryWriting(u, dev.index, pasid);
      val.WRITE_ONCE(p, 2 * i, f(val.READ_ONCE(p, 2 * i)) | 0);
      val.WRITE_ONCE(p, 2 * i + 1, 0);
      if (n === writes.length - 1) entryPublish(u, dev.index, pasid);
    });
  }
}

/**
 * A write of val[i] (the 64-bit store: words 2i and 2i + 1) of the entry at p: the directory entry read to find
 * the version record, its seq marked; the last write of a sequence reads the whole entry and publishes it (the
 * record's every word).
 */
export function entryWriteFootprint(u: VtdUnit, dev: DeviceInfo, pasid: number, p: number, i: number, last: boolean): Footprint {
  const val = u.view.entry.val;
  const vp = u.versionPtr(dev.index, pasid);
  const v = u.view.version;
  const fp = [read(u.pdePtr(dev.index, pasid)), val.addr(p, 2 * i), val.addr(p, 2 * i + 1), v.seq.addr(vp)];
  if (!last) return fp;
  for (let w = 0; w < PASID_ENTRY_WORDS; w++) if (w >> 1 !== i) fp.push(read(val.addr(p, w)));
  fp.push(v.hash.addr(vp), v.prev_hash.addr(vp));
  for (let w = 0; w < PASID_ENTRY_WORDS; w++) fp.push(v.val.addr(vp, w));
  return fp;
}

/**
 * intel_pasid_get_entry's: the directory entry read, and when it points at no table, the pool's counter and the
 * directory entry written (alloc_pgtable_page, cmpxchg64). Computed: whether the table is there is shared state.
 */
function getEntryFootprint(u: VtdUnit, dev: DeviceInfo, pasid: number): Footprint {
  const pde = u.pdePtr(dev.index, pasid);
  return u.pasidEntryPtr(dev.index, pasid) !== 0 ? [read(pde)] : [pde, u.poolUsedPtr];
}

const bits = (mask: number, v: number) => (lo: number) => (lo & ~mask) | v;

/** pasid_clear_entry (with_fpd: pasid_clear_entry_with_fpd): val[0] first, then val[1..7]. */
function clearEntry(withFpd: boolean): ValWrite[] {
  const what = withFpd ? 'pasid_clear_entry_with_fpd' : 'pasid_clear_entry';
  return Array.from({ length: 8 }, (_, i): ValWrite => [`${what}: val[${i}]`, i, () => (i === 0 && withFpd ? PASID_PTE_FPD : 0)]);
}

/** pasid_pte_config_first_level: the new entry's fields after a clear, P last. */
function configFirstLevel(mm: MmStruct, did: number, flags: number): ValWrite[] {
  return [
    ['pasid_set_flptr', 2, bits(VTD_PAGE_MASK_LO, pgdAddress(mm.id))],
    ...((flags & SVM_FLAG_SUPERVISOR_MODE) !== 0 ? [['pasid_set_sre', 2, bits(PASID_SRE, PASID_SRE)] as ValWrite] : []),
    ['pasid_set_domain_id', 1, bits(PASID_DID_MASK, did)],
    ['pasid_set_address_width', 0, bits(PASID_AW_MASK, MODEL_AGAW << PASID_AW_SHIFT)],
    ['pasid_set_page_snoop', 1, bits(PASID_PWSNP, PASID_PWSNP)],
    ['pasid_set_nxe', 2, bits(PASID_NXE, PASID_NXE)],
    ['pasid_set_translation_type', 0, bits(PASID_PGTT_MASK, PASID_ENTRY_PGTT_FL_ONLY << PASID_PGTT_SHIFT)],
    ['pasid_set_present', 0, bits(PASID_PTE_PRESENT, PASID_PTE_PRESENT)],
  ];
}

/** The model's domain id of an address space's domain: one domain per page table, the mm's id + 1 (16 bits). */
export function domainId(mm: MmStruct): number {
  return (mm.id + 1) & PASID_DID_MASK;
}

/** pasid.c's kernel functions, by name (once per kernel: every VT-d unit shares them). */
export function defineIntelPasid(env: DriverEnv, bug: string): void {
  const k = env.k;
  k.fns.define('intel_pasid_get_entry', 'drivers/iommu/intel/pasid.c', function* (t, dev, pasid) {
    const u = vtdOf(env, dev.iommu).unit;
    if (pasid >= 1 << dev.caps.pasidBits) return 0;
    return yield* k.stepOn(t, 'intel_pasid_get_entry', () => getEntryFootprint(u, dev, pasid), () => {
      const pde = u.pdePtr(dev.index, pasid);
      for (;;) {
        const p = u.pasidEntryPtr(dev.index, pasid);
        if (p !== 0) return p;
        // alloc_pgtable_page(GFP_ATOMIC), then cmpxchg64(&dir[dir_index].val, 0, table | P): a lost race frees ours.
        const leaf = u.allocLeaf();
        if (leaf === 0) return 0;
        if (Atomics.compareExchange(k.i32, pde, 0, pdeFor(leaf)) !== 0) u.freeLeaf(leaf);
      }
    });
  });
  const locked = function* <R>(t: KTask, drv: VtdUnitDriver, body: () => KGen<R>): KGen<R> {
    yield* spin_lock(k, t, drv.iommuLock);
    const r = yield* body();
    yield* spin_unlock(k, t, drv.iommuLock);
    return r;
  };
  k.fns.define('intel_pasid_setup_first_level', 'drivers/iommu/intel/pasid.c', function* (t, dev, pasid, mm, flags) {
    const drv = vtdOf(env, dev.iommu);
    const u = drv.unit;
    const err = yield* locked(t, drv, function* () {
      if ((yield* k.fn.intel_pasid_get_entry(t, dev, pasid)) === 0) return -ENODEV;
      if (pasidPresent(u, dev, pasid)) return -EBUSY;
      yield* writeSequence(env, t, u, dev, pasid, [...clearEntry(false), ...configFirstLevel(mm, domainId(mm), flags)]);
      return 0;
    });
    // pasid_flush_caches: not in caching mode, a write-buffer flush only (the model's memory is coherent).
    return err;
  });
  k.fns.define('intel_pasid_tear_down_entry', 'drivers/iommu/intel/pasid.c', function* (t, dev, pasid, faultIgnore) {
    const drv = vtdOf(env, dev.iommu);
    const u = drv.unit;
    const did = yield* locked(t, drv, function* () {
      if ((yield* k.fn.intel_pasid_get_entry(t, dev, pasid)) === 0 || !pasidPresent(u, dev, pasid)) return -1;
      const d = pasidDid(u, dev, pasid);
      // intel_pasid_clear_entry: with FPD when the caller ignores faults (the mm is going: DMA still in flight faults quietly).
      yield* writeSequence(env, t, u, dev, pasid, clearEntry(faultIgnore));
      return d;
    });
    if (did < 0) return;
    yield* k.fn.pasid_cache_invalidation_with_pasid(t, dev.iommu, did, pasid);
    yield* k.fn.qi_flush_piotlb(t, dev.iommu, did, pasid, 0, -1);
    yield* k.fn.devtlb_invalidation_with_pasid(t, dev, pasid);
    // Mainline pasid.c ends the teardown with `if (!fault_ignore) intel_iommu_drain_pasid_prq(dev, pasid)`: no
    // page request of the PASID is still being reported once the caller frees what a report reaches (an iommufd
    // attach handle, a domain). The MMU notifier's release ignores faults (the mm is going) and does not drain.
    if (!faultIgnore) yield* k.fn.intel_drain_pasid_prq(t, dev, pasid);
  });
  k.fns.define('pasid_cache_invalidation_with_pasid', 'drivers/iommu/intel/pasid.c', function* (t, iommu, did, pasid) {
    yield* k.fn.qi_submit_sync(t, iommu, [qi_desc_pc(did, pasid)], 0);
  });
  k.fns.define('qi_flush_piotlb', 'drivers/iommu/intel/dmar.c', function* (t, iommu, did, pasid, vpn, npages) {
    yield* k.fn.qi_submit_sync(t, iommu, [k.fn.qi_desc_piotlb(did, pasid, vpn, npages)], 0);
  });
  k.fns.define('devtlb_invalidation_with_pasid', 'drivers/iommu/intel/pasid.c', function* (t, dev, pasid) {
    if (!dev.caps.ats) return;
    const sid = pciSid(dev.name);
    // The whole address space: addr 0, size order 64 - VTD_PAGE_SHIFT.
    yield* k.fn.qi_submit_sync(t, dev.iommu, [k.fn.qi_desc_dev_iotlb_pasid(sid, sid, pasid, 0, 0, 64 - 12)], 0);
  });
  k.fns.definePlanted('intel_pasid_replace_first_level', 'drivers/iommu/intel/pasid.c', bug, {
    // The entry is never rewritten while present: tear it down (clear, flush), then set it up again, P last. DMA
    // in between faults, as it would on a blocked PASID.
    *none(t, dev, pasid, mm, flags) {
      if (pasidPresent(vtdOf(env, dev.iommu).unit, dev, pasid)) yield* k.fn.intel_pasid_tear_down_entry(t, dev, pasid, false);
      return yield* k.fn.intel_pasid_setup_first_level(t, dev, pasid, mm, flags);
    },
    // Mainline's since "iommu/vt-d: Add pasid replace helpers" (v6.14): the new entry built on the stack and copied
    // over the present one (*pte = new_pte, eight 64-bit stores), then intel_pasid_flush_present — a fetch between
    // the stores sees half of each (Jason Gunthorpe, "that just doesn't work for replace", Jan 2026).
    'pasid-replace-in-place': function* (t, dev, pasid, mm, flags) {
      const drv = vtdOf(env, dev.iommu);
      const u = drv.unit;
      const oldDid = yield* locked(t, drv, function* () {
        if ((yield* k.fn.intel_pasid_get_entry(t, dev, pasid)) === 0) return -ENODEV;
        if (!pasidPresent(u, dev, pasid)) return -EINVAL;
        const d = pasidDid(u, dev, pasid);
        const fresh = new Array<number>(8).fill(0);
        for (const [, i, f] of configFirstLevel(mm, domainId(mm), flags)) fresh[i] = f(fresh[i] as number);
        yield* writeSequence(env, t, u, dev, pasid, fresh.map((v, i): ValWrite => [`*pte = new_pte: val[${i}]`, i, () => v]));
        return d;
      });
      if (oldDid < 0) return oldDid;
      // intel_pasid_flush_present: the PASID cache and IOTLB under the old DID, then the device TLB.
      yield* k.fn.pasid_cache_invalidation_with_pasid(t, dev.iommu, oldDid, pasid);
      yield* k.fn.qi_flush_piotlb(t, dev.iommu, oldDid, pasid, 0, -1);
      yield* k.fn.devtlb_invalidation_with_pasid(t, dev, pasid);
      return 0;
    },
  });
}
