// drivers/iommu/iommufd/ioas.c: the IOAS, an I/O address space user space maps its memory into
// (IOMMU_IOAS_ALLOC); every hw_pagetable allocated on it holds a reference of it. The model keeps no mappings of
// its own: a hw_pagetable's domain starts empty, so a DMA through it faults and the device asks (PRI).
import type { KTask } from '../../kernel/context.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import { struct } from '../../kernel/struct.js';
import { objLoad } from '../../kernel/slab.js';
import { IOMMUFD_OBJECT, type IommufdCtx, OBJ } from './main.js';

const IOAS_C = 'drivers/iommu/iommufd/ioas.c';

/** struct iommufd_ioas: its object header (the io_pagetable is not modelled). */
export const IOMMUFD_IOAS = struct('iommufd_ioas', { ...IOMMUFD_OBJECT });

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    /** IOMMU_IOAS_ALLOC: the new IOAS's id, or -errno. */
    iommufd_ioas_alloc_ioctl(t: KTask, ictx: IommufdCtx): KGen<number>;
  }
}

export function defineIoas(k: Kernel): void {
  k.fns.define('iommufd_ioas_alloc_ioctl', IOAS_C, function* (t, ictx) {
    const obj = yield* k.fn.iommufd_object_alloc(t, ictx, IOMMUFD_IOAS.words, 'ioas');
    if (obj < 0) return obj;
    yield* k.fn.iommufd_object_finalize(t, ictx, obj);
    return yield* k.step(t, 'ioas->obj.id', () => objLoad(k, t, obj, OBJ.id));
  });
  // iopt_destroy_table: nothing is mapped in the model.
  k.fns.define('iommufd_ioas_destroy', IOAS_C, function* (t) {
    yield* k.step(t, 'iopt_destroy_table', () => undefined);
  });
}
