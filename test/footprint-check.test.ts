// footprint-check.ts: a declared footprint is checked against what its step wrote (deterministic runtime,
// checkFootprints), and control.ts locks a computed footprint again when it changed under its locks.
import { describe, expect, it } from 'vitest';
import { Control } from '../src/runtime/control.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import { FootprintViolation } from '../src/runtime/footprint-check.js';
import { type Footprint, read } from '../src/runtime/footprint.js';
import type { Workload } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import type { Point, TaskBody } from '../src/runtime/task.js';

let mem: Int32Array = new Int32Array(0);

/** A point writing word `writes` (and reading word 0), declaring `fp`. */
function point(label: string, writes: number, fp: Footprint | (() => Footprint)): Point {
  const perform = (): void => {
    mem[writes] = (mem[0] as number) + 1;
  };
  const base = { label, ready: () => true, perform };
  return typeof fp === 'function' ? { ...base, footprintOf: fp } : { ...base, footprint: fp };
}

function workload(body: () => TaskBody): Workload {
  return {
    name: 'fp',
    params: {},
    actors: [],
    initial: [],
    sharedWords: 8,
    tasks: { t: body },
    initialTasks: [{ task: 't', args: null }],
    check: () => ({ ok: true, problems: [], counters: {} }),
    // The run's memory reaches the points through `mem`, set when the runtime attaches the monitor.
    monitor: {
      findings: [],
      attach: (shared) => {
        mem = shared;
      },
    },
  };
}

function run(w: Workload): void {
  const s = new RandomScheduler(1);
  s.newExecution();
  runDeterministic({ workload: w, seed: 1, scheduler: s, checkFootprints: true });
}

describe('footprint checker', () => {
  it('passes a step that writes only the words it declares written', () => {
    const w = workload(function* () {
      yield point('ok', 3, [read(0), 3]);
    });
    expect(() => run(w)).not.toThrow();
  });

  it('stops a step that writes a word it does not declare, naming the step and the word', () => {
    const w = workload(function* () {
      yield point('sloppy', 5, [read(0), 3]);
    });
    expect(() => run(w)).toThrow(FootprintViolation);
    expect(() => run(w)).toThrow(/sloppy \(task t\/0, step \d+\): wrote word 5, not declared written/);
  });

  it('refuses a word declared as read only that the step wrote, and a computed footprint that writes', () => {
    const readOnly = workload(function* () {
      yield point('read-only', 3, [read(3)]);
    });
    expect(() => run(readOnly)).toThrow(/declared as read only/);
    const writing = workload(function* () {
      yield point('impure', 3, () => {
        mem[6] = 1;
        return [3];
      });
    });
    expect(() => run(writing)).toThrow(/its computed footprint wrote word 6: a footprint function must only read/);
  });
});

describe('Control: a computed footprint that changes under its locks', () => {
  it('is locked again with the union, and the step runs on what it computed the second time', () => {
    const ctl = Control.create(2);
    let walk: Footprint = [1];
    const seen: (Footprint | undefined)[] = [];
    ctl.sequenced(
      () => seen.push(ctl.current),
      false,
      walk,
      () => {
        const now = walk;
        walk = [1, 2000]; // what the walk reads changed between the two evaluations
        return now === walk ? now : [1, 2000];
      },
    );
    expect(ctl.relocked).toBe(1);
    expect(seen[0]).toEqual([1, 2000]);
    expect(ctl.striped).toBe(1);
  });
});
