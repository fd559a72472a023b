// An actor that throws ends the run with an error naming the actor, its state and the event — in both
// runtimes, and never as a hang.
import { describe, expect, it } from 'vitest';
import { ActorFailure } from '../src/runtime/errors.js';
import { run } from '../src/runtime/run.js';
import { selftest } from './helpers.js';

describe('an actor that throws', () => {
  it('deterministic: ActorFailure names selftest/0, its state and the event', async () => {
    const p = run({ workload: selftest({ crash: 3 }), runtime: 'deterministic', seed: 1 });
    await expect(p).rejects.toBeInstanceOf(ActorFailure);
    await expect(p).rejects.toThrow("actor selftest/0 threw in state 'running' handling event 'pong': planted crash at iteration 3");
  });

  it('threaded: the same failure comes back from the worker and every worker is stopped', async () => {
    const p = run({ workload: selftest({ crash: 3 }), runtime: 'threaded', seed: 1, workers: 2 });
    await expect(p).rejects.toThrow("actor selftest/0 threw in state 'running' handling event 'pong': planted crash at iteration 3");
  });
});
