// The sync primitives' footprints (issue #19; src/kernel/{rcu,srcu,xarray,refcount,ida,notifier,workqueue,delay,
// printk}.ts, src/kernel/fs/file.ts): run with every declared footprint checked against what its step wrote
// (checkFootprints), a kernel workload that drives each primitive — readers nested and not, grace periods and
// callbacks, a bad unlock, workqueues plain, ordered and delayed, notifier chains, IDs, xarray reads — and two
// stress presets; no violation, and every performed point of these files declares its footprint, but for the
// ones whose perform records a lockdep acquisition (srcu_read_lock, xa_lock taken inside a mutation: the locks
// part's footprint). Deterministic runtime, fixed seeds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/kernel/workloads.js';
import '../src/workloads/index.js';
import { kernel, tasksWorkload } from './kernel-harness.js';
import { ida_alloc, ida_free, ida_is_empty, defineIda } from '../src/kernel/ida.js';
import {
  atomic_notifier_call_chain,
  atomic_notifier_chain_register,
  atomic_notifier_chain_unregister,
  defineNotifierBlock,
  defineNotifierChain,
  NOTIFY_OK,
  srcu_notifier_call_chain,
  srcu_notifier_chain_register,
} from '../src/kernel/notifier.js';
import {
  call_rcu,
  defineKfreeRcu,
  defineRcuCallback,
  defineRcuPointer,
  kfree_rcu,
  rcu_assign_pointer,
  rcu_barrier,
  rcu_dereference,
  rcu_read_lock,
  rcu_read_lock_bh,
  rcu_read_unlock,
  rcu_read_unlock_bh,
  rcu_replace_pointer,
  synchronize_rcu,
} from '../src/kernel/rcu.js';
import { objectRefcount, refcount_dec_and_test, refcount_inc, refcount_inc_not_zero, refcount_read, refcount_set } from '../src/kernel/refcount.js';
import { kfree, kzalloc, slabInit } from '../src/kernel/slab.js';
import { call_srcu, defineSrcu, defineSrcuCallback, srcu_barrier, srcu_read_lock, srcu_read_unlock, synchronize_srcu } from '../src/kernel/srcu.js';
import { defineSpinlock, spin_lock, spin_unlock } from '../src/kernel/spinlock.js';
import { msleep } from '../src/kernel/delay.js';
import {
  alloc_ordered_workqueue,
  cancel_work_sync,
  defineWork,
  flush_work,
  flush_workqueue,
  queue_delayed_work,
  queue_work,
  system_wq,
} from '../src/kernel/workqueue.js';
import { __xa_store, defineXArray, xa_empty, xa_load, xa_lock, xa_unlock } from '../src/kernel/xarray.js';
import { runDeterministic } from '../src/runtime/deterministic.js';
import type { Workload } from '../src/runtime/model.js';
import { RandomScheduler } from '../src/runtime/schedulers/random.js';
import { Task } from '../src/runtime/task.js';
import { buildWorkload } from '../src/runtime/workloads.js';
import { loadScenarioFile, scenarioParams } from '../src/scenario/load.js';

/** Labels of the points these files make (label shapes: digits and names vary). */
const SYNC = new RegExp(
  [
    '^rcu_(read_(un)?lock(_bh|_sched)?|dereference\\(|assign_pointer|replace_pointer|barrier|do_batch)',
    '^RCU_INIT_POINTER',
    '^(synchronize_rcu|start_poll_synchronize_rcu|call_rcu|an RCU grace period)',
    '^(srcu_read_(un)?lock|synchronize_srcu|call_srcu|srcu_barrier|srcu_invoke_callbacks|an SRCU grace period)',
    '^(refcount_|kref_)',
    '^(ida_|xa_load|xa_empty|__xa_)',
    '^notifier_(call_chain|chain_register|chain_unregister)',
    '^(queue_work|queue_delayed_work|process_one_work|delayed_work_timer_fn|flush_work|cancel_work|flush_workqueue|destroy_workqueue)',
    '^(task_work_run|task->task_works|fput|fget|__fput|file_free|alloc_empty_file|llist_del_all|get_unused_fd_flags|fd_install|put_unused_fd)',
    '^(file->f_mode|close_fd|task_lock: tsk->files|atomic_dec_and_test\\(&files|close_files|mmap_region: |remove_vma)',
    '^(msleep|udelay|ndelay|mdelay|schedule_timeout|cond_resched)',
  ].join('|'),
);

/** Every performed point: its label and whether it declared a footprint. */
const performed: [string, boolean][] = [];
const perform = Task.prototype.perform;
beforeAll(() => {
  Task.prototype.perform = function (this: Task, env) {
    const p = this.pending;
    performed.push([p?.label ?? '?', p?.footprint !== undefined || p?.footprintOf !== undefined]);
    return perform.call(this, env);
  };
});
afterAll(() => {
  Task.prototype.perform = perform;
});

/** Runs w under checked footprints; the points of these files performed, and the undeclared ones by label. */
function check(w: Workload, seeds: number): { sync: number; undeclared: Map<string, number> } {
  performed.length = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const s = new RandomScheduler(seed);
    s.newExecution();
    runDeterministic({ workload: w, seed, scheduler: s, checkFootprints: true, keepGoing: true });
  }
  const mine = performed.filter(([label]) => SYNC.test(label));
  const undeclared = new Map<string, number>();
  for (const [label, declared] of mine) if (!declared) undeclared.set(label, (undeclared.get(label) ?? 0) + 1);
  return { sync: mine.length, undeclared };
}

/** A workload driving every sync primitive, from three tasks that race on them. */
function primitives(): Workload {
  const k = kernel();
  slabInit(k);
  const gp = defineRcuPointer(k, 'gp');
  const xa = defineXArray(k, 'xa', 4);
  const ida = defineIda(k, 'ida', 40);
  const ssp = defineSrcu(k, 'srcu');
  const lock = defineSpinlock(k, 'lock');
  const atomic = defineNotifierChain(k, 'atomic_chain', 'atomic');
  const srcuChain = defineNotifierChain(k, 'srcu_chain', 'srcu');
  const nb = defineNotifierBlock(k, 'nb', function* (t) {
    yield* k.stepOn(t, 'nb: called', [], () => undefined);
    return NOTIFY_OK;
  });
  const rcuCb = defineRcuCallback(k, 'rcu_cb', function* () {});
  const srcuCb = defineSrcuCallback(k, ssp, 'srcu_cb', function* () {});
  const freeCb = defineKfreeRcu(k, 'obj_free_rcu', (t, obj) => kfree(k, t, obj));
  const ordered = alloc_ordered_workqueue(k, 'ordered_wq');
  const work = defineWork(k, 'work', function* (t) {
    yield* msleep(k, t, 1);
  });
  const later = defineWork(k, 'later', function* () {});
  k.task('reader', 'process', function* (t) {
    for (let i = 0; i < 2; i++) {
      yield* rcu_read_lock(k, t);
      yield* rcu_read_lock_bh(k, t);
      const obj = yield* rcu_dereference(k, t, gp);
      yield* rcu_dereference(k, t, gp);
      if (obj !== 0) yield* refcount_inc_not_zero(k, t, objectRefcount(k, 'obj->users', obj, 0));
      yield* xa_load(k, t, xa, 1);
      yield* atomic_notifier_call_chain(k, t, atomic, 0, 0);
      yield* rcu_read_unlock_bh(k, t);
      yield* rcu_read_unlock(k, t);
      const idx = yield* srcu_read_lock(k, t, ssp);
      yield* srcu_read_lock(k, t, ssp);
      yield* srcu_read_unlock(k, t, ssp, idx);
      yield* srcu_notifier_call_chain(k, t, srcuChain, 0, 0);
      yield* srcu_read_unlock(k, t, ssp, idx);
      const id = yield* ida_alloc(k, t, ida);
      yield* ida_free(k, t, ida, id);
    }
  });
  k.task('updater', 'process', function* (t) {
    yield* atomic_notifier_chain_register(k, t, atomic, nb);
    yield* srcu_notifier_chain_register(k, t, srcuChain, nb);
    const obj = yield* kzalloc(k, t, 2, 'GFP_KERNEL');
    const users = objectRefcount(k, 'obj->users', obj, 0);
    yield* refcount_set(k, t, users, 1);
    yield* refcount_inc(k, t, users);
    yield* rcu_assign_pointer(k, t, gp, obj);
    yield* xa_lock(k, t, xa);
    yield* __xa_store(k, t, xa, 1, obj, 'GFP_ATOMIC');
    yield* xa_unlock(k, t, xa);
    yield* queue_work(k, t, ordered, work);
    yield* queue_delayed_work(k, t, system_wq(k), later, 2);
    yield* flush_work(k, t, work);
    yield* synchronize_rcu(k, t);
    yield* call_rcu(k, t, rcuCb);
    yield* call_srcu(k, t, ssp, srcuCb);
    yield* synchronize_srcu(k, t, ssp);
    yield* rcu_replace_pointer(k, t, gp, 0, () => true);
    yield* refcount_read(k, t, users);
    yield* refcount_dec_and_test(k, t, users);
    yield* atomic_notifier_chain_unregister(k, t, atomic, nb);
    yield* kfree_rcu(k, t, freeCb, obj);
    yield* rcu_barrier(k, t);
    yield* srcu_barrier(k, t, ssp);
    yield* cancel_work_sync(k, t, later);
    yield* flush_workqueue(k, t, ordered);
    yield* ida_is_empty(k, t, ida);
    yield* xa_empty(k, t, xa);
  });
  // A release of what it does not hold: lockdep's report, which reads its graph (the coarse fallback).
  k.task('unbalanced', 'process', function* (t) {
    yield* spin_lock(k, t, lock);
    yield* spin_unlock(k, t, lock);
    yield* rcu_read_unlock(k, t);
  });
  return tasksWorkload(k, 'sync-footprints', ['reader', 'updater', 'reader', 'unbalanced']);
}

describe('sync primitives: footprints', () => {
  it('every point of the primitives declares a footprint that covers what it wrote', () => {
    const seeds = 12;
    const { sync, undeclared } = check(primitives(), seeds);
    expect(sync).toBeGreaterThan(500);
    // The unbalanced rcu_read_unlock, once an execution; srcu_read_lock records a lockdep acquisition: declared with
    // the locks part's footprint, where lockdep says what it touches (a chain this thread validated).
    expect(undeclared.get('rcu_read_unlock')).toBe(seeds);
    for (const label of undeclared.keys()) expect(label).toMatch(/^(rcu_read_unlock$|srcu_read_lock\()/);
  });

  it('in the stress presets, only the points recording a lockdep acquisition are undeclared', async () => {
    const s = await loadScenarioFile('stress/random.yaml');
    const presets: Workload[] = [
      buildWorkload(s.model, scenarioParams(s)),
      buildWorkload('domains', { iommus: 'vtd,amd,smmuv3', groups: 2, groupSize: 2, processes: 3, faults: 3, script: 'stress', rounds: 8 }),
    ];
    for (const w of presets) {
      const { sync, undeclared } = check(w, 1);
      expect(sync).toBeGreaterThan(100);
      for (const label of undeclared.keys()) expect(label).toMatch(/^(srcu_read_lock|xa_(store|erase|cmpxchg|insert|alloc|destroy))\(/);
    }
  });
});
