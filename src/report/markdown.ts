// Markdown for the benchmark report (docs/BENCHMARKS.md, `npm run bench:report`) and for the policy matrix
// (`iommu-sim matrix --out DIR` → DIR/matrix.md), made only from the JSON of a run (types.ts): the machine, the
// targets judged against the limits measured in the same run, every suite's figures with the physical limits
// beside them as ratios, the policy matrix, exploration speed, and the scaling curves (charts made elsewhere,
// linked by file name).
import type { BenchRow, BenchRunData, DetailRow, DetailValue, FindingRate, MatrixReport } from './types.js';
import { judgeTargets, LIMITS, type TargetRow } from './targets.js';

export function mdTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const line = (cells: readonly string[]): string => `| ${cells.map(esc).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

/** 1 234 567 → "1.23 M"; 12 345 → "12.3 k". */
export function fmtNum(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return 'n/a';
  return r >= 100 ? `${r.toFixed(0)}×` : r >= 0.1 ? `${r.toFixed(2)}×` : `${r.toPrecision(2)}×`;
}

function fmtRate(r: FindingRate | null | undefined): string {
  if (!r) return 'n/a';
  return r.perThousand === 0 ? '0' : r.perThousand.toFixed(1);
}

function fmtKinds(r: FindingRate | null | undefined): string {
  if (!r) return '';
  return Object.entries(r.byKind)
    .map(([k, v]) => `${k} ${v.toFixed(1)}`)
    .join(', ');
}

/** `37 of 300 (12 %)`. */
export function fmtFraction(n: number, of: number): string {
  const pct = of > 0 ? (100 * n) / of : 0;
  return `${n} of ${of} (${pct >= 10 || pct === 0 ? pct.toFixed(0) : pct.toFixed(1)} %)`;
}

function cell(v: DetailRow[string] | undefined, digits = 0): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') {
    if (digits > 0) return v.toFixed(digits);
    // Counts as they are (below 10 000), measurements to 3 significant figures.
    return Number.isInteger(v) && Math.abs(v) < 1e5 ? String(v) : fmtNum(v);
  }
  return String(v);
}

/** A threaded row's worker time as shares: waiting for step locks · idle with blocked tasks · idle (worker-time.ts). */
function workerTimeCell(r: DetailRow): string {
  const pct = (v: DetailValue | undefined): string => (typeof v === 'number' ? `${(100 * v).toFixed(0)} %` : '—');
  return typeof r.blockedShare === 'number' ? `${pct(r.lockWaitShare)} · ${pct(r.blockedShare)} · ${pct(r.idleShare)}` : '—';
}

/** The scaling suite's workers curve: a row per preset and configuration. */
function workersTable(rows: readonly DetailRow[], xs: number | undefined): string {
  return mdTable(
    ['preset', 'placement', 'threads', 'actors', 'events/s', 'steps/s', 'DMAs/s', 'fallback', 'locks · blocked · idle', 'blocked on the most', 'findings', 'start-up ms', 'runs', '÷ XState send'],
    rows.map((r) => [
      cell(r.preset ?? 'sva'),
      cell(r.placement),
      cell(r.threads),
      cell(r.actors),
      r.eventsPerSec === null ? cell(r.note) : cell(r.eventsPerSec),
      cell(r.stepsPerSec),
      cell(r.dmasPerSec),
      typeof r.fallbackShare === 'number' ? `${(100 * r.fallbackShare).toFixed(1)} %` : 'n/a',
      workerTimeCell(r),
      cell(r.blockedOn ?? null),
      cell(r.findings ?? null),
      cell(r.startMs),
      cell(r.runs),
      typeof r.eventsPerSec === 'number' && xs ? fmtRatio(r.eventsPerSec / xs) : '—',
    ]),
  );
}

/**
 * Per preset of the workers curve: the threaded runtime's 2-worker speed-up, the machine's ceiling (two
 * independent deterministic copies against one) and the share of that ceiling the runtime gets, all in steps/s
 * (the bench's `scaling_*_2workers_vs_ceiling`). Null when no preset has both.
 */
export function ceilingTable(rows: readonly DetailRow[]): string | null {
  const steps = (preset: string, placement: string): number | undefined => {
    const v = rows.find((r) => (r.preset ?? 'sva') === preset && r.placement === placement)?.stepsPerSec;
    return typeof v === 'number' ? v : undefined;
  };
  const presets = [...new Set(rows.map((r) => String(r.preset ?? 'sva')))];
  const lines = presets.flatMap((p) => {
    const [w1, w2, c1, c2] = [steps(p, '1 worker'), steps(p, '2 workers'), steps(p, 'ceiling: 1 thread'), steps(p, 'ceiling: 2 independent threads')];
    if (w1 === undefined || w2 === undefined || c1 === undefined || c2 === undefined) return [];
    return [[p, fmtRatio(w2 / w1), fmtRatio(c2 / c1), fmtRatio(w2 / w1 / (c2 / c1))]];
  });
  return lines.length === 0 ? null : mdTable(['preset', '2 workers ÷ 1', 'ceiling: 2 copies ÷ 1', 'share of the ceiling'], lines);
}

function ceilingSummary(rows: readonly DetailRow[]): string[] {
  const t = ceilingTable(rows);
  return t === null ? [] : ['Against the ceiling, in steps/s (1: the runtime gets all two threads can get here):', t];
}

/** A row of the matrix's further costs (PolicyDef.costs): one per (policy, measure, value); the ratio on its first value. */
export interface CostRow {
  readonly policy: string;
  readonly seed: string;
  readonly param: string;
  readonly first: boolean;
  readonly value: string;
  readonly unit: string;
  readonly hz: number | null;
  readonly ratio: { readonly name: string; readonly value: number } | null;
}

export function matrixCostRows(m: MatrixReport): CostRow[] {
  return m.policies.flatMap((p) => {
    const units = [...new Set(p.values.flatMap((v) => (v.costs ?? []).map((c) => c.unit)))];
    return units.flatMap((unit) =>
      p.values.map((v, i) => ({
        policy: p.policy,
        seed: p.seed,
        param: p.param,
        first: i === 0,
        value: v.value,
        unit,
        hz: v.costs?.find((c) => c.unit === unit)?.hz ?? null,
        ratio: i === 0 ? (p.costRatios?.find((x) => x.unit === unit) ?? null) : null,
      })),
    );
  });
}

/** The policy matrix: one table of the rows, one of each row's workloads, and the races against their fix. */
export function matrixSections(m: MatrixReport, level = '##'): string {
  const out: string[] = [];
  out.push(
    `Failing schedules per 1 000 explored (a schedule fails on its first finding, or a failed check), by the kind of ` +
      `that finding; ${m.runs} schedules per configuration (fewer when they reach ${fmtNum(m.maxSteps)} steps first: long ` +
      `workloads), in chunks of ${m.chunk} from the scenario's own ` +
      `seed, strategy and depth, on ${m.workers} pool thread${m.workers === 1 ? '' : 's'} (${m.seconds.toFixed(0)} s). ` +
      'A row changes one policy; everything else the race fixes (other policies, its own knobs) takes its fixed value; the workload and its injected ' +
      `faults stay as written. Throughput from the matching benchmark${m.throughputFrom ? ` (${m.throughputFrom})` : ''}.`,
  );
  for (const n of m.notes) out.push(`> Note: ${n}`);
  const rows: string[][] = [];
  // A policy no workload names is in the notes, not in the table.
  for (const p of m.policies.filter((x) => x.workloads.length > 0)) {
    p.values.forEach((v, i) => {
      rows.push([
        i === 0 ? `${p.policy} (${p.seed}, \`${p.param}\`)` : '',
        `\`${v.value}\`${v.label !== v.value ? ` — ${v.label}` : ''}`,
        String(v.cells.filter((c) => c.rate).length) + (v.cells.some((c) => c.error) ? ` (+${v.cells.filter((c) => c.error).length} n/a)` : ''),
        String(v.total?.schedules ?? 0),
        fmtRate(v.total),
        fmtKinds(v.total),
        v.throughput ? `${fmtNum(v.throughput.hz)}/s` : '—',
        i === 0 && p.ratio ? `${p.ratio.name}: ${fmtRatio(p.ratio.value)}` : '',
      ]);
    });
  }
  out.push(mdTable(['policy', 'value', 'workloads', 'schedules', 'failing per 1 000', 'by kind (per 1 000)', 'throughput', 'ratio'], rows));
  const units = m.policies.filter((p) => p.unit).map((p) => `${p.policy}: ${p.unit}`);
  if (units.length > 0) out.push(`Throughput units — ${units.join('; ')}.`);
  const costs = matrixCostRows(m).map((r) => [
    r.first ? `${r.policy} (${r.seed}, \`${r.param}\`)` : '',
    `\`${r.value}\``,
    r.first ? r.unit : '',
    r.hz === null ? '—' : `${fmtNum(r.hz)}/s`,
    r.ratio ? `${r.ratio.name}: ${fmtRatio(r.ratio.value)}` : '',
  ]);
  if (costs.length > 0) {
    out.push('What else a choice costs: the same benchmark, another measure of the work the policy changes.');
    out.push(mdTable(['policy', 'value', 'measure', 'throughput', 'ratio'], costs));
  }

  out.push(`${level}# The races against their fix`);
  out.push(
    "Each race script as written (the bug in) and with its `fix` applied, over the script's own budget of schedules " +
      '(`explore.runs`, seeds from `explore.seed`), each schedule judged by the script\'s expectation (`forbid` defaults to every kind ' +
      'not listed in `findings`). Class: a **deterministic hazard** shows its finding on every schedule of the budget (no ' +
      'interleaving needed); a **race** needs a particular interleaving, and the fraction is the schedules that show it. ' +
      'Verdict `ok`: the expected finding with the bug and no forbidden kind; none with the fix.',
  );
  out.push(
    mdTable(
      ['race', 'seed', 'fix', 'expects', 'class', 'bug: schedules showing it', 'bug: by kind (per 1 000)', 'fix: failing per 1 000', 'verdict'],
      m.fixPairs.map((f) => [
        f.workload,
        f.seed ?? '',
        `\`${f.fix}\``,
        f.expects.join(', ') || '(counters)',
        f.hazard ?? '—',
        f.bugShowing !== null && f.bugSchedules !== null ? fmtFraction(f.bugShowing, f.bugSchedules) : 'n/a',
        fmtKinds(f.bugRate),
        fmtRate(f.fixRate) + (f.fixRate && f.fixRate.failing > 0 ? ` (${fmtKinds(f.fixRate)})` : ''),
        f.error ? `${f.verdict}: ${f.error}` : f.verdict,
      ]),
    ),
  );

  out.push(`${level}# Each workload`);
  const wrows: string[][] = [];
  for (const p of m.policies) {
    for (const v of p.values) {
      for (const c of v.cells) {
        wrows.push([p.policy, `\`${v.value}\``, c.workload, c.rate ? String(c.rate.schedules) : '—', c.rate ? fmtRate(c.rate) : `n/a: ${c.error ?? ''}`, fmtKinds(c.rate)]);
      }
    }
  }
  out.push(mdTable(['policy', 'value', 'workload', 'schedules', 'failing per 1 000', 'by kind'], wrows));
  return `${out.join('\n\n')}\n`;
}

/** DIR/matrix.md of `iommu-sim matrix --out DIR`. */
export function matrixMarkdown(m: MatrixReport): string {
  return `# iommu-sim policy matrix\n\n${m.date}, Node ${m.node}.\n\n${matrixSections(m, '##')}`;
}

export interface ChartRef {
  /** Where it is linked from the Markdown (relative to it). */
  readonly file: string;
  readonly title: string;
  /** Which section it belongs to. */
  readonly section: 'limits' | 'matrix' | 'explore' | 'scaling';
}

export interface ReportInput {
  readonly bench: BenchRunData;
  readonly matrix: MatrixReport | null;
  readonly charts: readonly ChartRef[];
  /** The whole run's wall time, seconds. */
  readonly wallSeconds: number;
  /** Where the raw JSON is, relative to the Markdown. */
  readonly dataDir: string;
  readonly command: string;
}

function find(results: readonly BenchRow[], name: string): BenchRow | undefined {
  return results.find((r) => r.name === name);
}

function charts(input: ReportInput, section: ChartRef['section']): string[] {
  return input.charts.filter((c) => c.section === section).map((c) => `![${c.title}](${c.file})`);
}

function detail(b: BenchRunData, suite: string, table: string): readonly DetailRow[] {
  return b.details[suite]?.[table] ?? [];
}

/** Other processes' CPU above this (cores) during a suite makes its two-thread figures unreliable. */
const BUSY_CORES = 0.2;

function targetsTable(rows: readonly TargetRow[], b: BenchRunData): string {
  const busy = (suite: string): number | null => {
    const c = b.runs.find((r) => r.suite === suite)?.foreignCores ?? null;
    return c !== null && c > BUSY_CORES ? c : null;
  };
  return mdTable(
    ['target', 'measured', 'against (same run)', 'figure', 'verdict'],
    rows.map((t) => {
      const v = t.verdict === 'PASS' ? '**PASS**' : t.verdict === 'FAIL' ? '**FAIL**' : t.verdict;
      const c = busy(t.suite);
      return [t.target, t.measured, t.against, t.figure, c === null ? v : `${v} (busy machine: ${c.toFixed(2)} other cores)`];
    }),
  );
}

/** docs/BENCHMARKS.md. */
export function benchmarksMarkdown(input: ReportInput): string {
  const b = input.bench;
  const m = b.machine;
  const out: string[] = [];
  out.push('# iommu-sim benchmarks');
  out.push(
    `Generated by \`${input.command}\` on ${b.date.slice(0, 10)} (${b.date}), in ${(input.wallSeconds / 60).toFixed(1)} minutes ` +
      `(suites in the \`${b.profile}\` profile, each in a process of its own). Every figure below was measured in this one run; ` +
      `the raw figures are in [${input.dataDir}/bench.json](${input.dataDir}/bench.json)` +
      (input.matrix ? ` and [${input.dataDir}/matrix.json](${input.dataDir}/matrix.json)` : '') +
      '. Run the same command to measure your machine.',
  );
  out.push('## Machine');
  out.push(
    mdTable(
      ['CPU', 'cores', 'memory', 'Node', 'OS', 'load average (1 min) at start'],
      [[m.cpu, String(m.cores), `${m.memoryGiB.toFixed(1)} GiB`, m.node, m.os, m.loadAverage.toFixed(2)]],
    ),
  );
  const busy = b.runs.filter((r) => (r.foreignCores ?? 0) > BUSY_CORES);
  out.push(
    mdTable(
      ['suite', 'wall time', 'CPU used by other processes meanwhile', 'status'],
      b.runs.map((r) => [r.suite, `${r.seconds.toFixed(1)} s`, r.foreignCores === null ? 'n/a' : `${r.foreignCores.toFixed(2)} cores`, r.error ? `FAILED: ${r.error}` : 'ok']),
    ),
  );
  if (busy.length > 0) {
    out.push(
      `> Other processes kept ${busy.map((r) => `${r.foreignCores?.toFixed(2)} cores busy during ${r.suite}`).join(', ')}: on a ` +
        `${m.cores}-core machine those suites' threads shared their cores, and their figures (the two-thread ones most) are low.`,
    );
  }

  out.push('## Targets');
  out.push(
    'Judged against the limits measured in the same run. PASS or FAIL as measured: nothing here is adjusted, and a FAIL is a ' +
      'figure to improve, not an error of the benchmark.',
  );
  out.push(targetsTable(judgeTargets(b), b));

  out.push('## Physical limits');
  out.push(
    'Measured by the runtime suite in this run: the raw SharedArrayBuffer ring (one message a publish, and batched by 64), ' +
      "`postMessage` between two threads, and XState's own `send` in one thread. Every figure below has its ratio to these " +
      'beside it (units differ — a message, an event, a lookup, a DMA — the ratio says how far the model is from moving one ' +
      'bare message).',
  );
  const limits = LIMITS.map((l) => ({ ...l, row: find(b.results, l.name) }));
  out.push(mdTable(['limit', 'case', 'per second', 'mean ns'], limits.map((l) => [l.label, `\`${l.name}\``, l.row ? fmtNum(l.row.hz) : 'not measured', l.row ? l.row.meanNs.toFixed(0) : '—'])));
  out.push(...charts(input, 'limits'));

  out.push('## Suites');
  const lim = (name: string): number | undefined => find(b.results, name)?.hz;
  const raw = lim('raw_ring_1');
  const xs = lim('xstate_send');
  const pm = lim('postmessage');
  const vs = (hz: number, l: number | undefined): string => (l ? fmtRatio(hz / l) : '—');
  for (const s of b.suites) {
    const run = b.runs.find((r) => r.suite === s);
    const idx = b.index.find((x) => x.suite === s);
    out.push(`### ${s}`);
    const mine = (idx?.cases ?? []).flatMap((n) => find(b.results, n) ?? []);
    out.push(
      mdTable(
        ['case', 'per second', 'mean ns', 'p99 ns', 'samples', '÷ raw ring', '÷ XState send', '÷ postMessage'],
        mine.map((r) => [r.name, fmtNum(r.hz), fmtNum(r.meanNs), fmtNum(r.p99Ns), String(r.samples), vs(r.hz, raw), vs(r.hz, xs), vs(r.hz, pm)]),
      ),
    );
    const ratios = (idx?.ratios ?? []).flatMap((k) => (b.ratios[k] === undefined ? [] : [[k, b.ratios[k] as number] as const]));
    if (ratios.length > 0) out.push(mdTable(['ratio', 'value'], ratios.map(([k, v]) => [`\`${k}\``, fmtRatio(v)])));
    if (run?.error) out.push(`> ${s} FAILED: ${run.error}`);
  }

  if (input.matrix) {
    out.push('## Policy matrix');
    out.push(...charts(input, 'matrix'));
    out.push(matrixSections(input.matrix, '##').trimEnd());
  } else {
    out.push('## Policy matrix\n\nNot run.');
  }

  out.push('## Exploration speed');
  const ex = detail(b, 'explore', 'explore');
  if (ex.length === 0) out.push('The explore suite did not run.');
  else {
    const pool = detail(b, 'explore', 'pool')[0];
    out.push(
      'Every race script as written, explored as `iommu-sim explore` does (chunks of executions, going on past the first ' +
        'failure), on one thread and on a piscina pool of 2 workers' +
        (pool ? ` (started and warmed up before the clock: ${cell(pool.startAndWarmupMs)} ms; chunks of ${cell(pool.chunk)})` : '') +
        '. First finding: schedules and milliseconds until the first failing schedule (— : none within the budget).',
    );
    out.push(...charts(input, 'explore'));
    const keyOf = (r: DetailRow): string => `${r.race}/${r.strategy}`;
    const keys = [...new Set(ex.map(keyOf))];
    out.push(
      mdTable(
        ['race', 'strategy', 'steps/schedule', 'schedules/s, 1 thread', 'schedules/s, pool', 'pool ÷ 1 thread', 'first finding, 1 thread', 'first finding, pool'],
        keys.map((k) => {
          const rs = ex.filter((r) => keyOf(r) === k);
          const one = rs.find((r) => r.mode === '1 thread');
          const two = rs.find((r) => r.mode !== '1 thread' && r.mode !== 'error');
          const err = rs.find((r) => r.mode === 'error');
          const first = (r: DetailRow | undefined): string =>
            !r ? '—' : r.expectsFinding === false ? 'n/a (counters)' : r.firstSchedules === null ? `not in ${cell(r.schedules)} (${cell(r.seconds, 1)} s)` : `${cell(r.firstSchedules)} (${cell(r.firstMs)} ms, ${cell(r.firstKind)})`;
          const s1 = typeof one?.schedulesPerSec === 'number' ? one.schedulesPerSec : undefined;
          const s2 = typeof two?.schedulesPerSec === 'number' ? two.schedulesPerSec : undefined;
          const r0 = rs[0];
          if (err) return [cell(r0?.race), cell(r0?.strategy), 'error', `${err.error}`, '', '', '', ''];
          return [
            cell(r0?.race),
            `${cell(r0?.strategy)}${r0?.depth !== null && r0?.depth !== undefined ? ` (d=${r0.depth})` : ''}`,
            cell(one?.stepsPerSchedule),
            s1 === undefined ? '—' : fmtNum(s1),
            s2 === undefined ? '—' : fmtNum(s2),
            s1 && s2 ? fmtRatio(s2 / s1) : '—',
            first(one),
            first(two),
          ];
        }),
      ),
    );
    const sus = detail(b, 'explore', 'sustained')[0];
    if (sus) {
      out.push(
        `Sustained, the figure the targets judge: ${cell(sus.race)} (PCT, ${cell(sus.stepsPerSchedule)} steps a schedule, the race ` +
          `closest to 100), explored for ${cell(sus.seconds, 1)} s after as long a warm-up on the same race${rounds(sus)}, in chunks of ` +
          `64 kept going past failing schedules, as \`explore --keep-going\` does: ${fmtNum(Number(sus.oneThread))} schedules/s on one thread, ${fmtNum(Number(sus.pool))} on the pool ` +
          `(${fmtRatio(Number(sus.poolVsOne))}). The machine itself, in the same run: two threads of plain allocating JavaScript get ` +
          `through ${fmtRatio(Number(sus.machineTwoVsOne))} the work of one in the same time — the most a 2-worker pool can gain here.`,
      );
    }
  }

  out.push('## Scaling');
  const wk = detail(b, 'scaling', 'workers');
  const topo = detail(b, 'scaling', 'topology');
  const big = detail(b, 'scaling', 'bigRun');
  const exs = detail(b, 'scaling', 'exploration');
  if (wk.length + topo.length + big.length + exs.length === 0) out.push('The scaling suite did not run.');
  else {
    out.push(...charts(input, 'scaling'));
    if (wk.length > 0) {
      out.push('### Against workers');
      out.push(
        'The stress presets, threaded: sva on one small mixed topology (VT-d, AMD, SMMUv3; 3 devices, 6 processes), domains ' +
          '(3 groups of 2 devices, 6 processes, the VFIO user) and stress/mixed.yaml on fewer devices; 1 worker, 2, N, a thread ' +
          'per actor, and 2 workers with the run recorded. Events are delivered messages, steps every scheduling point; timed ' +
          'after the workers started (start-up apart) — but domains, whose tasks start with the workers: its time includes start-up. ' +
          'Fallback: the share of points on the coarse lock (n/a: not counted, by this build or in a deterministic run). The ceiling rows are the ' +
          "machine's own limit: the preset's workload in the deterministic runtime, on one worker thread, then as two copies " +
          'sharing nothing on two threads started together (each built before the clock starts; timed to the last one done). ' +
          "Two copies' speed-up over one is the most any runtime can get from two threads of this model here: each isolate's " +
          "own compiler and GC threads want cores too. Locks · blocked · idle: the shares of the workers' summed time spent " +
          "waiting for a step's lock stripes, idle with only blocked tasks, and idle with nothing to do (the rest ran steps); " +
          'blocked on the most: the point the blocked tasks waited at for the largest share of that blocked time. Findings: ' +
          'what the checkers found in those runs, which go on past a finding (the presets model mainline, whose races they ' +
          'find now and then: races/000-amd-need-sync-skip.yaml).',
      );
      out.push(workersTable(wk, xs));
      out.push(...ceilingSummary(wk));
    }
    const wkNoise = detail(b, 'scaling', 'workers_noise');
    if (wkNoise.length > 0) {
      out.push('### Against workers, beside a busy process');
      out.push('The same runs with one busy-looping process beside them (`bench scaling --noise`): one core taken.');
      out.push(workersTable(wkNoise, xs));
      out.push(...ceilingSummary(wkNoise));
    }
    if (topo.length > 0) {
      out.push('### Against topology size');
      out.push(
        'The sva workload on 4 IOMMUs (VT-d, AMD, SMMUv3, VT-d), 4 processes a device, each binding, DMAing once, unbinding ' +
          'and exiting; 2 workers. Memory: the peak resident set of the process during the run above the resident set before ' +
          'it, over the actors (worker heaps and the shared kernel memory included). Runs go on past findings and list them.',
      );
      out.push(
        mdTable(
          ['devices', 'processes', 'actors', 'events/s', 'steps/s', 'steps', 'run s', 'start-up ms', 'peak RSS MiB', 'KiB/actor', 'findings'],
          topo.map((r) => [cell(r.devices), cell(r.processes), cell(r.actors), cell(r.eventsPerSec), cell(r.stepsPerSec), cell(r.steps), cell(r.seconds, 1), cell(r.startMs), cell(r.rssPeakMiB), cell(r.kibPerActor), cell(r.findings)]),
        ),
      );
    }
    if (big.length > 0) {
      out.push('### Many actors in one run');
      out.push(
        mdTable(
          ['workload', 'actors', 'steps', 'run s', 'start-up ms', 'peak RSS MiB', 'growth MiB', 'KiB/actor'],
          big.map((r) => [cell(r.workload), cell(r.actors), cell(r.steps), cell(r.seconds, 1), cell(r.startMs), cell(r.rssPeakMiB), cell(r.rssGrowthMiB), cell(r.kibPerActor)]),
        ),
      );
    }
    if (exs.length > 0) {
      out.push('### Deterministic exploration against scenario size');
      out.push('Processes on one VT-d device, each binding, DMAing twice and unbinding; random strategy, one thread.');
      out.push(
        mdTable(
          ['processes', 'steps/schedule', 'schedules/s', 'steps/s', 'schedules'],
          exs.map((r) => [cell(r.processes), cell(r.stepsPerSchedule), cell(r.schedulesPerSec), cell(r.stepsPerSec), cell(r.schedules)]),
        ),
      );
    }
  }
  return `${out.join('\n\n')}\n`;
}

/** ", the fastest of 3 rounds, the two modes taking turns" for a sustained row measured in rounds. */
function rounds(sus: Readonly<Record<string, unknown>>): string {
  const n = Number(sus.rounds);
  return Number.isInteger(n) && n > 1 ? `, the fastest of ${n} rounds, the two modes taking turns` : '';
}
