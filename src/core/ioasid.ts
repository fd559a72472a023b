// The IOASID allocator of seed 003 (drivers/iommu/ioasid.c, include/linux/ioasid.h, with the "IOASID extensions
// for guest SVA" series under review in that thread): a system-wide space of PASIDs/SSIDs with an installed
// capacity (20 bits by default), ioasid_sets with a token and a quota (one per VM, plus the system set used by
// bare-metal SVA), per-set guest↔host PASID mapping (the set-private ID, "spid"), the RCU fast path
// ioasid_find, and a notifier chain (ALLOC, FREE, BIND, UNBIND, SET_ALLOC, SET_FREE) that keeps VFIO, KVM and
// the IOMMU driver in step (ioasid-subscribers.ts).
//
// The thread's argument is a policy here: the allocator lock is a spinlock (what ioasid.c had, so SVA may call
// ioasid_free() from an RCU callback of its MMU notifier) or a mutex (patch 7 of the series, needed once the
// chain is blocking); the chain is atomic or blocking. As in the series, every notification is sent with the
// allocator lock held, which is what forces the lock and the chain to agree — and what makes "no lock holder"
// the moment at which every subscriber's view must equal the allocator's.
//
// Memory is sized for a full 20-bit space: IDs are found through a bitmap with summary levels (the bit of a word
// at level n+1 says "word full at level n"), so the lowest free ID is found in a few word reads even with a
// million IDs taken; each ID has its struct ioasid_data (set, bound flag, private data, guest PASID). All of it is in
// the kernel's static shared memory (ioasidWords() says how much, to size KernelOptions.layout.staticWords).
//
// The quota oracle (DESIGN.md, "Checkers") runs in the allocating step itself: an allocation that leaves a set
// above its quota, or the space above its capacity, is reported there, whatever let it through.
import type { KTask } from '../kernel/context.js';
import { EACCES, EBUSY, EEXIST, EINVAL, ENOENT, ENOSPC } from '../kernel/errno.js';
import { callTrace, heldLocksLines, taskFinding } from '../kernel/findings.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { owner, staticLocksNamed } from '../kernel/lock.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import {
  atomic_notifier_chain_register,
  atomic_notifier_chain_unregister,
  blocking_notifier_chain_register,
  blocking_notifier_chain_unregister,
  defineNotifierChain,
  type NotifierBlock,
  type NotifierChain,
  notifier_call_chain,
} from '../kernel/notifier.js';
import { rcu_init, rcu_read_lock, rcu_read_unlock, suspiciousRcuUsage } from '../kernel/rcu.js';
import { array, element, struct, type ViewOf, word } from '../kernel/struct.js';
import { defineSpinlock, type Spinlock, spin_lock_bh, spin_unlock_bh } from '../kernel/spinlock.js';


/** enum ioasid_notify_val of the series. */
export const IOASID_NOTIFY_ALLOC = 1;
export const IOASID_NOTIFY_FREE = 2;
export const IOASID_NOTIFY_BIND = 3;
export const IOASID_NOTIFY_UNBIND = 4;
export const IOASID_NOTIFY_SET_ALLOC = 5;
export const IOASID_NOTIFY_SET_FREE = 6;

const EVENT_NAMES: Readonly<Record<number, string>> = {
  [IOASID_NOTIFY_ALLOC]: 'IOASID_NOTIFY_ALLOC',
  [IOASID_NOTIFY_FREE]: 'IOASID_NOTIFY_FREE',
  [IOASID_NOTIFY_BIND]: 'IOASID_NOTIFY_BIND',
  [IOASID_NOTIFY_UNBIND]: 'IOASID_NOTIFY_UNBIND',
  [IOASID_NOTIFY_SET_ALLOC]: 'IOASID_NOTIFY_SET_ALLOC',
  [IOASID_NOTIFY_SET_FREE]: 'IOASID_NOTIFY_SET_FREE',
};

export function ioasidEventName(ev: number): string {
  return EVENT_NAMES[ev] ?? `ioasid event ${ev}`;
}

/** PCI_PASID_MAX's width: the default (and largest) capacity. */
export const IOASID_BITS_DEFAULT = 20;
export const IOASID_BITS_MAX = 20;

export type IoasidLock = 'spinlock' | 'mutex';
export type IoasidChain = 'atomic' | 'blocking';
/** A planted allocator bug, the quota oracle's negative control. */
export type IoasidBug = 'none' | 'unlocked-quota';
export const IOASID_LOCKS: readonly IoasidLock[] = ['spinlock', 'mutex'];
export const IOASID_CHAINS: readonly IoasidChain[] = ['atomic', 'blocking'];
export const IOASID_BUGS: readonly IoasidBug[] = ['none', 'unlocked-quota'];

export interface IoasidOptions {
  /** Storage for IDs 0 .. 2^bits - 1 (the largest capacity that can be installed). */
  readonly bits?: number;
  readonly lock?: IoasidLock;
  readonly chain?: IoasidChain;
  /** ioasid_sets at once (set IDs 1..maxSets). */
  readonly maxSets?: number;
  /** Notifier blocks the chain can hold. */
  readonly subscribers?: number;
  /** Report IDs still allocated at teardown (default true). */
  readonly leakCheck?: boolean;
  readonly bug?: IoasidBug;
}

/** What every notifier_call of ioasid_chain receives (struct ioasid_nb_args). */
export interface IoasidNbArgs {
  /** The IOASID (0 for set events). */
  readonly id: number;
  readonly sid: number;
  readonly token: number;
  /** The set is the system set (bare-metal SVA): not a VM's. */
  readonly system: boolean;
  readonly priv: number;
  /** The guest PASID of the ID in its set (-1: none). */
  readonly spid: number;
  /** IOASID_NOTIFY_SET_FREE: the set itself goes too. */
  readonly destroy: boolean;
}

export interface Ioasid {
  readonly bits: number;
  /** 2^bits: IDs the storage holds. */
  readonly storage: number;
  readonly maxSets: number;
  readonly lockPolicy: IoasidLock;
  readonly lock: Spinlock | Mutex;
  readonly chain: NotifierChain<IoasidNbArgs>;
  readonly bug: IoasidBug;
  /** Static offset of the allocator's words. */
  readonly off: number;
  /** Bitmap levels: static offsets (relative to off) and word counts, level 0 (one bit an ID) first. */
  readonly levels: readonly { readonly at: number; readonly words: number }[];
  /** Accessors of the allocator's structs. */
  readonly view: { readonly allocator: ViewOf<typeof IOASID_ALLOCATOR>; readonly set: ViewOf<typeof IOASID_SET>; readonly data: ViewOf<typeof IOASID_DATA> };
}

/** The allocator's state (drivers/iommu/ioasid.c keeps it in file statics: ioasid_capacity, …): model only. */
export const IOASID_ALLOCATOR = struct('ioasid_allocator', {
  capacity: word, // ioasid_capacity once installed, 0: none installed (the storage is the capacity)
  installed: word,
  allocated: word, // IDs allocated now
  started: word, // a set or an ID was ever allocated: too late to install a capacity
  quotas: word, // sum of the live sets' quotas (ioasid_capacity_avail is capacity - 1 - this)
  system_sid: word, // the system set's sid (ioasid_set_system), 0: none
  reserved: array(2),
});

/** struct ioasid_set (the ioasid_set series: token, quota, nr_ioasids, id), at sid 1..maxSets. */
export const IOASID_SET = struct('ioasid_set', {
  state: word, // model: 1 while the set is live (its refcount is held)
  token: word,
  quota: word,
  nr_ioasids: word, // IDs allocated in it
  system: word, // model: 1 for the system set (type IOASID_SET_TYPE_NULL)
});

/** struct ioasid_data (set, private, spid; its id is its index), one per ID. */
export const IOASID_DATA = struct('ioasid_data', {
  set: word, // the ioasid_set's sid, 0: free
  bound: word, // model: 1 from IOASID_NOTIFY_BIND to IOASID_NOTIFY_UNBIND (what ioasid_notify tells the subscribers)
  private: word,
  spid: word, // guest PASID + 1, 0: none
});


// Nominal lines of drivers/iommu/ioasid.c for the WARNs below.
const INSTALL_WARN_LINE = 'drivers/iommu/ioasid.c:64';
const FIND_RCU_SITE = 'drivers/iommu/ioasid.c:456';

function levelsFor(storage: number): { at: number; words: number }[] {
  const levels: { at: number; words: number }[] = [];
  let at = 0;
  let words = Math.ceil(storage / 32);
  for (;;) {
    levels.push({ at, words });
    at += words;
    if (words === 1) return levels;
    words = Math.ceil(words / 32);
  }
}

function layout(bits: number, maxSets: number) {
  const storage = 2 ** bits;
  const levels = levelsFor(storage);
  const bitmapWords = levels.reduce((a, l) => a + l.words, 0);
  const sets = IOASID_ALLOCATOR.words;
  const bitmap = sets + (maxSets + 1) * IOASID_SET.words;
  const ids = bitmap + bitmapWords;
  return { storage, levels: levels.map((l) => ({ at: bitmap + l.at, words: l.words })), sets, ids, words: ids + storage * IOASID_DATA.words };
}

/** Static words defineIoasid takes for 2^bits IDs (to size a kernel layout; the locks and the chain are extra). */
export function ioasidWords(bits: number, maxSets = 64): number {
  return layout(bits, maxSets).words;
}

/**
 * The allocator, declared with the workload (identically in every thread). Its state starts zeroed: no capacity
 * installed (2^bits), no set.
 */
export function defineIoasid(k: Kernel, opts: IoasidOptions = {}): Ioasid {
  const bits = opts.bits ?? IOASID_BITS_DEFAULT;
  if (!Number.isInteger(bits) || bits < 2 || bits > IOASID_BITS_MAX) throw new RangeError(`ioasid: bits must be 2..${IOASID_BITS_MAX}, got ${bits}`);
  const maxSets = opts.maxSets ?? 64;
  if (!Number.isInteger(maxSets) || maxSets < 1 || maxSets > 65535) throw new RangeError(`ioasid: maxSets must be 1..65535, got ${maxSets}`);
  const lockPolicy = opts.lock ?? 'spinlock';
  const l = layout(bits, maxSets);
  const off = k.statics.alloc(l.words, `ioasid (${bits} bits)`);
  rcu_init(k);
  const lock = lockPolicy === 'mutex' ? defineMutex(k, 'ioasid_allocator_lock') : defineSpinlock(k, 'ioasid_allocator_lock');
  const chain = defineNotifierChain<IoasidNbArgs>(k, 'ioasid_chain', opts.chain ?? 'atomic', { capacity: opts.subscribers ?? 8 });
  const a: Ioasid = {
    bits,
    storage: l.storage,
    maxSets,
    lockPolicy,
    lock,
    chain,
    bug: opts.bug ?? 'none',
    off,
    levels: l.levels,
    view: { allocator: k.struct(IOASID_ALLOCATOR), set: k.struct(IOASID_SET), data: k.struct(IOASID_DATA) },
  };
  layouts.set(a, { sets: l.sets, ids: l.ids });
  if (kernelIoasid.has(k)) throw new Error('ioasid: a kernel has one IOASID allocator (ioasid.c keeps it in file statics): defined twice');
  kernelIoasid.set(k, a);
  defineFunctions(k, a, opts.chain ?? 'atomic');
  if (opts.leakCheck ?? true) k.onEnd(() => leakCheck(k, a));
  return a;
}

/** Each kernel's one allocator (what ioasid.c's file statics are): where a replacement of its functions finds it. */
const kernelIoasid = new WeakMap<Kernel, Ioasid>();

/** The kernel's IOASID allocator, once defineIoasid has declared it. */
export function ioasidOf(k: Kernel): Ioasid | undefined {
  return kernelIoasid.get(k);
}

const layouts = new WeakMap<Ioasid, { sets: number; ids: number }>();

function lay(a: Ioasid): { sets: number; ids: number } {
  const l = layouts.get(a);
  if (!l) throw new Error('ioasid: not declared with defineIoasid');
  return l;
}

// ---- words (reads are legal anywhere; writes only inside a point's perform) ----

/** The allocator's state (its word offset). */
function hdr(k: Kernel, a: Ioasid): number {
  return k.mem.statics + a.off;
}

/** Set sid's struct ioasid_set. */
function setAddr(k: Kernel, a: Ioasid, sid: number): number {
  return element(IOASID_SET, k.mem.statics + a.off + lay(a).sets, sid);
}

/** ID id's struct ioasid_data. */
function idAddr(k: Kernel, a: Ioasid, id: number): number {
  return element(IOASID_DATA, k.mem.statics + a.off + lay(a).ids, id);
}

/** The installed capacity (IDs 1..capacity-1 are usable). */
export function ioasidCapacity(k: Kernel, a: Ioasid): number {
  return a.view.allocator.capacity.get(hdr(k, a)) || a.storage;
}

/** IDs allocated now. */
export function ioasidAllocatedCount(k: Kernel, a: Ioasid): number {
  return a.view.allocator.allocated.get(hdr(k, a));
}

/** ioasid_capacity_avail: what new quotas may still take. */
export function ioasidCapacityAvail(k: Kernel, a: Ioasid): number {
  return ioasidCapacity(k, a) - 1 - a.view.allocator.quotas.get(hdr(k, a));
}

/** The system set's sid (0: none yet). */
export function ioasidSystemSid(k: Kernel, a: Ioasid): number {
  return a.view.allocator.system_sid.get(hdr(k, a));
}

function validSid(a: Ioasid, sid: number): boolean {
  return Number.isInteger(sid) && sid >= 1 && sid <= a.maxSets;
}

function setLive(k: Kernel, a: Ioasid, sid: number): boolean {
  return validSid(a, sid) && a.view.set.state.get(setAddr(k, a, sid)) === 1;
}

export interface IoasidSetInfo {
  readonly sid: number;
  readonly token: number;
  readonly quota: number;
  /** IDs allocated in it. */
  readonly nr: number;
  readonly system: boolean;
}

/** A live set, or undefined. */
export function ioasidSetInfo(k: Kernel, a: Ioasid, sid: number): IoasidSetInfo | undefined {
  if (!setLive(k, a, sid)) return undefined;
  return {
    sid,
    token: a.view.set.token.get(setAddr(k, a, sid)),
    quota: a.view.set.quota.get(setAddr(k, a, sid)),
    nr: a.view.set.nr_ioasids.get(setAddr(k, a, sid)),
    system: a.view.set.system.get(setAddr(k, a, sid)) === 1,
  };
}

export interface IoasidInfo {
  readonly id: number;
  readonly sid: number;
  readonly priv: number;
  /** Guest PASID (-1: none). */
  readonly spid: number;
  readonly bound: boolean;
}

function validId(a: Ioasid, id: number): boolean {
  return Number.isInteger(id) && id >= 1 && id < a.storage;
}

/** An allocated ID, or undefined. */
export function ioasidInfo(k: Kernel, a: Ioasid, id: number): IoasidInfo | undefined {
  if (!validId(a, id)) return undefined;
  const w = a.view.data.set.get(idAddr(k, a, id));
  if (w === 0) return undefined;
  const data = idAddr(k, a, id);
  return { id, sid: w, priv: a.view.data.private.get(data), spid: a.view.data.spid.get(data) - 1, bound: a.view.data.bound.get(data) === 1 };
}

/** Every allocated ID, ascending (walks the bitmap: cheap when few are taken). */
export function forEachIoasid(k: Kernel, a: Ioasid, fn: (id: number) => void): void {
  const l0 = a.levels[0];
  if (!l0) return;
  const base = k.mem.statics + a.off + l0.at;
  for (let w = 0; w < l0.words; w++) {
    let v = k.i32[base + w] as number;
    while (v !== 0) {
      const b = ctz(v);
      fn(w * 32 + b);
      v &= v - 1;
    }
  }
}

/** The IDs of set sid, ascending. */
export function ioasidSetIds(k: Kernel, a: Ioasid, sid: number): number[] {
  const out: number[] = [];
  forEachIoasid(k, a, (id) => {
    if (a.view.data.set.get(idAddr(k, a, id)) === sid) out.push(id);
  });
  return out;
}

// ---- the bitmap ----

function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** The lowest index ≥ from whose bit at `level` is clear, or -1. */
function firstZero(k: Kernel, a: Ioasid, level: number, from: number): number {
  const lv = a.levels[level];
  if (!lv) return -1;
  const i32 = k.i32;
  const base = k.mem.statics + a.off + lv.at;
  const w = from >>> 5;
  if (w >= lv.words) return -1;
  // Bits below `from` count as taken.
  const v = (i32[base + w] as number) | ((1 << (from & 31)) - 1);
  if (v !== -1) return w * 32 + ctz(~v);
  let next = -1;
  if (level + 1 < a.levels.length) {
    next = firstZero(k, a, level + 1, w + 1);
    if (next >= lv.words) next = -1;
  } else {
    for (let x = w + 1; x < lv.words; x++) {
      if ((i32[base + x] as number) !== -1) {
        next = x;
        break;
      }
    }
  }
  return next < 0 ? -1 : next * 32 + ctz(~(i32[base + next] as number));
}

function setBit(k: Kernel, a: Ioasid, level: number, idx: number): void {
  const lv = a.levels[level];
  if (!lv) return;
  const at = k.mem.statics + a.off + lv.at + (idx >>> 5);
  const old = k.i32[at] as number;
  const v = old | (1 << (idx & 31));
  k.i32[at] = v;
  if (v === -1 && old !== -1) setBit(k, a, level + 1, idx >>> 5);
}

function clearBit(k: Kernel, a: Ioasid, level: number, idx: number): void {
  const lv = a.levels[level];
  if (!lv) return;
  const at = k.mem.statics + a.off + lv.at + (idx >>> 5);
  const old = k.i32[at] as number;
  k.i32[at] = old & ~(1 << (idx & 31));
  if (old === -1) clearBit(k, a, level + 1, idx >>> 5);
}

// ---- the lock and the chain ----

/**
 * ioasid_allocator_lock taken and released: what the lock policy changes in every function that takes it (patch
 * 7 of the series turned each spin_lock into a mutex_lock), so each such function is defined by that policy.
 */
interface AllocatorLock {
  lock(t: KTask): KGen;
  unlock(t: KTask): KGen;
}

/**
 * The spinlock is taken with softirqs off: SVA frees PASIDs from an RCU callback (softirq), so a plain
 * spin_lock in process context would be the {SOFTIRQ-ON-W} → {IN-SOFTIRQ-W} inconsistency lockdep reports.
 */
function spinlockOps(k: Kernel, a: Ioasid): AllocatorLock {
  const l = a.lock as Spinlock;
  return { lock: (t) => spin_lock_bh(k, t, l), unlock: (t) => spin_unlock_bh(k, t, l) };
}

function mutexOps(k: Kernel, a: Ioasid): AllocatorLock {
  const l = a.lock as Mutex;
  return { lock: (t) => mutex_lock(k, t, l), unlock: (t) => mutex_unlock(k, t, l) };
}

/** The lock ops of the allocator's policy (for the model's own helpers that are no kernel function). */
function lockOps(k: Kernel, a: Ioasid): AllocatorLock {
  return a.lockPolicy === 'mutex' ? mutexOps(k, a) : spinlockOps(k, a);
}

/**
 * Is the allocator lock free (no update, hence no notification, in flight)? A read: legal anywhere. By lock
 * class: a patch that declares its own ioasid_allocator_lock (a mutex in the spinlock's place) is seen too.
 */
export function ioasidLockFree(k: Kernel, a: Ioasid): boolean {
  return ioasidLockOwner(k, a) === undefined;
}

/** The allocator lock's holder (a task id), for waits-for edges. */
export function ioasidLockOwner(k: Kernel, a: Ioasid): number | undefined {
  for (const l of staticLocksNamed(k, a.lock.name)) {
    const o = owner(k, l);
    if (o !== 0) return o;
  }
  return undefined;
}

/** Run body under ioasid_allocator_lock. */
function* locked<T>(L: AllocatorLock, t: KTask, body: KGen<T>): KGen<T> {
  yield* L.lock(t);
  const r = yield* body;
  yield* L.unlock(t);
  return r;
}

function* notify(k: Kernel, t: KTask, a: Ioasid, event: number, args: IoasidNbArgs): KGen {
  yield* notifier_call_chain(k, t, a.chain, event, args);
}

function setArgs(k: Kernel, a: Ioasid, sid: number, destroy: boolean): IoasidNbArgs {
  return {
    id: 0,
    sid,
    token: a.view.set.token.get(setAddr(k, a, sid)),
    system: a.view.set.system.get(setAddr(k, a, sid)) === 1,
    priv: 0,
    spid: -1,
    destroy,
  };
}

function idArgs(k: Kernel, a: Ioasid, id: number): IoasidNbArgs {
  const sid = a.view.data.set.get(idAddr(k, a, id));
  return {
    id,
    sid,
    token: a.view.set.token.get(setAddr(k, a, sid)),
    system: a.view.set.system.get(setAddr(k, a, sid)) === 1,
    priv: a.view.data.private.get(idAddr(k, a, id)),
    spid: a.view.data.spid.get(idAddr(k, a, id)) - 1,
    destroy: false,
  };
}

// ---- reports ----

function warn(k: Kernel, t: KTask, step: number, line: string, fn: string, what: string): void {
  const title = `WARNING: CPU: 0 PID: ${t.pid} at ${line} ${fn}`;
  k.report(
    taskFinding('ida', t, step, title, [
      `Comm: ${t.comm} Not tainted (iommu-sim)`,
      `RIP: 0010:${fn}`,
      `iommu-sim: ${what}`,
      ...heldLocksLines(t),
      ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
    ]),
  );
}

/** The quota oracle: what a step has just let through is over a quota or the capacity. */
function quotaFinding(k: Kernel, t: KTask, step: number, title: string, lines: readonly string[]): void {
  k.report(taskFinding('quota', t, step, `iommu-sim: quota: ${title}`, [...lines, ...heldLocksLines(t), ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq')]));
}

function leakCheck(k: Kernel, a: Ioasid): void {
  if (!k.enabled('leaks')) return;
  const ids: string[] = [];
  let n = 0;
  forEachIoasid(k, a, (id) => {
    n++;
    if (ids.length < 16) ids.push(`${id} (set ${a.view.data.set.get(idAddr(k, a, id))})`);
  });
  if (n === 0) return;
  const title = `leak: ioasid: ${n} IOASID${n > 1 ? 's' : ''} still allocated at teardown: ${ids.join(', ')}${n > ids.length ? ', …' : ''}`;
  k.report({ kind: 'leak', title, text: `${title}\n(no ioasid_free or ioasid_free_set for them by the end of the run)`, step: -1, where: 'ioasid' });
}

// ---- capacity and sets ----

/**
 * ioasid_install_capacity(total): before any allocation (an IOMMU driver does it at init). Too late, or a second
 * time, is refused with the kernel's WARN and -EBUSY; more than the storage holds is -EINVAL.
 */
function installCapacity(k: Kernel, a: Ioasid) {
  return (t: KTask, total: number): KGen<number> =>
    k.step(t, 'ioasid_install_capacity', (env) => {
      if (!Number.isInteger(total) || total < 2 || total > a.storage) return -EINVAL;
      const installed = a.view.allocator.installed.get(hdr(k, a)) === 1;
      const started = a.view.allocator.started.get(hdr(k, a)) === 1;
      if (installed || started) {
        const why = installed
          ? `IOASID capacity is already set (${ioasidCapacity(k, a)})`
          : `IOASID capacity set after allocations began (${ioasidAllocatedCount(k, a)} IOASIDs allocated)`;
        warn(k, t, env.step, INSTALL_WARN_LINE, 'ioasid_install_capacity', `${why}: refused`);
        return -EBUSY;
      }
      a.view.allocator.capacity.set(hdr(k, a), total);
      a.view.allocator.installed.set(hdr(k, a), 1);
      return 0;
    });
}

/** Take a set slot (perform only): its sid, or a negated errno. */
function newSet(k: Kernel, t: KTask, a: Ioasid, token: number, quota: number, system: boolean, step: number): number {
  if (!Number.isInteger(quota) || quota < 1) return -EINVAL;
  if (quota > ioasidCapacityAvail(k, a)) return -ENOSPC;
  let free = 0;
  for (let sid = 1; sid <= a.maxSets; sid++) {
    const set = setAddr(k, a, sid);
    if (a.view.set.state.get(set) !== 1) {
      if (free === 0) free = sid;
      continue;
    }
    // One set per token: the token is what permission checks go by.
    if (!system && a.view.set.system.get(set) === 0 && a.view.set.token.get(set) === token) return -EEXIST;
  }
  if (free === 0) return -ENOSPC;
  const set = setAddr(k, a, free);
  a.view.set.state.set(set, 1);
  a.view.set.token.set(set, token);
  a.view.set.quota.set(set, quota);
  a.view.set.nr_ioasids.set(set, 0);
  a.view.set.system.set(set, system ? 1 : 0);
  a.view.allocator.quotas.set(hdr(k, a), a.view.allocator.quotas.get(hdr(k, a)) + quota);
  a.view.allocator.started.set(hdr(k, a), 1);
  if (system) a.view.allocator.system_sid.set(hdr(k, a), free);
  checkQuotas(k, t, a, step);
  return free;
}

/** The sets' quotas together must fit in the capacity (perform only). */
function checkQuotas(k: Kernel, t: KTask, a: Ioasid, step: number): void {
  const sum = a.view.allocator.quotas.get(hdr(k, a));
  const cap = ioasidCapacity(k, a);
  if (sum > cap - 1) {
    quotaFinding(k, t, step, `the ioasid_sets' quotas add up to ${sum}, above the system capacity of ${cap - 1} IOASIDs`, []);
  }
}

/** ioasid_alloc_set(token, quota) and ioasid_alloc_system_set(quota) (`system`). */
function allocSet(k: Kernel, a: Ioasid, L: AllocatorLock, system: boolean) {
  return function* (t: KTask, token: number, quota: number): KGen<number> {
    yield* L.lock(t);
    const r = yield* k.step(t, system ? 'ioasid_alloc_system_set' : 'ioasid_alloc_set', (env) => {
      const sid = system && ioasidSystemSid(k, a) !== 0 ? -EEXIST : newSet(k, t, a, token, quota, system, env.step);
      return { sid, args: sid > 0 ? setArgs(k, a, sid, false) : undefined };
    });
    if (r.args) yield* notify(k, t, a, IOASID_NOTIFY_SET_ALLOC, r.args);
    yield* L.unlock(t);
    return r.sid;
  };
}

/** ioasid_adjust_set(sid, quota): never below what the set holds (-EINVAL), never beyond the capacity (-ENOSPC). */
function adjustSet(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return (t: KTask, sid: number, quota: number): KGen<number> =>
    locked(
      L,
      t,
      k.step(t, 'ioasid_adjust_set', (env) => {
        if (!setLive(k, a, sid) || !Number.isInteger(quota) || quota < 1) return -EINVAL;
        const set = setAddr(k, a, sid);
        const old = a.view.set.quota.get(set);
        if (quota < a.view.set.nr_ioasids.get(set)) return -EINVAL;
        if (quota - old > ioasidCapacityAvail(k, a)) return -ENOSPC;
        a.view.set.quota.set(set, quota);
        a.view.allocator.quotas.set(hdr(k, a), a.view.allocator.quotas.get(hdr(k, a)) + quota - old);
        checkQuotas(k, t, a, env.step);
        return 0;
      }),
    );
}

/**
 * ioasid_free_set(sid, destroy): free every ID of the set, each with its FREE notification, then SET_FREE; with
 * `destroy` the set goes too (its quota back to the capacity). 0, or -EINVAL for no such set.
 */
function freeSet(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return function* (t: KTask, sid: number, destroy: boolean): KGen<number> {
    yield* L.lock(t);
    const r = yield* k.step(t, 'ioasid_free_set: collect', () => (setLive(k, a, sid) ? { ids: ioasidSetIds(k, a, sid), args: setArgs(k, a, sid, destroy) } : undefined));
    if (r !== undefined) {
      for (const id of r.ids) yield* freeLocked(k, t, a, id);
      yield* notify(k, t, a, IOASID_NOTIFY_SET_FREE, r.args);
      if (destroy) yield* k.step(t, 'ioasid_free_set: destroy', () => destroySet(k, a, sid));
    }
    yield* L.unlock(t);
    return r === undefined ? -EINVAL : 0;
  };
}

/** The set's slot back, its quota back to the capacity (perform only). */
function destroySet(k: Kernel, a: Ioasid, sid: number): void {
  const set = setAddr(k, a, sid);
  a.view.allocator.quotas.set(hdr(k, a), a.view.allocator.quotas.get(hdr(k, a)) - a.view.set.quota.get(set));
  if (a.view.set.system.get(set) === 1) a.view.allocator.system_sid.set(hdr(k, a), 0);
  k.i32.fill(0, set, set + IOASID_SET.words);
}

// ---- IDs ----

/**
 * ioasid_alloc(sid, min, max, private): the lowest free ID in [min, max] ∩ [1, capacity-1] in set sid, with
 * ALLOC notified. -EINVAL for no such set, -ENOSPC over the set's quota or with no free ID in range.
 */
function alloc(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return function* (t: KTask, sid: number, min: number, max: number, priv: number): KGen<number> {
    let quotaChecked = false;
    if (a.bug === 'unlocked-quota') {
      // The planted bug: the quota is checked before the lock is taken, and not again under it.
      const ok = yield* k.step(t, 'ioasid_alloc: quota check', () => !setLive(k, a, sid) || a.view.set.nr_ioasids.get(setAddr(k, a, sid)) < a.view.set.quota.get(setAddr(k, a, sid)));
      if (!ok) return -ENOSPC;
      quotaChecked = true;
    }
    yield* L.lock(t);
    const r = (yield k.point(t, 'ioasid_alloc: xa_alloc', always, (env) => {
      const id = allocLocked(k, t, a, sid, min, max, priv, quotaChecked, env.step);
      return { id, args: id > 0 ? idArgs(k, a, id) : undefined };
    })) as { id: number; args: IoasidNbArgs | undefined };
    if (r.args) yield* notifier_call_chain(k, t, a.chain, IOASID_NOTIFY_ALLOC, r.args);
    yield* L.unlock(t);
    return r.id;
  };
}

const always = (): boolean => true;

/** The allocation itself (perform only), with the quota oracle. */
function allocLocked(k: Kernel, t: KTask, a: Ioasid, sid: number, min: number, max: number, priv: number, quotaChecked: boolean, step: number): number {
  if (!setLive(k, a, sid) || !Number.isInteger(min) || !Number.isInteger(max) || !Number.isInteger(priv)) return -EINVAL;
  const set = setAddr(k, a, sid);
  const nr = a.view.set.nr_ioasids.get(set);
  const quota = a.view.set.quota.get(set);
  if (!quotaChecked && nr >= quota) return -ENOSPC;
  const cap = ioasidCapacity(k, a);
  const lo = Math.max(min, 1);
  const hi = Math.min(max, cap - 1);
  if (lo > hi) return -ENOSPC;
  const id = firstZero(k, a, 0, lo);
  if (id < 0 || id > hi) return -ENOSPC;
  const data = idAddr(k, a, id);
  if (a.view.data.set.get(data) !== 0) throw new Error(`ioasid: bitmap says ${id} is free, its words say set ${a.view.data.set.get(data)}`);
  setBit(k, a, 0, id);
  a.view.data.set.set(data, sid);
  a.view.data.private.set(data, priv);
  a.view.data.spid.set(data, 0);
  a.view.data.bound.set(data, 0);
  a.view.set.nr_ioasids.set(set, nr + 1);
  const total = a.view.allocator.allocated.get(hdr(k, a)) + 1;
  a.view.allocator.allocated.set(hdr(k, a), total);
  a.view.allocator.started.set(hdr(k, a), 1);
  if (nr + 1 > quota) {
    quotaFinding(k, t, step, `ioasid_set ${sid} (token ${a.view.set.token.get(set)}) holds ${nr + 1} IOASIDs, above its quota of ${quota}`, [
      `ioasid_alloc handed out IOASID ${id} with the set already at its quota`,
    ]);
  }
  if (total > cap - 1 || id >= cap) {
    quotaFinding(k, t, step, `${total} IOASIDs allocated, above the system capacity of ${cap - 1}`, [`ioasid_alloc handed out IOASID ${id}`]);
  }
  return id;
}

/** Erase an allocated ID (perform only): its notifier arguments, or undefined when it is not allocated. */
function eraseLocked(k: Kernel, a: Ioasid, id: number): IoasidNbArgs | undefined {
  if (!validId(a, id) || a.view.data.set.get(idAddr(k, a, id)) === 0) return undefined;
  const args = idArgs(k, a, id);
  clearBit(k, a, 0, id);
  k.i32.fill(0, idAddr(k, a, id), idAddr(k, a, id) + IOASID_DATA.words);
  const set = setAddr(k, a, args.sid);
  a.view.set.nr_ioasids.set(set, a.view.set.nr_ioasids.get(set) - 1);
  a.view.allocator.allocated.set(hdr(k, a), a.view.allocator.allocated.get(hdr(k, a)) - 1);
  return args;
}

/**
 * ioasid_free with the lock held: erased first, then FREE notified with what it was (the arguments are a copy,
 * as the kernel's ioasid_nb_args is filled before the data goes).
 */
function* freeLocked(k: Kernel, t: KTask, a: Ioasid, id: number): KGen<number> {
  const args = (yield k.point(t, 'ioasid_free: xa_erase', always, (env) => {
    const r = eraseLocked(k, a, id);
    if (!r) {
      // pr_err("Trying to free unknown IOASID %u\n"): a double free, or a free of an ID never handed out.
      const title = `ioasid: Trying to free unknown IOASID ${id}`;
      k.report(taskFinding('ida', t, env.step, title, [...heldLocksLines(t), ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq')]));
    }
    return r;
  })) as IoasidNbArgs | undefined;
  if (!args) return -ENOENT;
  yield* notifier_call_chain(k, t, a.chain, IOASID_NOTIFY_FREE, args);
  return 0;
}

/** ioasid_free(id): 0, or -ENOENT (reported) for an ID that is not allocated. */
function free(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return (t: KTask, id: number): KGen<number> => locked(L, t, freeLocked(k, t, a, id));
}

/** ioasid_find_sid(id): the set of an ID, or -ENOENT. No reference is held: the set has a single owner. */
function findSid(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return (t: KTask, id: number): KGen<number> => locked(L, t, k.step(t, 'ioasid_find_sid', () => ioasidInfo(k, a, id)?.sid ?? -ENOENT));
}

/**
 * The lookup of ioasid_find (one point: the entry and its private pointer read together). The caller is inside
 * rcu_read_lock() or holds the allocator lock; otherwise it is `suspicious RCU usage`, as the kernel's
 * rcu_dereference of ioasid_data->private would report. `sid` 0 matches any set.
 */
export function* __ioasid_find(k: Kernel, t: KTask, a: Ioasid, sid: number, id: number): KGen<number> {
  return (yield findPoint(k, t, a, sid, id)) as number;
}

function findPoint(k: Kernel, t: KTask, a: Ioasid, sid: number, id: number) {
  return k.point(t, 'ioasid_find: xa_load', always, (env) => {
    if (k.enabled('rcu') && t.rcuDepth === 0 && t.holds(a.lock.addr()) === undefined) {
      suspiciousRcuUsage(k, t, env.step, FIND_RCU_SITE, 'suspicious rcu_dereference_check() usage');
    }
    if (!validId(a, id)) return -ENOENT;
    const w = a.view.data.set.get(idAddr(k, a, id));
    if (w === 0) return -ENOENT;
    if (sid !== 0 && w !== sid) return -EACCES;
    return a.view.data.private.get(idAddr(k, a, id));
  });
}

/**
 * ioasid_find(sid, id): the fast path, under RCU as in ioasid.c — the private data (≥ 0), -ENOENT for an ID not
 * allocated, -EACCES for an ID of another set.
 */
function find(k: Kernel, a: Ioasid) {
  return function* (t: KTask, sid: number, id: number): KGen<number> {
    yield* rcu_read_lock(k, t);
    const r = (yield findPoint(k, t, a, sid, id)) as number;
    yield* rcu_read_unlock(k, t);
    return r;
  };
}

/** ioasid_find under the allocator lock instead of RCU: the indirection the thread would rather keep off the fast path. */
export function* ioasid_find_locked(k: Kernel, t: KTask, a: Ioasid, sid: number, id: number): KGen<number> {
  t.frames.push('ioasid_find');
  try {
    const L = lockOps(k, a);
    yield* L.lock(t);
    const r = (yield findPoint(k, t, a, sid, id)) as number;
    yield* L.unlock(t);
    return r;
  } finally {
    t.frames.pop();
  }
}

/** ioasid_set_data(id, data): publish new private data (rcu_assign_pointer under the lock); 0 or -ENOENT. */
function setData(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return function* (t: KTask, id: number, data: number): KGen<number> {
    yield* L.lock(t);
    const r = (yield k.point(t, 'ioasid_set_data: rcu_assign_pointer', always, () => {
      if (!validId(a, id) || a.view.data.set.get(idAddr(k, a, id)) === 0 || !Number.isInteger(data)) return -ENOENT;
      a.view.data.private.WRITE_ONCE(idAddr(k, a, id), data);
      return 0;
    })) as number;
    yield* L.unlock(t);
    return r;
  };
}

// ---- guest ↔ host PASIDs within a set ----

/** The ID of set sid whose guest PASID is spid, or 0 (perform or read). */
function bySpid(k: Kernel, a: Ioasid, sid: number, spid: number): number {
  let found = 0;
  forEachIoasid(k, a, (id) => {
    if (found === 0 && a.view.data.set.get(idAddr(k, a, id)) === sid && a.view.data.spid.get(idAddr(k, a, id)) === spid + 1) found = id;
  });
  return found;
}

/**
 * ioasid_attach_spid(sid, id, spid): record guest PASID spid for host ID id of set sid. -EINVAL when id is not
 * in that set, -EEXIST when spid already names another ID of the set.
 */
function attachSpid(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return (t: KTask, sid: number, id: number, spid: number): KGen<number> =>
    locked(
      L,
      t,
      k.step(t, 'ioasid_attach_spid', () => {
        const info = ioasidInfo(k, a, id);
        if (!info || info.sid !== sid || !Number.isInteger(spid) || spid < 0 || spid >= a.storage) return -EINVAL;
        const other = bySpid(k, a, sid, spid);
        if (other !== 0 && other !== id) return -EEXIST;
        a.view.data.spid.set(idAddr(k, a, id), spid + 1);
        return 0;
      }),
    );
}

/** ioasid_find_by_spid(sid, spid): the host ID of guest PASID spid in set sid, or -ENOENT. */
function findBySpid(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return (t: KTask, sid: number, spid: number): KGen<number> =>
    locked(
      L,
      t,
      k.step(t, 'ioasid_find_by_spid', () => (setLive(k, a, sid) && Number.isInteger(spid) && spid >= 0 ? bySpid(k, a, sid, spid) || -ENOENT : -ENOENT)),
    );
}

/** ioasid_get_spid(sid, id): the guest PASID of host ID id in set sid (under RCU), -ENOENT without one, -EACCES for another set. */
function getSpid(k: Kernel, a: Ioasid) {
  return function* (t: KTask, sid: number, id: number): KGen<number> {
    yield* rcu_read_lock(k, t);
    const r = yield* k.step(t, 'ioasid_get_spid: xa_load', () => {
      const info = ioasidInfo(k, a, id);
      if (!info) return -ENOENT;
      if (info.sid !== sid) return -EACCES;
      return info.spid < 0 ? -ENOENT : info.spid;
    });
    yield* rcu_read_unlock(k, t);
    return r;
  };
}

// ---- BIND / UNBIND ----

/**
 * ioasid_notify(id, BIND | UNBIND): the PASID was bound to (or unbound from) an address space — a guest's
 * through VFIO, or a process's by SVA — and every subscriber hears it with the allocator lock held. 0, -ENOENT
 * for an ID not allocated, -EINVAL for another event.
 */
function notifyId(k: Kernel, a: Ioasid, L: AllocatorLock) {
  return function* (t: KTask, id: number, event: number): KGen<number> {
    if (event !== IOASID_NOTIFY_BIND && event !== IOASID_NOTIFY_UNBIND) return -EINVAL;
    yield* L.lock(t);
    const args = yield* k.step(t, event === IOASID_NOTIFY_BIND ? 'ioasid_notify: bind' : 'ioasid_notify: unbind', () => {
      if (!validId(a, id)) return undefined;
      const data = idAddr(k, a, id);
      if (a.view.data.set.get(data) === 0) return undefined;
      a.view.data.bound.set(data, event === IOASID_NOTIFY_BIND ? 1 : 0);
      return idArgs(k, a, id);
    });
    if (args) yield* notify(k, t, a, event, args);
    yield* L.unlock(t);
    return args ? 0 : -ENOENT;
  };
}

// ---- the kernel functions, by name ----

const FILE = 'drivers/iommu/ioasid.c';

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    ioasid_install_capacity(t: KTask, total: number): KGen<number>;
    ioasid_alloc_set(t: KTask, token: number, quota: number): KGen<number>;
    ioasid_alloc_system_set(t: KTask, quota: number): KGen<number>;
    ioasid_adjust_set(t: KTask, sid: number, quota: number): KGen<number>;
    ioasid_free_set(t: KTask, sid: number, destroy: boolean): KGen<number>;
    ioasid_alloc(t: KTask, sid: number, min: number, max: number, priv: number): KGen<number>;
    ioasid_free(t: KTask, id: number): KGen<number>;
    ioasid_find_sid(t: KTask, id: number): KGen<number>;
    ioasid_find(t: KTask, sid: number, id: number): KGen<number>;
    ioasid_set_data(t: KTask, id: number, data: number): KGen<number>;
    ioasid_attach_spid(t: KTask, sid: number, id: number, spid: number): KGen<number>;
    ioasid_find_by_spid(t: KTask, sid: number, spid: number): KGen<number>;
    ioasid_get_spid(t: KTask, sid: number, id: number): KGen<number>;
    ioasid_notify(t: KTask, id: number, event: number): KGen<number>;
    ioasid_register_notifier(t: KTask, nb: NotifierBlock<IoasidNbArgs>): KGen<number>;
    ioasid_unregister_notifier(t: KTask, nb: NotifierBlock<IoasidNbArgs>): KGen<number>;
    ioasid_alloc_set_locked(t: KTask, token: number, quota: number): KGen<number>;
    ioasid_alloc_system_set_locked(t: KTask, quota: number): KGen<number>;
    ioasid_adjust_set_locked(t: KTask, sid: number, quota: number): KGen<number>;
    ioasid_free_set_locked(t: KTask, sid: number, destroy: boolean): KGen<number>;
    ioasid_alloc_locked(t: KTask, sid: number, min: number, max: number, priv: number): KGen<number>;
    ioasid_free_locked(t: KTask, id: number): KGen<number>;
    ioasid_find_sid_locked(t: KTask, id: number): KGen<number>;
    ioasid_set_data_locked(t: KTask, id: number, data: number): KGen<number>;
    ioasid_attach_spid_locked(t: KTask, sid: number, id: number, spid: number): KGen<number>;
    ioasid_find_by_spid_locked(t: KTask, sid: number, spid: number): KGen<number>;
    ioasid_notify_locked(t: KTask, id: number, event: number): KGen<number>;
  }
}

/**
 * The caller holds ioasid_allocator_lock: each `<fn>_locked` is the body of `<fn>` between its lock and unlock
 * (the series' own ioasid_free_locked, generalised), the same code run with no lock ops. What a patch that
 * changes the allocator lock (patch 7, spinlock → mutex) wraps in its own lock and unlock.
 */
const HELD: AllocatorLock = {
  *lock() {}, // the caller holds it: nothing to take
  *unlock() {}, // the caller releases it
};

/**
 * Register ioasid.c's functions for the kernel's allocator `a`: those that take ioasid_allocator_lock by the lock
 * policy (`ioasidLock`: an implementation with spin_lock_bh, one with mutex_lock), the notifier registration by
 * the chain policy (`ioasidChain`: atomic_ or blocking_notifier_chain_register), the RCU lookups as they are.
 */
function defineFunctions(k: Kernel, a: Ioasid, chain: IoasidChain): void {
  const by = <F>(make: (L: AllocatorLock) => F): Record<IoasidLock, F> => ({ spinlock: make(spinlockOps(k, a)), mutex: make(mutexOps(k, a)) });
  const fns = k.fns;
  const lock = a.lockPolicy;
  fns.define('ioasid_install_capacity', FILE, installCapacity(k, a));
  fns.definePolicy('ioasid_alloc_set', FILE, 'ioasidLock', lock, by((L) => allocSet(k, a, L, false)));
  fns.definePolicy(
    'ioasid_alloc_system_set',
    FILE,
    'ioasidLock',
    lock,
    by((L) => {
      const f = allocSet(k, a, L, true);
      return (t: KTask, quota: number) => f(t, 0, quota);
    }),
  );
  fns.definePolicy('ioasid_adjust_set', FILE, 'ioasidLock', lock, by((L) => adjustSet(k, a, L)));
  fns.definePolicy('ioasid_free_set', FILE, 'ioasidLock', lock, by((L) => freeSet(k, a, L)));
  fns.definePolicy('ioasid_alloc', FILE, 'ioasidLock', lock, by((L) => alloc(k, a, L)));
  fns.definePolicy('ioasid_free', FILE, 'ioasidLock', lock, by((L) => free(k, a, L)));
  fns.definePolicy('ioasid_find_sid', FILE, 'ioasidLock', lock, by((L) => findSid(k, a, L)));
  fns.define('ioasid_find', FILE, find(k, a));
  fns.definePolicy('ioasid_set_data', FILE, 'ioasidLock', lock, by((L) => setData(k, a, L)));
  fns.definePolicy('ioasid_attach_spid', FILE, 'ioasidLock', lock, by((L) => attachSpid(k, a, L)));
  fns.definePolicy('ioasid_find_by_spid', FILE, 'ioasidLock', lock, by((L) => findBySpid(k, a, L)));
  fns.define('ioasid_get_spid', FILE, getSpid(k, a));
  fns.definePolicy('ioasid_notify', FILE, 'ioasidLock', lock, by((L) => notifyId(k, a, L)));
  defineLocked(k, a);
  fns.definePolicy('ioasid_register_notifier', FILE, 'ioasidChain', chain, {
    atomic: (t: KTask, nb: NotifierBlock<IoasidNbArgs>) => atomic_notifier_chain_register(k, t, a.chain, nb),
    blocking: (t: KTask, nb: NotifierBlock<IoasidNbArgs>) => blocking_notifier_chain_register(k, t, a.chain, nb),
  });
  fns.definePolicy('ioasid_unregister_notifier', FILE, 'ioasidChain', chain, {
    atomic: (t: KTask, nb: NotifierBlock<IoasidNbArgs>) => atomic_notifier_chain_unregister(k, t, a.chain, nb),
    blocking: (t: KTask, nb: NotifierBlock<IoasidNbArgs>) => blocking_notifier_chain_unregister(k, t, a.chain, nb),
  });
}

/** The `_locked` bodies (HELD): registered for patches, called by no function of the model. */
function defineLocked(k: Kernel, a: Ioasid): void {
  const fns = k.fns;
  const sysSet = allocSet(k, a, HELD, true);
  fns.define('ioasid_alloc_set_locked', FILE, allocSet(k, a, HELD, false));
  fns.define('ioasid_alloc_system_set_locked', FILE, (t: KTask, quota: number) => sysSet(t, 0, quota));
  fns.define('ioasid_adjust_set_locked', FILE, adjustSet(k, a, HELD));
  fns.define('ioasid_free_set_locked', FILE, freeSet(k, a, HELD));
  fns.define('ioasid_alloc_locked', FILE, alloc(k, a, HELD));
  fns.define('ioasid_free_locked', FILE, free(k, a, HELD));
  fns.define('ioasid_find_sid_locked', FILE, findSid(k, a, HELD));
  fns.define('ioasid_set_data_locked', FILE, setData(k, a, HELD));
  fns.define('ioasid_attach_spid_locked', FILE, attachSpid(k, a, HELD));
  fns.define('ioasid_find_by_spid_locked', FILE, findBySpid(k, a, HELD));
  fns.define('ioasid_notify_locked', FILE, notifyId(k, a, HELD));
}
