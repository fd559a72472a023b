#!/usr/bin/env node
// Writes docs/race-report.png, the README's picture of a race report: the first screen (1 280 × 800) of the
// report of a shipped race, found by `explore`, written by `trace --format html`, drawn by headless Chromium.
//
// Usage: npm run build && node scripts/race-report-png.mjs [race.yaml] [--chromium /usr/bin/chromium]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const args = process.argv.slice(2);
const at = args.indexOf('--chromium');
const executablePath = at >= 0 ? args.splice(at, 2)[1] : '/usr/bin/chromium';
const race = resolve(args[0] ?? join(root, 'races', 'iommu-sva-06e14c36e20b-unbind-late-iommu-mm.yaml'));
const bin = join(root, 'bin', 'iommu-sim.js');
const tmp = mkdtempSync(join(tmpdir(), 'iommu-sim-png-'));
const sched = join(tmp, 'race.sched');
const html = join(tmp, 'race.html');
const out = join(root, 'docs', 'race-report.png');

function sim(...argv) {
  const r = spawnSync(process.execPath, [bin, ...argv], { encoding: 'utf8', cwd: tmp });
  if (r.status !== 0 && !(argv[0] === 'explore' && r.status === 1)) throw new Error(`iommu-sim ${argv.join(' ')}: exit ${r.status}\n${r.stderr}`);
}

try {
  sim('explore', race, '--workers', '1', '--record', sched);
  // The report names the schedule as its commands will: by the file name a user would have.
  sim('trace', 'race.sched', '--format', 'html', '-o', html);
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(pathToFileURL(html).href);
  await page.screenshot({ path: out });
  await browser.close();
  console.log(`${out} written: the first screen of the report of ${race}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
