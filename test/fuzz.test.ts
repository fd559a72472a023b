// Fuzzing what a user can hand the simulator (issue #14, "No stack traces"): scenarios generated from the schema
// of src/scenario/scenario.ts — valid ones, and ones with unknown keys, wrong types, huge numbers, deep nesting,
// cycles in `after:` constraints, `while:` naming missing tasks or locks, out-of-range topologies, objects that
// refer to themselves or throw when read, patches that throw. Every input goes through the loader's validation
// and the CLI's error report (src/cli/failure.ts), as `iommu-sim run` would: the outcome is exit 0, 1 or 2, a
// refusal names the file and the field, and no report carries a JavaScript stack. A bounded subset of the
// valid ones runs through the model under a step budget (no hang), and a subset goes through files on disk
// (YAML, JSON, TypeScript): nothing is left beside them. The seed is fixed (a reproducible CI run) and printed;
// FUZZ_SEED=<n> explores another.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { SVA_DEFAULTS } from '../src/workloads/sva.js';
import { reportFailure } from '../src/cli/failure.js';
import { DOMAINS_DEFAULTS } from '../src/workloads/domains.js';
import { IOASID_DEFAULTS } from '../src/workloads/ioasid.js';
import { run } from '../src/runtime/run.js';
import { expectationFor, judge } from '../src/scenario/expect.js';
import { loadScenarioFile, scenarioParams, validateScenario } from '../src/scenario/load.js';
import type { ModelName, Scenario } from '../src/scenario/scenario.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 1_402_026;
const INPUTS = 10_000;
/** Valid scenarios run through the model, each within MAX_STEPS steps of one execution. */
const RUNS = 300;
const MAX_STEPS = 20_000;
/** One input in FILE_EVERY is also written to a file and loaded from there. */
const FILE_EVERY = 25;
const STACK = /\n\s+at \S/;

const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-fuzz-'));
const FILE = join(dir, 'fuzz.yaml');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Patches under review (`extension:`), named relative to the scenario: ones that throw, and one that works. */
const PATCHES = {
  'patches/body-throws.cjs': "throw new Error('the patch module threw');\n",
  'patches/extend-throws.cjs': "exports.extend = () => { throw new Error('extend threw'); };\n",
  'patches/no-extend.cjs': 'exports.other = 1;\n',
  'patches/bind-throws.cjs': "exports.extend = (ctx) => ctx.setCoreStep('bind', function* () { throw new Error('the patched bind threw'); });\n",
  'patches/missing-step.cjs': "exports.extend = (ctx) => ctx.setCoreStep('nosuchstep', function* () {});\n",
  'patches/noop.cjs': 'exports.extend = () => {};\n',
};
mkdirSync(join(dir, 'patches'));
for (const [f, text] of Object.entries(PATCHES)) writeFileSync(join(dir, f), text);
const PATCH_FILES = [...Object.keys(PATCHES), 'patches/absent.cjs'];

// ---- generators, from the schema ----

const ACTORS: Record<ModelName, string[]> = { sva: ['proc/0', 'proc/1', 'proc/2'], domains: ['drv/0', 'drv/1', 'proc/0', 'iopf/0'], ioasid: ['user/0', 'user/1', 'user/2'] };
const TASKS = ['proc0', 'proc1', 'drv0', 'drv1', 'user0', 'iopf', 'nosuchtask'];
const LOCKS = ['&group->mutex', 'iommu_sva_lock', 'ioasid_allocator_lock', 'no_such_lock'];
const NAMES = ['d0', 'd1', 's', 'a', 'b'];
const DEFAULTS: Record<ModelName, object> = { sva: SVA_DEFAULTS, domains: DOMAINS_DEFAULTS, ioasid: IOASID_DEFAULTS };

const small = fc.integer({ min: 0, max: 4 });
const name = fc.constantFrom(...NAMES);
const after = (m: ModelName) => fc.record({ after: fc.tuple(fc.constantFrom(...ACTORS[m], 'nosuch/0'), fc.nat(4)).map(([a, k]) => `${a}:${k}`) });
const whileStep = fc.record({ while: fc.record({ task: fc.constantFrom(...TASKS), holds: fc.constantFrom(...LOCKS) }) });
const opt = { requiredKeys: [] as never[] };

const STEPS: Record<ModelName, fc.Arbitrary<unknown>> = {
  sva: fc.oneof(
    fc.constantFrom('bind', 'unbind', 'exit'),
    fc.record({ dma: fc.record({ n: fc.integer({ min: 1, max: 8 }), vpn: fc.integer({ min: 0, max: 9 }), write: fc.boolean(), wait: fc.boolean() }, opt) }),
    fc.record({ munmap: fc.integer({ min: 0, max: 9 }) }),
    fc.record({ exit: fc.record({ wait: fc.boolean() }, opt) }),
    after('sva'),
    whileStep,
  ),
  domains: fc.oneof(
    fc.constant('synchronize_rcu'),
    fc.record({ alloc: fc.record({ domain: name, type: fc.constantFrom('blocked', 'identity', 'dma', 'paging'), iommu: small }, { requiredKeys: ['domain'] }) }),
    fc.record({ free: name }),
    fc.record({ attach: fc.record({ domain: name, dev: small, pasid: small }, { requiredKeys: ['domain', 'dev'] }) }),
    fc.record({ detach: fc.record({ domain: name, dev: small, pasid: small }, { requiredKeys: ['domain', 'dev'] }) }),
    fc.record({ replace: fc.record({ domain: name, dev: small, pasid: small }) }),
    fc.record({ bind: fc.record({ dev: small, mm: small }) }),
    fc.record({ unbind: fc.record({ dev: small, mm: small }) }),
    fc.record({ dma: fc.record({ dev: small, pasid: small }) }),
    fc.record({ iopf: fc.record({ dev: small, pasid: small }) }),
    after('domains'),
    whileStep,
  ),
  ioasid: fc.oneof(
    fc.constant('check'),
    fc.record({ alloc_set: fc.record({ set: name, quota: small }) }),
    fc.record({ alloc: fc.record({ set: name, id: name }) }),
    fc.record({ free: name }),
    fc.record({ find: fc.record({ set: name, id: name }) }),
    fc.record({ adjust_set: fc.record({ set: name, quota: small }) }),
    fc.record({ free_set: name }),
    fc.record({ bind: name }),
    fc.record({ unbind: name }),
    after('ioasid'),
    whileStep,
  ),
};

/** The model's own parameters, a few of them, each at its default or near a small size. */
function paramsOf(m: ModelName): fc.Arbitrary<Record<string, unknown>> {
  const entries = Object.entries(DEFAULTS[m]).filter(([k]) => k !== 'steps' && k !== 'extension' && k !== 'patches');
  return fc.subarray(entries, { maxLength: 4 }).chain((es) =>
    fc.tuple(
      ...es.map(([k, d]) =>
        (typeof d === 'number' ? fc.oneof(fc.constant(d), fc.integer({ min: 1, max: 3 })) : typeof d === 'boolean' ? fc.boolean() : fc.constant(d)).map((v) => [k, v] as const),
      ),
    ).map((kv) => Object.fromEntries(kv)),
  );
}

function scenarioOf(m: ModelName): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    {
      name: fc.constantFrom('fuzz', 'x'),
      title: fc.constant('a generated scenario'),
      model: fc.constant(m),
      // ioasid's default 20-bit space takes most of a second to set up per run: the runs use a smaller one.
      topology:
        m === 'sva'
          ? fc.record({ devices: fc.integer({ min: 1, max: 2 }), processes: fc.integer({ min: 1, max: 3 }) })
          : m === 'ioasid'
            ? fc.record({ bits: fc.integer({ min: 4, max: 10 }) })
            : fc.constant({}),
      workload: paramsOf(m),
      script: fc.dictionary(fc.constantFrom(...ACTORS[m]), fc.array(STEPS[m], { maxLength: 5 }), { maxKeys: 3 }),
      expect: fc.record({ findings: fc.constant([]), forbid: fc.constantFrom('any', []) }, opt),
      explore: fc.record({ strategy: fc.constantFrom('random', 'pct', 'dfs'), depth: fc.integer({ min: 1, max: 3 }), runs: fc.integer({ min: 1, max: 3 }), seed: fc.integer({ min: 0, max: 99 }) }),
    },
    { requiredKeys: ['name', 'title', 'model', 'explore'] },
  );
}

/** A script whose `after:` constraints form a cycle: a0 waits for a1's step 0, …, the last for a0's. */
const cyclic = fc.constantFrom<ModelName>('sva', 'domains', 'ioasid').chain((m) =>
  fc.integer({ min: 1, max: 3 }).map((n) => {
    const actors = ACTORS[m].slice(0, n);
    const first: Record<ModelName, unknown> = { sva: 'bind', domains: 'synchronize_rcu', ioasid: 'check' };
    const script = Object.fromEntries(actors.map((a, i) => [a, [{ after: `${actors[(i + 1) % n]}:1` }, first[m], first[m]]]));
    return { name: 'cycle', title: 'after: constraints in a cycle', model: m, ...(m === 'sva' ? { topology: { processes: 3 } } : {}), script };
  }),
);

const HUGE = [-1, 0, 2 ** 31, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e308, -1e308, 0.5, Number.POSITIVE_INFINITY, Number.NaN, 4_000_000_000];

type Mutation =
  | { readonly kind: 'unknown-key'; readonly at: number; readonly key: string }
  | { readonly kind: 'wrong-type'; readonly at: number; readonly value: unknown }
  | { readonly kind: 'huge'; readonly key: string; readonly value: number }
  | { readonly kind: 'deep'; readonly at: number; readonly depth: number; readonly array: boolean }
  | { readonly kind: 'self-reference'; readonly at: number }
  | { readonly kind: 'throwing-getter'; readonly at: number; readonly key: string }
  | { readonly kind: 'drop'; readonly key: string }
  | { readonly kind: 'other-model'; readonly model: string }
  | { readonly kind: 'patch'; readonly file: string };

const SIZES = ['devices', 'processes', 'pages', 'iommus', 'groups', 'groupSize', 'pasids', 'bits', 'pasidBits', 'quota', 'vms', 'dmas', 'rounds', 'prqDepth', 'addressSpaces'];
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('unknown-key' as const), at: fc.nat(), key: fc.oneof(fc.constantFrom('topolgy', 'findngs', 'runz', 'vnp', 'procesess', 'x'), fc.string({ maxLength: 8 })) }),
  fc.record({ kind: fc.constant('wrong-type' as const), at: fc.nat(), value: fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withMap: true, withNullPrototype: true }) }),
  fc.record({ kind: fc.constant('huge' as const), key: fc.constantFrom(...SIZES), value: fc.oneof(fc.constantFrom(...HUGE), fc.integer({ min: -1e9, max: 1e9 }), fc.double()) }),
  fc.record({ kind: fc.constant('deep' as const), at: fc.nat(), depth: fc.oneof(fc.integer({ min: 2, max: 50 }), fc.integer({ min: 1000, max: 20_000 })), array: fc.boolean() }),
  fc.record({ kind: fc.constant('self-reference' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('throwing-getter' as const), at: fc.nat(), key: fc.constantFrom('name', 'model', 'script', 'n', 'after', 'while', 'runs') }),
  fc.record({ kind: fc.constant('drop' as const), key: fc.constantFrom('name', 'title', 'model', 'explore') }),
  fc.record({ kind: fc.constant('other-model' as const), model: fc.constantFrom('sva', 'domains', 'ioasid', 'SVA', '', 'nosuch') }),
  fc.record({ kind: fc.constant('patch' as const), file: fc.constantFrom(...PATCH_FILES) }),
);

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null;
}

/** The objects and arrays inside `v`, the root first. */
function places(v: unknown, out: Obj[] = []): Obj[] {
  if (!isObj(v) || out.includes(v) || out.length > 200) return out;
  out.push(v);
  // Data properties only: a getter planted by an earlier mutation throws when read.
  for (const d of Object.values(Object.getOwnPropertyDescriptors(v))) if ('value' in d) places(d.value, out);
  return out;
}

/** Set a property, over a getter too. */
function put(o: Obj, k: string, value: unknown): void {
  Object.defineProperty(o, k, { value, enumerable: true, writable: true, configurable: true });
}

function nest(depth: number, array: boolean, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = array ? [v] : { a: v };
  return v;
}

function mutate(raw: Obj, ms: readonly Mutation[]): Obj {
  for (const m of ms) {
    const ps = places(raw);
    const at = 'at' in m ? (ps[m.at % ps.length] as Obj) : raw;
    const key = (): string => {
      const ks = Object.keys(at);
      return ks.length > 0 ? (ks[('at' in m ? m.at : 0) % ks.length] as string) : 'x';
    };
    switch (m.kind) {
      case 'unknown-key':
        put(at, m.key, 1);
        break;
      case 'wrong-type':
        put(at, key(), m.value);
        break;
      case 'huge':
        if (!isObj(Object.getOwnPropertyDescriptor(raw, 'topology')?.value)) put(raw, 'topology', {});
        put(raw.topology as Obj, m.key, m.value);
        break;
      case 'deep':
        put(at, key(), nest(m.depth, m.array, 1));
        break;
      case 'self-reference':
        put(at, key(), at);
        break;
      case 'throwing-getter':
        Object.defineProperty(at, m.key, {
          enumerable: true,
          configurable: true,
          get() {
            throw new Error(`getter ${m.key} threw`);
          },
        });
        break;
      case 'drop':
        delete raw[m.key];
        break;
      case 'other-model':
        put(raw, 'model', m.model);
        break;
      case 'patch':
        put(raw, 'extension', m.file);
        break;
    }
  }
  return raw;
}

/** A scenario and what to do to it: plain data (fast-check prints it), made into the input in the property. */
const input: fc.Arbitrary<{ base: Obj; mutations: Mutation[] }> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ base: fc.constantFrom<ModelName>('sva', 'domains', 'ioasid').chain(scenarioOf), mutations: fc.constant<Mutation[]>([]) }) },
  {
    weight: 5,
    arbitrary: fc.record({ base: fc.constantFrom<ModelName>('sva', 'domains', 'ioasid').chain(scenarioOf), mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }) }),
  },
  { weight: 1, arbitrary: fc.record({ base: cyclic as fc.Arbitrary<Obj>, mutations: fc.constant<Mutation[]>([]) }) },
);

// ---- what every outcome must look like ----

/** A refusal as `iommu-sim run FILE` prints it: exit 2, the file, then the field (or the parser) and why. */
function expectRefusal(err: unknown, file: string): string {
  const r = reportFailure(err, ['run', file], false);
  expect(r.text).not.toMatch(STACK);
  expect(r.code, r.text).toBe(2);
  expect(r.text.startsWith(`iommu-sim: ${file}: `), r.text).toBe(true);
  // After the file: a field (`script.proc/0[1]`, `topology.devices`, `(top level)`), or the part read (`model`,
  // `extension`, `not valid YAML`, `cannot import`), then what is wrong.
  expect(r.text.slice(`iommu-sim: ${file}: `.length), r.text).toMatch(/^[^\n]*?\S: \S/);
  return r.text;
}

function smallEnough(s: Scenario): boolean {
  const p = scenarioParams(s);
  return Object.entries(p).every(([k, v]) => typeof v !== 'number' || k === 'seed' || k === 'iterations' || k === 'pasidBits' || k === 'addressSpaces' || v <= (k === 'bits' ? 10 : 8));
}

describe(`fuzz: ${INPUTS} generated scenarios (fast-check seed ${SEED})`, () => {
  const valid: Scenario[] = [];
  const counts = { inputs: 0, valid: 0, refused: 0, files: 0 };

  it('every input is valid or refused with exit 2 naming the file and the field, never with a stack', async () => {
    console.log(`fuzz: fast-check seed ${SEED} (FUZZ_SEED=<n> for another)`);
    const onDisk: { raw: Obj; file: string }[] = [];
    fc.assert(
      fc.property(input, ({ base, mutations }) => {
        const raw = mutate(structuredClone(base), mutations);
        counts.inputs++;
        try {
          const s = validateScenario(raw, FILE);
          counts.valid++;
          if (smallEnough(s) && (valid.length < RUNS || (s.extension && valid.length < RUNS * 2))) valid.push(s);
        } catch (err) {
          counts.refused++;
          expectRefusal(err, FILE);
        }
        if (counts.inputs % FILE_EVERY === 0) onDisk.push({ raw, file: join(dir, `in-${counts.inputs}.${counts.inputs % 2 ? 'json' : 'yaml'}`) });
      }),
      { seed: SEED, numRuns: INPUTS, endOnFailure: true },
    );
    expect(counts.inputs).toBe(INPUTS);
    // The generator reaches both sides: enough valid scenarios to run, and refusals.
    expect(counts.valid).toBeGreaterThan(RUNS);
    expect(counts.refused).toBeGreaterThan(INPUTS / 4);

    // The same inputs through files: the parsers' errors are refusals too, and nothing is written beside them.
    const written = new Set<string>();
    for (const { raw, file } of onDisk) {
      let text: string;
      try {
        text = file.endsWith('.json') ? JSON.stringify(raw) : toYaml(raw, { aliasDuplicateObjects: false });
      } catch {
        continue; // not expressible in the format (a cycle, a getter that throws, a BigInt in JSON)
      }
      if (text === undefined) continue;
      writeFileSync(file, text);
      written.add(file.slice(dir.length + 1));
      counts.files++;
      try {
        await loadScenarioFile(file);
      } catch (err) {
        expectRefusal(err, file);
      }
    }
    expect(counts.files).toBeGreaterThan(INPUTS / FILE_EVERY / 2);
    expect(readdirSync(dir).sort()).toEqual([...written, 'patches'].sort());
    expect(readdirSync(join(dir, 'patches')).sort()).toEqual(Object.keys(PATCHES).map((f) => f.slice('patches/'.length)).sort());
    console.log(`fuzz: ${counts.inputs} inputs: ${counts.valid} valid, ${counts.refused} refused (exit 2); ${counts.files} also loaded from files`);
  }, 120_000);

  it('deep nesting in a file (YAML and JSON, flow and block, up to 50 000 levels) is refused naming the file', async () => {
    const deep = fc.record({
      depth: fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1000, max: 50_000 })),
      form: fc.constantFrom('yaml-flow-seq', 'yaml-flow-map', 'yaml-block', 'json-array', 'json-object'),
      where: fc.constantFrom('workload', 'script', 'top'),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(deep, async ({ depth, form, where }) => {
        const d = form === 'yaml-block' ? Math.min(depth, 2000) : depth;
        const inner =
          form === 'yaml-flow-seq' || form === 'json-array'
            ? `${'['.repeat(d)}1${']'.repeat(d)}`
            : form === 'yaml-flow-map'
              ? `${'{a: '.repeat(d)}1${'}'.repeat(d)}`
              : form === 'json-object'
                ? `${'{"a": '.repeat(d)}1${'}'.repeat(d)}`
                : Array.from({ length: d }, (_, i) => `${' '.repeat(2 * i)}a:`).join('\n');
        const json = form.startsWith('json');
        const file = join(dir, `deep-${n++}.${json ? 'json' : 'yaml'}`);
        const head = json ? '"name": "x", "title": "t", "model": "sva"' : 'name: x\ntitle: t\nmodel: sva\n';
        const text = json
          ? where === 'top' ? inner : `{${head}, "${where}": ${inner}}`
          : where === 'top' ? inner : form === 'yaml-block' ? `${head}${where}:\n${inner.replace(/^/gm, '  ')} 1\n` : `${head}${where}: ${inner}\n`;
        writeFileSync(file, text);
        try {
          await loadScenarioFile(file);
          throw new Error(`${file} was accepted`);
        } catch (err) {
          expectRefusal(err, file);
        } finally {
          rmSync(file);
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  }, 120_000);

  it(`the valid ones run (${RUNS} of them, ${MAX_STEPS} steps at most each): exit 0, 1 or 2, no stack`, async () => {
    expect(valid.length).toBeGreaterThanOrEqual(RUNS);
    const outcomes = { 0: 0, 1: 0, 2: 0 };
    const why = new Set<string>();
    let patchThrew = 0;
    // Every patched scenario first (the patch that throws at run time among them), then the others.
    const patched = valid.filter((s) => s.extension);
    console.log(`fuzz: ${patched.length} valid scenarios carry a patch (${[...new Set(patched.map((s) => s.extension?.slice(dir.length + 1)))].join(', ')})`);
    for (const s of [...patched, ...valid.filter((s) => !s.extension)].slice(0, RUNS)) {
      let code: 0 | 1 | 2;
      try {
        const r = await run({
          workload: { name: s.model, params: scenarioParams(s) },
          runtime: 'deterministic',
          strategy: s.explore.strategy,
          depth: s.explore.depth,
          seed: s.explore.seed,
          runs: 1,
          maxSteps: MAX_STEPS,
        });
        code = judge(expectationFor(s, false), { findings: r.findings, counters: r.check.counters, checkOk: r.check.ok, problems: r.check.problems }).ok ? 0 : 1;
        if (code === 1) why.add(r.findings[0]?.title.replace(/\d+/g, 'N').slice(0, 70) ?? r.check.problems[0]?.slice(0, 70) ?? 'check');
      } catch (err) {
        // A crash, a stall or a run past the step budget: reported as the CLI would, without a stack.
        const r = reportFailure(err, ['run', FILE], false);
        expect(r.text, JSON.stringify(s.script)).not.toMatch(STACK);
        // A run replays nothing: a divergence (exit 3) cannot be its outcome.
        if (r.code === 3) throw new Error(`a run ended as a replay divergence: ${r.text}`);
        // Named by what failed (an actor, a task, a stall, the step budget) or refused: never a bare bug.
        expect(r.text, JSON.stringify(s.script)).not.toMatch(/internal error/);
        code = r.code;
        // A patch that throws at run time is a failure of the run, named by its task and last point.
        if (r.text.includes('the patched bind threw')) {
          expect(r.code).toBe(1);
          expect(r.text).toMatch(/^iommu-sim: task \S+ threw after '[^']*': patch \S*bind-throws\.cjs: its iommu_sva_bind_device threw: the patched bind threw/);
          patchThrew++;
        }
        why.add(r.text.split('\n')[0]?.replace(/\d+/g, 'N').slice(0, 90) ?? '');
      }
      outcomes[code]++;
    }
    console.log(`fuzz: ${RUNS} valid scenarios run: exit 0 ${outcomes[0]}, exit 1 ${outcomes[1]}, exit 2 ${outcomes[2]}; ${patchThrew} runs stopped by a patch that throws; failures seen:\n  ${[...why].join('\n  ')}`);
    expect(outcomes[0] + outcomes[1] + outcomes[2]).toBe(RUNS);
    // A budget for a loaded machine (300 runs, up to 20 000 steps each).
  }, 300_000);
});
