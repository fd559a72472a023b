// Extension points: a scenario may replace or wrap any IOMMU driver op, device-driver svm op or core step (SVA
// bind/unbind, the MMU notifier's release and invalidate, page-request handling, PASID get/put — any kernel
// function registered by name, k.fns) with its own code — to model a patch under review — without editing the project. An extension is a CommonJS module (loaded with
// require, so that every worker thread builds the same workload synchronously) exporting
// `extend(ctx)`; it gets the kernel (k.step, k.point, k.call: the scheduling points its code yields), the
// ops tables to read and replace, the IOMMU units' memory and the core's state, and the kernel's primitives.
import type { DmaApi } from '../core/dma-iommu.js';
import type { Sva } from '../core/iommu-sva.js';
import type { DeviceInfo, IommuOps } from '../core/types.js';
import type { IommuUnit } from '../hw/iommu.js';
import * as delay from '../kernel/delay.js';
import type { Kernel } from '../kernel/kernel.js';
import type { KernelFunctions, KFn, KFnName } from '../kernel/kfunc.js';
import * as mutex from '../kernel/mutex.js';
import * as rcu from '../kernel/rcu.js';
import * as spinlock from '../kernel/spinlock.js';
import { InputError } from '../runtime/errors.js';

export interface ExtensionContext {
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
  /** The kernel's primitives an extension's code yields from (mutex_lock, spin_lock, rcu_read_lock, udelay, cond_resched, …). */
  readonly kernel: { readonly mutex: typeof mutex; readonly spinlock: typeof spinlock; readonly rcu: typeof rcu; readonly delay: typeof delay };
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
      k.fns.replace(n, step as KFn, 'extension');
    },
  };
}

// The loader (applyExtension, applyPatches) is src/workloads/patch-loader.ts.

export const KERNEL_PRIMITIVES = { mutex, spinlock, rcu, delay } as const;
