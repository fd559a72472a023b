// IDA, the ID allocator (lib/idr.c): a bitmap of a declared capacity in the kernel's static shared memory, one
// bit an ID. ida_alloc_range hands out the lowest free ID in [min, max]; ida_free of an ID that is not allocated
// is the kernel's WARN; IDs still allocated at teardown are a leak (a PASID nobody freed). The kernel takes the
// IDA's xa_lock inside every call, so each call is one atomic scheduling point here; a GFP_KERNEL call may
// allocate (and so sleep) first, which is why calling it under a spinlock is a bug.
import { read } from '../runtime/footprint.js';
import { callTrace, heldLocksLines, taskFinding } from './findings.js';
import type { Kernel, KGen } from './kernel.js';
import type { KTask } from './context.js';
import { EINVAL, ENOSPC } from './errno.js';
import { type Gfp, MIGHT_ALLOC_SITE } from './slab.js';
import { array, struct, type ViewOf } from './struct.js';

/** struct ida_bitmap: one bit an ID (the kernel's ida keeps these in an xarray; here one of its capacity). */
const IDA_BITMAP = struct('ida_bitmap', {
  bitmap: array(0), // ceil(capacity / 32) words
});

function bits(k: Kernel): ViewOf<typeof IDA_BITMAP>['bitmap'] {
  return k.view(IDA_BITMAP).bitmap;
}

export interface IdaOptions {
  /** Report IDs still allocated at teardown (default true). */
  readonly leakCheck?: boolean;
}

export interface Ida {
  readonly name: string;
  /** IDs 0 .. capacity-1. */
  readonly capacity: number;
  /** Absolute word offset of the bitmap. */
  bitmap(): number;
}

/** DEFINE_IDA(name) with room for `capacity` IDs, in the kernel's static memory. */
export function defineIda(k: Kernel, name: string, capacity: number, opts: IdaOptions = {}): Ida {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ida ${name}: bad capacity ${capacity}`);
  const off = k.statics.alloc(IDA_BITMAP.words + Math.ceil(capacity / 32), `ida ${name}`);
  const ida: Ida = { name, capacity, bitmap: () => k.mem.statics + off };
  if (opts.leakCheck ?? true) k.onEnd(() => leakCheck(k, ida));
  return ida;
}

function isSet(k: Kernel, ida: Ida, id: number): boolean {
  return ((bits(k).get(ida.bitmap(), id >>> 5) >>> (id & 31)) & 1) === 1;
}

/** A footprint of more bitmap words than this is not declared (the point takes the coarse lock instead). */
const MAX_FOOTPRINT_WORDS = 64;

/** The bitmap words of IDs lo..hi (clipped to the capacity), written or only read; undefined past MAX_FOOTPRINT_WORDS. */
function bitmapFootprint(ida: Ida, lo: number, hi: number, write: boolean): number[] | undefined {
  const out: number[] = [];
  const top = Math.min(hi, ida.capacity - 1);
  if (!Number.isInteger(lo) || !Number.isInteger(top) || lo < 0 || lo > top) return out;
  if ((top >>> 5) - (lo >>> 5) >= MAX_FOOTPRINT_WORDS) return undefined;
  for (let w = lo >>> 5; w <= top >>> 5; w++) out.push(write ? ida.bitmap() + w : read(ida.bitmap() + w));
  return out;
}

/** What ida_alloc_range(min, max) touches, as its search does: the full words it reads, the word it takes an ID in. */
function allocFootprint(k: Kernel, ida: Ida, min: number, max: number): number[] {
  const out: number[] = [];
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0) return out;
  const hi = Math.min(max, ida.capacity - 1);
  const base = ida.bitmap();
  const b = bits(k);
  for (let w = min >>> 5; w <= hi >>> 5 && min <= hi; w++) {
    const lo = w === min >>> 5 ? min & 31 : 0;
    const top = w === hi >>> 5 ? hi & 31 : 31;
    const mask = (0xffffffff >>> (31 - top)) & (0xffffffff << lo);
    if ((~b.get(base, w) & mask) !== 0) {
      out.push(base + w);
      return out;
    }
    out.push(read(base + w));
  }
  return out;
}

/** A step on the IDA with its footprint when it has one (a bitmap too big to list takes the coarse lock). */
function idaStep<T>(k: Kernel, t: KTask, label: string, fp: number[] | undefined, perform: () => T): KGen<T> {
  return fp ? k.stepOn(t, label, fp, perform) : k.step(t, label, perform);
}

/** IDs allocated now, in order (reads only). */
export function idaAllocated(k: Kernel, ida: Ida): number[] {
  const ids: number[] = [];
  const words = Math.ceil(ida.capacity / 32);
  const base = ida.bitmap();
  const b = bits(k);
  for (let w = 0; w < words; w++) {
    const v = b.get(base, w);
    if (v === 0) continue;
    for (let i = 0; i < 32; i++) if ((v >>> i) & 1) ids.push(w * 32 + i);
  }
  return ids;
}

/**
 * ida_alloc_range(ida, min, max, gfp): the lowest free ID in [min, max] (max inclusive, clipped to the
 * capacity), or -ENOSPC when there is none.
 */
export function* ida_alloc_range(k: Kernel, t: KTask, ida: Ida, min: number, max: number, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* k.call(
    t,
    'ida_alloc_range',
    (function* () {
      if (gfp === 'GFP_KERNEL') k.mightSleep(t, MIGHT_ALLOC_SITE);
      return yield* k.stepOn(t, `ida_alloc_range(${ida.name}, ${min}, ${max})`, () => allocFootprint(k, ida, min, max), () => {
        if (!Number.isInteger(min) || !Number.isInteger(max)) return -EINVAL;
        if (min < 0) return -ENOSPC;
        const hi = Math.min(max, ida.capacity - 1);
        const base = ida.bitmap();
        const b = bits(k);
        for (let id = min; id <= hi; id++) {
          const v = b.get(base, id >>> 5);
          if (v === -1) {
            id |= 31; // a full word: skip to its last bit, the loop's ++ moves on
            continue;
          }
          if (((v >>> (id & 31)) & 1) === 0) {
            b.set(base, id >>> 5, v | (1 << (id & 31)));
            return id;
          }
        }
        return -ENOSPC;
      });
    })(),
  );
}

export function* ida_alloc(k: Kernel, t: KTask, ida: Ida, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* ida_alloc_range(k, t, ida, 0, ida.capacity - 1, gfp);
}

export function* ida_alloc_min(k: Kernel, t: KTask, ida: Ida, min: number, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* ida_alloc_range(k, t, ida, min, ida.capacity - 1, gfp);
}

export function* ida_alloc_max(k: Kernel, t: KTask, ida: Ida, max: number, gfp: Gfp = 'GFP_KERNEL'): KGen<number> {
  return yield* ida_alloc_range(k, t, ida, 0, max, gfp);
}

/** ida_free(ida, id): freeing an ID that is not allocated is the kernel's WARN (and nothing else happens). */
export function* ida_free(k: Kernel, t: KTask, ida: Ida, id: number): KGen {
  yield* k.call(
    t,
    'ida_free',
    idaStep(k, t, `ida_free(${ida.name}, ${id})`, bitmapFootprint(ida, id, id, true), () => {
      if (Number.isInteger(id) && id >= 0 && id < ida.capacity && isSet(k, ida, id)) {
        const b = bits(k);
        b.set(ida.bitmap(), id >>> 5, b.get(ida.bitmap(), id >>> 5) & ~(1 << (id & 31)));
        return;
      }
      const title = `ida_free called for id=${id} which is not allocated.`;
      k.report(
        taskFinding('ida', t, t.lastStep, title, [
          `WARNING: PID: ${t.pid} at lib/idr.c:525 ida_free`,
          `Comm: ${t.comm} Not tainted (iommu-sim)`,
          `iommu-sim: IDA ${ida.name}`,
          ...heldLocksLines(t),
          ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
        ]),
      );
    }),
  );
}

/** ida_is_empty: no ID allocated (a point: it races with allocations like any read of the IDA). */
export function* ida_is_empty(k: Kernel, t: KTask, ida: Ida): KGen<boolean> {
  return yield* idaStep(k, t, `ida_is_empty(${ida.name})`, bitmapFootprint(ida, 0, ida.capacity - 1, false), () => {
    const words = Math.ceil(ida.capacity / 32);
    for (let w = 0; w < words; w++) if (bits(k).get(ida.bitmap(), w) !== 0) return false;
    return true;
  });
}

/** ida_destroy: free every ID (the owner is going away). */
export function* ida_destroy(k: Kernel, t: KTask, ida: Ida): KGen {
  yield* idaStep(k, t, `ida_destroy(${ida.name})`, bitmapFootprint(ida, 0, ida.capacity - 1, true), () => {
    const at = bits(k).addr(ida.bitmap());
    k.i32.fill(0, at, at + Math.ceil(ida.capacity / 32));
  });
}

/** IDs a leak report lists one by one. */
const LEAK_LIST_IDS = 16;

function leakCheck(k: Kernel, ida: Ida): void {
  if (!k.enabled('leaks')) return;
  const ids = idaAllocated(k, ida);
  if (ids.length === 0) return;
  const shown = ids.slice(0, LEAK_LIST_IDS).join(', ') + (ids.length > LEAK_LIST_IDS ? ', …' : '');
  const title = `leak: IDA ${ida.name}: ${ids.length} ID${ids.length > 1 ? 's' : ''} still allocated at teardown: ${shown}`;
  k.report({ kind: 'leak', title, text: `${title}\n(no ida_free for them by the end of the run)`, step: -1, where: ida.name });
}
