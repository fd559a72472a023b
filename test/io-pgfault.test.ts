// io-pgfault.c on the one model: every page request with "last" set is answered exactly once — by the group's
// work, by iopf_queue_remove_device, by the page-request thread when the report fails (no fault param, no
// domain), or by the hardware when its queue is full — and the page-response oracle catches a planted mistake
// (a removal that answers without taking the fault off the list: the work answers it again; one that drops the
// pending faults without answering them).
import { describe, expect, it } from 'vitest';
import { devIommu, FP, IOPF_GROUP_IDS, type IopfFault, type IopfQueue, lockOf } from '../src/core/io-pgfault.js';
import type { DeviceInfo } from '../src/core/types.js';
import { RESP_INVALID } from '../src/core/types.js';
import type { KTask } from '../src/kernel/context.js';
import { EINVAL } from '../src/kernel/errno.js';
import type { KGen } from '../src/kernel/kernel.js';
import { mutex_lock, mutex_unlock } from '../src/kernel/mutex.js';
import { objLoad, objStore } from '../src/kernel/slab.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

type Model = ReturnType<typeof buildSva>['model'];

function once(params: Record<string, Wire>, seed: number, patch?: (m: Model) => void) {
  const built = buildSva(params);
  patch?.(built.model);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
}

/** Unbinds with page requests in flight and no drain: the last detach's iopf_queue_remove_device meets pending work. */
const INFLIGHT = { iommus: 'smmuv3', processes: 1, script: 'unbind-inflight', dmas: 6, teardown: 'at-once', users: 'refcounted', iopf: 'attach' };

/** Count what a run's reports returned: 0 (taken) or -errno (the page-request thread answers). */
function countReports(m: Model, out: { ok: number; failed: number; removes: number }): void {
  m.k.fns.wrap(
    'iommu_report_device_fault',
    (orig) =>
      function* (t, dev, evt) {
        const r = yield* orig(t, dev, evt);
        if (r === 0) out.ok++;
        else out.failed++;
        return r;
      },
    'test',
  );
  m.k.fns.wrap(
    'iopf_queue_remove_device',
    (orig) =>
      function* (t, queue, dev) {
        out.removes++;
        yield* orig(t, queue, dev);
      },
    'test',
  );
}

/**
 * A mistaken iopf_queue_remove_device (a patch under review): the pending faults are answered but stay on the
 * list (`unlist` false), or are taken off it unanswered (`answer` false); the param is not freed (no UAF to hide
 * the page-response finding).
 */
function mistakenRemove(m: Model, mistake: { answer: boolean; unlist: boolean }): void {
  const k = m.k;
  m.k.fns.replace(
    'iopf_queue_remove_device',
    function* (t: KTask, queue: IopfQueue, dev: DeviceInfo): KGen {
      const d = devIommu(k, dev);
      const fp = Atomics.load(k.i32, d.fault_param.addr());
      if (fp === 0) return;
      yield* mutex_lock(k, t, lockOf(k, fp));
      for (let g = 0; g < IOPF_GROUP_IDS; g++) {
        const pasid1 = yield* k.step(t, 'faults', () => objLoad(k, t, fp, FP.faults + g));
        if (pasid1 === 0) continue;
        if (mistake.answer) yield* queue.page_response(t, dev, pasid1 - 1, g, RESP_INVALID);
        if (mistake.unlist) yield* k.step(t, 'list_del', () => objStore(k, t, fp, FP.faults + g, 0));
      }
      yield* mutex_unlock(k, t, lockOf(k, fp));
    },
    'test',
  );
}

describe('io-pgfault.c: every last page request answered exactly once', () => {
  it('unbinds racing page requests: answered by the work, by iopf_queue_remove_device or by the thread, never twice', () => {
    const seen = { ok: 0, failed: 0, removes: 0 };
    for (let seed = 1; seed <= 40; seed++) {
      const r = once(INFLIGHT, seed, (m) => countReports(m, seen));
      expect(r.findings.map((f) => f.title)).toEqual([]);
    }
    // Both paths ran: groups handed to the SVA domain, and reports that failed and were answered by the thread.
    expect(seen.ok).toBeGreaterThan(0);
    expect(seen.failed).toBeGreaterThan(0);
    expect(seen.removes).toBe(40);
  });

  it('every flavour, two processes sharing a device, a page request queue that overflows: no finding', () => {
    let auto = 0;
    for (const iommus of ['vtd', 'amd', 'smmuv3']) {
      for (let seed = 1; seed <= 4; seed++) {
        const r = once({ iommus, processes: 2, script: 'unbind-inflight', dmas: 8, prqDepth: 2 }, seed);
        expect(r.findings.map((f) => `${iommus}: ${f.title}`)).toEqual([]);
        const c = r.check.counters;
        // Every group answered, by a page response command or — the queue full — by the hardware itself.
        auto += (c.page_request_groups ?? 0) - (c.page_responses ?? 0);
      }
    }
    expect(auto).toBeGreaterThan(0);
  });

  it('a removal that answers pending faults but leaves them listed: the work answers again, and the oracle says so', () => {
    const titles: string[] = [];
    for (let seed = 1; seed <= 200 && titles.length === 0; seed++) {
      titles.push(...once(INFLIGHT, seed, (m) => mistakenRemove(m, { answer: true, unlist: false })).findings.map((f) => f.title));
    }
    expect(titles[0]).toMatch(/^iommu-sim: page response for 0000:\S+ PASID \d+ group \d+, which has no outstanding request$/);
  });

  it('a removal that drops pending faults unanswered: the group is never answered, and the oracle says so', () => {
    const found: string[] = [];
    for (let seed = 1; seed <= 200 && found.length === 0; seed++) {
      const r = once(INFLIGHT, seed, (m) => mistakenRemove(m, { answer: false, unlist: true }));
      found.push(...r.findings.filter((f) => f.kind === 'page_request').map((f) => f.text));
    }
    expect(found[0]).toMatch(/^iommu-sim: \d+ page request groups? never answered\n {2}0000:\S+ PASID \d+ group \d+ \(/);
  });
});

/**
 * iommu_report_device_fault between 3dfa64aecbaf and fca5b78511e9 ("iommu: Restore lost return in
 * iommu_report_device_fault()"): a request that is not the last joins the partial list, drops its reference of
 * the param — and goes on to be handled as its group's last (races/patches/iopf-report-lost-return.cjs).
 */
function lostReturn(m: Model): void {
  const { fn } = m.k;
  m.k.fns.replace(
    'iommu_report_device_fault',
    function* (t: KTask, dev: DeviceInfo, evt: IopfFault): KGen<number> {
      const fp = yield* fn.iopf_get_dev_fault_param(t, dev);
      if (fp === 0) return -EINVAL;
      if (!evt.last) {
        yield* fn.report_partial_fault(t, fp, evt);
        yield* fn.iopf_put_dev_fault_param(t, fp);
      }
      const ret = yield* fn.iopf_report_last_fault(t, dev, evt, fp);
      if (ret < 0) yield* fn.iopf_put_dev_fault_param(t, fp);
      return ret;
    },
    'test',
  );
}

/** Count the report's two halves, by name: requests that are not the last, and last ones. */
function countHalves(m: Model, out: { partial: number; last: number }): void {
  m.k.fns.wrap(
    'report_partial_fault',
    (orig) =>
      function* (t, fp, evt) {
        out.partial++;
        yield* orig(t, fp, evt);
      },
    'test',
  );
  m.k.fns.wrap(
    'iopf_report_last_fault',
    (orig) =>
      function* (t, dev, evt, fp) {
        out.last++;
        return yield* orig(t, dev, evt, fp);
      },
    'test',
  );
}

/** The shipped race's model, fixed (mainline's report, no patch): writes of a VT-d device to zapped pages. */
const WRITES_TO_ZAPPED = async () => scenarioParams(await loadScenarioFile('races/io-pgfault-fca5b78511e9-partial-fault-lost-return.yaml'), true);

describe('io-pgfault.c: a request that is not the last of its group', () => {
  it('joins the partial list and is not answered: its group is, once, with its last request', async () => {
    const params = await WRITES_TO_ZAPPED();
    const seen = { partial: 0, last: 0 };
    for (let seed = 1; seed <= 10; seed++) {
      const r = once(params, seed, (m) => countHalves(m, seen));
      expect(r.findings.map((f) => f.title)).toEqual([]);
    }
    // The devices' writes to pages not mapped yet ask for read access first: partial requests were reported.
    expect(seen.partial).toBeGreaterThan(0);
    expect(seen.last).toBeGreaterThan(0);
  });

  it('handled as a group when the report does not return after it (before fca5b78511e9): the checkers find it', async () => {
    const params = await WRITES_TO_ZAPPED();
    const first: string[] = [];
    for (let seed = 1; seed <= 10; seed++) first.push(once(params, seed, lostReturn).findings[0]?.kind ?? 'none');
    // Each run's first report: its group answered before its last request (the io-pgfault oracle), or its param
    // freed by the report's extra put while still published, and read again (KASAN), read under RCU (rcu) or put
    // once more (refcount).
    expect(first.filter((k) => !['page_request', 'kasan', 'rcu', 'refcount'].includes(k))).toEqual([]);
    expect(first).toContain('kasan');
  });
});
