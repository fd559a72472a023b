// Counters of what the model did (binds, DMAs, page requests, invalidation commands…), in shared memory so that
// every thread adds to the same ones and the run's summary reads them from the final memory. Declared up
// front, identically in every thread.
import type { Kernel } from '../kernel/kernel.js';
import type { WordRange } from '../runtime/model.js';

export const STATS = [
  'binds',
  'bind_failures',
  'unbinds',
  'releases',
  'dmas',
  'dma_faults',
  'dma_aborted',
  'iotlb_hits',
  'iotlb_misses',
  'atc_hits',
  'page_requests',
  'page_request_groups',
  'page_responses',
  'invalidations',
  'commands',
  'munmaps',
  'exits',
  'quarantined',
  'kernel_jobs',
  'kernel_job_faults',
  'dma_maps',
  'dma_unmaps',
  'probe_failures',
  'vfio_takeovers',
  'vfio_maps',
  'vfio_refused',
  'drm_switches',
  'exposed_pages',
  'bind_task_bound',
  'bind_task_esrch',
  'stray_dmas_landed',
  'stray_dmas_faulted',
] as const;
export type StatName = (typeof STATS)[number];

const INDEX: Readonly<Record<StatName, number>> = Object.fromEntries(STATS.map((s, i) => [s, i])) as Record<StatName, number>;

export class Stats {
  private readonly off: number;

  constructor(private readonly k: Kernel) {
    this.off = k.statics.alloc(STATS.length, 'sva stats');
  }

  /** Add n (call inside a performed point or a sequenced delivery). */
  add(name: StatName, n = 1): void {
    Atomics.add(this.k.i32, this.addr(name), n);
  }

  /** The counter's word (a step that adds to it writes it: its footprint). */
  addr(name: StatName): number {
    return this.k.mem.statics + this.off + INDEX[name];
  }

  /** The counter's word (its absolute offset): a step that adds to it declares it written in its footprint. */
  wordOf(name: StatName): number {
    return this.k.mem.statics + this.off + INDEX[name];
  }

  /**
   * The counters' words: only ever added to (Atomics.add) and read when the run has ended (`read`), so the
   * threaded runtime orders no step by them (Workload.unorderedWords), as percpu counters order nothing.
   * `statics`: the static region's offset (staticsOffset: the workload is built before its run's memory is).
   */
  words(statics: number): WordRange {
    const from = statics + this.off;
    return { from, to: from + STATS.length };
  }

  /** The counters, from the run's memory or from a final copy of it (`shared` and the static region's offset). */
  read(shared: Int32Array, statics: number): Record<StatName, number> {
    const out = {} as Record<StatName, number>;
    STATS.forEach((s, i) => {
      out[s] = shared[statics + this.off + i] as number;
    });
    return out;
  }
}
