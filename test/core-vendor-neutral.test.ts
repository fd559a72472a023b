// The vendor-neutral core names no vendor (issue #17): everything a vendor's driver or hardware does is in
// src/hw/<vendor>/, reached through the ops table (src/core/ops.ts) and the Vendor interface (src/hw/vendor.ts).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** A vendor's name, its drivers' prefixes and its hardware's words, as whole words (dmaReached is not DMAR). */
const VENDOR = /\b(intel\w*|amd\w*|arm|arm_smmu\w*|arm-smmu\w*|smmu\w*|vt-?d|dmar\d*|iommu_v2)\b|amd-vi/i;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('src/core/', () => {
  it('names no vendor, in code or in comments', () => {
    const hits = files('src/core').flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .flatMap((line, i) => (VENDOR.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])),
    );
    expect(hits).toEqual([]);
  });

  it('the check finds a vendor where there is one', () => {
    expect(VENDOR.test('intel_pasid_tear_down_entry')).toBe(true);
    expect(VENDOR.test('see arm_smmu_write_cd')).toBe(true);
    expect(VENDOR.test('AMD-Vi0')).toBe(true);
    expect(VENDOR.test('this.dmaReached(t)')).toBe(false);
  });
});
