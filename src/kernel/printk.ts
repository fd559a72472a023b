// The kernel log's urgent messages (include/linux/printk.h, kernel/printk/printk.c): pr_emerg, pr_alert and
// pr_crit print at KERN_EMERG (0, "system is unusable"), KERN_ALERT (1, "action must be taken immediately") and
// KERN_CRIT (2, "critical conditions"). The kernel's own checkers (KASAN, lockdep, the watchdogs, WARN) print
// through printk too and are findings of their own kinds here; of what a driver prints, a message at KERN_CRIT or
// more urgent is a finding of kind `printk` — the report is the line, as dmesg shows it, and the task's stack.
// Less urgent levels (pr_err and below) only say how the code got on, and are a step of the task with the line as
// its label, as before.
import type { KTask } from './context.js';
import { callTrace, taskFinding } from './findings.js';
import type { Kernel, KGen } from './kernel.js';

export const KERN_EMERG = 0;
export const KERN_ALERT = 1;
export const KERN_CRIT = 2;
export const KERN_ERR = 3;
export const KERN_WARNING = 4;
export const KERN_NOTICE = 5;
export const KERN_INFO = 6;
export type LogLevel = 0 | 1 | 2 | 3 | 4 | 5 | 6;

/** The most urgent levels: what the kernel prints when something must be acted on (a finding). */
const URGENT = KERN_CRIT;

/** printk(level, line): the line (pr_fmt's prefix included) printed by t, one step; a finding at KERN_CRIT or more urgent. */
export function* printk(k: Kernel, t: KTask, level: LogLevel, line: string): KGen {
  // The log line is the task's own finding: nothing shared is touched.
  yield* k.stepOn(t, line, [], (env) => {
    if (level > URGENT) return;
    k.report(
      taskFinding('printk', t, env.step, line, [
        `iommu-sim: printed at loglevel ${level} (${['KERN_EMERG', 'KERN_ALERT', 'KERN_CRIT'][level]}) by ${t.comm}/${t.pid} on CPU ${t.cpu}`,
        ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
      ]),
    );
  });
}

/** pr_alert(line): printk(KERN_ALERT, line). */
export function pr_alert(k: Kernel, t: KTask, line: string): KGen {
  return printk(k, t, KERN_ALERT, line);
}
