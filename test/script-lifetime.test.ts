// Scripts the kernel allows run; scripts the model cannot run truthfully are refused before the run, naming the
// step: a second bind of the same mm shares the bond (iommu_sva_bind_device raises its refcount), an unbind
// closes an fd an earlier bind opened, nothing needs the mm or the fds once the process has begun exiting, and a
// `while` names a task the topology has and a lock it takes. From a scenario file, every preset's refusal is
// the CLI's exit 2, naming the actor and the step.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import { InputError } from '../src/runtime/errors.js';
import { createScheduler } from '../src/runtime/schedulers/index.js';
import { buildWorkload } from '../src/runtime/workloads.js';

type Step = Record<string, unknown>;

function sva(steps: Step[][], processes = steps.length) {
  return { processes, steps: JSON.stringify(steps) };
}

function runScript(steps: Step[][], seed: number) {
  const workload = buildWorkload('sva', sva(steps));
  const scheduler = createScheduler('random', { seed });
  scheduler.newExecution();
  return runDeterministic({ workload, seed, scheduler });
}

describe('sva scripts: what a process can do', () => {
  it('bind, bind, unbind, dma, unbind, exit: the second bind shares the bond, the DMA lands, no finding', () => {
    const steps = [[{ op: 'bind' }, { op: 'bind' }, { op: 'unbind' }, { op: 'dma', n: 2 }, { op: 'unbind' }, { op: 'exit' }]];
    for (let seed = 1; seed <= 20; seed++) {
      const r = runScript(steps, seed);
      expect(r.findings.map((f) => f.title)).toEqual([]);
      expect(r.check.ok, r.check.problems.join('; ')).toBe(true);
      // One bond: its users went 1 → 2 → 1 (the DMA still bound) → 0.
      expect(r.check.counters.binds).toBe(1);
      expect(r.check.counters.unbinds).toBe(1);
      expect(r.check.counters.dma_faults).toBe(0);
    }
  });

  it('an exit with the fds of two binds open closes both', () => {
    const r = runScript([[{ op: 'bind' }, { op: 'bind' }, { op: 'exit' }]], 1);
    expect(r.findings.map((f) => f.title)).toEqual([]);
    expect(r.check.counters.unbinds).toBe(1);
  });

  it.each([
    ['an unbind with no fd open', [[{ op: 'bind' }, { op: 'unbind' }, { op: 'unbind' }]], /sva: steps: proc\/0\[2\]: unbind: proc\/0 has no device fd open here/],
    ['a munmap after an exit not waited for', [[{ op: 'bind' }, { op: 'exit', wait: false }, { op: 'munmap', vpn: 2 }]], /sva: steps: proc\/0\[2\]: munmap after proc\/0's exit \(step 1\): only dma, after and while may follow/],
    ['a bind after an exit not waited for', [[{ op: 'exit', wait: false }, { op: 'bind' }]], /proc\/0\[1\]: bind after proc\/0's exit \(step 0\)/],
    ['an unbind after an exit (exit_files closes the fd)', [[{ op: 'bind' }, { op: 'exit', wait: false }, { op: 'unbind' }]], /proc\/0\[2\]: unbind after proc\/0's exit/],
    ['any step after an exit waited for', [[{ op: 'bind' }, { op: 'exit' }, { op: 'dma', n: 1 }]], /proc\/0\[2\]: dma after proc\/0's exit \(step 1\): the process is gone/],
    [
      'a while naming no task',
      [[{ op: 'bind' }, { op: 'unbind' }], [{ op: 'while', task: 'nobody', lock: 'iommu_sva_lock' }, { op: 'bind' }, { op: 'unbind' }]],
      /sva: steps: proc\/1\[0\]: while: no task is named "nobody" or a name starting so \(the tasks: proc0, bind_task\/0, proc1, /,
    ],
    [
      'a while on a lock the model does not have',
      [[{ op: 'bind' }, { op: 'unbind' }], [{ op: 'while', task: 'proc0', lock: 'no_such_lock' }, { op: 'bind' }, { op: 'unbind' }]],
      /sva: steps: proc\/1\[0\]: while: no lock named "no_such_lock" \(the model's locks: .*iommu_sva_lock/,
    ],
  ])('refused before the run: %s', (_, steps, message) => {
    expect(() => buildWorkload('sva', sva(steps as Step[][]))).toThrow(InputError);
    expect(() => buildWorkload('sva', sva(steps as Step[][]))).toThrow(message);
  });

  it('more processes than the run can start tasks for are refused when a script runs them', () => {
    expect(() => buildWorkload('sva', sva([[{ op: 'bind' }, { op: 'unbind' }]], 16))).toThrow(/sva: steps: a script runs each process as a task started with the run: at most 15 processes, the topology has 16/);
  });

  it('a process that never gets through its steps: a hung-task report saying what it waits for, and the check names it', () => {
    // proc0 waits for itself to hold iommu_sva_lock: a task that exists, and a wait that can never be met.
    const r = runScript([[{ op: 'while', task: 'proc0', lock: 'iommu_sva_lock' }, { op: 'bind' }, { op: 'unbind' }]], 1);
    expect(r.findings.map((f) => f.kind)).toEqual(['hung_task']);
    expect(r.findings[0]?.text).toMatch(/INFO: task proc0:\d+ blocked for more than \d+ seconds[\s\S]*waiting on a task named proc0… to hold iommu_sva_lock/);
    expect(r.check.problems).toEqual(['proc/0 did not finish: 0 of its 3 steps done']);
  });

  it('a dma step waits for its descriptors: the device completes them before the next step starts', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const r = runScript([[{ op: 'bind' }, { op: 'dma', n: 3, vpn: 1 }, { op: 'unbind' }, { op: 'exit' }]], seed);
      expect(r.findings).toEqual([]);
      expect(r.check.ok, r.check.problems.join('; ')).toBe(true);
      expect(r.check.counters.dma_faults).toBe(0);
      const lines = Array.from({ length: r.trace.length }, (_, i) => r.trace.eventName(r.trace.record(i).event));
      const submitted = lines.findIndex((l) => l.startsWith('0000:01:00.0: submit 3 descriptors (PASID '));
      const waited = lines.indexOf('proc/0[1]: dma: 3 completed, 0 failed');
      expect(submitted, `seed ${seed}`).toBeGreaterThanOrEqual(0);
      expect(waited, `seed ${seed}`).toBeGreaterThan(submitted);
      expect(lines.findIndex((l) => l.startsWith('proc/0[2]: close(fd '))).toBeGreaterThan(waited);
    }
  });

  it('a DMA after an exit not waited for runs: the device races the teardown', () => {
    const r = runScript([[{ op: 'bind' }, { op: 'exit', wait: false }, { op: 'dma', n: 2 }]], 1);
    expect(r.findings.map((f) => f.kind)).toEqual([]);
  });

  it('a while naming a task that exists is accepted', () => {
    const steps = [[{ op: 'bind' }, { op: 'unbind' }], [{ op: 'while', task: 'proc0', lock: 'iommu_sva_lock' }, { op: 'bind' }, { op: 'unbind' }]];
    expect(() => buildWorkload('sva', sva(steps))).not.toThrow();
  });
});

describe('a bad script in a scenario file: exit 2, naming the actor and the step', () => {
  const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');
  const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-script-'));
  it.each([
    ['sva', 'topology: { processes: 2 }\nscript:\n  proc/0: [bind, unbind, unbind]', /script\.proc\/0\[2\]: unbind: proc\/0 has no device fd open here/],
    ['sva', 'topology: { processes: 2 }\nscript:\n  proc/0: [bind, unbind]\n  proc/1: [{ while: { task: proc0, holds: nope } }, bind]', /script\.proc\/1\[0\]: while: no lock named "nope"/],
    ['sva', 'topology: { processes: 1 }\nscript:\n  proc/0: [bind, { dma: { n: 0 } }]', /script\.proc\/0\[1\]: dma: n must be an integer in 1\.\.4096, got 0; use dma or \{ dma: \{ n, vpn, write, wait, fd \} \}/],
    ['domains', 'script:\n  drv/0: [{ alloc: { domain: A } }, { attach: { domain: A, dev: 99 } }]', /script\.drv\/0\[1\]: dev must be an integer in 0\.\.\d+, got 99/],
    ['ioasid', 'script:\n  user/0: [{ after: user/1:0 }]', /script\.user\/0\[0\]: after user\/1:0: no such actor/],
  ])('%s: %s', (model, body, message) => {
    const file = join(dir, `${model}-${Math.abs(hash(body))}.yaml`);
    writeFileSync(file, `name: x\ntitle: a bad script\nmodel: ${model}\n${body}\n`);
    const r = spawnSync(process.execPath, [BIN, 'run', file], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toMatch(message);
    expect(r.status).toBe(2);
  });
});

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}
