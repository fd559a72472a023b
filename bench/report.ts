// `npm run bench:report`: one run that measures everything and writes BENCHMARKS.md — every benchmark suite
// (each in its own process, the `report` profile; runtime and scaling a second time beside a busy process, as
// `bench --noise` runs them), the policy matrix (its throughput column taken from that same
// run), and the charts (SVG files, linked from the Markdown); the raw JSON goes to bench/ beside them. Takes about
// 14 minutes on 2 cores (13 min 39 s here; the scaling suite's steady-state runs and ceiling are the most of it).
// It writes to bench-out/report/ (ignored by git), so that measuring leaves the tree clean; `--update-docs`
// updates the committed docs/BENCHMARKS.md instead.
//
//   node dist/bench/report.js [--quick] [--update-docs | --out DIR] [--runs N] [--from DIR]
//     --quick        every suite's quick profile and a small matrix (a smoke run of the whole pipeline)
//     --update-docs  write docs/BENCHMARKS.md, its charts and docs/bench/ (the committed report; `--docs`, its
//                    older name, still works)
//     --out DIR   where BENCHMARKS.md and the charts go (default bench-out/report/; the JSON in DIR/bench/)
//     --runs N    schedules per matrix configuration (default 120; fewer for a configuration once its schedules
//                 took 50 000 steps — the random workload's take thousands each)
//     --from DIR  measure nothing: remake the Markdown and the charts from DIR/bench.json and DIR/matrix.json
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { printMatrix, runMatrix, writeMatrix } from '../src/cli/matrix.js';
import { takeWriteFailures } from '../src/cli/output.js';
import { renderSvg, reportCharts } from '../src/report/charts.js';
import { benchmarksMarkdown } from '../src/report/markdown.js';
import type { BenchRunData, MatrixReport } from '../src/report/types.js';
import { PACKAGE_ROOT } from '../src/runtime/paths.js';
import { mergeRuns, runBenchSuites, SUITE_NAMES } from './main.js';

/** The suites bench:report runs a second time beside a busy process: those whose threads wait for each other. */
const NOISE_SUITES = ['runtime', 'scaling'];

interface Args {
  readonly quick: boolean;
  /** The command that makes this report again, as the Markdown names it. */
  readonly command: string;
  readonly out: string;
  readonly runs: number;
  readonly from?: string;
}

function parseArgs(argv: readonly string[]): Args {
  const value = (f: string): string | undefined => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const runs = Number(value('--runs') ?? (quick ? 16 : 120));
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got ${value('--runs')}`);
  const from = value('--from');
  const docs = argv.includes('--update-docs') || argv.includes('--docs');
  const out = value('--out');
  if (docs && out !== undefined) throw new Error('--update-docs and --out: give one (--update-docs is --out docs/)');
  const flags = [quick ? '--quick' : '', docs ? '--update-docs' : ''].filter((f) => f !== '');
  const command = `npm run bench:report${flags.length > 0 ? ` -- ${flags.join(' ')}` : ''}`;
  return { quick, command, out: docs ? join(PACKAGE_ROOT, 'docs') : (out ?? join(PACKAGE_ROOT, 'bench-out', 'report')), runs, ...(from ? { from } : {}) };
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const dataDir = a.from ?? join(a.out, 'bench');
  let bench: BenchRunData;
  let matrix: MatrixReport | null;
  let wallSeconds: number;
  let command = a.command;
  if (a.from) {
    bench = JSON.parse(readFileSync(join(a.from, 'bench.json'), 'utf8')) as BenchRunData;
    const mf = join(a.from, 'matrix.json');
    matrix = existsSync(mf) ? (JSON.parse(readFileSync(mf, 'utf8')) as MatrixReport) : null;
    const rf = join(a.from, 'report.json');
    // The measuring run's own wall time when it left it, else the suites' and the matrix's.
    const made = existsSync(rf) ? (JSON.parse(readFileSync(rf, 'utf8')) as { wallSeconds: number; command?: string }) : null;
    wallSeconds = made ? made.wallSeconds : bench.runs.reduce((s, r) => s + r.seconds, 0) + (matrix?.seconds ?? 0);
    // The Markdown names the run that measured (a report.json from before it was recorded: the report in docs/,
    // which only --update-docs writes).
    command = made?.command ?? 'npm run bench:report -- --update-docs';
  } else {
    log(`bench:report: ${SUITE_NAMES.length} suites (${a.quick ? 'quick' : 'report'} profile), then the policy matrix (up to ${a.runs} schedules a configuration)`);
    const plain = await runBenchSuites(SUITE_NAMES, { json: false, quick: a.quick, profile: a.quick ? 'quick' : 'report', out: dataDir, log, silent: true });
    // The threaded figures again beside one busy process (bench --noise), into the same bench.json.
    const noisy = await runBenchSuites(NOISE_SUITES, { json: false, quick: a.quick, profile: a.quick ? 'quick' : 'report', log, silent: true, noise: true });
    const run = mergeRuns(plain, noisy);
    writeFileSync(join(dataDir, 'bench.json'), `${JSON.stringify(run, null, 2)}\n`);
    bench = run;
    const unwritten = takeWriteFailures();
    if (unwritten.length > 0) throw new Error(`bench:report: ${unwritten.map((f) => `${f.file}: ${f.reason}`).join('; ')}`);
    log(`bench:report: suites done in ${((performance.now() - t0) / 1000).toFixed(0)} s; the policy matrix`);
    let last = 0;
    matrix = await runMatrix({
      runs: a.runs,
      maxSteps: a.quick ? 10_000 : 50_000,
      bench: { results: run.results, from: `${relative(a.out, dataDir) || '.'}/bench.json, this run` },
      onProgress: (done, total) => {
        // A line every tenth of the way (and the last), not one per configuration.
        if (done === total || done - last >= Math.ceil(total / 10)) {
          last = done;
          log(`bench:report: matrix ${done}/${total} configurations (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
        }
      },
    });
    // writeMatrix remembers a failed write for the CLI to report (src/cli/output.ts); here it ends the report.
    if (!writeMatrix(matrix, dataDir)) throw new Error(`bench:report: ${takeWriteFailures().map((f) => `${f.file}: ${f.reason}`).join('; ')}`);
    printMatrix(matrix);
    wallSeconds = (performance.now() - t0) / 1000;
    writeFileSync(join(dataDir, 'report.json'), `${JSON.stringify({ wallSeconds, quick: a.quick, runs: a.runs, command }, null, 2)}\n`);
  }
  mkdirSync(a.out, { recursive: true });
  const charts = reportCharts(bench, matrix);
  for (const c of charts) writeFileSync(join(a.out, c.file), await renderSvg(c.spec));
  const md = benchmarksMarkdown({
    bench,
    matrix,
    charts: charts.map(({ file, title, section }) => ({ file, title, section })),
    wallSeconds,
    dataDir: relative(a.out, dataDir) || '.',
    command,
  });
  writeFileSync(join(a.out, 'BENCHMARKS.md'), md);
  log(`bench:report: wrote ${join(a.out, 'BENCHMARKS.md')} and ${charts.length} charts in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (bench.runs.some((r) => r.error)) {
    log(`bench:report: failed suites: ${bench.runs.filter((r) => r.error).map((r) => r.suite).join(', ')} (reported in the Markdown)`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(`bench:report: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
