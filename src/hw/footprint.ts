// The footprints of the hardware's shared events (issue #19, src/runtime/footprint.ts): the shared-memory words a
// unit's or a device's handler reads and writes for one message, computed by the same decisions the handler
// takes — a walk names the table entry it reads next, a translation the IOTLB slot it looks up — so that the
// threaded runtime locks those words and not the whole run. A footprint function reads only (it is evaluated
// before the delivery locks and again under its locks); when the handler's path is one the function does not
// follow (a rare branch: a stale table, an invalidation overtaking a fetch, a device unplugged), it gives
// undefined and the delivery takes the coarse fallback lock, as every shared event did before.
import type { Stats, StatName } from '../core/stats.js';
import type { Kernel } from '../kernel/kernel.js';
import { FRAME_WORDS, type PhysMem, physMemWords } from '../kernel/mm/physmem.js';
import { type Footprint, read } from '../runtime/footprint.js';
import type { ModelEvent } from '../runtime/model.js';
import type { HwMessage } from './messages.js';

/**
 * Collects a footprint's entries, each word once: a word read and written is declared written. Made afresh for
 * each evaluation (the runtime keeps the array it is given).
 */
export class FootprintBuilder {
  private readonly out: number[] = [];
  /** Each word's index in `out` (a command's footprint scans whole caches: hundreds of words). */
  private readonly at = new Map<number, number>();

  /** The step only reads w. */
  read(w: number): this {
    if (!this.at.has(w)) {
      this.at.set(w, this.out.length);
      this.out.push(read(w));
    }
    return this;
  }

  /** The step writes w (or reads and writes it). */
  write(w: number): this {
    const i = this.at.get(w);
    if (i === undefined) {
      this.at.set(w, this.out.length);
      this.out.push(w);
    } else this.out[i] = w;
    return this;
  }

  /** n words from `base`, read. */
  readRange(base: number, n: number): this {
    for (let w = base; w < base + n; w++) this.read(w);
    return this;
  }

  /** n words from `base`, written. */
  writeRange(base: number, n: number): this {
    for (let w = base; w < base + n; w++) this.write(w);
    return this;
  }

  get footprint(): Footprint {
    return this.out;
  }
}

/** A path a footprint function does not follow: the delivery takes the coarse fallback lock. */
export class Unfollowed extends Error {}

/**
 * Evaluate a footprint function; a path it does not follow (Unfollowed) gives undefined. Before the locks are
 * taken the words it reads may be mid-update (another thread's step): an index out of range or an object not
 * found then is not a bug but a fallback, so any error gives undefined too — the evaluation under the locks, on
 * a stable memory, is the one the runtime keeps.
 */
export function computed(fn: (fp: FootprintBuilder) => void): Footprint | undefined {
  const fp = new FootprintBuilder();
  try {
    fn(fp);
  } catch {
    return undefined;
  }
  return fp.footprint;
}

/** Give up on this path: the delivery takes the fallback lock. */
export function unfollowed(): never {
  throw new Unfollowed();
}

/** A counter of the run's statistics (Stats.add: an atomic add, declared written). */
export function statFootprint(fp: FootprintBuilder, stats: Stats, name: StatName): void {
  fp.write(stats.wordOf(name));
}

/** The struct page fields of frame pfn a DMA write's oracle reads (page_owner) and dmaWrite writes. */
export function dmaLandFootprint(fp: FootprintBuilder, k: Kernel, pm: PhysMem, pfn: number): void {
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= pm.frames) unfollowed();
  const f = k.mem.statics + pm.off + physMemWords(0) + pfn * FRAME_WORDS;
  const page = pm.view.page;
  fp.read(page.owner.addr(f));
  fp.write(page.writes.addr(f));
  fp.write(page.tag.addr(f));
}

/** The ptdesc fields of frame pfn a walk checks (ptdescLevel, pageOwner, ptdescIndex). */
export function ptdescFootprint(fp: FootprintBuilder, k: Kernel, pm: PhysMem, pfn: number): void {
  if (!Number.isInteger(pfn) || pfn < 0 || pfn >= pm.frames) return;
  const f = k.mem.statics + pm.off + physMemWords(0) + pfn * FRAME_WORDS;
  const page = pm.view.page;
  fp.read(page.pt_level.addr(f));
  fp.read(page.owner.addr(f));
  fp.read(page.pt_index.addr(f));
}

/** Hardware that can say what handling a message touches (IommuHardware, PciDevice). */
export interface FootprintSource {
  footprintOf(msg: HwMessage): Footprint | undefined;
}

/**
 * Workload.footprintOf for the hardware's actors: a unit's or a device's delivery as its hardware computes it;
 * an mm actor's (`quiet`: its machine reads and writes no shared memory, a refusal is a finding of the thread's
 * own) touches nothing; any other actor's is not known (the fallback lock).
 */
export function hardwareFootprintOf(hardware: ReadonlyMap<number, FootprintSource>, quiet: ReadonlySet<number>): (to: number, event: ModelEvent) => Footprint | undefined {
  return (to, event) => {
    const hw = hardware.get(to);
    if (hw) return hw.footprintOf(event as HwMessage);
    return quiet.has(to) ? [] : undefined;
  };
}
