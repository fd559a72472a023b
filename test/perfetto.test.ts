// The Perfetto export of a shipped race (the KASAN use-after-free of races/iommu-sva-06e14c36e20b-…): found by
// `explore`, exported by `trace --format perfetto` as a user would, then read as the trace-event JSON it is —
// every track named, the finding once as an instant event on the task the report names, lock holds and message
// arrows paired. The happens-before arrows are checked on a small trace that carries edges.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PerfettoEvent, toPerfetto } from '../src/report/perfetto.js';
import { TASK } from '../src/runtime/model.js';
import { TASK_BASE } from '../src/runtime/task.js';
import { EventNames, Trace } from '../src/runtime/trace.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'iommu-sim.js');
const RACE = join(ROOT, 'races', 'iommu-sva-06e14c36e20b-unbind-late-iommu-mm.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'iommu-sim-perfetto-'));
let events: PerfettoEvent[];

beforeAll(() => {
  const sched = join(tmp, 'race.sched');
  const out = join(tmp, 'race.json');
  const found = spawnSync(process.execPath, [BIN, 'explore', RACE, '--workers', '1', '--record', sched], { encoding: 'utf8', timeout: 120_000 });
  expect(found.status, found.stderr + found.stdout).toBe(0);
  const t = spawnSync(process.execPath, [BIN, 'trace', sched, '--format', 'perfetto', '-o', out], { encoding: 'utf8', timeout: 60_000 });
  expect(t.status, t.stderr).toBe(0);
  events = (JSON.parse(readFileSync(out, 'utf8')) as { traceEvents: PerfettoEvent[] }).traceEvents;
}, 180_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const key = (e: { pid: number; tid: number }): string => `${e.pid}/${e.tid}`;

function names(evs: readonly PerfettoEvent[]) {
  const threads = new Map<string, string>();
  const processes = new Map<number, string>();
  for (const e of evs) {
    const name = e.args?.name;
    if (e.ph !== 'M' || typeof name !== 'string') continue;
    if (e.name === 'thread_name') threads.set(key(e), name);
    if (e.name === 'process_name') processes.set(e.pid, name);
  }
  return { threads, processes };
}

describe('the Perfetto export of a shipped race', () => {
  it('names every track, tasks as comm/pid and actors by kind and id, each process group too', () => {
    const { threads, processes } = names(events);
    const used = events.filter((e) => e.ph !== 'M');
    expect(used.length).toBeGreaterThan(100);
    const unnamed = [...new Set(used.filter((e) => e.s !== 'g').map(key))].filter((k) => !threads.get(k));
    expect(unnamed).toEqual([]);
    expect([...new Set(used.map((e) => e.pid))].filter((p) => !processes.get(p))).toEqual([]);
    const trackNames = [...threads.values()];
    expect(new Set(trackNames).size).toBe(trackNames.length);
    // The tasks the KASAN report names, as it names them.
    expect(trackNames).toContain('proc0/1');
    expect(trackNames.filter((n) => /^iommu_sva_domain_free_rcu\/\d+$/.test(n)).length).toBeGreaterThan(0);
    // Actors by kind and id: the IOMMU unit, the device, each mm.
    expect(trackNames).toContain('iommu dmar0');
    expect(trackNames).toContain('dev/0000:01:00.0');
    expect(trackNames).toContain('mm/1');
    expect([...processes.values()]).toEqual(expect.arrayContaining(['iommu dmar0', 'dev/0000:01:00.0']));
    // Task slices sit on task tracks: the 112-of-144 unnamed slices of the old export cannot come back.
    const taskSlices = used.filter((e) => e.ph === 'X' && e.cat === 'task');
    expect(taskSlices.length).toBeGreaterThan(0);
    expect(taskSlices.every((e) => /\/\d+$/.test(threads.get(key(e)) ?? ''))).toBe(true);
  });

  it('marks the finding once, with its text, on the track of the task the report names', () => {
    const instants = events.filter((e) => e.ph === 'i');
    expect(instants.length).toBe(1);
    const f = instants[0] as PerfettoEvent;
    expect(f.cat).toBe('finding');
    expect(f.name).toBe('BUG: KASAN: slab-use-after-free in iommu_sva_unbind_device');
    expect(String(f.args?.text)).toMatch(/^BUG: KASAN: slab-use-after-free in iommu_sva_unbind_device\nRead of size 4 at addr \w+ by task proc0\/1\n/);
    expect(f.args?.where).toBe('proc0/1');
    expect(names(events).threads.get(key(f))).toBe('proc0/1');
  });

  it('draws lock holds as begin/end pairs on the holder and every message as one arrow', () => {
    const begins = events.filter((e) => e.ph === 'b' && e.cat === 'lock');
    const ends = new Map(events.filter((e) => e.ph === 'e' && e.cat === 'lock').map((e) => [e.id, e]));
    expect(begins.length).toBeGreaterThan(0);
    expect(begins.map((e) => e.name)).toContain('holds &uacce->mutex');
    for (const b of begins) {
      const e = ends.get(b.id);
      expect(e && key(e)).toBe(key(b));
      expect(e?.ts ?? 0).toBeGreaterThan(b.ts ?? 0);
    }
    const starts = events.filter((e) => e.ph === 's' && e.cat === 'message');
    const finishes = new Set(events.filter((e) => e.ph === 'f' && e.cat === 'message').map((e) => e.id));
    expect(starts.length).toBeGreaterThan(0);
    expect(starts.every((s) => finishes.has(s.id))).toBe(true);
  });
});

describe('happens-before edges, when a trace carries them', () => {
  it('draws the ones the finding depends on as arrows, and not the others', () => {
    const ev = new EventNames();
    const a = TASK_BASE; // spawned by the run (ENV): pids 0 and 1
    const b = TASK_BASE + 1;
    const rec = (step: number, actor: number, name: string) => [step, actor, TASK, -1, ev.hash(name), 0];
    const records = Int32Array.from([
      ...rec(0, a, 'ida_free(pasid_ida, 1)'),
      ...rec(1, b, 'kfree(x)'),
      ...rec(2, b, 'ida_alloc_range(pasid_ida, 1, 255)'),
      ...rec(3, a, 'spin_lock(&y)'),
      ...rec(4, a, 'spin_unlock(&y)'),
    ]);
    // (from, to, object word) triples, as the threaded runtime records them: pasid_ida's word 345, x's 77.
    const trace = new Trace(records, [], ev.map, new Map([[a, 'proc0'], [b, 'proc1']])).withHb(Int32Array.from([0, 2, 345, 1, 3, 77]));
    const finding = { kind: 'stale_translation', title: 'PASID 1 reused', text: 'PASID 1 reused', step: 2, where: 'proc1/1' };
    const out = toPerfetto(trace, 't', [finding]).traceEvents;
    const arrows = out.filter((e) => e.cat === 'hb');
    expect(arrows.map((e) => [e.ph, e.name, e.ts])).toEqual([
      ['s', 'happens-before: [345]', 14],
      ['f', 'happens-before: [345]', 34],
    ]);
    const { threads } = names(out);
    expect(threads.get(key(arrows[0] as PerfettoEvent))).toBe('proc0/0');
    expect(threads.get(key(arrows[1] as PerfettoEvent))).toBe('proc1/1');
    expect(out.filter((e) => e.cat === 'lock').map((e) => [e.ph, e.name])).toEqual([
      ['b', 'holds &y'],
      ['e', 'holds &y'],
    ]);
    expect(out.some((e) => e.ph === 'M' && e.args?.name === `kernel — t`)).toBe(true);
    expect(threads.get('1/1001')).toBe('env');
    // One instant event per finding: at its step on the track that took it, or — made at the end of the run —
    // on the task it names.
    const leak = { kind: 'leak', title: 'unreferenced object 0x1 (size 8):', text: 'unreferenced object 0x1 (size 8):', step: -1, where: 'proc0/0' };
    const both = toPerfetto(trace, 't', [finding, leak]).traceEvents;
    const instants = both.filter((e) => e.ph === 'i');
    expect(instants.map((e) => [e.name, names(both).threads.get(key(e)), e.ts])).toEqual([
      ['PASID 1 reused', 'proc1/1', 38],
      ['unreferenced object 0x1 (size 8):', 'proc0/0', 60],
    ]);
  });
});
