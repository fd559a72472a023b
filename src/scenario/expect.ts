// Judging a run against a scenario's expectations: the findings it must show (at least one of the kinds), the
// kinds it must not show, and counters within bounds. A run that shows an expected finding is judged on that
// alone — what follows a bug (a process left unfinished by a hang) is its consequence, not a second failure.
import type { Finding } from '../runtime/model.js';
import type { Expectation, Scenario } from './scenario.js';

export interface Verdict {
  readonly ok: boolean;
  /** One line per expectation, met or not. */
  readonly lines: readonly string[];
}

export interface Observed {
  readonly findings: readonly Finding[];
  readonly counters: Readonly<Record<string, number>>;
  readonly checkOk: boolean;
  readonly problems: readonly string[];
}

const NONE: Expectation = { findings: [], forbid: 'any', counters: {} };

export function expectationFor(s: Scenario, fixed: boolean): Expectation {
  return fixed ? (s.fixExpect ?? NONE) : s.expect;
}

export function judge(e: Expectation, o: Observed): Verdict {
  const lines: string[] = [];
  let ok = true;
  const kinds = new Set(o.findings.map((f) => f.kind));
  if (e.findings.length > 0) {
    const hit = e.findings.filter((k) => kinds.has(k));
    if (hit.length > 0) lines.push(`expected a finding of kind ${e.findings.join(' or ')}: found ${hit.join(', ')}`);
    else {
      ok = false;
      lines.push(`expected a finding of kind ${e.findings.join(' or ')}: none found`);
    }
  }
  const forbidden = e.forbid === 'any' ? [...kinds].filter((k) => !e.findings.includes(k as never)) : e.forbid.filter((k) => kinds.has(k));
  if (forbidden.length > 0) {
    ok = false;
    lines.push(`forbidden finding kinds appeared: ${forbidden.join(', ')}`);
  } else if (e.findings.length === 0) {
    lines.push('no finding, as expected');
  }
  for (const [name, b] of Object.entries(e.counters)) {
    const v = o.counters[name];
    const within = v !== undefined && (b.min === undefined || v >= b.min) && (b.max === undefined || v <= b.max);
    const range = [b.min !== undefined ? `≥ ${b.min}` : '', b.max !== undefined ? `≤ ${b.max}` : ''].filter(Boolean).join(' and ');
    lines.push(`counter ${name} = ${v ?? '(none)'}, expected ${range}${within ? '' : ': NOT MET'}`);
    if (!within) ok = false;
  }
  if (e.findings.length === 0 && !o.checkOk) {
    ok = false;
    for (const p of o.problems) lines.push(`check failed: ${p}`);
  }
  return { ok, lines };
}
