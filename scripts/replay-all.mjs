#!/usr/bin/env node
// Issue #14's acceptance check for replay, as a user would run it: recordings written by every command that
// writes one — `run` (deterministic and threaded, each shipped script as written and --fixed, both stress
// configs), `explore`, `stress`, `shrink`, `sva`, `domains`, `ioasid`, `selftest` — each replayed with
// `iommu-sim replay`. A recording counts as replayed when the replay reproduces it exactly and exits as the
// recorded run ended (1 when it found something or failed its check, else 0). Threaded runs of the race
// scripts are repeated with further seeds until at least --threaded-findings of them ended in a finding.
// Prints each miss, then "N of N replayed"; exits 1 on any miss.
//
// Usage: node scripts/replay-all.mjs [--min N] [--threaded-findings N] [--jobs N] [--keep DIR] [--only FILE]...
//   --only FILE   record only this scenario file (repeatable): its run (deterministic and threaded, as written and
//                 --fixed), explore and shrink recordings, instead of every shipped script's and the sva, domains,
//                 ioasid and selftest commands' — a quick check of one script
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const { Schedule } = await import(join(root, 'dist/src/runtime/schedule.js'));
const cli = join(root, 'bin/iommu-sim.js');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const minRecordings = Number(opt('--min', '200'));
const wantThreadedFindings = Number(opt('--threaded-findings', '50'));
const jobs = Number(opt('--jobs', '2'));
const dir = opt('--keep', undefined) ?? mkdtempSync(join(tmpdir(), 'replay-all-'));

function iommuSim(argv) {
  return new Promise((done) => {
    execFile(process.execPath, [cli, ...argv], { cwd: root, maxBuffer: 64 << 20, timeout: 600_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** Run `tasks` (async thunks) `jobs` at a time. */
async function pool(tasks) {
  const out = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]();
      }
    }),
  );
  return out;
}

const only = args.flatMap((a, i) => (args[i - 1] === '--only' ? [resolve(a)] : []));
const scripts =
  only.length > 0
    ? only
    : ['races', 'scenarios'].flatMap((d) =>
        readdirSync(join(root, d))
          .filter((f) => /\.(ya?ml|ts)$/.test(f))
          .sort()
          .map((f) => `${d}/${f}`),
      );
const stressConfigs =
  only.length > 0
    ? []
    : readdirSync(join(root, 'stress'))
        .filter((f) => /\.ya?ml$/.test(f))
        .map((f) => `stress/${f}`);
const hasFix = (f) => /^\s*fix\s*:/m.test(readFileSync(resolve(root, f), 'utf8'));

/** A recording: the command that writes it, and where. */
const recordings = [];
let n = 0;
const file = (tag) => join(dir, `${String(++n).padStart(3, '0')}-${tag.replace(/[^\w.-]+/g, '_')}.sched`);
const record = (tag, argv, out = file(tag)) => {
  recordings.push({ tag, out, argv: argv(out) });
};

for (const s of [...scripts, ...stressConfigs]) {
  const variants = hasFix(s) ? [[], ['--fixed']] : [[]];
  for (const v of variants) {
    const name = `${s}${v.length ? ' --fixed' : ''}`;
    // A stress config is a scenario file too; its topology is large: one deterministic execution of it.
    const runs = s.startsWith('stress/') ? ['--runs', '1'] : [];
    record(`run ${name}`, (o) => ['run', s, ...v, ...runs, '--record', o, '--json']);
    record(`run ${name} threaded`, (o) => ['run', s, ...v, '--runtime', 'threaded', '--workers', '2', '--runs', '3', '--record', o, '--json']);
  }
  if (!s.startsWith('stress/')) record(`explore ${s}`, (o) => ['explore', s, '--runs', '256', '--workers', '2', '--record', o, '--json']);
}
for (const s of stressConfigs) {
  record(`stress ${s}`, (o) => ['stress', s, '--duration', '3s', '--workers', '2', '--keep-going', '--record', o, '--json']);
}
for (const r of only.length > 0 ? [] : ['000-exit-racing-bind-task.yaml', '000-pasid-reuse-before-drain.yaml']) {
  record(`stress races/${r}`, (o) => ['stress', `races/${r}`, '--duration', '3s', '--workers', '2', '--record', o, '--json']);
}
for (const cmd of only.length > 0 ? [] : ['sva', 'domains', 'ioasid', 'selftest']) {
  for (const rt of ['deterministic', 'threaded']) {
    record(`${cmd} ${rt}`, (o) => [cmd, '--runtime', rt, '--record', o, '--json']);
  }
}
if (only.length === 0) record('ioasid mutex (a finding)', (o) => ['ioasid', '--runtime', 'threaded', '--set', 'lock=mutex', '--set', 'bits=8', '--record', o, '--json']);
if (only.length === 0) record('selftest planted bug', (o) => ['selftest', '--runtime', 'threaded', '--bug', '1', '--record', o, '--json']);

const t0 = performance.now();
const made = [];
const recordAll = async (list) => {
  const results = await pool(
    list.map((r) => async () => {
      const res = await iommuSim(r.argv);
      // stress writes <record>, <record>.2, …: every file it wrote is a recording.
      const outs = [r.out, ...Array.from({ length: 50 }, (_, i) => `${r.out}.${i + 2}`)].filter((f) => existsSync(f));
      if (outs.length === 0 && res.code > 1) console.log(`record: ${r.tag}: exit ${res.code}, no schedule: ${(res.stderr || res.stdout).trim().split('\n').pop()}`);
      return outs.map((out, i) => ({ tag: i === 0 ? r.tag : `${r.tag} (#${i + 1})`, out }));
    }),
  );
  for (const r of results) made.push(...r);
};
await recordAll(recordings);

const describeRec = (out) => {
  const s = Schedule.load(out);
  const failed = s.meta.outcome.kinds.length > 0 || !s.meta.outcome.checkOk;
  return { runtime: s.meta.runtime, failed, steps: s.length };
};
const threadedFindings = () => made.filter((m) => describeRec(m.out).runtime === 'threaded' && describeRec(m.out).failed).length;

// More threaded runs of the race scripts as written, from further seeds, until enough ended in a finding.
const races = only.length > 0 ? scripts : scripts.filter((s) => s.startsWith('races/'));
for (let seed = 2; threadedFindings() < wantThreadedFindings && seed < 40; seed++) {
  recordings.length = 0;
  for (const s of races) record(`run ${s} threaded seed ${seed}`, (o) => ['run', s, '--runtime', 'threaded', '--workers', '2', '--seed', String(seed * 10), '--runs', '3', '--record', o, '--json']);
  await recordAll(recordings);
}
// Shrunk schedules of failing deterministic recordings.
recordings.length = 0;
for (const m of made.filter((x) => x.tag.startsWith('explore ')).slice(0, 6)) {
  record(`shrink ${m.tag}`, (o) => ['shrink', m.out, '-o', o, '--runs', '300', '--json']);
}
await recordAll(recordings);
// Top up with deterministic runs from further seeds if the count is short.
for (let seed = 2; made.length < minRecordings && seed < 20; seed++) {
  recordings.length = 0;
  for (const s of scripts) record(`run ${s} seed ${seed}`, (o) => ['run', s, '--seed', String(seed), '--runs', '50', '--record', o, '--json']);
  await recordAll(recordings);
}
const recordSecs = (performance.now() - t0) / 1000;

let replayed = 0;
const misses = [];
await pool(
  made.map((m) => async () => {
    const want = describeRec(m.out);
    const res = await iommuSim(['replay', m.out, '--json']);
    let j;
    try {
      j = JSON.parse(res.stdout);
    } catch {
      j = undefined;
    }
    const exact = j?.status === 'reproduced' && j.matches === true;
    const code = want.failed ? 1 : 0;
    if (exact && res.code === code) replayed++;
    else misses.push(`${m.tag} (${want.runtime}, ${want.steps} steps, ${m.out}): replay exit ${res.code} (expected ${code}); ${j?.message ?? j?.mismatch ?? res.stderr.trim().split('\n')[0]}`);
  }),
);
for (const miss of misses) console.log(`MISS ${miss}`);
const threaded = made.filter((m) => describeRec(m.out).runtime === 'threaded');
console.log(
  `replay-all: ${made.length} recordings (${made.length - threaded.length} deterministic, ${threaded.length} threaded, ` +
    `${threadedFindings()} of them threaded runs that ended in a finding) in ${recordSecs.toFixed(0)} s; ${opt('--keep', undefined) ? `kept in ${dir}` : ''}`,
);
console.log(`${replayed} of ${made.length} replayed`);
// Counted before the recordings are removed: threadedFindings reads them.
const short = made.length < minRecordings || threadedFindings() < wantThreadedFindings;
if (!opt('--keep', undefined)) rmSync(dir, { recursive: true, force: true });
if (short) console.log(`replay-all: fewer recordings than asked (--min ${minRecordings}, --threaded-findings ${wantThreadedFindings})`);
process.exit(replayed === made.length && !short ? 0 : 1);
