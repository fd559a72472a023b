// PCT's guarantee (Burckhardt et al., ASPLOS 2010): a bug of depth d is hit by one execution with probability
// ≥ 1/(n·k^(d-1)), n threads and k steps. The selftest plants an ordering bug of depth d; PCT with depth d must
// find it within the number of executions for which the guarantee gives ≥ 95 % (fixed seeds: repeatable).
import { describe, expect, it } from 'vitest';
import { run } from '../src/runtime/run.js';
import { selftest } from './helpers.js';

describe('pct', () => {
  for (const d of [1, 2, 3]) {
    it(`finds the planted ordering bug of depth ${d} within its bound`, async () => {
      const params = { actors: 3, messages: 2, bug: d };
      // n and k from one execution of the workload: threads = actors, steps = its length.
      const probe = await run({ workload: selftest(params), runtime: 'deterministic', seed: 1, strategy: 'random' });
      const n = params.actors;
      const k = probe.steps;
      const bound = Math.ceil(Math.log(20) * n * k ** (d - 1)); // P(miss) ≤ (1 - 1/(n k^(d-1)))^bound ≤ 5 %
      for (const seed of [1, 2, 3]) {
        const r = await run({ workload: selftest(params), runtime: 'deterministic', seed, strategy: 'pct', depth: d, runs: bound });
        expect(r.check.ok, `seed ${seed}: not found in ${bound} executions`).toBe(false);
        expect(r.check.problems.join('\n')).toMatch(`planted ordering bug of depth ${d} triggered`);
        expect(r.executions).toBeLessThanOrEqual(bound);
      }
    });
  }

  it('the planted bug is an ordering bug: some schedules trigger it, others do not', async () => {
    const ok: boolean[] = [];
    for (let s = 1; s <= 40; s++) {
      const x = await run({ workload: selftest({ actors: 3, messages: 2, bug: 3 }), runtime: 'deterministic', seed: s, strategy: 'random' });
      ok.push(x.check.ok);
    }
    expect(ok).toContain(true);
    expect(ok).toContain(false);
  });
});
