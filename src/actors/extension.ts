// Extension points: a scenario may replace or wrap any IOMMU driver op or device-driver svm op with its own code —
// to model a patch under review — without editing the project. An extension is a CommonJS module (loaded with
// require, so that every worker thread builds the same workload synchronously) exporting
// `extend(ctx)`; it gets the kernel (k.step, k.point, k.call: the scheduling points its code yields), the
// ops tables to read and replace, the IOMMU units' memory and the core's state, and the kernel's primitives.
import { createRequire } from 'node:module';
import type { DmaApi } from '../core/dma.js';
import type { Sva } from '../core/sva.js';
import type { DeviceInfo, IommuOps } from '../core/types.js';
import type { Command, IommuUnit } from '../hw/iommu.js';
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
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
  /** Queue commands on dev's IOMMU and wait for them (the drivers' qi_submit_sync / CMD_SYNC). */
  flush(t: KTask, dev: DeviceInfo, cmds: readonly Command[]): KGen;
  /** The kernel's primitives an extension's code yields from (mutex_lock, spin_lock, rcu_read_lock, …). */
  readonly kernel: { readonly mutex: typeof mutex; readonly spinlock: typeof spinlock; readonly rcu: typeof rcu };
}

const require = createRequire(import.meta.url);

export function applyExtension(file: string, ctx: ExtensionContext): void {
  let mod: unknown;
  try {
    mod = require(file);
  } catch (err) {
    throw new InputError(`extension ${file}: cannot load: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  const extend = (mod as { extend?: unknown }).extend;
  if (typeof extend !== 'function') throw new InputError(`extension ${file}: exports no extend(ctx) function`);
  (extend as (c: ExtensionContext) => void)(ctx);
}

export const KERNEL_PRIMITIVES = { mutex, spinlock, rcu } as const;
