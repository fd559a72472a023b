// Leak checks at teardown, in kmemleak's words: a planted leak of each kind is reported — a bond never unbound
// (and the MMU notifier subscription it keeps), a PASID still allocated to a freed mm, an exited process whose
// mm never reaches exit_mmap, an SVA domain never freed — and clean runs of every process script are not.
import { describe, expect, it } from 'vitest';
import { buildSva, type SvaModel } from '../src/workloads/sva.js';
import '../src/workloads/index.js';
import { buildDomains } from '../src/workloads/domains.js';
import type { BindResult } from '../src/core/iommu-sva.js';
import type { DeviceInfo } from '../src/core/types.js';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { type MmStruct, mm_init, mmget } from '../src/kernel/mm/mm.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';

function once(params: Record<string, Wire>, seed = 1, patch?: (m: SvaModel) => void): RunResult {
  const built = buildSva({ iommus: 'vtd', processes: 1, script: 'life', dmas: 2, ...params });
  patch?.(built.model);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing: true });
}

const leaks = (r: RunResult) => r.findings.filter((f) => f.kind === 'leak');
const KMEMLEAK = /^unreferenced object 0x[0-9a-f]{16} \(size \d+\):$/;

describe('leaks at teardown', () => {
  it('a bond never unbound: its struct iommu_sva, with who bound it and the subscription it keeps', () => {
    const r = once({}, 1, (m) => {
      // The planted mistake: a release() that forgets iommu_sva_unbind_device.
      m.sva.unbind = function* (): KGen {};
    });
    // The bond, and the SVA domain it keeps attached (iommu_sva_domain_alloc, never freed).
    const [l0, dom] = [leaks(r).filter((f) => f.text.includes('struct iommu_sva')), leaks(r).filter((f) => !f.text.includes('struct iommu_sva'))];
    expect(leaks(r).map((f) => f.title)).toHaveLength(2);
    expect(dom[0]?.text).toMatch(/backtrace:\n(.*\n)* {4}iommu_sva_domain_alloc\n/);
    const l = l0;
    expect(l[0]?.title).toMatch(KMEMLEAK);
    expect(l[0]?.text).toMatch(/\n {2}comm "proc0", pid \d+\n/);
    expect(l[0]?.text).toMatch(/backtrace:\n(.*\n)* {4}iommu_sva_bind_device\n/);
    expect(l[0]?.text).toContain('struct iommu_sva of mm/1 on 0000:01:00.0 PASID 1 (users 1) was never unbound; mm/1 is dead');
    expect(l[0]?.text).toContain('MMU notifier subscription 1 is still registered');
  });

  it('a PASID still allocated to a freed mm', () => {
    const r = once({}, 1, (m) => {
      // A patch by kernel name: the PASID is never given back.
      m.k.fns.replace('iommu_free_pasid', function* (): KGen {}, 'test');
    });
    const l = leaks(r).filter((f) => KMEMLEAK.test(f.title));
    expect(l).toHaveLength(1);
    expect(l[0]?.text).toContain('PASID 1 is still allocated to mm/1 (users 1), which has been freed (__mmdrop)');
    expect(l[0]?.text).toMatch(/backtrace:\n(.*\n)* {4}iommu_sva_bind_device\n/);
  });

  it('an exited process whose mm never reaches exit_mmap (an mmget never put)', () => {
    const r = once({}, 1, (m) => {
      const bind = m.sva.bind.bind(m.sva);
      m.sva.bind = function* (t: KTask, dev: DeviceInfo, mm: MmStruct | undefined, flags: number): KGen<BindResult> {
        const b = yield* bind(t, dev, mm, flags);
        if (mm && b.ret > 0) yield* mmget(m.k, t, mm);
        return b;
      };
    });
    const l = leaks(r);
    expect(l).toHaveLength(1);
    expect(l[0]?.title).toMatch(KMEMLEAK);
    expect(l[0]?.text).toContain('proc/0 has exited, yet mm/1 has mm_users 1: it never reaches exit_mmap');
    expect(l[0]?.text).toMatch(/backtrace:\n {4}mm_init\n {4}sys_exec/);
  });

  it('an SVA domain never freed (the groups-and-domains model): kmemleak names the bind that allocated it', () => {
    const { model: m, workload } = buildDomains({ script: 'bench', groups: 1, processes: 1 });
    m.k.task('test', 'process', function* (t) {
      const [d0] = m.devices;
      const [mm] = m.mms;
      if (!d0 || !mm) throw new Error('no device or mm');
      yield* m.model.boot.wait(t);
      yield* mm_init(m.k, t, mm);
      yield* m.k.fn.iommu_sva_bind_device(t, d0, mm, 0);
      // The planted mistake: no iommu_sva_unbind_device.
    });
    const s = new RandomScheduler(1);
    s.newExecution();
    const w = { ...workload, initialTasks: [m.model.boot.task, { task: 'test', args: null, name: 'test' }] };
    const r = runDeterministic({ workload: w, seed: 1, scheduler: s, keepGoing: true });
    const l = leaks(r).filter((f) => KMEMLEAK.test(f.title));
    expect(l.length).toBeGreaterThan(0);
    expect(l.some((f) => /backtrace:\n(.*\n)* {4}iommu_sva_bind_device\n/.test(`${f.text}\n`))).toBe(true);
  });

  it('clean runs of every process script report no leak', () => {
    for (const script of ['life', 'exit', 'unbind-inflight', 'munmap', 'stress', 'random', 'bind-task-exit']) {
      for (let seed = 1; seed <= 4; seed++) {
        const r = once({ processes: 3, devices: 2, iommus: 'vtd,amd', script, rounds: 3 }, seed);
        expect(leaks(r).map((f) => `${script}/${seed}: ${f.title}`)).toEqual([]);
      }
    }
    for (let seed = 1; seed <= 4; seed++) {
      const r = once({ processes: 2, devices: 2, iommus: 'vtd,vtd', wq: 'shared', opens: 2, pasidAlloc: 'system' }, seed);
      expect(leaks(r)).toEqual([]);
    }
  });

  it('a run that leaves a task blocked is judged by its hung task, not by leaks', () => {
    const r = once({ misbehave: 'no-drain', hungTaskSecs: 1 });
    expect([...new Set(r.findings.map((f) => f.kind))]).toEqual(['hung_task']);
  });
});
