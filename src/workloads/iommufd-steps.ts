// The `vmm` actor kind's steps (a user-space VMM, task `vmmN`, on /dev/iommu: src/core/iommufd/): each a system
// call of iommufd's uAPI or a VFIO device's, its objects named (like the domains steps' domains) for the steps
// after it. Run by src/workloads/iommufd-script.ts; a script may mix them with the `drv` kind's `dma` steps, by
// which the device faults on an unmapped IOVA of the hw_pagetable and asks (PRI).
import { z } from 'zod';
import { integer, kind, MUST, named } from './step-fields.js';
import type { StepKind } from './steps.js';

const dev = integer(0, 1023, 'The device (its index in the topology), bound by an earlier `bind` of this VMM.');
const PASID_TEXT = 'The PASID (left out: the device itself, IOMMU_NO_PASID).';
const pasid = integer(0, (1 << 20) - 1, PASID_TEXT).optional().describe(PASID_TEXT);
const hwpt = named('The hw_pagetable, as named by the hwpt_alloc that makes it.');
const fault = named('The fault object, as named by the fault_alloc that makes it.');
const rc = named("The name this step's result is kept under, for the steps after it and `expect`: 0 (bind: the device's id), or -errno.").optional();

export const IOMMUFD_FIELDS = {
  ioas_alloc: { ioas: named('The IOAS, named for the steps that use it.') },
  fault_alloc: { fault: named('The fault object, named for the steps that use it (its fd is open until close).') },
  hwpt_alloc: { hwpt: named('The hw_pagetable, named for the steps that use it.'), ioas: named('Its IOAS.'), dev, fault: fault.optional().describe('Its fault object (left out: not fault-capable, no IOPF).') },
  bind: { dev: integer(0, 1023, 'The device (its index in the topology).'), as: rc },
  unbind: { dev, as: rc },
  attach: { dev, hwpt, pasid, as: rc },
  replace: { dev, hwpt, pasid, as: rc },
  detach: { dev, pasid, as: rc },
  read: {
    fault,
    groups: integer(1, 8, '').default(1).describe('Fault groups to read at most.'),
    buf: integer(0, 1 << 20, '').default(0).describe("The user buffer's page in the VMM's mm (copy_to_user may fault it in)."),
    wait: z.boolean({ error: `${MUST}true or false` }).default(true).describe('poll() first: wait for a fault to read.'),
  },
  poll: { fault },
  respond: {
    fault,
    code: z.enum(['success', 'invalid', 'failure'], { error: `${MUST}one of success, invalid, failure` }).default('invalid').describe('IOMMU_PGFAULT_RESP_*: success makes the device retry its access (default invalid).'),
  },
  munmap: { vpn: integer(0, 1 << 20, "A page of the VMM's memory.") },
  destroy: { object: named('An IOAS, hw_pagetable or fault named by this VMM.'), as: rc },
};


const AS = { as: { kind: 'value', defines: true } } as const;
const HWPT = { hwpt: { kind: 'hwpt' } } as const;
const FAULT = { fault: { kind: 'fault' } } as const;

/** vmm: a user-space VMM (task `vmmN`) on its own iommufd file; its memory is process mm N's. */
export const IOMMUFD_KINDS: readonly StepKind[] = [
  kind('open', 'open("/dev/iommu"): its iommufd_ctx.', {}, { bare: true, example: 'open' }),
  kind('ioas_alloc', 'IOMMU_IOAS_ALLOC.', IOMMUFD_FIELDS.ioas_alloc, { short: 'ioas', names: { ioas: { kind: 'ioas', defines: true } }, example: '{ ioas_alloc: I }' }),
  kind('fault_alloc', 'IOMMU_FAULT_QUEUE_ALLOC: a fault object and its fd.', IOMMUFD_FIELDS.fault_alloc, { short: 'fault', names: { fault: { kind: 'fault', defines: true } }, example: '{ fault_alloc: F }' }),
  kind('bind', "VFIO_DEVICE_BIND_IOMMUFD: the device's group claimed for the VMM (iommufd_device_bind).", IOMMUFD_FIELDS.bind, { short: 'dev', names: AS, example: '{ bind: 0 }' }),
  kind('unbind', 'The VFIO device closed: iommufd_device_unbind (-EBUSY while it is attached).', IOMMUFD_FIELDS.unbind, { short: 'dev', names: AS, example: '{ unbind: 0 }' }),
  kind('hwpt_alloc', "IOMMU_HWPT_ALLOC: a paging domain of the device's IOMMU on the IOAS, fault-capable with a fault object.", IOMMUFD_FIELDS.hwpt_alloc, { names: { hwpt: { kind: 'hwpt', defines: true }, ioas: { kind: 'ioas' }, ...FAULT }, example: '{ hwpt_alloc: { hwpt: H, ioas: I, dev: 0, fault: F } }' }),
  kind('attach', 'VFIO_DEVICE_ATTACH_IOMMUFD_PT (with a PASID: the pasid form): iommufd_device_attach.', IOMMUFD_FIELDS.attach, { names: { ...HWPT, ...AS }, example: '{ attach: { dev: 0, hwpt: H, pasid: 1 } }' }),
  kind('replace', 'The same ioctl on an attached device or PASID: iommufd_device_replace (pending faults of the old handle answered).', IOMMUFD_FIELDS.replace, { names: { ...HWPT, ...AS }, example: '{ replace: { dev: 0, hwpt: H2, pasid: 1 } }' }),
  kind('detach', 'VFIO_DEVICE_DETACH_IOMMUFD_PT: iommufd_device_detach (pending faults answered INVALID).', IOMMUFD_FIELDS.detach, { names: AS, example: '{ detach: { dev: 0, pasid: 1 } }' }),
  kind('poll', 'poll() on the fault fd: wait until a fault is queued (nothing is read).', IOMMUFD_FIELDS.poll, { short: 'fault', names: FAULT, example: '{ poll: F }' }),
  kind('read', 'poll() and read() on the fault fd: groups get cookies, their records are copied to the user buffer.', IOMMUFD_FIELDS.read, { short: 'fault', names: FAULT, example: '{ read: { fault: F, groups: 1 } }' }),
  kind('respond', "write() on the fault fd: the response to the oldest group read and not yet answered.", IOMMUFD_FIELDS.respond, { short: 'fault', names: FAULT, example: '{ respond: { fault: F, code: success } }' }),
  kind('munmap', "munmap one page of the VMM's memory and mmap it again, unpopulated: the next copy_to_user there faults it in.", IOMMUFD_FIELDS.munmap, { short: 'vpn', example: '{ munmap: 3 }' }),
  kind('destroy', 'IOMMU_DESTROY of a named object (-EBUSY while anything else holds it).', IOMMUFD_FIELDS.destroy, { short: 'object', names: { object: { kind: ['ioas', 'hwpt', 'fault'] }, ...AS }, example: '{ destroy: H }' }),
  kind('close', 'The VMM exits: its devices detached and unbound, its fault fds and /dev/iommu closed.', {}, { bare: true, example: 'close' }),
];
