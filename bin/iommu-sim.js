#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run by `npm ci` through `prepare`). A Node older
// than package.json's `engines` is refused here (exit 2), before an import fails in a way that names no version.
import { readFileSync } from 'node:fs';

const wanted = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node;
const [, wantMajor, wantMinor] = /^>=(\d+)\.(\d+)$/.exec(wanted).map(Number);
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < wantMajor || (major === wantMajor && minor < wantMinor)) {
  process.stderr.write(`iommu-sim: needs node ${wanted} (package.json "engines"); this is node ${process.version} (${process.execPath})\n`);
  process.exit(2);
}
await import('../dist/src/cli/main.js');
