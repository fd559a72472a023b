// The commands kernel developers live in, on scenario files (src/scenario/): `run` a script and judge it by
// its expectations, `explore` it at scale over a pool of worker threads, and `races` — every shipped race
// script with the policy that shows the bug and the one that fixes it, then a short stress run: what
// `npm start` does.
import { readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { type Command, Option } from 'commander';
import { expectationFor, judge } from '../scenario/expect.js';
import { exploreScenario } from '../scenario/explore.js';
import { loadScenarioFile, scenarioParams } from '../scenario/load.js';
import type { Scenario } from '../scenario/scenario.js';
import { PACKAGE_ROOT } from '../runtime/paths.js';
import { run } from '../runtime/run.js';
import { Schedule } from '../runtime/schedule.js';
import { MAX_WORKERS } from '../runtime/threaded.js';
import { STRATEGIES, type StrategyName } from '../runtime/scheduler.js';
import { Exit } from './exit.js';
import { interrupts } from './interrupt.js';
import { DURATION_FORMS, durationArg, intArg } from './options.js';
import { checkOutputFile, writeOutput } from './output.js';
import { progress } from './progress.js';
import { stressRuns } from './stress.js';

interface ScenarioFlags {
  fixed?: boolean;
  seed?: number;
  strategy?: StrategyName;
  depth?: number;
  runs?: number;
  json?: boolean;
  record?: string;
}

function variant(s: Scenario, fixed: boolean): string {
  // A patch under review is the variant's policy too: name its module.
  const patch = s.extension ? { extension: basename(s.extension) } : {};
  const p = fixed ? { ...s.policies, ...patch, ...(s.fix ?? {}) } : { ...s.policies, ...patch };
  return Object.entries(p)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

function printVerdict(tag: string, lines: readonly string[], ok: boolean): void {
  for (const l of lines) console.log(`${tag}: ${l}`);
  console.log(`${tag}: ${ok ? 'SUCCESS' : 'FAILURE'}`);
}

export function registerScenarioCommands(program: Command): void {
  program
    .command('run')
    .description("Run a scenario (a race script, JSON/YAML or a module exporting defineScenario) and judge it by its `expect`: exit 0 when it holds, 1 when not.")
    .argument('<file>', 'the scenario')
    .option('--fixed', 'apply the scenario\'s `fix` policies (and expect what `fixExpect` says: by default, no finding)')
    .addOption(new Option('--seed <n>', 'scheduler seed (default: the scenario\'s explore.seed)').argParser(intArg(-2147483648, 2147483647)))
    .addOption(new Option('--strategy <strategy>', 'scheduling strategy (default: the scenario\'s)').choices([...STRATEGIES]))
    .addOption(new Option('--depth <d>', 'pct depth (default: the scenario\'s)').argParser(intArg(1, 64)))
    .addOption(new Option('--runs <n>', 'executions to try, stopping at the first failing one (default: the scenario\'s explore.runs)').argParser(intArg(1)))
    .addOption(new Option('--runtime <runtime>', 'deterministic (under the strategy) or threaded (worker threads, real parallelism: one recorded run per --runs, default 1)').choices(['deterministic', 'threaded']).default('deterministic'))
    .addOption(new Option('--workers <n>', 'threaded: worker threads').argParser(intArg(1, MAX_WORKERS)))
    .option('--record <file>', 'write the schedule of the last execution (the failing one, if any)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, flags: ScenarioFlags & { runtime: 'deterministic' | 'threaded'; workers?: number }) => {
      const s = await loadScenarioFile(file);
      const fixed = flags.fixed ?? false;
      if (fixed && !s.fix) throw new Exit(usage(`${file}: has no \`fix\` to apply`));
      const e = expectationFor(s, fixed);
      checkOutputFile('--record', flags.record);
      const bar = progress('executions', !flags.json);
      const stop = interrupts();
      const r = flags.runtime === 'threaded' ? await threadedRuns(s, fixed, flags, stop.signal).finally(() => stop.dispose()) : await run({
        workload: { name: s.model, params: scenarioParams(s, fixed) },
        runtime: 'deterministic',
        strategy: flags.strategy ?? s.explore.strategy,
        depth: flags.depth ?? s.explore.depth,
        seed: flags.seed ?? s.explore.seed,
        runs: flags.runs ?? s.explore.runs,
        onProgress: (d, t) => bar.update(d, t),
        signal: stop.signal,
      }).finally(() => stop.dispose());
      bar.stop();
      if (!r) {
        stop.exitIfStopped('run', 'no run had finished');
        throw new Error('run: no run was made');
      }
      const v = judge(e, { findings: r.findings, counters: r.check.counters, checkOk: r.check.ok, problems: r.check.problems });
      const recorded = flags.record !== undefined && writeOutput('--record', flags.record, r.schedule.encode());
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ ok: v.ok, scenario: s.name, fixed, verdict: v.lines, executions: r.executions, explored: r.explored, traceHash: r.traceHash, findings: r.findings, counters: r.check.counters, record: recorded ? flags.record : null })}\n`,
        );
      } else {
        console.log(`run: ${s.name}${s.seed ? ` (seed ${s.seed})` : ''}: ${s.title}`);
        console.log(`run: model ${s.model}, ${fixed ? 'fixed' : 'as written'}: ${variant(s, fixed)}`);
        for (const f of r.findings) console.log(`\n${f.text}\n`);
        console.log(`run: ${r.explored}; trace hash ${r.traceHash}`);
        if (recorded) console.log(`run: schedule written to ${flags.record}; replay with: iommu-sim replay ${flags.record}`);
        // A budget cut short by a signal is no SUCCESS: what was found so far is still a FAILURE.
        if (stop.received && v.ok) for (const l of [...v.lines, 'INTERRUPTED']) console.log(`run: ${l}`);
        else printVerdict('run', v.lines, v.ok);
      }
      stop.exitIfStopped('run', `the verdict above covers the ${r.executions} executions that finished`);
      if (!v.ok) throw new Exit(1);
    });

  program
    .command('explore')
    .description('Explore a scenario over many schedules on a pool of worker threads; stops at the first finding (unless --keep-going), writes its schedule and prints the command that replays it.')
    .argument('<file>', 'the scenario')
    .option('--fixed', 'apply the scenario\'s `fix` policies')
    .addOption(new Option('--strategy <strategy>', 'scheduling strategy (default: the scenario\'s)').choices([...STRATEGIES]))
    .addOption(new Option('--depth <d>', 'pct depth (default: the scenario\'s)').argParser(intArg(1, 64)))
    .addOption(new Option('--runs <n>', 'executions in all (default: 100 × the scenario\'s explore.runs)').argParser(intArg(1)))
    .addOption(new Option('--time <duration>', `stop after this long (${DURATION_FORMS})`).argParser(durationArg()))
    .addOption(new Option('--workers <n>', `pool threads (default ${availableParallelism()})`).argParser(intArg(1, 256)))
    .addOption(new Option('--seed <n>', 'first scheduler seed; each pool task takes the next').argParser(intArg(-2147483648, 2147483647)))
    .addOption(new Option('--chunk <n>', 'executions per pool task').argParser(intArg(1)).default(64))
    .option('--keep-going', 'explore the whole budget, counting every failing schedule (by kind) and collecting every failing seed')
    .option('--record <file>', 'where to write the first failing schedule (default: <scenario name>.sched)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, flags: ScenarioFlags & { time?: number; workers?: number; chunk: number; keepGoing?: boolean }) => {
      const s = await loadScenarioFile(file);
      const fixed = flags.fixed ?? false;
      if (fixed && !s.fix) throw new Exit(usage(`${file}: has no \`fix\` to apply`));
      const record = flags.record ?? `${s.name}.sched`;
      checkOutputFile(flags.record ? '--record' : '--record (default <scenario name>.sched)', record);
      const bar = progress('schedules', !flags.json, 500);
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
          runs,
          ...(flags.time !== undefined ? { timeMs: flags.time } : {}),
          workers: flags.workers ?? availableParallelism(),
          keepGoing: flags.keepGoing ?? false,
          chunk: flags.chunk,
          onProgress: (n, failures, rate) => bar.update(n, runs, `${Math.round(rate)} schedules/s, ${failures} failing`),
          signal: stop.signal,
        });
      } finally {
        bar.stop();
        stop.dispose();
      }
      const first = out.failures[0];
      const recorded = first?.schedule ? writeOutput('--record', record, Schedule.decode(first.schedule, 'exploration').encode()) : false;
      const rate = Math.round(out.executions / Math.max(0.001, out.elapsedMs / 1000));
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({
            ok: out.failures.length === 0 && out.executions > 0,
            scenario: s.name,
            fixed,
            executions: out.executions,
            schedulesPerSecond: rate,
            stoppedBy: out.stoppedBy,
            failingSeeds: out.failures.map((f) => f.seed),
            failingSchedules: out.failing,
            failingByKind: out.failingKinds,
            findings: first?.findings ?? [],
            problems: first?.problems ?? [],
            traceHash: first?.traceHash ?? null,
            record: recorded ? record : null,
            coverage: { triples: out.coverage.triples.length, lockChains: out.coverage.lockChains.length, pasidTransitions: out.coverage.pasid, tripleList: out.coverage.triples },
          })}\n`,
        );
      } else {
        console.log(`explore: ${s.name}: ${out.executions} schedules in ${(out.elapsedMs / 1000).toFixed(1)} s (${rate}/s), stopped by ${out.stoppedBy}`);
        const pasid = Object.entries(out.coverage.pasid).map(([k, v]) => `${k} ${v}`).join(', ');
        console.log(`explore: coverage: ${out.coverage.triples.length} (actor, state, event) triples, ${out.coverage.lockChains.length} lock chains; PASID transitions: ${pasid || 'none'}`);
        if (first) {
          for (const f of first.findings) console.log(`\n${f.text}\n`);
          for (const p of first.problems) console.log(`explore: ${p}`);
          console.log(`explore: failing seed ${first.seed} (${first.explored})${recorded ? `; schedule written to ${record}` : ''}`);
          if (recorded) console.log(`explore: replay with: iommu-sim replay ${record}`);
          if (out.failures.length > 1) console.log(`explore: ${out.failures.length} failing seeds: ${out.failures.map((f) => f.seed).join(' ')}`);
          if (flags.keepGoing) {
            const kinds = Object.entries(out.failingKinds).map(([k, n]) => `${k} ${n}`).join(', ');
            console.log(`explore: ${out.failing} of ${out.executions} schedules failed (${kinds})`);
          }
        }
        console.log(`explore: ${first ? 'FAILURE' : stop.received ? 'INTERRUPTED' : out.executions === 0 ? 'NOTHING RUN' : 'SUCCESS'}`);
      }
      // A budget that ran out before the first schedule tested nothing: not a SUCCESS.
      if (out.executions === 0 && !stop.received) throw new Exit(usage(`explore: nothing run: the --time budget ran out before the first schedule`));
      stop.exitIfStopped('explore', `the summary above covers the ${out.executions} schedules that finished`);
      if (first) throw new Exit(1);
    });

  program
    .command('stress')
    .description('Threaded stress of a scenario (a stress config is a scenario file too): runs back to back for --duration, a status line per run, failing runs saved as replayable schedules; ends "stress: SUCCESS" or "stress: FAILURE".')
    .argument('<file>', 'the scenario or stress config')
    .option('--fixed', "apply the scenario's `fix` policies")
    .addOption(new Option('--duration <duration>', `how long (${DURATION_FORMS})`).argParser(durationArg()).default(60_000, '60s'))
    .addOption(new Option('--workers <n>', 'sharded: worker threads').argParser(intArg(1, MAX_WORKERS)))
    .addOption(new Option('--placement <placement>', 'sharded over --workers, or a thread per actor').choices(['sharded', 'per-actor']).default('sharded'))
    .addOption(new Option('--seed <n>', 'seed of the first run; each run takes the next').argParser(intArg(-2147483648, 2147483647)).default(1))
    .option('--keep-going', 'go on after a failing run')
    .option('--record <file>', 'where failing runs are saved (default: <scenario name>.stress.sched)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, flags: { fixed?: boolean; duration: number; workers?: number; placement: 'sharded' | 'per-actor'; seed: number; keepGoing?: boolean; record?: string; json?: boolean }) => {
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
          placement: flags.placement,
          ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
          keepGoing: flags.keepGoing ?? false,
          record,
          json: flags.json ?? false,
          signal: stop.signal,
        });
      } finally {
        stop.dispose();
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ok: out.ok, scenario: s.name, runs: out.runs, seconds: out.seconds, counters: out.totals, perSecond: out.perSecond, findings: out.failures.flatMap((r) => r.findings), saved: out.saved })}\n`);
      } else {
        for (const r of out.failures.slice(0, 1)) for (const f of r.findings) console.log(`\n${f.text}\n`);
        console.log(`stress: ${s.name}: ${out.runs} threaded runs in ${out.seconds.toFixed(1)} s (${flags.placement}${flags.workers ? `, ${flags.workers} workers` : ''})`);
        console.log(`stress: per second ${Object.entries(out.perSecond).filter(([, v]) => v !== 0).map(([k, v]) => `${k}/s=${v}`).join(' ')}`);
        for (const f of out.saved) console.log(`stress: failing run saved to ${f}; replay with: iommu-sim replay ${f}`);
        console.log(`stress: ${out.ok ? (stop.received ? 'INTERRUPTED' : 'SUCCESS') : 'FAILURE'}`);
      }
      stop.exitIfStopped('stress', `the summary above covers the ${out.runs} runs that finished`);
      if (!out.ok) throw new Exit(1);
    });

  program
    .command('races')
    .description('Run every race script in races/ with the policy that shows its bug and with the one that fixes it, the fault-injection scenarios in scenarios/ as written, then a short stress run; a table, then SUCCESS or FAILURE (npm start).')
    .addOption(new Option('--stress <duration>', `length of the stress run (${DURATION_FORMS}; 0: none)`).argParser(durationArg({ allowZero: true })).default(5000, '5s'))
    .option('--json', 'print one JSON object')
    .action(async (flags: { stress: number; json?: boolean }) => {
      const files = ['races', 'scenarios'].flatMap((d) =>
        readdirSync(join(PACKAGE_ROOT, d))
          .filter((f) => /\.(ya?ml|json|ts)$/.test(f))
          .sort()
          .map((f) => `${d}/${f}`),
      );
      const rows: { script: string; seed: string; policy: string; finding: string; schedules: string; verdict: string }[] = [];
      let ok = true;
      const stop = interrupts();
      for (const f of files) {
        if (stop.signal.aborted) break;
        const s = await loadScenarioFile(join(PACKAGE_ROOT, f));
        for (const fixed of s.fix ? [false, true] : [false]) {
          const e = expectationFor(s, fixed);
          const r = await run({
            workload: { name: s.model, params: scenarioParams(s, fixed) },
            runtime: 'deterministic',
            strategy: s.explore.strategy,
            depth: s.explore.depth,
            seed: s.explore.seed,
            runs: s.explore.runs,
            signal: stop.signal,
          });
          const v = judge(e, { findings: r.findings, counters: r.check.counters, checkOk: r.check.ok, problems: r.check.problems });
          ok &&= v.ok;
          const finding = r.findings[0]?.title ?? (Object.keys(e.counters).length > 0 ? Object.keys(e.counters).map((c) => `${c}=${r.check.counters[c]}`).join(' ') : '—');
          rows.push({
            script: f,
            seed: s.seed ?? '',
            policy: `${fixed ? 'fix' : s.fix ? 'bug' : 'as written'}: ${fixed ? Object.entries(s.fix ?? {}).map(([k, v2]) => `${k}=${String(v2)}`).join(' ') : variant(s, false)}`.slice(0, 60),
            finding: finding.length > 70 ? `${finding.slice(0, 67)}…` : finding,
            schedules: r.findings.length > 0 ? `${r.executions}` : `${r.executions} (none)`,
            verdict: stop.signal.aborted ? `interrupted after ${r.executions} executions` : v.ok ? 'ok' : `FAILED: ${v.lines.filter((l) => l.includes('NOT') || l.includes('none found') || l.includes('forbidden') || l.includes('check failed')).join('; ')}`,
          });
          if (!flags.json) process.stderr.write(`races: ${f} (${fixed ? 'fix' : 'bug'}): ${stop.signal.aborted ? 'interrupted' : v.ok ? 'ok' : 'FAILED'}\n`);
          if (stop.signal.aborted) break;
        }
      }
      let stress: { ok: boolean; line: string } | undefined;
      if (flags.stress > 0) {
        const until = performance.now() + flags.stress;
        let runs = 0;
        let dmas = 0;
        let findings = 0;
        while (performance.now() < until && !stop.signal.aborted) {
          const r = await run({
            workload: { name: 'sva', params: { iommus: 'vtd,amd,smmuv3', devices: 6, processes: 24, script: 'stress', rounds: 2, dmas: 6, seed: runs + 1 } },
            runtime: 'threaded',
            seed: runs + 1,
            workers: 2,
            signal: stop.signal,
          }).catch((err: unknown) => {
            // Interrupted (src/cli/interrupt.ts): the run in flight is dropped.
            if (stop.signal.aborted) return undefined;
            throw err;
          });
          if (!r) break;
          runs++;
          dmas += r.check.counters.dmas ?? 0;
          findings += r.findings.length + (r.check.ok ? 0 : 1);
          if (findings > 0) break;
        }
        stress = { ok: findings === 0, line: `stress: ${runs} threaded runs of a mixed topology (vtd, amd, smmuv3), ${dmas} DMAs, ${findings} findings` };
        ok &&= stress.ok;
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ok, races: rows, stress: stress ?? null })}\n`);
      } else {
        console.table(rows);
        if (stress) console.log(stress.line);
        console.log(ok ? (stop.received ? 'INTERRUPTED' : 'SUCCESS') : 'FAILURE');
      }
      stop.dispose();
      stop.exitIfStopped('races', `the table above has the ${rows.length} runs that finished`);
      if (!ok) throw new Exit(1);
    });
}

/**
 * `run --runtime threaded`: recorded threaded runs (seed, seed+1, …) until one shows a finding or fails its
 * check, or --runs (default 1) are done; the last one is the outcome (its schedule replays deterministically).
 */
async function threadedRuns(s: Scenario, fixed: boolean, flags: ScenarioFlags & { workers?: number }, signal: AbortSignal): Promise<Awaited<ReturnType<typeof run>> | undefined> {
  const seed = flags.seed ?? s.explore.seed;
  const n = flags.runs ?? 1;
  let r: Awaited<ReturnType<typeof run>> | undefined;
  for (let i = 0; i < n && !signal.aborted; i++) {
    try {
      r = await run({ workload: { name: s.model, params: scenarioParams(s, fixed) }, runtime: 'threaded', seed: seed + i, ...(flags.workers !== undefined ? { workers: flags.workers } : {}), signal });
    } catch (err) {
      // Interrupted (src/cli/interrupt.ts): the last finished run is the outcome.
      if (signal.aborted) break;
      throw err;
    }
    if (r.findings.length > 0 || !r.check.ok) break;
  }
  return r;
}

/** A usage error: printed, exit 2. */
function usage(msg: string): number {
  console.error(`iommu-sim: ${msg}`);
  return 2;
}
