// The subscribers of the IOASID notifier chain in seed 003 (the "Notification service" part of the IOASID
// extensions series; drivers/iommu/ioasid.c's ioasid_chain): each keeps its own view of PASID state, as the
// thread describes — VFIO per set (the IDs of each VM's set, and which sets exist), KVM only the IDs of its own
// VM's set (with the guest PASID each is bound to, for the PASID translation of ENQCMD), and the IOMMU driver
// every ID (allocated or bound: its PASID-table entries). The IOMMU driver's subscriber is the vendor's (its
// notifier block, lock and per-ID record: IoasidDriverSubscriber, given by whoever builds the chain). Views live
// in shared memory, one word an ID, so a notification performed on any thread updates the same view.
//
// The notifier divergence oracle (DESIGN.md, "Checkers") compares each view with the allocator's once
// notifications have settled: every notification is sent with the allocator lock held, so whenever nobody
// holds it no notification is in flight, and every view must equal what the allocator says. It runs where the
// workload knows that (ioasid_check_subscribers) and at the end of the run.
//
// Two parameters make the subscribers misbehave on purpose: `sleeper` makes one of them take a mutex in its
// callback (the IOMMU driver's lock, VFIO's or KVM's) — fine on a blocking chain, a might_sleep bug on an
// atomic one; `bug: notify-stop` makes VFIO answer NOTIFY_STOP to events of sets it does not own, so that the
// subscribers after it in the chain never hear them (the divergence oracle's negative control).
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import { defineNotifierBlock, type NotifierBlock, NOTIFY_DONE, NOTIFY_OK, NOTIFY_STOP } from '../kernel/notifier.js';
import { element, type Fields, type StructType, struct, type ViewOf, type WordSpec, word } from '../kernel/struct.js';
import {
  IOASID_NOTIFY_ALLOC,
  IOASID_NOTIFY_BIND,
  IOASID_NOTIFY_FREE,
  IOASID_NOTIFY_SET_ALLOC,
  IOASID_NOTIFY_SET_FREE,
  IOASID_NOTIFY_UNBIND,
  type Ioasid,
  type IoasidNbArgs,
  ioasidCapacity,
  ioasidEventName,
  ioasidInfo,
  ioasidLockFree,
  ioasidLockOwner,
  ioasidSetInfo,
} from './ioasid.js';

export type SubscriberName = 'vfio' | 'kvm' | 'iommu';
export const IOASID_SUBSCRIBERS: readonly SubscriberName[] = ['vfio', 'kvm', 'iommu'];
export type Sleeper = SubscriberName | 'none';
export const SLEEPERS: readonly Sleeper[] = ['none', 'vfio', 'kvm', 'iommu'];
export type SubscriberBug = 'none' | 'notify-stop';
export const SUBSCRIBER_BUGS: readonly SubscriberBug[] = ['none', 'notify-stop'];

/**
 * The IOMMU driver's subscriber, registered by its vendor: the name of its notifier block and of the mutex its
 * callback may take, and its per-ID record (one `state` word: PASID_STATE_* as this file defines them).
 */
export interface IoasidDriverSubscriber {
  readonly nb: string;
  readonly lock: string;
  readonly record: StructType<{ readonly state: WordSpec }>;
}

export interface SubscriberOptions {
  /** The IOMMU driver's subscriber (the last on the chain). */
  readonly driver: IoasidDriverSubscriber;
  /** The token of the VM whose set KVM follows. */
  readonly kvmToken: number;
  readonly sleeper?: Sleeper;
  readonly bug?: SubscriberBug;
}

interface Spec {
  readonly name: SubscriberName;
  readonly nb: string;
  /** Chain order: VFIO, then KVM, then the IOMMU driver. */
  readonly priority: number;
  readonly lock: string;
}

function specs(driver: IoasidDriverSubscriber): readonly Spec[] {
  return [
    { name: 'vfio', nb: 'vfio_ioasid_notify', priority: 30, lock: '&vfio_mm->pasid_lock' },
    { name: 'kvm', nb: 'kvm_ioasid_notify', priority: 20, lock: '&kvm->lock' },
    { name: 'iommu', nb: driver.nb, priority: 10, lock: driver.lock },
  ];
}

export interface Subscriber {
  readonly name: SubscriberName;
  readonly nb: NotifierBlock<IoasidNbArgs>;
  /** Static offset of its per-PASID records (vfio_pasid, kvm_pasid or the driver's), one an ID. */
  readonly view: number;
  readonly lock: Mutex | undefined;
}

/**
 * VFIO's record of a PASID (the series' struct vfio_pasid, in its vfio_mm's pasid_list): the ioasid_set it files
 * the PASID under; here one per ID, 0: not tracked.
 */
export const VFIO_PASID = struct('vfio_pasid', { ioasid_set: word });
/** VFIO's per-VM state (struct vfio_mm): whether it knows the VM's ioasid_set, and the PASIDs it holds there. */
export const VFIO_MM = struct('vfio_mm', { ioasid_set: word, nr_pasids: word });
/** KVM's PASID translation entry (guest → host PASID, for ENQCMD in a guest): PASID_STATE_*, guest PASID + 1. */
export const KVM_PASID = struct('kvm_pasid', { state: word, gpasid: word });
/** Words of the driver's per-ID record (its one `state` word). */
const DRIVER_RECORD_WORDS = 1;

export interface IoasidSubscribers {
  readonly a: Ioasid;
  readonly kvmToken: number;
  /** In chain order. */
  readonly list: readonly Subscriber[];
  /** Static offset of VFIO's struct vfio_mm of each sid. */
  readonly vfioSets: number;
  readonly view: {
    readonly vfio_pasid: ViewOf<typeof VFIO_PASID>;
    readonly vfio_mm: ViewOf<typeof VFIO_MM>;
    readonly kvm_pasid: ViewOf<typeof KVM_PASID>;
    /** The IOMMU driver's record (IoasidDriverSubscriber.record). */
    readonly driver: ViewOf<StructType<{ readonly state: WordSpec }>>;
  };
  /** The per-ID records' layouts, by subscriber. */
  readonly records: Readonly<Record<SubscriberName, StructType<Fields>>>;
}

// A subscriber's view of an ID as one number, to compare with the allocator's: VFIO the sid it files the ID
// under; KVM and the IOMMU driver PASID_STATE_ALLOCATED | PASID_STATE_BOUND | (guest PASID + 1) << PASID_STATE_GPASID_SHIFT.
// The flags are what kvm_pasid.state and the driver's record's state hold (values, not word offsets).
/** The subscriber knows the ID is allocated. */
const PASID_STATE_ALLOCATED = 1;
/** … and bound (IOASID_NOTIFY_BIND). */
const PASID_STATE_BOUND = 2;
/** Where KVM's guest PASID + 1 goes in its view. */
const PASID_STATE_GPASID_SHIFT = 2;

/** Static words the subscribers of an allocator of 2^bits IDs take (to size a kernel layout; their mutexes are extra). */
export function ioasidSubscriberWords(bits: number, maxSets: number): number {
  return (VFIO_PASID.words + KVM_PASID.words + DRIVER_RECORD_WORDS) * 2 ** bits + VFIO_MM.words * (maxSets + 1);
}

/** sub's record of ID id (its word offset). */
function rec(k: Kernel, s: IoasidSubscribers, sub: Subscriber, id: number): number {
  return element(s.records[sub.name], k.mem.statics + sub.view, id);
}

/** VFIO's vfio_mm of set sid (its word offset). */
function vfioMm(k: Kernel, s: IoasidSubscribers, sid: number): number {
  return element(VFIO_MM, k.mem.statics + s.vfioSets, sid);
}

/** sub's view of ID id, as one number (PASID_STATE_* | (guest PASID + 1) << PASID_STATE_GPASID_SHIFT, or VFIO's sid). */
function viewOf(k: Kernel, s: IoasidSubscribers, sub: Subscriber, id: number): number {
  const p = rec(k, s, sub, id);
  if (sub.name === 'vfio') return s.view.vfio_pasid.ioasid_set.get(p);
  if (sub.name === 'kvm') return s.view.kvm_pasid.state.get(p) | (s.view.kvm_pasid.gpasid.get(p) << PASID_STATE_GPASID_SHIFT);
  return s.view.driver.state.get(p);
}

/** Declare the three subscribers and their notifier blocks (they register at run time: ioasid_subscribers_register). */
export function defineIoasidSubscribers(k: Kernel, a: Ioasid, opts: SubscriberOptions): IoasidSubscribers {
  const sleeper = opts.sleeper ?? 'none';
  const bug = opts.bug ?? 'none';
  const vfioSets = k.statics.alloc(VFIO_MM.words * (a.maxSets + 1), 'vfio ioasid sets');
  const list: Subscriber[] = [];
  if (opts.driver.record.words !== DRIVER_RECORD_WORDS) throw new Error(`ioasid: ${opts.driver.nb}'s record is not one word`);
  const view = { vfio_pasid: k.struct(VFIO_PASID), vfio_mm: k.struct(VFIO_MM), kvm_pasid: k.struct(KVM_PASID), driver: k.struct(opts.driver.record) };
  const records = { vfio: VFIO_PASID, kvm: KVM_PASID, iommu: opts.driver.record } as unknown as IoasidSubscribers['records'];
  const s: IoasidSubscribers = { a, kvmToken: opts.kvmToken, list, vfioSets, view, records };
  for (const spec of specs(opts.driver)) {
    const view = k.statics.alloc(a.storage * records[spec.name].words, `${spec.name} ioasid view`);
    const lock = sleeper === spec.name ? defineMutex(k, spec.lock) : undefined;
    const labels = new Map<number, string>();
    const label = (ev: number): string => {
      let l = labels.get(ev);
      if (l === undefined) {
        l = `${spec.nb}(${ioasidEventName(ev)})`;
        labels.set(ev, l);
      }
      return l;
    };
    const nb = defineNotifierBlock<IoasidNbArgs>(
      k,
      spec.nb,
      function* (t, ev, args) {
        if (!interested(s, spec.name, ev, args)) {
          // The planted bug: "not my set" said with NOTIFY_STOP, which ends the walk for everyone after VFIO.
          return spec.name === 'vfio' && bug === 'notify-stop' && args.system ? NOTIFY_STOP : NOTIFY_DONE;
        }
        if (lock) yield* mutex_lock(k, t, lock);
        yield* k.step(t, label(ev), () => update(k, s, sub, ev, args));
        if (lock) yield* mutex_unlock(k, t, lock);
        return NOTIFY_OK;
      },
      spec.priority,
    );
    const sub: Subscriber = { name: spec.name, nb, view, lock };
    list.push(sub);
  }
  k.onEnd(() => {
    for (const d of divergence(k, s)) k.report({ kind: 'notifier', title: d.title, text: [d.title, 'checked at the end of the run', ...d.lines].join('\n'), step: -1, where: d.nb });
  });
  return s;
}

function interested(s: IoasidSubscribers, name: SubscriberName, ev: number, args: IoasidNbArgs): boolean {
  switch (name) {
    case 'vfio':
      // VFIO publishes BIND/UNBIND itself; it follows the VMs' sets, not the host's.
      return !args.system && ev !== IOASID_NOTIFY_BIND && ev !== IOASID_NOTIFY_UNBIND;
    case 'kvm':
      return !args.system && args.token === s.kvmToken && ev !== IOASID_NOTIFY_SET_ALLOC && ev !== IOASID_NOTIFY_SET_FREE;
    case 'iommu':
      return ev !== IOASID_NOTIFY_SET_ALLOC && ev !== IOASID_NOTIFY_SET_FREE;
  }
}

/** The subscriber's own bookkeeping (perform only). */
function update(k: Kernel, s: IoasidSubscribers, sub: Subscriber, ev: number, args: IoasidNbArgs): void {
  const p = rec(k, s, sub, args.id);
  if (sub.name === 'vfio') {
    updateVfio(k, s, p, ev, args);
    return;
  }
  const v = s.view;
  const state = (x: number) => (sub.name === 'kvm' ? v.kvm_pasid.state.set(p, x) : v.driver.state.set(p, x));
  switch (ev) {
    case IOASID_NOTIFY_ALLOC:
    case IOASID_NOTIFY_UNBIND:
      state(PASID_STATE_ALLOCATED);
      if (sub.name === 'kvm') v.kvm_pasid.gpasid.set(p, 0);
      return;
    case IOASID_NOTIFY_FREE:
      state(0);
      if (sub.name === 'kvm') v.kvm_pasid.gpasid.set(p, 0);
      return;
    case IOASID_NOTIFY_BIND:
      // KVM keeps the guest PASID (its PASID translation table); the driver only that the entry is live.
      state(PASID_STATE_ALLOCATED | PASID_STATE_BOUND);
      if (sub.name === 'kvm') v.kvm_pasid.gpasid.set(p, args.spid + 1);
      return;
  }
}

/** VFIO's vfio_pasid of the ID and vfio_mm of its set (perform only). */
function updateVfio(k: Kernel, s: IoasidSubscribers, p: number, ev: number, args: IoasidNbArgs): void {
  const { vfio_pasid: pasid, vfio_mm: mm } = s.view;
  const set = vfioMm(k, s, args.sid);
  switch (ev) {
    case IOASID_NOTIFY_ALLOC:
      pasid.ioasid_set.set(p, args.sid);
      mm.nr_pasids.set(set, mm.nr_pasids.get(set) + 1);
      return;
    case IOASID_NOTIFY_FREE:
      pasid.ioasid_set.set(p, 0);
      mm.nr_pasids.set(set, mm.nr_pasids.get(set) - 1);
      return;
    case IOASID_NOTIFY_SET_ALLOC:
      mm.ioasid_set.set(set, 1);
      mm.nr_pasids.set(set, 0);
      return;
    case IOASID_NOTIFY_SET_FREE:
      if (args.destroy) mm.ioasid_set.set(set, 0);
      return;
  }
}

/** Register every subscriber on ioasid_chain, each from its module init, in chain order. */
export function* ioasid_subscribers_register(k: Kernel, t: KTask, s: IoasidSubscribers): KGen {
  for (const sub of s.list) yield* k.call(t, `${sub.name}_init`, k.fn.ioasid_register_notifier(t, sub.nb));
}

// ---- the oracle ----

export interface Divergence {
  readonly subscriber: SubscriberName;
  readonly nb: string;
  /** The IDs (or, for VFIO's set list, the sids as `set N`) that differ. */
  readonly ids: readonly number[];
  readonly sets: readonly number[];
  readonly title: string;
  readonly lines: readonly string[];
}

/** The divergent IDs a report lists (it counts them all). */
const DIVERGENT_IDS_SHOWN = 16;

function truth(k: Kernel, s: IoasidSubscribers, name: SubscriberName, id: number): number {
  const info = ioasidInfo(k, s.a, id);
  if (!info) return 0;
  const set = ioasidSetInfo(k, s.a, info.sid);
  if (name === 'vfio') return set && !set.system ? info.sid : 0;
  if (name === 'kvm' && (!set || set.system || set.token !== s.kvmToken)) return 0;
  if (!info.bound) return PASID_STATE_ALLOCATED;
  const bound = PASID_STATE_ALLOCATED | PASID_STATE_BOUND;
  return name === 'kvm' ? bound | ((info.spid + 1) << PASID_STATE_GPASID_SHIFT) : bound;
}

function describeTruth(k: Kernel, s: IoasidSubscribers, id: number): string {
  const info = ioasidInfo(k, s.a, id);
  if (!info) return 'not allocated';
  const set = ioasidSetInfo(k, s.a, info.sid);
  const where = set?.system ? `system set ${info.sid}` : `set ${info.sid} (token ${set?.token ?? '?'})`;
  return `${where}${info.bound ? ', bound' : ''}${info.spid >= 0 ? `, guest PASID ${info.spid}` : ''}`;
}

function describeView(name: SubscriberName, v: number): string {
  if (v === 0) return 'not tracked';
  if (name === 'vfio') return `filed under set ${v}`;
  if ((v & PASID_STATE_BOUND) === 0) return 'allocated';
  return name === 'kvm' ? `bound, guest PASID ${(v >>> PASID_STATE_GPASID_SHIFT) - 1}` : 'bound';
}

/** The IDs on which sub's view differs from the allocator's. */
function divergentIds(k: Kernel, s: IoasidSubscribers, sub: Subscriber): number[] {
  const ids: number[] = [];
  const cap = Math.min(ioasidCapacity(k, s.a), s.a.storage);
  for (let id = 1; id < s.a.storage; id++) {
    const v = viewOf(k, s, sub, id);
    // Most IDs are neither allocated nor tracked: skip them without building the allocator's description.
    if (v === 0 && (id >= cap || ioasidInfo(k, s.a, id) === undefined)) continue;
    if (v !== truth(k, s, sub.name, id)) ids.push(id);
  }
  return ids;
}

/** The sets VFIO's vfio_mm records get wrong (whether the set exists, how many PASIDs it holds). */
function divergentSets(k: Kernel, s: IoasidSubscribers): number[] {
  const sets: number[] = [];
  const mm = s.view.vfio_mm;
  for (let sid = 1; sid <= s.a.maxSets; sid++) {
    const set = ioasidSetInfo(k, s.a, sid);
    const p = vfioMm(k, s, sid);
    const known = set !== undefined && !set.system;
    if ((mm.ioasid_set.get(p) === 1) !== known || (known && mm.nr_pasids.get(p) !== set?.nr)) sets.push(sid);
  }
  return sets;
}

function describeSet(k: Kernel, s: IoasidSubscribers, sid: number): string {
  const set = ioasidSetInfo(k, s.a, sid);
  const p = vfioMm(k, s, sid);
  const mine = s.view.vfio_mm.ioasid_set.get(p) === 1 ? `a set with ${s.view.vfio_mm.nr_pasids.get(p)} IOASIDs` : 'no such set';
  const theirs = set ? `${set.system ? 'the system set' : 'a set'} with ${set.nr} IOASIDs` : 'no such set';
  return `  ioasid_set ${sid}: allocator: ${theirs}; vfio: ${mine}`;
}

/** Every subscriber whose view differs from the allocator's now (reads only: call with the lock free). */
export function divergence(k: Kernel, s: IoasidSubscribers): Divergence[] {
  const out: Divergence[] = [];
  for (const sub of s.list) {
    const ids = divergentIds(k, s, sub);
    const sets = sub.name === 'vfio' ? divergentSets(k, s) : [];
    if (ids.length === 0 && sets.length === 0) continue;
    const shown = ids.slice(0, DIVERGENT_IDS_SHOWN);
    const what = [
      ...(ids.length > 0 ? [`${ids.length} IOASID${ids.length > 1 ? 's' : ''}: ${shown.join(', ')}${ids.length > shown.length ? ', …' : ''}`] : []),
      ...(sets.length > 0 ? [`ioasid_sets ${sets.join(', ')}`] : []),
    ].join(' and ');
    const title = `iommu-sim: notifier divergence: ${sub.nb.name}'s view differs from the allocator's on ${what}`;
    const lines = [
      `${sub.name} keeps its own view of PASID state from ${s.a.chain.kind} notifier chain ${s.a.chain.name}; once notifications have`,
      'settled (no holder of ioasid_allocator_lock, under which every one is sent) it must equal the allocator\'s.',
      ...shown.map((id) => `  IOASID ${id}: allocator: ${describeTruth(k, s, id)}; ${sub.name}: ${describeView(sub.name, viewOf(k, s, sub, id))}`),
      ...sets.map((sid) => describeSet(k, s, sid)),
    ];
    out.push({ subscriber: sub.name, nb: sub.nb.name, ids, sets, title, lines });
  }
  return out;
}

/**
 * A point of the workload where notifications have settled: it waits until nobody holds the allocator lock
 * (without taking it) and compares every view with the allocator's there, reporting each divergence. Returns
 * the number of subscribers that differ.
 */
export function* ioasid_check_subscribers(k: Kernel, t: KTask, s: IoasidSubscribers, where: string): KGen<number> {
  return (yield k.point(
    t,
    'iommu-sim: check ioasid subscribers',
    () => ioasidLockFree(k, s.a),
    (env) => {
      const ds = divergence(k, s);
      for (const d of ds) {
        k.report({
          kind: 'notifier',
          title: d.title,
          text: [d.title, `checked by ${t.label} ${where}`, ...d.lines].join('\n'),
          step: env.step,
          where: d.nb,
          task: t.comm,
          pid: t.pid,
        });
      }
      return ds.length;
    },
    { what: 'ioasid_allocator_lock to be free (notifications to settle)', holder: () => ioasidLockOwner(k, s.a) },
  )) as number;
}

/** A subscriber's view of one ID, raw (0: not tracked), for tests. */
export function subscriberView(k: Kernel, s: IoasidSubscribers, name: SubscriberName, id: number): number {
  const sub = s.list.find((x) => x.name === name);
  if (!sub) throw new Error(`ioasid: no subscriber ${name}`);
  return viewOf(k, s, sub, id);
}
