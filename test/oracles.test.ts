// The model's general oracles, each with a planted mistake it must catch and correct code it must pass:
// isolation (a process's DMA through a PASID that names another address space on that device: seed 000's
// per-IOMMU allocation under ENQCMD), stale translation, page requests, a failed probe reported where it
// fails, and seed 004's exposure counted from what the IOMMU's walk reaches. And a source check that no
// oracle or checker reads a scenario's name, seed label or expectation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { buildSva } from '../src/workloads/sva.js';
import '../src/workloads/index.js';
import { Oracle } from '../src/core/oracle.js';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Wire } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { kernel } from './kernel-harness.js';

function once(params: Record<string, Wire>, seed = 1, keepGoing = true, patch?: (m: ReturnType<typeof buildSva>['model']) => void) {
  const built = buildSva(params);
  patch?.(built.model);
  const s = new RandomScheduler(seed);
  s.newExecution();
  const r = runDeterministic({ workload: built.workload, seed, scheduler: s, keepGoing });
  return { r, model: built.model, c: r.check.counters };
}


describe('isolation: one PASID for two address spaces (seed 000)', () => {
  // Two processes open the work queues of two devices behind two VT-d units.
  const topo = { iommus: 'vtd,vtd', devices: 2, processes: 2, opens: 2, dmas: 2 };

  it('per-IOMMU PASIDs under ENQCMD: a process DMA lands in the other process mm, through the other IOMMU', () => {
    const hits: string[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const { r } = once({ ...topo, wq: 'shared', pasidAlloc: 'per-iommu' }, seed, false);
      for (const f of r.findings) hits.push(`${f.kind}: ${f.text}`);
    }
    expect(hits.length).toBeGreaterThan(0);
    for (const h of hits) {
      expect(h).toMatch(/^isolation: iommu-sim: isolation violation: DMA from 0000:01:0[01]\.0 PASID \d+ landed in mm\/[12]/);
      expect(h).toMatch(/submitted by a task of mm\/[12]/);
      expect(h).toMatch(/does not name mm\/[12] on/);
    }
  });

  it('system-wide PASIDs under ENQCMD: every DMA lands in its submitter mm', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { r, c } = once({ ...topo, wq: 'shared', pasidAlloc: 'system' }, seed);
      expect(r.findings).toEqual([]);
      expect(r.check.problems).toEqual([]);
      expect(c.dmas).toBeGreaterThanOrEqual(8);
    }
  });

  it('per-IOMMU PASIDs with dedicated work queues (each tagged with its own bond PASID): clean', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { r, c } = once({ ...topo, wq: 'dedicated', pasidAlloc: 'per-iommu' }, seed);
      expect(r.findings).toEqual([]);
      expect(c.dmas).toBeGreaterThanOrEqual(8);
    }
  });

  it('the oracle itself: a DMA landing outside its submitter space is caught, one landing in it is not', () => {
    const k = kernel();
    k.attach(new Int32Array(k.words), () => 0);
    const o = new Oracle(k);
    const name = (x: number): string => `mm/${x - 1}`;
    o.dmaLanded(3, 'dev', 1, 0, 9, 3, 3, name, 3);
    o.dmaLanded(3, 'dev', 1, 0, 9, 3, 3, name);
    expect(k.findings).toEqual([]);
    o.dmaLanded(4, 'dev', 1, 0, 9, 3, 3, name, 2);
    o.dmaLanded(5, 'dev', 2, 0, 9, 3, 0, name);
    expect(k.findings.map((f) => [f.kind, f.step])).toEqual([
      ['isolation', 4],
      ['isolation', 5],
    ]);
  });
});

describe('stale translation and page requests', () => {
  it('a driver that skips the range flush on munmap leaves a translation to a freed frame; with the flush, none', () => {
    const params = { iommus: 'vtd', processes: 1, script: 'munmap', rounds: 4, dmas: 4 };
    const bad = [1, 2, 3, 4, 5].flatMap((seed) => once({ ...params, bug: 'no-range-flush' }, seed).r.findings.map((f) => f.kind));
    expect(bad).toContain('stale_translation');
    for (let seed = 1; seed <= 5; seed++) expect(once(params, seed).r.findings).toEqual([]);
  });

  it('a page request group answered twice, or never, is reported; answered once, not', () => {
    const k = kernel();
    k.attach(new Int32Array(k.words), () => 0);
    const o = new Oracle(k);
    o.pageResponse(1, 'dev', 3, 1);
    o.unanswered([]);
    expect(k.findings).toEqual([]);
    o.pageResponse(2, 'dev', 3, 2);
    o.unanswered(['dev group 4']);
    expect(k.findings.map((f) => f.title)).toEqual(['iommu-sim: page request group 3 of dev answered 2 times', 'iommu-sim: 1 page request group never answered']);
  });
});

describe('a failed probe, where it fails (seed 001)', () => {
  it('the fifth per-device default domain: reported in iommu_probe_device at its step, in of_iommu words', () => {
    const { r } = once({ iommus: 'smmuv3', devices: 5, processes: 0, addressSpaces: 4, defaultDomain: 'per-device', kernel: 'dma-api', kdevices: 5, kjobs: 1 }, 1, false);
    expect(r.findings.map((f) => f.title)).toEqual(['pci 0000:01:04.0: Adding to IOMMU failed: -ENOSPC']);
    const f = r.findings[0];
    // Found while running, not when the run ended: the run stops at the step that failed.
    expect(f?.step).toBe(r.steps - 1);
    expect(f?.text).toContain(' iommu_probe_device\n');
  });

  it('one domain per instance: no probe fails', () => {
    const { r, c } = once({ iommus: 'smmuv3', devices: 5, processes: 0, addressSpaces: 4, defaultDomain: 'per-instance', kernel: 'dma-api', kdevices: 5, kjobs: 1 });
    expect(r.findings).toEqual([]);
    expect(c.probe_failures).toBe(0);
  });
});

describe('exposure: what a kernel user device can reach (seed 004)', () => {
  const base = { iommus: 'vtd', devices: 1, processes: 0, trusted: true, kjobs: 4 };

  for (const [pages, kbuffers] of [
    [8, 2],
    [12, 3],
  ] as const) {
    it(`init_mm bound (${pages} kernel pages, ${kbuffers} buffers): every kernel page but the buffers is exposed`, () => {
      const { r, c } = once({ ...base, pages, kbuffers, kernel: 'syspasid-bind' });
      expect(r.findings).toEqual([]);
      expect(c.exposed_pages).toBe(pages - kbuffers);
    });
  }

  it('own DMA domain, mapped per job: nothing exposed', () => {
    const { c } = once({ ...base, kernel: 'syspasid-map' });
    expect(c.kernel_jobs).toBe(4);
    expect(c.exposed_pages).toBe(0);
  });

  it('a planted mistake: a map that also maps the next kernel page is counted', () => {
    const { c } = once({ ...base, kernel: 'syspasid-map' }, 1, true, (m) => {
      const map = m.domains.map.bind(m.domains);
      m.domains.map = function* (t: KTask, dom: number, iova: number, pfn: number, write: boolean): KGen<number> {
        const r = yield* map(t, dom, iova, pfn, write);
        yield* map(t, dom, (iova + 1) % 8, pfn + 1, write);
        return r;
      };
    });
    expect(c.exposed_pages).toBeGreaterThanOrEqual(1);
  });
});

describe('no oracle or checker reads a scenario', () => {
  const root = join(import.meta.dirname, '..');
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
    });
  const model = ['core', 'kernel', 'hw', 'actors'].flatMap((d) => files(join(root, 'src', d)));
  const scripts = ['races', 'scenarios'].flatMap((d) => readdirSync(join(root, d)).filter((f) => f.endsWith('.yaml')).map((f) => join(root, d, f)));
  const names = scripts.map((f) => String((parse(readFileSync(f, 'utf8')) as { name: string }).name));
  /** Code without its comments: a comment may cite a seed, code may not test for one. */
  const code = (f: string): string =>
    readFileSync(f, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');

  it('finds the files it checks', () => {
    expect(model.length).toBeGreaterThan(50);
    expect(names).toContain('000-per-iommu-pasid-alias');
  });

  for (const dir of ['core', 'kernel', 'hw', 'actors']) {
    it(`src/${dir}: no import of the scenario layer, no scenario name, seed label or expectation field`, () => {
      for (const f of model.filter((p) => p.includes(`/src/${dir}/`))) {
        const c = code(f);
        expect(c, f).not.toMatch(/from '\.\.\/(\.\.\/)?(scenario|cli|report)\//);
        expect(c, f).not.toMatch(/\b(fixExpect|forbid|expectation|pasidUnique)\b/);
        expect(c, f).not.toMatch(/\.expect\b|\.seed\b\s*===|['"`]00[0-4]['"`]/);
        for (const n of names) expect(c.includes(n), `${f} names ${n}`).toBe(false);
      }
    });
  }
});
