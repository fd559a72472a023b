// The lines that open and close a command's report, in the style of rcutorture's status lines: the first says
// which iommu-sim and which Node ran it (a figure measured on Node 20 is not one measured on Node 24); a run's
// header names its runtime and the parameters that differ from the workload's defaults, its verdict the counters
// that moved — each wrapped to fit a terminal of 120 columns, every line starting with the command's tag so that
// grep still finds it. `-v` lists every parameter and every counter.
import { readFileSync } from 'node:fs';
import type { Wire } from '../runtime/model.js';
import { counted } from './interrupt.js';
import { PACKAGE_ROOT } from '../runtime/paths.js';
import type { RunResult } from '../runtime/result.js';
import { DOMAINS_DEFAULTS } from '../workloads/domains.js';
import { IOASID_DEFAULTS } from '../workloads/ioasid.js';
import { SVA_DEFAULTS } from '../workloads/sva.js';

/** The columns a status line may take: a terminal's 120, no more. */
export const STATUS_WIDTH = 120;

/** What ran a command: `--json`'s `host` field. */
export interface Host {
  /** iommu-sim's version (package.json). */
  readonly iommuSim: string;
  /** process.version: `v20.20.2`. */
  readonly node: string;
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  /** The node binary that ran it (a PATH may hold several). */
  readonly execPath: string;
}

let version: string | undefined;

export function host(): Host {
  version ??= (JSON.parse(readFileSync(`${PACKAGE_ROOT}/package.json`, 'utf8')) as { version: string }).version;
  return { iommuSim: version, node: process.version, platform: process.platform, arch: process.arch, execPath: process.execPath };
}

/** Every command's first line: `iommu-sim 0.1.0 on node v20.20.2 linux-x64`. */
export function hostLine(h: Host = host()): string {
  return `iommu-sim ${h.iommuSim} on node ${h.node} ${h.platform}-${h.arch}`;
}

/**
 * `words` after `head`, as lines of at most `width` columns: the first starts with `tag: head` (`tag:` for an
 * empty head), the next ones with `tag:` and an indent. A word wider than a line gets a line of its own rather
 * than being cut.
 */
export function wrapStatus(tag: string, head: string, words: readonly string[], width = STATUS_WIDTH): string[] {
  const lines: string[] = [];
  let line = head === '' ? `${tag}:` : `${tag}: ${head}`;
  const indent = `${tag}:   `;
  for (const w of words) {
    const next = line === indent ? `${line}${w}` : `${line} ${w}`;
    if (next.length <= width || line === indent) line = next;
    else {
      lines.push(line);
      line = `${indent}${w}`;
    }
  }
  lines.push(line);
  return lines;
}

/**
 * A sentence as `tag:` lines of at most `width` columns, wrapped at blanks (its clauses are not cut inside a word;
 * a word wider than a line keeps a line of its own): how a verdict, a summary or a "written to" line is printed.
 */
export function statusLines(tag: string, text: string, width = STATUS_WIDTH): string[] {
  const [first = '', ...rest] = text.split(' ').filter((w) => w !== '');
  return wrapStatus(tag, first, rest, width);
}

/** `tag: WHAT written to FILE`, then the checked advice on replaying it (replay-advice.ts), each fitting a terminal. */
export function writtenLines(tag: string, what: string, file: string, advice: string): string[] {
  return [...statusLines(tag, `${what} written to ${file}`), ...statusLines(tag, advice)];
}

/** The presets' defaults, by workload name: a header lists only what differs from them. */
const DEFAULTS: Readonly<Record<string, object>> = { sva: SVA_DEFAULTS, domains: DOMAINS_DEFAULTS, ioasid: IOASID_DEFAULTS };

/** `key=value` for each parameter, or (not verbose, a workload with defaults) only those that differ from them. */
export function parameterWords(workload: string, params: Readonly<Record<string, Wire>>, verbose: boolean): { words: string[]; all: number } {
  const preset = DEFAULTS[workload];
  const defaults = new Map<string, unknown>(preset ? Object.entries(preset) : []);
  const entries = Object.entries(params);
  const shown = verbose || !preset ? entries : entries.filter(([k, v]) => !defaults.has(k) || String(defaults.get(k)) !== String(v));
  // An empty value (no script steps, no patch) says so rather than ending its word in a bare `=`.
  return { words: shown.map(([k, v]) => `${k}=${v === '' ? '(empty)' : String(v)}`), all: entries.length };
}

/** A run's header: runtime, where it ran, and its parameters (those that differ from the defaults unless verbose). */
export function runHeader(tag: string, r: RunResult, verbose: boolean): string[] {
  const where = r.runtime === 'threaded' ? `placement=${r.placement} workers=${r.workers}` : `strategy=${r.strategy}`;
  const p = parameterWords(r.workload.name, r.workload.params, verbose);
  const hasDefaults = DEFAULTS[r.workload.name] !== undefined;
  const head = `runtime=${r.runtime} ${where}; ${verbose || !hasDefaults ? 'parameters:' : p.words.length > 0 ? 'parameters not at their default:' : 'every parameter at its default'}`;
  const tail = !verbose && hasDefaults ? [`(-v lists all ${p.all})`] : [];
  return wrapStatus(tag, head, [...p.words, ...tail]);
}

/** A run's last line(s): the verdict, its steps and the counters that moved (verbose: every counter), steps/s. */
export function verdictLines(tag: string, verdict: string, r: RunResult, verbose: boolean): string[] {
  const counters = Object.entries(r.check.counters);
  const shown = verbose ? counters : counters.filter(([, v]) => v !== 0);
  const zeros = counters.length - shown.length;
  const rate = `steps/s=${Math.round((r.steps / Math.max(1, r.elapsedMs)) * 1000)}`;
  const words = [`steps=${r.steps}`, ...shown.map(([k, v]) => `${k}=${v}`), rate, ...(zeros > 0 ? [`(${counted(zeros, 'counter')} at 0; -v lists them)`] : [])];
  return wrapStatus(tag, verdict, words);
}

/** Counters as `key=value` words (`suffix` after each key: `/s`), those at 0 left out unless verbose. */
export function counterWords(counters: Readonly<Record<string, number>>, verbose: boolean, suffix = ''): string[] {
  return Object.entries(counters)
    .filter(([, v]) => verbose || v !== 0)
    .map(([k, v]) => `${k}${suffix}=${v}`);
}
