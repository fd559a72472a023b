// Findings as data: a typed record for every report a checker makes (kind, task, context, held locks, call
// chain, schedule step), rendered as the kernel would print it. The first line is the kernel's own wording
// wherever the kernel has one, so that users can grep for it.
import type { Finding } from '../runtime/model.js';
import type { HeldLock, KTask } from './context.js';

export type FindingKind =
  | 'might_sleep'
  | 'lockdep'
  | 'kasan'
  | 'rcu'
  | 'hung_task'
  // kernel/watchdog.c's soft-lockup detector and the NMI watchdog's hard-lockup detector (kernel/watchdog.ts).
  | 'soft_lockup'
  | 'hard_lockup'
  | 'deadlock'
  | 'refcount'
  | 'leak'
  | 'notifier'
  | 'workqueue'
  | 'oops'
  // A WARN_ON of the IOMMU core (drivers/iommu/iommu.c, iommu-sva.c): the run goes on, as the kernel's does.
  | 'iommu'
  // Oracles of the model built on this kernel (its invariants), reported through the same channel.
  | 'isolation'
  | 'stale_translation'
  | 'page_request'
  | 'quota'
  | 'ida'
  | 'mm'
  // A device its IOMMU could not take (of_iommu.c / acpi: "Adding to IOMMU failed: %pe"), at the failing step.
  | 'probe'
  // An IOMMU unit, PCI device or mm actor got an event its lifecycle state refuses (an illegal hardware or
  // lifecycle transition: DMA from a device no driver enabled, a completion nobody waits for, an mm going back).
  | 'lifecycle'
  // The VT-d hardware assembled a PASID-table entry from two versions (src/hw/intel/entry-oracle.ts).
  | 'torn_entry'
  // A script's `expect` step whose named result was not what it expected (src/workloads/script.ts).
  | 'script'
  // A kernel message at KERN_CRIT or more urgent (pr_crit, pr_alert, pr_emerg: src/kernel/printk.ts).
  | 'printk';

export interface KernelFinding extends Finding {
  readonly kind: FindingKind;
  readonly task?: string;
  readonly pid?: number;
  readonly context?: string;
  readonly heldLocks?: readonly string[];
  readonly callChain?: readonly string[];
}

export const SEPARATOR = '==================================================================';

/** `N locks held by comm/pid:` and one line per lock, as lockdep's debug_show_held_locks prints them. */
export function heldLocksLines(t: KTask): string[] {
  if (t.held.length === 0) return [`no locks held by ${t.label}.`];
  const lines = [`${t.held.length} lock${t.held.length > 1 ? 's' : ''} held by ${t.label}:`];
  t.held.forEach((h, i) => {
    lines.push(` #${i}: ${lockLine(h)}`);
  });
  return lines;
}

export function lockLine(h: HeldLock): string {
  const at = h.site[h.site.length - 1] ?? '?';
  return `(${h.name}){${lockdepUsage(h)}}, at: ${at}`;
}

function lockdepUsage(h: HeldLock): string {
  // rcu_read_lock and spinlocks print {....}; sleeping locks +.+. (read-side ++++).
  return h.kind === 'spinlock' || h.kind === 'rcu' ? '....' : h.kind === 'rwsem-read' || h.kind === 'srcu' ? '++++' : '+.+.';
}

/** A `Call Trace:` block, innermost first as the kernel prints it. */
export function callTrace(chain: readonly string[], inIrq = false): string[] {
  const lines = ['Call Trace:', inIrq ? ' <IRQ>' : ' <TASK>'];
  for (let i = chain.length - 1; i >= 0; i--) lines.push(` ${chain[i]}`);
  lines.push(inIrq ? ' </IRQ>' : ' </TASK>');
  return lines;
}

export function contextName(t: KTask): string {
  return t.kind === 'process' ? 'process' : t.kind;
}

/** The record a checker emits for a task; `title` is the report's first line, `body` the rest. */
export function taskFinding(kind: FindingKind, t: KTask, step: number, title: string, body: readonly string[]): KernelFinding {
  return {
    kind,
    title,
    text: [title, ...body].join('\n'),
    step,
    where: t.label,
    task: t.comm,
    pid: t.pid,
    context: contextName(t),
    heldLocks: t.held.map(lockLine),
    callChain: t.chain(),
  };
}
