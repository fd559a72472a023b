// Mainline's iommu-sva.c on the one model (issue #16, deliverable 2): handles shared per (mm, device) with a
// refcount, mm->pasid living as long as the mm_struct (mm_pasid_drop at __mmdrop), the MMU notifier on the SVA
// domain (its memory freed only after SRCU), and the notifier's release stopping the hardware before exit_mmap
// frees the page tables. Each observes the run through the kernel functions by name (k.fns.wrap, as a patch
// would), with the deterministic runtime and fixed seeds; seed 000's values of the policies are the contrast.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { type MmStruct, mmPasid, mmUsers } from '../src/kernel/mm/mm.js';
import { objState } from '../src/kernel/slab.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

type Step = Record<string, unknown>;

function build(params: Record<string, Wire>, steps?: Step[][]) {
  return buildSva(steps ? { ...params, processes: steps.length, steps: JSON.stringify(steps) } : params);
}

function run(built: ReturnType<typeof build>, seed: number) {
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
}

const SEEDS = [1, 2, 3, 4, 5, 6];

describe('iommu_sva_bind_device: one handle per (mm, device)', () => {
  const steps = [[{ op: 'bind' }, { op: 'bind' }, { op: 'dma', n: 1 }, { op: 'unbind' }, { op: 'dma', n: 1 }, { op: 'unbind' }, { op: 'exit' }]];

  it('a second bind returns the same handle; only the last unbind detaches and frees it', () => {
    for (const seed of SEEDS) {
      const b = build({ iommus: 'vtd' }, steps);
      const events: string[] = [];
      b.model.k.fns.wrap('iommu_sva_bind_device', (orig) =>
        function* (t: KTask, dev, mm, flags) {
          const r = yield* orig(t, dev, mm, flags);
          if (mm) events.push(`bind ${r.ret}`);
          return r;
        },
      'test');
      b.model.k.fns.wrap('iommu_sva_unbind_device', (orig) =>
        function* (t: KTask, handle: number): KGen {
          events.push(`unbind ${handle}`);
          yield* orig(t, handle);
        },
      'test');
      b.model.k.fns.wrap('iommu_detach_device_pasid', (orig) =>
        function* (t: KTask, dom, dev, pasid): KGen {
          events.push('detach');
          yield* orig(t, dom, dev, pasid);
        },
      'test');
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const h = events[0];
      expect(h).toMatch(/^bind [1-9]/);
      const handle = Number(h?.split(' ')[1]);
      expect(events).toEqual([`bind ${handle}`, `bind ${handle}`, `unbind ${handle}`, `unbind ${handle}`, 'detach']);
      expect(r.check.counters.binds).toBe(1);
      expect(r.check.counters.unbinds).toBe(1);
      expect(b.model.sva.liveBonds()).toEqual([]);
    }
  });

  it('bug=no-handle-sharing (before "iommu/sva: Restore SVA handle sharing"): two handles, the first unbind detaches the PASID the second still uses', () => {
    const b = build({ iommus: 'vtd', bug: 'no-handle-sharing' }, steps);
    const r = run(b, 1);
    expect(r.check.counters.binds).toBe(2);
    expect(r.findings.map((f) => f.title)).toContainEqual(expect.stringMatching(/WARNING: .* iommu_detach_device_pasid/));
  });
});

describe('mm->pasid: the mm’s, from its first bind to __mmdrop (mm_pasid_drop)', () => {
  const steps = [[{ op: 'bind' }, { op: 'dma', n: 2 }, { op: 'exit' }]];

  /** mm->pasid and mm_get_enqcmd_pasid at the last mmput, and at __mmdrop before and after it ran. */
  function observe(pasidLife: 'mm' | 'unbind', notifier: 'domain' | 'bond', seed: number) {
    const b = build({ iommus: 'vtd', pasidLife, notifier }, steps);
    const { k, sva } = b.model;
    const seen: Record<string, number> = {};
    k.fns.wrap('mmput', (orig) =>
      function* (t: KTask, mm: MmStruct): KGen {
        yield* orig(t, mm);
        if (mm.id !== 0 && mmUsers(k, mm) === 0 && seen.afterMmput === undefined) {
          seen.afterMmput = mmPasid(k, mm);
          seen.enqcmdAfterMmput = sva.enqcmdPasid(mm);
        }
      },
    'test');
    k.fns.wrap('__mmdrop', (orig) =>
      function* (t: KTask, mm: MmStruct): KGen {
        if (mm.id !== 0) seen.atMmdrop = mmPasid(k, mm);
        yield* orig(t, mm);
        if (mm.id !== 0) seen.afterMmdrop = mmPasid(k, mm) + sva.enqcmdPasid(mm);
      },
    'test');
    const r = run(b, seed);
    return { r, seen };
  }

  it('pasidLife=mm: mm->pasid stays valid after the last mmput, until __mmdrop frees it', () => {
    for (const seed of SEEDS) {
      for (const notifier of ['domain', 'bond'] as const) {
        const { r, seen } = observe('mm', notifier, seed);
        expect(r.findings.map((f) => f.title)).toEqual([]);
        expect(seen.afterMmput).toBeGreaterThan(0);
        expect(seen.enqcmdAfterMmput).toBe(seen.afterMmput);
        expect(seen.atMmdrop).toBe(seen.afterMmput);
        expect(seen.afterMmdrop).toBe(0);
      }
    }
  });

  it('pasidLife=unbind (seed 000): the PASID is gone before __mmdrop, and __mmdrop finds none left', () => {
    for (const seed of SEEDS) {
      const { r, seen } = observe('unbind', 'bond', seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(seen.atMmdrop).toBe(0);
    }
  });

  it('two processes, each its own PASID; every PASID freed by the end (the leak checks are on)', () => {
    for (const seed of SEEDS) {
      const b = build({ iommus: 'vtd' }, [[{ op: 'bind' }, { op: 'exit' }], [{ op: 'bind' }, { op: 'dma', n: 1 }, { op: 'exit' }]]);
      const pasids: number[] = [];
      b.model.k.fns.wrap('iommu_alloc_mm_data', (orig) =>
        function* (t: KTask, mm, dev, flags) {
          const p = yield* orig(t, mm, dev, flags);
          pasids.push(p);
          return p;
        },
      'test');
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(r.check.counters.binds).toBe(2);
      expect(new Set(pasids).size).toBe(2);
    }
  });
});

describe("seed 003's free policy with mainline's PASID life", () => {
  it('free=rcu|workqueue with per-bond notifiers and pasidLife=mm: the free_notifier leaves the mm\'s PASID to mm_pasid_drop (no double free)', () => {
    for (const free of ['rcu', 'workqueue']) {
      for (const seed of SEEDS.slice(0, 3)) {
        const b = build({ iommus: 'smmuv3', pasidAlloc: 'system', free, notifier: 'bond', pasidLife: 'mm', script: 'life', processes: 2, dmas: 2 });
        let drops = 0;
        b.model.k.fns.wrap('mm_pasid_drop', (orig) =>
          function* (t: KTask, mm: MmStruct) {
            if (mmPasid(b.model.k, mm) > 0) drops++;
            return yield* orig(t, mm);
          },
        'test');
        const r = run(b, seed);
        expect(r.findings.map((f) => f.title)).toEqual([]);
        expect(drops).toBe(2);
      }
    }
  });
});

describe('the MMU notifier on the SVA domain', () => {
  const steps = [[{ op: 'bind' }, { op: 'dma', n: 1, vpn: 2 }, { op: 'munmap', vpn: 2 }, { op: 'dma', n: 1, vpn: 2 }, { op: 'unbind' }, { op: 'exit' }]];

  it('the domain is registered once, put at its last user, and its memory freed only by free_notifier after SRCU', () => {
    for (const seed of SEEDS) {
      const b = build({ iommus: 'vtd', users: 'unrefcounted' }, steps);
      const { k } = b.model;
      const log: string[] = [];
      let dom = 0;
      k.fns.wrap('mmu_notifier_register', (orig) =>
        function* (t: KTask, ops, mm, data) {
          const sub = yield* orig(t, ops, mm, data);
          dom = data;
          log.push(`register ${t.chain().includes('iommu_sva_domain_alloc') ? 'at domain alloc' : 'elsewhere'}`);
          return sub;
        },
      'test');
      k.fns.wrap('mmu_notifier_put', (orig) =>
        function* (t: KTask, sub: number): KGen {
          log.push(`put: domain ${objState(k, dom)}`);
          yield* orig(t, sub);
          log.push(`after put: domain ${objState(k, dom)}`);
        },
      'test');
      k.fns.wrap('mmu_notifier_free_rcu', (orig) =>
        function* (t: KTask, sub: number): KGen {
          log.push(`free_rcu (${t.chain().includes('srcu_invoke_callbacks') ? 'an SRCU callback' : 'elsewhere'}): domain ${objState(k, dom)}`);
          yield* orig(t, sub);
          log.push(`after free_rcu: domain ${objState(k, dom) === 'allocated' ? 'allocated' : 'freed'}`);
        },
      'test');
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(log).toEqual([
        'register at domain alloc',
        'put: domain allocated',
        'after put: domain allocated',
        'free_rcu (an SRCU callback): domain allocated',
        'after free_rcu: domain freed',
      ]);
    }
  });

  it('munmap reaches the IOTLB through the domain notifier; bug=no-range-flush leaves a stale translation', () => {
    const invalidations: string[] = [];
    const b = build({ iommus: 'vtd' }, steps);
    b.model.k.fns.wrap('iommu_sva_invalidate_range', (orig) =>
      function* (t: KTask, mm, h, start, end): KGen {
        invalidations.push(`${start}..${end}`);
        yield* orig(t, mm, h, start, end);
      },
    'test');
    expect(run(b, 1).findings.map((f) => f.title)).toEqual([]);
    expect(invalidations).toContain('2..3');
    const kinds = new Set<string>();
    for (const seed of SEEDS) for (const f of run(build({ iommus: 'vtd', bug: 'no-range-flush' }, steps), seed).findings) kinds.add(f.kind);
    expect([...kinds]).toContain('stale_translation');
  });
});

describe('the notifier release stops the hardware before exit_mmap frees the page tables', () => {
  // The process exits with its fd open: exit_mm (exit_mmap, the release) comes before exit_files' unbind.
  const steps = [[{ op: 'bind' }, { op: 'dma', n: 3, wait: false }, { op: 'exit' }]];

  it('release runs from exit_mmap for the {device, PASID} of the domain; no walk of a freed table', () => {
    for (const seed of SEEDS) {
      const b = build({ iommus: 'vtd' }, steps);
      const releases: string[] = [];
      b.model.k.fns.wrap('iommu_sva_mm_release', (orig) =>
        function* (t: KTask, mm, h): KGen {
          releases.push(t.chain().includes('exit_mmap') ? 'exit_mmap' : 'elsewhere');
          yield* orig(t, mm, h);
        },
      'test');
      const r = run(b, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(releases).toEqual(['exit_mmap']);
    }
  });

  it('bug=no-release-flush: the hardware keeps walking what exit_mmap frees, and a checker says so', () => {
    const kinds = new Set<string>();
    for (const seed of SEEDS) for (const f of run(build({ iommus: 'vtd', bug: 'no-release-flush' }, steps), seed).findings) kinds.add(f.kind);
    expect(kinds.size).toBeGreaterThan(0);
  });
});
