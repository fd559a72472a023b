// calculate_psi_aligned_address (drivers/iommu/intel/cache.c) as it was before 0a3f6b346301 ("iommu/vt-d: Fix
// aligned pages in calculate_psi_aligned_address()", Lu Baolu, v6.11): when the range's first page is not aligned
// to its rounded-up size, the mask is widened until one naturally aligned block holds the whole range, but the
// number of pages returned stays the one computed from the range's length. cache_tag_flush_range hands that
// number to the PASID-based IOTLB invalidation (qi_flush_piotlb: 2^ilog2(pages) pages from the aligned address),
// which then covers the start of the block only; the device-TLB invalidation takes the mask and covers it whole.
//
//   static unsigned long calculate_psi_aligned_address(unsigned long start, unsigned long end,
//                                                      unsigned long *_pages, unsigned long *_mask)
//   {
//           unsigned long pages = aligned_nrpages(start, end - start + 1);
//           unsigned long aligned_pages = __roundup_pow_of_two(pages);
//           unsigned long bitmask = aligned_pages - 1;
//           unsigned long mask = ilog2(aligned_pages);
//           unsigned long pfn = IOVA_PFN(start);
//
//           if (unlikely(bitmask & pfn)) {
//                   unsigned long end_pfn = pfn + pages - 1, shared_bits;
//
//                   shared_bits = ~(pfn ^ end_pfn) & ~bitmask;
//                   mask = shared_bits ? __ffs(shared_bits) : MAX_AGAW_PFN_WIDTH;
//                   /* the fix: aligned_pages = 1UL << mask; */
//           }
//
//           *_pages = aligned_pages;
//           *_mask = mask;
//
//           return ALIGN_DOWN(start, VTD_PAGE_SIZE << mask);
//   }
//
// The model's version works in pages: start and end are page numbers, end exclusive.

/** include/linux/intel-iommu.h: MAX_AGAW_WIDTH (64) - VTD_PAGE_SHIFT (12). */
const MAX_AGAW_PFN_WIDTH = 52;

/** __ffs of a 32-bit word that is not 0. */
const ffs = (x) => 31 - Math.clz32(x & -x);

exports.extend = (ctx) => {
  // VT-d only: on the other flavours the patch changes nothing.
  if (!ctx.k.fns.has('calculate_psi_aligned_address')) return;
  ctx.k.fns.replace('calculate_psi_aligned_address', (start, end) => {
    const pages = Math.max(1, end - start);
    const aligned_pages = 2 ** Math.ceil(Math.log2(pages));
    const bitmask = aligned_pages - 1;
    let mask = Math.log2(aligned_pages);
    if ((bitmask & start) !== 0) {
      const end_pfn = start + pages - 1;
      const shared_bits = ~(start ^ end_pfn) & ~bitmask;
      mask = shared_bits !== 0 ? ffs(shared_bits) : MAX_AGAW_PFN_WIDTH;
    }
    const vpn = mask >= 31 ? 0 : start & ~(2 ** mask - 1);
    return { vpn, pages: aligned_pages, mask };
  });
};
