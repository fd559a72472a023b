// The messages between the hardware actors and the processes that use them: work descriptors submitted to a
// device, ATS translation requests and completions, page requests and responses, ATC invalidations, and the
// doorbells of the IOMMU's command queue — and the lifecycle events the kernel sends the IOMMU unit, device and
// mm actors (queues enabled, probe, driver bind, capabilities enabled, release; an mm's state as its tasks see
// it). All fields are small integers, so each has a fixed Int32 layout on the wire (Workload.hotEvents), and
// every one that the hardware handles reads or writes shared memory (Workload.sharedEvents): a lifecycle event
// its actor's state refuses is reported as a finding, dated by its delivery.
export type HwMessage =
  /**
   * A work descriptor (ENQCMD-style: it carries the PASID). A process gets dma.done at `from`; a kernel
   * submitter gives a completion record (`cr` > 0) that the device writes in memory instead, as DSA does.
   */
  | { type: 'submit'; pasid: number; vpn: number; w: number; id: number; from: number; cr: number }
  /** The device's DMA engine takes the next descriptor from its work queue. */
  | { type: 'engine' }
  | { type: 'ats.req'; dev: number; pasid: number; vpn: number; w: number; id: number }
  /** A table walk in progress: `st` below PAGE_WALK (src/hw/unit.ts) a stage of the context lookup, from it on the page walk. */
  | { type: 'walk'; dev: number; pasid: number; vpn: number; w: number; id: number; st: number; a: number; ep: number }
  | { type: 'ats.ok'; id: number; pte: number }
  /** why: 1 the PTE (a page request may resolve it), 2 the PASID entry (it cannot). */
  | { type: 'ats.fault'; id: number; why: number }
  /**
   * The SMMU stalled the translation (a stall fault, answered later by CMD_RESUME). No bus message says so: the
   * model's device learns it only to place its `unplug-on-fault` misbehaviour, and waits as for any answer.
   */
  | { type: 'ats.stall'; id: number }
  /** A page request; only the last of its group (`last` 1) gets a response (PCIe PRI). */
  | { type: 'pr'; dev: number; pasid: number; vpn: number; w: number; grp: number; last: number }
  | { type: 'prs'; grp: number; code: number }
  | { type: 'atc.inv'; pasid: number; s: number; e: number }
  | { type: 'atc.done'; dev: number }
  | { type: 'cmdq.doorbell' }
  | { type: 'cmdq.next' }
  /** The device driver asks the device to stop using a PASID (and to say when it has drained). */
  | { type: 'stop'; pasid: number }
  | { type: 'drain.later'; pasid: number }
  /**
   * The device is pulled out of its slot (a scripted hot-unplug: src/workloads/hotplug.ts). The pciehp actor that
   * pulled it removes it, so no interrupt thread is woken (a device's own `unplug` misbehaviour wakes pciehp_ist).
   */
  | { type: 'unplug' }
  | { type: 'dma.done'; id: number; ok: number }
  | LifecycleMessage;

/** Lifecycle events: what the kernel did to a unit, a device or an mm (src/actors/ hosts their machines). */
export type LifecycleMessage =
  /** The driver enabled the unit's command queue (VT-d dmar_enable_qi, SMMUv3 CR0.CMDQEN, AMD CmdBufEn). */
  | { type: 'cmdq.enable' }
  /** … and its page request queue (VT-d intel_enable_prq, SMMUv3 PRIQEN, AMD's PPR log). */
  | { type: 'prq.enable' }
  /** iommu_probe_device: the IOMMU core took the device (dev->iommu, its group). */
  | { type: 'probe' }
  /** The device driver's probe bound it (idxd_pci_probe). */
  | { type: 'driver.bind' }
  /** pci_enable_pasid, pci_enable_pri, pci_enable_ats: the capabilities it has. */
  | { type: 'enable' }
  /** pci_disable_device at the end of the driver's remove: bus mastering off, the device issues no more DMA. */
  | { type: 'disable' }
  /** iommu_release_device: the device leaves the IOMMU core (driver unbound, device deleted). */
  | { type: 'release' }
  /** A task's look at its mm: mm_struct state (MM_UNUSED … MM_FREED) and mm->pasid. */
  | { type: 'mm.state'; code: number; pasid: number }
  /** Its task entered exit_mm (do_exit): the last mmput runs exit_mmap. */
  | { type: 'mm.exit' };

export const WHY_PTE = 1;
export const WHY_PASID = 2;

type Fields<T> = T extends { type: infer N } ? [N, Exclude<keyof T, 'type'>[]] : never;

const LAYOUT: readonly Fields<HwMessage>[] = [
  ['submit', ['pasid', 'vpn', 'w', 'id', 'from', 'cr']],
  ['engine', []],
  ['ats.req', ['dev', 'pasid', 'vpn', 'w', 'id']],
  ['walk', ['dev', 'pasid', 'vpn', 'w', 'id', 'st', 'a', 'ep']],
  ['ats.ok', ['id', 'pte']],
  ['ats.fault', ['id', 'why']],
  ['pr', ['dev', 'pasid', 'vpn', 'w', 'grp', 'last']],
  ['prs', ['grp', 'code']],
  ['atc.inv', ['pasid', 's', 'e']],
  ['atc.done', ['dev']],
  ['cmdq.doorbell', []],
  ['cmdq.next', []],
  ['stop', ['pasid']],
  ['drain.later', ['pasid']],
  ['unplug', []],
  ['dma.done', ['id', 'ok']],
  ['cmdq.enable', []],
  ['prq.enable', []],
  ['probe', []],
  ['driver.bind', []],
  ['enable', []],
  ['disable', []],
  ['release', []],
  ['mm.state', ['code', 'pasid']],
  ['mm.exit', []],
  ['ats.stall', ['id']],
];

export const HW_HOT_EVENTS: Readonly<Record<string, readonly string[]>> = Object.fromEntries(LAYOUT.map(([n, f]) => [n, f as string[]]));

/** Handled by hardware that reads or writes shared memory (all but the process's dma.done). */
export const HW_SHARED_EVENTS: readonly string[] = LAYOUT.map(([n]) => n).filter((n) => n !== 'dma.done');
