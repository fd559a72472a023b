// The `domains` workload (seed 002; drivers/iommu/iommu.c, iommu-sva.c, io-pgfault.c) on the one model (model.ts):
// IOMMU units of any flavour with groups of one or more devices behind them, processes binding their mm through
// the one SVA bind path (k.fn.iommu_sva_bind_device: the PASID from the one allocator, the mm's SVA domain
// attached to {device, PASID} through its group and the vendor's set_dev_pasid), page-fault handlers looking the
// domain up with iommu_get_domain_for_dev_pasid, and a VFIO-like user attaching and replacing paging domains on a
// PASID through the vendors' iommu_domain_ops — all kernel tasks, with every checker on, under the policies of
// DESIGN.md: the lookup (group->mutex or RCU), SVA domain users (refcounted or not) and PASID attach on
// multi-device groups. A DMA is a real one: the PCI device's, translated by its IOMMU unit through the entry the
// driver wrote; the isolation oracle and KASAN judge what it reaches.
//
// Scripts:
// - race: the seed's question. Each process binds, lets the device DMA, and unbinds (the last unbind frees the
//   SVA domain); each fault handler waits for its process's bind, then handles a page request on the bound PASID
//   — racing the unbind. RCU lookups with unrefcounted users touch a freed domain (KASAN); the refcounted users
//   do not.
// - stress: processes bind and unbind in rounds on devices of every group, fault handlers look up every
//   {device, PASID} (and the VFIO one, whose paging domain is of the wrong type), and the VFIO task runs the
//   attach / replace / detach semantics on its PASID, counting every result that is not the kernel's.
// - bench: one paging domain on {device 0, PASID 1} (set up by the run's first task); `driver` actors spawn
//   loops of lookups on `go n` and the teardown on `teardown` (bench/domains.bench.ts).
// - multi-device: the policy "PASID attach on multi-device groups". VFIO, owning device 0, attaches a paging
//   domain to {device 0, the last PASID}, DMAs through it and detaches; meanwhile the driver of device 1 — the
//   other function of the same group — issues DMA tagged with that PASID, which nobody attached for it. Refused,
//   the attach is -EINVAL; allowed, the driver writes the entry of every device of the group, and the isolation
//   oracle (oracle.ts) reports device 1's DMA landing in VFIO's memory.
// User space starts with init (a task kernel_init spawns): it execs every process's mm, then starts the others.
// A scenario's `script` section (parameter `steps`) runs scripted actors instead (domains-script.ts).
// Teardown checks: kmemleak for domains and bonds, the groups' pasid_arrays and the units' PASID entries empty,
// no mm domain list left.
import type { KTask } from '../kernel/context.js';
import { EBUSY, EINVAL, ENOMEM } from '../kernel/errno.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { staticsOffset } from '../kernel/memory.js';
import { mm_init, mmPasid, mmStateCode, type MmStruct } from '../kernel/mm/mm.js';
import { do_mmap, fault_in } from '../kernel/mm/pagetable.js';
import { synchronize_rcu } from '../kernel/rcu.js';
import { read } from '../runtime/footprint.js';
import type { Wire, Workload } from '../runtime/model.js';
import { taskDriver } from '../kernel/driver.js';
import type { Domains, IommuGroups } from '../core/iommu.js';
import type { SvaDomains } from '../core/sva-domain.js';
import { mmStateFootprint } from '../core/footprints.js';
import type { DeviceInfo } from '../core/types.js';
import type { EntryFaults } from '../hw/driver.js';
import { HW_HOT_EVENTS, HW_SHARED_EVENTS } from '../hw/messages.js';
import { IOMMUFD_BUGS, type IommufdBug } from '../core/iommufd/index.js';
import { allocBuffer, type Buffer, defineDomainsScript, freeBuffer, parseDomainsScript } from './domains-script.js';
import { applyModelPatches, buildModel, type Model } from './model.js';
import { patchFiles } from './patch-loader.js';
import { checkWhileTasks } from './script.js';
import { type DomainsParams, domainsParams, domainsTopology, MAX_INITIAL_TASKS } from './presets/domains.js';
import { SVA_DEFAULTS } from './presets/sva.js';

export { DOMAINS_SCRIPTS, type DomainsScript } from './params/workload.js';

export { DOMAINS_DEFAULTS, DOMAINS_PRESET, type DomainsParams, domainsParams, domainsTopology, MAX_INITIAL_TASKS } from './presets/domains.js';

/** Counters of what the run did, in shared memory (every thread adds to the same ones). */
export const DOMAINS_STATS = [
  'binds',
  'bind_failures',
  'unbinds',
  'dmas',
  'dma_blocked',
  'faults_handled',
  'faults_invalid',
  'faults_raced',
  'faults_wrong_mm',
  'vfio_ops',
  'vfio_unexpected',
  'lookups',
  'lookup_misses',
  'peer_dmas',
  'peer_dmas_translated',
] as const;
export type DomainsStat = (typeof DOMAINS_STATS)[number];

/** I/O page tables for paging domains: the VFIO task's three and the benchmark's one. */
const PAGE_TABLES = 4;
/** Pages of each process's mm (and of each I/O page table). */
const PAGES = 4;
/** Kernel tasks issuing DMA at once: the processes, VFIO and the peer driver, scripted actors. */
const DMA_SLOTS = 36;
const VFIO_SLOT = 16;
const PEER_SLOT = 17;
const SCRIPT_SLOT = 18;

export interface DomainsModel {
  readonly k: Kernel;
  readonly params: DomainsParams;
  /** The one model the preset configures. */
  readonly model: Model;
  readonly devices: readonly DeviceInfo[];
  /** The processes' mms (mm i+1 for process i). */
  readonly mms: readonly MmStruct[];
  readonly domains: Domains;
  readonly groups: IommuGroups;
  readonly svaDomains: SvaDomains;
  /** The drivers' fault injection (a per-{device, PASID} allocation that fails on demand). */
  readonly faults: EntryFaults;
  /** A counter's value now (the run's memory). */
  stat(name: DomainsStat): number;
  /** Add n to a counter (inside a performed point only). */
  count(name: DomainsStat, n?: number): void;
}

/** What the domains workload's tasks use: the model's pieces and the run's shared words. */
interface DomainsTaskEnv {
  readonly k: Kernel;
  readonly p: DomainsParams;
  readonly m: Model;
  readonly mms: readonly MmStruct[];
  readonly domains: Domains;
  readonly groups: IommuGroups;
  /** Device i, modulo the topology's. */
  dev(i: number): DeviceInfo;
  bump(t: KTask, name: DomainsStat, n?: number): KGen;
  count(name: DomainsStat, n?: number): void;
  /** The word count(name) adds to (a step's footprint). */
  countAt(name: DomainsStat): number;
  /**
   * Per process, three words: its bond's generation (odd while bound, even once its unbind has begun; 0 before
   * its first bind, -1 when it failed), the device and the PASID of the bond.
   */
  readonly bonds: number;
  /** The bench's paging domain. */
  readonly benchDom: number;
  /** 1 once init has exec'd every process's mm and started the workload. */
  readonly userspace: number;
  /** The PASID the VFIO tasks use: the last. */
  readonly vfioPasid: number;
  /** Whether a PASID may be attached to a device's group (the policy, and its size). */
  readonly pasidOk: boolean;
}

/** Tell mm i's actor the mm's state (as the sva preset's syscalls do). */
function tellMm(env: DomainsTaskEnv, t: KTask, i: number): KGen {
  const { k, m, mms } = env;
  const mm = mms[i] as MmStruct;
  return k.stepOn(t, `${mm.name}: state`, mmStateFootprint(k, mm), (e) => e.send(m.actors.mm(i), { type: 'mm.state', code: mmStateCode(k, mm), pasid: mmPasid(k, mm) }));
}

/** init: exec every process's mm (mm_init, its pages mapped and faulted in), then start the workload's tasks. */
function defineInit(env: DomainsTaskEnv, start: readonly TaskStart[]): void {
  const { k, mms, userspace } = env;
  k.task('domains_init', 'process', function* (t) {
    for (let i = 0; i < mms.length; i++) {
      const mm = mms[i] as MmStruct;
      yield* mm_init(k, t, mm);
      yield* do_mmap(k, t, mm, 0, PAGES, true);
      for (let v = 0; v < PAGES; v++) yield* fault_in(k, t, mm, v, true);
      yield* tellMm(env, t, i);
    }
    const up = k.mem.statics + userspace;
    yield* k.stepOn(t, 'init: run the workload', [up], (e) => {
      Atomics.store(k.i32, up, 1);
      for (const x of start) e.spawn(x.task, x.args, x.name);
    });
  });
}

/** script race and stress: the processes binding and the page-fault handlers racing their unbinds. */
function defineRaceTasks(env: DomainsTaskEnv): void {
  const { k, p, m, mms, dev, bump, count, countAt, bonds } = env;
  const bond = (i: number, f: number): number => k.mem.statics + bonds + 3 * i + f;
  const bondWords = (i: number): number[] => [bond(i, 0), bond(i, 1), bond(i, 2)];
  // A process: bind, let the device DMA, unbind — `rounds` times, on the next device each round.
  k.task('proc', 'process', function* (t, args) {
    const i = typeof args === 'number' ? args : 0;
    const mm = mms[i] as MmStruct;
    for (let r = 0; r < p.rounds; r++) {
      const d = dev(i + r);
      const b = yield* k.fn.iommu_sva_bind_device(t, d, mm, 0);
      yield* k.stepOn(t, 'bound', [countAt(b.ret > 0 ? 'binds' : 'bind_failures'), ...bondWords(i)], () => {
        count(b.ret > 0 ? 'binds' : 'bind_failures');
        Atomics.store(k.i32, bond(i, 1), d.index);
        Atomics.store(k.i32, bond(i, 2), b.ret > 0 ? b.pasid : 0);
        Atomics.store(k.i32, bond(i, 0), b.ret > 0 ? 2 * r + 1 : -1);
      });
      yield* tellMm(env, t, i);
      if (b.ret <= 0) continue;
      const landed = yield* m.dmaWrite(t, d, b.pasid, 0, i);
      yield* k.stepOn(t, 'dma done', [countAt(landed ? 'dmas' : 'dma_blocked')], () => count(landed ? 'dmas' : 'dma_blocked'));
      yield* k.stepOn(t, 'unbinding', [bond(i, 0)], () => void Atomics.store(k.i32, bond(i, 0), 2 * r + 2));
      yield* k.fn.iommu_sva_unbind_device(t, b.ret);
      yield* bump(t, 'unbinds');
      yield* tellMm(env, t, i);
    }
  });

  // A page-fault handler (io-pgfault's workqueue): race, after its process's first bind; stress, right away. The
  // request is for the process's bond as it stands ({device, PASID}); one that outlived the bond has raced.
  k.task('iopf', 'workqueue', function* (t, args) {
    const f = typeof args === 'number' ? args : 0;
    for (let n = 0; n < p.lookups; n++) {
      const owner = (f + (p.script === 'race' ? 0 : n)) % p.processes;
      const mm = mms[owner] as MmStruct;
      const snapped = bondWords(owner).map(read);
      const snap = (): [number, number, number] => [Atomics.load(k.i32, bond(owner, 0)), Atomics.load(k.i32, bond(owner, 1)), Atomics.load(k.i32, bond(owner, 2))];
      // The device can only fault once it has been bound: the page request follows the bind.
      const [gen, d, pasid] =
        p.script === 'race' && n === 0
          ? ((yield k.point(t, 'wait for a page request', () => snap()[0] !== 0, snap, { what: `a page request from proc${owner}` }, snapped)) as [number, number, number])
          : yield* k.stepOn(t, 'page request', snapped, snap);
      // Stress: every fourth request is on the VFIO task's PASID, whose paging domain is not an SVA domain.
      const vfio = p.script === 'stress' && n % 4 === 3;
      const got = yield* k.fn.iopf_handler(t, vfio ? dev(0) : dev(d), vfio ? env.vfioPasid : pasid);
      const answered = [read(bond(owner, 0)), countAt('faults_invalid'), countAt('faults_handled'), countAt('faults_wrong_mm'), countAt('faults_raced')];
      yield* k.stepOn(t, 'page response', answered, () => {
        const live = gen > 0 && gen % 2 === 1 && Atomics.load(k.i32, bond(owner, 0)) === gen;
        count(got === 0 ? 'faults_invalid' : got === mm.id || vfio ? 'faults_handled' : live ? 'faults_wrong_mm' : 'faults_raced');
      });
    }
  });
}

/** script stress: a VFIO-like user of a PASID (attach / replace / detach, each result checked). */
function defineVfioTasks(env: DomainsTaskEnv): void {
  const { k, p, m, groups, dev, count, countAt, pasidOk, vfioPasid: pasid } = env;
  const units = m.topo.units.length;
  // A VFIO/iommufd-like user of the last PASID: the attach / replace / detach semantics, each result checked —
  // and each DMA's: through the domain attached, or faulting when none is.
  k.task('vfio', 'process', function* (t) {
    let unexpected = 0;
    let ops = 0;
    const expect = (got: number | boolean, want: number | boolean): void => {
      ops++;
      if (got !== want) unexpected++;
    };
    for (let r = 0; r < p.rounds; r++) {
      const d = dev(r);
      const other = (d.iommu + 1) % units;
      const bufs = [yield* allocBuffer(m, t, 'paging', d.iommu), yield* allocBuffer(m, t, 'paging', other), yield* allocBuffer(m, t, 'paging', d.iommu)];
      const [a, b, c] = bufs.map((x) => x.dom) as [number, number, number];
      if (bufs.every((x) => x.dom !== 0)) {
        const first = yield* groups.iommu_attach_device_pasid(t, a, d, pasid);
        expect(first, pasidOk ? 0 : -EINVAL);
        if (first === 0) {
          expect(yield* groups.iommu_attach_device_pasid(t, a, d, pasid), 0);
          expect(yield* groups.iommu_attach_device_pasid(t, c, d, pasid), -EBUSY);
          // A domain of another IOMMU instance is incompatible (when there is another one).
          expect(yield* groups.iommu_replace_device_pasid(t, b, d, pasid), units > 1 ? -EINVAL : 0);
          // The driver's allocation for the entry fails: the old domain stays installed and working.
          if (m.faults) yield* m.faults.arm(t, d, pasid, -ENOMEM);
          expect(yield* groups.iommu_replace_device_pasid(t, c, d, pasid), -ENOMEM);
          expect(yield* m.dmaWrite(t, d, pasid, 0, VFIO_SLOT), true);
          expect(yield* groups.iommu_replace_device_pasid(t, c, d, pasid), 0);
          expect(yield* m.dmaWrite(t, d, pasid, 0, VFIO_SLOT), true);
          yield* groups.iommu_detach_device_pasid(t, c, d, pasid);
          expect(yield* m.dmaWrite(t, d, pasid, 0, VFIO_SLOT), false);
        }
        expect(yield* groups.iommu_replace_device_pasid(t, a, d, pasid), -EINVAL);
      }
      // A page-fault handler under RCU may have loaded one of them before the detach: wait for it.
      if (p.lookup === 'rcu') yield* synchronize_rcu(k, t);
      for (const x of bufs) if (x.dom !== 0) yield* freeBuffer(m, t, x as Buffer);
    }
    yield* k.stepOn(t, 'vfio results', [countAt('vfio_ops'), countAt('vfio_unexpected')], () => {
      count('vfio_ops', ops);
      count('vfio_unexpected', unexpected);
    });
  });
}

/** script multi-device: VFIO owning device 0's PASID, and the peer device's DMA tagged with it. */
function defineMultiDeviceTasks(env: DomainsTaskEnv): void {
  const { k, p, m, groups, dev, count, countAt, pasidOk, vfioPasid: pasid } = env;
  // VFIO owns device 0 and attaches a paging domain to one of its PASIDs, checking each result.
  k.task('pasid_owner', 'process', function* (t) {
    const d = dev(0);
    let unexpected = 0;
    let ops = 1;
    const a = yield* allocBuffer(m, t, 'paging', d.iommu);
    if (a.dom === 0) unexpected++;
    else {
      const ret = yield* groups.iommu_attach_device_pasid(t, a.dom, d, pasid);
      if (ret !== (pasidOk ? 0 : -EINVAL)) unexpected++;
      if (ret === 0) {
        ops += 2;
        if (!(yield* m.dmaWrite(t, d, pasid, 0, VFIO_SLOT))) unexpected++;
        yield* groups.iommu_detach_device_pasid(t, a.dom, d, pasid);
        if (yield* m.dmaWrite(t, d, pasid, 0, VFIO_SLOT)) unexpected++;
      }
      yield* freeBuffer(m, t, a as Buffer);
    }
    yield* k.stepOn(t, 'vfio results', [countAt('vfio_ops'), countAt('vfio_unexpected')], () => {
      count('vfio_ops', ops);
      count('vfio_unexpected', unexpected);
    });
  });
  // ... and the driver of device 1 tags its own DMA with that PASID: nothing is attached to {device 1, PASID}.
  k.task('peer_dma', 'process', function* (t) {
    const d = dev(1);
    let translated = 0;
    for (let n = 0; n < p.lookups; n++) if (yield* m.dmaWrite(t, d, pasid, 0, PEER_SLOT)) translated++;
    yield* k.stepOn(t, 'peer results', [countAt('peer_dmas'), countAt('peer_dmas_translated')], () => {
      count('peer_dmas', p.lookups);
      count('peer_dmas_translated', translated);
    });
  });
}

/** script bench: a paging domain looked up by loops, torn down at the end. */
function defineBenchTasks(env: DomainsTaskEnv): void {
  const { k, m, p, domains, groups, dev, count, countAt, benchDom } = env;
  const benchAt = (): number => k.mem.statics + benchDom;
  // The benchmark: a paging domain on {device 0, PASID 1}, looked up by loops, torn down at the end.
  k.task('bench_setup', 'process', function* (t) {
    yield* m.boot.wait(t);
    const a = yield* domains.alloc(t, 'paging', dev(0).iommu);
    if (a.err !== 0) throw new Error(`domains bench: ${a.why}`);
    const ret = yield* groups.iommu_attach_device_pasid(t, a.dom, dev(0), 1);
    if (ret !== 0) throw new Error(`domains bench: iommu_attach_device_pasid returned ${ret}`);
    yield* k.stepOn(t, 'bench domain', [benchAt()], () => Atomics.store(k.i32, benchAt(), a.dom));
  });
  k.task('lookup_loop', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : 0;
    let misses = 0;
    for (let i = 0; i < n; i++) if ((yield* groups.iommu_get_domain_for_dev_pasid(t, dev(0), 1, 'paging')) <= 0) misses++;
    yield* k.stepOn(t, 'count lookups', [countAt('lookups'), countAt('lookup_misses')], () => {
      count('lookups', n);
      count('lookup_misses', misses);
    });
  });
  k.task('bench_teardown', 'process', function* (t) {
    const dom = yield* k.stepOn(t, 'bench domain', [benchAt()], () => Atomics.exchange(k.i32, benchAt(), 0));
    if (dom === 0) return;
    yield* groups.iommu_detach_device_pasid(t, dom, dev(0), 1);
    if (p.lookup === 'rcu') yield* synchronize_rcu(k, t);
    yield* domains.free(t, dom);
  });
}

/** At teardown (kmemleak): mm SVA domain lists or the units' PASID entries left, and the groups' pasid_arrays. */
function reportLeftovers(m: Model, pasids: number): void {
  const k = m.k;
  if (!k.enabled('leaks')) return;
  m.groups.checkReleased();
  const entries = m.infos.flatMap((d) =>
    // PASID 0 is the RID's: its default domain lives as long as the group.
    Array.from({ length: pasids - 1 }, (_, i) => i + 1)
      .filter((pasid) => m.entryMm(d, pasid) !== 0)
      .map((pasid) => `${d.name} ${m.units[d.iommu]?.spec.entryName ?? 'PASID'} entry ${pasid} still points at mm ${m.entryMm(d, pasid) - 1}`),
  );
  const left = [...m.svaDomains.leftovers(), ...entries];
  if (left.length === 0) return;
  const title = 'kmemleak: iommu-sim: SVA domains or PASID entries left at teardown';
  k.report({ kind: 'leak', title, text: [title, ...left.map((l) => `  ${l}`)].join('\n'), step: -1, where: 'teardown' });
}

type TaskStart = { task: string; args: Wire; name: string };

/** What init starts once it has exec'd the processes: the scripted actors' tasks, or the script's. */
function domainsUserTasks(p: DomainsParams, scripted: TaskStart[] | undefined): TaskStart[] {
  if (scripted) return scripted;
  if (p.script === 'bench') return [];
  if (p.script === 'multi-device') return [{ task: 'pasid_owner', args: null, name: 'vfio0' }, { task: 'peer_dma', args: null, name: 'drv1' }];
  const tasks: TaskStart[] = Array.from({ length: p.processes }, (_, i) => ({ task: 'proc', args: i, name: `proc${i}` }));
  tasks.push(...Array.from({ length: p.faults }, (_, f) => ({ task: 'iopf', args: f, name: `iopf${f}` })));
  if (p.script === 'stress') tasks.push({ task: 'vfio', args: null, name: 'vfio0' });
  return tasks;
}

/** The run's check: every result the kernel's, every page request against its own mm, every lookup found. */
function domainsCheck(counters: Record<DomainsStat, number>) {
  const problems: string[] = [];
  if (counters.faults_wrong_mm > 0) problems.push(`${counters.faults_wrong_mm} page requests were handled against another process's mm while their bond was live`);
  if (counters.dma_blocked > 0) problems.push(`${counters.dma_blocked} DMAs right after a successful bind did not complete through the bound SVA domain`);
  if (counters.vfio_unexpected > 0) problems.push(`${counters.vfio_unexpected} of ${counters.vfio_ops} attach/replace/detach or DMA results were not the kernel's`);
  if (counters.lookup_misses > 0) problems.push(`${counters.lookup_misses} benchmark lookups did not find the attached domain`);
  return { ok: problems.length === 0, problems, counters };
}

/** Task kinds always started with a name of their own (an initial task's). */
const DOMAINS_NAMED_KINDS = new Set(['domains_script', 'domains_init', 'proc', 'iopf', 'vfio', 'pasid_owner', 'peer_dma', 'bench_setup', 'lookup_loop', 'bench_teardown']);

/** The model's configuration for the preset: its topology, and the sva defaults for what the preset does not set. */
function domainsModel(p: DomainsParams, drivers: number): Model {
  return buildModel(
    { ...SVA_DEFAULTS, pages: PAGES, pasidBits: p.pasidBits, lookup: p.lookup, users: p.users, multiDevicePasid: p.multiDevicePasid, pasidAlloc: p.pasidAlloc, teardown: p.teardown, bug: p.bug },
    domainsTopology(p),
    {
      name: 'domains',
      bonds: Math.max(8, 2 * p.processes + 8),
      workloadTasks: MAX_INITIAL_TASKS + p.processes + p.faults + 4,
      // The bench's drivers first (bench/domains.bench.ts sends `go` to actors 0..drivers-1).
      firstActor: drivers,
      pageTables: PAGE_TABLES,
      dmaSlots: DMA_SLOTS,
      entryFaults: true,
      // User space starts with init; the bench needs none.
      bootTasks: p.script === 'bench' && p.steps === '' ? [] : [{ task: 'domains_init', args: null, name: 'init' }],
    },
  );
}

export function buildDomains(raw: Readonly<Record<string, Wire>>): { workload: Workload; model: DomainsModel } {
  const p = domainsParams(raw);
  const drivers = p.script === 'bench' ? p.drivers : 0;
  const m = domainsModel(p, drivers);
  const { k, domains, groups } = m;
  const ndev = m.infos.length;
  const mms = m.mms.mms.slice(0, p.processes);
  const statsOff = k.statics.alloc(DOMAINS_STATS.length, 'domains stats');
  const index = (name: DomainsStat): number => DOMAINS_STATS.indexOf(name);
  const countAt = (name: DomainsStat): number => k.mem.statics + statsOff + index(name);
  const count = (name: DomainsStat, n = 1): void => void Atomics.add(k.i32, countAt(name), n);
  const bump = (t: KTask, name: DomainsStat, n = 1): KGen => k.stepOn(t, `count ${name}`, [countAt(name)], () => count(name, n));
  const env: DomainsTaskEnv = {
    k,
    p,
    m,
    mms,
    domains,
    groups,
    dev: (i) => m.infos[((i % ndev) + ndev) % ndev] as DeviceInfo,
    bump,
    count,
    countAt,
    bonds: k.statics.alloc(3 * p.processes, 'process bonds'),
    benchDom: k.statics.alloc(1, 'bench domain'),
    userspace: k.statics.alloc(1, 'user space up'),
    vfioPasid: (1 << p.pasidBits) - 1,
    pasidOk: p.groupSize === 1 || p.multiDevicePasid === 'allowed',
  };
  const model: DomainsModel = {
    k,
    params: p,
    model: m,
    devices: m.infos,
    mms,
    domains,
    groups,
    svaDomains: m.svaDomains,
    faults: m.faults as EntryFaults,
    stat: (name) => Atomics.load(k.i32, k.mem.statics + statsOff + index(name)),
    count,
  };
  defineRaceTasks(env);
  defineVfioTasks(env);
  defineMultiDeviceTasks(env);
  defineBenchTasks(env);
  k.onEnd(() => reportLeftovers(m, 1 << p.pasidBits));

  const scripted = parseDomainsScript(p.steps, { devices: ndev, processes: p.processes, iommus: m.topo.units.length, pasids: 1 << p.pasidBits, maxActors: MAX_INITIAL_TASKS - 1 });
  const userTasks = domainsUserTasks(p, scripted ? defineDomainsScript({ k, m, mms, slot: SCRIPT_SLOT, iommufdBug: (IOMMUFD_BUGS as readonly string[]).includes(p.bug) ? (p.bug as IommufdBug) : 'none' }, scripted) : undefined);
  defineInit(env, userTasks);
  // Last: every kernel function of the run is registered (iommufd's with a VMM actor, the script's, the model's).
  applyModelPatches(m, patchFiles(p));
  // The tasks this run can have: its user tasks, and those spawned without a name (callbacks: their kind).
  if (scripted) checkWhileTasks('domains', scripted, [...userTasks.map((it) => it.name), ...Object.keys(k.taskFactories).filter((kind) => !DOMAINS_NAMED_KINDS.has(kind))]);
  const statics = staticsOffset(k.layout, k.base);
  const workload: Workload = {
    name: 'domains',
    params: { ...p },
    actors: [...Array.from({ length: drivers }, (_, i) => ({ name: `driver/${i}`, logic: taskDriver, input: { kind: 'lookup_loop', teardown: 'bench_teardown' } })), ...m.specs],
    initial: [],
    initialTasks: [m.boot.task, ...(p.script === 'bench' && p.steps === '' ? [{ task: 'bench_setup', args: null, name: 'bench_setup' }] : [])],
    sharedWords: k.words,
    hotEvents: { ...HW_HOT_EVENTS, go: ['n'] },
    sharedEvents: HW_SHARED_EVENTS,
    footprintOf: m.footprintOf,
    // The model's counters and the workload's own: added to atomically, read once the run has ended (check).
    unorderedWords: [m.stats.words(statics), { from: statics + statsOff, to: statics + statsOff + DOMAINS_STATS.length }],
    tasks: k.taskFactories,
    monitor: k,
    check: (_finals, shared) => domainsCheck(Object.fromEntries(DOMAINS_STATS.map((s, i) => [s, shared[statics + statsOff + i] as number])) as Record<DomainsStat, number>),
  };
  return { workload, model };
}

export function domainsWorkload(raw: Readonly<Record<string, Wire>>): Workload {
  return buildDomains(raw).workload;
}
