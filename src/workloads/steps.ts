// Script steps, declared once: every step kind of every preset as a zod schema of its fields (with the text the
// docs show), from which come both forms a step is written in — the scenario's (`{ dma: { n: 2 } }`, `bind`,
// `{ munmap: 3 }`: src/scenario/scenario.ts) and the `steps` parameter's (`{ "op": "dma", "n": 2 }`, a union
// discriminated by `op`: src/workloads/script.ts) — and the generated reference (docs/steps.md). The vocabulary
// is by actor kind (ACTOR_KINDS: a process, a driver, a page-fault handler, an IOASID user, pciehp), one zod union
// discriminated by actor kind (actorUnion), so that a script may mix kinds; PRESET_ACTORS says which each preset runs.
import { z } from 'zod';
import { IOMMUFD_KINDS } from './iommufd-steps.js';
import { HP_STEPS } from './hotplug-steps.js';
import { KTHREAD_STEPS } from './kthread-steps.js';

const MUST = 'must be ';

function integer(min: number, max: number, text: string) {
  const error = `${MUST}an integer in ${min}..${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error }).describe(text);
}
function flag(text: string) {
  return z.boolean({ error: `${MUST}true or false` }).describe(text);
}
function named(text: string) {
  const error = `${MUST}a name (letters, digits, _)`;
  return z.string({ error }).regex(/^[A-Za-z_][\w-]*$/, { error }).describe(text);
}

const dev = integer(0, 1023, 'The device (its index in the topology).');
const pasid = integer(0, (1 << 20) - 1, 'The PASID (0 is IOMMU_NO_PASID: the kernel refuses it, a script may try).');
const domain = named('The domain, as named by the alloc step that makes it.');
const set = named("The ioasid_set, as named by the alloc_set that makes it (`system`: the host's, allocated at boot).");
const id = named('The IOASID, as named by the alloc step that makes it.');
const quota = integer(0, 1 << 20, "The set's quota (IOASIDs it may hold).");
const vpn = integer(0, 1 << 20, 'The virtual page number in the process.');

/**
 * Every kind's fields extend this one object: issue #18 adds here the optional name a step's result is kept
 * under for the steps after it, and every kind of every preset has it.
 */
const STEP_BASE = {};

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
}

function kind(op: string, text: string, fields: Record<string, z.ZodType> = {}, form: { bare?: boolean; short?: string } = {}): StepKind {
  return { op, text, fields: { ...STEP_BASE, ...fields }, ...form };
}

/** The ordering constraints every preset's actors take (their scenario forms: `{ after: drv/0:2 }`, `{ while: { task, holds } }`). */
export const ORDER_KINDS: readonly StepKind[] = [
  kind('after', "Wait until another actor has finished its step (scenario: `{ after: 'drv/0:2' }`, steps from 0).", {
    actor: z.string({ error: `${MUST}an actor, as actor/N` }).regex(/^[a-z]+\/\d+$/, { error: `${MUST}an actor, as actor/N` }).describe('The actor waited for: proc/N, drv/N, iopf/N, user/N.'),
    step: integer(0, 1 << 16, 'Its step, from 0.'),
  }),
  kind('while', 'Start the next step once a task whose comm starts with `task` holds a lock of class `lock` (scenario: `{ while: { task: proc0, holds: iommu_sva_lock } }`).', {
    task: z.string({ error: `${MUST}a task's name or a prefix of it` }).min(1, { error: `${MUST}a task's name or a prefix of it` }).describe("A kernel task's comm, or a prefix of it: proc0, drv1, iopf."),
    lock: z.string({ error: `${MUST}a lock class` }).min(1, { error: `${MUST}a lock class` }).describe('A lock class as lockdep names it: &group->mutex, iommu_sva_lock, ioasid_allocator_lock.'),
  }),
];

// The fields of each kind that has some, by preset: the kinds below and the scenario's forms are built from them.
const fdName = named('The fd, as named by the open step that made it (`as`); left out: the newest fd open.');
export const SVA_FIELDS = {
  open: {
    dev: integer(0, 1023, "The device whose node is opened (its index in the topology); left out: the process's own (N modulo the devices).").optional(),
    as: named('The name later steps refer to this fd by (close, mmap, dma, munmap_portal).').optional(),
  },
  close: { fd: fdName.optional() },
  mmap: { fd: fdName.optional() },
  munmap_portal: { fd: named('The fd whose portal mapping (its newest) goes; left out: the newest mapping.').optional() },
  dma: {
    n: integer(1, 4096, 'Descriptors to submit.').default(1),
    vpn: vpn.default(0),
    write: flag('Write (true) or read.').default(true),
    wait: flag('Wait for the completions before the next step.').default(true),
    fd: named("The fd whose device and PASID the descriptors go to; left out: the newest open's.").optional(),
  },
  munmap: {
    vpn,
    n: integer(1, 1 << 20, 'Pages from vpn on.').default(1),
    remap: flag('Map the range again afterwards (false: leave a hole, so the VMAs on either side stay apart).').default(true),
  },
  madvise: { vpn, n: integer(1, 1 << 20, 'Pages from vpn on.').default(1) },
  migrate: { vpn, n: integer(1, 1 << 20, 'Pages from vpn on.').default(1) },
  exit: { wait: flag('false: go on at once (another thread of the process carries on).').default(true) },
};

/**
 * sva: processes `proc/N`, each a kernel task that execs, then makes its syscalls (src/workloads/sva-script.ts).
 * `bind` and `unbind` are the older names of `open` (of the process's own device, unnamed) and `close` (of the
 * newest fd): the shipped races and the docs' scripts use them.
 */
export const SVA_KINDS: readonly StepKind[] = [
  kind('open', "open(2) of an accelerator's char device: the driver's open binds the process mm (uacce_fops_open → iommu_sva_bind_device); several opens of one device share its bond.", SVA_FIELDS.open, { bare: true }),
  kind('close', "close(2) of an fd: its last reference released on the way back to user space (uacce_fops_release → iommu_sva_unbind_device) — not while a mapping of its portal holds the file.", SVA_FIELDS.close, { bare: true, short: 'fd' }),
  kind('mmap', "mmap(2) of an fd's portal (uacce_fops_mmap): the mapping holds a reference on the file until munmap_portal or exit_mmap.", SVA_FIELDS.mmap, { bare: true, short: 'fd' }),
  kind('munmap_portal', "munmap(2) of an fd's portal mapping: the vma's file reference goes (remove_vma → fput); the last one releases the file.", SVA_FIELDS.munmap_portal, { bare: true, short: 'fd' }),
  kind('bind', "Open the process's own device (`open` with no fields); a second bind of the same mm shares the bond.", {}, { bare: true }),
  kind('unbind', 'Close the newest fd (`close` with no fields).', {}, { bare: true }),
  kind('dma', 'Have the device issue DMA tagged with the bond PASID (ATS, then PRI on a fault).', SVA_FIELDS.dma),
  kind(
    'munmap',
    'munmap [vpn, vpn + n) under mmap_lock for write and map it again, populated: every VMA of the range unmapped, the TLB gather telling the secondary TLBs (arch_invalidate_secondary_tlbs) before it frees the pages.',
    SVA_FIELDS.munmap,
    { short: 'vpn' },
  ),
  kind('madvise', 'madvise(MADV_DONTNEED) over [vpn, vpn + n) under mmap_lock for read (page faults go on): the pages zapped, the VMAs kept.', SVA_FIELDS.madvise),
  kind(
    'migrate',
    'Migrate the present pages of [vpn, vpn + n) to new pages (move_pages): each PTE replaced by a migration entry and flushed under the page table lock — the secondary TLBs told in atomic context — then remapped, the old page freed.',
    SVA_FIELDS.migrate,
  ),
  kind('exit', 'do_exit: exit_mm (exit_mmap, the MMU notifier release, remove_vma of each portal mapping), exit_files (every fd closed), exit_task_work (the last fputs release: the driver unbinds).', SVA_FIELDS.exit, { bare: true }),
];

const onDevice = { domain, dev, pasid: pasid.optional() };
const ofMm = (what: string) => ({ dev, mm: integer(0, 14, `The process whose mm is ${what}.`) });
export const DOMAINS_FIELDS = {
  alloc: {
    domain,
    type: z.enum(['blocked', 'identity', 'dma', 'paging'], { error: `${MUST}one of blocked, identity, dma, paging` }).describe('The domain type (SVA domains come from bind).').default('paging'),
    iommu: integer(0, 3, 'The IOMMU instance.').default(0),
  },
  free: { domain },
  attach: onDevice,
  detach: onDevice,
  replace: { domain, dev, pasid },
  bind: ofMm('bound'),
  unbind: ofMm('unbound'),
  dma: { dev, pasid },
  iopf: { dev, pasid },
};

/** domains: drivers, processes and page-fault handlers (`drv/N`, `proc/N`, `iopf/N`), each a kernel task. */
export const DOMAINS_KINDS: readonly StepKind[] = [
  kind('alloc', 'iommu_domain_alloc(type) on an IOMMU instance, named for the steps that use it.', DOMAINS_FIELDS.alloc),
  kind('free', 'iommu_domain_free, at once (a reader that may still hold it wants a synchronize_rcu first).', DOMAINS_FIELDS.free, { short: 'domain' }),
  kind('attach', 'iommu_attach_device, or iommu_attach_device_pasid with a PASID.', DOMAINS_FIELDS.attach),
  kind('detach', 'iommu_detach_device, or iommu_detach_device_pasid with a PASID.', DOMAINS_FIELDS.detach),
  kind('replace', 'iommu_replace_device_pasid.', DOMAINS_FIELDS.replace),
  kind('bind', "iommu_sva_bind_device of process mm N to the device (the PASID: the one allocator's, shown in the outcome).", DOMAINS_FIELDS.bind),
  kind('unbind', "iommu_sva_unbind_device of the actor's bond of process mm N on the device.", DOMAINS_FIELDS.unbind),
  kind('dma', 'A DMA write from {device, PASID} to address 0 by the PCI device, through its IOMMU unit: completed or faulted (the isolation oracle and KASAN judge what it reaches).', DOMAINS_FIELDS.dma),
  kind('iopf', 'A page request from {device, PASID}: the SVA domain looked up (iommu_get_domain_for_dev_pasid) and the fault handled.', DOMAINS_FIELDS.iopf),
  kind('synchronize_rcu', 'synchronize_rcu().', {}, { bare: true }),
];

/** hp: pciehp (`hp/N`): its steps are declared in hotplug-steps.ts. */
export const HP_KINDS: readonly StepKind[] = HP_STEPS.map((s) => kind(s.op, s.text, s.fields, s));

/** kthread: a kernel thread on init_mm's vmalloc area (`kthread/N`): its steps are declared in kthread-steps.ts. */
export const KTHREAD_KINDS: readonly StepKind[] = KTHREAD_STEPS.map((s) => kind(s.op, s.text, s.fields, s));

export const IOASID_FIELDS = {
  alloc_set: { set, quota },
  alloc: { set, id },
  free: { id },
  find: { set, id },
  adjust_set: { set, quota },
  free_set: { set },
  bind: { id },
  unbind: { id },
};

/** ioasid: allocator users `user/N`, each a kernel task started once the allocator is booted. */
export const IOASID_KINDS: readonly StepKind[] = [
  kind('alloc_set', 'ioasid_alloc_set(token, quota): a set, named for the steps that use it.', IOASID_FIELDS.alloc_set),
  kind('alloc', 'ioasid_alloc(set): an IOASID, named for the steps that use it.', IOASID_FIELDS.alloc),
  kind('free', 'ioasid_free(id).', IOASID_FIELDS.free, { short: 'id' }),
  kind('find', 'ioasid_find(set, id): the fast path under RCU.', IOASID_FIELDS.find),
  kind('adjust_set', 'ioasid_adjust_set(set, quota).', IOASID_FIELDS.adjust_set),
  kind('free_set', 'ioasid_free_set(set).', IOASID_FIELDS.free_set, { short: 'set' }),
  kind('bind', 'ioasid_notify(id, IOASID_NOTIFY_BIND).', IOASID_FIELDS.bind, { short: 'id' }),
  kind('unbind', 'ioasid_notify(id, IOASID_NOTIFY_UNBIND).', IOASID_FIELDS.unbind, { short: 'id' }),
  kind('check', "Every subscriber's view against the allocator's (the notifier-divergence oracle).", {}, { bare: true }),
];

/** A kind's `steps`-parameter form: `{ op, ...fields }`. */
export function wireSchema(k: StepKind) {
  return z.strictObject({ op: z.literal(k.op), ...k.fields });
}

/** One step of an actor that takes `kinds`: a union of theirs and the ordering constraints, discriminated by `op`. */
export function stepUnion(kinds: readonly StepKind[]) {
  const all = [...kinds, ...ORDER_KINDS].map(wireSchema);
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

/** `{ op: scalar }`: the scalar is the kind's one field (`{ munmap: 3 }`, `{ free: A }`). */
export function scalarForm<const O extends string, T extends z.ZodType>(op: O, field: T) {
  return z.strictObject({ [op]: field } as { [K in O]: T });
}

/** A scenario step (a kind's name, `{ op: fields }` or `{ op: scalar }`) as the `steps` parameter takes it. */
export function toWire(kinds: readonly StepKind[], st: unknown): Record<string, unknown> {
  if (typeof st === 'string') return { op: st };
  const [op, v] = Object.entries(st as Record<string, unknown>)[0] ?? ['', undefined];
  const k = kinds.find((x) => x.op === op);
  if (k?.short && (typeof v !== 'object' || v === null)) return { op, [k.short]: v };
  return { op, ...(v as object) };
}
