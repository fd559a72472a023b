// One script engine (src/workloads/script.ts) for every preset: each step checked against its kind's schema
// (src/workloads/steps.ts), the actors an `after` names, and one cycle check — the same words whatever the model;
// one step vocabulary by actor kind, so that a script may mix processes, drivers, fault handlers and IOASID users.
import { describe, expect, it } from 'vitest';
import { InputError } from '../src/runtime/errors.js';
import { parseScript, type ScriptSpec } from '../src/workloads/script.js';
import { ACTOR_KINDS, DOMAINS_KINDS, HP_KINDS, IOASID_KINDS, KTHREAD_KINDS, PRESET_ACTORS, SVA_KINDS, type StepKind, toWire } from '../src/workloads/steps.js';

const spec = (model: string, kinds: readonly string[], steps: readonly StepKind[]) => ({ model, kinds, maxActors: 8, steps });
const parse = (text: unknown, s: ScriptSpec<{ readonly op: string }> = spec('domains', ['drv', 'proc', 'iopf'], DOMAINS_KINDS)) => parseScript(JSON.stringify(text), s);

describe('the script engine', () => {
  it('fills each kind’s defaults from its schema', () => {
    const a = parse({ 'drv/0': [{ op: 'alloc', domain: 'A' }] });
    expect(a?.[0]?.steps).toEqual([{ op: 'alloc', domain: 'A', type: 'paging', iommu: 0 }]);
    const s = parseScript(JSON.stringify([[{ op: 'dma' }, { op: 'exit' }]]), { ...spec('sva', ['proc'], SVA_KINDS), numbered: { actors: 1 } });
    expect(s?.[0]?.steps).toEqual([
      { op: 'dma', n: 1, vpn: 0, write: true, wait: true },
      { op: 'exit', wait: true },
    ]);
  });

  it('the sva list form and the object form are the same script (an after by process number or by name)', () => {
    const s = { ...spec('sva', ['proc'], SVA_KINDS), numbered: { actors: 2 } };
    const list = parseScript(JSON.stringify([[{ op: 'bind' }], [{ op: 'after', proc: 0, step: 0 }, { op: 'bind' }]]), s);
    const object = parseScript(JSON.stringify({ 'proc/0': [{ op: 'bind' }], 'proc/1': [{ op: 'after', actor: 'proc/0', step: 0 }, { op: 'bind' }] }), s);
    expect(list).toEqual(object);
  });

  it.each([
    ['a cycle (domains)', { 'drv/0': [{ op: 'after', actor: 'drv/1', step: 0 }], 'drv/1': [{ op: 'after', actor: 'drv/0', step: 0 }] }, 'domains: steps: the ordering constraints have a cycle: drv/0:0 → drv/1:0 → drv/0:0'],
    ['an after on no actor', { 'drv/0': [{ op: 'after', actor: 'drv/7', step: 0 }] }, 'domains: steps: drv/0[0]: after drv/7:0: no such actor (the script has drv/0)'],
    ['an unknown kind', { 'drv/0': [{ op: 'fly' }] }, 'domains: steps: drv/0[0]: unknown step "fly" (alloc, free, attach'],
    ['a field out of range', { 'drv/0': [{ op: 'dma', dev: -1, pasid: 1 }] }, 'domains: steps: drv/0[0]: dma: dev must be an integer in 0..1023, got -1; use { dma: { dev, pasid, as } }'],
    ['an unknown field', { 'drv/0': [{ op: 'dma', dev: 0, pasid: 1, vnp: 3 }] }, "domains: steps: drv/0[0]: dma: unknown key 'vnp'; accepted here: dev, pasid, as"],
    ['a while with no lock', { 'drv/0': [{ op: 'while', task: 'drv0' }] }, 'domains: steps: drv/0[0]: while: lock must be a lock class, got nothing; use { while: { task: proc0, holds: iommu_sva_lock } }'],
  ])('refuses %s in the same words for every model', (_, script, message) => {
    expect(() => parse(script)).toThrow(InputError);
    expect(() => parse(script)).toThrow(message);
  });

  it('the same cycle check serves the ioasid and sva models', () => {
    const cyc = { 'user/0': [{ op: 'after', actor: 'user/1', step: 0 }], 'user/1': [{ op: 'after', actor: 'user/0', step: 0 }] };
    expect(() => parse(cyc, spec('ioasid', ['user'], IOASID_KINDS))).toThrow('ioasid: steps: the ordering constraints have a cycle');
    const sva = { ...spec('sva', ['proc'], SVA_KINDS), numbered: { actors: 2 } };
    expect(() => parseScript(JSON.stringify([[{ op: 'after', proc: 1, step: 0 }], [{ op: 'after', proc: 0, step: 0 }]]), sva)).toThrow('sva: steps: the ordering constraints have a cycle');
  });

  it('a scenario step becomes the steps parameter’s { op, … } form', () => {
    expect(toWire(SVA_KINDS, { munmap: 3 })).toEqual({ op: 'munmap', vpn: 3 });
    expect(toWire(IOASID_KINDS, { free_set: 's' })).toEqual({ op: 'free_set', set: 's' });
    expect(toWire(DOMAINS_KINDS, { attach: { domain: 'A', dev: 0 } })).toEqual({ op: 'attach', domain: 'A', dev: 0 });
    expect(toWire(DOMAINS_KINDS, 'synchronize_rcu')).toEqual({ op: 'synchronize_rcu' });
  });

  it('one vocabulary by actor kind: a script mixes them, each actor checked against its own kind’s steps', () => {
    const actors = { proc: ACTOR_KINDS.proc.steps, drv: ACTOR_KINDS.drv.steps, iopf: ACTOR_KINDS.iopf.steps, user: ACTOR_KINDS.user.steps };
    const mixed = { model: 'one', kinds: Object.keys(actors), maxActors: 8, steps: actors };
    const script = {
      'proc/0': [{ op: 'bind' }, { op: 'dma', n: 2 }, { op: 'after', actor: 'drv/0', step: 1 }, { op: 'unbind' }],
      'drv/0': [{ op: 'alloc', domain: 'A' }, { op: 'after', actor: 'user/0', step: 0 }, { op: 'free', domain: 'A' }],
      'iopf/0': [{ op: 'after', actor: 'proc/0', step: 1 }, { op: 'iopf', dev: 0, pasid: 1 }],
      'user/0': [{ op: 'alloc_set', set: 's', quota: 2 }],
    };
    const a = parse(script, mixed);
    expect(a?.map((x) => [x.name, x.comm, x.steps.length])).toEqual([
      ['proc/0', 'proc0', 4],
      ['drv/0', 'drv0', 3],
      ['iopf/0', 'iopf0', 2],
      ['user/0', 'user0', 1],
    ]);
    expect(a?.[0]?.steps[1]).toEqual({ op: 'dma', n: 2, vpn: 0, write: true, wait: true });
    // A step of another actor kind is refused, naming the actor, the step and the kind's own steps.
    expect(() => parse({ 'proc/0': [{ op: 'bind' }, { op: 'alloc', domain: 'A' }] }, mixed)).toThrow('one: steps: proc/0[1]: unknown step "alloc" (open, close, mmap, munmap_portal, bind, unbind, dma, munmap, madvise, migrate, exit, after, while, expect)');
    expect(() => parse({ 'iopf/0': [{ op: 'attach', domain: 'A', dev: 0 }] }, mixed)).toThrow('one: steps: iopf/0[0]: unknown step "attach" (iopf, synchronize_rcu, after, while, expect)');
    expect(() => parse({ 'user/0': [{ op: 'alloc', set: 's' }] }, mixed)).toThrow("one: steps: user/0[0]: alloc: id must be a name (letters, digits, _), got nothing; use { alloc: { set, id } }");
    // The ordering check spans the kinds.
    expect(() => parse({ 'proc/0': [{ op: 'after', actor: 'user/0', step: 0 }], 'user/0': [{ op: 'after', actor: 'proc/0', step: 0 }] }, mixed)).toThrow('one: steps: the ordering constraints have a cycle');
  });

  it('every preset’s actors take steps of the one vocabulary (the domains preset still lets each take them all)', () => {
    const vocabulary = new Set(Object.values(ACTOR_KINDS).flatMap((a) => a.steps));
    for (const [preset, actors] of Object.entries(PRESET_ACTORS)) {
      for (const [kind, steps] of Object.entries(actors)) for (const st of steps) expect(vocabulary.has(st), `${preset} ${kind}/N ${st.op}`).toBe(true);
    }
    expect(PRESET_ACTORS.sva).toEqual({ proc: SVA_KINDS, hp: HP_KINDS, kthread: KTHREAD_KINDS });
  });
});
