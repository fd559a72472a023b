// The seed000 benchmark suite runs end to end (quick) and measures every case the policy matrix's seed-000 rows
// read (their names come from the matrix's own table, so a renamed case fails here, not as a silent "—" in the
// matrix), each rate positive and finite, with a ratio per (policy, measure). Only shapes are asserted: no figure.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { POLICIES } from '../src/cli/matrix.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');

describe('iommu-sim bench seed000 --quick --json', () => {
  it("measures every case of the matrix's seed-000 rows, each value beside mainline's, with a ratio each", () => {
    const r = spawnSync(process.execPath, [BIN, 'bench', 'seed000', '--quick', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { suites: string[]; results: { name: string; hz: number }[]; ratios: Record<string, number> };
    expect(j.suites).toEqual(['seed000']);
    const measures = POLICIES.flatMap((p) => [...(p.throughput ? [p.throughput] : []), ...(p.costs ?? [])]).filter((t) => t.suite === 'seed000');
    // pasidLife (bind+unbind), notifier (bind+unbind, invalidations), fault (bind+unbind, unresolved page requests).
    expect(measures).toHaveLength(5);
    for (const m of measures) {
      for (const name of Object.values(m.cases)) {
        const row = j.results.find((x) => x.name === name);
        expect(row, name).toBeDefined();
        expect(Number.isFinite(row?.hz) && (row?.hz ?? 0) > 0, name).toBe(true);
      }
    }
    expect(Object.keys(j.ratios)).toHaveLength(measures.length);
    for (const v of Object.values(j.ratios)) expect(Number.isFinite(v) && v > 0).toBe(true);
  });
});
