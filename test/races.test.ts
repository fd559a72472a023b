// The race library's contract (issue #6, acceptance): every script in races/ names its seed, has the policy that
// shows the bug and the one that fixes it, and expects a finding of its buggy variant — so that exploring the
// buggy variant with PCT finds it (a checker's finding, not a counter), the failing schedule replays with the
// same trace hash and shrinks to one no longer that fails the same way. The fault-injection scenarios in
// scenarios/ (no policy to flip) keep the kernel clean apart from what they inject.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exploreChunk } from '../src/scenario/chunk.js';
import { expectationFor, judge } from '../src/scenario/expect.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';
import { replay, run, Schedule } from '../src/runtime/run.js';
import { failureSignature, shrink } from '../src/runtime/shrink.js';

const ROOT = join(import.meta.dirname, '..');
const races = readdirSync(join(ROOT, 'races')).filter((f) => /\.(ya?ml|json|ts)$/.test(f));
const scenarios = readdirSync(join(ROOT, 'scenarios')).filter((f) => /\.(ya?ml|json|ts)$/.test(f));

describe('races/: bug, fix, a checker finding, explore → replay → shrink', () => {
  for (const f of races) {
    it(f, async () => {
      const s = await loadScenarioFile(join(ROOT, 'races', f));
      expect(s.seed, 'names its seed').toBeDefined();
      expect(s.fix, 'has the policy that fixes it').toBeDefined();
      expect(s.expect.findings.length, 'expects a finding of its buggy variant').toBeGreaterThan(0);
      // PCT over the script's own budget, in this thread: the first failing execution's schedule.
      const c = await exploreChunk({ model: s.model, params: scenarioParams(s), strategy: 'pct', depth: s.explore.depth, seed: s.explore.seed, runs: Math.min(1000, s.explore.runs) });
      expect(c.failed).toBe(true);
      expect(c.findings.some((x) => (s.expect.findings as readonly string[]).includes(x.kind))).toBe(true);
      const schedule = Schedule.decode(c.schedule as Uint8Array);
      const again = replay(schedule);
      expect(again.traceHash).toBe(c.traceHash);
      expect(again.findings.map((x) => x.kind)).toEqual(c.findings.map((x) => x.kind));
      const sh = shrink(schedule, { maxRuns: 150 });
      expect(sh.after).toBeLessThanOrEqual(sh.before);
      expect(failureSignature(replay(sh.schedule))).toBe(sh.signature);
    }, 120_000);
  }
});

describe('scenarios/: fault injection, judged as written', () => {
  for (const f of scenarios) {
    it(f, async () => {
      const s = await loadScenarioFile(join(ROOT, 'scenarios', f));
      const r = await run({ workload: { name: s.model, params: scenarioParams(s) }, runtime: 'deterministic', strategy: s.explore.strategy, depth: s.explore.depth, seed: s.explore.seed, runs: s.explore.runs });
      const v = judge(expectationFor(s, false), { findings: r.findings, counters: r.check.counters, checkOk: r.check.ok, problems: r.check.problems });
      expect(v.lines.join('\n')).not.toMatch(/NOT MET|none found|forbidden|check failed/);
    }, 60_000);
  }
});
