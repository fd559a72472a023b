// The C counterpart of every member of the kernel API (src/api/kernel.ts), by section: docs/kernel-api.md is
// generated from this table and the API's declarations (scripts/kernel-api-doc.mjs). The table's type is keyed by
// the API's own names, so a member added without its counterpart, or a counterpart left for a member gone, does
// not compile.
import type { KernelApiName } from './kernel.js';

export const SECTIONS = {
  basics: 'Constants, struct layouts, the patch',
  locks: 'Locks',
  rcu: 'RCU and SRCU',
  refcount: 'Reference counts',
  slab: 'Memory: slab, KASAN, kmemleak',
  wait: 'Completions, wait queues, sleeping and delays',
  workqueue: 'Workqueues',
  kthread: 'Kernel threads',
  checks: 'Debug checks',
  access: 'Struct fields: READ_ONCE, barriers, atomics',
} as const;
export type Section = keyof typeof SECTIONS;

/** A member's section and the C it stands for. */
export type ApiDoc = readonly [Section, string];

const ERRNO = ['EPERM', 'ENOENT', 'ESRCH', 'EINTR', 'EIO', 'ENXIO', 'EBADF', 'EAGAIN', 'ENOMEM', 'EACCES', 'EFAULT', 'EBUSY', 'EEXIST', 'ENODEV', 'EINVAL', 'ENFILE', 'EMFILE', 'ENOSPC', 'ETIMEDOUT', 'EOPNOTSUPP'] as const;
function errnoDocs(): Record<(typeof ERRNO)[number], ApiDoc> {
  const out = {} as Record<(typeof ERRNO)[number], ApiDoc>;
  for (const e of ERRNO) out[e] = ['basics', `-${e} (kernel functions return errors negated)`];
  return out;
}

export const KERNEL_API_DOC: { readonly [N in KernelApiName]: ApiDoc } = {
  GFP_KERNEL: ['basics', 'GFP_KERNEL (may sleep: might_sleep checks the context)'],
  GFP_ATOMIC: ['basics', 'GFP_ATOMIC'],
  ...errnoDocs(),
  errname: ['basics', '%pe of ERR_PTR(err): the errno\'s name'],
  struct: ['basics', 'struct name { … }: a patch\'s own layout, in 4-byte words'],
  word: ['basics', 'a u32 / int / pointer field'],
  array: ['basics', 'u32 field[n]'],
  sizeof: ['basics', 'sizeof(struct x), in words'],
  structs: ['basics', 'the model\'s struct layouts by kernel name (struct iommu_sva, iommu_mm_data, iommu_domain, mm_struct, …)'],
  definePatch: ['basics', '(TypeScript inference of extend(ctx); the identity)'],
  DEFINE_MUTEX: ['locks', 'static DEFINE_MUTEX(name)'],
  mutex_init: ['locks', 'mutex_init(&obj->lock)'],
  mutex_lock: ['locks', 'mutex_lock(&lock)'],
  mutex_trylock: ['locks', 'mutex_trylock(&lock)'],
  mutex_unlock: ['locks', 'mutex_unlock(&lock)'],
  mutex_is_locked: ['locks', 'mutex_is_locked(&lock)'],
  DEFINE_SPINLOCK: ['locks', 'static DEFINE_SPINLOCK(name)'],
  spin_lock_init: ['locks', 'spin_lock_init(&obj->lock)'],
  spin_lock: ['locks', 'spin_lock(&lock)'],
  spin_unlock: ['locks', 'spin_unlock(&lock)'],
  spin_lock_irqsave: ['locks', 'spin_lock_irqsave(&lock, flags) (flags returned)'],
  spin_unlock_irqrestore: ['locks', 'spin_unlock_irqrestore(&lock, flags)'],
  spin_lock_bh: ['locks', 'spin_lock_bh(&lock)'],
  spin_unlock_bh: ['locks', 'spin_unlock_bh(&lock)'],
  DECLARE_RWSEM: ['locks', 'static DECLARE_RWSEM(name)'],
  down_read: ['locks', 'down_read(&sem)'],
  down_read_trylock: ['locks', 'down_read_trylock(&sem)'],
  up_read: ['locks', 'up_read(&sem)'],
  down_write: ['locks', 'down_write(&sem)'],
  down_write_trylock: ['locks', 'down_write_trylock(&sem)'],
  up_write: ['locks', 'up_write(&sem)'],
  downgrade_write: ['locks', 'downgrade_write(&sem)'],
  rwsem_is_locked: ['locks', 'rwsem_is_locked(&sem)'],
  mmap_read_lock: ['locks', 'mmap_read_lock(mm)'],
  mmap_read_unlock: ['locks', 'mmap_read_unlock(mm)'],
  mmap_write_lock: ['locks', 'mmap_write_lock(mm)'],
  mmap_write_unlock: ['locks', 'mmap_write_unlock(mm)'],
  lockdep_is_held: ['locks', 'lockdep_is_held(&lock)'],
  rcu_read_lock: ['rcu', 'rcu_read_lock()'],
  rcu_read_unlock: ['rcu', 'rcu_read_unlock()'],
  rcu_read_lock_bh: ['rcu', 'rcu_read_lock_bh()'],
  rcu_read_unlock_bh: ['rcu', 'rcu_read_unlock_bh()'],
  rcu_read_lock_held: ['rcu', 'rcu_read_lock_held()'],
  synchronize_rcu: ['rcu', 'synchronize_rcu()'],
  DEFINE_RCU_CALLBACK: ['rcu', 'static void func(struct rcu_head *head) — the callback call_rcu is given'],
  call_rcu: ['rcu', 'call_rcu(&obj->rcu, func)'],
  rcu_barrier: ['rcu', 'rcu_barrier()'],
  DEFINE_RCU_POINTER: ['rcu', 'static struct foo __rcu *p'],
  rcu_dereference: ['rcu', 'rcu_dereference(p) / rcu_dereference_check(p, c)'],
  rcu_dereference_protected: ['rcu', 'rcu_dereference_protected(p, c)'],
  rcu_access_pointer: ['rcu', 'rcu_access_pointer(p)'],
  rcu_assign_pointer: ['rcu', 'rcu_assign_pointer(p, v)'],
  DEFINE_STATIC_SRCU: ['rcu', 'DEFINE_STATIC_SRCU(name)'],
  srcu_read_lock: ['rcu', 'idx = srcu_read_lock(&ssp)'],
  srcu_read_unlock: ['rcu', 'srcu_read_unlock(&ssp, idx)'],
  synchronize_srcu: ['rcu', 'synchronize_srcu(&ssp)'],
  DEFINE_SRCU_CALLBACK: ['rcu', 'static void func(struct rcu_head *head) — the callback call_srcu is given'],
  call_srcu: ['rcu', 'call_srcu(&ssp, &obj->rcu, func)'],
  srcu_barrier: ['rcu', 'srcu_barrier(&ssp)'],
  DEFINE_REFCOUNT: ['refcount', 'static refcount_t name'],
  refcount_of: ['refcount', '&obj->refs (a refcount_t field of a kmalloc\'d object: KASAN checks the object)'],
  refcount_set: ['refcount', 'refcount_set(&r, n)'],
  refcount_read: ['refcount', 'refcount_read(&r)'],
  refcount_inc: ['refcount', 'refcount_inc(&r)'],
  refcount_inc_not_zero: ['refcount', 'refcount_inc_not_zero(&r)'],
  refcount_add: ['refcount', 'refcount_add(i, &r)'],
  refcount_dec: ['refcount', 'refcount_dec(&r)'],
  refcount_dec_and_test: ['refcount', 'refcount_dec_and_test(&r)'],
  refcount_sub_and_test: ['refcount', 'refcount_sub_and_test(i, &r)'],
  refcount_dec_and_mutex_lock: ['refcount', 'refcount_dec_and_mutex_lock(&r, &lock)'],
  refcount_dec_and_lock: ['refcount', 'refcount_dec_and_lock(&r, &lock)'],
  kref_init: ['refcount', 'kref_init(&kref)'],
  kref_read: ['refcount', 'kref_read(&kref)'],
  kref_get: ['refcount', 'kref_get(&kref)'],
  kref_get_unless_zero: ['refcount', 'kref_get_unless_zero(&kref)'],
  kref_put: ['refcount', 'kref_put(&kref, release)'],
  kmalloc: ['slab', 'kmalloc(size, gfp)'],
  kzalloc: ['slab', 'kzalloc(size, gfp)'],
  kfree: ['slab', 'kfree(obj)'],
  kmem_cache_create: ['slab', 'kmem_cache_create(name, size, …)'],
  kmem_cache_alloc: ['slab', 'kmem_cache_alloc(cache, gfp)'],
  kmem_cache_zalloc: ['slab', 'kmem_cache_zalloc(cache, gfp)'],
  kmem_cache_free: ['slab', 'kmem_cache_free(cache, obj)'],
  kmemleak_not_leak: ['slab', 'kmemleak_not_leak(obj)'],
  DECLARE_COMPLETION: ['wait', 'static DECLARE_COMPLETION(name)'],
  completion_of: ['wait', '&obj->done (a struct completion field)'],
  init_completion: ['wait', 'init_completion(&c)'],
  reinit_completion: ['wait', 'reinit_completion(&c)'],
  complete: ['wait', 'complete(&c)'],
  complete_all: ['wait', 'complete_all(&c)'],
  wait_for_completion: ['wait', 'wait_for_completion(&c)'],
  wait_for_completion_timeout: ['wait', 'wait_for_completion_timeout(&c, msecs_to_jiffies(ms))'],
  try_wait_for_completion: ['wait', 'try_wait_for_completion(&c)'],
  completion_done: ['wait', 'completion_done(&c)'],
  DECLARE_WAIT_QUEUE_HEAD: ['wait', 'static DECLARE_WAIT_QUEUE_HEAD(name)'],
  wait_event: ['wait', 'wait_event(wq, condition)'],
  wait_event_timeout: ['wait', 'wait_event_timeout(wq, condition, msecs_to_jiffies(ms))'],
  wake_up: ['wait', 'wake_up(&wq)'],
  wake_up_all: ['wait', 'wake_up_all(&wq)'],
  msleep: ['wait', 'msleep(ms)'],
  schedule_timeout: ['wait', 'set_current_state(TASK_UNINTERRUPTIBLE); schedule_timeout(timeout)'],
  schedule_timeout_uninterruptible: ['wait', 'schedule_timeout_uninterruptible(timeout)'],
  udelay: ['wait', 'udelay(us)'],
  ndelay: ['wait', 'ndelay(ns)'],
  mdelay: ['wait', 'mdelay(ms)'],
  cond_resched: ['wait', 'cond_resched()'],
  alloc_workqueue: ['workqueue', 'alloc_workqueue(name, flags, max_active)'],
  alloc_ordered_workqueue: ['workqueue', 'alloc_ordered_workqueue(name, flags)'],
  system_wq: ['workqueue', 'system_wq'],
  system_unbound_wq: ['workqueue', 'system_unbound_wq'],
  INIT_WORK: ['workqueue', 'INIT_WORK(&work, fn) / DECLARE_WORK(work, fn)'],
  queue_work: ['workqueue', 'queue_work(wq, &work)'],
  queue_delayed_work: ['workqueue', 'queue_delayed_work(wq, &dwork, msecs_to_jiffies(ms))'],
  schedule_work: ['workqueue', 'schedule_work(&work)'],
  flush_work: ['workqueue', 'flush_work(&work)'],
  cancel_work: ['workqueue', 'cancel_work(&work)'],
  cancel_work_sync: ['workqueue', 'cancel_work_sync(&work)'],
  cancel_delayed_work_sync: ['workqueue', 'cancel_delayed_work_sync(&dwork)'],
  work_pending: ['workqueue', 'work_pending(&work)'],
  flush_workqueue: ['workqueue', 'flush_workqueue(wq)'],
  destroy_workqueue: ['workqueue', 'destroy_workqueue(wq)'],
  kthread_create: ['kthread', 'static int threadfn(void *data) — the function kthread_run starts'],
  kthread_run: ['kthread', 'kthread_run(threadfn, data, namefmt)'],
  might_sleep: ['checks', 'might_sleep()'],
  WARN_ON: ['checks', 'WARN_ON(cond)'],
  WARN_ON_ONCE: ['checks', 'WARN_ON_ONCE(cond)'],
  BUG_ON: ['checks', 'BUG_ON(cond)'],
  view: ['access', 'obj->field, for the fields of a layout (plain accesses, under the lock that protects them)'],
  mm_struct_of: ['access', 'mm (the struct mm_struct object of the model\'s mm)'],
  READ_ONCE: ['access', 'READ_ONCE(p->f)'],
  WRITE_ONCE: ['access', 'WRITE_ONCE(p->f, v)'],
  smp_load_acquire: ['access', 'smp_load_acquire(&p->f)'],
  smp_store_release: ['access', 'smp_store_release(&p->f, v)'],
  atomic_read: ['access', 'atomic_read(&p->f)'],
  atomic_set: ['access', 'atomic_set(&p->f, v)'],
  atomic_inc: ['access', 'atomic_inc(&p->f)'],
  atomic_dec: ['access', 'atomic_dec(&p->f)'],
  atomic_add: ['access', 'atomic_add(i, &p->f)'],
  atomic_inc_return: ['access', 'atomic_inc_return(&p->f)'],
  atomic_dec_return: ['access', 'atomic_dec_return(&p->f)'],
  atomic_dec_and_test: ['access', 'atomic_dec_and_test(&p->f)'],
  cmpxchg: ['access', 'cmpxchg(&p->f, old, new)'],
  xchg: ['access', 'xchg(&p->f, v)'],
};

/**
 * docs/kernel-api.md: each section's members with their signature as the package declares it (`signatures`: name →
 * its type, read from the generated kernel.d.ts) and the C they stand for; then the types by kernel name.
 */
export function kernelApiMarkdown(signatures: ReadonlyMap<string, string>, types: readonly string[]): string {
  const out = [
    '# The kernel API of a patch: `iommu-sim/kernel`',
    '',
    'Generated by `node scripts/kernel-api-doc.mjs` (after `npm run build`) from `src/api/kernel.ts` and its',
    'declarations; `test/kernel-api-doc.test.ts` checks it is up to date. A patch gets every member below as',
    '`ctx.kernel` (bound to the model it patches); a TypeScript patch takes the types with',
    '`import type { PatchContext } from \'iommu-sim/kernel\'`. `t` is `current`, the task running the code; a',
    'function returning `KGen` may schedule: call it with `yield*`. Sizes are in 4-byte words (`sizeof(layout)`).',
    'Declarations (`DEFINE_*`, `DECLARE_*`, `INIT_WORK`, `alloc_workqueue`, `kthread_create`, the callbacks of',
    '`call_rcu` / `call_srcu`) are made in `extend(ctx)`, while the model is built.',
  ];
  for (const [section, title] of Object.entries(SECTIONS) as [Section, string][]) {
    out.push('', `## ${title}`, '', '| `ctx.kernel.` | Signature | C |', '| --- | --- | --- |');
    for (const [name, [s, c]] of Object.entries(KERNEL_API_DOC) as [string, ApiDoc][]) {
      if (s !== section) continue;
      out.push(`| \`${name}\` | ${cell(signatures.get(name) ?? '')} | ${cell(c)} |`);
    }
  }
  out.push('', '## Types', '', 'Exported as types (`import type { … } from \'iommu-sim/kernel\'`):', '', types.map((t) => `\`${t}\``).join(', '), '');
  return out.join('\n');
}

function cell(s: string): string {
  return s === '' ? '' : `\`${s.replace(/\s+/g, ' ').replace(/\|/g, '\\|')}\``;
}
