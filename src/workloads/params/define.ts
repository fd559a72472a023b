// The model's parameters as zod schemas: how one is declared (with the text the docs and `--help` show), how a
// preset picks its set from the concepts (topology, policies, faults, workload) and checks a user's values —
// every refusal an InputError naming the preset, the parameter and what it must be (the CLI's exit 2).
import { z } from 'zod';
import { InputError } from '../../runtime/errors.js';
import type { Wire } from '../../runtime/model.js';
import { nearest } from '../../runtime/nearest.js';

/** Where a parameter belongs; a scenario may write it in the section of that name. */
export type Concept = 'topology' | 'policies' | 'faults' | 'workload';
export const CONCEPTS: readonly Concept[] = ['topology', 'policies', 'faults', 'workload'];

/** A parameter's schema: it takes a Wire value and gives the parsed one (its `.description` is the doc text). */
export type ParamSchema = z.ZodType<unknown, Wire>;
export type ParamTable = Readonly<Record<string, ParamSchema>>;

/** How each parameter's values are written, for the docs (`integer 1..1024`, `vtd | amd`). */
const FORMS = new WeakMap<ParamSchema, string>();
function withForm(s: ParamSchema, form: string): ParamSchema {
  FORMS.set(s, form);
  return s;
}
export function formOf(s: ParamSchema): string {
  return FORMS.get(s) ?? 'text';
}

/** Messages that say what the value must be get the value appended: `devices must be an integer in 1..1024, got -5`. */
const MUST = 'must be ';

/** An integer in min..max. */
export function int(min: number, max: number, text = ''): ParamSchema {
  const error = `${MUST}an integer in ${min}..${max}`;
  return withForm(z.number({ error }).int({ error }).min(min, { error }).max(max, { error }).describe(text) as ParamSchema, `${min}..${max}`);
}

/** One of the values (the first is not implied to be the default: the preset says). */
export function oneOf<T extends string>(values: readonly T[], text = ''): ParamSchema {
  return withForm(z.enum(values as [T, ...T[]], { error: `${MUST}one of ${values.join(', ')}` }).describe(text) as ParamSchema, values.join('|'));
}

export function bool(text = ''): ParamSchema {
  return withForm(z.boolean({ error: `${MUST}true or false` }).describe(text) as ParamSchema, 'true|false');
}

/** Free text (a number or a boolean given on the command line is its text); `form` says how it is written. */
export function text(description = '', check?: (v: string) => string | undefined, form = 'text'): ParamSchema {
  const s = z.coerce.string();
  const checked = check
    ? s.superRefine((v, ctx) => {
        const why = check(v);
        if (why !== undefined) ctx.addIssue({ code: 'custom', message: why });
      })
    : s;
  return withForm(checked.describe(description) as ParamSchema, form);
}

/** A parameter a preset narrows keeps the shared one's text. */
export function narrowed(shared: ParamSchema, to: ParamSchema): ParamSchema {
  return withForm(to.describe(shared.description ?? '') as ParamSchema, formOf(to));
}

/**
 * A preset: the parameters it takes from each concept (narrowed where its workload bounds them), the ones only
 * it has, its defaults, and the checks across parameters.
 */
export interface PresetSpec<P extends object> {
  readonly name: string;
  /** One line: what the preset runs. */
  readonly summary: string;
  readonly params: Readonly<Record<keyof P & string, { readonly concept: Concept; readonly schema: ParamSchema }>>;
  readonly defaults: P;
  /** Checks across parameters, on the parsed set: throw an InputError saying which and why. */
  readonly check?: (p: P) => void;
}

/** Take `names` from a concept's table, each as the table has it or as `narrow` bounds it for this preset. */
export function pick<N extends string>(
  concept: Concept,
  table: ParamTable,
  names: readonly N[],
  narrow: Partial<Record<N, ParamSchema>> = {},
): Record<N, { concept: Concept; schema: ParamSchema }> {
  const out = {} as Record<N, { concept: Concept; schema: ParamSchema }>;
  for (const n of names) {
    const shared = table[n];
    if (!shared) throw new Error(`no ${concept} parameter ${n}`);
    const to = narrow[n];
    out[n] = { concept, schema: to ? narrowed(shared, to) : shared };
  }
  return out;
}

/** The preset's parameters from the user's `raw` ones (defaults for the others), or an InputError. */
export function parsePreset<P extends object>(preset: PresetSpec<P>, raw: Readonly<Record<string, Wire>>): P {
  const known = Object.keys(preset.params);
  for (const key of Object.keys(raw)) {
    if (known.includes(key)) continue;
    const near = nearest(key, known);
    throw new InputError(`${preset.name}: unknown parameter '${key}' (${near ? `did you mean '${near}'? ` : ''}known: ${known.join(', ')})`);
  }
  const out: Record<string, unknown> = {};
  const defaults = preset.defaults as Record<string, unknown>;
  const params = preset.params as Readonly<Record<string, { readonly schema: ParamSchema }>>;
  // In the defaults' order: the parsed set is the same object, key for key, as the model always had.
  for (const name of Object.keys(defaults)) {
    const schema = (params[name] as { schema: ParamSchema }).schema;
    const v = raw[name];
    if (v === undefined) {
      out[name] = defaults[name];
      continue;
    }
    const r = schema.safeParse(v);
    if (!r.success) {
      const msg = r.error.issues[0]?.message ?? 'is not valid';
      throw new InputError(msg.startsWith(MUST) ? `${preset.name}: ${name} ${msg}, got ${JSON.stringify(v)}` : `${preset.name}: ${name}: ${msg}`);
    }
    out[name] = r.data;
  }
  const p = out as P;
  preset.check?.(p);
  return p;
}
