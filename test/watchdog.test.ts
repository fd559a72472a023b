// The host-time watchdog and the step budget: input whose code spins without reaching a scheduling point is
// stopped with a report naming the task (or the module) and its last point, never a silent hang; a loop that
// does reach points but never ends is stopped by the step budget, naming the busiest task. Through the CLI, as
// a user meets them (a spinning thread cannot be interrupted from inside the process that runs the test).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { durationArg } from '../src/cli/options.js';
import { watchdogMessage } from '../src/runtime/watchdog.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');
const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-watchdog-'));

function cli(...args: string[]): { code: number; err: string } {
  // Bounded: the watchdog fires after 1 s; 60 s would be a hang.
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, err: r.stderr };
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

// A patch whose unbind spins after its first point: no scheduling point ever comes back.
const spinningPatch = file(
  'spin-unbind.cjs',
  `exports.extend = (ctx) => {
  ctx.setCoreStep('unbind', function* (t) {
    yield* ctx.k.step(t, 'unbind (patched): about to spin', () => {});
    for (;;) {}
  });
};`,
);

describe('watchdog', () => {
  it('stops a patched generator that spins, in both runtimes, naming the task and its last point (exit 1)', () => {
    const r = cli('sva', '--runtime', 'deterministic', '--set', `extension=${spinningPatch}`, '--watchdog', '1s');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^iommu-sim: watchdog: task proc0 has run \d+ s of host time without reaching a scheduling point \(last point: unbind \(patched\): about to spin\)/m);
    expect(r.err).not.toMatch(/\n\s+at /);
    // The main thread, terminated from the watchdog's thread, exits with no inspector session left attached.
    expect(r.err).not.toMatch(/debugger/);
    // Threaded: the spinning task is on a worker thread; the report is the same.
    const t = cli('sva', '--workers', '2', '--set', `extension=${spinningPatch}`, '--watchdog', '1s');
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/^iommu-sim: watchdog: task proc0 has run \d+ s of host time without reaching a scheduling point \(last point: unbind \(patched\): about to spin\)/m);
  });

  it('a patch named relative to where the command runs (--set extension=spin.cjs) is loaded from there', () => {
    file('noop.cjs', 'exports.extend = () => {};\n');
    const r = spawnSync(process.execPath, [BIN, 'sva', '--runtime', 'deterministic', '--set', 'extension=noop.cjs'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const t = spawnSync(process.execPath, [BIN, 'sva', '--runtime', 'deterministic', '--set', 'extension=spin-unbind.cjs', '--watchdog', '1s'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(t.status).toBe(1);
    expect(t.stderr).toMatch(/^iommu-sim: watchdog: task proc0 has run \d+ s of host time/m);
  });

  it('stops a .ts scenario whose module body spins: the input is at fault (exit 2), and no temporary module is left', () => {
    const ts = file('spin.ts', 'for (;;) {}\nexport default {};\n');
    const r = cli('run', ts, '--watchdog', '1s');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/iommu-sim: watchdog: scenario .*spin\.ts: its module body has run \d+ s of host time without reaching a scheduling point/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.mjs'))).toEqual([]);
  });

  it('a loop that reaches points but never ends is stopped by the step budget, naming the busiest task (exit 1)', () => {
    const loop = file(
      'loop-unbind.cjs',
      `exports.extend = (ctx) => {
  ctx.setCoreStep('unbind', function* (t) {
    for (;;) yield* ctx.k.step(t, 'unbind (patched): again', () => {});
  });
};`,
    );
    const r = cli('sva', '--runtime', 'deterministic', '--set', `extension=${loop}`, '--max-steps', '100000');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/step budget of 100000 exhausted: the workload does not terminate; task proc0 took \d+% of the last steps \(next point: unbind \(patched\): again\)/);
    // Threaded: the budget is given, and the report names what each worker ran last.
    const t = cli('sva', '--workers', '2', '--set', `extension=${loop}`, '--max-steps', '100000');
    expect(t.code).toBe(1);
    expect(t.err).toMatch(/step budget of 100000 exhausted: the workload does not terminate; the workers were last in .*proc0 at 'unbind \(patched\): again'/);
  });

  it('--watchdog takes a duration; 0 turns it off; anything else is refused', () => {
    // The one duration parser of every flag (src/cli/options.ts), with 0 allowed.
    const watchdog = durationArg({ allowZero: true });
    expect(watchdog('10')).toBe(10_000);
    expect(watchdog('10s')).toBe(10_000);
    expect(watchdog('500ms')).toBe(500);
    expect(watchdog('2m')).toBe(120_000);
    expect(watchdog('0')).toBe(0);
    expect(() => watchdog('abc')).toThrow(/'abc' is not a duration/);
    expect(() => watchdog('-1')).toThrow(/'-1' is not a duration/);
    const bad = cli('run', 'races/003-quota-race.yaml', '--watchdog', 'abc');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--watchdog <duration>' argument 'abc' is invalid/);
    // Host time, not the kernel's soft-lockup wording.
    expect(watchdogMessage('task', 'drv0', 'mutex_lock(&m)', 10)).not.toMatch(/soft lockup|BUG:/);
  });
});
