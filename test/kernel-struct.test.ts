// Declared kernel structs (src/kernel/struct.ts): the layout follows the fields in order (words, arrays, nested
// structs, a flexible array last), a misspelt field does not compile, and the accessors read and write the
// words the layout names, with the kernel's atomic semantics, in whatever memory the kernel is attached to now.
import { describe, expect, it } from 'vitest';
import { array, element, struct, WordMemory, word } from '../src/kernel/struct.js';
import { kernel } from './kernel-harness.js';

const LIST_HEAD = struct('list_head', { next: word, prev: word });
const THING = struct('thing', {
  refs: word,
  list: LIST_HEAD,
  name: array(3),
  flags: word,
});

function memory(words: number): WordMemory {
  return new WordMemory(new Int32Array(new SharedArrayBuffer(words * 4)));
}

describe('struct layouts', () => {
  it('places fields in declaration order and sizes the struct', () => {
    expect(THING.name).toBe('thing');
    expect(THING.offset).toEqual({ refs: 0, list: 1, name: 3, flags: 6 });
    expect(THING.words).toBe(7);
    expect(LIST_HEAD.words).toBe(2);
    expect(element(THING, 100, 3)).toBe(121);
  });

  it('takes a flexible array member only last, and counts it as 0 words', () => {
    const flex = struct('flex', { n: word, data: array(0) });
    expect(flex.words).toBe(1);
    expect(flex.offset.data).toBe(1);
    expect(() => struct('bad', { data: array(0), n: word })).toThrow(/flexible array data is not the last field/);
    expect(() => array(-1)).toThrow(RangeError);
  });

  it('rejects a misspelt field at compile time', () => {
    const v = THING.bind(memory(8));
    // @ts-expect-error: no field `ref` in struct thing
    expect(v.ref).toBeUndefined();
    // @ts-expect-error: no field `nxt` in struct list_head
    expect(THING.bind(memory(8)).list.nxt).toBeUndefined();
    // @ts-expect-error: offsets are typed the same way
    expect(THING.offset.flag).toBeUndefined();
  });
});

describe('struct accessors', () => {
  const mem = memory(64);
  const v = THING.bind(mem);
  const p = 10; // an object at word 10

  it('reach the words of the object at p, nested structs and arrays included', () => {
    v.refs.set(p, 5);
    v.list.prev.set(p, 7);
    v.name.set(p, 2, 9);
    v.flags.WRITE_ONCE(p, 3);
    expect([...mem.i32.slice(p, p + THING.words)]).toEqual([5, 0, 7, 0, 0, 9, 3]);
    expect(v.list.prev.addr(p)).toBe(p + 2);
    expect(v.name.addr(p, 2)).toBe(p + 5);
    expect(v.name.get(p, 2)).toBe(9);
    expect(v.name.READ_ONCE(p, 2)).toBe(9);
    expect(v.refs.READ_ONCE(p)).toBe(5);
    expect(v.flags.smp_load_acquire(p)).toBe(3);
    v.flags.smp_store_release(p, 4);
    expect(v.flags.get(p)).toBe(4);
  });

  it('implement the atomic ops with the kernel’s return values', () => {
    v.refs.set(p, 1);
    v.refs.atomic_inc(p);
    expect(v.refs.get(p)).toBe(2);
    expect(v.refs.atomic_inc_return(p)).toBe(3);
    expect(v.refs.atomic_add_return(p, 4)).toBe(7);
    v.refs.atomic_add(p, -2);
    v.refs.atomic_dec(p);
    expect(v.refs.atomic_dec_return(p)).toBe(3);
    // cmpxchg returns the value found; it stores only when that was `old`.
    expect(v.refs.cmpxchg(p, 1, 8)).toBe(3);
    expect(v.refs.get(p)).toBe(3);
    expect(v.refs.cmpxchg(p, 3, 8)).toBe(3);
    expect(v.refs.get(p)).toBe(8);
    expect(v.refs.xchg(p, 0)).toBe(8);
    expect(v.refs.get(p)).toBe(0);
  });

  it('follow the kernel to the memory of each execution it is attached to', () => {
    const k = kernel();
    const off = k.statics.alloc(THING.words, 'a thing');
    const thing = k.struct(THING); // at declaration, before any memory exists
    const first = new Int32Array(new SharedArrayBuffer(k.words * 4));
    const second = new Int32Array(new SharedArrayBuffer(k.words * 4));
    k.attach(first, () => 0);
    thing.refs.set(k.mem.statics + off, 1);
    k.attach(second, () => 0);
    expect(thing.refs.get(k.mem.statics + off)).toBe(0);
    thing.refs.set(k.mem.statics + off, 2);
    expect(first[k.mem.statics + off]).toBe(1);
    expect(second[k.mem.statics + off]).toBe(2);
  });

  it('k.view shares one set of accessors per struct type, which follows the attached memory too', () => {
    const k = kernel();
    const off = k.statics.alloc(THING.words, 'a thing');
    const v = k.view(THING);
    expect(k.view(THING)).toBe(v);
    expect(k.view(LIST_HEAD)).not.toBe(v);
    const first = new Int32Array(new SharedArrayBuffer(k.words * 4));
    const second = new Int32Array(new SharedArrayBuffer(k.words * 4));
    k.attach(first, () => 0);
    k.view(THING).flags.set(k.mem.statics + off, 5);
    k.attach(second, () => 0);
    expect(k.view(THING).flags.get(k.mem.statics + off)).toBe(0);
    expect(first[k.mem.statics + off + THING.offset.flags]).toBe(5);
  });
});
