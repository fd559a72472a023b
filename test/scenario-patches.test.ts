// A scenario's patches (src/scenario/load.ts): `patches: [..]` (and the older `extension:`), a fix's own, every
// path resolved against the scenario's folder whatever the current directory, a broken one refused under the
// field that names it; the buggy variant finds what the patch breaks and the fix's patches run clean.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenarioFile, ScenarioError, scenarioParams } from '../src/scenario/load.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { parsePatchList } from '../src/workloads/patch-loader.js';
import '../src/workloads/index.js';
import { runBuilt } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'scenario-patches-'));
const dir = join(root, 'races');
mkdirSync(join(dir, 'patches'), { recursive: true });
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

// The MMU notifier's release that leaves the PASID entry to unbind (races/000-patch-release-defers-teardown's
// patch): a process exiting with its fd open frees its page tables under a live entry.
const BUGGY = file(
  'patches/release-defers.cjs',
  `exports.extend = (ctx) => ctx.k.fns.replace('iommu_sva_mm_release', function* (t) {
  yield* ctx.k.step(t, 'iommu_sva_mm_release (patched): teardown deferred to unbind', () => {});
}, 'release defers teardown');\n`,
);
// The fix: the release as it is, wrapped (a patch of its own, to see the fix's patches apply).
const FIXED = file('patches/release-as-is.cjs', `exports.extend = (ctx) => ctx.k.fns.wrap('iommu_sva_mm_release', (orig) => orig, 'release as is');\n`);
const THROWS = file('patches/extend-throws.cjs', "exports.extend = () => { throw new Error('the fix gave up'); };\n");

const HEAD = `name: t\ntitle: t\nmodel: sva\ntopology: { iommus: vtd, devices: 1, processes: 1 }\npolicies: { teardown: drain }\nworkload: { script: exit, dmas: 4 }\nexpect: { findings: [stale_translation] }\n`;

async function refusal(name: string, text: string): Promise<string> {
  const p = file(name, text);
  try {
    await loadScenarioFile(p);
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as Error).message;
  }
  throw new Error(`${name}: not refused`);
}

describe('scenario patches: paths', () => {
  it("every patch path is the scenario folder's, whatever the current directory", async () => {
    const cwd = process.cwd();
    process.chdir(root);
    try {
      const s = await loadScenarioFile(file('paths.yaml', `${HEAD}patches: [patches/release-defers.cjs]\nfix: { patches: [patches/release-as-is.cjs] }\n`));
      expect(s.patches).toEqual([BUGGY]);
      expect(s.fix?.patches).toEqual([FIXED]);
      expect(parsePatchList(String(scenarioParams(s).patches))).toEqual([BUGGY]);
      expect(parsePatchList(String(scenarioParams(s, true).patches))).toEqual([FIXED]);
    } finally {
      process.chdir(cwd);
    }
  });

  it('the older extension: is a one-patch list; a fix without patches keeps the scenario\'s; extension: \'\' in a fix is none', async () => {
    const old = await loadScenarioFile(file('old.yaml', `${HEAD}extension: patches/release-defers.cjs\nfix: { extension: '' }\n`));
    expect(old.patches).toEqual([BUGGY]);
    expect(old.extension).toBe(BUGGY);
    expect(scenarioParams(old, true).patches).toBe('');
    const kept = await loadScenarioFile(file('kept.yaml', `${HEAD}patches: [patches/release-defers.cjs]\nfix: { teardown: quarantine }\n`));
    expect(parsePatchList(String(scenarioParams(kept, true).patches))).toEqual([BUGGY]);
    expect(scenarioParams(kept, true).teardown).toBe('quarantine');
    const none = await loadScenarioFile(file('none.yaml', `${HEAD}patches: [patches/release-defers.cjs]\nfix: { patches: [] }\n`));
    expect(scenarioParams(none, true).patches).toBe('');
  });

  it('a missing file is refused naming its field: the scenario\'s, or the fix\'s alone', async () => {
    expect(await refusal('m1.yaml', `${HEAD}patches: [patches/release-defers.cjs, patches/nothere.cjs]\n`)).toMatch(
      /m1\.yaml: patches\[1\]: no such file: patches\/nothere\.cjs \(\S*races\/patches\/nothere\.cjs: a scenario's paths are relative to its folder\)$/,
    );
    const fix = await refusal('m2.yaml', `${HEAD}patches: [patches/release-defers.cjs]\nfix: { patches: [patches/release-as-is.cjs, ../fixed.cjs] }\n`);
    expect(fix).toMatch(/m2\.yaml: fix\.patches\[1\]: no such file: \.\.\/fixed\.cjs/);
    expect(await refusal('m3.yaml', `${HEAD}extension: nothere.cjs\n`)).toMatch(/m3\.yaml: extension: no such file: nothere\.cjs/);
    expect(await refusal('m4.yaml', `${HEAD}fix: { extension: nothere.cjs }\n`)).toMatch(/m4\.yaml: fix\.extension: no such file: nothere\.cjs/);
  });

  it("a fix's patch that fails names the fix's field, not the buggy variant's", async () => {
    const msg = await refusal('f1.yaml', `${HEAD}patches: [patches/release-defers.cjs]\nfix: { patches: [patches/release-as-is.cjs, patches/extend-throws.cjs] }\n`);
    expect(msg).toMatch(/f1\.yaml: fix\.patches\[1\]: patch \S*extend-throws\.cjs: extend\(ctx\) threw: the fix gave up$/);
    expect(THROWS).toContain('extend-throws.cjs');
    const top = await refusal('f2.yaml', `${HEAD}patches: [patches/extend-throws.cjs]\nfix: { patches: [] }\n`);
    expect(top).toMatch(/f2\.yaml: patches\[0\]: patch \S*extend-throws\.cjs: extend\(ctx\) threw/);
    // Written as the older extension:, named so.
    expect(await refusal('f3.yaml', `${HEAD}extension: patches/extend-throws.cjs\n`)).toMatch(/f3\.yaml: extension: patch \S*extend-throws\.cjs: extend\(ctx\) threw/);
  });

  it('both spellings at once, or patches in a parameter section, are refused', async () => {
    expect(await refusal('b1.yaml', `${HEAD}extension: patches/release-defers.cjs\npatches: [patches/release-as-is.cjs]\n`)).toMatch(/b1\.yaml: extension: give patches: \[file, …\] or the older extension:, not both/);
    expect(await refusal('b2.yaml', `${HEAD}fix: { extension: patches/release-defers.cjs, patches: [] }\n`)).toMatch(/b2\.yaml: fix\.extension: give patches/);
    expect(await refusal('b3.yaml', HEAD.replace('workload: {', 'workload: { patches: patches/release-defers.cjs,'))).toMatch(/b3\.yaml: workload\.patches: a scenario names its patches at the top level/);
  });

  it('every model takes patches: a domains scenario patching iommufd, an ioasid one patching the allocator', async () => {
    file('patches/iommufd.cjs', `exports.extend = (ctx) => ctx.k.fns.wrap('iommufd_fops_open', (orig) => orig, 'iommufd patch');\n`);
    file('patches/ioasid.cjs', `exports.extend = (ctx) => ctx.k.fns.wrap('ioasid_alloc', (orig) => orig, 'ioasid patch');\n`);
    const d = await loadScenarioFile(file('d.yaml', 'name: d\ntitle: d\nmodel: domains\npatches: [patches/iommufd.cjs]\nscript:\n  vmm/0: [open, close]\n'));
    expect(d.patches).toHaveLength(1);
    const i = await loadScenarioFile(file('i.yaml', 'name: i\ntitle: i\nmodel: ioasid\npatches: [patches/ioasid.cjs]\n'));
    expect(i.patches).toHaveLength(1);
    // A name only another model has is refused for this one, naming the field.
    expect(await refusal('i2.yaml', 'name: i\ntitle: i\nmodel: ioasid\nworkload: { mode: alloc-free }\npatches: [patches/ioasid.cjs]\n')).toMatch(
      /i2\.yaml: (workload\.)?patches: .*mode=scenario only/,
    );
  });
});

describe('scenario patches: the variants run', () => {
  it('the buggy variant finds what its patch breaks; the fix, with its own patch, runs clean', async () => {
    const s = await loadScenarioFile(file('run.yaml', `${HEAD}patches: [patches/release-defers.cjs]\nfix: { patches: [patches/release-as-is.cjs] }\n`));
    const run = (fixed: boolean) => runBuilt({ workload: buildWorkload(s.model, scenarioParams(s, fixed)) }, 1);
    expect(run(false).findings.map((f) => f.kind)).toContain('stale_translation');
    expect(run(true).findings).toEqual([]);
  });
});
