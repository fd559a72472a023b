// The `iommu-sim` command. Exit codes: 0 ok, 1 a finding or a failed check, 2 bad input (or an output that could
// not be written), 3 a replay that diverged from its recording, 130 / 143 stopped by SIGINT / SIGTERM after the
// summary so far.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import '../kernel/workloads.js';
import '../workloads/index.js';
import { InputError, ReplayDivergence } from '../runtime/errors.js';
import { PACKAGE_ROOT } from '../runtime/paths.js';
import { accountingLine, lockingLine, passed, type RunResult } from '../runtime/result.js';
import { workerTimeLine } from '../runtime/worker-time.js';
import { type ReplayOutcome, replay, run, type RunOutcome } from '../runtime/run.js';
import { MAX_WORKERS } from '../runtime/threaded.js';
import { buildWorkload } from '../runtime/workloads.js';
import { DEFAULT_WATCHDOG_SECONDS, startWatchdog } from '../runtime/watchdog.js';
import type { Wire } from '../runtime/model.js';
import { STRATEGIES, type StrategyName } from '../runtime/scheduler.js';
import { PRESETS, presetHelp, stepsHelp } from '../workloads/docs.js';
import { SVA_DEFAULTS, svaParams } from '../workloads/sva.js';
import { DOMAINS_DEFAULTS, domainsParams } from '../workloads/domains.js';
import { IOASID_DEFAULTS, ioasidParams } from '../workloads/ioasid.js';
import { Exit } from './exit.js';
import { commandLine, EXIT_DIVERGED, reportFailure } from './failure.js';
import { counted, type Interrupts, interrupts } from './interrupt.js';
import { DURATION_FORMS, durationArg, intArg, setArg } from './options.js';
import { checkOutputDir, checkOutputFile, takeWriteFailures, writeOutput } from './output.js';
import { replayAdvice } from './replay-advice.js';
import { loadSchedule } from './schedule-file.js';
import { type ShrinkOutcome, shrinkOnWorker } from './shrink-run.js';
import { registerScenarioCommands } from './scenario-commands.js';
import { counterWords, host, hostLine, runHeader, statusLines, verdictLines, wrapStatus, writtenLines } from './status.js';
import { STATUS_FORMS, type StatusInterval, statusIntervalArg, stressRuns } from './stress.js';
import { progress } from './progress.js';
import { DEFAULT_WINDOW, raceReportHtml } from '../report/html.js';
import { toPerfetto } from '../report/perfetto.js';
import type { BenchRow } from '../report/types.js';

/** A replay (replay, trace, shrink) that did not reproduce its recording: documented in `replay --help`. */

const version = (JSON.parse(readFileSync(`${PACKAGE_ROOT}/package.json`, 'utf8')) as { version: string }).version;


const program = new Command('iommu-sim')
  .description('Simulate the Linux IOMMU / SVA / PASID machinery as communicating actors on worker threads.')
  .version(version)
  .showHelpAfterError('(run with --help for usage)')
  // Every command's --help lists --watchdog (a global option) and ends with the exit statuses they share.
  .configureHelp({ showGlobalOptions: true })
  // The host-time watchdog (src/runtime/watchdog.ts), for every command: recognised after the command's name too.
  .addOption(
    new Option(
      '--watchdog <duration>',
      `stop model code (a task between two scheduling points, a patch or scenario module loading) that runs this long in host time without reaching a scheduling point, with a report naming the task, its last point and the patched function it is in if any (exit 1; 2 for input that spins while it loads); ${DURATION_FORMS}; 0 turns it off (default: ${DEFAULT_WATCHDOG_SECONDS}s)`,
    ).argParser(durationArg({ allowZero: true })),
  )
  .hook('preAction', (cmd, action) => {
    const ms = (cmd.opts() as { watchdog?: number }).watchdog;
    startWatchdog(ms === undefined ? DEFAULT_WATCHDOG_SECONDS : ms / 1000);
    announce(action);
  })
  .addHelpText(
    'afterAll',
    `
Exit status of every command (a command's own list above says which apply and when): 0 ok, 1 a finding or a
failed check, 2 bad input (or a file that could not be written), 3 a replay that diverged from its recording,
130 / 143 stopped by SIGINT (Ctrl-C) / SIGTERM after printing the summary so far. Errors name the file, field, step or flag; IOMMU_SIM_DEBUG=1 adds the JavaScript stack to an internal error.`,
  )
  .addHelpText(
    'after',
    `
Runtimes: "threaded" runs actors on worker_threads with real parallelism (nondeterministic, every run
recorded); "deterministic" runs everything on one thread under a seeded scheduler (random, pct, dfs) and
replays recordings exactly.`,
  );

/**
 * Every command's first line says which iommu-sim and which Node run it: on stdout before a report, on stderr
 * where stdout is the data (`trace`); `--json` has it as its `host` field instead.
 */
function announce(action: Command): void {
  if ((action.opts() as { json?: boolean }).json) return;
  if (action.name() === 'trace') console.error(hostLine());
  else console.log(hostLine());
}

/** Flags every workload command shares: where and how the run happens. */
interface RunFlags {
  runtime: 'threaded' | 'deterministic';
  workers?: number;
  placement: 'sharded' | 'per-actor';
  seed: number;
  strategy?: StrategyName;
  depth: number;
  runs: number;
  keepGoing?: boolean;
  record?: string;
  json?: boolean;
  verbose?: boolean;
  maxSteps?: number;
}

function runOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--runtime <runtime>', 'threaded or deterministic').choices(['threaded', 'deterministic']).default('threaded'))
    .addOption(
      new Option(
        '--workers <n>',
        `threaded, sharded: worker threads (default: the CPU count, ${availableParallelism()} here; more busy threads than cores only loses throughput)`,
      ).argParser(intArg(1, MAX_WORKERS)),
    )
    .addOption(
      new Option(
        '--placement <placement>',
        'threaded: "sharded" spreads actors over --workers threads (the default); "per-actor" gives each actor a thread that parks when idle instead of spinning',
      )
        .choices(['sharded', 'per-actor'])
        .default('sharded'),
    )
    .addOption(new Option('--seed <n>', 'seed of the workload and of the scheduler').argParser(intArg(-2147483648, 2147483647)).default(1))
    .addOption(new Option('--strategy <strategy>', 'deterministic: scheduling strategy (default random)').choices([...STRATEGIES]))
    .addOption(new Option('--depth <d>', 'pct: bug depth d (d-1 priority change points)').argParser(intArg(1, 64)).default(3))
    .addOption(new Option('--runs <n>', 'deterministic: explore up to n executions, stopping at the first failure').argParser(intArg(1)).default(1))
    .option('--keep-going', 'collect every finding instead of stopping the run at the first')
    .option('--record <file>', 'write the schedule of the run (or of the failing execution) to <file>')
    .option('--json', 'print one JSON object on stdout instead of the report')
    .option('-v, --verbose', 'list every parameter in the header and every counter in the verdict line (by default: those that differ from the defaults, those that are not 0)')
    .addOption(
      new Option('--max-steps <n>', 'stop a run that takes more steps (a loop that never ends), naming the task it loops in (default: 50 000 000 deterministic, none threaded)').argParser(
        intArg(1),
      ),
    );
}

/** Run a workload as the flags say, print its report (or JSON), and end with SUCCESS / FAILURE. */
async function runWorkload(tag: string, name: string, params: Record<string, Wire>, flags: RunFlags, cmd: Command): Promise<void> {
  if (flags.runtime === 'threaded') {
    if (flags.strategy) cmd.error('error: --strategy applies to --runtime deterministic only', { exitCode: 2 });
    if (flags.runs !== 1) cmd.error('error: --runs applies to --runtime deterministic only', { exitCode: 2 });
  } else {
    if (flags.workers !== undefined) cmd.error('error: --workers applies to --runtime threaded only', { exitCode: 2 });
    if (cmd.getOptionValueSource('placement') === 'cli') cmd.error('error: --placement applies to --runtime threaded only', { exitCode: 2 });
  }
  checkOutputFile('--record', flags.record);
  const bar = progress(flags.runtime === 'threaded' ? 'delivered' : flags.runs > 1 ? 'executions' : 'steps', !flags.json, { cap: true });
  // One deterministic execution runs to its end without a pause in which a signal could be seen: there, Ctrl-C
  // keeps its default (the process ends at once, status 130 in the shell) instead of waiting for the end.
  const stop = flags.runtime === 'threaded' || flags.runs > 1 ? interrupts() : undefined;
  let result: RunOutcome | undefined;
  try {
    result = await run({
      workload: { name, params },
      runtime: flags.runtime,
      seed: flags.seed,
      ...(flags.strategy ? { strategy: flags.strategy } : {}),
      depth: flags.depth,
      runs: flags.runs,
      keepGoing: flags.keepGoing ?? false,
      ...(flags.maxSteps !== undefined ? { maxSteps: flags.maxSteps } : {}),
      placement: flags.placement,
      ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
      // Threaded: (delivered, sent) — the total is not known in advance, so show what is in flight.
      onProgress: (done, total) =>
        flags.runtime === 'threaded' ? bar.update(done, 0, `${total - done} in flight`) : bar.update(done, total),
      ...(stop ? { signal: stop.signal } : {}),
    });
  } catch (err) {
    if (!stop?.received) throw err;
  } finally {
    bar.stop();
    stop?.dispose();
  }
  // A threaded run stopped midway has no result to show; an exploration shows the executions it finished.
  if (!result) stop?.exitIfStopped(tag, 'every worker was stopped');
  if (!result) throw new Error(`${tag}: the run returned no result`);
  const recorded = flags.record !== undefined && writeOutput('--record', flags.record, result.schedule.encode());
  const ok = passed(result);
  if (flags.json) {
    printJson({ ...summary(result), executions: result.executions, explored: result.explored, record: recorded ? flags.record : null, interrupted: stop?.received ?? null });
  } else {
    printReport(tag, result, ok, flags.verbose ?? false);
    if (flags.runtime === 'deterministic') console.log(`${tag}: ${result.explored}`);
    if (recorded && flags.record) printLines(writtenLines(tag, 'schedule', flags.record, replayAdvice(flags.record, result.schedule)));
    printLines(verdictLines(tag, ok ? (stop?.received ? 'INTERRUPTED' : 'SUCCESS') : 'FAILURE', result, flags.verbose ?? false));
  }
  stop?.exitIfStopped(tag, `the summary above covers the ${counted(result.executions, 'execution')} that finished`);
  if (!ok) throw new Exit(1);
}

interface SelftestFlags extends RunFlags {
  actors: number;
  messages: number;
  bug: number;
  crash: number;
}

runOptions(
  program
    .command('selftest')
    .description(
      'Run the runtime\'s built-in workload: actors ping random peers and race on shared memory, checking their invariants; ' +
        'ends with "selftest: SUCCESS" or "selftest: FAILURE".',
    ),
)
  .addOption(new Option('--actors <n>', 'actors in the workload').argParser(intArg(2, 4096)).default(4))
  .addOption(new Option('--messages <n>', 'pings each actor sends').argParser(intArg(0, 10_000_000)).default(1000))
  .addOption(new Option('--bug <d>', 'plant an ordering bug of depth d in the workload (0: none)').argParser(intArg(0, 64)).default(0))
  .addOption(
    new Option('--crash <n>', 'make selftest/0 throw at its n-th iteration, to see how a crashing actor is reported (0: never)')
      .argParser(intArg(0))
      .default(0),
  )
  .action(async (flags: SelftestFlags, cmd: Command) => {
    const params = { actors: flags.actors, messages: flags.messages, bug: flags.bug, seed: flags.seed, ...(flags.crash ? { crash: flags.crash } : {}) };
    await runWorkload('selftest', 'selftest', params, flags, cmd);
  });

interface KselftestFlags extends RunFlags {
  mode: string;
  lock: string;
  tasks: number;
  iterations: number;
  leakLock?: boolean;
  checkers: boolean;
}

runOptions(
  program
    .command('kselftest')
    .description(
      'Run the simulated kernel\'s own workload with every checker on (lockdep, might_sleep, KASAN, RCU, hung task, ' +
        'deadlock, leaks): lock contention, RCU grace periods, or a planted bug; findings print as the kernel would.',
    ),
)
  .addOption(
    new Option('--mode <mode>', 'locks: tasks contend on a spinlock and a mutex; rcu: readers vs an updater with synchronize_rcu; rcu-nosync: the updater retires without a grace period (a bug)')
      .choices(['locks', 'rcu', 'rcu-nosync'])
      .default('locks'),
  )
  .addOption(new Option('--lock <lock>', 'locks mode: which lock protects the counters ("none": a lost-update bug)').choices(['spinlock', 'mutex', 'both', 'none']).default('both'))
  .addOption(new Option('--tasks <n>', 'kernel tasks').argParser(intArg(1, 16)).default(4))
  .addOption(new Option('--iterations <n>', 'loop iterations per task').argParser(intArg(0, 10_000_000)).default(1000))
  .option('--leak-lock', 'plant a bug: the first task returns holding the mutex (lockdep report, then hung tasks)')
  .option('--no-checkers', 'switch every checker off (to measure what they cost)')
  .action(async (flags: KselftestFlags, cmd: Command) => {
    const params = { mode: flags.mode, lock: flags.lock, tasks: flags.tasks, iterations: flags.iterations, leakLock: flags.leakLock ?? false, checkers: flags.checkers };
    await runWorkload('kselftest', 'kernel-selftest', params, flags, cmd);
  });

interface SvaFlags extends RunFlags {
  set: Record<string, string | number | boolean>;
  /** Milliseconds. */
  duration?: number;
  statusInterval: StatusInterval | null;
}

runOptions(
  program
    .command('sva')
    .description(
      'Run the IOMMU model: IOMMUs (vtd, amd, smmuv3), PCI devices with ATS/PRI/PASID, processes that bind, DMA, fault, ' +
        'munmap, unbind and exit, under the chosen policies, with the oracles (isolation, stale translation, page requests) ' +
        'and every kernel checker on.',
    ),
)
  .option(
    '--set <key=value>',
    `a workload parameter, repeatable; the defaults: ${Object.entries(SVA_DEFAULTS)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ')}`,
    setArg,
    {},
  )
  .addOption(
    new Option(
      '--duration <duration>',
      `threaded: run again (seed, seed+1, …) until this long has passed (${DURATION_FORMS}; the run in flight then stops at its next scheduling point); print the summed counters per second`,
    ).argParser(durationArg()),
  )
  .addOption(new Option('--status-interval <interval>', `with --duration: a status line (elapsed, runs, events/s, findings) every interval: ${STATUS_FORMS}`).argParser(statusIntervalArg).default({ every: 'ms', n: 10_000 }, '10s'))
  .addHelpText(
    'after',
    `
${presetHelp('sva')}

${stepsHelp()}
Limits: devices ≤ 1024, processes ≤ 4096, pages ≤ 4096, pasidBits ≤ 20 (a refusal gives each range); a topology
whose simulated kernel memory passes 512 MiB (devices × 2^pasidBits dominates) is refused naming what takes it.

Examples:
  iommu-sim sva --set iommus=vtd,amd,smmuv3,vtd --set devices=64 --set processes=256 --set script=stress --duration 30
  iommu-sim sva --runtime deterministic --strategy pct --runs 2000 --set teardown=at-once --set processes=2 --set sequential=true --set script=unbind-inflight`,
  )
  .action(async (flags: SvaFlags, cmd: Command) => {
    const params: Record<string, Wire> = { seed: flags.seed, ...flags.set };
    // Validate here, so that a bad parameter is a usage error before any worker starts.
    setFlag(() => svaParams(params));
    if (flags.duration === undefined) {
      await runWorkload('sva', 'sva', params, flags, cmd);
      return;
    }
    if (flags.runtime !== 'threaded') cmd.error('error: --duration applies to --runtime threaded only', { exitCode: 2 });
    await stressFor(params, flags);
  });

/** Threaded runs back to back until the duration has passed (src/cli/stress.ts); counters summed, and per second. */
async function stressFor(params: Record<string, Wire>, flags: SvaFlags): Promise<void> {
  checkOutputFile('--record', flags.record);
  const stop = interrupts();
  let out: Awaited<ReturnType<typeof stressRuns>>;
  try {
    out = await stressRuns({
      tag: 'sva',
      model: 'sva',
      params,
      seconds: (flags.duration ?? 0) / 1000,
      seed: flags.seed,
      placement: flags.placement,
      ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
      keepGoing: flags.keepGoing ?? false,
      ...(flags.record ? { record: flags.record } : {}),
      json: flags.json ?? false,
      signal: stop.signal,
      status: flags.statusInterval,
    });
  } finally {
    stop.dispose();
  }
  const failed = out.failures[0];
  if (flags.json) {
    printJson({ ok: out.ok, runs: out.runs, seconds: out.seconds, events: out.events, eventsPerSecond: out.eventsPerSecond, cut: out.cut, counters: out.totals, perSecond: out.perSecond, locking: out.locking, workerTime: out.workerTime, findings: failed?.findings ?? [], record: out.saved[0] ?? null, interrupted: stop.received ?? null });
  } else {
    const verbose = flags.verbose ?? false;
    if (failed) printReport('sva', failed, false, verbose);
    console.log(`sva: ${counted(out.runs, 'threaded run')} in ${out.seconds.toFixed(1)} s (placement ${flags.placement}${flags.workers ? `, ${counted(flags.workers, 'worker')}` : ''}), ${out.events} model events (${out.eventsPerSecond}/s)`);
    if (out.cut) console.log(`sva: the budget ended during run ${out.cut.run}: stopped at step ${out.cut.atStep}, ${counted(out.cut.steps - out.cut.atStep, 'step')} after the stop (${counted(out.cut.workers, 'worker')}, a point each at most)`);
    printLines(wrapStatus('sva', 'totals', counterWords(out.totals, verbose)));
    printLines(wrapStatus('sva', 'per second', counterWords(out.perSecond, verbose, '/s')));
    console.log(`sva: ${lockingLine(out.locking)}`);
    printLines(statusLines('sva', workerTimeLine(out.workerTime)));
    for (const f of out.saved) printLines(writtenLines('sva', 'schedule of a failing run', f, replayAdvice(f, loadSchedule(f))));
    // A failing run's report is above; without one, the verdict says why (e.g. no run ended within the budget).
    if (!out.ok && !failed) for (const l of out.verdict.lines) console.log(`sva: ${l}`);
    console.log(`sva: ${out.ok ? (stop.received ? 'INTERRUPTED' : 'SUCCESS') : 'FAILURE'}`);
  }
  stop.exitIfStopped('sva', `the summary above covers the ${counted(out.runs, 'run')} that finished`);
  if (!out.ok) throw new Exit(1);
}

/** Check the `--set` parameters: a refused one names the flag (`--set: sva: devices must be …`). */
function setFlag(validate: () => unknown): void {
  try {
    validate();
  } catch (err) {
    throw err instanceof InputError ? new InputError(`--set: ${err.message}`) : err;
  }
}

/** A model workload run from `--set key=value` parameters, validated before any worker starts. */
function paramsCommand(name: string, description: string, defaults: object, validate: (p: Record<string, Wire>) => unknown, help: string): void {
  runOptions(program.command(name).description(description))
    .option(
      '--set <key=value>',
      `a workload parameter, repeatable; the defaults: ${Object.entries(defaults)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ')}`,
      setArg,
      {},
    )
    .addHelpText('after', help)
    .action(async (flags: RunFlags & { set: Record<string, string | number | boolean> }, cmd: Command) => {
      const params: Record<string, Wire> = { ...flags.set };
      setFlag(() => validate(params));
      await runWorkload(name, name, params, flags, cmd);
    });
}

paramsCommand(
  'domains',
  'Groups and PASID-granular domains (seed 002) on IOMMU units of any flavour: attach/detach/replace of {device, PASID} ' +
    'through the vendors\' set_dev_pasid, group->pasid_array, get_domain_for_dev_pasid under the group mutex or RCU, ' +
    'SVA domains shared by the binds of one mm (the one SVA bind path), DMA by the PCI devices.',
  DOMAINS_DEFAULTS,
  domainsParams,
  `
${presetHelp('domains')}

${stepsHelp()}

Example (seed 002's race: unrefcounted SVA domain users and an RCU lookup racing the last unbind):
  iommu-sim domains --runtime deterministic --strategy pct --runs 2000 --set users=unrefcounted --record uaf.sched`,
);

paramsCommand(
  'ioasid',
  'The IOASID allocator (seed 003): capacity, sets with quotas, find under RCU, notifier chains to VFIO, KVM and ' +
    'the IOMMU driver; SVA processes bind through the one bind path (system PASIDs) and DMA; their PASIDs are freed at unbind, ' +
    'from the MMU notifier\'s free_notifier or from a workqueue.',
  IOASID_DEFAULTS,
  ioasidParams,
  `
${presetHelp('ioasid')}

${stepsHelp()}

Example (seed 003: the allocator lock as a mutex, freed from the MMU notifier's RCU callback):
  iommu-sim ioasid --runtime deterministic --set lock=mutex --set bits=8
  #   BUG: sleeping function called from invalid context at kernel/locking/mutex.c:283 … <IRQ> ioasid_free …`,
);

program
  .command('replay')
  .description(
    'Run a recorded schedule again in the deterministic runtime and check that it reproduces the recorded run: every ' +
      'step, the same trace hash and the same outcome (finding kinds, check).',
  )
  .argument('<schedule>', 'a schedule file written by --record (run, explore, stress, shrink, sva, domains, ioasid, selftest)')
  .option('--json', 'print one JSON object on stdout')
  .option('-v, --verbose', 'list every parameter in the header and every counter in the verdict line')
  .addHelpText(
    'after',
    `
Exit status:
  0  reproduced exactly, and the recorded run passed (no finding, its check held)
  1  reproduced exactly, and the recorded run failed (a finding or a failed check), as it did when recorded
  2  bad input: no such file, not a schedule, truncated or damaged, another format version, unknown workload
  3  diverged: the replay could not take a recorded step, or took them all and ended otherwise (another trace
     hash or outcome); the step, the step expected and the steps enabled are named`,
  )
  .action((file: string, flags: { json?: boolean; verbose?: boolean }) => {
    const schedule = loadSchedule(file);
    let r: ReplayOutcome;
    try {
      r = replay(schedule);
    } catch (err) {
      if (!(err instanceof ReplayDivergence)) throw err;
      if (flags.json) {
        printJson({ ok: false, status: 'diverged', divergence: { step: err.step, expected: err.expected, actual: err.actual }, message: err.message, recordedHash: schedule.meta.traceHash, recordedRuntime: schedule.meta.runtime });
      } else {
        console.log(`replay: ${err.message}`);
        console.log(`replay: DIVERGED from the recording (${schedule.meta.runtime} runtime, trace hash ${schedule.meta.traceHash})`);
      }
      throw new Exit(EXIT_DIVERGED);
    }
    const ok = r.matches && passed(r);
    if (flags.json) {
      printJson({ ...summary(r), status: r.matches ? 'reproduced' : 'diverged', recordedHash: r.recordedHash, matches: r.matches, mismatch: r.mismatch ?? null, recordedRuntime: schedule.meta.runtime });
    } else {
      printReport('replay', r, ok, flags.verbose ?? false);
      console.log(
        `replay: recorded by the ${schedule.meta.runtime} runtime with trace hash ${r.recordedHash}; ` +
          (r.matches ? 'reproduced exactly' : `DIVERGED: ${r.mismatch}`),
      );
      printLines(verdictLines('replay', r.matches ? (ok ? 'SUCCESS' : 'FAILURE') : 'DIVERGED', r, flags.verbose ?? false));
    }
    if (!r.matches) throw new Exit(EXIT_DIVERGED);
    if (!ok) throw new Exit(1);
  });

program
  .command('shrink')
  .description(
    'Shrink a failing schedule by delta debugging: a schedule no longer than it that fails the same way (the same ' +
      'finding kinds and first finding, or the same failed check), strict-replayable with `iommu-sim replay`.',
  )
  .argument('<schedule>', 'a schedule file written by --record, of a run that fails')
  .option('-o, --out <file>', 'where to write the shrunk schedule (default: <schedule>.shrunk)')
  .addOption(new Option('--runs <n>', 'run the workload at most n times while shrinking').argParser(intArg(1)).default(2000))
  .option('--json', 'print one JSON object on stdout')
  .addHelpText(
    'after',
    `
Exit status:
  0  the schedule was shrunk (or no shorter one fails the same way) and written
  1  the schedule does not fail: nothing to shrink
  2  bad input (not a schedule, damaged, another version) or --out cannot be written (checked before shrinking)
  3  the schedule does not replay: it diverged from its recording`,
  )
  .action(async (file: string, flags: { out?: string; runs: number; json?: boolean }) => {
    const out = flags.out ?? `${file}.shrunk`;
    checkOutputFile(flags.out ? '--out' : '--out (default <schedule>.shrunk)', out);
    const schedule = loadSchedule(file);
    const bar = progress('runs', !flags.json, { cap: true });
    const stop = interrupts();
    let o: ShrinkOutcome;
    try {
      o = await shrinkOnWorker(schedule, flags.runs, (p) => bar.update(p.runs, p.maxRuns, `${p.steps} steps`), stop.signal);
    } finally {
      bar.stop();
      stop.dispose();
    }
    if (o.kind === 'stopped') {
      const so = o.last ? `after ${o.last.runs} of ${o.last.maxRuns} runs the shortest run failing the same way had ${o.last.steps} of ${schedule.length} steps` : 'before its first runs';
      if (flags.json) printJson({ ok: false, input: file, interrupted: stop.received ?? null, runs: o.last?.runs ?? 0, before: schedule.length, after: o.last?.steps ?? null, out: null });
      else printLines(statusLines('shrink', `${file}: interrupted ${so}; nothing written (an unfinished shrink's result is not checked)`));
      stop.exitIfStopped('shrink', 'its worker thread was stopped');
    }
    if (o.kind === 'nothing') {
      // Exit 1 as for any other command whose input turned out not to be what it needs: a failing run.
      if (flags.json) printJson({ ok: false, input: file, nothingToShrink: true, message: o.message });
      // The file on a line of its own: the message, whole on the next, stays one grep-able line.
      else printLines([...statusLines('shrink', `${file}:`), ...statusLines('shrink', o.message)]);
      throw new Exit(1);
    }
    if (o.kind !== 'done') throw new Error('shrink: stopped without a signal');
    const r = o.result;
    const written = writeOutput('--out', out, r.schedule.encode());
    if (flags.json) {
      printJson({
        ok: true,
        input: file,
        out: written ? out : null,
        before: r.before,
        after: r.after,
        runs: r.runs,
        maxRuns: flags.runs,
        exhausted: r.exhausted,
        rounds: r.rounds,
        guided: r.guided,
        finding: r.finding,
        signature: r.signature,
        traceHash: r.schedule.meta.traceHash,
        replay: written ? `iommu-sim replay ${out}` : null,
      });
      return;
    }
    printLines(statusLines('shrink', `${file}: ${r.before} steps, fails with: ${r.finding}`));
    const how = r.after < r.before ? `${r.before} → ${r.after} steps` : `no shorter schedule found (${r.after} steps)`;
    printLines(
      statusLines(
        'shrink',
        `${how} in ${r.runs} runs (${r.rounds} round${r.rounds > 1 ? 's' : ''}; guided by ${r.guided} recorded ` +
          `step${r.guided === 1 ? '' : 's'}, the rest in the default order)${r.exhausted ? `; stopped at the budget of ${flags.runs} runs (--runs)` : ''}`,
      ),
    );
    if (written) printLines(writtenLines('shrink', 'schedule', out, replayAdvice(out, r.schedule)));
  });

program
  .command('trace')
  .description(
    'Replay a recorded schedule and export its trace: text, Chrome/Perfetto trace-event JSON (open it in ui.perfetto.dev), ' +
      'or a self-contained HTML race report: the finding, the threads that made it, the replay and shrink commands, ' +
      'then the parameters that differ from their defaults and the full sequence diagram of the steps up to the finding.',
  )
  .argument('<schedule>', 'a schedule file written by --record')
  .addOption(new Option('--format <format>', 'output format').choices(['perfetto', 'text', 'html']).default('text'))
  .option('-o, --out <file>', 'write to <file> instead of stdout')
  .option('--window <steps>', 'html: steps the full diagram shows before the first finding', intArg(1, 5000), DEFAULT_WINDOW)
  .addHelpText(
    'after',
    `
Exit status: 0 the trace was written (whether or not the run found something), 2 bad input or --out cannot be
written, 3 the replay diverged from its recording (one that took every step but ended with another trace hash
or outcome is still written, with a warning).`,
  )
  .action((file: string, flags: { format: 'perfetto' | 'text' | 'html'; out?: string; window: number }) => {
    checkOutputFile('--out', flags.out);
    const schedule = loadSchedule(file);
    const r = replay(schedule);
    const title = `iommu-sim ${schedule.meta.workload.name} (${schedule.meta.runtime}, seed ${schedule.meta.seed})`;
    const text =
      flags.format === 'perfetto'
        ? JSON.stringify(
            // Built again for its actors' kinds (their machines' ids), which the trace does not keep.
            toPerfetto(r.trace, title, r.findings, buildWorkload(schedule.meta.workload.name, schedule.meta.workload.params).actors.map((a) => a.logic.id)),
          )
        : flags.format === 'html'
          ? raceReportHtml({
              title,
              findings: r.findings,
              params: schedule.meta.workload.params,
              trace: r.trace,
              // Quoted only when needed, so the usual case reads like the README and still pastes into a shell.
              replayCommand: commandLine(['replay', file]),
              shrinkCommand: commandLine(['shrink', file]),
              defaults: PRESETS.find((p) => p.name === schedule.meta.workload.name)?.defaults as Record<string, unknown> | undefined,
              traceHash: r.traceHash,
              window: flags.window,
            })
          : `${r.trace.toText()}\n`;
    if (flags.out) {
      if (writeOutput('--out', flags.out, text))
        console.error(`trace: ${r.steps} steps written to ${flags.out} (${flags.format}); trace hash ${r.traceHash}`);
    } else {
      process.stdout.write(text);
    }
    if (!r.matches) {
      console.error(`trace: warning: the replay diverged from its recording: ${r.mismatch}`);
      throw new Exit(EXIT_DIVERGED);
    }
  });

program
  .command('bench')
  .description(
    'Run benchmark suites with tinybench, each in a child process of its own, with a progress line per case on stderr; ' +
      'print a table per suite (or JSON). Suites: runtime, kernel, sva, domains, ioasid, syspasid, seed000, explore, scaling.',
  )
  .argument('[suites...]', 'suites to run (default: all, in that order)')
  .option('--json', 'print one JSON object {suites, node, profile, date, machine, results, ratios, details, runs} on stdout')
  .option('--out <dir>', 'also write the JSON to <dir>/bench.json')
  .option('--quick', 'a smoke run: few iterations, small sizes (figures are rough); same as --profile quick')
  .option(
    '--noise',
    'run one busy-looping process beside each suite (started before it, killed after it): the figures with one core taken; ' +
      'runtime and scaling then measure only their cases across threads; cases are named "… [noise]", ratios "…_noise"',
  )
  .addOption(
    new Option('--profile <profile>', 'how long to measure: quick (seconds), report (what npm run bench:report uses), full (the default)').choices([
      'quick',
      'report',
      'full',
    ]),
  )
  .addHelpText(
    'after',
    `
Exit status: 0 every suite ran, 1 a suite failed (the others still run and are reported), 2 an unknown suite.
Example: iommu-sim bench runtime kernel --json --out bench-out
         iommu-sim bench runtime scaling --noise --profile report   # a threaded run on a busy machine`,
  )
  .action(async (suites: string[], flags: { json?: boolean; out?: string; quick?: boolean; noise?: boolean; profile?: 'quick' | 'report' | 'full' }) => {
    checkOutputDir('--out', flags.out);
    const { runBenchSuites, checkSuiteNames } = await import('../../bench/main.js');
    checkSuiteNames(suites);
    const stop = interrupts();
    let r: Awaited<ReturnType<typeof runBenchSuites>>;
    try {
      r = await runBenchSuites(suites, {
        json: flags.json ?? false,
        quick: flags.quick ?? false,
        noise: flags.noise ?? false,
        ...(flags.profile ? { profile: flags.profile } : {}),
        ...(flags.out ? { out: flags.out } : {}),
        signal: stop.signal,
      });
    } finally {
      stop.dispose();
    }
    stop.exitIfStopped('bench', `reported above: the ${counted(r.suites.length, 'suite')} that finished; the running one's child process was stopped`);
    if (r.runs.some((x) => x.error)) throw new Exit(1);
  });

program
  .command('matrix')
  .description(
    "The policy matrix: every policy of DESIGN.md's table, each value run on the same workloads (the race scripts in races/ " +
      'that name it, and the random workload stress/random.yaml when it exists): failing schedules per 1 000 explored, by kind ' +
      'of finding, and the throughput of each value from the matching benchmark with the ratio the seed argues about; then ' +
      'every race as written against its fix, each over its own budget (explore.runs) and judged by its expectation (a deterministic ' +
      'hazard or a race, with the fraction of schedules showing it). Prints tables; --json prints the JSON; --out writes matrix.json and matrix.md.',
  )
  .argument('[files...]', 'scenario files to use as the workloads instead (a file named random.yaml is a random workload)')
  .addOption(new Option('--runs <n>', "schedules explored per configuration (a race's variants: at least its explore.runs)").argParser(intArg(1, 1_000_000)).default(200))
  .addOption(
    new Option('--max-steps <n>', 'stop a configuration earlier once its schedules took this many steps (long workloads)')
      .argParser(intArg(1))
      .default(150_000),
  )
  .addOption(new Option('--chunk <n>', 'executions per pool task').argParser(intArg(1, 10_000)).default(16))
  .addOption(new Option('--workers <n>', `pool threads (default ${availableParallelism()})`).argParser(intArg(1, 256)))
  .option('--bench <file>', 'take the throughput column from this bench JSON (written by `iommu-sim bench --out DIR`) instead of running its suites')
  .option('--no-throughput', 'leave the throughput column out (no benchmark runs)')
  .option('--json', 'print the matrix as one JSON object on stdout')
  .option('--out <dir>', 'write <dir>/matrix.json and <dir>/matrix.md')
  .addHelpText(
    'after',
    `
Without --bench, the throughput comes from the suites that measure the policies (ioasid, domains, syspasid,
seed000), run first with --quick, each in its own process. Exit status: 0 the matrix ran (its verdicts are in the tables), 2 bad input.
Example: iommu-sim matrix --runs 500 --out matrix-out`,
  )
  .action(
    async (
      files: string[],
      flags: { runs: number; maxSteps: number; chunk: number; workers?: number; bench?: string; throughput: boolean; json?: boolean; out?: string },
    ) => {
      checkOutputDir('--out', flags.out);
      const stop = interrupts();
      try {
        await matrix(files, flags, stop);
      } finally {
        stop.dispose();
      }
      stop.exitIfStopped('matrix', 'the configurations that finished are in the tables above (the others show n/a)');
    },
  );

/** The matrix command's body: the throughput column, the configurations, the tables and the files. */
async function matrix(
  files: string[],
  flags: { runs: number; maxSteps: number; chunk: number; workers?: number; bench?: string; throughput: boolean; json?: boolean; out?: string },
  stop: Interrupts,
): Promise<void> {
  const { runMatrix, printMatrix, writeMatrix, THROUGHPUT_SUITES } = await import('./matrix.js');
  let bench: { results: BenchRow[]; from: string } | null = null;
  if (flags.bench) {
    let parsed: { results?: BenchRow[] };
    try {
      parsed = JSON.parse(readFileSync(flags.bench, 'utf8')) as { results?: BenchRow[] };
    } catch (err) {
      throw new InputError(`--bench ${flags.bench}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!Array.isArray(parsed.results)) throw new InputError(`--bench ${flags.bench}: not a bench JSON (no results)`);
    bench = { results: parsed.results, from: flags.bench };
  } else if (flags.throughput) {
    const { runBenchSuites } = await import('../../bench/main.js');
    const run = await runBenchSuites(THROUGHPUT_SUITES, { json: false, quick: true, silent: true, signal: stop.signal });
    bench = { results: run.results, from: `bench ${THROUGHPUT_SUITES.join(' ')} --quick, run for the matrix` };
  }
  const bar = progress('configurations', !flags.json, { delayMs: 500 });
  let m: Awaited<ReturnType<typeof runMatrix>>;
  try {
    m = await runMatrix({
      runs: flags.runs,
      maxSteps: flags.maxSteps,
      chunk: flags.chunk,
      ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
      ...(files.length > 0 ? { files } : {}),
      bench,
      onProgress: (done, total, what) => bar.update(done, total, what),
      signal: stop.signal,
    });
  } finally {
    bar.stop();
  }
  const written = flags.out !== undefined && writeMatrix(m, flags.out);
  // The report says which Node made it (`node`), and is what --out writes to matrix.json, byte for byte.
  if (flags.json) process.stdout.write(`${JSON.stringify(m)}\n`);
  else {
    printMatrix(m);
    if (written) console.log(`matrix: written to ${flags.out}/matrix.json and ${flags.out}/matrix.md`);
  }
}

function summary(r: RunResult): Record<string, unknown> {
  return {
    ok: passed(r),
    traceHash: r.traceHash,
    sent: r.accounting.sent,
    delivered: r.accounting.delivered,
    queued: r.accounting.queued,
    accountingOk: r.accounting.ok,
    steps: r.steps,
    timersFired: r.timersFired,
    runtime: r.runtime,
    strategy: r.strategy,
    seed: r.seed,
    placement: r.placement ?? null,
    workers: r.workers ?? null,
    locking: r.locking ?? null,
    workload: r.workload,
    problems: r.check.problems,
    notes: r.check.notes ?? [],
    findings: r.findings,
    blocked: r.blocked.map((b) => ({ name: b.name, waitingOn: b.blockedOn?.what ?? b.label })),
    counters: r.check.counters,
    elapsedMs: Math.round(r.elapsedMs),
  };
}

function printLines(lines: readonly string[]): void {
  for (const l of lines) console.log(l);
}

function printReport(tag: string, r: RunResult, ok: boolean, verbose: boolean): void {
  printLines(runHeader(tag, r, verbose));
  console.log(`${tag}: ${accountingLine(r.accounting)}`);
  console.log(`${tag}: trace hash ${r.traceHash} (${r.steps} steps)`);
  for (const n of r.check.notes ?? []) console.log(`${tag}: ${n}`);
  if (!ok) for (const p of r.check.problems) console.log(`${tag}: ${p}`);
  for (const f of r.findings) console.log(`\n${f.text}\n`);
}

/** One JSON object on stdout, saying what ran it (`host`) first. */
function printJson(v: object): void {
  process.stdout.write(`${JSON.stringify({ host: host(), ...v })}\n`);
}

registerScenarioCommands(program);

// `iommu-sim trace x.sched | head`: the reader went away, which is no error of ours. What is left to print is
// dropped, and the command ends with the exit status it would have had.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

/** Run the command line; the exit status. Every error ends here as a report without a JavaScript stack (failure.ts). */
async function main(): Promise<number> {
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  const args = process.argv.slice(2);
  let code: number;
  try {
    await program.parseAsync(process.argv);
    code = 0;
  } catch (err) {
    code = exitStatus(err, args);
  }
  // Files that could not be written after the work: said after the command's report and verdict, exit 2.
  for (const f of takeWriteFailures()) {
    console.error(`iommu-sim: ${f.flag} ${f.file}: could not be written: ${f.reason}; the report above is all that is left of the run`);
    code = 2;
  }
  return code;
}

function exitStatus(err: unknown, args: readonly string[]): number {
  if (err instanceof Exit) return err.code;
  if (err instanceof CommanderError) {
    // help and version are not errors; everything else commander rejects is bad input.
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2;
  }
  const r = reportFailure(err, args);
  console.error(r.text);
  return r.code;
}

// An error thrown where no command awaits it (a worker's event, a timer) is reported the same way.
const lastResort = (err: unknown): void => {
  const r = reportFailure(err, process.argv.slice(2));
  console.error(r.text);
  process.exit(r.code);
};
process.on('uncaughtException', lastResort);
process.on('unhandledRejection', lastResort);

process.exitCode = await main();
