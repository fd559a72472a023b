// What ships in races/ is written against the package's public entry points only (issue #18): a race script or a
// patch imports `iommu-sim` or `iommu-sim/kernel` (or a file of its own inside races/), never a file of the
// build (`dist/`) or of the sources, and reaches the kernel's memory through the kernel API — no raw word, no
// shared-memory array, no model internal handed over in ctx (ctx.sva, ctx.dma).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const RACES = join(ROOT, 'races');
const PUBLIC = new Set(['iommu-sim', 'iommu-sim/kernel']);

/** Module specifiers a JavaScript or TypeScript file loads: require(), import … from, import(), export … from. */
function specifiers(src: string): string[] {
  const out: string[] = [];
  const patterns = [/\brequire\s*\(\s*(['"`])([^'"`]+)\1\s*\)/g, /\bimport\s*\(\s*(['"`])([^'"`]+)\1\s*\)/g, /\b(?:import|export)\b[^'"`;]*?\bfrom\s*(['"`])([^'"`]+)\1/g, /\bimport\s*(['"`])([^'"`]+)\1/g];
  for (const re of patterns) for (const m of src.matchAll(re)) out.push(m[2] as string);
  return out;
}

/** A require() of something that is not a string literal: what it loads cannot be checked. */
const DYNAMIC = /\brequire\s*\(\s*[^'"`\s)]/;
/** Ways past the API to the kernel's memory or the model's internals. */
const PRIVATE: readonly [RegExp, string][] = [
  [/\bdist\//, 'a path into dist/'],
  [/(?:^|[^\w.])src\/\w/, 'a path into src/'],
  [/\bi32\b|\bAtomics\./, "the kernel's shared memory as words"],
  [/\.offset\.\w|\bmem\.statics\b/, 'a word offset'],
  [/\bctx\.(?:sva|dma)\b/, 'a model internal (ctx.sva / ctx.dma)'],
];

/** Why `src` (the file `file` in races/) breaks the rule, if it does. */
function violations(file: string, src: string): string[] {
  const bad: string[] = [];
  const code = /\.(?:c?js|mjs|c?ts|mts)$/.test(file);
  if (code) {
    for (const s of specifiers(src)) {
      if (PUBLIC.has(s)) continue;
      const inside = s.startsWith('.') && !relative(RACES, resolve(dirname(file), s)).startsWith('..');
      if (!inside) bad.push(`loads '${s}'`);
    }
    if (DYNAMIC.test(src)) bad.push('a require() of a computed name');
  }
  for (const [re, what] of PRIVATE) if (re.test(code ? src : src.replace(/^\s*#.*$/gm, ''))) bad.push(what);
  return bad;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe('races/ uses the public API only', () => {
  const all = files(RACES);

  it('holds race scripts and patches', () => {
    expect(all.filter((f) => f.includes(`${join('races', 'patches')}`)).length).toBeGreaterThanOrEqual(4);
  });

  it.each(all.map((f) => [relative(ROOT, f), f]))('%s', (_name, file) => {
    expect(violations(file, readFileSync(file, 'utf8'))).toEqual([]);
  });

  it('the check refuses what it should (its negative controls)', () => {
    const f = join(RACES, 'patches', 'x.cjs');
    expect(violations(f, "const m = require('/repo/dist/src/kernel/mutex.js');")).toEqual(["loads '/repo/dist/src/kernel/mutex.js'", 'a path into dist/', 'a path into src/']);
    expect(violations(f, "import { kfree } from '../../src/kernel/slab.js';")).toEqual(["loads '../../src/kernel/slab.js'", 'a path into src/']);
    expect(violations(f, 'exports.extend = (ctx) => { ctx.sva.b(handle, 5); };')).toEqual(['a model internal (ctx.sva / ctx.dma)']);
    expect(violations(f, 'exports.extend = (ctx) => { Atomics.store(ctx.k.i32, a + 5, 0); };')).toEqual(["the kernel's shared memory as words"]);
    expect(violations(f, "const p = require(name + '.js');")).toEqual(['a require() of a computed name']);
    expect(violations(f, "const { kzalloc } = require('iommu-sim/kernel'); const h = require('./helper.cjs');")).toEqual([]);
    expect(violations(join(RACES, 'x.yaml'), 'extension: /repo/dist/patch.cjs\n')).toEqual(['a path into dist/']);
  });
});
