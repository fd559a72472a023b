// The syspasid suite (seed 004): kernel DMA with a system PASID, option 1 (its own DMA domain, a map/unmap and
// an IOTLB flush per job) against option 2 (init_mm bound once, trusted devices only), as jobs per second of a
// DSA-like kernel user — ratio `syspasid_opt2_vs_opt1`. Split out of the domains suite so that `bench syspasid`
// (and the policy matrix's "system PASID" row) runs it alone, in its own process.
import type { SuiteOptions, SuiteResult } from './measure.js';
import { syspasidResults } from './sva.bench.js';

export async function syspasidSuite(opts: SuiteOptions): Promise<SuiteResult> {
  const r = await syspasidResults(opts);
  return { suite: 'syspasid', results: r.results, ratios: r.ratios };
}
