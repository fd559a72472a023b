// The benchmark command runs end to end and keeps its JSON shape, and the ratios the kernel and syspasid
// suites are meant to show are asserted as ratios measured in one run — never a time, never a rate alone. A
// quick threaded run's figures swing with what else the 2 cores run (xa_load_rcu_vs_mutex from 0.94× to 4.7×),
// so the ratios are measured here in the deterministic runtime: the checkers' cost and system-PASID option 2
// against option 1 as the suites measure paired cases (the two sides taking turns, each keeping its fastest
// round), with margins below every figure measured on this machine under load; RCU against the mutex by what
// makes the difference, the readers' waiting, in scheduling points.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import '../src/kernel/workloads.js';
import { run } from '../src/runtime/run.js';
import { buildWorkload } from '../src/runtime/workloads.js';

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
      expect(Number.isFinite(j.ratios[k]), k).toBe(true);
    }
    // The threaded ratios (xa_load_rcu_vs_mutex: 1.5× in the report profile, 1.8× to 4.7× in quick runs alone,
    // 0.94× with the rest of the test suite on the 2 cores) are not asserted here: measured below instead.
  }, 150_000);
});

type Built = ReturnType<typeof buildWorkload>;

/** Run each workload in turn, `rounds` times, keeping each one's fastest (a busy machine slows a round, never speeds it). */
async function fastestRounds(ws: readonly Built[], rounds: number, runs: number): Promise<{ ms: number[]; steps: number[]; counters: Record<string, number>[] }> {
  const ms = ws.map(() => Number.POSITIVE_INFINITY);
  const steps = ws.map(() => 0);
  const counters: Record<string, number>[] = ws.map(() => ({}));
  for (let i = 0; i < rounds; i++) {
    for (const [k, w] of ws.entries()) {
      const t0 = performance.now();
      const r = await run({ built: w, workload: { name: w.name, params: w.params }, runtime: 'deterministic', strategy: 'random', seed: 1, runs });
      expect(r.findings).toEqual([]);
      ms[k] = Math.min(ms[k] as number, performance.now() - t0);
      steps[k] = r.steps;
      counters[k] = { ...r.check.counters };
    }
  }
  return { ms, steps, counters };
}

describe('the kernel suite\'s ratios, measured in one run, paired (the deterministic runtime: one thread a side)', () => {
  it('checkers_on_vs_off: every checker on costs at most ~2× per step of the same kernel selftest', async () => {
    const params = (checkers: boolean) => ({ tasks: 4, iterations: 300, lock: 'both', checkers });
    const { ms, steps } = await fastestRounds([buildWorkload('kernel-selftest', params(true)), buildWorkload('kernel-selftest', params(false))], 7, 5);
    // The same schedules: the checkers observe, they do not change what runs.
    expect(steps[0]).toBe(steps[1]);
    // Steps a second with the checkers on, over off (0.67 to 0.94 measured here; the target is ≥ 0.67, ≤ 1.5× slower).
    const ratio = (ms[1] as number) / (ms[0] as number);
    expect(ratio).toBeGreaterThan(0.45);
    expect(ratio).toBeLessThan(1.5);
  }, 60_000);

  it('xa_load_rcu_vs_mutex: a reader under the mutex waits for the updater, one under RCU does not', async () => {
    // In one thread the readers cannot overlap, so the time ratio here only weighs per-step costs (0.85× to 1.5×
    // measured under load): what stays is the waiting, counted in scheduling points for the same lookups.
    const params = (mode: string) => ({ mode, tasks: 3, iterations: 2000 });
    const { steps } = await fastestRounds([buildWorkload('kernel-selftest', params('xa-rcu')), buildWorkload('kernel-selftest', params('xa-mutex'))], 1, 3);
    // 18 005 against 14 005 steps for 2 readers × 2000 lookups and the updater (seed 1, random schedules).
    expect((steps[1] as number) / (steps[0] as number)).toBeGreaterThan(1.2);
  }, 60_000);
});

describe('the syspasid suite\'s ratio, measured in one run, paired (seed 004: option 2 against option 1)', () => {
  it('syspasid_opt2_vs_opt1: init_mm bound once does more 4 KiB kernel jobs a second than a map, unmap and flush per job', async () => {
    const params = (kernel: string) => ({ iommus: 'vtd', devices: 1, processes: 0, trusted: true, kernel, kjobs: 300, kbuffers: 1 });
    const { ms, counters } = await fastestRounds([buildWorkload('sva', params('syspasid-map')), buildWorkload('sva', params('syspasid-bind'))], 5, 1);
    expect(counters.map((c) => c.kernel_jobs)).toEqual([300, 300]);
    // Option 1 queues an IOTLB and a device-TLB invalidation (and a sync) per job; option 2 only at bind and unbind.
    expect((counters[0]?.commands ?? 0) / 300).toBeGreaterThan(2);
    expect(counters[1]?.commands ?? Number.POSITIVE_INFINITY).toBeLessThan(30);
    // Jobs a second, option 2 over option 1: 6.6× in the report profile, 4.7× to 5.5× here paired under load.
    expect((ms[0] as number) / (ms[1] as number)).toBeGreaterThan(2);
  }, 60_000);
});
