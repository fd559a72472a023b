// The CLI's small pieces that every command shares (src/cli/options.ts, output.ts, failure.ts, interrupt.ts):
// one duration syntax, output files that are checked first and never left half-written, error reports without
// a JavaScript stack, signals turned into a summary and 130 / 143.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { Exit } from '../src/cli/exit.js';
import { ranThreaded, reportFailure } from '../src/cli/failure.js';
import { counted, interrupts } from '../src/cli/interrupt.js';
import { durationArg } from '../src/cli/options.js';
import { checkOutputDir, checkOutputFile, takeWriteFailures, writeOutput } from '../src/cli/output.js';
import { RemoteFailure } from '../src/cli/remote.js';
import { ActorFailure, InputError, RunStalled } from '../src/runtime/errors.js';
import { StepBudgetExceeded } from '../src/runtime/deterministic.js';
import { TaskFailure } from '../src/runtime/task.js';
import { loadScenarioFile } from '../src/scenario/load.js';

describe('durations: one syntax for every flag', () => {
  const d = durationArg();
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1.5m', 90_000],
    ['30', 30_000],
    [' 7 ', 7000],
  ])('%s is %d ms', (raw, ms) => expect(d(raw)).toBe(ms));
  it.each(['abc', '-5s', '1h', '5 x', '', '1e3'])("'%s' is refused", (raw) => expect(() => d(raw)).toThrow(InvalidArgumentError));
  it('an empty budget is refused unless 0 means "none" there; a day at most', () => {
    expect(() => d('0')).toThrow(/empty budget/);
    expect(() => d('0ms')).toThrow(/empty budget/);
    expect(() => d('0.0001ms')).toThrow(/less than a millisecond/);
    expect(durationArg({ allowZero: true })('0')).toBe(0);
    expect(() => d('25h')).toThrow(InvalidArgumentError);
    expect(() => d('1441m')).toThrow(/longer than a day/);
  });
});

describe('output files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'out-'));
  it('are checked before the work: a missing folder, a file in the way, a folder given for a file', () => {
    expect(() => checkOutputFile('--record', join(dir, 'nope', 'x.sched'))).toThrow(/^--record .*x\.sched: cannot be written: the folder .*nope: no such folder/);
    const file = join(dir, 'f');
    writeFileSync(file, '');
    expect(() => checkOutputFile('-o', join(file, 'x'))).toThrow(/^-o .*: cannot be written: .*f is not a folder/);
    expect(() => checkOutputFile('--out', dir)).toThrow(/is a folder, not a file/);
    expect(() => checkOutputDir('--out', join(file, 'sub', 'dir'))).toThrow(/is not a folder/);
    expect(() => checkOutputFile('--record', '')).toThrow(/empty file name/);
    checkOutputFile('--record', join(dir, 'ok.sched'));
    checkOutputDir('--out', join(dir, 'new', 'deeper'));
  });
  it('a failed write leaves no file (not even a temporary one) and is remembered, not thrown', () => {
    takeWriteFailures();
    expect(writeOutput('--record', join(dir, 'gone', 'x.sched'), 'data')).toBe(false);
    expect(writeOutput('--record', '/dev/full', new Uint8Array(100))).toBe(false);
    const failures = takeWriteFailures();
    expect(failures.map((f) => f.reason)).toEqual([expect.stringMatching(/^no such file or folder \(ENOENT\)$/), expect.stringMatching(/no space left on device \(ENOSPC\)/)]);
    expect(takeWriteFailures()).toEqual([]);
    expect(writeOutput('--record', join(dir, 'ok.sched'), 'data')).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['f', 'ok.sched']);
    expect(existsSync(join(dir, 'gone'))).toBe(false);
  });
});

describe('error reports', () => {
  const args = ['run', 'x.yaml', '--seed', '3'];
  it('refused input is exit 2 with its message alone', () => {
    expect(reportFailure(new InputError('x.yaml: topology.devices: out of range'), args, false)).toEqual({ code: 2, text: 'iommu-sim: x.yaml: topology.devices: out of range' });
    expect(reportFailure(new RemoteFailure({ kind: 'input', name: 'InputError', message: 'y.sched: damaged' }), args, false).code).toBe(2);
  });
  it("a run's failure is exit 1 naming the actor or task, state and event, and the command that reproduces it; no stack", () => {
    for (const err of [
      new ActorFailure('dev/0000:01:00.0', 'running', 'cmdq.doorbell', new Error('unexpected cmdq.doorbell')),
      new TaskFailure('proc0', 'iommu_sva: put bond', new Error('handle 0 is not bound')),
      new RunStalled('2 actors blocked'),
      new Error("task proc0 threw after '(start)': the patched bind threw"),
      new StepBudgetExceeded('step budget of 20000 exhausted: the workload does not terminate'),
    ]) {
      const r = reportFailure(err, args, false);
      expect(r.code).toBe(1);
      expect(r.text).toContain(err.message);
      expect(r.text).toContain('reproduce with: iommu-sim run x.yaml --seed 3');
      expect(r.text).not.toMatch(/\n\s+at |internal error/);
    }
  });
  it('an exact repeat is promised only for a deterministic run; a threaded one is run again, said to vary', () => {
    const budget = new StepBudgetExceeded('step budget of 1000 exhausted: the workload does not terminate');
    for (const cmd of [['sva', '--max-steps', '1000'], ['run', 'x.yaml', '--runtime', 'threaded'], ['stress', 'x.yaml'], ['sva', '--runtime=threaded']]) {
      expect(ranThreaded(cmd), cmd.join(' ')).toBe(true);
      const text = reportFailure(budget, cmd, false).text;
      expect(text).toContain(`run it again with: iommu-sim ${cmd.join(' ')} (threaded: each run takes its own interleaving`);
      expect(text).not.toMatch(/repeats exactly from its seed/);
    }
    for (const cmd of [['sva', '--runtime', 'deterministic'], ['run', 'x.yaml'], ['explore', 'x.yaml']]) {
      expect(ranThreaded(cmd), cmd.join(' ')).toBe(false);
      expect(reportFailure(budget, cmd, false).text).toContain(`reproduce with: iommu-sim ${cmd.join(' ')} (a deterministic run repeats exactly from its seed)`);
    }
  });
  it('anything else is an internal error, exit 1, with a stack only when debugging', () => {
    const err = new TypeError("Cannot read properties of undefined (reading 'name')");
    const r = reportFailure(err, args, false);
    expect(r.code).toBe(1);
    expect(r.text).toMatch(/^iommu-sim: internal error: TypeError: Cannot read/);
    expect(r.text).toMatch(/IOMMU_SIM_DEBUG=1/);
    expect(r.text).not.toMatch(/\n\s+at /);
    expect(reportFailure(err, args, true).text).toMatch(/\n\s+at /);
  });
});

describe('signals', () => {
  it('the line after the summary counts what finished in words that agree with the count', () => {
    expect([0, 1, 2].map((n) => counted(n, 'run'))).toEqual(['0 runs', '1 run', '2 runs']);
  });

  it('the first SIGTERM aborts the signal and runs the stops; exitIfStopped then ends with 143', () => {
    const i = interrupts();
    let stopped = 0;
    i.onStop(() => stopped++);
    try {
      expect(() => i.exitIfStopped('x')).not.toThrow();
      process.emit('SIGTERM', 'SIGTERM');
      expect(i.signal.aborted).toBe(true);
      expect(i.received).toBe('SIGTERM');
      expect(stopped).toBe(1);
      let code: number | undefined;
      try {
        i.exitIfStopped('x');
      } catch (e) {
        code = e instanceof Exit ? e.code : undefined;
      }
      expect(code).toBe(143);
    } finally {
      i.dispose();
    }
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });
});

describe('TypeScript scenarios', () => {
  it('load (transpiled in memory, imported on a thread of their own) without writing anything beside them', async () => {
    const races = join(import.meta.dirname, '..', 'races');
    const before = readdirSync(races).sort();
    const s = await loadScenarioFile(join(races, '000-scripted-reuse.ts'));
    expect(s.name).toBe('000-scripted-reuse');
    expect(s.script?.['proc/1']?.[0]).toEqual({ after: 'proc/0:2' });
    expect(readdirSync(races).sort()).toEqual(before);
  });

  it("kept in a folder with no node_modules, import 'iommu-sim' from the iommu-sim that runs them; another package is refused by name", () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-ts-'));
    const scenario = (pkg: string): string =>
      `import { defineScenario } from '${pkg}';\nexport default defineScenario({ name: 'own-folder', title: 't', model: 'sva', topology: { iommus: 'vtd', devices: 1, processes: 1 }, explore: { strategy: 'random', runs: 1, seed: 1 } });\n`;
    writeFileSync(join(dir, 'own.ts'), scenario('iommu-sim'));
    writeFileSync(join(dir, 'other.ts'), scenario('no-such-package-here'));
    const bin = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');
    const cli = (f: string) => spawnSync(process.execPath, [bin, 'run', join(dir, f)], { encoding: 'utf8', timeout: 60_000 });
    const own = cli('own.ts');
    expect(own.stderr).toBe('');
    expect(own.status).toBe(0);
    const other = cli('other.ts');
    expect(other.status).toBe(2);
    expect(other.stderr).toMatch(/other\.ts: cannot import 'no-such-package-here': no such package in node_modules from /);
    expect(readdirSync(dir).sort()).toEqual(['other.ts', 'own.ts']);
  });
});
