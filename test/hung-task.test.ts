// Hung-task reports claim only time that passed: when nothing is left but blocked tasks, the deterministic
// clock skips the idle time up to khungtaskd's timeout, and the report states the blocked duration read from
// that clock; a run that ends before the timeout (the threaded runtime's real clock) claims no duration.
import { describe, expect, it } from 'vitest';
import { STEP_MS } from '../src/runtime/deterministic.js';
import type { BlockedTask } from '../src/runtime/model.js';
import { kernel, pause, runOnce, tasksWorkload, words } from './kernel-harness.js';

/** A task that works for `steps` steps and then waits for a word nobody writes; the time it blocked is kept. */
function blockedRun(hungTaskSecs: number, steps: number) {
  const k = kernel({ hungTaskSecs });
  const w = words(k, 2);
  let blockedAt = -1;
  k.task('waiter', 'kthread', function* (t) {
    yield* pause(k, t, steps);
    yield* k.step(t, 'about to wait', () => undefined);
    blockedAt = k.now();
    yield* w.until(t, 'a word nobody writes', () => w.get(0) === 1);
  });
  return { k, run: () => runOnce(tasksWorkload(k, 'hung', ['waiter']), 1), blockedAt: () => blockedAt };
}

describe('hung task', () => {
  for (const secs of [120, 7]) {
    it(`hung_task_timeout_secs=${secs}: the stated duration is the simulated time the task was blocked`, () => {
      const h = blockedRun(secs, 25);
      const r = h.run();
      const hung = r.findings.filter((f) => f.kind === 'hung_task');
      expect(hung).toHaveLength(1);
      const stated = Number(/blocked for more than (\d+) seconds\./.exec(hung[0]?.title ?? '')?.[1]);
      // The clock went from the moment the task blocked to the report, and nothing else moved it.
      const elapsed = h.k.now() - h.blockedAt();
      expect(h.blockedAt()).toBeGreaterThan(0);
      expect(stated).toBe(Math.floor(elapsed / 1000));
      expect(elapsed).toBeGreaterThanOrEqual(secs * 1000);
      expect(elapsed).toBeLessThan(secs * 1000 + 10 * STEP_MS);
    });
  }

  it('a task found blocked before the timeout has passed is reported with no duration claimed', () => {
    const k = kernel({ hungTaskSecs: 120 });
    // No runtime clock skip: the kernel is asked about a blocked task it has never seen wait.
    k.attach(new Int32Array(k.words), () => 5);
    const b: BlockedTask = { id: 1_000_001, name: 'worker/7', label: 'wait', blockedOn: { what: 'completion done', who: 'worker/7', context: [] } };
    k.stuck([b], 5);
    expect(k.findings.map((f) => f.title)).toEqual(['INFO: task worker:7 blocked, and nothing left in the run can wake it']);
    expect(k.findings[0]?.text).not.toMatch(/seconds/);
  });

  it('a waiting task that is woken is not reported, and the clock does not skip', () => {
    const k = kernel({ hungTaskSecs: 120 });
    const w = words(k, 1);
    k.task('waiter', 'kthread', function* (t) {
      yield* w.until(t, 'the word', () => w.get(0) === 1);
    });
    k.task('waker', 'kthread', function* (t) {
      yield* pause(k, t, 5);
      yield* w.set(t, 0, 1);
    });
    const r = runOnce(tasksWorkload(k, 'woken', ['waiter', 'waker']), 3);
    expect(r.findings).toEqual([]);
    expect(k.now()).toBeLessThan(1);
  });
});
