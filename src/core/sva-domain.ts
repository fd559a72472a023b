// SVA domains shared by the binds of one mm (seed 002; drivers/iommu/iommu-sva.c: iommu_sva_bind_device,
// iommu_sva_unbind_device, mm->iommu_mm->sva_domains, domain->users; io-pgfault.c: the fault path that looks
// the domain up by {device, PASID}). Every bind of an mm behind one IOMMU instance attaches the same SVA domain
// to its {device, PASID}; domain->users counts the binds — and, in the seed's RFC, the page-fault handlers that
// found it with iommu_get_domain_for_dev_pasid ("Not sure I see how this get_user refcounting can work?").
//
// Policy "SVA domain users" (DESIGN.md):
// - unrefcounted: users is a plain int under iommu_sva_lock; a lookup's get is `users++` with no check that the
//   domain is still live, and the last put frees the domain at once (kfree). With an RCU lookup, a fault
//   handler that loaded the domain from group->pasid_array just before the last unbind touches freed memory.
// - refcounted (Jason's answer): users is a refcount_t; a lookup takes its reference with
//   refcount_inc_not_zero inside the RCU section (a domain on its way out is not found), a put is
//   refcount_dec_and_test (refcount_dec_and_mutex_lock from outside iommu_sva_lock, so the mm's list and the
//   last put agree), and the domain is freed after a grace period (kfree_rcu), so a reader that loaded it
//   before it left the xarray may still look at it.
import type { KTask } from '../kernel/context.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import type { MmStruct } from '../kernel/mm/mm.js';
import { type Mutex, mutex_lock, mutex_unlock } from '../kernel/mutex.js';
import { defineKfreeRcu, kfree_rcu } from '../kernel/rcu.js';
import {
  objectRefcount,
  type RefcountRef,
  refcount_dec_and_mutex_lock,
  refcount_dec_and_test,
  refcount_inc_not_zero,
  refcount_set,
} from '../kernel/refcount.js';
import { objLoad, objStore } from '../kernel/slab.js';
import type { ViewOf } from '../kernel/struct.js';
import { read } from '../runtime/footprint.js';
import { objectFootprint } from './footprints.js';
import { DOM, type Domains, IOMMU_DOMAIN, type IommuGroups } from './iommu.js';
import { iommuSvaLock } from './iommu-sva.js';
import { defineDomainIopf } from './io-pgfault.js';
import type { DeviceInfo } from './types.js';

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    /** iommu_sva_domain_get_user: a lookup's reference on an SVA domain; false once it is on its way out. */
    iommu_sva_domain_get_user(t: KTask, dom: number): KGen<boolean>;
    /** iommu_sva_domain_put_user, without iommu_sva_lock held: the last one frees the domain. */
    iommu_sva_domain_put_user(t: KTask, dom: number): KGen;
  }
}

const IOMMU_SVA_C = 'drivers/iommu/iommu-sva.c';

export type SvaUsers = 'refcounted' | 'unrefcounted';
export const SVA_USERS: readonly SvaUsers[] = ['refcounted', 'unrefcounted'];

export interface SvaDomainsConfig {
  /** The mms that may bind (ids 1..n; init_mm, id 0, may bind too). */
  readonly mms: number;
  readonly iommus: number;
  readonly devices: number;
  readonly maxPasids: number;
  readonly users: SvaUsers;
}

/** The SVA domain part of a bind's outcome: the SVA domain {dev, pasid} now uses, or -errno and why. */
export interface SvaBind {
  readonly dom: number;
  readonly err: number;
  readonly why: string;
}

/**
 * An SVA domain's MMU notifier (mainline: domain->notifier, registered by the driver's domain_alloc_sva —
 * the vendor's SVA domain alloc — and put by its domain free; free_notifier frees the domain an SRCU grace period
 * later). Set by the SVA core when its notifier policy is `domain`; absent, a domain has none.
 */
export interface SvaDomainNotifier {
  /** mmu_notifier_register(&domain->notifier, mm): the subscription, or -errno. */
  register(t: KTask, dom: number, mm: MmStruct): KGen<number>;
  /** The domain's subscription, registered and not yet put (0: none). Reads only. */
  subscription(dom: number): number;
  /** What subscription(dom) reads (computed: the table it scans). */
  subscriptionFootprint(dom: number): number[];
  /** mmu_notifier_put(&domain->notifier). */
  put(t: KTask, sub: number): KGen;
}

export class SvaDomains {
  /** iommu_sva_lock: the mms' domain lists and (unrefcounted) every domain's users. */
  readonly lock: Mutex;
  private readonly list: number;
  private readonly freeRcu: string;
  private readonly domain: ViewOf<typeof IOMMU_DOMAIN>;
  /** The SVA domains' MMU notifier (the SVA core's, notifier policy `domain`). */
  notifier: SvaDomainNotifier | undefined;

  constructor(
    private readonly k: Kernel,
    readonly groups: IommuGroups,
    readonly domains: Domains,
    readonly cfg: SvaDomainsConfig,
  ) {
    this.lock = iommuSvaLock(k);
    this.list = k.statics.alloc((cfg.mms + 1) * cfg.iommus, 'mm sva_domains');
    this.domain = k.view(IOMMU_DOMAIN);
    // The domain's free after a grace period: the RCU callback frees it as iommu_domain_free would.
    this.freeRcu = defineKfreeRcu(k, 'iommu_sva_domain_free_rcu', (t, dom) => domains.free(t, dom));
    defineDomainIopf(k, { groups, get: (t, dom) => this.iommu_sva_domain_get(t, dom), put: (t, dom) => this.iommu_sva_domain_put(t, dom) });
    k.fns.define('iommu_sva_domain_get_user', IOMMU_SVA_C, (t, dom) => this.getUser(t, dom));
    k.fns.define('iommu_sva_domain_put_user', IOMMU_SVA_C, (t, dom) => this.putUser(t, dom));
  }

  private listSlot(mm: MmStruct, iommu: number): number {
    return this.k.mem.statics + this.list + mm.id * this.cfg.iommus + iommu;
  }

  private users(dom: number): RefcountRef {
    return objectRefcount(this.k, 'domain->users', dom, DOM.users);
  }

  // ---- users ----

  /**
   * iommu_sva_domain_get_user: a lookup's reference, inside the lookup's group->mutex or RCU section. False
   * when the domain is already on its way out (refcounted only: unrefcounted counts up from anything).
   */
  iommu_sva_domain_get(t: KTask, dom: number): KGen<boolean> {
    return this.k.fn.iommu_sva_domain_get_user(t, dom);
  }

  private getUser(t: KTask, dom: number): KGen<boolean> {
    const k = this.k;
    if (this.cfg.users === 'refcounted') return refcount_inc_not_zero(k, t, this.users(dom));
    return k.stepOn(t, 'domain->users++', objectFootprint(k, dom, [], [DOM.users]), () => {
      objStore(k, t, dom, DOM.users, objLoad(k, t, dom, DOM.users) + 1);
      return true;
    });
  }

  /** iommu_sva_domain_put_user, by a caller that does not hold iommu_sva_lock: the last one frees. */
  iommu_sva_domain_put(t: KTask, dom: number): KGen {
    return this.k.fn.iommu_sva_domain_put_user(t, dom);
  }

  private *putUser(t: KTask, dom: number): KGen {
    const k = this.k;
    if (this.cfg.users === 'refcounted') {
      // Only the drop to 0 takes the lock: the mm's list must not hand the domain to a new bind meanwhile.
      if (!(yield* refcount_dec_and_mutex_lock(k, t, this.users(dom), this.lock))) return;
      yield* this.release(t, dom);
      yield* mutex_unlock(k, t, this.lock);
      return;
    }
    yield* mutex_lock(k, t, this.lock);
    yield* this.putLocked(t, dom);
    yield* mutex_unlock(k, t, this.lock);
  }

  /** A put under iommu_sva_lock. */
  private *putLocked(t: KTask, dom: number): KGen {
    const k = this.k;
    const last =
      this.cfg.users === 'refcounted'
        ? yield* refcount_dec_and_test(k, t, this.users(dom))
        : yield* k.stepOn(t, '--domain->users', objectFootprint(k, dom, [], [DOM.users]), () => {
            const u = objLoad(k, t, dom, DOM.users) - 1;
            objStore(k, t, dom, DOM.users, u);
            return u === 0;
          });
    if (last) yield* this.release(t, dom);
  }

  /** The last user went (iommu_sva_lock held): off the mm's list, then freed. */
  private *release(t: KTask, dom: number): KGen {
    const k = this.k;
    yield* k.stepOn(t, 'list_del(&domain->next)', () => this.listDelFootprint(dom), () => {
      const mmId = objLoad(k, t, dom, DOM.mm) - 1;
      for (let i = 0; i < this.cfg.iommus; i++) {
        const slot = k.mem.statics + this.list + mmId * this.cfg.iommus + i;
        if (mmId >= 0 && Atomics.load(k.i32, slot) === dom) Atomics.store(k.i32, slot, 0);
      }
    });
    yield* this.iommu_domain_free(t, dom);
  }

  /** What list_del(&domain->next) touches: domain->mm, and the mm's list slots (which mm is read under the step). */
  private listDelFootprint(dom: number): number[] {
    const k = this.k;
    const fp = objectFootprint(k, dom, [DOM.mm]);
    const mmId = (k.i32[dom + DOM.mm] as number) - 1;
    if (mmId >= 0) for (let i = 0; i < this.cfg.iommus; i++) fp.push(k.mem.statics + this.list + mmId * this.cfg.iommus + i);
    return fp;
  }

  /**
   * iommu_domain_free of an SVA domain off every list: with a notifier, mmu_notifier_put — the memory goes in
   * free_notifier, after SRCU —, else freed now (users policy: at once, or after an RCU grace period).
   */
  private *iommu_domain_free(t: KTask, dom: number): KGen {
    const n = this.notifier;
    const sub = n ? yield* this.k.stepOn(t, 'domain->notifier', () => n.subscriptionFootprint(dom), () => n.subscription(dom)) : 0;
    if (n && sub > 0) yield* n.put(t, sub);
    else yield* this.freeMemory(t, dom);
  }

  /** The domain's memory (free_notifier's part, or iommu_domain_free's without a notifier). */
  *freeMemory(t: KTask, dom: number): KGen {
    if (this.cfg.users === 'refcounted') yield* kfree_rcu(this.k, t, this.freeRcu, dom);
    else yield* this.domains.free(t, dom);
  }

  // ---- the SVA domain part of bind / unbind (iommu-sva.ts's bonds call them) ----

  /**
   * The SVA domain part of a bind (iommu_sva_lock held): mm's SVA domain on dev's IOMMU — found on
   * mm->iommu_mm->sva_domains with one more user, or allocated with users 1 — attached to {dev, pasid} through
   * the group (iommu_attach_device_pasid). A bind that fails does not count as a user.
   */
  *iommu_sva_domain_attach(t: KTask, dev: DeviceInfo, mm: MmStruct, pasid: number, flags: number): KGen<SvaBind> {
    const k = this.k;
    const slot = this.listSlot(mm, dev.iommu);
    let dom = yield* k.stepOn(t, 'mm->iommu_mm->sva_domains', [read(slot)], () => Atomics.load(k.i32, slot));
    if (dom !== 0) {
      // Attach first: a bind that fails must not count as a user.
      const ret = yield* this.groups.iommu_attach_device_pasid(t, dom, dev, pasid);
      if (ret !== 0) return { dom: 0, err: ret, why: `attaching ${mm.name}'s SVA domain to ${dev.name} PASID ${pasid} failed` };
      // Under iommu_sva_lock the count cannot reach 0 while the domain is on the list.
      yield* this.iommu_sva_domain_get(t, dom);
      return { dom, err: 0, why: '' };
    }
    const a = yield* k.call(t, 'iommu_sva_domain_alloc', this.allocDomain(t, dev, mm, flags));
    if (a.err !== 0) return { dom: 0, err: a.err, why: a.why };
    dom = a.dom;
    if (this.cfg.users === 'refcounted') yield* refcount_set(k, t, this.users(dom), 1);
    else yield* k.stepOn(t, 'domain->users = 1', objectFootprint(k, dom, [], [DOM.users]), () => objStore(k, t, dom, DOM.users, 1));
    const ret = yield* this.groups.iommu_attach_device_pasid(t, dom, dev, pasid);
    if (ret !== 0) {
      // Never published (attach stores the domain only once the driver has it): freed at once, or by its notifier.
      yield* this.iommu_domain_free(t, dom);
      return { dom: 0, err: ret, why: `attaching a new SVA domain to ${dev.name} PASID ${pasid} failed` };
    }
    yield* k.stepOn(t, 'list_add(&domain->next, &mm->iommu_mm->sva_domains)', [slot], () => Atomics.store(k.i32, slot, dom));
    return { dom, err: 0, why: '' };
  }

  /** The driver's domain_alloc_sva: the domain, and its MMU notifier on mm (none for init_mm). */
  private *allocDomain(t: KTask, dev: DeviceInfo, mm: MmStruct, flags: number): KGen<SvaBind> {
    const a = yield* this.domains.alloc(t, 'sva', dev.iommu, mm, flags);
    const n = this.notifier;
    if (a.err !== 0 || !n || mm.id === 0) return a;
    const sub = yield* n.register(t, a.dom, mm);
    if (sub > 0) return a;
    yield* this.domains.free(t, a.dom);
    return { dom: 0, err: sub, why: `mmu_notifier_register on ${mm.name} failed` };
  }

  /** The SVA domain part of the last unbind of {dev, pasid} (iommu_sva_lock held): detach, drop the user. */
  *iommu_sva_domain_detach(t: KTask, dom: number, dev: DeviceInfo, pasid: number): KGen {
    yield* this.groups.iommu_detach_device_pasid(t, dom, dev, pasid);
    yield* this.putLocked(t, dom);
  }

  // ---- reads (tests, invariant checks) ----

  /** mm's SVA domain on IOMMU instance `iommu` (0: none). */
  domainOf(mm: MmStruct, iommu: number): number {
    return Atomics.load(this.k.i32, this.listSlot(mm, iommu));
  }

  /** domain->users now (either policy: the same word). */
  usersOf(dom: number): number {
    return this.domain.users.READ_ONCE(dom);
  }

  /** Teardown check (register with k.onEnd): mm domain lists left behind. */
  leftovers(): string[] {
    const out: string[] = [];
    const i32 = this.k.i32;
    for (let m = 0; m <= this.cfg.mms; m++) {
      for (let i = 0; i < this.cfg.iommus; i++) {
        const d = i32[this.k.mem.statics + this.list + m * this.cfg.iommus + i] as number;
        if (d !== 0) out.push(`mm/${m} still lists SVA domain 0x${d.toString(16)} on IOMMU ${i}`);
      }
    }
    return out;
  }
}
