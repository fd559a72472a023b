// The threaded runtime's dealing of run-time spawns (src/runtime/spawn.ts), in one thread: the policy spreads a
// worker's spawns over every worker, a task numbered on the spawning worker and created from its spawn message
// elsewhere is the task a local spawn makes, and what a stopped run leaves in a mailbox is counted by kind.
// (Threaded runs that deal spawns: test/domains.test.ts.)
import { describe, expect, it } from 'vitest';
import { WireCodec } from '../src/runtime/codec.js';
import { createMailbox, senderLane } from '../src/runtime/mailbox.js';
import { Outbox } from '../src/runtime/outbox.js';
import { leftIn, SPAWN_TO, type SpawnMessage, spawnMessage, spawnTarget } from '../src/runtime/spawn.js';
import { TaskTable, taskIdAt } from '../src/runtime/task.js';

const factories = {
  noop: function* () {},
};

describe('run-time spawns dealt over the workers', () => {
  it('a worker deals its spawns round-robin over every worker, starting with the next', () => {
    for (const workers of [1, 2, 3, 8]) {
      for (let me = 0; me < workers; me++) {
        const got = Array.from({ length: 2 * workers }, (_, i) => spawnTarget(me, i + 1, workers));
        // Every worker once in each round of `workers` spawns; the first goes to the next worker.
        expect(new Set(got.slice(0, workers)).size).toBe(workers);
        expect(got.slice(workers)).toEqual(got.slice(0, workers));
        expect(got[0]).toBe((me + 1) % workers);
      }
    }
  });

  it('a task reserved on the spawner and created from its message elsewhere has the id and name a local spawn gives', () => {
    const codec = new WireCodec();
    const here = new TaskTable(factories);
    const there = new TaskTable(factories);
    const local = new TaskTable(factories);
    for (const name of [undefined, 'named']) {
      const step = name === undefined ? 7 : 8;
      const first = local.spawn(step, 3, 'noop', { a: [1, 'x'] }, name);
      const second = local.spawn(step, 3, 'noop', null, name);
      expect(here.reserve(step, 'noop')).toBe(0);
      const index = here.reserve(step, 'noop');
      const m = codec.encode(spawnMessage('noop', null, name, index), step);
      const d = codec.decode(m.kind, m.bytes, 0, m.len, new Int32Array(m.bytes.buffer));
      const msg = d.event as SpawnMessage;
      const t = there.create(d.sendStep, 3, msg.task, msg.args, msg.name ?? undefined, msg.index);
      expect(first.id).toBe(taskIdAt(step, 0));
      expect([t.id, t.name, t.named, t.owner]).toEqual([second.id, second.name, second.named, second.owner]);
    }
    expect(() => here.reserve(9, 'nothing')).toThrow(/no task 'nothing'/);
    for (let i = 0; i < 16; i++) here.reserve(10, 'noop');
    expect(() => here.reserve(10, 'noop')).toThrow(/more than 16 tasks spawned in one step/);
  });

  it("a mailbox's leftovers are counted apart: model messages and spawns", () => {
    const layout = createMailbox(3, 64, 64, 0);
    const codec = new WireCodec();
    const from1 = new Outbox(senderLane(layout, 1));
    const from2 = new Outbox(senderLane(layout, 2));
    const spawn = codec.encode(spawnMessage('noop', { big: 'x'.repeat(200) }, 'w', 0), 5);
    from1.send(spawn.kind, SPAWN_TO, 4, spawn.bytes, 0, spawn.len);
    const ev = codec.encode({ type: 'ping', n: 1 }, 6);
    for (let i = 0; i < 3; i++) from2.send(ev.kind, 0, 1, ev.bytes, 0, ev.len);
    from2.send(spawn.kind, SPAWN_TO, 4, spawn.bytes, 0, spawn.len);
    expect(leftIn(layout)).toEqual({ messages: 3, spawns: 2 });
    // Drained by the count: a second count finds nothing.
    expect(leftIn(layout)).toEqual({ messages: 0, spawns: 0 });
  });

  it('held messages (a full ring) are counted apart too', () => {
    const layout = createMailbox(2, 8, 64, 0);
    const codec = new WireCodec();
    const out = new Outbox(senderLane(layout, 1));
    const ev = codec.encode({ type: 'ping', n: 1 }, 6);
    const spawn = codec.encode(spawnMessage('noop', null, undefined, 0), 5);
    for (let i = 0; i < 8; i++) out.send(ev.kind, 0, 1, ev.bytes, 0, ev.len);
    out.send(spawn.kind, SPAWN_TO, 4, spawn.bytes, 0, spawn.len);
    out.send(ev.kind, 0, 1, ev.bytes, 0, ev.len);
    out.send(spawn.kind, SPAWN_TO, 4, spawn.bytes, 0, spawn.len);
    expect([out.held, out.heldTo(SPAWN_TO)]).toEqual([3, 2]);
    expect(leftIn(layout)).toEqual({ messages: 8, spawns: 0 });
  });
});
