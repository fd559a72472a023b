// Extension points: a scenario may replace or wrap any kernel function of the model by its kernel name (k.fns:
// the core's, each vendor driver's, the mm layer's …) or an IOMMU driver's ops with its own code — to model a
// patch under review — without editing the project. A patch is a module (loaded with require, so that every
// worker thread builds the same workload synchronously) exporting `extend(ctx)`; it gets the kernel's function
// registry (`ctx.k.fns.replace` / `wrap` / `current`, `ctx.k.fn.NAME` to call one), the kernel API
// (`ctx.kernel`: src/api/kernel.ts, the package's `iommu-sim/kernel`), the ops tables and the devices.
import type { DmaApi } from '../core/dma-iommu.js';
import type { Sva } from '../core/iommu-sva.js';
import type { DeviceInfo, IommuOps } from '../core/types.js';
import type { IommuUnit } from '../hw/iommu.js';
import type { KernelApi } from '../api/kernel.js';
import type { Kernel } from '../kernel/kernel.js';
import type { KernelFunctions, KFn, KFnName } from '../kernel/kfunc.js';
import { InputError } from '../runtime/errors.js';

export { kernelApi } from '../api/kernel.js';

/** What a patch's `extend(ctx)` is given (the package exports it as `PatchContext`). */
export interface ExtensionContext {
  /** The kernel: `k.fns.replace(name, impl, by)`, `k.fns.wrap(name, orig => impl, by)`, `k.fns.current(name)`, `k.fn.NAME(t, …)`. */
  readonly k: Kernel;
  readonly sva: Sva;
  readonly dma: DmaApi;
  readonly units: readonly IommuUnit[];
  readonly devices: readonly DeviceInfo[];
  /** The IOMMU driver's ops for unit u, and a way to put others in their place (wrap: call the old ones). */
  iommuOps(u: number): IommuOps;
  setIommuOps(u: number, ops: IommuOps): void;
  /** The core's step `name` as it is now (bound: call it to wrap it), and a way to put another in its place. */
  coreStep<N extends CoreStepName>(name: N): CoreSteps[N];
  setCoreStep<N extends CoreStepName>(name: N, step: CoreSteps[N]): void;
  /** The kernel API (`iommu-sim/kernel`) bound to this kernel: `yield* ctx.kernel.mutex_lock(t, lock)`, kzalloc, … */
  readonly kernel: KernelApi;
}

/**
 * The core steps an extension may replace, by their old short names; each is the kernel function of that name
 * in the kernel's registry (k.fns), so a replacement is what every caller calls. Kernel names work too, and so
 * does any registered function (`k.fns.replace` / `k.fns.wrap` directly is the general way).
 */
export const CORE_STEP_KERNEL_NAMES = {
  bind: 'iommu_sva_bind_device',
  unbind: 'iommu_sva_unbind_device',
  release: 'iommu_sva_mm_release',
  invalidate: 'iommu_sva_invalidate_range',
  handleIopf: 'iommu_sva_handle_iopf',
  pasidGet: 'iommu_alloc_pasid',
  pasidPut: 'iommu_free_pasid',
} as const satisfies Record<string, KFnName>;
type Short = keyof typeof CORE_STEP_KERNEL_NAMES;
export type CoreSteps = { readonly [S in Short]: KernelFunctions[(typeof CORE_STEP_KERNEL_NAMES)[S]] } & KernelFunctions;
export type CoreStepName = keyof CoreSteps & string;
export const CORE_STEPS: readonly Short[] = Object.keys(CORE_STEP_KERNEL_NAMES) as Short[];

/** The getter and setter of ExtensionContext for the core steps: the kernel's registry under their names. */
export function coreStepTable(k: Kernel): Pick<ExtensionContext, 'coreStep' | 'setCoreStep'> {
  const kernelName = (name: string): string => {
    const n = (CORE_STEP_KERNEL_NAMES as Record<string, string>)[name] ?? name;
    if (!k.fns.has(n)) throw new InputError(`extension: no core step '${name}' (${CORE_STEPS.join(', ')}, or a kernel function's name)`);
    return n;
  };
  return {
    coreStep: (name) => k.fns.current(kernelName(name), 'extension') as never,
    setCoreStep: (name, step) => {
      const n = kernelName(name);
      if (typeof step !== 'function') throw new InputError(`extension: core step '${name}' must be a generator function`);
      k.fns.replace(n, step as KFn);
    },
  };
}

// The loader (applyExtension, applyPatches) is src/workloads/patch-loader.ts.
