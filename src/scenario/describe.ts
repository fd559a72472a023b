// A scenario's schema errors in the words of the file: the path to the field, what is wrong, and what would be
// accepted there — the keys of that place for an unknown key (with the nearest one when it looks like a typo),
// the accepted types or an example of the accepted forms for a value of the wrong form.
import { nearest } from '../runtime/nearest.js';
import type { z } from 'zod';
import { IOMMUFD_KINDS } from '../workloads/iommufd-steps.js';
import { EXPECT_KIND } from '../workloads/steps.js';
import { type ModelName, SCRIPT_STEPS, STEP_KINDS, scenarioSchema } from './scenario.js';
import { formatScenarioStep, type StepShape, unknownKey } from './zod-errors.js';

/** One example of each step kind, by model, for a step that is none of them (from the kinds: src/workloads/steps.ts). */
const STEP_EXAMPLES: Readonly<Record<ModelName, string>> = {
  sva: examples(STEP_KINDS.sva),
  domains: `${examples(STEP_KINDS.domains)}; vmm/N: ${examples(IOMMUFD_KINDS)}`,
  ioasid: examples(STEP_KINDS.ioasid),
};

function examples(kinds: readonly StepShape[]): string {
  return [...kinds, EXPECT_KIND].map((k) => k.example ?? k.op).concat("{ after: 'proc/0:2' }", '{ while: { task: proc0, holds: iommu_sva_lock } }').join(', ');
}

interface Def {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly innerType?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly element?: z.ZodType;
  readonly options?: readonly z.ZodType[];
}

function def(t: z.ZodType): Def {
  return (t as unknown as { _zod: { def: Def } })._zod.def;
}

function unwrap(t: z.ZodType): z.ZodType {
  let u = t;
  for (let d = def(u); (d.type === 'optional' || d.type === 'default' || d.type === 'nullable') && d.innerType; d = def(u)) u = d.innerType;
  return u;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The branch of a union the value was meant for: the object whose keys it uses (and whose `model` it names). */
function branch(t: z.ZodType, v: unknown): z.ZodType {
  const d = def(t);
  if (d.type !== 'union' || !isRecord(v)) return t;
  const keys = Object.keys(v);
  for (const o of d.options ?? []) {
    const shape = def(unwrap(o)).shape;
    if (!shape) continue;
    const model = shape.model;
    if (model && !model.safeParse(v.model).success) continue;
    if (model || keys.some((k) => k in shape)) return unwrap(o);
  }
  return t;
}

/** The keys accepted at `path` of the raw scenario, when that place is an object of known keys. */
export function keysAt(raw: unknown, path: readonly PropertyKey[]): string[] | undefined {
  let t: z.ZodType | undefined = unwrap(scenarioSchema as unknown as z.ZodType);
  let v: unknown = raw;
  for (const seg of path) {
    t = branch(t, v);
    const d = def(t);
    if (d.type === 'object') t = d.shape?.[String(seg)];
    else if (d.type === 'record') t = d.valueType;
    else if (d.type === 'array') t = d.element;
    else return undefined;
    if (!t) return undefined;
    t = unwrap(t);
    v = isRecord(v) || Array.isArray(v) ? (v as Record<PropertyKey, unknown>)[seg as string] : undefined;
  }
  const at = branch(t, v);
  const d = def(at);
  if (d.shape) return Object.keys(d.shape);
  // A union the value matched no branch of (a step of no known kind): every branch's keys.
  const keys = (d.options ?? []).flatMap((o) => Object.keys(def(unwrap(o)).shape ?? {}));
  return keys.length > 0 ? [...new Set(keys)] : undefined;
}

type Issue = z.core.$ZodIssue;

/** The value at `path` of the raw input (own data properties only: a getter is not run). */
function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let v = raw;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    const d = Object.getOwnPropertyDescriptor(v, seg);
    v = d && 'value' in d ? d.value : undefined;
  }
  return v;
}

/** The step kinds a script step at `path` (`script`, actor, index) may be: its actor's, and `expect`. */
function stepKindsAt(raw: unknown, path: readonly PropertyKey[]): readonly StepShape[] {
  const model = isRecord(raw) ? raw.model : undefined;
  if (path[0] !== 'script' || typeof model !== 'string' || !(model in STEP_KINDS)) return [];
  return [...(String(path[1]).startsWith('vmm/') ? IOMMUFD_KINDS : STEP_KINDS[model as ModelName]), EXPECT_KIND];
}

function unknownKeys(i: Extract<Issue, { code: 'unrecognized_keys' }>, raw: unknown): string {
  const accepted = keysAt(raw, i.path) ?? [];
  const here = valueAt(raw, i.path);
  const present = isRecord(here) ? Object.keys(here) : [];
  return i.keys
    .map((k) => {
      // A key of another kind of step, beside this one's: known, but not together.
      const others = present.filter((p) => p !== k);
      // Alone, a known kind whose own fields are what is wrong (one missing, or of the wrong type): its forms.
      if (accepted.includes(k) && others.length === 0) return formatScenarioStep(here, stepKindsAt(raw, i.path)) ?? `'${k}': a field is missing or not of its type; the step forms: ${stepForms(raw)}`;
      if (accepted.includes(k)) return `'${k}' cannot go with ${present.filter((p) => p !== k).map((p) => `'${p}'`).join(', ')} (one kind of step per entry)`;
      if (accepted.length > 0) return unknownKey(k, accepted);
      const near = nearest(k, accepted);
      return `unknown key '${k}'${near ? ` (did you mean '${near}'?)` : ''}`;
    })
    .join('; ');
}

/**
 * A step `{ kind: … }` of a known kind whose fields are wrong: the complaint of the branch that is that kind's
 * (its issues all inside the kind's key), nested unions unwrapped — `dma.n: must be an integer in 1..4096`.
 */
function stepKindIssue(i: Extract<Issue, { code: 'invalid_union' }>, step: unknown, kinds: readonly StepShape[]): string | undefined {
  const key = isRecord(step) ? Object.keys(step) : [];
  if (key.length !== 1) return undefined;
  const own = i.errors.find((e) => e.length > 0 && e.every((x) => x.path[0] === key[0]));
  let first = own?.[0];
  while (first?.code === 'invalid_union') first = first.errors.find((e) => e.length > 0 && e[0]?.path.length !== 0)?.[0] ?? first.errors[0]?.[0];
  // A key its kind does not take: the kind's accepted keys; a field of the wrong form: an accepted form.
  const said = formatScenarioStep(step, kinds);
  if (said) return said;
  return first ? `${[key[0], ...(own?.[0]?.path.slice(1) ?? []), ...(first === own?.[0] ? [] : first.path)].join('.')}: ${first.message}` : undefined;
}

/** The script step forms of the scenario's model (docs/steps.md has every field). */
function stepForms(raw: unknown): string {
  const model = isRecord(raw) ? raw.model : undefined;
  return typeof model === 'string' && model in STEP_EXAMPLES ? STEP_EXAMPLES[model as ModelName] : 'see docs/steps.md';
}

/** A value none of a union's branches takes: the types they take, or for a script step, the step forms. */
function noBranch(i: Extract<Issue, { code: 'invalid_union' }>, raw: unknown): string {
  const model = isRecord(raw) ? raw.model : undefined;
  if (i.path[0] === 'script' && i.path.length === 3 && typeof model === 'string' && model in SCRIPT_STEPS) {
    const m = model as ModelName;
    const step = valueAt(raw, i.path);
    const inKind = stepKindIssue(i, step, stepKindsAt(raw, i.path));
    if (inKind) return inKind;
    // A known kind written in a form it does not take (`madvise` alone): its forms.
    const known = formatScenarioStep(step, stepKindsAt(raw, i.path));
    if (known) return known;
    // `{ dmaa: 1 }`: a key that names no kind of step — the kinds, the nearest first.
    const keys = isRecord(step) ? Object.keys(step) : [];
    if (keys.length === 1) return `${unknownKey(keys[0] as string, SCRIPT_STEPS[m])}; accepted forms: ${STEP_EXAMPLES[m]}`;
    return `not a step of the ${m} model (${SCRIPT_STEPS[m].join(', ')}); accepted forms: ${STEP_EXAMPLES[m]}`;
  }
  // Each branch's own complaint about the value itself: the type or the values it takes.
  const forms = i.errors.flatMap((e) => {
    const first = e[0];
    if (e.length !== 1 || !first || first.path.length > 0) return [];
    if (first.code === 'invalid_type') return [first.expected];
    if (first.code === 'invalid_value') return first.values.map((v) => JSON.stringify(v));
    return [];
  });
  if (forms.length >= i.errors.length && forms.length > 0) return `expected ${[...new Set(forms)].join(', ').replace(/, ([^,]*)$/, ' or $1')}`;
  if (i.path.length === 0 || i.path[0] === 'model') return "model: expected one of sva, domains, ioasid (e.g. model: sva)";
  // A branch that took the value's form but not what is inside it (a list with a wrong entry): its complaint.
  const inner = i.errors.find((e) => e.length > 0 && e.every((x) => x.path.length > 0))?.[0];
  if (inner) return `[${fieldPath(inner.path)}] ${inner.message}`;
  return i.message;
}

/**
 * `topology.devices`, `expect.findings.0`; a key that is not a plain name is quoted (`script."proc 0"`), so the
 * path reads unambiguously. A script's step reads as the script engine names it: `script.proc/0[1].dma`.
 */
export function fieldPath(path: readonly PropertyKey[]): string {
  const segs = path.map((seg) => (typeof seg === 'number' || /^[\w/$-]+$/.test(String(seg)) ? String(seg) : JSON.stringify(String(seg))));
  if (path[0] === 'script' && typeof path[2] === 'number') return [`script.${segs[1]}[${segs[2]}]`, ...segs.slice(3)].join('.');
  return segs.join('.');
}

/** The first few issues of a failed parse, each as `path: what is wrong`. */
export function describeZod(e: z.ZodError, raw: unknown): string {
  return e.issues
    .slice(0, 5)
    .map((i) => {
      let msg: string = i.message;
      if (i.code === 'unrecognized_keys') msg = unknownKeys(i, raw);
      // A record's key and a union's branches keep what is wrong inside: say it.
      else if (i.code === 'invalid_key') msg = i.issues.map((x) => x.message).join('; ');
      else if (i.code === 'invalid_union') msg = noBranch(i, raw);
      if (i.code === 'invalid_union' && (i.path.length === 0 || i.path[0] === 'model')) return msg;
      return `${i.path.length > 0 ? fieldPath(i.path) : '(top level)'}: ${msg}`;
    })
    .join('; ');
}
