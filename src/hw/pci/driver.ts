// The accelerator's device driver, a uacce-style char device (drivers/misc/uacce/uacce.c; idxd's cdev.c is the
// same shape): its file_operations — open binds the opener's mm (uacce_fops_open → iommu_sva_bind_device),
// release unbinds (uacce_fops_release, when the file's last reference goes: fs/file.ts), mmap maps the device's
// portal (uacce_fops_mmap; the vma's vm_file keeps the file, so a process that closes its fd with the portal
// still mapped is unbound only at munmap or exit_mmap) — and its remove (uacce_remove) under uacce->mutex. It
// registers the svm ops the core calls back: invalidate_pasid (tell the device to stop using a PASID and wait
// until it has drained — "can basically take for ever"), the fault handler, and, for AMD IOMMUv2, the PASIDs it
// allocates itself.
import type { BindResult, Sva } from '../../core/iommu-sva.js';
import { type DeviceInfo, RESP_INVALID, type SvmOps } from '../../core/types.js';
import type { KTask } from '../../kernel/context.js';
import { ENXIO } from '../../kernel/errno.js';
import { type FileOperations, fileInode, filePrivate, filePrivateAt, setFilePrivate } from '../../kernel/fs/file.js';
import { defineIda, type Ida, idaAllocated, ida_alloc_range, ida_free } from '../../kernel/ida.js';
import type { Kernel, KGen } from '../../kernel/kernel.js';
import type { MmStruct } from '../../kernel/mm/mm.js';
import { defineMutex, type Mutex, mutex_lock, mutex_unlock } from '../../kernel/mutex.js';
import { EINVAL } from '../../kernel/errno.js';
import { type Footprint, read } from '../../runtime/footprint.js';
import type { PciDevice } from './device.js';

declare module '../../kernel/kfunc.js' {
  interface KernelFunctions {
    /** The accelerator driver's remove: put every queue still open on dev (its SVA handles unbound). */
    accel_remove(t: KTask, dev: DeviceInfo): KGen;
    /**
     * open(2) of the device node (`flags`: the model's SVA_FLAG_*; SUPERVISOR_MODE binds init_mm): under
     * uacce->mutex, -EINVAL once the device's remove has run (uacce->parent NULL). 0 or -errno.
     */
    uacce_fops_open(t: KTask, file: number, mm: MmStruct, flags: number): KGen<number>;
    /** The open's binding: the mm bound (iommu_sva_bind_device), the queue set up and the file's private_data. 0 or -errno. */
    uacce_bind_queue(t: KTask, file: number, mm: MmStruct, flags: number): KGen<number>;
    /** The file's release (its last fput's __fput): put the queue, unbind. */
    uacce_fops_release(t: KTask, file: number): KGen;
    /** mmap(2) of the queue's portal at vpn: -ENXIO once the queue is put (the device removed). */
    uacce_fops_mmap(t: KTask, file: number, mm: MmStruct, vpn: number): KGen<number>;
  }
}

/** The accelerator's file_operations (uacce_fops), by kernel function name. */
export const UACCE_FOPS: FileOperations = { name: 'uacce_fops', open: 'uacce_fops_open', release: 'uacce_fops_release', mmap: 'uacce_fops_mmap' };

/** The footprint of a step that touches no word of the run's memory. */
const NOTHING: Footprint = [];

/** Words of a queue slot: fds holding the SVA handle, its device's index + 1, its PASID (q->pasid). */
const Q_WORDS = 3;

export class AccelDriver {
  private readonly idas: Ida[];
  /** Per SVA handle (slot handle - 1): the fds of this driver holding it, and its device's index + 1. */
  private readonly queues: number;
  /** uacce->mutex of each device: an open, a release and the device's remove put a queue one at a time. */
  private readonly mutexes: Mutex[];
  /** Per device: 1 once its remove has run (uacce->parent = NULL: an open finds no device). */
  private readonly removed: number;

  constructor(
    private readonly k: Kernel,
    private readonly sva: Sva,
    private readonly devices: readonly PciDevice[],
    private readonly handles: number,
  ) {
    // The core checks these for leaks, knowing which PASIDs the quarantine still holds.
    this.idas = devices.map((d) => defineIda(k, `${d.info.name}->pasid_ida`, 1 << d.info.caps.pasidBits, { leakCheck: false }));
    for (const d of devices) sva.setSvmOps(d.info, this.svmOps());
    this.queues = k.statics.alloc(Q_WORDS * handles, 'accel queues (fds per SVA handle)');
    this.mutexes = devices.map(() => defineMutex(k, '&uacce->mutex'));
    this.removed = k.statics.alloc(Math.max(1, devices.length), 'uacce->parent (removed)');
    k.fns.define('accel_remove', 'drivers/misc/uacce/uacce.c', (t, dev) => this.remove(t, dev));
    this.defineFops();
  }

  /** The PASID of the queue a file of this driver holds (q->pasid; 0: none). */
  pasidOf(file: number): number {
    const handle = filePrivate(this.k, file);
    return handle > 0 ? (this.k.i32[this.queueAt(handle) + 2] as number) : 0;
  }

  private defineFops(): void {
    const k = this.k;
    const drv = this;
    const UACCE_C = 'drivers/misc/uacce/uacce.c';
    k.fns.define('uacce_fops_open', UACCE_C, (t, file, mm, flags) => drv.fopsOpen(t, file, mm, flags));
    k.fns.define('uacce_bind_queue', UACCE_C, function* (t, file, mm, flags) {
      const r = yield* drv.bindQueue(t, drv.fileDev(file), mm, flags);
      if (r.ret <= 0) return r.ret < 0 ? r.ret : -ENXIO;
      yield* k.stepOn(t, 'filep->private_data = q', [filePrivateAt(k, file)], () => void setFilePrivate(k, file, r.ret));
      return 0;
    });
    k.fns.define('uacce_fops_release', UACCE_C, (t, file) => drv.release(t, filePrivate(k, file)));
    k.fns.define('uacce_fops_mmap', UACCE_C, function* (t, file, _mm, vpn) {
      // uacce_queue_is_valid(q) under q->mutex: a queue the device's remove has put maps nothing.
      // Computed: which queue the file holds is shared state.
      const fp = () => [read(filePrivateAt(k, file)), read(drv.queueAt(filePrivate(k, file)))];
      return yield* k.stepOn(t, `uacce_fops_mmap(${vpn}): uacce_queue_is_valid`, fp, () => (Atomics.load(k.i32, drv.queueAt(filePrivate(k, file))) > 0 ? 0 : -ENXIO));
    });
  }

  private queueAt(handle: number): number {
    if (handle < 1 || handle > this.handles) throw new Error(`accel: SVA handle ${handle} of ${this.handles}`);
    return this.k.mem.statics + this.queues + Q_WORDS * (handle - 1);
  }

  /** The device a file of this driver was opened on (its inode's minor). */
  fileDev(file: number): DeviceInfo {
    return (this.devices[fileInode(this.k, file)] as PciDevice).info;
  }

  private removedAt(dev: DeviceInfo): number {
    return this.k.mem.statics + this.removed + dev.index;
  }

  /**
   * uacce_fops_open: under uacce->mutex, so that the device's remove (uacce_remove, under the same mutex) either
   * finds the new queue and puts it, or has run already and the open fails (uacce->parent is NULL: -EINVAL) —
   * never a bond left on a released device (80fc671bcc01, "uacce: Handle parent device removal or parent driver
   * module rmmod").
   */
  private *fopsOpen(t: KTask, file: number, mm: MmStruct, flags: number): KGen<number> {
    const k = this.k;
    const dev = this.fileDev(file);
    const mutex = this.mutexes[dev.index] as Mutex;
    yield* mutex_lock(k, t, mutex);
    const gone = yield* k.stepOn(t, 'uacce->parent', [read(this.removedAt(dev))], () => Atomics.load(k.i32, this.removedAt(dev)) === 1);
    const r = gone ? -EINVAL : yield* k.fn.uacce_bind_queue(t, file, mm, flags);
    yield* mutex_unlock(k, t, mutex);
    return r;
  }

  /** The mm bound, the queue recorded for the fd (the ioasid preset's processes open without a struct file). */
  *bindQueue(t: KTask, dev: DeviceInfo, mm: MmStruct, flags: number): KGen<BindResult> {
    const k = this.k;
    const r = yield* k.call(t, 'accel_open', this.sva.bind(t, dev, mm, flags));
    if (r.ret > 0) {
      const at = this.queueAt(r.ret);
      yield* k.stepOn(t, 'q->handle = handle', [at, at + 1, at + 2], () => {
        Atomics.add(k.i32, at, 1);
        Atomics.store(k.i32, at + 1, dev.index + 1);
        Atomics.store(k.i32, at + 2, r.pasid);
      });
    }
    return r;
  }

  /**
   * release() of the fd (close, or exit_files at process exit): unbind — unless the device's removal already put
   * the queue (uacce_release after uacce_remove: the handle is gone, nothing to unbind).
   */
  *release(t: KTask, handle: number): KGen {
    const k = this.k;
    const at = this.queueAt(handle);
    // The fd's device, written at its open: the mutex serializes this release with the device's remove.
    const mutex = this.mutexes[Atomics.load(k.i32, at + 1) - 1] as Mutex;
    yield* mutex_lock(k, t, mutex);
    const live = yield* k.stepOn(t, 'uacce_put_queue: q->state', [at], () => {
      if (Atomics.load(k.i32, at) === 0) return false;
      Atomics.sub(k.i32, at, 1);
      return true;
    });
    if (live) yield* k.call(t, 'accel_release', this.sva.unbind(t, handle));
    yield* mutex_unlock(k, t, mutex);
  }

  /**
   * The driver's remove (uacce_remove): every queue still open on dev is put before the device goes — its SVA
   * handle unbound once per fd holding it —, so the IOMMU core never releases a device with a bond left on it.
   */
  private *remove(t: KTask, dev: DeviceInfo): KGen {
    const k = this.k;
    const mutex = this.mutexes[dev.index] as Mutex;
    yield* mutex_lock(k, t, mutex);
    const open = yield* k.step(t, `uacce_remove(${dev.name}): put the open queues`, () => {
      Atomics.store(k.i32, this.removedAt(dev), 1);
      const out: [number, number][] = [];
      for (let h = 1; h <= this.handles; h++) {
        const at = this.queueAt(h);
        const n = Atomics.load(k.i32, at);
        if (n === 0 || Atomics.load(k.i32, at + 1) !== dev.index + 1) continue;
        Atomics.store(k.i32, at, 0);
        out.push([h, n]);
      }
      return out;
    });
    for (const [h, n] of open) for (let i = 0; i < n; i++) yield* k.call(t, 'uacce_put_queue', this.sva.unbind(t, h));
    yield* mutex_unlock(k, t, mutex);
  }

  private hw(dev: DeviceInfo): PciDevice {
    return this.devices[dev.index] as PciDevice;
  }

  private svmOps(): SvmOps {
    const k = this.k;
    const drv = this;
    return {
      *invalidate_pasid(t: KTask, dev: DeviceInfo, pasid: number, timeoutMs?: number): KGen<boolean> {
        return yield* k.call(
          t,
          'accel_invalidate_pasid',
          (function* (): KGen<boolean> {
            const hw = drv.hw(dev);
            // A register write the device's actor takes as a message: no word of the run's memory.
            yield* k.stepOn(t, `${dev.name}: stop PASID ${pasid}`, NOTHING, (env) => {
              env.send(hw.info.actor, { type: 'stop', pasid });
            });
            if (timeoutMs === 0) return hw.drained(pasid);
            k.mightSleep(t, 'drivers/dma/idxd/device.c:386');
            const deadline = timeoutMs === undefined ? undefined : k.now() + timeoutMs;
            return (yield k.point(
              t,
              `wait for ${dev.name} to drain PASID ${pasid}`,
              () => hw.drained(pasid) || (deadline !== undefined && k.now() >= deadline),
              () => hw.drained(pasid),
              { what: `device ${dev.name} to drain PASID ${pasid}`, ...(deadline === undefined ? {} : { wakeAt: () => deadline }) },
              hw.drainedFootprint(pasid),
            )) as boolean;
          })(),
        );
      },
      *start_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen {
        const hw = drv.hw(dev);
        yield* k.stepOn(t, `${dev.name}: enable PASID ${pasid}`, hw.startPasidFootprint(pasid), () => hw.startPasid(pasid));
      },
      drained: (dev: DeviceInfo, pasid: number) => drv.hw(dev).drained(pasid),
      *fault(t: KTask, dev: DeviceInfo, pasid: number, vpn: number): KGen<number> {
        // The driver hears of the failed request and lets the device report it to its user: respond invalid.
        yield* k.stepOn(t, `accel_fault ${dev.name} PASID ${pasid} vpn ${vpn}`, NOTHING, () => undefined);
        return RESP_INVALID;
      },
      *alloc_pasid(t: KTask, dev: DeviceInfo, min: number, max: number): KGen<number> {
        return yield* ida_alloc_range(k, t, drv.idas[dev.index] as Ida, min, max);
      },
      *free_pasid(t: KTask, dev: DeviceInfo, pasid: number): KGen {
        yield* ida_free(k, t, drv.idas[dev.index] as Ida, pasid);
      },
      allocated_pasids: (dev: DeviceInfo) => idaAllocated(k, drv.idas[dev.index] as Ida),
    };
  }
}
