import { describe, expect, it } from 'vitest';
import { validateScenario, scenarioParams } from '../src/scenario/load.js';
import type { ScenarioInput } from '../src/scenario/scenario.js';
import type { RunResult } from '../src/runtime/result.js';
import { run } from '../src/runtime/run.js';

async function runScenario(s: ScenarioInput, seed: number, fixed = false): Promise<RunResult> {
  const v = validateScenario(s, 'test.yaml');
  return run({ workload: { name: v.model, params: scenarioParams(v, fixed) }, runtime: 'deterministic', strategy: 'random', seed, runs: 1 });
}
function outcomes(r: RunResult, actor: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < r.trace.length; i++) {
    const l = r.trace.eventName(r.trace.record(i).event);
    if (l.startsWith(`${actor}[`)) out.push(l);
  }
  return out;
}
describe('probe', () => {
  it('runs', async () => {
    const r = await runScenario({
      name: 'x', title: 'x', model: 'domains', topology: { processes: 1 },
      script: {
        'vmm/0': ['open', { bind: 0 }, { ioas_alloc: 'A' }, { fault_alloc: 'F' }, { hwpt_alloc: { hwpt: 'H', ioas: 'A', dev: 0, fault: 'F' } }, { attach: { dev: 0, hwpt: 'H', pasid: 1 } }, { read: 'F' }, { respond: 'F' }, { destroy: 'H' }, { detach: { dev: 0, pasid: 1 } }, { destroy: 'H' }, 'close'],
        'drv/0': [{ after: 'vmm/0:5' }, { dma: { dev: 0, pasid: 1 } }],
      },
    } as ScenarioInput, 1);
    console.log(outcomes(r, 'vmm/0').join('\n'), '\n', outcomes(r, 'drv/0').join('\n'), r.findings.map((f) => f.title));
    expect(r.findings).toEqual([]);
  });
});
