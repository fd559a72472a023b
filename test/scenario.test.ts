// Race scripts (issue #6): every script in races/ (YAML and TypeScript) shows its finding with the policy that has
// the bug and none with the one that fixes it, within its own budget, and the failing schedule replays; one judge
// (expect.ts) for `run` and `explore`, which agree on the verdict and name executions by the same seeds; an
// expectation's `forbid` (by default every kind not listed) fails a run that shows a forbidden kind; malformed
// scenarios are refused with the field named; the loader never throws anything but a validation error on
// arbitrary input.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classify, expectationFor, judge } from '../src/scenario/expect.js';
import { exploreScenario } from '../src/scenario/explore.js';
import { runJudged } from '../src/scenario/judged.js';
import { loadScenarioFile, ScenarioError, scenarioParams, validateScenario } from '../src/scenario/load.js';
import { defineScenario, type Expectation, type Scenario } from '../src/scenario/scenario.js';
import { replay, run, Schedule } from '../src/runtime/run.js';
import { hazardClass, raceRow } from '../src/cli/races.js';

const RACES = join(import.meta.dirname, '..', 'races');
const files = readdirSync(RACES).filter((f) => /\.(ya?ml|ts)$/.test(f));

/** `run` as the CLI runs it: the scenario's strategy, depth, seed and budget, judged as it goes. */
function runScenario(s: Scenario, fixed: boolean, e: Expectation = expectationFor(s, fixed), over: { seed?: number; runs?: number } = {}) {
  return runJudged(e, {
    workload: { name: s.model, params: scenarioParams(s, fixed) },
    runtime: 'deterministic',
    strategy: s.explore.strategy,
    depth: s.explore.depth,
    seed: over.seed ?? s.explore.seed,
    runs: over.runs ?? s.explore.runs,
  });
}

describe('races/: each script, with its bug and with its fix', () => {
  it('ships the hazards of the seeds, in YAML and in TypeScript', () => {
    expect(files.length).toBeGreaterThanOrEqual(9);
    expect(files).toContain('000-scripted-reuse.ts');
  });
  for (const f of files) {
    it(f, async () => {
      const s = await loadScenarioFile(join(RACES, f));
      for (const fixed of s.fix ? [false, true] : [false]) {
        const j = await runScenario(s, fixed);
        const r = j.outcome;
        expect(j.verdict.lines.join('\n'), `${fixed ? 'fixed' : 'as written'}`).not.toMatch(/NOT MET|none found|forbidden|check failed|failed/);
        expect(j.verdict.ok).toBe(true);
        // The bug shows its finding (the run stops there); the fix runs its whole budget clean.
        if (fixed) expect(j.tally.schedules).toBe(s.explore.runs);
        else expect(j.tally.decisive?.judged.class).toBe('shows');
        if (r.findings.length > 0) {
          // The failing execution replays: the same trace, the same finding.
          const again = replay(Schedule.decode(r.schedule.encode()));
          expect(again.matches).toBe(true);
          expect(again.findings.map((x) => x.kind)).toContain(r.findings[0]?.kind);
        }
      }
    }, 60_000);
  }
});

describe('expectations with teeth: one judge, forbid by default every kind not listed', () => {
  const MUTEX_RCU = join(RACES, '003-ioasid-mutex-rcu-free.yaml');

  it('a forbidden kind fails a run that shows it, and an explicit list allows what it does not name', async () => {
    // The mutex taken in the bond's free_notifier (an SRCU callback, bottom halves off): might_sleep, from the
    // first schedule on.
    const s = await loadScenarioFile(MUTEX_RCU);
    const none = await runScenario(s, false, { findings: [], forbid: 'any', counters: {} });
    expect(none.verdict.ok).toBe(false);
    expect(none.tally.schedules).toBe(1);
    expect(none.verdict.lines.join('\n')).toMatch(/failed: 1 of 1 schedule with forbidden kinds \(forbidden: every kind not expected\): might_sleep 1/);
    const named = await runScenario(s, false, { findings: [], forbid: ['might_sleep'], counters: {} });
    expect(named.verdict.ok).toBe(false);
    const allowed = await runScenario(s, false, { findings: [], forbid: ['kasan'], counters: {} }, { runs: 2 });
    expect(allowed.verdict.ok).toBe(true);
    expect(allowed.verdict.lines.join('\n')).toContain('allowed kinds seen: might_sleep');
    // As shipped, might_sleep is the race's.
    expect((await runScenario(s, false)).verdict.ok).toBe(true);
  }, 60_000);

  it('classify: forbidden beats expected; a failed check fails only an expectation of no finding', () => {
    const e: Expectation = { findings: ['kasan'], forbid: 'any', counters: {} };
    const o = (kinds: string[], checkOk = true) => ({ findings: kinds.map((kind) => ({ kind })), counters: {}, checkOk, problems: checkOk ? [] : ['1 task blocked'] });
    expect(classify(e, o(['kasan'])).class).toBe('shows');
    expect(classify(e, o(['kasan', 'oops']))).toMatchObject({ class: 'fails', expected: true });
    expect(classify(e, o([])).class).toBe('clean');
    expect(classify(e, o(['kasan'], false)).class).toBe('shows');
    expect(classify({ ...e, forbid: ['oops'] }, o(['lockdep'])).class).toBe('allowed');
    const none: Expectation = { findings: [], forbid: 'any', counters: { dmas: { min: 1 } } };
    expect(classify(none, { ...o([]), counters: { dmas: 1 } }).class).toBe('clean');
    expect(classify(none, { ...o([]), counters: { dmas: 0 } }).class).toBe('fails');
    expect(classify(none, { ...o([], false), counters: { dmas: 1 } }).class).toBe('fails');
    expect(judge(none, { ...o(['oops']), counters: { dmas: 1 } }).lines[0]).toMatch(/^failed: 1 of 1 schedule with forbidden kinds/);
  });

  it('a run expecting no finding runs its whole budget, also past findings it allows', async () => {
    // The unbind spinning on a wait descriptor that never completes: a soft lockup on every schedule.
    const s = await loadScenarioFile(join(RACES, '000-invalidation-timeout.yaml'));
    const allowing = await runScenario(s, false, { findings: [], forbid: ['kasan'], counters: {} });
    expect(allowing.verdict.ok).toBe(true);
    expect(allowing.outcome.executions).toBe(s.explore.runs);
    expect(allowing.verdict.lines).toEqual([`no forbidden finding in ${s.explore.runs} schedules (forbidden: kasan; allowed kinds seen: soft_lockup ${s.explore.runs})`]);
    const forbidding = await runScenario(s, false, { findings: [], forbid: 'any', counters: {} });
    expect(forbidding.verdict.ok).toBe(false);
    expect(forbidding.outcome.executions).toBe(1);
  }, 60_000);

  it('a run that finds a kind it forbids says so (seed 7 of 000-pasid-reuse-before-drain, stale_translation not listed)', async () => {
    const s = await loadScenarioFile(join(RACES, '000-pasid-reuse-before-drain.yaml'));
    const e: Expectation = { findings: ['isolation'], forbid: 'any', counters: {} };
    // Seed 7 shows the stale-translation oracle's report first (found by running seeds 1.. one schedule each; it
    // changes whenever the model's steps do): named as forbidden.
    const j = await runScenario(s, false, e, { seed: 7, runs: 1 });
    expect(j.outcome.findings[0]?.kind).toBe('stale_translation');
    expect(j.verdict.ok).toBe(false);
    expect(j.verdict.lines.join('\n')).toMatch(/forbidden finding kinds appeared: stale_translation/);
    expect(j.verdict.lines[0]).toBe('expected a finding of kind isolation: none found in the 1 schedule run before a schedule failed');
  }, 60_000);

  for (const [f, fixed] of [
    ['000-pasid-reuse-before-drain.yaml', false],
    ['000-pasid-reuse-before-drain.yaml', true],
    ['003-ioasid-mutex-rcu-free.yaml', false],
  ] as const) {
    it(`explore and run agree on the verdict and the deciding seed: ${f}${fixed ? ' (fixed)' : ''}`, async () => {
      const s = await loadScenarioFile(join(RACES, f));
      // 003's second case: judged without lockdep listed, the forbidden report decides both.
      const e = f.startsWith('003') ? ({ findings: ['might_sleep'], forbid: 'any', counters: {} } as Expectation) : expectationFor(s, fixed);
      const runs = 96;
      const ran = await runScenario(s, fixed, e, { seed: 5, runs });
      const out = await exploreScenario({ model: s.model, params: scenarioParams(s, fixed), strategy: s.explore.strategy, depth: s.explore.depth, seed: 5, expect: e, runs, workers: 2, keepGoing: false, chunk: 8 });
      expect(out.verdict.ok).toBe(ran.verdict.ok);
      expect(out.first?.seed ?? null).toBe(ran.tally.decisive?.seed ?? null);
      expect(out.first?.class ?? null).toBe(ran.tally.decisive?.judged.class ?? null);
      if (out.first) expect(out.failures[0]?.traceHash).toBe(ran.outcome.traceHash);
      else expect(out.tally.schedules).toBe(runs);
    }, 60_000);
  }
});

describe('explore: a pool of worker threads', () => {
  it('finds the race of a script, and the schedule it returns replays it', async () => {
    const s = await loadScenarioFile(join(RACES, '000-pasid-reuse-before-drain.yaml'));
    const out = await exploreScenario({ model: s.model, params: scenarioParams(s), strategy: 'pct', depth: 3, seed: 1, expect: s.expect, runs: 2000, workers: 2, keepGoing: false, chunk: 16 });
    expect(out.stoppedBy).toBe('failure');
    expect(out.verdict.ok).toBe(true);
    const first = out.failures[0];
    expect(first?.findings.map((x) => x.kind)).toContain('stale_translation');
    const again = replay(Schedule.decode(first?.schedule as Uint8Array));
    expect(again.matches).toBe(true);
    expect(again.traceHash).toBe(first?.traceHash);
    // Schedules to the first failure are counted in seeds from the first (seed 1 here).
    expect(out.first?.schedules).toBe(out.first?.seed);
  }, 60_000);

  it('with the fix, the whole budget runs without a finding', async () => {
    const s = await loadScenarioFile(join(RACES, '000-pasid-reuse-before-drain.yaml'));
    const out = await exploreScenario({ model: s.model, params: scenarioParams(s, true), strategy: 'pct', depth: 3, seed: 1, expect: expectationFor(s, true), runs: 256, workers: 2, keepGoing: false, chunk: 32 });
    expect(out.stoppedBy).toBe('runs');
    expect(out.executions).toBe(256);
    expect(out.failures).toEqual([]);
    expect(out.verdict).toEqual({ ok: true, lines: ['no finding in 256 schedules, as expected'] });
    expect(out.first).toBeNull();
    // What it covered: the actors' (kind, state, event) triples, lockdep's chains, the PASID's life.
    expect(out.coverage.triples).toContain('dev | dma | submit');
    expect(out.coverage.lockChains.length).toBeGreaterThan(0);
    expect(out.coverage.pasid.bound).toBe(2 * 256);
    expect(out.coverage.pasid.unbound).toBe(2 * 256);
  }, 60_000);

  it('kept going, every chunk runs its whole share of the budget and counts every failing schedule', async () => {
    // The drain that never finishes hangs the unbind at every schedule: chunks used to end at their first.
    const s = await loadScenarioFile(join(RACES, '000-invalidate-pasid-forever.yaml'));
    const base = { model: s.model, params: scenarioParams(s), strategy: 'pct' as const, depth: s.explore.depth, seed: 1, expect: s.expect, workers: 2, chunk: 16 };
    const out = await exploreScenario({ ...base, runs: 64, keepGoing: true });
    expect(out.stoppedBy).toBe('runs');
    expect(out.executions).toBe(64);
    expect(out.chunks).toBe(4);
    expect(out.failing).toBe(64);
    expect(out.failingKinds).toEqual({ hung_task: 64 });
    expect(out.tally).toMatchObject({ schedules: 64, shows: 64, fails: 0 });
    // Chunks of consecutive seeds: 1..16, 17..32, …; every schedule listed by its own seed.
    expect(out.failures.map((f) => [f.seed, f.executions, f.failing])).toEqual([1, 17, 33, 49].map((seed) => [seed, 16, 16]));
    expect(out.tally.marked.map((m) => m.seed)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    // A chunk's reported failure is its first failing schedule: the one a stop-at-first exploration returns, and
    // it replays.
    const stopped = await exploreScenario({ ...base, runs: 16, keepGoing: false });
    expect(stopped.executions).toBe(1);
    expect(stopped.failing).toBe(1);
    const first = out.failures[0];
    expect(first?.traceHash).toBe(stopped.failures[0]?.traceHash);
    expect(replay(Schedule.decode(first?.schedule as Uint8Array)).matches).toBe(true);
  }, 60_000);

  it('each failing seed explore lists is the execution run --seed N --runs 1 runs: the same finding, the same trace', async () => {
    const s = await loadScenarioFile(join(RACES, '000-pasid-reuse-before-drain.yaml'));
    const out = await exploreScenario({ model: s.model, params: scenarioParams(s), strategy: 'pct', depth: 3, seed: 1, expect: s.expect, runs: 96, workers: 2, keepGoing: true, chunk: 16 });
    const marked = out.tally.marked;
    expect(marked.length).toBeGreaterThan(3);
    expect(marked.length).toBeLessThan(96);
    // Seeds are not chunk seeds: they are spread over the budget, one a failing schedule.
    expect(new Set(marked.map((m) => m.seed)).size).toBe(marked.length);
    for (const m of marked.slice(0, 6)) {
      const one = await runScenario(s, false, s.expect, { seed: m.seed, runs: 1 });
      expect(one.outcome.findings[0]?.kind, `seed ${m.seed}`).toBe(m.kind);
      expect(one.outcome.seed).toBe(m.seed);
    }
    const first = out.failures[0];
    const again = await run({ workload: { name: s.model, params: scenarioParams(s) }, runtime: 'deterministic', strategy: 'pct', depth: 3, seed: first?.executionSeed ?? -1, runs: 1 });
    expect(again.traceHash).toBe(first?.traceHash);
    // A clean seed stays clean alone.
    const clean = Array.from({ length: 96 }, (_, i) => i + 1).find((n) => !marked.some((m) => m.seed === n)) as number;
    expect((await runScenario(s, false, s.expect, { seed: clean, runs: 1 })).outcome.findings).toEqual([]);
  }, 60_000);

  it('kept going on a race that fails at some schedules only: the count is of schedules, the rest ran clean', async () => {
    const s = await loadScenarioFile(join(RACES, '000-pasid-reuse-before-drain.yaml'));
    const base = { workload: { name: s.model, params: scenarioParams(s) }, runtime: 'deterministic' as const, strategy: 'pct' as const, depth: 3, seed: 5, runs: 64 };
    const r = await run({ ...base, allRuns: true });
    expect(r.executions).toBe(64);
    expect(r.failing).toBeGreaterThan(0);
    expect(r.failing).toBeLessThan(64);
    expect(Object.values(r.failingKinds).reduce((a, b) => a + b, 0)).toBe(r.failing);
    // The outcome is the first failing execution, the one a run that stops there returns.
    const stopped = await run(base);
    expect(stopped.failing).toBe(1);
    expect(r.traceHash).toBe(stopped.traceHash);
    expect(r.findings.map((f) => f.text)).toEqual(stopped.findings.map((f) => f.text));
  }, 60_000);
});

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('JSON a script can use', () => {
  const REUSE = join(RACES, '000-pasid-reuse-before-drain.yaml');

  it('explore --json: elapsed time, the first failure (seed, schedules, time), every failing seed with its kind; run --seed N --runs 1 reproduces each', () => {
    const r = cli('explore', REUSE, '--keep-going', '--runs', '64', '--chunk', '16', '--workers', '2', '--record', join(mkdtempSync(join(tmpdir(), 'explore-')), 'x.sched'), '--json');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as {
      ok: boolean;
      elapsedMs: number;
      executions: number;
      first: { seed: number; class: string; kind: string; schedules: number; elapsedMs: number };
      failingSeeds: { seed: number; kind: string; class: string }[];
      failingSchedules: number;
      traceHash: string;
    };
    expect(j.ok).toBe(true);
    expect(j.executions).toBe(64);
    expect(typeof j.elapsedMs).toBe('number');
    expect(j.first.schedules).toBe(j.first.seed);
    expect(j.first.elapsedMs).toBeGreaterThan(0);
    expect(j.first.elapsedMs).toBeLessThanOrEqual(j.elapsedMs);
    expect(j.failingSeeds.length).toBe(j.failingSchedules);
    expect(j.failingSeeds[0]).toMatchObject({ seed: j.first.seed, kind: j.first.kind, class: 'shows' });
    const one = cli('run', REUSE, '--seed', String(j.first.seed), '--runs', '1', '--json');
    const o = JSON.parse(one.out) as { ok: boolean; seed: number; traceHash: string; findings: { kind: string }[] };
    expect(o).toMatchObject({ ok: true, seed: j.first.seed, traceHash: j.traceHash });
    const last = j.failingSeeds.at(-1) as { seed: number; kind: string };
    expect((JSON.parse(cli('run', REUSE, '--seed', String(last.seed), '--runs', '1', '--json').out) as typeof o).findings[0]?.kind).toBe(last.kind);
  }, 120_000);

  it('run --runtime threaded --runs 3: a trace hash per run, in the JSON and in the text', () => {
    const j = JSON.parse(cli('run', REUSE, '--fixed', '--runtime', 'threaded', '--runs', '3', '--workers', '2', '--json').out) as { ok: boolean; runs: { seed: number; traceHash: string; class: string }[] };
    expect(j.ok).toBe(true);
    expect(j.runs.map((x) => x.seed)).toEqual([1, 2, 3]);
    for (const x of j.runs) expect(x.traceHash).toMatch(/^[0-9a-f]{16}$/);
    const text = cli('run', REUSE, '--fixed', '--runtime', 'threaded', '--runs', '2', '--workers', '2', '--seed', '7');
    expect(text.out.match(/^run: threaded run seed (7|8): trace hash [0-9a-f]{16}$/gm)).toHaveLength(2);
  }, 120_000);

  it('races rows: typed, whole; a buggy variant failing every schedule is a deterministic hazard, one failing some a race', async () => {
    const hazard = await raceRow('races/003-ioasid-mutex-rcu-free.yaml', await loadScenarioFile(join(RACES, '003-ioasid-mutex-rcu-free.yaml')), false);
    expect(hazard).toMatchObject({ variant: 'bug', class: 'deterministic hazard', fraction: 1, ok: true, forbid: 'every kind not expected' });
    expect(hazard.showing).toBe(hazard.schedules);
    // Over 200 schedules of its budget (the row measures whatever budget the script says).
    const full = await loadScenarioFile(REUSE);
    const s: Scenario = { ...full, explore: { ...full.explore, runs: 200 } };
    const race = await raceRow('races/000-pasid-reuse-before-drain.yaml', s, false);
    expect(race.class).toBe('race');
    expect(race.schedules).toBe(s.explore.runs);
    expect(race.fraction).toBe(race.showing / race.schedules);
    expect(race.fraction).toBeGreaterThan(0);
    expect(race.fraction).toBeLessThan(1);
    expect(race.finding).toMatch(/^iommu-sim: stale translation: PASID \d+ handed out again before its drain finished$/);
    const fix = await raceRow('races/000-pasid-reuse-before-drain.yaml', s, true);
    expect(fix).toMatchObject({ variant: 'fix', class: null, fraction: null, showing: 0, failing: 0, ok: true, policy: 'teardown=drain pasidLife=unbind notifier=bond' });
    expect(hazardClass(0, 10)).toBeNull();
  }, 60_000);
});

const GOOD = { name: 'x', title: 'a race', model: 'sva', topology: { iommus: 'vtd', devices: 1, processes: 2 }, policies: { teardown: 'at-once' }, workload: { script: 'life' } };
const DOMAINS = { name: 'x', title: 'a race', model: 'domains', topology: { groups: 1, groupSize: 2 }, policies: {}, workload: {} };
const ALLOC_A = { alloc: { domain: 'A' } };
const FREE_A = { free: 'A' };
const ALLOC_B = { alloc: { domain: 'B' } };
const FREE_B = { free: 'B' };

describe('scenario validation: each malformed scenario names its field', () => {
  const bad: [string, unknown, RegExp][] = [
    ['not an object', 42, /\(top level\)/],
    ['no name', { ...GOOD, name: undefined }, /name/],
    ['empty name', { ...GOOD, name: '' }, /name/],
    ['no title', { ...GOOD, title: undefined }, /title/],
    ['unknown model', { ...GOOD, model: 'xen' }, /model/],
    ['unknown top-level key', { ...GOOD, extra: 1 }, /extra|Unrecognized/],
    ['topology of the wrong type', { ...GOOD, topology: [1, 2] }, /topology/],
    ['a parameter of the wrong type', { ...GOOD, topology: { devices: 'two' } }, /topology\.devices/],
    ['an unknown policy value', { ...GOOD, policies: { teardown: 'sometimes' } }, /policies\.teardown/],
    ['an unknown parameter', { ...GOOD, workload: { frobnicate: 1 } }, /frobnicate/],
    ['PASID bits above 20', { ...GOOD, topology: { ...GOOD.topology, pasidBits: 21 } }, /topology\.pasidBits/],
    ['an empty topology', { ...GOOD, topology: { devices: 0 } }, /topology\.devices/],
    ['an unknown IOMMU flavour', { ...GOOD, topology: { iommus: 'vtd,powerpc' } }, /topology\.iommus/],
    ['an unknown capability', { ...GOOD, topology: { caps: 'ats,sriov' } }, /topology\.caps/],
    ['a parameter given twice', { ...GOOD, workload: { teardown: 'drain' } }, /workload\.teardown: already given in policies/],
    ['a bad fix', { ...GOOD, fix: { teardown: 'never' } }, /fix\.teardown/],
    ['an unknown finding kind expected', { ...GOOD, expect: { findings: ['panic'] } }, /expect\.findings/],
    ['a counter bound of the wrong type', { ...GOOD, expect: { counters: { dmas: { min: 'many' } } } }, /expect\.counters\.dmas\.min/],
    ['an unknown strategy', { ...GOOD, explore: { strategy: 'bfs' } }, /explore\.strategy/],
    ['a depth of 0', { ...GOOD, explore: { depth: 0 } }, /explore\.depth/],
    ['a thread that does not exist', { ...GOOD, seed: '007' }, /seed/],
    ['a negative process count', { ...GOOD, topology: { processes: -1 } }, /topology\.processes/],
    ['a script for a process that does not exist', { ...GOOD, script: { 'proc/3': ['bind'] } }, /script\.proc\/3: no such process \(the topology has 2\)/],
    ['a cycle in the ordering constraints', { ...GOOD, script: { 'proc/0': [{ after: 'proc/1:0' }, 'bind'], 'proc/1': [{ after: 'proc/0:0' }, 'bind'] } }, /script: the ordering constraints have a cycle: proc\/\d:0 → proc\/\d:0 → proc\/\d:0/],
    ['an ordering constraint on a step that does not exist', { ...GOOD, script: { 'proc/0': ['bind'], 'proc/1': [{ after: 'proc/0:9' }] } }, /script\.proc\/1\[0\]: after proc\/0:9: no such step \(proc\/0 has 1\)/],
    ['an ordering constraint on a process that does not exist', { ...GOOD, script: { 'proc/0': [{ after: 'proc/5:0' }, 'bind'] } }, /script\.proc\/0\[0\]: after proc\/5:0: no such actor/],
    ['an sva ordering constraint on an actor of another model', { ...GOOD, script: { 'proc/0': [{ after: 'drv/1:0' }, 'bind'] } }, /script\.proc\/0\[0\]: after drv\/1:0: no such actor/],
    ['an sva while on a lock the model does not have', { ...GOOD, script: { 'proc/0': [{ while: { task: 'proc1', holds: 'big_kernel_lock' } }, 'bind'] } }, /script\.proc\/0\[0\]: while: no lock named "big_kernel_lock" \(the model's locks: .*iommu_sva_lock/],
    ['an unknown step', { ...GOOD, script: { 'proc/0': ['fly'] } }, /script\.proc\/0\[0\]/],
    ['a malformed reference', { ...GOOD, script: { 'proc/0': [{ after: 'proc0 step 1' }] } }, /script\.proc\/0\[0\]/],
    ['an extension that does not exist', { ...GOOD, extension: 'nowhere/patch.cjs' }, /extension: no such file: nowhere\/patch\.cjs/],
    ['an actor the model does not have', { ...GOOD, model: 'ioasid', topology: {}, policies: {}, workload: {}, script: { 'proc/0': ['bind'] } }, /script\.proc\/0: expected user\/N/],
    ['a step of another model', { ...DOMAINS, script: { 'drv/0': [{ alloc_set: { set: 'S', quota: 1 } }] } }, /script\.drv\/0\[0\]/],
    ['an ordering constraint on an actor that does not exist', { ...DOMAINS, script: { 'drv/0': [ALLOC_A, FREE_A], 'drv/1': [ALLOC_B, FREE_B, { after: 'drv/3:0' }] } }, /script\.drv\/1\[2\]: after drv\/3:0: no such actor/],
    ['an ordering constraint on a step that does not exist', { ...DOMAINS, script: { 'drv/0': [ALLOC_A, FREE_A], 'drv/1': [{ after: 'drv/0:2' }] } }, /script\.drv\/1\[0\]: after drv\/0:2: no such step \(drv\/0 has 2\)/],
    ['a cycle of ordering constraints', { ...DOMAINS, script: { 'drv/0': [{ after: 'iopf/0:1' }, ALLOC_A, FREE_A], 'iopf/0': [ALLOC_B, { after: 'drv/0:1' }, FREE_B] } }, /script: the ordering constraints have a cycle: .*drv\/0:0.*iopf\/0:1/],
    ['a while on a lock the model does not have', { ...DOMAINS, script: { 'drv/0': [{ while: { task: 'proc0', holds: '&group->spinlock' } }, ALLOC_A, FREE_A] } }, /script\.drv\/0\[0\]: while: no lock named "&group->spinlock" \(the model's locks: &group->mutex, .*iommu_sva_lock/],
    ['a while with no lock named', { ...DOMAINS, script: { 'drv/0': [{ while: { task: 'proc0' } }] } }, /script\.drv\/0\[0\]/],
    ['a device the topology does not have', { ...DOMAINS, script: { 'drv/0': [ALLOC_A, { attach: { domain: 'A', dev: 4, pasid: 1 } }] } }, /script\.drv\/0\[1\]: dev must be an integer in 0\.\.1/],
    ['a domain no step allocates', { ...DOMAINS, script: { 'drv/0': [{ attach: { domain: 'Z', dev: 0 } }] } }, /script\.drv\/0\[0\]: attach: no step allocates domain Z/],
    ['an IOASID no step allocates', { ...GOOD, model: 'ioasid', topology: { bits: 8 }, policies: {}, workload: {}, script: { 'user/0': [{ free: 'X' }] } }, /script\.user\/0\[0\]: free: no step allocates IOASID X/],
    ['an ioasid while on a lock the model does not have', { ...GOOD, model: 'ioasid', topology: { bits: 8 }, policies: {}, workload: {}, script: { 'user/0': [{ while: { task: 'proc0', holds: 'ioasid_lock' } }, 'check'] } }, /script\.user\/0\[0\]: while: no lock named "ioasid_lock" \(the model's locks: .*ioasid_allocator_lock/],
    ['a script for an ioasid benchmark mode', { ...GOOD, model: 'ioasid', topology: { bits: 8 }, policies: {}, workload: { mode: 'alloc-free' }, script: { 'user/0': ['check'] } }, /script: scripted users run in mode=scenario only/],
  ];
  for (const [what, raw, field] of bad) {
    it(what, () => {
      let err: unknown;
      try {
        validateScenario(raw, 'bad.yaml');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ScenarioError);
      expect((err as Error).message).toMatch(/^bad\.yaml: /);
      expect((err as Error).message).toMatch(field);
    });
  }

  it('a good one loads, from YAML, JSON and a module using defineScenario', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scenario-'));
    writeFileSync(join(dir, 'a.json'), JSON.stringify(GOOD));
    writeFileSync(join(dir, 'a.mjs'), `export default ${JSON.stringify(defineScenario(GOOD as never))};`);
    writeFileSync(join(dir, 'a.yaml'), 'name: x\ntitle: a race\nmodel: sva\npolicies: { teardown: at-once }\n');
    for (const f of ['a.json', 'a.mjs', 'a.yaml']) expect((await loadScenarioFile(join(dir, f))).name).toBe('x');
    writeFileSync(join(dir, 'b.yaml'), 'name: [unclosed\n');
    await expect(loadScenarioFile(join(dir, 'b.yaml'))).rejects.toThrow(/b\.yaml: not valid YAML/);
    await expect(loadScenarioFile(join(dir, 'missing.yaml'))).rejects.toThrow(/missing\.yaml: cannot read: ENOENT/);
  });

  it('fuzz: on any input the loader returns a scenario or throws a ScenarioError, and ends', () => {
    const leaf = fc.oneof(fc.string({ maxLength: 8 }), fc.integer({ min: -5, max: 2_000_000 }), fc.boolean(), fc.constant(null));
    const keys = fc.constantFrom('name', 'title', 'model', 'topology', 'policies', 'workload', 'fix', 'expect', 'explore', 'seed', 'devices', 'teardown', 'iommus', 'findings', 'counters', 'runs', 'x');
    const value = fc.letrec((tie) => ({ v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(keys, tie('v'), { maxKeys: 5 })) })).v;
    const scenarioish = fc.record({ name: leaf, title: leaf, model: fc.constantFrom('sva', 'domains', 'ioasid', 'x'), topology: fc.dictionary(fc.constantFrom('devices', 'iommus', 'processes', 'pasidBits', 'bits', 'x'), leaf), policies: fc.dictionary(fc.constantFrom('teardown', 'lock', 'users', 'x'), leaf) }, { requiredKeys: [] });
    fc.assert(
      fc.property(fc.oneof(value, scenarioish), (raw) => {
        try {
          validateScenario(raw, 'fuzz');
        } catch (e) {
          if (!(e instanceof ScenarioError)) throw e;
        }
      }),
      { numRuns: 400 },
    );
  });
});
