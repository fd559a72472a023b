// Issue #16 deliverable 4 on the one model (the domains preset's VT-d unit and PCI device, a `vmm` actor on
// /dev/iommu): iommufd's attach / replace / detach of a device and of a {device, PASID} with the core's
// semantics; destroy of an attached hw_pagetable refused; a device's page request reaching user space through
// read() of the fault object and its response written back reaching the IOMMU exactly once; detach and replace
// with faults pending answering each exactly once (the io-pgfault oracle stays clean); and the planted
// replace of ba5c0f28a26e found by KASAN, clean with the fix. Deterministic runtime, fixed seeds.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IOMMU_NO_PASID } from '../src/core/iommu.js';
import { loadScenarioFile, scenarioParams, validateScenario } from '../src/scenario/load.js';
import type { ScenarioInput } from '../src/scenario/scenario.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { buildDomains, type DomainsModel } from '../src/workloads/domains.js';
import '../src/workloads/index.js';

type Script = Record<string, unknown[]>;

/** The domains model running `script` (compiled as the CLI does) once under `seed`; the model stays readable. */
function runScript(script: Script, seed = 1, faults: Record<string, string> = {}): { r: RunResult; m: DomainsModel } {
  const v = validateScenario({ name: 't', title: 't', model: 'domains', topology: { processes: 1 }, faults, script } as ScenarioInput, 'test.yaml');
  const { workload, model } = buildDomains(scenarioParams(v));
  const s = new RandomScheduler(seed);
  s.newExecution();
  return { r: runDeterministic({ workload, seed, scheduler: s, keepGoing: true }), m: model };
}

/** Every trace line as `who: label`. */
function lines(r: RunResult): string[] {
  return Array.from({ length: r.trace.length }, (_, i) => {
    const rec = r.trace.record(i);
    return `${r.trace.actorName(rec.actor)}: ${r.trace.eventName(rec.event)}`;
  });
}

/** A scripted actor's step outcomes, without the `vmm/0[3]: ` prefix. */
function outcomes(r: RunResult, actor: string): string[] {
  return lines(r)
    .map((l) => l.slice(l.indexOf(': ') + 2))
    .filter((l) => l.startsWith(`${actor}[`))
    .map((l) => l.slice(l.indexOf(']: ') + 3));
}

/** Page responses that reached the device (its `prs` messages). */
const responses = (r: RunResult): number => lines(r).filter((l) => l.startsWith('dev/') && l.endsWith(': prs')).length;
const titles = (r: RunResult): string[] => r.findings.map((f) => f.title);

/** The VMM's set-up: a device bound, an IOAS, a fault object F, H on F, G without one. */
const SETUP = ['open', { bind: 0 }, { ioas_alloc: 'A' }, { fault_alloc: 'F' }, { hwpt_alloc: { hwpt: 'H', ioas: 'A', dev: 0, fault: 'F' } }, { hwpt_alloc: { hwpt: 'G', ioas: 'A', dev: 0 } }];
const SEEDS = [1, 2, 3];

describe('iommufd attach, replace, detach', () => {
  it('follows the core: the same hwpt again -EBUSY, another -EINVAL, replace of nothing -EINVAL, detach leaves no domain', () => {
    for (const seed of SEEDS) {
      const { r, m } = runScript(
        {
          'vmm/0': [
            ...SETUP,
            { attach: { dev: 0, hwpt: 'H', pasid: 1 } },
            { attach: { dev: 0, hwpt: 'H', pasid: 1 } },
            { attach: { dev: 0, hwpt: 'G', pasid: 1 } },
            { replace: { dev: 0, hwpt: 'G', pasid: 2 } },
            { replace: { dev: 0, hwpt: 'G', pasid: 1 } },
            { detach: { dev: 0, pasid: 1 } },
            { detach: { dev: 0, pasid: 1 } },
            { attach: { dev: 0, hwpt: 'H' } },
            { replace: { dev: 0, hwpt: 'G' } },
            { detach: { dev: 0 } },
            'close',
          ],
        },
        seed,
      );
      expect(outcomes(r, 'vmm/0').slice(6)).toEqual([
        'iommufd_device_attach(0000:00:01.0, H, PASID 1) = 0',
        'iommufd_device_attach(0000:00:01.0, H, PASID 1) = -EBUSY',
        'iommufd_device_attach(0000:00:01.0, G, PASID 1) = -EINVAL',
        'iommufd_device_replace(0000:00:01.0, G, PASID 2) = -EINVAL',
        'iommufd_device_replace(0000:00:01.0, G, PASID 1) = 0',
        'iommufd_device_detach(0000:00:01.0, PASID 1) = 0',
        'iommufd_device_detach(0000:00:01.0, PASID 1) = -EINVAL',
        'iommufd_device_attach(0000:00:01.0, H) = 0',
        'iommufd_device_replace(0000:00:01.0, G) = 0',
        'iommufd_device_detach(0000:00:01.0) = 0',
        'close(iommufd)',
      ]);
      // The core's trail: each attach went through the handle functions by name; nothing is left attached.
      const trail = lines(r).join('\n');
      for (const fn of ['xa_cmpxchg(group->pasid_array[1]', 'xa_erase(group->pasid_array[1])', `xa_cmpxchg(group->pasid_array[${IOMMU_NO_PASID}]`, `xa_erase(group->pasid_array[${IOMMU_NO_PASID}])`]) expect(trail).toContain(fn);
      expect(m.groups.pasidEntries(m.groups.groupOf(m.devices[0] as never))).toEqual([]);
      expect(m.groups.dmaOwner(m.groups.groupOf(m.devices[0] as never))).toBe(0);
      expect(titles(r)).toEqual([]);
    }
  });

  it('refuses to destroy an attached hw_pagetable (-EBUSY), and its IOAS while the hwpt holds it', () => {
    const { r } = runScript({
      'vmm/0': [...SETUP, { attach: { dev: 0, hwpt: 'H', pasid: 1 } }, { destroy: 'H' }, { destroy: 'A' }, { destroy: 'F' }, { detach: { dev: 0, pasid: 1 } }, { destroy: 'H' }, { destroy: 'G' }, { destroy: 'A' }, 'close'],
    });
    expect(outcomes(r, 'vmm/0').slice(7)).toEqual(['IOMMU_DESTROY(H) = -EBUSY', 'IOMMU_DESTROY(A) = -EBUSY', 'IOMMU_DESTROY(F) = -EBUSY', 'iommufd_device_detach(0000:00:01.0, PASID 1) = 0', 'IOMMU_DESTROY(H) = 0', 'IOMMU_DESTROY(G) = 0', 'IOMMU_DESTROY(A) = 0', 'close(iommufd)']);
    expect(titles(r)).toEqual([]);
  });
});

describe('vmm scripts', () => {
  it('refuse a step outside open..close and an object no alloc of the VMM makes, naming the step', () => {
    expect(() => runScript({ 'vmm/0': [{ bind: 0 }, 'open'] })).toThrow('vmm/0[0]: bind: /dev/iommu is not open');
    expect(() => runScript({ 'vmm/0': ['open', 'close', { ioas_alloc: 'A' }] })).toThrow('vmm/0[2]: ioas_alloc: /dev/iommu is not open');
    expect(() => runScript({ 'vmm/0': ['open', { bind: 0 }, { attach: { dev: 0, hwpt: 'H' } }] })).toThrow('vmm/0[2]: attach: no step of vmm/0 allocates H');
    expect(() => validateScenario({ name: 't', title: 't', model: 'domains', script: { 'vmm/0': ['open', { iopf: { dev: 0, pasid: 1 } }] } }, 'x.yaml')).toThrow('script.vmm/0[1]: unknown step "iopf" for a vmm actor');
  });
});

describe('the fault object', () => {
  it('delivers a page request to read() (copy_to_user faulting the buffer in) and its written response reaches the IOMMU once', () => {
    for (const seed of SEEDS) {
      const { r } = runScript(
        {
          'vmm/0': [...SETUP, { munmap: 3 }, { attach: { dev: 0, hwpt: 'H', pasid: 1 } }, { read: { fault: 'F', buf: 3 } }, { respond: 'F' }, { respond: 'F' }, { detach: { dev: 0, pasid: 1 } }, 'close'],
          'drv/0': [{ after: 'vmm/0:7' }, { dma: { dev: 0, pasid: 1 } }],
        },
        seed,
      );
      expect(outcomes(r, 'vmm/0').slice(8, 11)).toEqual(['read(F) = 2 records', 'write(F, cookie 1, invalid) = 0', 'write(F, cookie 0, invalid) = -EINVAL']);
      expect(outcomes(r, 'drv/0')).toEqual(['after vmm/0:7', 'DMA from 0000:00:01.0 PASID 1: faulted']);
      expect(responses(r)).toBe(1);
      // The record's copy_to_user took the page fault on the VMM's mm under mmap_read_lock, fault->mutex held.
      const all = lines(r);
      const read = all.findIndex((l) => l.startsWith('vmm0: xa_alloc(&fault->response'));
      const fault = all.findIndex((l, i) => i > read && l.startsWith('vmm0: handle_mm_fault(mm/1, 3'));
      const unlock = all.findIndex((l, i) => i > read && l === 'vmm0: mutex_unlock(&fault->mutex)');
      expect(read).toBeGreaterThan(0);
      expect(fault).toBeGreaterThan(read);
      expect(unlock).toBeGreaterThan(fault);
      // The page-request thread queues under fault->lock alone: it never waits behind a read's copy_to_user (3d49020a327c).
      expect(all.filter((l) => l.startsWith('prq_event_thread') && l.includes('&fault->')).map((l) => l.slice(l.indexOf(': ') + 2))).toEqual(['spin_lock(&fault->lock)', 'list_add_tail(&group->node, &fault->deliver)', 'spin_unlock(&fault->lock)', 'wake_up(&fault->wait_queue)']);
      expect(titles(r)).toEqual([]);
    }
  });

  it('answers a group read and not answered once, when the device is detached', () => {
    for (const seed of SEEDS) {
      const { r } = runScript(
        {
          'vmm/0': [...SETUP, { attach: { dev: 0, hwpt: 'H', pasid: 1 } }, { read: 'F' }, { detach: { dev: 0, pasid: 1 } }, { respond: 'F' }, 'close'],
          'drv/0': [{ after: 'vmm/0:6' }, { dma: { dev: 0, pasid: 1 } }],
        },
        seed,
      );
      expect(outcomes(r, 'vmm/0').slice(7, 10)).toEqual(['read(F) = 2 records', 'iommufd_device_detach(0000:00:01.0, PASID 1) = 0', 'write(F, cookie 1, invalid) = -EINVAL']);
      expect(outcomes(r, 'drv/0')[1]).toBe('DMA from 0000:00:01.0 PASID 1: faulted');
      expect(responses(r)).toBe(1);
      expect(titles(r)).toEqual([]);
    }
  });

  it('answers a group not yet read once, when the PASID is replaced (by a hwpt without a fault, or with another)', () => {
    for (const seed of SEEDS) {
      for (const to of ['G', 'K']) {
        const { r } = runScript(
          {
            'vmm/0': [...SETUP, { fault_alloc: 'F2' }, { hwpt_alloc: { hwpt: 'K', ioas: 'A', dev: 0, fault: 'F2' } }, { attach: { dev: 0, hwpt: 'H', pasid: 1 } }, { poll: 'F' }, { replace: { dev: 0, hwpt: to, pasid: 1 } }, { read: { fault: 'F', wait: false } }, 'close'],
            'drv/0': [{ after: 'vmm/0:8' }, { dma: { dev: 0, pasid: 1 } }],
          },
          seed,
        );
        expect(outcomes(r, 'vmm/0').slice(9, 12)).toEqual(['poll(F) = POLLIN', `iommufd_device_replace(0000:00:01.0, ${to}, PASID 1) = 0`, 'read(F) = 0 records']);
        expect(outcomes(r, 'drv/0')[1]).toBe('DMA from 0000:00:01.0 PASID 1: faulted');
        expect(responses(r)).toBe(1);
        expect(titles(r)).toEqual([]);
      }
    }
  });
});

describe('races/iommufd-ba5c0f28a26e-replace-responds-new-hwpt.yaml', () => {
  const file = join(import.meta.dirname, '..', 'races', 'iommufd-ba5c0f28a26e-replace-responds-new-hwpt.yaml');
  it('the replace of fb21b1568ada frees the handle under a pending group: KASAN in iommufd_fault_fops_read; the fix answers it once', async () => {
    const s = await loadScenarioFile(file);
    for (const seed of SEEDS) {
      const bug = runScript(s.script as Script, seed, { bug: 'replace-responds-new-hwpt' }).r;
      expect(bug.findings.map((f) => f.kind)).toEqual(['kasan']);
      expect(titles(bug)[0]).toBe('BUG: KASAN: slab-use-after-free in iommufd_fault_fops_read');
      const fixed = runScript(s.script as Script, seed).r;
      expect(titles(fixed)).toEqual([]);
      expect(responses(fixed)).toBe(1);
    }
  });
});

describe('races/iommufd-3d49020a327c-read-fault-loses-group.yaml', () => {
  const file = join(import.meta.dirname, '..', 'races', 'iommufd-3d49020a327c-read-fault-loses-group.yaml');
  /** The race's model (its patches applied unless `fixed`) once under `seed`. */
  async function runRace(fixed: boolean, seed: number): Promise<RunResult> {
    const { workload } = buildDomains(scenarioParams(await loadScenarioFile(file), fixed));
    const s = new RandomScheduler(seed);
    s.newExecution();
    return runDeterministic({ workload, seed, scheduler: s, keepGoing: true });
  }

  it('a read() whose copy_to_user faults: before 3d49020a327c the group is lost (kmemleak); with the fix the detach answers and frees it', async () => {
    for (const seed of SEEDS) {
      const bug = await runRace(false, seed);
      expect(outcomes(bug, 'vmm/0')[6]).toMatch(/^read\(F\) = -EFAULT/);
      // iopf_queue_remove_device answers the request once; nothing frees the group, nor the param it holds.
      expect(responses(bug)).toBe(1);
      expect(bug.findings.map((f) => f.kind)).toEqual(['leak', 'leak']);
      // The group (allocated by the report) and the fault param (by the enable) that it holds a reference of.
      const text = bug.findings.map((f) => f.text).join('\n');
      expect(text).toContain('iopf_report_last_fault');
      expect(text).toContain('iopf_queue_add_device');
      const fixed = await runRace(true, seed);
      expect(outcomes(fixed, 'vmm/0')[6]).toMatch(/^read\(F\) = -EFAULT/);
      expect(responses(fixed)).toBe(1);
      expect(titles(fixed)).toEqual([]);
    }
  });
});
