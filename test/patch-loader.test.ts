// The patch loader (src/workloads/patch-loader.ts): patches in every language a user writes them in (.cjs, .mjs,
// .ts), several in order, in every preset; and every way one fails told naming its file (and, at run time, the
// kernel function it put in place) — never a hang or a JavaScript stack.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Kernel } from '../src/kernel/kernel.js';
import { TaskFailure } from '../src/runtime/task.js';
import { buildDomains } from '../src/workloads/domains.js';
import { buildIoasid } from '../src/workloads/ioasid.js';
import { PatchError, PatchFailure, parsePatchList } from '../src/workloads/patch-loader.js';
import { buildSva } from '../src/workloads/sva.js';
import { runBuilt } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'patch-loader-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}
const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');

/** Who patched `name`, oldest first (the registry's record: each patch's own `by`). */
function patchedBy(k: Kernel, name: string): string[] {
  const info = k.fns.list().find((f) => f.name === name);
  return (info?.origins ?? []).flatMap((o) => (o.kind === 'patch' ? [`${o.how} ${o.by}`] : []));
}

// A wrapper of the bind that adds one step: the run shows it, the registry records it.
const wrapBind = (by: string) => `(ctx) => ctx.k.fns.wrap('iommu_sva_bind_device', (orig) => function* (t, dev, mm) {
  yield* ctx.k.step(t, ${JSON.stringify(`${by}: bind`)}, () => {});
  return yield* orig(t, dev, mm);
}, ${JSON.stringify(by)})`;

const CJS = file('a.cjs', `exports.extend = ${wrapBind('cjs')};\n`);
const MJS = file('b.mjs', `export const extend = ${wrapBind('mjs')};\n`);
const TS = file(
  'c.ts',
  `import type { ExtensionContext } from 'iommu-sim';
interface Registry { wrap(name: string, w: (orig: (...a: unknown[]) => Generator) => unknown, by: string): void }
export function extend(ctx: ExtensionContext): void {
  const fns: Registry = ctx.k.fns as unknown as Registry;
  const by: string = 'ts';
  fns.wrap('iommu_sva_bind_device', (orig) => function* (t: unknown, dev: unknown, mm: unknown) {
    yield* ctx.k.step(t as never, 'ts: bind', () => {});
    return yield* orig(t, dev, mm);
  }, by);
}
`,
);

describe('patch loader: what loads', () => {
  it('a CommonJS, an ES module and a TypeScript patch, several in order, each wrapping what the one before left', () => {
    const built = buildSva({ patches: [CJS, MJS, TS].join(',') });
    expect(patchedBy(built.model.k, 'iommu_sva_bind_device')).toEqual(['wrap cjs', 'wrap mjs', 'wrap ts']);
    const r = runBuilt(built, 1);
    expect(r.findings).toEqual([]);
    // The last applied is the outermost: its step comes first.
    const text = r.trace.toText();
    const at = (s: string) => text.indexOf(s);
    expect(at('ts: bind')).toBeGreaterThanOrEqual(0);
    expect(at('ts: bind')).toBeLessThan(at('mjs: bind'));
    expect(at('mjs: bind')).toBeLessThan(at('cjs: bind'));
  });

  it("a TypeScript patch outside any package imports iommu-sim's entry points (from the iommu-sim that runs it)", () => {
    const imports = file(
      'imports.ts',
      `import { defineScenario } from 'iommu-sim';
export function extend(ctx: { k: { fns: { wrap(n: string, w: (o: unknown) => unknown, by: string): void } } }): void {
  ctx.k.fns.wrap('iommu_sva_bind_device', (orig) => orig, typeof defineScenario);
}
`,
    );
    expect(patchedBy(buildSva({ patches: imports }).model.k, 'iommu_sva_bind_device')).toEqual(['wrap function']);
  });

  it("a patch applies once the whole model is built: the accelerator driver's and the syscalls' functions are there", () => {
    const late = file(
      'uacce.cjs',
      `exports.extend = (ctx) => {
  ctx.k.fns.wrap('uacce_fops_open', (orig) => orig, 'uacce patch');
  ctx.k.fns.wrap('iommu_sva_unbind_device', (orig) => orig, 'core patch');
};
`,
    );
    const k = buildSva({ patches: late }).model.k;
    expect(patchedBy(k, 'uacce_fops_open')).toEqual(['wrap uacce patch']);
    expect(patchedBy(k, 'iommu_sva_unbind_device')).toEqual(['wrap core patch']);
  });

  it('the older `extension` applies before `patches`', () => {
    const built = buildSva({ extension: MJS, patches: CJS });
    expect(patchedBy(built.model.k, 'iommu_sva_bind_device')).toEqual(['wrap mjs', 'wrap cjs']);
  });

  it('a patch list as a JSON array (file names with commas), and malformed lists refused', () => {
    expect(parsePatchList('["a,b.cjs", "c.ts"]')).toEqual(['a,b.cjs', 'c.ts']);
    expect(parsePatchList(' a.cjs , b.ts ')).toEqual(['a.cjs', 'b.ts']);
    expect(parsePatchList('')).toEqual([]);
    expect(() => buildSva({ patches: 'a.cjs,,b.ts' })).toThrow(/patches: an empty file name/);
    expect(() => buildSva({ patches: '["a.cjs", 3]' })).toThrow(/patches: expected an array of file names/);
  });

  it('every preset takes patches: domains (iommufd too, with a VMM actor), ioasid in its scenario mode', () => {
    const iommufd = file('iommufd.cjs', `exports.extend = (ctx) => ctx.k.fns.wrap('iommufd_fops_open', (orig) => orig, 'iommufd patch');\n`);
    const steps = JSON.stringify({ 'vmm/0': [{ op: 'open' }] });
    const d = buildDomains({ steps, patches: [CJS, iommufd].join(',') });
    expect(patchedBy(d.model.model.k, 'iommu_sva_bind_device')).toEqual(['wrap cjs']);
    expect(patchedBy(d.model.model.k, 'iommufd_fops_open')).toEqual(['wrap iommufd patch']);
    const ioasid = file('ioasid.cjs', `exports.extend = (ctx) => ctx.k.fns.wrap('ioasid_alloc', (orig) => orig, 'ioasid patch');\n`);
    const i = buildIoasid({ patches: ioasid });
    expect(patchedBy(i.model.k, 'ioasid_alloc')).toEqual(['wrap ioasid patch']);
    // The benchmark modes run the allocator alone: no model to patch.
    expect(() => buildIoasid({ mode: 'alloc-free', patches: ioasid })).toThrow(/ioasid: patches: patches apply in mode=scenario only/);
  });
});

describe('patch loader: what fails, naming the patch', () => {
  const refused = (patches: string): string => {
    try {
      buildSva({ patches });
    } catch (err) {
      expect(err).toBeInstanceOf(PatchError);
      return (err as Error).message;
    }
    throw new Error('not refused');
  };

  it('a file that is not there', () => {
    expect(refused(join(dir, 'nothere.cjs'))).toMatch(/^patch \S*nothere\.cjs: no such file/);
  });

  it('a module that throws while it loads, or is not valid TypeScript', () => {
    expect(refused(file('body.cjs', "throw new Error('the module body threw');\n"))).toMatch(/^patch \S*body\.cjs: cannot load: the module body threw$/);
    expect(refused(file('syntax.ts', 'export function extend(ctx: unknown) {\n  const x = ;\n}\n'))).toMatch(/^patch \S*syntax\.ts: not valid TypeScript: line 2: Expression expected/);
    expect(refused(file('tla.mjs', 'await Promise.resolve();\nexport const extend = () => {};\n'))).toMatch(/^patch \S*tla\.mjs: cannot load: an ES module with top-level await/);
  });

  it('a module without extend(), an extend() that throws, a kernel function that does not exist', () => {
    expect(refused(file('none.cjs', 'exports.setup = () => {};\n'))).toMatch(/^patch \S*none\.cjs: exports no extend\(ctx\) function \(exports: setup\)$/);
    expect(refused(file('extend.cjs', "exports.extend = () => { throw new Error('extend gave up'); };\n"))).toMatch(/^patch \S*extend\.cjs: extend\(ctx\) threw: extend gave up$/);
    const typo = file('typo.cjs', "exports.extend = (ctx) => ctx.k.fns.replace('iommu_sva_unbind_devcie', function* () {}, 'typo');\n");
    expect(refused(typo)).toMatch(/^patch \S*typo\.cjs: extend\(ctx\) threw: typo: no kernel function 'iommu_sva_unbind_devcie'; nearest: iommu_sva_unbind_device/);
  });

  it('a replaced kernel function that throws as the model runs: the patch and the function', () => {
    const throws = file(
      'throws.cjs',
      `exports.extend = (ctx) => ctx.k.fns.replace('iommu_sva_bind_device', function* (t) {
  yield* ctx.k.step(t, 'bind (patched)', () => {});
  throw new Error('boom in bind');
}, 'a patch');\n`,
    );
    let caught: unknown;
    try {
      runBuilt(buildSva({ patches: throws }), 1);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TaskFailure);
    const cause = (caught as TaskFailure).error;
    expect(cause).toBeInstanceOf(PatchFailure);
    expect((cause as PatchFailure).file).toBe(throws);
    expect((cause as PatchFailure).fn).toBe('iommu_sva_bind_device');
    expect((caught as Error).message).toMatch(/^task proc0 threw after 'bind \(patched\)': patch \S*throws\.cjs: its iommu_sva_bind_device threw: boom in bind$/);
  });

  it('a replacement made later (when the run starts) is the patch\'s too; the model\'s own code is not blamed', () => {
    const late = file(
      'late.cjs',
      `exports.extend = (ctx) => ctx.k.onAttach(() => ctx.k.fns.replace('iommu_sva_unbind_device', function* () {
  throw new Error('boom in unbind');
}, 'late patch'));\n`,
    );
    expect(() => runBuilt(buildSva({ patches: late }), 1)).toThrow(/patch \S*late\.cjs: its iommu_sva_unbind_device threw: boom in unbind/);
    // Without a patch the same run ends clean: the attribution is not a wrapper of every function.
    expect(runBuilt(buildSva({}), 1).findings).toEqual([]);
  });

  it('a patched function that sleeps in atomic context: might_sleep\'s report, as for the model\'s code', () => {
    const sleepy = file(
      'sleepy.cjs',
      `exports.extend = (ctx) => ctx.k.fns.wrap('iommu_sva_bind_device', (orig) => function* (t, dev, mm) {
  yield* ctx.kernel.rcu_read_lock(t);
  const r = yield* orig(t, dev, mm); // takes iommu_sva_lock, a mutex
  yield* ctx.kernel.rcu_read_unlock(t);
  return r;
}, 'sleepy');\n`,
    );
    const r = runBuilt(buildSva({ patches: sleepy }), 1);
    const f = r.findings.find((x) => x.kind === 'might_sleep');
    expect(f?.text).toMatch(/BUG: sleeping function called from invalid context/);
    expect(f?.text).toMatch(/RCU nest depth: 1, expected: 0/);
    expect(f?.text).toMatch(/^ iommu_sva_bind_device$/m);
  });

  it('a patched function that spins without a scheduling point: the watchdog names the patch and the function (CLI, exit 1)', () => {
    file(
      'spin.cjs',
      `exports.extend = (ctx) => ctx.k.fns.replace('iommu_sva_unbind_device', function* (t) {
  yield* ctx.k.step(t, 'unbind (patched): about to spin', () => {});
  for (;;) {}
}, 'spin');\n`,
    );
    const r = spawnSync(process.execPath, [BIN, 'sva', '--runtime', 'deterministic', '--set', 'patches=spin.cjs', '--watchdog', '1s'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^iommu-sim: watchdog: task proc0 has run \d+ s of host time without reaching a scheduling point \(last point: unbind \(patched\): about to spin\) in iommu_sva_unbind_device as patched by spin\.cjs; /m,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // An extend() that spins is the input's fault: exit 2, naming the patch.
    file('spin-extend.cjs', 'exports.extend = () => { for (;;) {} };\n');
    const e = spawnSync(process.execPath, [BIN, 'sva', '--runtime', 'deterministic', '--set', 'patches=spin-extend.cjs', '--watchdog', '1s'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(e.status).toBe(2);
    expect(e.stderr).toMatch(/^iommu-sim: watchdog: patch spin-extend\.cjs: extend\(ctx\) has run \d+ s of host time without reaching a scheduling point; /m);
  });
});
