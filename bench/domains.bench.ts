// The domains suite (seeds 002 and 001, drivers/iommu/iommu.c): what domains cost. iommu_get_domain_for_dev_pasid
// under RCU ("RCU out of the xarray") vs under group->mutex, by two threads looking up the same {device, PASID}
// at once (the threaded runtime, 2 workers, one lookup loop each, like the kernel suite's xa_load case) — ratio
// `get_domain_rcu_vs_mutex`; and default DMA domains per IOMMU instance vs per device, as DMA-API jobs per
// second (bench/sva.bench.ts) — ratio `default_domain_per_instance_vs_per_device`. Seed 004's system-PASID
// options have their own suite (bench/syspasid.bench.ts).
//
// The suite is a list of case builders (DOMAINS_CASE_BUILDERS): each measures its cases and returns their
// results and the ratios between them, so more cases (e.g. the default domains') are added by pushing a builder.
// runThreadedDomainsCase measures one case of the `domains` workload's `bench` script.
import '../src/workloads/index.js';
import type { Wire } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';
import { ThreadedRuntime } from '../src/runtime/threaded.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { type BenchResult, type Budget, budgetOf, measure, profileOf, ratio, type SuiteOptions, type SuiteResult } from './measure.js';
import { defaultDomainResults } from './sva.bench.js';

/** What a case builder is given: the suite's options (quick: a smoke run) and its progress callback. */
export type DomainsBuildOptions = SuiteOptions;

/** A builder measures its cases and names the ratios between them (the shape syspasidResults has too). */
export type DomainsCaseBuilder = (opts: DomainsBuildOptions) => Promise<{ results: BenchResult[]; ratios: Record<string, number> }>;

/**
 * A lookup-loop case of the `domains` workload's bench script in the threaded runtime: `drivers` driver actors
 * sharded over min(drivers, 2) workers, each running `n` lookups per iteration; the rate is lookups per second
 * over all of them. The run must stay clean (no finding, every lookup found the domain, teardown leaves nothing).
 */
export async function runThreadedDomainsCase(
  name: string,
  params: Readonly<Record<string, Wire>>,
  drivers: number,
  n: number,
  budget: Budget,
): Promise<BenchResult> {
  const workload = buildWorkload('domains', { ...params, script: 'bench', drivers });
  const rt = new ThreadedRuntime({ workload, seed: 1, workers: Math.min(drivers, 2), keepTrace: false });
  const go = Array.from({ length: drivers }, (_, to) => ({ to, event: { type: 'go', n } }));
  let result: BenchResult;
  try {
    // The workers start, build the workload and run its setup (the domain attached) before the clock starts.
    await rt.runToQuiescence([]);
    result = await measure(budget, name, drivers * n, () => rt.runToQuiescence(go));
    await rt.runToQuiescence([{ to: 0, event: { type: 'teardown' } }]);
  } catch (err) {
    await rt.stop();
    throw err;
  }
  clean(name, await rt.finish(), drivers * n);
  return result;
}

/** A benchmark of a broken run is meaningless: throw unless the run was clean and did what it measured. */
function clean(name: string, r: RunResult, perIteration: number): void {
  const c = r.check.counters;
  const why = [...r.check.problems, ...r.findings.map((f) => `${f.kind}: ${f.title}`)];
  if (r.blocked.length > 0) why.push(`${r.blocked.length} blocked tasks`);
  const lookups = c.lookups ?? 0;
  if (!(lookups > 0 && lookups % perIteration === 0)) why.push(`${lookups} lookups, not a multiple of ${perIteration}`);
  if (why.length > 0) throw new Error(`bench ${name}: the run is not clean: ${why.join('; ')}`);
}

/** get_domain_for_dev_pasid by 2 threads, under RCU and under group->mutex. */
export const getDomainCases: DomainsCaseBuilder = async (opts) => {
  const { onCase } = opts;
  const profile = profileOf(opts);
  const budget = budgetOf(profile);
  const n = profile === 'quick' ? 2_000 : 20_000;
  const results: BenchResult[] = [];
  for (const lookup of ['rcu', 'mutex'] as const) {
    const name = `get_domain_for_dev_pasid_${lookup}_2threads`;
    onCase?.(name);
    results.push(await runThreadedDomainsCase(name, { lookup }, 2, n, budget));
  }
  return {
    results,
    ratios: { get_domain_rcu_vs_mutex: ratio(results, 'get_domain_for_dev_pasid_rcu_2threads', 'get_domain_for_dev_pasid_mutex_2threads') },
  };
};

/** The suite's builders, in order: push one to add cases and their ratios to `iommu-sim bench domains`. */
// Seed 001's default DMA domains are measured on the IOMMU model (bench/sva.bench.ts) and reported here.
export const DOMAINS_CASE_BUILDERS: DomainsCaseBuilder[] = [getDomainCases, defaultDomainResults];

export async function domainsSuite(
  opts: SuiteOptions,
  builders: readonly DomainsCaseBuilder[] = DOMAINS_CASE_BUILDERS,
): Promise<SuiteResult> {
  const results: BenchResult[] = [];
  const ratios: Record<string, number> = {};
  for (const build of builders) {
    const r = await build(opts);
    results.push(...r.results);
    Object.assign(ratios, r.ratios);
  }
  return { suite: 'domains', results, ratios };
}
