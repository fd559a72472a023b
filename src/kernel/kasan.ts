// KASAN's reports (mm/kasan/report.c): what a bad access to a slab object looks like — the access, the stack
// of the task that made it, and the object's allocation and free stacks, which is what makes a use-after-free
// debuggable. slab.ts keeps the metadata (header per object) and decides when an access is bad; this file
// only renders. Addresses are fake but stable kernel addresses derived from the arena offset, so a report
// reads like the kernel's and the same run prints the same addresses.
import type { KTask } from './context.js';
import { callTrace, heldLocksLines, type KernelFinding, SEPARATOR, taskFinding } from './findings.js';
import type { Kernel } from './kernel.js';

/** The direct map's base on x86-64 (page_offset_base without KASLR): where slab objects live. */
/** PAGE_OFFSET on x86-64 (4-level paging): the direct map, where slab objects' addresses are printed. */
const PAGE_OFFSET = 0xffff888000000000n;

/** Who allocated or freed an object: a task and its call chain then (innermost last). */
export interface SlabTrack {
  readonly pid: number;
  readonly comm: string;
  readonly chain: readonly string[];
}

/** What KASAN knows about a slab object (read from its header in shared memory). */
export interface SlabObjectInfo {
  /** Absolute word offset of the object's first word. */
  readonly obj: number;
  readonly state: 'allocated' | 'quarantined' | 'free';
  /** Requested size, in words (4-byte words: the simulated kernel's unit). */
  readonly words: number;
  /** Size of its slot (the cache's object size), in words. */
  readonly slotWords: number;
  /** kmalloc-N or the cache it was allocated from. */
  readonly cache: string;
  readonly alloc: SlabTrack;
  readonly free: SlabTrack | undefined;
}

/** The fake kernel address of a word: the direct map plus its byte offset in the arena. */
export function kaddr(k: Kernel, abs: number): bigint {
  return BigInt.asUintN(64, PAGE_OFFSET + BigInt(abs - k.mem.arena) * 4n);
}

/** As KASAN prints an address: 16 hex digits, no 0x. */
export function fmtAddr(a: bigint): string {
  return a.toString(16).padStart(16, '0');
}

function innermost(t: KTask): string {
  return t.frames[t.frames.length - 1] ?? '?';
}

function trackLines(what: 'Allocated' | 'Freed', tr: SlabTrack | undefined): string[] {
  if (!tr) return [];
  const lines = ['', `${what} by task ${tr.pid}:`];
  if (tr.chain.length === 0) lines.push(' (stack is not available)');
  for (let i = tr.chain.length - 1; i >= 0; i--) lines.push(` ${tr.chain[i]}`);
  return lines;
}

function taskLines(t: KTask): string[] {
  return [
    '',
    `PID: ${t.pid} Comm: ${t.comm} Not tainted (iommu-sim)`,
    ...heldLocksLines(t),
    ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
  ];
}

/** "The buggy address belongs to the object at …": where the access fell relative to the object. */
function objectLines(k: Kernel, o: SlabObjectInfo, abs: number): string[] {
  const start = kaddr(k, o.obj);
  const bytes = o.words * 4;
  const end = start + BigInt(bytes);
  const rel = (abs - o.obj) * 4;
  const where =
    rel < 0
      ? `The buggy address is located ${-rel} bytes to the left of`
      : rel >= bytes
        ? `The buggy address is located ${rel - bytes} bytes to the right of`
        : `The buggy address is located ${rel} bytes inside of`;
  const region = o.state === 'allocated' ? 'allocated' : 'freed';
  return [
    '',
    `The buggy address belongs to the object at ${fmtAddr(start)}`,
    ` which belongs to the cache ${o.cache} of size ${o.slotWords * 4}`,
    where,
    ` ${region} ${bytes}-byte region [${fmtAddr(start)}, ${fmtAddr(end)})`,
  ];
}

export type AccessBug = 'slab-use-after-free' | 'slab-out-of-bounds' | 'null-ptr-deref' | 'wild-memory-access';

/** A bad read or write of one word at `abs` (absolute word offset) by t. */
export function accessReport(
  k: Kernel,
  t: KTask,
  bug: AccessBug,
  abs: number,
  write: boolean,
  o: SlabObjectInfo | undefined,
): KernelFinding {
  const addr = bug === 'null-ptr-deref' ? BigInt(Math.max(0, abs) * 4) : kaddr(k, abs);
  const title = `BUG: KASAN: ${bug} in ${innermost(t)}`;
  const body = [`${write ? 'Write' : 'Read'} of size 4 at addr ${fmtAddr(addr)} by task ${t.comm}/${t.pid}`, ...taskLines(t)];
  if (o) body.push(...trackLines('Allocated', o.alloc), ...trackLines('Freed', o.free), ...objectLines(k, o, abs));
  body.push('', SEPARATOR);
  return taskFinding('kasan', t, t.lastStep, title, body);
}

/** kfree of an object that is not allocated (double-free) or of a pointer that is no object (invalid-free). */
export function freeReport(
  k: Kernel,
  t: KTask,
  bug: 'double-free' | 'invalid-free',
  obj: number,
  o: SlabObjectInfo | undefined,
): KernelFinding {
  const title = `BUG: KASAN: ${bug} in ${innermost(t)}`;
  const body = [`Free of addr ${fmtAddr(kaddr(k, obj))} by task ${t.comm}/${t.pid}`, ...taskLines(t)];
  if (o) body.push(...trackLines('Allocated', o.alloc), ...trackLines('Freed', o.free), ...objectLines(k, o, obj));
  body.push('', SEPARATOR);
  return taskFinding('kasan', t, t.lastStep, title, body);
}

/** Without KASAN a NULL dereference is still an oops (arch/x86/mm/fault.c). */
export function nullDerefOops(t: KTask, abs: number): KernelFinding {
  const title = `BUG: kernel NULL pointer dereference, address: ${fmtAddr(BigInt(Math.max(0, abs) * 4))}`;
  return taskFinding('oops', t, t.lastStep, title, ['#PF: supervisor read access in kernel mode', 'Oops: 0000 [#1] SMP', ...taskLines(t)]);
}

/** kmemleak's report of an object nothing freed by teardown (mm/kmemleak.c, print_unreferenced). */
export function leakReport(k: Kernel, o: SlabObjectInfo, payload: readonly number[]): KernelFinding {
  const title = `unreferenced object 0x${fmtAddr(kaddr(k, o.obj))} (size ${o.words * 4}):`;
  const bytes: string[] = [];
  for (const w of payload) for (let b = 0; b < 4; b++) bytes.push(((w >>> (8 * b)) & 0xff).toString(16).padStart(2, '0'));
  const body = [`  comm "${o.alloc.comm}", pid ${o.alloc.pid}`, `  hex dump (first ${bytes.length} bytes):`];
  for (let i = 0; i < bytes.length; i += 16) body.push(`    ${bytes.slice(i, i + 16).join(' ')}`);
  body.push('  backtrace:');
  for (let i = o.alloc.chain.length - 1; i >= 0; i--) body.push(`    ${o.alloc.chain[i]}`);
  return {
    kind: 'leak',
    title,
    text: [title, ...body].join('\n'),
    step: -1,
    where: `${o.alloc.comm}/${o.alloc.pid}`,
    task: o.alloc.comm,
    pid: o.alloc.pid,
    callChain: o.alloc.chain,
  };
}
