// drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c: the SMMUv3 driver — the command queue (arm_smmu_cmdq_issue_cmdlist
// with CMD_SYNC, polled on the CPU), the entry writer that updates an STE or a CD in place without the SMMU ever
// seeing a half-written configuration (arm_smmu_write_entry: the unused qwords, sync, the one critical qword,
// sync — or, when more than one used qword changes, V cleared first), the stream table (arm_smmu_write_ste), the
// context-descriptor tables (linear, or two-level with each leaf allocated on first use: arm_smmu_alloc_cd_ptr),
// TLB invalidation by ASID and by range and ATC invalidation, the event queue's thread (a stalled fault reported
// to io-pgfault.c and resumed with CMD_RESUME) and the PRI queue's (a page request denied), and
// the blocked domain (an abort STE; a CD-table STE whose S1DSS terminates the RID's requests while PASIDs use the
// table; a PASID blocked by clearing its CD). Locks: arm_smmu_asid_lock (a mutex, around the STE/CD installs and
// the blocked domain's), the domain's devices_lock (a spinlock, taken also from the MMU notifier's atomic
// context), and the command queue's lock. The SMMU itself is hw.ts; the SVA half of the driver, arm-smmu-v3-sva.ts
// (mainline) and arm-smmu-v3-sva-era.ts (the sva_lock era, notifier=bond, whose arm_smmu_sync_cd takes devices_lock).
import { IOMMU_NO_PASID, type IommuDomain, type IommuDomainOps, type IommuOps } from '../../core/ops.js';
import { type DeviceInfo, RESP_FAILURE, RESP_SUCCESS, SVM_FLAG_SUPERVISOR_MODE, type SvaNotifier } from '../../core/types.js';
import type { IopfEnable } from '../../core/io-pgfault.js';
import { iopf_queue_alloc } from '../../core/io-pgfault.js';
import type { Stats } from '../../core/stats.js';
import type { KTask } from '../../kernel/context.js';
import { EBUSY, EINVAL, ENOMEM, EOPNOTSUPP } from '../../kernel/errno.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../../kernel/mutex.js';
import { defineSpinlock, type Spinlock, spin_lock_irqsave, spin_unlock_irqrestore } from '../../kernel/spinlock.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import { attachDomain, type DriverEnv, detachOnRelease, domainMm, type EntryOps } from '../driver.js';
import { entryFormat, type FlavourSpec } from '../flavour.js';
import { drainPrq, defineUnitDriver, iopfForDomainRemove, iopfSetDevPasid, type UnitDriver } from '../queue.js';
import { ARM_SMMU_V3_COST_TABLE } from './costs.js';
import type { Vendor } from '../vendor.js';
import {
  arm_smmu_cmdq_build_cmd,
  CMDQ_ENT,
  EVTQ_ENT,
  ARM_SMMU_CD,
  CD_MAIR,
  CD_WORDS,
  CMDQ_OP_ATC_INV,
  CMDQ_OP_CFGI_CD,
  CMDQ_OP_CFGI_STE,
  CMDQ_OP_CMD_SYNC,
  CMDQ_OP_NAMES,
  CMDQ_OP_PRI_RESP,
  CMDQ_OP_TLBI_NH_ASID,
  CMDQ_OP_TLBI_NH_VA,
  type CmdqEnt,
  CTXDESC_CD_0_ASID_SHIFT,
  CTXDESC_CD_0_HI_AA64_R_A,
  CTXDESC_CD_0_TCR_EPD0,
  CTXDESC_CD_0_V,
  CTXDESC_L1_DESC_V,
  CTXDESC_L2_ENTRIES,
  CTXDESC_SPLIT,
  EVENT_STR,
  EVT_ID_TRANSLATION_FAULT,
  NUM_ENTRY_QWORDS,
  PRI_RESP_DENY,
  CMDQ_OP_RESUME,
  CMDQ_RESUME_0_RESP_ABORT,
  CMDQ_RESUME_0_RESP_RETRY,
  STE_WORDS,
  STRTAB_STE_0_CFG_ABORT,
  STRTAB_STE_0_CFG_S1_TRANS,
  STRTAB_STE_0_CFG_SHIFT,
  STRTAB_STE_0_S1FMT_64K_L2,
  STRTAB_STE_0_S1FMT_SHIFT,
  STRTAB_STE_0_V,
  STRTAB_STE_1_S1DSS_SSID0,
  STRTAB_STE_1_S1DSS_TERMINATE,
  steCfg,
} from './arm-smmu-v3.h.js';
import { type ArmSmmuEvent, ArmSmmuHardware, ArmSmmuUnit } from './hw.js';
import { defineSvaFunctions } from './arm-smmu-v3-sva.js';
import { eraSyncCd } from './arm-smmu-v3-sva-era.js';

export const ARM_SMMU_V3_C = 'drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c';
const C = ARM_SMMU_V3_C;

/** arm_smmu_make_abort_ste's data[0] (the rest zero). */
export const ABORT_STE = STRTAB_STE_0_V | (STRTAB_STE_0_CFG_ABORT << STRTAB_STE_0_CFG_SHIFT);

export const SMMUV3: FlavourSpec = {
  flavour: 'smmuv3',
  names: { cmdqLock: 'cmdq->q.lock', drainPrq: 'arm_smmu_flush_priq', pageResponse: 'arm_smmu_page_response' },
  unitName: (i) => `smmu${i}`,
  entryName: 'CD',
  // The CD as the SMMU assembles it: translating when V is set and EPD0 (the quiet CD's) is not.
  entry: entryFormat(ARM_SMMU_CD, {
    fetch: ['q0lo', 'q0hi', 'q1lo'],
    present: (w) => ((w[0] ?? 0) & CTXDESC_CD_0_V) !== 0 && ((w[0] ?? 0) & CTXDESC_CD_0_TCR_EPD0) === 0,
    mmOf: (w) => w[2] ?? 0,
    asidOf: (w) => (w[1] ?? 0) >>> CTXDESC_CD_0_ASID_SHIFT,
  }),
  // data[0] of the STE (hw.ts reads the whole STE: ArmSmmuUnit.blocks).
  deviceEntry: {
    name: 'STE',
    atProbe: STRTAB_STE_0_V | (STRTAB_STE_0_CFG_S1_TRANS << STRTAB_STE_0_CFG_SHIFT),
    blocks: (w) => (w & STRTAB_STE_0_V) === 0 || steCfg(w) === STRTAB_STE_0_CFG_ABORT,
  },
  tlbTag: 'asid',
  cmdqName: 'cmdq',
  prqName: 'PRI queue',
  prqThread: 'arm_smmu_priq_thread',
  commandNames: { 1: 'CMD_TLBI_NH_VA', 2: 'CMD_CFGI_CD', 3: 'CMD_ATC_INV', 4: 'CMD_PRI_RESP', 5: 'CMD_SYNC' },
};

/** struct arm_smmu_entry_writer: whose entry it writes, so that its sync is the right CFGI. */
export type EntryWriter = { readonly kind: 'cd'; readonly dev: DeviceInfo; readonly ssid: number } | { readonly kind: 'ste'; readonly dev: DeviceInfo };

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    /** Queue cmds (and a CMD_SYNC when `sync`) on SMMU `smmu`'s command queue; with a sync, poll until it completes. */
    arm_smmu_cmdq_issue_cmdlist(t: KTask, smmu: number, cmds: readonly CmdqEnt[], sync: boolean): KGen;
    /** An arm_smmu_cmdq_ent encoded as the command queue's entry: its four words (pure). */
    arm_smmu_cmdq_build_cmd(ent: CmdqEnt): [number, number, number, number];
    arm_smmu_sync_cd(t: KTask, dev: DeviceInfo, ssid: number, leaf: boolean): KGen;
    arm_smmu_write_entry(t: KTask, writer: EntryWriter, entry: number, target: readonly number[]): KGen;
    arm_smmu_write_cd_entry(t: KTask, dev: DeviceInfo, ssid: number, cdptr: number, target: readonly number[]): KGen;
    arm_smmu_write_ste(t: KTask, dev: DeviceInfo, target: readonly number[]): KGen;
    arm_smmu_install_ste_for_dev(t: KTask, dev: DeviceInfo, target: readonly number[]): KGen;
    /** The CD of {dev, ssid} (its word offset), 0 when its leaf is not allocated. */
    arm_smmu_get_cd_ptr(dev: DeviceInfo, ssid: number): number;
    arm_smmu_alloc_cd_ptr(t: KTask, dev: DeviceInfo, ssid: number): KGen<number>;
    arm_smmu_clear_cd(t: KTask, dev: DeviceInfo, ssid: number): KGen;
    arm_smmu_tlb_inv_asid(t: KTask, smmu: number, asid: number): KGen;
    arm_smmu_tlb_inv_range_asid(t: KTask, smmu: number, asid: number, start: number, end: number): KGen;
    arm_smmu_atc_inv_master(t: KTask, dev: DeviceInfo, ssid: number): KGen;
    /** model: the domain's masters are the one {dev, ssid} the core names (it calls the driver per device). */
    arm_smmu_atc_inv_domain(t: KTask, dev: DeviceInfo, ssid: number, start: number, end: number): KGen;
    arm_smmu_set_pasid(t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number): KGen<number>;
    arm_smmu_release_device(t: KTask, dev: DeviceInfo, domain: IommuDomain): KGen;
    arm_smmu_attach_dev_blocked(t: KTask, dev: DeviceInfo): KGen<number>;
    arm_smmu_blocking_set_dev_pasid(t: KTask, dev: DeviceInfo, pasid: number, old: IommuDomain): KGen<number>;
    arm_smmu_page_response(t: KTask, dev: DeviceInfo, pasid: number, grpid: number, code: number): KGen;
    arm_smmu_handle_event(t: KTask, smmu: number, evt: ArmSmmuEvent): KGen<number>;
    arm_smmu_dump_event(t: KTask, smmu: number, evt: ArmSmmuEvent): KGen;
    arm_smmu_handle_ppr(t: KTask, smmu: number, req: PriqRequest): KGen;
  }
}

/** The driver's locks (one set per kernel). */
export interface ArmSmmuLocks {
  readonly asid: Mutex;
  readonly devices: Spinlock;
}

export function smmuOf(env: DriverEnv, index: number): { drv: UnitDriver; u: ArmSmmuUnit } {
  const drv = env.units[index];
  if (!drv || !(drv.unit instanceof ArmSmmuUnit)) throw new Error(`unit ${index} is not an SMMUv3`);
  return { drv, u: drv.unit };
}

/** Is the CD at cdptr valid (CTXDESC_CD_0_V)? */
export function cdValidAt(k: Kernel, cdptr: number): boolean {
  return cdptr !== 0 && ((k.i32[cdptr] as number) & CTXDESC_CD_0_V) !== 0;
}

/** The 16 words of an entry. */
function readEntry(k: Kernel, at: number): number[] {
  return Array.from({ length: NUM_ENTRY_QWORDS * 2 }, (_, i) => k.i32[at + i] as number);
}

/**
 * arm_smmu_make_s1_cd / arm_smmu_make_sva_cd: V, the ASID, TTB0 = the page table of mm (the model: its id + 1),
 * the CPU's MAIR. With no mm, the quiet CD: V kept, EPD0 set — TTB0's walks disabled, no C_BAD_CD from DMA still
 * running.
 */
export function arm_smmu_make_sva_cd(mm: MmStruct | undefined, asid: number): number[] {
  const w = new Array<number>(CD_WORDS).fill(0);
  w[0] = CTXDESC_CD_0_V | (mm ? 0 : CTXDESC_CD_0_TCR_EPD0);
  w[1] = CTXDESC_CD_0_HI_AA64_R_A | (asid << CTXDESC_CD_0_ASID_SHIFT);
  w[2] = mm ? mm.id + 1 : 0;
  w[6] = CD_MAIR;
  return w;
}

/** arm_smmu_make_cdtable_ste: the master's CD table, requests without an SSID per s1dss. */
function cdtableSte(u: ArmSmmuUnit, dev: DeviceInfo, s1dss: number): number[] {
  const w = u.probeSte(dev.index);
  w[2] = ((w[2] as number) & ~3) | s1dss;
  return w;
}

/** arm_smmu_make_abort_ste. */
function abortSte(): number[] {
  const w = new Array<number>(STE_WORDS).fill(0);
  w[0] = ABORT_STE;
  return w;
}

/**
 * arm_smmu_get_cd_used / arm_smmu_get_ste_used: the bits of each word the SMMU uses in this entry. A CD: V alone
 * while invalid, everything once valid but TTB0 under EPD0. An STE: V, then Config, then with a CD table S1Fmt,
 * S1ContextPtr, S1CDMax (data[0]) and S1DSS, EATS (data[1]).
 */
function getUsed(kind: EntryWriter['kind'], ent: readonly number[]): number[] {
  const used = new Array<number>(NUM_ENTRY_QWORDS * 2).fill(0);
  const e0 = ent[0] as number;
  if (kind === 'cd') {
    used[0] = CTXDESC_CD_0_V;
    if ((e0 & CTXDESC_CD_0_V) === 0) return used;
    used.fill(-1);
    if ((e0 & CTXDESC_CD_0_TCR_EPD0) !== 0) {
      used[2] = 0;
      used[3] = 0;
    }
    return used;
  }
  used[0] = STRTAB_STE_0_V;
  if ((e0 & STRTAB_STE_0_V) === 0) return used;
  used[0] |= 7 << STRTAB_STE_0_CFG_SHIFT;
  if (steCfg(e0) === STRTAB_STE_0_CFG_S1_TRANS) {
    used[0] |= 3 << STRTAB_STE_0_S1FMT_SHIFT;
    used[1] = -1;
    used[2] = 3 | (3 << 28);
  }
  return used;
}

/**
 * arm_smmu_entry_qword_diff: the qwords whose used bits must change (a bitmask) once every bit the current entry
 * does not use has been moved to the target's value (`unused`, returned).
 */
function qwordDiff(kind: EntryWriter['kind'], entry: readonly number[], target: readonly number[]): { diff: number; unused: number[] } {
  const curUsed = getUsed(kind, entry);
  const targetUsed = getUsed(kind, target);
  const unused = new Array<number>(entry.length).fill(0);
  let diff = 0;
  for (let w = 0; w < entry.length; w++) {
    const cu = curUsed[w] as number;
    unused[w] = ((entry[w] as number) & cu) | ((target[w] as number) & ~cu);
    if (((unused[w] as number) & (targetUsed[w] as number)) !== (target[w] as number)) diff |= 1 << (w >> 1);
  }
  return { diff, unused };
}

const popcount = (x: number): number => {
  let n = 0;
  for (let v = x; v !== 0; v &= v - 1) n++;
  return n;
};

/** Define the driver's kernel functions (once per kernel: every SMMU shares them). */
function defineSmmuFunctions(env: DriverEnv, era: SvaNotifier): ArmSmmuLocks {
  const k = env.k;
  const known = locksOf.get(k);
  if (known) return known;
  const locks: ArmSmmuLocks = { asid: defineMutex(k, 'arm_smmu_asid_lock'), devices: defineSpinlock(k, '&smmu_domain->devices_lock') };
  locksOf.set(k, locks);
  defineCmdq(env);
  defineEntryWriter(env, locks, era);
  defineCdTables(env);
  defineInvalidation(env, locks);
  defineBlocked(env, locks);
  defineSvaFunctions(env, locks, era);
  return locks;
}
const locksOf = new WeakMap<Kernel, ArmSmmuLocks>();

/** The kernel's arm_smmu_asid_lock and devices_lock (for tools and tests). */
export const armSmmuLocksOf = (k: Kernel): ArmSmmuLocks | undefined => locksOf.get(k);

/** "CMD_CFGI_CD+CMD_SYNC": a batch as the trace names it. */
function label(cmds: readonly CmdqEnt[], sync: boolean): string {
  const names = cmds.map((c) => CMDQ_OP_NAMES[c.opcode]);
  if (sync) names.push(CMDQ_OP_NAMES[CMDQ_OP_CMD_SYNC]);
  return names.join('+');
}

/** arm_smmu_cmdq_issue_cmdlist, in batches that fit the queue with their CMD_SYNC (arm_smmu_cmdq_batch_add). */
function defineCmdq(env: DriverEnv): void {
  const k = env.k;
  k.fns.defineSync('arm_smmu_cmdq_build_cmd', C, arm_smmu_cmdq_build_cmd);
  k.fns.define('arm_smmu_cmdq_issue_cmdlist', C, function* (t, smmu, cmds, sync) {
    const { drv, u } = smmuOf(env, smmu);
    const room = u.opts.queueDepth - 1;
    for (let i = 0; i === 0 || i < cmds.length; i += room) {
      const batch = cmds.slice(i, i + room);
      const last = i + room >= cmds.length;
      yield* issueBatch(env, t, drv, u, batch, sync || !last);
    }
  });
  // The answer to a stall: CMD_RESUME with the stall's tag (the fault's grpid), RETRY on success, ABORT otherwise.
  k.fns.define('arm_smmu_page_response', C, (t, dev, _pasid, grpid, code) => {
    const resp = code === RESP_SUCCESS ? CMDQ_RESUME_0_RESP_RETRY : CMDQ_RESUME_0_RESP_ABORT;
    // "Don't send a SYNC, it doesn't do anything for RESUME or PRI_RESP."
    return k.fn.arm_smmu_cmdq_issue_cmdlist(t, dev.iommu, [{ opcode: CMDQ_OP_RESUME, sid: dev.index, stag: grpid, resp }], false);
  });
}

/** The footprint of a step that touches no shared memory (the model keeps the list it walks in the driver's objects). */
const NOTHING: Footprint = [];

/**
 * cmdqInsert's words (computed from CMDQ_PROD: the slots are shared state): PROD, CONS read, the CMD_SYNC's
 * sequence, the invalidations counter and each slot's four words.
 */
function cmdqInsertFootprint(u: ArmSmmuUnit, need: number, sync: boolean, stats: Stats): Footprint {
  const prodAt = u.queueReg('cmdq_prod');
  const prod = Atomics.load(u.kernel.i32, prodAt);
  const fp = [prodAt, read(u.queueReg('cmdq_cons')), stats.wordOf('invalidations')];
  if (sync) fp.push(u.queueReg('sync_seq'));
  for (let i = 0; i < need; i++) {
    const at = u.cmdqSlot(prod + i);
    for (let w = 0; w < CMDQ_ENT.words; w++) fp.push(at + w);
  }
  return fp;
}

/** evtqRemove's words (computed: whether the queue is empty is shared state). */
function evtqRemoveFootprint(u: ArmSmmuUnit): Footprint {
  const consAt = u.queueReg('evtq_cons');
  const prodAt = u.queueReg('evtq_prod');
  const cons = Atomics.load(u.kernel.i32, consAt);
  if (cons === Atomics.load(u.kernel.i32, prodAt)) return [read(consAt), read(prodAt), u.queueReg('evtq_active')];
  const fp = [consAt, read(prodAt)];
  const at = u.evtqSlot(cons);
  for (let w = 0; w < EVTQ_ENT.words; w++) fp.push(read(at + w));
  return fp;
}

function* issueBatch(env: DriverEnv, t: KTask, drv: UnitDriver, u: ArmSmmuUnit, cmds: readonly CmdqEnt[], sync: boolean): KGen {
  const k = env.k;
  const what = label(cmds, sync);
  const need = cmds.length + (sync ? 1 : 0);
  let seq = 0;
  for (;;) {
    const flags = yield* spin_lock_irqsave(k, t, drv.lock);
    const written = yield* k.stepOn(t, `cmdq: ${what}`, () => cmdqInsertFootprint(u, need, sync, env.stats), (e) => {
      if (u.cmdqSpace() < need) return false;
      seq = u.cmdqInsert(cmds, sync);
      env.stats.add('invalidations', cmds.filter((c) => c.opcode !== CMDQ_OP_PRI_RESP && c.opcode !== CMDQ_OP_RESUME).length);
      e.send(u.actor, { type: 'cmdq.doorbell' });
      return true;
    });
    yield* spin_unlock_irqrestore(k, t, drv.lock, flags);
    if (written) break;
    // The queue is full: spin until the SMMU's CONS makes room (arm_smmu_cmdq_poll_until_not_full).
    yield k.point(t, 'cmdq full', () => u.cmdqSpace() >= need, () => undefined, { what: `room in ${u.name}'s cmdq`, spins: true }, [
      read(u.queueReg('cmdq_prod')),
      read(u.queueReg('cmdq_cons')),
    ]);
  }
  if (!sync) return;
  yield* k.call(
    t,
    'arm_smmu_cmdq_poll_until_sync',
    (function* () {
      yield k.point(
        t,
        `CMD_SYNC ${seq}`,
        () => u.syncDone(seq),
        () => undefined,
        { what: `${u.name}'s cmdq to complete CMD_SYNC ${seq} (${what})`, spins: true },
        [read(u.queueReg('sync_done'))],
      );
    })(),
  );
}

/** arm_smmu_write_entry and its writers' syncs (arm_smmu_cd_writer_sync_entry, arm_smmu_ste_writer_sync_entry). */
function defineEntryWriter(env: DriverEnv, locks: ArmSmmuLocks, era: SvaNotifier): void {
  const k = env.k;
  const sync = (t: KTask, w: EntryWriter): KGen =>
    w.kind === 'cd'
      ? k.fn.arm_smmu_sync_cd(t, w.dev, w.ssid, true)
      : k.fn.arm_smmu_cmdq_issue_cmdlist(t, w.dev.iommu, [{ opcode: CMDQ_OP_CFGI_STE, sid: w.dev.index, leaf: true }], true);
  /** entry_set: WRITE_ONCE each qword of [start, start + len) that differs, then sync if any did. */
  function* entrySet(t: KTask, w: EntryWriter, entry: number, target: readonly number[], start: number, len: number): KGen<boolean> {
    let changed = false;
    const name = w.kind === 'cd' ? 'cdptr' : 'ste';
    for (let q = start; q < start + len; q++) {
      const lo = target[2 * q] as number;
      const hi = target[2 * q + 1] as number;
      if ((k.i32[entry + 2 * q] as number) === lo && (k.i32[entry + 2 * q + 1] as number) === hi) continue;
      yield* k.stepOn(t, `WRITE_ONCE(${name}->data[${q}])`, [entry + 2 * q, entry + 2 * q + 1], () => {
        Atomics.store(k.i32, entry + 2 * q, lo);
        Atomics.store(k.i32, entry + 2 * q + 1, hi);
      });
      changed = true;
    }
    if (changed) yield* sync(t, w);
    return changed;
  }
  k.fns.define('arm_smmu_write_entry', C, function* (t, w, entry, target) {
    if (w.kind === 'ste') materializeSte(env, w.dev, entry);
    const cur = readEntry(k, entry);
    const { diff, unused } = qwordDiff(w.kind, cur, target);
    const n = NUM_ENTRY_QWORDS;
    if (popcount(diff) === 1) {
      // Hitless: the bits the SMMU ignores now, then the one critical qword, then what the target no longer uses.
      const critical = Math.log2(diff & -diff);
      unused[2 * critical] = cur[2 * critical] as number;
      unused[2 * critical + 1] = cur[2 * critical + 1] as number;
      yield* entrySet(t, w, entry, unused, 0, n);
      yield* entrySet(t, w, entry, target, critical, 1);
      yield* entrySet(t, w, entry, target, 0, n);
    } else if (diff !== 0) {
      // A breaking update: V cleared first, every other qword, then qword 0.
      unused[0] = 0;
      unused[1] = 0;
      yield* entrySet(t, w, entry, unused, 0, 1);
      yield* entrySet(t, w, entry, target, 1, n - 1);
      yield* entrySet(t, w, entry, target, 0, 1);
    } else {
      yield* entrySet(t, w, entry, target, 0, n);
    }
  });
  // Mainline syncs one master's CD; the sva_lock era's (notifier=bond) walked the domain's masters under devices_lock.
  k.fns.definePolicy('arm_smmu_sync_cd', C, 'notifier', era, {
    domain: (t, dev, ssid, leaf) => k.fn.arm_smmu_cmdq_issue_cmdlist(t, dev.iommu, [{ opcode: CMDQ_OP_CFGI_CD, sid: dev.index, ssid, leaf }], true),
    bond: eraSyncCd(env, locks),
  });
  k.fns.define('arm_smmu_write_ste', C, (t, dev, target) => k.fn.arm_smmu_write_entry(t, { kind: 'ste', dev }, smmuOf(env, dev.iommu).u.steAddr(dev.index), target));
  k.fns.define('arm_smmu_install_ste_for_dev', C, (t, dev, target) => k.fn.arm_smmu_write_ste(t, dev, target));
}

/**
 * An STE the model's memory still holds as zeroes reads as the one written at probe (ArmSmmuUnit.probeSte): the
 * first write of it puts that STE in memory first — the same STE, so the SMMU sees no change.
 */
function materializeSte(env: DriverEnv, dev: DeviceInfo, at: number): void {
  const k = env.k;
  if ((k.i32[at] as number) !== 0) return;
  smmuOf(env, dev.iommu)
    .u.probeSte(dev.index)
    .forEach((v, i) => {
      Atomics.store(k.i32, at + i, v);
    });
}

/** The context-descriptor tables: arm_smmu_get_cd_ptr, arm_smmu_alloc_cd_ptr, arm_smmu_write_cd_entry, arm_smmu_clear_cd. */
function defineCdTables(env: DriverEnv): void {
  const k = env.k;
  k.fns.defineSync('arm_smmu_get_cd_ptr', C, (dev, ssid) => {
    const u = smmuOf(env, dev.iommu).u;
    const cfg = u.cdTableCfg(dev.index);
    if (ssid >= 1 << cfg.s1cdmax) return 0;
    if (cfg.s1fmt !== STRTAB_STE_0_S1FMT_64K_L2) return k.mem.statics + cfg.cdtab + ssid * CD_WORDS;
    const l2 = k.i32[u.l2ptrAddr(dev.index, ssid)] as number;
    return l2 === 0 ? 0 : k.mem.statics + l2 + (ssid & (CTXDESC_L2_ENTRIES - 1)) * CD_WORDS;
  });
  k.fns.define('arm_smmu_alloc_cd_ptr', C, function* (t, dev, ssid) {
    const u = smmuOf(env, dev.iommu).u;
    if (u.cdTableCfg(dev.index).s1fmt === STRTAB_STE_0_S1FMT_64K_L2 && k.fn.arm_smmu_get_cd_ptr(dev, ssid) === 0) {
      // An L2 table is allocated on demand (dma_alloc_coherent, GFP_KERNEL), then its L1 descriptor written.
      k.mightSleep(t, 'kernel/dma/mapping.c:619');
      const idx = ssid >> CTXDESC_SPLIT;
      const leaf = u.leafMemory(dev.index, idx);
      const leafWords = Array.from({ length: CTXDESC_L2_ENTRIES * CD_WORDS }, (_, w) => k.mem.statics + leaf + w);
      const l2ptr = u.l2ptrAddr(dev.index, ssid);
      yield* k.stepOn(t, 'dma_alloc_coherent(CTXDESC_L2_ENTRIES * sizeof(struct arm_smmu_cd))', [...leafWords, l2ptr], () => {
        k.i32.fill(0, k.mem.statics + leaf, k.mem.statics + leaf + CTXDESC_L2_ENTRIES * CD_WORDS);
        Atomics.store(k.i32, l2ptr, leaf);
      });
      const l1 = u.l1DescAddr(dev.index, ssid);
      yield* k.stepOn(t, 'arm_smmu_write_cd_l1_desc', [l1, l1 + 1], () => {
        Atomics.store(k.i32, l1 + 1, leaf);
        Atomics.store(k.i32, l1, CTXDESC_L1_DESC_V);
      });
      // An invalid L1CD can be cached.
      yield* k.fn.arm_smmu_sync_cd(t, dev, ssid, false);
    }
    return k.fn.arm_smmu_get_cd_ptr(dev, ssid);
  });
  k.fns.define('arm_smmu_write_cd_entry', C, function* (t, dev, ssid, cdptr, target) {
    const curValid = cdValidAt(k, cdptr);
    const targetValid = ((target[0] as number) & CTXDESC_CD_0_V) !== 0;
    if (ssid !== IOMMU_NO_PASID && curValid !== targetValid) {
      const at = smmuOf(env, dev.iommu).u.usedSsidsAddr(dev.index);
      yield* k.stepOn(t, targetValid ? 'cd_table->used_ssids++' : 'cd_table->used_ssids--', [at], () => void Atomics.add(k.i32, at, targetValid ? 1 : -1));
    }
    yield* k.fn.arm_smmu_write_entry(t, { kind: 'cd', dev, ssid }, cdptr, target);
  });
  k.fns.define('arm_smmu_clear_cd', C, function* (t, dev, ssid) {
    const cdptr = k.fn.arm_smmu_get_cd_ptr(dev, ssid);
    if (cdptr === 0) return;
    yield* k.fn.arm_smmu_write_cd_entry(t, dev, ssid, cdptr, new Array<number>(CD_WORDS).fill(0));
  });
}

/** TLBI by ASID and by range, ATC invalidation of a master or of a domain's masters. */
function defineInvalidation(env: DriverEnv, locks: ArmSmmuLocks): void {
  const k = env.k;
  k.fns.define('arm_smmu_tlb_inv_asid', C, (t, smmu, asid) => k.fn.arm_smmu_cmdq_issue_cmdlist(t, smmu, [{ opcode: CMDQ_OP_TLBI_NH_ASID, asid }], true));
  // With ARM_SMMU_FEAT_RANGE_INV: one TLBI_NH_VA covering the range.
  k.fns.define('arm_smmu_tlb_inv_range_asid', C, (t, smmu, asid, start, end) =>
    k.fn.arm_smmu_cmdq_issue_cmdlist(t, smmu, [{ opcode: CMDQ_OP_TLBI_NH_VA, asid, start, pages: end - start }], true),
  );
  // The model's devices cache translations in their ATC whatever their capabilities say: always ATS-enabled.
  k.fns.define('arm_smmu_atc_inv_master', C, (t, dev, ssid) =>
    k.fn.arm_smmu_cmdq_issue_cmdlist(t, dev.iommu, [{ opcode: CMDQ_OP_ATC_INV, sid: dev.index, ssid, start: 0, pages: 0 }], true),
  );
  k.fns.define('arm_smmu_atc_inv_domain', C, function* (t, dev, ssid, start, end) {
    const whole = start < 0 || end <= start;
    const flags = yield* spin_lock_irqsave(k, t, locks.devices);
    const cmds = yield* k.stepOn(t, 'list_for_each_entry(master_domain, &smmu_domain->devices): arm_smmu_atc_inv_to_cmd', NOTHING, (): CmdqEnt[] => [
      { opcode: CMDQ_OP_ATC_INV, sid: dev.index, ssid, start: whole ? 0 : start, pages: whole ? 0 : end - start },
    ]);
    yield* spin_unlock_irqrestore(k, t, locks.devices, flags);
    yield* k.fn.arm_smmu_cmdq_issue_cmdlist(t, dev.iommu, cmds, true);
  });
}

/**
 * What is left of a domain on {dev, ssid} once its CD is cleared: the ATC (arm_smmu_atc_inv_master), the master
 * off the domain's list (arm_smmu_remove_master_domain, under devices_lock), then — model: mainline does it when the
 * domain is freed (arm_smmu_sva_domain_free, arm_smmu_domain_free_paging), and the model's core gives the driver no
 * domain_free — the ASID's TLB entries.
 */
function* afterClear(env: DriverEnv, locks: ArmSmmuLocks, t: KTask, dev: DeviceInfo, ssid: number, asid: number | undefined): KGen {
  const k = env.k;
  yield* k.fn.arm_smmu_atc_inv_master(t, dev, ssid);
  yield* k.call(
    t,
    'arm_smmu_remove_master_domain',
    (function* () {
      const flags = yield* spin_lock_irqsave(k, t, locks.devices);
      yield* k.stepOn(t, 'list_del(&master_domain->devices_elm)', NOTHING, () => undefined);
      yield* spin_unlock_irqrestore(k, t, locks.devices, flags);
    })(),
  );
  if (asid !== undefined) yield* k.fn.arm_smmu_tlb_inv_asid(t, dev.iommu, asid);
}

/** The ASID of the valid CD at cdptr. */
function cdAsid(k: Kernel, cdptr: number): number | undefined {
  return cdValidAt(k, cdptr) ? (k.i32[cdptr + 1] as number) >>> CTXDESC_CD_0_ASID_SHIFT : undefined;
}

/** The blocked domain's ops (arm_smmu_blocked_domain), the paging domains' set_pasid, release_device. */
function defineBlocked(env: DriverEnv, locks: ArmSmmuLocks): void {
  const k = env.k;
  const usedSsids = (dev: DeviceInfo): number => k.i32[smmuOf(env, dev.iommu).u.usedSsidsAddr(dev.index)] as number;
  k.fns.define('arm_smmu_attach_dev_blocked', C, function* (t, dev) {
    const u = smmuOf(env, dev.iommu).u;
    yield* mutex_lock(k, t, locks.asid);
    const inUse = yield* k.stepOn(t, 'arm_smmu_ssids_in_use(&master->cd_table)', [read(u.usedSsidsAddr(dev.index))], () => usedSsids(dev) > 0);
    yield* k.fn.arm_smmu_install_ste_for_dev(t, dev, inUse ? cdtableSte(u, dev, STRTAB_STE_1_S1DSS_TERMINATE) : abortSte());
    yield* mutex_unlock(k, t, locks.asid);
    // "It's likely that we'll need to clear the CD but it's safe to try."
    const cdptr = k.fn.arm_smmu_get_cd_ptr(dev, IOMMU_NO_PASID);
    const asid = cdAsid(k, cdptr);
    yield* k.fn.arm_smmu_clear_cd(t, dev, IOMMU_NO_PASID);
    if (asid !== undefined) yield* afterClear(env, locks, t, dev, IOMMU_NO_PASID, asid);
    return 0;
  });
  k.fns.define('arm_smmu_blocking_set_dev_pasid', C, function* (t, dev, pasid, old) {
    const u = smmuOf(env, dev.iommu);
    const asid = old.mm?.asid ?? cdAsid(k, k.fn.arm_smmu_get_cd_ptr(dev, pasid));
    yield* mutex_lock(k, t, locks.asid);
    yield* k.fn.arm_smmu_clear_cd(t, dev, pasid);
    yield* mutex_unlock(k, t, locks.asid);
    yield* afterClear(env, locks, t, dev, pasid, asid);
    yield* iopfForDomainRemove(k, t, u.drv, old, dev);
    // The last user of the CD table gone from a master whose RID is blocked: back to a non-CD-table STE.
    const ste = u.u.steWords(dev.index);
    const terminating = steCfg(ste[0] as number) === STRTAB_STE_0_CFG_S1_TRANS && ((ste[2] as number) & 3) === STRTAB_STE_1_S1DSS_TERMINATE;
    if (terminating && usedSsids(dev) === 0) yield* k.fn.arm_smmu_attach_dev_blocked(t, dev);
    return 0;
  });
  k.fns.define('arm_smmu_release_device', C, (t, _dev, domain) =>
    detachOnRelease(env, t, domain, 'arm_smmu_detach_dev: spin_lock_irqsave(&smmu_domain->devices_lock)'),
  );
  // A paging domain the core attaches through a group: its CD through the entry writer under arm_smmu_asid_lock.
  const entry: EntryOps = {
    present: (dev, pasid) => cdValidAt(k, k.fn.arm_smmu_get_cd_ptr(dev, pasid)),
    install: (t, dev, pasid, mm) => setPasidCd(env, locks, t, dev, pasid, mm),
    *replace(t, dev, pasid, mm) {
      const cdptr = k.fn.arm_smmu_get_cd_ptr(dev, pasid);
      const oldAsid = cdAsid(k, cdptr);
      yield* mutex_lock(k, t, locks.asid);
      yield* k.fn.arm_smmu_write_cd_entry(t, dev, pasid, cdptr, arm_smmu_make_sva_cd(mm, mm.asid));
      yield* mutex_unlock(k, t, locks.asid);
      yield* k.fn.arm_smmu_atc_inv_master(t, dev, pasid);
      if (oldAsid !== undefined && oldAsid !== mm.asid) yield* k.fn.arm_smmu_tlb_inv_asid(t, dev.iommu, oldAsid);
    },
    *remove(t, dev, pasid, domain) {
      yield* k.fn.arm_smmu_blocking_set_dev_pasid(t, dev, pasid, domain);
    },
  };
  const setPasid = (clear: boolean) => (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number) =>
    domain.obj === 0 && domain.type !== 'blocked' ? setPasidCd(env, locks, t, dev, pasid, domainMm(domain)) : attachDomain(env, t, entry, domain, dev, pasid, clear);
  k.fns.definePlanted('arm_smmu_set_pasid', C, env.attachBug ?? 'none', { none: setPasid(false), 'clear-on-failure': setPasid(true) });
}

/**
 * arm_smmu_set_pasid for a CD of its own (SVA, seed 000's implicit domain): the leaf first (arm_smmu_alloc_cd_ptr,
 * outside the lock), then the CD through the entry writer under arm_smmu_asid_lock; -EBUSY over a valid CD.
 */
export function* setPasidCd(env: DriverEnv, locks: ArmSmmuLocks, t: KTask, dev: DeviceInfo, pasid: number, mm: MmStruct): KGen<number> {
  const k = env.k;
  const cdptr = yield* k.fn.arm_smmu_alloc_cd_ptr(t, dev, pasid);
  if (cdptr === 0) return -ENOMEM;
  yield* mutex_lock(k, t, locks.asid);
  const busy = cdValidAt(k, cdptr);
  if (!busy) yield* k.fn.arm_smmu_write_cd_entry(t, dev, pasid, cdptr, k.fn.arm_smmu_make_sva_cd(mm, mm.asid));
  yield* mutex_unlock(k, t, locks.asid);
  return busy ? -EBUSY : 0;
}

/** `ssidBits`: the SMMU's SSIDSIZE; a master gets min(its PASID width, SSIDSIZE). */
export function smmuv3Ops(env: DriverEnv, ssidBits: number, era: SvaNotifier = 'domain'): IommuOps {
  const k = env.k;
  defineSmmuFunctions(env, era);
  const old = era === 'bond';
  const svaSet = (t: KTask, domain: IommuDomain, dev: DeviceInfo, pasid: number) =>
    old ? k.fn.arm_smmu_sva_bind(t, dev, pasid, domainMm(domain)) : k.fn.arm_smmu_sva_set_dev_pasid(t, domain, dev, pasid);
  const bits = (dev: DeviceInfo): number => Math.min(dev.caps.pasidBits, ssidBits);
  const domainOps: IommuDomainOps = {
    // CD 0 (SSID 0) is the stage-1 context of the master's requests without a substream ID, under a CD-table STE
    // with S1DSS=SSID0 (arm_smmu_make_cdtable_ste), installed again first if the RID was blocked.
    *attach_dev(t, domain, dev) {
      if (domain.type === 'blocked') return yield* k.fn.arm_smmu_attach_dev_blocked(t, dev);
      const u = smmuOf(env, dev.iommu).u;
      if (u.blocks(dev.index, IOMMU_NO_PASID)) yield* k.fn.arm_smmu_install_ste_for_dev(t, dev, cdtableSte(u, dev, STRTAB_STE_1_S1DSS_SSID0));
      return yield* domainOps.set_dev_pasid(t, domain, dev, IOMMU_NO_PASID, undefined);
    },
    set_dev_pasid: (t, domain, dev, pasid, old) =>
      domain.type === 'blocked' && old !== undefined
        ? k.fn.arm_smmu_blocking_set_dev_pasid(t, dev, pasid, old)
        : iopfSetDevPasid(k, t, smmuOf(env, dev.iommu).drv, domain, dev, old, () =>
            domain.type === 'sva' ? svaSet(t, domain, dev, pasid) : k.fn.arm_smmu_set_pasid(t, domain, dev, pasid),
          ),
    iotlb_sync: (t, domain, dev, pasid, start, end) => k.fn.arm_smmu_mm_arch_invalidate_secondary_tlbs(t, dev, pasid, domainMm(domain), start, end),
  };
  return {
    driver: 'arm-smmu-v3',
    nativePasid: 'ssid',
    releaseNotifiesDriver: false,
    dev_enable_feat: (dev, _feat, flags) => {
      if ((flags & SVM_FLAG_SUPERVISOR_MODE) !== 0) return { err: -EOPNOTSUPP, why: 'arm-smmu-v3 SVA binds no supervisor contexts' };
      if (bits(dev) < 1) return { err: -EOPNOTSUPP, why: `${dev.name}: SMMU has no substream IDs` };
      return { err: 0, why: '' };
    },
    pasid_range: (dev) => [1, (1 << bits(dev)) - 1],
    *remove_dev_pasid(t, dev, pasid, domain, why) {
      if (why === 'release') return yield* k.fn.arm_smmu_mm_release(t, dev, pasid, domainMm(domain));
      if (old && domain.type === 'sva') {
        // The sva_lock era: the device driver's iommu_sva_unbind_device → arm_smmu_sva_unbind (no blocked domain then).
        yield* k.fn.arm_smmu_sva_unbind(t, dev, pasid, domainMm(domain));
        return yield* iopfForDomainRemove(k, t, smmuOf(env, dev.iommu).drv, domain, dev);
      }
      // iommu_remove_dev_pasid: the blocked domain's set_dev_pasid over what was attached.
      yield* k.fn.arm_smmu_blocking_set_dev_pasid(t, dev, pasid, domain);
    },
    drain_prq: (t, dev, pasid) => drainPrq(k, t, smmuOf(env, dev.iommu).drv, dev, pasid),
    release_device: (t, dev, domain) => k.fn.arm_smmu_release_device(t, dev, domain),
    default_domain_ops: domainOps,
  };
}

// ---- the SMMU's interrupt threads ----

/** %#x: "0" for zero, as printf's # flag prints it. */
const hex = (v: number): string => (v === 0 ? '0' : `0x${(v >>> 0).toString(16)}`);
const qword = (lo: number, hi: number): string => `0x${(hi >>> 0).toString(16).padStart(8, '0')}${(lo >>> 0).toString(16).padStart(8, '0')}`;

/** arm_smmu_dump_event: the raw record, then the event in the driver's words (no ratelimit in the model). */
function dumpEvent(u: ArmSmmuUnit, evt: ArmSmmuEvent, client: string): string[] {
  const lines = [`event 0x${evt.id.toString(16).padStart(2, '0')} received:`];
  for (let q = 0; q < evt.raw.length; q += 2) lines.push(`\t${qword(evt.raw[q] as number, evt.raw[q + 1] as number)}`);
  const name = EVENT_STR[evt.id] ?? 'UNKNOWN';
  const ids = `client: ${client} sid: ${hex(evt.sid)} ssid: ${hex(evt.ssid)}`;
  lines.push(evt.id === EVT_ID_TRANSLATION_FAULT ? `event: ${name} ${ids} iova: ${hex(evt.iova * 4096)} ipa: 0` : `event: ${name} ${ids}`);
  return lines.map((l) => `arm-smmu-v3 ${u.name}: ${l}`);
}

/** A PRIQ entry as arm_smmu_handle_ppr decodes it (PRIQ_0_SID, SSID_V, SSID, PRG_LAST, PERM_*; PRIQ_1_PRG_IDX, ADDR). */
export interface PriqRequest {
  readonly sid: number;
  readonly ssv: boolean;
  readonly ssid: number;
  readonly last: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly grpid: number;
  /** The page (the model's iova). */
  readonly vpn: number;
}

/** %0Nx */
const hexw = (v: number, n: number): string => (v >>> 0).toString(16).padStart(n, '0');

/** The events arm_smmu_handle_event reports to the core when they stalled (the fault events). */
const FAULT_EVENTS = new Set([EVT_ID_TRANSLATION_FAULT]);

/** arm-smmu-v3.c's event and PRI handlers, by name (once per kernel: they take the SMMU's index). */
function defineHandlers(k: Kernel, units: Map<number, ArmSmmuUnit>, devices: readonly DeviceInfo[]): void {
  if (k.fns.has('arm_smmu_handle_event')) return;
  const print = (t: KTask, u: ArmSmmuUnit, lines: readonly string[]) =>
    (function* () {
      // The SMMU's log is the driver's own (not in the run's memory).
      for (const l of lines) yield* k.stepOn(t, l, NOTHING, () => void u.log.push(l));
    })();
  // A stalled fault goes to the core (iommu_report_device_fault); one the core does not take is aborted ("Nobody
  // cared, abort the access"); any other event is not handled (the thread prints it).
  k.fns.define('arm_smmu_handle_event', C, function* (t, smmu, evt) {
    if (!FAULT_EVENTS.has(evt.id) || !evt.stall) return -EOPNOTSUPP;
    // arm_smmu_find_master under streams_mutex (model: the masters never change, the mutex is not taken).
    const dev = devices[evt.sid];
    if (!dev || dev.iommu !== smmu) return -EINVAL;
    const pasid = evt.ssv ? evt.ssid : 0;
    const ret = yield* k.fn.iommu_report_device_fault(t, dev, { pasid, grpid: evt.stag, vpn: evt.iova, write: !evt.read, last: true });
    if (ret !== 0) yield* k.fn.arm_smmu_page_response(t, dev, pasid, evt.stag, RESP_FAILURE);
    return ret;
  });
  k.fns.define('arm_smmu_dump_event', C, (t, smmu, evt) => {
    const u = units.get(smmu) as ArmSmmuUnit;
    return print(t, u, dumpEvent(u, evt, devices[evt.sid]?.name ?? '(unassigned sid)'));
  });
  // Mainline has no PRI support for SVA (the PRI series was never merged): a request is printed and denied.
  k.fns.define('arm_smmu_handle_ppr', C, function* (t, smmu, req) {
    const u = units.get(smmu) as ArmSmmuUnit;
    const perm = `${req.read ? 'R' : ''}${req.write ? 'W' : ''}`;
    yield* print(t, u, [
      `arm-smmu-v3 ${u.name}: unexpected PRI request received:`,
      `arm-smmu-v3 ${u.name}: \tsid 0x${hexw(req.sid, 8)}.0x${hexw(req.ssid, 5)}: [${req.grpid}${req.last ? 'L' : ''}] unprivileged ${perm} access at iova 0x${hexw(Math.floor((req.vpn * 4096) / 2 ** 32), 8)}${hexw((req.vpn * 4096) % 2 ** 32, 8)}`,
    ]);
    if (!req.last) return;
    yield* k.fn.arm_smmu_cmdq_issue_cmdlist(t, smmu, [{ opcode: CMDQ_OP_PRI_RESP, sid: req.sid, ssid: req.ssid, grpid: req.grpid, resp: PRI_RESP_DENY }], false);
  });
}

/**
 * The SMMU's threads: arm_smmu_evtq_thread (each event to arm_smmu_handle_event — a stalled fault reported to
 * io-pgfault.c —, printed when nothing handled it) and arm_smmu_priq_thread (each PCIe page request denied, as
 * mainline's arm_smmu_handle_ppr does). The iopf queue is the evtq's: its faults are the stalls.
 */
function defineThreads(k: Kernel, drv: UnitDriver, _stats: Stats, devices: readonly DeviceInfo[], enable: IopfEnable): string {
  if (!(drv.unit instanceof ArmSmmuUnit)) throw new Error(`${drv.unit.name} is not an SMMUv3`);
  const u = drv.unit;
  const units = smmuUnits.get(k) ?? new Map<number, ArmSmmuUnit>();
  smmuUnits.set(k, units.set(u.index, u));
  defineHandlers(k, units, devices);
  const mine = devices.filter((d) => d.iommu === u.index);
  const iopf = iopf_queue_alloc(k, u.name, mine, (t, dev, pasid, grp, code) => k.fn.arm_smmu_page_response(t, dev, pasid, grp, code));
  const slot = new Map(mine.map((d, i) => [d.index, i]));
  drv.iopf = { queue: iopf, refs: k.statics.alloc(Math.max(1, mine.length), `${u.name} iopf_refcount`), slot, enable };
  k.task(evtqTask(u.index), 'kthread', function* (t) {
    for (;;) {
      const evt = yield* k.stepOn(t, 'evtq: queue_remove_raw', () => evtqRemoveFootprint(u), () => u.evtqRemove());
      if (!evt) break;
      if ((yield* k.fn.arm_smmu_handle_event(t, u.index, evt)) !== 0) yield* k.fn.arm_smmu_dump_event(t, u.index, evt);
    }
    if (yield* k.stepOn(t, 'evtq: queue_sync_prod_in', [u.queueReg('evtq_overflow')], () => u.evtqOverflowed())) {
      const l = `arm-smmu-v3 ${u.name}: EVTQ overflow detected -- events lost`;
      yield* k.stepOn(t, l, NOTHING, () => void u.log.push(l));
    }
  });
  return k.task(`arm_smmu_priq_thread/${u.index}`, 'kthread', function* (t) {
    for (;;) {
      const req = yield* k.step(t, 'priq: queue_remove_raw', () => u.prqPeek());
      if (!req) break;
      yield* k.step(t, 'priq: queue_inc_cons', () => u.prqRetire());
      const r: PriqRequest = { sid: req.dev, ssv: true, ssid: req.pasid, last: req.last, read: true, write: req.write, grpid: req.grp, vpn: req.vpn };
      yield* k.fn.arm_smmu_handle_ppr(t, u.index, r);
    }
    if (yield* k.step(t, 'priq: queue_sync_prod_in', () => u.priqOverflowed)) {
      const l = `arm-smmu-v3 ${u.name}: PRIQ overflow detected -- requests lost`;
      yield* k.stepOn(t, l, NOTHING, () => void u.log.push(l));
    }
  });
}

/** Each kernel's SMMUs by index (the event thread's handler, defined once, prints to its SMMU's log). */
const smmuUnits = new WeakMap<Kernel, Map<number, ArmSmmuUnit>>();

export const evtqTask = (index: number): string => `arm_smmu_evtq_thread/${index}`;

/** The vendor as the model builds it (src/hw/vendors.ts). */
export const ARM_SMMU_V3: Vendor = {
  flavour: 'smmuv3',
  spec: SMMUV3,
  costs: ARM_SMMU_V3_COST_TABLE,
  newUnit: (k, index, devices, opts, actor) => new ArmSmmuUnit(k, index, SMMUV3, devices, opts, actor),
  newHardware: (unit, env) => {
    if (!(unit instanceof ArmSmmuUnit)) throw new Error(`${unit.name} is not an SMMUv3`);
    return new ArmSmmuHardware(unit, env, evtqTask(unit.index));
  },
  unitDriver: defineUnitDriver,
  definePrqThread: (k, drv, stats, devices, enable) => defineThreads(k, drv, stats, devices, enable),
  ops: (denv, env) => smmuv3Ops(denv, env.ssidBits, env.notifier ?? 'domain'),
};
