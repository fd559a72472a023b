// Recording and replay: a schedule replays to the same trace; a replay that cannot follow its recording
// stops with a ReplayDivergence saying where (step, actor) and what was expected and what happened.
import { describe, expect, it } from 'vitest';
import { ReplayDivergence } from '../src/runtime/errors.js';
import { replay } from '../src/runtime/run.js';
import { Schedule } from '../src/runtime/schedule.js';
import { detRun } from './helpers.js';

describe('replay', () => {
  it('a deterministic recording replays to the same trace hash, through the file format', () => {
    const r = detRun('pct', 5, { actors: 4, messages: 40 });
    const bytes = r.schedule.encode();
    expect(bytes.length).toBeLessThan(r.steps * 6 + 512); // a few bytes a step
    const back = Schedule.decode(bytes);
    expect(back.length).toBe(r.steps);
    const rp = replay(back);
    expect(rp.traceHash).toBe(r.traceHash);
    expect(rp.matches).toBe(true);
  });

  it('a schedule for other workload parameters diverges at a named step', () => {
    const r = detRun('random', 3, { actors: 3, messages: 10, seed: 3 });
    // Same steps, but the workload's seed changes who pings whom.
    const other = new Schedule(
      { ...r.schedule.meta, workload: { name: 'selftest', params: { ...r.schedule.meta.workload.params, seed: 4 } } },
      ...columns(r.schedule),
    );
    let err: unknown;
    try {
      replay(other);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReplayDivergence);
    const d = err as ReplayDivergence;
    expect(d.step).toBeGreaterThan(0);
    expect(d.message).toMatch(/^replay diverged at step \d+: expected selftest\/\d+ to handle '[\w.]+' from [\w/]+, but /);
  });

  it('a truncated schedule reports that the run goes on past the recording', () => {
    const r = detRun('random', 3, { actors: 3, messages: 10 });
    const [rc, sc, ec, names] = columns(r.schedule);
    const cut = new Schedule(r.schedule.meta, rc.slice(0, 20), sc.slice(0, 20), ec.slice(0, 20), names);
    expect(() => replay(cut)).toThrow(/replay diverged at step 20: expected the run to end after 20 steps, but \d+ steps are still enabled/);
  });

  it('a schedule file that is not one is bad input', () => {
    expect(() => Schedule.decode(new Uint8Array([1, 2, 3]), 'x.sched')).toThrow(/x.sched: not/);
  });
});

function columns(s: Schedule): [Int32Array, Int32Array, Int32Array, Map<number, string>] {
  const n = s.length;
  const r = new Int32Array(n);
  const snd = new Int32Array(n);
  const e = new Int32Array(n);
  const names = new Map<number, string>();
  for (let i = 0; i < n; i++) {
    r[i] = s.receiver(i);
    snd[i] = s.sender(i);
    e[i] = s.event(i);
    names.set(s.event(i), s.eventName(i));
  }
  return [r, snd, e, names];
}
