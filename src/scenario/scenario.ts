// A race reproduction script (DESIGN.md, "What users see"): which model it runs (the IOMMU model `sva`, the
// groups-and-domains model `domains`, the IOASID allocator `ioasid`), its topology, policies and workload (the
// model's parameters, grouped as a kernel developer reads them), the policy change that fixes the race, what
// is expected of a run (findings by kind, kinds forbidden, counters), and how to explore it. TypeScript first:
// `defineScenario({...})` is fully typed; the same object as JSON or YAML serves the CLI.
import { z } from 'zod';

/** The finding kinds a scenario may expect or forbid (src/kernel/findings.ts, the model's oracles). */
export const FINDING_KINDS = [
  'might_sleep',
  'lockdep',
  'kasan',
  'rcu',
  'hung_task',
  'deadlock',
  'refcount',
  'leak',
  'notifier',
  'workqueue',
  'oops',
  'ida',
  'mm',
  'isolation',
  'stale_translation',
  'page_request',
  'quota',
] as const;
export type FindingKindName = (typeof FINDING_KINDS)[number];

export const MODELS = ['sva', 'domains', 'ioasid'] as const;
export type ModelName = (typeof MODELS)[number];

const value = z.union([z.string(), z.number(), z.boolean()]);
const params = z.record(z.string(), value);
const bound = z.strictObject({ min: z.number().optional(), max: z.number().optional() });

const expectSchema = z
  .strictObject({
    /** Kinds of which at least one finding must appear (empty: none is expected). */
    findings: z.array(z.enum(FINDING_KINDS)).default([]),
    /** Kinds that must not appear; `any` forbids every kind not listed in `findings`. */
    forbid: z.union([z.literal('any'), z.array(z.enum(FINDING_KINDS))]).default('any'),
    /** Counters of the run's check, each within bounds. */
    counters: z.record(z.string(), bound).default({}),
  })
  .default({ findings: [], forbid: 'any', counters: {} });
export type Expectation = z.output<typeof expectSchema>;

/** A scripted step: `bind`, `unbind`, `exit`, `{ dma: {n, vpn, write, wait} }`, `{ munmap: vpn }`, `{ after: proc/N:K }`. */
const stepSchema = z.union([
  z.enum(['bind', 'unbind', 'exit']),
  z.strictObject({
    dma: z
      .strictObject({ n: z.number().int().min(1).max(4096).optional(), vpn: z.number().int().min(0).optional(), write: z.boolean().optional(), wait: z.boolean().optional() })
      .default({}),
  }),
  z.strictObject({ munmap: z.number().int().min(0) }),
  z.strictObject({ exit: z.strictObject({ wait: z.boolean().optional() }) }),
  z.strictObject({ after: z.string().regex(/^proc\/\d+:\d+$/, 'expected proc/N:K (process N, its step K, from 0)') }),
]);
export type StepInput = z.input<typeof stepSchema>;

export const scenarioSchema = z.strictObject({
  /** A short name (the file's, by convention). */
  name: z.string().min(1),
  /** What it reproduces, in a sentence or two. */
  title: z.string().min(1),
  /** The mailing-list thread it comes from: 000 … 004. */
  seed: z.enum(['000', '001', '002', '003', '004']).optional(),
  model: z.enum(MODELS),
  /** The model's parameters, grouped for the reader; together they must be valid parameters of the model. */
  topology: params.default({}),
  policies: params.default({}),
  workload: params.default({}),
  /**
   * The sva model's processes, scripted: `proc/N` → its steps, after exec. A step `{ after: proc/M:K }` waits
   * until process M has done its step K. The actors must exist, and the constraints must not form a cycle.
   */
  script: z.record(z.string().regex(/^proc\/\d+$/, 'expected proc/N'), z.array(stepSchema)).optional(),
  /**
   * Fault injection, as the model's misbehaviour parameters: a device that issues DMA after it was told to stop
   * (`misbehave: dma-after-stop`), loses page responses, never drains or is unplugged; a page request queue of
   * `prqDepth` entries (overflow); planted driver bugs (`bug`).
   */
  faults: params.default({}),
  /**
   * A patch under review: a CommonJS module (path relative to the scenario) whose `extend(ctx)` replaces or
   * wraps IOMMU driver ops with its own code (src/actors/extension.ts). sva model only.
   */
  extension: z.string().min(1).optional(),
  /** The policies that fix the race: `run --fixed` applies them and expects no finding. */
  fix: params.optional(),
  expect: expectSchema,
  /** What a run with the fix applied must show (default: no finding at all). */
  fixExpect: expectSchema.optional(),
  explore: z
    .strictObject({
      strategy: z.enum(['random', 'pct', 'dfs']).default('pct'),
      depth: z.number().int().min(1).max(64).default(3),
      /** Executions `run` tries (deterministic runtime), stopping at the first finding. */
      runs: z.number().int().min(1).max(10_000_000).default(1000),
      seed: z.number().int().default(1),
    })
    .default({ strategy: 'pct', depth: 3, runs: 1000, seed: 1 }),
});

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;

/** Define a scenario in TypeScript (typed; validated when loaded). */
export function defineScenario(s: ScenarioInput): ScenarioInput {
  return s;
}
