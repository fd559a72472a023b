// The AMD driver's completion wait (src/hw/amd/iommu.c): iommu_completion_wait takes the semaphore's next value
// under iommu->lock (get_cmdsem_val, mainline since 9e249c484128) and wait_on_sem polls for it outside the lock
// for LOOP_TIMEOUT turns of udelay(1), then prints "Completion-Wait loop timed out" (pr_alert: a finding of kind
// `printk`) and returns -EIO; and the shipped race of the version before the fix
// (races/amd-iommu-9e249c484128-cmdsem-order.yaml); and mainline's unlocked need_sync check, which lets a CPU return
// before its invalidations ran when another CPU's COMPLETION_WAIT follows them (races/000-amd-need-sync-skip.yaml).
// Deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import { CMD_COMPL_WAIT, CMD_TYPE_SHIFT } from '../src/hw/amd/amd_iommu_types.js';
import { AMD_IOMMU, type AmdIommu } from '../src/hw/amd/hw.js';
import type { IommuCmd } from '../src/hw/amd/iommu.js';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import type { UnitDriver } from '../src/hw/queue.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

type Model = ReturnType<typeof buildSva>['model'];

function run(params: Record<string, Wire>, seed: number, patch?: (m: Model) => void) {
  const built = buildSva(params);
  patch?.(built.model);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
}

/** The values of the COMPLETION_WAITs in the order they reach the command buffer, and what each wait_on_sem returned. */
function watchWaits(m: Model, queued: number[], waits: { data: number; ret: number; at: number }[]): void {
  m.k.fns.wrap(
    '__iommu_queue_command_sync',
    (orig) => (t: KTask, iommu: UnitDriver, cmd: IommuCmd, sync: boolean, e) => {
      if (cmd[1] >>> CMD_TYPE_SHIFT === CMD_COMPL_WAIT) queued.push(cmd[2]);
      return orig(t, iommu, cmd, sync, e);
    },
    'test',
  );
  m.k.fns.wrap(
    'wait_on_sem',
    (orig) =>
      function* (t: KTask, iommu: UnitDriver, data: number): KGen<number> {
        const ret = yield* orig(t, iommu, data);
        waits.push({ data, ret, at: m.k.now() });
        return ret;
      },
    'test',
  );
}

const ONE = { iommus: 'amd', devices: 1, processes: 1, steps: JSON.stringify([[{ op: 'bind' }, { op: 'unbind' }, { op: 'exit' }]]) };
const RACE = 'races/amd-iommu-9e249c484128-cmdsem-order.yaml';

describe('wait_on_sem: LOOP_TIMEOUT turns of udelay(1), then the pr_alert and -EIO', () => {
  it('a semaphore the hardware stores as asked: every wait returns 0, nothing printed', () => {
    const waits: { data: number; ret: number; at: number }[] = [];
    const r = run(ONE, 1, (m) => watchWaits(m, [], waits));
    expect(r.findings.map((f) => f.title)).toEqual([]);
    expect(waits.length).toBeGreaterThan(0);
    expect(waits.every((w) => w.ret === 0)).toBe(true);
  });

  it('a COMPLETION_WAIT that stores less than its wait polls for (build_completion_wait replaced by name): 2 s, then "Completion-Wait loop timed out" and -EIO', () => {
    const waits: { data: number; ret: number; at: number }[] = [];
    const r = run(ONE, 1, (m) => {
      // The builder, replaced by name: the hardware stores data - 1, which no later wait's store makes up for.
      m.k.fns.wrap('build_completion_wait', (orig) => (iommu: UnitDriver, data: number) => orig(iommu, data - 1), 'test');
      watchWaits(m, [], waits);
    });
    const timedOut = waits.filter((w) => w.ret < 0);
    expect(timedOut.length).toBeGreaterThan(0);
    expect(timedOut.every((w) => w.ret === -5)).toBe(true);
    // LOOP_TIMEOUT × udelay(1): the first time-out no sooner than 2 s of simulated time into the run.
    expect(Math.min(...timedOut.map((w) => w.at))).toBeGreaterThanOrEqual(2000);
    const kinds = new Set(r.findings.map((f) => f.kind));
    expect([...kinds]).toEqual(['printk']);
    expect(r.findings[0]?.title).toBe('AMD-Vi: IOMMU 0000:00:00.2: Completion-Wait loop timed out');
    expect(r.findings[0]?.text).toContain('wait_on_sem');
    // 2 s of spinning with interrupts on is no lockup (watchdog_thresh 10 s): the alert is the only report.
    expect(r.findings.length).toBe(timedOut.length);
  });
});

describe('iommu_completion_wait: the semaphore values reach the buffer in order (9e249c484128)', () => {
  it('mainline: two CPUs flushing through one IOMMU queue their COMPLETION_WAITs in their values’ order, and no wait times out', async () => {
    const params = scenarioParams(await loadScenarioFile(RACE), true);
    for (let seed = 1; seed <= 12; seed++) {
      const queued: number[] = [];
      const waits: { data: number; ret: number; at: number }[] = [];
      const r = run(params, seed, (m) => watchWaits(m, queued, waits));
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(queued).toEqual([...queued].sort((a, b) => a - b));
      expect(waits.every((w) => w.ret === 0)).toBe(true);
    }
  });

  it('before the fix (the race’s patch): values taken outside iommu->lock reach the buffer out of order, and a wait for the higher one times out', async () => {
    const params = scenarioParams(await loadScenarioFile(RACE));
    let outOfOrder = 0;
    let timedOut = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const queued: number[] = [];
      const waits: { data: number; ret: number; at: number }[] = [];
      const r = run(params, seed, (m) => watchWaits(m, queued, waits));
      const sorted = queued.join() === [...queued].sort((a, b) => a - b).join();
      if (!sorted) outOfOrder++;
      const late = waits.filter((w) => w.ret < 0);
      // A time-out only ever follows an inversion: the wait's value was queued before a lower one, stored last.
      if (late.length > 0) {
        timedOut++;
        expect(sorted).toBe(false);
        expect(r.findings.map((f) => f.kind)).toEqual(late.map(() => 'printk'));
      } else expect(r.findings).toEqual([]);
    }
    expect(outOfOrder).toBeGreaterThan(0);
    expect(timedOut).toBeGreaterThan(0);
  });
});

describe('iommu_completion_wait: need_sync read without iommu->lock (mainline) — races/000-amd-need-sync-skip.yaml', () => {
  const SKIP = 'races/000-amd-need-sync-skip.yaml';
  const SEEDS = 400;

  /**
   * The calls of iommu_completion_wait that returned while an invalidation their own task had queued was still
   * ahead of the command buffer's head (the hardware had not run it): the task's tail after each invalidation it
   * queued, compared with the head when its completion wait returns.
   */
  function watchEarlyReturns(m: Model, early: number[]): void {
    const amd = m.k.struct(AMD_IOMMU);
    const queuedTo = new Map<KTask, number>();
    m.k.fns.wrap(
      '__iommu_queue_command_sync',
      (orig) => (t: KTask, iommu: UnitDriver, cmd: IommuCmd, sync: boolean, e) => {
        const ret = orig(t, iommu, cmd, sync, e);
        if (sync) queuedTo.set(t, amd.cmd_tail.get((iommu.unit as AmdIommu).amd_iommu));
        return ret;
      },
      'test',
    );
    m.k.fns.wrap(
      'iommu_completion_wait',
      (orig) =>
        function* (t: KTask, iommu: UnitDriver): KGen<number> {
          const ret = yield* orig(t, iommu);
          const head = amd.cmd_head.get((iommu.unit as AmdIommu).amd_iommu);
          if (head < (queuedTo.get(t) ?? 0)) early.push(m.k.now());
          return ret;
        },
      'test',
    );
  }

  it('mainline: a CPU that reads need_sync clear after another CPU’s COMPLETION_WAIT returns with its invalidations unrun, and the munmap frees a frame AMD-Vi0 still caches', async () => {
    const params = scenarioParams(await loadScenarioFile(SKIP));
    let shown = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const early: number[] = [];
      const r = run(params, seed, (m) => watchEarlyReturns(m, early));
      const kinds = r.findings.map((f) => f.kind);
      if (kinds.length === 0) continue;
      shown++;
      expect(kinds).toEqual(['stale_translation']);
      // INVALIDATE_IOTLB_PAGES is the CPU's last command: whatever else the hardware ran, the ATC entry is left.
      expect(r.findings[0]?.text).toMatch(/0000:01:00\.0 ATC: \{PASID \d+, vpn 0\}/);
      // A stale translation only ever follows a completion wait that returned before its own invalidations ran.
      expect(early.length).toBeGreaterThan(0);
    }
    expect(shown).toBeGreaterThan(0);
  }, 60_000);

  it('the race’s fix (wait for the newest COMPLETION_WAIT when need_sync reads clear): no wait returns early, nothing found, on the same seeds', async () => {
    const params = scenarioParams(await loadScenarioFile(SKIP), true);
    for (let seed = 1; seed <= SEEDS; seed++) {
      const early: number[] = [];
      const r = run(params, seed, (m) => watchEarlyReturns(m, early));
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(early).toEqual([]);
    }
  }, 60_000);
});
