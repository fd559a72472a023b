// Kernel functions by name. Every function of the model a kernel developer might patch — the core's, a vendor
// driver's, the mm layer's — is defined here under its kernel name and called through its kernel's table, so
// that one name has one implementation at a time and it can be replaced or wrapped:
//
// - a policy value is an alternative implementation (`definePolicy`): the builder picks one by the scenario's
//   policy, and `list()` shows which;
// - a scenario's patch replaces or wraps any function by name (`replace`, `wrap`), and an unknown name is refused
//   with the nearest names;
// - a call goes through `k.fn.NAME(t, …)`: the table's dispatcher looks the current implementation up at the call,
//   so a replacement is seen by every caller, and puts NAME on the task's call chain (lockdep, KASAN and
//   might_sleep print it), whoever implements it.
//
// Each kernel is one model instance (every thread builds its own, identically), so each has its own table.
//
// Typing: a module that defines functions declares their signatures by augmenting `KernelFunctions`:
//
//   declare module '../kernel/kfunc.js' {
//     interface KernelFunctions {
//       iommu_sva_bind_device(t: KTask, dev: DeviceInfo, mm: MmStruct): KGen<number>;
//     }
//   }
//
// and `k.fn.iommu_sva_bind_device(t, dev, mm)` is then typed. Kernel functions with scheduling points are
// generators whose first argument is the task (`KFn`); the few without any (a predicate, a lookup under a lock
// the caller holds) are plain functions (`defineSync`) and get no frame.
import { InputError } from '../runtime/errors.js';
import { distance } from '../runtime/nearest.js';
import type { KTask } from './context.js';
import type { KGen } from './kernel.js';

/** Every kernel function of the model, by kernel name; modules add theirs by declaration merging. */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in the modules that define functions
export interface KernelFunctions {}

export type KFnName = keyof KernelFunctions & string;

/**
 * A kernel function with scheduling points: a generator whose first argument is the task running it. Its other
 * arguments are its own (`never[]` accepts every parameter list; KernelFunctions types each function).
 */
export type KFn = (t: KTask, ...args: never[]) => KGen<unknown>;
export type KSyncFn = (...args: never[]) => unknown;
/** How the dispatcher calls whatever implementation is current: with the arguments its caller passed. */
type Called = (...args: unknown[]) => unknown;

/** Where an implementation came from: the model's own, a policy value's, or a patch's. */
export type KFnOrigin =
  | { readonly kind: 'model' }
  | { readonly kind: 'policy'; readonly policy: string; readonly value: string; readonly values: readonly string[] }
  | { readonly kind: 'patch'; readonly by: string; readonly how: 'replace' | 'wrap' };

/** What `list()` tells about one function. */
export interface KFnInfo {
  readonly name: string;
  /** The kernel source file it models (`drivers/iommu/iommu-sva.c`). */
  readonly file: string;
  readonly generator: boolean;
  /** Every implementation it has had in this model, oldest first; the last is the one called. */
  readonly origins: readonly KFnOrigin[];
}

interface Entry {
  impl: KFn | KSyncFn;
  readonly file: string;
  readonly generator: boolean;
  readonly origins: KFnOrigin[];
}

/** Runs `body` with `name` on the task's call chain (Kernel.call). */
export type FrameCall = <T>(t: KTask, name: string, body: KGen<T>) => KGen<T>;

/** A kernel's table: `fn.NAME(…)` calls NAME's current implementation. */
export type KFnTable = { readonly [N in KFnName]: KernelFunctions[N] };

export class KFuncRegistry {
  private readonly entries = new Map<string, Entry>();
  /** The dispatchers, one per name, made once: what `k.fn` is. */
  readonly table = Object.create(null) as KFnTable;

  constructor(private readonly frame: FrameCall) {}

  /** Define a kernel function with scheduling points. `file`: the kernel file it models. */
  define<N extends KFnName>(name: N, file: string, impl: KernelFunctions[N] & KFn): void {
    this.add(name, file, true, impl, { kind: 'model' });
  }

  /** Define a kernel function without scheduling points (no frame on the call chain: it yields nothing). */
  defineSync<N extends KFnName>(name: N, file: string, impl: KernelFunctions[N] & KSyncFn): void {
    this.add(name, file, false, impl, { kind: 'model' });
  }

  /**
   * Define `name` by a policy: `impls` holds one implementation per value of `policy`, and `value` picks the
   * one called. The others stay listed, so a reader sees the alternatives the policy offers.
   */
  definePolicy<N extends KFnName, V extends string>(
    name: N,
    file: string,
    policy: string,
    value: V,
    impls: Readonly<Record<V, KernelFunctions[N] & KFn>>,
  ): void {
    const impl = impls[value];
    if (typeof impl !== 'function') throw new InputError(`${name}: policy ${policy} has no value '${value}' (${Object.keys(impls).join(', ')})`);
    this.add(name, file, true, impl, { kind: 'policy', policy, value, values: Object.keys(impls) });
  }

  /**
   * A function some planted bug (policy `bug`, the oracles' negative controls) re-creates the pre-fix code of:
   * `none` is its correct implementation, each other key a bug it plants; a bug another function plants leaves
   * this one correct — so a new planted bug touches only the function it is in.
   */
  definePlanted<N extends KFnName>(name: N, file: string, bug: string, impls: Readonly<{ none: KernelFunctions[N] & KFn } & Record<string, KernelFunctions[N] & KFn>>): void {
    const value = Object.hasOwn(impls, bug) ? bug : 'none';
    this.add(name, file, true, impls[value] as KFn, { kind: 'policy', policy: 'bug', value, values: Object.keys(impls) });
  }

  /**
   * The patch file being applied (`applying`): what `by` defaults to, so that `list()` says which file replaced
   * what even when the patch does not say.
   */
  private patch: string | undefined;

  /** Run `body` (a patch's extend) with `file` as the default `by` of its replace and wrap calls. */
  applying<T>(file: string, body: () => T): T {
    const outer = this.patch;
    this.patch = file;
    try {
      return body();
    } finally {
      this.patch = outer;
    }
  }

  /**
   * Whether a patch has replaced or wrapped a function. The model's footprints (footprint.ts) describe the
   * model's own code: a point whose perform calls a patched function may touch words its footprint does not
   * name, so with a patch applied every point takes the threaded runtime's coarse fallback (KPoint).
   */
  patched = false;

  /** Put `impl` in the place of `name` (a patch: `by` names it; the patch file being applied if not given). */
  replace(name: string, impl: KFn | KSyncFn, by: string = this.patch ?? 'patch'): void {
    const e = this.entry(name, by);
    if (typeof impl !== 'function') throw new InputError(`${by}: the replacement of ${name} is not a function`);
    e.impl = impl;
    e.origins.push({ kind: 'patch', by, how: 'replace' });
    this.patched = true;
  }

  /**
   * Put `wrapper(current)` in the place of `name`: the wrapper calls the implementation it wraps when it wants.
   * Typed by the function's declared signature when the name is one the program knows.
   */
  wrap<N extends KFnName>(name: N, wrapper: (orig: KernelFunctions[N]) => KernelFunctions[N], by?: string): void;
  wrap(name: string, wrapper: (orig: Called) => KFn | KSyncFn, by?: string): void;
  wrap(name: string, wrapper: (orig: never) => KFn | KSyncFn, by: string = this.patch ?? 'patch'): void {
    const e = this.entry(name, by);
    const impl = wrapper(e.impl as never);
    if (typeof impl !== 'function') throw new InputError(`${by}: the wrapper of ${name} returned no function`);
    e.impl = impl;
    e.origins.push({ kind: 'patch', by, how: 'wrap' });
    this.patched = true;
  }

  /** The implementation now called for `name` (to call the original from a replacement, take it first). */
  current<N extends KFnName>(name: N, by?: string): KernelFunctions[N];
  current(name: string, by?: string): Called;
  current(name: string, by = 'kernel'): Called {
    return this.entry(name, by).impl as Called;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The kernel file `name` models, when it is a kernel function of this model. */
  fileOf(name: string): string | undefined {
    return this.entries.get(name)?.file;
  }

  list(): KFnInfo[] {
    return [...this.entries].map(([name, e]) => ({ name, file: e.file, generator: e.generator, origins: [...e.origins] }));
  }

  private entry(name: string, by: string): Entry {
    const e = this.entries.get(name);
    if (e) return e;
    const near = nearestNames(name, [...this.entries.keys()], 3);
    throw new InputError(`${by}: no kernel function '${name}'${near.length > 0 ? `; nearest: ${near.join(', ')}` : ''}`);
  }

  private add(name: string, file: string, generator: boolean, impl: KFn | KSyncFn, origin: KFnOrigin): void {
    if (this.entries.has(name)) throw new Error(`kernel function ${name} defined twice`);
    const e: Entry = { impl, file, generator, origins: [origin] };
    this.entries.set(name, e);
    const dispatch = generator ? framed(this.frame, name, e) : direct(e);
    Object.defineProperty(this.table, name, { value: dispatch, enumerable: true });
  }
}

/**
 * The `n` names nearest to `name`: those that contain it (or it contains) first, then by edit distance — what a
 * user who misspelt or half-remembered a kernel function's name was after (`set_dev_pasid` finds every
 * driver's).
 */
export function nearestNames(name: string, names: readonly string[], n: number): string[] {
  const key = name.toLowerCase();
  const score = (c: string): number => {
    const l = c.toLowerCase();
    return (l.includes(key) || key.includes(l) ? 0 : 1000) + distance(key, l);
  };
  return names
    .map((c) => [c, score(c)] as const)
    .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, n)
    .map(([c]) => c);
}

/**
 * The dispatcher of a function with points: its current implementation, called with the caller's arguments, run
 * with `name` on the call chain. A call of up to four arguments after the task passes them as they are (a rest
 * parameter and a spread would make an array at every call of every kernel function).
 */
function framed(frame: FrameCall, name: string, e: Entry): Called {
  return function dispatch(t: unknown, a?: unknown, b?: unknown, c?: unknown, d?: unknown): KGen<unknown> {
    const impl = e.impl as Called;
    let body: unknown;
    // biome-ignore lint/complexity/noArguments: how many the caller passed (a rest parameter would be an array a call)
    switch (arguments.length) {
      case 1:
        body = impl(t);
        break;
      case 2:
        body = impl(t, a);
        break;
      case 3:
        body = impl(t, a, b);
        break;
      case 4:
        body = impl(t, a, b, c);
        break;
      case 5:
        body = impl(t, a, b, c, d);
        break;
      default:
        // biome-ignore lint/complexity/noArguments: every argument, however many, as the caller passed them
        body = impl(...arguments);
    }
    return frame(t as KTask, name, body as KGen<unknown>);
  };
}

/** The dispatcher of a function without points (no frame): its current implementation. */
function direct(e: Entry): Called {
  return function dispatch(a?: unknown, b?: unknown, c?: unknown): unknown {
    const impl = e.impl as Called;
    // biome-ignore lint/complexity/noArguments: how many the caller passed (a rest parameter would be an array a call)
    switch (arguments.length) {
      case 0:
        return impl();
      case 1:
        return impl(a);
      case 2:
        return impl(a, b);
      case 3:
        return impl(a, b, c);
      default:
        // biome-ignore lint/complexity/noArguments: every argument, however many, as the caller passed them
        return impl(...arguments);
    }
  };
}
