#!/usr/bin/env node
// Runs every example command of README.md and checks the lines it quotes against what the command prints — or,
// with --update, rewrites the quoted lines from what it printed — so that the README's examples cannot drift
// from the tool (issue #20, deliverable 6). Runs the build in dist/ (npm run build first).
//
// How README.md writes an example (its ```sh blocks; no other block is run):
//   - A command is a line that starts with neither `#` nor a blank. A line ending in `\` goes on on the next
//     one; a here-document (`<<'EOF'`) takes the lines up to its end word. Its trailing `# …` is a remark.
//   - `#   TEXT` — a `#`, three blanks, then text — under a command quotes a line the command prints (stdout and
//     stderr together): the quoted lines must be printed in the order given, each a whole line (blanks at
//     either end ignored), `…` standing for any text. `…` is how a figure that varies (a time, a rate, a hash,
//     a count that depends on the machine) is written: the script never ignores a difference it is not told to.
//   - On a quoted line, three blanks then `(` or `#` start a remark (not quoted); a `#` line indented further
//     that follows a remark, and a line of blanks then `#` under a command, go on with the remark.
//   - `# TEXT` (one blank) is prose: it ends the quotes of the command above it.
//   - A command must exit 0 unless its remarks say `exit N` (or `exit N or M`, for a threaded run that may or
//     may not hit its race).
// Every command runs — but `npm ci` and `npm test`, which CI runs itself (BY_CI below) — through bash, in README
// order, in one scratch folder laid out as this checkout (each of its top-level entries linked in), so that what
// the examples write (race.sched, race.html, …) leaves the tree clean and a later example can use an earlier
// one's file. `npx iommu-sim` runs this checkout's bin/iommu-sim.js
// on the Node that npm scripts use (node_modules/.bin first on PATH, as npx puts it). A YAML block whose first
// line is `# NAME.yaml: …` is written to NAME.yaml there first (README's my-race.yaml).
//
//   node scripts/readme-examples.mjs            check: exit 1 naming each example and the line that differs
//   node scripts/readme-examples.mjs --update   rewrite the quoted lines that differ from what was printed,
//                                               keeping their `…`; exit 1 if a line has no counterpart
//   --only TEXT    run only the commands containing TEXT (a command that reads a file an earlier one writes
//                  needs TEXT to match that one too: use --only with care; the test runs them all)
//   --skip TEXT    run all but the commands containing TEXT (e.g. `npm start` while updating the other quotes)
//   --list         print the commands, their quoted lines and expected exit status, and run nothing
//   --keep         leave the scratch folder (its path is printed)
//   --readme FILE  check (or update) FILE instead of README.md, its commands run as README.md's are (tests)
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
let README = join(ROOT, 'README.md');

/**
 * The two commands CI itself runs (.ci/run: `npm ci`, then `npm test`): the install, which would replace the
 * node_modules/ of the checkout running this script, and the test suite, which runs this script. They are not run
 * again from here; what is checked instead is that CI runs them as the README writes them (a line of .ci/run is
 * the command) and that `npm test` is what the README says it is (package.json's `pretest` builds, type-checks
 * and lints, its `test` runs vitest). Every other command of the README runs.
 */
export const BY_CI = [
  { command: 'npm ci', scripts: {} },
  { command: 'npm test', scripts: { pretest: 'npm run build && npm run typecheck && npm run lint', test: 'vitest run' } },
];

/** A command's text without its trailing remark (`npm ci   # installs …` → `npm ci`). */
function bare(command) {
  return command.replace(/\s+#\s.*$/s, '').trim();
}

/** The CI entry, if `command` is one CI runs itself. */
export function byCi(command) {
  return BY_CI.find((x) => x.command === bare(command));
}

/** What is wrong with how CI runs `command` (empty: .ci/run runs it, and package.json's scripts are as stated). */
export function ciProblems(command, root = ROOT) {
  const ci = byCi(command);
  if (!ci) return [`\`${command}\` is not one CI runs`];
  const problems = [];
  const run = readFileSync(join(root, '.ci', 'run'), 'utf8').split('\n');
  if (!run.some((l) => l === ci.command || l.startsWith(`${ci.command} `))) problems.push(`.ci/run does not run \`${ci.command}\``);
  const scripts = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts ?? {};
  for (const [name, want] of Object.entries(ci.scripts)) {
    if (scripts[name] !== want) problems.push(`package.json's "${name}" script is ${JSON.stringify(scripts[name])}, not ${JSON.stringify(want)}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

/** The fenced blocks of a markdown text: info string, body lines, and the README line number of the first. */
export function fences(md) {
  const lines = md.split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(.*)$/.exec(lines[i]);
    if (!open) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && lines[j] !== '```') j++;
    out.push({ lang: open[1], info: open[2].trim(), line: start + 1, body: lines.slice(start, j) });
    i = j;
  }
  return out;
}

const QUOTE = /^# {3}(\S.*)$/;
const DEEPER = /^# {4,}(.*)$/;
/** Three blanks then `(` or `#`: where a quoted line's remark starts. */
const REMARK = /\s{3,}(?=[(#])/;

/** A quoted line split into the quote and its remark. */
function splitQuote(text) {
  const m = REMARK.exec(text);
  return m ? { quote: text.slice(0, m.index).trimEnd(), remark: text.slice(m.index).trim() } : { quote: text.trimEnd(), remark: '' };
}

/** The text after a command line's trailing ` # `, outside quotes and here-documents (a remark). */
function trailingRemark(line) {
  const m = /\s#\s(.*)$/.exec(line);
  return m && !/['"]/.test(line.slice(m.index)) ? m[1] : '';
}

/**
 * Every example command of a README: its text (as bash runs it), README line, the lines it quotes (with their
 * README line numbers, for --update) and the exit statuses its remarks allow.
 */
export function examples(md) {
  const out = [];
  for (const f of fences(md)) {
    if (f.lang !== 'sh') continue;
    let cur = null;
    let lastWasRemark = false;
    for (let k = 0; k < f.body.length; k++) {
      const line = f.body[k];
      const at = f.line + k;
      if (line.trim() === '') {
        cur = null;
        continue;
      }
      if (line.startsWith('#')) {
        const q = QUOTE.exec(line);
        const deeper = DEEPER.exec(line);
        if (deeper && (lastWasRemark || !cur || cur.quotes.length === 0)) {
          if (cur) cur.remarks.push(deeper[1]);
          continue;
        }
        if ((q || deeper) && cur) {
          const { quote, remark } = splitQuote(q ? q[1] : (deeper[1] ?? '').trim());
          cur.quotes.push({ text: quote, line: at });
          if (remark) cur.remarks.push(remark);
          lastWasRemark = remark !== '';
          continue;
        }
        if (q) throw new Error(`README.md:${at}: a quoted line (\`#   …\`) under no command: ${line}`);
        cur = null; // prose: ends the quotes of the command above
        continue;
      }
      if (/^\s/.test(line)) {
        // A blank-indented line: a command's remark going on (`    # …`), or part of a command (`\`, heredoc).
        if (!cur) throw new Error(`README.md:${at}: an indented line under no command: ${line}`);
        cur.remarks.push(line.trim().replace(/^#\s*/, ''));
        lastWasRemark = true;
        continue;
      }
      // A command: its continuation lines and here-document come with it.
      const text = [line];
      const remarks = [trailingRemark(line)];
      while (text.at(-1).endsWith('\\') && k + 1 < f.body.length) {
        text.push(f.body[++k]);
        remarks.push(trailingRemark(f.body[k]));
      }
      const heredoc = /<<\s*'?(\w+)'?/.exec(line);
      if (heredoc) {
        remarks.length = 1;
        while (k + 1 < f.body.length && f.body[k] !== heredoc[1]) text.push(f.body[++k]);
      }
      cur = { command: text.join('\n'), line: at, quotes: [], remarks: remarks.filter((r) => r !== '') };
      lastWasRemark = cur.remarks.length > 0;
      out.push(cur);
    }
  }
  for (const e of out) e.status = exitStatuses(e.remarks);
  return out;
}

/** The exit statuses a command's remarks allow: `exit N`, `exit N or M`; else 0. */
function exitStatuses(remarks) {
  for (const r of remarks) {
    const m = /(?<!else )\bexit (\d+)(?: or (\d+))?\b/.exec(r);
    if (m) return m[2] === undefined ? [Number(m[1])] : [Number(m[1]), Number(m[2])];
  }
  return [0];
}

/** Files a README writes from its YAML blocks: a block whose first line is `# NAME.yaml: …`. */
export function yamlFiles(md) {
  return fences(md).flatMap((f) => {
    const m = f.lang === 'yaml' ? /^# ([\w.-]+\.ya?ml):/.exec(f.body[0] ?? '') : null;
    return m ? [{ path: m[1], text: `${f.body.join('\n')}\n` }] : [];
  });
}


// ---------------------------------------------------------------------------------------------------------
// Matching

/** Does a printed line read as the quoted one, `…` standing for any text (whole line, outer blanks aside)? */
export function matches(quoted, printed) {
  const parts = quoted.trim().split('…');
  const l = printed.trim();
  if (parts.length === 1) return l === parts[0];
  if (!l.startsWith(parts[0]) || !l.endsWith(parts.at(-1))) return false;
  let at = parts[0].length;
  const end = l.length - parts.at(-1).length;
  for (const p of parts.slice(1, -1)) {
    const i = l.indexOf(p, at);
    if (i < 0 || i + p.length > end) return false;
    at = i + p.length;
  }
  return at <= end;
}

/**
 * Where each quoted line was printed: the index into `printed` of each, in order (a quote matches the first
 * line after the previous quote's that reads as it), or -1 for one that was not.
 */
export function placeQuotes(quotes, printed) {
  let from = 0;
  return quotes.map((q) => {
    for (let i = from; i < printed.length; i++) {
      if (matches(q, printed[i])) {
        from = i + 1;
        return i;
      }
    }
    return -1;
  });
}

/** Words, runs of blanks, `…`, and single other characters: what the update aligns. */
function tokens(s) {
  return s.match(/…|\s+|[\p{L}\p{N}_]+|./gu) ?? [];
}

/**
 * The quoted line rewritten to read as `printed`: printed's text, with each `…` of the quote kept where it
 * stands for text of printed (an edit alignment of the quote's tokens to printed's, a `…` taking any run of
 * them at a small cost, so that a literal token of the quote is kept where printed has it). Returns the new quote
 * and its cost (the edits it took, for choosing among printed lines).
 */
export function rewrite(quoted, printed) {
  const a = tokens(quoted.trim());
  const b = tokens(printed.trim());
  const n = a.length;
  const m = b.length;
  const INF = Number.MAX_SAFE_INTEGER;
  const EDIT = 100; // a token added, dropped or changed; a token taken by `…` costs 1
  // cost[i][j]: aligning a[i..] with b[j..].
  const cost = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(INF));
  cost[n][m] = 0;
  for (let j = m - 1; j >= 0; j--) cost[n][j] = cost[n][j + 1] + EDIT;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m; j >= 0; j--) {
      let c = INF;
      if (a[i] === '…') {
        // `…` takes b[j] and stays, or takes nothing more.
        c = cost[i + 1][j];
        if (j < m) c = Math.min(c, cost[i][j + 1] + 1);
      } else {
        c = cost[i + 1][j] + EDIT; // the quote's token is gone
        if (j < m) {
          c = Math.min(c, cost[i][j + 1] + EDIT); // printed has a token more
          c = Math.min(c, cost[i + 1][j + 1] + (a[i] === b[j] ? 0 : EDIT));
        }
      }
      cost[i][j] = c;
    }
  }
  let out = '';
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && a[i] === '…') {
      if (j < m && cost[i][j] === cost[i][j + 1] + 1) j++;
      else {
        out += '…';
        i++;
      }
    } else if (i < n && j < m && cost[i][j] === cost[i + 1][j + 1] + (a[i] === b[j] ? 0 : EDIT)) {
      out += b[j];
      i++;
      j++;
    } else if (j < m && cost[i][j] === cost[i][j + 1] + EDIT) {
      out += b[j++];
    } else {
      i++;
    }
  }
  return { text: out, cost: Math.floor(cost[0][0] / EDIT) };
}

/** The head of a line that names what printed it (`explore:`, `iommu-sim:`, `BUG: KASAN:`…), or ''. */
function head(s) {
  return /^\s*([\w-]+:)/.exec(s)?.[1] ?? '';
}

/**
 * New text for each quote that was not printed, from the printed line most like it (same head, least edits)
 * among those between the quotes around it that were; null where no line comes close.
 */
export function updates(quotes, printed) {
  const at = placeQuotes(quotes, printed);
  return quotes.map((q, k) => {
    if (at[k] >= 0) return q;
    const lo = Math.max(-1, ...at.slice(0, k)) + 1;
    const hiAt = at.slice(k + 1).find((x) => x >= 0);
    const hi = hiAt === undefined ? printed.length : hiAt;
    let best = null;
    for (let i = lo; i < hi; i++) {
      if (printed[i].trim() === '' || head(printed[i]) !== head(q)) continue;
      const r = rewrite(q, printed[i]);
      if (best === null || r.cost < best.cost) best = r;
    }
    return best && best.cost <= Math.max(8, tokens(q).length) ? best.text : null;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Running

/** A scratch folder laid out as this checkout: each top-level entry linked in, the README's files written. */
function scratch(md) {
  const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-readme-'));
  for (const e of readdirSync(ROOT)) if (e !== '.git') symlinkSync(join(ROOT, e), join(dir, e));
  for (const f of yamlFiles(md)) writeFileSync(join(dir, f.path), f.text);
  mkdirSync(join(dir, '.readme-bin'));
  writeFileSync(join(dir, '.readme-bin', 'iommu-sim'), `#!/bin/sh\nexec node ${JSON.stringify(join(ROOT, 'bin', 'iommu-sim.js'))} "$@"\n`, { mode: 0o755 });
  return dir;
}

/** The seconds a command states as its budget (`--duration 60s`, `--time 30s`), or 0. */
function statedBudget(command) {
  const m = /--(?:duration|time)\s+(\d+(?:\.\d+)?)(ms|s|m)?\b/.exec(command);
  if (!m) return 0;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

/** Runs one example in `dir`: its exit status, what it printed (one array of lines) and its time. */
export function runExample(e, dir) {
  const command = e.command.replace(/(^|\n)npx iommu-sim\b/g, '$1iommu-sim');
  // A stated budget bounds the command; the rest gets 5 minutes (npm start: every race over its own budget).
  const timeout = (statedBudget(e.command) + 300) * 1000;
  const t0 = performance.now();
  // `exec 2>&1`: stdout and stderr in one pipe, in the order printed.
  const r = spawnSync('bash', ['-c', `exec 2>&1\n${command}\n`], {
    cwd: dir,
    encoding: 'utf8',
    timeout,
    killSignal: 'SIGKILL',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, PATH: `${join(dir, '.readme-bin')}:${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { status: r.status, signal: r.signal, printed: (r.stdout ?? '').split('\n').map((l) => l.trimEnd()), seconds: (performance.now() - t0) / 1000 };
}

/** What went wrong with one example, as lines naming it (empty: it reads as the README says). */
export function judge(e, r) {
  const where = `README.md:${e.line}: \`${e.command.split('\n')[0]}\``;
  const problems = [];
  if (r.signal !== null) problems.push(`${where}: did not finish in its time (${r.seconds.toFixed(0)} s, ${r.signal})`);
  else if (!e.status.includes(r.status)) problems.push(`${where}: exit ${r.status}, the README says exit ${e.status.join(' or ')}`);
  const at = placeQuotes(
    e.quotes.map((q) => q.text),
    r.printed,
  );
  e.quotes.forEach((q, k) => {
    if (at[k] < 0) problems.push(`${where}: README.md:${q.line} quotes a line it did not print (after the quotes above it):\n    ${q.text}`);
  });
  if (problems.length > 0) problems.push(`  it printed:\n${r.printed.map((l) => `    | ${l}`).join('\n')}`);
  return problems;
}

function parseArgs(argv) {
  const a = { update: false, list: false, keep: false, only: undefined, skip: undefined };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--update') a.update = true;
    else if (f === '--list') a.list = true;
    else if (f === '--keep') a.keep = true;
    else if (f === '--only') a.only = argv[++i];
    else if (f === '--skip') a.skip = argv[++i];
    else if (f === '--readme') README = resolve(argv[++i]);
    else {
      process.stderr.write(`readme-examples: unknown argument ${f}\n`);
      process.exit(2);
    }
  }
  return a;
}

function main() {
  const a = parseArgs(process.argv.slice(2));
  let md = readFileSync(README, 'utf8');
  const all = examples(md);
  if (a.list) {
    for (const e of all) {
      process.stdout.write(`README.md:${e.line}: ${e.command}\n  exit ${e.status.join(' or ')}${byCi(e.command) ? '; run by CI (.ci/run), not from here' : ''}\n`);
      for (const q of e.quotes) process.stdout.write(`  README.md:${q.line}: ${q.text}\n`);
    }
    return 0;
  }
  const dir = scratch(md);
  const problems = [];
  const edits = new Map(); // README line number → new quoted text
  let ran = 0;
  try {
    for (const e of all) {
      if (a.only !== undefined && !e.command.includes(a.only)) continue;
      if (a.skip !== undefined && e.command.includes(a.skip)) continue;
      if (byCi(e.command)) {
        const p = ciProblems(e.command).map((x) => `README.md:${e.line}: \`${e.command}\`: ${x}`);
        process.stderr.write(`readme-examples: README.md:${e.line}: ${p.length === 0 ? 'ok' : 'DIFFERS'} (run by CI: .ci/run): ${e.command}\n`);
        problems.push(...p);
        continue;
      }
      const r = runExample(e, dir);
      ran++;
      const p = judge(e, r);
      process.stderr.write(`readme-examples: README.md:${e.line}: ${p.length === 0 ? 'ok' : 'DIFFERS'} (${r.seconds.toFixed(1)} s, exit ${r.status}): ${e.command.split('\n')[0]}\n`);
      if (p.length === 0 || !a.update) {
        problems.push(...p);
        continue;
      }
      if (r.signal !== null || !e.status.includes(r.status)) problems.push(p[0]); // not a quote: fix it by hand
      const next = updates(
        e.quotes.map((q) => q.text),
        r.printed,
      );
      e.quotes.forEach((q, k) => {
        if (next[k] === null) problems.push(`README.md:${q.line}: no printed line like this quote; fix it by hand:\n    ${q.text}\n${p.at(-1)}`);
        else if (next[k] !== q.text) edits.set(q.line, { old: q.text, text: next[k] });
      });
    }
  } finally {
    if (a.keep) process.stderr.write(`readme-examples: scratch folder kept: ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
  if (edits.size > 0) {
    const lines = md.split('\n');
    for (const [n, { old, text }] of edits) {
      // Only the quote changes: the `#   ` before it and its remark after it stay.
      const line = lines[n - 1];
      const i = line.indexOf(old);
      lines[n - 1] = `${line.slice(0, i)}${text}${line.slice(i + old.length)}`;
      process.stderr.write(`readme-examples: README.md:${n}: was: ${old}\n                                   now: ${text}\n`);
    }
    md = lines.join('\n');
    writeFileSync(README, md);
  }
  for (const p of problems) process.stdout.write(`${p}\n`);
  const verdict = problems.length === 0 ? 'ok' : `${problems.filter((p) => p.startsWith('README')).length} difference(s)`;
  process.stdout.write(`readme-examples: ${ran} command(s) run, ${edits.size} quoted line(s) rewritten; ${verdict}\n`);
  return problems.length === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();
