// Issue #16's blocking domains and hot-unplug on the one model (the sva preset, booted by kernel_init): the
// blocked domain of each IOMMU driver — VT-d's blocking_domain_attach_dev, AMD's blocked_domain (clear_dte_entry),
// the SMMUv3's arm_smmu_blocked_domain (an abort STE, or S1DSS=TERMINATE while PASIDs use the CD table) — on the
// RID and on a {device, PASID}, seen from the unit: what its walk of memory reaches. Hot-unplug during traffic: the
// hp actor (pciehp) removing a device — surprise or orderly — while a process binds, DMAs and faults and the
// driver's kernel thread submits on the RID, on every flavour with mainline's code: no finding (every last page
// request answered once — the io-pgfault oracle —, no KASAN, no leak), the kernel thread stopped before the device
// is released. Deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import type { IommuGroup } from '../src/core/iommu.js';
import type { DeviceInfo } from '../src/core/types.js';
import { ABORT_STE } from '../src/hw/arm-smmu-v3/arm-smmu-v3.js';
import { CONFIG_ENABLED, CONFIG_RELEASED } from '../src/hw/pci/device.js';
import type { KTask } from '../src/kernel/context.js';
import { errname } from '../src/kernel/errno.js';
import type { KGen } from '../src/kernel/kernel.js';
import { alloc_page, free_page } from '../src/kernel/mm/physmem.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva, type SvaModel } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

const FLAVOURS = ['vtd', 'amd', 'smmuv3'] as const;

/** The sva preset's model with `body` as one more initial task after kernel_init, no process started. */
function withModel(params: Record<string, Wire>, body: (m: SvaModel, t: KTask) => KGen, seed = 1): RunResult {
  const { workload, model } = buildSva({ devices: 1, processes: 1, defaultDomain: 'per-device', ...params });
  const k = model.k;
  k.task('hotplug_test', 'process', function* (t) {
    yield k.point(t, 'wait for kernel_init', () => model.devices.every((d) => d.config >= CONFIG_ENABLED), () => undefined, { what: 'kernel_init' });
    yield* body(model, t);
  });
  const w = { ...workload, initial: [], initialTasks: [...(workload.initialTasks ?? []), { task: 'hotplug_test', args: null, name: 'hotplug_test' }] };
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: w, seed, scheduler: s, keepGoing: true });
}

/** The frames the unit's walk of memory reaches for {dev, pasid} now (the device table / stream table entry first). */
function reached(m: SvaModel, dev: DeviceInfo, pasid: number): readonly number[] {
  return m.hardware[dev.iommu]?.reachable(dev.index, pasid) ?? [];
}

/** A paging domain with one page mapped; its pfn. */
function* mappedDomain(m: SvaModel, t: KTask): KGen<{ dom: number; pfn: number }> {
  const a = yield* m.domains.alloc(t, 'paging', 0);
  if (a.err !== 0) throw new Error(a.why);
  const pfn = yield* alloc_page(m.k, t, m.pm, 1);
  expect(yield* m.domains.mapAny(t, a.dom, pfn, true)).toBeGreaterThanOrEqual(0);
  return { dom: a.dom, pfn };
}

function* dropDomain(m: SvaModel, t: KTask, d: { dom: number; pfn: number }): KGen {
  yield* m.domains.free(t, d.dom);
  yield* free_page(m.k, t, m.pm, d.pfn);
}

function groupOf(m: SvaModel, dev: DeviceInfo): IommuGroup {
  return m.sva.svaDomains.groups.groupOf(dev);
}

describe('blocking domains: the unit walks nothing for a blocked RID or {device, PASID}', () => {
  for (const iommus of FLAVOURS) {
    it(`${iommus}: claiming DMA ownership blocks the RID; the owner's domain translates again; a PASID detached through the blocked domain reaches nothing`, () => {
      const seen: string[] = [];
      const r = withModel({ iommus }, function* (m, t) {
        const dev = m.infos[0] as DeviceInfo;
        const groups = m.sva.svaDomains.groups;
        const g = groupOf(m, dev);
        yield m.k.point(t, 'wait for the default domain', () => groups.groupDomain(g) !== 0, () => undefined, { what: 'iommu_probe' });
        seen.push(`claim ${errname(yield* m.k.fn.iommu_group_claim_dma_owner(t, g, 7))}`, `rid ${reached(m, dev, 0).length}`, `blocks ${m.units[dev.iommu]?.blocks(dev.index, 0) ?? false}`);
        const v = yield* mappedDomain(m, t);
        seen.push(`attach ${errname(yield* m.k.fn.iommu_attach_group(t, v.dom, g))}`, `rid ${reached(m, dev, 0).join(',') === String(v.pfn)}`);
        yield* m.k.fn.iommu_detach_group(t, v.dom, g);
        yield* m.k.fn.iommu_group_release_dma_owner(t, g);
        const p = yield* mappedDomain(m, t);
        seen.push(`pasid ${errname(yield* m.k.fn.iommu_attach_device_pasid(t, p.dom, dev, 1))}`, `pasid1 ${reached(m, dev, 1).join(',') === String(p.pfn)}`);
        yield* m.k.fn.iommu_detach_device_pasid(t, p.dom, dev, 1);
        seen.push(`pasid1 ${reached(m, dev, 1).length}`);
        yield* dropDomain(m, t, v);
        yield* dropDomain(m, t, p);
      });
      expect(r.findings.map((f) => f.title)).toEqual([]);
      // VT-d has no device-level entry: its blocking domain clears RID2PASID (the unit finds no entry).
      expect(seen).toEqual(['claim 0', 'rid 0', `blocks ${iommus !== 'vtd'}`, 'attach 0', 'rid true', 'pasid 0', 'pasid1 true', 'pasid1 0']);
    });
  }

  it('smmuv3: a RID blocked while a PASID uses the CD table terminates SSID 0 only (S1DSS); the last PASID gone, the STE aborts', () => {
    const seen: string[] = [];
    const r = withModel({ iommus: 'smmuv3' }, function* (m, t) {
      const dev = m.infos[0] as DeviceInfo;
      const u = m.units[dev.iommu];
      const groups = m.sva.svaDomains.groups;
      const g = groupOf(m, dev);
      yield m.k.point(t, 'wait for the default domain', () => groups.groupDomain(g) !== 0, () => undefined, { what: 'iommu_probe' });
      const p = yield* mappedDomain(m, t);
      seen.push(`pasid ${errname(yield* m.k.fn.iommu_attach_device_pasid(t, p.dom, dev, 1))}`);
      seen.push(`claim ${errname(yield* m.k.fn.iommu_group_claim_dma_owner(t, g, 7))}`);
      seen.push(`rid ${reached(m, dev, 0).length}`, `pasid1 ${reached(m, dev, 1).join(',') === String(p.pfn)}`, `abort ${u?.deviceEntry(dev.index) === ABORT_STE}`);
      yield* m.k.fn.iommu_detach_device_pasid(t, p.dom, dev, 1);
      seen.push(`pasid1 ${reached(m, dev, 1).length}`, `abort ${u?.deviceEntry(dev.index) === ABORT_STE}`);
      yield* m.k.fn.iommu_group_release_dma_owner(t, g);
      seen.push(`abort ${u?.deviceEntry(dev.index) === ABORT_STE}`, `rid ${u?.blocks(dev.index, 0)}`);
      yield* dropDomain(m, t, p);
    });
    expect(r.findings.map((f) => f.title)).toEqual([]);
    expect(seen).toEqual(['pasid 0', 'claim 0', 'rid 0', 'pasid1 true', 'abort false', 'pasid1 0', 'abort true', 'abort false', 'rid false']);
  });
});

/**
 * A process that makes two pages fault (madvise), then DMAs to them without waiting while pciehp (hp/0) removes its
 * device; the driver's kernel thread runs `kthreads` descriptors on the RID meanwhile.
 */
function unplugDuringTraffic(iommus: string, seed: number, surprise: boolean, kthreads: number) {
  const steps = JSON.stringify({
    'proc/0': [
      { op: 'bind' },
      // madvise(DONTNEED) keeps the VMAs but zaps the pages (a munmap maps its range again populated): the DMA faults.
      { op: 'madvise', vpn: 2, n: 1 },
      { op: 'madvise', vpn: 3, n: 1 },
      { op: 'dma', n: 6, vpn: 2, write: true, wait: false },
      { op: 'dma', n: 2, vpn: 3, write: true, wait: true },
      { op: 'unbind' },
      { op: 'exit', wait: true },
    ],
    'hp/0': [
      { op: 'after', actor: 'proc/0', step: 3 },
      { op: 'unplug', dev: 0, surprise },
    ],
  });
  const { workload, model } = buildSva({ iommus, devices: 1, processes: 1, pages: 8, defaultDomain: 'per-device', kthreads, steps });
  // What was in flight when pciehp began the removal, and whether the driver's thread had exited when the IOMMU core released the device.
  const seen = { groups: 0, inflight: 0, threadExited: [] as boolean[] };
  const k = model.k;
  k.fns.wrap(
    'pci_stop_and_remove_bus_device',
    (orig) =>
      function* (t, dev) {
        seen.groups += model.units.reduce((n, u) => n + u.outstandingGroups().length, 0);
        seen.inflight += model.devices[0]?.inflightCount(1) ?? 0;
        return yield* orig(t, dev);
      },
    'test: in flight at removal',
  );
  k.fns.wrap(
    'iommu_release_device',
    (orig) =>
      function* (t, dev) {
        seen.threadExited.push(model.kthreads?.exited(dev) ?? false);
        return yield* orig(t, dev);
      },
    'test: thread stopped first',
  );
  const s = new RandomScheduler(seed);
  s.newExecution();
  const r = runDeterministic({ workload, seed, scheduler: s, keepGoing: true });
  return { r, model, seen };
}

describe('hot-unplug during traffic: the hp actor on every flavour, mainline code', () => {
  for (const iommus of FLAVOURS) {
    it(`${iommus}: surprise and orderly removals in the middle of DMA and page requests leave no finding; the driver's thread is stopped before the release`, () => {
      let groups = 0;
      let inflight = 0;
      let requests = 0;
      for (let seed = 1; seed <= 8; seed++) {
        const surprise = seed % 2 === 1;
        const { r, model, seen } = unplugDuringTraffic(iommus, seed, surprise, 40);
        expect(r.findings.map((f) => `${seed}: ${f.title}`)).toEqual([]);
        expect(r.check.problems).toEqual([]);
        expect(model.devices[0]?.config).toBe(CONFIG_RELEASED);
        // The removal stopped the thread before its 40 descriptors were done, and before the IOMMU core let the device go.
        expect(seen.threadExited).toEqual([true]);
        groups += seen.groups;
        inflight += seen.inflight;
        requests += r.check.counters.page_request_groups ?? 0;
      }
      // Not vacuous: some removals began with page requests outstanding at the IOMMU or DMA in flight at the device.
      expect(requests).toBeGreaterThan(0);
      expect(groups + inflight).toBeGreaterThan(0);
    });
  }

  it('deterministic: the same seed gives the same trace', () => {
    const a = unplugDuringTraffic('smmuv3', 5, true, 8);
    const b = unplugDuringTraffic('smmuv3', 5, true, 8);
    expect(a.r.traceHash).toBe(b.r.traceHash);
    expect(a.r.findings).toEqual([]);
  });

  it("the driver's thread stopped by an orderly removal completes what it submitted: no descriptor of it fails", () => {
    const { r, model } = unplugDuringTraffic('vtd', 2, false, 40);
    const jobs = model.kthreads?.jobs(model.infos[0] as DeviceInfo);
    expect(r.findings).toEqual([]);
    expect(jobs?.failed).toBe(0);
    expect(jobs?.done).toBeGreaterThan(0);
    expect(jobs?.done).toBeLessThan(40);
  });
});
