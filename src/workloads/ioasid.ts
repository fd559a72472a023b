// The `ioasid` workload (issue #5 part 1; issue #15): seed 003's IOASID allocator (core/ioasid.ts, after
// drivers/iommu/ioasid.c and the "IOASID extensions for guest SVA" series) under the policies the thread argues
// about — allocator lock spinlock | mutex, notifier chain atomic | blocking, where a bond's PASID is freed (at
// unbind, from the MMU notifier's free_notifier, or from a work item) — with its subscribers
// (ioasid-subscribers.ts) and the quota and notifier-divergence oracles. Built identically in every thread from
// its parameters.
//
// mode=scenario, seed 003 end to end on the one model (model.ts's buildModel: a VT-d unit and the accelerator
// the processes bind to, booted by kernel_init; the IOASID allocator sized to the preset's ID space is the one the
// core's system PASID placement allocates from). An init task installs the capacity, registers VFIO, KVM and the
// IOMMU driver on ioasid_chain and allocates the system set; then
//   - SVA processes: each opens the accelerator — the one SVA bind path, iommu_sva_bind_device, whose PASID is
//     an ID of the system set (iommu_alloc_pasid: the subscribers hear BIND) —, looks its mm up by PASID as the
//     fault path does (ioasid_find), and exits: exit_mmap runs the bond's MMU notifier release, exit_files closes
//     the fd (iommu_sva_unbind_device); the PASID's last bind going, the subscribers hear UNBIND and the PASID is
//     freed where policy `free` says (pasid.ts: at unbind; from the notifier's free_notifier, an SRCU callback in
//     softirq context; or from a kworker);
//   - VMs: each allocates its set (token, quota), and its vCPU threads allocate guest PASIDs in it (past the
//     quota: -ENOSPC), attach the guest PASID, BIND, and look them up both ways; then the VM tries to shrink its
//     quota below what it holds (-EINVAL), checks the subscribers' views, frees the whole set and checks again.
// A scenario's `script` section (parameter `steps`, scenario mode) adds scripted allocator users, started once
// the allocator is booted (ioasid-script.ts).
// The benchmarks measure the allocator alone, on a kernel of its own (no hardware, no mms):
// mode=alloc-free: one task fills the whole ID space of the system set, then another frees it all.
// mode=find-rcu | find-lock: readers look up private data with ioasid_find under RCU, or under the allocator
// lock, while an updater republishes it (ioasid_set_data); `drivers` actors spawn the loops on `go n`.
import type { KTask } from '../kernel/context.js';
import { EINVAL, ENOSPC } from '../kernel/errno.js';
import { Kernel, type KGen } from '../kernel/kernel.js';
import { staticsOffset } from '../kernel/memory.js';
import { type MmStruct, mm_exit, mm_init, mmPasid, mmStateCode } from '../kernel/mm/mm.js';
import { do_mmap, fault_in } from '../kernel/mm/pagetable.js';
import type { DeviceInfo } from '../core/types.js';
import { readerTableWords } from '../kernel/rcu.js';
import { InputError } from '../runtime/errors.js';
import type { ActorSpec, Wire, Workload } from '../runtime/model.js';
import { taskDriver } from '../kernel/driver.js';
import { type Ioasid, IOASID_NOTIFY_BIND, defineIoasid, type IoasidOptions, ioasid_find_locked, ioasidOf, ioasidWords } from '../core/ioasid.js';
import {
  defineIoasidSubscribers,
  type IoasidSubscribers,
  ioasid_check_subscribers,
  ioasid_subscribers_register,
  ioasidSubscriberWords,
} from '../core/ioasid-subscribers.js';
import { INTEL_SVM_IOASID } from '../hw/intel/svm.js';
import { defineIoasidScript, type IoasidOp, parseIoasidScript } from './ioasid-script.js';
import { checkWhileTasks, type ScriptActor } from './script.js';
import { FIND_IDS, type IoasidParams, ioasidParams, ioasidTopology, MAX_SCRIPT_USERS, PID_MAX_DEFAULT } from './presets/ioasid.js';
import { SVA_DEFAULTS } from './presets/sva.js';
import { applyModelPatches, buildModel, type Model, type ModelParams } from './model.js';
import { patchFiles } from './patch-loader.js';
import { HW_HOT_EVENTS, HW_SHARED_EVENTS } from '../hw/messages.js';

export { FREE_POLICIES, type FreePolicy } from './params/policies.js';
export { IOASID_WORKLOAD_BUGS, type IoasidWorkloadBug } from './params/faults.js';
export { IOASID_MODES, type IoasidMode } from './params/workload.js';

export { FIND_IDS, IOASID_DEFAULTS, IOASID_PRESET, type IoasidParams, ioasidParams, ioasidTopology } from './presets/ioasid.js';

/** Counters of what the workload did, in shared memory (every thread adds to the same ones). */
const COUNTERS = [
  'sva_binds',
  'sva_bind_failures',
  'vm_allocs',
  'alloc_enospc',
  'alloc_errors',
  'free_errors',
  'finds',
  'find_mismatch',
  'binds',
  'unbinds',
  'sets',
  'set_errors',
  'set_frees',
  'adjust_einval',
  'adjust_ok',
  'spid_ok',
  'spid_mismatch',
  'view_checks',
  'divergent_views',
  'dmas',
  'dma_failures',
  'exits',
  'vms_done',
  'bench_allocs',
  'bench_frees',
  'drained',
  'setup_done',
] as const;
type Counter = (typeof COUNTERS)[number];
type Tally = Partial<Record<Counter, number>>;

const vmToken = (j: number): number => 100 + j;
const vmPriv = (j: number): number => 0x1000 + j;

export interface IoasidModel {
  readonly k: Kernel;
  readonly a: Ioasid;
  readonly subs: IoasidSubscribers | undefined;
  readonly params: IoasidParams;
  /** The one model the scenario runs on (undefined for the benchmarks, which measure the allocator alone). */
  readonly model: Model | undefined;
}

function num(args: Wire, field: string): number {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new Error(`ioasid: bad task arguments ${JSON.stringify(args)}`);
  const v = args[field];
  if (typeof v !== 'number') throw new Error(`ioasid: task argument ${field} missing`);
  return v;
}

/** Task kinds always started with a name of their own. */
const IOASID_NAMED_KINDS = new Set(['ioasid_init', 'launcher', 'sva_process', 'vm', 'vcpu', 'ioasid_script', 'ioasid_fill', 'ioasid_drain', 'ioasid_find_reader', 'ioasid_find_updater', 'ioasid_find_setup']);

/** What the ioasid workload's tasks use: the allocator, its subscribers, the counters, the run's tasks and actors. */
interface IoasidTaskEnv {
  readonly k: Kernel;
  readonly p: IoasidParams;
  /** SVA processes (scenario mode). */
  readonly P: number;
  readonly a: Ioasid;
  readonly subs: IoasidSubscribers | undefined;
  /** The installed capacity (IDs 1..cap-1). */
  readonly cap: number;
  counterAt(c: Counter): number;
  tally(t: KTask, d: Tally): KGen;
  /** The allocator's boot: capacity installed, subscribers registered. */
  init(t: KTask): KGen<number>;
  readonly initialTasks: { task: string; args: Wire; name?: string }[];
  readonly actors: ActorSpec[];
}

/** What the scenario's tasks share besides the allocator: the one model (its mms, devices, driver, kernel_init). */
interface ScenarioEnv extends IoasidTaskEnv {
  readonly m: Model;
  /** The vCPUs of each VM done: statics offset. */
  readonly vmDone: number;
}

/** mode=scenario: seed 003 end to end — SVA processes, VMs and their vCPUs, scripted users. */
function defineScenarioTasks(env: IoasidTaskEnv, m: Model): void {
  const s: ScenarioEnv = { ...env, m, vmDone: env.k.statics.alloc(Math.max(1, env.p.vms), 'vcpus done') };
  env.initialTasks.push(m.boot.task);
  const scripted = parseIoasidScript(env.p.steps, MAX_SCRIPT_USERS);
  const systemQuota = systemSetQuota(env, scripted);
  defineSvaProcess(s);
  defineVmTasks(env, s.vmDone);
  const booted = defineBootTasks(s, systemQuota, scripted?.length ?? 0);
  if (scripted) defineScriptUsers(env, scripted, booted);
}

/** The system set's quota: the parameter, or what the VMs' and the script's sets leave (at most PID_MAX_DEFAULT). */
function systemSetQuota(env: IoasidTaskEnv, scripted: readonly ScriptActor<IoasidOp>[] | undefined): number {
  const { p, P, cap } = env;
  // The script's sets take their quotas from the capacity too: the system set leaves them room.
  const scriptQuota = (scripted ?? []).reduce((n, u) => n + u.steps.reduce((m, st) => m + (st.op === 'alloc_set' && 'quota' in st ? st.quota : 0), 0), 0);
  const systemQuota = p.systemQuota || Math.min(PID_MAX_DEFAULT, cap - 1 - p.vms * p.quota - scriptQuota);
  if (systemQuota < P) throw new InputError(`ioasid: steps: the script's sets (quotas ${scriptQuota} in all) leave the system set no room for ${P} processes' PASIDs (bits=${p.bits})`);
  return systemQuota;
}

/** The mm's state as its task sees it, told to its actor (syscalls.ts does the same for the sva preset). */
function tellMm(s: ScenarioEnv, t: KTask, i: number, mm: MmStruct): KGen {
  const { k, m } = s;
  return k.step(t, `${mm.name}: state`, (e) => e.send(m.actors.mm(i), { type: 'mm.state', code: mmStateCode(k, mm), pasid: mmPasid(k, mm) }));
}

/** What a bound process checks, as the IOMMU driver's page-request path would: the mm its PASID names. */
function* checkBound(s: ScenarioEnv, t: KTask, i: number, sid: number, pasid: number, mm: MmStruct): KGen<Tally> {
  const { k, subs } = s;
  // The IOASID's private data is the mm it was allocated for (iommu_alloc_pasid: mm id + 1).
  const priv = yield* k.fn.ioasid_find(t, sid, pasid);
  const tl: Tally = { sva_binds: 1, binds: 1, finds: 1 };
  if (priv !== mm.id + 1) tl.find_mismatch = 1;
  if (subs) {
    // Bound and not yet exiting: every subscriber must know the PASID (the IOMMU driver as bound).
    tl.divergent_views = yield* ioasid_check_subscribers(k, t, subs, `in proc${i} after binding PASID ${pasid}`);
    tl.view_checks = 1;
  }
  return tl;
}

/**
 * The bound process's work: `dmas` descriptors to its device, tagged with its PASID, at its one page, each waited
 * for on the completion record the device writes — through the unit's translation, where the isolation oracle
 * checks that it lands in the mm bound at {device, PASID}.
 */
function* deviceDma(s: ScenarioEnv, t: KTask, i: number, dev: DeviceInfo, pasid: number): KGen<Tally> {
  const { m, p } = s;
  let ok = 0;
  for (let j = 0; j < p.dmas; j++) if (yield* m.dmaWrite(t, dev, pasid, 0, i)) ok++;
  return { dmas: ok, dma_failures: p.dmas - ok };
}

/**
 * An SVA process: its one page mapped and faulted in (exec), opens the accelerator (the one bind path), checks
 * its PASID's lookups and the subscribers' views, has its device DMA, and exits — exit_mm (exit_mmap: the bond's
 * MMU notifier release) before exit_files (close: unbind).
 */
function defineSvaProcess(s: ScenarioEnv): void {
  const { k, m, tally } = s;
  k.task('sva_process', 'process', function* (t, args) {
    const i = num(args, 'i');
    const sid = num(args, 'sid');
    const mm = m.mms.mms[i];
    const dev = m.infos[i % Math.max(1, m.infos.length)];
    if (!mm || !dev) throw new Error(`ioasid: no mm or device for process ${i}`);
    yield* mm_init(k, t, mm);
    yield* do_mmap(k, t, mm, 0, 1, true);
    yield* fault_in(k, t, mm, 0, true);
    yield* tellMm(s, t, i, mm);
    const b = yield* m.driver.bindQueue(t, dev, mm, 0);
    let tl: Tally = { sva_bind_failures: 1 };
    if (b.ret > 0) {
      yield* tellMm(s, t, i, mm);
      tl = { ...(yield* checkBound(s, t, i, sid, b.pasid, mm)), ...(yield* deviceDma(s, t, i, dev, b.pasid)) };
    }
    yield* mm_exit(k, t, m.notifiers, mm);
    if (b.ret > 0) {
      yield* m.driver.release(t, b.ret);
      tl.unbinds = 1;
    }
    yield* tellMm(s, t, i, mm);
    yield* tally(t, { ...tl, exits: 1 });
  });
}

/**
 * ioasid_init (the allocator's boot and the system set) and the launchers that start the processes and VMs once
 * it is done; returns the word (statics offset) the system set's sid is stored in.
 */
function defineBootTasks(s: ScenarioEnv, systemQuota: number, scriptUsers: number): number {
  const { k, p, P, init, m, initialTasks } = s;
  const booted = k.statics.alloc(1, 'system sid');
  k.task('ioasid_init', 'process', function* (t) {
    yield* init(t);
    const sid = yield* k.fn.ioasid_alloc_system_set(t, systemQuota);
    if (sid < 0) throw new Error(`ioasid_alloc_system_set: ${sid}`);
    yield* k.step(t, 'boot done', () => void Atomics.store(k.i32, k.mem.statics + booted, sid));
  });
  // Processes and VMs are started by launchers, themselves initial tasks: the threaded runtime deals initial
  // tasks over its workers, and a task's children run where it does.
  const items = P + p.vms;
  // At most 16 initial tasks: kernel_init, ioasid_init, the script's users and the launchers.
  const launchers = Math.min(14 - scriptUsers, items);
  k.task('launcher', 'process', function* (t, args) {
    const l = typeof args === 'number' ? args : 0;
    const at = k.mem.statics + booted;
    yield k.point(t, 'wait for boot', () => Atomics.load(k.i32, at) !== 0, () => undefined, { what: 'ioasid_init' });
    // User space starts once kernel_init has configured the hardware.
    yield* m.boot.wait(t);
    const sid = yield* k.step(t, 'system sid', () => Atomics.load(k.i32, at));
    for (let n = l; n < items; n += launchers) {
      if (n < P) yield* k.step(t, 'fork', (env) => void env.spawn('sva_process', { i: n, sid }, `proc${n}`));
      else yield* k.step(t, 'start vm', (env) => void env.spawn('vm', { j: n - P }, `qemu${n - P}`));
    }
  });
  initialTasks.push({ task: 'ioasid_init', args: null, name: 'swapper' });
  for (let l = 0; l < launchers; l++) initialTasks.push({ task: 'launcher', args: l, name: `launcher${l}` });
  return booted;
}

/** The script's users, started once the allocator is booted; their `while` steps may name any task of the run. */
function defineScriptUsers(env: IoasidTaskEnv, scripted: readonly ScriptActor<IoasidOp>[], booted: number): void {
  const { k, p, P, a, subs, cap, initialTasks } = env;
  initialTasks.push(...defineIoasidScript({ k, a, subs, cap, bootWord: () => k.mem.statics + booted }, scripted));
  // The tasks this run can have: its initial ones, the processes and VMs the launchers start, and those
  // spawned without a name (callbacks: their kind).
  const started = [
    ...Array.from({ length: P }, (_, i) => `proc${i}`),
    ...Array.from({ length: p.vms }, (_, j) => [`qemu${j}`, ...Array.from({ length: p.vcpus }, (_, c) => `qemu${j}-vcpu${c}`)]).flat(),
  ];
  const unnamed = Object.keys(k.taskFactories).filter((kind) => !IOASID_NAMED_KINDS.has(kind));
  checkWhileTasks('ioasid', scripted, [...initialTasks.flatMap((it) => (it.name ? [it.name] : [])), ...started, ...unnamed]);
}

/** The device's PASID width: not the IOASID space's (2^20 at most), its per-PASID state being per PASID. */
const DEVICE_PASID_BITS = 8;

/** The VMs (one ioasid_set each, quota, shrink attempt, set free) and their vCPU threads allocating guest PASIDs. */
function defineVmTasks(env: IoasidTaskEnv, vmDone: number): void {
  defineVcpuTask(env, vmDone);
  defineVmTask(env, vmDone);
}

/** A vCPU thread: guest PASIDs allocated in its VM's set (past the quota: -ENOSPC), attached, bound, looked up. */
function defineVcpuTask(env: IoasidTaskEnv, vmDone: number): void {
  const { k, p, cap, tally } = env;
  k.task('vcpu', 'process', function* (t, args) {
    const j = num(args, 'j');
    const c = num(args, 'c');
    const sid = num(args, 'sid');
    const tl: Required<Pick<Tally, 'vm_allocs' | 'alloc_enospc' | 'alloc_errors' | 'binds' | 'finds' | 'find_mismatch' | 'spid_ok' | 'spid_mismatch'>> = {
      vm_allocs: 0,
      alloc_enospc: 0,
      alloc_errors: 0,
      binds: 0,
      finds: 0,
      find_mismatch: 0,
      spid_ok: 0,
      spid_mismatch: 0,
    };
    for (let n = c; n < p.pasids; n += p.vcpus) {
      // VFIO's PASID allocation ioctl for the guest (the vCPU trapped on its PASID request).
      const id = yield* k.fn.ioasid_alloc(t, sid, 1, cap - 1, vmPriv(j));
      if (id === -ENOSPC) {
        tl.alloc_enospc++;
        continue;
      }
      if (id < 0) {
        tl.alloc_errors++;
        continue;
      }
      tl.vm_allocs++;
      const spid = n + 1;
      if ((yield* k.fn.ioasid_attach_spid(t, sid, id, spid)) !== 0) tl.spid_mismatch++;
      if ((yield* k.fn.ioasid_notify(t, id, IOASID_NOTIFY_BIND)) === 0) tl.binds++;
      tl.finds++;
      if ((yield* k.fn.ioasid_find(t, sid, id)) !== vmPriv(j)) tl.find_mismatch++;
      if ((yield* k.fn.ioasid_find_by_spid(t, sid, spid)) === id) tl.spid_ok++;
      else tl.spid_mismatch++;
    }
    yield* tally(t, tl);
    yield* k.step(t, 'vcpu done', () => void Atomics.add(k.i32, k.mem.statics + vmDone + j, 1));
  });
}

/** A VM: its set, its vCPUs, a quota shrink below what it holds (-EINVAL), the set freed, the views checked. */
function defineVmTask(env: IoasidTaskEnv, vmDone: number): void {
  const { k, p, subs, tally } = env;
  k.task('vm', 'process', function* (t, args) {
    const j = num(args, 'j');
    const sid = yield* k.fn.ioasid_alloc_set(t, vmToken(j), p.quota);
    if (sid < 0) {
      yield* tally(t, { set_errors: 1, vms_done: 1 });
      return;
    }
    yield* tally(t, { sets: 1 });
    for (let c = 0; c < p.vcpus; c++) {
      yield* k.step(t, 'spawn vcpu', (env) => void env.spawn('vcpu', { j, c, sid }, `qemu${j}-vcpu${c}`));
    }
    const done = k.mem.statics + vmDone + j;
    yield k.point(
      t,
      'wait for vcpus',
      () => Atomics.load(k.i32, done) === p.vcpus,
      () => undefined,
      { what: `the vCPUs of qemu${j}` },
    );
    const held = Math.min(p.pasids, p.quota);
    const tl: Tally = {};
    // Rebalancing quotas between VMs may never take a set below what it holds.
    if (held > 1) {
      const r = yield* k.fn.ioasid_adjust_set(t, sid, held - 1);
      if (r === -EINVAL) tl.adjust_einval = 1;
    }
    if ((yield* k.fn.ioasid_adjust_set(t, sid, Math.max(1, held))) === 0) tl.adjust_ok = 1;
    if (subs) {
      const d = yield* ioasid_check_subscribers(k, t, subs, `in qemu${j} before ioasid_free_set(${sid})`);
      tl.view_checks = 1;
      tl.divergent_views = d;
    }
    // The guest is gone: its whole set goes, every subscriber hearing of each ID.
    if ((yield* k.fn.ioasid_free_set(t, sid, true)) === 0) tl.set_frees = 1;
    if (subs) {
      const d = yield* ioasid_check_subscribers(k, t, subs, `in qemu${j} after ioasid_free_set(${sid})`);
      tl.view_checks = (tl.view_checks ?? 0) + 1;
      tl.divergent_views = (tl.divergent_views ?? 0) + d;
    }
    yield* tally(t, { ...tl, vms_done: 1 });
  });
}

/** mode=alloc-free: one task fills the system set's ID space, another frees it all. */
function defineAllocFreeTasks(env: IoasidTaskEnv): void {
  const { k, cap, tally, init, initialTasks } = env;
  k.task('ioasid_fill', 'process', function* (t) {
    yield* init(t);
    const sid = yield* k.fn.ioasid_alloc_system_set(t, cap - 1);
    let allocs = 0;
    let last = 0;
    for (;;) {
      last = yield* k.fn.ioasid_alloc(t, sid, 1, cap - 1, 1);
      if (last < 0) break;
      allocs++;
    }
    yield* tally(t, { bench_allocs: allocs, ...(last === -ENOSPC ? { alloc_enospc: 1 } : { alloc_errors: 1 }) });
    // The frees run as a task of their own, so that a benchmark can tell the two phases apart.
    yield* k.step(t, 'spawn ioasid_drain', (env) => void env.spawn('ioasid_drain', { n: allocs }, 'drain'));
  });
  k.task('ioasid_drain', 'process', function* (t, args) {
    const n = num(args, 'n');
    let frees = 0;
    for (let id = 1; id <= n; id++) if ((yield* k.fn.ioasid_free(t, id)) === 0) frees++;
    yield* tally(t, { bench_frees: frees, free_errors: n - frees, drained: 1 });
  });
  initialTasks.push({ task: 'ioasid_fill', args: null, name: 'fill' });
}

/** mode=find-rcu | find-lock: readers of ioasid_find racing an updater, or driver actors spawning them. */
function defineFindTasks(env: IoasidTaskEnv): void {
  const { k, p, a, cap, counterAt, tally, init, initialTasks, actors } = env;
  const sidWord = k.statics.alloc(1, 'find sid');
  const ready = (): boolean => Atomics.load(k.i32, counterAt('setup_done')) !== 0;
  function* waitReady(t: KTask): KGen<number> {
    yield k.point(t, 'wait for setup', ready, () => undefined, { what: 'the IOASIDs to look up' });
    return yield* k.step(t, 'sid', () => Atomics.load(k.i32, k.mem.statics + sidWord));
  }
  k.task('ioasid_find_reader', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : p.iterations;
    const sid = yield* waitReady(t);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const id = 1 + (i % FIND_IDS);
      const priv = p.mode === 'find-rcu' ? yield* k.fn.ioasid_find(t, sid, id) : yield* ioasid_find_locked(k, t, a, sid, id);
      // The updater flips the low bit: either version is right, anything else is not.
      if (priv >> 1 !== id) bad++;
    }
    yield* tally(t, { finds: n, find_mismatch: bad });
  });
  k.task('ioasid_find_updater', 'process', function* (t, args) {
    const n = typeof args === 'number' ? args : p.iterations;
    yield* waitReady(t);
    for (let i = 0; i < n; i++) {
      const id = 1 + (i % FIND_IDS);
      yield* k.fn.ioasid_set_data(t, id, 2 * id + (i & 1));
    }
  });
  k.task('ioasid_find_setup', 'process', function* (t) {
    yield* init(t);
    const sid = yield* k.fn.ioasid_alloc_system_set(t, cap - 1);
    for (let i = 1; i <= FIND_IDS; i++) {
      const id = yield* k.fn.ioasid_alloc(t, sid, 1, cap - 1, 0);
      if (id > 0) yield* k.fn.ioasid_set_data(t, id, 2 * id);
    }
    yield* k.step(t, 'setup done', () => {
      Atomics.store(k.i32, k.mem.statics + sidWord, sid);
      Atomics.store(k.i32, counterAt('setup_done'), 1);
    });
    if (p.drivers === 0) {
      yield* k.step(t, 'spawn loops', (env) => {
        env.spawn('ioasid_find_updater', p.iterations, 'updater');
        env.spawn('ioasid_find_reader', p.iterations, 'reader0');
        env.spawn('ioasid_find_reader', p.iterations, 'reader1');
      });
    }
  });
  initialTasks.push({ task: 'ioasid_find_setup', args: null, name: 'setup' });
  for (let i = 0; i < p.drivers; i++) {
    actors.push({ name: `driver/${i}`, logic: taskDriver, input: { kind: i === 0 ? 'ioasid_find_updater' : 'ioasid_find_reader' } });
  }
}

/** The workload's counters in shared memory (every thread adds to the same ones). */
interface Counters {
  counterAt(c: Counter): number;
  tally(t: KTask, d: Tally): KGen;
  /** All of them, from the run's shared memory. */
  read(shared: Int32Array): Record<Counter, number>;
}

function defineCounters(k: Kernel): Counters {
  const statics = staticsOffset(k.layout, k.base);
  const counters = k.statics.alloc(COUNTERS.length, 'ioasid counters');
  const index = new Map<Counter, number>(COUNTERS.map((c, i) => [c, i]));
  const counterAt = (c: Counter): number => k.mem.statics + counters + (index.get(c) as number);
  return {
    counterAt,
    tally: (t, d) =>
      k.step(t, 'iommu-sim: count', () => {
        for (const [c, v] of Object.entries(d) as [Counter, number][]) if (v !== 0) Atomics.add(k.i32, counterAt(c), v);
      }),
    read: (shared) => Object.fromEntries(COUNTERS.map((n) => [n, shared[statics + counters + (index.get(n) as number)] as number])) as Record<Counter, number>,
  };
}

/** The allocator's options under the run's policies. */
function ioasidOptions(p: IoasidParams, maxSets: number): IoasidOptions {
  return {
    bits: p.bits,
    lock: p.lock,
    chain: p.chain,
    maxSets,
    bug: p.bug === 'unlocked-quota' ? 'unlocked-quota' : 'none',
    // The find benchmark keeps its IDs for good.
    leakCheck: p.mode !== 'find-rcu' && p.mode !== 'find-lock',
  };
}

/**
 * The benchmarks' kernel: the allocator alone, its shared memory sized for the ID space (the allocator's bitmap
 * and per-ID words, one view word an ID per subscriber).
 */
function benchmarkKernel(p: IoasidParams, maxSets: number): { k: Kernel; a: Ioasid } {
  // Tasks alive at once — each may read under RCU or SRCU, so the reader tables get a slot each (sized as when the
  // benchmarks shared the scenario's kernel, so that their memory layout and figures stay comparable).
  const readerSlots = p.vms * (p.vcpus + 1) + p.drivers + 16;
  const readers = readerTableWords(readerSlots);
  const staticWords = (1 << 14) + readers.rcu + 3 * readers.srcu + ioasidWords(p.bits, maxSets) + (p.subscribers ? ioasidSubscriberWords(p.bits, maxSets) : 0);
  const off = { might_sleep: false, lockdep: false, kasan: false, rcu: false, rcu_stall: false, hung_task: false, soft_lockup: false, deadlock: false, refcount: false, leaks: false };
  const k = new Kernel({
    layout: { stringWords: 1 << 16, stringSlots: 1 << 12, staticWords, arenaWords: 1 << 10, lockdepWords: 1 << 14 },
    hungTaskSecs: p.hungTaskSecs,
    readerSlots,
    ...(p.checkers ? {} : { checkers: off }),
  });
  return { k, a: defineIoasid(k, ioasidOptions(p, maxSets)) };
}

/** The model's parameters for the scenario: the sva preset's defaults, one page a process, system PASIDs. */
function scenarioModelParams(p: IoasidParams): ModelParams {
  return {
    ...SVA_DEFAULTS,
    pages: 1,
    caps: 'ats,pri,pasid',
    pasidBits: DEVICE_PASID_BITS,
    // Seed 003's SVA PASIDs are IDs of the IOASID allocator's system set.
    pasidAlloc: 'system',
    multiDevicePasid: 'refused',
    lock: p.lock,
    free: p.free,
    // Seed 003's era: the io_mm's PASID is the bond's, freed from the bond's own MMU notifier (free_notifier) —
    // where its `free` policy acts; mainline's mm-long PASID and domain notifier came later.
    pasidLife: 'unbind',
    notifier: 'bond',
    bug: 'none',
    kernel: 'none',
    vfio: 'none',
    defaultDomain: 'none',
    drmContexts: 0,
    failAlloc: '',
    hungTaskSecs: p.hungTaskSecs,
  };
}

/** The scenario's kernel: the one model, its IOASID allocator sized to the preset's ID space. */
function scenarioModel(p: IoasidParams, maxSets: number): { k: Kernel; a: Ioasid; m: Model } {
  const P = p.processes;
  const m = buildModel(scenarioModelParams(p), ioasidTopology(p), {
    name: 'ioasid',
    bonds: Math.max(8, P + 8),
    // A process and its SRCU and RCU callbacks (or work item), a VM and its vCPUs, the script's users, the launchers.
    workloadTasks: 3 * P + p.vms * (p.vcpus + 1) + MAX_SCRIPT_USERS + 16,
    ioasid: ioasidOptions(p, maxSets),
    dmaSlots: Math.max(1, P),
    staticWords: (1 << 14) + (p.subscribers ? ioasidSubscriberWords(p.bits, maxSets) : 0),
  });
  const a = ioasidOf(m.k);
  if (!a) throw new Error('ioasid: the model declared no IOASID allocator');
  return { k: m.k, a, m };
}

/** What the counters say went wrong (totals only once everything has run: a run stopped at its first finding has not). */
function counterProblems(p: IoasidParams, P: number, cap: number, c: Record<Counter, number>): string[] {
  const problems: string[] = [];
  if (c.find_mismatch > 0) problems.push(`${c.find_mismatch} ioasid_find lookups returned the wrong private data`);
  if (c.spid_mismatch > 0) problems.push(`${c.spid_mismatch} guest PASID attachments or lookups failed`);
  if (c.alloc_errors > 0) problems.push(`${c.alloc_errors} ioasid_alloc calls failed with an error other than -ENOSPC`);
  if (c.free_errors > 0) problems.push(`${c.free_errors} IOASIDs could not be freed or unbound`);
  if (c.set_errors > 0) problems.push(`${c.set_errors} VMs could not allocate their ioasid_set`);
    if (c.dma_failures > 0) problems.push(`${c.dma_failures} DMA requests of bound processes failed`);
  const finished = p.mode === 'scenario' ? c.exits === P && c.vms_done === p.vms : p.mode === 'alloc-free' ? c.drained === 1 : true;
  if (finished && p.mode === 'scenario' && p.bug === 'none') {
    const held = Math.min(p.pasids, p.quota);
    if (c.vm_allocs !== p.vms * held) problems.push(`VMs allocated ${c.vm_allocs} IOASIDs, expected ${p.vms * held} (quota ${p.quota} each)`);
    if (c.alloc_enospc !== p.vms * (p.pasids - held)) problems.push(`${c.alloc_enospc} allocations failed with -ENOSPC, expected ${p.vms * (p.pasids - held)}`);
    if (held > 1 && c.adjust_einval !== p.vms) problems.push(`${c.adjust_einval} of ${p.vms} quota adjustments below the allocated count refused with -EINVAL`);
  }
  if (finished && p.mode === 'alloc-free' && (c.bench_allocs !== cap - 1 || c.bench_frees !== cap - 1 || c.alloc_enospc !== 1)) {
    problems.push(`allocated ${c.bench_allocs} and freed ${c.bench_frees} of ${cap - 1} IOASIDs (${c.alloc_enospc} -ENOSPC at the end)`);
  }
  return problems;
}

/** Build the workload and keep its model (tests look at the allocator's and the subscribers' state). */
export function buildIoasid(raw: Readonly<Record<string, Wire>>): { workload: Workload; model: IoasidModel } {
  const p = ioasidParams(raw);
  const scenario = p.mode === 'scenario';
  const P = scenario ? p.processes : 0;
  const maxSets = Math.max(8, p.vms + 2);
  const { k, a, m } = scenario ? scenarioModel(p, maxSets) : { ...benchmarkKernel(p, maxSets), m: undefined };
  const subs = p.subscribers
    ? defineIoasidSubscribers(k, a, { driver: INTEL_SVM_IOASID, kvmToken: vmToken(0), sleeper: p.sleeper, bug: p.bug === 'notify-stop' ? 'notify-stop' : 'none' })
    : undefined;
  const cap = a.storage;
  const { counterAt, tally, read } = defineCounters(k);

  /** The subscribers register at their module init, before anything is allocated. */
  function* init(t: KTask): KGen<number> {
    const r = yield* k.fn.ioasid_install_capacity(t, cap);
    if (r < 0) throw new Error(`ioasid_install_capacity: ${r}`);
    if (subs) yield* ioasid_subscribers_register(k, t, subs);
    return 0;
  }

  const initialTasks: { task: string; args: Wire; name?: string }[] = [];
  // The units, devices and mms of the model; the find benchmark's drivers.
  const actors: ActorSpec[] = [...(m?.specs ?? [])];
  const env: IoasidTaskEnv = { k, p, P, a, subs, cap, counterAt, tally, init, initialTasks, actors };
  if (m) defineScenarioTasks(env, m);
  else if (p.mode === 'alloc-free') defineAllocFreeTasks(env);
  else defineFindTasks(env);
  // Last: every kernel function of the run is registered (the allocator's, its subscribers', the model's).
  if (m) applyModelPatches(m, patchFiles(p));

  const workload: Workload = {
    name: 'ioasid',
    params: { ...p },
    actors,
    initial: [],
    initialTasks,
    sharedWords: k.words,
    hotEvents: { ...HW_HOT_EVENTS, go: ['n'] },
    sharedEvents: HW_SHARED_EVENTS,
    footprintOf: m?.footprintOf,
    tasks: k.taskFactories,
    monitor: k,
    check: (_finals, shared) => {
      const c = read(shared);
      const problems = counterProblems(p, P, cap, c);
      const counters: Record<string, number> = {};
      for (const n of COUNTERS) if (c[n] !== 0 || n === 'find_mismatch') counters[n] = c[n];
      return { ok: problems.length === 0, problems, counters };
    },
  };
  return { workload, model: { k, a, subs, params: p, model: m } };
}

export function ioasidWorkload(raw: Readonly<Record<string, Wire>>): Workload {
  return buildIoasid(raw).workload;
}
