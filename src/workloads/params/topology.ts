// The topology parameters: what the simulated machine is made of — IOMMU units, PCI devices in groups, processes
// and their mms, IOASID sets and their quotas, VMs — and the hardware's sizes and costs.
import { type Flavour, FLAVOURS } from '../../hw/vendor.js';
import { IOASID_BITS_MAX } from '../../core/ioasid.js';
import { bool, int, type ParamTable, text } from './define.js';

const CAPS = ['ats', 'pri', 'pasid'];

/** A comma-separated list of IOMMU flavours: the reason it is not one, or undefined. */
export function flavourListError(v: string): string | undefined {
  const bad = v.split(',').find((f) => !FLAVOURS.includes(f as Flavour));
  return bad === undefined ? undefined : `unknown IOMMU flavour '${bad}' (${FLAVOURS.join(', ')})`;
}

function capsError(v: string): string | undefined {
  const bad = v.split(',').find((c) => c !== '' && !CAPS.includes(c));
  return bad === undefined ? undefined : `unknown capability '${bad}' (${CAPS.join(', ')})`;
}

export const TOPOLOGY = {
  iommus: text(
    `IOMMU units: one flavour per unit, comma-separated (${FLAVOURS.join(', ')}; e.g. vtd,amd,smmuv3,vtd); sva deals devices round-robin over them, domains puts group g behind unit g mod units.`,
    flavourListError,
    'flavour,…',
  ),
  devices: int(1, 1024, 'PCI devices (struct device / struct pci_dev), each behind IOMMU unit index mod iommus.'),
  groups: int(1, 16, 'IOMMU groups (struct iommu_group, seed 002); group g sits behind IOMMU unit g mod iommus.'),
  groupSize: int(1, 4, 'Devices in each IOMMU group (functions the IOMMU cannot isolate from each other, seed 002).'),
  caps: text(`Every device's PCIe capabilities: a subset of ${CAPS.join(',')} (SVA needs all three).`, capsError, 'cap,…'),
  pasidBits: int(1, 20, "Each device's PASID width in bits (the PCIe PASID capability's Max PASID Width)."),
  ssidBits: int(0, 20, "The SMMUv3 units' SSIDSIZE in bits (Sub-Stream IDs a context descriptor table holds)."),
  trusted: bool('Devices are trusted (pci_dev->untrusted clear): seed 004 lets trusted devices bind init_mm.'),
  processes: int(0, 4096, 'Processes, each with its own mm_struct (mm i+1 for process i).'),
  pages: int(1, 4096, "Virtual pages each process maps (4 KiB each), half of them faulted in at exec."),
  iotlb: int(0, 1 << 16, 'IOTLB entries of each IOMMU unit (0: every translation walks the page tables).'),
  atc: int(0, 1 << 16, 'ATC entries of each device (PCIe ATS; 0: every DMA asks the IOMMU).'),
  prqDepth: int(1, 1 << 16, "Page request queue entries of each IOMMU unit (small: overflow, and the hardware's auto-responses)."),
  addressSpaces: int(1, 1 << 16, 'Address spaces (domain IDs) of each IOMMU instance (seed 001: 4 on early Tegra, 128 later).'),
  kdevices: int(0, 1024, 'Devices with a kernel DMA user (the first n; seeds 001, 004).'),
  opens: int(1, 1024, 'Devices each process opens (process i: devices i, i+1, … modulo devices); above 1 the processes are swq-process.'),
  bits: int(4, IOASID_BITS_MAX, 'The IOASID space: 2^bits IDs installed as the capacity (ioasid_install_capacity, seed 003), IDs 1..2^bits - 1.'),
  vms: int(0, 64, 'VMs, one ioasid_set each (seed 003: a set per VM with a quota, token its kvm).'),
  vcpus: int(1, 8, 'vCPU threads of each VM allocating guest PASIDs in its set at once.'),
  quota: int(1, (1 << 20) - 2, "Each VM's ioasid_set quota (IOASIDs it may hold)."),
  systemQuota: int(0, (1 << 20) - 1, "The system set's quota (0: what the VMs leave, at most PID_MAX_DEFAULT = 32768)."),
  subscribers: bool('Declare and register the IOASID notifier subscribers VFIO, KVM and the IOMMU driver (off: the allocator alone, for benchmarks).'),
} satisfies ParamTable;
export type TopologyParam = keyof typeof TOPOLOGY;
