// I/O page faults on the Arm SMMUv3 as mainline takes them (arm-smmu-v3.c): a master that can stall has its faulting
// transaction stalled — an F_TRANSLATION record with STALL and a tag in the event queue —, arm_smmu_evtq_thread
// hands it to arm_smmu_handle_event → iommu_report_device_fault → io-pgfault, and the answer is a CMD_RESUME with
// the tag (RETRY on success: the transaction is translated again; ABORT otherwise). A PCIe page request on the
// PRIQ is not supported for SVA (the PRI series was never merged): arm_smmu_handle_ppr prints "unexpected PRI
// request received" and answers CMD_PRI_RESP with PRI_RESP_DENY. Deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import type { DeviceInfo } from '../src/core/types.js';
import {
  arm_smmu_cmdq_build_cmd,
  CMDQ_OP_PRI_RESP,
  CMDQ_OP_RESUME,
  CMDQ_RESUME_0_RESP_ABORT,
  CMDQ_RESUME_0_RESP_RETRY,
  type CmdqEnt,
  decodeCmd,
  PRI_RESP_DENY,
} from '../src/hw/arm-smmu-v3/arm-smmu-v3.h.js';
import type { ArmSmmuUnit } from '../src/hw/arm-smmu-v3/hw.js';
import type { KTask } from '../src/kernel/context.js';
import { ENODEV } from '../src/kernel/errno.js';
import type { KGen } from '../src/kernel/kernel.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

type Model = ReturnType<typeof buildSva>['model'];

function run(params: Record<string, Wire>, seed: number, patch?: (m: Model) => void) {
  const b = buildSva(params);
  patch?.(b.model);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { r: runDeterministic({ workload: b.workload, seed, scheduler: s, keepGoing: true }), model: b.model };
}

/** Record each call of `names` (and the commands each command list carries), in order, by wrapping them by name. */
function record(m: Model, names: readonly string[], log: string[]): void {
  for (const name of names) {
    m.k.fns.wrap(
      name as 'arm_smmu_handle_event',
      (orig) =>
        function* (...args: unknown[]) {
          log.push(name);
          return yield* (orig as (...a: unknown[]) => KGen<unknown>)(...args);
        } as never,
      'test',
    );
  }
  m.k.fns.wrap(
    'arm_smmu_cmdq_issue_cmdlist',
    (orig) =>
      function* (t, smmu, cmds: readonly CmdqEnt[], sync) {
        for (const c of cmds) if (c.opcode === CMDQ_OP_RESUME || c.opcode === CMDQ_OP_PRI_RESP) log.push(JSON.stringify(c));
        yield* orig(t, smmu, cmds, sync);
      },
    'test',
  );
}

describe('CMD_RESUME and CMD_PRI_RESP as arm_smmu_cmdq_build_cmd encodes them', () => {
  it('RESUME carries the StreamID, the tag and the response; PRI_RESP the group and its code', () => {
    const resume: CmdqEnt = { opcode: CMDQ_OP_RESUME, sid: 3, stag: 0x2a, resp: CMDQ_RESUME_0_RESP_ABORT };
    expect(decodeCmd(...arm_smmu_cmdq_build_cmd(resume))).toEqual(resume);
    const pri: CmdqEnt = { opcode: CMDQ_OP_PRI_RESP, sid: 1, ssid: 5, grpid: 7, resp: PRI_RESP_DENY };
    expect(decodeCmd(...arm_smmu_cmdq_build_cmd(pri))).toEqual(pri);
  });
});

describe('stall: the event queue → arm_smmu_handle_event → iommu_report_device_fault → CMD_RESUME', () => {
  const FAULTS = { iommus: 'smmuv3', processes: 2, script: 'life', dmas: 6 };

  it('each fault stalls and is resumed once (RETRY when resolved); no page request reaches the PRIQ', () => {
    for (const seed of [1, 2, 3, 4]) {
      const log: string[] = [];
      const { r, model } = run(FAULTS, seed, (m) => record(m, ['arm_smmu_handle_event', 'iommu_report_device_fault', 'arm_smmu_page_response', 'arm_smmu_handle_ppr'], log));
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const c = r.check.counters;
      // Each stall is a group of one request for the core, answered by one CMD_RESUME.
      expect(c.page_request_groups).toBeGreaterThan(0);
      expect(c.page_requests).toBe(c.page_request_groups);
      expect(c.page_responses).toBe(c.page_request_groups);
      const resumes = log.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CmdqEnt);
      expect(resumes.length).toBe(c.page_responses);
      expect(resumes.every((x) => x.opcode === CMDQ_OP_RESUME)).toBe(true);
      expect(resumes.some((x) => x.opcode === CMDQ_OP_RESUME && x.resp === CMDQ_RESUME_0_RESP_RETRY)).toBe(true);
      // Every fault the core got came from the event thread's handler; the PRIQ saw nothing.
      expect(log.filter((n) => n === 'iommu_report_device_fault').length).toBe(log.filter((n) => n === 'arm_smmu_handle_event').length);
      expect(log).not.toContain('arm_smmu_handle_ppr');
      // Nothing printed: every event was a stall the core took.
      expect((model.units[0] as ArmSmmuUnit).log).toEqual([]);
      const text = r.trace.toText();
      expect(text).toContain('arm_smmu_evtq_thread/smmu0 <- task: evtq: queue_remove_raw');
      expect(text).toContain('cmdq: CMD_RESUME');
    }
  });

  it('a stall the core does not take is aborted ("Nobody cared, abort the access"): CMD_RESUME ABORT, the DMA fails, the event printed', () => {
    const log: string[] = [];
    const { r, model } = run(FAULTS, 1, (m) => {
      record(m, ['arm_smmu_page_response'], log);
      // The core refuses every fault (as it does for a device with no iopf param).
      m.k.fns.replace(
        'iommu_report_device_fault',
        function* (t: KTask) {
          yield* m.k.step(t, 'iommu_report_device_fault: no fault param', () => undefined);
          return -ENODEV;
        },
        'test: no iopf',
      );
    });
    const resumes = log.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as CmdqEnt);
    expect(resumes.length).toBeGreaterThan(0);
    expect(resumes.every((x) => x.opcode === CMDQ_OP_RESUME && x.resp === CMDQ_RESUME_0_RESP_ABORT)).toBe(true);
    expect(r.check.counters.dma_faults).toBeGreaterThan(0);
    expect((model.units[0] as ArmSmmuUnit).log.some((l) => /^arm-smmu-v3 smmu0: event: F_TRANSLATION client: \S+ sid: 0 ssid: 0x1 iova: 0x[\da-f]+ ipa: 0$/.test(l))).toBe(true);
  });
});

describe('PRI: arm_smmu_handle_ppr denies (mainline has no PRI for SVA)', () => {
  it('a page request on the PRIQ is printed as unexpected and answered CMD_PRI_RESP with PRI_RESP_DENY', () => {
    const log: string[] = [];
    const b = buildSva({ iommus: 'smmuv3', processes: 0, devices: 1 });
    const m = b.model;
    record(m, ['arm_smmu_handle_ppr'], log);
    const dev = m.infos[0] as DeviceInfo;
    const u = m.units[0] as ArmSmmuUnit;
    m.k.task('pri', 'process', function* (t) {
      yield* m.boot.wait(t);
      // The device's PCIe page request, as a device with PRI enabled would send it (the SMMU's PRIQ takes it).
      yield* m.k.step(t, 'device: Page Request', (e) => e.send(u.actor, { type: 'pr', dev: dev.index, pasid: 1, vpn: 5, w: 1, grp: 3, last: 1 }));
    });
    const s = new RandomScheduler(1);
    s.newExecution();
    const r = runDeterministic({ workload: { ...b.workload, initialTasks: [m.boot.task, { task: 'pri', args: null, name: 'pri' }] }, seed: 1, scheduler: s, keepGoing: true });
    expect(r.findings.map((f) => f.title)).toEqual([]);
    expect(log).toEqual(['arm_smmu_handle_ppr', JSON.stringify({ opcode: CMDQ_OP_PRI_RESP, sid: dev.index, ssid: 1, grpid: 3, resp: PRI_RESP_DENY })]);
    expect(u.log).toEqual([
      'arm-smmu-v3 smmu0: unexpected PRI request received:',
      `arm-smmu-v3 smmu0: \tsid 0x${dev.index.toString(16).padStart(8, '0')}.0x00001: [3L] unprivileged RW access at iova 0x0000000000005000`,
    ]);
  });
});
