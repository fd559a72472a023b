// The seed000 suite: what each of seed 000's behaviours that the one model keeps as a policy value costs against
// mainline's — the PASID's life (`pasidLife`: the mm's until __mmdrop, or the bind's, freed at its last unbind),
// the MMU notifier's owner (`notifier`: the SVA domain, or each bond) and the driver's fault callback (`fault`:
// mainline's protocol only, or seed 000's callback for a page request the core could not resolve). Mainline's value
// is the sva preset's default. Each policy is measured by the cases its choice changes the work of, seed 000's
// value beside mainline's in one group (the runs of the two alternate: drift and GC fall on each alike, as in the
// sva suite), everything else at its default: bind+unbind pairs for
// every policy, invalidation commands under munmaps for the notifier (whose notifier runs them), and unresolved
// page requests for the fault callback (DMA to a page no vma covers: the core answers invalid, the callback is
// told first). The policy matrix's rows take their throughput from here (src/cli/matrix.ts).
import { FAULT_HANDLINGS, PASID_LIVES, SVA_NOTIFIERS } from '../src/core/types.js';
import type { Flavour } from '../src/hw/vendor.js';
import { SVA_DEFAULTS, type SvaParams } from '../src/workloads/presets/sva.js';
import type { BenchResult, SuiteOptions, SuiteResult } from './measure.js';
import { profileOf, ratio } from './measure.js';
import { bindCase, type Case, expect, measureGroup, munmapCase, PLANS, SIZES, warmUp } from './sva.bench.js';

const FLAVOUR: Flavour = 'vtd';

/** A measure of a policy's cost: a case of the sva workload, with the policy's value set on it. */
export type Measure = 'bind+unbind' | 'invalidation-commands' | 'unresolved-page-requests';

/** Each policy: its parameter, its values (the model's own list), and what its choice costs. */
export const SEED000_POLICIES = [
  { param: 'pasidLife', values: PASID_LIVES, measures: ['bind+unbind'] },
  { param: 'notifier', values: SVA_NOTIFIERS, measures: ['bind+unbind', 'invalidation-commands'] },
  { param: 'fault', values: FAULT_HANDLINGS, measures: ['bind+unbind', 'unresolved-page-requests'] },
] as const satisfies readonly { param: keyof SvaParams; values: readonly string[]; measures: readonly Measure[] }[];

export type Seed000Policy = (typeof SEED000_POLICIES)[number];

/** Mainline's value (the sva preset's default) and seed 000's (the other one). */
export function seed000Values(p: Seed000Policy): readonly [string, string] {
  const mainline = String(SVA_DEFAULTS[p.param]);
  const seed = (p.values as readonly string[]).find((v) => v !== mainline);
  if (seed === undefined || !(p.values as readonly string[]).includes(mainline)) throw new Error(`seed000: ${p.param} has no value besides mainline's ${mainline}`);
  return [mainline, seed];
}

/** The bench name of a case: `seed000/notifier=bond invalidation-commands, vtd (deterministic)`. */
export function seed000Case(param: string, value: string, measure: Measure): string {
  return `seed000/${param}=${value} ${measure}, ${FLAVOUR} (deterministic)`;
}

/** The ratio of seed 000's value to mainline's for one measure: `seed000/notifier bond vs domain (bind+unbind)`. */
export function seed000Ratio(param: string, values: readonly [string, string], measure: Measure): string {
  return `seed000/${param} ${values[1]} vs ${values[0]} (${measure})`;
}

/** Warm-up of the whole model before the first group, in ms of runs: even a quick run's ratios (the matrix's) would
 * otherwise set a cold first case against a warmer second one. */
const WARMUP_MS = { quick: 1_000, report: 1_000, full: 2_000 } as const;
/** DMAs of the unresolved-page-request case, per profile. */
const FAULT_DMAS = { quick: 30, report: 200, full: 300 } as const;
/** A page number past the process's vmas (the sva preset maps `pages` pages, 8 by default, from 0). */
const UNMAPPED_VPN = 1000;

/**
 * DMAs a burst: the device waits for a burst's faults to be answered before the next. A longer burst overflows
 * the page request queue, and the hardware then answers requests itself — another path, taken more or less often
 * by each policy's timing, which the ratio would measure instead.
 */
const BURST = 10;

function unresolvedCase(n: number): Case {
  const name = 'unresolved page requests';
  // One process: bind, n DMAs to a page no vma covers (each a translation fault, a page request, a response), unbind.
  const bursts = Array.from({ length: Math.ceil(n / BURST) }, () => ({ op: 'dma', n: BURST, vpn: UNMAPPED_VPN, wait: true }));
  const total = bursts.length * BURST;
  const steps = JSON.stringify([[{ op: 'bind' }, ...bursts, { op: 'unbind' }]]);
  return {
    name,
    runtime: 'deterministic',
    params: { iommus: FLAVOUR, devices: 1, processes: 1, steps },
    unit: 'page_request_groups',
    verify: (c) =>
      expect(
        name,
        c.dmas === total && c.dma_faults === total && c.page_request_groups === total && c.page_responses === total,
        `expected ${total} DMAs, each a fault its handler answered`,
        c,
      ),
  };
}

function measureCase(measure: Measure, opts: SuiteOptions): Case {
  const profile = profileOf(opts);
  if (measure === 'bind+unbind') return bindCase(FLAVOUR, 'deterministic', SIZES[profile].bindRounds.deterministic);
  if (measure === 'invalidation-commands') return munmapCase(FLAVOUR, 'deterministic', SIZES[profile].munmaps);
  return unresolvedCase(FAULT_DMAS[profile]);
}

/** The case with the policy's value set, named for it; its checks stay the measure's own. */
function withPolicy(c: Case, param: string, value: string, measure: Measure): Case {
  const name = seed000Case(param, value, measure);
  return {
    ...c,
    name,
    params: { ...c.params, [param]: value },
    verify: (counters) => {
      try {
        c.verify(counters);
      } catch (err) {
        throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
}

export async function seed000Suite(opts: SuiteOptions): Promise<SuiteResult> {
  const plan = PLANS[profileOf(opts)].deterministic;
  opts.onCase?.('warm-up');
  await warmUp(WARMUP_MS[profileOf(opts)]);
  const results: BenchResult[] = [];
  const ratios: Record<string, number> = {};
  for (const p of SEED000_POLICIES) {
    const values = seed000Values(p);
    for (const measure of p.measures) {
      const base = measureCase(measure, opts);
      opts.onCase?.(`${p.param}: ${values.join(' and ')}, ${measure}`);
      results.push(...(await measureGroup(values.map((v) => withPolicy(base, p.param, v, measure)), plan, opts.onCase)));
      ratios[seed000Ratio(p.param, values, measure)] = ratio(results, seed000Case(p.param, values[1], measure), seed000Case(p.param, values[0], measure));
    }
  }
  return { suite: 'seed000', results, ratios };
}
