// docs/kernel-api.md is generated from the kernel API's declarations (dist/src/api/kernel.d.ts, from `npm run
// build`, which `npm test` runs first) and its table of C counterparts (src/api/kernel-doc.ts): it must be what
// scripts/kernel-api-doc.mjs writes today, and the table covers exactly the members of the API.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kernelApi } from '../src/api/kernel.js';
import { KERNEL_API_DOC } from '../src/api/kernel-doc.js';
import { kernel } from './kernel-harness.js';

const ROOT = resolve(import.meta.dirname, '..');
const DOC = join(ROOT, 'docs', 'kernel-api.md');
const check = (file = DOC): number => {
  try {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'kernel-api-doc.mjs'), '--check', file], { stdio: 'pipe' });
    return 0;
  } catch (err) {
    return (err as { status: number }).status;
  }
};

describe('docs/kernel-api.md', () => {
  it('documents every member of ctx.kernel, and nothing else', () => {
    expect(Object.keys(KERNEL_API_DOC).sort()).toEqual(Object.keys(kernelApi(kernel())).sort());
  });

  it('is what scripts/kernel-api-doc.mjs writes (npm run build && node scripts/kernel-api-doc.mjs)', () => {
    expect(check()).toBe(0);
  });

  it('the check fails on a stale file (its negative control)', () => {
    const stale = join(mkdtempSync(join(tmpdir(), 'kernel-api-doc-')), 'kernel-api.md');
    writeFileSync(stale, readFileSync(DOC, 'utf8').replace('| `mutex_lock` |', '| `mutex_lok` |'));
    expect(check(stale)).toBe(1);
  });
});
