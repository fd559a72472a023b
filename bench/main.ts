// `iommu-sim bench [suite...]` and `npm run bench -- [suite...]`: run suites, print a table or JSON.
// Each suite runs in a child process of its own (this file with --child), one after the other: every suite
// starts on a fresh heap and a cold JIT, whatever ran before it, so the ratios inside a suite compare like with
// like and a suite's figures do not depend on which suites were asked for. The child reports each case as it
// starts (a progress line here, on stderr) and its result over the IPC channel.
//
// `--noise` runs a busy-looping process beside each suite (started before its child process, killed after it):
// the threaded runtime and the transport measured on a machine with one core taken. Those results and ratios
// are named apart (` [noise]`, `_noise`), so that one report can hold both runs.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type MachineInfo, machineInfo } from '../src/report/machine.js';
import type { BenchRunData } from '../src/report/types.js';
import { interrupts } from '../src/cli/interrupt.js';
import { Exit } from '../src/cli/exit.js';
import { checkOutputDir, takeWriteFailures, writeOutput } from '../src/cli/output.js';
import { type Column, textTable } from '../src/cli/table.js';
import { InputError } from '../src/runtime/errors.js';
import { PACKAGE_ROOT } from '../src/runtime/paths.js';
import { domainsSuite } from './domains.bench.js';
import { exploreSuite } from './explore.bench.js';
import { ioasidSuite } from './ioasid.bench.js';
import { type BenchResult, type DetailRow, type Profile, PROFILES, type SuiteOptions, type SuiteResult } from './measure.js';
import { kernelSuite } from './kernel.bench.js';
import { runtimeSuite } from './runtime.bench.js';
import { scalingSuite } from './scaling.bench.js';
import { seed000Suite } from './seed000.bench.js';
import { svaSuite } from './sva.bench.js';
import { syspasidSuite } from './syspasid.bench.js';
import { ForeignLoad } from './transport.js';

type Suite = (opts: SuiteOptions) => Promise<SuiteResult>;

/** Every suite, in the order `bench` with no name runs them. */
export const SUITES: Readonly<Record<string, Suite>> = {
  runtime: runtimeSuite,
  kernel: kernelSuite,
  sva: svaSuite,
  domains: domainsSuite,
  ioasid: ioasidSuite,
  syspasid: syspasidSuite,
  seed000: seed000Suite,
  explore: exploreSuite,
  scaling: scalingSuite,
};
export const SUITE_NAMES: readonly string[] = Object.keys(SUITES);

export class UnknownSuite extends InputError {
  override name = 'UnknownSuite';
}

/** How one suite's child process went. */
export interface SuiteRun {
  readonly suite: string;
  readonly seconds: number;
  /** CPU other processes used while it ran, in cores (Linux): figures taken beside other load are rough. */
  readonly foreignCores: number | null;
  readonly error: string | null;
}

/** What `bench --json` prints and `--out DIR` writes to DIR/bench.json. */
export interface BenchRun extends BenchRunData {
  readonly suites: string[];
  readonly node: string;
  readonly profile: Profile;
  readonly date: string;
  readonly machine: MachineInfo;
  readonly results: BenchResult[];
  readonly ratios: Record<string, number>;
  /** Per suite: its detail tables (explore, scaling). */
  readonly details: Record<string, Record<string, DetailRow[]>>;
  readonly runs: SuiteRun[];
  /** Which cases and ratios each suite produced. */
  readonly index: { suite: string; cases: string[]; ratios: string[] }[];
  /** A competing busy process ran beside the suites (`--noise`). */
  readonly noise?: boolean;
}

export interface BenchOptions {
  readonly json: boolean;
  readonly quick: boolean;
  readonly profile?: Profile;
  /** Write DIR/bench.json. */
  readonly out?: string;
  /** Progress lines (default: stderr). */
  readonly log?: (line: string) => void;
  /** Print nothing on stdout, neither tables nor JSON (a caller that uses the result itself). */
  readonly silent?: boolean;
  /** Stops the suite running (its child process is killed) and skips the rest: what ran is reported. */
  readonly signal?: AbortSignal;
  /** Run a busy-looping process beside each suite (NoiseProcess). */
  readonly noise?: boolean;
}

type ChildMessage =
  | { readonly type: 'case'; readonly name: string }
  | { readonly type: 'result'; readonly result: SuiteResult; readonly foreignCores: number | null }
  | { readonly type: 'error'; readonly message: string };

export function checkSuiteNames(names: readonly string[]): string[] {
  const chosen = names.length > 0 ? [...names] : [...SUITE_NAMES];
  for (const n of chosen) {
    if (!SUITES[n]) throw new UnknownSuite(`unknown benchmark suite '${n}' (known: ${SUITE_NAMES.join(', ')})`);
  }
  return chosen;
}

/**
 * One competing busy process: a Node child spinning in a loop for as long as it lives (one core taken), killed
 * by stop() — or when this process exits, whatever way it does.
 */
export class NoiseProcess {
  private readonly child: ChildProcess;
  private readonly kill = (): void => {
    this.child.kill('SIGKILL');
  };

  constructor() {
    // It looks at its parent now and then: a bench killed with SIGKILL (no 'exit' event) leaves no busy orphan.
    const loop = `const p = process.ppid; for (let i = 1; ; i++) if ((i & 0xffffff) === 0 && process.ppid !== p) process.exit();`;
    this.child = spawn(process.execPath, ['-e', loop], { stdio: 'ignore' });
    this.child.on('error', () => {}); // a failed spawn only means no noise; the figures say who ran beside them
    process.once('exit', this.kill);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Kills the busy process and waits until it is gone. */
  async stop(): Promise<void> {
    process.removeListener('exit', this.kill);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.kill();
    await gone;
  }
}

/** A suite's result as measured beside a busy process: its cases and ratios named apart. */
function noisy(r: SuiteResult): SuiteResult {
  return {
    suite: r.suite,
    results: r.results.map((x) => ({ ...x, name: `${x.name} [noise]` })),
    ratios: Object.fromEntries(Object.entries(r.ratios).map(([k, v]) => [`${k}_noise`, v])),
    ...(r.details ? { details: Object.fromEntries(Object.entries(r.details).map(([k, v]) => [`${k}_noise`, v])) } : {}),
  };
}

/** Two runs as one (bench:report's plain suites and its `--noise` pass): results, ratios and details side by side. */
export function mergeRuns(a: BenchRun, b: BenchRun): BenchRun {
  const details: Record<string, Record<string, DetailRow[]>> = { ...a.details };
  for (const [suite, tables] of Object.entries(b.details)) details[suite] = { ...details[suite], ...tables };
  return {
    ...a,
    suites: [...a.suites, ...b.suites.map((s) => `${s} --noise`)],
    results: [...a.results, ...b.results],
    ratios: { ...a.ratios, ...b.ratios },
    details,
    runs: [...a.runs, ...b.runs.map((r) => ({ ...r, suite: `${r.suite} --noise` }))],
    index: [...a.index, ...b.index.map((i) => ({ ...i, suite: `${i.suite} --noise` }))],
  };
}

/** Run one suite in a child process; its progress lines through `log`. */
function runChild(
  name: string,
  profile: Profile,
  log: (line: string) => void,
  tag: string,
  signal?: AbortSignal,
  noise = false,
): Promise<{ result: SuiteResult | null; run: SuiteRun }> {
  const t0 = performance.now();
  const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  return new Promise((resolve) => {
    const args = ['--child', name, '--profile', profile, ...(noise ? ['--noise'] : [])];
    const child = fork(join(PACKAGE_ROOT, 'dist', 'bench', 'main.js'), args, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    // Whatever the child prints goes to our stderr: our stdout carries the JSON alone.
    child.stdout?.on('data', (d: Buffer) => process.stderr.write(d));
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
    let result: SuiteResult | null = null;
    let foreignCores: number | null = null;
    let error: string | null = null;
    const kill = (): void => {
      error = 'interrupted';
      child.kill('SIGTERM');
    };
    signal?.addEventListener('abort', kill, { once: true });
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'case') log(`bench ${tag} ${name}: ${m.name} (${elapsed()})`);
      else if (m.type === 'result') {
        result = m.result;
        foreignCores = m.foreignCores;
      } else error = m.message;
    });
    child.on('exit', (code, how) => {
      signal?.removeEventListener('abort', kill);
      if (!result && !error) error = `the suite's process exited with ${how ?? `code ${code}`} before reporting`;
      const seconds = (performance.now() - t0) / 1000;
      log(`bench ${tag} ${name}: ${error ? `FAILED: ${error}` : 'done'} in ${seconds.toFixed(1)} s`);
      resolve({ result, run: { suite: name, seconds, foreignCores, error } });
    });
  });
}

/** Run the suites, one child process each; print tables (or the JSON) and write `out`. */
export async function runBenchSuites(names: readonly string[], opts: BenchOptions): Promise<BenchRun> {
  const chosen = checkSuiteNames(names);
  const profile = opts.profile ?? (opts.quick ? 'quick' : 'full');
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const machine = machineInfo();
  const date = new Date().toISOString();
  const out: SuiteResult[] = [];
  const runs: SuiteRun[] = [];
  for (const [i, n] of chosen.entries()) {
    if (opts.signal?.aborted) break;
    const noise = opts.noise ? new NoiseProcess() : null;
    let r: Awaited<ReturnType<typeof runChild>>;
    try {
      r = await runChild(n, profile, log, `[${i + 1}/${chosen.length}]${noise ? ' (noise)' : ''}`, opts.signal, noise !== null);
    } finally {
      await noise?.stop();
    }
    runs.push(r.run);
    if (r.result) {
      const result = noise ? noisy(r.result) : r.result;
      out.push(result);
      if (!opts.json && !opts.silent) printSuite(result);
    }
  }
  const run: BenchRun = {
    suites: out.map((s) => s.suite),
    node: process.version,
    profile,
    date,
    machine,
    results: out.flatMap((s) => s.results),
    // Ratio names are unique across suites.
    ratios: Object.assign({}, ...out.map((s) => s.ratios)) as Record<string, number>,
    details: Object.fromEntries(out.filter((s) => s.details).map((s) => [s.suite, s.details ?? {}])),
    runs,
    index: out.map((s) => ({ suite: s.suite, cases: s.results.map((r) => r.name), ratios: Object.keys(s.ratios) })),
    ...(opts.noise ? { noise: true } : {}),
  };
  if (opts.out) {
    // A failure is remembered by writeOutput and reported by the CLI after the tables (exit 2).
    try {
      mkdirSync(opts.out, { recursive: true });
    } catch {}
    writeOutput('--out', join(opts.out, 'bench.json'), `${JSON.stringify(run, null, 2)}\n`);
  }
  if (opts.json && !opts.silent) process.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
  for (const r of runs) if (r.error && !opts.json && !opts.silent) console.log(`\n${r.suite}: FAILED: ${r.error}`);
  return run;
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return n.toFixed(1);
}

/** A suite's columns: the case's name takes what the figures leave of 120 columns. */
const SUITE_COLUMNS: readonly Column[] = [
  { head: 'case' },
  { head: 'per second', width: 10, align: 'right' },
  { head: 'mean ns', width: 12, align: 'right' },
  { head: 'p99 ns', width: 12, align: 'right' },
  { head: 'samples', width: 8, align: 'right' },
];

/** A suite's cases as an aligned table (120 columns, long names wrapped), then its ratios. */
export function suiteTable(s: SuiteResult): string {
  const rows = s.results.map((r) => [r.name, fmt(r.hz), r.meanNs.toFixed(0), r.p99Ns.toFixed(0), r.samples]);
  const ratios = Object.entries(s.ratios).map(([k, v]) => `  ${k.padEnd(36)} ${v.toFixed(2)}`);
  return [s.suite, textTable(SUITE_COLUMNS, rows), ...ratios].join('\n');
}

function printSuite(s: SuiteResult): void {
  console.log(`\n${suiteTable(s)}`);
}

/**
 * The parent went away (killed, even with SIGKILL): a suite nobody reads must not run on as an orphan. A
 * measuring loop may keep this thread busy for long stretches (no 'disconnect' event then), so a small thread
 * of its own watches the parent's pid — re-parented means gone — and ends the process.
 */
function exitWhenOrphaned(): void {
  const code = `const p = ${process.ppid}; setInterval(() => { if (process.ppid !== p) process.kill(process.pid, 'SIGKILL'); }, 500);`;
  new Worker(code, { eval: true }).unref();
}

/** The child: run one suite, report its cases and its result to the parent. */
async function child(name: string, profile: Profile, noise: boolean): Promise<void> {
  const send = (m: ChildMessage): Promise<void> => new Promise((resolve) => (process.send ? process.send(m, () => resolve()) : resolve()));
  const suite = SUITES[name];
  if (!suite) {
    await send({ type: 'error', message: `unknown suite '${name}'` });
    process.exitCode = 2;
    return;
  }
  exitWhenOrphaned();
  const load = new ForeignLoad();
  try {
    const result = await suite({ quick: profile === 'quick', profile, noise, onCase: (c) => void send({ type: 'case', name: c }) });
    await send({ type: 'result', result, foreignCores: load.cores() ?? null });
  } catch (err) {
    await send({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    process.exitCode = 1;
  }
  // Suites leave worker pools and timers behind at worst: the result is in, end the process.
  process.disconnect?.();
  process.exit();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const flag = (f: string): string | undefined => {
    const i = args.indexOf(f);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const profileArg = flag('--profile');
  const profile = PROFILES.find((p) => p === profileArg);
  const childSuite = flag('--child');
  if (childSuite !== undefined) {
    await child(childSuite, profile ?? 'full', args.includes('--noise'));
  } else {
    const json = args.includes('--json');
    const quick = args.includes('--quick');
    const outDir = flag('--out');
    const names = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--out' && args[i - 1] !== '--profile');
    const stop = interrupts();
    try {
      checkOutputDir('--out', outDir);
      const noise = args.includes('--noise');
      const run = await runBenchSuites(names, { json, quick, noise, ...(profile ? { profile } : {}), ...(outDir ? { out: outDir } : {}), signal: stop.signal });
      if (run.runs.some((r) => r.error)) process.exitCode = 1;
      for (const f of takeWriteFailures()) {
        console.error(`bench: ${f.flag} ${f.file}: could not be written: ${f.reason}`);
        process.exitCode = 2;
      }
      stop.exitIfStopped('bench', 'the suites that finished are reported above');
    } catch (err) {
      if (err instanceof Exit) process.exitCode = err.code;
      else {
        console.error(err instanceof Error ? err.message : err);
        process.exitCode = err instanceof InputError ? 2 : 1;
      }
    } finally {
      stop.dispose();
    }
  }
}
