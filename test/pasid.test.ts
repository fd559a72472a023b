// The one PASID allocator (src/core/pasid.ts): iommu_alloc_pasid / iommu_free_pasid are kernel functions whose
// implementation is the placement policy, the system placement takes its PASIDs from the kernel's IOASID
// allocator (its system ioasid_set), and a patch that wraps or replaces them by name is what the bind path calls.
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { ioasidAllocatedCount, ioasidInfo, ioasidOf, ioasidSystemSid } from '../src/core/ioasid.js';
import { Oracle } from '../src/core/oracle.js';
import { PasidAllocator } from '../src/core/pasid.js';
import type { DeviceInfo } from '../src/core/types.js';
import type { KTask } from '../src/kernel/context.js';
import { ENOSPC } from '../src/kernel/errno.js';
import type { KGen } from '../src/kernel/kernel.js';
import type { MmStruct, MmTable } from '../src/kernel/mm/mm.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva, type SvaModel } from '../src/workloads/sva.js';
import { kernel } from './kernel-harness.js';

// Two processes open the work queues of two devices behind two VT-d units: each mm is bound on both IOMMUs.
const TOPO = { iommus: 'vtd,vtd', devices: 2, processes: 2, opens: 2, dmas: 2, wq: 'shared' };

interface Got {
  readonly dev: number;
  readonly mm: number;
  readonly pasid: number;
  /** The PASID's ioasid_set, read when iommu_alloc_pasid returned (0: not an IOASID). */
  readonly sid: number;
}

/** Run once with iommu_alloc_pasid wrapped to record what it hands out. */
function run(params: Record<string, Wire>, seed: number, patch?: (m: SvaModel) => void) {
  const built = buildSva(params);
  const { k } = built.model;
  const got: Got[] = [];
  k.fns.wrap(
    'iommu_alloc_pasid',
    (orig) =>
      function* (t: KTask, dev: DeviceInfo, mm: MmStruct, flags: number): KGen<number> {
        const pasid = yield* orig(t, dev, mm, flags);
        const a = ioasidOf(k);
        got.push({ dev: dev.index, mm: mm.id, pasid, sid: a ? (ioasidInfo(k, a, pasid)?.sid ?? 0) : 0 });
        return pasid;
      },
    'test/pasid.test.ts',
  );
  patch?.(built.model);
  const s = new RandomScheduler(seed);
  s.newExecution();
  const r = runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
  return { r, model: built.model, got };
}

describe('iommu_alloc_pasid: the placement policy picks the implementation', () => {
  it('lists every placement as an alternative, the chosen one last called', () => {
    const { k } = buildSva({ ...TOPO, pasidAlloc: 'per-iommu' }).model;
    for (const name of ['iommu_alloc_pasid', 'iommu_free_pasid']) {
      const info = k.fns.list().find((f) => f.name === name);
      expect(info?.origins).toEqual([
        { kind: 'policy', policy: 'pasidAlloc', value: 'per-iommu', values: ['native', 'system', 'per-iommu', 'device', 'ssid'] },
      ]);
    }
  });

  it('system: every PASID is an ID of the system ioasid_set, one per mm on both IOMMUs, all freed at the end', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const { r, model, got } = run({ ...TOPO, pasidAlloc: 'system' }, seed);
      expect(r.findings).toEqual([]);
      const a = ioasidOf(model.k);
      if (!a) throw new Error('no IOASID allocator');
      const ok = got.filter((g) => g.pasid > 0);
      expect(ok.length).toBeGreaterThanOrEqual(4);
      for (const g of ok) expect(g.sid).toBe(ioasidSystemSid(model.k, a));
      // One PASID per process, whichever IOMMU: the same mm never gets two, two mms never share one.
      const byMm = new Map<number, Set<number>>();
      for (const g of ok) byMm.set(g.mm, (byMm.get(g.mm) ?? new Set()).add(g.pasid));
      for (const ps of byMm.values()) expect(ps.size).toBe(1);
      const pasids = [...byMm.values()].map((ps) => [...ps][0]);
      expect(new Set(pasids).size).toBe(pasids.length);
      expect(ioasidAllocatedCount(model.k, a)).toBe(0);
    }
  });

  it("per-iommu: PASIDs come from each IOMMU's IDA, and two mms get the same PASID on different IOMMUs", () => {
    const aliased: number[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const { got } = run({ ...TOPO, pasidAlloc: 'per-iommu' }, seed);
      const ok = got.filter((g) => g.pasid > 0);
      for (const g of ok) expect(g.sid).toBe(0);
      for (const g of ok) if (ok.some((h) => h.pasid === g.pasid && h.mm !== g.mm && h.dev !== g.dev)) aliased.push(seed);
    }
    expect(aliased.length).toBeGreaterThan(0);
  });

  it('a replacement by name is what the bind path calls', () => {
    let calls = 0;
    const { r, got } = run({ ...TOPO, pasidAlloc: 'system' }, 1, (m) =>
      m.k.fns.replace(
        'iommu_alloc_pasid',
        function* (t: KTask): KGen<number> {
          return yield* m.k.step(t, 'iommu_alloc_pasid: refused by the test', () => {
            calls++;
            return -ENOSPC;
          });
        },
        'test/pasid.test.ts',
      ),
    );
    expect(calls).toBeGreaterThan(0);
    expect(got).toEqual([]);
    expect(r.check.counters.dmas ?? 0).toBe(0);
  });
});

describe('PasidAllocator declares the kernel IOASID allocator with the seed-003 policies it is given', () => {
  it('ioasidLock=mutex, ioasidChain=blocking: ioasid_alloc and the notifier registration take those implementations', () => {
    const k = kernel();
    const env = {
      devices: [],
      iommus: 1,
      placement: 'system' as const,
      mms: undefined as unknown as MmTable,
      opsOf: () => {
        throw new Error('no device');
      },
      svmOf: () => undefined,
    };
    const p = new PasidAllocator(k, new Oracle(k), { ...env, ioasid: { lock: 'mutex', chain: 'blocking' } }, 4);
    expect(ioasidOf(k)).toBe(p.ioasid);
    expect(p.ioasid.lockPolicy).toBe('mutex');
    const origin = (name: string) => k.fns.list().find((f) => f.name === name)?.origins[0];
    expect(origin('ioasid_alloc')).toMatchObject({ policy: 'ioasidLock', value: 'mutex' });
    expect(origin('ioasid_register_notifier')).toMatchObject({ policy: 'ioasidChain', value: 'blocking' });
    expect(origin('iommu_alloc_pasid')).toMatchObject({ policy: 'pasidAlloc', value: 'system' });
  });
});
