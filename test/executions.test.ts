// Each execution of an exploration is judged on its own: no checker state (lockdep's graph and its
// debug_locks switch, dedup sets of reports) and no scheduler state (PCT's k) carries from one execution to
// the next. So a report is not suppressed by an earlier execution of the same chunk, every execution's
// schedule replays alone to the same trace and outcome, and a race fails at the same rate whatever the chunk.
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import '../src/kernel/workloads.js';
import { Kernel } from '../src/kernel/kernel.js';
import { defineMutex, mutex_lock, mutex_unlock } from '../src/kernel/mutex.js';
import type { Workload } from '../src/runtime/model.js';
import { replay, run } from '../src/runtime/run.js';
import { Schedule } from '../src/runtime/schedule.js';
import { registerWorkload } from '../src/runtime/workloads.js';
import { exploreScenario } from '../src/scenario/explore.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

/** Two tasks: one takes L1 then L2, the other L2 then L1 after it (lockdep's AB-BA, in every execution). */
function abbaWorkload(): Workload {
  const k = new Kernel();
  const l1 = defineMutex(k, 'L1');
  const l2 = defineMutex(k, 'L2');
  k.task('ab', 'process', function* (t) {
    yield* mutex_lock(k, t, l1);
    yield* mutex_lock(k, t, l2);
    yield* mutex_unlock(k, t, l2);
    yield* mutex_unlock(k, t, l1);
    yield* k.step(t, 'spawn', (env) => env.spawn('ba', 0));
  });
  k.task('ba', 'process', function* (t) {
    yield* mutex_lock(k, t, l2);
    yield* mutex_lock(k, t, l1);
    yield* mutex_unlock(k, t, l1);
    yield* mutex_unlock(k, t, l2);
  });
  return {
    name: 'test-abba',
    params: {},
    actors: [],
    initial: [],
    sharedWords: k.words,
    tasks: k.taskFactories,
    initialTasks: [{ task: 'ab', args: 0 }],
    monitor: k,
    check: () => ({ ok: true, problems: [], counters: {} }),
  };
}
registerWorkload('test-abba', abbaWorkload);

describe('each execution is judged on its own', () => {
  it('lockdep reports the AB-BA in every execution of one exploration, not only the first', async () => {
    const r = await run({ workload: { name: 'test-abba', params: {} }, runtime: 'deterministic', strategy: 'random', seed: 1, runs: 40, allRuns: true });
    expect(r.executions).toBe(40);
    expect(r.failingKinds).toEqual({ lockdep: 40 });
  });

  it.each([
    ['races/000-pasid-reuse-before-drain.yaml'],
    ['races/002-unrefcounted-sva-domain-users.yaml'],
    ['races/003-quota-race.yaml'],
  ])('every execution of a chunk of %s replays alone to its trace hash and outcome', async (file) => {
    const s = await loadScenarioFile(join(ROOT, file));
    const recorded: { hash: string; bytes: Uint8Array; kinds: string[] }[] = [];
    await run({
      workload: { name: s.model, params: scenarioParams(s) },
      runtime: 'deterministic',
      strategy: s.explore.strategy,
      depth: s.explore.depth,
      seed: 3,
      runs: 24,
      allRuns: true,
      onExecution: (x) => recorded.push({ hash: x.traceHash, bytes: x.schedule.encode(), kinds: x.findings.map((f) => f.kind) }),
    });
    expect(recorded).toHaveLength(24);
    for (const [i, rec] of recorded.entries()) {
      const rp = replay(Schedule.decode(rec.bytes));
      expect(rp.traceHash, `execution ${i}`).toBe(rec.hash);
      expect(rp.findings.map((f) => f.kind), `execution ${i}`).toEqual(rec.kinds);
      expect(rp.matches).toBe(true);
    }
  });

  it('a race fails at the same rate with chunk 1 and with the default chunk (within sampling error)', async () => {
    const s = await loadScenarioFile(join(ROOT, 'races', '001-vfio-takeover-live-mappings.yaml'));
    const runs = 256;
    const base = {
      model: s.model,
      params: scenarioParams(s),
      strategy: s.explore.strategy,
      depth: s.explore.depth,
      seed: 1,
      runs,
      workers: 2,
      keepGoing: true,
      expect: s.expect,
    };
    const one = await exploreScenario({ ...base, chunk: 1 });
    const dflt = await exploreScenario(base);
    expect(one.executions).toBe(runs);
    expect(dflt.executions).toBe(runs);
    const p = (one.failing + dflt.failing) / (2 * runs);
    expect(p).toBeGreaterThan(0.05); // a race, not a deterministic hazard or a clean run
    expect(p).toBeLessThan(0.95);
    // Two proportions of `runs` trials each: their difference within 3 standard errors.
    const se = Math.sqrt((p * (1 - p) * 2) / runs);
    expect(Math.abs(one.failing - dflt.failing) / runs).toBeLessThan(3 * se);
  });
});
