// Shrinking failing schedules by delta debugging (Zeller & Hildebrandt 2002): on the runtime's planted
// ordering bug and on the IOMMU model's unbind-while-DMA-in-flight race, the shrunk schedule is no longer than
// the input, strict-replays, and fails the same way; a passing schedule has nothing to shrink; the same input
// gives the same output. Also ddmin on its own, the guided scheduler, and the command's exit codes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import { replay, run } from '../src/runtime/run.js';
import { Schedule } from '../src/runtime/schedule.js';
import { GuidedScheduler } from '../src/runtime/schedulers/guided.js';
import { ddmin, failureSignature, NothingToShrink, shrink } from '../src/runtime/shrink.js';
import { buildWorkload } from '../src/runtime/workloads.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');

async function plantedBug(): Promise<Schedule> {
  const r = await run({
    workload: { name: 'selftest', params: { actors: 3, messages: 6, bug: 2, seed: 1 } },
    runtime: 'deterministic',
    strategy: 'pct',
    depth: 2,
    seed: 1,
    runs: 2000,
  });
  expect(r.check.problems.join('\n')).toMatch(/planted ordering bug of depth 2 triggered/);
  return r.schedule;
}

async function svaRace(): Promise<Schedule> {
  const r = await run({
    workload: { name: 'sva', params: { teardown: 'at-once', processes: 2, sequential: true, script: 'unbind-inflight' } },
    runtime: 'deterministic',
    strategy: 'pct',
    // Seeds 1-3's failing schedules are already 1-minimal since SVA binds attach through the group (ddmin removes
    // nothing); seed 4's shrinks (253 → 250 steps in 19 replays).
    seed: 4,
    runs: 500,
  });
  expect(r.findings.map((f) => f.kind)).toContain('stale_translation');
  return r.schedule;
}

async function passing(): Promise<Schedule> {
  const r = await run({
    workload: { name: 'selftest', params: { actors: 3, messages: 6, bug: 0, seed: 1 } },
    runtime: 'deterministic',
    seed: 1,
  });
  expect(r.check.ok).toBe(true);
  return r.schedule;
}

/** One guided run of `steps` of `s`. */
function guided(s: Schedule, steps: readonly number[]) {
  const scheduler = new GuidedScheduler(s, steps);
  scheduler.newExecution();
  return runDeterministic({ workload: buildWorkload(s.meta.workload.name, s.meta.workload.params), seed: s.meta.seed, scheduler });
}

describe('shrink', () => {
  it('the planted ordering bug: no longer, strict-replays, the same failed check, from fewer recorded steps', async () => {
    const input = await plantedBug();
    const r = shrink(input);
    expect(r.before).toBe(input.length);
    expect(r.after).toBeLessThanOrEqual(r.before);
    expect(r.schedule.length).toBe(r.after);
    const rp = replay(r.schedule);
    expect(rp.matches).toBe(true);
    expect(rp.check.problems.join('\n')).toMatch(/planted ordering bug of depth 2 triggered/);
    expect(failureSignature(rp)).toBe(failureSignature(replay(input)));
    expect(r.finding).toMatch(/planted ordering bug of depth 2 triggered/);
    // Every ping is answered whatever the order, so the run cannot get shorter; what shrinks is how much of
    // it has to be dictated: the default order does the rest.
    expect(r.guided).toBeLessThan(r.before);
    expect(r.runs).toBeLessThanOrEqual(2000);
  });

  it('the SVA unbind-in-flight race: strictly shorter, strict-replays, the same stale-translation finding', async () => {
    const input = await svaRace();
    const before = replay(input);
    const r = shrink(input, { maxRuns: 400 });
    expect(r.runs).toBeLessThanOrEqual(400);
    expect(r.after).toBeLessThan(r.before);
    const rp = replay(r.schedule);
    expect(rp.matches).toBe(true);
    expect(rp.steps).toBe(r.after);
    expect(rp.findings[0]?.kind).toBe('stale_translation');
    expect(new Set(rp.findings.map((f) => f.kind))).toEqual(new Set(before.findings.map((f) => f.kind)));
    expect(rp.findings[0]?.title).toMatch(/stale translation: PASID \d+ handed out again before its drain finished/);
    expect(r.schedule.meta.workload).toEqual(input.meta.workload);
    // Through the file format too.
    const dir = mkdtempSync(join(tmpdir(), 'shrink-'));
    r.schedule.save(join(dir, 'race.shrunk'));
    expect(replay(Schedule.load(join(dir, 'race.shrunk'))).traceHash).toBe(rp.traceHash);
  });

  it('is deterministic: the same input gives the same schedule, byte for byte', async () => {
    const input = await svaRace();
    const a = shrink(input, { maxRuns: 120 });
    const b = shrink(input, { maxRuns: 120 });
    expect(b.after).toBe(a.after);
    expect(b.runs).toBe(a.runs);
    expect(b.schedule.meta.traceHash).toBe(a.schedule.meta.traceHash);
    expect(Buffer.from(b.schedule.encode()).equals(Buffer.from(a.schedule.encode()))).toBe(true);
  });

  it('a passing schedule has nothing to shrink', async () => {
    const ok = await passing();
    expect(() => shrink(ok)).toThrow(NothingToShrink);
    expect(() => shrink(ok)).toThrow(/nothing to shrink/);
  });

  it('reports progress and stops at the run budget', async () => {
    const input = await svaRace();
    const seen: number[] = [];
    // ddmin needs 19 replays on this input: a budget of 10 stops it.
    const r = shrink(input, { maxRuns: 10, onProgress: (p) => seen.push(p.runs) });
    expect(r.runs).toBeLessThanOrEqual(10); // the check that the result strict-replays included
    expect(r.exhausted).toBe(true);
    expect(r.after).toBeLessThanOrEqual(r.before);
    expect(seen.length).toBeGreaterThan(0);
    expect(replay(r.schedule).matches).toBe(true);
  });
});

describe('ddmin', () => {
  it('finds the two elements a failure needs, 1-minimal', () => {
    const tested: string[] = [];
    const c = ddmin(
      Array.from({ length: 32 }, (_, i) => i),
      (x) => {
        tested.push(x.join(','));
        return x.includes(5) && x.includes(23);
      },
      () => false,
    );
    expect(c).toEqual([5, 23]);
    expect(tested.length).toBeLessThan(100);
  });
});

describe('guided scheduler', () => {
  it('the whole recorded sequence reproduces the recording exactly (task ids included)', async () => {
    const input = await svaRace();
    const r = guided(
      input,
      Array.from({ length: input.length }, (_, i) => i),
    );
    expect(r.traceHash).toBe(input.meta.traceHash);
  });

  it('any subsequence, even none, gives a complete deterministic run', async () => {
    const input = await svaRace();
    for (const steps of [[], [0, 5, 9], Array.from({ length: input.length }, (_, i) => i).filter((i) => i % 3 !== 1)]) {
      const a = guided(input, steps);
      const b = guided(input, steps);
      expect(a.steps).toBeGreaterThan(0);
      expect(b.traceHash).toBe(a.traceHash);
      // Its own recording strict-replays.
      expect(replay(a.schedule).matches).toBe(true);
    }
  });
});

describe('iommu-sim shrink', () => {
  function cli(...args: string[]): { code: number; out: string; err: string } {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  }

  it('writes <input>.shrunk (or -o) and prints before/after, the finding and the replay command; exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shrink-cli-'));
    const file = join(dir, 'bug.sched');
    (await plantedBug()).save(file);
    const r = cli('shrink', file);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^shrink: .*bug\.sched: \d+ steps, fails with: planted ordering bug of depth 2 triggered/m);
    expect(r.out).toContain(`replay with: iommu-sim replay ${file}.shrunk`);
    expect(cli('replay', `${file}.shrunk`).out).toMatch(/reproduced exactly/);
    const j = cli('shrink', file, '-o', join(dir, 'out.sched'), '--runs', '50', '--json');
    expect(j.code).toBe(0);
    const o = JSON.parse(j.out) as { before: number; after: number; out: string; replay: string };
    expect(o.after).toBeLessThanOrEqual(o.before);
    expect(o.replay).toBe(`iommu-sim replay ${join(dir, 'out.sched')}`);
  });

  it('exit 1 when the schedule does not fail, 2 when the file is not a schedule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shrink-cli-'));
    const ok = join(dir, 'ok.sched');
    (await passing()).save(ok);
    const r = cli('shrink', ok);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/nothing to shrink/);
    const junk = join(dir, 'junk.sched');
    writeFileSync(junk, 'not a schedule');
    expect(cli('shrink', junk).code).toBe(2);
    expect(cli('shrink', join(dir, 'missing.sched')).code).toBe(2);
  });
});
