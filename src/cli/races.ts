// `iommu-sim races` (npm start): every race script in races/ with the policy that shows its bug and the one
// that fixes it, and the fault-injection scenarios in scenarios/ as written, each over its whole exploration
// budget (explore.runs schedules from explore.seed), judged by expect.ts. A buggy variant whose every schedule
// shows the expected finding is a deterministic hazard (no interleaving needed: every schedule shows it); one that
// shows it on some schedules only is a race, with the fraction of schedules that show it.
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import Table from 'cli-table3';
import { PACKAGE_ROOT } from '../runtime/paths.js';
import { Coverage, statesByKind } from '../scenario/coverage.js';
import { expectationFor } from '../scenario/expect.js';
import { runJudged } from '../scenario/judged.js';
import { scenarioParams } from '../scenario/load.js';
import type { Scenario } from '../scenario/scenario.js';

export type HazardClass = 'race' | 'deterministic hazard';

export interface RaceRow {
  readonly script: string;
  readonly seed: string | null;
  readonly variant: 'bug' | 'fix' | 'as written';
  /** The variant's policies (and patch), as `key=value` words. */
  readonly policy: string;
  readonly expects: readonly string[];
  /** The kinds forbidden: a list, or every kind not expected (the default). */
  readonly forbid: readonly string[] | 'every kind not expected';
  /** Schedules run (the script's explore.runs, fewer when dfs exhausted its space). */
  readonly schedules: number;
  /** Schedules showing an expected finding, failing the verdict, and with any finding (by kind of the first). */
  readonly showing: number;
  readonly failing: number;
  readonly withFinding: number;
  readonly byKind: Readonly<Record<string, number>>;
  /** showing / schedules, when the variant expects a finding. */
  readonly fraction: number | null;
  readonly class: HazardClass | null;
  /** The title of the first decisive schedule's first finding, and its kind. */
  readonly finding: string | null;
  readonly findingKind: string | null;
  readonly firstSeed: number | null;
  readonly ok: boolean;
  readonly verdict: readonly string[];
  /** The lifecycle states each kind of actor went through over the variant's schedules (coverage.ts). */
  readonly states: Readonly<Record<string, readonly string[]>>;
}

/** race or deterministic hazard, from a variant that expects findings: every schedule showing one is a hazard. */
export function hazardClass(showing: number, schedules: number): HazardClass | null {
  if (schedules === 0 || showing === 0) return null;
  return showing === schedules ? 'deterministic hazard' : 'race';
}

export function policyWords(s: Scenario, fixed: boolean): string {
  // The patches under review are the variant's policy too: name their modules.
  const named = (files: readonly string[] | undefined) => (files ? { patches: files.map((f) => basename(f)).join(',') || 'none' } : {});
  const { patches: fixPatches, extension: _older, ...fix } = s.fix ?? {};
  const p = fixed ? { ...s.policies, ...named(s.patches), ...fix, ...named(fixPatches) } : { ...s.policies, ...named(s.patches) };
  return Object.entries(p)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

export function raceFiles(): string[] {
  return ['races', 'scenarios'].flatMap((d) =>
    readdirSync(join(PACKAGE_ROOT, d))
      .filter((f) => /\.(ya?ml|json|ts)$/.test(f))
      .sort()
      .map((f) => `${d}/${f}`),
  );
}

/** One variant of one script over its budget. */
export async function raceRow(file: string, s: Scenario, fixed: boolean, signal?: AbortSignal): Promise<RaceRow> {
  const e = expectationFor(s, fixed);
  const coverage = new Coverage();
  const j = await runJudged(e, {
    workload: { name: s.model, params: scenarioParams(s, fixed) },
    runtime: 'deterministic',
    strategy: s.explore.strategy,
    depth: s.explore.depth,
    seed: s.explore.seed,
    runs: s.explore.runs,
    allRuns: true,
    onExecution: (r, w) => coverage.add(r, w),
    ...(signal ? { signal } : {}),
  });
  const t = j.tally;
  const withFinding = Object.values(t.byKind).reduce((a, b) => a + b, 0);
  const expects = e.findings.length > 0;
  return {
    script: file,
    seed: s.seed ?? null,
    variant: fixed ? 'fix' : s.fix ? 'bug' : 'as written',
    policy: policyWords(s, fixed),
    expects: [...e.findings],
    forbid: e.forbid === 'any' ? 'every kind not expected' : [...e.forbid],
    schedules: t.schedules,
    showing: t.shows,
    failing: t.fails,
    withFinding,
    byKind: t.byKind,
    fraction: expects && t.schedules > 0 ? t.shows / t.schedules : null,
    class: expects ? hazardClass(t.shows, t.schedules) : null,
    finding: j.outcome.findings[0]?.title ?? null,
    findingKind: j.outcome.findings[0]?.kind ?? null,
    firstSeed: t.decisive?.seed ?? null,
    ok: j.verdict.ok,
    verdict: j.verdict.lines,
    states: statesByKind(coverage.summary().triples),
  };
}

/** The states each kind of actor went through over every row: `npm start`'s coverage line. */
export function statesLine(rows: readonly RaceRow[]): string {
  const all = new Map<string, Set<string>>();
  for (const r of rows) for (const [kind, states] of Object.entries(r.states)) for (const st of states) (all.get(kind) ?? all.set(kind, new Set()).get(kind))?.add(st);
  return [...all]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, st]) => `${kind} ${st.size} (${[...st].sort().join(', ')})`)
    .join('; ');
}

/** The terminal table's columns and their widths: with two spaces between them, 120 columns in all. */
const COLUMNS = [
  ['race', 40],
  ['seed', 4],
  ['variant', 7],
  ['finding', 40],
  ['schedules', 11],
  ['verdict', 8],
] as const;

/** What each variant showed, as an aligned table that fits 120 columns (long cells wrap; `--json` has them whole). */
export function racesTable(rows: readonly RaceRow[]): string {
  const table = new Table({
    head: COLUMNS.map(([h]) => h),
    colWidths: COLUMNS.map(([, w]) => w),
    wordWrap: true,
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) table.push(tableRow(r));
  return table
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/**
 * `text` broken into lines of at most `width` after a hyphen or a slash where a word is longer than the line (the
 * table wraps at spaces and would cut such a word), hard-broken where no such place is left.
 */
function breakLongWords(text: string, width: number): string {
  return text
    .split(' ')
    .map((word) => {
      const lines: string[] = [];
      let rest = word;
      while (rest.length > width) {
        const at = Math.max(rest.lastIndexOf('-', width - 1), rest.lastIndexOf('/', width - 1));
        const cut = at > 0 ? at + 1 : width;
        lines.push(rest.slice(0, cut));
        rest = rest.slice(cut);
      }
      return [...lines, rest].join('\n');
    })
    .join(' ');
}

/** One row's cells: the race's name, its seed, the variant, the first finding (kind: title), how many schedules showed it, the verdict. */
export function tableRow(r: RaceRow): string[] {
  const name = r.script.replace(/^races\//, '').replace(/\.(ya?ml|json|ts)$/, '');
  const finding = r.finding === null ? 'none' : `${r.findingKind ?? '?'}: ${r.finding}`;
  // A variant that expects a finding counts the schedules showing it; one that expects none, those with any.
  const n = r.expects.length > 0 ? r.showing : r.withFinding;
  const variant = r.variant === 'as written' ? 'as-is' : r.variant;
  const cls = r.class === 'deterministic hazard' ? ' all' : '';
  const width = (c: (typeof COLUMNS)[number][0]): number => COLUMNS.find(([h]) => h === c)?.[1] ?? 0;
  return [breakLongWords(name, width('race')), r.seed ?? '', variant, breakLongWords(finding, width('finding')), `${n}/${r.schedules}${cls}`, r.ok ? 'ok' : 'FAILED'];
}
