// The parameter and step references, generated from the schemas: docs/parameters.md and docs/steps.md
// (scripts/params-doc.mjs writes them; test/params-doc.test.ts checks it is up to date) and the `Parameters (--set)` block of each
// preset's `--help`.
import type { z } from 'zod';
import { CONCEPTS, type Concept, formOf, type ParamSchema, type PresetSpec } from './params/define.js';
import { DOMAINS_PRESET } from './presets/domains.js';
import { IOASID_PRESET } from './presets/ioasid.js';
import { ACTOR_KINDS, ORDER_KINDS, PRESET_ACTORS, type StepKind } from './steps.js';
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
  if (k.short) forms.push(`\`{ ${k.op}: ${k.short} }\``);
  if (fields.length > 0 && k.op !== 'after' && k.op !== 'while') forms.push(`\`{ ${k.op}: { ${fields.join(', ')} } }\``);
  return forms.join(', ');
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

function fieldRows(k: StepKind): string[] {
  return Object.entries(k.fields).map(([f, schema]) => {
    const optional = schema.safeParse(undefined).success;
    return `| | \`${f}\`${optional ? ' (optional)' : ''} | ${cell(describedAs(schema))} |`;
  });
}

/** docs/steps.md: the step vocabulary by actor kind, every step kind from its schema, and what each preset runs. */
export function stepsMarkdown(): string {
  const lines = [
    '# Script steps',
    '',
    '<!-- Generated from the schemas in src/workloads/steps.ts by `node scripts/params-doc.mjs` (after `npm run build`); test/params-doc.test.ts checks it is up to date. Do not edit by hand. -->',
    '',
    "A scenario's `script` section names actors and lists their steps; one engine (src/workloads/script.ts) checks",
    'them all — each actor against its kind, each step against its kind (one zod union discriminated by actor kind,',
    "each kind's steps by `op`), the actors an `after` names, no cycle in the ordering constraints — and runs each",
    "actor as a kernel task named for it (`proc/0`: task `proc0`). The `steps` parameter carries the steps as",
    '`{ "op": kind, …fields }`.',
  ];
  const section = (title: string, intro: string, kinds: readonly StepKind[]): void => {
    lines.push('', `## ${title}`, '', intro, '', '| step | field | what |', '|---|---|---|');
    for (const k of kinds) {
      lines.push(`| **${k.op}** ${stepForms(k)} | | ${cell(k.text)} |`, ...fieldRows(k));
    }
  };
  lines.push('', '## Presets', '', '| preset | actors | their steps |', '|---|---|---|');
  for (const [preset, actors] of Object.entries(PRESET_ACTORS)) {
    for (const [kind, steps] of Object.entries(actors)) lines.push(`| ${preset} | \`${kind}/N\` | ${steps.map((k) => k.op).join(', ')} |`);
  }
  lines.push('', "A domains `drv/N`, `proc/N` or `iopf/N` actor takes every domains step: the three names are for the reader (a `proc/N` binds an mm through the domain path, as a driver binding a process would).");
  section('Ordering constraints (every actor)', "Scenario forms: `{ after: 'drv/0:2' }` and `{ while: { task: proc0, holds: iommu_sva_lock } }`.", ORDER_KINDS);
  for (const [kind, a] of Object.entries(ACTOR_KINDS)) section(`${kind}/N`, a.text, a.steps);
  return `${lines.join('\n')}\n`;
}
