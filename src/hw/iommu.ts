// An IOMMU unit's hardware, the part all three flavours share (src/hw/flavour.ts says where they differ): the
// per-device PASID tables in memory, a PASID-entry cache, an IOTLB, the command queue the driver writes and
// the hardware consumes one command at a time at a per-command cost, and the page request queue. Everything
// is in the run's shared memory: the driver (kernel tasks) writes tables and queues, the hardware (the unit's
// actor, in sequenced deliveries) reads them — a table entry word by word, as hardware does. A walk that an
// invalidation overtakes does not fill the caches with what it read (hardware guarantees that much), but it
// does finish the translation with it.
import type { TranslationCache } from '../core/oracle.js';
import type { DeviceInfo } from '../core/types.js';
import type { Kernel } from '../kernel/kernel.js';
import { ptePfn } from '../kernel/mm/pagetable.js';
import { type CommandOp, type FlavourSpec, OP_DEVTLB, OP_IOTLB, OP_PAGE_RESP, OP_PC, OP_WAIT } from './flavour.js';

const T_VALID = 0;
const T_TAG = 1;
const T_PASID = 2;
const T_VPN = 3;
const T_PTE = 4;
const T_DEV = 5;
const T_WORDS = 6;

const PC_VALID = 0;
const PC_DEV = 1;
const PC_PASID = 2;
const PC_ENTRY = 3;

export const CMD_WORDS = 5; // op, a, b, c, d
const Q_HEAD = 0;
const Q_TAIL = 1;
const Q_WAIT_DONE = 2; // the last wait descriptor the hardware completed
const Q_SEQ = 3; // the driver's wait sequence
const Q_EPOCH = 4; // invalidations executed (a walk they overtake does not fill caches)
const Q_PRQ_HEAD = 5;
const Q_PRQ_TAIL = 6;
const Q_PRQ_ACTIVE = 7; // the page-request thread is running
const Q_HEADER = 8;

export const PRQ_WORDS = 6; // dev, pasid, vpn, write, grp, last
/** Page request group indices a device uses (PRGI is 9 bits; the model keeps fewer). */
export const PR_GROUPS = 64;

export interface UnitOptions {
  readonly iotlbEntries: number;
  readonly pcacheEntries: number;
  readonly queueDepth: number;
  readonly prqDepth: number;
  /** Cost of one command, busy-waited by the hardware (ns). */
  readonly cmdCostNs: number;
}

export const DEFAULT_UNIT: UnitOptions = { iotlbEntries: 64, pcacheEntries: 16, queueDepth: 64, prqDepth: 128, cmdCostNs: 100 };

export interface Command {
  readonly op: CommandOp;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
}

export class IommuUnit {
  readonly name: string;
  private readonly iotlb: number;
  private readonly pcache: number;
  private readonly header: number;
  private readonly cmdq: number;
  private readonly prq: number;
  /** PASID tables of this unit's devices: static offset per device index. */
  private readonly tables = new Map<number, number>();
  /** Per device on this unit: outstanding page request groups (the oracle's). */
  private readonly groups = new Map<number, number>();

  constructor(
    private readonly k: Kernel,
    readonly index: number,
    readonly spec: FlavourSpec,
    readonly devices: readonly DeviceInfo[],
    readonly opts: UnitOptions,
    /** The unit's actor. */
    readonly actor: number,
  ) {
    this.name = spec.unitName(index);
    this.iotlb = k.statics.alloc(Math.max(1, opts.iotlbEntries) * T_WORDS, `${this.name} iotlb`);
    this.pcache = k.statics.alloc(opts.pcacheEntries * (PC_ENTRY + spec.entry.words), `${this.name} pasid cache`);
    this.header = k.statics.alloc(Q_HEADER, `${this.name} queues`);
    this.cmdq = k.statics.alloc(opts.queueDepth * CMD_WORDS, `${this.name} ${spec.cmdqName}`);
    this.prq = k.statics.alloc(opts.prqDepth * PRQ_WORDS, `${this.name} ${spec.prqName}`);
    for (const d of devices) {
      this.tables.set(d.index, k.statics.alloc((1 << d.caps.pasidBits) * spec.entry.words, `${d.name} ${spec.entryName} table`));
      this.groups.set(d.index, k.statics.alloc(PR_GROUPS, `${d.name} page request groups`));
    }
  }

  get kernel(): Kernel {
    return this.k;
  }

  private get i32(): Int32Array {
    return this.k.i32;
  }

  private s(off: number): number {
    return this.k.mem.statics + off;
  }

  // ---- memory the driver writes ----

  /** Absolute address of word w of {dev, pasid}'s entry. */
  entryAddr(dev: number, pasid: number, w: number): number {
    const t = this.tables.get(dev);
    if (t === undefined) throw new Error(`${this.name}: device ${dev} is not behind this IOMMU`);
    return this.s(t) + pasid * this.spec.entry.words + w;
  }

  entryWord(dev: number, pasid: number, w: number): number {
    return this.i32[this.entryAddr(dev, pasid, w)] as number;
  }

  entry(dev: number, pasid: number): number[] {
    return Array.from({ length: this.spec.entry.words }, (_, w) => this.entryWord(dev, pasid, w));
  }

  header_(f: number): number {
    return this.i32[this.s(this.header) + f] as number;
  }

  private setHeader(f: number, v: number): void {
    this.i32[this.s(this.header) + f] = v;
  }

  /** Free command slots (the driver waits for room for its commands and a wait descriptor). */
  cmdqFree(): number {
    return this.opts.queueDepth - (this.header_(Q_TAIL) - this.header_(Q_HEAD));
  }

  /** Driver: write commands and a wait descriptor at the tail; returns the wait's sequence number. */
  cmdqWrite(cmds: readonly Command[]): number {
    const seq = this.header_(Q_SEQ) + 1;
    this.setHeader(Q_SEQ, seq);
    let tail = this.header_(Q_TAIL);
    for (const c of [...cmds, { op: OP_WAIT, a: 0, b: 0, c: seq, d: 0 } satisfies Command]) {
      const at = this.s(this.cmdq) + (tail % this.opts.queueDepth) * CMD_WORDS;
      this.i32[at] = c.op;
      this.i32[at + 1] = c.a;
      this.i32[at + 2] = c.b;
      this.i32[at + 3] = c.c;
      this.i32[at + 4] = c.d;
      tail++;
    }
    this.setHeader(Q_TAIL, tail);
    return seq;
  }

  waitDone(seq: number): boolean {
    return this.header_(Q_WAIT_DONE) >= seq;
  }

  /** Page requests of {dev, pasid} queued or being handled (the driver's drain waits until there are none). */
  prqPending(dev: number, pasid: number): number {
    let n = 0;
    for (let i = this.header_(Q_PRQ_HEAD); i < this.header_(Q_PRQ_TAIL); i++) {
      const at = this.s(this.prq) + (i % this.opts.prqDepth) * PRQ_WORDS;
      if (this.i32[at] === dev && this.i32[at + 1] === pasid) n++;
    }
    return n;
  }

  /** The page-request thread: the next request (left in the queue until retired), or undefined — then it stops. */
  prqPeek(): { dev: number; pasid: number; vpn: number; write: boolean; grp: number; last: boolean } | undefined {
    const head = this.header_(Q_PRQ_HEAD);
    if (head === this.header_(Q_PRQ_TAIL)) {
      this.setHeader(Q_PRQ_ACTIVE, 0);
      return undefined;
    }
    const at = this.s(this.prq) + (head % this.opts.prqDepth) * PRQ_WORDS;
    const i32 = this.i32;
    return { dev: i32[at] as number, pasid: i32[at + 1] as number, vpn: i32[at + 2] as number, write: i32[at + 3] === 1, grp: i32[at + 4] as number, last: i32[at + 5] === 1 };
  }

  prqRetire(): void {
    this.setHeader(Q_PRQ_HEAD, this.header_(Q_PRQ_HEAD) + 1);
  }

  // ---- the hardware (called in the unit actor's sequenced deliveries) ----

  get epoch(): number {
    return this.header_(Q_EPOCH);
  }

  private tlbSlot(tag: number, pasid: number, vpn: number): number {
    const h = Math.imul(tag * 0x9e3779b1 + pasid * 0x85ebca6b + vpn, 0x27d4eb2d) >>> 0;
    return this.s(this.iotlb) + (h % this.opts.iotlbEntries) * T_WORDS;
  }

  /** IOTLB lookup: the PTE, or 0 on a miss. */
  iotlbLookup(tag: number, pasid: number, vpn: number): number {
    if (this.opts.iotlbEntries === 0) return 0;
    const at = this.tlbSlot(tag, pasid, vpn);
    const i32 = this.i32;
    return i32[at + T_VALID] === 1 && i32[at + T_TAG] === tag && i32[at + T_PASID] === pasid && i32[at + T_VPN] === vpn ? (i32[at + T_PTE] as number) : 0;
  }

  iotlbFill(tag: number, pasid: number, vpn: number, pte: number, dev: number, epoch: number): void {
    if (epoch !== this.epoch || this.opts.iotlbEntries === 0) return;
    const at = this.tlbSlot(tag, pasid, vpn);
    const i32 = this.i32;
    i32[at + T_VALID] = 1;
    i32[at + T_TAG] = tag;
    i32[at + T_PASID] = pasid;
    i32[at + T_VPN] = vpn;
    i32[at + T_PTE] = pte;
    i32[at + T_DEV] = dev;
  }

  private pcSlot(dev: number, pasid: number): number {
    const h = Math.imul(dev * 0x9e3779b1 + pasid, 0x85ebca6b) >>> 0;
    return this.s(this.pcache) + (h % this.opts.pcacheEntries) * (PC_ENTRY + this.spec.entry.words);
  }

  /** PASID-entry cache lookup: the cached words, or undefined. */
  pcLookup(dev: number, pasid: number): number[] | undefined {
    const at = this.pcSlot(dev, pasid);
    const i32 = this.i32;
    if (i32[at + PC_VALID] !== 1 || i32[at + PC_DEV] !== dev || i32[at + PC_PASID] !== pasid) return undefined;
    return Array.from({ length: this.spec.entry.words }, (_, w) => i32[at + PC_ENTRY + w] as number);
  }

  pcFill(dev: number, pasid: number, words: readonly number[], epoch: number): void {
    if (epoch !== this.epoch) return;
    const at = this.pcSlot(dev, pasid);
    const i32 = this.i32;
    i32[at + PC_VALID] = 1;
    i32[at + PC_DEV] = dev;
    i32[at + PC_PASID] = pasid;
    words.forEach((v, w) => {
      i32[at + PC_ENTRY + w] = v;
    });
  }

  /** The next command, or undefined when the queue is empty. */
  cmdqPeek(): Command | undefined {
    const head = this.header_(Q_HEAD);
    if (head === this.header_(Q_TAIL)) return undefined;
    const at = this.s(this.cmdq) + (head % this.opts.queueDepth) * CMD_WORDS;
    const i32 = this.i32;
    return { op: i32[at] as CommandOp, a: i32[at + 1] as number, b: i32[at + 2] as number, c: i32[at + 3] as number, d: i32[at + 4] as number };
  }

  /** Execute a command's effect on the unit's own caches; the actor does what reaches a device. */
  execute(c: Command): void {
    burn(this.opts.cmdCostNs);
    const i32 = this.i32;
    if (c.op === OP_IOTLB) {
      // a: tag (device or ASID), b: PASID (-1 with ASID tags), [c, d): vpn range, c = -1: all
      for (let e = 0; e < this.opts.iotlbEntries; e++) {
        const at = this.s(this.iotlb) + e * T_WORDS;
        if (i32[at + T_VALID] !== 1 || i32[at + T_TAG] !== c.a || (c.b !== -1 && i32[at + T_PASID] !== c.b)) continue;
        const vpn = i32[at + T_VPN] as number;
        if (c.c === -1 || (vpn >= c.c && vpn < c.d)) i32[at + T_VALID] = 0;
      }
      this.setHeader(Q_EPOCH, this.epoch + 1);
    } else if (c.op === OP_PC) {
      const at = this.pcSlot(c.a, c.b);
      if (i32[at + PC_DEV] === c.a && i32[at + PC_PASID] === c.b) i32[at + PC_VALID] = 0;
      this.setHeader(Q_EPOCH, this.epoch + 1);
    } else if (c.op === OP_WAIT) {
      this.setHeader(Q_WAIT_DONE, c.c);
    }
  }

  cmdqRetire(): void {
    this.setHeader(Q_HEAD, this.header_(Q_HEAD) + 1);
  }

  /** A page request arrives: queued (true), or the queue is full (false: the hardware auto-responds). */
  prqPush(dev: number, pasid: number, vpn: number, write: boolean, grp: number, last: boolean): { queued: boolean; startThread: boolean } {
    const head = this.header_(Q_PRQ_HEAD);
    const tail = this.header_(Q_PRQ_TAIL);
    if (tail - head >= this.opts.prqDepth) return { queued: false, startThread: false };
    const at = this.s(this.prq) + (tail % this.opts.prqDepth) * PRQ_WORDS;
    const i32 = this.i32;
    i32[at] = dev;
    i32[at + 1] = pasid;
    i32[at + 2] = vpn;
    i32[at + 3] = write ? 1 : 0;
    i32[at + 4] = grp;
    i32[at + 5] = last ? 1 : 0;
    this.setHeader(Q_PRQ_TAIL, tail + 1);
    const startThread = this.header_(Q_PRQ_ACTIVE) === 0;
    if (startThread) this.setHeader(Q_PRQ_ACTIVE, 1);
    return { queued: true, startThread };
  }

  /** The oracle's page-request bookkeeping: a group is outstanding from its request to its response. */
  groupRequested(dev: number, grp: number): void {
    this.i32[this.s(this.groups.get(dev) as number) + grp] = 1;
  }

  /** A response for the group: 1 if it was outstanding (and now is not), 0 if it was not. */
  groupAnswered(dev: number, grp: number): number {
    const at = this.s(this.groups.get(dev) as number) + grp;
    const was = this.i32[at] as number;
    this.i32[at] = 0;
    return was;
  }

  /** Outstanding groups, for the teardown check. */
  outstandingGroups(): string[] {
    const out: string[] = [];
    for (const d of this.devices) {
      const base = this.s(this.groups.get(d.index) as number);
      for (let g = 0; g < PR_GROUPS; g++) if (this.i32[base + g] === 1) out.push(`${d.name} group ${g} (${this.name})`);
    }
    return out;
  }

  // ---- what the oracle sees ----

  caches(): TranslationCache[] {
    const unit = this;
    const i32 = (): Int32Array => this.k.i32;
    const iotlb: TranslationCache = {
      name: `${this.name} IOTLB`,
      entriesForPfn(pfn) {
        const out: string[] = [];
        for (let e = 0; e < unit.opts.iotlbEntries; e++) {
          const at = unit.s(unit.iotlb) + e * T_WORDS;
          const m = i32();
          if (m[at + T_VALID] === 1 && ptePfn(m[at + T_PTE] as number) === pfn) out.push(unit.describeTlb(at));
        }
        return out;
      },
      entriesForPasid(dev, pasid) {
        if (unit.spec.tlbTag === 'asid') return [];
        const out: string[] = [];
        for (let e = 0; e < unit.opts.iotlbEntries; e++) {
          const at = unit.s(unit.iotlb) + e * T_WORDS;
          const m = i32();
          if (m[at + T_VALID] === 1 && m[at + T_DEV] === dev && m[at + T_PASID] === pasid) out.push(unit.describeTlb(at));
        }
        return out;
      },
    };
    const pc: TranslationCache = {
      name: `${this.name} ${this.spec.entryName} cache`,
      entriesForPfn: () => [],
      entriesForPasid(dev, pasid) {
        const words = unit.pcLookup(dev, pasid);
        return words && unit.spec.entry.present(words) ? [`{dev ${dev}, PASID ${pasid}} → mm ${unit.spec.entry.mmOf(words) - 1}`] : [];
      },
    };
    return [iotlb, pc];
  }

  private describeTlb(at: number): string {
    const m = this.k.i32;
    const tag = this.spec.tlbTag === 'asid' ? `ASID ${m[at + T_TAG]}` : `dev ${m[at + T_TAG]}, PASID ${m[at + T_PASID]}`;
    return `{${tag}, vpn ${m[at + T_VPN]}} → pfn 0x${ptePfn(m[at + T_PTE] as number).toString(16)}`;
  }
}

/** Busy-wait ns nanoseconds: a command's cost is real time on the hardware's thread. */
function burn(ns: number): void {
  if (ns <= 0) return;
  const until = performance.now() + ns / 1e6;
  while (performance.now() < until) {
    // spin
  }
}

export { OP_DEVTLB, OP_PAGE_RESP };
