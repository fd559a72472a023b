// The accelerator driver's own kernel thread (drivers/dma/idxd: the kernel work queue a dmaengine client submits
// to): one per device, started by the driver's probe (kthread_run), submitting DMA on the device's RID through the
// DMA API — dma_map_page on a kernel page, a descriptor with a completion record, the wait for it, dma_unmap_page
// — until it has run its jobs or kthread_should_stop() says the driver is going. The driver's remove stops it
// before anything else (accel_kthreads_stop, called by pci.ts's pci_device_remove: kthread_stop, which waits for
// the thread to exit, its last descriptor completed or aborted — idxd_wq_quiesce's wait), so no descriptor of it
// is left in flight when the IOMMU core releases the device; a surprise-removed device aborts what it holds, so
// the wait ends. Its state (should_stop, exited, the completion record) lives in static words, by device.
import type { DmaApi } from '../core/dma-iommu.js';
import type { DeviceInfo } from '../core/types.js';
import type { Boot } from '../hw/boot.js';
import type { KTask } from '../kernel/context.js';
import { errname } from '../kernel/errno.js';
import type { Kernel, KGen } from '../kernel/kernel.js';
import { type MmTable, ownerOf } from '../kernel/mm/mm.js';
import { alloc_page, free_page, type PhysMem } from '../kernel/mm/physmem.js';
import { element, struct, word } from '../kernel/struct.js';
import { read } from '../runtime/footprint.js';

/** The completion records of the driver's kernel threads: KTHREAD_CR + device index + 1. */
export const KTHREAD_CR = 1 << 19;

/** struct task_struct's kthread state, and the thread's work, per device (the model's layout). */
const KTHREAD = struct('accel_kthread', {
  started: word, // kthread_run
  should_stop: word, // KTHREAD_SHOULD_STOP
  exited: word, // complete(&kthread->exited)
  cr: word, // the completion record of the descriptor in flight: 0, 1 done, 2 failed
  jobs: word, // descriptors completed
  faults: word, // … and failed
});

declare module '../kernel/kfunc.js' {
  interface KernelFunctions {
    /** The driver's probe starts the device's kernel thread (kthread_run). */
    accel_kthread_run(t: KTask, dev: DeviceInfo): KGen;
  }
}

export interface KthreadEnv {
  readonly k: Kernel;
  readonly dma: DmaApi;
  readonly pm: PhysMem;
  readonly mms: MmTable;
  readonly infos: readonly DeviceInfo[];
  readonly boot: Boot;
  /** No default domain (the policy `none`): the RID has nothing to map through, the thread's maps fail. */
  readonly noDefaultDomain: boolean;
  /** Route the devices' writes of the threads' completion records (true: taken). */
  /** `words`: the words the completion writes for a record it takes (a device step's footprint declares them). */
  addCompletion(c: (cr: number, ok: boolean) => boolean, words?: (cr: number) => readonly number[] | undefined): void;
}

export interface DriverKthreads {
  /** Descriptors dev's thread completed, and of those failed (reads only). */
  jobs(dev: DeviceInfo): { readonly done: number; readonly failed: number };
  /** Has dev's thread exited? (reads only) */
  exited(dev: DeviceInfo): boolean;
}

/** Declare each device's driver kernel thread, `jobs` descriptors each; kthread_run and kthread_stop by name. */
export function defineDriverKthreads(env: KthreadEnv, jobs: number): DriverKthreads {
  const { k, dma, infos } = env;
  const base = k.statics.alloc(Math.max(1, infos.length) * KTHREAD.words, 'accel driver kthreads');
  const kt = k.struct(KTHREAD);
  const at = (dev: DeviceInfo): number => element(KTHREAD, k.mem.statics + base, dev.index);
  env.addCompletion(
    (cr, ok) => {
      const d = cr - KTHREAD_CR - 1;
      if (d < 0 || d >= infos.length) return false;
      kt.cr.set(at(infos[d] as DeviceInfo), ok ? 1 : 2);
      return true;
    },
    (cr) => {
      const d = cr - KTHREAD_CR - 1;
      return d < 0 || d >= infos.length ? undefined : [kt.cr.addr(at(infos[d] as DeviceInfo))];
    },
  );
  const IDXD = 'drivers/dma/idxd/device.c';
  k.fns.define('accel_kthread_run', 'kernel/kthread.c', (t, dev) =>
    k.stepOn(t, `kthread_run(accel_kwq/${dev.index})`, [kt.started.addr(at(dev))], (e) => {
      kt.started.set(at(dev), 1);
      e.spawn('accel_kthread', dev.index, `accel_kwq/${dev.index}`);
    }),
  );
  // kthread_stop: KTHREAD_SHOULD_STOP, then wait for the thread's exit (its descriptor in flight ends first).
  k.fns.define('accel_kthreads_stop', IDXD, function* (t, dev) {
    const stop = [read(kt.started.addr(at(dev))), kt.should_stop.addr(at(dev))];
    const started = yield* k.stepOn(t, `kthread_stop(accel_kwq/${dev.index})`, stop, () => {
      if (kt.started.get(at(dev)) === 0) return false;
      kt.should_stop.set(at(dev), 1);
      return true;
    });
    if (!started) return;
    yield k.point(
      t,
      `wait_for_completion(&kthread->exited) (accel_kwq/${dev.index})`,
      () => kt.exited.get(at(dev)) === 1,
      () => undefined,
      { what: `accel_kwq/${dev.index} to exit` },
      [read(kt.exited.addr(at(dev)))],
    );
  });
  const shouldStop = (t: KTask, dev: DeviceInfo): KGen<boolean> => k.stepOn(t, 'kthread_should_stop', [read(kt.should_stop.addr(at(dev)))], () => kt.should_stop.get(at(dev)) === 1);

  /** One descriptor on the RID: map, submit, wait for the completion record, unmap. false: stop. */
  function* job(t: KTask, dev: DeviceInfo, pfn: number, j: number): KGen<boolean> {
    const iova = yield* dma.map(t, dev, pfn, true);
    if (iova < 0) {
      yield* k.stepOn(t, `dma_map_page = ${errname(iova)}`, [], () => undefined);
      return false;
    }
    yield* k.stepOn(t, `${dev.name}: submit (RID, iova ${iova})`, [kt.cr.addr(at(dev))], (e) => {
      kt.cr.set(at(dev), 0);
      e.send(dev.actor, { type: 'submit', pasid: 0, vpn: iova, w: 1, id: j, from: 0, cr: KTHREAD_CR + dev.index + 1 });
    });
    const ok = (yield k.point(
      t,
      `wait for ${dev.name}'s completion record`,
      () => kt.cr.get(at(dev)) !== 0,
      () => kt.cr.get(at(dev)) === 1,
      { what: `${dev.name} to complete descriptor ${j} of accel_kwq/${dev.index}` },
      [read(kt.cr.addr(at(dev)))],
    )) as boolean;
    yield* k.stepOn(t, ok ? 'descriptor done' : 'descriptor failed', [kt.jobs.addr(at(dev)), kt.faults.addr(at(dev))], () => {
      kt.jobs.set(at(dev), kt.jobs.get(at(dev)) + 1);
      if (!ok) kt.faults.set(at(dev), kt.faults.get(at(dev)) + 1);
    });
    yield* dma.unmap(t, dev, iova);
    return true;
  }

  k.task('accel_kthread', 'kthread', function* (t, args) {
    const dev = infos[args as number] as DeviceInfo;
    yield* env.boot.wait(t);
    // iommu_probe attaches the default domain after kernel_init: the thread's dma_map_page goes through it.
    yield k.point(
      t,
      `wait for ${dev.name}'s default domain`,
      () => env.noDefaultDomain || dma.domainOf(dev) !== 0 || kt.should_stop.get(at(dev)) === 1,
      () => undefined,
      { what: `iommu_probe to attach ${dev.name}'s default domain` },
      [read(dma.domainAddr(dev)), read(kt.should_stop.addr(at(dev)))],
    );
    const pfn = yield* alloc_page(k, t, env.pm, ownerOf(env.mms.initMm));
    for (let j = 0; pfn !== 0 && j < jobs; j++) {
      if (yield* shouldStop(t, dev)) break;
      if (!(yield* job(t, dev, pfn, j))) break;
    }
    if (pfn !== 0) yield* free_page(k, t, env.pm, pfn);
    // The thread function returned: kthread_stop's wait ends (or nobody waits: the run ends with it).
    yield* k.stepOn(t, 'complete(&kthread->exited)', [kt.exited.addr(at(dev))], () => kt.exited.set(at(dev), 1));
  });
  return {
    jobs: (dev) => ({ done: kt.jobs.get(at(dev)), failed: kt.faults.get(at(dev)) }),
    exited: (dev) => kt.exited.get(at(dev)) === 1,
  };
}
