// `bench --noise`: the competing busy process (started, seen busy, killed), how a noisy run's figures are named,
// and how bench:report merges them with the plain run and shows the workers curve beside it.
import { describe, expect, it } from 'vitest';
import { type BenchRun, mergeRuns, NoiseProcess } from '../bench/main.js';
import { benchmarksMarkdown } from '../src/report/markdown.js';
import { machineInfo } from '../src/report/machine.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function run(over: Partial<BenchRun>): BenchRun {
  return {
    suites: ['scaling'],
    node: process.version,
    profile: 'quick',
    date: '2026-01-01T00:00:00.000Z',
    machine: machineInfo(),
    results: [],
    ratios: {},
    details: {},
    runs: [{ suite: 'scaling', seconds: 1, foreignCores: 0, error: null }],
    index: [{ suite: 'scaling', cases: [], ratios: [] }],
    ...over,
  };
}

describe('bench --noise', () => {
  it('starts the busy process and kills it', async () => {
    const noise = new NoiseProcess();
    const pid = noise.pid;
    expect(pid).toBeTypeOf('number');
    expect(alive(pid as number)).toBe(true);
    await noise.stop();
    expect(alive(pid as number)).toBe(false);
    await noise.stop(); // stopping twice is harmless
  });

  it('merges a noisy run beside the plain one, and the report shows both workers tables', () => {
    const row = (preset: string, placement: string, eventsPerSec: number | null) => ({ preset, placement, threads: 2, actors: 18, eventsPerSec, runs: 1 });
    const plain = run({
      results: [{ name: 'scaling/workers 2 workers events', hz: 1000, meanNs: 1e6, p99Ns: 1e6, samples: 1 }],
      ratios: { scaling_2workers_vs_1: 1.2 },
      details: { scaling: { workers: [row('sva', '2 workers', 1000)] } },
    });
    const noisy = run({
      results: [{ name: 'scaling/workers 2 workers events [noise]', hz: 500, meanNs: 2e6, p99Ns: 2e6, samples: 1 }],
      ratios: { scaling_2workers_vs_1_noise: 0.9 },
      details: {
        scaling: {
          workers_noise: [
            { ...row('sva', '1 worker', 600), stepsPerSec: 2000 },
            { ...row('sva', '2 workers', 500), stepsPerSec: 1800 },
            { ...row('sva', 'ceiling: 1 thread', 900), stepsPerSec: 3000 },
            { ...row('sva', 'ceiling: 2 independent threads', 1000), stepsPerSec: 3300 },
            { ...row('mixed', 'per-actor', null), note: 'not run' },
          ],
        },
      },
      runs: [{ suite: 'scaling', seconds: 1, foreignCores: 1, error: null }],
      index: [{ suite: 'scaling', cases: ['scaling/workers 2 workers events [noise]'], ratios: ['scaling_2workers_vs_1_noise'] }],
    });
    const m = mergeRuns(plain, noisy);
    expect(m.suites).toEqual(['scaling', 'scaling --noise']);
    expect(m.ratios).toEqual({ scaling_2workers_vs_1: 1.2, scaling_2workers_vs_1_noise: 0.9 });
    expect(Object.keys(m.details.scaling ?? {})).toEqual(['workers', 'workers_noise']);
    expect(m.runs.map((r) => r.suite)).toEqual(['scaling', 'scaling --noise']);
    const md = benchmarksMarkdown({ bench: m, matrix: null, charts: [], wallSeconds: 2, dataDir: 'bench', command: 'npm run bench:report' });
    expect(md).toContain('### Against workers, beside a busy process');
    expect(md).toContain('scaling_2workers_vs_1_noise');
    // No fallback counter in these rows: n/a, not a made-up 0 %.
    expect(md).toMatch(/\| sva \| 2 workers \|[^\n]*\| n\/a \|/);
    expect(md).toContain('not run');
    // The ceiling beside a busy process too: 1 800 ÷ 2 000 steps/s against 3 300 ÷ 3 000.
    expect(md).toContain('| sva | 0.90× | 1.10× | 0.82× |');
  });
});
