#!/usr/bin/env node
// Writes docs/parameters.md from the presets' zod schemas (src/workloads/docs.ts); test/params-doc.test.ts
// fails while the file differs from what this writes.
//
// Usage: npm run build && node scripts/params-doc.mjs
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { parametersMarkdown } = await import(join(root, 'dist/src/workloads/docs.js'));
writeFileSync(join(root, 'docs/parameters.md'), parametersMarkdown());
console.log('docs/parameters.md written');
