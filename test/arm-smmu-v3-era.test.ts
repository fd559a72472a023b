// The SMMUv3 driver's SVA half in the era of `static DEFINE_MUTEX(sva_lock)` (arm-smmu-v3-sva.c before the 2024
// rework; notifier=bond) against mainline's (notifier=domain, the default): bind and unbind take sva_lock, and
// inside it the unbind's arm_smmu_mmu_notifier_put clears the CD (CFGI_CD + CMD_SYNC), then TLBI by ASID and ATC
// invalidation, each with its CMD_SYNC; the MMU notifier's release takes sva_lock too, installs the quiet CD and
// marks the notifier cleared, so that the unbind after it only clears the CD. Lockdep sees the order sva_lock →
// arm_smmu_asid_lock → devices_lock, and reports its inversion. Mainline takes no sva_lock. Deterministic runtime,
// fixed seeds; the sequences are one task's, the same on every schedule.
import { describe, expect, it } from 'vitest';
import type { KGen } from '../src/kernel/kernel.js';
import { armSmmuLocksOf } from '../src/hw/arm-smmu-v3/arm-smmu-v3.js';
import { svaLockOf } from '../src/hw/arm-smmu-v3/arm-smmu-v3-sva-era.js';
import { mutex_lock, mutex_unlock } from '../src/kernel/mutex.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

type Built = ReturnType<typeof buildSva>;

const LIFE = JSON.stringify([[{ op: 'bind' }, { op: 'dma', n: 1 }, { op: 'unbind' }, { op: 'exit' }]]);
const EXIT_FIRST = JSON.stringify([[{ op: 'bind' }, { op: 'dma', n: 1 }, { op: 'exit' }]]);

/** One execution; `patch` may wrap the model's functions first. */
function run(params: Record<string, Wire>, seed: number, patch?: (b: Built) => void) {
  const b = buildSva({ iommus: 'smmuv3', devices: 1, processes: 1, ...params });
  patch?.(b);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { r: runDeterministic({ workload: b.workload, seed, scheduler: s, keepGoing: true }), b };
}

/** Record every call of `names` into `log`, in order, by wrapping them by name (as a patch would). */
function record(b: Built, names: readonly string[], log: string[]): void {
  for (const name of names) {
    b.model.k.fns.wrap(
      name,
      (orig) =>
        function* (...args: unknown[]) {
          log.push(name);
          return yield* orig(...args) as KGen<unknown>;
        },
      'test',
    );
  }
}

/** proc0's steps about sva_lock, the CD and the command queue, in order. */
function smmuSteps(text: string): string[] {
  const re =
    /^\s*\d+\s+proc0 <- task: (mutex_(?:un)?lock\((?:sva_lock|arm_smmu_asid_lock)\)|spin_lock_irqsave\(&smmu_domain->devices_lock\)|WRITE_ONCE\(cdptr.*|cdptr\[1\.\.3\].*|cmdq: .*|smmu_mn->cleared = true|list_(?:add|del)\(&(?:bond|smmu_mn)->list.*)$/;
  return text
    .split('\n')
    .map((l) => re.exec(l)?.[1])
    .filter((s): s is string => s !== undefined);
}

/** The part of `steps` from the n-th `mutex_lock(sva_lock)` to its unlock. */
function underSvaLock(steps: readonly string[], n: number): string[] {
  let from = -1;
  for (let i = 0, seen = 0; i < steps.length; i++) if (steps[i] === 'mutex_lock(sva_lock)' && seen++ === n) from = i;
  if (from < 0) return [];
  return steps.slice(from, steps.indexOf('mutex_unlock(sva_lock)', from) + 1);
}

const UNLOCKED_SYNC = ['spin_lock_irqsave(&smmu_domain->devices_lock)', 'cmdq: CMD_CFGI_CD+CMD_SYNC'];
const ERA_FNS = [
  'arm_smmu_sva_bind',
  '__arm_smmu_sva_bind',
  'arm_smmu_mmu_notifier_get',
  'arm_smmu_alloc_shared_cd',
  'arm_smmu_sva_unbind',
  'arm_smmu_mmu_notifier_put',
  'arm_smmu_write_ctx_desc',
  'arm_smmu_tlb_inv_asid',
  'arm_smmu_atc_inv_domain',
  'arm_smmu_mm_release',
  'arm_smmu_sva_set_dev_pasid',
  'arm_smmu_blocking_set_dev_pasid',
];

describe('arm-smmu-v3-sva.c, the sva_lock era (notifier=bond)', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: bind and unbind run under sva_lock; the unbind clears the CD, then TLBI by ASID, then ATC_INV, each synced`, () => {
      const calls: string[] = [];
      const { r } = run({ notifier: 'bond', steps: LIFE }, seed, (b) => record(b, ERA_FNS, calls));
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(calls).toEqual([
        'arm_smmu_sva_bind',
        '__arm_smmu_sva_bind',
        'arm_smmu_mmu_notifier_get',
        'arm_smmu_alloc_shared_cd',
        'arm_smmu_write_ctx_desc',
        'arm_smmu_sva_unbind',
        'arm_smmu_mmu_notifier_put',
        'arm_smmu_write_ctx_desc',
        'arm_smmu_tlb_inv_asid',
        'arm_smmu_atc_inv_domain',
      ]);
      const steps = smmuSteps(r.trace.toText());
      // Bind: the ASID shared under arm_smmu_asid_lock, then the CD's leaf (its L1 descriptor synced), qwords 1–3,
      // a sync, qword 0 with V, a sync — every arm_smmu_sync_cd gathering the domain's masters under devices_lock.
      expect(underSvaLock(steps, 0)).toEqual([
        'mutex_lock(sva_lock)',
        'mutex_lock(arm_smmu_asid_lock)',
        'mutex_unlock(arm_smmu_asid_lock)',
        ...UNLOCKED_SYNC,
        'cdptr[1..3] = ttbr, mair',
        ...UNLOCKED_SYNC,
        'WRITE_ONCE(cdptr[0], val | CTXDESC_CD_0_V)',
        ...UNLOCKED_SYNC,
        'list_add(&smmu_mn->list, &smmu_domain->mmu_notifiers)',
        'list_add(&bond->list, &master->bonds)',
        'mutex_unlock(sva_lock)',
      ]);
      // Unbind: arm_smmu_mmu_notifier_put — CD cleared, TLBI by ASID, ATC invalidation, each with its CMD_SYNC.
      expect(underSvaLock(steps, 1)).toEqual([
        'mutex_lock(sva_lock)',
        'list_del(&bond->list)',
        'list_del(&smmu_mn->list)',
        'WRITE_ONCE(cdptr[0], 0)',
        ...UNLOCKED_SYNC,
        'cmdq: CMD_TLBI_NH_ASID+CMD_SYNC',
        'spin_lock_irqsave(&smmu_domain->devices_lock)',
        'cmdq: CMD_ATC_INV+CMD_SYNC',
        'mutex_unlock(sva_lock)',
      ]);
    });
  }

  it('exit before unbind: arm_smmu_mm_release takes sva_lock, installs the quiet CD, invalidates, and the unbind after it (cleared) only clears the CD', () => {
    const calls: string[] = [];
    const { r } = run({ notifier: 'bond', steps: EXIT_FIRST }, 1, (b) => record(b, ERA_FNS, calls));
    expect(r.findings.map((f) => f.title)).toEqual([]);
    const steps = smmuSteps(r.trace.toText());
    expect(underSvaLock(steps, 1)).toEqual([
      'mutex_lock(sva_lock)',
      'WRITE_ONCE(cdptr[0], val | CTXDESC_CD_0_TCR_EPD0)',
      ...UNLOCKED_SYNC,
      'cmdq: CMD_TLBI_NH_ASID+CMD_SYNC',
      'spin_lock_irqsave(&smmu_domain->devices_lock)',
      'cmdq: CMD_ATC_INV+CMD_SYNC',
      'smmu_mn->cleared = true',
      'mutex_unlock(sva_lock)',
    ]);
    expect(underSvaLock(steps, 2)).toEqual(['mutex_lock(sva_lock)', 'list_del(&bond->list)', 'list_del(&smmu_mn->list)', 'WRITE_ONCE(cdptr[0], 0)', ...UNLOCKED_SYNC, 'mutex_unlock(sva_lock)']);
    expect(calls.slice(calls.indexOf('arm_smmu_sva_unbind'))).toEqual(['arm_smmu_sva_unbind', 'arm_smmu_mmu_notifier_put', 'arm_smmu_write_ctx_desc']);
  });

  it('lockdep records sva_lock → arm_smmu_asid_lock → devices_lock, and reports a task taking them the other way round', () => {
    const { r, b } = run({ notifier: 'bond', steps: LIFE }, 1, (b) => {
      const k = b.model.k;
      // Once the bond is unbound (sva_lock released), in the same task: a DMA domain's CD installed under
      // arm_smmu_asid_lock (the era synced it under devices_lock), then sva_lock taken under arm_smmu_asid_lock —
      // the inversion lockdep must name.
      k.fns.wrap(
        'arm_smmu_sva_unbind',
        (orig) =>
          function* (t, dev, pasid, mm) {
            yield* orig(t, dev, pasid, mm);
            yield* k.fn.arm_smmu_set_pasid(t, { type: 'dma', obj: 0, mm, flags: 0 }, dev, pasid + 1);
            const asid = armSmmuLocksOf(k)?.asid;
            const sva = svaLockOf(k);
            if (!asid || !sva) throw new Error('no SMMUv3 locks');
            yield* mutex_lock(k, t, asid);
            yield* mutex_lock(k, t, sva);
            yield* mutex_unlock(k, t, sva);
            yield* mutex_unlock(k, t, asid);
          },
        'test',
      );
    });
    const deps = b.model.k.lockdep.dependencies().map((d) => `${d.prev} -> ${d.next}`);
    expect(deps).toEqual(expect.arrayContaining(['sva_lock -> arm_smmu_asid_lock', 'sva_lock -> &smmu_domain->devices_lock', 'arm_smmu_asid_lock -> &smmu_domain->devices_lock']));
    const lockdep = r.findings.filter((f) => f.kind === 'lockdep');
    expect(lockdep.map((f) => f.title)).toEqual([expect.stringMatching(/circular locking dependency/)]);
    expect(lockdep[0]?.text).toMatch(/sva_lock/);
    expect(lockdep[0]?.text).toMatch(/arm_smmu_asid_lock/);
  });
});

describe('mainline arm-smmu-v3-sva.c (notifier=domain, the default)', () => {
  it('takes no sva_lock: arm_smmu_sva_set_dev_pasid binds, the blocked domain unbinds', () => {
    const calls: string[] = [];
    const { r } = run({ steps: LIFE }, 1, (b) => record(b, ERA_FNS, calls));
    expect(r.findings.map((f) => f.title)).toEqual([]);
    expect(r.trace.toText()).not.toMatch(/mutex_lock\(sva_lock\)/);
    expect(calls).toEqual(['arm_smmu_sva_set_dev_pasid', 'arm_smmu_blocking_set_dev_pasid', 'arm_smmu_tlb_inv_asid']);
  });
});
