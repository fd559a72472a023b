// Every size the parameters accept runs, and one past each limit is refused as bad input naming the parameter
// and its limit. "Runs" means a deterministic execution under a small step budget ends by completing or by
// spending that budget — never by an actor or task crashing, nor by a structure sized too small for the topology.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/workloads/index.js';
import { svaParams } from '../src/workloads/sva.js';
import { domainsParams } from '../src/workloads/domains.js';
import { ioasidParams } from '../src/workloads/ioasid.js';
import { MAX_KERNEL_WORDS } from '../src/kernel/memory.js';
import { runDeterministic, StepBudgetExceeded } from '../src/runtime/deterministic.js';
import { InputError } from '../src/runtime/errors.js';
import type { Wire } from '../src/runtime/model.js';
import { run } from '../src/runtime/run.js';
import { channelKey } from '../src/runtime/scheduler.js';
import { createScheduler } from '../src/runtime/schedulers/index.js';
import { TASK_BASE } from '../src/runtime/task.js';
import { buildWorkload } from '../src/runtime/workloads.js';

const BUDGET = 1_500;
const BIN = join(import.meta.dirname, '..', 'bin', 'iommu-sim.js');

/** One execution under the budget: 'done' or 'budget'; anything else is thrown. */
function runs(model: string, params: Record<string, Wire>, budget = BUDGET): 'done' | 'budget' {
  const workload = buildWorkload(model, params);
  const scheduler = createScheduler('random', { seed: 1 });
  scheduler.newExecution();
  try {
    const r = runDeterministic({ workload, seed: 1, scheduler, maxSteps: budget });
    expect(r.accounting.ok).toBe(true);
    return 'done';
  } catch (err) {
    if (err instanceof StepBudgetExceeded) return 'budget';
    throw err;
  }
}

type Limit = readonly [param: string, max: number, others?: Record<string, Wire>];

const SVA: readonly Limit[] = [
  ['devices', 1024],
  ['processes', 4096],
  ['pages', 4096],
  ['pasidBits', 20],
  ['ssidBits', 20, { iommus: 'smmuv3' }],
  ['dmas', 1 << 16],
  ['rounds', 1 << 16, { script: 'stress' }],
  ['flags', 3],
  ['iotlb', 1 << 16],
  ['atc', 1 << 16],
  ['prqDepth', 1 << 16],
  ['drainTimeoutMs', 3_600_000, { teardown: 'quarantine' }],
  ['misbehaveDevice', 1023],
  ['hungTaskSecs', 86_400],
  ['addressSpaces', 1 << 16, { defaultDomain: 'per-device' }],
  ['kjobs', 1 << 24, { kernel: 'dma-api' }],
  ['kbuffers', 1 << 16, { kernel: 'syspasid-map' }],
  ['kdevices', 1024, { kernel: 'dma-api', devices: 4 }],
  ['drmContexts', 1024],
  ['drmRounds', 1 << 20, { drmContexts: 1 }],
];

const DOMAINS: readonly Limit[] = [
  ['groups', 16, { iommus: 'vtd,amd,smmuv3,vtd' }],
  ['groupSize', 4, { multiDevicePasid: 'allowed' }],
  ['processes', 15, { faults: 1, pasidBits: 5 }],
  ['faults', 15, { processes: 1 }],
  ['rounds', 100_000, { script: 'stress' }],
  // script=bench is driven by the benchmark harness (bench/domains.bench.ts), which injects the lookups.
  ['lookups', 1_000_000, { script: 'bench', drivers: 1 }],
  ['pasidBits', 10],
  ['drivers', 8],
];

const IOASID: readonly Limit[] = [
  ['bits', 20],
  ['processes', 64, { bits: 12 }],
  ['vms', 64, { bits: 12 }],
  ['vcpus', 8, { bits: 12, vms: 8 }],
  ['pasids', 1 << 20],
  // IOASID 0 is never allocated, and the system set takes one at least: a VM's set holds at most 2^20 - 2.
  ['quota', (1 << 20) - 2, { vms: 1, processes: 0 }],
  ['systemQuota', (1 << 20) - 1, { processes: 0, vms: 0 }],
  ['iterations', 10_000_000, { mode: 'find-rcu', bits: 8 }],
  ['drivers', 8, { bits: 8 }],
  ['hungTaskSecs', 86_400, { bits: 8 }],
];

const PARSERS: Record<string, (raw: Record<string, Wire>) => unknown> = { sva: svaParams, domains: domainsParams, ioasid: ioasidParams };

describe.each([
  ['sva', SVA],
  ['domains', DOMAINS],
  ['ioasid', IOASID],
] as const)('%s: each parameter at its limit', (model, limits) => {
  it.each(limits.map((l) => [l[0], l[1], l[2] ?? {}] as const))('%s = %i runs; one more is refused naming the limit', (param, max, others) => {
    expect(['done', 'budget']).toContain(runs(model, { ...others, [param]: max }));
    const parse = PARSERS[model] as (raw: Record<string, Wire>) => unknown;
    expect(() => parse({ ...others, [param]: max + 1 })).toThrow(InputError);
    expect(() => parse({ ...others, [param]: max + 1 })).toThrow(new RegExp(`${model}: ${param} must be an integer in -?\\d+\\.\\.${max}, got ${max + 1}`));
  });
});

describe('sva: sizes that used to crash', () => {
  it('a channel key stays exact for a task spawned past 65 k steps (its doorbell reached the device)', () => {
    const late = TASK_BASE + 16 * 80_000 + 3;
    expect(channelKey(late, 0)).not.toBe(channelKey(late, 1));
    expect(Number.isSafeInteger(Math.abs(channelKey(late, 1)))).toBe(true);
    // Every pair the runtimes make is distinct: (actor|pseudo, actor|MEM), (TASK, task), (task, actor).
    const keys = new Set<number>();
    for (const s of [-4, -3, -2, -1, 0, 5, TASK_BASE + 16, late]) for (const r of [-2, 0, 1, 5]) keys.add(channelKey(s, r));
    for (const t of [TASK_BASE + 16, late]) keys.add(channelKey(-4, t));
    expect(keys.size).toBe(8 * 4 + 2);
  });

  it('185 processes on one device, script stress: the whole run completes (67 k steps)', () => {
    expect(runs('sva', { devices: 1, processes: 185, script: 'stress' }, 5_000_000)).toBe('done');
  });

  it('32 devices, 128 processes binding at once: every bind succeeds (the slab arena grows with the topology; it once ran out at 4 096 words: -ENOMEM)', () => {
    const workload = buildWorkload('sva', { iommus: 'vtd,amd,smmuv3,vtd', devices: 32, processes: 128, script: 'life', dmas: 1, pages: 1, pasidBits: 13, ssidBits: 13 });
    const scheduler = createScheduler('random', { seed: 1 });
    scheduler.newExecution();
    const r = runDeterministic({ workload, seed: 1, scheduler, maxSteps: 1_000_000 });
    expect(r.check.counters.bind_failures).toBe(0);
    expect(r.check.counters.unbinds).toBe(128);
  });

  it.each([1, 2, 3, 4])('pasidBits=%i builds and binds', (bits) => {
    expect(runs('sva', { pasidBits: bits }, 100_000)).toBe('done');
  });

  it('threaded, 16 devices, 240 processes, pasidBits 12: the SRCU reader table holds every task', async () => {
    const r = await run({ workload: { name: 'sva', params: { devices: 16, processes: 240, pasidBits: 12, script: 'stress' } }, runtime: 'threaded', seed: 1, workers: 2 });
    expect(r.check.ok, r.check.problems.join('; ')).toBe(true);
  });

  it('the kernel memory limit: the largest topology that fits runs, one device more is refused naming what takes it', () => {
    // 2^20 PASIDs × 15 words a device (the group's pasid_array among them): 8 devices fit in MAX_KERNEL_WORDS, 9 do not.
    expect(MAX_KERNEL_WORDS).toBe(2 ** 27);
    expect(runs('sva', { devices: 8, pasidBits: 20 }, 500)).not.toBeUndefined();
    expect(() => svaParams({ devices: 9, pasidBits: 20 })).not.toThrow();
    expect(() => buildWorkload('sva', { devices: 9, pasidBits: 20 })).toThrow(
      /sva: the topology needs \d+ MiB of simulated kernel memory, more than the 512 MiB the model holds \(PASID state \(devices × 2\^pasidBits × 15 words\): \d+ MiB/,
    );
  });

  it('a full command queue is a wait for room, and a flush longer than the queue goes in batches', () => {
    // Each unbind's teardown also issues 200 TLBI_NH_VA through the SMMU's command queue (arm_smmu_cmdq_issue_cmdlist,
    // by name): more than the queue's 64 entries. Two devices on the one unit: a device's opens and closes take its
    // uacce->mutex one at a time, two devices' flushes meet.
    const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-limits-'));
    const flood = join(dir, 'flood.cjs');
    writeFileSync(
      flood,
      `exports.extend = (ctx) => {
  for (let u = 0; u < ctx.units.length; u++) {
    const orig = ctx.iommuOps(u);
    ctx.setIommuOps(u, { ...orig, *remove_dev_pasid(t, dev, pasid, mm, why) {
      yield* orig.remove_dev_pasid(t, dev, pasid, mm, why);
      const tlbi = Array.from({ length: 200 }, (_, i) => ({ opcode: 0x12 /* CMDQ_OP_TLBI_NH_VA */, asid: 1, start: i, pages: 1 }));
      yield* ctx.k.fn.arm_smmu_cmdq_issue_cmdlist(t, dev.iommu, tlbi, true);
    } });
  }
};`,
    );
    const workload = buildWorkload('sva', { iommus: 'smmuv3', devices: 2, processes: 8, extension: flood });
    const scheduler = createScheduler('random', { seed: 1 });
    scheduler.newExecution();
    const r = runDeterministic({ workload, seed: 1, scheduler });
    expect(r.findings).toEqual([]);
    expect(r.check.ok, r.check.problems.join('; ')).toBe(true);
    expect(r.check.counters.commands).toBeGreaterThan(8 * 200);
    expect(r.trace.toText().split('\n').filter((l) => / <- task: cmdq full$/.test(l)).length).toBeGreaterThan(0);
  });

  it('the CLI refuses a size past a limit with exit 2 and the message, no stack', () => {
    const r = spawnSync(process.execPath, [BIN, 'sva', '--runtime', 'deterministic', '--set', 'processes=4097'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/sva: processes must be an integer in 0\.\.4096, got 4097/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const m = spawnSync(process.execPath, [BIN, 'sva', '--runtime', 'deterministic', '--set', 'processes=4096', '--set', 'pages=4096'], { encoding: 'utf8', timeout: 60_000 });
    expect(m.status).toBe(2);
    expect(m.stderr).toMatch(/address spaces \(processes × pages\)/);
  });
});
