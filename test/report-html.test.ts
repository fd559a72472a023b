// The HTML race report, built from a real race (seed 000: unbind frees the PASID with DMA in flight): first as
// text — what it must and must not contain, in what order — then opened in a real headless Chromium at 1 280 × 800,
// because an SVG that is well-formed text can still render as nothing, or off the screen. A shipped race with a
// long finding (the KASAN report of races/iommu-sva-06e14c36e20b-…) checks the first screen too.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { raceReportHtml, wrap } from '../src/report/html.js';
import { ENV, type Finding, MEM, TASK, TIMER } from '../src/runtime/model.js';
import { type ReplayOutcome, replay, run } from '../src/runtime/run.js';
import { EventNames, Trace } from '../src/runtime/trace.js';
import { SVA_DEFAULTS } from '../src/workloads/sva.js';

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
/** The first screen a reviewer sees: a laptop's browser window. */
const SCREEN = { width: 1280, height: 800 };
const KASAN_RACE = join(import.meta.dirname, '..', 'races', 'iommu-sva-06e14c36e20b-unbind-late-iommu-mm.yaml');
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
    shrinkCommand: 'iommu-sim shrink race.sched',
    defaults: SVA_DEFAULTS as unknown as Record<string, unknown>,
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

function attr(name: string, id = 'sequence'): number {
  const m = html.match(new RegExp(`<svg id="${id}"[^>]* ${name}="(\\d+)"`));
  if (!m) throw new Error(`<svg id="${id}"> has no ${name}`);
  return Number(m[1]);
}

/** One diagram's SVG, as text. */
function svgOf(id: string, h = html): string {
  const at = h.indexOf(`<svg id="${id}"`);
  if (at < 0) throw new Error(`no <svg id="${id}">`);
  return h.slice(at, h.indexOf('</svg>', at));
}

const lifelinesOf = (svg: string): string[] => [...svg.matchAll(/<g class="lifeline[^"]*" data-name="([^"]*)"/g)].map((m) => m[1] as string);

describe('the HTML race report, as text', () => {
  it('carries the finding in kernel wording, the parameters, the replay and shrink commands and the trace hash', () => {
    expect(finding.kind).toBe('stale_translation');
    expect(finding.title).toMatch(/stale translation: PASID 1 handed out again before its drain finished/);
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(`<pre class="finding" data-kind="stale_translation" data-step="${finding.step}">${finding.text}</pre>`);
    expect(html).toContain('<pre class="command">iommu-sim replay race.sched</pre>');
    expect(html).toContain('<pre class="command shrink">iommu-sim shrink race.sched</pre>');
    expect(html).toContain(r.traceHash);
  });

  it('reads in a reviewer\'s order: the finding, the threads, replay and shrink, then the rest', () => {
    const at = ['<section id="finding">', '<section id="how">', '<section id="replay">', '<section id="params">', '<section id="diagram">'].map((s) =>
      html.indexOf(s),
    );
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    // The full diagram and the parameters at their defaults are folded.
    expect(html).toMatch(/<section id="diagram">\n<h2>[^<]*<\/h2>\n<details>\n<summary>/);
  });

  it('lists the parameters that differ from the defaults first, each with its default, and folds the rest', () => {
    const params = html.slice(html.indexOf('<section id="params">'), html.indexOf('<section id="diagram">'));
    const differs = params.slice(0, params.indexOf('<details>'));
    const folded = params.slice(params.indexOf('<details>'));
    const changed = Object.entries(RACE).filter(([k, v]) => (SVA_DEFAULTS as unknown as Record<string, unknown>)[k] !== v);
    expect(changed.length).toBeGreaterThan(0);
    for (const [k, v] of changed) expect(differs).toMatch(new RegExp(`<tr><th scope="row">${k}</th><td>${v}</td><td class="def">default [^<]+</td></tr>`));
    expect(differs.match(/<tr>/g)?.length).toBe(changed.length);
    expect(folded).toContain('<tr><th scope="row">pages</th><td>8</td></tr>');
    expect(folded).not.toContain('<th scope="row">teardown</th>');
    expect(params).toContain(`${changed.length} of ${Object.keys(r.workload.params).length} differ from the preset's defaults`);
  });

  it('shows the threads that made it: the one that took the finding\'s step and the one that freed the PASID it reused', () => {
    const threads = svgOf('threads');
    const lanes = lifelinesOf(threads);
    const focusLane = r.trace.actorName(r.trace.record(finding.step).actor);
    expect(lanes[0]).toBe(focusLane);
    // The PASID came back from ida_alloc_range on the finding's lifeline; the ida_free before it is the other thread.
    let alloc = -1;
    let free = -1;
    for (let i = finding.step; i >= 0 && free < 0; i--) {
      const name = r.trace.eventName(r.trace.record(i).event);
      if (alloc < 0 && name.startsWith('ida_alloc_range(')) alloc = i;
      else if (alloc >= 0 && name.startsWith('ida_free(')) free = i;
    }
    expect(alloc).toBeGreaterThan(0);
    expect(free).toBeGreaterThan(0);
    const freer = r.trace.actorName(r.trace.record(free).actor);
    expect(freer).not.toBe(focusLane);
    expect(new Set(lanes)).toEqual(new Set([focusLane, freer]));
    for (const step of [alloc, free, finding.step]) expect(threads).toMatch(new RegExp(`<g class="step [a-z ]+" data-step="${step}"`));
    // Marked and linked: the finding's step is the target of the link under the finding.
    expect(threads).toMatch(new RegExp(`<g class="step [a-z]+ focus" data-step="${finding.step}" id="finding-step">`));
    expect(html).toContain(`at <a href="#finding-step">step ${finding.step}</a>`);
  });

  it('puts an actor and the kernel tasks it spawned under one heading', () => {
    const full = svgOf('sequence');
    const groups = [...full.matchAll(/<g class="lifeline[^"]*" data-name="([^"]*)" data-group="([^"]*)">/g)].map((m) => [m[1], m[2]]);
    const proc = groups.filter(([, g]) => g === 'proc/1').map(([n]) => n);
    expect(proc).toEqual(['proc/1', 'proc1']);
    const names = groups.map(([n]) => n);
    expect(names.indexOf('proc1') - names.indexOf('proc/1')).toBe(1);
    expect(full).toContain('<g class="group" data-group="proc/1"><title>proc/1: the actor and the tasks it spawned</title>');
    // proc1 is the task proc/1 spawned: the step that spawned it was proc/1's (task ids name their spawning step).
    expect(lifelinesOf(full)).toContain('proc/0');
  });

  it('wraps a label at its box instead of cutting it', () => {
    const label = 'ida_alloc_range(iommu0->pasid_ida, 1, 255)';
    const lines = wrap(label, 16);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.every((l) => l.length <= 16)).toBe(true);
    expect(lines.join('').replace(/ /g, '')).toBe(label.replace(/ /g, ''));
    expect(html).not.toContain('…</tspan>');
  });

  it('draws one lifeline per actor or task in the window and one arrow per message, around the finding', () => {
    const lo = finding.step - WINDOW;
    expect(attr('data-first')).toBe(lo);
    expect(attr('data-last')).toBe(finding.step);
    const want = expected(r.trace, lo, finding.step);
    const full = svgOf('sequence');
    const lifelines = lifelinesOf(full);
    expect(new Set(lifelines)).toEqual(want.names);
    expect(lifelines.length).toBe(want.names.size);
    expect(attr('data-lifelines')).toBe(want.names.size);
    expect(full.match(/<g class="message[ "]/g)?.length).toBe(want.messages);
    expect(attr('data-messages')).toBe(want.messages);
    expect(want.messages).toBeGreaterThan(0);
    // Every step of the window is a box, and the finding's is the one marked.
    expect(full.match(/<g class="step [^"]*" data-step=/g)?.length).toBe(WINDOW + 1);
    expect(full).toMatch(new RegExp(`<g class="step [a-z]+ focus" data-step="${finding.step}" id="sequence-finding-step">`));
    expect(html).toContain(`the ${WINDOW + 1} steps up to the first finding, at step ${finding.step}`);
  });

  it('is self-contained: no script, no URL, no external resource; its only links are to its own parts', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/\s(src|xlink:href)=/i);
    const links = [...html.matchAll(/\shref="([^"]*)"/g)].map((m) => m[1] as string);
    expect(links.length).toBeGreaterThan(0);
    for (const l of links) {
      expect(l).toMatch(/^#/);
      expect(html).toContain(` id="${l.slice(1)}"`);
    }
    expect(html).not.toMatch(/<link|@import/i);
    expect(html.match(/url\(/g)?.length).toBe(html.match(/url\(#/g)?.length);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
  });

  it('a finding made at the end of the run shows the last steps, unmarked', () => {
    const atEnd: Finding = { kind: 'leak', title: 'unreferenced object 0x1 (size 8):', text: 'unreferenced object 0x1 (size 8):', step: -1 };
    const h = raceReportHtml({ title: 't', findings: [atEnd], params: {}, trace: r.trace, replayCommand: 'x', traceHash: 'h', window: 10 });
    expect(h).toContain(`data-first="${r.trace.length - 11}" data-last="${r.trace.length - 1}"`);
    expect(h).not.toMatch(/class="step [a-z]+ focus"/);
    expect(h).toContain('at the end of the run');
    expect(h).not.toContain('href="#finding-step"');
  });

  it('lists the findings after the first below the commands, and says how many there are', () => {
    const atEnd: Finding = { kind: 'leak', title: 'unreferenced object 0x1 (size 8):', text: 'unreferenced object 0x1 (size 8):', step: -1 };
    const h = raceReportHtml({ title: 't', findings: [finding, atEnd], params: {}, trace: r.trace, replayCommand: 'x', traceHash: 'h' });
    expect(h).toContain('<a href="#more-findings">1 more below</a>');
    const more = h.indexOf('<section id="more-findings">');
    expect(more).toBeGreaterThan(h.indexOf('<section id="replay">'));
    expect(h.indexOf('<pre class="finding" data-kind="leak" data-step="-1">')).toBeGreaterThan(more);
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
    expect(written).toContain(`<pre class="command shrink">iommu-sim shrink ${sched}</pre>`);
    // The CLI knows the preset's defaults: the parameters the race sets come first.
    expect(written).toContain(`${Object.keys(RACE).length} of ${Object.keys(r.workload.params).length} differ from the preset's defaults`);
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
    ctx ??= await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: SCREEN });
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

  /**
   * At 1 280 × 800, before any scrolling: where the finding and the first step of the threads' diagram are, and
   * how far right the page and each lifeline's head reach.
   */
  async function firstScreen(name: string, content: string) {
    const { page, problems } = await open(name, content);
    const finding = await page.locator('pre.finding').first().boundingBox();
    const firstRow = await page.locator('#threads g.step rect').first().boundingBox();
    const heads = await page.locator('#threads g.lifeline > rect.head').evaluateAll((rs) => rs.map((r) => r.getBoundingClientRect().right));
    const pageWidth = await page.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
    return { page, problems, finding, firstRow, heads, pageWidth };
  }

  function onFirstScreen(box: { y: number; height: number } | null): boolean {
    // A pixel's slack: a fragment link scrolls its target's top to the viewport's, give or take rounding.
    return box !== null && box.height > 0 && box.y >= -1 && box.y + box.height <= SCREEN.height;
  }

  it.skipIf(skip)('at 1 280 × 800: the finding and the first row of its threads on the first screen, no lifeline beyond the viewport', async () => {
    const s = await firstScreen('first-screen.html', html);
    expect(onFirstScreen(s.finding)).toBe(true);
    expect(onFirstScreen(s.firstRow)).toBe(true);
    expect(s.heads.length).toBe(attr('data-lifelines', 'threads'));
    expect(Math.max(...s.heads)).toBeLessThanOrEqual(SCREEN.width);
    expect(s.pageWidth).toBeLessThanOrEqual(SCREEN.width);
    // The full diagram, unfolded, fits as well: its lifelines collapse to the width there is.
    await s.page.locator('#diagram summary').click();
    const full = await s.page.locator('#sequence g.lifeline > rect.head').evaluateAll((rs) => rs.map((r) => r.getBoundingClientRect().right));
    expect(full.length).toBe(attr('data-lifelines'));
    expect(Math.max(...full)).toBeLessThanOrEqual(SCREEN.width);
    // The link under the finding brings its step into view, marked.
    await s.page.locator('#finding a[href="#finding-step"]').click();
    const marked = await s.page.locator('#threads g.step.focus rect').boundingBox();
    expect(onFirstScreen(marked)).toBe(true);
    expect(s.problems).toEqual([]);
    await s.page.close();
  });

  it.skipIf(skip)('at 1 280 × 800, a shipped race with a long KASAN report: its start and the first row of its threads on the first screen', async () => {
    const sched = join(tmp, 'kasan.sched');
    const out = join(tmp, 'kasan.html');
    const found = spawnSync(process.execPath, [BIN, 'explore', KASAN_RACE, '--workers', '1', '--record', sched], { encoding: 'utf8', timeout: 120_000 });
    expect(found.status, found.stderr + found.stdout).toBe(0);
    const t = spawnSync(process.execPath, [BIN, 'trace', sched, '--format', 'html', '-o', out], { encoding: 'utf8', timeout: 60_000 });
    expect(t.status, t.stderr).toBe(0);
    const report = readFileSync(out, 'utf8');
    const s = await firstScreen('kasan.html', report);
    expect(await s.page.locator('pre.finding').first().innerText()).toMatch(/^BUG: KASAN: slab-use-after-free in iommu_sva_unbind_device\n/);
    expect(onFirstScreen(s.finding)).toBe(true);
    expect(onFirstScreen(s.firstRow)).toBe(true);
    expect(Math.max(...s.heads)).toBeLessThanOrEqual(SCREEN.width);
    expect(s.pageWidth).toBeLessThanOrEqual(SCREEN.width);
    // The two threads: the task that read the freed mm and the RCU callback the report says freed it.
    const freer = /Freed by task (\d+):/.exec(report)?.[1];
    expect(freer).toBeDefined();
    const lanes = lifelinesOf(svgOf('threads', report));
    expect(lanes[0]).toBe('proc0');
    expect(lanes.some((l) => l.endsWith(`/${freer}`))).toBe(true);
    expect(s.problems).toEqual([]);
    await s.page.close();
  }, 180_000);

  it.skipIf(skip)('renders the sequence diagram: a sized SVG, the lifelines and arrows it announces, the finding visible', async () => {
    const { page, problems } = await open('race.html', html);
    await page.locator('#diagram summary').click();
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
    const summary = await page.locator('#diagram p.summary').innerText();
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
    // Every label whole: the lines of a box, joined, are the step's name its tooltip carries.
    const labels = await page
      .locator('#sequence g.step')
      .evaluateAll((gs) => gs.map((g) => [g.querySelector('title')?.textContent ?? '', [...g.querySelectorAll('tspan')].map((t) => t.textContent).join('')]));
    expect(labels.length).toBe(WINDOW + 1);
    const squash = (x: string): string => x.replace(/\s/g, '');
    const cut = labels.filter(([title, text]) => !squash(title ?? '').endsWith(`:${squash(text ?? '')}`));
    expect(cut).toEqual([]);
    expect(labels.some(([, text]) => (text ?? '').length > 24)).toBe(true);
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
