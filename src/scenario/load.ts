// Loading and validating scenarios: JSON, YAML, or a JavaScript module exporting `defineScenario({...})` as its
// default. Every problem names the file, the path inside it and what is wrong (exit 2 at the CLI): the shape
// is checked by the schema, the parameters by the model they are for, and a parameter's error is reported
// under the section it was written in. A `script` section becomes the model's `steps` parameter; the model checks
// what only it knows (its topology, its locks), and its errors come back as `script.drv/1[2]: …`. Its patches
// (and its fix's) are files relative to it: a missing or failing one is refused under the field that names it.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { watchdogMessage, watchdogSeconds } from '../runtime/watchdog.js';
import { parse as parseYaml } from 'yaml';
import '../workloads/index.js';
import { buildWorkload } from '../runtime/workloads.js';
import { InputError } from '../runtime/errors.js';
import type { Wire } from '../runtime/model.js';
import { describeZod, fieldPath } from './describe.js';
import { type StepKind, toWire } from '../workloads/steps.js';
import { IOMMUFD_KINDS } from '../workloads/iommufd-steps.js';
import { formatPatchList, PatchError } from '../workloads/patch-loader.js';
import { type Scenario, STEP_KINDS, scenarioSchema } from './scenario.js';

export class ScenarioError extends InputError {
  override name = 'ScenarioError';
}

const SECTIONS = ['topology', 'policies', 'workload', 'faults'] as const;

/** The highest process number a script may name (the sva model's `processes` is at most 4096). */
const MAX_SCRIPTED_PROCESS = 4095;

/** Read a scenario file (a .ts/.mts/.js/.mjs module is imported: its default export). */
export async function loadScenarioFile(file: string): Promise<Scenario> {
  const ext = extname(file).toLowerCase();
  let raw: unknown;
  if (ext === '.ts' || ext === '.mts') {
    raw = await importTypeScript(file);
  } else if (ext === '.js' || ext === '.mjs') {
    raw = await importModule(file, pathToFileURL(resolve(file)).href);
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
      const what = ext === '.json' ? 'JSON' : 'YAML';
      // The parser recurses per level: a deep enough nesting exhausts its stack (no scenario nests past 5).
      if (err instanceof RangeError || /Maximum call stack/.test(String(err))) throw new ScenarioError(`${file}: not valid ${what}: nested too deeply (a scenario nests 5 levels at most)`);
      throw new ScenarioError(`${file}: not valid ${what}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return validateScenario(raw, file);
}


/** Imports the module, hands back its default export as plain data (run on a worker thread: see importModule). */
const IMPORTER = `const { parentPort, workerData } = require('node:worker_threads');
import(workerData.url).then(
  (m) => {
    try {
      parentPort.postMessage({ ok: true, value: m.default });
    } catch (e) {
      parentPort.postMessage({ ok: false, message: 'its default export is not plain data: ' + ((e && e.message) || e) });
    }
  },
  (e) => parentPort.postMessage({ ok: false, message: String((e && e.message) || e) }),
);`;

/**
 * Import a scenario module on a worker thread of its own: its body is the user's code, which may throw, loop
 * or leave timers behind; here a loop is stopped after LOAD_LIMIT_MS and reported, and what it exports comes
 * back as data (a getter that throws, a function in it: refused, naming the file).
 */
async function importModule(file: string, url: string): Promise<unknown> {
  // A TypeScript scenario is imported from a data: URL: its messages name the file instead.
  const words = (msg: string): string => msg.replace(/data:text\/javascript;base64,[\w+/=]+/g, file).split('\n')[0] ?? msg;
  const worker = new Worker(IMPORTER, { eval: true, workerData: { url } });
  // Its body is the user's code, and may loop: bounded by the host-time watchdog's limit (--watchdog; 0: none).
  const seconds = watchdogSeconds();
  try {
    return await new Promise<unknown>((resolve, reject) => {
      const timer =
        seconds > 0
          ? setTimeout(() => reject(new ScenarioError(watchdogMessage('input', `scenario ${file}: its module body`, '', seconds).replace(/^iommu-sim: /, ''))), seconds * 1000)
          : undefined;
      const done = (f: () => void): void => {
        clearTimeout(timer);
        f();
      };
      worker.on('message', (m: { ok: true; value: unknown } | { ok: false; message: string }) =>
        done(() => (m.ok ? resolve(m.value) : reject(new ScenarioError(`${file}: cannot import: ${words(m.message)}`)))),
      );
      worker.on('error', (err) => done(() => reject(new ScenarioError(`${file}: cannot import: ${words(err.message)}`))));
      worker.on('exit', (code) => done(() => reject(new ScenarioError(`${file}: cannot import: its module ended the thread (exit ${code})`))));
    });
  } finally {
    await worker.terminate();
  }
}

/**
 * A TypeScript scenario (`import { defineScenario } from 'iommu-sim'`): Node 20 cannot import .ts, so it is
 * transpiled (types stripped, not checked: `tsc --noEmit` does that) and imported from a data: URL — nothing is
 * written beside the scenario. Its imports are resolved first as they would be from the .ts file (relative ones
 * against its folder, packages from its node_modules or the package's own name), since a data: module resolves
 * nothing but absolute URLs.
 */
async function importTypeScript(file: string): Promise<unknown> {
  let ts: typeof import('typescript');
  try {
    ts = (await import('typescript')).default;
  } catch {
    throw new ScenarioError(`${file}: a TypeScript scenario needs the typescript package (npm install typescript), or compile it to .mjs`);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ScenarioError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const path = resolve(file);
  const out = ts.transpileModule(text, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: file,
    reportDiagnostics: true,
    transformers: { after: [absoluteImports(ts, path)] },
  });
  const syntax = out.diagnostics?.[0];
  if (syntax) throw new ScenarioError(`${file}: not valid TypeScript: ${ts.flattenDiagnosticMessageText(syntax.messageText, ' ')}`);
  return importModule(file, `data:text/javascript;base64,${Buffer.from(out.outputText).toString('base64')}`);
}

/** This package's entry point (dist/src/index.js beside dist/src/scenario/load.js). */
const SELF = new URL('../index.js', import.meta.url).href;

/**
 * `./x.js` → file:///…/x.js, `iommu-sim` → file:///…/dist/src/index.js (from the scenario's node_modules, else
 * the iommu-sim that runs it: a scenario kept in a folder of its own needs no install); node: builtins stay; a
 * package found nowhere is refused naming it.
 */
function resolveFrom(path: string, spec: string): string {
  if (spec.startsWith('./') || spec.startsWith('../')) return new URL(spec, pathToFileURL(path)).href;
  if (spec.startsWith('node:') || spec.includes(':') || isBuiltin(spec)) return spec;
  try {
    return pathToFileURL(createRequire(path).resolve(spec)).href;
  } catch {
    if (spec === 'iommu-sim') return SELF;
    throw new ScenarioError(`${path}: cannot import '${spec}': no such package in node_modules from ${dirname(path)}`);
  }
}

function absoluteImports(ts: typeof import('typescript'), path: string) {
  return (ctx: import('typescript').TransformationContext) => {
    const f = ctx.factory;
    const fix = (spec: import('typescript').Expression | undefined): import('typescript').Expression | undefined =>
      spec && ts.isStringLiteral(spec) ? f.createStringLiteral(resolveFrom(path, spec.text)) : spec;
    const visit = (node: import('typescript').Node): import('typescript').Node => {
      if (ts.isImportDeclaration(node)) {
        return f.updateImportDeclaration(node, node.modifiers, node.importClause, fix(node.moduleSpecifier) ?? node.moduleSpecifier, node.attributes);
      }
      if (ts.isExportDeclaration(node)) return f.updateExportDeclaration(node, node.modifiers, node.isTypeOnly, node.exportClause, fix(node.moduleSpecifier), node.attributes);
      if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        return f.updateCallExpression(node, node.expression, node.typeArguments, node.arguments.map((a) => fix(a) ?? a));
      }
      return ts.visitEachChild(node, visit, ctx);
    };
    return (sf: import('typescript').SourceFile) => ts.visitEachChild(sf, visit, ctx);
  };
}

/** Check a scenario object; `where` names it in errors. Never throws anything but a ScenarioError. */
export function validateScenario(raw: unknown, where: string): Scenario {
  try {
    return checkScenario(raw, where);
  } catch (err) {
    // A module's object can throw from a getter or a proxy, and a size can exceed what an array holds: either
    // is this file's problem, said with its name.
    const msg = err instanceof Error ? err.message : String(err);
    if (err instanceof ScenarioError) throw msg.startsWith(`${where}: `) ? err : new ScenarioError(`${where}: ${msg}`);
    if (err instanceof RangeError) throw new ScenarioError(`${where}: (top level): too large or nested too deeply: ${msg}`);
    throw new ScenarioError(`${where}: ${accessorPath(raw) ?? '(top level)'}: reading it threw: ${msg}`);
  }
}

/** The first field of a module's object that is computed when read (a getter): the likely thrower. */
function accessorPath(raw: unknown): string | undefined {
  // Breadth first, without recursion: the object may be nested deeper than the stack goes.
  const queue: [unknown, string][] = [[raw, '']];
  const seen = new Set<unknown>();
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    const [v, path] = queue[i] as [unknown, string];
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(v))) {
      const at = path ? `${path}.${fieldPath([k])}` : fieldPath([k]);
      if (!('value' in d)) return at;
      queue.push([d.value, at]);
    }
  }
  return undefined;
}

function checkScenario(raw: unknown, where: string): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) throw new ScenarioError(`${where}: ${describeZod(r.error, raw)}`);
  const s = scenarioPatches(r.data, where);
  checkParams(s, where, scenarioParams(s), patchFields(s, false));
  if (s.fix) checkParams(s, where, scenarioParams(s, true), patchFields(s, true));
  return s;
}

/**
 * The scenario with its patches as one list each (`extension`, the older spelling, folded into `patches`), every
 * path resolved against the scenario's folder and there: a missing one is refused naming its field.
 */
function scenarioPatches(raw: Scenario, where: string): Scenario {
  for (const sec of SECTIONS) {
    for (const key of ['patches', 'extension']) {
      if ((raw[sec][key] ?? '') !== '') throw new ScenarioError(`${where}: ${sec}.${key}: a scenario names its patches at the top level (patches: [file, …]), relative to its folder`);
    }
  }
  const dir = dirname(resolve(where));
  const located = (field: string, files: readonly string[]): string[] =>
    files.map((f, i) => {
      const path = resolve(dir, f);
      const at = field === 'extension' || field === 'fix.extension' ? field : `${field}[${i}]`;
      if (!existsSync(path)) throw new ScenarioError(`${where}: ${at}: no such file: ${f} (${path}: a scenario's paths are relative to its folder)`);
      return path;
    });
  const listOf = (at: string, o: { readonly patches?: readonly string[] | undefined; readonly extension?: string | undefined }): string[] | undefined => {
    if (o.patches !== undefined && o.extension !== undefined) throw new ScenarioError(`${where}: ${at}extension: give patches: [file, …] or the older extension:, not both`);
    if (o.extension !== undefined) return o.extension === '' ? [] : located(`${at}extension`, [o.extension]);
    return o.patches === undefined ? undefined : located(`${at}patches`, o.patches);
  };
  // `extension` stays, resolved, to name the field it was written in.
  const resolved = (files: string[] | undefined, ext: string | undefined) => ({ ...(files ? { patches: files } : {}), ...(ext !== undefined ? { extension: files?.[0] ?? '' } : {}) });
  const { extension: _e, patches: _p, fix, ...rest } = raw;
  const top = resolved(listOf('', raw), raw.extension);
  if (!fix) return { ...rest, ...top } as Scenario;
  const { extension: _fe, patches: _fp, ...fixRest } = fix;
  return { ...rest, ...top, fix: { ...fixRest, ...resolved(listOf('fix.', fix), fix.extension) } } as Scenario;
}

/** Each patch file of a variant → the scenario field that names it (for its errors). */
function patchFields(s: Scenario, fixed: boolean): Map<string, string> {
  const own = fixed && s.fix?.patches !== undefined;
  const at = own ? 'fix.' : '';
  const o = (own ? s.fix : s) ?? {};
  const files = o.patches ?? [];
  return new Map(files.map((f, i) => [f, o.extension !== undefined ? `${at}extension` : `${at}patches[${i}]`]));
}

/** The model's parameters the scenario stands for (with its fix applied when asked). */
export function scenarioParams(s: Scenario, fixed = false): Record<string, Wire> {
  const p: Record<string, Wire> = { ...s.topology, ...s.policies, ...s.workload, ...s.faults };
  const steps = compileScript(s);
  if (steps !== undefined) p.steps = steps;
  // The fixed variant's own patches replace the scenario's; without any, it keeps them.
  const { patches: fixOwn, extension: fixExt, ...fix } = (fixed && s.fix) || {};
  // A Scenario not from validateScenario may still have only the older spelling.
  const older = (ext: string | undefined): string[] | undefined => (ext === undefined ? undefined : ext === '' ? [] : [ext]);
  const fixPatches = fixOwn ?? older(fixExt);
  const patches = fixPatches ?? s.patches ?? older(s.extension) ?? [];
  if (patches.length > 0 || fixPatches) p.patches = formatPatchList(patches);
  Object.assign(p, fix);
  return p;
}

/** `drv/0:2` → the actor and the step. */
function afterRef(ref: string): { actor: string; step: number } {
  const i = ref.lastIndexOf(':');
  return { actor: ref.slice(0, i), step: Number(ref.slice(i + 1)) };
}

/** The constraints, as every model's `steps` take them; undefined for a step of the model's own. */
function orderOp(st: object): Record<string, Wire> | undefined {
  const o = st as { after?: string; while?: { task: string; holds: string } };
  if (typeof o.after === 'string') return { op: 'after', ...afterRef(o.after) };
  if (o.while) return { op: 'while', task: o.while.task, lock: o.while.holds };
  return undefined;
}

/** The `script` section as the model's `steps` parameter (JSON), or undefined without one. */
function compileScript(s: Scenario): string | undefined {
  if (!s.script) return undefined;
  const kindsOf = (actor: string): readonly StepKind[] => (actor.startsWith('vmm/') ? IOMMUFD_KINDS : STEP_KINDS[s.model]);
  const wireOf = (actor: string) => (st: object | string): Record<string, Wire> => (typeof st === 'object' ? orderOp(st) : undefined) ?? (toWire(kindsOf(actor), st) as Record<string, Wire>);
  const script = s.script as Record<string, (object | string)[]>;
  if (s.model === 'sva') return compileSva(script, wireOf('proc/0'));
  return JSON.stringify(Object.fromEntries(Object.entries(script).map(([a, steps]) => [a, steps.map(wireOf(a))])));
}

/**
 * sva: a JSON list, one list of steps per process (an `after` names its process by number); with pciehp actors
 * (`hp/N`, numbered on their own) the object of actors, every model's form.
 */
function compileSva(script: Record<string, (object | string)[]>, wire: (st: object | string) => Record<string, Wire>): string {
  if (Object.keys(script).some((n) => n.startsWith('hp/') || n.startsWith('kthread/'))) return JSON.stringify(Object.fromEntries(Object.entries(script).map(([a, steps]) => [a, steps.map(wire)])));
  const procs: Wire[][] = [];
  for (const [name, steps] of Object.entries(script)) {
    const i = Number(name.slice('proc/'.length));
    // The list is dense up to the highest process: a name past any topology is refused before it is built.
    if (!(i <= MAX_SCRIPTED_PROCESS)) throw new ScenarioError(`script.${name}: no such process (a topology has ${MAX_SCRIPTED_PROCESS + 1} at most)`);
    procs[i] = steps.map((st): Wire => {
      const w = wire(st);
      const actor = w.op === 'after' ? String(w.actor) : '';
      return actor.startsWith('proc/') ? { op: 'after', proc: Number(actor.slice('proc/'.length)), step: w.step as number } : w;
    });
  }
  return JSON.stringify(Array.from({ length: procs.length }, (_, i) => procs[i] ?? []));
}

function checkParams(s: Scenario, where: string, params: Record<string, Wire>, fields: ReadonlyMap<string, string>): void {
  // The same parameter in two sections is ambiguous: say where.
  const seen = new Map<string, string>();
  for (const sec of SECTIONS) {
    for (const key of Object.keys(s[sec])) {
      const prev = seen.get(key);
      if (prev) throw new ScenarioError(`${where}: ${sec}.${key}: already given in ${prev}`);
      seen.set(key, sec);
    }
  }
  try {
    buildWorkload(s.model, params);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const steps = `${s.model}: steps: `;
    if (msg.startsWith(steps)) {
      // `drv/1[2]: …` is the field script.drv/1[2]; anything else is about the script as a whole.
      const rest = msg.slice(steps.length);
      const m = /^([a-z]+\/\d+(?:\[\d+\])?): ([\s\S]*)$/.exec(rest);
      throw new ScenarioError(`${where}: ${m ? `script.${m[1]}: ${m[2]}` : `script: ${rest}`}`);
    }
    // A patch that does not load, or whose extend() throws: under the field that names it.
    if (err instanceof PatchError) throw new ScenarioError(`${where}: ${fields.get(err.file) ?? 'patches'}: ${msg}`);
    // The models name the parameter in quotes or first: `sva: teardown must be one of …`.
    const key = Object.keys(params).find((k) => new RegExp(`(^|[\\s'"])${k}([\\s'":]|$)`).test(msg.replace(/^\w+: /, ' ')));
    const sec = key ? (s.fix && key in s.fix ? 'fix' : (seen.get(key) ?? 'workload')) : undefined;
    throw new ScenarioError(`${where}: ${sec && key ? `${sec}.${key}: ` : ''}${msg}`);
  }
}
