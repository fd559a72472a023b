#!/usr/bin/env node
// Writes docs/parameters.md and docs/steps.md from the zod schemas of the parameters and the script steps
// (src/workloads/docs.ts), and docs/costs.md from each vendor's cost table (src/hw/costs.ts); test/params-doc.test.ts
// fails while a file differs from what this writes.
//
// Usage: npm run build && node scripts/params-doc.mjs
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { parametersMarkdown, stepsMarkdown } = await import(join(root, 'dist/src/workloads/docs.js'));
writeFileSync(join(root, 'docs/parameters.md'), parametersMarkdown());
writeFileSync(join(root, 'docs/steps.md'), stepsMarkdown());
const { costsMarkdown } = await import(join(root, 'dist/src/hw/costs.js'));
const { VENDORS } = await import(join(root, 'dist/src/hw/vendors.js'));
writeFileSync(join(root, 'docs/costs.md'), costsMarkdown(VENDORS));
console.log('docs/parameters.md, docs/steps.md and docs/costs.md written');
