// Notifier chains (kernel/notifier.c, include/linux/notifier.h): atomic chains (registration under a spinlock,
// traversal inside rcu_read_lock, so a callback must not sleep), blocking chains (an rw_semaphore: down_read
// around the traversal, so calling one from atomic context is a might_sleep bug), SRCU chains (traversal inside
// an SRCU reader: callbacks may sleep, unregister waits for an SRCU grace period) and raw chains (the caller
// locks). A chain's blocks are a list of block ids in static shared memory, ordered by priority, so every
// thread sees the same chain. Blocks are declared statically with their callback.
//
// Teardown check: a chain declared `mustBeEmptyAtTeardown` reports every block still registered at the end
// (a subscriber that forgot to unregister); other chains legitimately keep their blocks.
import { read } from '../runtime/footprint.js';
import type { StepEnv } from '../runtime/task.js';
import type { KTask } from './context.js';
import { EEXIST, ENOENT } from './errno.js';
import { callTrace, heldLocksLines, taskFinding } from './findings.js';
import type { Kernel, KGen } from './kernel.js';
import { objLabel } from './labels.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from './mutex.js';
import { rcu_init, rcu_read_lock, rcu_read_unlock, synchronize_rcu } from './rcu.js';
import { defineRwsem, down_read, down_write, type RwSemaphore, up_read, up_write } from './rwsem.js';
import { defineSpinlock, type Spinlock, spin_lock_irqsave, spin_unlock_irqrestore } from './spinlock.js';
import { defineSrcu, type SrcuStruct, srcu_read_lock, srcu_read_unlock, synchronize_srcu } from './srcu.js';
import { array, struct, type ViewOf, word } from './struct.js';

export const NOTIFY_DONE = 0x0000; // don't care
export const NOTIFY_OK = 0x0001; // suits me
export const NOTIFY_STOP_MASK = 0x8000; // don't call further
export const NOTIFY_BAD = NOTIFY_STOP_MASK | 0x0002; // bad/veto action
export const NOTIFY_STOP = NOTIFY_OK | NOTIFY_STOP_MASK; // clean way to return from the notifier and stop further calls

/** notifier_from_errno(err): a callback's veto carrying an errno (negative err). */
export function notifier_from_errno(err: number): number {
  return err ? NOTIFY_STOP_MASK | (NOTIFY_OK - err) : NOTIFY_OK;
}

/** notifier_to_errno(ret): the errno a chain's result carries (0 when none). */
export function notifier_to_errno(ret: number): number {
  const r = ret & ~NOTIFY_STOP_MASK;
  return r > NOTIFY_OK ? NOTIFY_OK - r : 0;
}

/** A block's notifier_call: returns NOTIFY_DONE / NOTIFY_OK / NOTIFY_BAD / NOTIFY_STOP. */
export type NotifierFn<D> = (t: KTask, event: number, data: D) => KGen<number>;

export interface NotifierBlock<D = number> {
  /** Its id in the chain lists (1-based; 0 never names a block). */
  readonly id: number;
  readonly name: string;
  readonly priority: number;
  readonly notifier_call: NotifierFn<D>;
}

export type NotifierChainKind = 'atomic' | 'blocking' | 'srcu' | 'raw';

export interface NotifierChainOptions {
  /** Blocks the chain can hold at once (default 16). */
  readonly capacity?: number;
  /** Report blocks still registered when the run ends (chains whose subscribers must all go away). */
  readonly mustBeEmptyAtTeardown?: boolean;
}

export interface NotifierChain<D = number> {
  readonly name: string;
  readonly kind: NotifierChainKind;
  readonly capacity: number;
  /** Static offset: [count, ids…]. */
  readonly off: number;
  readonly lock?: Spinlock;
  readonly rwsem?: RwSemaphore;
  readonly mutex?: Mutex;
  readonly srcu?: SrcuStruct;
  /** Only ties the chain to its data type. */
  readonly __data?: (d: D) => void;
}

interface AnyBlock {
  readonly name: string;
  readonly priority: number;
  readonly call: (t: KTask, event: number, data: unknown) => KGen<number>;
}

const registries = new WeakMap<Kernel, AnyBlock[]>();

function registry(k: Kernel): AnyBlock[] {
  let r = registries.get(k);
  if (!r) {
    r = [];
    registries.set(k, r);
  }
  return r;
}

/** A `struct notifier_block` declared with the workload (the same id in every thread). */
export function defineNotifierBlock<D = number>(k: Kernel, name: string, notifier_call: NotifierFn<D>, priority = 0): NotifierBlock<D> {
  const r = registry(k);
  r.push({ name, priority, call: (t, event, data) => notifier_call(t, event, data as D) });
  return { id: r.length, name, priority, notifier_call };
}

/**
 * ATOMIC_NOTIFIER_HEAD / BLOCKING_NOTIFIER_HEAD / SRCU_NOTIFIER_HEAD_STATIC / RAW_NOTIFIER_HEAD(name): a chain
 * in static memory, with the lock its kind uses.
 */
export function defineNotifierChain<D = number>(
  k: Kernel,
  name: string,
  kind: NotifierChainKind,
  opts: NotifierChainOptions = {},
): NotifierChain<D> {
  const capacity = opts.capacity ?? 16;
  const off = k.statics.alloc(NOTIFIER_HEAD.words + capacity, name);
  let chain: NotifierChain<D>;
  switch (kind) {
    case 'atomic':
      rcu_init(k);
      chain = { name, kind, capacity, off, lock: defineSpinlock(k, `${name}.lock`) };
      break;
    case 'blocking':
      chain = { name, kind, capacity, off, rwsem: defineRwsem(k, `${name}.rwsem`) };
      break;
    case 'srcu':
      chain = { name, kind, capacity, off, mutex: defineMutex(k, `${name}.mutex`), srcu: defineSrcu(k, `${name}.srcu`) };
      break;
    case 'raw':
      chain = { name, kind, capacity, off };
      break;
  }
  if (opts.mustBeEmptyAtTeardown) k.onEnd(() => leakCheck(k, chain));
  return chain;
}

// ---- the list ----

/**
 * The chain's head (struct atomic_notifier_head and its kin: a lock and `head`, the list of notifier_blocks);
 * the model keeps the list as an array of block ids in call order.
 */
const NOTIFIER_HEAD = struct('notifier_head', {
  nr_blocks: word, // model: blocks on the list
  head: array(0), // block ids in call order, `capacity` of them
});

function base<D>(k: Kernel, c: NotifierChain<D>): number {
  return k.mem.statics + c.off;
}

function head(k: Kernel): ViewOf<typeof NOTIFIER_HEAD> {
  return k.view(NOTIFIER_HEAD);
}

/** The blocks registered now, in call order. A read: legal anywhere. */
export function notifier_chain_blocks<D>(k: Kernel, c: NotifierChain<D>): number[] {
  const b = base(k, c);
  const h = head(k);
  const n = h.nr_blocks.READ_ONCE(b);
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(h.head.READ_ONCE(b, i));
  return ids;
}

function block(k: Kernel, id: number): AnyBlock {
  const nb = registry(k)[id - 1];
  if (!nb) throw new Error(`notifier: no block ${id}`);
  return nb;
}

/** notifier_chain_register (perform only): insert by priority, after the blocks of the same priority. */
function insert<D>(k: Kernel, t: KTask, c: NotifierChain<D>, nb: NotifierBlock<D>, env: StepEnv): number {
  const h = head(k);
  const b = base(k, c);
  const ids = notifier_chain_blocks(k, c);
  let at = ids.length;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    if (id === nb.id) {
      // WARN(1, "notifier callback %ps already registered", n->notifier_call)
      const title = `notifier callback ${nb.name} already registered`;
      const body = [
        `WARNING: CPU: 0 PID: ${t.pid} at kernel/notifier.c:29 notifier_chain_register`,
        ...heldLocksLines(t),
        ...callTrace(t.chain(), t.kind === 'softirq' || t.kind === 'hardirq'),
      ];
      k.report(taskFinding('notifier', t, env.step, title, body));
      return -EEXIST;
    }
    if (at === ids.length && nb.priority > block(k, id).priority) at = i;
  }
  if (ids.length >= c.capacity) throw new Error(`notifier chain ${c.name}: more than ${c.capacity} blocks`);
  for (let i = ids.length; i > at; i--) h.head.WRITE_ONCE(b, i, h.head.READ_ONCE(b, i - 1));
  h.head.WRITE_ONCE(b, at, nb.id);
  h.nr_blocks.WRITE_ONCE(b, ids.length + 1);
  return 0;
}

/** notifier_chain_unregister (perform only). */
function remove<D>(k: Kernel, c: NotifierChain<D>, nb: NotifierBlock<D>): number {
  const h = head(k);
  const b = base(k, c);
  const ids = notifier_chain_blocks(k, c);
  const at = ids.indexOf(nb.id);
  if (at < 0) return -ENOENT;
  for (let i = at; i + 1 < ids.length; i++) h.head.WRITE_ONCE(b, i, ids[i + 1] as number);
  h.head.WRITE_ONCE(b, ids.length - 1, 0);
  h.nr_blocks.WRITE_ONCE(b, ids.length - 1);
  return 0;
}

/** Each chain's headFootprint, [read, written]: the same words at every call, made once. */
const headFootprints = new WeakMap<NotifierChain<unknown>, readonly [readonly number[], readonly number[]]>();

/** The chain's head and every entry of its list, written or only read (a point's footprint). */
function headFootprint<D>(k: Kernel, c: NotifierChain<D>, write: boolean): readonly number[] {
  const key = c as NotifierChain<unknown>;
  let fps = headFootprints.get(key);
  if (fps === undefined) {
    const h = head(k);
    const b = base(k, c);
    const words = [h.nr_blocks.addr(b)];
    for (let i = 0; i < c.capacity; i++) words.push(h.head.addr(b, i));
    fps = [words.map(read), words];
    headFootprints.set(key, fps);
  }
  return fps[write ? 1 : 0];
}

function registerStep<D>(k: Kernel, t: KTask, c: NotifierChain<D>, nb: NotifierBlock<D>): KGen<number> {
  return k.call(
    t,
    'notifier_chain_register',
    k.stepOn(t, `notifier_chain_register(${c.name}, ${nb.name})`, headFootprint(k, c, true), (env) => insert(k, t, c, nb, env)),
  );
}

function unregisterStep<D>(k: Kernel, t: KTask, c: NotifierChain<D>, nb: NotifierBlock<D>): KGen<number> {
  return k.call(
    t,
    'notifier_chain_unregister',
    k.stepOn(t, `notifier_chain_unregister(${c.name}, ${nb.name})`, headFootprint(k, c, true), () => remove(k, c, nb)),
  );
}

/** notifier_call_chain: call the blocks in order until one returns with NOTIFY_STOP_MASK; returns the last result. */
function* callChain<D>(k: Kernel, t: KTask, c: NotifierChain<D>, val: number, data: D, nrToCall: number): KGen<number> {
  return yield* k.call(
    t,
    'notifier_call_chain',
    (function* () {
      const ids = yield* k.stepOn(t, objLabel(c, 'notifier_call_chain', c.name), headFootprint(k, c, false), () => notifier_chain_blocks(k, c));
      let ret = NOTIFY_DONE;
      let n = nrToCall;
      for (const id of ids) {
        if (n-- === 0) break;
        const nb = block(k, id);
        ret = yield* k.call(t, nb.name, nb.call(t, val, data));
        if (ret & NOTIFY_STOP_MASK) break;
      }
      return ret;
    })(),
  );
}

function expect<D>(c: NotifierChain<D>, kind: NotifierChainKind, fn: string): void {
  if (c.kind !== kind) throw new Error(`${fn}: ${c.name} is a ${c.kind} notifier chain`);
}

function need<T>(x: T | undefined, what: string): T {
  if (x === undefined) throw new Error(`notifier: chain has no ${what}`);
  return x;
}

// ---- atomic chains ----

export function* atomic_notifier_chain_register<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  expect(nh, 'atomic', 'atomic_notifier_chain_register');
  const lock = need(nh.lock, 'spinlock');
  return yield* k.call(
    t,
    'atomic_notifier_chain_register',
    (function* () {
      const flags = yield* spin_lock_irqsave(k, t, lock);
      const ret = yield* registerStep(k, t, nh, n);
      yield* spin_unlock_irqrestore(k, t, lock, flags);
      return ret;
    })(),
  );
}

/** Unregister, then synchronize_rcu(): once it returns, no traversal still calls the block. May sleep. */
export function* atomic_notifier_chain_unregister<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  expect(nh, 'atomic', 'atomic_notifier_chain_unregister');
  const lock = need(nh.lock, 'spinlock');
  return yield* k.call(
    t,
    'atomic_notifier_chain_unregister',
    (function* () {
      const flags = yield* spin_lock_irqsave(k, t, lock);
      const ret = yield* unregisterStep(k, t, nh, n);
      yield* spin_unlock_irqrestore(k, t, lock, flags);
      yield* synchronize_rcu(k, t);
      return ret;
    })(),
  );
}

/** Call the chain inside rcu_read_lock(): callbacks run in atomic context and must not sleep. */
export function* atomic_notifier_call_chain<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, val: number, data: D): KGen<number> {
  expect(nh, 'atomic', 'atomic_notifier_call_chain');
  return yield* k.call(
    t,
    'atomic_notifier_call_chain',
    (function* () {
      yield* rcu_read_lock(k, t);
      const ret = yield* callChain(k, t, nh, val, data, -1);
      yield* rcu_read_unlock(k, t);
      return ret;
    })(),
  );
}

// ---- blocking chains ----

export function* blocking_notifier_chain_register<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  expect(nh, 'blocking', 'blocking_notifier_chain_register');
  const sem = need(nh.rwsem, 'rwsem');
  return yield* k.call(
    t,
    'blocking_notifier_chain_register',
    (function* () {
      yield* down_write(k, t, sem);
      const ret = yield* registerStep(k, t, nh, n);
      yield* up_write(k, t, sem);
      return ret;
    })(),
  );
}

export function* blocking_notifier_chain_unregister<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  expect(nh, 'blocking', 'blocking_notifier_chain_unregister');
  const sem = need(nh.rwsem, 'rwsem');
  return yield* k.call(
    t,
    'blocking_notifier_chain_unregister',
    (function* () {
      yield* down_write(k, t, sem);
      const ret = yield* unregisterStep(k, t, nh, n);
      yield* up_write(k, t, sem);
      return ret;
    })(),
  );
}

/**
 * Call the chain under down_read(): may sleep, so calling it from atomic context is a might_sleep bug. As in
 * the kernel, an empty chain is not locked at all.
 */
export function* blocking_notifier_call_chain<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, val: number, data: D): KGen<number> {
  expect(nh, 'blocking', 'blocking_notifier_call_chain');
  const sem = need(nh.rwsem, 'rwsem');
  return yield* k.call(
    t,
    'blocking_notifier_call_chain',
    (function* () {
      // rcu_access_pointer(nh->head): a racy peek, re-checked under the lock.
      if (head(k).nr_blocks.READ_ONCE(base(k, nh)) === 0) return NOTIFY_DONE;
      yield* down_read(k, t, sem);
      const ret = yield* callChain(k, t, nh, val, data, -1);
      yield* up_read(k, t, sem);
      return ret;
    })(),
  );
}

// ---- SRCU chains ----

export function* srcu_notifier_chain_register<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  expect(nh, 'srcu', 'srcu_notifier_chain_register');
  const m = need(nh.mutex, 'mutex');
  return yield* k.call(
    t,
    'srcu_notifier_chain_register',
    (function* () {
      yield* mutex_lock(k, t, m);
      const ret = yield* registerStep(k, t, nh, n);
      yield* mutex_unlock(k, t, m);
      return ret;
    })(),
  );
}

/** Unregister, then synchronize_srcu(): once it returns, no traversal still calls the block. May sleep. */
export function* srcu_notifier_chain_unregister<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  expect(nh, 'srcu', 'srcu_notifier_chain_unregister');
  const m = need(nh.mutex, 'mutex');
  const ssp = need(nh.srcu, 'srcu_struct');
  return yield* k.call(
    t,
    'srcu_notifier_chain_unregister',
    (function* () {
      yield* mutex_lock(k, t, m);
      const ret = yield* unregisterStep(k, t, nh, n);
      yield* mutex_unlock(k, t, m);
      yield* synchronize_srcu(k, t, ssp);
      return ret;
    })(),
  );
}

/** Call the chain inside an SRCU reader: callbacks may sleep. */
export function* srcu_notifier_call_chain<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, val: number, data: D): KGen<number> {
  expect(nh, 'srcu', 'srcu_notifier_call_chain');
  const ssp = need(nh.srcu, 'srcu_struct');
  return yield* k.call(
    t,
    'srcu_notifier_call_chain',
    (function* () {
      const idx = yield* srcu_read_lock(k, t, ssp);
      const ret = yield* callChain(k, t, nh, val, data, -1);
      yield* srcu_read_unlock(k, t, ssp, idx);
      return ret;
    })(),
  );
}

// ---- raw chains: the caller provides the locking ----

export function* raw_notifier_chain_register<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  expect(nh, 'raw', 'raw_notifier_chain_register');
  return yield* k.call(t, 'raw_notifier_chain_register', registerStep(k, t, nh, n));
}

export function* raw_notifier_chain_unregister<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  expect(nh, 'raw', 'raw_notifier_chain_unregister');
  return yield* k.call(t, 'raw_notifier_chain_unregister', unregisterStep(k, t, nh, n));
}

export function* raw_notifier_call_chain<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, val: number, data: D): KGen<number> {
  expect(nh, 'raw', 'raw_notifier_call_chain');
  return yield* k.call(t, 'raw_notifier_call_chain', callChain(k, t, nh, val, data, -1));
}

// ---- by the chain's kind (for workloads that switch the kind as a policy) ----

export function notifier_chain_register<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  switch (nh.kind) {
    case 'atomic':
      return atomic_notifier_chain_register(k, t, nh, n);
    case 'blocking':
      return blocking_notifier_chain_register(k, t, nh, n);
    case 'srcu':
      return srcu_notifier_chain_register(k, t, nh, n);
    case 'raw':
      return raw_notifier_chain_register(k, t, nh, n);
  }
}

export function notifier_chain_unregister<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, n: NotifierBlock<D>): KGen<number> {
  switch (nh.kind) {
    case 'atomic':
      return atomic_notifier_chain_unregister(k, t, nh, n);
    case 'blocking':
      return blocking_notifier_chain_unregister(k, t, nh, n);
    case 'srcu':
      return srcu_notifier_chain_unregister(k, t, nh, n);
    case 'raw':
      return raw_notifier_chain_unregister(k, t, nh, n);
  }
}

export function notifier_call_chain<D>(k: Kernel, t: KTask, nh: NotifierChain<D>, val: number, data: D): KGen<number> {
  switch (nh.kind) {
    case 'atomic':
      return atomic_notifier_call_chain(k, t, nh, val, data);
    case 'blocking':
      return blocking_notifier_call_chain(k, t, nh, val, data);
    case 'srcu':
      return srcu_notifier_call_chain(k, t, nh, val, data);
    case 'raw':
      return raw_notifier_call_chain(k, t, nh, val, data);
  }
}

// ---- teardown ----

function leakCheck<D>(k: Kernel, c: NotifierChain<D>): void {
  for (const id of notifier_chain_blocks(k, c)) {
    const nb = block(k, id);
    const title = `leak: notifier block ${nb.name} still registered on chain ${c.name}`;
    const text = [
      title,
      `${c.kind} notifier chain ${c.name} must be empty at teardown, but ${nb.name} (priority ${nb.priority}) was never`,
      'unregistered: the chain would go on calling into a subscriber that is gone.',
    ].join('\n');
    k.report({ kind: 'leak', title, text, step: -1, where: c.name });
  }
}
