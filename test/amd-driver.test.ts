// The AMD IOMMU driver and hardware (src/hw/amd/): the unbind's invalidation sequence in each era's kernel order
// — mainline's amd_iommu_remove_dev_pasid → remove_pdom_dev_pasid → remove_dev_pasid → amd_iommu_clear_gcr3 →
// update_gcr3 (the entry cleared) → amd_iommu_dev_flush_pasid_pages (INVALIDATE_IOMMU_PAGES, INVALIDATE_IOTLB_PAGES,
// one COMPLETION_WAIT polled by wait_on_sem); the v2 driver's amd_iommu_unbind_pasid → unbind_pasid →
// amd_iommu_domain_clear_gcr3 → __flush_pasid (INVALIDATE_IOMMU_PAGES, COMPLETION_WAIT, then
// INVALIDATE_IOTLB_PAGES, COMPLETION_WAIT) —, the command encodings the unit decodes, the two-level GCR3 table,
// and the PPR log from the unit's entry to COMPLETE_PPR_REQUEST. Deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import type { KGen } from '../src/kernel/kernel.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { CMD_INV_IOMMU_PAGES_GN_MASK, CMD_INV_IOMMU_PAGES_PDE_MASK, CMD_TYPE_SHIFT } from '../src/hw/amd/amd_iommu_types.js';
import { type AmdIommu, decodeInvAddress, gcr3Levels } from '../src/hw/amd/hw.js';
import { build_complete_ppr, build_inv_iommu_pages, build_inv_iotlb_pages, buildInvAddress } from '../src/hw/amd/iommu.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

type Model = ReturnType<typeof buildSva>['model'];

/** Record every call of `names`, in order, by wrapping them by name (as a patch would). */
function record(m: Model, names: readonly string[], log: string[]): void {
  for (const name of names) {
    m.k.fns.wrap(
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

function run(params: Record<string, Wire>, seed: number, patch?: (m: Model) => void) {
  const built = buildSva(params);
  patch?.(built.model);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { r: runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true }), model: built.model };
}

/** The trace's task steps of the command buffer and the GCR3 entry, in order. */
function amdSteps(text: string): string[] {
  return text
    .split('\n')
    .map((l) => /<- task: (update_gcr3: .*|__clear_gcr3: .*|__set_gcr3: .*|copy_cmd_to_buffer: \w+|wait_on_sem \d+)$/.exec(l)?.[1])
    .filter((s): s is string => s !== undefined)
    .map((s) => s.replace(/^wait_on_sem \d+$/, 'wait_on_sem'));
}

const ONE = {
  iommus: 'amd',
  devices: 1,
  processes: 1,
  steps: JSON.stringify([[{ op: 'bind' }, { op: 'dma', n: 2 }, { op: 'unbind' }, { op: 'exit' }]]),
};
const MAINLINE_CHAIN = [
  'amd_iommu_remove_dev_pasid',
  'remove_pdom_dev_pasid',
  'remove_dev_pasid',
  'amd_iommu_clear_gcr3',
  'update_gcr3',
  'amd_iommu_dev_flush_pasid_pages',
  'iommu_queue_command',
  'device_flush_iotlb',
  'iommu_queue_command',
  'iommu_completion_wait',
  'wait_on_sem',
];
const V2_CHAIN = [
  'amd_iommu_unbind_pasid',
  'unbind_pasid',
  'amd_iommu_domain_clear_gcr3',
  '__flush_pasid',
  'iommu_queue_command',
  'iommu_completion_wait',
  'wait_on_sem',
  'iommu_queue_command',
  'iommu_completion_wait',
  'wait_on_sem',
];
const WATCHED = [...new Set([...MAINLINE_CHAIN, ...V2_CHAIN, 'mn_release', 'sva_mn_release'])];

describe('unbind: the invalidation sequence in the kernel’s order', () => {
  it('mainline (notifier=domain): update_gcr3 clears the entry, then INVALIDATE_IOMMU_PAGES, INVALIDATE_IOTLB_PAGES, one COMPLETION_WAIT', () => {
    for (const seed of [1, 2, 3]) {
      const log: string[] = [];
      const { r, model } = run(ONE, seed, (m) => record(m, WATCHED, log));
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const from = log.indexOf('amd_iommu_remove_dev_pasid');
      expect(log.slice(from, from + MAINLINE_CHAIN.length)).toEqual(MAINLINE_CHAIN);
      const steps = amdSteps(r.trace.toText());
      const clear = steps.indexOf('update_gcr3: *pte = 0');
      expect(clear).toBeGreaterThan(0);
      expect(steps.slice(clear, clear + 5)).toEqual([
        'update_gcr3: *pte = 0',
        'copy_cmd_to_buffer: CMD_INV_IOMMU_PAGES',
        'copy_cmd_to_buffer: CMD_INV_IOTLB_PAGES',
        'copy_cmd_to_buffer: CMD_COMPL_WAIT',
        'wait_on_sem',
      ]);
      // The unit executed them: nothing of {dev 0, PASID} is left in its IOTLB or GCR3-entry cache.
      const unit = model.units[0];
      const pasids = [1, 2, 3];
      expect(unit?.caches().flatMap((c) => pasids.flatMap((p) => c.entriesForPasid(0, p)))).toEqual([]);
    }
  });

  it('the v2 driver (notifier=bond): __clear_gcr3, then INVALIDATE_IOMMU_PAGES and a COMPLETION_WAIT before INVALIDATE_IOTLB_PAGES and another', () => {
    for (const seed of [1, 2, 3]) {
      const log: string[] = [];
      const { r } = run({ ...ONE, notifier: 'bond' }, seed, (m) => record(m, WATCHED, log));
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const from = log.indexOf('amd_iommu_unbind_pasid');
      expect(log.slice(from, from + V2_CHAIN.length)).toEqual(V2_CHAIN);
      expect(log).not.toContain('amd_iommu_remove_dev_pasid');
      const steps = amdSteps(r.trace.toText());
      const clear = steps.indexOf('__clear_gcr3: *pte = 0');
      expect(steps.slice(clear, clear + 7)).toEqual([
        '__clear_gcr3: *pte = 0',
        'copy_cmd_to_buffer: CMD_INV_IOMMU_PAGES',
        'copy_cmd_to_buffer: CMD_COMPL_WAIT',
        'wait_on_sem',
        'copy_cmd_to_buffer: CMD_INV_IOTLB_PAGES',
        'copy_cmd_to_buffer: CMD_COMPL_WAIT',
        'wait_on_sem',
      ]);
    }
  });

  it('exit before unbind: the era’s MMU-notifier release clears the entry, and the unbind finds nothing left to clear', () => {
    const steps = [[{ op: 'bind' }, { op: 'dma', n: 1 }, { op: 'exit' }]];
    for (const [notifier, release] of [
      ['domain', 'sva_mn_release'],
      ['bond', 'mn_release'],
    ] as const) {
      const log: string[] = [];
      const { r } = run({ iommus: 'amd', devices: 1, processes: 1, notifier, steps: JSON.stringify(steps) }, 1, (m) =>
        record(m, WATCHED, log),
      );
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(log).toContain(release);
      // One clear of the entry, by the release.
      expect(log.filter((n) => n === 'amd_iommu_clear_gcr3' || n === 'amd_iommu_domain_clear_gcr3')).toHaveLength(1);
    }
  });
});

describe('the command buffer’s encodings, as the unit decodes them', () => {
  it('build_inv_address: one page without S; a range as the naturally aligned power of two covering it; all pages', () => {
    expect(decodeInvAddress(...buildInvAddress([5, 6]))).toEqual({ s: 5, e: 6 });
    expect(decodeInvAddress(...buildInvAddress([-1, -1]))).toEqual({ s: -1, e: -1 });
    for (const [s, e] of [
      [0, 2],
      [4, 8],
      [3, 5],
      [7, 9],
      [100, 130],
    ] as const) {
      const d = decodeInvAddress(...buildInvAddress([s, e]));
      expect(d.s).toBeLessThanOrEqual(s);
      expect(d.e).toBeGreaterThanOrEqual(e);
      const n = d.e - d.s;
      expect(n & (n - 1)).toBe(0);
      expect(d.s % n).toBe(0);
    }
  });

  it('INVALIDATE_IOMMU_PAGES, INVALIDATE_IOTLB_PAGES and COMPLETE_PPR_REQUEST carry their fields where amd_iommu_types.h puts them', () => {
    const inv = build_inv_iommu_pages([-1, -1], 7, 0x1234, true);
    expect(inv[1] >>> CMD_TYPE_SHIFT).toBe(0x03);
    expect(inv[1] & 0xffff).toBe(7);
    expect(inv[0]).toBe(0x1234);
    expect(inv[2] & (CMD_INV_IOMMU_PAGES_PDE_MASK | CMD_INV_IOMMU_PAGES_GN_MASK)).toBe(
      CMD_INV_IOMMU_PAGES_PDE_MASK | CMD_INV_IOMMU_PAGES_GN_MASK,
    );
    const iotlb = build_inv_iotlb_pages(3, 32, [8, 9], 0x1234, true);
    expect(iotlb[1] >>> CMD_TYPE_SHIFT).toBe(0x04);
    expect(iotlb[0] & 0xffff).toBe(3);
    expect((iotlb[0] >>> 24) & 0xff).toBe(32);
    expect((((iotlb[0] >>> 16) & 0xff) << 8) | ((iotlb[1] >>> 16) & 0xff)).toBe(0x1234);
    const ppr = build_complete_ppr(3, 5, 1, 0x1ab, true);
    expect(ppr[1] >>> CMD_TYPE_SHIFT).toBe(0x07);
    expect(ppr[1] & 0xfffffff).toBe(5);
    expect(ppr[3] & 0x1ff).toBe(0x1ab);
    expect((ppr[3] >>> 12) & 0xf).toBe(1);
  });
});

describe('GCR3 tables by GLX', () => {
  it('get_gcr3_levels: one level up to 512 PASIDs, two above', () => {
    expect([1, 9, 10, 16].map(gcr3Levels)).toEqual([0, 0, 1, 1]);
  });

  it('GLX 1: the first bind allocates the level-1 entry, the hardware walks both levels, DMA translates', () => {
    for (const [pasidBits, levels] of [
      [8, 0],
      [10, 1],
    ] as const) {
      const { r } = run({ ...ONE, pasidBits }, 1);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const text = r.trace.toText();
      const rootWrites = text.split('\n').filter((l) => l.includes('__get_gcr3_pte: *pte = iommu_virt_to_phys(root) | GCR3_VALID')).length;
      expect(rootWrites).toBe(levels);
      expect(text).toContain('ats.ok');
    }
  });
});

describe('the PPR log, end to end', () => {
  const FAULTS = { iommus: 'amd', processes: 2, script: 'life', dmas: 6 };

  it('each page request: PPR log entry → amd_iommu_poll_ppr_log → iommu_call_iopf_notifier → iommu_report_device_fault; each group answered once by COMPLETE_PPR_REQUEST', () => {
    for (const seed of [1, 2, 3, 4]) {
      const log: string[] = [];
      const { r } = run(FAULTS, seed, (m) =>
        record(m, ['amd_iommu_poll_ppr_log', 'iommu_call_iopf_notifier', 'iommu_report_device_fault', 'amd_iommu_page_response'], log),
      );
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const c = r.check.counters;
      expect(c.page_request_groups).toBeGreaterThan(0);
      expect(c.page_responses).toBe(c.page_request_groups);
      const notified = log.filter((n) => n === 'iommu_call_iopf_notifier').length;
      expect(log.filter((n) => n === 'iommu_report_device_fault').length).toBe(notified);
      expect(notified).toBeGreaterThan(0);
      // Every notifier call comes from a poll of the log.
      expect(log.indexOf('amd_iommu_poll_ppr_log')).toBeLessThan(log.indexOf('iommu_call_iopf_notifier'));
      expect(log.filter((n) => n === 'amd_iommu_page_response').length).toBe(c.page_responses);
      expect(r.trace.toText()).toContain('copy_cmd_to_buffer: CMD_COMPLETE_PPR');
    }
  });

  it('the v2 driver (notifier=bond): iommu_handle_ppr_entry → ppr_notifier → do_fault on iommu_wq → amd_iommu_complete_ppr, each group answered once', () => {
    for (const seed of [1, 2, 3, 4]) {
      const log: string[] = [];
      const names = [
        'iommu_call_iopf_notifier',
        'iommu_handle_ppr_entry',
        'ppr_notifier',
        'do_fault',
        'amd_iommu_complete_ppr',
        'iommu_report_device_fault',
      ];
      const { r } = run({ ...FAULTS, notifier: 'bond' }, seed, (m) => record(m, names, log));
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const c = r.check.counters;
      expect(c.page_request_groups).toBeGreaterThan(0);
      expect(c.page_responses).toBe(c.page_request_groups);
      expect(log).not.toContain('iommu_call_iopf_notifier');
      expect(log).not.toContain('iommu_report_device_fault');
      expect(log.filter((n) => n === 'ppr_notifier').length).toBe(log.filter((n) => n === 'iommu_handle_ppr_entry').length);
      expect(log.filter((n) => n === 'do_fault').length).toBeGreaterThan(0);
      expect(log.filter((n) => n === 'amd_iommu_complete_ppr').length).toBe(c.page_responses);
      expect(r.trace.toText()).toMatch(/queue_work\(amd_iommu_v2, do_fault /);
    }
  });

  it('a PPR log of 2 entries overflows: the thread finds MMIO_STATUS_PPR_OVERFLOW and restarts the log (amd_iommu_restart_ppr_log), and no oracle finds a group unanswered or answered twice', () => {
    let overflowed = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const { r } = run({ iommus: 'amd', processes: 2, script: 'unbind-inflight', dmas: 8, prqDepth: 2 }, seed, (m) => {
        const unit = m.units[0] as AmdIommu;
        m.k.fns.wrap(
          'amd_iommu_restart_ppr_log',
          (orig) =>
            function* (t, iommu) {
              if (unit.prqOverflowed) overflowed++;
              yield* orig(t, iommu);
            },
          'test',
        );
      });
      expect(r.findings.map((f) => f.title)).toEqual([]);
    }
    expect(overflowed).toBeGreaterThan(0);
  });
});
