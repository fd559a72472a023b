// Live stress status and budgets honoured at scheduling points (issue #20, deliverable 2): `stress` on a
// pseudo-terminal draws a bar and prints a status line per configured interval (counted in runs, or on an
// injected clock — never in seconds); once its budget has passed it starts no run and stops the one in flight at
// its next scheduling point (counted in steps: at most one point per worker after the stop).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { describe as barText } from '../src/cli/progress.js';
import { statusIntervalArg, stressRuns } from '../src/cli/stress.js';
import { expectationFor } from '../src/scenario/expect.js';
import { exploreScenario } from '../src/scenario/explore.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import { replay, run } from '../src/runtime/run.js';
import '../src/workloads/index.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'iommu-sim.js');
/** util-linux `script` gives the command a pseudo-terminal (no new dependency); absent, the pty test is skipped. */
const SCRIPT = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences are what is stripped
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g;

/** What a terminal shows, line by line: escape sequences and carriage returns dropped, the bar's redraws kept apart. */
function screenLines(raw: string): string[] {
  return raw
    .replace(ANSI, '\n')
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

const SMALL = { devices: 1, processes: 2 };

describe('stress on a terminal: a bar, a status line per interval, a budget honoured at scheduling points', () => {
  it.skipIf(!SCRIPT)('under a pseudo-terminal draws a bar of the budget and prints a status line every 2 runs ended', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stress-pty-'));
    const file = join(dir, 'tiny.yaml');
    writeFileSync(file, `name: tiny\ntitle: a tiny stress\nmodel: sva\ntopology: { devices: ${SMALL.devices}, processes: ${SMALL.processes} }\n`);
    const cmd = [process.execPath, BIN, 'stress', file, '--duration', '4s', '--status-interval', '2runs', '--workers', '2', '--record', join(dir, 't.sched')]
      .map((a) => `'${a}'`)
      .join(' ');
    const r = spawnSync('script', ['-qefc', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
    const raw = r.stdout;
    // The bar: drawn on the terminal (cli-progress' shades), with the budget's clock, the runs and the events' rate.
    expect(raw).toMatch(/sva-torture \[[█░]{24}\] \d+s\/4s, \d+s left · \d+ runs, [\d.]+ runs\/s · run \d+, events \d+ \([\d.]+k?\/s\), findings 0/);
    const lines = screenLines(raw);
    const runLines = lines.filter((l) => /^sva-torture: run \d+ seed \d+:/.test(l));
    const status = lines.filter((l) => /^sva-torture: status: /.test(l));
    const summary = lines.find((l) => /^stress: tiny: \d+ threaded runs? in/.test(l));
    expect(summary, raw).toBeDefined();
    const started = Number(/(\d+) threaded run/.exec(summary ?? '')?.[1]);
    // Every run started has its line, and a status line was printed after every second one: counted, not timed.
    expect(runLines).toHaveLength(started);
    expect(status).toHaveLength(Math.floor(started / 2));
    for (const s of status) expect(s).toMatch(/^sva-torture: status: [\d.]+ s of 4 s, runs \d+, events \d+ \([\d.]+k?\/s\), findings 0$/);
    // A run stopped by the budget is the last one started, and took at most a point per worker after the stop.
    const cutAt = runLines.findIndex((l) => /stopped by the budget/.test(l));
    if (cutAt >= 0) {
      expect(cutAt).toBe(runLines.length - 1);
      const m = /(\d+) steps?, stopped by the budget at step (\d+) \((\d+) after, (\d+) workers?\)/.exec(runLines[cutAt] ?? '');
      expect(m).not.toBeNull();
      const [, steps, at, after, workers] = (m ?? []).map(Number) as number[];
      expect(after).toBe((steps as number) - (at as number));
      expect(after).toBeLessThanOrEqual(workers as number);
    }
    // Judged on the runs that ended (on a loaded machine the first may outlast the budget: then nothing was).
    const shown = lines.filter((l) => !l.startsWith('sva-torture [')).join('\n');
    if (runLines.length === 1 && cutAt === 0) {
      expect(shown).toMatch(/^stress: no run ended within the 4 s budget \(run 1 was stopped at step \d+\): nothing judged/m);
      expect(r.status).toBe(1);
    } else {
      expect(lines, shown).toContain('stress: SUCCESS');
      expect(r.status).toBe(0);
    }
  }, 180_000);
});

describe('the budget: no run starts after it, and the run in flight stops at its next scheduling point', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('a threaded run cut midway took at most one point per worker after the stop, and its recording replays', async () => {
    const cut = new AbortController();
    const r = await run({
      workload: { name: 'sva', params: { devices: 2, processes: 8, script: 'stress', rounds: 40, dmas: 8, seed: 3 } },
      runtime: 'threaded',
      seed: 3,
      workers: 2,
      // The budget, counted in steps: raised once 300 steps were seen.
      onProgress: (_d, _s, steps) => {
        if ((steps ?? 0) >= 300) cut.abort();
      },
      cut: cut.signal,
    });
    expect(r.cut).toBeDefined();
    const atStep = r.cut?.atStep ?? 0;
    expect(atStep).toBeGreaterThanOrEqual(300);
    expect(r.steps - atStep).toBeLessThanOrEqual(r.workers ?? 1);
    expect(r.executions).toBe(1);
    // Cut, not ended: no end-of-run checker judged a state halfway through; the recording is a replayable prefix.
    expect(r.schedule.meta.end).toBe('halted');
    const again = replay(r.schedule);
    expect(again.mismatch).toBeUndefined();
    expect(again.steps).toBe(r.steps);
  }, 120_000);

  it('stress on an injected clock: a status line per interval of it, no run started after the budget', async () => {
    const printed: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => {
      printed.push(line);
    });
    // The clock advances one unit at each reading (the stress reads it about every ms while a run goes).
    let tick = 0;
    const out = await stressRuns({
      tag: 'sva',
      model: 'sva',
      params: { ...SMALL },
      seconds: 2,
      seed: 1,
      placement: 'sharded',
      workers: 2,
      keepGoing: false,
      json: false,
      status: { every: 'ms', n: 250 },
      clock: () => tick++,
    });
    const status = printed.filter((l) => l.startsWith('sva-torture: status: '));
    const runLines = printed.filter((l) => /^sva-torture: run \d+ seed/.test(l));
    // One line per 250 units of the clock the stress read, the last reading included.
    expect(status).toHaveLength(Math.floor((out.seconds * 1000) / 250));
    expect(out.statusLines).toBe(status.length);
    expect(runLines).toHaveLength(out.runs);
    // Past the budget: a run in flight was cut (and was the last started), or it passed between runs and none started.
    expect(out.seconds * 1000).toBeGreaterThanOrEqual(2000);
    if (out.cut) {
      expect(out.cut.run).toBe(out.runs);
      expect(out.cut.steps - out.cut.atStep).toBeLessThanOrEqual(out.cut.workers);
    }
  }, 120_000);
});

describe('the bar and the interval, as written', () => {
  it('--status-interval takes a duration, a number of runs, or 0 for none; refuses anything else', () => {
    expect(statusIntervalArg('10s')).toEqual({ every: 'ms', n: 10_000 });
    expect(statusIntervalArg('500ms')).toEqual({ every: 'ms', n: 500 });
    expect(statusIntervalArg('5runs')).toEqual({ every: 'runs', n: 5 });
    expect(statusIntervalArg('1run')).toEqual({ every: 'runs', n: 1 });
    expect(statusIntervalArg('0')).toBeNull();
    expect(() => statusIntervalArg('0runs')).toThrow(/every 0 runs/);
    expect(() => statusIntervalArg('often')).toThrow(/'often' is not a status interval/);
  });

  it('a bar says its rate and the time left: of a true total, of a cap (at most), of a budget', () => {
    expect(barText(300, 1200, '', 10_000, {})).toBe('25% 300/1200, 30/s, 30s left');
    expect(barText(300, 1200, '2 failing', 10_000, { cap: true, unit: 'runs' })).toBe('25% 300/1200 runs, 30/s, ≤ 30s left · 2 failing');
    expect(barText(12, 0, 'run 13', 15_000, { budgetMs: 60_000, unit: 'runs' })).toBe('15s/1m00s, 45s left · 12 runs, 0.8 runs/s · run 13');
    expect(barText(2_500_000, 0, '', 100_000, {})).toBe('2500000, 25.0k/s, 1m40s');
  });
});

describe('explore --time: no execution starts after the budget, in a chunk in flight either', () => {
  it('run(): a budget already past lets the first execution run and starts no other; a far one lets them all', async () => {
    const w = { name: 'sva', params: { ...SMALL, seed: 1 } };
    const past = await run({ workload: w, runtime: 'deterministic', strategy: 'random', seed: 1, runs: 40, until: Date.now() - 1 });
    expect(past.executions).toBe(1);
    const far = await run({ workload: w, runtime: 'deterministic', strategy: 'random', seed: 1, runs: 40, until: Date.now() + 3_600_000 });
    expect(far.executions).toBe(40);
  });

  it('a 1 ms budget: each chunk dispatched before it runs one execution, then stops (stopped by time)', async () => {
    const s = await loadScenarioFile(join(ROOT, 'races', '000-pasid-reuse-before-drain.yaml'));
    const out = await exploreScenario({
      model: s.model,
      params: scenarioParams(s, true),
      strategy: 'random',
      depth: 3,
      seed: 1,
      expect: expectationFor(s, true),
      runs: 100_000,
      timeMs: 1,
      workers: 2,
      keepGoing: false,
      chunk: 64,
    });
    expect(out.stoppedBy).toBe('time');
    expect(out.executions).toBeLessThanOrEqual(out.chunks);
    expect(out.chunks).toBeLessThanOrEqual(2);
  }, 120_000);
});
