// Recording and replay: a schedule replays to the same trace and outcome — a short timer or timeout
// included, a threaded run that halted at a finding included; a replay that cannot follow its recording stops
// with a ReplayDivergence saying where (step, actor) and what was expected and what was enabled; a file that is
// not a schedule of this version is refused as bad input. The command: exit 0/1 as the recorded run, 3 when
// the replay diverged, 2 for a bad file.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import '../src/kernel/workloads.js';
import { InputError, ReplayDivergence } from '../src/runtime/errors.js';
import { replay, run } from '../src/runtime/run.js';
import { Schedule } from '../src/runtime/schedule.js';
import { loadScenarioFile, scenarioParams, validateScenario } from '../src/scenario/load.js';
import { detRun } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'iommu-sim.js');

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** Seed 000's teardown with a bounded wait, on a device that drains slowly: the wait's timeout decides. */
function quarantine(drainTimeoutMs: number) {
  const s = validateScenario(
    {
      name: 'short-timer',
      title: 'quarantine after a bounded drain wait, on a slowly draining device',
      model: 'sva',
      topology: { iommus: 'vtd', devices: 1, processes: 2 },
      policies: { teardown: 'quarantine', drainTimeoutMs },
      workload: { script: 'unbind-inflight', dmas: 6 },
      faults: { misbehave: 'slow-drain' },
      explore: { strategy: 'random', runs: 1, seed: 1 },
    },
    'short-timer.yaml',
  );
  return { name: s.model, params: scenarioParams(s) };
}

describe('replay', () => {
  it('a deterministic recording replays to the same trace hash, through the file format', () => {
    const r = detRun('pct', 5, { actors: 4, messages: 40 });
    const bytes = r.schedule.encode();
    expect(bytes.length).toBeLessThan(r.steps * 6 + 512); // a few bytes a step
    const back = Schedule.decode(bytes);
    expect(back.length).toBe(r.steps);
    const rp = replay(back);
    expect(rp.traceHash).toBe(r.traceHash);
    expect(rp.matches).toBe(true);
  });

  it('a schedule for other workload parameters diverges at a named step', () => {
    const r = detRun('random', 3, { actors: 3, messages: 10, seed: 3 });
    // Same steps, but the workload's seed changes who pings whom.
    const other = new Schedule(
      { ...r.schedule.meta, workload: { name: 'selftest', params: { ...r.schedule.meta.workload.params, seed: 4 } } },
      ...columns(r.schedule),
    );
    let err: unknown;
    try {
      replay(other);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplayDivergence);
    const d = err as ReplayDivergence;
    expect(d.step).toBeGreaterThan(0);
    expect(d.message).toMatch(/^replay diverged at step \d+: expected selftest\/\d+ to handle '[\w.]+' from [\w/]+, but /);
  });

  it('a truncated schedule reports that the run goes on past the recording', () => {
    const r = detRun('random', 3, { actors: 3, messages: 10 });
    const [rc, sc, ec, names] = columns(r.schedule);
    const cut = new Schedule(r.schedule.meta, rc.slice(0, 20), sc.slice(0, 20), ec.slice(0, 20), names);
    expect(() => replay(cut)).toThrow(/replay diverged at step 20: expected the run to end after 20 steps, but \d+ steps are still enabled/);
  });

  it('a schedule file that is not one is bad input', () => {
    expect(() => Schedule.decode(new Uint8Array([1, 2, 3]), 'x.sched')).toThrow(/x.sched: not/);
  });

  it('a file with no meta, truncated, of another version or with a damaged field is refused, naming what is wrong', () => {
    const bytes = detRun('random', 3, { actors: 3, messages: 10 }).schedule.encode();
    const raw = unpack(bytes) as Record<string, unknown>;
    const { meta, ...noMeta } = raw;
    const cases: [Uint8Array, RegExp][] = [
      [pack(noMeta), /schedule file is damaged \(meta: /],
      [bytes.subarray(0, bytes.length >> 1), /not a schedule file, or a truncated one/],
      [pack({ ...raw, version: 1 }), /version 1 is not supported \(this iommu-sim reads version 2\); record the run again/],
      [pack({ ...raw, meta: { ...(meta as object), seed: 'x' } }), /damaged \(meta\.seed: /],
      [pack({ ...raw, meta: { ...(meta as object), end: undefined } }), /damaged \(meta\.end: /],
      [pack({ ...raw, steps: (raw.steps as Uint8Array).subarray(0, 5) }), /truncated/],
      // Happens-before edges (threaded recordings): one past the last step, one from a step to itself, one cut.
      [pack({ ...raw, hb: Uint8Array.from([0xff, 0x7f, 1, 10]) }), /happens-before edge 16382 → 16383 is not between two of its \d+ steps/],
      [pack({ ...raw, hb: Uint8Array.from([5, 0, 10]) }), /happens-before edge 5 → 5 is not between two/],
      [pack({ ...raw, hb: Uint8Array.from([5, 0x80]) }), /happens-before edges are truncated/],
    ];
    for (const [b, why] of cases) {
      let err: unknown;
      try {
        Schedule.decode(b, 'x.sched');
      } catch (e) {
        err = e;
      }
      expect(err, String(why)).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(why);
    }
  });
});

describe('replay of timers and timeouts', () => {
  it('a 10 ms drain timeout on a slowly draining device records and replays to the same hash (and 1000 ms too)', async () => {
    for (const ms of [10, 1000]) {
      const r = await run({ workload: quarantine(ms), runtime: 'deterministic', strategy: 'random', seed: 1, runs: 1 });
      // The short wait really timed out (the PASIDs were quarantined); the long one did not.
      expect(r.check.counters.quarantined, `drainTimeoutMs ${ms}`).toBe(ms === 10 ? 2 : 0);
      const rp = replay(Schedule.decode(r.schedule.encode()));
      expect(rp.traceHash, `drainTimeoutMs ${ms}`).toBe(r.traceHash);
      expect(rp.matches).toBe(true);
    }
  });

  it('threaded, the 10 ms timeout on real time: the recorded step times replay it to the same hash', async () => {
    const r = await run({ workload: quarantine(10), runtime: 'threaded', workers: 2, seed: 1 });
    expect(r.check.counters.quarantined).toBe(2);
    const rp = replay(Schedule.decode(r.schedule.encode()));
    expect(rp.mismatch).toBeUndefined();
    expect(rp.traceHash).toBe(r.traceHash);
  });

  it('a planted divergence (the recording replayed with another timeout) names the step, the expected step and the enabled ones', async () => {
    const r = await run({ workload: quarantine(10), runtime: 'deterministic', strategy: 'random', seed: 1, runs: 1 });
    const other = Schedule.decode(
      pack({ ...(unpack(r.schedule.encode()) as object), meta: { ...r.schedule.meta, workload: quarantine(1000) } }),
    );
    expect(() => replay(other)).toThrow(
      /^replay diverged at step \d+: expected task proc\d to handle 'wait for 0000:01:00\.0 to drain PASID \d' from task, but no such step is enabled \(enabled: .+\)$/,
    );
  });

  it('threaded runs that halted at a finding replay exactly, through every recorded step', async () => {
    const s = await loadScenarioFile(join(ROOT, 'races', '000-exit-racing-bind-task.yaml'));
    let halted = 0;
    for (let seed = 1; seed <= 3; seed++) {
      const r = await run({ workload: { name: s.model, params: scenarioParams(s) }, runtime: 'threaded', workers: 2, seed, runs: 4 });
      const sched = Schedule.decode(r.schedule.encode());
      expect(sched.times?.length).toBe(r.steps);
      if (sched.meta.end === 'halted') halted++;
      const rp = replay(sched);
      expect(rp.mismatch).toBeUndefined();
      expect(rp.traceHash).toBe(r.traceHash);
      expect(rp.findings.map((f) => f.kind)[0]).toBe(r.findings.map((f) => f.kind)[0]);
    }
    expect(halted).toBeGreaterThan(0);
  });
});

describe('every shipped script: a recording replays exactly (bounded: deterministic once each, a few threaded)', () => {
  const files = ['races', 'scenarios'].flatMap((d) =>
    readdirSync(join(ROOT, d))
      .filter((f) => /\.(ya?ml|ts)$/.test(f))
      .sort()
      .map((f) => join(ROOT, d, f)),
  );
  it.each(files)('%s', async (file) => {
    const s = await loadScenarioFile(file);
    const workload = { name: s.model, params: scenarioParams(s) };
    const r = await run({ workload, runtime: 'deterministic', strategy: s.explore.strategy, depth: s.explore.depth, seed: s.explore.seed, runs: Math.min(s.explore.runs, 50) });
    const rp = replay(Schedule.decode(r.schedule.encode()));
    expect(rp.mismatch).toBeUndefined();
    expect(rp.traceHash).toBe(r.traceHash);
    if (/000-(pasid-reuse|dma-after-stop|scripted-reuse)|003-quota-race/.test(file)) {
      const t = await run({ workload, runtime: 'threaded', workers: 2, seed: 1 });
      const tp = replay(Schedule.decode(t.schedule.encode()));
      expect(tp.mismatch).toBeUndefined();
      expect(tp.traceHash).toBe(t.traceHash);
    }
  });
});

describe('iommu-sim replay: exit status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-exit-'));
  const yaml = (ms: number): string =>
    [
      'name: short-timer',
      'title: quarantine after a bounded drain wait, on a slowly draining device',
      'model: sva',
      'topology: { iommus: vtd, devices: 1, processes: 2 }',
      `policies: { teardown: quarantine, drainTimeoutMs: ${ms} }`,
      'workload: { script: unbind-inflight, dmas: 6 }',
      'faults: { misbehave: slow-drain }',
      'explore: { strategy: random, runs: 1, seed: 1 }',
      '',
    ].join('\n');

  it('0 for a passing run reproduced, 1 for a finding reproduced, 3 for a divergence, 2 for a bad file', () => {
    writeFileSync(join(dir, 'short.yaml'), yaml(10));
    const rec = cli('run', join(dir, 'short.yaml'), '--record', join(dir, 'r.sched'), '--json');
    expect(rec.code).toBe(0);
    const ok = cli('replay', join(dir, 'r.sched'));
    expect(ok.code).toBe(0);
    expect(ok.out).toContain(`trace hash ${(JSON.parse(rec.out) as { traceHash: string }).traceHash}; reproduced exactly`);

    const bug = cli('run', join(ROOT, 'races', '003-ioasid-mutex-rcu-free.yaml'), '--record', join(dir, 'f.sched'));
    expect(bug.code).toBe(0); // the race script expects its finding
    expect(cli('replay', join(dir, 'f.sched')).code).toBe(1);

    const raw = unpack(readFileSync(join(dir, 'r.sched'))) as { meta: { workload: { params: Record<string, unknown> } } };
    raw.meta.workload.params.drainTimeoutMs = 1000;
    writeFileSync(join(dir, 'planted.sched'), pack(raw));
    const div = cli('replay', join(dir, 'planted.sched'), '--json');
    expect(div.code).toBe(3);
    const j = JSON.parse(div.out) as { status: string; divergence: { step: number; expected: string; actual: string } };
    expect(j.status).toBe('diverged');
    expect(j.divergence.expected).toMatch(/wait for 0000:01:00\.0 to drain PASID/);
    expect(j.divergence.actual).toMatch(/^no such step is enabled \(enabled: /);

    const { meta: _meta, ...noMeta } = unpack(readFileSync(join(dir, 'r.sched'))) as Record<string, unknown>;
    writeFileSync(join(dir, 'nometa.sched'), pack(noMeta));
    writeFileSync(join(dir, 'trunc.sched'), readFileSync(join(dir, 'r.sched')).subarray(0, 100));
    for (const f of ['nometa.sched', 'trunc.sched']) {
      const bad = cli('replay', join(dir, f));
      expect(bad.code, f).toBe(2);
      expect(bad.err, f).toMatch(new RegExp(`^iommu-sim: .*${f.replace('.', '\\.')}: `));
      expect(bad.err, f).not.toMatch(/\n\s+at /); // no stack trace
    }
    expect(cli('replay', '--help').out).toMatch(/3 {2}diverged/);
  });
});

function columns(s: Schedule): [Int32Array, Int32Array, Int32Array, Map<number, string>] {
  const n = s.length;
  const r = new Int32Array(n);
  const snd = new Int32Array(n);
  const e = new Int32Array(n);
  const names = new Map<number, string>();
  for (let i = 0; i < n; i++) {
    r[i] = s.receiver(i);
    snd[i] = s.sender(i);
    e[i] = s.event(i);
    names.set(s.event(i), s.eventName(i));
  }
  return [r, snd, e, names];
}
