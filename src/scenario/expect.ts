// Judging runs against a scenario's expectations — the one judge of `run`, `explore`, `stress`, the policy
// matrix and `races` (npm start). Each schedule (one execution) is classed on its own:
//   shows      a finding of an expected kind (the race reproduced), with no forbidden kind and counters met;
//   fails      a forbidden kind (by default every kind not listed in `findings`), or — when no finding is
//              expected — a failed check or a counter out of bounds: the schedule's verdict fails;
//   allowed    findings only of kinds neither expected nor forbidden (only with an explicit `forbid` list);
//   clean      no finding at all.
// A run (a sequence of schedules from consecutive seeds) holds when no schedule fails and, if findings are
// expected, at least one shows one. A run stops at the first schedule that decides it: one that fails, or one
// that shows the expected finding. A schedule that shows an expected finding is judged on that alone: what
// follows a bug (a process left unfinished by a hang) is its consequence, not a second failure.
import type { Finding } from '../runtime/model.js';
import type { Expectation, Scenario } from './scenario.js';

export interface Verdict {
  readonly ok: boolean;
  /** One line per expectation, met or not. */
  readonly lines: readonly string[];
}

export interface Observed {
  readonly findings: readonly Pick<Finding, 'kind'>[];
  readonly counters: Readonly<Record<string, number>>;
  readonly checkOk: boolean;
  readonly problems: readonly string[];
}

export type ScheduleClass = 'shows' | 'fails' | 'allowed' | 'clean';

/** One schedule's class, and why it failed when it did. */
export interface Judged {
  readonly class: ScheduleClass;
  /** It shows a finding of an expected kind (a schedule that also shows a forbidden kind is classed `fails`). */
  readonly expected: boolean;
  readonly reasons: readonly string[];
}

/** A schedule with a finding (or a failed check), by its seed: what `explore --json` lists. */
export interface Marked {
  readonly seed: number;
  /** The kind of its first finding, or `check` when only the workload's check failed. */
  readonly kind: string;
  readonly class: ScheduleClass;
}

/** The schedules of a run (or of one chunk of an exploration), counted by class; plain data, merged across threads. */
export interface Tally {
  readonly schedules: number;
  /** Schedules showing a finding of an expected kind (whatever else they show). */
  readonly shows: number;
  readonly fails: number;
  readonly allowed: number;
  /** Schedules with a finding or a failed check, by the kind of the first finding (`check`: the check only). */
  readonly byKind: Readonly<Record<string, number>>;
  /** Schedules showing each forbidden kind (anywhere among their findings). */
  readonly forbidden: Readonly<Record<string, number>>;
  /** Those schedules by seed, lowest first, at most MARKED_MAX of them (`marksOmitted` counts the rest). */
  readonly marked: readonly Marked[];
  readonly marksOmitted: number;
  /** The first schedule (lowest seed) that decided the run, when one did: its seed, class and what it showed. */
  readonly decisive: { readonly seed: number; readonly judged: Judged; readonly observed: Observed } | null;
}

/** Listed schedules at most, so that `explore --json` of a hazard failing on 10⁶ schedules stays readable. */
export const MARKED_MAX = 10_000;

/** The expectation of a run with the fix applied, when the scenario says none: no finding of any kind. */
const NONE: Expectation = { findings: [], forbid: 'any', counters: {} };

export function expectationFor(s: Scenario, fixed: boolean): Expectation {
  return fixed ? (s.fixExpect ?? NONE) : s.expect;
}

/** The kinds `e` forbids: its list, or (`any`, the default) every kind not listed in `findings`. */
export function isForbidden(e: Expectation, kind: string): boolean {
  const expected = (e.findings as readonly string[]).includes(kind);
  return e.forbid === 'any' ? !expected : (e.forbid as readonly string[]).includes(kind);
}

function countersLines(e: Expectation, counters: Readonly<Record<string, number>>): { lines: string[]; met: boolean } {
  const lines: string[] = [];
  let met = true;
  for (const [name, b] of Object.entries(e.counters)) {
    const v = counters[name];
    const within = v !== undefined && (b.min === undefined || v >= b.min) && (b.max === undefined || v <= b.max);
    const range = [b.min !== undefined ? `≥ ${b.min}` : '', b.max !== undefined ? `≤ ${b.max}` : ''].filter(Boolean).join(' and ');
    lines.push(`counter ${name} = ${v ?? '(none)'}, expected ${range}${within ? '' : ': NOT MET'}`);
    if (!within) met = false;
  }
  return { lines, met };
}

/** One schedule against an expectation. */
export function classify(e: Expectation, o: Observed): Judged {
  const kinds = [...new Set(o.findings.map((f) => f.kind))];
  const forbidden = kinds.filter((k) => isForbidden(e, k));
  const reasons: string[] = [];
  if (forbidden.length > 0) reasons.push(`forbidden finding kinds appeared: ${forbidden.join(', ')}`);
  const counters = countersLines(e, o.counters);
  if (e.findings.length > 0) {
    const expected = kinds.some((k) => (e.findings as readonly string[]).includes(k));
    if (expected && forbidden.length === 0 && !counters.met) reasons.push(...counters.lines.filter((l) => l.endsWith('NOT MET')));
    if (reasons.length > 0) return { class: 'fails', expected, reasons };
    return { class: expected ? 'shows' : kinds.length > 0 ? 'allowed' : 'clean', expected, reasons };
  }
  // A finding the expectation allows explains what follows it (a task left blocked by a hang): the workload's
  // check judges a schedule with no finding at all.
  if (!o.checkOk && kinds.length === 0) reasons.push(...o.problems.map((p) => `check failed: ${p}`), ...(o.problems.length === 0 ? ['check failed'] : []));
  if (!counters.met) reasons.push(...counters.lines.filter((l) => l.endsWith('NOT MET')));
  if (reasons.length > 0) return { class: 'fails', expected: false, reasons };
  return { class: kinds.length > 0 ? 'allowed' : 'clean', expected: false, reasons };
}

/** Does this schedule end a run that stops at its first decision? */
export function decides(e: Expectation, j: Judged): boolean {
  return j.class === 'fails' || (j.class === 'shows' && e.findings.length > 0);
}

/** Counts schedules of one run, in seed order (or merges tallies of consecutive seed ranges). */
export class Tallier {
  private schedules = 0;
  private shows = 0;
  private fails = 0;
  private allowed = 0;
  private readonly byKind: Record<string, number> = {};
  private readonly forbidden: Record<string, number> = {};
  private readonly marked: Marked[] = [];
  private marksOmitted = 0;
  private decisive: Tally['decisive'] = null;
  /** The last schedule seen: what a run that nothing decided reports on (its counters). */
  private lastObserved: Observed | null = null;

  constructor(readonly e: Expectation) {}

  /** One schedule, by its seed; returns its class. */
  add(seed: number, o: Observed): Judged {
    const j = classify(this.e, o);
    this.schedules++;
    if (j.expected) this.shows++;
    if (j.class === 'fails') this.fails++;
    else if (j.class === 'allowed') this.allowed++;
    for (const k of new Set(o.findings.map((f) => f.kind))) if (isForbidden(this.e, k)) this.forbidden[k] = (this.forbidden[k] ?? 0) + 1;
    const kind = o.findings[0]?.kind ?? (o.checkOk ? undefined : 'check');
    if (kind !== undefined) {
      this.byKind[kind] = (this.byKind[kind] ?? 0) + 1;
      this.mark({ seed, kind, class: j.class });
    }
    if (this.decisive === null && decides(this.e, j)) this.decisive = { seed, judged: j, observed: copy(o) };
    this.lastObserved = o;
    return j;
  }

  get decided(): boolean {
    return this.decisive !== null;
  }

  /** A tally of later seeds (another chunk of the same exploration). */
  merge(t: Tally): void {
    this.schedules += t.schedules;
    this.shows += t.shows;
    this.fails += t.fails;
    this.allowed += t.allowed;
    for (const [k, n] of Object.entries(t.byKind)) this.byKind[k] = (this.byKind[k] ?? 0) + n;
    for (const [k, n] of Object.entries(t.forbidden)) this.forbidden[k] = (this.forbidden[k] ?? 0) + n;
    for (const m of t.marked) this.mark(m);
    this.marksOmitted += t.marksOmitted;
    if (t.decisive && (this.decisive === null || t.decisive.seed < this.decisive.seed)) this.decisive = t.decisive;
  }

  tally(): Tally {
    return { schedules: this.schedules, shows: this.shows, fails: this.fails, allowed: this.allowed, byKind: { ...this.byKind }, forbidden: { ...this.forbidden }, marked: [...this.marked].sort((a, b) => a.seed - b.seed), marksOmitted: this.marksOmitted, decisive: this.decisive };
  }

  /** The run's verdict (the last schedule's counters are reported when nothing decided it). */
  verdict(): Verdict {
    return verdictOf(this.e, this.tally(), this.lastObserved);
  }

  private mark(m: Marked): void {
    if (this.marked.length < MARKED_MAX) this.marked.push(m);
    else this.marksOmitted++;
  }
}

function copy(o: Observed): Observed {
  return { findings: o.findings.map((f) => ({ kind: f.kind })), counters: { ...o.counters }, checkOk: o.checkOk, problems: [...o.problems] };
}

function kindsLine(byKind: Readonly<Record<string, number>>, which: (k: string) => boolean): string {
  return kindTally(byKind, which).join(', ');
}

/**
 * A tally of finding kinds as `kind n` words, the most frequent first and ties by name: the order the counts
 * arrived in is the order a pool's workers finished, which varies between runs of the same exploration.
 */
export function kindTally(byKind: Readonly<Record<string, number>>, which: (k: string) => boolean = () => true): string[] {
  return Object.entries(byKind)
    .filter(([k]) => which(k))
    .sort(([a, m], [b, n]) => n - m || (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, n]) => `${k} ${n}`);
}

function schedules(n: number): string {
  return `${n} schedule${n === 1 ? '' : 's'}`;
}

/** The verdict of a run from its tally: one line per expectation, met or not. */
export function verdictOf(e: Expectation, t: Tally, last: Observed | null = null): Verdict {
  const lines: string[] = [];
  const of = `of ${schedules(t.schedules)}`;
  const d = t.decisive;
  const expected = (k: string): boolean => (e.findings as readonly string[]).includes(k);
  if (e.findings.length > 0) {
    if (t.shows > 0) {
      const which = kindsLine(t.byKind, expected);
      lines.push(`expected a finding of kind ${e.findings.join(' or ')}: found in ${t.shows} ${of}${which ? ` (first finding: ${which})` : ''}${d?.judged.class === 'shows' ? `, first at seed ${d.seed}` : ''}`);
    } else {
      const seen = kindsLine(t.byKind, (k) => !expected(k) && !isForbidden(e, k));
      const where = t.fails > 0 && d?.judged.class === 'fails' ? `in the ${schedules(t.schedules)} run before a schedule failed` : `in ${schedules(t.schedules)}`;
      lines.push(`expected a finding of kind ${e.findings.join(' or ')}: none found ${where}${seen ? ` (allowed kinds seen: ${seen})` : ''}`);
    }
  }
  const forbid = e.forbid === 'any' ? 'every kind not expected' : e.forbid.length > 0 ? e.forbid.join(', ') : 'nothing';
  if (t.fails > 0) {
    const forbiddenSeen = kindsLine(t.forbidden, () => true);
    lines.push(`failed: ${t.fails} ${of}${forbiddenSeen ? ` with forbidden kinds (forbidden: ${forbid}): ${forbiddenSeen}` : ''}${d ? `; first at seed ${d.seed}` : ''}`);
    if (d?.judged.class === 'fails') for (const r of d.judged.reasons) lines.push(`seed ${d.seed}: ${r}`);
  } else if (e.findings.length === 0) {
    const seen = kindsLine(t.byKind, () => true);
    lines.push(seen ? `no forbidden finding in ${schedules(t.schedules)} (forbidden: ${forbid}; allowed kinds seen: ${seen})` : `no finding in ${schedules(t.schedules)}, as expected`);
  }
  const reported = d?.observed ?? last;
  if (reported && !(d?.judged.class === 'fails')) lines.push(...countersLines(e, reported.counters).lines);
  const ok = t.fails === 0 && (e.findings.length === 0 || t.shows > 0);
  return { ok, lines };
}

/** A single schedule's verdict (a run of one execution). */
export function judge(e: Expectation, o: Observed, seed = 0): Verdict {
  const t = new Tallier(e);
  t.add(seed, o);
  return t.verdict();
}
