// The IOMMU drivers' scheduling points (src/hw: VT-d's QI and PASID table, the SMMUv3's cmdq and CDs, AMD's
// command buffer and PPR log, the PRQ threads and drains, the accelerator driver) declare their footprints: run
// with every declared footprint checked against what its step wrote (checkFootprints), on all three vendors, no
// step writes a word it does not declare, and every performed point of these labels declares one.
import { afterEach, describe, expect, it, vi } from 'vitest';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { Task } from '../src/runtime/task.js';
import { buildWorkload } from '../src/runtime/workloads.js';

/** The drivers' point labels, by what they model. */
const DRIVER_POINTS: Readonly<Record<string, RegExp>> = {
  'VT-d PASID entry writes': /^(pasid_clear_entry(_with_fpd)?: val\[\d\]|pasid_set_\w+)$/,
  intel_pasid_get_entry: /^intel_pasid_get_entry$/,
  'qi_submit_sync queueing': /^QI: (QI_\w+\+)*QI_IWD$/,
  'qi_submit_sync poll': /^(QI_IWD \d+|qi_check_fault: desc_status\[wait_index\]|readl\(iommu->reg \+ DMAR_FSTS_REG\)|reclaim_free_desc)$/,
  'SMMUv3 cmdq': /^(cmdq: .+|CMD_SYNC \d+|cmdq full)$/,
  'SMMUv3 CD writes': /^(WRITE_ONCE\(cdptr->data\[\d\]\)|cd_table->used_ssids(\+\+|--))$/,
  'AMD command buffer': /^(iommu->need_sync|wait_on_sem \d+)$/,
  'AMD GCR3 and DTE': /^(update_gcr3: .+|__get_gcr3_pte: .+|set_dte_entry: .+|clear_dte_entry: .+)$/,
  'AMD PPR log': /^amd_iommu_(poll|restart)_ppr_log: .+$/,
  'PRQ thread': /^(PRQ: page_req_dsc \d+|prq_event_thread: .+|writel\(DMA_PRS_\w+, DMAR_PRS_REG\)|dmar_writeq\(.+\)|readl\(DMAR_PRS_REG\) & DMA_PRS_PRO)$/,
  'drains of page requests': /^drain (PRQ|PPR log|PRI queue) of PASID \d+$/,
  iopf_refcount: /^(info->iopf_refcount(\+\+|--)|--info->iopf_refcount)$/,
  'VT-d invalidation time-out': /^(qi_dump_fault|ITE: desc_status\[head\] = QI_ABORT; writel\(DMA_FSTS_ITE, DMAR_FSTS_REG\))$/,
  'AMD v2 driver (notifier=bond)': /^(get_pasid_state|clear_pasid_state|run_inv_ctx_cb = !pasid_state->invalid|__set_gcr3: .+|__clear_gcr3: .+)$/,
  'accelerator driver': /^(\S+: (enable|stop) PASID \d+|wait for \S+ to drain PASID \d+|uacce->parent|q->handle = handle|uacce_put_queue: q->state|filep->private_data = q)$/,
};

/** Task.perform as it is, spied on by each run. */
const PERFORM = Task.prototype.perform;

interface Tally {
  performed: number;
  undeclared: string[];
}

/** Run a workload with footprints checked; tally the drivers' performed points by kind. */
function run(name: string, params: Readonly<Record<string, Wire>>, seed: number): Map<string, Tally> {
  const tally = new Map<string, Tally>(Object.keys(DRIVER_POINTS).map((k) => [k, { performed: 0, undeclared: [] }]));
  const perform = PERFORM;
  vi.spyOn(Task.prototype, 'perform').mockImplementation(function (this: Task, env) {
    const p = this.pending;
    if (p) {
      for (const [kind, re] of Object.entries(DRIVER_POINTS)) {
        if (!re.test(p.label)) continue;
        const t = tally.get(kind) as Tally;
        t.performed++;
        if (p.footprint === undefined && p.footprintOf === undefined) t.undeclared.push(p.label);
      }
    }
    return perform.call(this, env);
  });
  const sched = new RandomScheduler(seed);
  sched.newExecution();
  try {
    runDeterministic({ workload: buildWorkload(name, params), seed, scheduler: sched, checkFootprints: true });
  } finally {
    vi.restoreAllMocks();
  }
  return tally;
}

afterEach(() => {
  vi.restoreAllMocks();
});

/** No driver point of the run took the fallback lock, and each of `ran` was performed (the run exercises it). */
function expectDeclared(t: Map<string, Tally>, ran: readonly string[]): void {
  for (const [kind, { performed, undeclared }] of t) {
    expect(undeclared, kind).toEqual([]);
    if (ran.includes(kind)) expect(performed, kind).toBeGreaterThan(0);
  }
}

const ERAS = ['VT-d invalidation time-out', 'AMD v2 driver (notifier=bond)'];

describe('the IOMMU drivers declare their points\' footprints', () => {
  it('on VT-d, AMD and SMMUv3 under the sva stress script: no violation, every driver point declared', () => {
    const t = run('sva', { iommus: 'vtd,amd,smmuv3', devices: 3, processes: 6, script: 'stress', dmas: 8, rounds: 4 }, 1);
    expectDeclared(
      t,
      Object.keys(DRIVER_POINTS).filter((k) => !ERAS.includes(k)),
    );
  });

  it('through VT-d\'s invalidation time-outs (a device that never answers) and AMD\'s v2 driver', () => {
    const ite = run('sva', { iommus: 'vtd', devices: 1, processes: 1, teardown: 'drain', script: 'life', dmas: 4, misbehave: 'no-atc-response' }, 1);
    expectDeclared(ite, ['VT-d invalidation time-out', 'qi_submit_sync poll']);
    const v2 = run('sva', { iommus: 'amd', notifier: 'bond', devices: 2, processes: 4, script: 'stress', rounds: 3 }, 1);
    expectDeclared(v2, ['AMD v2 driver (notifier=bond)', 'AMD PPR log']);
  });
});
