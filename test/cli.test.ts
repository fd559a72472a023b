// The command as a user types it: exit codes (0 ok, 1 finding, 2 bad input), --json, record → replay → trace.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'iommu-sim.js');

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('iommu-sim', () => {
  it('--help tells the truth about runtimes, placement and exit codes; --version prints the version', () => {
    const h = cli('selftest', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/--placement <placement>/);
    expect(h.out).toMatch(/sharded/);
    expect(h.out).toMatch(/parks when idle instead of spinning/);
    expect(cli('--help').out).toMatch(/Exit status of every command \(a command's own list above says which apply and when\): 0 ok, 1 a finding or a\nfailed check, 2 bad input/);
    // Every command's help names the watchdog (a global option) and ends with the exit statuses.
    for (const c of ['run', 'explore', 'replay', 'stress', 'shrink', 'trace', 'races', 'sva']) {
      const out = cli(c, '--help').out;
      expect(out, c).toMatch(/Global Options:[\s\S]*--watchdog <duration>/);
      expect(out, c).toMatch(/130 \/ 143 stopped by SIGINT/);
    }
    expect(cli('shrink', '--help').out).toMatch(/1 {2}the schedule does not fail: nothing to shrink/);
    const v = cli('--version');
    expect(v.code).toBe(0);
    expect(v.out.trim()).toBe(JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')).version);
  });

  it('selftest ends with an rcutorture-style SUCCESS line', () => {
    const r = cli('selftest', '--messages', '100');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^selftest: SUCCESS steps=\d+ pings=400 pongs=400/m);
  });

  it('--json prints one object with the required fields', () => {
    const r = cli('selftest', '--runtime', 'deterministic', '--seed', '7', '--messages', '50', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    for (const k of ['traceHash', 'sent', 'delivered', 'steps', 'runtime', 'seed']) expect(j).toHaveProperty(k);
    expect(j.runtime).toBe('deterministic');
    expect(j.seed).toBe(7);
  });

  it('run --runtime threaded: a recorded threaded run of a race script, judged by its expect, replaying exactly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-threaded-'));
    const sched = join(dir, 'r.sched');
    const r = cli('run', join(ROOT, 'races', '000-pasid-reuse-before-drain.yaml'), '--runtime', 'threaded', '--fixed', '--record', sched, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { ok: boolean; explored: string; traceHash: string };
    expect(out.ok).toBe(true);
    expect(out.explored).toMatch(/threaded/);
    const again = cli('replay', sched);
    expect(again.out).toContain(`trace hash ${out.traceHash}; reproduced exactly`);
  });

  it('run names the policies it runs under, the defaults when the scenario sets none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-defaults-'));
    const file = join(dir, 'plain.yaml');
    writeFileSync(file, 'name: plain\ntitle: no policies\nmodel: sva\ntopology: { devices: 1, processes: 1 }\nexplore: { strategy: random, runs: 1, seed: 1 }\n');
    expect(cli('run', file).out).toMatch(/^run: model sva, as written: the default policies$/m);
    expect(cli('run', join(ROOT, 'races', '000-pasid-reuse-before-drain.yaml'), '--fixed', '--runs', '1').out).toMatch(/^run: model sva, fixed: teardown=drain pasidLife=unbind notifier=bond$/m);
  });

  it('explore prints the deciding schedule\'s finding, not the unfinished processes of a run stopped at it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'explore-first-'));
    const r = cli('explore', join(ROOT, 'races', '000-pasid-reuse-before-drain.yaml'), '--runs', '64', '--record', join(dir, 'x.sched'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^explore: seed \d+ decided it \(shows/m);
    expect(r.out).not.toMatch(/did not finish/);
  });

  it('a found bug exits 1 with FAILURE and the problem', () => {
    const r = cli('selftest', '--runtime', 'deterministic', '--strategy', 'pct', '--depth', '1', '--bug', '1', '--messages', '2', '--runs', '200');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/planted ordering bug of depth 1 triggered/);
    expect(r.out).toMatch(/^selftest: FAILURE/m);
  });

  it('bad input exits 2 and names the flag', () => {
    for (const args of [
      ['selftest', '--actors', 'x'],
      ['selftest', '--runtime', 'quantum'],
      ['selftest', '--strategy', 'pct'], // threaded has no strategy
      ['selftest', '--runtime', 'deterministic', '--workers', '2'],
      ['replay', '/nonexistent.sched'],
      ['bench', 'nosuchsuite'],
      ['nosuchcommand'],
    ]) {
      const r = cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.length, args.join(' ')).toBeGreaterThan(0);
    }
    expect(cli('selftest', '--actors', 'x').err).toMatch(/--actors/);
  });

  it('a crash names the actor, its state and the event, and exits 1', () => {
    const r = cli('selftest', '--crash', '2', '--messages', '10');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/actor selftest\/0 threw in state 'running' handling event 'pong': planted crash at iteration 2/);
  });

  it('record (threaded) → replay → trace --format perfetto', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-'));
    const sched = join(dir, 's.sched');
    const rec = cli('selftest', '--workers', '2', '--messages', '100', '--record', sched, '--json');
    expect(rec.code).toBe(0);
    const recorded = JSON.parse(rec.out) as { traceHash: string };
    const rp = cli('replay', sched, '--json');
    expect(rp.code).toBe(0);
    const replayed = JSON.parse(rp.out) as { traceHash: string; matches: boolean };
    expect(replayed.traceHash).toBe(recorded.traceHash);
    expect(replayed.matches).toBe(true);

    const out = join(dir, 't.json');
    expect(cli('trace', sched, '--format', 'perfetto', '-o', out).code).toBe(0);
    const t = JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: { ph: string; id?: number; name: string }[] };
    const tracks = t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name');
    expect(tracks.length).toBeGreaterThanOrEqual(4);
    const starts = t.traceEvents.filter((e) => e.ph === 's').map((e) => e.id);
    const ends = t.traceEvents.filter((e) => e.ph === 'f').map((e) => e.id);
    expect(starts.length).toBeGreaterThan(0);
    expect(ends).toEqual(starts);
    const text = cli('trace', sched, '--format', 'text');
    expect(text.out.split('\n')[0]).toMatch(/^\s+0 {2}selftest\/\d <- env: start$/);
  });
});

describe('output piped into a reader that stops early (`| head`)', () => {
  it('drops the rest quietly and keeps the exit status: no EPIPE stack trace', async () => {
    // A long output (a trace of every step) whose reader closes after its first chunk.
    const dir = mkdtempSync(join(tmpdir(), 'epipe-'));
    const sched = join(dir, 's.sched');
    expect(cli('selftest', '--runtime', 'deterministic', '--messages', '3000', '--record', sched).code).toBe(0);
    const child = spawn(process.execPath, [BIN, 'trace', sched], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(err).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
  }, 60_000);
});

/** Start the CLI, wait for a line matching `ready` on stdout or stderr, send `signal`; its outcome and, before the signal, its children's pids. */
async function interrupted(args: readonly string[], ready: RegExp, signal: NodeJS.Signals): Promise<{ code: number | null; out: string; err: string; children: number[] }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let children: number[] = [];
  let sent = false;
  const check = (): void => {
    if (sent || !ready.test(out + err)) return;
    sent = true;
    try {
      children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      children = [];
    }
    child.kill(signal);
  };
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    check();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, out, err, children };
}

describe('Ctrl-C and SIGTERM stop a long command with its summary so far (130 / 143)', () => {
  it('stress: SIGINT after the first run prints the summary of the runs that finished, INTERRUPTED, exit 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sigint-'));
    const file = join(dir, 'small.yaml');
    writeFileSync(file, 'name: small\ntitle: a small stress\nmodel: sva\ntopology: { devices: 1, processes: 2 }\n');
    const r = await interrupted(['stress', file, '--duration', '10m', '--workers', '2', '--record', join(dir, 's.sched')], /-torture: run 1 /, 'SIGINT');
    expect(r.code).toBe(130);
    expect(r.out).toMatch(/^stress: small: \d+ threaded runs? in [\d.]+ s/m);
    expect(r.out).toMatch(/^stress: INTERRUPTED$/m);
    expect(r.err).toMatch(/stress: interrupted by SIGINT; the summary above covers the \d+ runs? that finished/);
    expect(r.out + r.err).not.toMatch(/run stalled|\n\s+at /);
  }, 120_000);

  it('sva --duration (a bare number: seconds): SIGTERM prints the totals so far, exit 143', async () => {
    const r = await interrupted(['sva', '--duration', '600', '--workers', '2', '--set', 'devices=1', '--set', 'processes=2'], /-torture: run 1 /, 'SIGTERM');
    expect(r.code).toBe(143);
    expect(r.out).toMatch(/^sva: \d+ threaded runs? in [\d.]+ s/m);
    expect(r.out).toMatch(/^sva: per second /m);
    expect(r.out).toMatch(/^sva: INTERRUPTED$/m);
    expect(r.out + r.err).not.toMatch(/run stalled|\n\s+at /);
  }, 120_000);

  it('bench: SIGTERM stops the suite\'s child process too (no orphan), exit 143', async () => {
    const r = await interrupted(['bench', 'runtime', '--quick'], /bench \[1\/1\] runtime: /, 'SIGTERM');
    expect(r.code).toBe(143);
    expect(r.children.length).toBeGreaterThan(0);
    for (const pid of r.children) expect(() => process.kill(pid, 0), `child ${pid} still runs`).toThrow();
    expect(r.err).toMatch(/bench: interrupted by SIGTERM/);
  }, 120_000);

  it('bench: a parent killed outright (SIGKILL) leaves no child measuring on as an orphan', async () => {
    const r = await interrupted(['bench', 'runtime', '--quick'], /bench \[1\/1\] runtime: /, 'SIGKILL');
    expect(r.children.length).toBeGreaterThan(0);
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    // The child notices within a second or so; poll (a bound on liveness, not a speed figure).
    for (let i = 0; i < 300 && r.children.some(alive); i++) await new Promise((res) => setTimeout(res, 100));
    expect(r.children.filter(alive)).toEqual([]);
  }, 120_000);
});
