// The ioasid suite (issue #5 part 1, seed 003; src/core/ioasid.ts after drivers/iommu/ioasid.c): what the IOASID
// allocator costs in the model.
// - alloc/free of a whole ID space: one task of the `ioasid` workload (mode alloc-free, spinlock + atomic chain,
//   no subscriber on the chain) allocates every ID of the system set — 1 048 575 with the 20-bit capacity, a
//   2^12 space with --quick — then a second task frees them all, in the deterministic runtime. The two phases are
//   timed apart by a scheduler that notes when the second task takes its first step: allocs/s and frees/s.
// - ioasid_find on its RCU fast path vs under the allocator's mutex (the indirection the thread would keep off
//   the fast path), as bench/kernel.bench.ts measures xa_load: threaded runtime, 2 workers, three driver actors
//   (one updater republishing private data with ioasid_set_data, two readers); each iteration injects `go n` and
//   waits until the run is quiescent; finds per second by the two readers. Every run must be clean (no finding,
//   every lookup right, every ID allocated and freed), otherwise the suite throws.
// - ioasid_find under the allocator lock taken as a spinlock vs as a mutex (seed 003's patch 7 turns the one into
//   the other): the same find-lock loops, `ioasid_find_spinlock_vs_mutex` — what the mutex costs the readers.
import '../src/workloads/index.js';
import type { Wire } from '../src/runtime/model.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { RunResult } from '../src/runtime/result.js';
import type { Choice, Scheduler } from '../src/runtime/scheduler.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { ThreadedRuntime } from '../src/runtime/threaded.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import {
  type BenchResult,
  type Budget,
  FULL_BUDGET,
  measure,
  type Profile,
  profileOf,
  QUICK_BUDGET,
  REPORT_BUDGET,
  ratio,
  type SuiteOptions,
  type SuiteResult,
} from './measure.js';

interface Sizes {
  /** ID space of the alloc/free case (2^bits - 1 IDs), and of its warm-up run. */
  readonly bits: number;
  readonly warmupBits: number;
  /** Measured runs of the alloc/free case. */
  readonly runs: number;
  /** Lookups per reader per iteration of the find cases. */
  readonly finds: number;
  readonly budget: Budget;
}

const FULL: Sizes = { bits: 20, warmupBits: 16, runs: 2, finds: 20_000, budget: FULL_BUDGET };
const QUICK: Sizes = { bits: 12, warmupBits: 10, runs: 1, finds: 2_000, budget: QUICK_BUDGET };
// bench:report: the whole 20-bit space once (the cycle the report must show), a short warm-up.
const REPORT: Sizes = { bits: 20, warmupBits: 12, runs: 1, finds: 20_000, budget: REPORT_BUDGET };
const SIZES: Readonly<Record<Profile, Sizes>> = { quick: QUICK, report: REPORT, full: FULL };
/** ID space of the find cases: only 64 IDs are looked up, the space just has to hold them. */
const FIND_BITS = 12;

/** The random scheduler, with the wall-clock times of the run's first step, of the drain task's first, and of its end. */
class PhaseClock implements Scheduler {
  readonly name = 'random';
  private readonly inner: RandomScheduler;
  private first: number | undefined;
  start = 0;
  switched = 0;
  end = 0;

  constructor(seed: number) {
    this.inner = new RandomScheduler(seed);
  }

  newExecution(): boolean {
    return this.inner.newExecution();
  }

  next(enabled: readonly Choice[], step: number): Choice {
    const c = this.inner.next(enabled);
    if (this.first === undefined) {
      this.first = c.receiver;
      this.start = performance.now();
    } else if (this.switched === 0 && c.receiver !== this.first) {
      this.switched = performance.now();
    }
    void step;
    return c;
  }

  endExecution(): void {
    this.end = performance.now();
  }

  describe(): string {
    return this.inner.describe();
  }
}

function clean(name: string, r: RunResult, check: (c: Readonly<Record<string, number>>) => string | undefined): void {
  const why = [...r.check.problems, ...r.findings.map((f) => `${f.kind}: ${f.title}`), ...(r.blocked.length > 0 ? [`${r.blocked.length} blocked tasks`] : [])];
  const bad = check(r.check.counters);
  if (bad) why.push(bad);
  if (why.length > 0) throw new Error(`bench ${name}: the run is not clean: ${why.join('; ')} (counters ${JSON.stringify(r.check.counters)})`);
}

interface PhaseSample {
  readonly allocs: number;
  readonly frees: number;
  readonly allocMs: number;
  readonly freeMs: number;
}

function allocFreeOnce(bits: number): PhaseSample {
  const ids = 2 ** bits - 1;
  const workload = buildWorkload('ioasid', { mode: 'alloc-free', bits, subscribers: false });
  const clock = new PhaseClock(1);
  clock.newExecution();
  const r = runDeterministic({ workload, seed: 1, scheduler: clock });
  clean(`ioasid alloc/free (${bits} bits)`, r, (c) =>
    c.bench_allocs === ids && c.bench_frees === ids ? undefined : `expected ${ids} IDs allocated and freed`,
  );
  if (!(clock.switched > clock.start && clock.end > clock.switched)) throw new Error('bench ioasid alloc/free: the phases were not seen');
  return { allocs: ids, frees: ids, allocMs: clock.switched - clock.start, freeMs: clock.end - clock.switched };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** hz the median of the runs' rates, meanNs over all runs, p99Ns the slowest run's time per unit (few runs). */
function phaseResult(name: string, samples: readonly { units: number; ms: number }[]): BenchResult {
  const units = samples.reduce((a, s) => a + s.units, 0);
  const ms = samples.reduce((a, s) => a + s.ms, 0);
  return {
    name,
    hz: median(samples.map((s) => (s.units * 1000) / s.ms)),
    meanNs: (ms * 1e6) / units,
    p99Ns: Math.max(...samples.map((s) => (s.ms * 1e6) / s.units)),
    samples: samples.length,
  };
}

async function findCase(
  name: string,
  mode: 'find-rcu' | 'find-lock',
  n: number,
  budget: Budget,
  lock: 'spinlock' | 'mutex' = 'mutex',
): Promise<BenchResult> {
  const params: Record<string, Wire> = { mode, bits: FIND_BITS, lock, subscribers: false, drivers: 3, iterations: 0 };
  const rt = new ThreadedRuntime({ workload: buildWorkload('ioasid', params), seed: 1, workers: 2, keepTrace: false });
  // Driver 0 runs the updater; drivers 1 and 2 read: ioasid_find calls per second by the two readers.
  const go = [0, 1, 2].map((to) => ({ to, event: { type: 'go', n } }));
  let result: BenchResult;
  try {
    // Nothing injected: the workers start, build the workload and run its setup (the IDs to look up).
    await rt.runToQuiescence([]);
    result = await measure(budget, name, 2 * n, () => rt.runToQuiescence(go));
  } catch (err) {
    await rt.stop();
    throw err;
  }
  clean(name, await rt.finish(), (c) => (c.finds !== undefined && c.finds > 0 && c.find_mismatch === 0 ? undefined : 'lookups missing or wrong'));
  return result;
}

export async function ioasidSuite(opts: SuiteOptions): Promise<SuiteResult> {
  const sz = SIZES[profileOf(opts)];
  opts.onCase?.(`alloc/free warm-up (${sz.warmupBits} bits)`);
  allocFreeOnce(sz.warmupBits);
  const samples: PhaseSample[] = [];
  for (let i = 0; i < sz.runs; i++) {
    opts.onCase?.(`alloc/free of ${2 ** sz.bits - 1} IOASIDs (${sz.bits} bits), run ${i + 1} of ${sz.runs}`);
    samples.push(allocFreeOnce(sz.bits));
    // Let the progress line and Ctrl-C through between long runs.
    await new Promise((r) => setImmediate(r));
  }
  const results: BenchResult[] = [
    phaseResult(
      'ioasid_alloc_full_space',
      samples.map((s) => ({ units: s.allocs, ms: s.allocMs })),
    ),
    phaseResult(
      'ioasid_free_full_space',
      samples.map((s) => ({ units: s.frees, ms: s.freeMs })),
    ),
  ];
  opts.onCase?.('ioasid_find_rcu_2readers_1updater');
  results.push(await findCase('ioasid_find_rcu_2readers_1updater', 'find-rcu', sz.finds, sz.budget));
  opts.onCase?.('ioasid_find_mutex_2readers_1updater');
  results.push(await findCase('ioasid_find_mutex_2readers_1updater', 'find-lock', sz.finds, sz.budget));
  opts.onCase?.('ioasid_find_spinlock_2readers_1updater');
  results.push(await findCase('ioasid_find_spinlock_2readers_1updater', 'find-lock', sz.finds, sz.budget, 'spinlock'));
  return {
    suite: 'ioasid',
    results,
    ratios: {
      ioasid_find_rcu_vs_mutex: ratio(results, 'ioasid_find_rcu_2readers_1updater', 'ioasid_find_mutex_2readers_1updater'),
      ioasid_free_vs_alloc: ratio(results, 'ioasid_free_full_space', 'ioasid_alloc_full_space'),
      ioasid_find_spinlock_vs_mutex: ratio(results, 'ioasid_find_spinlock_2readers_1updater', 'ioasid_find_mutex_2readers_1updater'),
    },
  };
}
