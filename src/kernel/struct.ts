// Kernel structs laid out in words of the kernel's shared Int32Array: a struct is declared once, by its kernel
// name and its fields in order (a word, an array of words, or a nested struct), which gives its layout (each
// field's word offset and the size in words, typed: a misspelt field does not compile) and, bound to the
// memory, one accessor per field with the kernel's names for the ways C touches a field — plain access,
// READ_ONCE / WRITE_ONCE, smp_load_acquire / smp_store_release, and the atomic ops. An object is addressed by
// the word offset where it starts (its "pointer"): `sva.users.get(bond)` is `bond->users`.
//
// Hot paths go through these: an accessor is made once per kernel (bind, at declaration), and an access is one
// method call on one class (monomorphic, inlined by V8) adding a constant offset — no allocation, no Proxy.
// A kernel is declared before a run's memory exists and is attached to a new one for each execution, so the
// accessors are made on a WordMemory, which points every accessor made on it at the memory of the moment
// (Kernel.attach calls its attach): an access then reads its own field, not the memory through another object.
//
// JavaScript's Atomics are sequentially consistent, so READ_ONCE, smp_load_acquire and the atomic ops are all
// at least as strong as the kernel's; the names say what the kernel code asks for, and what a port of the
// model to a weaker memory would have to keep.

/** The memory accessors use: the kernel attaches it to each execution's shared memory. */
export class WordMemory {
  private readonly accessors: { i32: Int32Array }[] = [];

  constructor(private memory: Int32Array = new Int32Array(0)) {}

  get i32(): Int32Array {
    return this.memory;
  }

  /** From now on every accessor made on this memory reads and writes `i32`. */
  attach(i32: Int32Array): void {
    this.memory = i32;
    for (const a of this.accessors) a.i32 = i32;
  }

  /** Register an accessor: `a.i32` follows attach. */
  track<A extends { i32: Int32Array }>(a: A): A {
    this.accessors.push(a);
    return a;
  }
}

/** One word (an int, a u32 held as int32, a pointer or an id). */
export interface WordSpec {
  readonly kind: 'word';
}
/** An array of `n` words (u32 name[n]). */
export interface ArraySpec {
  readonly kind: 'array';
  readonly n: number;
}
export type FieldSpec = WordSpec | ArraySpec | StructType<Fields>;
export type Fields = { readonly [name: string]: FieldSpec };

/** A field of one word. */
export const word: WordSpec = { kind: 'word' };
/** A field of `n` words; `array(0)`, last, is a flexible array member (u32 name[]: sized per object). */
export function array(n: number): ArraySpec {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`array: ${n} words`);
  return { kind: 'array', n };
}

/** A declared struct: its kernel name, its fields' word offsets and its size in words. */
export interface StructType<F extends Fields> {
  readonly kind: 'struct';
  /** The kernel's name, without `struct` (`iommu_sva`). */
  readonly name: string;
  readonly fields: F;
  /** Each field's word offset from the start of the object. */
  readonly offset: { readonly [K in keyof F]: number };
  /** sizeof, in words (a flexible array member counts 0). */
  readonly words: number;
  /** Accessors for objects of this type in the memory `mem` holds (now and after it is re-attached). */
  bind(mem: WordMemory): StructView<F>;
}

/** Accessors of a struct's fields, each taking the object's word offset. */
export type StructView<F extends Fields> = {
  readonly [K in keyof F]: F[K] extends WordSpec ? Word : F[K] extends ArraySpec ? Words : F[K] extends StructType<infer G> ? StructView<G> : never;
};

/** The accessors of a declared struct: `ViewOf<typeof IOMMU_SVA>`. */
export type ViewOf<T> = T extends StructType<infer F> ? StructView<F> : never;

/** Declare `struct name { fields }`. */
export function struct<const F extends Fields>(name: string, fields: F): StructType<F> {
  const offset: Record<string, number> = {};
  let words = 0;
  const entries = Object.entries(fields);
  entries.forEach(([field, spec], i) => {
    if (spec.kind === 'array' && spec.n === 0 && i !== entries.length - 1) throw new RangeError(`struct ${name}: flexible array ${field} is not the last field`);
    offset[field] = words;
    words += sizeOf(spec);
  });
  const type: StructType<F> = {
    kind: 'struct',
    name,
    fields,
    offset: offset as { readonly [K in keyof F]: number },
    words,
    bind: (mem) => view(mem, type, 0) as StructView<F>,
  };
  return type;
}

function sizeOf(spec: FieldSpec): number {
  if (spec.kind === 'word') return 1;
  if (spec.kind === 'array') return spec.n;
  return spec.words;
}

function view(mem: WordMemory, type: StructType<Fields>, base: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, spec] of Object.entries(type.fields)) {
    const off = base + (type.offset[field] as number);
    out[field] = spec.kind === 'word' ? mem.track(new Word(mem.i32, off)) : spec.kind === 'array' ? mem.track(new Words(mem.i32, off, spec.n)) : view(mem, spec, off);
  }
  return Object.freeze(out);
}

/** The word offset of element `i` of an array of `type` starting at `base`. */
export function element(type: StructType<Fields>, base: number, i: number): number {
  return base + i * type.words;
}

/** A one-word field of objects in the kernel's memory; `p` is the object's word offset. */
export class Word {
  constructor(
    /** The memory now (WordMemory.attach sets it). */
    public i32: Int32Array,
    /** The field's word offset in its (outermost) struct. */
    readonly off: number,
  ) {}

  /** &p->field */
  addr(p: number): number {
    return p + this.off;
  }
  /** p->field */
  get(p: number): number {
    return this.i32[p + this.off] as number;
  }
  /** p->field = v */
  set(p: number, v: number): void {
    this.i32[p + this.off] = v;
  }
  READ_ONCE(p: number): number {
    return Atomics.load(this.i32, p + this.off);
  }
  WRITE_ONCE(p: number, v: number): void {
    Atomics.store(this.i32, p + this.off, v);
  }
  smp_load_acquire(p: number): number {
    return Atomics.load(this.i32, p + this.off);
  }
  smp_store_release(p: number, v: number): void {
    Atomics.store(this.i32, p + this.off, v);
  }
  /** atomic_add_return(d, &p->field) */
  atomic_add_return(p: number, d: number): number {
    return Atomics.add(this.i32, p + this.off, d) + d;
  }
  atomic_inc_return(p: number): number {
    return Atomics.add(this.i32, p + this.off, 1) + 1;
  }
  atomic_dec_return(p: number): number {
    return Atomics.sub(this.i32, p + this.off, 1) - 1;
  }
  /** atomic_fetch_add(d, &p->field): the value before. */
  atomic_fetch_add(p: number, d: number): number {
    return Atomics.add(this.i32, p + this.off, d);
  }
  atomic_add(p: number, d: number): void {
    Atomics.add(this.i32, p + this.off, d);
  }
  atomic_inc(p: number): void {
    Atomics.add(this.i32, p + this.off, 1);
  }
  atomic_dec(p: number): void {
    Atomics.sub(this.i32, p + this.off, 1);
  }
  atomic_sub(p: number, d: number): void {
    Atomics.sub(this.i32, p + this.off, d);
  }
  /** atomic_or(mask, &p->field) (set_bit's effect on a word). */
  atomic_or(p: number, mask: number): void {
    Atomics.or(this.i32, p + this.off, mask);
  }
  /** atomic_andnot(mask, &p->field) (clear_bit's). */
  atomic_andnot(p: number, mask: number): void {
    Atomics.and(this.i32, p + this.off, ~mask);
  }
  /** cmpxchg(&p->field, old, v): the value found (v was stored when it equals old). */
  cmpxchg(p: number, old: number, v: number): number {
    return Atomics.compareExchange(this.i32, p + this.off, old, v);
  }
  /** xchg(&p->field, v): the value it replaced. */
  xchg(p: number, v: number): number {
    return Atomics.exchange(this.i32, p + this.off, v);
  }
}

/** An array field of `n` words; `p` is the object's word offset, `i` the element. */
export class Words {
  constructor(
    /** The memory now (WordMemory.attach sets it). */
    public i32: Int32Array,
    readonly off: number,
    readonly n: number,
  ) {}

  /** &p->field[i] */
  addr(p: number, i = 0): number {
    return p + this.off + i;
  }
  get(p: number, i: number): number {
    return this.i32[p + this.off + i] as number;
  }
  set(p: number, i: number, v: number): void {
    this.i32[p + this.off + i] = v;
  }
  READ_ONCE(p: number, i: number): number {
    return Atomics.load(this.i32, p + this.off + i);
  }
  WRITE_ONCE(p: number, i: number, v: number): void {
    Atomics.store(this.i32, p + this.off + i, v);
  }
}
