// Kernel functions by name (src/kernel/kfunc.ts): a call runs the implementation current at the call with the
// function's name on the task's call chain; a policy picks one of its implementations; a patch replaces or wraps
// any function, and a name the model does not have is refused with the nearest one.
import { describe, expect, it } from 'vitest';
import type { KTask } from '../src/kernel/context.js';
import type { KGen } from '../src/kernel/kernel.js';
import { InputError } from '../src/runtime/errors.js';
import { kernel, runOnce, tasksWorkload, words } from './kernel-harness.js';

declare module '../src/kernel/kfunc.js' {
  interface KernelFunctions {
    test_pasid_get(t: KTask, base: number): KGen<number>;
    test_pasid_put(t: KTask, pasid: number): KGen<void>;
    test_capable(flags: number): boolean;
  }
}

function model(policy: 'one' | 'two') {
  const k = kernel();
  const w = words(k, 4);
  const chains: string[][] = [];
  k.fns.definePolicy('test_pasid_get', 'drivers/test.c', 'pasidAlloc', policy, {
    *one(t, base) {
      chains.push([...t.chain()]);
      yield* w.set(t, 0, base + 1);
      return base + 1;
    },
    *two(t, base) {
      yield* w.set(t, 0, base + 2);
      return base + 2;
    },
  });
  k.fns.define('test_pasid_put', 'drivers/test.c', function* (t, pasid) {
    yield* w.set(t, 1, pasid);
  });
  k.fns.defineSync('test_capable', 'drivers/test.c', (flags) => flags === 0);
  k.task('binder', 'process', function* (t) {
    const pasid = yield* k.fn.test_pasid_get(t, 10);
    if (k.fn.test_capable(0)) yield* k.fn.test_pasid_put(t, pasid);
  });
  return { k, w, chains, run: () => runOnce(tasksWorkload(k, 'kfunc', ['binder']), 1) };
}

describe('kernel functions by name', () => {
  it('call the policy value’s implementation, with the name on the call chain', () => {
    const m = model('one');
    const r = m.run();
    expect(r.findings).toEqual([]);
    expect(m.w.get(0)).toBe(11);
    expect(m.w.get(1)).toBe(11);
    expect(m.chains[0]?.at(-1)).toBe('test_pasid_get');
    const info = m.k.fns.list().find((f) => f.name === 'test_pasid_get');
    expect(info?.origins).toEqual([{ kind: 'policy', policy: 'pasidAlloc', value: 'one', values: ['one', 'two'] }]);
  });

  it('another policy value runs the other implementation', () => {
    const m = model('two');
    m.run();
    expect(m.w.get(1)).toBe(12);
  });

  it('a patch that wraps a function is seen by every caller, and calls the original', () => {
    const m = model('one');
    m.k.fns.wrap(
      'test_pasid_put',
      (orig) =>
        function* (t: KTask, pasid: number): KGen {
          yield* orig(t, pasid + 100);
        },
      'patch.ts',
    );
    m.run();
    expect(m.w.get(1)).toBe(111);
    expect(m.k.fns.list().find((f) => f.name === 'test_pasid_put')?.origins.at(-1)).toEqual({ kind: 'patch', by: 'patch.ts', how: 'wrap' });
  });

  it('a replacement takes the place of the function', () => {
    const m = model('one');
    m.k.fns.replace('test_capable', () => false, 'patch.ts');
    m.run();
    expect(m.w.get(1)).toBe(0);
  });

  it('refuses a name the model does not have, naming the nearest', () => {
    const m = model('one');
    expect(() => m.k.fns.replace('test_pasid_gte', () => undefined, 'patch.ts')).toThrow(InputError);
    expect(() => m.k.fns.replace('test_pasid_gte', () => undefined, 'patch.ts')).toThrow("patch.ts: no kernel function 'test_pasid_gte'; nearest: test_pasid_get, test_pasid_put, test_capable");
    expect(() => m.k.fns.definePolicy('test_pasid_put', 'x.c', 'p', 'three' as 'one', { one: m.k.fn.test_pasid_put })).toThrow(/defined twice|no value/);
  });
});
