// `iommu-sim matrix`: the policy matrix (issue #7, item 2). For every policy of DESIGN.md's policy table, each of
// its values is run on the same workloads — the race scripts that name the policy (in `policies` or `fix`) and
// the random workload of its model (stress/random.yaml, when there is one) — and the model says how often a
// schedule fails: failing schedules per 1 000 explored, by the kind of their first finding. Beside it, the
// throughput of each value from the benchmark that measures it (e.g. get_domain_for_dev_pasid under RCU vs the
// group mutex), and the ratio the seed argues about. Then each race as written against its fix: findings with the
// bug, none with the fix. Nothing is hard-coded but which parameter each policy is and which benchmark case
// measures it: every figure comes from running the model.
//
// A row changes one policy: everything else a race's `fix` names takes its fixed value (so the row shows
// this policy's effect alone), while the workload and the faults it injects stay as the race wrote them.
// Each configuration is explored as `explore` does it — chunks of executions from scheduler seeds seed, seed+1, …
// (exploreChunk on the exploration pool's worker), the scenario's strategy and depth — chunk after chunk until at
// least `runs` schedules have run. Chunks keep going past a failing execution (explore --keep-going) and count
// every one, so failing/executed is the failure rate of one execution. The chunks of one configuration run in
// order, so the figures do not depend on the pool's timing; configurations run side by side, one per pool thread.
// A configuration whose schedules are long (the random workload: thousands of steps each) stops earlier, at a
// budget of steps, with the schedules it ran.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { Piscina } from 'piscina';
import { KERNEL_USES } from '../workloads/kernel-users.js';
import { DEFAULT_DOMAIN_POLICIES } from '../core/dma-iommu.js';
import { MULTI_DEVICE_PASID, PASID_LOOKUPS } from '../core/iommu.js';
import { IOASID_CHAINS, IOASID_LOCKS } from '../core/ioasid.js';
import { FREE_POLICIES } from '../workloads/ioasid.js';
import { SVA_USERS } from '../core/sva-domain.js';
import { PASID_PLACEMENTS, TEARDOWNS } from '../core/types.js';
import { type Measure, SEED000_POLICIES, type Seed000Policy, seed000Case, seed000Values } from '../../bench/seed000.bench.js';
import { matrixCostRows, matrixMarkdown } from '../report/markdown.js';
import type { BenchRow, FindingRate, FixPair, MatrixCell, MatrixPolicy, MatrixReport, MatrixValue } from '../report/types.js';
import type { Wire } from '../runtime/model.js';
import { PACKAGE_ROOT, workerUrl } from '../runtime/paths.js';
import { addKinds } from '../runtime/run.js';
import type { StrategyName } from '../runtime/scheduler.js';
import type { ChunkResult, ChunkTask } from '../scenario/chunk.js';
import { expectationFor, type Tally, Tallier, verdictOf } from '../scenario/expect.js';
import { loadScenarioFile, scenarioParams } from '../scenario/load.js';
import type { Expectation, ModelName, Scenario } from '../scenario/scenario.js';
import { writeOutput } from './output.js';
import { statusLines } from './status.js';
import { type Column, textTable } from './table.js';
import { hazardClass } from './races.js';

/** What a benchmark measures of a policy: a case per value (bench.json names), their unit, and the ratio [a, b] = a / b. */
export interface Throughput {
  readonly suite: string;
  readonly unit: string;
  readonly cases: Readonly<Record<string, string>>;
  readonly ratio: readonly [string, string];
}

/** A row of DESIGN.md's policy table: the model parameter that switches it, and the benchmark cases that measure it. */
export interface PolicyDef {
  readonly policy: string;
  readonly seed: string;
  readonly model: ModelName;
  readonly param: string;
  readonly values: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
  /** The benchmark cases measuring each value (bench.json names), their unit, and the ratio [a, b] = a / b. */
  readonly throughput?: Throughput;
  /** Other work the choice changes the cost of, each measured the same way. */
  readonly costs?: readonly Throughput[];
}

/**
 * A row of seed 000's behaviours kept as policy values against mainline's (the seed000 suite, bench/seed000.bench.ts):
 * bind+unbind pairs per value, and the further measures the choice costs.
 */
function seed000Row(policy: string, param: Seed000Policy['param'], labels: Readonly<Record<string, string>>): PolicyDef {
  const p = SEED000_POLICIES.find((x) => x.param === param) as Seed000Policy;
  const [mainline, seed] = seed000Values(p);
  const measure = (m: Measure): Throughput => ({
    suite: 'seed000',
    unit: `${MEASURE_UNITS[m]} (vtd)`,
    cases: Object.fromEntries(p.values.map((v) => [v, seed000Case(param, v, m)])),
    ratio: [seed, mainline],
  });
  const [first, ...more] = p.measures.map(measure);
  return { policy, seed: '000', model: 'sva', param, values: p.values, labels, ...(first ? { throughput: first } : {}), costs: more };
}

const MEASURE_UNITS: Readonly<Record<Measure, string>> = {
  'bind+unbind': 'bind+unbind pairs/s',
  'invalidation-commands': 'invalidation commands/s under munmaps',
  'unresolved-page-requests': 'unresolved page requests/s',
};

const KDEVICES = 4;

/** DESIGN.md's policy table, in its order. The values are the models' own lists. */
export const POLICIES: readonly PolicyDef[] = [
  {
    policy: 'PASID allocation',
    seed: '000',
    model: 'sva',
    param: 'pasidAlloc',
    values: PASID_PLACEMENTS,
    labels: { native: 'native (each flavour its own)' },
  },
  {
    policy: 'IOASID lock',
    seed: '003',
    model: 'ioasid',
    param: 'lock',
    values: IOASID_LOCKS,
    throughput: {
      suite: 'ioasid',
      unit: 'ioasid_find/s under the lock (2 readers, 1 updater)',
      cases: { spinlock: 'ioasid_find_spinlock_2readers_1updater', mutex: 'ioasid_find_mutex_2readers_1updater' },
      ratio: ['spinlock', 'mutex'],
    },
  },
  { policy: 'IOASID notifier chain', seed: '003', model: 'ioasid', param: 'chain', values: IOASID_CHAINS },
  {
    policy: 'PASID free on mm exit',
    seed: '003',
    model: 'ioasid',
    param: 'free',
    values: FREE_POLICIES,
    labels: { unbind: 'at unbind', rcu: 'from the MMU-notifier RCU callback', workqueue: 'deferred to a workqueue' },
  },
  {
    policy: 'domain-for-PASID lookup',
    seed: '002',
    model: 'domains',
    param: 'lookup',
    values: PASID_LOOKUPS,
    labels: { mutex: 'under group mutex', rcu: 'RCU xarray' },
    throughput: {
      suite: 'domains',
      unit: 'get_domain_for_dev_pasid/s (2 threads)',
      cases: { rcu: 'get_domain_for_dev_pasid_rcu_2threads', mutex: 'get_domain_for_dev_pasid_mutex_2threads' },
      ratio: ['rcu', 'mutex'],
    },
  },
  { policy: 'SVA domain users', seed: '002', model: 'domains', param: 'users', values: SVA_USERS },
  { policy: 'PASID attach on multi-device groups', seed: '002', model: 'domains', param: 'multiDevicePasid', values: MULTI_DEVICE_PASID },
  {
    policy: 'PASID teardown',
    seed: '000',
    model: 'sva',
    param: 'teardown',
    values: TEARDOWNS,
    labels: { drain: 'wait for drain', quarantine: 'bounded wait, then quarantine', 'at-once': 'free at once' },
  },
  seed000Row('PASID lifetime', 'pasidLife', { mm: "the mm's, freed at __mmdrop (mainline)", unbind: "the bind's, freed at its last unbind" }),
  seed000Row('SVA notifier', 'notifier', { domain: "the SVA domain's (mainline)", bond: "each bond's" }),
  seed000Row('fault handling', 'fault', { callback: 'driver fault callback', protocol: 'device-driver protocol only (mainline)' }),
  {
    policy: 'default DMA domain',
    seed: '001',
    model: 'sva',
    param: 'defaultDomain',
    values: DEFAULT_DOMAIN_POLICIES,
    labels: { 'per-instance': 'per IOMMU instance', 'per-device': 'per device', none: 'none (driver-managed)' },
    throughput: {
      suite: 'domains',
      unit: `DMA-API jobs/s (${KDEVICES} devices, one SMMUv3)`,
      cases: {
        'per-instance': `default-domain/per-instance DMA-API jobs, ${KDEVICES} devices (deterministic)`,
        'per-device': `default-domain/per-device DMA-API jobs, ${KDEVICES} devices (deterministic)`,
      },
      ratio: ['per-instance', 'per-device'],
    },
  },
  {
    policy: 'system PASID',
    seed: '004',
    model: 'sva',
    param: 'kernel',
    values: KERNEL_USES.filter((k) => k.startsWith('syspasid-')),
    labels: { 'syspasid-map': 'option 1: own domain + DMA-API map/unmap', 'syspasid-bind': 'option 2: bind init_mm (trusted devices)' },
    throughput: {
      suite: 'syspasid',
      unit: '4 KiB kernel jobs/s',
      cases: {
        'syspasid-map': 'syspasid/option1 4KiB jobs (deterministic)',
        'syspasid-bind': 'syspasid/option2 4KiB jobs (deterministic)',
      },
      ratio: ['syspasid-bind', 'syspasid-map'],
    },
  },
];

/** The suites the matrix's throughput column comes from. */
export const THROUGHPUT_SUITES: readonly string[] = [...new Set(POLICIES.flatMap((p) => [...(p.throughput ? [p.throughput] : []), ...(p.costs ?? [])].map((t) => t.suite)))];

export interface MatrixWorkload {
  readonly name: string;
  readonly file: string;
  readonly kind: 'race' | 'random';
  readonly scenario: Scenario;
}

export const RANDOM_WORKLOAD = join('stress', 'random.yaml');

/** A scenario file as `iommu-sim races` finds them in races/: YAML, JSON, or a TypeScript module (defineScenario). */
export const RACE_FILE = /\.(ya?ml|json|ts)$/;

/**
 * The workloads: the given scenario files, or every race script in races/ and the random workload
 * (stress/random.yaml; skipped with a note when it is not there). A file that names no `fix` and no policy of
 * the table still counts as a workload of every row of its model only if it is a random workload.
 */
export async function matrixWorkloads(files?: readonly string[]): Promise<{ workloads: MatrixWorkload[]; notes: string[] }> {
  const notes: string[] = [];
  let paths: { file: string; kind: 'race' | 'random' }[];
  if (files && files.length > 0) {
    paths = files.map((f) => ({ file: f, kind: /(^|[/\\])random\.(ya?ml|json|ts)$/.test(f) ? 'random' : 'race' }));
  } else {
    const dir = join(PACKAGE_ROOT, 'races');
    paths = readdirSync(dir)
      .filter((f) => RACE_FILE.test(f))
      .sort()
      .map((f) => ({ file: join(dir, f), kind: 'race' as const }));
    const random = join(PACKAGE_ROOT, RANDOM_WORKLOAD);
    if (existsSync(random)) paths.push({ file: random, kind: 'random' });
    else notes.push(`${RANDOM_WORKLOAD} is not there yet: the random workload is skipped (race scripts only)`);
  }
  const workloads: MatrixWorkload[] = [];
  for (const p of paths) {
    const scenario = await loadScenarioFile(p.file);
    workloads.push({ name: scenario.name, file: p.file, kind: p.kind, scenario });
  }
  return { workloads, notes };
}

/** Does the row of `def` run on `w`? A race that names the policy; a random workload of the same model. */
export function appliesTo(def: PolicyDef, w: MatrixWorkload): boolean {
  if (w.scenario.model !== def.model) return false;
  if (w.kind === 'random') return true;
  return def.param in w.scenario.policies || (w.scenario.fix !== undefined && def.param in w.scenario.fix);
}

/**
 * The workload with this policy set to `value`, everything else its fix names fixed — other policies of the
 * table and the race's own knobs (a forced VFIO takeover, a patch) alike — so that a row shows what this policy
 * alone risks. Injected faults stay as written.
 */
export function cellParams(def: PolicyDef, w: MatrixWorkload, value: string): Record<string, Wire> {
  const p = scenarioParams(w.scenario);
  for (const [param, v] of Object.entries(w.scenario.fix ?? {})) if (param !== def.param) p[param] = v;
  p[def.param] = value;
  return p;
}

interface Config {
  readonly key: string;
  readonly model: string;
  readonly params: Record<string, Wire>;
  readonly strategy: StrategyName;
  readonly depth: number;
  readonly seed: number;
  /**
   * A race against its fix: the expectation its schedules are judged by (expect.ts), and the script's own budget
   * of schedules (explore.runs, at least the matrix's), whatever the step budget.
   */
  judged?: { readonly expect: Expectation; readonly runs: number };
}

function config(w: MatrixWorkload, params: Record<string, Wire>): Config {
  const e = w.scenario.explore;
  // dfs enumerates one space whatever the seed: sample it with PCT instead, as the other scripts are.
  const strategy: StrategyName = e.strategy === 'dfs' ? 'pct' : e.strategy;
  const sorted = Object.fromEntries(Object.entries(params).sort(([a], [b]) => a.localeCompare(b)));
  const key = JSON.stringify([w.scenario.model, sorted, strategy, e.depth, e.seed]);
  return { key, model: w.scenario.model, params, strategy, depth: e.depth, seed: e.seed };
}

type Outcome = { readonly rate: FindingRate; readonly tally: Tally | null } | { readonly error: string };

function rateOf(schedules: number, failing: number, kinds: Readonly<Record<string, number>>): FindingRate {
  const per = (n: number): number => (schedules > 0 ? (1000 * n) / schedules : 0);
  return {
    schedules,
    failing,
    perThousand: per(failing),
    byKind: Object.fromEntries(
      Object.entries(kinds)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => [k, per(n)]),
    ),
    counts: { ...kinds },
  };
}

/** Run each configuration for at least `runs` schedules: its chunks in order, configurations side by side. */
async function runConfigs(
  configs: readonly Config[],
  o: { runs: number; maxSteps: number; chunk: number; workers: number; onProgress?: (done: number, total: number, what: string) => void; signal?: AbortSignal },
): Promise<Map<string, Outcome>> {
  const out = new Map<string, Outcome>();
  const pool = new Piscina({ filename: workerUrl('explore').href, minThreads: o.workers, maxThreads: o.workers });
  let next = 0;
  let done = 0;
  try {
    const lane = async (): Promise<void> => {
      for (let i = next++; i < configs.length && !o.signal?.aborted; i = next++) {
        const c = configs[i] as Config;
        let schedules = 0;
        let failing = 0;
        const kinds: Record<string, number> = {};
        const t0 = performance.now();
        let steps = 0;
        const runs = Math.max(o.runs, c.judged?.runs ?? 0);
        const maxSteps = c.judged ? Number.POSITIVE_INFINITY : o.maxSteps;
        const tally = c.judged ? new Tallier(c.judged.expect) : null;
        try {
          // Deterministic either way: the step count of a chunk depends on its seed, not on the pool's timing.
          // Chunks of consecutive seeds, as explore runs them: execution i has seed c.seed + i.
          while (schedules < runs && steps < maxSteps && !o.signal?.aborted) {
            const task: ChunkTask = {
              model: c.model,
              params: c.params,
              strategy: c.strategy,
              depth: c.depth,
              seed: c.seed + schedules,
              runs: Math.min(o.chunk, runs - schedules),
              ...(c.judged ? { expect: c.judged.expect } : {}),
              keepGoing: true,
            };
            const r = (await pool.run(task)) as ChunkResult;
            schedules += r.executions;
            // The chunk reports one execution's steps (its first failing one, or its last); the others are of the
            // same workload.
            steps += r.steps * r.executions;
            failing += r.failing;
            addKinds(kinds, r.failingKinds);
            tally?.merge(r.tally);
          }
          if (o.signal?.aborted) out.set(c.key, { error: 'interrupted' });
          else out.set(c.key, { rate: { ...rateOf(schedules, failing, kinds), seconds: (performance.now() - t0) / 1000 }, tally: tally?.tally() ?? null });
        } catch (err) {
          out.set(c.key, { error: (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? 'error' });
        }
        o.onProgress?.(++done, configs.length, c.model);
      }
    };
    await Promise.all(Array.from({ length: o.workers }, lane));
  } finally {
    await pool.destroy();
  }
  return out;
}

function pooled(rates: readonly FindingRate[]): FindingRate | null {
  if (rates.length === 0) return null;
  const schedules = rates.reduce((a, r) => a + r.schedules, 0);
  const failing = rates.reduce((a, r) => a + r.failing, 0);
  const kinds: Record<string, number> = {};
  for (const r of rates) addKinds(kinds, r.counts);
  return { ...rateOf(schedules, failing, kinds), seconds: rates.reduce((a, r) => a + (r.seconds ?? 0), 0) };
}

function describe(p: Readonly<Record<string, Wire>>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

/** Steps a configuration may take at most (a few seconds of one thread), whatever --runs says. */
export const DEFAULT_MAX_STEPS = 150_000;

export interface MatrixOptions {
  readonly runs: number;
  /** …or fewer, once a configuration's schedules have taken this many steps (long workloads: the random one). */
  readonly maxSteps?: number;
  readonly chunk?: number;
  readonly workers?: number;
  readonly files?: readonly string[];
  /** Benchmark results to take throughput from (null: no throughput column). */
  readonly bench: { readonly results: readonly BenchRow[]; readonly from: string } | null;
  readonly onProgress?: (done: number, total: number, what: string) => void;
  /** Ctrl-C: the configurations not finished are reported as interrupted. */
  readonly signal?: AbortSignal;
}

export async function runMatrix(o: MatrixOptions): Promise<MatrixReport> {
  const t0 = performance.now();
  const chunk = Math.max(1, Math.min(o.chunk ?? 16, o.runs));
  const workers = o.workers ?? availableParallelism();
  const { workloads, notes } = await matrixWorkloads(o.files);
  const configs = new Map<string, Config>();
  const need = (w: MatrixWorkload, params: Record<string, Wire>, judged?: Config['judged']): string => {
    const c = configs.get(config(w, params).key) ?? config(w, params);
    // A cell reads the rates only: it shares the configuration of a race's variant, judged.
    if (judged) c.judged = judged;
    configs.set(c.key, c);
    return c.key;
  };
  // Which configuration each cell and each fix pair is (configurations shared between them run once).
  const plan = POLICIES.map((def) => {
    const ws = workloads.filter((w) => appliesTo(def, w));
    return { def, ws, keys: def.values.map((v) => ws.map((w) => need(w, cellParams(def, w, v)))) };
  });
  const pairs = workloads
    .filter((w) => w.kind === 'race' && w.scenario.fix)
    .map((w) => ({
      w,
      bug: need(w, scenarioParams(w.scenario), { expect: expectationFor(w.scenario, false), runs: w.scenario.explore.runs }),
      fix: need(w, scenarioParams(w.scenario, true), { expect: expectationFor(w.scenario, true), runs: w.scenario.explore.runs }),
    }));
  const maxSteps = o.maxSteps ?? DEFAULT_MAX_STEPS;
  const outcomes = await runConfigs([...configs.values()], {
    runs: o.runs,
    maxSteps,
    chunk,
    workers,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  const outcome = (key: string): Outcome => outcomes.get(key) ?? { error: 'not run' };

  const hz = (name: string | undefined): number | undefined =>
    name === undefined ? undefined : o.bench?.results.find((r) => r.name === name)?.hz;
  const policies: MatrixPolicy[] = plan.map(({ def, ws, keys }) => {
    if (ws.length === 0) notes.push(`${def.policy}: no workload names ${def.param} (no race script, no random ${def.model} workload)`);
    const values: MatrixValue[] = def.values.map((value, vi) => {
      const cells: MatrixCell[] = ws.map((w, wi) => {
        const oc = outcome(keys[vi]?.[wi] ?? '');
        return 'rate' in oc ? { workload: w.name, rate: oc.rate } : { workload: w.name, error: oc.error };
      });
      const rates = cells.flatMap((c) => (c.rate ? [c.rate] : []));
      const name = def.throughput?.cases[value];
      const h = hz(name);
      const costs = (def.costs ?? []).flatMap((t) => {
        const c = t.cases[value];
        const x = hz(c);
        return c !== undefined && x !== undefined ? [{ unit: t.unit, case: c, hz: x }] : [];
      });
      return {
        value,
        label: def.labels?.[value] ?? value,
        total: pooled(rates),
        cells,
        throughput: name !== undefined && h !== undefined ? { case: name, hz: h } : null,
        ...(costs.length > 0 ? { costs } : {}),
      };
    });
    const ratioOf = (t: Throughput): { name: string; value: number } | null => {
      const [a, b] = t.ratio;
      const x = hz(t.cases[a]);
      const y = hz(t.cases[b]);
      return x !== undefined && y !== undefined ? { name: `${a} vs ${b}`, value: x / y } : null;
    };
    const ratio: MatrixPolicy['ratio'] = def.throughput ? ratioOf(def.throughput) : null;
    const costRatios = (def.costs ?? []).flatMap((t) => {
      const r = ratioOf(t);
      return r ? [{ unit: t.unit, ...r }] : [];
    });
    return {
      policy: def.policy,
      seed: def.seed,
      model: def.model,
      param: def.param,
      unit: def.throughput?.unit ?? null,
      values,
      ratio,
      ...(costRatios.length > 0 ? { costRatios } : {}),
      workloads: ws.map((w) => w.name),
    };
  });

  const fixPairs: FixPair[] = pairs.map(({ w, bug, fix }) => fixPair(w, outcome(bug), outcome(fix)));

  return {
    date: new Date().toISOString(),
    node: process.version,
    runs: o.runs,
    maxSteps,
    chunk,
    workers,
    seconds: (performance.now() - t0) / 1000,
    workloads: workloads.map((w) => ({ name: w.name, file: basename(w.file), model: w.scenario.model, kind: w.kind })),
    notes,
    policies,
    fixPairs,
    throughputFrom: o.bench?.from ?? null,
  };
}

/** A race against its fix, each variant judged by its expectation over the script's budget (expect.ts). */
function fixPair(w: MatrixWorkload, b: Outcome, f: Outcome): FixPair {
  const s = w.scenario;
  const bugTally = 'tally' in b ? b.tally : null;
  const fixTally = 'tally' in f ? f.tally : null;
  const error = 'error' in b ? `bug: ${b.error}` : 'error' in f ? `fix: ${f.error}` : null;
  const bugVerdict = bugTally ? verdictOf(expectationFor(s, false), bugTally) : null;
  const fixVerdict = fixTally ? verdictOf(expectationFor(s, true), fixTally) : null;
  let verdict: string;
  if (error || !bugVerdict || !fixVerdict) verdict = 'error';
  else if (!bugVerdict.ok) verdict = `BUG VARIANT FAILED: ${bugVerdict.lines.join('; ')}`;
  else if (!fixVerdict.ok) verdict = `FIX VARIANT FAILED: ${fixVerdict.lines.join('; ')}`;
  else verdict = 'ok';
  const expects = s.expect.findings;
  return {
    workload: w.name,
    seed: s.seed ?? null,
    bug: describe(s.policies) || describe(scenarioParams(s)),
    fix: describe(s.fix ?? {}),
    expects,
    bugRate: 'rate' in b ? b.rate : null,
    fixRate: 'rate' in f ? f.rate : null,
    bugShowing: bugTally?.shows ?? null,
    bugSchedules: bugTally?.schedules ?? null,
    hazard: expects.length > 0 && bugTally ? hazardClass(bugTally.shows, bugTally.schedules) : null,
    error,
    verdict,
  };
}

function fmtRate(r: FindingRate | null | undefined): string {
  if (!r) return 'n/a';
  // The most frequent kind first, ties by name: deterministic whatever order the workers reported them in.
  const kinds = Object.entries(r.byKind)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k} ${v.toFixed(0)}`)
    .join(', ');
  return `${r.perThousand.toFixed(1)}${kinds ? ` (${kinds})` : ''}`;
}

function fmtHz(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M/s`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k/s`;
  return `${n.toFixed(1)}/s`;
}

const right = 'right' as const;
const POLICY_COLUMNS: readonly Column[] = [
  { head: 'policy' },
  { head: 'value', width: 11 },
  { head: 'workloads', width: 9, align: right },
  { head: 'schedules', width: 9, align: right },
  { head: 'per 1000', width: 25 },
  { head: 'errors', width: 6, align: right },
  { head: 'throughput', width: 10, align: right },
  { head: 'ratio', width: 20 },
];
const COST_COLUMNS: readonly Column[] = [{ head: 'policy', width: 22 }, { head: 'value', width: 12 }, { head: 'measure' }, { head: 'throughput', width: 10, align: right }, { head: 'ratio', width: 24 }];
const FIX_COLUMNS: readonly Column[] = [
  { head: 'race', width: 34 },
  { head: 'fix', width: 18 },
  { head: 'class', width: 13 },
  { head: 'bug per 1000', width: 14 },
  { head: 'fix per 1000', width: 14 },
  { head: 'verdict' },
];

/** The matrix as terminal tables of 120 columns: one row per (policy, value), what else a choice costs, the fix pairs. */
export function matrixTables(m: MatrixReport): string[] {
  const out = [`policy matrix: failing schedules per 1 000 (by kind of first finding), ≥ ${m.runs} schedules per configuration`];
  const rows = m.policies
    .filter((p) => p.workloads.length > 0)
    .flatMap((p) =>
      p.values.map((v, i) => [
        i === 0 ? `${p.policy} (${p.seed})` : '',
        v.value,
        v.cells.length,
        v.total?.schedules ?? 0,
        fmtRate(v.total),
        v.cells.filter((c) => c.error).length,
        v.throughput ? fmtHz(v.throughput.hz) : '—',
        i === 0 && p.ratio ? `${p.ratio.name}: ${p.ratio.value.toFixed(2)}×` : '',
      ]),
    );
  out.push(textTable(POLICY_COLUMNS, rows));
  const costs = matrixCostRows(m);
  if (costs.length > 0) {
    out.push('', 'what else a choice costs (the same benchmark, another measure)');
    const costRows = costs.map((r) => [r.first ? `${r.policy} (${r.seed})` : '', r.value, r.first ? r.unit : '', r.hz === null ? '—' : fmtHz(r.hz), r.ratio ? `${r.ratio.name}: ${r.ratio.value.toFixed(2)}×` : '']);
    out.push(textTable(COST_COLUMNS, costRows));
  }
  out.push('', 'race scripts: as written (bug) against their fix');
  out.push(textTable(FIX_COLUMNS, m.fixPairs.map((f) => [f.workload, f.fix, f.hazard ?? '', fmtRate(f.bugRate), fmtRate(f.fixRate), f.verdict])));
  return out;
}

/** The matrix's tables on stdout, then its notes. */
export function printMatrix(m: MatrixReport): void {
  console.log(`\n${matrixTables(m).join('\n')}`);
  for (const n of m.notes) for (const l of statusLines('note', n)) console.log(l);
}

/** Write DIR/matrix.json and DIR/matrix.md; false when one could not be (remembered for the CLI, src/cli/output.ts). */
export function writeMatrix(m: MatrixReport, dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
  } catch {}
  const json = writeOutput('--out', join(dir, 'matrix.json'), `${JSON.stringify(m, null, 2)}\n`);
  return writeOutput('--out', join(dir, 'matrix.md'), matrixMarkdown(m)) && json;
}
