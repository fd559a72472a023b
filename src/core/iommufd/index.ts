// drivers/iommu/iommufd/: the files of iommufd the model has (main.c, ioas.c, hw_pagetable.c, device.c, fault.c),
// declared together for the VMMs of a run.
import type { Kernel } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { defineDevice, type IommufdBug } from './device.js';
import { defineFault } from './fault.js';
import { defineHwPagetable } from './hw_pagetable.js';
import { defineIoas } from './ioas.js';
import { defineMain, type IommufdCtx, type IommufdEnv, initIommufdState } from './main.js';

export { IOMMUFD_BUGS, type IommufdBug } from './device.js';
export type { IommufdCtx } from './main.js';

/** iommufd for `mms.length` VMMs (ctx i's user memory is mms[i]); its functions by kernel name. */
export function defineIommufd(k: Kernel, env: IommufdEnv, mms: readonly MmStruct[], bug: IommufdBug): readonly IommufdCtx[] {
  const st = initIommufdState(k, env, mms);
  defineMain(k);
  defineIoas(k);
  defineHwPagetable(k);
  defineDevice(k, bug);
  defineFault(k);
  return st.ctxs;
}
