// Refusals that say what is accepted (issue #18, deliverable 6; src/scenario/zod-errors.ts): a refused key lists
// the keys accepted at its place (with the nearest as "did you mean"), a refused value form shows an accepted form —
// for a scenario's fields, its script's steps, the `steps` parameter and the model's parameters. And every step
// kind's example (what the hints and docs/steps.md show) is a step its model's scenario takes; docs/steps.md and the
// --help of the commands that run scenarios list every step of every actor kind.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { stepsHelp, stepsMarkdown } from '../src/workloads/docs.js';
import { InputError } from '../src/runtime/errors.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { ScenarioError, validateScenario } from '../src/scenario/load.js';
import { scenarioSchema } from '../src/scenario/scenario.js';
import { formatZodIssue, stepHint, unknownKey } from '../src/scenario/zod-errors.js';
import { IOMMUFD_KINDS } from '../src/workloads/iommufd-steps.js';
import { ACTOR_KINDS, DOMAINS_KINDS, EXPECT_KIND, HP_KINDS, IOASID_KINDS, SVA_KINDS } from '../src/workloads/steps.js';

const BASE = { name: 'x', title: 't' };

/** The message a scenario is refused with. */
function refusal(raw: object): string {
  try {
    validateScenario({ ...BASE, ...raw }, 'x.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as Error).message;
  }
  throw new Error('the scenario was accepted');
}

const sva = (steps: unknown[]) => ({ model: 'sva', topology: { devices: 2, processes: 1 }, script: { 'proc/0': steps } });

describe('the formatter', () => {
  it('an unknown key: the nearest, then every accepted key', () => {
    expect(unknownKey('devv', ['dev', 'as'])).toBe("unknown key 'devv' (did you mean 'dev'?); accepted here: dev, as");
    expect(unknownKey('zzz', ['dev', 'as'])).toBe("unknown key 'zzz'; accepted here: dev, as");
    expect(unknownKey('n', [])).toBe("unknown key 'n'; accepted here: none (write the step by its name alone)");
  });

  it('a step kind’s accepted forms, with its example', () => {
    const munmap = SVA_KINDS.find((k) => k.op === 'munmap');
    expect(munmap && stepHint(munmap)).toBe('use munmap, { munmap: <vpn> } or { munmap: { vpn, n, remap } } (e.g. { munmap: 3 })');
    const madvise = SVA_KINDS.find((k) => k.op === 'madvise');
    expect(madvise && stepHint(madvise)).toBe('use { madvise: { vpn, n, as } } (e.g. { madvise: { vpn: 0, n: 4 } })');
  });

  it('any zod issue, with the accepted keys of its place', () => {
    const r = scenarioSchema.safeParse({ ...BASE, model: 'sva', explore: { runz: 3 } });
    const issue = r.error?.issues[0];
    expect(issue?.code).toBe('unrecognized_keys');
    expect(issue && formatZodIssue(issue, 'explore', ['strategy', 'depth', 'runs', 'seed'])).toBe("explore: unknown key 'runz' (did you mean 'runs'?); accepted here: strategy, depth, runs, seed");
  });
});

describe('a scenario: its fields and its steps', () => {
  it.each([
    ['an unknown top-level key', { model: 'sva', topologyy: {} }, "x.yaml: (top level): unknown key 'topologyy' (did you mean 'topology'?); accepted here: name, title, seed, topology"],
    ['an unknown key of explore', { model: 'sva', explore: { runz: 3 } }, "x.yaml: explore: unknown key 'runz' (did you mean 'runs'?); accepted here: strategy, depth, runs, seed"],
    ['an unknown field of a step', sva([{ open: { devv: 1 } }]), "x.yaml: script.proc/0[0]: open: unknown key 'devv' (did you mean 'dev'?); accepted here: dev, as"],
    ['a field of a step’s object form', sva([{ munmap: { vpn: 1, nn: 2 } }]), "x.yaml: script.proc/0[0]: munmap: unknown key 'nn' (did you mean 'n'?); accepted here: vpn, n, remap"],
    ['a kind that takes fields, written alone', sva(['madvise']), 'x.yaml: script.proc/0[0]: madvise cannot be written alone: it takes vpn, n, as; use { madvise: { vpn, n, as } } (e.g. { madvise: { vpn: 0, n: 4 } })'],
    ['a scalar of the wrong type', sva([{ munmap: 'x' }]), 'x.yaml: script.proc/0[0]: munmap: vpn must be an integer in 0..1048576, got "x"; use munmap, { munmap: <vpn> } or { munmap: { vpn, n, remap } }'],
    ['a scalar where only an object goes', sva([{ madvise: 3 }]), 'x.yaml: script.proc/0[0]: madvise takes an object of its fields, not 3; use { madvise: { vpn, n, as } }'],
    ['a missing field', { model: 'ioasid', script: { 'user/0': [{ alloc: { set: 'S' } }] } }, 'x.yaml: script.user/0[0]: alloc: id must be a name (letters, digits, _), got nothing; use { alloc: { set, id } }'],
    ['a vmm step’s unknown field', { model: 'domains', script: { 'vmm/0': ['open', { attach: { dev: 0, hwtp: 'H' } }] } }, "x.yaml: script.vmm/0[1]: attach: unknown key 'hwtp' (did you mean 'hwpt'?); accepted here: dev, hwpt, pasid, as"],
    ['an expect of no accepted form', sva([{ expect: { h: 'busy' } }]), 'x.yaml: script.proc/0[0]: expect: results.h must be ok, error, -E…'],
    ['a step of no kind', sva(['fly']), 'x.yaml: script.proc/0[0]: not a step of the sva model (open, close,'],
  ])('%s', (_, raw, message) => {
    expect(refusal(raw)).toContain(message);
  });

  it('a parameter of no model: the model’s parameters, and the nearest', () => {
    expect(refusal({ model: 'sva', topology: { devicez: 2 } })).toMatch(/^x\.yaml: topology\.devicez: sva: unknown parameter 'devicez' \(did you mean 'devices'\? known: iommus, devices, /);
  });
});

describe('the steps parameter and the model’s parameters (--set)', () => {
  const refused = (model: string, params: Record<string, string | number>): string => {
    try {
      buildWorkload(model, params);
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      return (err as Error).message;
    }
    throw new Error('accepted');
  };

  it('a step’s unknown key lists its kind’s keys; a wrong value shows a form', () => {
    expect(refused('sva', { steps: JSON.stringify([[{ op: 'open', devv: 1 }]]) })).toBe("sva: steps: proc/0[0]: open: unknown key 'devv' (did you mean 'dev'?); accepted here: dev, as");
    expect(refused('sva', { steps: JSON.stringify([[{ op: 'munmap', vpn: -1 }]]) })).toBe('sva: steps: proc/0[0]: munmap: vpn must be an integer in 0..1048576, got -1; use munmap, { munmap: <vpn> } or { munmap: { vpn, n, remap } } (e.g. { munmap: 3 })');
    expect(refused('domains', { steps: JSON.stringify({ 'drv/0': [{ op: 'alloc', domian: 'A' }] }) })).toContain("domains: steps: drv/0[0]: alloc: unknown key 'domian' (did you mean 'domain'?); accepted here: domain, type, iommu");
  });

  it('a parameter of no model lists the model’s; a value of the wrong form says the form', () => {
    expect(refused('sva', { devicez: 2 })).toMatch(/^sva: unknown parameter 'devicez' \(did you mean 'devices'\? known: iommus, devices, /);
    expect(refused('sva', { devices: 'many' })).toMatch(/^sva: devices must be an integer in 1\.\.1024, got "many"/);
  });
});

describe('every step kind’s example is one of its model’s forms', () => {
  const models = [
    ['sva', 'proc/0', [...SVA_KINDS, EXPECT_KIND]],
    ['sva', 'hp/0', HP_KINDS],
    ['domains', 'drv/0', [...DOMAINS_KINDS, EXPECT_KIND]],
    ['domains', 'vmm/0', [...IOMMUFD_KINDS, EXPECT_KIND]],
    ['ioasid', 'user/0', [...IOASID_KINDS, EXPECT_KIND]],
  ] as const;
  it.each(models)('%s %s', (model, actor, kinds) => {
    for (const k of kinds) {
      expect(k.example, k.op).toBeDefined();
      const step = JSON.parse(
        (k.example as string)
          .replace(/([{,]\s*)([A-Za-z_]\w*)\s*:/g, '$1"$2":')
          .replace(/:\s*([A-Za-z_-][\w-]*)\s*([,}])/g, (_m, v: string, end: string) => `: ${v === 'true' || v === 'false' ? v : JSON.stringify(v)}${end}`)
          .replace(/^([A-Za-z_]\w*)$/, '"$1"'),
      );
      const r = scenarioSchema.safeParse({ ...BASE, model, script: { [actor]: [step] } });
      expect(r.success, `${k.op}: ${k.example}: ${r.error?.message}`).toBe(true);
    }
  });
});

describe('the reference: docs/steps.md and --help, from the same kinds', () => {
  it('docs/steps.md has every step of every actor kind, each field with its type and default, and its example', () => {
    const md = stepsMarkdown();
    for (const [kind, a] of Object.entries(ACTOR_KINDS)) {
      expect(md).toContain(`## ${kind}/N`);
      for (const k of a.steps) {
        expect(md, `${kind} ${k.op}`).toContain(`| **${k.op}** `);
        for (const f of Object.keys(k.fields)) expect(md, `${kind} ${k.op}.${f}`).toMatch(new RegExp(`\\| \`${f}\` \\| (?:[^|]|\\\\\\|)+ \\| [^|]+ \\| `));
        expect(md).toContain(`Example: \`${k.example}\``);
      }
    }
    expect(md).toContain('| **expect** ');
    expect(md).toContain('| | `fd` | name (takes: fd) | (left out) |');
    expect(md).toContain('| | `n` | integer 1..4096 | `1` | Descriptors to submit. |');
  });

  it('the --help of the commands that run scenarios lists every actor kind and its steps, pointing at docs/steps.md', () => {
    const help = stepsHelp();
    expect(help).toContain('docs/steps.md');
    for (const [kind, a] of Object.entries(ACTOR_KINDS)) {
      expect(help).toContain(`  ${kind}/N`);
      for (const k of a.steps) expect(help, `${kind} ${k.op}`).toMatch(new RegExp(`(^|\\s)${k.op}(\\{|\\s|$)`, 'm'));
    }
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'iommu-sim.js'), 'run', '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toContain(help);
  });
});
