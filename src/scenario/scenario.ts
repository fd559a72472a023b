// A race reproduction script (DESIGN.md, "What users see"): which model it runs (the IOMMU model `sva`, the
// groups-and-domains model `domains`, the IOASID allocator `ioasid`), its topology, policies and workload (the
// model's parameters, grouped as a kernel developer reads them), the policy change that fixes the race, what
// is expected of a run (findings by kind, kinds forbidden, counters), and how to explore it; optionally a
// `script`: the model's actors step by step, with ordering constraints between them (`after` a step of another
// actor, `while` a task holds a lock). The schema is a union discriminated by the model, each model with the
// actors and steps it runs. TypeScript first: `defineScenario({...})` is fully typed; the same object as JSON or
// YAML serves the CLI.
import { z } from 'zod';
import {
  DOMAINS_FIELDS,
  DOMAINS_KINDS,
  defaultedForm,
  expectForm,
  HP_KINDS,
  IOASID_FIELDS,
  IOASID_KINDS,
  KTHREAD_KINDS,
  objectForm,
  SVA_FIELDS,
  SVA_KINDS,
  type StepKind,
  scalarForm,
} from '../workloads/steps.js';
import { IOMMUFD_FIELDS, IOMMUFD_KINDS } from '../workloads/iommufd-steps.js';
import { HP_FIELDS } from '../workloads/hotplug-steps.js';
import { KTHREAD_FIELDS } from '../workloads/kthread-steps.js';

/** The finding kinds a scenario may expect or forbid (src/kernel/findings.ts, the model's oracles). */
export const FINDING_KINDS = [
  'might_sleep',
  'lockdep',
  'kasan',
  'rcu',
  'hung_task',
  'soft_lockup',
  'hard_lockup',
  'deadlock',
  'refcount',
  'leak',
  'notifier',
  'workqueue',
  'oops',
  'iommu',
  'ida',
  'mm',
  'isolation',
  'stale_translation',
  'page_request',
  'quota',
  'probe',
  'lifecycle',
  'torn_entry',
  'script',
  'printk',
] as const;
export type FindingKindName = (typeof FINDING_KINDS)[number];

export const MODELS = ['sva', 'domains', 'ioasid'] as const;
export type ModelName = (typeof MODELS)[number];

const value = z.union([z.string(), z.number(), z.boolean()]);
const params = z.record(z.string(), value);
/** Patch files, relative to the scenario's file. */
const patchList = z.array(z.string().min(1));
/** A fix: the model's parameters it changes, and the patches of the fixed variant. */
const fixSchema = z.object({ patches: patchList.optional(), extension: z.string().optional() }).catchall(value);
const bound = z.strictObject({ min: z.number().optional(), max: z.number().optional() });

const expectSchema = z
  .strictObject({
    /** Kinds of which at least one finding must appear (empty: none is expected). */
    findings: z.array(z.enum(FINDING_KINDS)).default([]),
    /**
     * Kinds that must not appear in any schedule. `any`, the default, forbids every kind not listed in `findings`;
     * a list forbids those kinds only and allows the others (`[]`: nothing forbidden). Judged by expect.ts.
     */
    forbid: z.union([z.literal('any'), z.array(z.enum(FINDING_KINDS))]).default('any'),
    /** Counters of the workload's check, each within bounds in every schedule. */
    counters: z.record(z.string(), bound).default({}),
  })
  .default({ findings: [], forbid: 'any', counters: {} });
export type Expectation = z.output<typeof expectSchema>;

// ---- scripts ----

/** `{ after: drv/0:2 }`: wait until actor drv/0 has finished its step 2 (from 0). */
const afterStep = z.strictObject({ after: z.string().regex(/^[a-z]+\/\d+:\d+$/, 'expected actor/N:K (an actor, its step K, from 0)') });
/** `{ while: { task: proc0, holds: '&group->mutex' } }`: the next step starts once a task so named holds the lock. */
const whileStep = z.strictObject({
  while: z.strictObject({
    /** A kernel task's comm, or a prefix of it: `proc0`, `drv1`, `iopf`. */
    task: z.string().min(1),
    /** A lock class as lockdep names it: `&group->mutex`, `iommu_sva_lock`, `ioasid_allocator_lock`. */
    holds: z.string().min(1),
  }),
});

// Each step kind's fields are declared once, in src/workloads/steps.ts; here are the forms a scenario writes them in.

/** hp (pciehp, src/workloads/hotplug-steps.ts): `{ unplug: dev }` (a surprise removal), `{ unplug: { dev, surprise } }`. */
const hpForms = [scalarForm('unplug', HP_FIELDS.unplug.dev), objectForm('unplug', HP_FIELDS.unplug)] as const;

/** kthread (src/workloads/kthread-steps.ts): `vmalloc`, `{ vmalloc: { n, as } }`, `vfree`, `{ vfree: area }`, `{ vfree: { area } }`, and ioremap / iounmap alike. */
const kthreadForms = [
  objectForm('vmalloc', KTHREAD_FIELDS.vmalloc),
  scalarForm('vfree', KTHREAD_FIELDS.vfree.area.unwrap()),
  objectForm('vfree', KTHREAD_FIELDS.vfree),
  objectForm('ioremap', KTHREAD_FIELDS.ioremap),
  scalarForm('iounmap', KTHREAD_FIELDS.iounmap.area.unwrap()),
  objectForm('iounmap', KTHREAD_FIELDS.iounmap),
] as const;

/** sva: `open`, `{ open: {dev, as} }`, `close`, `{ close: fd }`, `mmap`, `{ mmap: fd }`, `munmap_portal`, `bind`, `unbind`, `exit`, `{ dma: {n, vpn, write, wait, fd} }`, `{ munmap: vpn }` or `{ munmap: {vpn, n, remap} }`, `{ madvise: {vpn, n} }`, `{ migrate: {vpn, n} }`, `{ exit: {wait} }`. */
const svaStep = z.union([
  z.enum(['bind', 'unbind', 'exit', 'open', 'close', 'mmap', 'munmap_portal', 'dma', 'munmap', 'vmalloc', 'vfree', 'ioremap', 'iounmap']),
  objectForm('open', SVA_FIELDS.open),
  objectForm('bind', SVA_FIELDS.bind),
  scalarForm('unbind', SVA_FIELDS.unbind.fd.unwrap()),
  objectForm('unbind', SVA_FIELDS.unbind),
  scalarForm('close', SVA_FIELDS.close.fd.unwrap()),
  scalarForm('mmap', SVA_FIELDS.mmap.fd.unwrap()),
  scalarForm('munmap_portal', SVA_FIELDS.munmap_portal.fd.unwrap()),
  defaultedForm('dma', SVA_FIELDS.dma),
  // One branch for both forms of munmap, so that a wrong field is reported as that field's error.
  z.strictObject({ munmap: z.union([SVA_FIELDS.munmap.vpn, z.strictObject(SVA_FIELDS.munmap)]) }),
  objectForm('madvise', SVA_FIELDS.madvise),
  objectForm('migrate', SVA_FIELDS.migrate),
  objectForm('exit', SVA_FIELDS.exit),
  ...hpForms,
  ...kthreadForms,
  afterStep,
  whileStep,
  expectForm,
]);
export type SvaStep = z.output<typeof svaStep>;

const D = DOMAINS_FIELDS;
/** domains (src/workloads/domains-script.ts): domain alloc/free, attach/detach/replace, SVA bind/unbind, DMA, faults. */
const domainsStep = z.union([
  z.literal('synchronize_rcu'),
  objectForm('alloc', D.alloc),
  scalarForm('free', D.free.domain),
  objectForm('attach', D.attach),
  objectForm('detach', D.detach),
  objectForm('replace', D.replace),
  objectForm('bind', D.bind),
  scalarForm('unbind', D.unbind.handle.unwrap()),
  objectForm('unbind', D.unbind),
  objectForm('dma', D.dma),
  objectForm('iopf', D.iopf),
  ...hpForms,
  afterStep,
  whileStep,
  expectForm,
]);
export type DomainsStep = z.output<typeof domainsStep>;

const V = IOMMUFD_FIELDS;
/** domains' vmm actors (src/workloads/iommufd-script.ts): iommufd objects, attachments, faults read and answered. */
const vmmStep = z.union([
  z.enum(['open', 'close']),
  scalarForm('ioas_alloc', V.ioas_alloc.ioas),
  scalarForm('fault_alloc', V.fault_alloc.fault),
  scalarForm('bind', V.bind.dev),
  scalarForm('unbind', V.unbind.dev),
  objectForm('hwpt_alloc', V.hwpt_alloc),
  objectForm('attach', V.attach),
  objectForm('replace', V.replace),
  objectForm('detach', V.detach),
  scalarForm('read', V.read.fault),
  objectForm('read', V.read),
  scalarForm('poll', V.poll.fault),
  scalarForm('respond', V.respond.fault),
  objectForm('respond', V.respond),
  scalarForm('munmap', V.munmap.vpn),
  scalarForm('destroy', V.destroy.object),
  objectForm('destroy', V.destroy),
  objectForm('bind', V.bind),
  objectForm('unbind', V.unbind),
  afterStep,
  whileStep,
  expectForm,
]);
export type VmmStep = z.output<typeof vmmStep>;

/** domains: the drv, proc and iopf actors' steps, or a vmm's (its own kind). */
function domainsScript() {
  return z
    .record(z.string().regex(/^(drv|proc|iopf|vmm)\/\d+$/, 'expected drv/N, proc/N, iopf/N or vmm/N'), z.array(z.union([domainsStep, vmmStep])))
    .superRefine((script, ctx) => {
      for (const [actor, steps] of Object.entries(script)) {
        const vmm = actor.startsWith('vmm/');
        const ops = vmm ? [...IOMMUFD_KINDS.map((k) => k.op), 'after', 'while', 'expect'] : SCRIPT_STEPS.domains;
        steps.forEach((st, i) => {
          if ((vmm ? vmmStep : domainsStep).safeParse(st).success) return;
          const op = typeof st === 'string' ? st : Object.keys(st as object)[0];
          const why = op !== undefined && !ops.includes(op) ? `unknown step ${JSON.stringify(op)} for a ${vmm ? 'vmm' : 'drv, proc or iopf'} actor (${ops.join(', ')})` : `its fields are not those of ${op}`;
          ctx.addIssue({ code: 'custom', path: [actor, i], message: why });
        });
      }
    })
    .optional();
}

const I = IOASID_FIELDS;
/** ioasid (src/workloads/ioasid-script.ts): sets, IDs, lookups, quota changes, notifications. */
const ioasidStep = z.union([
  z.literal('check'),
  objectForm('alloc_set', I.alloc_set),
  objectForm('alloc', I.alloc),
  scalarForm('free', I.free.id),
  objectForm('find', I.find),
  objectForm('adjust_set', I.adjust_set),
  scalarForm('free_set', I.free_set.set),
  scalarForm('bind', I.bind.id),
  scalarForm('unbind', I.unbind.id),
  objectForm('free', I.free),
  objectForm('free_set', I.free_set),
  objectForm('bind', I.bind),
  objectForm('unbind', I.unbind),
  afterStep,
  whileStep,
  expectForm,
]);
export type IoasidStep = z.output<typeof ioasidStep>;

/** Each model's step kinds (src/workloads/steps.ts). */
export const STEP_KINDS: Readonly<Record<ModelName, readonly StepKind[]>> = { sva: [...SVA_KINDS, ...HP_KINDS, ...KTHREAD_KINDS], domains: [...DOMAINS_KINDS, ...HP_KINDS], ioasid: IOASID_KINDS };

/** The steps of each model's scripts, by their key (for messages). */
export const SCRIPT_STEPS: Readonly<Record<ModelName, readonly string[]>> = {
  sva: [...SVA_KINDS.map((k) => k.op), ...HP_KINDS.map((k) => k.op), ...KTHREAD_KINDS.map((k) => k.op), 'after', 'while', 'expect'],
  domains: [...DOMAINS_KINDS.map((k) => k.op), ...HP_KINDS.map((k) => k.op), 'after', 'while', 'expect'],
  ioasid: [...IOASID_KINDS.map((k) => k.op), 'after', 'while', 'expect'],
};

/** A `script` section: actor → its steps, the actor names the model's. */
function scriptOf<S extends z.ZodType>(actor: RegExp, expected: string, step: S) {
  return z.record(z.string().regex(actor, expected), z.array(step)).optional();
}

const base = {
  /** A short name (the file's, by convention). */
  name: z.string().min(1),
  /** What it reproduces, in a sentence or two. */
  title: z.string().min(1),
  /** The mailing-list thread it comes from: 000 … 004. */
  seed: z.enum(['000', '001', '002', '003', '004']).optional(),
  /** The model's parameters, grouped for the reader; together they must be valid parameters of the model. */
  topology: params.default({}),
  policies: params.default({}),
  workload: params.default({}),
  /**
   * Fault injection, as the model's misbehaviour parameters: a device that issues DMA after it was told to stop
   * (`misbehave: dma-after-stop`), loses page responses, never drains or is unplugged; a page request queue of
   * `prqDepth` entries (overflow); planted driver bugs (`bug`).
   */
  faults: params.default({}),
  /**
   * Patches under review, applied in this order once the model is built (src/workloads/patch-loader.ts): modules
   * (.cjs, .js, .mjs, .ts) whose `extend(ctx)` replaces or wraps kernel functions by name. Paths are relative
   * to the scenario's file. Every model takes them.
   */
  patches: patchList.optional(),
  /** The older spelling of a one-patch `patches` (not both). */
  extension: z.string().min(1).optional(),
  /**
   * The policies that fix the race: `run --fixed` applies them and expects no finding. Its `patches` (or
   * `extension`), when given, replace the scenario's for the fixed variant (`patches: []`: none); without them
   * the fixed variant keeps the scenario's.
   */
  fix: fixSchema.optional(),
  expect: expectSchema,
  /** What a run with the fix applied must show (default: no finding at all). */
  fixExpect: expectSchema.optional(),
  explore: z
    .strictObject({
      strategy: z.enum(['random', 'pct', 'dfs']).default('pct'),
      depth: z.number().int().min(1).max(64).default(3),
      /** Executions `run` tries (deterministic runtime, seeds seed, seed+1, …), stopping at the first that decides the verdict. */
      runs: z.number().int().min(1).max(10_000_000).default(1000),
      seed: z.number().int().default(1),
    })
    .default({ strategy: 'pct', depth: 3, runs: 1000, seed: 1 }),
};

/**
 * The model and its `script`: actor → its steps. A step `{ after: actor/M:K }` waits until that actor has done
 * its step K; `{ while: { task, holds } }` until a task so named holds that lock. The actors must exist, the
 * constraints must not form a cycle, and the lock must be one of the model's.
 */
export const scenarioSchema = z.discriminatedUnion('model', [
  /** sva: processes `proc/N` (process N), after exec; pciehp `hp/N`. */
  z.strictObject({ ...base, model: z.literal('sva'), script: scriptOf(/^(proc|hp|kthread)\/\d+$/, 'expected proc/N, hp/N or kthread/N', svaStep) }),
  /** domains: drivers, processes and page-fault handlers (`drv/N`, `proc/N`, `iopf/N`), each a kernel task; a user-space VMM `vmm/N`; pciehp `hp/N`. */
  z.strictObject({ ...base, model: z.literal('domains'), script: domainsScript() }),
  /** ioasid: allocator users `user/N`, each a kernel task started once the allocator is booted. */
  z.strictObject({ ...base, model: z.literal('ioasid'), script: scriptOf(/^user\/\d+$/, 'expected user/N', ioasidStep) }),
]);

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;

/** Define a scenario in TypeScript (typed; validated when loaded). */
export function defineScenario(s: ScenarioInput): ScenarioInput {
  return s;
}
