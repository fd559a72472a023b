// Patches under review (issue #18): how a scenario's patch files are found, loaded and called, and how what goes
// wrong in them is told. A patch is a module exporting `extend(ctx)` — CommonJS (.cjs, .js), ESM (.mjs, or .js
// of a `"type": "module"` package: Node ≥ 20.19 require()s ESM without top-level await) or TypeScript (.ts,
// .cts, .mts: transpiled in memory with the typescript package found beside the patch, else ours). Modules are
// loaded synchronously (require), so that every worker thread builds the same model the same way.
//
// Every failure names the patch file: it does not exist, does not load (its module throws, or is not valid
// TypeScript), exports no extend(), extend() throws (an unknown kernel function's name among them); a kernel
// function it replaced or wrapped throws while the model runs (the error names the function); one that spins
// without reaching a scheduling point (the host-time watchdog names the function and the patch).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, isAbsolute, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileFunction } from 'node:vm';
import type { KFn, KFuncRegistry, KSyncFn } from '../kernel/kfunc.js';
import { InputError } from '../runtime/errors.js';
import { watchInput, watchNote } from '../runtime/watchdog.js';
import type { ExtensionContext } from './extension.js';

/** A patch's own failure, naming its file (absolute: the scenario loader maps it back to the field it came from). */
export class PatchError extends InputError {
  override name = 'PatchError';
  constructor(
    readonly file: string,
    what: string,
  ) {
    super(`patch ${shown(file)}: ${what}`);
  }
}

/**
 * A kernel function a patch put in place threw while the model ran: its file and the function. Not an input
 * error (the run got somewhere first): the runtime reports the task it ended, with this as its cause.
 */
export class PatchFailure extends Error {
  override name = 'PatchFailure';
  constructor(
    readonly file: string,
    readonly fn: string,
    readonly error: unknown,
  ) {
    super(`patch ${shown(file)}: its ${fn} threw: ${firstLine(error)}`);
  }
}

/** A path as the user reads it: relative to where the command runs when it is below it. */
function shown(file: string): string {
  const r = relative(process.cwd(), file);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r : file;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}

/**
 * The `patches` parameter's files: a JSON array (`["a.cjs","b,c.ts"]`, what a scenario passes) or a
 * comma-separated list (`a.cjs,b.ts`, for `--set`). '' is none. Throws a message for a malformed one.
 */
export function parsePatchList(v: string): string[] {
  const text = v.trim();
  if (text === '') return [];
  if (text.startsWith('[')) {
    let list: unknown;
    try {
      list = JSON.parse(text);
    } catch {
      throw new InputError(`patches: not a JSON array of file names: ${text}`);
    }
    if (!Array.isArray(list) || !list.every((f) => typeof f === 'string' && f !== '')) throw new InputError(`patches: expected an array of file names, got ${text}`);
    return list as string[];
  }
  const files = text.split(',').map((f) => f.trim());
  if (files.some((f) => f === '')) throw new InputError(`patches: an empty file name in ${JSON.stringify(v)} (a comma-separated list: a.cjs,b.ts)`);
  return files;
}

/** What check a `patches` parameter gets (params/faults.ts): undefined when well formed, else why not. */
export function patchListError(v: string): string | undefined {
  try {
    parsePatchList(v);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message.replace(/^patches: /, '') : String(err);
  }
}

/** The `patches` parameter as a scenario writes it for the model: plain when no name has a comma, else JSON. */
export function formatPatchList(files: readonly string[]): string {
  return files.some((f) => f.includes(',') || f.startsWith('[')) ? JSON.stringify(files) : files.join(',');
}

/** A preset's patches in the order they apply: the older `extension` first, then `patches`. */
export function patchFiles(p: { readonly extension: string; readonly patches: string }): string[] {
  return [...(p.extension === '' ? [] : [p.extension]), ...parsePatchList(p.patches)];
}

/** Apply the patches in order; `fns` (the kernel's registry) lets failures of what they replace name them. */
export function applyPatches(files: readonly string[], ctx: ExtensionContext, fns?: KFuncRegistry): void {
  for (const f of files) applyExtension(f, ctx, fns);
}

/**
 * Load one patch and call its extend(ctx). A relative name is the user's, from where the command runs (a
 * scenario's come here already absolute, resolved against the scenario's folder).
 */
export function applyExtension(file: string, ctx: ExtensionContext, fns?: KFuncRegistry): void {
  const path = resolve(file);
  if (!existsSync(path)) throw new PatchError(path, `no such file${path === file ? '' : ` (${path}, from the current directory)`}`);
  if (fns) attribute(fns);
  loaded.add(path);
  const mod = watchInput(`patch ${shown(path)}: its module body`, () => loadModule(path));
  // `export default { extend }` too (an ES module's or a transpiled one's default export).
  const m = mod as { extend?: unknown; default?: { extend?: unknown } | null } | null;
  const extend = m?.extend ?? m?.default?.extend;
  if (typeof extend !== 'function') throw new PatchError(path, `exports no extend(ctx) function (exports: ${exportNames(mod)})`);
  try {
    // What the patch replaces or wraps is recorded as its file's (k.fns.list()), unless it names itself.
    ctx.k.fns.applying(path, () => watchInput(`patch ${shown(path)}: extend(ctx)`, () => (extend as (c: ExtensionContext) => void)(ctx)));
  } catch (err) {
    throw err instanceof PatchError ? err : new PatchError(path, `extend(ctx) threw: ${firstLine(err)}`);
  }
}

function exportNames(mod: unknown): string {
  const names = mod !== null && (typeof mod === 'object' || typeof mod === 'function') ? Object.keys(mod) : [];
  return names.length > 0 ? names.join(', ') : 'none';
}

const ourRequire = createRequire(import.meta.url);
/** TypeScript patches, once evaluated (as require caches a JavaScript module): path → its exports. */
const tsModules = new Map<string, unknown>();

function loadModule(path: string): unknown {
  const ext = extname(path).toLowerCase();
  try {
    if (ext === '.ts' || ext === '.cts' || ext === '.mts') return loadTypeScript(path);
    return ourRequire(path);
  } catch (err) {
    if (err instanceof PatchError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_REQUIRE_ASYNC_MODULE') throw new PatchError(path, 'cannot load: an ES module with top-level await cannot be loaded synchronously (move the await into extend, or drop it)');
    if (code === 'ERR_REQUIRE_ESM') throw new PatchError(path, `cannot load: this Node (${process.versions.node}) cannot require() an ES module: use Node ≥ 20.19, or write the patch as CommonJS (.cjs)`);
    throw new PatchError(path, `cannot load: ${firstLine(err)}`);
  }
}

/** The typescript package: the one the patch's own folder resolves, else the one iommu-sim has. */
function typescriptFor(path: string): typeof import('typescript') {
  for (const req of [createRequire(path), ourRequire]) {
    try {
      return req('typescript') as typeof import('typescript');
    } catch {
      // not there: the next one
    }
  }
  throw new PatchError(path, 'a TypeScript patch needs the typescript package (npm install typescript beside it), or compile it to .js (tsc) and name that');
}

/** Transpile (types stripped, not checked: the user's tsc does that) to CommonJS and evaluate it as its file. */
function loadTypeScript(path: string): unknown {
  const cached = tsModules.get(path);
  if (cached !== undefined) return cached;
  const ts = typescriptFor(path);
  const out = ts.transpileModule(readFileSync(path, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: path,
    reportDiagnostics: true,
  });
  const bad = out.diagnostics?.[0];
  if (bad) {
    const at = bad.file && bad.start !== undefined ? `line ${bad.file.getLineAndCharacterOfPosition(bad.start).line + 1}: ` : '';
    throw new PatchError(path, `not valid TypeScript: ${at}${ts.flattenDiagnosticMessageText(bad.messageText, ' ')}`);
  }
  const module = { exports: {} as unknown };
  const body = compileFunction(out.outputText, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: path });
  body(module.exports, patchRequire(path), module, path, dirname(path));
  tsModules.set(path, module.exports);
  return module.exports;
}

/** require() for a TypeScript patch: from its folder; `iommu-sim` and its entry points from ours when not there. */
function patchRequire(path: string): NodeJS.Require {
  const own = createRequire(path);
  const req = ((spec: string): unknown => {
    try {
      return own(spec);
    } catch (err) {
      const ours = spec === 'iommu-sim' || spec.startsWith('iommu-sim/');
      if (!ours || (err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      return ourRequire(spec);
    }
  }) as NodeJS.Require;
  return Object.assign(req, { resolve: own.resolve, cache: own.cache, main: own.main, extensions: own.extensions });
}

// ---- what a patch put in place, attributed to its file ----

/** The patch files loaded on this thread (absolute). */
const loaded = new Set<string>();
/** Registries whose replace/wrap attribute what patches put in place. */
const attributed = new WeakSet<KFuncRegistry>();

/**
 * From now on, what a patch's code puts in the registry (by replace or wrap, in extend() or later, e.g. when the
 * run starts) is guarded: a throw from it names the patch and the function, and the watchdog names them while it
 * runs. The patch is the loaded file on the caller's stack; the model's own calls (none today) go through as
 * they are. The registry's record of who patched what (`by`) is the patch's own.
 */
function attribute(fns: KFuncRegistry): void {
  if (attributed.has(fns)) return;
  attributed.add(fns);
  const proto = Object.getPrototypeOf(fns) as KFuncRegistry;
  const own = fns as unknown as Record<'replace' | 'wrap', unknown>;
  own.replace = (name: string, impl: KFn | KSyncFn, by: string): void => {
    const file = callerPatch();
    proto.replace.call(fns, name, file ? guard(impl, name, file) : impl, by);
  };
  const wrap = proto.wrap as (this: KFuncRegistry, name: string, wrapper: (orig: never) => KFn | KSyncFn, by: string) => void;
  own.wrap = (name: string, wrapper: (orig: never) => KFn | KSyncFn, by: string): void => {
    const file = callerPatch();
    wrap.call(fns, name, file ? (orig: never) => guard(wrapper(orig), name, file) : wrapper, by);
  };
}

/** The loaded patch whose code is on the stack here (as a path, or a file: URL for an ES module). */
function callerPatch(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  let best: string | undefined;
  let at = Number.POSITIVE_INFINITY;
  for (const f of loaded) {
    const i = Math.min(...[f, pathToFileURL(f).href].map((s) => stack.indexOf(`${s}:`)).map((x) => (x < 0 ? Number.POSITIVE_INFINITY : x)));
    if (i < at) {
      at = i;
      best = f;
    }
  }
  return best;
}

/** `impl` as a patch's: the same calls and points, its throws and its spins naming the patch and the function. */
function guard<F>(impl: F, fn: string, file: string): F {
  if (typeof impl !== 'function') return impl;
  const label = `in ${fn} as patched by ${shown(file)}`;
  const f = impl as unknown as (...args: unknown[]) => unknown;
  return function patched(this: unknown, ...args: unknown[]): unknown {
    const out = guarded(file, fn, label, () => f.apply(this, args));
    return isIterator(out) ? new PatchedGen(out, file, fn, label) : out;
  } as unknown as F;
}

function isIterator(v: unknown): v is Generator<unknown, unknown, unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { next?: unknown }).next === 'function' && typeof (v as { throw?: unknown }).throw === 'function';
}

/** Run a stretch of the patch's code: the watchdog says whose it is; a throw becomes the patch's failure. */
function guarded<T>(file: string, fn: string, label: string, run: () => T, injected?: unknown): T {
  const restore = watchNote(label);
  try {
    return run();
  } catch (err) {
    // Thrown into it and not caught, or already told: as it is.
    if (err instanceof PatchFailure || (injected !== undefined && err === injected)) throw err;
    throw new PatchFailure(file, fn, err);
  } finally {
    restore();
  }
}

/** A patched kernel function's body: its points as they are (no point added: traces are the patch's own). */
class PatchedGen implements Generator<unknown, unknown, unknown> {
  constructor(
    private readonly body: Generator<unknown, unknown, unknown>,
    private readonly file: string,
    private readonly fn: string,
    private readonly label: string,
  ) {}

  [Symbol.iterator](): Generator<unknown, unknown, unknown> {
    return this;
  }

  next(value?: unknown): IteratorResult<unknown, unknown> {
    return guarded(this.file, this.fn, this.label, () => this.body.next(value));
  }

  return(value: unknown): IteratorResult<unknown, unknown> {
    return guarded(this.file, this.fn, this.label, () => this.body.return(value));
  }

  throw(e: unknown): IteratorResult<unknown, unknown> {
    return guarded(this.file, this.fn, this.label, () => this.body.throw(e), e);
  }
}
