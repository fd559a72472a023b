// The benchmark command runs end to end and keeps its JSON shape (figures are asserted by reading the
// benchmark output, never here: a quick run's numbers are rough by design).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');

describe('iommu-sim bench --quick --json', () => {
  it('runtime and kernel suites: every case measured, every ratio present', () => {
    const r = spawnSync(process.execPath, [BIN, 'bench', 'runtime', 'kernel', '--quick', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { results: { name: string; hz: number; meanNs: number; p99Ns: number; samples: number }[]; ratios: Record<string, number> };
    const names = j.results.map((x) => x.name);
    for (const n of ['raw_ring_1', 'transport_1', 'postmessage', 'xstate_send', 'actors_xstate_2workers', 'roundtrip_actors', 'deterministic_steps']) {
      expect(names).toContain(n);
    }
    for (const n of ['spinlock_uncontended', 'mutex_contended_2threads', 'rcu_read_lock_unlock_pair', 'xa_load_rcu_2readers_1updater', 'locks_checkers_off']) {
      expect(names).toContain(n);
    }
    for (const x of j.results) {
      expect(x.hz, x.name).toBeGreaterThan(0);
      expect(x.samples, x.name).toBeGreaterThan(0);
      expect(Number.isFinite(x.meanNs) && Number.isFinite(x.p99Ns), x.name).toBe(true);
    }
    for (const k of ['transport_vs_raw', 'transport_vs_postmessage', 'actors_vs_xstate_send', 'actors_vs_postmessage_actors', 'roundtrip_vs_postmessage', 'xa_load_rcu_vs_mutex', 'checkers_on_vs_off']) {
      expect(j.ratios[k], k).toBeGreaterThan(0);
    }
  });
});
