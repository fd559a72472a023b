// Script steps, declared once: every step kind of every preset as a zod schema of its fields (with the text the
// docs show), from which come both forms a step is written in — the scenario's (`{ dma: { n: 2 } }`, `bind`,
// `{ munmap: 3 }`: src/scenario/scenario.ts) and the `steps` parameter's (`{ "op": "dma", "n": 2 }`, a union
// discriminated by `op`: src/workloads/script.ts) — and the generated reference (docs/steps.md). The vocabulary
// is by actor kind (ACTOR_KINDS: a process, a driver, a page-fault handler, an IOASID user, pciehp), one zod union
// discriminated by actor kind (actorUnion), so that a script may mix kinds; PRESET_ACTORS says which each preset runs.
import { z } from 'zod';
import * as errno from '../kernel/errno.js';
import { IOMMUFD_KINDS } from './iommufd-steps.js';
import { flag, integer, kind, MUST, named, STEP_BASE } from './step-fields.js';
import { HP_STEPS } from './hotplug-steps.js';
import { KTHREAD_STEPS } from './kthread-steps.js';


const dev = integer(0, 1023, 'The device (its index in the topology).');
const pasid = integer(0, (1 << 20) - 1, 'The PASID (0 is IOMMU_NO_PASID: the kernel refuses it, a script may try).');
const domain = named('The domain, as named by the alloc step that makes it.');
const set = named("The ioasid_set, as named by the alloc_set that makes it (`system`: the host's, allocated at boot).");
const id = named('The IOASID, as named by the alloc step that makes it.');
const quota = integer(0, 1 << 20, "The set's quota (IOASIDs it may hold).");
const vpn = integer(0, 1 << 20, 'The virtual page number in the process.');

/**
 * What a name in a script stands for: an object a step made (an fd, an SVA bond's handle, a domain, an ioasid_set,
 * an IOASID, an iommufd IOAS, hw_pagetable or fault object) or a plain result (`value`: a return code, kept
 * for `expect`). A step that takes a name of one kind refuses a name of another at load.
 */
export type NameKind = 'fd' | 'handle' | 'domain' | 'set' | 'ioasid' | 'ioas' | 'hwpt' | 'fault' | 'value';

/** A field that holds a name: the kinds it may name, and whether the step makes it (defines) or uses it. */
export interface NameField {
  readonly kind: NameKind | readonly NameKind[];
  readonly defines?: boolean;
}

/** A step kind: its fields (all of them optional for a kind that may be written as its name alone). */
export interface StepKind {
  readonly op: string;
  /** What it does, in the kernel's words. */
  readonly text: string;
  readonly fields: Readonly<Record<string, z.ZodType>>;
  /** It may be written as its name alone (`bind`). */
  readonly bare?: boolean;
  /** `{ munmap: 3 }`: a scalar fills this field. */
  readonly short?: string;
  /** Its fields that hold names (`as`: the name its result is kept under). */
  readonly names?: Readonly<Record<string, NameField>>;
  /** An example of the step in the scenario's form (docs/steps.md, and the hint of a refused step). */
  readonly example?: string;
}

/** `as`: the name this step's result is kept under (what it returns, described by `what`). */
export function asField(what: string) {
  return named(`The name this step's result is kept under, for the steps after it and \`expect\`: ${what}.`).optional();
}
const def = (kind: NameKind): NameField => ({ kind, defines: true });
const use = (kind: NameKind | readonly NameKind[]): NameField => ({ kind });
/** The result names of a kind whose `as` keeps a plain return value. */
const AS_VALUE = { as: def('value') } as const;

/** The ordering constraints every preset's actors take (their scenario forms: `{ after: drv/0:2 }`, `{ while: { task, holds } }`). */
export const ORDER_KINDS: readonly StepKind[] = [
  kind('after', "Wait until another actor has finished its step (scenario: `{ after: 'drv/0:2' }`, steps from 0).", {
    actor: z.string({ error: `${MUST}an actor, as actor/N` }).regex(/^[a-z]+\/\d+$/, { error: `${MUST}an actor, as actor/N` }).describe('The actor waited for: proc/N, drv/N, iopf/N, user/N.'),
    step: integer(0, 1 << 16, 'Its step, from 0.'),
  }, { example: "{ after: 'drv/0:2' }" }),
  kind('while', 'Start the next step once a task whose comm starts with `task` holds a lock of class `lock` (scenario: `{ while: { task: proc0, holds: iommu_sva_lock } }`).', {
    task: z.string({ error: `${MUST}a task's name or a prefix of it` }).min(1, { error: `${MUST}a task's name or a prefix of it` }).describe("A kernel task's comm, or a prefix of it: proc0, drv1, iopf."),
    lock: z.string({ error: `${MUST}a lock class` }).min(1, { error: `${MUST}a lock class` }).describe('A lock class as lockdep names it: &group->mutex, iommu_sva_lock, ioasid_allocator_lock.'),
  }, { example: '{ while: { task: proc0, holds: iommu_sva_lock } }' }),
];

// The fields of each kind that has some, by preset: the kinds below and the scenario's forms are built from them.
const fdName = named('The fd, as named by the open (or bind) step that made it (`as`); left out: the newest fd open.');
const fdAs = asField('the fd (a number ≥ 0), or -errno when the open failed');
const ownDev = integer(0, 1023, "The device whose node is opened (its index in the topology); left out: the process's own (N modulo the devices).").optional();
export const SVA_FIELDS = {
  open: { dev: ownDev, as: fdAs },
  bind: { dev: ownDev, as: fdAs },
  close: { fd: fdName.optional() },
  unbind: { fd: fdName.optional() },
  mmap: { fd: fdName.optional(), as: asField("the portal's first page (vpn ≥ 0), or -errno") },
  munmap_portal: { fd: named('The fd whose portal mapping (its newest) goes; left out: the newest mapping.').optional() },
  dma: {
    n: integer(1, 4096, 'Descriptors to submit.').default(1),
    vpn: vpn.default(0),
    write: flag('Write (true) or read.').default(true),
    wait: flag('Wait for the completions before the next step.').default(true),
    fd: named("The fd whose device and PASID the descriptors go to; left out: the newest open's.").optional(),
  },
  munmap: {
    vpn: integer(0, 1 << 20, 'The virtual page number in the process (left out: 0, the first page).').default(0),
    n: integer(1, 1 << 20, 'Pages from vpn on.').default(1),
    remap: flag('Map the range again afterwards (false: leave a hole, so the VMAs on either side stay apart).').default(true),
  },
  madvise: { vpn, n: integer(1, 1 << 20, 'Pages from vpn on.').default(1), as: asField('0, or -errno') },
  migrate: { vpn, n: integer(1, 1 << 20, 'Pages from vpn on.').default(1), as: asField('the pages moved') },
  exit: { wait: flag('false: go on at once (another thread of the process carries on).').default(true) },
};

const FD_DEF = { as: def('fd') } as const;
const FD_USE = { fd: use('fd') } as const;

/**
 * sva: processes `proc/N`, each a kernel task that execs, then makes its syscalls (src/workloads/sva-script.ts).
 * `bind` and `unbind` are the older names of `open` and `close`: the shipped races and the docs' scripts use them.
 */
export const SVA_KINDS: readonly StepKind[] = [
  kind('open', "open(2) of an accelerator's char device: the driver's open binds the process mm (uacce_fops_open → iommu_sva_bind_device); several opens of one device share its bond.", SVA_FIELDS.open, {
    bare: true,
    names: FD_DEF,
    example: '{ open: { dev: 1, as: q } }',
  }),
  kind('close', "close(2) of an fd: its last reference released on the way back to user space (uacce_fops_release → iommu_sva_unbind_device) — not while a mapping of its portal holds the file.", SVA_FIELDS.close, {
    bare: true,
    short: 'fd',
    names: FD_USE,
    example: '{ close: q }',
  }),
  kind('mmap', "mmap(2) of an fd's portal (uacce_fops_mmap): the mapping holds a reference on the file until munmap_portal or exit_mmap.", SVA_FIELDS.mmap, {
    bare: true,
    short: 'fd',
    names: { ...FD_USE, ...AS_VALUE },
    example: '{ mmap: q }',
  }),
  kind('munmap_portal', "munmap(2) of an fd's portal mapping: the vma's file reference goes (remove_vma → fput); the last one releases the file.", SVA_FIELDS.munmap_portal, {
    bare: true,
    short: 'fd',
    names: FD_USE,
    example: '{ munmap_portal: q }',
  }),
  kind('bind', "`open` under its older name: the process's own device unless `dev` says which; a second bind of the same mm shares the bond.", SVA_FIELDS.bind, {
    bare: true,
    names: FD_DEF,
    example: '{ bind: { dev: 1, as: h } }',
  }),
  kind('unbind', '`close` under its older name: the fd named, or the newest.', SVA_FIELDS.unbind, { bare: true, short: 'fd', names: FD_USE, example: '{ unbind: h }' }),
  kind('dma', 'Have the device issue DMA tagged with the bond PASID (ATS, then PRI on a fault).', SVA_FIELDS.dma, { bare: true, names: FD_USE, example: '{ dma: { n: 4, fd: q, wait: false } }' }),
  kind(
    'munmap',
    'munmap [vpn, vpn + n) under mmap_lock for write and map it again, populated: every VMA of the range unmapped, the TLB gather telling the secondary TLBs (arch_invalidate_secondary_tlbs) before it frees the pages.',
    SVA_FIELDS.munmap,
    { bare: true, short: 'vpn', example: '{ munmap: 3 }' },
  ),
  kind('madvise', 'madvise(MADV_DONTNEED) over [vpn, vpn + n) under mmap_lock for read (page faults go on): the pages zapped, the VMAs kept.', SVA_FIELDS.madvise, {
    names: AS_VALUE,
    example: '{ madvise: { vpn: 0, n: 4 } }',
  }),
  kind(
    'migrate',
    'Migrate the present pages of [vpn, vpn + n) to new pages (move_pages): each PTE replaced by a migration entry and flushed under the page table lock — the secondary TLBs told in atomic context — then remapped, the old page freed.',
    SVA_FIELDS.migrate,
    { names: AS_VALUE, example: '{ migrate: { vpn: 0, n: 4 } }' },
  ),
  kind('exit', 'do_exit: exit_mm (exit_mmap, the MMU notifier release, remove_vma of each portal mapping), exit_files (every fd closed), exit_task_work (the last fputs release: the driver unbinds).', SVA_FIELDS.exit, {
    bare: true,
    example: '{ exit: { wait: false } }',
  }),
];

const rc = asField('the return code: 0, or -errno');
const onDevice = { domain, dev, pasid: pasid.optional(), as: rc };
const ofMm = (what: string) => ({ dev, mm: integer(0, 14, `The process whose mm is ${what}.`) });
const mmOf = (what: string) => integer(0, 14, `The process whose mm is ${what}.`);
export const DOMAINS_FIELDS = {
  alloc: {
    domain: named('The name the domain is kept under, for the steps that use it (and `expect`: the domain, or -ENOMEM when iommu_domain_alloc returned NULL).'),
    type: z.enum(['blocked', 'identity', 'dma', 'paging'], { error: `${MUST}one of blocked, identity, dma, paging` }).describe('The domain type (SVA domains come from bind).').default('paging'),
    iommu: integer(0, 3, 'The IOMMU instance.').default(0),
  },
  free: { domain },
  attach: onDevice,
  detach: { domain, dev, pasid: pasid.optional() },
  replace: { domain, dev, pasid, as: rc },
  bind: { ...ofMm('bound'), as: asField("the bond's handle (> 0), or -errno") },
  unbind: {
    handle: named('The bond, as named by the bind that made it (`as`); its device and mm are that bind\'s.').optional(),
    dev: dev.optional().describe('The device (its index in the topology), with `mm` when no handle is named.'),
    mm: mmOf('unbound, with `dev` when no handle is named').optional(),
  },
  dma: { dev, pasid, as: asField('0 when the DMA completed, -EFAULT when it faulted') },
  iopf: { dev, pasid },
};

const DOMAIN_USE = { domain: use('domain') } as const;

/** domains: drivers, processes and page-fault handlers (`drv/N`, `proc/N`, `iopf/N`), each a kernel task. */
export const DOMAINS_KINDS: readonly StepKind[] = [
  kind('alloc', 'iommu_domain_alloc(type) on an IOMMU instance, named for the steps that use it.', DOMAINS_FIELDS.alloc, {
    names: { domain: def('domain') },
    example: '{ alloc: { domain: A, type: paging } }',
  }),
  kind('free', 'iommu_domain_free, at once (a reader that may still hold it wants a synchronize_rcu first).', DOMAINS_FIELDS.free, { short: 'domain', names: DOMAIN_USE, example: '{ free: A }' }),
  kind('attach', 'iommu_attach_device, or iommu_attach_device_pasid with a PASID.', DOMAINS_FIELDS.attach, {
    names: { ...DOMAIN_USE, ...AS_VALUE },
    example: '{ attach: { domain: A, dev: 1, pasid: 1, as: r } }',
  }),
  kind('detach', 'iommu_detach_device, or iommu_detach_device_pasid with a PASID.', DOMAINS_FIELDS.detach, { names: DOMAIN_USE, example: '{ detach: { domain: A, dev: 1, pasid: 1 } }' }),
  kind('replace', 'iommu_replace_device_pasid.', DOMAINS_FIELDS.replace, { names: { ...DOMAIN_USE, ...AS_VALUE }, example: '{ replace: { domain: B, dev: 1, pasid: 1 } }' }),
  kind('bind', "iommu_sva_bind_device of process mm N to the device (the PASID: the one allocator's, shown in the outcome).", DOMAINS_FIELDS.bind, {
    names: { as: def('handle') },
    example: '{ bind: { dev: 0, mm: 0, as: h } }',
  }),
  kind('unbind', "iommu_sva_unbind_device of a bond: the one named (`handle`), or the actor's last of process mm N on the device.", DOMAINS_FIELDS.unbind, {
    short: 'handle',
    names: { handle: use('handle') },
    example: '{ unbind: h }',
  }),
  kind('dma', 'A DMA write from {device, PASID} to address 0 by the PCI device, through its IOMMU unit: completed or faulted (the isolation oracle and KASAN judge what it reaches).', DOMAINS_FIELDS.dma, {
    names: AS_VALUE,
    example: '{ dma: { dev: 0, pasid: 1 } }',
  }),
  kind('iopf', 'A page request from {device, PASID}: the SVA domain looked up (iommu_get_domain_for_dev_pasid) and the fault handled.', DOMAINS_FIELDS.iopf, { example: '{ iopf: { dev: 0, pasid: 1 } }' }),
  kind('synchronize_rcu', 'synchronize_rcu().', {}, { bare: true, example: 'synchronize_rcu' }),
];

/** hp: pciehp (`hp/N`): its steps are declared in hotplug-steps.ts. */
export const HP_KINDS: readonly StepKind[] = HP_STEPS.map((s) => kind(s.op, s.text, s.fields, { ...s, example: '{ unplug: { dev: 0, surprise: false } }' }));

/** kthread: a kernel thread on init_mm's vmalloc area (`kthread/N`): its steps are declared in kthread-steps.ts. */
export const KTHREAD_KINDS: readonly StepKind[] = KTHREAD_STEPS.map((s) => kind(s.op, s.text, s.fields, s));

const SET_USE = { set: use('set') } as const;
const ID_USE = { id: use('ioasid') } as const;
export const IOASID_FIELDS = {
  alloc_set: { set: named("The name the set is kept under, for the steps that use it (and `expect`: its sid, or -errno)."), quota },
  alloc: { set, id: named('The name the IOASID is kept under, for the steps that use it (and `expect`: the IOASID, or -errno).') },
  free: { id, as: rc },
  find: { set, id, as: asField('0 when found, or -errno') },
  adjust_set: { set, quota, as: rc },
  free_set: { set, as: rc },
  bind: { id, as: rc },
  unbind: { id, as: rc },
};

/** ioasid: allocator users `user/N`, each a kernel task started once the allocator is booted. */
export const IOASID_KINDS: readonly StepKind[] = [
  kind('alloc_set', 'ioasid_alloc_set(token, quota): a set, named for the steps that use it.', IOASID_FIELDS.alloc_set, { names: { set: def('set') }, example: '{ alloc_set: { set: S, quota: 4 } }' }),
  kind('alloc', 'ioasid_alloc(set): an IOASID, named for the steps that use it.', IOASID_FIELDS.alloc, { names: { ...SET_USE, id: def('ioasid') }, example: '{ alloc: { set: S, id: X } }' }),
  kind('free', 'ioasid_free(id).', IOASID_FIELDS.free, { short: 'id', names: { ...ID_USE, ...AS_VALUE }, example: '{ free: X }' }),
  kind('find', 'ioasid_find(set, id): the fast path under RCU.', IOASID_FIELDS.find, { names: { ...SET_USE, ...ID_USE, ...AS_VALUE }, example: '{ find: { set: S, id: X } }' }),
  kind('adjust_set', 'ioasid_adjust_set(set, quota).', IOASID_FIELDS.adjust_set, { names: { ...SET_USE, ...AS_VALUE }, example: '{ adjust_set: { set: S, quota: 2 } }' }),
  kind('free_set', 'ioasid_free_set(set).', IOASID_FIELDS.free_set, { short: 'set', names: { ...SET_USE, ...AS_VALUE }, example: '{ free_set: S }' }),
  kind('bind', 'ioasid_notify(id, IOASID_NOTIFY_BIND).', IOASID_FIELDS.bind, { short: 'id', names: { ...ID_USE, ...AS_VALUE }, example: '{ bind: X }' }),
  kind('unbind', 'ioasid_notify(id, IOASID_NOTIFY_UNBIND).', IOASID_FIELDS.unbind, { short: 'id', names: { ...ID_USE, ...AS_VALUE }, example: '{ unbind: X }' }),
  kind('check', "Every subscriber's view against the allocator's (the notifier-divergence oracle).", {}, { bare: true, example: 'check' }),
];

/** errno names (src/kernel/errno.ts) → their values: what an `expect` may name (`-EBUSY`). */
export const ERRNO: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(errno as Readonly<Record<string, unknown>>).filter((e): e is [string, number] => /^E[A-Z0-9]+$/.test(e[0]) && typeof e[1] === 'number'),
);

const EXPECT_ERROR = `${MUST}ok, error, -E… (an errno name: ${Object.keys(ERRNO).map((e) => `-${e}`).join(', ')}) or an integer`;
/** One expected result: `ok` (≥ 0), `error` (< 0), `-EBUSY` (that errno), or the integer itself. */
export const expectation = z
  .union([z.number().int(), z.string().refine((v) => v === 'ok' || v === 'error' || (v.startsWith('-') && v.slice(1) in ERRNO), { error: EXPECT_ERROR })], { error: EXPECT_ERROR })
  .describe('`ok` (≥ 0: a handle, fd, domain, id or 0), `error` (any -errno), `-EBUSY` (that errno; the names of src/kernel/errno.ts), or an integer (exactly that).');
/** `{ expect: { h: -EBUSY, fd: ok } }`: the results named, each checked against its expectation. */
export const expectResults = z
  .record(z.string().regex(/^[A-Za-z_][\w-]*$/, { error: `${MUST}a name (letters, digits, _)` }), expectation)
  .refine((r) => Object.keys(r).length > 0, { error: `${MUST}at least one name: { expect: { h: -EBUSY } }` })
  .describe('Each name (a step\'s `as`, or an object a step named) and what its result must be.');

/** Does `v` meet expectation `e`? */
export function meets(v: number, e: string | number): boolean {
  if (typeof e === 'number') return v === e;
  if (e === 'ok') return v >= 0;
  if (e === 'error') return v < 0;
  return v === -(ERRNO[e.slice(1)] ?? Number.NaN);
}

/**
 * `expect`, every actor's: a check of earlier results. One that does not hold is a finding of kind `script` (the
 * run goes on, as after a WARN), naming the step and the value seen.
 */
export const EXPECT_KIND: StepKind = {
  op: 'expect',
  text: "Check results named earlier (`as`, or a name a step made): each must meet its expectation — `ok`, `error`, `-EBUSY`, or an integer. One that does not is a finding of kind `script` naming this step, the name, the value seen and the step that set it; the run goes on. A name whose step has not run yet (another actor's) fails too.",
  fields: { results: expectResults },
  example: '{ expect: { h: -EBUSY, q: ok } }',
};

/** The steps every actor takes beside its kind's: the ordering constraints and `expect`. */
export const COMMON_KINDS: readonly StepKind[] = [...ORDER_KINDS, EXPECT_KIND];

/** A kind's `steps`-parameter form: `{ op, ...fields }`. */
export function wireSchema(k: StepKind) {
  return z.strictObject({ op: z.literal(k.op), ...k.fields });
}

/** One step of an actor that takes `kinds`: a union of theirs, the ordering constraints and expect, discriminated by `op`. */
export function stepUnion(kinds: readonly StepKind[]) {
  const all = [...kinds, ...COMMON_KINDS].map(wireSchema);
  return z.discriminatedUnion('op', all as [(typeof all)[number], ...(typeof all)[number][]]);
}

/** Each actor kind's step kinds: `{ proc: [...], drv: [...] }`. */
export type ActorSteps = Readonly<Record<string, readonly StepKind[]>>;

/**
 * One scripted actor (`{ kind, steps }`): a union discriminated by actor kind, each kind's steps a union of its
 * own step kinds — what the one script engine checks every actor of every preset with.
 */
export function actorUnion(actors: ActorSteps) {
  const each = Object.entries(actors).map(([kind, kinds]) => z.strictObject({ kind: z.literal(kind), steps: z.array(stepUnion(kinds)) }));
  return z.discriminatedUnion('kind', each as [(typeof each)[number], ...(typeof each)[number][]]);
}

/** An actor kind of the one vocabulary: what it is (its task's comm is its name and number: `proc0`). */
export interface ActorKind {
  readonly text: string;
  readonly steps: readonly StepKind[];
}

const only = (kinds: readonly StepKind[], ops: readonly string[]): StepKind[] => kinds.filter((k) => ops.includes(k.op));

/**
 * The step vocabulary by actor kind: a process makes system calls, a driver (or VFIO) manages domains, a
 * page-fault handler handles page requests, a kernel user of the IOASID allocator allocates and notifies. A
 * script of the one model may mix them; each preset runs the kinds of PRESET_ACTORS.
 */
export const ACTOR_KINDS = {
  proc: { text: 'A process (task `procN`): after exec, system calls on its device fd.', steps: SVA_KINDS },
  drv: {
    text: 'A driver or VFIO user (task `drvN`): domains allocated, attached, replaced, detached, freed; SVA binds of an mm; DMA from a {device, PASID}.',
    steps: only(DOMAINS_KINDS, ['alloc', 'free', 'attach', 'detach', 'replace', 'bind', 'unbind', 'dma', 'synchronize_rcu']),
  },
  iopf: { text: 'A page-fault handler (task `iopfN`): page requests looked up and handled.', steps: only(DOMAINS_KINDS, ['iopf', 'synchronize_rcu']) },
  user: { text: 'A kernel user of the IOASID allocator (task `userN`), started once the allocator is booted.', steps: IOASID_KINDS },
  vmm: { text: "A user-space VMM (task `vmmN`) on /dev/iommu: IOAS, hw_pagetables and fault objects, devices bound, attached, replaced and detached (a PASID's too), faults read and answered; its memory is process mm N's.", steps: IOMMUFD_KINDS },
  hp: { text: 'pciehp, the PCIe hot-plug driver of the devices\' slots (task `hpN`): surprise or orderly removal of a device.', steps: HP_KINDS },
  kthread: { text: "A kernel thread (task `kthreadN`) on init_mm's vmalloc area: vmalloc / vfree, ioremap / iounmap.", steps: KTHREAD_KINDS },
} as const satisfies Readonly<Record<string, ActorKind>>;

export type ActorKindName = keyof typeof ACTOR_KINDS;

const stepsOf = (kinds: readonly ActorKindName[]): ActorSteps => Object.fromEntries(kinds.map((a) => [a, ACTOR_KINDS[a].steps]));

/**
 * The actor kinds each preset's scripts may name, with their steps. The domains preset's drv, proc and iopf
 * actors are names for the reader: each takes every domains step (its `proc/N` binds an mm through the domain
 * path, as a driver binding a process would).
 */
export const PRESET_ACTORS: Readonly<Record<'sva' | 'domains' | 'ioasid', ActorSteps>> = {
  sva: stepsOf(['proc', 'hp', 'kthread']),
  domains: { drv: DOMAINS_KINDS, proc: DOMAINS_KINDS, iopf: DOMAINS_KINDS, vmm: IOMMUFD_KINDS, hp: HP_KINDS },
  ioasid: stepsOf(['user']),
};

// The scenario's forms of a kind, typed (defineScenario checks a TypeScript scenario against them).
type Shape = Record<string, z.ZodType>;

/** `{ op: { fields } }`. */
export function objectForm<const O extends string, S extends Shape>(op: O, fields: S) {
  return z.strictObject({ [op]: z.strictObject({ ...STEP_BASE, ...fields }) } as { [K in O]: z.ZodObject<S, z.core.$strict> });
}

/** `{ op: { fields } }` where every field may be left out: `{ op: {} }`. */
export function defaultedForm<const O extends string, S extends Shape>(op: O, fields: S) {
  return z.strictObject({ [op]: z.strictObject({ ...STEP_BASE, ...fields }).default({} as never) } as { [K in O]: z.ZodDefault<z.ZodObject<S, z.core.$strict>> });
}

/** `{ expect: { name: expectation } }`, every actor's. */
export const expectForm = z.strictObject({ expect: expectResults });

/** `{ op: scalar }`: the scalar is the kind's one field (`{ munmap: 3 }`, `{ free: A }`). */
export function scalarForm<const O extends string, T extends z.ZodType>(op: O, field: T) {
  return z.strictObject({ [op]: field } as { [K in O]: T });
}

/** A scenario step (a kind's name, `{ op: fields }` or `{ op: scalar }`) as the `steps` parameter takes it. */
export function toWire(kinds: readonly StepKind[], st: unknown): Record<string, unknown> {
  if (typeof st === 'string') return { op: st };
  const [op, v] = Object.entries(st as Record<string, unknown>)[0] ?? ['', undefined];
  if (op === 'expect') return { op, results: v };
  const k = kinds.find((x) => x.op === op);
  if (k?.short && (typeof v !== 'object' || v === null)) return { op, [k.short]: v };
  return { op, ...(v as object) };
}
