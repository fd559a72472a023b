// The kernel log's urgent messages (src/kernel/printk.ts): a line printed at KERN_CRIT or more urgent (pr_crit,
// pr_alert, pr_emerg) is a finding of kind `printk` titled with the line, with the printing task's call trace; a
// line at KERN_ERR or less urgent is only a step of the task. Deterministic runtime, a fixed seed.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import type { Kernel, KGen } from '../src/kernel/kernel.js';
import { KERN_ALERT, KERN_CRIT, KERN_EMERG, KERN_ERR, KERN_INFO, KERN_WARNING, type LogLevel, printk } from '../src/kernel/printk.js';
import type { Finding } from '../src/runtime/model.js';
import { kernel, runOnce, tasksWorkload } from './kernel-harness.js';

/** A kthread that prints one line at `level` from inside a function of its own. */
function run(level: LogLevel): readonly Finding[] {
  const k = kernel({});
  const define = (kk: Kernel) => {
    kk.task('printer', 'kthread', function* (t: KTask): KGen {
      yield* kk.call(t, 'planted_report', printk(kk, t, level, 'planted: something went wrong'));
    });
    return ['printer'];
  };
  return runOnce(tasksWorkload(k, 'printk', define(k)), 1, false, true).findings;
}

describe('printk: urgent kernel messages are findings', () => {
  it('KERN_EMERG, KERN_ALERT, KERN_CRIT: one finding of kind printk, the line its title, the call trace in its text', () => {
    for (const level of [KERN_EMERG, KERN_ALERT, KERN_CRIT] as const) {
      const f = run(level);
      expect(f.map((x) => x.kind)).toEqual(['printk']);
      expect(f[0]?.title).toBe('planted: something went wrong');
      expect(f[0]?.text).toContain('planted_report');
    }
  });

  it('KERN_ERR, KERN_WARNING, KERN_INFO: no finding', () => {
    for (const level of [KERN_ERR, KERN_WARNING, KERN_INFO] as const) expect(run(level)).toEqual([]);
  });
});
