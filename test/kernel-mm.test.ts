// The memory-management part of the simulated kernel (src/kernel/mm/): init_mm at boot, demand paging, the order
// munmap and exit_mmap keep (secondary TLBs invalidated before frames are freed; release before any frame goes)
// checked by a small IOMMU model whose TLB is scanned at every page free, mm_users vs mm_count, MMU notifier
// subscriptions freed only after an SRCU grace period, and the reports (refcount underflow, __mmdrop with a
// PASID, Bad page state, use-after-free of an mm, leaks). Deterministic runtime, fixed seeds; the planted-bug
// variants show each concurrent check can fail.
import { kernel, pause, runOnce, tasksWorkload, words } from './kernel-harness.js';
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import { EEXIST, EINVAL, ENOMEM } from '../src/kernel/errno.js';
import type { CheckerName, Kernel, KGen } from '../src/kernel/kernel.js';
import {
  defineMms,
  mm_exit,
  mm_init,
  mm_set_pasid,
  type MmStruct,
  type MmTable,
  mmCount,
  mmget,
  mmget_not_zero,
  mmput,
  mmState,
  mmUsers,
  ownerOf,
  pteAddr,
  vmaAddr,
  tablePagesOf,
} from '../src/kernel/mm/mm.js';
import {
  defineMmuNotifierOps,
  defineMmuNotifiers,
  liveSubscriptions,
  type MmuNotifierOps,
  type MmuNotifiers,
  mmu_notifier_put,
  mmu_notifier_register,
  subscriptionData,
  subscriptionMm,
  subscriptionUsers,
} from '../src/kernel/mm/mmu_notifier.js';
import {
  do_mmap,
  do_munmap,
  fault_in,
  PTE_PRESENT,
  PTE_WRITE,
  pte,
  ptePfn,
  vmaMapped,
} from '../src/kernel/mm/pagetable.js';
import {
  alloc_page,
  definePhysMem,
  dmaWrite,
  framesInUse,
  free_page,
  onPageFree,
  type PhysMem,
  pageOwner,
  pageWrites,
} from '../src/kernel/mm/physmem.js';
import { down_write, up_write } from '../src/kernel/rwsem.js';
import { srcu_barrier } from '../src/kernel/srcu.js';
import type { Workload } from '../src/runtime/model.js';
import type { RunResult } from '../src/runtime/result.js';

const LAYOUT = { stringWords: 1 << 15, stringSlots: 1 << 10, staticWords: 1 << 14, arenaWords: 1 << 12, lockdepWords: 1 << 10 };
const PAGES = 8;
/** Frames in use once init_mm is booted: its pages and its page tables (PGD, PMD and PTE pages). */
const BOOT = PAGES + tablePagesOf(PAGES);

interface Env {
  readonly k: Kernel;
  readonly pm: PhysMem;
  readonly mms: MmTable;
  readonly n: MmuNotifiers;
  readonly mm1: MmStruct;
  readonly mm2: MmStruct;
}

function env(opts: { frames?: number; pages?: number; checkers?: Partial<Record<CheckerName, boolean>> } = {}): Env {
  const k = kernel({ layout: LAYOUT, ...(opts.checkers ? { checkers: opts.checkers } : {}) });
  const pm = definePhysMem(k, opts.frames ?? 64);
  const mms = defineMms(k, pm, 2, opts.pages ?? PAGES);
  const n = defineMmuNotifiers(k, mms, 8);
  return { k, pm, mms, n, mm1: mms.mms[0] as MmStruct, mm2: mms.mms[1] as MmStruct };
}

function workload(k: Kernel, tasks: string[]): Workload {
  return tasksWorkload(k, 'mm-test', tasks);
}

function titles(r: RunResult): string[] {
  return r.findings.map((f) => f.title);
}

/** A step that records what happened, in the order steps are performed. */
function* rec(k: Kernel, t: KTask, log: string[], what: string): KGen {
  yield* k.step(t, `record ${what}`, () => {
    log.push(what);
  });
}

describe('boot', () => {
  it('init_mm is live with its whole range mapped to frames it owns; user mms start unused', () => {
    const e = env();
    const { k, pm, mms } = e;
    k.task('probe', 'process', function* (t) {
      yield* pause(k, t, 1);
    });
    const r = runOnce(workload(k, ['probe']), 1);
    expect(r.findings).toEqual([]);
    const init = mms.initMm;
    expect(init.id).toBe(0);
    expect(init.name).toBe('init_mm');
    expect(mmState(k, init)).toBe('live');
    expect([mmUsers(k, init), mmCount(k, init)]).toEqual([1, 1]);
    const pfns = new Set<number>();
    for (let vpn = 0; vpn < PAGES; vpn++) {
      const p = pte(k, init, vpn);
      expect(p & (PTE_PRESENT | PTE_WRITE)).toBe(PTE_PRESENT | PTE_WRITE);
      expect(vmaMapped(k, init, vpn)).toBe(true);
      expect(ptePfn(p)).toBeGreaterThan(0);
      expect(pageOwner(k, pm, ptePfn(p))).toBe(ownerOf(init));
      pfns.add(ptePfn(p));
    }
    expect(pfns.size).toBe(PAGES);
    // Its tables first (memblock hands frames out in order), then its pages.
    expect([...pfns].sort((a, b) => a - b)).toEqual(Array.from({ length: PAGES }, (_, i) => i + 1 + tablePagesOf(PAGES)));
    expect(framesInUse(k, pm)).toBe(BOOT);
    expect(mms.mms.map((m) => [m.id, m.name, mmState(k, m), mmUsers(k, m), mmCount(k, m)])).toEqual([
      [1, 'mm/1', 'unused', 0, 0],
      [2, 'mm/2', 'unused', 0, 0],
    ]);
  });

  it('another attach to the same memory (a worker thread, the end-of-run check) does not boot again', () => {
    const build = () => {
      const e = env();
      e.k.task('fork', 'process', function* (t) {
        yield* mm_init(e.k, t, e.mm1);
        yield* do_mmap(e.k, t, e.mm1, 0, 2, true);
        yield* fault_in(e.k, t, e.mm1, 0, true);
      });
      return e;
    };
    const first = build();
    const r = runOnce(workload(first.k, ['fork']), 1);
    expect(r.findings).toEqual([]);
    const before = Array.from(r.shared);
    const second = build();
    second.k.attach(r.shared, () => 0);
    second.k.end();
    expect(second.k.findings).toEqual([]);
    expect(Array.from(r.shared)).toEqual(before);
    expect(mmState(second.k, second.mm1)).toBe('live');
    // mm/1's page and its tables: PGD, PMD and PTE page.
    expect(framesInUse(second.k, second.pm)).toBe(BOOT + 4);
  });
});

describe('mmap and demand faults', () => {
  it('a fault maps a zeroed frame owned by the mm; outside a VMA or writing a read-only VMA is SIGSEGV', () => {
    const { k, pm, mm1 } = env();
    const got: (number | string)[] = [];
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      got.push(yield* do_mmap(k, t, mm1, 2, 3, true));
      got.push(yield* do_mmap(k, t, mm1, 6, 1, false));
      got.push(yield* do_mmap(k, t, mm1, 3, 2, true));
      got.push(yield* do_mmap(k, t, mm1, 7, 2, true));
      got.push(yield* do_mmap(k, t, mm1, 0, 0, true));
      got.push(yield* fault_in(k, t, mm1, 3, true));
      got.push(yield* fault_in(k, t, mm1, 3, false));
      got.push(yield* fault_in(k, t, mm1, 0, false));
      got.push(yield* fault_in(k, t, mm1, 6, true));
      got.push(yield* fault_in(k, t, mm1, 6, false));
      got.push(yield* fault_in(k, t, mm1, PAGES + 3, false));
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    expect(got).toEqual([2, 6, -EEXIST, -ENOMEM, -EINVAL, 'ok', 'ok', 'sigsegv', 'sigsegv', 'ok', 'sigsegv']);
    const p = pte(k, mm1, 3);
    expect(p & (PTE_PRESENT | PTE_WRITE)).toBe(PTE_PRESENT | PTE_WRITE);
    expect(pageOwner(k, pm, ptePfn(p))).toBe(ownerOf(mm1));
    expect(pte(k, mm1, 6) & (PTE_PRESENT | PTE_WRITE)).toBe(PTE_PRESENT);
    expect(pte(k, mm1, 2)).toBe(0); // in the VMA, never touched: demand paging
    expect(vmaMapped(k, mm1, 2)).toBe(true);
    expect(vmaMapped(k, mm1, 0)).toBe(false);
    // Pages 3 and 6, and their tables: PGD, PMD and PTE pages 0 and 1.
    expect(framesInUse(k, pm)).toBe(BOOT + 6);
  });

  it('two faults racing on one page map one frame; the loser gives its frame back (100 seeds)', () => {
    const { k, pm, mm1 } = env();
    const w = words(k, 1);
    k.task('owner', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* do_mmap(k, t, mm1, 0, 1, true);
      yield* w.set(t, 0, 1);
    });
    k.task('faulter', 'process', function* (t) {
      yield* w.until(t, 'mapped', () => w.get(0) === 1);
      expect(yield* fault_in(k, t, mm1, 0, true)).toBe('ok');
    });
    const wl = workload(k, ['owner', 'faulter', 'faulter']);
    for (let seed = 1; seed <= 100; seed++) {
      const r = runOnce(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(framesInUse(k, pm)).toBe(BOOT + 4);
      expect(pageOwner(k, pm, ptePfn(pte(k, mm1, 0)))).toBe(ownerOf(mm1));
    }
  });

  it('handle_mm_fault without mmap_lock: lockdep assertion', () => {
    const { k, mm1 } = env();
    k.task('iopf', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* do_mmap(k, t, mm1, 0, 1, true);
      yield* k.call(t, 'iommu_sva_handle_iopf', k.fn.handle_mm_fault(t, mm1, 0, true));
    });
    const r = runOnce(workload(k, ['iopf']), 1);
    expect(titles(r)).toEqual([expect.stringMatching(/^WARNING: CPU: 0 PID: \d+ at include\/linux\/mmap_lock\.h:\d+ handle_mm_fault$/)]);
    expect(r.findings[0]?.kind).toBe('lockdep');
    expect(r.findings[0]?.text).toContain('without its mmap_lock held');
    expect(r.findings[0]?.text).toContain(' iommu_sva_handle_iopf\n');
  });
});

/**
 * A small SVA IOMMU for one mm: a subscription whose arch_invalidate_secondary_tlbs flushes a TLB (one cached
 * pfn a page) and whose release tears the PASID entry down; a walker task that walks the page table (caching
 * what it finds) and lands a DMA write on every cached translation; and the stale-translation oracle: a frame
 * freed while the TLB still maps it, or a DMA landing in a frame the mm does not own.
 */
function sva(e: Env, mm: MmStruct, log: string[]) {
  const { k, pm, n } = e;
  const tlb = words(k, mm.pages + 1); // [vpn] = pfn + 1, [pages] = bound
  const BOUND = mm.pages;
  const stale = { free: 0, dma: 0, flushes: 0 };
  const flush = (start: number, end: number): void => {
    for (let vpn = start; vpn < end; vpn++) Atomics.store(k.i32, tlb.addr(vpn), 0);
  };
  const ops: MmuNotifierOps = {
    name: `sva_mn(${mm.name})`,
    *release(t, m) {
      yield* k.step(t, 'intel_mm_release', () => {
        log.push(`release ${m.name}`);
        Atomics.store(k.i32, tlb.addr(BOUND), 0);
        flush(0, mm.pages);
      });
    },
    *invalidate_range_start(t, _m, _sub, start, end) {
      yield* rec(k, t, log, `start ${start}-${end}`);
    },
    *arch_invalidate_secondary_tlbs(t, _m, _sub, start, end) {
      yield* k.step(t, 'qi_flush_piotlb', () => {
        log.push(`tlb ${start}-${end}`);
        stale.flushes++;
        flush(start, end);
      });
    },
    *invalidate_range_end(t, _m, _sub, start, end) {
      yield* rec(k, t, log, `end ${start}-${end}`);
    },
  };
  const opsId = defineMmuNotifierOps(n, ops);
  onPageFree(pm, (pfn) => {
    if (pageOwner(k, pm, pfn) === ownerOf(mm)) log.push(`free ${mm.name}`);
    for (let vpn = 0; vpn < mm.pages; vpn++) if (tlb.get(vpn) === pfn + 1) stale.free++;
  });
  const walker = k.task(`walker(${mm.name})`, 'kthread', function* (t) {
    for (let i = 0; i < 40; i++) {
      yield* k.step(t, 'page walk + DMA', () => {
        if (tlb.get(BOUND) === 0) return;
        const vpn = i % mm.pages;
        const p = pte(k, mm, vpn);
        if ((p & PTE_PRESENT) !== 0) Atomics.store(k.i32, tlb.addr(vpn), ptePfn(p) + 1);
        const cached = tlb.get(vpn);
        if (cached === 0) return;
        if (pageOwner(k, pm, cached - 1) !== ownerOf(mm)) stale.dma++;
        dmaWrite(k, pm, cached - 1, 7);
      });
    }
  });
  function* bind(t: KTask): KGen<number> {
    const sub = yield* mmu_notifier_register(k, t, n, opsId, mm, 42);
    yield* k.step(t, 'pasid entry installed', () => Atomics.store(k.i32, tlb.addr(BOUND), 1));
    return sub;
  }
  return { opsId, walker, stale, bind, bound: () => tlb.get(BOUND) === 1 };
}

describe('munmap and exit keep the order the IOMMU depends on', () => {
  it('munmap: invalidate_range_start, secondary TLBs flushed, invalidate_range_end — then the frames are freed', () => {
    const e = env();
    const { k, n, pm, mm1 } = e;
    const log: string[] = [];
    const io = sva(e, mm1, log);
    const got: number[] = [];
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      const sub = yield* io.bind(t);
      yield* do_mmap(k, t, mm1, 0, 4, true);
      for (let vpn = 0; vpn < 3; vpn++) yield* fault_in(k, t, mm1, vpn, true);
      yield* rec(k, t, log, 'munmap');
      got.push(yield* do_munmap(k, t, n, mm1, 0, 4));
      got.push(yield* do_munmap(k, t, n, mm1, 5, 2)); // a hole: nothing to invalidate
      got.push(yield* do_munmap(k, t, n, mm1, 6, 9));
      yield* rec(k, t, log, 'munmap done');
      yield* mmu_notifier_put(k, t, n, sub);
      yield* mm_exit(k, t, n, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    expect(got).toEqual([0, 0, -EINVAL]);
    const from = log.indexOf('munmap');
    expect(log.slice(from, log.indexOf('munmap done') + 1)).toEqual([
      'munmap',
      'start 0-4',
      'tlb 0-3', // from the gather's flush: the range of the PTEs it cleared (vpn 3 was never faulted in)
      'end 0-4',
      'tlb 0-1', // tlb_finish_mmu: the tables free_pgtables handed the gather (the PTE page and the PMD page)
      'free mm/1',
      'free mm/1',
      'free mm/1',
      'free mm/1',
      'free mm/1',
      'munmap done',
    ]);
    for (let vpn = 0; vpn < 4; vpn++) expect([pte(k, mm1, vpn), vmaMapped(k, mm1, vpn)]).toEqual([0, false]);
    expect(framesInUse(k, pm)).toBe(BOOT);
  });

  it('exit: release is called before any frame of the mm is freed, and no invalidation reaches it after', () => {
    const e = env();
    const { k, n, mm1 } = e;
    const log: string[] = [];
    const io = sva(e, mm1, log);
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      const sub = yield* io.bind(t);
      yield* do_mmap(k, t, mm1, 0, 4, true);
      for (let vpn = 0; vpn < 4; vpn++) yield* fault_in(k, t, mm1, vpn, true);
      yield* rec(k, t, log, 'exit');
      yield* k.call(t, 'do_exit', mm_exit(k, t, n, mm1));
      yield* rec(k, t, log, 'exit done');
      expect([mmState(k, mm1), mmUsers(k, mm1), mmCount(k, mm1)]).toEqual(['dead', 0, 1]);
      yield* mmu_notifier_put(k, t, n, sub);
      yield* srcu_barrier(k, t, n.srcu);
      expect(mmState(k, mm1)).toBe('freed');
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    expect(log.slice(log.indexOf('exit'))).toEqual([
      'exit',
      'release mm/1',
      'free mm/1',
      'free mm/1',
      'free mm/1',
      'free mm/1',
      'free mm/1', // the PTE page and the PMD page, after the pages (exit_mmap's gather)
      'free mm/1',
      'exit done',
      'free mm/1', // the PGD page, with the mm_struct (__mmdrop → mm_free_pgd)
    ]);
    expect(liveSubscriptions(k, n)).toBe(0);
  });

  /** A process that binds, maps, faults, unmaps and exits while its IOMMU walks and DMAs. */
  function svaWorkload(munmap: (e: Env, t: KTask, mm: MmStruct) => KGen) {
    const e = env();
    const { k, n, mm1 } = e;
    const log: string[] = [];
    const io = sva(e, mm1, log);
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      const sub = yield* io.bind(t);
      for (let round = 0; round < 2; round++) {
        yield* do_mmap(k, t, mm1, 0, 4, true);
        for (let vpn = 0; vpn < 4; vpn++) yield* fault_in(k, t, mm1, vpn, true);
        yield* pause(k, t, 4);
        yield* munmap(e, t, mm1);
      }
      yield* do_mmap(k, t, mm1, 2, 2, true);
      yield* fault_in(k, t, mm1, 2, true);
      yield* mm_exit(k, t, n, mm1);
      yield* mmu_notifier_put(k, t, n, sub);
    });
    return { e, io, wl: workload(k, ['proc', io.walker]) };
  }

  it('no frame is freed while the IOMMU TLB still maps it, and no DMA lands in a frame the mm does not own (200 seeds)', () => {
    const { e, io, wl } = svaWorkload(function* (x, t, mm) {
      yield* do_munmap(x.k, t, x.n, mm, 0, 4);
    });
    for (let seed = 1; seed <= 200; seed++) {
      const r = runOnce(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(mmState(e.k, e.mm1)).toBe('freed');
      expect(framesInUse(e.k, e.pm)).toBe(BOOT);
    }
    expect(io.stale).toMatchObject({ free: 0, dma: 0 });
    expect(io.stale.flushes).toBeGreaterThan(0);
  });

  it('a munmap that frees the frames before invalidate_range_end is caught (the oracle has teeth)', () => {
    const { e, io, wl } = svaWorkload(function* (x, t, mm) {
      const { k, pm } = x;
      yield* down_write(k, t, mm.mmapLock);
      yield* k.fn.__mmu_notifier_invalidate_range_start(t, mm, 0, 4);
      for (let vpn = 0; vpn < 4; vpn++) {
        const old = yield* k.step(t, 'clear', () => {
          Atomics.store(k.i32, vmaAddr(k, mm, vpn), 0);
          return Atomics.exchange(k.i32, pteAddr(k, mm, vpn), 0);
        });
        if ((old & PTE_PRESENT) !== 0) yield* free_page(k, t, pm, ptePfn(old));
      }
      yield* k.fn.__mmu_notifier_invalidate_range_end(t, mm, 0, 4);
      yield* up_write(k, t, mm.mmapLock);
    });
    for (let seed = 1; seed <= 200; seed++) runOnce(wl, seed, seed % 2 === 0);
    expect(io.stale.free).toBeGreaterThan(0);
    void e;
  });
});

describe('mm_users and mm_count', () => {
  it('mmgrab keeps the mm_struct after the last mmput; mmget_not_zero then fails; the last mmdrop frees it', () => {
    const { k, n, mm1 } = env();
    const seen: unknown[] = [];
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* k.fn.mmgrab(t, mm1);
      seen.push(yield* mmget_not_zero(k, t, mm1), mmUsers(k, mm1));
      yield* mmput(k, t, n, mm1);
      seen.push(mmState(k, mm1));
      yield* mm_exit(k, t, n, mm1);
      seen.push(mmState(k, mm1), mmUsers(k, mm1), mmCount(k, mm1));
      seen.push(yield* mmget_not_zero(k, t, mm1));
      yield* k.fn.mmdrop(t, mm1);
      seen.push(mmState(k, mm1), mmCount(k, mm1));
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    expect(seen).toEqual([true, 2, 'live', 'dead', 0, 1, false, 'freed', 0]);
  });

  it('an IOPF handler holding mm_count faults only through mmget_not_zero while the process exits (100 seeds)', () => {
    const { k, n, pm, mm1 } = env();
    const w = words(k, 1);
    const outcome = { faults: 0, refused: 0 };
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* do_mmap(k, t, mm1, 0, 4, true);
      yield* k.fn.mmgrab(t, mm1); // the bond's hold, handed to the handler
      yield* w.set(t, 0, 1);
      yield* pause(k, t, 3);
      yield* mm_exit(k, t, n, mm1);
    });
    k.task('iopf', 'kthread', function* (t) {
      yield* w.until(t, 'bound', () => w.get(0) === 1);
      for (let vpn = 0; vpn < 4; vpn++) {
        if (!(yield* mmget_not_zero(k, t, mm1))) {
          outcome.refused++;
          continue;
        }
        expect(yield* fault_in(k, t, mm1, vpn, true)).toBe('ok');
        outcome.faults++;
        yield* mmput(k, t, n, mm1);
      }
      yield* k.fn.mmdrop(t, mm1);
    });
    const wl = workload(k, ['proc', 'iopf']);
    for (let seed = 1; seed <= 100; seed++) {
      const r = runOnce(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(mmState(k, mm1)).toBe('freed');
      expect(framesInUse(k, pm)).toBe(BOOT);
    }
    expect(outcome.faults).toBeGreaterThan(0);
    expect(outcome.refused).toBeGreaterThan(0);
  });

  it('a put too many is refcount_t: underflow; an mmgrab on an unused mm is an addition on 0', () => {
    const { k, n, mm1 } = env();
    k.task('bad', 'process', function* (t) {
      yield* mmput(k, t, n, mm1);
      yield* k.fn.mmgrab(t, mm1);
    });
    const r = runOnce(workload(k, ['bad']), 1, false, true);
    expect(titles(r)).toEqual(['refcount_t: underflow; use-after-free.', 'refcount_t: addition on 0; use-after-free.']);
    expect(r.findings[0]?.kind).toBe('refcount');
    expect(r.findings[0]?.text).toContain('mmput(mm/1->mm_users) on a counter of 0');
    expect(r.findings[1]?.text).toContain('mmgrab(mm/1->mm_count) on a counter of 0');
  });

  it('an mm used after __mmdrop is a KASAN use-after-free, with who set it up and who freed it', () => {
    const { k, n, mm1 } = env();
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* k.call(t, 'do_exit', mm_exit(k, t, n, mm1));
      yield* k.call(t, 'iommu_sva_handle_iopf', mmget_not_zero(k, t, mm1));
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(titles(r)).toEqual(['BUG: KASAN: slab-use-after-free in mmget_not_zero']);
    const text = r.findings[0]?.text ?? '';
    expect(text).toContain('which belongs to the cache mm_struct');
    expect(text).toMatch(/Allocated by task \d+:\n mm_init/);
    expect(text).toMatch(/Freed by task \d+:\n __mmdrop\n mmdrop\n __mmput\n mmput\n exit_mm\n do_exit/);
  });

  it('__mmdrop with mm->pasid still set warns; cleared first, it does not', () => {
    for (const clear of [false, true]) {
      const { k, n, mm1 } = env();
      k.task('proc', 'process', function* (t) {
        yield* mm_init(k, t, mm1);
        yield* mm_set_pasid(k, t, mm1, 5);
        if (clear) yield* mm_set_pasid(k, t, mm1, 0);
        yield* mm_exit(k, t, n, mm1);
      });
      const r = runOnce(workload(k, ['proc']), 1);
      if (clear) {
        expect(r.findings).toEqual([]);
      } else {
        expect(titles(r)).toEqual([expect.stringMatching(/^WARNING: CPU: 0 PID: \d+ at kernel\/fork\.c:\d+ __mmdrop$/)]);
        expect(r.findings[0]?.text).toContain('mm/1 is freed with PASID 5 (0x5) still allocated to it');
      }
    }
  });

  it('a freed mm can be set up again (slab reuse): a fresh address space', () => {
    const { k, n, pm, mm1 } = env();
    k.task('proc', 'process', function* (t) {
      for (let life = 0; life < 2; life++) {
        yield* mm_init(k, t, mm1);
        expect(vmaMapped(k, mm1, 0)).toBe(false);
        yield* do_mmap(k, t, mm1, 0, 2, true);
        yield* fault_in(k, t, mm1, 0, true);
        yield* mm_exit(k, t, n, mm1);
        expect(mmState(k, mm1)).toBe('freed');
      }
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    expect(framesInUse(k, pm)).toBe(BOOT);
  });
});

describe('the mm layer by kernel name', () => {
  it('every function is listed with the kernel file it models', () => {
    const { k } = env();
    const files = Object.fromEntries(k.fns.list().map((f) => [f.name, f.file]));
    expect(files).toMatchObject({
      mm_init: 'kernel/fork.c',
      mmput: 'kernel/fork.c',
      __mmput: 'kernel/fork.c',
      __mmdrop: 'kernel/fork.c',
      mmgrab: 'include/linux/sched/mm.h',
      exit_mm: 'kernel/exit.c',
      exit_mmap: 'mm/mmap.c',
      do_munmap: 'mm/mmap.c',
      handle_mm_fault: 'mm/memory.c',
      mmu_notifier_register: 'mm/mmu_notifier.c',
      __mmu_notifier_release: 'mm/mmu_notifier.c',
      __mmu_notifier_invalidate_range_start: 'mm/mmu_notifier.c',
      mmu_notifier_free_rcu: 'mm/mmu_notifier.c',
    });
  });

  it('a patch that wraps exit_mmap is on the exit path of every caller; one that replaces mmget_not_zero is what the IOPF path gets', () => {
    const { k, n, mm1 } = env();
    const exits: string[][] = [];
    k.fns.wrap(
      'exit_mmap',
      (orig) =>
        function* (t: KTask, mm: MmStruct): KGen {
          exits.push([...t.chain()]);
          yield* orig(t, mm);
        },
      'test-patch',
    );
    // A patch under test: mmget_not_zero that always refuses (the address space is never taken).
    k.fns.replace(
      'mmget_not_zero',
      function* (t: KTask, mm: MmStruct): KGen<boolean> {
        return yield* k.step(t, `mmget_not_zero(${mm.name}): patched`, () => false);
      },
      'test-patch',
    );
    const seen: unknown[] = [];
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      seen.push(yield* mmget_not_zero(k, t, mm1), mmUsers(k, mm1));
      yield* k.call(t, 'do_exit', mm_exit(k, t, n, mm1));
      seen.push(mmState(k, mm1));
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    // The replacement took no reference (mm_users stays 1); the wrapped exit_mmap ran inside __mmput.
    expect(seen).toEqual([false, 1, 'freed']);
    expect(exits).toEqual([['proc', 'do_exit', 'exit_mm', 'mmput', '__mmput', 'exit_mmap']]);
    expect(k.fns.list().find((f) => f.name === 'exit_mmap')?.origins.at(-1)).toEqual({ kind: 'patch', by: 'test-patch', how: 'wrap' });
  });

  it('a replaced mmu_notifier_free_rcu is what the SRCU callback runs, after the grace period', () => {
    const { k, n, mm1 } = env();
    const opsId = defineMmuNotifierOps(n, { name: 'test_ops' });
    const freed: string[][] = [];
    const orig = k.fns.current('mmu_notifier_free_rcu') as (t: KTask, sub: number) => KGen;
    k.fns.replace(
      'mmu_notifier_free_rcu',
      function* (t: KTask, sub: number): KGen {
        freed.push([...t.chain()]);
        yield* orig(t, sub);
      },
      'test-patch',
    );
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      const sub = yield* mmu_notifier_register(k, t, n, opsId, mm1, 1);
      yield* mmu_notifier_put(k, t, n, sub);
      yield* k.fn.mmu_notifier_synchronize(t);
      yield* mm_exit(k, t, n, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    expect(freed).toHaveLength(1);
    expect(freed[0]?.at(-1)).toBe('mmu_notifier_free_rcu');
    expect(liveSubscriptions(k, n)).toBe(0);
    expect(mmState(k, mm1)).toBe('freed');
  });
});

describe('MMU notifier subscriptions', () => {
  it('mmu_notifier_get shares one subscription per ops and mm; the last put frees it after a grace period', () => {
    const e = env();
    const { k, n, mm1, mm2 } = e;
    const freed: number[] = [];
    const opsId = defineMmuNotifierOps(n, {
      name: 'iommu_mmu_notifier',
      *free_notifier(t, sub) {
        yield* k.step(t, 'free', () => {
          freed.push(sub);
        });
      },
    });
    const seen: unknown[] = [];
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* mm_init(k, t, mm2);
      const a = yield* k.fn.mmu_notifier_get(t, opsId, mm1, 10);
      const b = yield* k.fn.mmu_notifier_get(t, opsId, mm1, 11);
      const c = yield* k.fn.mmu_notifier_get(t, opsId, mm2, 12);
      seen.push(a === b, a !== c, subscriptionUsers(k, n, a), subscriptionData(k, n, a), subscriptionMm(k, n, c)?.name);
      seen.push(mmCount(k, mm1), liveSubscriptions(k, n), liveSubscriptions(k, n, mm2));
      yield* mmu_notifier_put(k, t, n, a);
      yield* srcu_barrier(k, t, n.srcu);
      seen.push(freed.length, subscriptionUsers(k, n, a));
      yield* mmu_notifier_put(k, t, n, b);
      yield* srcu_barrier(k, t, n.srcu);
      seen.push(freed.length, subscriptionMm(k, n, a), mmCount(k, mm1));
      yield* mmu_notifier_put(k, t, n, c);
      yield* mm_exit(k, t, n, mm1);
      yield* mm_exit(k, t, n, mm2);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    expect(seen).toEqual([true, true, 2, 10, 'mm/2', 2, 2, 1, 0, 1, 1, undefined, 1]);
    expect(freed).toHaveLength(2);
    expect([mmState(k, mm1), mmState(k, mm2), liveSubscriptions(k, n)]).toEqual(['freed', 'freed', 0]);
  });

  /**
   * A process whose mm has one subscription; its `which` callback marks "inside", waits there until the
   * unbinder has put the subscription, and stays a few steps more. free_notifier must find nobody inside.
   * `planted`: the unbinder also frees at once (no grace period), which must be caught.
   */
  function deferWorkload(which: 'release' | 'invalidate_range_start', planted: boolean) {
    const e = env();
    const { k, n, mm1 } = e;
    const w = words(k, 3); // [0] inside, [1] subscription, [2] put done
    const out = { violations: 0, freed: 0, planted: 0 };
    function* inside(t: KTask, kind: string): KGen {
      if (kind !== which) return;
      yield* w.set(t, 0, 1);
      yield* w.until(t, 'put done', () => w.get(2) === 1);
      yield* pause(k, t, 3);
      yield* w.set(t, 0, 0);
    }
    const opsId = defineMmuNotifierOps(n, {
      name: 'sva_mn',
      release: (t) => inside(t, 'release'),
      invalidate_range_start: (t) => inside(t, 'invalidate_range_start'),
      *free_notifier(t) {
        yield* k.step(t, 'free', () => {
          out.freed++;
          if (w.get(0) !== 0) out.violations++;
        });
      },
    });
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      const sub = yield* mmu_notifier_register(k, t, n, opsId, mm1, 1);
      yield* w.set(t, 1, sub);
      for (let round = 0; round < 2; round++) {
        yield* do_mmap(k, t, mm1, 0, 2, true);
        yield* fault_in(k, t, mm1, 0, true);
        yield* do_munmap(k, t, n, mm1, 0, 2);
      }
      yield* mm_exit(k, t, n, mm1);
    });
    k.task('unbind', 'process', function* (t) {
      yield* w.until(t, 'a callback is inside', () => w.get(0) === 1);
      yield* mmu_notifier_put(k, t, n, w.get(1));
      yield* w.set(t, 2, 1);
      if (planted) {
        yield* k.step(t, 'free at once', () => {
          if (w.get(0) !== 0) out.planted++;
        });
      }
    });
    return { e, out, wl: workload(k, ['proc', 'unbind']) };
  }

  for (const which of ['release', 'invalidate_range_start'] as const) {
    it(`free_notifier never runs while ${which === 'release' ? 'a release' : 'an invalidate_range_start'} callback is inside (200 seeds, random and PCT)`, () => {
      const { e, out, wl } = deferWorkload(which, false);
      for (let seed = 1; seed <= 200; seed++) {
        const r = runOnce(wl, seed, seed % 2 === 0);
        expect(r.findings).toEqual([]);
        expect(r.blocked).toEqual([]);
        expect(mmState(e.k, e.mm1)).toBe('freed');
        expect(liveSubscriptions(e.k, e.n)).toBe(0);
      }
      expect(out.freed).toBe(200);
      expect(out.violations).toBe(0);
    });
  }

  it('freeing right after the put, without the grace period, is caught (the test has teeth)', () => {
    for (const which of ['release', 'invalidate_range_start'] as const) {
      const { out, wl } = deferWorkload(which, true);
      for (let seed = 1; seed <= 50; seed++) runOnce(wl, seed, seed % 2 === 0);
      expect(out.planted).toBeGreaterThan(0);
    }
  });

  it('a walk does not call a subscription unlinked before it reached it', () => {
    const e = env();
    const { k, n, mm1 } = e;
    const calls: string[] = [];
    const w = words(k, 3);
    const mk = (name: string) =>
      defineMmuNotifierOps(n, {
        name,
        *invalidate_range_start(t) {
          yield* rec(k, t, calls, name);
          if (name === 'first') {
            yield* w.set(t, 2, 1);
            yield* w.until(t, 'second put', () => w.get(2) === 2);
          }
        },
      });
    const first = mk('first');
    const second = mk('second');
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* mmu_notifier_register(k, t, n, first, mm1, 0);
      yield* w.set(t, 1, yield* mmu_notifier_register(k, t, n, second, mm1, 0));
      yield* do_mmap(k, t, mm1, 0, 1, true);
      yield* do_munmap(k, t, n, mm1, 0, 1);
    });
    k.task('unbind', 'process', function* (t) {
      yield* w.until(t, 'first inside', () => w.get(2) === 1);
      yield* mmu_notifier_put(k, t, n, w.get(1));
      yield* w.set(t, 2, 2);
    });
    for (let seed = 1; seed <= 20; seed++) {
      calls.length = 0;
      const r = runOnce(workload(k, ['proc', 'unbind']), seed, false, true);
      expect(r.blocked).toEqual([]);
      expect(calls).toEqual(['first']);
    }
  });

  it('mmu_notifier_unregister racing with exit: release runs before the pages go, the slot is free when it returns (100 seeds)', () => {
    const e = env();
    const { k, n, pm, mm1 } = e;
    const log: string[] = [];
    const w = words(k, 1);
    const opsId = defineMmuNotifierOps(n, {
      name: 'intel_mmuops',
      *release(t) {
        yield* rec(k, t, log, 'release');
        yield* pause(k, t, 2);
        yield* rec(k, t, log, 'release done');
      },
    });
    onPageFree(pm, () => log.push('free'));
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* w.set(t, 0, yield* mmu_notifier_register(k, t, n, opsId, mm1, 0));
      yield* do_mmap(k, t, mm1, 0, 2, true);
      yield* fault_in(k, t, mm1, 0, true);
      yield* fault_in(k, t, mm1, 1, true);
      yield* mm_exit(k, t, n, mm1);
    });
    k.task('unbind', 'process', function* (t) {
      yield* w.until(t, 'bound', () => w.get(0) !== 0);
      const sub = w.get(0);
      yield* k.call(t, 'intel_svm_unbind_mm', k.fn.mmu_notifier_unregister(t, sub));
      expect(subscriptionMm(k, n, sub)).toBeUndefined();
      yield* k.fn.mmu_notifier_synchronize(t);
    });
    const wl = workload(k, ['proc', 'unbind']);
    for (let seed = 1; seed <= 100; seed++) {
      log.length = 0;
      const r = runOnce(wl, seed, seed % 2 === 0);
      expect(r.findings).toEqual([]);
      expect(r.blocked).toEqual([]);
      expect(mmState(k, mm1)).toBe('freed');
      expect(liveSubscriptions(k, n)).toBe(0);
      const firstFree = log.indexOf('free');
      expect(firstFree).toBeGreaterThan(0);
      // Release ran, and every release that began had finished, before the first page was freed. (As in the
      // kernel, an unregister that saw the subscription linked just before exit unlinked it may still call a
      // late, harmless second release.)
      const before = log.slice(0, firstFree);
      expect(before).toContain('release');
      expect(before.filter((x) => x === 'release').length).toBe(before.filter((x) => x === 'release done').length);
      // Two pages, the PTE and PMD pages (exit_mmap), the PGD page (__mmdrop).
      expect(log.filter((x) => x === 'free')).toHaveLength(5);
    }
  });

  it('unregistering twice is reported', () => {
    const { k, n, mm1 } = env();
    const opsId = defineMmuNotifierOps(n, { name: 'intel_mmuops' });
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      const sub = yield* mmu_notifier_register(k, t, n, opsId, mm1, 0);
      yield* k.fn.mmu_notifier_unregister(t, sub);
      yield* k.fn.mmu_notifier_unregister(t, sub);
      yield* mm_exit(k, t, n, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(titles(r)).toEqual([expect.stringMatching(/^WARNING: CPU: 0 PID: \d+ at mm\/mmu_notifier\.c:\d+ mmu_notifier_unregister$/)]);
    expect(r.findings[0]?.text).toContain('has already been freed');
  });

  it('registering on an mm with no users left is the kernel BUG_ON', () => {
    const e = env();
    const { k, n, mm1 } = e;
    const opsId = defineMmuNotifierOps(n, { name: 'sva_mn' });
    const got: number[] = [];
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* k.fn.mmgrab(t, mm1);
      yield* mm_exit(k, t, n, mm1);
      got.push(yield* k.call(t, 'iommu_sva_bind_device', k.fn.mmu_notifier_get(t, opsId, mm1, 0)));
      yield* k.fn.mmdrop(t, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1, false, true);
    expect(titles(r)).toEqual([expect.stringMatching(/^kernel BUG at mm\/mmu_notifier\.c:\d+!$/)]);
    expect(r.findings[0]?.text).toContain('mm/1 has mm_users 0: it is being torn down');
    expect(got).toEqual([-EINVAL]);
  });

  it('the last mmdrop with a subscription still linked is the kernel BUG_ON in __mmdrop', () => {
    const e = env();
    const { k, n, mm1 } = e;
    const opsId = defineMmuNotifierOps(n, { name: 'sva_mn' });
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* mmu_notifier_register(k, t, n, opsId, mm1, 0);
      yield* k.fn.mmdrop(t, mm1);
      yield* k.fn.mmdrop(t, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(titles(r)).toEqual([expect.stringMatching(/^kernel BUG at mm\/mmu_notifier\.c:\d+!$/)]);
    expect(r.findings[0]?.text).toContain('mm/1 freed with subscription 1 of sva_mn still linked');
  });

  it('a put too many warns', () => {
    const e = env();
    const { k, n, mm1 } = e;
    const opsId = defineMmuNotifierOps(n, { name: 'sva_mn' });
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      const sub = yield* mmu_notifier_register(k, t, n, opsId, mm1, 0);
      yield* mmu_notifier_put(k, t, n, sub);
      yield* mmu_notifier_put(k, t, n, sub);
      yield* mm_exit(k, t, n, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(titles(r)).toEqual([expect.stringMatching(/^WARNING: CPU: 0 PID: \d+ at mm\/mmu_notifier\.c:\d+ mmu_notifier_put$/)]);
    expect(r.findings[0]?.text).toContain('a put too many');
  });
});

describe('teardown checks', () => {
  it('an mm past exit_mmap still held by an mmgrab nobody drops: kmemleak', () => {
    const { k, n, mm1 } = env();
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* k.call(t, 'iommu_sva_bind_device', k.fn.mmgrab(t, mm1));
      yield* mm_exit(k, t, n, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(titles(r)).toEqual(['kmemleak: 1 new suspected memory leak (see /sys/kernel/debug/kmemleak)']);
    expect(r.findings[0]?.kind).toBe('leak');
    expect(r.findings[0]?.text).toContain('mm/1 (mm_struct) is past exit_mmap with mm_count 1');
  });

  it('the same mm held by a subscription not yet put is not reported as a leaked mmgrab', () => {
    const { k, n, mm1 } = env();
    const opsId = defineMmuNotifierOps(n, { name: 'sva_mn' });
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* mmu_notifier_register(k, t, n, opsId, mm1, 0);
      yield* mm_exit(k, t, n, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(r.findings).toEqual([]);
    expect([mmState(k, mm1), mmCount(k, mm1), liveSubscriptions(k, n, mm1)]).toEqual(['dead', 1, 1]);
  });

  it('a subscription never put whose mm was freed (a count dropped by someone else) is reported at the end', () => {
    const { k, n, mm1 } = env();
    const opsId = defineMmuNotifierOps(n, { name: 'sva_mn' });
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* mmu_notifier_register(k, t, n, opsId, mm1, 0);
      yield* mm_exit(k, t, n, mm1);
      yield* k.fn.mmdrop(t, mm1);
    });
    const r = runOnce(workload(k, ['proc']), 1);
    expect(titles(r)).toEqual(['BUG: mmu_notifier subscription 1 (sva_mn) outlives its mm_struct mm/1']);
    expect(r.findings[0]?.kind).toBe('mm');
  });

  it("the leak checks are off with the 'leaks' checker", () => {
    const { k, n, mm1 } = env({ checkers: { leaks: false } });
    k.task('proc', 'process', function* (t) {
      yield* mm_init(k, t, mm1);
      yield* k.fn.mmgrab(t, mm1);
      yield* mm_set_pasid(k, t, mm1, 3);
      yield* mm_exit(k, t, n, mm1);
    });
    expect(runOnce(workload(k, ['proc']), 1).findings).toEqual([]);
  });
});

describe('physical pages', () => {
  it('frames are handed out LIFO, with an owner; DMA writes are counted from the allocation', () => {
    const { k, pm } = env();
    const got: number[] = [];
    k.task('drv', 'process', function* (t) {
      const a = yield* alloc_page(k, t, pm, 77);
      const b = yield* alloc_page(k, t, pm, 78);
      yield* k.step(t, 'dma', () => {
        dmaWrite(k, pm, a, 1);
        dmaWrite(k, pm, a, 2);
      });
      got.push(a, b, pageOwner(k, pm, a), pageWrites(k, pm, a));
      yield* free_page(k, t, pm, a);
      got.push(pageOwner(k, pm, a));
      const c = yield* alloc_page(k, t, pm, 79);
      got.push(c, pageOwner(k, pm, c), pageWrites(k, pm, c));
      yield* free_page(k, t, pm, b);
      yield* free_page(k, t, pm, c);
    });
    const r = runOnce(workload(k, ['drv']), 1);
    expect(r.findings).toEqual([]);
    expect(got).toEqual([BOOT + 1, BOOT + 2, 77, 2, 0, BOOT + 1, 79, 0]);
    expect(framesInUse(k, pm)).toBe(BOOT);
  });

  it('alloc_page returns 0 when memory is exhausted, and is a might_sleep point', () => {
    const { k, pm } = env({ frames: BOOT + 2 });
    const got: number[] = [];
    k.task('drv', 'process', function* (t) {
      got.push(yield* alloc_page(k, t, pm, 5), yield* alloc_page(k, t, pm, 5));
      t.preemptCount++;
      yield* alloc_page(k, t, pm, 5);
      t.preemptCount--;
    });
    const r = runOnce(workload(k, ['drv']), 1);
    expect(got).toEqual([BOOT + 1, 0]);
    expect(titles(r)).toEqual([`BUG: sleeping function called from invalid context at include/linux/sched/mm.h:321`]);
  });

  it('a double free is BUG: Bad page state, with page_owner’s allocation and free', () => {
    const { k, pm } = env();
    k.task('drv', 'process', function* (t) {
      const p = yield* k.call(t, 'dma_alloc_coherent', alloc_page(k, t, pm, 9));
      yield* k.call(t, 'dma_free_coherent', free_page(k, t, pm, p));
      yield* k.call(t, 'dma_free_coherent', free_page(k, t, pm, p));
    });
    const r = runOnce(workload(k, ['drv']), 1);
    expect(titles(r)).toEqual([`BUG: Bad page state in process drv  pfn:${(BOOT + 1).toString(16).padStart(5, '0')}`]);
    expect(r.findings[0]?.kind).toBe('mm');
    const text = r.findings[0]?.text ?? '';
    expect(text).toContain('page dumped because: nonzero _refcount');
    expect(text).toMatch(/page last allocated via order 0, .*\(drv\)\n alloc_pages\n dma_alloc_coherent\n drv/);
    expect(text).toMatch(/page last free pid \d+ tgid \d+ stack trace:\n __free_pages\n dma_free_coherent\n drv/);
    expect(framesInUse(k, pm)).toBe(BOOT);
  });
});

describe('determinism', () => {
  it('the same seed gives the same trace', () => {
    const e = env();
    const { k, n, mm1, mm2 } = e;
    const log: string[] = [];
    const io = sva(e, mm1, log);
    k.task('proc', 'process', function* (t, a) {
      const mm = a === 0 ? mm1 : mm2;
      yield* mm_init(k, t, mm);
      const sub = mm === mm1 ? yield* io.bind(t) : 0;
      yield* do_mmap(k, t, mm, 0, 3, true);
      for (let vpn = 0; vpn < 3; vpn++) yield* fault_in(k, t, mm, vpn, vpn !== 1);
      yield* mmget(k, t, mm);
      yield* mmput(k, t, n, mm);
      yield* mm_exit(k, t, n, mm);
      if (sub !== 0) yield* mmu_notifier_put(k, t, n, sub);
    });
    const wl = workload(k, ['proc', 'proc', io.walker]);
    for (const pct of [false, true]) {
      const a = runOnce(wl, 7, pct);
      const b = runOnce(wl, 7, pct);
      expect(a.findings).toEqual([]);
      expect(a.traceHash).toBe(b.traceHash);
    }
  });
});
