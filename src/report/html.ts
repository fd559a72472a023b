// The race report: one self-contained HTML file a kernel developer can attach to a mail or a bug. It carries the
// checkers' reports in their own wording, the workload's parameters (the policies the race depends on), the
// command that replays the run, and a sequence diagram of the steps that led to the first finding.
//
// Self-contained means the file works opened from disk years later, offline, anywhere: inline CSS and SVG only,
// no script at all, and a Content-Security-Policy that forbids fetching anything, so a report cannot leak that
// it was opened and text that reached it from a trace (event names, task names, parameters) cannot run.
import { ENV, type Finding, MEM, TASK, TIMER, type Wire } from '../runtime/model.js';
import type { Trace, TraceRecord } from '../runtime/trace.js';

export interface RaceReportInput {
  readonly title: string;
  readonly findings: readonly Finding[];
  readonly params: Readonly<Record<string, Wire>>;
  readonly trace: Trace;
  readonly replayCommand: string;
  readonly traceHash: string;
  /** Steps shown before the first finding's step (default 60). */
  readonly window?: number;
}

export const DEFAULT_WINDOW = 60;

// Geometry, in SVG user units. Monospace text keeps label widths predictable without measuring fonts, which a
// file with no script cannot do.
const COL = 200;
const BOX_W = 176;
const BOX_H = 16;
const ROW = 22;
const HEAD_H = 26;
const GUTTER = 56;
const TOP = 12 + HEAD_H + 14;
const CHAR_W = 6.7;
const BOX_CHARS = Math.floor((BOX_W - 8) / CHAR_W);

// Not 'message': that class names the arrows, which tests and stylesheets select as g.message.
type StepKind = 'delivery' | 'task' | 'atomic' | 'timer';

interface Lane {
  readonly name: string;
  readonly x: number;
  readonly steps: { readonly r: TraceRecord; readonly kind: StepKind; readonly label: string }[];
}

interface Arrow {
  readonly r: TraceRecord;
  readonly from: Lane;
  readonly to: Lane;
  readonly label: string;
}

/** The whole report as one HTML document. */
export function raceReportHtml(input: RaceReportInput): string {
  const { trace, findings } = input;
  const first = findings[0];
  const win = Math.max(0, Math.floor(input.window ?? DEFAULT_WINDOW));
  // A finding at -1 was made when the run ended (a leak, a hung task): the last steps are what led there.
  const focus = first && first.step >= 0 && first.step < trace.length ? first.step : trace.length - 1;
  const lo = Math.max(0, focus - win);
  // Only a finding made at a step marks that step; one made at the end of the run has no step to mark.
  const marked = first !== undefined && first.step === focus;
  const d = diagram(trace, lo, focus, marked);

  const where =
    first === undefined
      ? `No checker reported anything; these are the last ${d.rows} steps of the run.`
      : first.step >= 0 && first.step < trace.length
        ? `Steps ${lo}–${focus} of ${trace.length}: the ${d.rows} steps up to the first finding, at step ${focus}${first.where ? ` in ${first.where}` : ''}.`
        : `The first finding was made at the end of the run; these are its last ${d.rows} steps (${lo}–${focus} of ${trace.length}).`;

  const findingsHtml =
    findings.length === 0
      ? '<p>None.</p>'
      : findings
          .map(
            (f) =>
              `<pre class="finding" data-kind="${esc(f.kind)}" data-step="${f.step}">${esc(f.text)}</pre>\n` +
              `<p class="meta">${esc(f.kind)}, ${f.step >= 0 ? `step ${f.step}` : 'at the end of the run'}${f.where ? `, in ${esc(f.where)}` : ''}</p>`,
          )
          .join('\n');

  const paramRows = Object.entries(input.params)
    .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(wireText(v))}</td></tr>`)
    .join('\n');

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
<section id="findings">
<h2>Finding${findings.length === 1 ? '' : 's'}</h2>
${findingsHtml}
</section>
<section id="replay">
<h2>Replay</h2>
<pre class="command">${esc(input.replayCommand)}</pre>
<p>Trace hash <code>${esc(input.traceHash)}</code>: a replay that prints the same hash ran exactly this interleaving.</p>
</section>
<section id="params">
<h2>Parameters</h2>
<table class="params">
<tbody>
${paramRows}
</tbody>
</table>
</section>
<section id="diagram">
<h2>Sequence diagram</h2>
<p class="summary">${esc(where)} ${d.lanes} lifelines, ${d.messages} messages.</p>
<p class="legend">Each box is one step on the lifeline that took it: <span class="k delivery">a message handled</span>
<span class="k task">a task's own step</span> <span class="k atomic">an atomic operation on shared memory</span>
<span class="k timer">a timer</span>. An arrow runs from the step that sent a message to the step that handled it;
one that starts under a lifeline's name was sent before the window. Hover a box or an arrow for its full text.</p>
<div class="scroll">
${d.svg}
</div>
<h3>The same steps as text</h3>
<pre class="steps">${esc(d.text)}</pre>
</section>
</body>
</html>
`;
}

/** The SVG and the plain-text listing of steps lo..hi. */
function diagram(
  trace: Trace,
  lo: number,
  hi: number,
  marked: boolean,
): { svg: string; text: string; rows: number; lanes: number; messages: number } {
  const records: TraceRecord[] = [];
  for (let i = lo; i <= hi; i++) records.push(trace.record(i));

  // Lanes are keyed by name, not id: a process's successive syscalls are separate tasks under one name, and
  // they read as one thread of control, which is what a lifeline is.
  const order: string[] = [];
  const seen = new Set<string>();
  let memSeen = false;
  const note = (id: number): void => {
    if (id === MEM) {
      memSeen = true;
      return;
    }
    const name = trace.actorName(id);
    if (!seen.has(name)) {
      seen.add(name);
      order.push(name);
    }
  };
  for (const r of records) {
    if (isMessage(r)) note(r.sendStep >= 0 ? r.sender : ENV);
    note(r.actor);
  }
  // Shared memory goes last so that the many short atomic round trips do not cross the interesting arrows.
  if (memSeen) order.push(trace.actorName(MEM));
  const lanes = new Map<string, Lane>();
  order.forEach((name, i) => {
    lanes.set(name, { name, x: GUTTER + i * COL + COL / 2, steps: [] });
  });
  const laneOf = (id: number): Lane => lanes.get(trace.actorName(id)) as Lane;

  const arrows: Arrow[] = [];
  const lines: string[] = [];
  for (const r of records) {
    const label = trace.eventName(r.event);
    laneOf(r.actor).steps.push({ r, kind: stepKind(r), label: r.actor === MEM ? `${label} → ${r.outcome}` : label });
    if (isMessage(r)) arrows.push({ r, from: laneOf(r.sendStep >= 0 ? r.sender : ENV), to: laneOf(r.actor), label });
    const what = r.actor === MEM ? `${label} -> old ${r.outcome}` : label;
    const from = r.sendStep >= 0 ? ` (sent at ${r.sendStep})` : '';
    const mark = marked && r.step === hi ? '   <-- finding' : '';
    lines.push(`${String(r.step).padStart(7)}  ${trace.actorName(r.actor)} <- ${trace.actorName(r.sender)}: ${what}${from}${mark}`);
  }

  const rows = records.length;
  const width = GUTTER + order.length * COL + 16;
  const height = TOP + rows * ROW + 16;
  const y = (step: number): number => TOP + (step - lo) * ROW + ROW / 2;

  const out: string[] = [];
  out.push(
    // No xmlns: inline SVG in HTML does not need one, and so the file holds no URL of any kind.
    `<svg id="sequence" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `role="img" aria-label="sequence diagram of steps ${lo} to ${hi}" data-first="${lo}" data-last="${hi}" ` +
      `data-lifelines="${order.length}" data-messages="${arrows.length}">`,
  );
  out.push(
    // One marker per arrow colour: context-stroke is not reliable across browsers.
    `<defs>${marker('head', '#1f5fbf')}${marker('head-atomic', '#8a8a8a')}</defs>`,
  );

  // Row bands and step numbers first, so everything else draws over them.
  out.push('<g class="rows">');
  for (const r of records) {
    const top = y(r.step) - ROW / 2;
    const cls = marked && r.step === hi ? 'band focus' : r.step % 2 === 0 ? 'band even' : 'band';
    out.push(`<rect class="${cls}" x="0" y="${top}" width="${width}" height="${ROW}"/>`);
    out.push(`<text class="stepno" x="${GUTTER - 8}" y="${y(r.step) + 4}">${r.step}</text>`);
  }
  out.push('</g>');

  // The lifeline that took the finding's step is where the checker fired (the finding's `where` names the task
  // in the kernel's comm/pid form, which is not the lane's name).
  const focusLane = marked && records.length > 0 ? trace.actorName((records[records.length - 1] as TraceRecord).actor) : undefined;
  for (const lane of lanes.values()) {
    const focus = lane.name === focusLane ? ' focus' : '';
    out.push(`<g class="lifeline${focus}" data-name="${esc(lane.name)}">`);
    out.push(`<title>${esc(lane.name)}</title>`);
    out.push(`<line class="life" x1="${lane.x}" y1="${12 + HEAD_H}" x2="${lane.x}" y2="${height - 8}"/>`);
    out.push(`<rect class="head" x="${lane.x - BOX_W / 2}" y="12" width="${BOX_W}" height="${HEAD_H}" rx="3"/>`);
    out.push(`<text class="name" x="${lane.x}" y="${12 + HEAD_H / 2 + 4}">${esc(clip(lane.name, BOX_CHARS))}</text>`);
    for (const s of lane.steps) {
      const isFocus = marked && s.r.step === hi;
      out.push(`<g class="step ${s.kind}${isFocus ? ' focus' : ''}" data-step="${s.r.step}">`);
      out.push(`<title>${esc(`step ${s.r.step}: ${lane.name} ← ${trace.actorName(s.r.sender)}: ${s.label}`)}</title>`);
      out.push(`<rect x="${lane.x - BOX_W / 2}" y="${y(s.r.step) - BOX_H / 2}" width="${BOX_W}" height="${BOX_H}" rx="2"/>`);
      out.push(`<text x="${lane.x - BOX_W / 2 + 4}" y="${y(s.r.step) + 4}">${esc(clip(s.label, BOX_CHARS))}</text>`);
      out.push('</g>');
    }
    out.push('</g>');
  }

  for (const a of arrows) out.push(arrowSvg(a, y, lo, trace));
  out.push('</svg>');
  return { svg: out.join('\n'), text: lines.join('\n'), rows, lanes: order.length, messages: arrows.length };
}

/**
 * From the side of the sending step's box that faces the receiver to the facing side of the handling step's box.
 * A message sent before the window starts on the sender's lifeline just under its name, so the arrow still
 * says who sent it; a message to oneself loops out to the right.
 */
function arrowSvg(a: Arrow, y: (step: number) => number, lo: number, trace: Trace): string {
  const { r, from, to } = a;
  const before = r.sendStep < lo;
  const y1 = before ? TOP - 4 : y(r.sendStep);
  const y2 = y(r.step);
  const half = BOX_W / 2;
  let d: string;
  if (from === to) {
    const x = from.x + half;
    d = `M${x},${y1} h14 V${y2} h-14`;
  } else {
    const dir = to.x > from.x ? 1 : -1;
    const x1 = before ? from.x : from.x + dir * half;
    const x2 = to.x - dir * half;
    d = `M${x1},${y1} L${x2},${y2}`;
  }
  const kind = r.actor === MEM || r.sender === MEM ? 'atomic' : before ? 'early' : 'plain';
  const sent = r.sendStep >= 0 ? `sent at step ${r.sendStep}` : 'sent when the run started';
  const title = `${trace.actorName(r.sendStep >= 0 ? r.sender : ENV)} → ${to.name}: ${a.label} (${sent}, handled at step ${r.step})`;
  return (
    `<g class="message ${kind}" data-send="${r.sendStep}" data-step="${r.step}"><title>${esc(title)}</title>` +
    `<path d="${d}" marker-end="url(#${kind === 'atomic' ? 'head-atomic' : 'head'})"/></g>`
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
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function wireText(v: Wire): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Text for HTML content and double- or single-quoted attributes. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.35em; margin: 0 0 .6em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1em; margin: 1.2em 0 .4em; }
pre, code { font: 12px/1.4 ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', monospace; }
pre { background: #f6f6f4; border: 1px solid #e2e2dc; padding: .6em .8em; overflow-x: auto; margin: .3em 0; }
pre.finding { background: #fff4f2; border-color: #e9b8ae; white-space: pre-wrap; }
p.meta { color: #666; font-size: .9em; margin: 0 0 .8em; }
table.params { border-collapse: collapse; }
table.params th, table.params td { text-align: left; padding: 2px 14px 2px 0; font: 12px/1.4 ui-monospace, monospace; border-bottom: 1px solid #eee; }
table.params th { font-weight: normal; color: #555; }
.scroll { overflow: auto; max-width: 100%; border: 1px solid #e2e2dc; }
.legend { color: #444; font-size: .9em; }
.k { padding: 0 .4em; border: 1px solid #999; border-radius: 2px; white-space: nowrap; }
.k.delivery { background: #dce8fa; } .k.task { background: #fbf3d2; } .k.atomic { background: #e8e8e8; } .k.timer { background: #ece0f6; }
#sequence { display: block; font: 11px ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', monospace; }
#sequence .band { fill: transparent; } #sequence .band.even { fill: #fafafa; } #sequence .band.focus { fill: #fde3de; }
#sequence .stepno { text-anchor: end; fill: #888; }
#sequence .life { stroke: #aaa; stroke-dasharray: 4 3; }
#sequence .lifeline > rect.head { fill: #35506e; }
#sequence .lifeline.focus > rect.head { fill: #a3271b; }
#sequence .lifeline > text.name { fill: #fff; text-anchor: middle; font-weight: bold; }
#sequence .step rect { stroke: #7a8da5; stroke-width: .8; }
#sequence .step text { fill: #1b1b1b; }
#sequence .step.delivery rect { fill: #dce8fa; } #sequence .step.task rect { fill: #fbf3d2; stroke: #b9a76a; }
#sequence .step.atomic rect { fill: #e8e8e8; stroke: #999; } #sequence .step.timer rect { fill: #ece0f6; stroke: #9a7ab8; }
#sequence .step.focus rect { stroke: #c0261a; stroke-width: 2.2; }
#sequence .message path { fill: none; stroke: #1f5fbf; stroke-width: 1.3; }
#sequence .message.atomic path { stroke: #8a8a8a; stroke-width: 1; }
#sequence .message.early path { stroke-dasharray: 5 3; }
#sequence .message:hover path { stroke-width: 2.6; }
`;
