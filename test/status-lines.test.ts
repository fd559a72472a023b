// Status lines that fit a terminal (issue #20): every command's first line names the iommu-sim and the Node that
// ran it; a run's header and verdict wrap at 120 columns with the tag on every line, listing what differs from
// the defaults (-v: everything); --json says the same in its `host` field.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STATUS_WIDTH, wrapStatus } from '../src/cli/status.js';
import { SVA_DEFAULTS } from '../src/workloads/sva.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'iommu-sim.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const HOST_LINE = `iommu-sim ${VERSION} on node ${process.version} ${process.platform}-${process.arch}`;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('wrapStatus', () => {
  it('keeps each line within the width, the tag on each, every word once and in order', () => {
    const words = Array.from({ length: 60 }, (_, i) => `counter_${i}=${i * 37}`);
    const lines = wrapStatus('sva', 'SUCCESS', words);
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) {
      expect(l.length, l).toBeLessThanOrEqual(STATUS_WIDTH);
      expect(l).toMatch(/^sva: /);
    }
    expect(lines[0]).toMatch(/^sva: SUCCESS counter_0=0 /);
    const back = lines.map((l, i) => (i === 0 ? l.slice('sva: SUCCESS '.length) : l.slice('sva:   '.length))).join(' ');
    expect(back).toBe(words.join(' '));
  });

  it('gives a word wider than a line a line of its own instead of cutting it', () => {
    const long = `steps=${'x'.repeat(150)}`;
    const lines = wrapStatus('run', 'head', ['a', long, 'b']);
    expect(lines).toEqual(['run: head a', `run:   ${long}`, 'run:   b']);
  });
});

describe('the lines a run prints', () => {
  it('sva: the host line first; header and verdict within 120 columns; -v lists every parameter and counter', () => {
    const short = cli('sva', '--runtime', 'deterministic', '--set', 'processes=2');
    expect(short.code, short.err).toBe(0);
    const lines = short.out.trimEnd().split('\n');
    expect(lines[0]).toBe(HOST_LINE);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(STATUS_WIDTH);
    expect(lines[1]).toMatch(/^sva: runtime=deterministic strategy=random; parameters not at their default: processes=2 \(-v lists all \d+\)$/);
    expect(short.out).toMatch(/^sva: SUCCESS steps=\d+ binds=2 /m);
    expect(short.out).not.toMatch(/=0\b/);

    const all = cli('sva', '--runtime', 'deterministic', '--set', 'processes=2', '-v');
    expect(all.code, all.err).toBe(0);
    for (const l of all.out.trimEnd().split('\n')) expect(l.length, l).toBeLessThanOrEqual(STATUS_WIDTH);
    const words = all.out.split(/\s+/);
    for (const k of Object.keys(SVA_DEFAULTS)) expect(words.some((w) => w.startsWith(`${k}=`)), k).toBe(true);
    expect(all.out).toMatch(/\bdma_faults=0\b/);
  });

  it('--json has no host line but a host field; trace puts its host line on stderr, its stdout is the trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-status-'));
    const sched = join(dir, 's.sched');
    const j = cli('selftest', '--runtime', 'deterministic', '--messages', '5', '--json', '--record', sched);
    expect(j.code, j.err).toBe(0);
    expect(j.err).toBe('');
    const o = JSON.parse(j.out) as { host: { iommuSim: string; node: string; platform: string; arch: string } };
    expect(o.host).toMatchObject({ iommuSim: VERSION, node: process.version, platform: process.platform, arch: process.arch });
    const t = cli('trace', sched);
    expect(t.code, t.err).toBe(0);
    expect(t.err.split('\n')[0]).toBe(HOST_LINE);
    expect(t.out).not.toContain(HOST_LINE);
  });

  it("run's header shows the scenario's faults: section", () => {
    const r = cli('run', 'scenarios/001-domain-alloc-failure.yaml', '--runs', '1');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^run: model sva, as written: defaultDomain=per-device; faults: failAlloc=iommu_domain:2$/m);
  });
});
