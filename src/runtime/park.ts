// Spin or park: how a thread of the threaded runtime waits for work (its mailbox, a blocked task, a ring
// with room) — the adaptive part of the kernel's own answer to the same question (a mutex owner that is
// running on another CPU is worth spinning on, `mutex_spin_on_owner`; one that is not, is not).
//
// Polling answers a request/response exchange within microseconds when the thread that will answer runs on
// a core of its own; waking a parked thread costs 100-300 µs on this VM. But a spinning thread holds a core:
// when the run's busy threads and the other processes of the host want more cores than there are, the spin
// burns the time slice the answering thread needs, and the exchange waits for the scheduler instead (ring
// round trips fell to 0.1× postMessage's with one competing busy process on 2 cores, issue #19). So:
// - spin only while the threads that are runnable (this one included) fit on the cores the other processes
//   leave free (os.availableParallelism() less the CPU they were seen to use);
// - and stop spinning when spins keep failing (the awaited result did not come within the spin: a sign of
//   oversubscription the load figures missed, or of a peer that is itself waiting), trying one spin now and
//   then to notice that the machine has calmed down.
// `chooseWait` is the policy, a pure function; `WaitGovernor` keeps its inputs (the failure streak, the host
// load sampled at most every HOST_SAMPLE_MS) for one waiting thread.
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';

/** What the policy decides from. */
export interface WaitInput {
  /** Cores this process may use (os.availableParallelism()). */
  readonly cores: number;
  /** Threads of the run that have work, the asking one included (it would hold a core while it spins). */
  readonly runnable: number;
  /** CPU other processes used lately, in cores; null when unknown (then only the failure streak counts). */
  readonly foreignCores: number | null;
  /** Spins in a row that ended without what they waited for. */
  readonly failedSpins: number;
  /** Waits since the streak began that parked without trying a spin (the probe's counter). */
  readonly parkedSinceSpin: number;
}

export type WaitChoice =
  | { readonly kind: 'spin'; readonly micros: number }
  | { readonly kind: 'park'; readonly why: 'no-spin' | 'oversubscribed' | 'busy-host' | 'spins-failing' };

/** Failed spins in a row after which a waiter parks at once. */
export const FAILED_SPINS_TO_PARK = 4;
/** While parking for failed spins, every this many waits tries a spin again. */
export const PROBE_EVERY = 16;
/**
 * Foreign CPU below this share of a core is noise (the kernel's own threads, a shell), not a competitor: a
 * whole core is taken from the free ones once another process is seen using more than this.
 */
export const FOREIGN_NOISE = 0.25;

/** The spin-or-park policy: `spinMicros` is how long the caller would poll if it had a core to itself. */
export function chooseWait(i: WaitInput, spinMicros: number): WaitChoice {
  if (spinMicros <= 0) return { kind: 'park', why: 'no-spin' };
  if (i.runnable > i.cores) return { kind: 'park', why: 'oversubscribed' };
  if (i.foreignCores !== null && i.runnable > i.cores - foreignTaken(i.foreignCores)) return { kind: 'park', why: 'busy-host' };
  if (i.failedSpins >= FAILED_SPINS_TO_PARK && (i.parkedSinceSpin + 1) % PROBE_EVERY !== 0) return { kind: 'park', why: 'spins-failing' };
  return { kind: 'spin', micros: spinMicros };
}

/** Whole cores other processes take from this one: their use rounded up, past the noise floor. */
export function foreignTaken(foreignCores: number): number {
  return foreignCores < FOREIGN_NOISE ? 0 : Math.ceil(foreignCores - FOREIGN_NOISE);
}

/** Samples how much CPU the host's other processes use (Linux /proc/stat less this process's own time). */
export interface HostLoad {
  /** Cores of foreign load, smoothed; null when unknown. */
  foreignCores(now: number): number | null;
}

/** Sampled at most this often: reading /proc/stat costs tens of µs, a wait may come every µs. */
export const HOST_SAMPLE_MS = 100;

/**
 * /proc/stat's busy jiffies of every CPU, less this process's CPU time (process.cpuUsage counts all its
 * threads), over the wall time between two samples, smoothed over about four samples. When the host has
 * more CPUs than this process may use (a cgroup or affinity limit), the foreign load is scaled to our share.
 */
export class ProcStatLoad implements HostLoad {
  private last: { at: number; busy: number; own: number } | null = null;
  private value: number | null = null;
  private scale = 0; // os.cpus() reads /proc/cpuinfo: only once this thread samples at all

  constructor(private readonly cores = availableParallelism()) {}

  foreignCores(now: number): number | null {
    if (this.last !== null && now - this.last.at < HOST_SAMPLE_MS) return this.value;
    if (this.scale === 0) {
      const host = cpus().length;
      this.scale = host > this.cores ? this.cores / host : 1;
    }
    const busy = procBusySeconds();
    if (busy === undefined) return null;
    const u = process.cpuUsage();
    const own = (u.user + u.system) / 1e6;
    const prev = this.last;
    this.last = { at: now, busy, own };
    if (prev === null) return this.value;
    const wall = (now - prev.at) / 1000;
    const sample = (Math.max(0, busy - prev.busy - (own - prev.own)) / wall) * this.scale;
    this.value = this.value === null ? sample : this.value + (sample - this.value) / 4;
    return this.value;
  }
}

/** Busy seconds of all CPUs since boot (user, nice, system, irq, softirq, steal); undefined off Linux. */
export function procBusySeconds(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  const f = (text.split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ is 100 on Linux
}

export interface GovernorOptions {
  readonly cores?: number;
  /** Threads of the run with work, the asking one included; asked at every wait. Default: 1 (only itself). */
  readonly runnable?: () => number;
  /** null: no host sampling (the policy then goes by runnable threads and the failure streak). */
  readonly host?: HostLoad | null;
  readonly now?: () => number;
}

/** One waiting thread's spin-or-park state: ask `spinFor` before waiting, report how a spin went with `spun`. */
export class WaitGovernor {
  private readonly cores: number;
  private readonly runnable: () => number;
  private readonly host: HostLoad | null;
  private readonly now: () => number;
  private failedSpins = 0;
  private parkedSinceSpin = 0;
  /** Statistics: waits that spun, waits that parked without spinning. */
  spins = 0;
  parks = 0;
  /** Why the last park was chosen (for statistics and tests). */
  lastChoice: WaitChoice | null = null;

  constructor(o: GovernorOptions = {}) {
    this.cores = o.cores ?? availableParallelism();
    this.runnable = o.runnable ?? (() => 1);
    this.host = o.host === undefined ? new ProcStatLoad(this.cores) : o.host;
    this.now = o.now ?? (() => performance.now());
  }

  /** How long to poll before parking, µs: `spinMicros`, or 0 when the thread should park at once. */
  spinFor(spinMicros: number): number {
    const c = chooseWait(this.input(), spinMicros);
    this.lastChoice = c;
    if (c.kind === 'spin') {
      this.spins++;
      return c.micros;
    }
    this.parks++;
    if (c.why === 'spins-failing') this.parkedSinceSpin++;
    return 0;
  }

  /** How the spin that `spinFor` allowed went: `got` when what it waited for came within it. */
  spun(got: boolean): void {
    if (got) this.failedSpins = 0;
    else this.failedSpins++;
    this.parkedSinceSpin = 0;
  }

  input(): WaitInput {
    const foreignCores = this.host === null ? null : this.host.foreignCores(this.now());
    return { cores: this.cores, runnable: this.runnable(), foreignCores, failedSpins: this.failedSpins, parkedSinceSpin: this.parkedSinceSpin };
  }
}

/** Polls `ready` for up to `micros` µs; true as soon as it holds. */
export function spinUntil(micros: number, ready: () => boolean): boolean {
  if (micros <= 0) return false;
  const until = performance.now() + micros / 1000;
  for (let i = 1; ; i++) {
    if (ready()) return true;
    // performance.now() costs ~30 ns: look at the clock every few polls only.
    if ((i & 15) === 0 && performance.now() >= until) return false;
  }
}

/** Spins as the governor allows, reports the outcome to it; true when `ready` came true within the spin. */
export function adaptiveSpin(g: WaitGovernor, spinMicros: number, ready: () => boolean): boolean {
  const micros = g.spinFor(spinMicros);
  if (micros <= 0) return false;
  const got = spinUntil(micros, ready);
  g.spun(got);
  return got;
}
