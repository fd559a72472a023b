// VT-d's page request queue (drivers/iommu/intel/prq.c, src/hw/intel/prq-dsc.ts): the hardware writes page_req_dsc
// at PQT; when the queue is full it sets DMA_PRS_PRO and refuses every request until software clears it, answering
// the last request of a refused group itself with Success, so that the device retries its translation;
// prq_event_thread reads from PQH, writes PQH once, and clears PRO when the queue is empty ("PRQ overflow
// detected", "PRQ overflow cleared"). Deterministic runtime, fixed seeds.
import { describe, expect, it } from 'vitest';
import type { VtdUnit } from '../src/hw/intel/hw.js';
import { decodePageReq, encodePageReq, pageReqHex } from '../src/hw/intel/prq-dsc.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

function run(params: Record<string, Wire>, seed: number) {
  const b = buildSva(params);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { r: runDeterministic({ workload: b.workload, seed, scheduler: s, keepGoing: true }), unit: b.model.units[0] as VtdUnit };
}

/** A trace line: `STEP  TO <- FROM: WHAT (sent at N)` for a message, `STEP  TASK <- task: LABEL` for a step. */
interface Line {
  readonly step: number;
  readonly to: string;
  readonly from: string;
  readonly what: string;
  readonly sentAt: number;
}

function parse(text: string): Line[] {
  const out: Line[] = [];
  for (const l of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\S+) <- (.+?): (.*?)(?: \(sent at (\d+)\))?$/.exec(l);
    if (m) out.push({ step: Number(m[1]), to: m[2] as string, from: m[3] as string, what: m[4] as string, sentAt: m[5] === undefined ? -1 : Number(m[5]) });
  }
  return out;
}

describe('the PRQ ring (page_req_dsc)', () => {
  it('a descriptor reads back as the hardware wrote it, and prints as handle_bad_prq_event prints it', () => {
    const d = { rid: 0x100, pasid_present: true, pasid: 0x12345, rd_req: true, wr_req: true, lpig: true, prg_index: 0x1a5, addr: 0x123456789 };
    const w = encodePageReq(d);
    expect(decodePageReq(...w)).toEqual(d);
    // qw_0: type 1, pasid_present (bit 8), rid in bits 16-31, PASID in 32-51; qw_1: rd, wr, lpig, prg_index << 3, addr << 12.
    expect(pageReqHex(...w)).toBe('1234501000101 123456789d2f');
  });
});

describe('PRQ overflow: DMA_PRS_PRO (drivers/iommu/intel/prq.c, prq_event_thread)', () => {
  // Two processes, DMAs faulting on pages they have not touched, a PRQ of two descriptors: it fills.
  const SMALL = { iommus: 'vtd', processes: 2, script: 'unbind-inflight', dmas: 8, prqDepth: 2, iopf: 'attach' };

  it('the hardware refuses requests and answers the group Success, the device retries; the thread clears PRO once the queue is empty; no finding', () => {
    let retried = 0;
    for (const seed of [1, 2, 3, 4]) {
      const { r, unit } = run(SMALL, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      const ls = parse(r.trace.toText());
      const at = new Map(ls.map((l) => [l.step, l]));
      // An automatic response: a `prs` the unit sent while taking a page request (a QI response is sent while the
      // unit runs its invalidation queue), followed by the device's retry — an ATS request sent when it got it.
      const auto = ls.filter((l) => l.what === 'prs' && l.from === unit.name && at.get(l.sentAt)?.what === 'pr');
      expect(auto.length).toBeGreaterThan(0);
      const retries = auto.filter((p) => ls.some((l) => l.what === 'ats.req' && l.sentAt === p.step && l.to === unit.name));
      retried += retries.length;
      // The thread's report in the kernel's words: detected, then (once PQH == PQT) cleared, PRO written back.
      const log = ls.filter((l) => l.from === 'task' && l.to === `prq_event_thread/${unit.name}`).map((l) => l.what);
      const detected = log.indexOf(`DMAR: IOMMU: ${unit.name}: PRQ overflow detected`);
      expect(detected).toBeGreaterThanOrEqual(0);
      const clear = log.indexOf('writel(DMA_PRS_PRO, DMAR_PRS_REG)', detected);
      expect(log.slice(detected, clear)).toContain('PRQ overflow: head == tail');
      expect(log[clear + 1]).toBe(`DMAR: IOMMU: ${unit.name}: PRQ overflow cleared`);
      expect(unit.log).toContain(`DMAR: IOMMU: ${unit.name}: PRQ overflow cleared`);
      // At the end nothing is left: PRO clear, PQH == PQT.
      expect(unit.prqOverflowed).toBe(false);
      expect(unit.pqh).toBe(unit.pqt);
    }
    expect(retried).toBeGreaterThan(0);
  });

  it('with a queue that never fills, the hardware never refuses a request', () => {
    const { r, unit } = run({ ...SMALL, prqDepth: 128 }, 1);
    expect(r.findings.map((f) => f.title)).toEqual([]);
    const ls = parse(r.trace.toText());
    const at = new Map(ls.map((l) => [l.step, l]));
    expect(ls.filter((l) => l.what === 'pr').length).toBeGreaterThan(0);
    expect(ls.filter((l) => l.what === 'prs' && at.get(l.sentAt)?.what === 'pr')).toEqual([]);
    expect(unit.log).toEqual([]);
  });
});
