// The Arm SMMUv3 at the fidelity of arm-smmu-v3.c / -sva.c (issue #17, deliverable 3): the unbind's invalidation
// sequence in mainline's order (arm_smmu_blocking_set_dev_pasid: the CD cleared by the entry writer — qword 0 first,
// CFGI_CD + CMD_SYNC, then the rest, CFGI_CD + CMD_SYNC —, arm_smmu_atc_inv_master's ATC_INV + CMD_SYNC, then the
// ASID's TLBI), the bind's hitless install (TTB0 before V), a two-level CD table whose leaf the driver allocates on
// the first PASID that needs it (the SMMU raising C_BAD_SUBSTREAMID before, C_BAD_CD once the CD is cleared, both
// printed by arm_smmu_evtq_thread in the driver's words), a linear table for a device with few SSIDs, and
// F_TRANSLATION for a device without ATS. Deterministic runtime, fixed seeds; the sequences are one task's, the
// same on every schedule.
import { describe, expect, it } from 'vitest';
import type { DeviceInfo } from '../src/core/types.js';
import { CTXDESC_CD_0_V, STRTAB_STE_0_S1FMT_64K_L2, STRTAB_STE_0_S1FMT_LINEAR } from '../src/hw/arm-smmu-v3/arm-smmu-v3.h.js';
import { ArmSmmuUnit } from '../src/hw/arm-smmu-v3/hw.js';
import type { CmdqEnt } from '../src/hw/arm-smmu-v3/arm-smmu-v3.h.js';
import { CMDQ_OP_NAMES } from '../src/hw/arm-smmu-v3/arm-smmu-v3.h.js';
import type { KTask } from '../src/kernel/context.js';
import { errname } from '../src/kernel/errno.js';
import type { Kernel, KGen } from '../src/kernel/kernel.js';
import { mm_init, ownerOf } from '../src/kernel/mm/mm.js';
import { alloc_page } from '../src/kernel/mm/physmem.js';
import { do_mmap } from '../src/kernel/mm/pagetable.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildDomains, type DomainsModel } from '../src/workloads/domains.js';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';

const titles = (r: RunResult): string[] => r.findings.map((f) => f.title);

function runOnce(workload: Parameters<typeof runDeterministic>[0]['workload'], seed: number): RunResult {
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload, seed, scheduler: s, keepGoing: true });
}

function smmu(units: readonly unknown[], dev: DeviceInfo): ArmSmmuUnit {
  const u = units[dev.iommu];
  if (!(u instanceof ArmSmmuUnit)) throw new Error('not an SMMUv3');
  return u;
}

/** Record, per task, each call of the named kernel functions and each command list with the CD it concerns. */
function recorder(k: Kernel, units: readonly unknown[], dev: () => DeviceInfo, pasid: () => number, names: readonly string[]) {
  const log = new Map<number, string[]>();
  const push = (t: KTask, s: string) => {
    const l = log.get(t.id) ?? [];
    log.set(t.id, [...l, s]);
  };
  for (const n of names) {
    k.fns.wrap(
      n as 'arm_smmu_clear_cd',
      (orig) =>
        function* (t: KTask, ...args: never[]): KGen {
          push(t, n);
          return yield* (orig as (t: KTask, ...a: never[]) => KGen)(t, ...args);
        } as never,
      'test',
    );
  }
  k.fns.wrap(
    'arm_smmu_cmdq_issue_cmdlist',
    (orig) =>
      function* (t, smmuIndex, cmds: readonly CmdqEnt[], sync) {
        const cd = smmu(units, dev()).entry(dev().index, pasid());
        const names = cmds.map((c) => CMDQ_OP_NAMES[c.opcode] + ('leaf' in c && !c.leaf ? '(leaf=0)' : ''));
        if (sync) names.push('CMD_SYNC');
        const state = cmds.some((c) => c.opcode === 0x5) ? ` [V=${((cd[0] as number) & CTXDESC_CD_0_V) !== 0 ? 1 : 0} TTB0=${cd[2] === 0 ? 0 : 'mm'}]` : '';
        push(t, names.join('+') + state);
        yield* orig(t, smmuIndex, cmds, sync);
      },
    'test',
  );
  return log;
}

/** The part of a task's log from the first call of `from` to the first of `to` (excluded). */
function slice(log: Map<number, string[]>, from: string, to?: string): string[] {
  for (const l of log.values()) {
    const i = l.indexOf(from);
    if (i < 0) continue;
    const j = to === undefined ? -1 : l.indexOf(to, i + 1);
    return l.slice(i, j < 0 ? undefined : j);
  }
  return [];
}

describe('arm-smmu-v3: bind and unbind, the commands in the kernel order', () => {
  const FNS = [
    'arm_smmu_sva_set_dev_pasid',
    'arm_smmu_alloc_cd_ptr',
    'arm_smmu_write_cd_entry',
    'arm_smmu_blocking_set_dev_pasid',
    'arm_smmu_clear_cd',
    'arm_smmu_atc_inv_master',
    'arm_smmu_tlb_inv_asid',
  ];
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: the bind installs TTB0 then V (hitless, a CFGI_CD + CMD_SYNC after each); the unbind clears V, then the rest, then ATC_INV, then TLBI by ASID`, () => {
      const steps = [[{ op: 'bind' }, { op: 'dma', n: 1 }, { op: 'unbind' }, { op: 'exit' }]];
      const b = buildSva({ iommus: 'smmuv3', processes: 1, steps: JSON.stringify(steps) });
      const m = b.model;
      const dev = (): DeviceInfo => m.infos[0] as DeviceInfo;
      const log = recorder(m.k, m.units, dev, () => 1, FNS);
      const r = runOnce(b.workload, seed);
      expect(titles(r)).toEqual([]);
      expect(smmu(m.units, dev()).cdTableCfg(0).s1fmt).toBe(STRTAB_STE_0_S1FMT_64K_L2);
      // arm_smmu_set_pasid: the leaf on demand (its L1 descriptor synced: "An invalid L1CD can be cached"), then
      // arm_smmu_write_entry's hitless update — the unused qwords (TTB0, MAIR) with V still clear, then qword 0.
      expect(slice(log, 'arm_smmu_sva_set_dev_pasid', 'arm_smmu_blocking_set_dev_pasid')).toEqual([
        'arm_smmu_sva_set_dev_pasid',
        'arm_smmu_alloc_cd_ptr',
        'CMD_CFGI_CD(leaf=0)+CMD_SYNC [V=0 TTB0=0]',
        'arm_smmu_write_cd_entry',
        'CMD_CFGI_CD+CMD_SYNC [V=0 TTB0=mm]',
        'CMD_CFGI_CD+CMD_SYNC [V=1 TTB0=mm]',
      ]);
      // arm_smmu_blocking_set_dev_pasid → arm_smmu_clear_cd (qword 0 first: the SMMU stops using the CD; then
      // what the target no longer uses), arm_smmu_atc_inv_master, then the ASID's TLB entries.
      expect(slice(log, 'arm_smmu_blocking_set_dev_pasid')).toEqual([
        'arm_smmu_blocking_set_dev_pasid',
        'arm_smmu_clear_cd',
        'arm_smmu_write_cd_entry',
        'CMD_CFGI_CD+CMD_SYNC [V=0 TTB0=mm]',
        'CMD_CFGI_CD+CMD_SYNC [V=0 TTB0=0]',
        'arm_smmu_atc_inv_master',
        'CMD_ATC_INV+CMD_SYNC',
        'arm_smmu_tlb_inv_asid',
        'CMD_TLBI_NH_ASID+CMD_SYNC',
      ]);
    });
  }
});

/** One task running `body` on the domains preset's model once kernel_init configured the hardware. */
function withDomains(params: Record<string, Wire>, body: (m: DomainsModel, t: KTask) => KGen, noAts = false): RunResult {
  const { model, workload } = buildDomains({ script: 'bench', iommus: 'smmuv3', ...params });
  if (noAts) (model.devices[0]?.caps as { ats: boolean }).ats = false;
  model.k.task('test', 'process', function* (t) {
    yield* model.model.boot.wait(t);
    for (const mm of model.mms) {
      yield* mm_init(model.k, t, mm);
      yield* do_mmap(model.k, t, mm, 0, mm.pages, true);
    }
    yield* body(model, t);
  });
  const w = { ...workload, initialTasks: [model.model.boot.task, { task: 'test', args: null, name: 'test' }] };
  return runOnce(w, 1);
}

/** A paging domain with a page of its own I/O page table mapped at IOVA 0. */
function* pagingDomain(m: DomainsModel, t: KTask): KGen<number> {
  const a = yield* m.domains.alloc(t, 'paging', 0);
  if (a.err !== 0) throw new Error(a.why);
  const table = m.domains.handle(a.dom).mm;
  if (table) yield* m.domains.map(t, a.dom, 0, yield* alloc_page(m.k, t, m.model.pm, ownerOf(table)), true);
  return a.dom;
}

/** Count arm_smmu_sync_cd(…, leaf=false): the L1 descriptor of a newly allocated leaf. */
function countL1Syncs(k: Kernel): { n: number } {
  const c = { n: 0 };
  k.fns.wrap(
    'arm_smmu_sync_cd',
    (orig) =>
      function* (t, dev, ssid, leaf) {
        if (!leaf) c.n++;
        yield* orig(t, dev, ssid, leaf);
      },
    'test',
  );
  return c;
}

describe('arm-smmu-v3: context-descriptor tables and the event queue', () => {
  it('two-level: the leaf of a PASID is allocated on its first attach; before it C_BAD_SUBSTREAMID, after its CD is cleared C_BAD_CD', () => {
    const seen: string[] = [];
    let unit: ArmSmmuUnit | undefined;
    let l1 = { n: 0 };
    const r = withDomains({ pasidBits: 6 }, function* (m, t) {
      if (l1.n === 0 && seen.length === 0) l1 = countL1Syncs(m.k);
      const dev = m.devices[0] as DeviceInfo;
      const u = smmu(m.model.units, dev);
      unit = u;
      const l1Valid = (): number => (m.k.i32[u.l1DescAddr(dev.index, 40)] as number) & 1;
      seen.push(`fmt ${u.cdTableCfg(dev.index).s1fmt}`, `l1 ${l1Valid()}`);
      seen.push(`dma ${yield* m.model.dmaWrite(t, dev, 40, 0, 0)}`);
      const a = yield* pagingDomain(m, t);
      const b = yield* pagingDomain(m, t);
      seen.push(`attach ${errname(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 40))}`, `l1 ${l1Valid()}`, `leaves ${l1.n}`);
      seen.push(`dma ${yield* m.model.dmaWrite(t, dev, 40, 0, 0)}`);
      // PASID 41 shares PASID 40's leaf (1 << CTXDESC_SPLIT CDs a leaf): no second allocation.
      seen.push(`attach ${errname(yield* m.groups.iommu_attach_device_pasid(t, b, dev, 41))}`, `leaves ${l1.n}`);
      yield* m.groups.iommu_detach_device_pasid(t, a, dev, 40);
      yield* m.groups.iommu_detach_device_pasid(t, b, dev, 41);
      seen.push(`dma ${yield* m.model.dmaWrite(t, dev, 40, 0, 0)}`);
      yield* m.domains.free(t, a);
      yield* m.domains.free(t, b);
    });
    expect(titles(r)).toEqual([]);
    expect(seen).toEqual([`fmt ${STRTAB_STE_0_S1FMT_64K_L2}`, 'l1 0', 'dma false', 'attach 0', 'l1 1', 'leaves 1', 'dma true', 'attach 0', 'leaves 1', 'dma false']);
    const log = unit?.log ?? [];
    const events = log.filter((l) => l.includes('event: '));
    expect(events).toEqual([
      expect.stringMatching(/^arm-smmu-v3 smmu0: event: C_BAD_SUBSTREAMID client: \S+ sid: 0 ssid: 0x28$/),
      expect.stringMatching(/^arm-smmu-v3 smmu0: event: C_BAD_CD client: \S+ sid: 0 ssid: 0x28$/),
    ]);
    expect(log[0]).toBe('arm-smmu-v3 smmu0: event 0x08 received:');
    expect(log).toContain('arm-smmu-v3 smmu0: event 0x0a received:');
    // The raw record as the thread dumps it: EVTQ_0_ID 0x0a, SSV, SSID 0x28 in data[0].
    expect(log).toContain('arm-smmu-v3 smmu0: \t0x000000000002880a');
  });

  it('linear: a device with few SSIDs gets a linear CD table, no leaf to allocate', () => {
    const seen: string[] = [];
    let l1 = { n: -1 };
    const r = withDomains({ pasidBits: 4 }, function* (m, t) {
      if (l1.n < 0) l1 = countL1Syncs(m.k);
      const dev = m.devices[0] as DeviceInfo;
      const u = smmu(m.model.units, dev);
      const a = yield* pagingDomain(m, t);
      seen.push(`fmt ${u.cdTableCfg(dev.index).s1fmt}`, `attach ${errname(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 3))}`);
      seen.push(`dma ${yield* m.model.dmaWrite(t, dev, 3, 0, 0)}`, `leaves ${l1.n}`);
      yield* m.groups.iommu_detach_device_pasid(t, a, dev, 3);
      yield* m.domains.free(t, a);
    });
    expect(titles(r)).toEqual([]);
    expect(seen).toEqual([`fmt ${STRTAB_STE_0_S1FMT_LINEAR}`, 'attach 0', 'dma true', 'leaves 0']);
  });

  it('a device without ATS: a DMA to an unmapped IOVA is terminated and recorded as F_TRANSLATION', () => {
    let unit: ArmSmmuUnit | undefined;
    const got: boolean[] = [];
    // The domains preset has no `caps` parameter: its first device is one without ATS from the start of the run.
    const r = withDomains({ pasidBits: 4 }, function* (m, t) {
      const dev = m.devices[0] as DeviceInfo;
      unit = smmu(m.model.units, dev);
      const a = yield* pagingDomain(m, t);
      expect(yield* m.groups.iommu_attach_device_pasid(t, a, dev, 2)).toBe(0);
      got.push(yield* m.model.dmaWrite(t, dev, 2, 0, 0), yield* m.model.dmaWrite(t, dev, 2, 3, 0));
      yield* m.groups.iommu_detach_device_pasid(t, a, dev, 2);
      yield* m.domains.free(t, a);
    }, true);
    expect(titles(r)).toEqual([]);
    expect(got).toEqual([true, false]);
    expect((unit?.log ?? []).filter((l) => l.includes('event: '))).toEqual([
      expect.stringMatching(/^arm-smmu-v3 smmu0: event: F_TRANSLATION client: \S+ sid: 0 ssid: 0x2 iova: 0x3000 ipa: 0$/),
    ]);
  });
});
