// `iommu-sim races` (npm start): every race script in races/ with the policy that shows its bug and the one
// that fixes it, and the fault-injection scenarios in scenarios/ as written, each over its whole exploration
// budget (explore.runs schedules from explore.seed), judged by expect.ts. A buggy variant whose every schedule
// shows the expected finding is a deterministic hazard (no interleaving needed: every schedule shows it); one that
// shows it on some schedules only is a race, with the fraction of schedules that show it.
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import Table from 'cli-table3';
import { z } from 'zod';
import { PACKAGE_ROOT } from '../runtime/paths.js';
import { Coverage, statesByKind } from '../scenario/coverage.js';
import { expectationFor, Tallier } from '../scenario/expect.js';
import { observed, runJudged } from '../scenario/judged.js';
import { loadScenarioFile, scenarioParams } from '../scenario/load.js';
import type { Scenario } from '../scenario/scenario.js';
import { run } from '../runtime/run.js';
import { Exit } from './exit.js';
import { counted, interrupts } from './interrupt.js';
import { host, wrapStatus } from './status.js';

const count = z.number().int().nonnegative();
// A model parameter: what `--set` and a scenario give (numbers and booleans typed, lists as their strings).
const wire = z.json();

/** One variant of one script over its budget: a row of the table, an element of `races --json`'s `races`. */
export const raceRowSchema = z.strictObject({
  /** The file, relative to the package (`races/….yaml`, `scenarios/….yaml`) or as given on the command line. */
  script: z.string(),
  /** The mailing-list thread it comes from (`000` … `004`), a label and not a number. */
  seed: z.string().regex(/^\d{3}$/).nullable(),
  variant: z.enum(['bug', 'fix', 'as written']),
  /** The variant's policies (and patches), as `key=value` words. */
  policy: z.string(),
  /** The variant's model parameters, typed, as the run took them (the fix applied for `fix`). */
  parameters: z.record(z.string(), wire),
  expects: z.array(z.string()),
  /** The kinds forbidden: a list, or every kind not expected (the default). */
  forbid: z.union([z.array(z.string()), z.literal('every kind not expected')]),
  /** Schedules run (the script's explore.runs, fewer when dfs exhausted its space). */
  schedules: count,
  /** Schedules showing an expected finding, failing the verdict, and with any finding (by kind of the first). */
  showing: count,
  failing: count,
  withFinding: count,
  byKind: z.record(z.string(), count),
  /** showing / schedules, when the variant expects a finding. */
  fraction: z.number().min(0).max(1).nullable(),
  class: z.enum(['race', 'deterministic hazard']).nullable(),
  /** The reported schedule's first finding: its kind, its title (the grep-able first line) and its whole report. */
  finding: z.string().nullable(),
  findingKind: z.string().nullable(),
  findingText: z.string().nullable(),
  /** The seed of the first schedule that decided the verdict. */
  firstSeed: z.number().int().nullable(),
  ok: z.boolean(),
  verdict: z.array(z.string()),
  /** The lifecycle states each kind of actor went through over the variant's schedules (coverage.ts). */
  states: z.record(z.string(), z.array(z.string())),
  /** Host time the variant took, in milliseconds. */
  elapsedMs: count,
});
export type RaceRow = z.infer<typeof raceRowSchema>;
export type HazardClass = NonNullable<RaceRow['class']>;

/** `races`' short threaded stress run of a mixed topology. */
export const racesStressSchema = z.strictObject({ ok: z.boolean(), runs: count, dmas: count, failing: count, verdict: z.array(z.string()) });
export type RacesStress = z.infer<typeof racesStressSchema>;

/** What ran it: the `host` field of every command's `--json` (src/cli/status.ts). */
export const hostSchema = z.strictObject({ iommuSim: z.string(), node: z.string(), platform: z.string(), arch: z.string(), execPath: z.string() });

/** `iommu-sim races --json`: one object on one line. */
export const racesJsonSchema = z.strictObject({
  host: hostSchema,
  ok: z.boolean(),
  /** The signal that stopped it (SIGINT, SIGTERM), or null: the rows are those that finished. */
  interrupted: z.string().nullable(),
  races: z.array(raceRowSchema),
  /** null: `--stress 0`, or interrupted before it. */
  stress: racesStressSchema.nullable(),
});
export type RacesJson = z.infer<typeof racesJsonSchema>;

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

/**
 * `run`'s header: the variant's policies (its patches among them) and its `faults:` section, the fix applied to
 * each (a fix may set a fault's key, as `bug: none` does).
 */
export function variantWords(s: Scenario, fixed: boolean): { policies: string[]; faults: string[] } {
  const fix: Readonly<Record<string, unknown>> = fixed ? (s.fix ?? {}) : {};
  const faults = Object.entries(s.faults).map(([k, v]) => `${k}=${String(Object.hasOwn(fix, k) ? fix[k] : v)}`);
  const policies = policyWords(s, fixed)
    .split(' ')
    .filter((w) => w !== '' && !Object.hasOwn(s.faults, w.slice(0, w.indexOf('='))));
  return { policies, faults };
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
  const parameters = scenarioParams(s, fixed);
  const started = performance.now();
  const j = await runJudged(e, {
    workload: { name: s.model, params: parameters },
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
    parameters,
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
    findingText: j.outcome.findings[0]?.text ?? null,
    firstSeed: t.decisive?.seed ?? null,
    ok: j.verdict.ok,
    verdict: [...j.verdict.lines],
    states: Object.fromEntries(Object.entries(statesByKind(coverage.summary().triples)).map(([k, v]) => [k, [...v]])),
    elapsedMs: Math.round(performance.now() - started),
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
  return [racesTableHead(), ...rows.map(racesTableRow)].join('\n');
}

/** The table's head line: `races` prints it first, then each row as its variant finishes (racesTableRow). */
export function racesTableHead(): string {
  return render(COLUMNS.map(([h]) => h));
}

/** One row of the table, its long cells wrapped over several lines; aligned with the head by the fixed widths. */
export function racesTableRow(r: RaceRow): string {
  return render(tableRow(r));
}

function render(cells: string[]): string {
  const table = new Table({
    colWidths: COLUMNS.map(([, w]) => w),
    wordWrap: true,
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  table.push(cells);
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

export interface RacesFlags {
  /** Milliseconds of threaded stress after the races (0: none). */
  readonly stress: number;
  readonly json?: boolean;
}

/**
 * `iommu-sim races [files...]` (npm start): the table's head, then a row per variant as it finishes (so that the
 * table is the progress, and nothing above it repeats it), the stress run, the verdict. On a terminal, stderr
 * shows the variant running, erased when its row is printed.
 */
export async function racesCommand(files: readonly string[], flags: RacesFlags): Promise<void> {
  const named = files.length > 0 ? files.map((f) => ({ name: f, path: f })) : raceFiles().map((f) => ({ name: f, path: join(PACKAGE_ROOT, f) }));
  // Every file is read before the first runs: a bad one is exit 2 at once, not after minutes of races.
  const scripts: { name: string; s: Scenario }[] = [];
  for (const { name, path } of named) scripts.push({ name, s: await loadScenarioFile(path) });
  const variants = scripts.reduce((n, { s }) => n + (s.fix ? 2 : 1), 0);
  const show = flags.json ? undefined : rowPrinter();
  if (show) {
    const stress = flags.stress > 0 ? `, then ${flags.stress / 1000} s of threaded stress` : '';
    console.log(`races: ${counted(scripts.length, 'file')}, ${counted(variants, 'variant')}${stress}`);
    console.log(racesTableHead());
  }
  const rows: RaceRow[] = [];
  const stop = interrupts();
  for (const { name, s } of scripts) {
    for (const fixed of s.fix ? [false, true] : [false]) {
      if (stop.signal.aborted) break;
      show?.running(`[${rows.length + 1}/${variants}] ${name} (${fixed ? 'fix' : s.fix ? 'bug' : 'as written'})`);
      const row = await raceRow(name, s, fixed, stop.signal);
      if (stop.signal.aborted) break;
      rows.push(row);
      show?.row(row);
    }
  }
  show?.running(flags.stress > 0 && !stop.signal.aborted ? 'the stress run' : '');
  let ok = rows.every((r) => r.ok);
  const stress = flags.stress > 0 && !stop.signal.aborted ? await racesStress(flags.stress, stop.signal) : null;
  show?.running('');
  if (stress) ok &&= stress.ok;
  if (flags.json) {
    const out: RacesJson = { host: host(), ok, interrupted: stop.received ?? null, races: rows, stress };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } else {
    for (const l of summaryLines(rows, stress)) console.log(l);
    console.log(ok ? (stop.received ? 'INTERRUPTED' : 'SUCCESS') : 'FAILURE');
  }
  stop.dispose();
  stop.exitIfStopped('races', `the table above has the ${counted(rows.length, 'run')} that finished`);
  if (!ok) throw new Exit(1);
}

/** What follows the table: the legend of its schedules column, the states covered, the stress run's line. */
function summaryLines(rows: readonly RaceRow[], stress: RacesStress | null): string[] {
  const legend = 'those showing the expected finding (a variant expecting none: those with any) of those run; `all`: a deterministic hazard, shown on every schedule — a race shows on some';
  const lines = [...wrapStatus('races', 'schedules:', legend.split(' ')), ...wrapStatus('races', 'states covered:', statesLine(rows).split(' '))];
  if (stress) {
    const failing = `${stress.failing} failing${stress.verdict.length > 0 ? `: ${stress.verdict.join('; ')}` : ''}`;
    lines.push(...wrapStatus('stress', `${counted(stress.runs, 'threaded run')} of a mixed topology (vtd, amd, smmuv3), ${stress.dmas} DMAs,`, failing.split(' ')));
  }
  return lines;
}

/** The rows on stdout as they come; on a terminal, what runs now on stderr, erased before the next row. */
function rowPrinter(): { running(what: string): void; row(r: RaceRow): void } {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  const erase = (): void => {
    if (shown) process.stderr.write('\r\x1b[K');
    shown = false;
  };
  return {
    running(what) {
      erase();
      if (!tty || what === '') return;
      process.stderr.write(`races: running ${what}`.slice(0, (process.stderr.columns ?? 80) - 1));
      shown = true;
    },
    row(r) {
      erase();
      console.log(racesTableRow(r));
    },
  };
}

/** The short threaded stress run of `races`: a mixed topology, judged as a scenario expecting no finding. */
async function racesStress(ms: number, signal: AbortSignal): Promise<RacesStress> {
  const until = performance.now() + ms;
  const tally = new Tallier({ findings: [], forbid: 'any', counters: {} });
  // Past the budget, the run in flight stops at its next scheduling point (src/cli/stress.ts) — once one has
  // been judged: a stress that judged nothing must not end in SUCCESS.
  const budget = new AbortController();
  const poll = (): void => {
    if (performance.now() >= until && tally.tally().schedules > 0) budget.abort();
  };
  let dmas = 0;
  while (performance.now() < until && !tally.decided && !signal.aborted) {
    const seed = tally.tally().schedules + 1;
    const r = await run({
      workload: { name: 'sva', params: { iommus: 'vtd,amd,smmuv3', devices: 6, processes: 24, script: 'stress', rounds: 2, dmas: 6, seed } },
      runtime: 'threaded',
      seed,
      workers: 2,
      signal,
      onProgress: poll,
      cut: budget.signal,
    }).catch((err: unknown) => {
      // Interrupted (src/cli/interrupt.ts): the run in flight is dropped.
      if (signal.aborted) return undefined;
      throw err;
    });
    if (!r) break;
    if (r.cut) {
      // Judged on its findings alone, if it has any: its check would judge a state halfway through.
      if (r.findings.length > 0) tally.add(seed, { ...observed(r), checkOk: true, problems: [] });
      break;
    }
    dmas += r.check.counters.dmas ?? 0;
    tally.add(seed, observed(r));
  }
  const t = tally.tally();
  const v = tally.verdict();
  return { ok: v.ok, runs: t.schedules, dmas, failing: t.fails, verdict: v.ok ? [] : [...v.lines] };
}
