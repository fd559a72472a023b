// include/linux/irqflags.h: local_irq_disable / local_irq_enable and local_irq_save / local_irq_restore on the
// task's CPU. Instructions, not scheduling points: what they change is what the checkers read — might_sleep
// (sleeping with interrupts off) and the NMI watchdog (kernel/watchdog.ts: a CPU spinning with them off).
import type { KTask } from './context.js';

export function local_irq_disable(t: KTask): void {
  t.irqsDisabled = true;
}

export function local_irq_enable(t: KTask): void {
  t.irqsDisabled = false;
}

/** local_irq_save: interrupts off; the previous state, for local_irq_restore. */
export function local_irq_save(t: KTask): boolean {
  const flags = t.irqsDisabled;
  t.irqsDisabled = true;
  return flags;
}

export function local_irq_restore(t: KTask, flags: boolean): void {
  t.irqsDisabled = flags;
}
