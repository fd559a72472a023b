// The spin-or-park policy (src/runtime/park.ts): a pure function of the runnable threads, the host's cores,
// the foreign load and the failure streak; and the governor that keeps those inputs for one waiting thread.
import { describe, expect, it } from 'vitest';
import {
  chooseWait,
  FAILED_SPINS_TO_PARK,
  FOREIGN_NOISE,
  foreignTaken,
  type HostLoad,
  PROBE_EVERY,
  ProcStatLoad,
  procBusySeconds,
  spinUntil,
  WaitGovernor,
  type WaitInput,
} from '../src/runtime/park.js';

const idle2: WaitInput = { cores: 2, runnable: 2, foreignCores: 0, failedSpins: 0, parkedSinceSpin: 0 };

describe('chooseWait', () => {
  it('spins while the runnable threads fit the cores of an idle host', () => {
    expect(chooseWait(idle2, 500)).toEqual({ kind: 'spin', micros: 500 });
    expect(chooseWait({ ...idle2, runnable: 1, cores: 1 }, 50)).toEqual({ kind: 'spin', micros: 50 });
  });

  it('parks when asked for no spin at all', () => {
    expect(chooseWait(idle2, 0)).toEqual({ kind: 'park', why: 'no-spin' });
  });

  it('parks when the run alone has more runnable threads than cores', () => {
    expect(chooseWait({ ...idle2, runnable: 3 }, 500)).toEqual({ kind: 'park', why: 'oversubscribed' });
    expect(chooseWait({ ...idle2, runnable: 3, foreignCores: null }, 500)).toEqual({ kind: 'park', why: 'oversubscribed' });
  });

  it('parks when one competing busy process leaves fewer free cores than runnable threads', () => {
    expect(chooseWait({ ...idle2, foreignCores: 1 }, 500)).toEqual({ kind: 'park', why: 'busy-host' });
    // The same process beside a lone runnable thread leaves it a core.
    expect(chooseWait({ ...idle2, runnable: 1, foreignCores: 1 }, 500).kind).toBe('spin');
    // A partly busy neighbour (0.6 core) takes a whole core from a 2-thread exchange.
    expect(chooseWait({ ...idle2, foreignCores: 0.6 }, 500).kind).toBe('park');
  });

  it('ignores foreign load under the noise floor, and an unknown one', () => {
    expect(chooseWait({ ...idle2, foreignCores: FOREIGN_NOISE - 0.01 }, 500).kind).toBe('spin');
    expect(chooseWait({ ...idle2, foreignCores: null }, 500).kind).toBe('spin');
  });

  it('parks after a streak of failed spins, probing with a spin every PROBE_EVERY waits', () => {
    const failing = { ...idle2, failedSpins: FAILED_SPINS_TO_PARK };
    expect(chooseWait({ ...idle2, failedSpins: FAILED_SPINS_TO_PARK - 1 }, 500).kind).toBe('spin');
    const kinds = Array.from({ length: 2 * PROBE_EVERY }, (_, n) => chooseWait({ ...failing, parkedSinceSpin: n }, 500).kind);
    expect(kinds.filter((k) => k === 'spin')).toHaveLength(2);
    expect(kinds[PROBE_EVERY - 1]).toBe('spin');
    expect(chooseWait({ ...failing, parkedSinceSpin: 0 }, 500)).toEqual({ kind: 'park', why: 'spins-failing' });
  });

  it('is deterministic: the same inputs give the same choice', () => {
    const inputs: WaitInput[] = [];
    for (const cores of [1, 2, 16, 64]) {
      for (const runnable of [1, 2, 17, 65]) {
        for (const foreignCores of [null, 0, 0.5, 1, 8]) inputs.push({ cores, runnable, foreignCores, failedSpins: 0, parkedSinceSpin: 0 });
      }
    }
    const once = inputs.map((i) => chooseWait(i, 100));
    expect(inputs.map((i) => chooseWait(i, 100))).toEqual(once);
    // Never spins with more runnable threads than cores, whatever else holds.
    inputs.forEach((i, n) => {
      if (i.runnable > i.cores) expect(once[n]?.kind).toBe('park');
    });
  });

  it('takes whole cores for foreign load past the noise floor', () => {
    expect(foreignTaken(0)).toBe(0);
    expect(foreignTaken(0.2)).toBe(0);
    expect(foreignTaken(0.9)).toBe(1);
    expect(foreignTaken(1.1)).toBe(1);
    expect(foreignTaken(1.5)).toBe(2);
  });
});

/** A host load that answers what the test sets. */
class FixedLoad implements HostLoad {
  constructor(public cores: number | null) {}
  foreignCores(): number | null {
    return this.cores;
  }
}

describe('WaitGovernor', () => {
  it('asks the runnable count and the host load at every wait', () => {
    let runnable = 1;
    const host = new FixedLoad(0);
    const g = new WaitGovernor({ cores: 2, runnable: () => runnable, host });
    expect(g.spinFor(100)).toBe(100);
    runnable = 2;
    host.cores = 1;
    expect(g.spinFor(100)).toBe(0);
    expect(g.lastChoice).toEqual({ kind: 'park', why: 'busy-host' });
    host.cores = 0;
    expect(g.spinFor(100)).toBe(100);
    expect([g.spins, g.parks]).toEqual([2, 1]);
  });

  it('stops spinning after failed spins, probes, and spins again once a spin succeeds', () => {
    const g = new WaitGovernor({ cores: 2, host: null });
    for (let i = 0; i < FAILED_SPINS_TO_PARK; i++) {
      expect(g.spinFor(100)).toBe(100);
      g.spun(false);
    }
    const waits = Array.from({ length: PROBE_EVERY }, () => g.spinFor(100));
    expect(waits.slice(0, -1).every((m) => m === 0)).toBe(true);
    expect(waits[PROBE_EVERY - 1]).toBe(100); // the probe
    g.spun(true);
    expect(g.spinFor(100)).toBe(100);
  });
});

describe('spinUntil', () => {
  it('returns as soon as the condition holds, and false for no spin', () => {
    let n = 0;
    expect(spinUntil(1_000_000, () => ++n === 3)).toBe(true);
    expect(n).toBe(3);
    expect(spinUntil(0, () => true)).toBe(false);
  });

  it('gives up when the time is spent', () => {
    expect(spinUntil(1, () => false)).toBe(false);
  });
});

describe('ProcStatLoad', () => {
  it.runIf(procBusySeconds() !== undefined)('needs two samples, then reports a non-negative load, sampled at most every 100 ms', () => {
    const load = new ProcStatLoad(2);
    expect(load.foreignCores(0)).toBeNull();
    const first = load.foreignCores(150);
    expect(first).toBeTypeOf('number');
    expect(first as number).toBeGreaterThanOrEqual(0);
    expect(load.foreignCores(200)).toBe(first); // within HOST_SAMPLE_MS of the last sample: the same value
  });
});
