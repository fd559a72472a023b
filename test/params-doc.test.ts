// The parameter reference is generated from the schemas (src/workloads/docs.ts): docs/parameters.md must be
// what they give today, every preset's schema must cover exactly its defaults, and the refusals must name the
// parameter and what it must be (with the nearest name for a typo).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { costsMarkdown } from '../src/hw/costs.js';
import { VENDORS } from '../src/hw/vendors.js';
import { parsePreset } from '../src/workloads/params/define.js';
import { PRESETS, parametersMarkdown, presetHelp, stepsMarkdown } from '../src/workloads/docs.js';

describe('parameters', () => {
  it('docs/parameters.md is generated from the schemas (node scripts/params-doc.mjs after a build)', () => {
    const file = readFileSync(join(import.meta.dirname, '..', 'docs', 'parameters.md'), 'utf8');
    expect(file).toBe(parametersMarkdown());
  });

  it('docs/steps.md is generated from the step schemas', () => {
    const file = readFileSync(join(import.meta.dirname, '..', 'docs', 'steps.md'), 'utf8');
    expect(file).toBe(stepsMarkdown());
  });

  it("docs/costs.md is generated from the vendors' cost tables", () => {
    const file = readFileSync(join(import.meta.dirname, '..', 'docs', 'costs.md'), 'utf8');
    expect(file).toBe(costsMarkdown(VENDORS));
  });

  it("each preset's schema covers exactly its defaults, and its defaults pass it", () => {
    for (const p of PRESETS) {
      expect(Object.keys(p.params).sort()).toEqual(Object.keys(p.defaults).sort());
      expect(parsePreset(p, {})).toEqual(p.defaults);
      for (const [name, { schema }] of Object.entries(p.params) as [string, { schema: { safeParse(v: unknown): { success: boolean }; description?: string } }][]) {
        expect(schema.safeParse((p.defaults as Record<string, unknown>)[name]).success, `${p.name}.${name}`).toBe(true);
        expect(schema.description, `${p.name}.${name} has a text`).toBeTruthy();
      }
    }
  });

  it('refuses a value naming the preset, the parameter and what it must be', () => {
    const [sva, domains, ioasid] = PRESETS as [(typeof PRESETS)[0], (typeof PRESETS)[0], (typeof PRESETS)[0]];
    expect(() => parsePreset(sva, { devices: -5 })).toThrow('sva: devices must be an integer in 1..1024, got -5');
    expect(() => parsePreset(sva, { devcies: 2 })).toThrow("sva: unknown parameter 'devcies' (did you mean 'devices'? known:");
    expect(() => parsePreset(sva, { iommus: 'vtd,arm' })).toThrow("sva: iommus: unknown IOMMU flavour 'arm' (vtd, amd, smmuv3)");
    expect(() => parsePreset(domains, { lookup: 'nope' })).toThrow('domains: lookup must be one of mutex, rcu, got "nope"');
    // A preset takes only the bugs and scripts its workload has.
    expect(() => parsePreset(domains, { bug: 'no-range-flush' })).toThrow('domains: bug must be one of none, clear-on-failure');
    expect(() => parsePreset(ioasid, { chain: true })).toThrow('ioasid: chain must be one of atomic, blocking, got true');
    expect(() => parsePreset(ioasid, { processes: 65 })).toThrow('ioasid: processes must be an integer in 0..64, got 65');
  });

  it("a preset's --help lists its parameters with their values and defaults", () => {
    const help = presetHelp('sva');
    expect(help).toContain('teardown=drain|quarantine|at-once (drain)');
    expect(help).toContain('policies:');
  });
});
