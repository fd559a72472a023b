// races/patches/sva-unbind-late-iommu-mm.cjs in TypeScript: the same patch, typed by the package's kernel API.
import type { DeviceInfo, KGen, KTask, MmStruct, PatchContext } from 'iommu-sim/kernel';

export function extend(ctx: PatchContext): void {
  const { READ_ONCE, mm_struct_of, structs, view } = ctx.kernel;
  const mm_struct = view(structs.mm_struct);
  const domainMm = new Map<number, MmStruct>(); // handle->domain->mm, as bind left it
  ctx.k.fns.wrap('iommu_sva_bind_device', (bind) =>
    function* (t: KTask, dev: DeviceInfo, mm: MmStruct | undefined, flags: number) {
      const r = yield* bind(t, dev, mm, flags);
      if (r.ret > 0 && mm) domainMm.set(r.ret, mm);
      return r;
    },
  );
  ctx.k.fns.wrap('iommu_sva_unbind_device', (unbind) =>
    function* (t: KTask, handle: number): KGen {
      const mm = domainMm.get(handle);
      yield* unbind(t, handle); // … iommu_domain_free(domain): its mmdrop
      if (mm) yield* READ_ONCE(t, mm_struct_of(mm), mm_struct.iommu_mm); // domain->mm->iommu_mm, too late
    },
  );
}
