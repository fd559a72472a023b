// A patch under review, as an extension (src/actors/extension.ts): VT-d's PASID teardown that clears the
// present bit but "forgets" the PASID-cache invalidation — only the IOTLB and device TLB are flushed. The
// stale-translation oracle catches the cached entry that outlives the binding.
const OP_IOTLB = 1;
const OP_DEVTLB = 3;

exports.extend = (ctx) => {
  for (let u = 0; u < ctx.units.length; u++) {
    const unit = ctx.units[u];
    if (unit.spec.flavour !== 'vtd') continue;
    const orig = ctx.iommuOps(u);
    // The unit's entry layout (struct pasid_entry): its accessors on this kernel.
    const pe = ctx.k.view(unit.spec.entry.layout);
    ctx.setIommuOps(u, {
      ...orig,
      *remove_dev_pasid(t, dev, pasid, mm, why) {
        if (why !== 'unbind') return yield* orig.remove_dev_pasid(t, dev, pasid, mm, why);
        // The patch: clear P and flush the TLBs, without PC_INV.
        yield* ctx.k.step(t, 'pasid_clear_present (patched)', () => {
          pe.flags.WRITE_ONCE(unit.entryPtr(dev.index, pasid), 0);
        });
        yield* ctx.flush(t, dev, [
          { op: OP_IOTLB, a: dev.index, b: pasid, c: -1, d: -1 },
          { op: OP_DEVTLB, a: dev.index, b: pasid, c: -1, d: -1 },
        ]);
      },
    });
  }
};
