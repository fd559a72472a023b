// The parameter and step references, generated from the schemas: docs/parameters.md and docs/steps.md
// (scripts/params-doc.mjs writes them; test/params-doc.test.ts checks it is up to date) and the `Parameters (--set)` block of each
// preset's `--help`.
import type { z } from 'zod';
import { CONCEPTS, type Concept, formOf, type ParamSchema, type PresetSpec } from './params/define.js';
import { DOMAINS_PRESET } from './presets/domains.js';
import { IOASID_PRESET } from './presets/ioasid.js';
import { ACTOR_KINDS, COMMON_KINDS, PRESET_ACTORS, type StepKind } from './steps.js';
import { SVA_PRESET } from './presets/sva.js';

/** What the docs read of a preset, whatever its parameter type: its names, their schemas and defaults. */
type AnyPreset = Pick<PresetSpec<object>, 'name' | 'summary'> & {
  readonly params: Readonly<Record<string, { readonly concept: Concept; readonly schema: ParamSchema }>>;
  readonly defaults: object;
};
export const PRESETS: readonly AnyPreset[] = [SVA_PRESET, DOMAINS_PRESET, IOASID_PRESET];

const TITLES: Readonly<Record<Concept, string>> = {
  topology: 'Topology — what the simulated machine is made of',
  policies: 'Policies — the choices the seeds argue about',
  faults: 'Faults — planted bugs, misbehaving hardware, patches',
  workload: 'Workload — what the actors do',
};

interface Row {
  readonly name: string;
  readonly text: string;
  /** Per preset: its default and, when it bounds the parameter more narrowly, its values. */
  readonly at: Map<string, { readonly def: unknown; readonly form: string }>;
  form: string;
}

/** The parameters of a concept, one row per parameter (two presets' own ones of one name: a row each). */
function rows(concept: Concept): Row[] {
  const out: Row[] = [];
  for (const preset of PRESETS) {
    for (const [name, { concept: c, schema }] of Object.entries(preset.params) as [string, { concept: Concept; schema: ParamSchema }][]) {
      if (c !== concept) continue;
      const text = schema.description ?? '';
      let row = out.find((r) => r.name === name && r.text === text);
      if (!row) {
        row = { name, text, at: new Map(), form: formOf(schema) };
        out.push(row);
      }
      row.at.set(preset.name, { def: (preset.defaults as Record<string, unknown>)[name], form: formOf(schema) });
    }
  }
  // The values a row shows are the widest: its first preset's unless another takes more.
  for (const r of out) r.form = [...r.at.values()].reduce((a, b) => (b.form.length > a.length ? b.form : a), r.form);
  return out;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const shown = (v: unknown): string => (v === '' ? "''" : String(v));

/** docs/parameters.md. */
export function parametersMarkdown(): string {
  const lines = [
    '# Model parameters',
    '',
    '<!-- Generated from the schemas in src/workloads/params/ by `node scripts/params-doc.mjs` (after `npm run build`); test/params-doc.test.ts checks it is up to date. Do not edit by hand. -->',
    '',
    'One model, one parameter set: every parameter is declared once, in the concept it belongs to',
    '(src/workloads/params/topology.ts, policies.ts, faults.ts, workload.ts). The presets `sva`, `domains` and',
    '`ioasid` each take a part of it with their own defaults; a scenario writes a parameter in the section of its',
    'concept by convention (`topology:`, `policies:`, `faults:`, `workload:`), the CLI as `--set name=value`. A preset column',
    "shows the preset's default, and its values when it bounds the parameter more narrowly; — : the preset does",
    'not take it.',
    '',
    '| preset | what it runs |',
    '|---|---|',
    ...PRESETS.map((p) => `| \`${p.name}\` | ${cell(p.summary)} |`),
  ];
  for (const concept of CONCEPTS) {
    lines.push('', `## ${TITLES[concept]}`, '', `| parameter | values | ${PRESETS.map((p) => p.name).join(' | ')} | what |`, `|---|---|${PRESETS.map(() => '---|').join('')}---|`);
    for (const r of rows(concept)) {
      const at = PRESETS.map((p) => {
        const a = r.at.get(p.name);
        if (!a) return '—';
        return a.form === r.form ? `\`${cell(shown(a.def))}\`` : `\`${cell(shown(a.def))}\` (${cell(a.form)})`;
      });
      lines.push(`| \`${r.name}\` | ${cell(r.form)} | ${at.join(' | ')} | ${cell(r.text)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The `Parameters (--set)` block of a preset's --help: name=values (default), and what it is. */
export function presetHelp(name: string): string {
  const preset = PRESETS.find((p) => p.name === name);
  if (!preset) throw new Error(`no preset ${name}`);
  const lines = ['Parameters (--set name=value; docs/parameters.md has them all, by concept):'];
  for (const concept of CONCEPTS) {
    const entries = (Object.entries(preset.params) as [string, { concept: Concept; schema: ParamSchema }][]).filter(([, p]) => p.concept === concept);
    if (entries.length === 0) continue;
    lines.push(`  ${concept}:`);
    for (const [n, { schema }] of entries) {
      const head = `    ${n}=${formOf(schema)} (${shown((preset.defaults as Record<string, unknown>)[n])})`;
      lines.push(`${head}  ${schema.description ?? ''}`);
    }
  }
  return lines.join('\n');
}

/** A step kind's scenario forms, as a reader writes them. */
function stepForms(k: StepKind): string {
  const fields = Object.keys(k.fields);
  const forms = [];
  if (k.bare) forms.push(`\`${k.op}\``);
  if (k.short) forms.push(`\`{ ${k.op}: <${k.short}> }\``);
  if (fields.length > 0 && !ORDER_OPS.includes(k.op)) forms.push(`\`{ ${k.op}: { ${fields.join(', ')} } }\``);
  return forms.join(', ');
}

const ORDER_OPS = ['after', 'while', 'expect'];

interface Def {
  readonly type: string;
  readonly innerType?: z.ZodType;
  readonly defaultValue?: unknown;
  readonly entries?: Readonly<Record<string, string>>;
}
const defOf = (s: z.ZodType): Def => s.def as unknown as Def;

/** The schema a field's wrappers (optional, default) wrap. */
function inner(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let d = defOf(s); (d.type === 'optional' || d.type === 'default') && d.innerType; d = defOf(s)) s = d.innerType;
  return s;
}

/** A field's type as a reader writes it: `0..1023`, `true\|false`, `paging\|dma`, `name`. */
function typeOf(schema: z.ZodType): string {
  const s = inner(schema);
  const d = defOf(s);
  if (d.type === 'number') {
    const n = s as unknown as { minValue: number | null; maxValue: number | null };
    return `integer ${n.minValue ?? ''}..${n.maxValue ?? ''}`;
  }
  if (d.type === 'boolean') return 'true|false';
  if (d.type === 'enum') return Object.values(d.entries ?? {}).join('|');
  if (d.type === 'string') return 'name';
  if (d.type === 'record') return '{ name: expectation }';
  return d.type;
}

/** A field's default (— when it has none: required, or left out meaning what its text says). */
function defaultOf(schema: z.ZodType): string {
  for (let s: z.ZodType | undefined = schema; s; s = defOf(s).innerType) {
    const d = defOf(s);
    if (d.type === 'default') return `\`${String(d.defaultValue)}\``;
  }
  return schema.safeParse(undefined).success ? '(left out)' : 'required';
}

/**
 * A schema's description, or that of the schema it wraps: zod keeps `.describe()` on the instance it is called on,
 * so a field written `integer(…).describe(…).default(1)` carries its text one wrapper down.
 */
function describedAs(schema: z.ZodType): string {
  for (let s: z.ZodType | undefined = schema; s !== undefined; s = (s.def as { innerType?: z.ZodType }).innerType) {
    if (s.description !== undefined) return s.description;
  }
  return '';
}

/** What a field holding a name names, from the kind's `names`. */
function nameNote(k: StepKind, f: string): string {
  const n = k.names?.[f];
  if (!n) return '';
  const kinds = typeof n.kind === 'string' ? [n.kind] : n.kind;
  return n.defines ? ` (makes: ${kinds.join('|')})` : ` (takes: ${kinds.join('|')})`;
}

function fieldRows(k: StepKind): string[] {
  return Object.entries(k.fields).map(([f, schema]) => `| | \`${f}\` | ${cell(`${typeOf(schema)}${nameNote(k, f)}`)} | ${defaultOf(schema)} | ${cell(describedAs(schema))} |`);
}

const RESULTS = [
  '## Results: `as`, names and `expect`',
  '',
  'A step that returns something may keep it under a name: `as: h` on `open`/`bind` (the fd, or -errno), a domains',
  "`bind` (the bond's handle), a return code (`attach`, `free`, `madvise`, …: 0 or -errno). A step that makes an",
  'object names it in its own field (`alloc: { domain: A }`, `alloc_set: { set: S }`, `ioas_alloc: I`), and that name',
  'keeps its result too (the domain, or -ENOMEM when iommu_domain_alloc returned NULL; the IOASID or -errno). Later',
  'steps take the name where they take the object (`{ unbind: h }`, `{ close: q }`, `{ attach: { domain: A, dev: 1 } }`,',
  '`{ free: X }`), and `{ expect: { h: -EBUSY } }` checks results. Names are the whole script\'s: one actor may check',
  "what another's step returned (an `after` orders them).",
  '',
  '- **At load** (exit 2, naming the actor, the step and the name): every name a step takes or checks must be made by',
  "  an earlier step of the same actor or by a step of another actor; it must name the kind of thing the step takes (an",
  "  fd where an fd goes: `free: h` with h a bond is refused); one name is one kind of thing. An unbind of a handle",
  '  no step binds is refused there, not at run time.',
  '- **At run time, a failed result**: a step that takes a name whose step failed (the bind that returned -EBUSY) does',
  '  not run; its trace line says so: `proc/0[2]: unbind: skipped: h = -EBUSY (proc/0[0])`. The run goes on.',
  '- **`expect`**: each name must meet its expectation — `ok` (≥ 0: an fd, a handle, a domain, an id, or 0), `error`',
  '  (any -errno), `-EBUSY` (that errno: the names of src/kernel/errno.ts), or an integer (exactly that). One that does',
  '  not, or whose step has not run yet, is a finding of kind `script` (`iommu-sim: script expectation failed:',
  "  proc/0[3]: h: expected -EBUSY, got 3 (set by proc/0[0])`); the run goes on. A scenario that wants it lists",
  '  `script` in `expect.findings`; by default (`forbid: any`) it fails the run.',
  '',
  '```yaml',
  'script:',
  '  proc/0: [{ bind: { dev: 1, as: h } }, { expect: { h: ok } }, { dma: { fd: h, n: 4 } }, { unbind: h }, exit]',
  '```',
];

/** docs/steps.md: the step vocabulary by actor kind, every step kind from its schema, and what each preset runs. */
export function stepsMarkdown(): string {
  const lines = [
    '# Script steps',
    '',
    '<!-- Generated from the schemas in src/workloads/steps.ts by `node scripts/params-doc.mjs` (after `npm run build`); test/params-doc.test.ts checks it is up to date. Do not edit by hand. -->',
    '',
    "A scenario's `script` section names actors and lists their steps; one engine (src/workloads/script.ts) checks",
    'them all — each actor against its kind, each step against its kind (one zod union discriminated by actor kind,',
    "each kind's steps by `op`), the names steps make and take, the actors an `after` names, no cycle in the ordering",
    "constraints — and runs each actor as a kernel task named for it (`proc/0`: task `proc0`). The `steps` parameter",
    '(`--set steps=…`) carries the same steps as `{ "op": kind, …fields }` (`expect`: `{ "op": "expect", "results": {…} }`).',
    '',
    "A step is written as its name alone when all its fields may be left out (`bind`), as `{ kind: value }` when one",
    'field says it (`{ munmap: 3 }`, `{ close: q }`), or as `{ kind: { field: value, … } }`. A field left out takes its',
    "default; `(left out)` means what the field's text says (the process's own device, the newest fd). A refused step",
    'lists the accepted keys of its kind or shows an accepted form (src/scenario/zod-errors.ts).',
  ];
  const section = (title: string, intro: string, kinds: readonly StepKind[]): void => {
    lines.push('', `## ${title}`, '', intro, '', '| step | field | type | default | what |', '|---|---|---|---|---|');
    for (const k of kinds) {
      const example = k.example ? ` Example: \`${k.example}\`.` : '';
      lines.push(`| **${k.op}** ${stepForms(k)} | | | | ${cell(k.text)}${cell(example)} |`, ...fieldRows(k));
    }
  };
  lines.push('', '## Presets', '', '| preset | actors | their steps |', '|---|---|---|');
  for (const [preset, actors] of Object.entries(PRESET_ACTORS)) {
    for (const [kind, steps] of Object.entries(actors)) lines.push(`| ${preset} | \`${kind}/N\` | ${steps.map((k) => k.op).join(', ')} |`);
  }
  lines.push('', "A domains `drv/N`, `proc/N` or `iopf/N` actor takes every domains step: the three names are for the reader (a `proc/N` binds an mm through the domain path, as a driver binding a process would).");
  lines.push('', ...RESULTS);
  section('Every actor: ordering constraints and expect', "Scenario forms: `{ after: 'drv/0:2' }`, `{ while: { task: proc0, holds: iommu_sva_lock } }` and `{ expect: { h: -EBUSY, q: ok } }`.", COMMON_KINDS);
  for (const [kind, a] of Object.entries(ACTOR_KINDS)) section(`${kind}/N`, a.text, a.steps);
  return `${lines.join('\n')}\n`;
}

/** The `Script steps` block of the --help of the commands that run scenarios: each actor kind and its steps, short. */
export function stepsHelp(): string {
  const lines = ["Script steps (a scenario's `script:`, or --set steps=…; every field, its default and an example: docs/steps.md):"];
  // `open{dev,as}`: a kind and its fields; alone when it has none.
  const short = (k: StepKind): string => (Object.keys(k.fields).length === 0 ? k.op : `${k.op}{${Object.keys(k.fields).join(',')}}`);
  const wrap = (head: string, items: readonly string[]): void => {
    let line = head;
    for (const item of items) {
      if (line.length + item.length > 116 && line.trim() !== head.trim()) {
        lines.push(line.trimEnd());
        line = ' '.repeat(head.length);
      }
      line += `${item} `;
    }
    lines.push(line.trimEnd());
  };
  for (const [kind, a] of Object.entries(ACTOR_KINDS)) wrap(`  ${`${kind}/N`.padEnd(7)} `, a.steps.map(short));
  lines.push('          (the domains model: its proc/N and iopf/N take every drv/N step; proc/N above is the sva model\'s)');
  wrap(`  ${'every'.padEnd(7)} `, COMMON_KINDS.map((k) => k.example ?? k.op));
  lines.push(
    '  e.g. proc/0: [{ bind: { dev: 1, as: h } }, { dma: { fd: h } }, { unbind: h }, { expect: { h: ok } }, exit]',
    '  `as: name` keeps a step\'s result (fd, handle, domain, id, 0 or -errno); a later step takes the name; `expect`',
    '  checks it (ok, error, -EBUSY, an integer: a `script` finding when not met); a step on a failed one is skipped.',
  );
  return lines.join('\n');
}
