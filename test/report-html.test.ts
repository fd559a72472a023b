// The HTML race report, built from a real race (seed 000: unbind frees the PASID with DMA in flight): first as
// text — what it must and must not contain — then opened in a real headless Chromium, because an SVG that is
// well-formed text can still render as nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { raceReportHtml } from '../src/report/html.js';
import { ENV, type Finding, MEM, TASK, TIMER } from '../src/runtime/model.js';
import { type ReplayOutcome, replay, run } from '../src/runtime/run.js';
import { EventNames, Trace } from '../src/runtime/trace.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
// Locally a missing browser skips the browser half; in CI it must fail, or a machine without Chromium would
// report the renderer as tested when it never ran (.ci/run installs Debian's chromium).
const inCi = Boolean(process.env.CI);
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const RACE = { teardown: 'at-once', processes: 2, sequential: true, script: 'unbind-inflight' };
const WINDOW = 60;

const tmp = mkdtempSync(join(tmpdir(), 'iommu-sim-report-'));
let r: ReplayOutcome;
let finding: Finding;
let html: string;

beforeAll(async () => {
  const out = await run({ workload: { name: 'sva', params: RACE }, runtime: 'deterministic', strategy: 'pct', seed: 1, runs: 500 });
  r = replay(out.schedule);
  expect(r.matches).toBe(true);
  const f = r.findings[0];
  if (!f) throw new Error('the sva race was not found: the report has nothing to show');
  finding = f;
  html = raceReportHtml({
    title: 'iommu-sim sva (deterministic, seed 1)',
    findings: r.findings,
    params: r.workload.params,
    trace: r.trace,
    replayCommand: 'iommu-sim replay race.sched',
    traceHash: r.traceHash,
    window: WINDOW,
  });
});

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What the diagram must show, worked out from the trace independently of the report's own layout code. */
function expected(trace: Trace, lo: number, hi: number): { names: Set<string>; messages: number } {
  const names = new Set<string>();
  let messages = 0;
  for (let i = lo; i <= hi; i++) {
    const rec = trace.record(i);
    names.add(trace.actorName(rec.actor));
    if (rec.sender !== TASK && rec.sender !== TIMER) {
      messages++;
      names.add(trace.actorName(rec.sendStep >= 0 ? rec.sender : ENV));
    }
  }
  return { names, messages };
}

function attr(name: string): number {
  const m = html.match(new RegExp(`<svg id="sequence"[^>]* ${name}="(\\d+)"`));
  if (!m) throw new Error(`<svg id="sequence"> has no ${name}`);
  return Number(m[1]);
}

describe('the HTML race report, as text', () => {
  it('carries the finding in kernel wording, the parameters, the replay command and the trace hash', () => {
    expect(finding.kind).toBe('stale_translation');
    expect(finding.title).toMatch(/stale translation: PASID 1 handed out again before its drain finished/);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(`<pre class="finding" data-kind="stale_translation" data-step="${finding.step}">${finding.text}</pre>`);
    expect(html).toContain('<tr><th scope="row">teardown</th><td>at-once</td></tr>');
    expect(html).toContain('<tr><th scope="row">script</th><td>unbind-inflight</td></tr>');
    expect(html).toContain('<pre class="command">iommu-sim replay race.sched</pre>');
    expect(html).toContain(r.traceHash);
  });

  it('draws one lifeline per actor or task in the window and one arrow per message, around the finding', () => {
    const lo = finding.step - WINDOW;
    expect(attr('data-first')).toBe(lo);
    expect(attr('data-last')).toBe(finding.step);
    const want = expected(r.trace, lo, finding.step);
    const lifelines = [...html.matchAll(/<g class="lifeline[^"]*" data-name="([^"]*)">/g)].map((m) => m[1]);
    expect(new Set(lifelines)).toEqual(want.names);
    expect(lifelines.length).toBe(want.names.size);
    expect(attr('data-lifelines')).toBe(want.names.size);
    expect(html.match(/<g class="message[ "]/g)?.length).toBe(want.messages);
    expect(attr('data-messages')).toBe(want.messages);
    expect(want.messages).toBeGreaterThan(0);
    // Every step of the window is a box, and the finding's is the one marked.
    expect(html.match(/<g class="step [^"]*" data-step=/g)?.length).toBe(WINDOW + 1);
    expect(html).toMatch(new RegExp(`<g class="step [a-z]+ focus" data-step="${finding.step}">`));
    expect(html).toContain(`the ${WINDOW + 1} steps up to the first finding, at step ${finding.step}`);
  });

  it('is self-contained: no script, no URL, no external resource', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/\s(src|href|xlink:href)=/i);
    expect(html).not.toMatch(/<link|@import/i);
    expect(html.match(/url\(/g)?.length).toBe(html.match(/url\(#/g)?.length);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
  });

  it('a finding made at the end of the run shows the last steps, unmarked', () => {
    const atEnd: Finding = { kind: 'leak', title: 'unreferenced object 0x1 (size 8):', text: 'unreferenced object 0x1 (size 8):', step: -1 };
    const h = raceReportHtml({ title: 't', findings: [atEnd], params: {}, trace: r.trace, replayCommand: 'x', traceHash: 'h', window: 10 });
    expect(h).toContain(`data-first="${r.trace.length - 11}" data-last="${r.trace.length - 1}"`);
    expect(h).not.toMatch(/class="step [a-z]+ focus"/);
    expect(h).toContain('made at the end of the run');
  });

  it('escapes everything that came from the trace, the findings or the parameters', () => {
    const h = raceReportHtml(hostile());
    expect(h).not.toMatch(/<script|<img|<svg onload|<b>/i);
    expect(h).not.toMatch(/"\s*on\w+=/i);
    expect(h).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(h).toContain('data-name="&lt;b&gt;&quot; onmouseover=&quot;alert(3)&lt;/b&gt;"');
    expect(h).toContain('&lt;img src=x onerror=alert(2)&gt;');
  });

  it('`trace --format html -o` writes the report for a recorded schedule', () => {
    const sched = join(tmp, 'race.sched');
    const out = join(tmp, 'report.html');
    const set = Object.entries(RACE).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
    const rec = spawnSync(
      process.execPath,
      [BIN, 'sva', '--runtime', 'deterministic', '--strategy', 'pct', '--runs', '500', '--record', sched, ...set],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(rec.status, rec.stderr).toBe(1);
    const t = spawnSync(process.execPath, [BIN, 'trace', sched, '--format', 'html', '-o', out], { encoding: 'utf8', timeout: 60_000 });
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/\(html\); trace hash /);
    const written = readFileSync(out, 'utf8');
    expect(written).toContain(finding.title);
    expect(written).toContain(`<pre class="command">iommu-sim replay ${sched}</pre>`);
    expect(written).toMatch(/<svg id="sequence"[^>]* data-lifelines="\d+" data-messages="\d+">/);
  });
});

// The few browser APIs the geometry check uses: the project type-checks against Node's types, without the DOM
// library, and including it for one test would let DOM globals type-check in src/ too.
interface Point {
  readonly x: number;
  readonly y: number;
}
interface SvgEl {
  readonly dataset: Record<string, string | undefined>;
  getBBox(): Point & { readonly width: number; readonly height: number };
  getTotalLength(): number;
  getPointAtLength(length: number): Point;
  querySelector(selector: string): SvgEl | null;
}
interface Doc {
  querySelector(selector: string): SvgEl | null;
  querySelectorAll(selector: string): Iterable<SvgEl>;
}

/** A report whose every input tries to inject markup. */
function hostile(): Parameters<typeof raceReportHtml>[0] {
  const names = new EventNames();
  const ev = names.hash('<img src=x onerror=alert(2)>');
  const op = names.hash('</text><script>alert(4)</script>');
  // Step 0: the actor handles the run's initial message; step 1: an atomic op it asked for.
  const records = Int32Array.from([0, 0, ENV, -1, ev, 0, 1, MEM, 0, 0, op, 7]);
  const trace = new Trace(records, ['<b>" onmouseover="alert(3)</b>'], names.map);
  return {
    title: '<script>alert(1)</script>',
    findings: [{ kind: 'x"><svg onload=alert(5)>', title: '<img src=x onerror=alert(2)>', text: '<img src=x onerror=alert(2)>', step: 1 }],
    params: { '"><svg onload=alert(6)>': '<script>alert(7)</script>' },
    trace,
    replayCommand: "iommu-sim replay '<script>alert(8)</script>'",
    traceHash: '<b>h</b>',
  };
}

describe('the HTML race report, in headless Chromium', () => {
  const skip = !hasChromium && !inCi;
  let ctx: BrowserContext | undefined;
  const profile = join(tmp, 'chromium-profile');

  afterAll(async () => {
    await ctx?.close();
  });

  async function browser(): Promise<BrowserContext> {
    if (!hasChromium) {
      throw new Error(
        `CI is set but ${CHROMIUM} does not exist, so the HTML report cannot be rendered: install Debian's chromium ` +
          '(apt-get install -y chromium; .ci/run does this when apt-get is available)',
      );
    }
    ctx ??= await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
    return ctx;
  }

  /** Opens a report from disk, as a user would, failing on any request that leaves the file or any page error. */
  async function open(name: string, content: string) {
    const file = join(tmp, name);
    writeFileSync(file, content);
    const page = await (await browser()).newPage();
    const problems: string[] = [];
    page.on('request', (req) => {
      if (!req.url().startsWith('file:')) problems.push(`request: ${req.url()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    // A CSP violation is reported as a console error: the report tried to load or run something.
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    await page.goto(pathToFileURL(file).href);
    return { page, problems };
  }

  it.skipIf(skip)('renders the sequence diagram: a sized SVG, the lifelines and arrows it announces, the finding visible', async () => {
    const { page, problems } = await open('race.html', html);
    const svg = page.locator('svg#sequence');
    const box = await svg.boundingBox();
    expect(box?.width ?? 0).toBeGreaterThan(0);
    expect(box?.height ?? 0).toBeGreaterThan(0);

    const announced = {
      lifelines: Number(await svg.getAttribute('data-lifelines')),
      messages: Number(await svg.getAttribute('data-messages')),
    };
    const want = expected(r.trace, finding.step - WINDOW, finding.step);
    expect(announced).toEqual({ lifelines: want.names.size, messages: want.messages });
    expect(await page.locator('#sequence g.lifeline').count()).toBe(announced.lifelines);
    expect(await page.locator('#sequence g.message').count()).toBe(announced.messages);
    const summary = await page.locator('p.summary').innerText();
    expect(summary).toContain(`${announced.lifelines} lifelines, ${announced.messages} messages`);

    const first = page.locator('pre.finding').first();
    expect(await first.isVisible()).toBe(true);
    expect(await first.innerText()).toContain(finding.title);
    expect(await page.locator('#sequence .step.focus').isVisible()).toBe(true);

    // Laid out, not just present: every lifeline has a size, every arrow has a length and ends on the box of
    // the step that handled the message, and one sent inside the window starts on the box of the step that sent it.
    const geometry = await page.evaluate(() => {
      const doc = (globalThis as unknown as { document: Doc }).document;
      const near = (p: Point, el: SvgEl | null): boolean => {
        if (!el) return false;
        const b = el.getBBox();
        return p.x >= b.x - 1 && p.x <= b.x + b.width + 1 && p.y >= b.y - 1 && p.y <= b.y + b.height + 1;
      };
      const firstStep = Number(doc.querySelector('svg#sequence')?.dataset.first);
      const lifelines = [...doc.querySelectorAll('#sequence g.lifeline')].map((g) => g.getBBox());
      const bad: string[] = [];
      for (const g of doc.querySelectorAll('#sequence g.message')) {
        const path = g.querySelector('path');
        const step = g.dataset.step;
        const send = Number(g.dataset.send);
        const len = path?.getTotalLength() ?? 0;
        if (!path || !(len > 0)) {
          bad.push(`message to step ${step} has no length`);
          continue;
        }
        if (!near(path.getPointAtLength(len), doc.querySelector(`#sequence g.step[data-step="${step}"] rect`))) {
          bad.push(`message to step ${step} does not end on its box`);
        }
        if (send >= firstStep && !near(path.getPointAtLength(0), doc.querySelector(`#sequence g.step[data-step="${send}"] rect`))) {
          bad.push(`message to step ${step} does not start on the box of step ${send}`);
        }
      }
      return { sized: lifelines.length > 0 && lifelines.every((b) => b.width > 0 && b.height > 0), bad };
    });
    expect(geometry.sized).toBe(true);
    expect(geometry.bad).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it.skipIf(skip)('runs nothing it was fed: hostile names render as text', async () => {
    const { page, problems } = await open('hostile.html', raceReportHtml(hostile()));
    expect(await page.locator('script, img, iframe, object, embed, svg svg').count()).toBe(0);
    expect(await page.locator('h1').innerText()).toBe('<script>alert(1)</script>');
    const names = await page.locator('#sequence g.lifeline').evaluateAll((gs) => gs.map((g) => g.getAttribute('data-name')));
    expect(names).toEqual(['env', '<b>" onmouseover="alert(3)</b>', 'mem']);
    expect(await page.locator('pre.finding').innerText()).toBe('<img src=x onerror=alert(2)>');
    expect(problems).toEqual([]);
    await page.close();
  });
});
