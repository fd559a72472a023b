// Issue #16 deliverable 1 on the one model (the sva preset's VT-d unit and PCI device, booted by kernel_init):
// PASID attach / replace / detach with the kernel's semantics and attach handles in group->pasid_array; device
// lifetime — pciehp's removal of a surprise-unplugged device in the kernel's order, struct pci_dev references,
// kmemleak for a reference never put, KASAN for a use after the last put. Deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import { type DomainType, IOMMU_PASID_ARRAY_HANDLE, type IommuGroup, pasidArrayTag } from '../src/core/iommu.js';
import type { DeviceInfo } from '../src/core/types.js';
import { CONFIG_ENABLED, CONFIG_RELEASED } from '../src/hw/pci/device.js';
import { PCI_DEV, pciAddress } from '../src/hw/pci/pci.js';
import type { KTask } from '../src/kernel/context.js';
import { EBUSY, ENOMEM, errname } from '../src/kernel/errno.js';
import type { KGen } from '../src/kernel/kernel.js';
import { kfree, kzalloc, objLoad, objState } from '../src/kernel/slab.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva, type SvaModel } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

/**
 * The sva preset's model with `body` as one more initial task, run once: kernel_init boots the unit and the
 * device first (the body waits for it); no process is started.
 */
function withModel(params: Record<string, Wire>, body: (m: SvaModel, t: KTask) => KGen, opts: { processes?: boolean; seed?: number } = {}): { r: RunResult; m: SvaModel } {
  const { workload, model } = buildSva({ iommus: 'vtd', devices: 1, processes: 1, defaultDomain: 'per-device', ...params });
  const k = model.k;
  k.task('devlife_test', 'process', function* (t) {
    yield k.point(t, 'wait for kernel_init', () => model.devices.every((d) => d.config >= CONFIG_ENABLED), () => undefined, { what: 'kernel_init' });
    yield* body(model, t);
  });
  const w = { ...workload, initial: opts.processes ? workload.initial : [], initialTasks: [...(workload.initialTasks ?? []), { task: 'devlife_test', args: null, name: 'devlife_test' }] };
  const seed = opts.seed ?? 1;
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { r: runDeterministic({ workload: w, seed, scheduler: s, keepGoing: true }), m: model };
}

const titles = (r: RunResult): string[] => r.findings.map((f) => f.title);

function* paging(m: SvaModel, t: KTask): KGen<number> {
  const a = yield* m.domains.alloc(t, 'paging', 0);
  if (a.err !== 0) throw new Error(a.why);
  return a.dom;
}

/** What the unit walks for {dev, PASID}: the first-level table's mm id + 1 (VT-d's flptr), 0 when not present. */
function walked(m: SvaModel, dev: DeviceInfo, pasid: number): number {
  const u = m.units[0];
  if (!u) return 0;
  const e = u.entry(dev.index, pasid);
  return u.spec.entry.present(e) ? u.spec.entry.mmOf(e) : 0;
}

function tableOf(m: SvaModel, t: KTask, dom: number): number {
  return (m.domains.pageTable(t, dom)?.id ?? -1) + 1;
}

describe('PASID attach, replace, detach on the VT-d model', () => {
  it('the same domain attached again succeeds; a different one is -EBUSY and the first stays installed', () => {
    const got: string[] = [];
    const seen: number[] = [];
    const { r } = withModel({}, function* (m, t) {
      const dev = m.infos[0] as DeviceInfo;
      const a = yield* paging(m, t);
      const b = yield* paging(m, t);
      got.push(errname(yield* m.k.fn.iommu_attach_device_pasid(t, a, dev, 1)));
      got.push(errname(yield* m.k.fn.iommu_attach_device_pasid(t, a, dev, 1)));
      got.push(errname(yield* m.k.fn.iommu_attach_device_pasid(t, b, dev, 1)));
      seen.push((yield* m.k.fn.iommu_get_domain_for_dev_pasid(t, dev, 1)) === a ? 1 : 0, walked(m, dev, 1) === tableOf(m, t, a) ? 1 : 0);
      yield* m.k.fn.iommu_detach_device_pasid(t, a, dev, 1);
      yield* m.domains.free(t, a);
      yield* m.domains.free(t, b);
    });
    expect(titles(r)).toEqual([]);
    expect(got).toEqual(['0', '0', errname(-EBUSY)]);
    expect(seen).toEqual([1, 1]);
  });

  it('replace of a PASID with nothing attached is -EINVAL and leaves no entry; after detach the PASID has no domain and the unit walks nothing', () => {
    const got: string[] = [];
    const seen: number[] = [];
    const { r } = withModel({}, function* (m, t) {
      const dev = m.infos[0] as DeviceInfo;
      const a = yield* paging(m, t);
      got.push(errname(yield* m.k.fn.iommu_replace_device_pasid(t, a, dev, 2)));
      seen.push(yield* m.k.fn.iommu_get_domain_for_dev_pasid(t, dev, 2), walked(m, dev, 2));
      got.push(errname(yield* m.k.fn.iommu_attach_device_pasid(t, a, dev, 2)));
      seen.push(walked(m, dev, 2) === tableOf(m, t, a) ? 1 : 0);
      yield* m.k.fn.iommu_detach_device_pasid(t, a, dev, 2);
      seen.push(yield* m.k.fn.iommu_get_domain_for_dev_pasid(t, dev, 2), walked(m, dev, 2));
      yield* m.domains.free(t, a);
    });
    expect(titles(r)).toEqual([]);
    expect(got).toEqual(['-EINVAL', '0']);
    expect(seen).toEqual([0, 0, 1, 0, 0]);
  });

  it('a replace the driver fails (-ENOMEM injected into intel_iommu_set_dev_pasid) leaves the old domain attached and translating', () => {
    const got: string[] = [];
    const seen: number[] = [];
    const { r } = withModel({}, function* (m, t) {
      const dev = m.infos[0] as DeviceInfo;
      const a = yield* paging(m, t);
      const c = yield* paging(m, t);
      got.push(errname(yield* m.k.fn.iommu_attach_device_pasid(t, a, dev, 1)));
      let failures = 1;
      m.k.fns.wrap(
        'intel_iommu_set_dev_pasid',
        (orig) =>
          function* (t2, domain, d, pasid, old) {
            if (failures-- > 0) return -ENOMEM;
            return yield* orig(t2, domain, d, pasid, old);
          },
        'test: failslab',
      );
      got.push(errname(yield* m.k.fn.iommu_replace_device_pasid(t, c, dev, 1)));
      seen.push((yield* m.k.fn.iommu_get_domain_for_dev_pasid(t, dev, 1)) === a ? 1 : 0, walked(m, dev, 1) === tableOf(m, t, a) ? 1 : 0);
      // The same replace once the driver takes it.
      got.push(errname(yield* m.k.fn.iommu_replace_device_pasid(t, c, dev, 1)));
      seen.push((yield* m.k.fn.iommu_get_domain_for_dev_pasid(t, dev, 1)) === c ? 1 : 0, walked(m, dev, 1) === tableOf(m, t, c) ? 1 : 0);
      yield* m.k.fn.iommu_detach_device_pasid(t, c, dev, 1);
      yield* m.domains.free(t, a);
      yield* m.domains.free(t, c);
    });
    expect([got, seen]).toEqual([['0', '-ENOMEM', '0'], [1, 1, 1, 1]]);
    expect(titles(r)).toEqual([]);
    expect(got).toEqual(['0', '-ENOMEM', '0']);
    expect(seen).toEqual([1, 1, 1, 1]);
  });

  it('an attach handle is what pasid_array holds: found by iommu_attach_handle_get with its domain; -ENOENT for a bare domain, -EBUSY for another type', () => {
    const got: string[] = [];
    const seen: number[] = [];
    const { r, m } = withModel({}, function* (m, t) {
      const dev = m.infos[0] as DeviceInfo;
      const g = m.k.fn;
      const a = yield* paging(m, t);
      const handle = yield* kzalloc(m.k, t, 1, 'GFP_KERNEL', 'iommu_attach_handle');
      got.push(errname(yield* g.iommu_attach_device_pasid(t, a, dev, 1, handle)));
      got.push(errname(yield* g.iommu_attach_device_pasid(t, a, dev, 2)));
      const group = groupOf(m, dev);
      const found = yield* g.iommu_attach_handle_get(t, group, 1);
      seen.push(found === handle ? 1 : 0, objLoad(m.k, t, handle, 0) === a ? 1 : 0);
      got.push(errname(yield* g.iommu_attach_handle_get(t, group, 1, 'sva' as DomainType)));
      got.push(errname(yield* g.iommu_attach_handle_get(t, group, 2)));
      seen.push((yield* g.iommu_get_domain_for_dev_pasid(t, dev, 1)) === a ? 1 : 0);
      yield* g.iommu_detach_device_pasid(t, a, dev, 1);
      yield* g.iommu_detach_device_pasid(t, a, dev, 2);
      got.push(errname(yield* g.iommu_attach_handle_get(t, group, 1)));
      yield* m.domains.free(t, a);
      yield* kfree(m.k, t, handle);
    });
    expect(titles(r)).toEqual([]);
    expect(got).toEqual(['0', '0', errname(-EBUSY), '-ENOENT', '-ENOENT']);
    expect(seen).toEqual([1, 1, 1]);
    expect(m.sva.svaDomains.groups.pasidEntries(groupOf(m, m.infos[0] as DeviceInfo))).toEqual([]);
    expect(pasidArrayTag(2 * 1000 + 1)).toBe(IOMMU_PASID_ARRAY_HANDLE);
  });
});

describe('DMA ownership: the blocking domain while a group changes hands', () => {
  it('claiming the group attaches the blocking domain (the unit walks nothing for the RID); another owner is -EPERM; a non-default domain attached is -EBUSY; the release puts the default domain back', () => {
    const got: string[] = [];
    const seen: number[] = [];
    const { r } = withModel({}, function* (m, t) {
      const dev = m.infos[0] as DeviceInfo;
      const groups = m.sva.svaDomains.groups;
      const g = groupOf(m, dev);
      // iommu_probe (the DMA API's default domain) runs after kernel_init: wait for the group's domain.
      yield m.k.point(t, 'wait for the default domain', () => groups.groupDomain(g) !== 0, () => undefined, { what: 'iommu_probe' });
      const dflt = groups.groupDomain(g);
      seen.push(walked(m, dev, 0) === tableOf(m, t, dflt) ? 1 : 0);
      got.push(errname(yield* m.k.fn.iommu_group_claim_dma_owner(t, g, 7)));
      seen.push(walked(m, dev, 0), groups.groupDomain(g), groups.dmaOwner(g));
      got.push(errname(yield* m.k.fn.iommu_group_claim_dma_owner(t, g, 8)));
      // The owner attaches its own domain; the group is then not claimable by anyone else, nor again from scratch.
      const v = yield* paging(m, t);
      got.push(errname(yield* m.k.fn.iommu_attach_group(t, v, g)));
      seen.push(walked(m, dev, 0) === tableOf(m, t, v) ? 1 : 0);
      yield* m.k.fn.iommu_detach_group(t, v, g);
      yield* m.k.fn.iommu_group_release_dma_owner(t, g);
      seen.push(groups.dmaOwner(g), groups.groupDomain(g) === dflt ? 1 : 0, walked(m, dev, 0) === tableOf(m, t, dflt) ? 1 : 0);
      got.push(errname(yield* m.k.fn.iommu_attach_group(t, v, g)));
      got.push(errname(yield* m.k.fn.iommu_group_claim_dma_owner(t, g, 9)));
      yield* m.k.fn.iommu_detach_group(t, v, g);
      yield* m.domains.free(t, v);
    });
    expect(titles(r)).toEqual([]);
    expect(got).toEqual(['0', '-EPERM', '0', '0', '-EBUSY']);
    expect(seen).toEqual([1, 0, 0, 7, 1, 0, 1, 1]);
  });
});

describe('device lifetime: surprise removal, pci_dev references', () => {
  it("pciehp removes an unplugged device in the kernel order — driver remove, BUS_NOTIFY_REMOVED_DEVICE → iommu_release_device (the driver's release_device, then the group), then the bus's put", () => {
    for (const iommus of ['vtd', 'smmuv3'] as const) {
      for (let seed = 1; seed <= 5; seed++) {
        const order: string[] = [];
        const built = buildSva({ iommus, devices: 1, processes: 1, script: 'life', dmas: 4, misbehave: 'unplug-on-fault' });
        const k = built.model.k;
        for (const name of ['pci_device_remove', 'iommu_bus_notifier', 'iommu_release_device', 'iommu_deinit_device', 'iommu_group_remove_device', 'pci_dev_put'] as const) {
          k.fns.wrap(name, (orig: (...a: never[]) => KGen<unknown>) => function* (...args: never[]) {
            order.push(name);
            return yield* orig(...args);
          } as never, 'test: order');
        }
        const s = new RandomScheduler(seed);
        s.newExecution();
        const r = runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
        expect(titles(r)).toEqual([]);
        expect(order).toEqual(['pci_device_remove', 'iommu_bus_notifier', 'iommu_release_device', 'iommu_deinit_device', 'iommu_group_remove_device', 'pci_dev_put']);
        const dev = built.model.devices[0];
        expect(dev?.config).toBe(CONFIG_RELEASED);
        expect(r.check.counters.unbinds).toBe(1);
      }
    }
  });

  it('a lookup whose reference is never put keeps the removed device\'s pci_dev: kmemleak reports it at teardown', () => {
    const { r } = withModel({ misbehave: 'unplug', script: 'life', dmas: 2 }, function* (m, t) {
      const [seg, bus, devfn] = pciAddress((m.infos[0] as DeviceInfo).name);
      const pdev = yield* m.k.fn.pci_get_domain_bus_and_slot(t, seg, bus, devfn);
      expect(pdev).not.toBe(0);
    }, { processes: true });
    const leaks = r.findings.filter((f) => f.kind === 'leak');
    expect(leaks.map((f) => f.title)).toEqual([expect.stringMatching(/^unreferenced object 0x[0-9a-f]+ \(size 16\):$/)]);
    expect(leaks[0]?.text).toMatch(/comm "kernel_init"[\s\S]*pci_device_add[\s\S]*1 reference still held/);
  });

  it('the same lookup put before the removal: nothing left; a get after the last put is KASAN\'s slab-use-after-free', () => {
    const clean = withModel({ misbehave: 'unplug', script: 'life', dmas: 2 }, function* (m, t) {
      const [seg, bus, devfn] = pciAddress((m.infos[0] as DeviceInfo).name);
      const pdev = yield* m.k.fn.pci_get_domain_bus_and_slot(t, seg, bus, devfn);
      yield* m.k.fn.pci_dev_put(t, pdev);
    }, { processes: true });
    expect(titles(clean.r)).toEqual([]);
    let state = '';
    const uaf = withModel({ misbehave: 'unplug', script: 'life', dmas: 2 }, function* (m, t) {
      const dev = m.infos[0] as DeviceInfo;
      const [seg, bus, devfn] = pciAddress(dev.name);
      const pdev = yield* m.k.fn.pci_get_domain_bus_and_slot(t, seg, bus, devfn);
      // Held across the removal: the bus's put is not the last one; ours is, then a stale get.
      // The removal done: the device released, and the bus's reference put (ours is the only one left).
      yield m.k.point(t, 'wait for the removal', () => m.devices[0]?.config === CONFIG_RELEASED && m.k.i32[pdev + PCI_DEV.offset.refcount] === 1, () => undefined, { what: 'pciehp' });
      yield* m.k.fn.pci_dev_put(t, pdev);
      state = objState(m.k, pdev);
      yield* m.k.fn.pci_dev_get(t, pdev);
    }, { processes: true });
    expect(state === 'quarantined' || state === 'free').toBe(true);
    // KASAN sees the stale get; refcount_t then warns of the addition on 0, as the kernel prints both.
    expect(titles(uaf.r)).toEqual(['BUG: KASAN: slab-use-after-free in pci_dev_get', 'refcount_t: addition on 0; use-after-free.']);
  });
});

/** dev->iommu_group. */
function groupOf(m: SvaModel, dev: DeviceInfo): IommuGroup {
  return m.sva.svaDomains.groups.groupOf(dev);
}
