// The lockup detectors (kernel/watchdog.c, watchdog_perf.c): a CPU that has not scheduled for more than
// 2 × watchdog_thresh (softlockup_thresh: 20 s by default) is reported by its watchdog hrtimer
// (watchdog_timer_fn, is_softlockup); a CPU whose interrupts have been off so long that the hrtimer could not run
// for watchdog_thresh (10 s) is reported by the NMI watchdog instead (watchdog_overflow_callback →
// watchdog_hardlockup_check: hrtimer_interrupts did not move) — the soft-lockup timer, an interrupt, never ran.
// Here a task's CPU time since its last scheduling point that could reschedule is what the kernel measures as
// the time its CPU's stopper thread has not run: its steps (STEP_MS each), its udelay/ndelay/mdelay and its
// spin-waits (Waits.spins) count; a sleeping wait or a cond_resched() that can reschedule (Kernel.point /
// Kernel.resched) starts it again. Of that time, what it ran with interrupts off (spin_lock_irqsave held,
// local_irq_disable) since they were last on is what the NMI watchdog measures. The accounting is in
// Kernel.ranFor; this file is the reports.
import type { KTask } from './context.js';
import { callTrace, type KernelFinding, taskFinding } from './findings.js';

/** print_modules(), then show_regs() of the task: its CPU, pid and comm, where it was (RIP), its call trace; then why. */
function lockupBody(t: KTask, cpu: number, why: string): string[] {
  const chain = t.chain();
  return [
    'Modules linked in:',
    `CPU: ${cpu} PID: ${t.pid} Comm: ${t.comm} Not tainted (iommu-sim)`,
    `RIP: 0010:${chain[chain.length - 1] ?? '?'}`,
    ...callTrace(chain, t.kind === 'softirq' || t.kind === 'hardirq'),
    `iommu-sim: ${why}; CPU#${cpu}: the model places no task on a CPU; the n-th task to start runs on CPU n mod cpus`,
  ];
}

/**
 * "watchdog: BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]" (pr_fmt "watchdog: ") and what follows it:
 * print_modules(), then show_regs() of the task the watchdog's timer interrupted — its CPU, pid and comm, where it
 * was (RIP) and its call trace, unwound from the interrupted registers. The seconds are the CPU time it ran
 * without a scheduling point, in whole seconds as %u prints them.
 */
export function softLockupFinding(t: KTask, cpu: number, step: number, cpuMs: number): KernelFinding {
  const title = `watchdog: BUG: soft lockup - CPU#${cpu} stuck for ${Math.floor(cpuMs / 1000)}s! [${t.comm}:${t.pid}]`;
  const body = lockupBody(t, cpu, `${(cpuMs / 1000).toFixed(3)} s of CPU time (its steps, delays and spin-waits) since its last scheduling point that could reschedule`);
  return taskFinding('soft_lockup', t, step, title, body);
}

/**
 * "NMI watchdog: Watchdog detected hard LOCKUP on cpu %d" (watchdog_hld.c / watchdog_perf.c's pr_fmt, the perf
 * NMI detector) and what follows it: print_modules(), then show_regs() of the task the NMI interrupted — its CPU,
 * pid and comm, where it was (RIP) and its call trace. The seconds are those it ran with interrupts off.
 */
export function hardLockupFinding(t: KTask, cpu: number, step: number, offMs: number, offStep: number): KernelFinding {
  const title = `NMI watchdog: Watchdog detected hard LOCKUP on cpu ${cpu}`;
  const body = lockupBody(t, cpu, `${(offMs / 1000).toFixed(3)} s of CPU time with interrupts off (since step ${offStep}), past watchdog_thresh`);
  return taskFinding('hard_lockup', t, step, title, body);
}
