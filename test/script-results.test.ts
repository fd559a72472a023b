// Scripts that use their steps' results (issue #18, deliverables 4 and 2): a step keeps what it returns under
// its `as` (or the object it named), `{ expect: { h: -EBUSY } }` checks it — one not met is a `script` finding
// naming the step, the value and the step that set it —, a step that takes a failed step's object is skipped
// with a trace line, and at load every name must be made before it is used, by a step of the kind that makes
// what the using step takes. Deterministic: one random schedule at a fixed seed each.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import { InputError } from '../src/runtime/errors.js';
import type { RunResult } from '../src/runtime/result.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import type { Wire } from '../src/runtime/model.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { scenarioParams, validateScenario } from '../src/scenario/load.js';

type Step = Record<string, unknown>;

function run(model: string, params: Record<string, Wire>, seed = 1): RunResult {
  const workload = buildWorkload(model, params);
  const s = new RandomScheduler(seed);
  s.newExecution();
  return runDeterministic({ workload, seed, scheduler: s, keepGoing: true });
}

/** The trace lines of the scripted actors' steps (`proc/0[2]: …`). */
function stepLines(r: RunResult): string[] {
  return r.trace
    .toText()
    .split('\n')
    .flatMap((l) => /: ((?:proc|drv|user|vmm)\/\d+\[\d+\]: .*)$/.exec(l)?.[1] ?? []);
}

const sva = (steps: Step[], extra: Record<string, Wire> = {}) => run('sva', { pages: 16, dmas: 2, processes: 1, steps: JSON.stringify([steps]), ...extra });

describe('results: as, expect, and a step on a failed result', () => {
  it('a bind that failed: the unbind naming its fd is skipped with a trace line, and expect sees the errno', () => {
    // Devices without PASID: the driver's open cannot bind (uacce refuses the node: -ENODEV).
    const r = sva([{ op: 'bind', dev: 0, as: 'h' }, { op: 'expect', results: { h: 'error' } }, { op: 'unbind', fd: 'h' }, { op: 'expect', results: { h: '-ENODEV' } }, { op: 'exit' }], { caps: 'ats,pri' });
    const lines = stepLines(r);
    expect(lines).toContain('proc/0[2]: unbind: skipped: h = -ENODEV (proc/0[0])');
    expect(lines.some((l) => l.startsWith('proc/0[0]: open(') && l.endsWith('= -ENODEV'))).toBe(true);
    expect(r.findings).toEqual([]);
  });

  it('an expect not met is a `script` finding naming the step, the name, the value seen and its step', () => {
    const r = sva([{ op: 'bind', as: 'h' }, { op: 'expect', results: { h: '-EBUSY' } }, { op: 'unbind', fd: 'h' }, { op: 'exit' }]);
    expect(r.findings.map((f) => f.kind)).toEqual(['script']);
    const f = r.findings[0];
    expect(f?.title).toMatch(/^iommu-sim: script expectation failed: proc\/0\[1\]: h: expected -EBUSY, got \d+ \(set by proc\/0\[0\]\)$/);
    // The fd really was closed: the step after the expect ran.
    expect(stepLines(r).some((l) => /^proc\/0\[2\]: close\(fd \d+\)$/.test(l))).toBe(true);
  });

  it('bind on a named device, dma and unbind by name: the result is the fd, `ok` holds, and an integer is exact', () => {
    const r = sva(
      [{ op: 'bind', dev: 1, as: 'h' }, { op: 'dma', n: 1, fd: 'h' }, { op: 'expect', results: { h: 'ok' } }, { op: 'madvise', vpn: 2, as: 'm' }, { op: 'expect', results: { m: 0 } }, { op: 'unbind', fd: 'h' }, { op: 'exit' }],
      { devices: 2 },
    );
    expect(r.findings).toEqual([]);
    const lines = stepLines(r);
    expect(lines.some((l) => /^proc\/0\[0\]: open\(0000:01:01\.0\) = fd \d+/.test(l)), lines.join('\n')).toBe(true);
    expect(lines).toContain('proc/0[2]: expect h ok');
  });

  it('an expect may follow the exit: it checks results, not the process', () => {
    const r = sva([{ op: 'open', as: 'q' }, { op: 'exit' }, { op: 'expect', results: { q: 'ok' } }]);
    expect(r.findings).toEqual([]);
    expect(stepLines(r)).toContain('proc/0[2]: expect q ok');
  });

  it('ioasid: an alloc past the quota fails, the notify naming it is skipped, and its errno is expected', () => {
    const steps = {
      'user/0': [
        { op: 'alloc_set', set: 'S', quota: 1 },
        { op: 'alloc', set: 'S', id: 'X' },
        { op: 'alloc', set: 'S', id: 'Y' },
        { op: 'bind', id: 'Y' },
        { op: 'free', id: 'X', as: 'r' },
        { op: 'expect', results: { X: 'ok', Y: '-ENOSPC', r: 0 } },
      ],
    };
    const r = run('ioasid', { bits: 8, steps: JSON.stringify(steps) });
    expect(r.findings).toEqual([]);
    expect(stepLines(r)).toContain('user/0[3]: bind: skipped: Y = -ENOSPC (user/0[2])');
  });

  it('domains: bind keeps the handle, unbind names it (its device and mm are the bind’s)', () => {
    const steps = { 'drv/0': [{ op: 'bind', dev: 0, mm: 0, as: 'h' }, { op: 'expect', results: { h: 'ok' } }, { op: 'unbind', handle: 'h' }] };
    const r = run('domains', { steps: JSON.stringify(steps) });
    expect(r.findings).toEqual([]);
    const lines = stepLines(r);
    expect(lines.some((l) => /^drv\/0\[0\]: iommu_sva_bind_device\(\S+, mm\/\d+\) = PASID \d+$/.test(l)), lines.join('\n')).toBe(true);
    expect(lines.some((l) => /^drv\/0\[2\]: iommu_sva_unbind_device\(\S+, mm\/\d+\)$/.test(l)), lines.join('\n')).toBe(true);
  });
});

describe('names checked at load', () => {
  const parse = (model: string, steps: unknown, extra: Record<string, Wire> = {}) => () => buildWorkload(model, { ...extra, steps: JSON.stringify(steps) });

  it.each([
    ['sva: unbind of a handle never bound', 'sva', [[{ op: 'bind' }, { op: 'unbind', fd: 'h' }]], 'sva: steps: proc/0[1]: unbind: no step opens an fd named h (open or bind with as: h)'],
    ['sva: a name used before the step that makes it', 'sva', [[{ op: 'expect', results: { q: 'ok' } }, { op: 'open', as: 'q' }]], 'sva: steps: proc/0[0]: expect: q is made only later, by step 1 (open)'],
    ['sva: expect of a name no step keeps', 'sva', [[{ op: 'bind' }, { op: 'expect', results: { zz: 'ok' } }]], 'sva: steps: proc/0[1]: expect: no step keeps a result named zz'],
    ['domains: a handle where a domain goes', 'domains', { 'drv/0': [{ op: 'bind', dev: 0, mm: 0, as: 'h' }, { op: 'free', domain: 'h' }] }, 'domains: steps: drv/0[1]: free: h is an SVA bond handle (drv/0[0] bind), not a domain'],
    ['domains: unbind of a handle never bound', 'domains', { 'drv/0': [{ op: 'unbind', handle: 'h' }] }, 'domains: steps: drv/0[0]: unbind: no step binds a bond named h (bind with as: h)'],
    ['domains: one name for two kinds of thing', 'domains', { 'drv/0': [{ op: 'alloc', domain: 'A' }, { op: 'bind', dev: 0, mm: 0, as: 'A' }] }, 'domains: steps: drv/0[1]: bind: A is a domain already (drv/0[0] alloc), not an SVA bond handle'],
    ['ioasid: an IOASID where a set goes', 'ioasid', { 'user/0': [{ op: 'alloc', set: 'system', id: 'X' }, { op: 'free_set', set: 'X' }] }, 'ioasid: steps: user/0[1]: free_set: X is an IOASID (user/0[0] alloc), not an ioasid_set'],
    ['an expectation of no errno', 'sva', [[{ op: 'bind', as: 'h' }, { op: 'expect', results: { h: '-EWHAT' } }]], 'sva: steps: proc/0[1]: expect: results.h must be ok, error, -E… (an errno name: -EPERM'],
  ])('%s', (_, model, steps, message) => {
    const f = parse(model, steps, model === 'ioasid' ? { bits: 8 } : {});
    expect(f).toThrow(InputError);
    expect(f).toThrow(message);
  });

  it('the scenario forms: { bind: { dev, as } }, { unbind: h }, { expect: { h: -EBUSY } }, munmap and dma alone become the steps parameter', () => {
    const s = validateScenario(
      { name: 'x', title: 't', model: 'sva', topology: { devices: 2, processes: 1 }, script: { 'proc/0': [{ bind: { dev: 1, as: 'h' } }, { expect: { h: 'ok' } }, { unbind: 'h' }, 'munmap', 'dma', 'exit'] } },
      'x.yaml',
    );
    expect(JSON.parse(String(scenarioParams(s).steps))).toEqual([
      [
        { op: 'bind', dev: 1, as: 'h' },
        { op: 'expect', results: { h: 'ok' } },
        { op: 'unbind', fd: 'h' },
        { op: 'munmap' },
        { op: 'dma' },
        { op: 'exit' },
      ],
    ]);
  });

  it('from a scenario file: a name never made is exit 2, naming the actor, the step and the name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-results-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'name: x\ntitle: t\nmodel: domains\nscript:\n  drv/0: [{ bind: { dev: 0, mm: 0, as: h } }, { unbind: g }]\n');
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'iommu-sim.js'), 'run', file], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toContain('bad.yaml: script.drv/0[1]: unbind: no step binds a bond named g (bind with as: g)');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.status).toBe(2);
  });
});
