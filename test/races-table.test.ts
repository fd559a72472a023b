// `npm start`'s table (issue #20): an aligned table of 120 columns at most, with no quoted strings — long
// names and findings wrap instead of being cut or widening the table; printed a row at a time as variants
// finish, so that nothing above it repeats it; and `races --json`, whole and typed (racesJsonSchema).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type RaceRow, raceRowSchema, racesJsonSchema, racesTable, racesTableHead, racesTableRow } from '../src/cli/races.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'iommu-sim.js');

function row(over: Partial<RaceRow>): RaceRow {
  return {
    script: 'races/iommu-sva-4f2c1b0e9d8a-a-rather-long-race-name-that-has-to-wrap.yaml',
    seed: '000',
    variant: 'bug',
    policy: 'pasidLife=unbind notifier=bond',
    parameters: { pasidLife: 'unbind', notifier: 'bond', processes: 2 },
    expects: ['kasan'],
    forbid: 'every kind not expected',
    schedules: 200,
    showing: 37,
    failing: 0,
    withFinding: 37,
    byKind: { kasan: 37 },
    fraction: 37 / 200,
    class: 'race',
    finding: "BUG: KASAN: slab-use-after-free in iommufd_fault_fops_read+0x1c/0x2a0 — a title long enough that it must wrap to the next line",
    findingKind: 'kasan',
    findingText: 'BUG: KASAN: slab-use-after-free in iommufd_fault_fops_read+0x1c/0x2a0\nRead of size 8',
    firstSeed: 4,
    ok: true,
    verdict: [],
    states: {},
    elapsedMs: 812,
    ...over,
  };
}

describe('races table', () => {
  const rows = [
    row({}),
    row({ variant: 'fix', expects: [], showing: 0, withFinding: 0, byKind: {}, fraction: null, class: null, finding: null, findingKind: null, findingText: null }),
    row({ script: 'scenarios/fault-inject.yaml', seed: null, variant: 'as written', class: 'deterministic hazard', showing: 200, ok: false }),
  ];
  const text = racesTable(rows);
  const lines = text.split('\n');

  it('fits 120 columns', () => {
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(120);
  });

  it('quotes nothing and keeps every cell whole (wrapped in its column, not cut)', () => {
    expect(text).not.toMatch(/["']/);
    expect(text).not.toContain('…');
    // A column's text, read down the column: its cells, each joined from its wrapped lines.
    const column = (start: number, width: number): string =>
      lines
        .slice(1)
        .map((l) => l.slice(start, start + width).trimEnd())
        .join('');
    expect(column(0, 40)).toContain('iommu-sva-4f2c1b0e9d8a-a-rather-long-race-name-that-has-to-wrap');
    expect(column(40 + 2 + 4 + 2 + 7 + 2, 40).replace(/\s+/g, '')).toContain('titlelongenoughthatitmustwraptothenextline');
  });

  it('shows the counts, the variant and the verdict', () => {
    expect(text).toMatch(/37\/200/);
    expect(text).toMatch(/200\/200 all/);
    expect(text).toMatch(/FAILED/);
    expect(text).toMatch(/as-is/);
    expect(lines[0]).toMatch(/^race\s+seed\s+variant\s+finding\s+schedules\s+verdict/);
  });

  it('is its head and its rows printed one at a time, aligned alike', () => {
    expect([racesTableHead(), ...rows.map(racesTableRow)].join('\n')).toBe(text);
  });

  it('a row is what --json carries, by the schema', () => {
    for (const r of rows) expect(raceRowSchema.parse(r)).toEqual(r);
    expect(() => raceRowSchema.parse({ ...rows[0], schedules: '200 (none)' })).toThrow();
  });
});

/** Every string in `v` with the path to it. */
function strings(v: unknown, at = '$'): [string, string][] {
  if (typeof v === 'string') return [[at, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => strings(x, `${at}[${i}]`));
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => strings(x, `${at}.${k}`));
  return [];
}

describe('races on the command line', () => {
  const file = 'scenarios/001-domain-alloc-failure.yaml';
  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, 'races', file, '--stress', '0', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });

  it('--json: every field typed and whole, as racesJsonSchema says', () => {
    const r = cli('--json');
    expect(r.status, r.stderr).toBe(0);
    const j = racesJsonSchema.parse(JSON.parse(r.stdout));
    expect(j.host.node).toBe(process.version);
    expect(j.races).toHaveLength(1);
    const [row0] = j.races;
    expect(row0?.schedules).toBe(5);
    expect(typeof row0?.fraction).toBe('number');
    expect(row0?.parameters.kdevices).toBe(3);
    // The whole report, not its first line cut to a column.
    expect(row0?.findingText).toMatch(/^pci 0000:01:01\.0: Adding to IOMMU failed: -ENOMEM\n[\s\S]*Call Trace:/);
    // No count carried as a string ("2000 (none)"); a seed thread's label (`001`) is a name, not a count.
    for (const [at, s] of strings(j)) if (!at.endsWith('.seed')) expect(s, at).not.toMatch(/^\d+( \(.*\))?$/);
  });

  it('the table: under the host line, each variant once, 120 columns, nothing quoted', () => {
    const r = cli();
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(lines[0]).toBe(`iommu-sim ${version} on node ${process.version} ${process.platform}-${process.arch}`);
    expect(lines[1]).toBe('races: 1 file, 1 variant');
    expect(lines[2]).toMatch(/^race\s+seed\s+variant\s+finding\s+schedules\s+verdict$/);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(120);
    for (const l of lines.slice(2, -3)) expect(l).not.toMatch(/["']/);
    expect(r.stdout.split('001-domain-alloc-failure').length - 1).toBe(1);
    expect(r.stderr).toBe('');
    expect(lines.at(-1)).toBe('SUCCESS');
  });
});
