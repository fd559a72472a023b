// MMU notifiers (mm/mmu_notifier.c): how secondary MMUs — an IOMMU walking a process's page tables for SVA —
// hear about changes to an address space. A subscription ties ops and a payload (`data`: the bond, the domain)
// to an mm; it holds mm_count (not mm_users), so the mm_struct outlives exit_mmap while it exists.
//
// Subscriptions live in a static table (the kernel's are allocated by the subscriber and linked on
// mm->notifier_subscriptions). Callbacks are invoked while walking that list inside the SRCU read side of the
// file's own srcu_struct ('srcu'), across many scheduling points, while other tasks link and unlink; as with
// the kernel's hlist_for_each_entry_rcu:
//   - a subscription unlinked before the walk reaches it gets no callback from that walk (the check that it is
//     still linked and the decision to call it are one point);
//   - a subscription linked after the walk began is not visited (hlist_add_head: new entries go in front);
//   - a subscription's memory is released only after an SRCU grace period that follows its unlinking
//     (mmu_notifier_put → call_srcu → free_notifier, then mmdrop), so a walk still calling into it is done
//     before it goes, and a freed slot is never called.
// mmu_notifier_release calls every linked subscription's release once and then unlinks them all — they get no
// more callbacks, yet stay allocated, holding mm_count, until their owner puts them (mn_hlist_release).
// Each list update the kernel makes under subscriptions->lock is one point here.
//
// invalidate_range_start / _end bracket a change of the page tables and may sleep (the callers hold mmap_lock or
// the anon_vma lock, no spinlock); the secondary TLBs are told by __mmu_notifier_arch_invalidate_secondary_tlbs,
// which the TLB flush calls (mmu_gather.ts), often under the page table lock: its callbacks must not sleep.
//
// Teardown checks (when leaks are checked): a subscription never put whose mm has been freed (it points to a
// freed mm_struct); __mmdrop with a subscription still linked is the kernel's BUG_ON.
import type { KTask } from '../context.js';
import { EINVAL, ENOMEM } from '../errno.js';
import { callTrace, heldLocksLines, taskFinding } from '../findings.js';
import type { Kernel, KGen } from '../kernel.js';
import { objLabel } from '../labels.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import { down_write, up_write } from '../rwsem.js';
import { struct, type ViewOf, word } from '../struct.js';
import {
  call_srcu,
  defineSrcu,
  defineSrcuCallback,
  type SrcuStruct,
  srcu_barrier,
  srcu_read_lock,
  srcu_read_unlock,
  synchronize_srcu,
} from '../srcu.js';
import { defineMmuGather } from './mmu_gather.js';
import {
  addMmCountHolder,
  MM_FIELD,
  MM_FREED,
  type MmStruct,
  type MmTable,
  mmAccess,
  mmAccessFootprint,
  mmBase,
  mmById,
  mmStateCode,
  mmUsers,
  onMmDrop,
} from './mm.js';

export interface MmuNotifierOps {
  readonly name: string;
  release?(t: KTask, mm: MmStruct, sub: number): KGen;
  invalidate_range_start?(t: KTask, mm: MmStruct, sub: number, start: number, end: number): KGen;
  invalidate_range_end?(t: KTask, mm: MmStruct, sub: number, start: number, end: number): KGen;
  arch_invalidate_secondary_tlbs?(t: KTask, mm: MmStruct, sub: number, start: number, end: number): KGen;
  /** Runs after an SRCU grace period following the last mmu_notifier_put (the subscription is still there). */
  free_notifier?(t: KTask, sub: number): KGen;
}

export interface MmuNotifiers {
  readonly k: Kernel;
  readonly mms: MmTable;
  readonly slots: number;
  /** Static offset of the table. */
  readonly off: number;
  /** mm/mmu_notifier.c's `DEFINE_STATIC_SRCU(srcu)`. */
  readonly srcu: SrcuStruct;
  /** The SRCU callback kind that frees a subscription (mmu_notifier_free_rcu). */
  readonly freeCallback: string;
  readonly ops: readonly MmuNotifierOps[];
  /** Accessors of the table's header and of its struct mmu_notifier slots. */
  readonly table: ViewOf<typeof MMU_NOTIFIER_TABLE>;
  readonly mn: ViewOf<typeof MMU_NOTIFIER>;
}

/**
 * The table's header: model only. The kernel orders each mm's subscriptions by where hlist_add_head_rcu put them
 * on mm->notifier_subscriptions->list; the model numbers registrations instead.
 */
export const MMU_NOTIFIER_TABLE = struct('mmu_notifier_table', {
  seq: word, // registrations so far: a subscription's place in list order
});

/**
 * struct mmu_notifier (include/linux/mmu_notifier.h: hlist, ops, mm, rcu, users), one per table slot; a
 * subscription's id is its slot + 1.
 */
export const MMU_NOTIFIER = struct('mmu_notifier', {
  state: word, // model: FREE … DYING below: whether hlist is linked and rcu (the free) is pending
  ops: word, // ops id
  mm: word, // mm id + 1
  users: word,
  data: word, // model: the subscriber's object (the kernel embeds the struct in it and uses container_of)
  seq: word, // model: when it was linked (the table's seq then): its place in hlist order
});

const FREE = 0;
const RESERVED = 1; // allocated by a registration that has not linked it yet
const LINKED = 2;
const RELEASED = 3; // unlinked by mmu_notifier_release, not yet put
const DYING = 4; // last put done, free pending an SRCU grace period

// Nominal source lines of the reports below.
const REGISTER_BUG_LINE = 'mm/mmu_notifier.c:617';
const PUT_WARN_LINE = 'mm/mmu_notifier.c:805';
const DESTROY_BUG_LINE = 'mm/mmu_notifier.c:1077';

const declared = new WeakMap<Kernel, MmuNotifiers>();
/** The ops of each table, appended to at declaration (the interface shows them read-only). */
const opsLists = new WeakMap<MmuNotifiers, MmuNotifierOps[]>();

/** Static words defineMmuNotifiers takes for its table (to size a kernel layout; SRCU's readers are extra). */
export function mmuNotifierWords(slots: number): number {
  return MMU_NOTIFIER_TABLE.words + slots * MMU_NOTIFIER.words;
}

/**
 * The MMU notifier machinery of `mms`: the srcu_struct, a table of `slots` subscriptions and the SRCU callback
 * that frees them, and the TLB gather whose flushes call the secondary TLBs. One per kernel, declared with the
 * workload; `bug` may plant tlb-end-vma-no-notify (mmu_gather.ts).
 */
export function defineMmuNotifiers(k: Kernel, mms: MmTable, slots: number, bug = 'none'): MmuNotifiers {
  if (declared.has(k)) throw new Error('mmu_notifier: defineMmuNotifiers once per kernel (mm/mmu_notifier.c has one srcu)');
  if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`mmu_notifier: bad slot count ${slots}`);
  const srcu = defineSrcu(k, 'srcu');
  const ops: MmuNotifierOps[] = [];
  const off = k.statics.alloc(mmuNotifierWords(slots), 'mmu notifier subscriptions');
  const freeCallback = 'mmu_notifier_free_rcu';
  const n: MmuNotifiers = { k, mms, slots, off, srcu, freeCallback, ops, table: k.struct(MMU_NOTIFIER_TABLE), mn: k.struct(MMU_NOTIFIER) };
  declared.set(k, n);
  opsLists.set(n, ops);
  // The callback's own frame is the SRCU machinery's (srcu_invoke_callbacks → mmu_notifier_free_rcu): its
  // current implementation is called without a second one.
  defineSrcuCallback(k, srcu, freeCallback, (t, args) => k.fns.current('mmu_notifier_free_rcu')(t, typeof args === 'number' ? args : 0));
  addMmCountHolder(mms, (mm) => liveSubscriptions(k, n, mm));
  onMmDrop(mms, (mm, t, step) => destroyCheck(k, n, mm, t, step), (mm) => destroyFootprint(k, n, mm));
  k.onEnd(() => endCheck(k, n));
  defineMmuNotifierFunctions(k, n, bug);
  defineMmuGather(k, bug);
  return n;
}

/** The kernel's MMU notifier machinery (for a patch that replaces one of its functions). */
export function mmuNotifiersOf(k: Kernel): MmuNotifiers {
  const n = declared.get(k);
  if (!n) throw new Error('mmu_notifier: this kernel has none (defineMmuNotifiers)');
  return n;
}

declare module '../kfunc.js' {
  interface KernelFunctions {
    mmu_notifier_register(t: KTask, opsId: number, mm: MmStruct, data: number): KGen<number>;
    __mmu_notifier_register(t: KTask, opsId: number, mm: MmStruct, data: number): KGen<number>;
    mmu_notifier_get(t: KTask, opsId: number, mm: MmStruct, data: number): KGen<number>;
    mmu_notifier_get_locked(t: KTask, opsId: number, mm: MmStruct, data: number): KGen<number>;
    mmu_notifier_put(t: KTask, sub: number): KGen;
    mmu_notifier_unregister(t: KTask, sub: number): KGen;
    mmu_notifier_synchronize(t: KTask): KGen;
    mmu_notifier_free_rcu(t: KTask, sub: number): KGen;
    __mmu_notifier_release(t: KTask, mm: MmStruct): KGen;
    mn_hlist_release(t: KTask, mm: MmStruct): KGen;
    __mmu_notifier_invalidate_range_start(t: KTask, mm: MmStruct, start: number, end: number): KGen;
    __mmu_notifier_invalidate_range_end(t: KTask, mm: MmStruct, start: number, end: number): KGen;
    __mmu_notifier_arch_invalidate_secondary_tlbs(t: KTask, mm: MmStruct, start: number, end: number): KGen;
  }
}

/** mm/mmu_notifier.c's functions, by kernel name, on the kernel's one table `n` (mmuNotifiersOf(k)). */
function defineMmuNotifierFunctions(k: Kernel, n: MmuNotifiers, bug: string): void {
  const file = 'mm/mmu_notifier.c';
  k.fns.define('mmu_notifier_register', file, (t, opsId, mm, data) => register(k, t, n, opsId, mm, data));
  k.fns.define('__mmu_notifier_register', file, (t, opsId, mm, data) => registerLocked(k, t, n, opsId, mm, data));
  k.fns.define('mmu_notifier_get', file, (t, opsId, mm, data) => get(k, t, n, opsId, mm, data));
  k.fns.define('mmu_notifier_get_locked', file, (t, opsId, mm, data) => getLocked(k, t, n, opsId, mm, data));
  k.fns.define('mmu_notifier_put', file, (t, sub) => put(k, t, n, sub));
  k.fns.define('mmu_notifier_unregister', file, (t, sub) => unregister(k, t, n, sub));
  k.fns.define('mmu_notifier_synchronize', file, (t) => srcu_barrier(k, t, n.srcu));
  k.fns.define('mmu_notifier_free_rcu', file, (t, sub) => freeRcu(k, n, t, sub));
  k.fns.define('__mmu_notifier_release', file, (t, mm) => release(k, t, n, mm));
  k.fns.define('mn_hlist_release', file, (t, mm) => hlistRelease(k, t, n, mm));
  k.fns.define('__mmu_notifier_invalidate_range_start', file, (t, mm, start, end) => invalidateStart(k, t, n, mm, start, end));
  k.fns.definePlanted('__mmu_notifier_invalidate_range_end', file, bug, {
    none: (t, mm, start, end) => invalidateEnd(k, t, n, mm, start, end),
    'tlb-end-vma-no-notify': (t, mm, start, end) => invalidateEndWithRange(k, t, n, mm, start, end),
  });
  k.fns.define('__mmu_notifier_arch_invalidate_secondary_tlbs', file, (t, mm, start, end) => archInvalidate(k, t, n, mm, start, end));
}

/** Declare a `struct mmu_notifier_ops` (at declaration, identically in every thread); returns its id. */
export function defineMmuNotifierOps(n: MmuNotifiers, ops: MmuNotifierOps): number {
  if (n.k.attached) throw new Error('mmu_notifier: declare ops when the workload is built');
  const list = opsLists.get(n);
  if (!list) throw new Error('mmu_notifier: not declared with defineMmuNotifiers');
  list.push(ops);
  return list.length;
}

// ---- the table ----

/** The table's header (its word offset). */
function tableAddr(k: Kernel, n: MmuNotifiers): number {
  return k.mem.statics + n.off;
}

/** Subscription `sub`'s struct mmu_notifier (its word offset). */
function slotAddr(k: Kernel, n: MmuNotifiers, sub: number): number {
  return k.mem.statics + n.off + MMU_NOTIFIER_TABLE.words + (sub - 1) * MMU_NOTIFIER.words;
}

function validSub(n: MmuNotifiers, sub: number): boolean {
  return Number.isInteger(sub) && sub >= 1 && sub <= n.slots;
}

function opsOf(n: MmuNotifiers, id: number): MmuNotifierOps {
  const ops = n.ops[id - 1];
  if (!ops) throw new Error(`mmu_notifier: no ops ${id}`);
  return ops;
}

function mmOf(n: MmuNotifiers, mmWord: number): MmStruct {
  const mm = mmById(n.mms, mmWord - 1);
  if (!mm) throw new Error(`mmu_notifier: no mm ${mmWord - 1}`);
  return mm;
}

/** The subscription's payload (0 for a free slot). */
export function subscriptionData(k: Kernel, n: MmuNotifiers, sub: number): number {
  return validSub(n, sub) && n.mn.state.READ_ONCE(slotAddr(k, n, sub)) !== FREE ? n.mn.data.READ_ONCE(slotAddr(k, n, sub)) : 0;
}

/**
 * The subscription of `opsId` whose payload is `data`, registered and not yet put (0: none): container_of's
 * inverse, for a subscriber that embeds its struct mmu_notifier (an SVA domain's domain->notifier).
 */
export function subscriptionOf(k: Kernel, n: MmuNotifiers, opsId: number, data: number): number {
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    if (isLive(n.mn.state.READ_ONCE(a)) && n.mn.ops.READ_ONCE(a) === opsId && n.mn.data.READ_ONCE(a) === data) return sub;
  }
  return 0;
}

/**
 * What subscriptionOf(k, n, opsId, data) reads: each slot's state, and the ops and data of the slots in use (all
 * of them: where the scan stops is not worth repeating). Computed: call it under the step.
 */
export function subscriptionOfFootprint(k: Kernel, n: MmuNotifiers, opsId: number): number[] {
  const out: number[] = [];
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    out.push(read(n.mn.state.addr(a)));
    if (n.mn.state.get(a) === FREE) continue;
    out.push(read(n.mn.ops.addr(a)));
    if (n.mn.ops.get(a) === opsId) out.push(read(n.mn.data.addr(a)));
  }
  return out;
}

/** The subscription's mm (undefined for a free slot). */
export function subscriptionMm(k: Kernel, n: MmuNotifiers, sub: number): MmStruct | undefined {
  if (!validSub(n, sub) || n.mn.state.READ_ONCE(slotAddr(k, n, sub)) === FREE) return undefined;
  return mmById(n.mms, n.mn.mm.READ_ONCE(slotAddr(k, n, sub)) - 1);
}

/** subscription->users (0 for a free slot). */
export function subscriptionUsers(k: Kernel, n: MmuNotifiers, sub: number): number {
  return validSub(n, sub) && n.mn.state.READ_ONCE(slotAddr(k, n, sub)) !== FREE ? n.mn.users.READ_ONCE(slotAddr(k, n, sub)) : 0;
}

/** Is the subscription on its mm's list (it gets callbacks)? */
export function subscriptionLinked(k: Kernel, n: MmuNotifiers, sub: number): boolean {
  return validSub(n, sub) && n.mn.state.READ_ONCE(slotAddr(k, n, sub)) === LINKED;
}

function isLive(state: number): boolean {
  return state === RESERVED || state === LINKED || state === RELEASED;
}

/** Subscriptions registered and not yet put (on mm, or on any mm): for leak checks. */
export function liveSubscriptions(k: Kernel, n: MmuNotifiers, mm?: MmStruct): number {
  let c = 0;
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    if (!isLive(n.mn.state.READ_ONCE(a))) continue;
    if (mm === undefined || n.mn.mm.READ_ONCE(a) === mm.id + 1) c++;
  }
  return c;
}

function anyLinked(k: Kernel, n: MmuNotifiers, mm: MmStruct): boolean {
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    if (n.mn.state.READ_ONCE(a) === LINKED && n.mn.mm.READ_ONCE(a) === mm.id + 1) return true;
  }
  return false;
}

type Callback = 'release' | 'invalidate_range_start' | 'invalidate_range_end' | 'arch_invalidate_secondary_tlbs';

/** The next subscription from `from` that the walk calls: linked on mm, linked before it began, has one of `cbs`. */
function nextSub(k: Kernel, n: MmuNotifiers, mm: MmStruct, from: number, snap: number, cbs: readonly Callback[]): number {
  for (let sub = from; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    if (n.mn.state.READ_ONCE(a) !== LINKED || n.mn.mm.READ_ONCE(a) !== mm.id + 1 || n.mn.seq.READ_ONCE(a) > snap) continue;
    const ops = opsOf(n, n.mn.ops.READ_ONCE(a));
    if (cbs.some((c) => ops[c] !== undefined)) return sub;
  }
  return 0;
}

/**
 * hlist_for_each_entry_rcu over mm's subscriptions (the caller is inside an SRCU reader): each step finds the
 * next one still linked and commits to calling it.
 */
function* walk(
  k: Kernel,
  t: KTask,
  n: MmuNotifiers,
  mm: MmStruct,
  cbs: readonly Callback[],
  call: (ops: MmuNotifierOps, sub: number) => KGen,
): KGen {
  let snap = -1;
  let from = 1;
  for (;;) {
    const at = from;
    const fp = () => walkFootprint(k, n, mm, at, snap, cbs);
    const [sub, opsId] = yield* k.stepOn(t, `mmu_notifier walk(${mm.name})`, fp, () => {
      if (snap < 0) snap = n.table.seq.READ_ONCE(tableAddr(k, n));
      const s = nextSub(k, n, mm, from, snap, cbs);
      return [s, s === 0 ? 0 : n.mn.ops.READ_ONCE(slotAddr(k, n, s))] as const;
    });
    if (sub === 0) return;
    from = sub + 1;
    yield* call(opsOf(n, opsId), sub);
  }
}

// ---- footprints (runtime/footprint.ts): the words of the table each step reads and writes ----

type SlotField = keyof typeof MMU_NOTIFIER.offset;

/** The word of a subscription's field. */
function slotWord(k: Kernel, n: MmuNotifiers, sub: number, field: SlotField): number {
  return slotAddr(k, n, sub) + MMU_NOTIFIER.offset[field];
}

/** The subscription's state, mm and ops words, read (mmu_notifier_unregister, mmu_notifier_free_rcu). */
function slotReads(k: Kernel, n: MmuNotifiers, sub: number): Footprint {
  return [read(slotWord(k, n, sub, 'state')), read(slotWord(k, n, sub, 'mm')), read(slotWord(k, n, sub, 'ops'))];
}

/** Every word of the subscription, written (its slot freed). */
function slotWrites(k: Kernel, n: MmuNotifiers, sub: number): Footprint {
  const a = slotAddr(k, n, sub);
  return Array.from({ length: MMU_NOTIFIER.words }, (_, i) => a + i);
}

/**
 * What mm_has_notifiers reads (anyLinked): each slot's state up to the first linked on mm, and a linked one's mm —
 * a few words for an mm with a subscription in a low slot, the whole table's states for one without. Pure.
 */
function listFootprint(k: Kernel, n: MmuNotifiers, mm: MmStruct): Footprint {
  return linkedOnMmFootprint(k, n, mm);
}

/** What nextSub reads (a walk step from `from`; snap < 0: its first, which reads the table's seq too). Pure. */
function walkFootprint(k: Kernel, n: MmuNotifiers, mm: MmStruct, from: number, snap: number, cbs: readonly Callback[]): Footprint {
  const out: number[] = [];
  let upTo = snap;
  if (upTo < 0) {
    out.push(read(n.table.seq.addr(tableAddr(k, n))));
    upTo = n.table.seq.READ_ONCE(tableAddr(k, n));
  }
  for (let sub = from; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    out.push(read(n.mn.state.addr(a)));
    if (n.mn.state.READ_ONCE(a) !== LINKED) continue;
    out.push(read(n.mn.mm.addr(a)));
    if (n.mn.mm.READ_ONCE(a) !== mm.id + 1) continue;
    out.push(read(n.mn.seq.addr(a)));
    if (n.mn.seq.READ_ONCE(a) > upTo) continue;
    out.push(read(n.mn.ops.addr(a)));
    const ops = opsOf(n, n.mn.ops.READ_ONCE(a));
    if (cbs.some((c) => ops[c] !== undefined)) break;
  }
  return out;
}

/** What __mmu_notifier_register's allocation reads (mm_users; the slots up to a free one) and writes (that slot). */
function allocFootprint(k: Kernel, n: MmuNotifiers, mm: MmStruct): Footprint {
  const out = [read(mm.view.mm_users.addr(mmBase(k, mm)))];
  if (mmUsers(k, mm) > 0) {
    for (let s = 1; s <= n.slots; s++) {
      const a = slotAddr(k, n, s);
      if (n.mn.state.READ_ONCE(a) !== FREE) {
        out.push(read(n.mn.state.addr(a)));
        continue;
      }
      out.push(n.mn.state.addr(a), n.mn.ops.addr(a), n.mn.mm.addr(a), n.mn.users.addr(a), n.mn.data.addr(a));
      break;
    }
  }
  return mmAccessFootprint(k, mm, out);
}

/**
 * The slots a scan for a subscription linked on mm reads: each slot's state, a linked one's mm, up to the first
 * linked on mm for which `atMatch` (appending what it reads or writes of that slot) says the scan stops.
 */
function linkedOnMmFootprint(k: Kernel, n: MmuNotifiers, mm: MmStruct, atMatch: (a: number, out: number[]) => boolean = () => true): Footprint {
  const out: number[] = [];
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    out.push(read(n.mn.state.addr(a)));
    if (n.mn.state.READ_ONCE(a) !== LINKED) continue;
    out.push(read(n.mn.mm.addr(a)));
    if (n.mn.mm.READ_ONCE(a) === mm.id + 1 && atMatch(a, out)) break;
  }
  return out;
}

/** What find_get_mmu_notifier reads (the slots up to a linked one of these ops on mm) and writes (its users). */
function findFootprint(k: Kernel, n: MmuNotifiers, mm: MmStruct, opsId: number): Footprint {
  return linkedOnMmFootprint(k, n, mm, (a, out) => {
    out.push(read(n.mn.ops.addr(a)));
    if (n.mn.ops.READ_ONCE(a) !== opsId) return false;
    out.push(n.mn.users.addr(a));
    return true;
  });
}

/** What mn_hlist_release's unlinking reads (every slot's state, a linked one's mm) and writes (mm's linked ones). */
function unlinkAllFootprint(k: Kernel, n: MmuNotifiers, mm: MmStruct): Footprint {
  const out: number[] = [];
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    if (n.mn.state.READ_ONCE(a) !== LINKED) {
      out.push(read(n.mn.state.addr(a)));
      continue;
    }
    out.push(read(n.mn.mm.addr(a)));
    out.push(n.mn.mm.READ_ONCE(a) === mm.id + 1 ? n.mn.state.addr(a) : read(n.mn.state.addr(a)));
  }
  return out;
}

function* maybe(g: KGen | undefined): KGen {
  if (g) yield* g;
}

/** mm_has_notifiers(mm): the fast path that keeps mms without subscribers off SRCU. */
function hasNotifiers(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct): KGen<boolean> {
  return k.stepOn(t, objLabel(mm, 'mm_has_notifiers', mm.name), () => listFootprint(k, n, mm), () => anyLinked(k, n, mm));
}

// ---- registration ----

function bug(k: Kernel, t: KTask, step: number, line: string, fn: string, what: string): void {
  const body = [
    'invalid opcode: 0000 [#1] PREEMPT SMP',
    `CPU: 0 PID: ${t.pid} Comm: ${t.comm} Not tainted (iommu-sim)`,
    `RIP: 0010:${fn}`,
    `iommu-sim: ${what}`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('oops', t, step, `kernel BUG at ${line}!`, body));
}

/**
 * __mmu_notifier_register (mmap_lock held for write): BUG_ON(mm_users <= 0) — registering on an mm being torn
 * down — is reported and fails with -EINVAL here (the kernel would die). Allocation failure is -ENOMEM.
 */
function* registerLocked(k: Kernel, t: KTask, n: MmuNotifiers, opsId: number, mm: MmStruct, data: number): KGen<number> {
  opsOf(n, opsId);
  const sub = yield* k.stepOn(t, `mmu_notifier alloc(${mm.name})`, () => allocFootprint(k, n, mm), (env) => {
    mmAccess(k, t, mm, MM_FIELD.users, false);
    const users = mmUsers(k, mm);
    if (users <= 0) {
      bug(k, t, env.step, REGISTER_BUG_LINE, '__mmu_notifier_register', `${mm.name} has mm_users ${users}: it is being torn down`);
      return -EINVAL;
    }
    for (let s = 1; s <= n.slots; s++) {
      const a = slotAddr(k, n, s);
      if (n.mn.state.READ_ONCE(a) !== FREE) continue;
      n.mn.state.WRITE_ONCE(a, RESERVED);
      n.mn.ops.WRITE_ONCE(a, opsId);
      n.mn.mm.WRITE_ONCE(a, mm.id + 1);
      n.mn.users.WRITE_ONCE(a, 1);
      n.mn.data.WRITE_ONCE(a, data);
      return s;
    }
    return -ENOMEM;
  });
  if (sub < 0) return sub;
  // Pairs with the mmdrop in mmu_notifier_free_rcu.
  yield* k.fn.mmgrab(t, mm);
  const linked = [n.table.seq.addr(tableAddr(k, n)), slotWord(k, n, sub, 'seq'), slotWord(k, n, sub, 'state')];
  yield* k.stepOn(t, `hlist_add_head_rcu(${mm.name}, subscription ${sub})`, linked, () => {
    const a = slotAddr(k, n, sub);
    const seq = n.table.seq.atomic_inc_return(tableAddr(k, n));
    n.mn.seq.WRITE_ONCE(a, seq);
    n.mn.state.WRITE_ONCE(a, LINKED);
  });
  return sub;
}

/** mmu_notifier_register: a new subscription of ops on mm with `data`; its id (> 0) or -ENOMEM. */
function* register(k: Kernel, t: KTask, n: MmuNotifiers, opsId: number, mm: MmStruct, data: number): KGen<number> {
  void n;
  yield* down_write(k, t, mm.mmapLock);
  const ret = yield* k.fn.__mmu_notifier_register(t, opsId, mm, data);
  yield* up_write(k, t, mm.mmapLock);
  return ret;
}

/** k.fn.mmu_notifier_register (`n`: the kernel's one table, which the registry's functions keep). */
export function mmu_notifier_register(k: Kernel, t: KTask, n: MmuNotifiers, opsId: number, mm: MmStruct, data: number): KGen<number> {
  void n;
  return k.fn.mmu_notifier_register(t, opsId, mm, data);
}

/**
 * mmu_notifier_get: the linked subscription of these ops on mm, with one more user, or a new one with `data`
 * (find_get_mmu_notifier, then __mmu_notifier_register, under mmap_lock held for write).
 */
function* get(k: Kernel, t: KTask, n: MmuNotifiers, opsId: number, mm: MmStruct, data: number): KGen<number> {
  opsOf(n, opsId);
  yield* down_write(k, t, mm.mmapLock);
  const ret = yield* k.fn.mmu_notifier_get_locked(t, opsId, mm, data);
  yield* up_write(k, t, mm.mmapLock);
  return ret;
}

/** mmu_notifier_get_locked (mmap_lock held for write): find_get_mmu_notifier, else a new registration. */
function* getLocked(k: Kernel, t: KTask, n: MmuNotifiers, opsId: number, mm: MmStruct, data: number): KGen<number> {
  const found = yield* k.stepOn(t, `find_get_mmu_notifier(${mm.name})`, () => findFootprint(k, n, mm, opsId), () => {
    for (let sub = 1; sub <= n.slots; sub++) {
      const a = slotAddr(k, n, sub);
      if (n.mn.state.READ_ONCE(a) !== LINKED || n.mn.mm.READ_ONCE(a) !== mm.id + 1) continue;
      if (n.mn.ops.READ_ONCE(a) !== opsId) continue;
      n.mn.users.atomic_inc(a);
      return sub;
    }
    return 0;
  });
  return found !== 0 ? found : yield* k.fn.__mmu_notifier_register(t, opsId, mm, data);
}

/**
 * mmu_notifier_put: drop a user; the last one unlinks the subscription (no walk that has not reached it yet
 * calls it) and frees it after an SRCU grace period: free_notifier, then the slot, then mmdrop. Never sleeps.
 */
function* put(k: Kernel, t: KTask, n: MmuNotifiers, sub: number): KGen {
  if (!validSub(n, sub)) throw new RangeError(`mmu_notifier_put: no subscription ${sub}`);
  const fp = [slotWord(k, n, sub, 'state'), slotWord(k, n, sub, 'users'), read(slotWord(k, n, sub, 'ops'))];
  const last = yield* k.stepOn(t, `mmu_notifier_put(subscription ${sub})`, fp, (env) => {
    const a = slotAddr(k, n, sub);
    const state = n.mn.state.READ_ONCE(a);
    const users = n.mn.users.READ_ONCE(a);
    if (state === FREE || state === DYING || users <= 0) {
      putWarn(k, t, n, sub, state, env.step, 'mmu_notifier_put');
      return false;
    }
    n.mn.users.WRITE_ONCE(a, users - 1);
    if (users > 1) return false;
    // hlist_del_init_rcu: a released subscription is already off the list.
    n.mn.state.WRITE_ONCE(a, DYING);
    return true;
  });
  if (last) yield* call_srcu(k, t, n.srcu, n.freeCallback, sub);
}

/** k.fn.mmu_notifier_put */
export function mmu_notifier_put(k: Kernel, t: KTask, n: MmuNotifiers, sub: number): KGen {
  void n;
  return k.fn.mmu_notifier_put(t, sub);
}

/**
 * mmu_notifier_unregister, for subscriptions from mmu_notifier_register that their owner frees itself: release
 * (unless mmu_notifier_release got there first), unlink, synchronize_srcu — no callback is running any more —
 * then the slot is free and mm_count dropped. May sleep.
 */
function* unregister(k: Kernel, t: KTask, n: MmuNotifiers, sub: number): KGen {
  if (!validSub(n, sub)) throw new RangeError(`mmu_notifier_unregister: no subscription ${sub}`);
  const fp = slotReads(k, n, sub);
  const [state, mmWord, opsId] = yield* k.stepOn(t, `mmu_notifier_unregister(subscription ${sub})`, fp, (env) => {
    const a = slotAddr(k, n, sub);
    const st = n.mn.state.READ_ONCE(a);
    if (st !== LINKED && st !== RELEASED) putWarn(k, t, n, sub, st, env.step, 'mmu_notifier_unregister');
    return [st, n.mn.mm.READ_ONCE(a), n.mn.ops.READ_ONCE(a)] as const;
  });
  if (state !== LINKED && state !== RELEASED) return;
  const mm = mmOf(n, mmWord);
  if (state === LINKED) {
    const ops = opsOf(n, opsId);
    // SRCU here makes exit_mmap (in mmu_notifier_release) wait for this release before freeing pages.
    const idx = yield* srcu_read_lock(k, t, n.srcu);
    if (ops.release) yield* ops.release(t, mm, sub);
    yield* srcu_read_unlock(k, t, n.srcu, idx);
    yield* k.stepOn(t, `hlist_del_init_rcu(subscription ${sub})`, [slotWord(k, n, sub, 'state')], () => {
      const a = slotAddr(k, n, sub);
      if (n.mn.state.READ_ONCE(a) === LINKED) n.mn.state.WRITE_ONCE(a, RELEASED);
    });
  }
  // Wait for any callback still running, including a release run by mmu_notifier_release instead of us.
  yield* synchronize_srcu(k, t, n.srcu);
  yield* k.stepOn(t, `free subscription ${sub}`, slotWrites(k, n, sub), () => {
    k.i32.fill(0, slotAddr(k, n, sub), slotAddr(k, n, sub) + MMU_NOTIFIER.words);
  });
  yield* k.fn.mmdrop(t, mm);
}

/** WARN_ON(!subscription->users): a put too many, or a put or unregister of a subscription already freed. */
function putWarn(k: Kernel, t: KTask, n: MmuNotifiers, sub: number, state: number, step: number, fn: string): void {
  if (!k.enabled('refcount')) return;
  const what =
    state === FREE
      ? `subscription ${sub} has already been freed (${fn} after the last put or unregister: use-after-free)`
      : `subscription ${sub} of ${opsOf(n, n.mn.ops.READ_ONCE(slotAddr(k, n, sub))).name} has no users left (a put too many)`;
  const body = [
    `Comm: ${t.comm} Not tainted (iommu-sim)`,
    `RIP: 0010:${fn}`,
    `iommu-sim: ${what}`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
  k.report(taskFinding('refcount', t, step, `WARNING: CPU: 0 PID: ${t.pid} at ${PUT_WARN_LINE} ${fn}`, body));
}

/** mmu_notifier_free_rcu: an SRCU grace period after the last put. */
function* freeRcu(k: Kernel, n: MmuNotifiers, t: KTask, sub: number): KGen {
  if (!validSub(n, sub)) throw new Error(`mmu_notifier_free_rcu: no subscription ${sub}`);
  const [opsId, mmWord] = yield* k.stepOn(t, `mmu_notifier_free_rcu(subscription ${sub})`, slotReads(k, n, sub), () => {
    const a = slotAddr(k, n, sub);
    if (n.mn.state.READ_ONCE(a) !== DYING) throw new Error(`mmu_notifier_free_rcu: subscription ${sub} is not being freed`);
    return [n.mn.ops.READ_ONCE(a), n.mn.mm.READ_ONCE(a)] as const;
  });
  const ops = opsOf(n, opsId);
  if (ops.free_notifier) yield* ops.free_notifier(t, sub);
  yield* k.stepOn(t, `free subscription ${sub}`, slotWrites(k, n, sub), () => {
    k.i32.fill(0, slotAddr(k, n, sub), slotAddr(k, n, sub) + MMU_NOTIFIER.words);
  });
  yield* k.fn.mmdrop(t, mmOf(n, mmWord));
}

// ---- notifications ----

/**
 * __mmu_notifier_release (exit_mmap, before any page goes): every linked subscription's release once, inside
 * SRCU; then all of them unlinked; then synchronize_srcu, so that a release running from a concurrent
 * mmu_notifier_unregister has finished before exit_mmap frees the pages.
 */
function* release(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct): KGen {
  if (!(yield* hasNotifiers(k, t, n, mm))) return;
  yield* k.fn.mn_hlist_release(t, mm);
}

/** mn_hlist_release: each release inside SRCU, then every subscription unlinked, then synchronize_srcu. */
function* hlistRelease(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct): KGen {
  const idx = yield* srcu_read_lock(k, t, n.srcu);
  yield* walk(k, t, n, mm, ['release'], (ops, sub) => maybe(ops.release?.(t, mm, sub)));
  yield* k.stepOn(t, `hlist_del_init_rcu(${mm.name}: all)`, () => unlinkAllFootprint(k, n, mm), () => {
    for (let sub = 1; sub <= n.slots; sub++) {
      const a = slotAddr(k, n, sub);
      if (n.mn.state.READ_ONCE(a) === LINKED && n.mn.mm.READ_ONCE(a) === mm.id + 1) {
        n.mn.state.WRITE_ONCE(a, RELEASED);
      }
    }
  });
  yield* srcu_read_unlock(k, t, n.srcu, idx);
  yield* synchronize_srcu(k, t, n.srcu);
}

/**
 * __mmu_notifier_invalidate_range_start: [start, end) is about to change. Blockable (mmu_notifier_range_blockable:
 * munmap, madvise and migration call it holding mmap_lock or the anon_vma lock, no spinlock): callbacks may sleep.
 */
function* invalidateStart(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct, start: number, end: number): KGen {
  if (!(yield* hasNotifiers(k, t, n, mm))) return;
  const idx = yield* srcu_read_lock(k, t, n.srcu);
  yield* walk(k, t, n, mm, ['invalidate_range_start'], (ops, sub) => maybe(ops.invalidate_range_start?.(t, mm, sub, start, end)));
  yield* srcu_read_unlock(k, t, n.srcu, idx);
}

/**
 * __mmu_notifier_invalidate_range_end: [start, end) has changed; each subscription's invalidate_range_end
 * (blockable like _start: the caller holds mmap_lock, no spinlock). The secondary TLBs were told by the TLB
 * flush already (__mmu_notifier_arch_invalidate_secondary_tlbs), not here (v6.6, "mmu_notifiers: don't
 * invalidate secondary TLBs as part of mmu_notifier_invalidate_range_end()").
 */
function* invalidateEnd(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct, start: number, end: number): KGen {
  if (!(yield* hasNotifiers(k, t, n, mm))) return;
  const idx = yield* srcu_read_lock(k, t, n.srcu);
  yield* walk(k, t, n, mm, ['invalidate_range_end'], (ops, sub) => maybe(ops.invalidate_range_end?.(t, mm, sub, start, end)));
  yield* srcu_read_unlock(k, t, n.srcu, idx);
}

/**
 * invalidate_range_end in the kernel of the planted bug tlb-end-vma-no-notify (before 6bbd42e2df8f): the range's
 * invalidate_range (arch_invalidate_secondary_tlbs' former name) first, then invalidate_range_end.
 */
function* invalidateEndWithRange(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct, start: number, end: number): KGen {
  if (!(yield* hasNotifiers(k, t, n, mm))) return;
  const idx = yield* srcu_read_lock(k, t, n.srcu);
  yield* walk(k, t, n, mm, ['arch_invalidate_secondary_tlbs', 'invalidate_range_end'], function* (ops, sub) {
    if (ops.arch_invalidate_secondary_tlbs) yield* ops.arch_invalidate_secondary_tlbs(t, mm, sub, start, end);
    if (ops.invalidate_range_end) yield* ops.invalidate_range_end(t, mm, sub, start, end);
  });
  yield* srcu_read_unlock(k, t, n.srcu, idx);
}

/**
 * __mmu_notifier_arch_invalidate_secondary_tlbs: from the architecture's TLB flush (flush_tlb_mm_range), often
 * under the page table lock — atomic context: the callbacks must not sleep. Every subscription's
 * arch_invalidate_secondary_tlbs for [start, end), inside SRCU.
 */
function* archInvalidate(k: Kernel, t: KTask, n: MmuNotifiers, mm: MmStruct, start: number, end: number): KGen {
  if (!(yield* hasNotifiers(k, t, n, mm))) return;
  const idx = yield* srcu_read_lock(k, t, n.srcu);
  yield* walk(k, t, n, mm, ['arch_invalidate_secondary_tlbs'], (ops, sub) => maybe(ops.arch_invalidate_secondary_tlbs?.(t, mm, sub, start, end)));
  yield* srcu_read_unlock(k, t, n.srcu, idx);
}

// ---- checks ----

/** __mmu_notifier_subscriptions_destroy: BUG_ON(!hlist_empty(&subscriptions->list)) in __mmdrop. */
function destroyCheck(k: Kernel, n: MmuNotifiers, mm: MmStruct, t: KTask, step: number): void {
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    if (n.mn.state.READ_ONCE(a) !== LINKED || n.mn.mm.READ_ONCE(a) !== mm.id + 1) continue;
    const ops = opsOf(n, n.mn.ops.READ_ONCE(a));
    bug(
      k,
      t,
      step,
      DESTROY_BUG_LINE,
      '__mmu_notifier_subscriptions_destroy',
      `${mm.name} freed with subscription ${sub} of ${ops.name} still linked`,
    );
    return;
  }
}

/** What destroyCheck reads: each slot's state up to one linked on mm, a linked one's mm, and that one's ops. */
function destroyFootprint(k: Kernel, n: MmuNotifiers, mm: MmStruct): Footprint {
  return linkedOnMmFootprint(k, n, mm, (a, out) => {
    out.push(read(n.mn.ops.addr(a)));
    return true;
  });
}

/** At the end: a subscription never put whose mm has been freed points to a freed mm_struct. */
function endCheck(k: Kernel, n: MmuNotifiers): void {
  if (!k.enabled('leaks')) return;
  for (let sub = 1; sub <= n.slots; sub++) {
    const a = slotAddr(k, n, sub);
    if (!isLive(n.mn.state.READ_ONCE(a))) continue;
    const mm = mmOf(n, n.mn.mm.READ_ONCE(a));
    if (mmStateCode(k, mm) !== MM_FREED) continue;
    const ops = opsOf(n, n.mn.ops.READ_ONCE(a));
    const title = `BUG: mmu_notifier subscription ${sub} (${ops.name}) outlives its mm_struct ${mm.name}`;
    const text = [
      title,
      `Subscription ${sub} of ${ops.name} (data ${n.mn.data.READ_ONCE(a)}, users ${n.mn.users.READ_ONCE(a)}) was never put, yet ${mm.name}`,
      'has been freed (__mmdrop): the subscription held mm_count, so something dropped a count it did not own, and',
      'the eventual mmu_notifier_put / free_notifier would touch a freed mm_struct.',
    ].join('\n');
    k.report({ kind: 'mm', title, text, step: -1, where: mm.name });
  }
}
