// What the terminal shows fits 120 columns (issue #20: "every line the tool prints fits a terminal"), on real runs:
// explore's verdict, tally and "written" lines, shrink's summary and "written" lines, bench's tables (cli-table3,
// as npm start's: no quotes, no (index) column). And explore's tally of finding kinds comes in one order whatever
// order a pool's workers reported them in: by count, then by name.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { suiteTable } from '../bench/main.js';
import { textTable } from '../src/cli/table.js';
import { kindTally } from '../src/scenario/expect.js';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'iommu-sim.js');
const WIDTH = 120;

/** README's my-race.yaml: a race whose schedules show two kinds of finding. */
const RACE = `name: my-race
seed: '000'
title: PASID freed at once with DMA in flight, reused by the next process
model: sva
topology: { iommus: smmuv3, devices: 1, processes: 2 }
policies: { teardown: at-once }
workload: { sequential: true, script: unbind-inflight, dmas: 6 }
fix: { teardown: drain }
expect: { findings: [stale_translation, isolation, kasan], forbid: any }
explore: { strategy: pct, depth: 3, runs: 1000 }
`;

let dir = '';
beforeAll(() => {
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stdout + build.stderr).toBe(0);
  dir = mkdtempSync(join(tmpdir(), 'iommu-sim-width-'));
  writeFileSync(join(dir, 'my-race.yaml'), RACE);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(...args: string[]): { code: number | null; lines: string[] } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, lines: `${r.stdout}${r.stderr}`.split('\n') };
}

/** The lines wider than a terminal, but the kernel's own reports (a KASAN stack line is as the kernel prints it). */
function tooWide(lines: readonly string[], tags: readonly string[]): string[] {
  return lines.filter((l) => tags.some((t) => l.startsWith(`${t}:`)) && l.length > WIDTH);
}

describe('finding kinds tallied', () => {
  it('by count, the most frequent first, ties by name — not in the order they were counted', () => {
    expect(kindTally({ isolation: 4, stale_translation: 22 })).toEqual(['stale_translation 22', 'isolation 4']);
    expect(kindTally({ stale_translation: 22, isolation: 4 })).toEqual(['stale_translation 22', 'isolation 4']);
    expect(kindTally({ kasan: 3, check: 3, isolation: 9 })).toEqual(['isolation 9', 'check 3', 'kasan 3']);
    expect(kindTally({ kasan: 3, check: 3 }, (k) => k !== 'check')).toEqual(['kasan 3']);
  });
});

describe('a real explore and shrink fit 120 columns', () => {
  it('explore --keep-going: every explore line fits; the tally reads the same with 1 worker and with 2', () => {
    const tally = (workers: string): { lines: string[]; kinds: string } => {
      const r = cli('explore', 'my-race.yaml', '--keep-going', '--runs', '300', '--workers', workers, '--record', `my-race-${workers}.sched`);
      expect(r.code, r.lines.join('\n')).toBe(0);
      const at = r.lines.findIndex((l) => /^explore: \d+ of 300 schedules had a finding/.test(l));
      expect(at, r.lines.join('\n')).toBeGreaterThanOrEqual(0);
      // The sentence may go on over the next `explore:   ` lines.
      let sentence = r.lines[at] as string;
      for (let i = at + 1; (r.lines[i] ?? '').startsWith('explore:   '); i++) sentence += ` ${(r.lines[i] as string).slice('explore:   '.length)}`;
      return { lines: r.lines, kinds: /had a finding \(([^)]*)\)/.exec(sentence)?.[1] ?? '' };
    };
    const one = tally('1');
    const two = tally('2');
    expect(tooWide(one.lines, ['explore']), one.lines.join('\n')).toEqual([]);
    expect(tooWide(two.lines, ['explore']), two.lines.join('\n')).toEqual([]);
    // The verdict, the written and the replay lines are there (wrapped, not dropped).
    expect(one.lines.some((l) => /^explore: expected a finding of kind stale_translation or isolation or kasan: found in \d+ of/.test(l))).toBe(true);
    expect(one.lines).toContain('explore: schedule written to my-race-1.sched');
    expect(one.lines.some((l) => l.startsWith('explore: replay with: iommu-sim replay my-race-1.sched (exit 1: the same '))).toBe(true);
    expect(one.kinds).not.toBe('');
    expect(two.kinds).toBe(one.kinds);
    const counts = one.kinds.split(', ').map((w) => Number(w.split(' ')[1]));
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
  }, 240_000);

  it('shrink: its summary and written lines fit', () => {
    const rec = cli('selftest', '--runtime', 'deterministic', '--strategy', 'pct', '--depth', '2', '--bug', '2', '--messages', '2', '--runs', '1000', '--record', 'bug.sched');
    expect(rec.code, rec.lines.join('\n')).toBe(1);
    const r = cli('shrink', 'bug.sched', '--runs', '50');
    expect(r.code, r.lines.join('\n')).toBe(0);
    const shrink = r.lines.filter((l) => l.startsWith('shrink:'));
    // Before this change the first three lines ran to 121-125 columns.
    expect(shrink.length, r.lines.join('\n')).toBeGreaterThanOrEqual(4);
    expect(tooWide(r.lines, ['shrink']), r.lines.join('\n')).toEqual([]);
    expect(shrink.some((l) => /^shrink: bug\.sched: \d+ steps, fails with: planted ordering bug of depth 2/.test(l))).toBe(true);
    expect(shrink).toContain('shrink: schedule written to bug.sched.shrunk');
    expect(shrink).toContain('shrink: replay with: iommu-sim replay bug.sched.shrunk (exit 1: the same failed check)');
  }, 120_000);
});

describe('a real stress run fits 120 columns', () => {
  it('its run lines (one cut by the budget included), status, per-second and verdict lines', () => {
    // Whether the first run ends within 2 s depends on the machine: only the widths are asserted, on either outcome.
    const r = cli('stress', join(ROOT, 'stress', 'mixed.yaml'), '--duration', '2s', '--workers', '2', '--status-interval', '1s', '--record', 'mixed.sched');
    expect([0, 1], r.lines.join('\n')).toContain(r.code);
    expect(r.lines.some((l) => /^sva-torture: run 1 seed 1: /.test(l)), r.lines.join('\n')).toBe(true);
    expect(r.lines.some((l) => /^stress: (SUCCESS|FAILURE)$/.test(l))).toBe(true);
    expect(tooWide(r.lines, ['sva-torture', 'stress']), r.lines.join('\n')).toEqual([]);
  }, 120_000);
});

describe('bench tables', () => {
  it('a real suite: aligned columns within 120, no quoted strings, no (index) column', () => {
    const r = cli('bench', 'runtime', '--quick');
    expect(r.code, r.lines.join('\n')).toBe(0);
    const head = r.lines.findIndex((l) => /^case\s+per second\s+mean ns\s+p99 ns\s+samples$/.test(l));
    expect(head, r.lines.join('\n')).toBeGreaterThan(0);
    const table = r.lines.slice(head, r.lines.findIndex((l, i) => i > head && /^ {2}\S/.test(l)));
    expect(table.length).toBeGreaterThan(2);
    for (const l of table) {
      expect(l.length).toBeLessThanOrEqual(WIDTH);
      expect(l).not.toMatch(/['"│┌]|\(index\)/);
    }
    // The figures are right-aligned under their heads: every row ends where the head does.
    const end = (table[0] as string).length;
    for (const l of table.slice(1)) if (/\d$/.test(l)) expect(l.length).toBe(end);
  }, 120_000);

  it('a case name longer than its column wraps inside it', () => {
    const long = 'scaling: sva 1024 devices 4096 processes, 2 workers, per-actor placement, recorded, with the fallback share counted';
    const out = suiteTable({ suite: 'scaling', results: [{ name: long, hz: 1234.5, meanNs: 810_000, p99Ns: 1_200_000, samples: 30 }], ratios: { scaling_2workers_vs_1: 1.02 } });
    const lines = out.split('\n');
    expect(lines[0]).toBe('scaling');
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(WIDTH);
    expect(lines.join(' ').replace(/\s+/g, ' ')).toContain('1.2 k');
    expect(lines.some((l) => l.startsWith('  scaling_2workers_vs_1'))).toBe(true);
    // The name is all there, over two lines of its column.
    expect(lines.slice(1).filter((l) => /^\S/.test(l)).length).toBeGreaterThanOrEqual(3);
    expect(textTable([{ head: 'a' }, { head: 'b', width: 3, align: 'right' }], [['x', 7]]).split('\n')).toEqual([`a${' '.repeat(118)}b`, `x${' '.repeat(118)}7`]);
  });
});
