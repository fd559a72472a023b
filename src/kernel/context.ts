// Execution contexts of simulated kernel tasks: what the kernel's checkers look at. Process context (a task
// with a name and pid), softirq (RCU callbacks, timers), hardirq (IOMMU interrupts), workqueue workers and
// kthreads; each with its preempt count, irq and softirq state, RCU read-side nesting, the locks it holds
// (with where each was taken) and its call chain. Task-local: only the task itself reads or writes it.
import type { TaskSelf } from '../runtime/task.js';
import { TASK_BASE } from '../runtime/task.js';

/** What interns a string in a run's memory (KernelMemory). */
export interface StringTable {
  intern(s: string): number;
}

export type ContextKind = 'process' | 'softirq' | 'hardirq' | 'workqueue' | 'kthread';

export type LockKind = 'spinlock' | 'mutex' | 'rwsem-read' | 'rwsem-write' | 'srcu' | 'rcu';

export interface HeldLock {
  /** Absolute offset of the lock word in shared memory (its identity). */
  readonly addr: number;
  /** Lock class name, as lockdep prints it: `&group->mutex`. */
  readonly name: string;
  readonly classId: number;
  readonly kind: LockKind;
  /** Call chain where it was taken, innermost last. */
  readonly site: readonly string[];
}

export class KTask {
  readonly pid: number;
  preemptCount = 0;
  private irqsOff = false;
  /**
   * Interrupts were on, if only for an instant, since its last step (local_irq_restore between two irqsave
   * sections): timer interrupts pending then ran — the lockup detectors' (Kernel.ranFor).
   */
  irqsOnSinceStep = false;
  softirqsDisabled = 0;
  rcuDepth = 0;
  readonly held: HeldLock[] = [];
  readonly frames: string[];
  /** The last step this task performed (a finding found in its body is dated by it). */
  lastStep = -1;
  /** Whether the kernel holds a record of what it waits on (Kernel.point with waits; cleared when performed). */
  waits = false;
  /**
   * CPU time (simulated ms) it has run since its last scheduling point that could reschedule: its steps, its
   * udelays and spin-waits (Kernel.point; the soft-lockup watchdog reads it).
   */
  cpuMs = 0;
  /**
   * CPU time (simulated ms) it has run with interrupts off since they were last on (the hard-lockup detector reads
   * it), and the step that started that stretch.
   */
  irqsOffMs = 0;
  irqsOffStep = -1;
  /** The CPU it runs on, as reports name it: the model places no task, so the kernel numbers them (Kernel.started). */
  cpu = 0;

  constructor(
    readonly self: TaskSelf,
    readonly kind: ContextKind,
    /** comm, as the kernel prints it. */
    readonly comm: string,
  ) {
    // Deterministic pids: the task id is deterministic in both runtimes.
    this.pid = self.id - TASK_BASE;
    this.frames = [];
  }

  get id(): number {
    return this.self.id;
  }

  /** irqs_disabled() on its CPU. */
  get irqsDisabled(): boolean {
    return this.irqsOff;
  }

  set irqsDisabled(off: boolean) {
    if (!off && this.irqsOff) this.irqsOnSinceStep = true;
    this.irqsOff = off;
  }

  /** in_atomic(): preemption disabled, or running in interrupt context. */
  inAtomic(): boolean {
    // local_bh_disable() counts in preempt_count too: sleeping with softirqs off is atomic.
    return this.preemptCount > 0 || this.softirqsDisabled > 0 || this.kind === 'softirq' || this.kind === 'hardirq';
  }

  /** The kernel's preempt_count() as printed: softirq/hardirq offsets plus disable depth. */
  preemptCountValue(): number {
    let v = this.preemptCount;
    if (this.kind === 'softirq') v += 0x100;
    if (this.kind === 'hardirq') v += 0x10000;
    if (this.softirqsDisabled > 0) v += 0x200 * this.softirqsDisabled;
    return v;
  }

  /** `comm/pid` as lockdep prints a task. */
  get label(): string {
    return `${this.comm}/${this.pid}`;
  }

  chain(): string[] {
    return [...this.frames];
  }

  /** The frames `internedChain` last interned, the memory it interned them in, and the id it returned. */
  private chainSeen: string[] = [];
  private chainMem: StringTable | undefined;
  private chainId = 0;

  /**
   * The call chain, '\n'-joined (as allocation and free tracks keep it), interned in `mem` — joined and looked
   * up again only when the chain differs from the last call's (a task allocating and freeing in one path interns
   * the same chain over and over). mem.intern(s) gives the same id for the same string, once it gave one.
   */
  internedChain(mem: StringTable): number {
    const f = this.frames;
    const seen = this.chainSeen;
    if (mem === this.chainMem && f.length === seen.length) {
      let same = true;
      for (let i = 0; i < f.length; i++) {
        if (f[i] !== seen[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.chainId;
    }
    const id = mem.intern(f.join('\n'));
    // An id of 0 (the string heap full) is not kept: the next call asks again, as a fresh intern would.
    this.chainMem = id === 0 ? undefined : mem;
    this.chainSeen = [...f];
    this.chainId = id;
    return id;
  }

  holds(addr: number): HeldLock | undefined {
    for (let i = this.held.length - 1; i >= 0; i--) if (this.held[i]?.addr === addr) return this.held[i];
    return undefined;
  }
}
