// The workload parameters: what the processes, drivers, VMs and kernel users do, and for how long — the built-in
// scripts, random rates, scripted steps (a scenario's `script` section), and the kernel's own DMA users.
import { SCRIPTS } from '../../actors/process.js';
import { parseRates } from '../../actors/random-process.js';
import { KERNEL_USES, VFIO_USES } from '../kernel-users.js';
import { bool, int, oneOf, type ParamTable, text } from './define.js';

export type DomainsScript = 'race' | 'stress' | 'bench' | 'multi-device';
export const DOMAINS_SCRIPTS: readonly DomainsScript[] = ['race', 'stress', 'bench', 'multi-device'];
export type IoasidMode = 'scenario' | 'alloc-free' | 'find-rcu' | 'find-lock';
export const IOASID_MODES: readonly IoasidMode[] = ['scenario', 'alloc-free', 'find-rcu', 'find-lock'];

/** Every built-in script of the model; a preset takes those its workload runs. */
export const ALL_SCRIPTS: readonly string[] = [...new Set([...SCRIPTS, ...DOMAINS_SCRIPTS])];

function ratesError(v: string): string | undefined {
  try {
    parseRates(v);
    return undefined;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).replace(/^sva: rates: /, '');
  }
}

export const WORKLOAD = {
  script: oneOf(
    ALL_SCRIPTS,
    "The built-in workload each process (sva) or the run (domains) follows — sva: life, exit, unbind-inflight, stress, munmap, bind-task-exit, random; domains: race, stress, bench, multi-device (see each preset's header).",
  ),
  mode: oneOf(IOASID_MODES, 'ioasid: seed 003 end to end (scenario), or a benchmark: fill and free the ID space (alloc-free), ioasid_find under RCU or the lock (find-rcu, find-lock).'),
  rates: text("script=random: each operation's weight, op:weight,… over bind, dma, munmap, unbind, exit, mmap (of the fd's portal: 0 unless given); rounds operations a process.", ratesError, 'op:weight,…'),
  dmas: int(0, 1 << 16, 'DMA requests a process has its device issue each round.'),
  rounds: int(1, 100_000, 'Rounds of the script: bind/dma/unbind rounds of each process (sva, domains), operations of script=random, VFIO rounds (domains stress).'),
  flags: int(0, 3, 'Bind flags (seed 000): 1 SVM_FLAG_PRIVATE_PASID (a new PASID), 2 SVM_FLAG_SUPERVISOR_MODE (bind init_mm).'),
  seed: int(-2147483648, 2147483647, "The workload's own random choices (script=random); the scheduler's seed is the run's."),
  faults: int(0, 15, 'domains: page-fault handler tasks (iopf handlers looking the domain up with iommu_get_domain_for_dev_pasid).'),
  lookups: int(1, 1_000_000, 'domains: page requests each fault handler handles.'),
  drivers: int(0, 8, 'Benchmarks: driver actors that spawn the lookup loops on `go n` (ioasid find: driver 0 the updater, the others readers).'),
  iterations: int(0, 10_000_000, 'ioasid find modes: lookups (or updates) per task when no driver spawns them.'),
  kernel: oneOf(KERNEL_USES, "The kernel's own DMA users (seeds 001, 004): none, the DMA API, a system PASID with its own domain and map/unmap (option 1), or a system PASID bound to init_mm (option 2)."),
  kjobs: int(0, 1 << 24, 'Jobs each kernel DMA user runs.'),
  kbuffers: int(1, 1 << 16, 'Kernel pages each kernel DMA user hands its device as buffers.'),
  kthreads: int(0, 1 << 16, "Descriptors each device's driver kernel thread submits on the RID through the DMA API (idxd's kernel work queue; its remove stops it first; 0: no thread)."),
  vfio: oneOf(VFIO_USES, "VFIO takes device 0 over (seed 001): early (while the host driver still maps) or late."),
  drmContexts: int(0, 1024, 'A DRM-like device switching its engines between this many per-process domains (seed 001; 0: none).'),
  drmRounds: int(0, 1 << 20, 'Context switches of the DRM-like device.'),
  hungTaskSecs: int(1, 86_400, "The hung-task watchdog's timeout in simulated seconds (kernel.hung_task_timeout_secs): a task blocked in D state that long is reported."),
  watchdogThresh: int(0, 60, "kernel.watchdog_thresh in seconds: a task that runs twice this long of CPU time (steps, udelay, spin-waits) without a scheduling point that could reschedule is reported as a soft lockup, and one that runs this long with interrupts off as a hard lockup (0: both detectors are off)."),
  rcuStallSecs: int(3, 300, 'rcupdate.rcu_cpu_stall_timeout in seconds: a grace period held up by a reader this long of simulated time is reported as an RCU CPU stall.'),
  cpus: int(1, 4096, 'CPUs of the simulated machine, which the soft-lockup and RCU-stall reports name: the model has no scheduler placing tasks, so the n-th task to start runs on CPU n mod cpus.'),
  checkers: bool("Run the kernel's checkers (off: the allocator benchmarks measure the allocator alone)."),
  steps: text("Scripted actors as JSON (a scenario's `script` section compiles to it; '' runs the built-in script): docs/steps.md.", undefined, 'JSON'),
} satisfies ParamTable;
export type WorkloadParam = keyof typeof WORKLOAD;
