// The commands kernel developers live in, on scenario files (src/scenario/): `run` a script and judge it by
// its expectations, `explore` it at scale over a pool of worker threads, and `races` — every shipped race
// script with the policy that shows the bug and the one that fixes it, then a short stress run: what
// `npm start` does.
import { availableParallelism } from 'node:os';
import { type Command, Option } from 'commander';
import { expectationFor, kindTally, type Tally } from '../scenario/expect.js';
import { type JudgedRun, runJudged } from '../scenario/judged.js';
import { exploreScenario } from '../scenario/explore.js';
import { statesByKind } from '../scenario/coverage.js';
import { loadScenarioFile, scenarioParams } from '../scenario/load.js';
import { lockingLine } from '../runtime/result.js';
import { workerTimeLine } from '../runtime/worker-time.js';
import { Schedule } from '../runtime/schedule.js';
import { MAX_WORKERS } from '../runtime/threaded.js';
import { STRATEGIES, type StrategyName } from '../runtime/scheduler.js';
import { Exit } from './exit.js';
import { counted, interrupts } from './interrupt.js';
import { DURATION_FORMS, durationArg, intArg } from './options.js';
import { checkOutputFile, writeOutput } from './output.js';
import { progress } from './progress.js';
import { type RacesFlags, racesCommand, variantWords } from './races.js';
import { counterWords, host, statusLines, wrapStatus, writtenLines } from './status.js';
import { replayAdvice } from './replay-advice.js';
import { loadSchedule } from './schedule-file.js';
import { STATUS_FORMS, type StatusInterval, statusIntervalArg, stressRuns } from './stress.js';
import { stepsHelp } from '../workloads/docs.js';

interface ScenarioFlags {
  fixed?: boolean;
  seed?: number;
  strategy?: StrategyName;
  depth?: number;
  runs?: number;
  json?: boolean;
  record?: string;
}

/** How run, explore, stress and races judge a scenario (their --help). */
const JUDGING = `
How a scenario is judged (the same in run, explore, stress, matrix and races):
  expect.findings  kinds of which the race must show one (none listed: no finding expected)
  expect.forbid    kinds that must not appear; default \`any\`: every kind not listed in findings
                   (an explicit list forbids only those kinds)
  expect.counters  bounds each schedule's counters must meet
  fixExpect        the same for --fixed (default: no finding of any kind)
Each schedule (execution) is judged on its own: it fails when it shows a forbidden kind (or, when no finding
is expected, when its check or a counter fails); it shows the race when it has an expected kind. A run holds
when no schedule failed and, if findings are expected, one showed the race; it stops at the first schedule
that decides, and runs its whole budget when no finding is expected. Execution i from --seed S runs from
seed S+i alone (random, pct): \`run --seed N --runs 1\` runs the schedule explore reports as seed N.
A deterministic hazard is a buggy variant whose every schedule shows its finding; a race needs a particular
interleaving (\`races\` gives the fraction of schedules that show it).`;

function printLines(lines: readonly string[]): void {
  for (const l of lines) console.log(l);
}

function printVerdict(tag: string, lines: readonly string[], ok: boolean): void {
  printStatus(tag, ...lines);
  console.log(`${tag}: ${ok ? 'SUCCESS' : 'FAILURE'}`);
}

/** Sentences as `tag:` lines that fit a terminal (statusLines). */
function printStatus(tag: string, ...sentences: readonly string[]): void {
  for (const s of sentences) for (const l of statusLines(tag, s)) console.log(l);
}

export function registerScenarioCommands(program: Command): void {
  program
    .command('run')
    .description("Run a scenario (a race script, JSON/YAML or a module exporting defineScenario) and judge it by its `expect` (`forbid` defaults to every kind not in `findings`): exit 0 when it holds, 1 when not.")
    .addHelpText('after', `${JUDGING}\n\n${stepsHelp()}`)
    .argument('<file>', 'the scenario')
    .option('--fixed', 'apply the scenario\'s `fix`: its policies, and its patches in place of the scenario\'s if it names any (and expect what `fixExpect` says: by default, no finding)')
    .addOption(new Option('--seed <n>', 'the first execution\'s seed; execution i runs from seed+i, as explore numbers them (default: the scenario\'s explore.seed)').argParser(intArg(-2147483648, 2147483647)))
    .addOption(new Option('--strategy <strategy>', 'scheduling strategy (default: the scenario\'s)').choices([...STRATEGIES]))
    .addOption(new Option('--depth <d>', 'pct depth (default: the scenario\'s)').argParser(intArg(1, 64)))
    .addOption(new Option('--runs <n>', 'executions to try (seeds seed, seed+1, …), stopping at the first that decides the verdict (default: the scenario\'s explore.runs; threaded: 1, a trace hash each)').argParser(intArg(1)))
    .addOption(new Option('--runtime <runtime>', 'deterministic (under the strategy) or threaded (worker threads, real parallelism: one recorded run per --runs, default 1)').choices(['deterministic', 'threaded']).default('deterministic'))
    .addOption(new Option('--workers <n>', 'threaded: worker threads').argParser(intArg(1, MAX_WORKERS)))
    .option('--record <file>', 'write the schedule of the reported execution (the one that decided the verdict, else the last)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, flags: ScenarioFlags & { runtime: 'deterministic' | 'threaded'; workers?: number }) => {
      const s = await loadScenarioFile(file);
      const fixed = flags.fixed ?? false;
      if (fixed && !s.fix) throw new Exit(usage(`${file}: has no \`fix\` to apply`));
      const e = expectationFor(s, fixed);
      checkOutputFile('--record', flags.record);
      const bar = progress('executions', !flags.json, { cap: true });
      const threaded = flags.runtime === 'threaded';
      const stop = interrupts();
      let j: JudgedRun;
      try {
        j = await runJudged(e, {
        workload: { name: s.model, params: scenarioParams(s, fixed) },
        runtime: flags.runtime,
        strategy: flags.strategy ?? s.explore.strategy,
        depth: flags.depth ?? s.explore.depth,
        seed: flags.seed ?? s.explore.seed,
        runs: flags.runs ?? (threaded ? 1 : s.explore.runs),
        ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
        ...(threaded ? {} : { onProgress: (d: number, t: number) => bar.update(d, t) }),
        signal: stop.signal,
        });
      } catch (err) {
        // Interrupted before any run finished: nothing to judge.
        if (stop.received) stop.exitIfStopped('run', 'no run had finished');
        throw err;
      } finally {
        bar.stop();
        stop.dispose();
      }
      const r = j.outcome;
      const v = j.verdict;
      const recorded = flags.record !== undefined && writeOutput('--record', flags.record, r.schedule.encode());
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({
            host: host(),
            ok: v.ok,
            scenario: s.name,
            fixed,
            verdict: v.lines,
            executions: r.executions,
            explored: r.explored,
            seed: r.seed,
            traceHash: r.traceHash,
            schedules: scheduleCounts(j.tally),
            ...(threaded ? { runs: j.threaded } : {}),
            findings: r.findings,
            counters: r.check.counters,
            record: recorded ? flags.record : null,
            interrupted: stop.received ?? null,
          })}\n`,
        );
      } else {
        for (const l of wrapStatus('run', `${s.name}${s.seed ? ` (seed ${s.seed})` : ''}:`, s.title.split(' '))) console.log(l);
        const w = variantWords(s, fixed);
        const policies = w.policies.length > 0 ? w.policies : ['the', 'default', 'policies'];
        const words = w.faults.length > 0 ? [...policies.slice(0, -1), `${policies.at(-1)};`, 'faults:', ...w.faults] : policies;
        for (const l of wrapStatus('run', `model ${s.model}, ${fixed ? 'fixed' : 'as written'}:`, words)) console.log(l);
        for (const f of r.findings) console.log(`\n${f.text}\n`);
        for (const t of j.threaded) printStatus('run', `threaded run seed ${t.seed}: trace hash ${t.traceHash}${t.kind ? ` (${t.kind}: ${t.class})` : ''}`);
        printStatus('run', `${r.explored}; reported: seed ${r.seed}, trace hash ${r.traceHash}`);
        if (recorded && flags.record) printLines(writtenLines('run', 'schedule', flags.record, replayAdvice(flags.record, r.schedule)));
        // A budget cut short by a signal is no SUCCESS: what was found so far is still a FAILURE.
        if (stop.received && v.ok) printStatus('run', ...v.lines, 'INTERRUPTED');
        else printVerdict('run', v.lines, v.ok);
      }
      stop.exitIfStopped('run', `the verdict above covers the ${counted(r.executions, 'execution')} that finished`);
      if (!v.ok) throw new Exit(1);
    });

  program
    .command('explore')
    .description('Explore a scenario over many schedules on a pool of worker threads, each judged as `run` judges it (`forbid` defaults to every kind not in `findings`); stops at the first schedule that decides the verdict (unless --keep-going), writes its schedule and prints the commands that replay it; exit 0 when the expectation holds, 1 when not.')
    .addHelpText('after', `${JUDGING}\n\n${stepsHelp()}`)
    .argument('<file>', 'the scenario')
    .option('--fixed', 'apply the scenario\'s `fix`: its policies, and its patches in place of the scenario\'s if it names any')
    .addOption(new Option('--strategy <strategy>', 'scheduling strategy (default: the scenario\'s)').choices([...STRATEGIES]))
    .addOption(new Option('--depth <d>', 'pct depth (default: the scenario\'s)').argParser(intArg(1, 64)))
    .addOption(new Option('--runs <n>', 'executions in all (default: 100 × the scenario\'s explore.runs)').argParser(intArg(1)))
    .addOption(new Option('--time <duration>', `stop after this long (${DURATION_FORMS}): no schedule starts after it, on any pool thread`).argParser(durationArg()))
    .addOption(new Option('--workers <n>', `pool threads (default ${availableParallelism()})`).argParser(intArg(1, 256)))
    .addOption(new Option('--seed <n>', 'the first execution\'s seed; execution i runs from seed+i, as in run').argParser(intArg(-2147483648, 2147483647)))
    .addOption(new Option('--chunk <n>', 'executions per pool task').argParser(intArg(1)).default(64))
    .option('--keep-going', 'explore the whole budget, counting every schedule with a finding (by kind) and listing each by its seed')
    .option('--record <file>', 'where to write the first failing schedule (default: <scenario name>.sched)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, flags: ScenarioFlags & { time?: number; workers?: number; chunk: number; keepGoing?: boolean }) => {
      const s = await loadScenarioFile(file);
      const fixed = flags.fixed ?? false;
      if (fixed && !s.fix) throw new Exit(usage(`${file}: has no \`fix\` to apply`));
      const record = flags.record ?? `${s.name}.sched`;
      checkOutputFile(flags.record ? '--record' : '--record (default <scenario name>.sched)', record);
      // A --time budget is the bar's clock; the count beside it shows its cap only when --runs set one.
      const bar = progress('schedules', !flags.json, { delayMs: 500, cap: true, ...(flags.time !== undefined ? { budgetMs: flags.time } : {}) });
      const stop = interrupts();
      const runs = flags.runs ?? s.explore.runs * 100;
      let out: Awaited<ReturnType<typeof exploreScenario>>;
      try {
        out = await exploreScenario({
          model: s.model,
          params: scenarioParams(s, fixed),
          strategy: flags.strategy ?? s.explore.strategy,
          depth: flags.depth ?? s.explore.depth,
          seed: flags.seed ?? s.explore.seed,
          expect: expectationFor(s, fixed),
          runs,
          ...(flags.time !== undefined ? { timeMs: flags.time } : {}),
          workers: flags.workers ?? availableParallelism(),
          keepGoing: flags.keepGoing ?? false,
          chunk: flags.chunk,
          onProgress: (n, failures) => bar.update(n, flags.time !== undefined && flags.runs === undefined ? 0 : runs, `${failures} failing`),
          signal: stop.signal,
        });
      } finally {
        bar.stop();
        stop.dispose();
      }
      const first = out.failures[0];
      const recorded = first?.schedule ? writeOutput('--record', record, Schedule.decode(first.schedule, 'exploration').encode()) : false;
      const rate = Math.round(out.executions / Math.max(0.001, out.elapsedMs / 1000));
      const v = out.verdict;
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({
            host: host(),
            ok: v.ok && out.executions > 0,
            scenario: s.name,
            fixed,
            verdict: v.lines,
            executions: out.executions,
            elapsedMs: Math.round(out.elapsedMs),
            schedulesPerSecond: rate,
            stoppedBy: out.stoppedBy,
            firstSeed: flags.seed ?? s.explore.seed,
            first: out.first,
            schedules: scheduleCounts(out.tally),
            failingSchedules: out.failing,
            failingByKind: out.failingKinds,
            failingSeeds: out.tally.marked,
            failingSeedsOmitted: out.tally.marksOmitted,
            findings: first?.findings ?? [],
            problems: first?.problems ?? [],
            traceHash: first?.traceHash ?? null,
            record: recorded ? record : null,
            coverage: { triples: out.coverage.triples.length, lockChains: out.coverage.lockChains.length, pasidTransitions: out.coverage.pasid, states: statesByKind(out.coverage.triples), tripleList: out.coverage.triples },
          })}\n`,
        );
      } else {
        printStatus('explore', `${s.name}: ${out.executions} schedules from seed ${flags.seed ?? s.explore.seed} in ${(out.elapsedMs / 1000).toFixed(1)} s (${rate}/s), stopped by ${out.stoppedBy}`);
        const pasid = Object.entries(out.coverage.pasid).map(([k, n]) => `${k} ${n}`).join(', ');
        const coverage = `${out.coverage.triples.length} (actor, state, event) triples, ${out.coverage.lockChains.length} lock chains; PASID transitions: ${pasid || 'none'}`;
        for (const l of wrapStatus('explore', 'coverage:', coverage.split(' '))) console.log(l);
        const states = Object.entries(statesByKind(out.coverage.triples)).map(([kind, st]) => `${kind} ${st.length} (${st.join(', ')})`);
        for (const l of wrapStatus('explore', 'states:', (states.join('; ') || 'none').split(' '))) console.log(l);
        if (first) {
          for (const f of first.findings) console.log(`\n${f.text}\n`);
          // A run that stopped at its finding leaves processes unfinished: the check's problems decide (and are
          // printed) only when there was no finding, as run prints them.
          if (first.findings.length === 0) printStatus('explore', ...first.problems);
          printStatus('explore', `seed ${first.executionSeed} decided it (${out.first?.class}, the ${ordinal(out.first?.schedules ?? 0)} schedule, ${((out.first?.elapsedMs ?? 0) / 1000).toFixed(1)} s)`);
          if (recorded && first.schedule) printLines(writtenLines('explore', 'schedule', record, replayAdvice(record, Schedule.decode(first.schedule, 'exploration'))));
          printStatus('explore', `or run it again with: iommu-sim run ${file}${fixed ? ' --fixed' : ''} --seed ${first.executionSeed} --runs 1`);
        }
        if (flags.keepGoing) {
          const kinds = kindTally(out.failingKinds).join(', ');
          printStatus('explore', `${out.failing} of ${out.executions} schedules had a finding${kinds ? ` (${kinds})` : ''}; ${out.tally.shows} showed the expected finding, ${out.tally.fails} failed the verdict`);
          const seeds = out.tally.marked.slice(0, 20).map((m) => `${m.seed} ${m.kind}`);
          const all = out.tally.marked.length + out.tally.marksOmitted;
          // A seed and its kind stay on one line.
          const items = [...seeds, ...(all > 20 ? [`… (${all} in all; --json lists them)`] : [])].map((x, i, a) => (i < a.length - 1 ? `${x},` : x));
          if (seeds.length > 0) printLines(wrapStatus('explore', 'seeds with a finding:', items));
        }
        if (out.executions === 0) console.log('explore: NOTHING RUN');
        else if (stop.received && v.ok) printStatus('explore', ...v.lines, 'INTERRUPTED');
        else printVerdict('explore', v.lines, v.ok);
      }
      // A budget that ran out before the first schedule tested nothing: not a SUCCESS.
      if (out.executions === 0 && !stop.received) throw new Exit(usage(`explore: nothing run: the --time budget ran out before the first schedule`));
      stop.exitIfStopped('explore', `the summary above covers the ${counted(out.executions, 'schedule')} that finished`);
      if (!v.ok) throw new Exit(1);
    });

  program
    .command('stress')
    .description(
      'Threaded stress of a scenario (a stress config is a scenario file too): runs back to back for --duration, a line per run and a status line every --status-interval ' +
        '(elapsed, runs, model events per second, findings), a progress bar of the budget on a terminal, failing runs saved as replayable schedules; ' +
        'once the budget has passed no run starts and the one in flight stops at its next scheduling point. Ends "stress: SUCCESS" or "stress: FAILURE".',
    )
    .argument('<file>', 'the scenario or stress config')
    .addHelpText('after', `\n${stepsHelp()}`)
    .option('--fixed', "apply the scenario's `fix`: its policies, and its patches in place of the scenario's if it names any")
    .addOption(new Option('--duration <duration>', `how long (${DURATION_FORMS}); the run in flight when it ends is stopped at its next scheduling point`).argParser(durationArg()).default(60_000, '60s'))
    .addOption(new Option('--status-interval <interval>', `a status line (elapsed, runs, events/s, findings) every interval: ${STATUS_FORMS}`).argParser(statusIntervalArg).default({ every: 'ms', n: 10_000 }, '10s'))
    .addOption(new Option('--workers <n>', 'sharded: worker threads').argParser(intArg(1, MAX_WORKERS)))
    .addOption(new Option('--placement <placement>', 'sharded over --workers, or a thread per actor').choices(['sharded', 'per-actor']).default('sharded'))
    .addOption(new Option('--seed <n>', 'seed of the first run; each run takes the next').argParser(intArg(-2147483648, 2147483647)).default(1))
    .option('--keep-going', 'go on after a failing run')
    .option('--record <file>', 'where failing runs are saved (default: <scenario name>.stress.sched)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, flags: { fixed?: boolean; duration: number; statusInterval: StatusInterval | null; workers?: number; placement: 'sharded' | 'per-actor'; seed: number; keepGoing?: boolean; record?: string; json?: boolean }) => {
      const s = await loadScenarioFile(file);
      const fixed = flags.fixed ?? false;
      if (fixed && !s.fix) throw new Exit(usage(`${file}: has no \`fix\` to apply`));
      const record = flags.record ?? `${s.name}.stress.sched`;
      checkOutputFile(flags.record ? '--record' : '--record (default <scenario name>.stress.sched)', record);
      const stop = interrupts();
      let out: Awaited<ReturnType<typeof stressRuns>>;
      try {
        out = await stressRuns({
          tag: s.model,
          model: s.model,
          params: scenarioParams(s, fixed),
          seconds: flags.duration / 1000,
          seed: flags.seed,
          expect: expectationFor(s, fixed),
          placement: flags.placement,
          ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
          keepGoing: flags.keepGoing ?? false,
          record,
          json: flags.json ?? false,
          signal: stop.signal,
          status: flags.statusInterval,
        });
      } finally {
        stop.dispose();
      }
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ host: host(), ok: out.ok, scenario: s.name, verdict: out.verdict.lines, runs: out.runs, seconds: out.seconds, events: out.events, eventsPerSecond: out.eventsPerSecond, cut: out.cut, counters: out.totals, perSecond: out.perSecond, locking: out.locking, workerTime: out.workerTime, findings: out.failures.flatMap((r) => r.findings), saved: out.saved })}\n`,
        );
      } else {
        for (const r of out.failures.slice(0, 1)) for (const f of r.findings) console.log(`\n${f.text}\n`);
        console.log(`stress: ${s.name}: ${counted(out.runs, 'threaded run')} in ${out.seconds.toFixed(1)} s (${flags.placement}${flags.workers ? `, ${counted(flags.workers, 'worker')}` : ''}), ${out.events} model events (${out.eventsPerSecond}/s)`);
        if (out.cut) printStatus('stress', `the budget ended during run ${out.cut.run}: stopped at step ${out.cut.atStep}, ${counted(out.cut.steps - out.cut.atStep, 'step')} after the stop (${counted(out.cut.workers, 'worker')}, a point each at most)`);
        printLines(wrapStatus('stress', 'per second', counterWords(out.perSecond, false, '/s')));
        console.log(`stress: ${lockingLine(out.locking)}`);
        printLines(statusLines('stress', workerTimeLine(out.workerTime)));
        for (const f of out.saved) printLines([...statusLines('stress', `run with a finding saved to ${f}`), ...statusLines('stress', replayAdvice(f, loadSchedule(f)))]);
        if (stop.received && out.ok) for (const l of [...out.verdict.lines, 'INTERRUPTED']) console.log(`stress: ${l}`);
        else printVerdict('stress', out.verdict.lines, out.ok);
      }
      stop.exitIfStopped('stress', `the summary above covers the ${counted(out.runs, 'run')} that finished`);
      if (!out.ok) throw new Exit(1);
    });

  program
    .command('races')
    .description('Run every race script in races/ with the policy that shows its bug and with the one that fixes it, the fault-injection scenarios in scenarios/ as written, each over its whole budget (explore.runs) and judged as `run` judges it, then a short stress run; a table (a deterministic hazard shows its finding on every schedule, a race on the fraction given), then SUCCESS or FAILURE (npm start).')
    .addOption(new Option('--stress <duration>', `length of the stress run (${DURATION_FORMS}; 0: none)`).argParser(durationArg({ allowZero: true })).default(5000, '5s'))
    .argument('[files...]', 'race scripts or scenarios to run instead of every file in races/ and scenarios/ (each with its fix too, when it has one)')
    .option('--json', 'print one JSON object: { host, ok, interrupted, races: [row…], stress } (README "races --json"; the zod schema racesJsonSchema, exported by the package)')
    .addHelpText(
      'after',
      `
The table has a row per variant, printed as the variant finishes: race (the file's name), seed (the thread it
comes from), variant (bug, fix, or as-is), finding (the reported schedule's first finding, kind: title),
schedules (those showing the expected finding of those run, or with any finding for a variant expecting none;
\`all\`: a deterministic hazard), verdict (ok or FAILED). Long cells wrap within their column, 120 columns in all;
--json carries every field whole (the finding's whole report too) and typed.`,
    )
    .action(async (files: string[], flags: RacesFlags) => {
      await racesCommand(files, flags);
    });
}

/** 1 → 1st, 2 → 2nd, 13 → 13th. */
function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  return `${n}${teen ? 'th' : n % 10 === 1 ? 'st' : n % 10 === 2 ? 'nd' : n % 10 === 3 ? 'rd' : 'th'}`;
}

/** A tally's counts, for JSON: schedules judged, showing the expected finding, failing the verdict, allowed, by kind. */
function scheduleCounts(t: Tally): { judged: number; showing: number; failing: number; allowed: number; byKind: Readonly<Record<string, number>> } {
  return { judged: t.schedules, showing: t.shows, failing: t.fails, allowed: t.allowed, byKind: t.byKind };
}

/** A usage error: printed, exit 2. */
function usage(msg: string): number {
  console.error(`iommu-sim: ${msg}`);
  return 2;
}
