// The IOASID allocator of seed 003 (src/core/ioasid.ts, after drivers/iommu/ioasid.c and include/linux/ioasid.h),
// its subscribers (src/core/ioasid-subscribers.ts) and the `ioasid` workload (src/core/ioasid-workload.ts):
// capacity and quotas with their oracle, sets, the RCU fast path, guest PASIDs, the notifier chain and the
// divergence oracle, seed 003 end to end under each policy (the report with the RCU callback in its call chain,
// and its absence with the fix), both runtimes, and the benchmark suite's shape. Deterministic runtime with fixed
// seeds except where the threaded runtime is the point; each oracle has a planted bug it must catch.
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { ioasidSuite } from '../bench/ioasid.bench.js';
import {
  __ioasid_find,
  defineIoasid,
  IOASID_NOTIFY_BIND,
  type IoasidOptions,
  ioasid_find_locked,
  ioasidAllocatedCount,
  ioasidCapacity,
  ioasidCapacityAvail,
  ioasidInfo,
  ioasidLockFree,
  ioasidSetInfo,
  ioasidWords,
} from '../src/core/ioasid.js';
import { INTEL_SVM_IOASID } from '../src/hw/intel/svm.js';
import { defineIoasidSubscribers, divergence, ioasid_check_subscribers, ioasid_subscribers_register, ioasidSubscriberWords, subscriberView } from '../src/core/ioasid-subscribers.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import { buildIoasid } from '../src/workloads/ioasid.js';
import type { KTask } from '../src/kernel/context.js';
import { EACCES, EBUSY, EINVAL, ENOENT, ENOSPC, errname } from '../src/kernel/errno.js';
import { Kernel, type KGen } from '../src/kernel/kernel.js';
import { defineMutex, mutex_lock, mutex_unlock } from '../src/kernel/mutex.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { replay, run } from '../src/runtime/run.js';
import { PctScheduler } from '../src/runtime/schedulers/pct.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { runOnce, tasksWorkload } from './kernel-harness.js';
import '../src/workloads/index.js';

// ---- a bare allocator in a small kernel ----

function rig(bits: number, opts: Omit<IoasidOptions, 'bits' | 'maxSets'> = {}, subs = false) {
  const staticWords = ioasidWords(bits, 8) + (subs ? ioasidSubscriberWords(bits, 8) : 0) + (1 << 13);
  const k = new Kernel({ layout: { stringWords: 1 << 15, stringSlots: 1 << 10, staticWords, arenaWords: 1 << 10, lockdepWords: 1 << 14 } });
  const a = defineIoasid(k, { bits, maxSets: 8, ...opts });
  const s = subs ? defineIoasidSubscribers(k, a, { driver: INTEL_SVM_IOASID, kvmToken: 7 }) : undefined;
  return { k, a, s };
}

/** One process-context task running `body`, every finding collected. */
function runBody(k: Kernel, body: (t: KTask) => KGen, seed = 1): RunResult {
  k.task('test', 'process', body);
  return runOnce(tasksWorkload(k, 'ioasid-test', ['test']), seed, false, true);
}

/** An ID or a count as is, a negated errno by its name. */
function ret(r: number): string {
  return r < 0 ? errname(r) : String(r);
}

function titles(r: RunResult): string[] {
  return r.findings.map((f) => f.title);
}

describe('IOASID capacity', () => {
  it('IDs 1..capacity-1 are handed out lowest first, then -ENOSPC; the capacity is never exceeded', () => {
    const { k, a } = rig(5);
    const got: number[] = [];
    let count = 0;
    const r = runBody(k, function* (t) {
      expect(yield* k.fn.ioasid_install_capacity(t, 16)).toBe(0);
      const sid = yield* k.fn.ioasid_alloc_system_set(t, 15);
      for (let i = 0; i < 16; i++) got.push(yield* k.fn.ioasid_alloc(t, sid, 0, 1 << 20, i));
      count = ioasidAllocatedCount(k, a);
      yield* k.fn.ioasid_free_set(t, sid, true);
    });
    expect(titles(r)).toEqual([]);
    expect(got.slice(0, 15)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(errname(got[15] ?? 0)).toBe('-ENOSPC');
    expect(ioasidCapacity(k, a)).toBe(16);
    expect(count).toBe(15);
    expect(ioasidAllocatedCount(k, a)).toBe(0);
  });

  it('a system set may not take more than the capacity: -ENOSPC', () => {
    const { k } = rig(5);
    const rets: number[] = [];
    runBody(k, function* (t) {
      yield* k.fn.ioasid_install_capacity(t, 16);
      rets.push(yield* k.fn.ioasid_alloc_system_set(t, 16));
      rets.push(yield* k.fn.ioasid_alloc_system_set(t, 15));
      rets.push(yield* k.fn.ioasid_alloc_system_set(t, 1));
    });
    expect(rets.map(ret)).toEqual(['-ENOSPC', '1', '-EEXIST']);
  });

  it('ioasid_install_capacity after an allocation is refused with the kernel WARN and -EBUSY (before it: no report)', () => {
    const late = rig(6);
    const rets: number[] = [];
    const r = runBody(late.k, function* (t) {
      const sid = yield* late.k.fn.ioasid_alloc_system_set(t, 10);
      rets.push(yield* late.k.fn.ioasid_alloc(t, sid, 1, 63, 0));
      rets.push(yield* late.k.fn.ioasid_install_capacity(t, 32));
      yield* late.k.fn.ioasid_free_set(t, sid, true);
    });
    expect(rets).toEqual([1, -EBUSY]);
    expect(titles(r)).toHaveLength(1);
    expect(r.findings[0]?.title).toMatch(/^WARNING: CPU: 0 PID: \d+ at drivers\/iommu\/ioasid.c:\d+ ioasid_install_capacity$/);
    expect(r.findings[0]?.text).toContain('IOASID capacity set after allocations began (1 IOASIDs allocated): refused');
    expect(ioasidCapacity(late.k, late.a)).toBe(64);

    // The control: the same calls in the right order.
    const early = rig(6);
    const r2 = runBody(early.k, function* (t) {
      expect(yield* early.k.fn.ioasid_install_capacity(t, 32)).toBe(0);
      const sid = yield* early.k.fn.ioasid_alloc_system_set(t, 10);
      expect(yield* early.k.fn.ioasid_alloc(t, sid, 40, 63, 0)).toBe(-ENOSPC);
      expect(yield* early.k.fn.ioasid_install_capacity(t, 16)).toBe(-EBUSY);
    });
    expect(ioasidCapacity(early.k, early.a)).toBe(32);
    // Only the second install (after allocations) is reported.
    expect(titles(r2)).toHaveLength(1);
  });

  it('20 bits: 1 048 576 IDs of storage, the last usable ID is 1 048 575', () => {
    const { k, a } = rig(20);
    const got: number[] = [];
    const r = runBody(k, function* (t) {
      expect(yield* k.fn.ioasid_install_capacity(t, 1 << 20)).toBe(0);
      const sid = yield* k.fn.ioasid_alloc_system_set(t, (1 << 20) - 1);
      for (let i = 0; i < 3; i++) got.push(yield* k.fn.ioasid_alloc(t, sid, (1 << 20) - 2, 1 << 21, 0));
      got.push(yield* k.fn.ioasid_alloc(t, sid, 0, 1 << 20, 0));
      yield* k.fn.ioasid_free_set(t, sid, true);
    });
    expect(titles(r)).toEqual([]);
    expect(got).toEqual([(1 << 20) - 2, (1 << 20) - 1, -ENOSPC, 1]);
    expect(ioasidCapacityAvail(k, a)).toBe((1 << 20) - 1);
  });

  it('the bitmap with its summary levels agrees with a reference model (lowest free ID in [min, max])', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ op: fc.constant<'alloc'>('alloc'), min: fc.nat(2100), span: fc.nat(2100) }), fc.record({ op: fc.constant<'free'>('free'), id: fc.nat(2047) })), {
          maxLength: 300,
        }),
        fc.boolean(),
        (ops, fill) => {
          const { k } = rig(11);
          const ref = new Set<number>();
          const want: number[] = [];
          const got: number[] = [];
          runBody(k, function* (t) {
            const sid = yield* k.fn.ioasid_alloc_system_set(t, 2047);
            // Optionally start from a full space, so that the summary levels are exercised.
            if (fill) {
              for (let id = 1; id < 2048; id++) {
                yield* k.fn.ioasid_alloc(t, sid, 1, 2047, 0);
                ref.add(id);
              }
            }
            for (const o of ops) {
              if (o.op === 'alloc') {
                const lo = Math.max(1, o.min);
                const hi = Math.min(2047, o.min + o.span);
                let expectId = -ENOSPC;
                for (let id = lo; id <= hi; id++) {
                  if (!ref.has(id)) {
                    expectId = id;
                    break;
                  }
                }
                if (expectId > 0) ref.add(expectId);
                want.push(expectId);
                got.push(yield* k.fn.ioasid_alloc(t, sid, o.min, o.min + o.span, 0));
              } else if (ref.has(o.id)) {
                ref.delete(o.id);
                want.push(0);
                got.push(yield* k.fn.ioasid_free(t, o.id));
              }
            }
            // Leave nothing behind for the leak check.
            yield* k.fn.ioasid_free_set(t, sid, true);
          });
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 60, seed: 3 },
    );
  });
});

describe('ioasid_set: quota, adjust, free', () => {
  it('allocations beyond the quota fail with -ENOSPC and never exceed it; adjust below the allocated count is -EINVAL', () => {
    const { k, a } = rig(8);
    const rets: string[] = [];
    let nr = -1;
    const r = runBody(k, function* (t) {
      const sid = yield* k.fn.ioasid_alloc_set(t, 42, 3);
      for (let i = 0; i < 5; i++) rets.push(ret(yield* k.fn.ioasid_alloc(t, sid, 1, 255, 0)));
      nr = ioasidSetInfo(k, a, sid)?.nr ?? -1;
      rets.push(ret(yield* k.fn.ioasid_adjust_set(t, sid, 2)));
      rets.push(ret(yield* k.fn.ioasid_adjust_set(t, sid, 5)));
      for (let i = 0; i < 3; i++) rets.push(ret(yield* k.fn.ioasid_alloc(t, sid, 1, 255, 0)));
      rets.push(ret(yield* k.fn.ioasid_adjust_set(t, sid, 300)));
      rets.push(ret(yield* k.fn.ioasid_alloc_set(t, 42, 1)));
      rets.push(ret(yield* k.fn.ioasid_alloc_set(t, 43, 251)));
      rets.push(ret(yield* k.fn.ioasid_alloc_set(t, 43, 250)));
      yield* k.fn.ioasid_free_set(t, sid, true);
    });
    expect(titles(r)).toEqual([]);
    expect(nr).toBe(3);
    expect(rets).toEqual(['1', '2', '3', '-ENOSPC', '-ENOSPC', '-EINVAL', '0', '4', '5', '-ENOSPC', '-ENOSPC', '-EEXIST', '-ENOSPC', '2']);
  });

  it('free_set without destroy keeps the set (its IDs go); with destroy its quota returns to the capacity', () => {
    const { k, a } = rig(6);
    const seen: (number | undefined)[] = [];
    runBody(k, function* (t) {
      const sid = yield* k.fn.ioasid_alloc_set(t, 9, 10);
      for (let i = 0; i < 4; i++) yield* k.fn.ioasid_alloc(t, sid, 1, 63, 0);
      seen.push(ioasidCapacityAvail(k, a));
      expect(yield* k.fn.ioasid_free_set(t, sid, false)).toBe(0);
      seen.push(ioasidSetInfo(k, a, sid)?.nr, ioasidAllocatedCount(k, a));
      expect(yield* k.fn.ioasid_alloc(t, sid, 1, 63, 0)).toBe(1);
      expect(yield* k.fn.ioasid_free_set(t, sid, true)).toBe(0);
      seen.push(ioasidSetInfo(k, a, sid)?.nr, ioasidCapacityAvail(k, a));
      expect(yield* k.fn.ioasid_free_set(t, sid, true)).toBe(-EINVAL);
      expect(yield* k.fn.ioasid_alloc(t, sid, 1, 63, 0)).toBe(-EINVAL);
    });
    expect(seen).toEqual([53, 0, 0, undefined, 63]);
  });

  it('ioasid_find_sid; a double free is reported (pr_err) and -ENOENT', () => {
    const { k } = rig(6);
    const rets: number[] = [];
    const r = runBody(k, function* (t) {
      const s1 = yield* k.fn.ioasid_alloc_set(t, 1, 4);
      const s2 = yield* k.fn.ioasid_alloc_set(t, 2, 4);
      const x = yield* k.fn.ioasid_alloc(t, s1, 1, 63, 0);
      const y = yield* k.fn.ioasid_alloc(t, s2, 1, 63, 0);
      rets.push(yield* k.fn.ioasid_find_sid(t, x), yield* k.fn.ioasid_find_sid(t, y), yield* k.fn.ioasid_find_sid(t, 33));
      rets.push(yield* k.fn.ioasid_free(t, x), yield* k.fn.ioasid_free(t, x));
      yield* k.fn.ioasid_free(t, y);
    });
    expect(rets).toEqual([1, 2, -ENOENT, 0, -ENOENT]);
    expect(titles(r)).toEqual(['ioasid: Trying to free unknown IOASID 1']);
  });
});

describe('ioasid_find: the RCU fast path', () => {
  it('returns the private data under RCU (and under the lock), -EACCES for another set, -ENOENT once freed', () => {
    const { k, a } = rig(6, { lock: 'mutex' });
    const rets: number[] = [];
    const r = runBody(k, function* (t) {
      const s1 = yield* k.fn.ioasid_alloc_set(t, 1, 4);
      const s2 = yield* k.fn.ioasid_alloc_set(t, 2, 4);
      const id = yield* k.fn.ioasid_alloc(t, s1, 1, 63, 0xbeef);
      rets.push(yield* k.fn.ioasid_find(t, s1, id), yield* k.fn.ioasid_find(t, 0, id), yield* ioasid_find_locked(k, t, a, s1, id));
      rets.push(yield* k.fn.ioasid_find(t, s2, id));
      expect(yield* k.fn.ioasid_set_data(t, id, 0xcafe)).toBe(0);
      rets.push(yield* k.fn.ioasid_find(t, s1, id));
      yield* k.fn.ioasid_free(t, id);
      rets.push(yield* k.fn.ioasid_find(t, s1, id));
    });
    expect(titles(r)).toEqual([]);
    expect(rets).toEqual([0xbeef, 0xbeef, 0xbeef, -EACCES, 0xcafe, -ENOENT]);
  });

  it('the lookup outside rcu_read_lock and outside the lock is `suspicious RCU usage`', () => {
    const { k, a } = rig(6);
    const r = runBody(k, function* (t) {
      const sid = yield* k.fn.ioasid_alloc_system_set(t, 4);
      const id = yield* k.fn.ioasid_alloc(t, sid, 1, 63, 5);
      expect(yield* __ioasid_find(k, t, a, sid, id)).toBe(5);
      yield* k.fn.ioasid_free(t, id);
    });
    expect(titles(r)).toEqual(['WARNING: suspicious RCU usage']);
    expect(r.findings[0]?.text).toContain('suspicious rcu_dereference_check() usage!');
  });

  it('guest PASIDs: attach, look up both ways within the set; a guest PASID names one ID of its set', () => {
    const { k } = rig(6);
    const rets: string[] = [];
    runBody(k, function* (t) {
      const s1 = yield* k.fn.ioasid_alloc_set(t, 1, 4);
      const s2 = yield* k.fn.ioasid_alloc_set(t, 2, 4);
      const x = yield* k.fn.ioasid_alloc(t, s1, 1, 63, 0);
      const y = yield* k.fn.ioasid_alloc(t, s1, 1, 63, 0);
      const z = yield* k.fn.ioasid_alloc(t, s2, 1, 63, 0);
      rets.push(ret(yield* k.fn.ioasid_attach_spid(t, s1, x, 7)));
      rets.push(ret(yield* k.fn.ioasid_attach_spid(t, s1, y, 7)));
      rets.push(ret(yield* k.fn.ioasid_attach_spid(t, s1, z, 8)));
      rets.push(ret(yield* k.fn.ioasid_attach_spid(t, s2, z, 7)));
      rets.push(ret(yield* k.fn.ioasid_find_by_spid(t, s1, 7)), ret(yield* k.fn.ioasid_find_by_spid(t, s2, 7)));
      rets.push(ret(yield* k.fn.ioasid_find_by_spid(t, s1, 9)));
      rets.push(ret(yield* k.fn.ioasid_get_spid(t, s1, x)), ret(yield* k.fn.ioasid_get_spid(t, s1, y)), ret(yield* k.fn.ioasid_get_spid(t, s1, z)));
      yield* k.fn.ioasid_free_set(t, s1, true);
      yield* k.fn.ioasid_free_set(t, s2, true);
    });
    expect(rets).toEqual(['0', '-EEXIST', '-EINVAL', '0', '1', '3', '-ENOENT', '7', '-ENOENT', '-EACCES']);
  });
});

describe('the notifier chain and the subscribers\' views', () => {
  it('every event reaches its subscribers; ioasid_free_set notifies each one and the views converge to the allocator', () => {
    const { k, s } = rig(6, {}, true);
    if (!s) throw new Error('no subscribers');
    const snaps: Record<string, number[]> = {};
    let diverged = -1;
    const r = runBody(k, function* (t) {
      yield* ioasid_subscribers_register(k, t, s);
      const sys = yield* k.fn.ioasid_alloc_system_set(t, 8);
      const vm = yield* k.fn.ioasid_alloc_set(t, 7, 8);
      const other = yield* k.fn.ioasid_alloc_set(t, 8, 8);
      const p = yield* k.fn.ioasid_alloc(t, sys, 1, 63, 0);
      const g1 = yield* k.fn.ioasid_alloc(t, vm, 1, 63, 0);
      const g2 = yield* k.fn.ioasid_alloc(t, vm, 1, 63, 0);
      const o = yield* k.fn.ioasid_alloc(t, other, 1, 63, 0);
      yield* k.fn.ioasid_attach_spid(t, vm, g1, 5);
      yield* k.fn.ioasid_notify(t, g1, IOASID_NOTIFY_BIND);
      yield* k.fn.ioasid_notify(t, p, IOASID_NOTIFY_BIND);
      const snap = (tag: string): void => {
        for (const name of ['vfio', 'kvm', 'iommu'] as const) snaps[`${tag} ${name}`] = [p, g1, g2, o].map((id) => subscriberView(k, s, name, id));
      };
      snap('bound');
      diverged = yield* ioasid_check_subscribers(k, t, s, 'in the test');
      yield* k.fn.ioasid_free_set(t, vm, true);
      snap('freed');
      yield* k.fn.ioasid_free(t, p);
      yield* k.fn.ioasid_free(t, o);
    });
    expect(titles(r)).toEqual([]);
    expect(diverged).toBe(0);
    // VFIO files the VMs' IDs by set and ignores the host's; KVM follows its own VM (token 7) with the guest PASID;
    // the IOMMU driver has every ID, bound or not.
    expect(snaps['bound vfio']).toEqual([0, 2, 2, 3]);
    expect(snaps['bound kvm']).toEqual([0, 1 | 2 | (6 << 2), 1, 0]);
    expect(snaps['bound iommu']).toEqual([3, 3, 1, 1]);
    expect(snaps['freed vfio']).toEqual([0, 0, 0, 3]);
    expect(snaps['freed kvm']).toEqual([0, 0, 0, 0]);
    expect(snaps['freed iommu']).toEqual([3, 0, 0, 1]);
    expect(divergence(k, s)).toEqual([]);
  });

  it('a subscriber that registers late has missed events: the divergence oracle names the IDs', () => {
    const { k, s } = rig(6, {}, true);
    if (!s) throw new Error('no subscribers');
    let diverged = -1;
    const r = runBody(k, function* (t) {
      const sys = yield* k.fn.ioasid_alloc_system_set(t, 8);
      const x = yield* k.fn.ioasid_alloc(t, sys, 1, 63, 0);
      yield* ioasid_subscribers_register(k, t, s);
      const y = yield* k.fn.ioasid_alloc(t, sys, 1, 63, 0);
      diverged = yield* ioasid_check_subscribers(k, t, s, 'after a late registration');
      yield* k.fn.ioasid_free(t, y);
      yield* k.fn.ioasid_free(t, x);
    });
    expect(diverged).toBe(1);
    expect(titles(r)).toEqual(["iommu-sim: notifier divergence: intel_svm_ioasid_notify's view differs from the allocator's on 1 IOASID: 1"]);
    expect(r.findings[0]?.text).toContain('IOASID 1: allocator: system set 1; iommu: not tracked');
  });
});

// ---- the workload ----

function once(params: Record<string, Wire>, seed: number, pct = false, keepGoing = false) {
  const built = buildIoasid(params);
  const s = pct ? new PctScheduler(seed, 3) : new RandomScheduler(seed);
  s.newExecution();
  const r = runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing });
  return { r, model: built.model };
}

const SMALL = { bits: 8 };

function callTrace(text: string): string[] {
  return (text.split('Call Trace:')[1] ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

describe('seed 003 end to end: process exit → unbind → MMU-notifier free_notifier → PASID free', () => {
  it('mutex: the PASID freed from the bond\'s free_notifier (an SRCU callback) sleeps in atomic context — BUG, the free_notifier on the chain', () => {
    for (const chain of ['blocking', 'atomic'] as const) {
      for (const seed of [1, 2, 3]) {
        const { r } = once({ ...SMALL, lock: 'mutex', chain, free: 'rcu' }, seed);
        const f = r.findings[0];
        expect(f?.title, `${chain} seed ${seed}`).toBe('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283');
        expect(f?.text).toContain('in_atomic(): 1');
        const trace = callTrace(f?.text ?? '');
        // UNBIND, then ioasid_free: both take ioasid_allocator_lock, the first one reported.
        expect(['ioasid_notify', 'ioasid_free']).toContain(trace[1]);
        expect(trace.slice(2, 6)).toEqual(['iommu_free_pasid', 'iommu_free_pasid_deferred', 'iommu_sva_free_notifier', 'mmu_notifier_free_rcu']);
      }
    }
  });

  it('spinlock + atomic chain: no finding, every PASID freed from the free_notifier, every view equal (random and PCT)', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const { r, model } = once({ ...SMALL, lock: 'spinlock', chain: 'atomic', free: 'rcu' }, seed, seed % 2 === 0);
      expect(titles(r), `seed ${seed}`).toEqual([]);
      expect(r.check.problems).toEqual([]);
      expect(r.blocked).toEqual([]);
      const c = r.check.counters;
      expect(c.sva_binds).toBe(2);
      // Every IOASID went back: the VMs' sets, and the processes' PASIDs freed after their unbinds.
      expect(ioasidAllocatedCount(model.k, model.a)).toBe(0);
      expect(c.unbinds).toBe(2);
      expect(c.view_checks).toBe(6);
      expect(c.divergent_views ?? 0).toBe(0);
    }
  });

  it('atomic chain with a subscriber that sleeps (VFIO takes a mutex): BUG under rcu_read_lock, with the callback on the chain', () => {
    const { r } = once({ ...SMALL, lock: 'spinlock', chain: 'atomic', sleeper: 'vfio' }, 1);
    const f = r.findings[0];
    expect(f?.title).toBe('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283');
    expect(f?.text).toContain('RCU nest depth: 1, expected: 0');
    expect(f?.text).toContain('(ioasid_allocator_lock)');
    const trace = callTrace(f?.text ?? '');
    expect(trace.indexOf('vfio_ioasid_notify')).toBeLessThan(trace.indexOf('atomic_notifier_call_chain'));
    // The same subscriber on a blocking chain under the mutex, free deferred to a workqueue: allowed to sleep.
    for (let seed = 1; seed <= 6; seed++) {
      expect(titles(once({ ...SMALL, lock: 'mutex', chain: 'blocking', free: 'workqueue', sleeper: 'vfio' }, seed).r)).toEqual([]);
    }
  });

  it('the IOMMU driver taking pasid_mutex in its callback (as intel-svm did): BUG on the atomic chain, from the bind path', () => {
    const { r } = once({ ...SMALL, lock: 'spinlock', chain: 'atomic', sleeper: 'iommu', vms: 0 }, 1);
    const f = r.findings[0];
    expect(f?.title).toBe('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283');
    expect(callTrace(f?.text ?? '')).toContain('intel_svm_ioasid_notify');
  });

  it('workqueue deferral: no finding, even with the mutex (blocking or atomic chain)', () => {
    for (const chain of ['blocking', 'atomic'] as const) {
      for (let seed = 1; seed <= 8; seed++) {
        const { r, model } = once({ ...SMALL, lock: 'mutex', chain, free: 'workqueue' }, seed, seed % 2 === 1);
        expect(titles(r), `${chain} seed ${seed}`).toEqual([]);
        expect(r.check.problems).toEqual([]);
        expect(r.check.counters.unbinds).toBe(2);
        expect(ioasidAllocatedCount(model.k, model.a)).toBe(0);
      }
    }
  });

  it('spinlock with a blocking chain is the inconsistent design: down_read under the spinlock', () => {
    const { r } = once({ ...SMALL, lock: 'spinlock', chain: 'blocking' }, 1);
    expect(r.findings[0]?.title).toBe('BUG: sleeping function called from invalid context at kernel/locking/rwsem.c:1525');
  });

  it('kept going: a might_sleep report for each unbind\'s free_notifier, and no inconsistent lock state — SRCU runs its callbacks in a kworker with bottom halves off, not in softirq', () => {
    const { r } = once({ ...SMALL, lock: 'mutex', chain: 'blocking', free: 'rcu' }, 1, false, true);
    const inNotifier = r.findings.filter((f) => f.kind === 'might_sleep' && callTrace(f.text).includes('iommu_sva_free_notifier'));
    expect(new Set(inNotifier.map((f) => f.text.match(/pid: (\d+)/)?.[1])).size).toBe(2);
    for (const f of inNotifier) expect(callTrace(f.text).slice(-3)).toEqual(['process_one_work', 'worker_thread', '</TASK>']);
    expect(titles(r)).not.toContain('WARNING: inconsistent lock state');
  });
});

describe('the one model: the bind path and the devices', () => {
  it('processes bind through iommu_sva_bind_device with PASIDs of the system set, and their devices DMA where the isolation oracle looks', () => {
    const built = buildIoasid({ ...SMALL, vms: 0, processes: 2, dmas: 3 });
    const m = built.model.model;
    if (!m) throw new Error('the scenario runs on the one model');
    const landed: { pasid: number; owner: number; expected: number }[] = [];
    const orig = m.oracle.dmaLanded.bind(m.oracle);
    vi.spyOn(m.oracle, 'dmaLanded').mockImplementation((step, dev, pasid, vpn, pfn, owner, expected, name, meant) => {
      landed.push({ pasid, owner, expected });
      orig(step, dev, pasid, vpn, pfn, owner, expected, name, meant);
    });
    const binds: number[] = [];
    m.k.fns.wrap('iommu_sva_bind_device', (o) =>
      function* (t, dev, mm, flags) {
        const r = yield* o(t, dev, mm, flags);
        binds.push(r.pasid);
        return r;
      },
    'test');
    const s = new RandomScheduler(3);
    s.newExecution();
    const r = runDeterministic({ workload: built.workload, seed: 3, scheduler: s });
    expect(titles(r)).toEqual([]);
    expect(r.check.problems).toEqual([]);
    expect(r.check.counters.dmas).toBe(6);
    // Each bind's PASID is an IOASID of the system set whose private data is the mm (the process's ioasid_find).
    expect(binds).toHaveLength(2);
    for (const p of binds) expect(p).toBeGreaterThan(0);
    expect(r.check.counters.finds).toBe(2);
    expect(r.check.counters.find_mismatch).toBe(0);
    // Every DMA went through the unit's translation into the frame of the mm bound at {device, PASID}.
    expect(landed).toHaveLength(6);
    for (const l of landed) expect(l.owner).toBe(l.expected);
    expect(new Set(landed.map((l) => l.owner)).size).toBe(2);
  });
});

describe('the workload\'s oracles', () => {
  it('quota: each VM gets its quota and -ENOSPC beyond, adjust below the allocated count is -EINVAL, free_set converges', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const { r, model } = once({ ...SMALL, vms: 3, processes: 1, quota: 3, pasids: 5, vcpus: 2 }, seed);
      expect(titles(r)).toEqual([]);
      expect(r.check.problems).toEqual([]);
      const c = r.check.counters;
      expect(c.vm_allocs).toBe(9);
      expect(c.alloc_enospc).toBe(6);
      expect(c.adjust_einval).toBe(3);
      expect(c.set_frees).toBe(3);
      expect(c.spid_ok).toBe(9);
      expect(ioasidAllocatedCount(model.k, model.a)).toBe(0);
      for (let id = 1; id < 256; id++) expect(ioasidInfo(model.k, model.a, id)).toBeUndefined();
    }
  });

  it('quota oracle: the quota checked outside the lock lets two vCPUs past it — reported in the allocating step; not without the bug', () => {
    const found: number[] = [];
    for (let seed = 1; seed <= 30; seed++) {
      const params = { ...SMALL, processes: 0, vms: 1, vcpus: 2, quota: 4, pasids: 6 };
      const bad = once({ ...params, bug: 'unlocked-quota' }, seed).r;
      if (bad.findings.length > 0) {
        found.push(seed);
        expect(bad.findings[0]?.title).toBe('iommu-sim: quota: ioasid_set 2 (token 100) holds 5 IOASIDs, above its quota of 4');
        expect(bad.findings[0]?.text).toContain('ioasid_alloc');
      }
      expect(titles(once(params, seed).r)).toEqual([]);
    }
    expect(found.length).toBeGreaterThan(0);
  });

  it('notifier divergence: VFIO stopping the chain on the host\'s set hides the SVA PASIDs from the IOMMU driver', () => {
    const { r } = once({ ...SMALL, bug: 'notify-stop' }, 1);
    expect(r.findings).toHaveLength(1);
    const f = r.findings[0];
    expect(f?.kind).toBe('notifier');
    expect(f?.title).toMatch(/^iommu-sim: notifier divergence: intel_svm_ioasid_notify's view differs from the allocator's on \d IOASIDs?: [\d, ]+$/);
    expect(f?.text).toMatch(/IOASID \d+: allocator: system set 1, bound; iommu: not tracked/);
    // The control: the same seed without the bug.
    expect(titles(once(SMALL, 1).r)).toEqual([]);
  });

  it('the default 20-bit space: the scenario runs clean and the kernel memory holds the allocator and three views', () => {
    const { r, model } = once({}, 1);
    expect(titles(r)).toEqual([]);
    expect(r.check.problems).toEqual([]);
    expect(model.a.storage).toBe(1 << 20);
    expect(ioasidCapacity(model.k, model.a)).toBe(1 << 20);
  });

  it('alloc-free fills the whole space and frees it (small space here)', () => {
    const { r } = once({ mode: 'alloc-free', bits: 10, subscribers: false }, 1);
    expect(titles(r)).toEqual([]);
    expect(r.check.problems).toEqual([]);
    expect(r.check.counters.bench_allocs).toBe(1023);
    expect(r.check.counters.bench_frees).toBe(1023);
  });

  it('find modes: every lookup returns one of the published versions of the private data', () => {
    for (const mode of ['find-rcu', 'find-lock'] as const) {
      const { r } = once({ mode, bits: 8, lock: 'mutex', iterations: 50 }, 2, true);
      expect(titles(r)).toEqual([]);
      expect(r.check.counters.finds).toBe(100);
      expect(r.check.counters.find_mismatch).toBe(0);
    }
  });

  it('bad parameters are refused before anything runs', () => {
    expect(() => buildIoasid({ lock: 'rwlock' })).toThrow(/lock must be one of spinlock, mutex/);
    expect(() => buildIoasid({ bits: 4, vms: 4, quota: 4 })).toThrow(/do not fit/);
    expect(() => buildIoasid({ nope: 1 })).toThrow(/unknown parameter 'nope'/);
  });
});

describe('both runtimes, one model', () => {
  it('registered as `ioasid`: deterministic runs repeat byte for byte', async () => {
    const params = { ...SMALL, lock: 'mutex', chain: 'blocking', free: 'workqueue' };
    const a = await run({ workload: { name: 'ioasid', params }, runtime: 'deterministic', seed: 5 });
    const b = await run({ workload: { name: 'ioasid', params }, runtime: 'deterministic', seed: 5 });
    expect(a.findings).toEqual([]);
    expect(a.traceHash).toBe(b.traceHash);
  });

  it('threaded, 2 workers: clean, and the recorded run replays to the same trace', async () => {
    for (const params of [{ ...SMALL }, { ...SMALL, lock: 'mutex', chain: 'blocking', free: 'workqueue' }]) {
      const r = await run({ workload: { name: 'ioasid', params }, runtime: 'threaded', seed: 1, workers: 2 });
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(r.check.problems).toEqual([]);
      expect(r.check.counters.unbinds).toBe(2);
      expect(replay(r.schedule).traceHash).toBe(r.traceHash);
    }
  });

  it('threaded: the mutex from the free_notifier is reported there too', async () => {
    const r = await run({ workload: { name: 'ioasid', params: { ...SMALL, lock: 'mutex', chain: 'blocking', free: 'rcu' } }, runtime: 'threaded', seed: 1, workers: 2 });
    expect(r.findings[0]?.title).toBe('BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283');
    expect(callTrace(r.findings[0]?.text ?? '')).toContain('mmu_notifier_free_rcu');
  });
});

describe('bench ioasid (quick)', () => {
  it('measures alloc/free of the whole space and find under RCU vs the mutex: the suite\'s JSON shape, positive finite rates', async () => {
    const s = await ioasidSuite({ quick: true });
    expect(s.suite).toBe('ioasid');
    expect(s.results.map((x) => x.name)).toEqual([
      'ioasid_alloc_full_space',
      'ioasid_free_full_space',
      'ioasid_find_rcu_2readers_1updater',
      'ioasid_find_mutex_2readers_1updater',
      'ioasid_find_spinlock_2readers_1updater',
    ]);
    for (const x of s.results) {
      expect(Object.keys(x).sort(), x.name).toEqual(['hz', 'meanNs', 'name', 'p99Ns', 'samples']);
      for (const v of [x.hz, x.meanNs, x.p99Ns]) {
        expect(Number.isFinite(v), x.name).toBe(true);
        expect(v, x.name).toBeGreaterThan(0);
      }
      expect(Number.isInteger(x.samples) && x.samples > 0, x.name).toBe(true);
    }
    for (const k of ['ioasid_find_rcu_vs_mutex', 'ioasid_free_vs_alloc', 'ioasid_find_spinlock_vs_mutex']) {
      expect(Number.isFinite(s.ratios[k]), k).toBe(true);
      expect(s.ratios[k], k).toBeGreaterThan(0);
    }
  });
});

describe('ioasid.c by name: the registry is the truth', () => {
  it('the functions that take ioasid_allocator_lock are defined by the lock policy, the notifier registration by the chain policy', () => {
    const { k } = rig(5, { lock: 'mutex', chain: 'blocking' });
    const origin = (name: string) => k.fns.list().find((f) => f.name === name)?.origins;
    for (const name of ['ioasid_alloc', 'ioasid_free', 'ioasid_alloc_set', 'ioasid_free_set', 'ioasid_adjust_set', 'ioasid_notify', 'ioasid_attach_spid']) {
      expect(origin(name)).toEqual([{ kind: 'policy', policy: 'ioasidLock', value: 'mutex', values: ['spinlock', 'mutex'] }]);
    }
    expect(origin('ioasid_register_notifier')).toEqual([{ kind: 'policy', policy: 'ioasidChain', value: 'blocking', values: ['atomic', 'blocking'] }]);
    expect(origin('ioasid_find')).toEqual([{ kind: 'model' }]);
    expect(k.fns.list().find((f) => f.name === 'ioasid_alloc')?.file).toBe('drivers/iommu/ioasid.c');
  });

  it('a kernel has one allocator: a second defineIoasid is refused', () => {
    const { k } = rig(5);
    expect(() => defineIoasid(k, { bits: 5 })).toThrow(/one IOASID allocator/);
  });

  it('a wrap of ioasid_alloc by name sees every allocation, with ioasid_alloc on the call chain', () => {
    const { k } = rig(5);
    const seen: { id: number; chain: string }[] = [];
    k.fns.wrap(
      'ioasid_alloc',
      (orig) =>
        function* (t: KTask, sid: number, min: number, max: number, priv: number): KGen<number> {
          const id = yield* orig(t, sid, min, max, priv);
          seen.push({ id, chain: t.chain().join(' ') });
          return id;
        },
      'test',
    );
    const r = runBody(k, function* (t) {
      const sid = yield* k.fn.ioasid_alloc_system_set(t, 4);
      for (let i = 0; i < 3; i++) yield* k.fn.ioasid_alloc(t, sid, 1, 31, i);
      yield* k.fn.ioasid_free_set(t, sid, true);
    });
    expect(titles(r)).toEqual([]);
    expect(seen.map((s) => s.id)).toEqual([1, 2, 3]);
    for (const s of seen) expect(s.chain).toContain('ioasid_alloc');
  });
});

describe('races/ioasid-mutex-allocator-lock.yaml: patch 7/10 of "IOASID extensions for guest SVA" as a patch', () => {
  const file = join(import.meta.dirname, '..', 'races', 'ioasid-mutex-allocator-lock.yaml');
  async function runRace(fixed: boolean, seed: number): Promise<RunResult> {
    const { workload } = buildIoasid(scenarioParams(await loadScenarioFile(file), fixed));
    const s = new RandomScheduler(seed);
    s.newExecution();
    return runDeterministic({ workload, seed, scheduler: s, keepGoing: true });
  }

  it('the mutex taken by the free_notifier (an SRCU callback) is might_sleep; without the patch (the spinlock) nothing', async () => {
    for (const seed of [1, 2, 3]) {
      const bug = await runRace(false, seed);
      expect(bug.findings.length).toBeGreaterThan(0);
      for (const f of bug.findings) {
        expect(f.kind).toBe('might_sleep');
        expect(f.text).toContain('kernel/locking/mutex.c');
        expect(f.text).toContain('mmu_notifier_free_rcu');
      }
      const fixed = await runRace(true, seed);
      expect(fixed.findings).toEqual([]);
    }
  });

  it("the `_locked` bodies take no lock: a patch's own ioasid_allocator_lock is the only one held, and the settle check sees it", () => {
    const { k, a } = rig(5);
    const patched = defineMutex(k, 'ioasid_allocator_lock');
    const held: string[][] = [];
    const free: boolean[] = [];
    const r = runBody(k, function* (t) {
      const sid = yield* k.fn.ioasid_alloc_system_set(t, 4);
      yield* mutex_lock(k, t, patched);
      free.push(ioasidLockFree(k, a));
      const id = yield* k.fn.ioasid_alloc_locked(t, sid, 1, 31, 7);
      held.push(t.held.map((h) => h.name));
      expect(yield* k.fn.ioasid_free_locked(t, id)).toBe(0);
      held.push(t.held.map((h) => h.name));
      yield* mutex_unlock(k, t, patched);
      free.push(ioasidLockFree(k, a));
      yield* k.fn.ioasid_free_set(t, sid, true);
    });
    expect(titles(r)).toEqual([]);
    expect(held).toEqual([['ioasid_allocator_lock'], ['ioasid_allocator_lock']]);
    expect(free).toEqual([false, true]);
  });
});
