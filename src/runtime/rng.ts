// Seeded randomness for every choice the deterministic runtime makes (scheduler decisions, workload choices).
// A thin wrapper over pure-rand's xoroshiro128+: streams are derived from (seed, label) so that adding a new
// consumer of randomness does not shift the numbers every other consumer sees.
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { fnv1a, mix32 } from './hash.js';

type Generator = ReturnType<typeof xoroshiro128plus>;

export class Rng {
  private readonly gen: Generator;

  constructor(seed: number) {
    this.gen = xoroshiro128plus(seed | 0);
  }

  /** An independent stream for `label` under `seed`. */
  static derive(seed: number, label: string | number): Rng {
    const salt = typeof label === 'number' ? mix32(label + 0x9e3779b9) : fnv1a(label);
    return new Rng(mix32((seed | 0) ^ salt));
  }

  /** Uniform integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return uniformInt(this.gen, lo, hi);
  }

  /** Uniform index into an array of length n (n ≥ 1). */
  index(n: number): number {
    return n <= 1 ? 0 : uniformInt(this.gen, 0, n - 1);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = uniformInt(this.gen, 0, i);
      const t = items[i] as T;
      items[i] = items[j] as T;
      items[j] = t;
    }
    return items;
  }
}
