// Issue #7's commands keep their shapes: `bench --json` (one quick suite, in its child process) and `--out`,
// `matrix --json` on a tiny budget with scenario files written here (so the test does not depend on races/
// as others edit it), bad input exiting 2, and the report generator making Markdown (targets judged, tables,
// charts linked) and an SVG chart from a small fixture. No wall-clock limit is asserted: figures are the
// benchmarks' business; here only shapes, counts and ratios of the fixture.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { POLICIES } from '../src/cli/matrix.js';
import { renderSvg, reportCharts } from '../src/report/charts.js';
import { benchmarksMarkdown, matrixMarkdown } from '../src/report/markdown.js';
import { judgeTargets } from '../src/report/targets.js';
import type { BenchRunData, MatrixReport } from '../src/report/types.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('iommu-sim bench', () => {
  it('--quick --json --out: one suite in its own process, the results/ratios shape, progress lines, bench.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-bench-'));
    const r = cli('bench', 'syspasid', '--quick', '--json', '--out', dir);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as BenchRunData;
    expect(j.suites).toEqual(['syspasid']);
    expect(j.profile).toBe('quick');
    expect(j.machine.cores).toBeGreaterThan(0);
    expect(j.runs.map((x) => [x.suite, x.error])).toEqual([['syspasid', null]]);
    expect(j.index).toEqual([{ suite: 'syspasid', cases: j.results.map((x) => x.name), ratios: ['syspasid_opt2_vs_opt1'] }]);
    for (const x of j.results) {
      expect(Object.keys(x).sort()).toEqual(['hz', 'meanNs', 'name', 'p99Ns', 'samples']);
      expect(x.hz).toBeGreaterThan(0);
    }
    // The ratio's figure is asserted paired, in test/bench.test.ts: a quick run's swings with the machine's load
    // (1.06× to 8.6× measured here).
    expect(Number.isFinite(j.ratios.syspasid_opt2_vs_opt1)).toBe(true);
    // A progress line per case on stderr, and the JSON alone on stdout.
    expect(r.err).toMatch(/^bench \[1\/1\] syspasid: system PASID options 1 and 2 \(/m);
    expect(r.err).toMatch(/^bench \[1\/1\] syspasid: done in /m);
    expect(JSON.parse(readFileSync(join(dir, 'bench.json'), 'utf8'))).toEqual(j);
  });

  it('an unknown suite exits 2 naming the known ones; --help lists every suite and --out', () => {
    const r = cli('bench', 'runtime', 'nosuchsuite');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown benchmark suite 'nosuchsuite' \(known: runtime, kernel, sva, domains, ioasid, syspasid, seed000, explore, scaling\)/);
    const h = cli('bench', '--help');
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/runtime,\s+kernel,\s+sva,\s+domains,\s+ioasid,\s+syspasid,\s+seed000,\s+explore,\s+scaling/);
    expect(h.out).toMatch(/--out <dir>/);
    expect(h.out).toMatch(/child process/);
  });
});

// A race of seed 003 written here: the allocator lock as a mutex, freed from the RCU callback (a finding in every
// schedule); its fix the spinlock with the atomic chain (none). And a "random" ioasid workload (named random.yaml).
const RACE = `name: t-ioasid-mutex
seed: '003'
title: test race
model: ioasid
topology: { bits: 8, processes: 2, vms: 0 }
policies: { lock: mutex, chain: blocking, free: rcu }
fix: { lock: spinlock, chain: atomic }
expect: { findings: [might_sleep, lockdep], forbid: any }
explore: { strategy: random, runs: 4, seed: 1 }
`;
const RANDOM = `name: t-random
title: test random workload
model: ioasid
topology: { bits: 8, processes: 2, vms: 1 }
explore: { strategy: random, runs: 4, seed: 1 }
`;

describe('iommu-sim matrix', () => {
  it('--json on a tiny budget: every policy row, finding rates from the model, throughput from --bench, the fix pair', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-matrix-'));
    const race = join(dir, 'race.yaml');
    const random = join(dir, 'random.yaml');
    writeFileSync(race, RACE);
    writeFileSync(random, RANDOM);
    const bench = join(dir, 'bench.json');
    const row = (name: string, hz: number) => ({ name, hz, meanNs: 1e9 / hz, p99Ns: 1e9 / hz, samples: 1 });
    writeFileSync(bench, JSON.stringify({ results: [row('ioasid_find_spinlock_2readers_1updater', 300), row('ioasid_find_mutex_2readers_1updater', 100)] }));
    const out = join(dir, 'out');
    const r = cli('matrix', race, random, '--runs', '4', '--chunk', '2', '--workers', '1', '--bench', bench, '--json', '--out', out);
    expect(r.code, r.err).toBe(0);
    const m = JSON.parse(r.out) as MatrixReport;
    expect(m.policies.map((p) => p.policy)).toEqual(POLICIES.map((p) => p.policy));
    expect(m.workloads.map((w) => [w.name, w.kind])).toEqual([
      ['t-ioasid-mutex', 'race'],
      ['t-random', 'random'],
    ]);
    const lock = m.policies.find((p) => p.param === 'lock');
    expect(lock?.workloads).toEqual(['t-ioasid-mutex', 't-random']);
    const cell = (value: string, workload: string) => lock?.values.find((v) => v.value === value)?.cells.find((c) => c.workload === workload)?.rate;
    // On the race, the chain is fixed (atomic): the mutex fails every schedule, the spinlock none.
    expect(cell('mutex', 't-ioasid-mutex')).toMatchObject({ perThousand: 1000, byKind: { might_sleep: 1000 } });
    expect(cell('spinlock', 't-ioasid-mutex')).toMatchObject({ failing: 0, perThousand: 0 });
    expect(cell('spinlock', 't-ioasid-mutex')?.schedules).toBeGreaterThanOrEqual(4);
    expect(lock?.values.map((v) => v.throughput?.hz)).toEqual([300, 100]);
    expect(lock?.ratio).toEqual({ name: 'spinlock vs mutex', value: 3 });
    // No workload of these two names the sva or domains policies: they are in the notes, with no cells.
    expect(m.policies.find((p) => p.param === 'teardown')?.workloads).toEqual([]);
    expect(m.notes.some((n) => n.startsWith('PASID teardown: no workload'))).toBe(true);
    expect(m.fixPairs).toHaveLength(1);
    expect(m.fixPairs[0]).toMatchObject({ workload: 't-ioasid-mutex', fix: 'lock=spinlock chain=atomic', verdict: 'ok' });
    expect(m.fixPairs[0]?.bugRate?.perThousand).toBe(1000);
    // Each variant over the script's own budget (its explore.runs, 4), judged: every schedule shows it.
    expect(m.fixPairs[0]).toMatchObject({ bugShowing: 4, bugSchedules: 4, hazard: 'deterministic hazard' });
    expect(m.fixPairs[0]?.fixRate?.perThousand).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8'))).toEqual(m);
    const md = readFileSync(join(out, 'matrix.md'), 'utf8');
    expect(md).toMatch(/\| IOASID lock \(003, `lock`\) \| `spinlock` \|/);
    expect(md).toMatch(/spinlock vs mutex: 3\.00×/);
  });

  it('bad input exits 2', () => {
    expect(cli('matrix', '--runs', '0').code).toBe(2);
    expect(cli('matrix', '/nonexistent/race.yaml', '--no-throughput').code).toBe(2);
    const r = cli('matrix', '--bench', '/nonexistent/bench.json');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--bench \/nonexistent\/bench.json/);
  });
});

/** A run of two suites, small enough to read: limits, a couple of model figures, explore and scaling details. */
function fixture(): { bench: BenchRunData; matrix: MatrixReport } {
  const row = (name: string, hz: number) => ({ name, hz, meanNs: 1e9 / hz, p99Ns: 2e9 / hz, samples: 5 });
  const results = [
    row('deterministic_steps', 150_000),
    row('xstate_floor_selftest', 180_000),
    row('raw_ring_1', 8_000_000),
    row('transport_1', 4_800_000),
    row('postmessage', 600_000),
    row('xstate_send', 400_000),
    row('actors_xstate_2workers', 150_000),
    row('actors_xstate_2workers_recorded', 135_000),
    row('explore/r1/pct (1 thread)', 1_200),
    row('explore/r1/pct (2-worker pool)', 2_100),
  ];
  const bench: BenchRunData = {
    suites: ['runtime', 'explore'],
    node: 'v20.20.2',
    profile: 'report',
    date: '2026-01-02T03:04:05.000Z',
    machine: { cpu: 'Test CPU', cores: 2, memoryGiB: 24, node: 'v20.20.2', os: 'linux', loadAverage: 0.1 },
    results,
    ratios: { transport_vs_raw: 0.6, recording_on_vs_off: 0.9 },
    details: {
      explore: {
        explore: [
          { race: 'r1', strategy: 'pct', depth: 3, mode: '1 thread', expectsFinding: true, stepsPerSchedule: 98, schedulesPerSec: 1_200, schedules: 600, seconds: 0.5, firstSchedules: 12, firstMs: 10, firstKind: 'kasan' },
          { race: 'r1', strategy: 'pct', depth: 3, mode: '2-worker pool', expectsFinding: true, stepsPerSchedule: 98, schedulesPerSec: 2_100, schedules: 1050, seconds: 0.5, firstSchedules: 20, firstMs: 9, firstKind: 'kasan' },
          { race: 'r2', strategy: 'pct', depth: 3, mode: '1 thread', expectsFinding: true, stepsPerSchedule: 400, schedulesPerSec: 90, schedules: 140, seconds: 1.5, firstSchedules: null, firstMs: null, firstKind: null },
        ],
        sustained: [{ race: 'r1', stepsPerSchedule: 98, seconds: 4, oneThread: 1_100, pool: 1_650, poolVsOne: 1.5, machineTwoVsOne: 1.75 }],
      },
    },
    runs: [
      { suite: 'runtime', seconds: 30, foreignCores: 0.01, error: null },
      { suite: 'explore', seconds: 40, foreignCores: 0.5, error: null },
    ],
    index: [
      { suite: 'runtime', cases: results.slice(0, 8).map((r) => r.name), ratios: ['transport_vs_raw', 'recording_on_vs_off'] },
      { suite: 'explore', cases: results.slice(8).map((r) => r.name), ratios: [] },
    ],
  };
  const rate = (failing: number, schedules: number, kind: string) => ({
    schedules,
    failing,
    perThousand: (1000 * failing) / schedules,
    byKind: failing > 0 ? { [kind]: (1000 * failing) / schedules } : {},
    counts: failing > 0 ? { [kind]: failing } : {},
  });
  const matrix: MatrixReport = {
    date: bench.date,
    node: 'v20.20.2',
    runs: 100,
    maxSteps: 150_000,
    chunk: 16,
    workers: 2,
    seconds: 12,
    workloads: [{ name: 'r1', file: 'r1.yaml', model: 'domains', kind: 'race' }],
    notes: ['stress/random.yaml is not there yet: the random workload is skipped (race scripts only)'],
    policies: [
      {
        policy: 'domain-for-PASID lookup',
        seed: '002',
        model: 'domains',
        param: 'lookup',
        unit: 'lookups/s',
        workloads: ['r1'],
        ratio: { name: 'rcu vs mutex', value: 2.5 },
        values: [
          { value: 'mutex', label: 'under group mutex', total: rate(0, 100, ''), cells: [{ workload: 'r1', rate: rate(0, 100, '') }], throughput: { case: 'm', hz: 100 } },
          { value: 'rcu', label: 'RCU xarray', total: rate(30, 100, 'kasan'), cells: [{ workload: 'r1', rate: rate(30, 100, 'kasan') }], throughput: { case: 'r', hz: 250 } },
        ],
      },
    ],
    fixPairs: [
      { workload: 'r1', seed: '002', bug: 'users=unrefcounted', fix: 'users=refcounted', expects: ['kasan'], bugRate: rate(30, 100, 'kasan'), fixRate: rate(0, 100, ''), bugShowing: 30, bugSchedules: 100, hazard: 'race', error: null, verdict: 'ok' },
      { workload: 'h1', seed: '003', bug: 'lock=mutex', fix: 'lock=spinlock', expects: ['might_sleep'], bugRate: rate(20, 20, 'might_sleep'), fixRate: rate(0, 20, ''), bugShowing: 20, bugSchedules: 20, hazard: 'deterministic hazard', error: null, verdict: 'ok' },
    ],
    throughputFrom: 'bench.json',
  };
  return { bench, matrix };
}

describe('the benchmark report', () => {
  it('judges the targets against the same run: PASS, FAIL, NOT MEASURED, as the fixture says', () => {
    const t = judgeTargets(fixture().bench);
    const v = (prefix: string) => t.find((x) => x.target.startsWith(prefix))?.verdict;
    expect(v('mailbox transport ≥ 0.5× raw ring')).toBe('PASS'); // 4.8 M / 8 M = 0.6
    expect(v("actor events across two workers")).toBe('FAIL'); // 150 k / 400 k = 0.375
    expect(v('deterministic runtime ≥ 200 000 steps/s, actor steps')).toBe('FAIL'); // 150 k < 200 k
    expect(t.find((x) => x.target.includes('actor steps'))?.figure).toBe('0.75× the target; 0.83× bare XState'); // 150 k / 180 k
    expect(v('deterministic runtime ≥ 200 000 steps/s, task steps')).toBe('NOT MEASURED'); // the kernel suite did not run
    // The sustained run, not the table's short one, is what the schedules/s targets judge.
    expect(v('≥ 1 000 schedules/s')).toBe('PASS'); // r1: 98 steps, 1 100/s sustained
    expect(v('≥ 1.6× that')).toBe('FAIL'); // 1 650 / 1 100 = 1.5
    expect(t.find((x) => x.target.startsWith('≥ 1.6× that'))?.figure).toBe('1.50× (≥ 1.6×); 0.86× of what the machine allows');
    expect(v('every race in races/')).toBe('FAIL'); // r2 not found
    expect(v('recording on')).toBe('PASS'); // 0.9
    expect(v('all checkers on')).toBe('NOT MEASURED');
    expect(v('10 000 actors')).toBe('NOT MEASURED');
    expect(v('a 1 048 575-PASID')).toBe('NOT MEASURED'); // the ioasid suite did not run
  });

  it('judges the full-space cycle by its time against the bound, not by its completion', () => {
    const { bench } = fixture();
    const cycle = (allocHz: number, freeHz: number, profile: BenchRunData['profile']) => {
      const row = (name: string, hz: number) => ({ name, hz, meanNs: 1e9 / hz, p99Ns: 1e9 / hz, samples: 1 });
      const t = judgeTargets({ ...bench, profile, results: [...bench.results, row('ioasid_alloc_full_space', allocHz), row('ioasid_free_full_space', freeHz)] });
      return t.find((x) => x.target.startsWith('a 1 048 575-PASID'));
    };
    // 1 048 575 / 54 k + 1 048 575 / 58 k = 37.5 s ≤ 60 s; at a tenth of the rates, 375 s.
    expect(cycle(54_000, 58_000, 'report')).toMatchObject({ verdict: 'PASS', measured: 'allocated and freed in 37.5 s', figure: '0.62× the bound' });
    expect(cycle(5_400, 5_800, 'report')?.verdict).toBe('FAIL');
    expect(cycle(54_000, 58_000, 'quick')?.verdict).toBe('NOT MEASURED');
  });

  it('writes Markdown from a run: machine, targets, limits beside each figure, matrix, exploration, charts linked', () => {
    const { bench, matrix } = fixture();
    const md = benchmarksMarkdown({
      bench,
      matrix,
      charts: [{ file: 'bench-limits.svg', title: 'limits', section: 'limits' }],
      wallSeconds: 300,
      dataDir: 'bench',
      command: 'npm run bench:report',
    });
    for (const h of ['# iommu-sim benchmarks', '## Machine', '## Targets', '## Physical limits', '## Suites', '### runtime', '## Policy matrix', '## Exploration speed', '## Scaling']) {
      expect(md.split('\n')).toContain(h);
    }
    expect(md).toMatch(/\| Test CPU \| 2 \| 24\.0 GiB \| v20\.20\.2 \|/);
    expect(md).toMatch(/in 5\.0 minutes/);
    // transport_1 beside the limits: 0.6× the raw ring, 12× XState's send, 8× postMessage.
    expect(md).toMatch(/\| transport_1 \| 4\.80 M \| [^|]+ \| [^|]+ \| 5 \| 0\.60× \| 12\.00× \| 8\.00× \|/);
    expect(md).toMatch(/\| mailbox transport ≥ 0\.5× raw ring \|[^\n]*\*\*PASS\*\* \|/);
    expect(md).toContain('![limits](bench-limits.svg)');
    expect(md).toMatch(/\| domain-for-PASID lookup \(002, `lookup`\) \| `mutex` — under group mutex \| 1 \| 100 \| 0 \|/);
    // The races against their fix: a race with the fraction of schedules showing it, a deterministic hazard.
    expect(md).toMatch(/\| r1 \| 002 \| `users=refcounted` \| kasan \| race \| 30 of 100 \(30 %\) \| kasan 300\.0 \| 0 \| ok \|/);
    expect(md).toMatch(/\| h1 \| 003 \| `lock=spinlock` \| might_sleep \| deterministic hazard \| 20 of 20 \(100 %\) \| might_sleep 1000\.0 \| 0 \| ok \|/);
    expect(md).toMatch(/a \*\*deterministic hazard\*\* shows its finding on every schedule of the budget/);
    expect(md).toMatch(/\| r1 \| pct \(d=3\) \| 98 \| 1200 \| 2100 \| 1\.75× \| 12 \(10 ms, kasan\) \| 20 \(9 ms, kasan\) \|/);
    expect(md).toContain('> Note: stress/random.yaml is not there yet');
    expect(md).toMatch(/Sustained, the figure the targets judge: r1 \(PCT, 98 steps a schedule[^\n]*1100 schedules\/s on one thread, 1650 on the pool \(1\.50×\)[^\n]*1\.75× the work of one/);
    expect(md).toContain('Other processes kept 0.50 cores busy during explore');
    expect(matrixMarkdown(matrix)).toMatch(/^# iommu-sim policy matrix\n/);
  });

  it('renders its charts to SVG without a browser', async () => {
    const { bench, matrix } = fixture();
    const charts = reportCharts(bench, matrix);
    expect(charts.map((c) => c.file)).toEqual(['bench-limits.svg', 'bench-matrix.svg', 'bench-explore-races.svg']);
    const svg = await renderSvg((charts[0] as (typeof charts)[number]).spec);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('transport_1');
  });
});
