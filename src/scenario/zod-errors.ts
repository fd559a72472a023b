// Zod's issues in the words of the place they are about (issue #18, deliverable 6): a refused key lists the keys
// accepted there (with the nearest one when it looks like a typo), a refused value form shows an accepted form
// (`{ munmap: <vpn> }`, an example). Used by the scenario loader's error path (describe.ts, for load.ts) and by the
// script engine for the `steps` parameter (src/workloads/script.ts). A leaf: it imports nothing of the model —
// a step kind is passed in as data (the shape of src/workloads/steps.ts's StepKind) — so the engine may use it.
import { z } from 'zod';
import { nearest } from '../runtime/nearest.js';

/** What a formatter needs of a step kind (src/workloads/steps.ts's StepKind). */
export interface StepShape {
  readonly op: string;
  readonly fields: Readonly<Record<string, z.ZodType>>;
  /** It may be written as its name alone. */
  readonly bare?: boolean;
  /** `{ op: scalar }` fills this field. */
  readonly short?: string;
  /** An example in the scenario's form. */
  readonly example?: string;
}

/** `unknown key 'devv' (did you mean 'dev'?); accepted here: dev, as` — for a key no object of this place takes. */
export function unknownKey(key: string, accepted: readonly string[]): string {
  const near = nearest(key, accepted);
  return `unknown key '${key}'${near ? ` (did you mean '${near}'?)` : ''}; accepted here: ${accepted.length > 0 ? accepted.join(', ') : 'none (write the step by its name alone)'}`;
}

/** The scenario forms a step kind is written in: `munmap`, `{ munmap: <vpn> }`, `{ munmap: { vpn, n, remap } }`. */
export function stepForms(k: StepShape): string[] {
  const fields = Object.keys(k.fields);
  const forms: string[] = [];
  if (k.bare) forms.push(k.op);
  if (k.short) forms.push(`{ ${k.op}: <${k.short}> }`);
  // The ordering constraints' scenario forms are not their fields (`{ after: 'drv/0:2' }`): their example says it.
  if (fields.length > 0 && !['after', 'while', 'expect'].includes(k.op)) forms.push(`{ ${k.op}: { ${fields.join(', ')} } }`);
  return forms;
}

/** `use { munmap: <vpn> } or { munmap: { vpn, n, remap } } (e.g. { munmap: 3 })`: what a refused step of this kind should be. */
export function stepHint(k: StepShape): string {
  const forms = stepForms(k);
  if (forms.length === 0) return `use ${k.example ?? k.op}`;
  const head = forms.length > 1 ? `${forms.slice(0, -1).join(', ')} or ${forms[forms.length - 1]}` : (forms[0] ?? k.op);
  return `use ${head}${k.example && !forms.includes(k.example) ? ` (e.g. ${k.example})` : ''}`;
}

type Issue = z.core.$ZodIssue;

/** The issue to report of several: a key no kind takes first (the likely typo behind a missing field). */
export function firstIssue(issues: readonly Issue[]): Issue {
  return issues.find((i) => i.code === 'unrecognized_keys') ?? (issues[0] as Issue);
}

/** The field an issue is about, relative to the step's object, and the value written there. */
function fieldOf(issue: Issue, skip: number): string {
  return issue.path.slice(skip).map(String).join('.');
}

/**
 * One issue of a step of kind `k` whose fields (`step`, an object, `op` included or not) zod refused, in the
 * step's terms: an unknown key with the kind's accepted keys, or the field, what it must be, what was written,
 * and an accepted form. `skip`: the path segments before the step's fields (script.ts's `[kind, steps, i]`).
 */
export function formatStepIssue(issue: Issue, step: Readonly<Record<string, unknown>>, k: StepShape, skip = 3): string {
  const accepted = Object.keys(k.fields);
  if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => unknownKey(key, accepted)).join('; ');
  const field = fieldOf(issue, skip);
  if (field === '') return `${issue.message}; ${stepHint(k)}`;
  const seen = issue.path.slice(skip).reduce<unknown>((v, seg) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[seg as string] : undefined), step);
  return `${field} ${issue.message}, got ${seen === undefined ? 'nothing' : JSON.stringify(seen)}; ${stepHint(k)}`;
}

/**
 * A step written in the scenario's form that none of its model's forms takes, when its kind is known (`kinds`):
 * a bare name of a kind that takes fields, a scalar where only an object goes, an unknown, wrong or missing field
 * (the value checked against the kind's fields here, so that the message is about that kind alone). undefined
 * when the step names no known kind, or its kind takes it.
 */
export function formatScenarioStep(step: unknown, kinds: readonly StepShape[]): string | undefined {
  const op = typeof step === 'string' ? step : step !== null && typeof step === 'object' && !Array.isArray(step) && Object.keys(step).length === 1 ? Object.keys(step)[0] : undefined;
  const k = kinds.find((x) => x.op === op);
  if (!k) return undefined;
  const fields = Object.keys(k.fields);
  if (typeof step === 'string') return k.bare ? undefined : `${k.op} cannot be written alone: it takes ${fields.join(', ')}; ${stepHint(k)}`;
  const v = (step as Record<string, unknown>)[k.op];
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    if (!k.short) return `${k.op} takes an object of its fields, not ${JSON.stringify(v)}; ${stepHint(k)}`;
    const r = (k.fields[k.short] as z.ZodType).safeParse(v);
    return r.success ? undefined : `${k.op}: ${k.short} ${r.error.issues[0]?.message ?? 'is not valid'}, got ${JSON.stringify(v)}; ${stepHint(k)}`;
  }
  // `{ expect: { h: … } }` is its `results` field written as the step's value.
  const given = (k.op === 'expect' ? { results: v } : v) as Record<string, unknown>;
  const r = z.strictObject(k.fields).safeParse(given);
  if (r.success) return undefined;
  return `${k.op}: ${formatStepIssue(firstIssue(r.error.issues), given, k, 0)}`;
}

/** A zod issue anywhere, with the keys accepted at its place when it is about a key: the generic formatter. */
export function formatZodIssue(issue: Issue, where: string, accepted?: readonly string[]): string {
  if (issue.code === 'unrecognized_keys') return `${where}: ${issue.keys.map((key) => unknownKey(key, accepted ?? [])).join('; ')}`;
  return `${where}: ${issue.message}`;
}
