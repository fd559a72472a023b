// "[PATCH 07/10] iommu/ioasid: Use mutex instead of spinlock", of Jacob Pan's "[PATCH 00/10] IOASID extensions for
// guest SVA" (25 March 2020; seed 003): ioasid_allocator_lock becomes a mutex, so that the blocking notifier
// chain of patch 8 may be called under it —
//
//   -static DEFINE_SPINLOCK(ioasid_allocator_lock);
//   +static DEFINE_MUTEX(ioasid_allocator_lock);
//   …
//   -	spin_lock(&ioasid_allocator_lock);
//   +	mutex_lock(&ioasid_allocator_lock);
//
// in every function of ioasid.c that takes it. The patch here does the same: it declares the mutex and puts, in
// the place of each of those functions, one that takes the mutex around the function's body with the lock held
// (`<fn>_locked`, the model's body of <fn> between its lock and unlock — the series' ioasid_free() is already
// `lock; ioasid_free_locked(ioasid); unlock`). The notifier chain stays as it is: the patch is patch 7 alone. The
// mutex keeps the C name, so lockdep's reports and the scenario's `while: { holds: ioasid_allocator_lock }` name it
// as they name the spinlock it replaces.
const LOCKED = [
  'ioasid_alloc_set',
  'ioasid_alloc_system_set',
  'ioasid_adjust_set',
  'ioasid_free_set',
  'ioasid_alloc',
  'ioasid_free',
  'ioasid_find_sid',
  'ioasid_set_data',
  'ioasid_attach_spid',
  'ioasid_find_by_spid',
  'ioasid_notify',
];

exports.extend = (ctx) => {
  const { fns, fn } = ctx.k;
  const { DEFINE_MUTEX, mutex_lock, mutex_unlock } = ctx.kernel;
  const ioasid_allocator_lock = DEFINE_MUTEX('ioasid_allocator_lock');
  for (const name of LOCKED) {
    const body = `${name}_locked`;
    fns.replace(name, function* (t, ...args) {
      yield* mutex_lock(t, ioasid_allocator_lock);
      const ret = yield* fn[body](t, ...args);
      yield* mutex_unlock(t, ioasid_allocator_lock);
      return ret;
    });
  }
};
