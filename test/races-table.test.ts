// `npm start`'s table (issue #20): an aligned table of 120 columns at most, with no quoted strings — long
// names and findings wrap instead of being cut or widening the table.
import { describe, expect, it } from 'vitest';
import { type RaceRow, racesTable } from '../src/cli/races.js';

function row(over: Partial<RaceRow>): RaceRow {
  return {
    script: 'races/iommu-sva-4f2c1b0e9d8a-a-rather-long-race-name-that-has-to-wrap.yaml',
    seed: '000',
    variant: 'bug',
    policy: 'pasidLife=unbind notifier=bond',
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
    firstSeed: 4,
    ok: true,
    verdict: [],
    states: {},
    ...over,
  };
}

describe('races table', () => {
  const text = racesTable([
    row({}),
    row({ variant: 'fix', expects: [], showing: 0, withFinding: 0, byKind: {}, fraction: null, class: null, finding: null, findingKind: null }),
    row({ script: 'scenarios/fault-inject.yaml', seed: null, variant: 'as written', class: 'deterministic hazard', showing: 200, ok: false }),
  ]);
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
});
