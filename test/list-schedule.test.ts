// The list schedule behind scripts/contention.mjs's estimate (scripts/list-schedule.mjs): dependencies through
// program order, messages, words and the fallback lock; a greedy schedule on n workers; the longest chain.
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { criticalPath, FALLBACK, listSchedule, MESSAGE, PROGRAM_ORDER } from '../scripts/list-schedule.mjs';
import { isRead, read, wordOf } from '../src/runtime/footprint.js';

const fp = { isRead, wordOf };
interface Step {
  thread: number;
  fp: number[] | null;
  sendStep: number;
}
const step = (thread: number, f: number[] | null, sendStep = -1): Step => ({ thread, fp: f, sendStep });

describe('list schedule', () => {
  it('independent threads run side by side; a word written by both orders them', () => {
    const apart = [step(0, [1]), step(1, [2]), step(0, []), step(1, [])];
    expect(listSchedule(apart, 2, (i: number) => (apart[i] as Step).thread, fp)).toBe(2);
    const shared = [step(0, [5]), step(1, [5]), step(0, []), step(1, [])];
    expect(listSchedule(shared, 2, (i: number) => (shared[i] as Step).thread, fp)).toBe(3);
    expect(listSchedule(shared, 1, () => 0, fp)).toBe(4);
  });

  it('readers of one word are not ordered among themselves, a writer follows them all', () => {
    const steps = [step(0, [read(7)]), step(1, [read(7)]), step(2, [7])];
    expect(listSchedule(steps, 3, (i: number) => (steps[i] as Step).thread, fp)).toBe(2);
    expect(criticalPath(steps, fp).length).toBe(2);
  });

  it('a delivery follows its send; a fallback step follows everything before it and precedes everything after', () => {
    const msg = [step(0, []), step(1, [], 0)];
    expect(listSchedule(msg, 2, (i: number) => (msg[i] as Step).thread, fp)).toBe(2);
    const fb = [step(0, [1]), step(1, [2]), step(2, null), step(0, [3]), step(1, [4])];
    expect(listSchedule(fb, 3, (i: number) => (fb[i] as Step).thread, fp)).toBe(3);
  });

  it('a worker runs another of its steps while one waits: not the recorded order worker by worker', () => {
    // Thread 1's first step waits for thread 0's word; thread 2, on the same worker as thread 1, need not wait.
    const steps = [step(0, [9]), step(0, []), step(1, [9]), step(2, []), step(2, [])];
    const worker = [0, 1, 1];
    expect(listSchedule(steps, 2, (i: number) => worker[(steps[i] as Step).thread] as number, fp)).toBe(3);
  });

  it('the longest chain says what links it: program order, a message, a word, the fallback', () => {
    const steps = [step(0, [5]), step(1, [5]), step(1, []), step(2, [], 2), step(3, null)];
    const cp = criticalPath(steps, fp);
    expect(cp.length).toBe(5);
    expect(Object.fromEntries(cp.links)).toEqual({ [5]: 1, [PROGRAM_ORDER]: 1, [MESSAGE]: 1, [FALLBACK]: 1 });
  });
});
