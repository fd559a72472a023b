// Issue #5 part 2, seed 002, on the one model (real IOMMU units and their vendor ops): groups and PASID-granular
// domains. The semantics of iommu_attach_device_pasid, iommu_replace_device_pasid, iommu_detach_device_pasid and
// iommu_get_domain_for_dev_pasid (results as errno names), under both lookup policies, with what the unit's
// PASID entry points at after each; the multi-device group policy; the seed's race — an RCU lookup against the
// unbind that frees the SVA domain — found by PCT with a replayable schedule when the users are not refcounted,
// and not found in 10 000 schedules when they are; the stress script in both runtimes; and the domains benchmark
// suite's shape. Negative controls: the unrefcounted race itself, and a driver that clears the PASID entry on a
// failed replace (the "old domain still working" DMA check catches it).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { domainsSuite } from '../bench/domains.bench.js';
import { buildDomains, type DomainsModel } from '../src/workloads/domains.js';
import type { DomainType } from '../src/core/iommu.js';
import type { DeviceInfo } from '../src/core/types.js';
import { XA_ZERO_ENTRY } from '../src/core/iommu.js';
import type { KTask } from '../src/kernel/context.js';
import { ENOMEM, errname } from '../src/kernel/errno.js';
import type { KGen } from '../src/kernel/kernel.js';
import { mm_init, ownerOf } from '../src/kernel/mm/mm.js';
import { alloc_page } from '../src/kernel/mm/physmem.js';
import { do_mmap } from '../src/kernel/mm/pagetable.js';
import { objState } from '../src/kernel/slab.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { replay, run } from '../src/runtime/run.js';
import { PctScheduler } from '../src/runtime/schedulers/pct.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import '../src/workloads/index.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');
const LOOKUPS = ['mutex', 'rcu'] as const;

/**
 * One task running `body` on a fresh model once kernel_init has configured the hardware and the processes' mms
 * are exec'd (the workload's own tasks are declared, not started); the IOMMU units and devices are actors.
 */
function withModel(params: Record<string, Wire>, body: (m: DomainsModel, t: KTask) => KGen): RunResult {
  const { model, workload } = buildDomains({ script: 'bench', ...params });
  model.k.task('test', 'process', function* (t) {
    yield* model.model.boot.wait(t);
    for (const mm of model.mms) {
      yield* mm_init(model.k, t, mm);
      yield* do_mmap(model.k, t, mm, 0, mm.pages, true);
    }
    yield* body(model, t);
  });
  const w = { ...workload, initialTasks: [model.model.boot.task, { task: 'test', args: null, name: 'test' }] };
  const s = new RandomScheduler(1);
  s.newExecution();
  return runDeterministic({ workload: w, seed: 1, scheduler: s, keepGoing: true });
}

/** What {dev, pasid}'s entry in its IOMMU unit points at now: the domain whose page table it is (0: none). */
function entry(m: DomainsModel, dev: DeviceInfo, pasid: number, ...doms: number[]): number {
  const mm = m.model.entryMm(dev, pasid);
  return mm === 0 ? 0 : (doms.find((d) => (m.domains.handle(d).mm?.id ?? -1) + 1 === mm) ?? -1);
}

/** A domain; a paging one with a page of its I/O page table's own mapped at IOVA 0 (what a DMA reaches). */
function* alloc(m: DomainsModel, t: KTask, iommu = 0, type: DomainType = 'paging'): KGen<number> {
  const a = yield* m.domains.alloc(t, type, iommu);
  if (a.err !== 0) throw new Error(`alloc: ${a.why}`);
  const table = m.domains.handle(a.dom).mm;
  if (table) yield* m.domains.map(t, a.dom, 0, yield* alloc_page(m.k, t, m.model.pm, ownerOf(table)), true);
  return a.dom;
}

function* free(m: DomainsModel, t: KTask, ...doms: number[]): KGen {
  for (const d of doms) yield* m.domains.free(t, d);
}

const titles = (r: RunResult): string[] => r.findings.map((f) => f.title);

describe('PASID attach, replace, detach: the kernel semantics', () => {
  for (const lookup of LOOKUPS) {
    describe(`lookup under ${lookup === 'rcu' ? 'RCU' : 'group->mutex'}`, () => {
      it('attaching the same domain to a PASID that already has it succeeds', () => {
        const got: string[] = [];
        let seen = -1;
        let a = 0;
        const r = withModel({ lookup }, function* (m, t) {
          const dev = m.devices[0];
          if (!dev) throw new Error('no device');
          a = yield* alloc(m, t);
          got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 1)));
          got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 1)));
          seen = yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 1);
          yield* m.groups.iommu_detach_device_pasid(t, a, dev, 1);
          yield* free(m, t, a);
        });
        expect(titles(r)).toEqual([]);
        expect(got).toEqual(['0', '0']);
        expect(seen).toBe(a);
      });

      it('attaching a different domain to an attached PASID fails with -EBUSY, and the first stays', () => {
        const got: string[] = [];
        const after: number[] = [];
        let a = 0;
        const r = withModel({ lookup }, function* (m, t) {
          const dev = m.devices[0];
          if (!dev) throw new Error('no device');
          a = yield* alloc(m, t);
          const b = yield* alloc(m, t);
          got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 1)));
          got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, b, dev, 1)));
          after.push(yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 1), entry(m, dev, 1, a, b));
          yield* m.groups.iommu_detach_device_pasid(t, a, dev, 1);
          yield* free(m, t, a, b);
        });
        expect(titles(r)).toEqual([]);
        expect(got).toEqual(['0', '-EBUSY']);
        expect(after).toEqual([a, a]);
      });

      it('replace on a PASID that is not attached fails with -EINVAL, and leaves no reservation behind', () => {
        const got: string[] = [];
        let entries: [number, number][] = [[-1, -1]];
        let seen = -1;
        const r = withModel({ lookup }, function* (m, t) {
          const dev = m.devices[0];
          if (!dev) throw new Error('no device');
          const a = yield* alloc(m, t);
          got.push(errname(yield* m.groups.iommu_replace_device_pasid(t, a, dev, 2)));
          entries = m.groups.pasidEntries(m.groups.groupOf(dev));
          seen = yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 2);
          yield* free(m, t, a);
        });
        expect(titles(r)).toEqual([]);
        expect(got).toEqual(['-EINVAL']);
        expect(entries).toEqual([]);
        expect(seen).toBe(0);
      });

      it('after detach the PASID has no domain: get_domain returns NULL and the device is blocked', () => {
        const before: number[] = [];
        const after: number[] = [];
        let a = 0;
        const r = withModel({ lookup }, function* (m, t) {
          const dev = m.devices[0];
          if (!dev) throw new Error('no device');
          a = yield* alloc(m, t);
          expect(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 3)).toBe(0);
          before.push(yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 3), entry(m, dev, 3, a));
          yield* m.groups.iommu_detach_device_pasid(t, a, dev, 3);
          after.push(yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 3), entry(m, dev, 3, a));
          yield* free(m, t, a);
        });
        expect(titles(r)).toEqual([]);
        expect(before).toEqual([a, a]);
        expect(after).toEqual([0, 0]);
      });

      it('a replace the driver refuses (an incompatible domain, an injected -ENOMEM) leaves the old domain attached and working', () => {
        const got: string[] = [];
        const seen: number[] = [];
        const ids: Record<string, number> = {};
        const r = withModel({ lookup, iommus: 'vtd,vtd' }, function* (m, t) {
          const dev = m.devices[0];
          if (!dev) throw new Error('no device');
          const a = yield* alloc(m, t, 0);
          const other = yield* alloc(m, t, 1); // another IOMMU instance's domain: the driver refuses it
          const c = yield* alloc(m, t, 0);
          Object.assign(ids, { a, c });
          got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 1)));
          got.push(errname(yield* m.groups.iommu_replace_device_pasid(t, other, dev, 1)));
          seen.push(yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 1), entry(m, dev, 1, a, other, c));
          yield* m.faults.arm(t, dev, 1, -ENOMEM);
          got.push(errname(yield* m.groups.iommu_replace_device_pasid(t, c, dev, 1)));
          seen.push(yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 1), entry(m, dev, 1, a, other, c));
          // The same replace, now that the driver takes it; then the same domain again, a no-op.
          got.push(errname(yield* m.groups.iommu_replace_device_pasid(t, c, dev, 1)));
          got.push(errname(yield* m.groups.iommu_replace_device_pasid(t, c, dev, 1)));
          seen.push(yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 1), entry(m, dev, 1, a, other, c));
          yield* m.groups.iommu_detach_device_pasid(t, c, dev, 1);
          yield* free(m, t, a, other, c);
        });
        expect(titles(r)).toEqual([]);
        expect(got).toEqual(['0', '-EINVAL', '-ENOMEM', '0', '0']);
        expect(seen).toEqual([ids.a, ids.a, ids.a, ids.a, ids.c, ids.c]);
      });

      it('a failure on the second device of a group reverts the first to the old domain', () => {
        let got = '';
        const seen: number[] = [];
        let a = 0;
        const r = withModel({ lookup, groupSize: 2, multiDevicePasid: 'allowed' }, function* (m, t) {
          const [d0, d1] = m.devices;
          if (!d0 || !d1) throw new Error('no devices');
          a = yield* alloc(m, t);
          const b = yield* alloc(m, t);
          expect(yield* m.groups.iommu_attach_device_pasid(t, a, d0, 1)).toBe(0);
          yield* m.faults.arm(t, d1, 1, -ENOMEM);
          got = errname(yield* m.groups.iommu_replace_device_pasid(t, b, d0, 1));
          seen.push(entry(m, d0, 1, a, b), entry(m, d1, 1, a, b), yield* m.groups.iommu_get_domain_for_dev_pasid(t, d1, 1));
          // Device 1 reaching a domain attached for device 0 only is the hazard of the policy: the oracle says so.
          expect(yield* m.model.dmaWrite(t, d1, 1, 0, 0)).toBe(true);
          yield* m.groups.iommu_detach_device_pasid(t, a, d1, 1);
          yield* free(m, t, a, b);
        });
        expect(titles(r)).toEqual([expect.stringMatching(/^iommu-sim: isolation violation: DMA from 0000:00:02\.0 PASID 1 landed in mm\/\d+ \(an I\/O page table's memory/)]);
        expect(got).toBe('-ENOMEM');
        expect(seen).toEqual([a, a, a]);
      });

      it('get_domain for a type the domain is not: ERR_PTR(-EBUSY); PASID 0 (IOMMU_NO_PASID) and out-of-range PASIDs: -EINVAL', () => {
        const got: string[] = [];
        const r = withModel({ lookup, pasidBits: 3 }, function* (m, t) {
          const dev = m.devices[0];
          if (!dev) throw new Error('no device');
          const a = yield* alloc(m, t);
          got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 0)));
          got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 8)));
          expect(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 7)).toBe(0);
          got.push(errname(yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 7, 'sva')));
          got.push(String((yield* m.groups.iommu_get_domain_for_dev_pasid(t, dev, 7, 'paging')) === a));
          yield* m.groups.iommu_detach_device_pasid(t, a, dev, 7);
          yield* free(m, t, a);
        });
        expect(titles(r)).toEqual([]);
        expect(got).toEqual(['-EINVAL', '-EINVAL', '-EBUSY', 'true']);
      });
    });
  }

  it('a failing attach releases its reservation: the slot is empty again, not XA_ZERO_ENTRY', () => {
    let got = '';
    let entries: [number, number][] = [[-1, -1]];
    const r = withModel({ iommus: 'vtd,smmuv3' }, function* (m, t) {
      const dev = m.devices[0];
      if (!dev) throw new Error('no device');
      const other = yield* alloc(m, t, 1);
      got = errname(yield* m.groups.iommu_attach_device_pasid(t, other, dev, 1));
      entries = m.groups.pasidEntries(m.groups.groupOf(dev));
      yield* free(m, t, other);
    });
    expect(titles(r)).toEqual([]);
    expect(got).toBe('-EINVAL');
    expect(entries).toEqual([]);
    expect(XA_ZERO_ENTRY).toBe(1);
  });
});

describe('PASID attach on a group with more than one device', () => {
  it('refused (-EINVAL) by default; once the other device has left the group, the singleton attaches', () => {
    const got: string[] = [];
    const r = withModel({ groupSize: 2 }, function* (m, t) {
      const [d0, d1] = m.devices;
      if (!d0 || !d1) throw new Error('no devices');
      const a = yield* alloc(m, t);
      got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, a, d0, 1)));
      got.push(String(m.groups.pasidEntries(m.groups.groupOf(d0)).length));
      yield* m.groups.iommu_group_remove_device(t, d1);
      got.push(errname(yield* m.groups.iommu_attach_device_pasid(t, a, d0, 1)));
      // Back in the group, d1 is not retro-fitted: this model, like the kernel, only checks at attach time.
      yield* m.groups.iommu_detach_device_pasid(t, a, d0, 1);
      yield* m.groups.iommu_group_add_device(t, d1);
      yield* free(m, t, a);
    });
    expect(titles(r)).toEqual([]);
    expect(got).toEqual(['-EINVAL', '0', '0']);
  });

  it('with the policy multiDevicePasid: allowed, every device of the group uses the domain', () => {
    const seen: number[] = [];
    let a = 0;
    let ret = '';
    const r = withModel({ groupSize: 2, multiDevicePasid: 'allowed' }, function* (m, t) {
      const [d0, d1] = m.devices;
      if (!d0 || !d1) throw new Error('no devices');
      a = yield* alloc(m, t);
      ret = errname(yield* m.groups.iommu_attach_device_pasid(t, a, d0, 1));
      // The lookup goes by group: through either device; the driver wrote both devices' entries.
      seen.push(entry(m, d0, 1, a), entry(m, d1, 1, a), yield* m.groups.iommu_get_domain_for_dev_pasid(t, d1, 1));
      const dmas = [yield* m.model.dmaWrite(t, d0, 1, 0, 0), yield* m.model.dmaWrite(t, d1, 1, 0, 1)];
      yield* m.groups.iommu_detach_device_pasid(t, a, d1, 1);
      seen.push(entry(m, d0, 1, a), entry(m, d1, 1, a));
      dmas.push(yield* m.model.dmaWrite(t, d0, 1, 0, 0), yield* m.model.dmaWrite(t, d1, 1, 0, 1));
      expect(dmas).toEqual([true, true, false, false]);
      yield* free(m, t, a);
    });
    // ... which is the hazard: device 1 reaches what was attached for device 0 alone (the isolation oracle).
    expect(titles(r)).toEqual([expect.stringMatching(/^iommu-sim: isolation violation: DMA from 0000:00:02\.0 PASID 1 landed in mm\/\d+ \(an I\/O page table's memory/)]);
    expect(ret).toBe('0');
    expect(seen).toEqual([a, a, a, 0, 0]);
  });
});

describe('iommu_attach_device and iommu_detach_device', () => {
  it('singleton only (-EINVAL), -EBUSY over another domain, detach back to the default domain; a wrong detach WARNs', () => {
    const got: string[] = [];
    const doms: Record<string, number> = {};
    const seen: number[] = [];
    const r = withModel({ groups: 2, groupSize: 1 }, function* (m, t) {
      const [d0] = m.devices;
      if (!d0) throw new Error('no device');
      const g = m.groups.groupOf(d0);
      const dflt = yield* alloc(m, t);
      const a = yield* alloc(m, t);
      const b = yield* alloc(m, t);
      Object.assign(doms, { dflt, a });
      got.push(errname(yield* m.groups.iommu_setup_default_domain(t, g, dflt)));
      got.push(errname(yield* m.groups.iommu_attach_device(t, a, d0)));
      got.push(errname(yield* m.groups.iommu_attach_device(t, b, d0)));
      seen.push(yield* m.groups.iommu_get_domain_for_dev(t, d0), entry(m, d0, 0, dflt, a, b));
      yield* m.groups.iommu_detach_device(t, b, d0); // not attached: WARN, nothing changes
      yield* m.groups.iommu_detach_device(t, a, d0);
      seen.push(yield* m.groups.iommu_get_domain_for_dev(t, d0), entry(m, d0, 0, dflt, a, b));
      yield* free(m, t, dflt, a, b);
    });
    expect(got).toEqual(['0', '0', '-EBUSY']);
    expect(seen).toEqual([doms.a, doms.a, doms.dflt, doms.dflt]);
    expect(titles(r)).toHaveLength(1);
    expect(titles(r)[0]).toMatch(/^WARNING: CPU: 0 PID: \d+ at drivers\/iommu\/iommu\.c:\d+ iommu_detach_device$/);
    expect(r.findings[0]?.text).toContain('detaching a domain that is not the group');
    expect(r.findings[0]?.kind, 'a WARN_ON, not an oops').toBe('iommu');
  });

  it('a group of two: iommu_attach_device refuses (-EINVAL); iommu_attach_group attaches both', () => {
    const got: string[] = [];
    const seen: number[] = [];
    const r = withModel({ groupSize: 2 }, function* (m, t) {
      const [d0, d1] = m.devices;
      if (!d0 || !d1) throw new Error('no devices');
      const a = yield* alloc(m, t);
      got.push(errname(yield* m.groups.iommu_attach_device(t, a, d0)));
      got.push(errname(yield* m.groups.iommu_attach_group(t, a, m.groups.groupOf(d0))));
      seen.push(entry(m, d0, 0, a) === a ? 1 : 0, entry(m, d1, 0, a) === a ? 1 : 0);
      yield* m.groups.iommu_detach_group(t, a, m.groups.groupOf(d0));
      seen.push(entry(m, d0, 0, a), entry(m, d1, 0, a));
      yield* free(m, t, a);
    });
    expect(titles(r)).toEqual([]);
    expect(got).toEqual(['-EINVAL', '0']);
    expect(seen).toEqual([1, 1, 0, 0]);
  });
});

describe('SVA domains shared by the binds of one mm', () => {
  for (const users of ['refcounted', 'unrefcounted'] as const) {
    it(`${users}: two devices, one domain with 2 users; a second bind of the same {device, mm} shares the bond; the last unbind frees it`, () => {
      const seen: number[] = [];
      let dom = 0;
      let model: DomainsModel | undefined;
      const r = withModel({ users, groups: 2, processes: 2 }, function* (m, t) {
        model = m;
        const [d0, d1] = m.devices;
        const [mm] = m.mms;
        if (!d0 || !d1 || !mm) throw new Error('no devices or mms');
        const b0 = yield* m.k.fn.iommu_sva_bind_device(t, d0, mm, 0);
        const b1 = yield* m.k.fn.iommu_sva_bind_device(t, d1, mm, 0);
        const again = yield* m.k.fn.iommu_sva_bind_device(t, d0, mm, 0);
        dom = m.svaDomains.domainOf(mm, 0);
        // One PASID for the mm on both devices (one IOMMU), one bond shared by the second bind of {d0, mm}.
        seen.push(b1.pasid === b0.pasid ? 1 : 0, again.ret === b0.ret ? 1 : 0, m.svaDomains.usersOf(dom), m.model.entryMm(d1, b0.pasid) === mm.id + 1 ? 1 : 0);
        // A page request resolves to the mm through the domain.
        seen.push(yield* m.k.fn.iopf_handler(t, d1, b0.pasid));
        yield* m.k.fn.iommu_sva_unbind_device(t, again.ret);
        yield* m.k.fn.iommu_sva_unbind_device(t, b0.ret);
        seen.push(m.svaDomains.usersOf(dom), yield* m.k.fn.iopf_handler(t, d0, b0.pasid), m.model.entryMm(d0, b0.pasid));
        yield* m.k.fn.iommu_sva_unbind_device(t, b1.ret);
        seen.push(m.svaDomains.domainOf(mm, 0));
      });
      expect(titles(r)).toEqual([]);
      expect(seen).toEqual([1, 1, 2, 1, 1, 1, 0, 0, 0]);
      // Freed (refcounted: by its RCU callback, after a grace period); KASAN keeps it in quarantine.
      expect(model && objState(model.k, dom)).toBe('quarantined');
    });
  }
});

describe("seed 002's race: an RCU lookup against the unbind that frees the SVA domain", () => {
  const race = { script: 'race', lookup: 'rcu' };

  it('unrefcounted users: PCT finds the use-after-free (KASAN, both call chains) and its schedule replays it', async () => {
    const out = await run({
      workload: { name: 'domains', params: { ...race, users: 'unrefcounted' } },
      runtime: 'deterministic',
      strategy: 'pct',
      seed: 1,
      runs: 2_000,
    });
    const uaf = out.findings.find((f) => f.kind === 'kasan');
    expect(uaf, `${out.executions} executions: ${titles(out).join('; ')}`).toBeDefined();
    const text = uaf?.text ?? '';
    expect(uaf?.title).toMatch(
      /^BUG: KASAN: slab-use-after-free in (iommu_get_domain_for_dev_pasid|iommu_sva_domain_get_user|iommu_sva_handle_iopf|iommu_sva_domain_put_user|iommu_domain_free)$/,
    );
    // The two call chains, allocated by the bind, and the page-fault handler on one side of the race: either its
    // lookup reads the domain the last unbind's MMU notifier freed after SRCU (mainline's domain notifier), or its
    // unrefcounted put frees the domain and the notifier's free callback then reads it — which one a schedule shows
    // depends on who drops the domain last.
    const allocated = text.slice(text.indexOf('Allocated by task'), text.indexOf('Freed by task'));
    const access = text.slice(0, text.indexOf('Allocated by task'));
    const freed = text.slice(text.indexOf('Freed by task'), text.indexOf('The buggy address'));
    expect(allocated).toContain('iommu_sva_bind_device');
    expect(allocated).toContain('iommu_domain_alloc');
    expect(freed).toContain('iommu_domain_free');
    expect(freed).toContain('kfree');
    const byHandler = /by task iopf0\/\d+/.test(access) && access.includes(' iopf_handler\n');
    if (byHandler) expect(freed).toContain('mmu_notifier_free_rcu');
    else {
      expect(access).toContain(' mmu_notifier_free_rcu\n');
      expect(freed).toContain(' iopf_handler\n');
    }
    const again = replay(out.schedule);
    expect(again.matches).toBe(true);
    expect(titles(again)).toContain(uaf?.title);
  });

  it('refcounted users (refcount_inc_not_zero under RCU, kfree_rcu, refcount_dec_and_test): no finding in 10 000 PCT schedules', async () => {
    const out = await run({
      workload: { name: 'domains', params: { ...race, users: 'refcounted' } },
      runtime: 'deterministic',
      strategy: 'pct',
      seed: 1,
      runs: 10_000,
    });
    expect(out.executions).toBe(10_000);
    expect(titles(out)).toEqual([]);
    expect(out.check.ok).toBe(true);
    expect(out.blocked).toEqual([]);
  }, 120_000);

  it('the lookup under group->mutex is safe even with unrefcounted users (the RCU conversion is what needs them counted)', async () => {
    const out = await run({
      workload: { name: 'domains', params: { ...race, lookup: 'mutex', users: 'unrefcounted' } },
      runtime: 'deterministic',
      strategy: 'pct',
      seed: 1,
      runs: 2_000,
    });
    expect(out.executions).toBe(2_000);
    expect(titles(out)).toEqual([]);
  }, 60_000);

  it('refcounted: a fault handled while bound reaches the mm; a lookup that lost the race answers INVALID (both happen)', () => {
    const handled = new Set<string>();
    for (let seed = 1; seed <= 60; seed++) {
      const { workload } = buildDomains({ ...race, users: 'refcounted' });
      // PCT: a random schedule rarely lets the whole unbind run between the handler's wake-up and its lookup.
      const s = new PctScheduler(seed, 3);
      s.newExecution();
      const r = runDeterministic({ workload, seed, scheduler: s });
      expect(titles(r)).toEqual([]);
      expect(r.check.problems).toEqual([]);
      const c = r.check.counters;
      expect((c.faults_handled ?? 0) + (c.faults_invalid ?? 0)).toBe(1);
      handled.add(c.faults_handled === 1 ? 'handled' : 'invalid');
    }
    expect([...handled].sort()).toEqual(['handled', 'invalid']);
  });
});

describe('the stress script', () => {
  const stress = { script: 'stress', processes: 4, faults: 3, rounds: 3, lookups: 8, groups: 2 };
  const combos: Record<string, Wire>[] = [
    { lookup: 'rcu', users: 'refcounted' },
    { lookup: 'mutex', users: 'refcounted' },
    { lookup: 'mutex', users: 'unrefcounted' },
    { lookup: 'rcu', groupSize: 2, multiDevicePasid: 'allowed', iommus: 'vtd,smmuv3' },
    { lookup: 'rcu', iommus: 'amd' },
    { lookup: 'mutex', groupSize: 2 },
  ];
  for (const c of combos) {
    it(`${JSON.stringify(c)}: no finding and every attach/replace result the kernel's, over 30 random schedules`, () => {
      for (let seed = 1; seed <= 30; seed++) {
        const { workload } = buildDomains({ ...stress, ...c });
        const s = new RandomScheduler(seed);
        s.newExecution();
        const r = runDeterministic({ workload, seed, scheduler: s });
        expect(titles(r)).toEqual([]);
        expect(r.check.problems).toEqual([]);
        const k = r.check.counters;
        expect(k.vfio_ops).toBeGreaterThan(0);
        expect(k.binds).toBe(k.unbinds);
        if (c.groupSize === 2 && c.multiDevicePasid !== 'allowed') expect(k.bind_failures).toBe(12);
        else expect(k.binds).toBe(12);
      }
    });
  }

  it('negative control: a driver that clears the PASID entry when it refuses a replace is caught (the old domain no longer works)', () => {
    const { workload } = buildDomains({ ...stress, bug: 'clear-on-failure' });
    const s = new RandomScheduler(1);
    s.newExecution();
    const r = runDeterministic({ workload, seed: 1, scheduler: s });
    expect(r.check.ok).toBe(false);
    expect(r.check.problems.join('\n')).toMatch(/attach\/replace\/detach or DMA results were not the kernel's/);
    // … and the same run without the bug is clean.
    const clean = runDeterministic({ workload: buildDomains(stress).workload, seed: 1, scheduler: (() => { const c = new RandomScheduler(1); c.newExecution(); return c; })() });
    expect(clean.check.problems).toEqual([]);
  });

  it('threaded, 2 workers: no finding, the counters add up, and the recording replays exactly', async () => {
    const r = await run({
      workload: { name: 'domains', params: { ...stress, processes: 6, faults: 6, rounds: 10, lookups: 100, groups: 3 } },
      runtime: 'threaded',
      seed: 2,
      workers: 2,
    });
    expect(titles(r)).toEqual([]);
    expect(r.check.problems).toEqual([]);
    expect(r.check.counters.binds).toBe(60);
    expect(r.check.counters.unbinds).toBe(60);
    expect((r.check.counters.faults_handled ?? 0) + (r.check.counters.faults_invalid ?? 0)).toBe(600);
    expect(replay(r.schedule).matches).toBe(true);
    // The processes and the VFIO user are spawned by one task, in one step: dealt round-robin (runtime/spawn.ts),
    // each worker gets at least 3 of the 7, whatever the interleaving. Spawned on their spawner's worker, one
    // worker would perform them all and the other only an initial task's points (under 2 % of them).
    const points = r.taskPoints ?? [];
    const all = points.reduce((a, b) => a + b, 0);
    expect(points.length).toBe(2);
    for (const p of points) expect(p / all).toBeGreaterThan(0.15);
    expect(r.spawns?.sent).toBeGreaterThanOrEqual(3);
    expect(r.spawns?.taken).toBe(r.spawns?.sent);
    expect(r.spawns?.queued).toBe(0);
    // The model's messages alone in the accounting: every delivery and timer is a step, the rest are task points.
    expect(r.accounting.delivered + r.timersFired + all).toBe(r.steps);
  }, 60_000);

  it('threaded, cut midway: spawns dealt to the other worker are taken or left queued, apart from the exact accounting', async () => {
    const cut = new AbortController();
    const r = await run({
      workload: { name: 'domains', params: { ...stress, processes: 6, faults: 6, rounds: 10, lookups: 100, groups: 3 } },
      runtime: 'threaded',
      seed: 3,
      workers: 2,
      // Once the processes run (their spawns are dealt), stop: their RCU callbacks are being dealt all along.
      onProgress: (_d, _s, steps) => {
        if ((steps ?? 0) >= 3000) cut.abort();
      },
      cut: cut.signal,
    });
    expect(r.cut).toBeDefined();
    const s = r.spawns ?? { sent: -1, taken: 0, queued: 0 };
    expect(s.sent).toBeGreaterThanOrEqual(3);
    expect(s.sent).toBe(s.taken + s.queued);
    // Counted once every worker had exited (nothing more is published then): exact in a stopped run too.
    expect(r.accounting.ok).toBe(true);
    expect(replay(r.schedule).mismatch).toBeUndefined();
  }, 60_000);
});

describe('iommu-sim bench domains', () => {
  interface Row {
    name: string;
    hz: number;
    meanNs: number;
    p99Ns: number;
    samples: number;
  }

  it('--quick --json: both lookups measured with 2 threads, positive finite rates, the ratio present', () => {
    const r = spawnSync(process.execPath, [BIN, 'bench', 'domains', '--quick', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { suites: string[]; node: string; results: Row[]; ratios: Record<string, number> };
    expect(j.suites).toEqual(['domains']);
    expect(typeof j.node).toBe('string');
    const names = j.results.map((x) => x.name);
    expect(names).toContain('get_domain_for_dev_pasid_rcu_2threads');
    expect(names).toContain('get_domain_for_dev_pasid_mutex_2threads');
    expect(new Set(names).size).toBe(names.length);
    for (const x of j.results) {
      expect(Object.keys(x).sort(), x.name).toEqual(['hz', 'meanNs', 'name', 'p99Ns', 'samples']);
      for (const v of [x.hz, x.meanNs, x.p99Ns]) {
        expect(Number.isFinite(v), x.name).toBe(true);
        expect(v, x.name).toBeGreaterThan(0);
      }
      expect(Number.isInteger(x.samples) && x.samples > 0, x.name).toBe(true);
    }
    expect(Number.isFinite(j.ratios.get_domain_rcu_vs_mutex)).toBe(true);
    expect(j.ratios.get_domain_rcu_vs_mutex).toBeGreaterThan(0);
  });

  it('is listed in the help of the bench command', () => {
    const r = spawnSync(process.execPath, [BIN, 'bench', '--help'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/runtime,\s+kernel,\s+sva,\s+domains/);
  });

  it('takes more cases by appending a builder: its results and ratios join the suite', async () => {
    const extra = async () => ({
      results: [
        { name: 'extra_a', hz: 2, meanNs: 5e8, p99Ns: 5e8, samples: 1 },
        { name: 'extra_b', hz: 1, meanNs: 1e9, p99Ns: 1e9, samples: 1 },
      ],
      ratios: { extra_a_vs_b: 2 },
    });
    const s = await domainsSuite({ quick: true }, [extra]);
    expect(s.suite).toBe('domains');
    expect(s.results.map((x) => x.name)).toEqual(['extra_a', 'extra_b']);
    expect(s.ratios).toEqual({ extra_a_vs_b: 2 });
  });
});
