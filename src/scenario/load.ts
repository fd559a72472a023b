// Loading and validating scenarios: JSON, YAML, or a JavaScript module exporting `defineScenario({...})` as its
// default. Every problem names the file, the path inside it and what is wrong (exit 2 at the CLI): the shape
// is checked by the schema, the parameters by the model they are for, and a parameter's error is reported
// under the section it was written in.
import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { ZodError } from 'zod';
import '../actors/workloads.js';
import { buildWorkload } from '../runtime/workloads.js';
import { InputError } from '../runtime/errors.js';
import type { Wire } from '../runtime/model.js';
import { type Scenario, scenarioSchema } from './scenario.js';

export class ScenarioError extends InputError {
  override name = 'ScenarioError';
}

const SECTIONS = ['topology', 'policies', 'workload', 'faults'] as const;

/** Read a scenario file (a .js/.mjs module is imported: its default export). */
export async function loadScenarioFile(file: string): Promise<Scenario> {
  const ext = extname(file).toLowerCase();
  let raw: unknown;
  if (ext === '.js' || ext === '.mjs') {
    try {
      raw = ((await import(pathToFileURL(resolve(file)).href)) as { default?: unknown }).default;
    } catch (err) {
      throw new ScenarioError(`${file}: cannot import: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ScenarioError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    try {
      raw = ext === '.json' ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      throw new ScenarioError(`${file}: not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return validateScenario(raw, file);
}

/** Check a scenario object; `where` names it in errors. Never throws anything but a ScenarioError. */
export function validateScenario(raw: unknown, where: string): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) throw new ScenarioError(`${where}: ${describeZod(r.error)}`);
  // An extension is named relative to the scenario; the workload needs where it is.
  const s = r.data.extension ? { ...r.data, extension: resolve(dirname(where), r.data.extension) } : r.data;
  if (s.extension && s.model !== 'sva') throw new ScenarioError(`${where}: extension: only the sva model takes extensions`);
  checkParams(s, where, scenarioParams(s));
  if (s.fix) checkParams(s, where, scenarioParams(s, true));
  return s;
}

/** The model's parameters the scenario stands for (with its fix applied when asked). */
export function scenarioParams(s: Scenario, fixed = false): Record<string, Wire> {
  const p: Record<string, Wire> = { ...s.topology, ...s.policies, ...s.workload, ...s.faults };
  if (s.script) p.steps = compileScript(s.script);
  if (s.extension) p.extension = s.extension;
  if (fixed) Object.assign(p, s.fix ?? {});
  return p;
}

/** The `script` section as the sva model's `steps` parameter: a JSON list, one list of steps per process. */
function compileScript(script: NonNullable<Scenario['script']>): string {
  const procs: unknown[][] = [];
  for (const [name, steps] of Object.entries(script)) {
    const i = Number(name.slice('proc/'.length));
    procs[i] = steps.map((st) => {
      if (typeof st === 'string') return { op: st };
      if ('dma' in st) return { op: 'dma', ...st.dma };
      if ('munmap' in st) return { op: 'munmap', vpn: st.munmap };
      if ('exit' in st) return { op: 'exit', ...st.exit };
      const [proc, step] = st.after.slice('proc/'.length).split(':').map(Number);
      return { op: 'after', proc, step };
    });
  }
  return JSON.stringify(Array.from({ length: procs.length }, (_, i) => procs[i] ?? []));
}

function checkParams(s: Scenario, where: string, params: Record<string, Wire>): void {
  // The same parameter in two sections is ambiguous: say where.
  const seen = new Map<string, string>();
  for (const sec of SECTIONS) {
    for (const key of Object.keys(s[sec])) {
      const prev = seen.get(key);
      if (prev) throw new ScenarioError(`${where}: ${sec}.${key}: already given in ${prev}`);
      seen.set(key, sec);
    }
  }
  if (s.script && s.model !== 'sva') throw new ScenarioError(`${where}: script: only the sva model runs scripted processes`);
  try {
    buildWorkload(s.model, params);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (msg.startsWith('sva: steps: ')) throw new ScenarioError(`${where}: script: ${msg.slice('sva: steps: '.length)}`);
    if (msg.startsWith('extension ')) throw new ScenarioError(`${where}: extension: ${msg}`);
    // The models name the parameter in quotes or first: `sva: teardown must be one of …`.
    const key = Object.keys(params).find((k) => new RegExp(`(^|[\\s'"])${k}([\\s'":]|$)`).test(msg.replace(/^\w+: /, ' ')));
    const sec = key ? (s.fix && key in s.fix ? 'fix' : (seen.get(key) ?? 'workload')) : undefined;
    throw new ScenarioError(`${where}: ${sec && key ? `${sec}.${key}: ` : ''}${msg}`);
  }
}

function describeZod(e: ZodError): string {
  return e.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`)
    .join('; ');
}
