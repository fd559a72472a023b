// The race report: one self-contained HTML file a kernel developer can attach to a mail or a bug. It reads in
// the order a reviewer needs: the finding in the kernel's words; the threads that made it (the lifeline that took
// the finding's step and the ones it names or raced with, their last steps as a sequence diagram); the commands
// that replay and shrink the run; then the rest — other findings, the parameters that differ from the preset's
// defaults (the others folded), and the full diagram of the window before the finding (folded).
//
// Self-contained means the file works opened from disk years later, offline, anywhere: inline CSS and SVG only,
// no script at all, and a Content-Security-Policy that forbids fetching anything, so a report cannot leak that
// it was opened and text that reached it from a trace (event names, task names, parameters) cannot run. The only
// links are fragments within the file.
import { ENV, type Finding, MEM, TASK, TIMER, type Wire } from '../runtime/model.js';
import { isTaskId } from '../runtime/task.js';
import type { Trace, TraceRecord } from '../runtime/trace.js';
import { findThreads } from './threads.js';
import { groupName, ownerOf } from './tracks.js';

export interface RaceReportInput {
  readonly title: string;
  readonly findings: readonly Finding[];
  readonly params: Readonly<Record<string, Wire>>;
  /** The preset's defaults: parameters that differ from them come first, the rest are folded. */
  readonly defaults?: Readonly<Record<string, unknown>>;
  readonly trace: Trace;
  readonly replayCommand: string;
  readonly shrinkCommand?: string;
  readonly traceHash: string;
  /** Steps the full diagram shows before the first finding's step (default 60). */
  readonly window?: number;
}

export const DEFAULT_WINDOW = 60;

// Geometry, in SVG user units (CSS px). Monospace text keeps label widths predictable without measuring fonts,
// which a file with no script cannot do: labels are wrapped here, at the width of their box.
/** What a diagram may take at 1 280 px: the page's margins and the scroll box's border and scrollbar aside. */
const FIT = 1180;
const MIN_COL = 120;
const MAX_COL = 320;
const PAD = 16;
const LINE = 13;
const ROW = 22;
const GAP_ROW = 16;
const GROUP_H = 18;
const CHAR_W = 6.7;

// Not 'message': that class names the arrows, which tests and stylesheets select as g.message.
type StepKind = 'delivery' | 'task' | 'atomic' | 'timer';

interface Lane {
  readonly name: string;
  readonly x: number;
  readonly kind: 'actor' | 'kernel task' | 'shared memory' | 'the run';
  readonly group: string;
}

/** The whole report as one HTML document. */
export function raceReportHtml(input: RaceReportInput): string {
  const { trace, findings } = input;
  const first = findings[0];
  const win = Math.max(0, Math.floor(input.window ?? DEFAULT_WINDOW));
  // A finding at -1 was made when the run ended (a leak, a hung task): the last steps are what led there.
  const focus = first && first.step >= 0 && first.step < trace.length ? first.step : trace.length - 1;
  // Only a finding made at a step marks that step; one made at the end of the run has no step to mark.
  const marked = first !== undefined && first.step === focus;
  const lo = Math.max(0, focus - win);
  const parts = trace.length === 0 ? undefined : { threads: threadsSection(trace, first, focus, marked), full: fullSection(trace, lo, focus, marked) };
  const more = findings.slice(1);

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="iommu-sim">
<title>${esc(first ? `${first.title} — ${input.title}` : input.title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${esc(input.title)}</h1>
${findingSection(first, findings.length, marked, trace.length)}
${parts?.threads ?? ''}
<section id="replay">
<h2>Replay and shrink</h2>
<pre class="command">${esc(input.replayCommand)}</pre>
${input.shrinkCommand ? `<pre class="command shrink">${esc(input.shrinkCommand)}</pre>\n` : ''}<p>Trace hash <code>${esc(input.traceHash)}</code>: a replay that prints the same hash ran exactly this interleaving. <code>shrink</code> writes a schedule no longer than this one that fails the same way.</p>
</section>
${more.length > 0 ? `<section id="more-findings">\n<h2>${more.length} more finding${more.length === 1 ? '' : 's'}</h2>\n${more.map(findingBlock).join('\n')}\n</section>` : ''}
${paramsSection(input.params, input.defaults)}
${parts?.full ?? ''}
</body>
</html>
`;
}

function findingSection(first: Finding | undefined, count: number, marked: boolean, steps: number): string {
  if (!first) return `<section id="finding">\n<h2>Finding</h2>\n<p>None: no checker reported anything in ${steps} steps.</p>\n</section>`;
  const at = marked ? `at <a href="#finding-step">step ${first.step}</a>` : 'at the end of the run';
  const others = count > 1 ? `; <a href="#more-findings">${count - 1} more below</a>` : '';
  return (
    `<section id="finding">\n<h2>Finding</h2>\n${findingBlock(first)}\n` +
    `<p class="meta">${esc(first.kind)}, ${at}${first.where ? `, in ${esc(first.where)}` : ''}${others}</p>\n</section>`
  );
}

function findingBlock(f: Finding): string {
  return `<pre class="finding" data-kind="${esc(f.kind)}" data-step="${f.step}">${esc(f.text)}</pre>`;
}

function threadsSection(trace: Trace, first: Finding | undefined, focus: number, marked: boolean): string {
  const t = findThreads(trace, first, focus);
  const d = diagram(trace, { id: 'threads', lanes: t.lanes, steps: t.steps, focus, marked });
  const why = t.lanes.map((l) => `<li><span class="lane">${esc(l)}</span> ${esc(t.why.get(l) ?? '')}</li>`).join('\n');
  return `<section id="how">
<h2>The threads that made it</h2>
<ul class="why">
${why}
</ul>
<div class="scroll">
${d.svg}
</div>
<p class="summary">Their last steps up to the finding: ${d.rows} steps; the steps left out are counted where they fall. ${LEGEND}</p>
</section>`;
}

function fullSection(trace: Trace, lo: number, hi: number, marked: boolean): string {
  const steps: number[] = [];
  for (let i = lo; i <= hi; i++) steps.push(i);
  const names = new Set<string>();
  let mem = false;
  for (const i of steps) {
    const r = trace.record(i);
    if (isMessage(r)) names.add(trace.actorName(r.sendStep >= 0 ? r.sender : ENV));
    if (r.actor === MEM) mem = true;
    else names.add(trace.actorName(r.actor));
  }
  // Shared memory goes last so that the many short atomic round trips do not cross the interesting arrows.
  if (mem) names.add(trace.actorName(MEM));
  const d = diagram(trace, { id: 'sequence', lanes: [...names], steps, focus: hi, marked });
  const where = marked ? `the ${d.rows} steps up to the first finding, at step ${hi}` : `the last ${d.rows} steps of the run`;
  return `<section id="diagram">
<h2>Every lifeline</h2>
<details>
<summary>The full sequence diagram: steps ${lo}–${hi} of ${trace.length}, ${d.lanes} lifelines, ${d.messages} messages</summary>
<p class="summary">Steps ${lo}–${hi} of ${trace.length}: ${where}. ${d.lanes} lifelines, ${d.messages} messages.</p>
<div class="scroll">
${d.svg}
</div>
<h3>The same steps as text</h3>
<pre class="steps">${esc(d.text)}</pre>
</details>
</section>`;
}

function paramsSection(params: Readonly<Record<string, Wire>>, defaults: Readonly<Record<string, unknown>> | undefined): string {
  const entries = Object.entries(params);
  const differs = defaults ? entries.filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(defaults[k])) : entries;
  const same = defaults ? entries.filter(([k, v]) => JSON.stringify(v) === JSON.stringify(defaults[k])) : [];
  const rows = (es: [string, Wire][], withDefault: boolean): string =>
    es
      .map(([k, v]) => {
        const def = withDefault && defaults && k in defaults ? `<td class="def">default ${esc(String(wireText(defaults[k] as Wire)))}</td>` : '';
        return `<tr><th scope="row">${esc(k)}</th><td>${esc(wireText(v))}</td>${def}</tr>`;
      })
      .join('\n');
  const lead = defaults
    ? `${differs.length} of ${entries.length} differ from the preset's defaults${differs.length > 0 ? ':' : '.'}`
    : `${entries.length} parameters:`;
  return `<section id="params">
<h2>Parameters</h2>
<p>${lead}</p>
${differs.length > 0 ? `<table class="params differs">\n<tbody>\n${rows(differs, true)}\n</tbody>\n</table>` : ''}
${same.length > 0 ? `<details>\n<summary>The other ${same.length}, at their defaults</summary>\n<table class="params">\n<tbody>\n${rows(same, false)}\n</tbody>\n</table>\n</details>` : ''}
</section>`;
}

const LEGEND = `Each box is one step on the lifeline that took it: <span class="k delivery">a message handled</span>
<span class="k task">a task's own step</span> <span class="k atomic">an atomic operation on shared memory</span>
<span class="k timer">a timer</span>; the finding's step is red. An arrow runs from the step that sent a message
to the step that handled it; a dashed one starts under the sender's name when the sending step is not shown.
Lifelines under one heading are an actor and the kernel tasks it spawned. Hover a box or an arrow for its text.`;

interface DiagramSpec {
  readonly id: string;
  /** Lifeline names in the order wanted (regrouped so that an actor and its tasks sit together). */
  readonly lanes: readonly string[];
  /** Steps shown, ascending. */
  readonly steps: readonly number[];
  readonly focus: number;
  readonly marked: boolean;
}

interface Row {
  readonly r: TraceRecord | undefined;
  /** A row standing for steps left out: how many. */
  readonly skipped: number;
  /** How many of those were on the lifelines shown. */
  readonly here: number;
  readonly lines: readonly string[];
  readonly top: number;
  readonly h: number;
}

/** Where everything goes: the lifelines' columns, the heads' and the rows' heights (labels wrapped to fit). */
interface Layout {
  readonly order: readonly Omit<Lane, 'x'>[];
  readonly lanes: ReadonlyMap<string, Lane>;
  readonly col: number;
  readonly gutter: number;
  readonly boxW: number;
  readonly headTop: number;
  readonly headH: number;
  readonly heads: ReadonlyMap<string, readonly string[]>;
  /** Where the first row starts. */
  readonly top: number;
  readonly rows: readonly Row[];
  readonly width: number;
  readonly height: number;
}

function layout(trace: Trace, spec: DiagramSpec): Layout {
  const order = grouped(trace, spec.lanes);
  const gutter = gutterFor(spec.focus);
  // The lifelines share the width there is; past MIN_COL each the diagram scrolls in its own box.
  const col = Math.max(MIN_COL, Math.min(MAX_COL, Math.floor((FIT - gutter) / Math.max(1, order.length))));
  const boxW = col - PAD;
  const chars = Math.max(8, Math.floor((boxW - 8) / CHAR_W));
  const lanes = new Map<string, Lane>(order.map((l, i) => [l.name, { ...l, x: gutter + i * col + col / 2 }]));
  const headTop = 8 + (groupsOf(order).some((g) => g.heading) ? GROUP_H + 4 : 0);
  const heads = new Map(order.map((l) => [l.name, wrap(l.name, chars)]));
  const headH = 10 + LINE * (Math.max(1, ...[...heads.values()].map((h) => h.length)) + 1);
  const top = headTop + headH + 10;
  const rows: Row[] = [];
  let y = top;
  let prev: number | undefined;
  for (const step of spec.steps) {
    if (prev !== undefined && step > prev + 1) {
      let here = 0;
      for (let i = prev + 1; i < step; i++) if (lanes.has(laneName(trace, trace.record(i).actor))) here++;
      rows.push({ r: undefined, skipped: step - prev - 1, here, lines: [], top: y, h: GAP_ROW });
      y += GAP_ROW;
    }
    prev = step;
    const r = trace.record(step);
    if (!lanes.has(laneName(trace, r.actor))) continue;
    const ls = wrap(stepLabel(trace, r), chars);
    const h = Math.max(ROW, 8 + LINE * ls.length);
    rows.push({ r, skipped: 0, here: 0, lines: ls, top: y, h });
    y += h;
  }
  return { order, lanes, col, gutter, boxW, headTop, headH, heads, top, rows, width: gutter + order.length * col + 16, height: y + 16 };
}

/** The SVG and the plain-text listing of the given steps on the given lifelines. */
function diagram(trace: Trace, spec: DiagramSpec): { svg: string; text: string; rows: number; lanes: number; messages: number } {
  const L = layout(trace, spec);
  const stepRows = L.rows.filter((w) => w.r !== undefined);
  const shown = new Map(stepRows.map((w) => [(w.r as TraceRecord).step, w]));
  const arrows: string[] = [];
  for (const w of stepRows) {
    const r = w.r as TraceRecord;
    if (!isMessage(r)) continue;
    const from = L.lanes.get(laneName(trace, r.sendStep >= 0 ? r.sender : ENV));
    const to = L.lanes.get(laneName(trace, r.actor));
    if (from && to) arrows.push(arrowSvg(trace, r, { from, to, at: w, sent: shown.get(r.sendStep) }, L.boxW, L.top, spec.id));
  }
  const firstStep = spec.steps[0] ?? 0;
  const lastStep = spec.steps[spec.steps.length - 1] ?? 0;
  const out: string[] = [
    // No xmlns: inline SVG in HTML does not need one, and so the file holds no URL of any kind.
    `<svg id="${spec.id}" width="${L.width}" height="${L.height}" viewBox="0 0 ${L.width} ${L.height}" ` +
      `role="img" aria-label="sequence diagram of steps ${firstStep} to ${lastStep}" data-first="${firstStep}" data-last="${lastStep}" ` +
      `data-lifelines="${L.order.length}" data-messages="${arrows.length}">`,
    // One marker per arrow colour: context-stroke is not reliable across browsers.
    `<defs>${marker(`${spec.id}-head`, '#1f5fbf')}${marker(`${spec.id}-head-atomic`, '#8a8a8a')}</defs>`,
    // Row bands and step numbers first, so everything else draws over them.
    rowsSvg(L, spec),
    ...groupHeads(L.order, L.lanes, L.col),
  ];
  // The lifeline that took the finding's step is where the checker fired.
  const focusLane = spec.marked ? laneName(trace, trace.record(spec.focus).actor) : undefined;
  for (const lane of L.lanes.values()) out.push(laneSvg(trace, lane, lane.name === focusLane, L, spec));
  out.push(...arrows, '</svg>');
  const text = stepRows.map((w) => listingLine(trace, w.r as TraceRecord, spec.marked && w.r?.step === spec.focus));
  return { svg: out.join('\n'), text: text.join('\n'), rows: stepRows.length, lanes: L.order.length, messages: arrows.length };
}

function rowsSvg(L: Layout, spec: DiagramSpec): string {
  const out = ['<g class="rows">'];
  for (const w of L.rows) {
    if (!w.r) {
      const of = w.here === 0 ? 'on other lifelines' : w.here === w.skipped ? 'on these lifelines' : `${w.here} of them on these lifelines`;
      out.push(`<text class="gap" x="${L.gutter}" y="${w.top + w.h / 2 + 4}">⋯ ${w.skipped} step${w.skipped === 1 ? '' : 's'} not shown, ${of}</text>`);
      continue;
    }
    const isFocus = spec.marked && w.r.step === spec.focus;
    const cls = isFocus ? 'band focus' : w.r.step % 2 === 0 ? 'band even' : 'band';
    out.push(`<rect class="${cls}" x="0" y="${w.top}" width="${L.width}" height="${w.h}"/>`);
    out.push(`<text class="stepno${isFocus ? ' focus' : ''}" x="${L.gutter - 8}" y="${w.top + w.h / 2 + 4}">${isFocus ? '▶ ' : ''}${w.r.step}</text>`);
  }
  out.push('</g>');
  return out.join('\n');
}

/** A lifeline: its head (name wrapped, and whether it is an actor or a kernel task), its line, its steps' boxes. */
function laneSvg(trace: Trace, lane: Lane, focus: boolean, L: Layout, spec: DiagramSpec): string {
  const out = [
    `<g class="lifeline${focus ? ' focus' : ''}" data-name="${esc(lane.name)}" data-group="${esc(lane.group)}">`,
    `<title>${esc(`${lane.name} (${lane.kind}${lane.group !== lane.name ? ` of ${lane.group}` : ''})`)}</title>`,
    `<line class="life" x1="${lane.x}" y1="${L.headTop + L.headH}" x2="${lane.x}" y2="${L.height - 8}"/>`,
    `<rect class="head" x="${lane.x - L.boxW / 2}" y="${L.headTop}" width="${L.boxW}" height="${L.headH}" rx="3"/>`,
  ];
  const nameLines = [...(L.heads.get(lane.name) ?? []), lane.kind];
  out.push(textLines('name', lane.x, L.headTop + 5 + LINE - 3, nameLines, (i) => (i === nameLines.length - 1 ? 'kind' : undefined)));
  for (const w of L.rows) {
    const r = w.r;
    if (r === undefined || laneName(trace, r.actor) !== lane.name) continue;
    const isFocus = spec.marked && r.step === spec.focus;
    // The finding links to its step in the threads' diagram; the full diagram's gets an id of its own.
    const anchor = isFocus ? ` id="${spec.id === 'threads' ? 'finding-step' : `${spec.id}-finding-step`}"` : '';
    out.push(`<g class="step ${stepKind(r)}${isFocus ? ' focus' : ''}" data-step="${r.step}"${anchor}>`);
    out.push(`<title>${esc(`step ${r.step}: ${lane.name} ← ${trace.actorName(r.sender)}: ${stepLabel(trace, r)}`)}</title>`);
    out.push(`<rect x="${lane.x - L.boxW / 2}" y="${w.top + 3}" width="${L.boxW}" height="${w.h - 6}" rx="2"/>`);
    out.push(textLines(undefined, lane.x - L.boxW / 2 + 4, w.top + 3 + LINE - 2, w.lines));
    out.push('</g>');
  }
  out.push('</g>');
  return out.join('\n');
}

/** A step as `trace --format text` prints it, the finding's marked. */
function listingLine(trace: Trace, r: TraceRecord, finding: boolean): string {
  const from = r.sendStep >= 0 ? ` (sent at ${r.sendStep})` : '';
  const what = r.actor === MEM ? `${trace.eventName(r.event)} -> old ${r.outcome}` : trace.eventName(r.event);
  return `${String(r.step).padStart(7)}  ${trace.actorName(r.actor)} <- ${trace.actorName(r.sender)}: ${what}${from}${finding ? '   <-- finding' : ''}`;
}

function gutterFor(step: number): number {
  return Math.max(56, Math.ceil((String(step).length + 3) * CHAR_W) + 12);
}

/** A lifeline per name: an actor's, a task name's (a process's successive syscalls read as one thread), mem, env. */
function laneName(trace: Trace, id: number): string {
  return trace.actorName(id);
}

/** The lanes in the order wanted, but each actor's group together, the actor before its tasks. */
function grouped(trace: Trace, names: readonly string[]): Omit<Lane, 'x'>[] {
  const ids = new Map<string, number>();
  for (let i = 0; i < trace.actorNames.length; i++) ids.set(trace.actorNames[i] as string, i);
  for (const [id, name] of trace.taskNames) if (!ids.has(name)) ids.set(name, id);
  ids.set(trace.actorName(MEM), MEM);
  ids.set(trace.actorName(ENV), ENV);
  const lanes = names.map((name) => {
    const id = ids.get(name) ?? ENV;
    const kind: Lane['kind'] = id === MEM ? 'shared memory' : id < 0 ? 'the run' : isTaskId(id) ? 'kernel task' : 'actor';
    const group = id < 0 ? name : groupName(trace, ownerOf(trace, id));
    return { name, kind, group };
  });
  const order: string[] = [];
  for (const l of lanes) if (!order.includes(l.group)) order.push(l.group);
  return order.flatMap((g) => {
    const members = lanes.filter((l) => l.group === g);
    return [...members.filter((l) => l.kind === 'actor'), ...members.filter((l) => l.kind !== 'actor')];
  });
}

function groupsOf(lanes: readonly Omit<Lane, 'x'>[]): { name: string; lanes: string[]; heading: boolean }[] {
  const out: { name: string; lanes: string[]; heading: boolean }[] = [];
  for (const l of lanes) {
    const last = out[out.length - 1];
    if (last && last.name === l.group) last.lanes.push(l.name);
    else out.push({ name: l.group, lanes: [l.name], heading: false });
  }
  // A heading says something only when a lifeline under it is not the group's own actor.
  for (const g of out) g.heading = g.lanes.some((n) => n !== g.name);
  return out;
}

/** A band over each actor's lifelines and its tasks', naming the actor (or `kernel` for the run's own tasks). */
function groupHeads(order: readonly Omit<Lane, 'x'>[], lanes: ReadonlyMap<string, Lane>, col: number): string[] {
  const out: string[] = [];
  for (const g of groupsOf(order)) {
    if (!g.heading) continue;
    const xs = g.lanes.map((n) => lanes.get(n)?.x ?? 0);
    const x = Math.min(...xs) - col / 2 + 3;
    const w = Math.max(...xs) - Math.min(...xs) + col - 6;
    const text = g.name === 'kernel' ? 'kernel: tasks the run started' : `${g.name}: the actor and the tasks it spawned`;
    // The whole sentence when it fits, else the group's name, which is what the heading is for.
    const shown = text.length * CHAR_W <= w - 12 ? text : g.name;
    out.push(`<g class="group" data-group="${esc(g.name)}"><title>${esc(text)}</title>`);
    out.push(`<rect x="${x}" y="8" width="${w}" height="${GROUP_H}" rx="3"/>`);
    out.push(`<text x="${x + 6}" y="${8 + GROUP_H / 2 + 4}">${esc(clip(shown, Math.floor((w - 12) / CHAR_W)))}</text></g>`);
  }
  return out;
}

function textLines(cls: string | undefined, x: number, y: number, ls: readonly string[], clsOf?: (i: number) => string | undefined): string {
  const spans = ls
    .map((l, i) => {
      const c = clsOf?.(i);
      return `<tspan x="${x}" ${i === 0 ? `y="${y}"` : `dy="${LINE}"`}${c ? ` class="${c}"` : ''}>${esc(l)}</tspan>`;
    })
    .join('');
  return `<text${cls ? ` class="${cls}"` : ''}>${spans}</text>`;
}

/**
 * Lines of at most `n` characters, broken after a space, a comma, `->`, `(` or `/` where one falls late enough in
 * the line, and in the middle of a word only when no such place does. Nothing is cut.
 */
export function wrap(s: string, n: number): string[] {
  const out: string[] = [];
  let rest = s;
  while (rest.length > n) {
    let cut = -1;
    for (let i = n; i >= Math.floor(n / 2); i--) {
      const c = rest[i - 1] as string;
      if (c === ' ' || c === ',' || c === '(' || c === '/' || (c === '>' && rest[i - 2] === '-')) {
        cut = i;
        break;
      }
    }
    if (cut < 0) cut = n;
    out.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  out.push(rest);
  return out;
}

function stepLabel(trace: Trace, r: TraceRecord): string {
  const label = trace.eventName(r.event);
  return r.actor === MEM ? `${label} → ${r.outcome}` : label;
}

/**
 * From the side of the sending step's box that faces the receiver to the facing side of the handling step's box.
 * A message whose sending step is not shown starts on the sender's lifeline just under its name, so the arrow
 * still says who sent it; a message to oneself loops out to the right.
 */
function arrowSvg(
  trace: Trace,
  r: TraceRecord,
  ends: { readonly from: Lane; readonly to: Lane; readonly at: Row; readonly sent: Row | undefined },
  boxW: number,
  top: number,
  id: string,
): string {
  const { from, to, at, sent } = ends;
  const label = stepLabel(trace, r);
  const early = sent === undefined;
  const mid = (w: Row): number => w.top + w.h / 2;
  const y1 = early ? top - 4 : mid(sent);
  const y2 = mid(at);
  const half = boxW / 2;
  let d: string;
  if (from === to) {
    const x = from.x + half;
    d = `M${x},${y1} h14 V${y2} h-14`;
  } else {
    const dir = to.x > from.x ? 1 : -1;
    const x1 = early ? from.x : from.x + dir * half;
    const x2 = to.x - dir * half;
    d = `M${x1},${y1} L${x2},${y2}`;
  }
  const kind = r.actor === MEM || r.sender === MEM ? 'atomic' : early ? 'early' : 'plain';
  const when = r.sendStep >= 0 ? `sent at step ${r.sendStep}` : 'sent when the run started';
  const title = `${trace.actorName(r.sendStep >= 0 ? r.sender : ENV)} → ${to.name}: ${label} (${when}, handled at step ${r.step})`;
  return (
    `<g class="message ${kind}" data-send="${r.sendStep}" data-step="${r.step}"><title>${esc(title)}</title>` +
    `<path d="${d}" marker-end="url(#${id}-head${kind === 'atomic' ? '-atomic' : ''})"/></g>`
  );
}

/** A step that handled something another lifeline sent: a task's own steps and timers have no sender to draw. */
function isMessage(r: TraceRecord): boolean {
  return r.sender !== TASK && r.sender !== TIMER;
}

function stepKind(r: TraceRecord): StepKind {
  if (r.actor === MEM) return 'atomic';
  if (r.sender === TASK) return 'task';
  if (r.sender === TIMER) return 'timer';
  return 'delivery';
}

function marker(id: string, colour: string): string {
  return (
    `<marker id="${id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">` +
    `<path d="M0,0 L10,5 L0,10 z" fill="${colour}"/></marker>`
  );
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, Math.max(1, n - 1))}…`;
}

function wireText(v: Wire): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Text for HTML content and double- or single-quoted attributes. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 1em 1.5em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.25em; margin: 0 0 .3em; }
h2 { font-size: 1.05em; margin: .9em 0 .3em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1em; margin: 1.2em 0 .4em; }
pre, code { font: 12px/1.4 ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', monospace; }
pre { background: #f6f6f4; border: 1px solid #e2e2dc; padding: .5em .8em; overflow-x: auto; margin: .3em 0; }
pre.finding { background: #fff4f2; border-color: #e9b8ae; white-space: pre-wrap; max-height: 36vh; overflow-y: auto; }
p.meta { color: #555; font-size: .9em; margin: .2em 0 .4em; }
ul.why { margin: .2em 0; padding-left: 1.4em; } ul.why .lane { font-weight: bold; }
a { color: #1f5fbf; }
table.params { border-collapse: collapse; max-width: 100%; }
table.params th, table.params td { text-align: left; vertical-align: top; padding: 2px 14px 2px 0; font: 12px/1.4 ui-monospace, monospace; border-bottom: 1px solid #eee; overflow-wrap: anywhere; }
table.params th { font-weight: normal; color: #555; white-space: nowrap; }
table.params td.def { color: #888; }
details > summary { cursor: pointer; margin: .3em 0; }
.scroll { overflow: auto; max-width: 100%; border: 1px solid #e2e2dc; }
.summary { color: #444; font-size: .9em; margin: .3em 0; }
.k { padding: 0 .4em; border: 1px solid #999; border-radius: 2px; white-space: nowrap; }
.k.delivery { background: #dce8fa; } .k.task { background: #fbf3d2; } .k.atomic { background: #e8e8e8; } .k.timer { background: #ece0f6; }
svg { display: block; font: 11px ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', monospace; }
svg .band { fill: transparent; } svg .band.even { fill: #fafafa; } svg .band.focus { fill: #fde3de; }
svg .stepno { text-anchor: end; fill: #888; } svg .stepno.focus { fill: #c0261a; font-weight: bold; }
svg .gap { fill: #999; font-style: italic; }
svg .group rect { fill: #eef1f5; stroke: #b7c2d0; } svg .group text { fill: #35506e; font-weight: bold; }
svg .life { stroke: #aaa; stroke-dasharray: 4 3; }
svg .lifeline > rect.head { fill: #35506e; }
svg .lifeline.focus > rect.head { fill: #a3271b; }
svg .lifeline > text.name { fill: #fff; text-anchor: middle; font-weight: bold; }
svg .lifeline > text.name tspan { text-anchor: middle; } svg .lifeline > text.name .kind { font-weight: normal; fill: #d6dde6; }
svg .step rect { stroke: #7a8da5; stroke-width: .8; }
svg .step text { fill: #1b1b1b; }
svg .step.delivery rect { fill: #dce8fa; } svg .step.task rect { fill: #fbf3d2; stroke: #b9a76a; }
svg .step.atomic rect { fill: #e8e8e8; stroke: #999; } svg .step.timer rect { fill: #ece0f6; stroke: #9a7ab8; }
svg .step.focus rect { stroke: #c0261a; stroke-width: 2.2; }
svg .message path { fill: none; stroke: #1f5fbf; stroke-width: 1.3; }
svg .message.atomic path { stroke: #8a8a8a; stroke-width: 1; }
svg .message.early path { stroke-dasharray: 5 3; }
svg .message:hover path { stroke-width: 2.6; }
`;
