// README.md's examples, run as written (issue #20: "the README-examples test runs every command in the README
// and passes"): scripts/readme-examples.mjs runs every command of its ```sh blocks — `npm start`, the benchmarks,
// the matrix, the record/replay checks included, each in the form a reader tries first — and checks each one's
// exit status and the lines the README quotes under it. Two commands are not run from here because CI runs them:
// `npm ci` and `npm test` (.ci/run), the latter being this suite; for those the script checks that .ci/run runs
// them as the README writes them and that package.json's test scripts do what the README says. First, that the check is not blind: on
// a small page of our own, a wrong quote or a wrong exit status fails it naming the line, and --update rewrites
// the quote from what was printed, keeping its `…`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'scripts', 'readme-examples.mjs');

function script(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 1_500_000, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let dir = '';
beforeAll(() => {
  // A fresh build: what the examples run is the tree as it is now.
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stdout + build.stderr).toBe(0);
  dir = mkdtempSync(join(tmpdir(), 'iommu-sim-readme-test-'));
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const PAGE = (quote: string, remark: string): string =>
  [
    '# A page',
    '',
    '```sh',
    `npx iommu-sim selftest --runtime deterministic --strategy dfs --actors 2 --messages 1 --runs 100000${remark}`,
    '#   selftest: trace hash … (10 steps)',
    `#   ${quote}`,
    '```',
    '',
  ].join('\n');

describe('scripts/readme-examples.mjs', () => {
  it('parses README.md: commands, their quoted lines and exit statuses; only npm ci and npm test left to CI', () => {
    const r = script('--list');
    expect(r.code, r.err).toBe(0);
    const lines = r.out.split('\n');
    const commands = lines.flatMap((l, i) => (/^README\.md:\d+: /.test(l) ? [{ command: l.replace(/^README\.md:\d+: /, ''), status: lines[i + 1] ?? '' }] : []));
    expect(commands.length).toBeGreaterThanOrEqual(60);
    expect(r.out).toMatch(/^ {2}exit 1$/m);
    expect(r.out).toMatch(/^ {2}exit 1 or 0$/m);
    // Every command runs but the two CI runs itself; npm start and the long checks are among those that run.
    const byCi = commands.filter((c) => c.status.includes('run by CI'));
    expect(byCi.map((c) => c.command.split(/\s+#/)[0]?.trim())).toEqual(['npm ci', 'npm test']);
    for (const run of [/^npm start\b/, /^npx iommu-sim bench /, /^npx iommu-sim matrix /, /^node dist\/bench\/report\.js /, /^scripts\/record-replay\.sh /, /^node scripts\/replay-all\.mjs /, /^node scripts\/chunk-rates\.mjs /, /^npx iommu-sim races /]) {
      expect(commands.some((c) => run.test(c.command) && !c.status.includes('run by CI')), String(run)).toBe(true);
    }
    expect(r.out).toMatch(/README\.md:\d+: run: SUCCESS/);
  });

  it('npm ci and npm test: .ci/run runs them, and npm test builds, type-checks, lints and runs vitest', async () => {
    const { ciProblems } = (await import(SCRIPT)) as { ciProblems: (command: string, root?: string) => string[] };
    expect(ciProblems('npm ci')).toEqual([]);
    expect(ciProblems('npm test   # builds, type-checks, lints, runs the test suite')).toEqual([]);
    // Not blind: a checkout whose CI runs another command, or whose test script is another, is named.
    const other = join(dir, 'checkout');
    mkdirSync(join(other, '.ci'), { recursive: true });
    writeFileSync(join(other, '.ci', 'run'), 'npm install\nnpm test\n');
    writeFileSync(join(other, 'package.json'), JSON.stringify({ scripts: { pretest: 'npm run build', test: 'vitest run' } }));
    expect(ciProblems('npm ci', other)).toEqual(['.ci/run does not run `npm ci`']);
    expect(ciProblems('npm test', other)).toEqual([`package.json's "pretest" script is "npm run build", not "npm run build && npm run typecheck && npm run lint"`]);
    expect(ciProblems('npm run lint', other)).toEqual(['`npm run lint` is not one CI runs']);
  });

  it('fails on a quote the command did not print and on a wrong exit status, naming the line; --update rewrites the quote', () => {
    const page = join(dir, 'PAGE.md');
    writeFileSync(page, PAGE('selftest: dfs: space exhausted after 71 executions (…)', ''));
    const bad = script('--readme', page);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/README\.md:6 quotes a line it did not print/);
    expect(bad.out).toContain('selftest: dfs: space exhausted after 71 executions (…)');

    writeFileSync(page, PAGE('selftest: dfs: space exhausted after … executions (…)', '   # exit 1'));
    const status = script('--readme', page);
    expect(status.code).toBe(1);
    expect(status.out).toMatch(/exit 0, the README says exit 1/);

    writeFileSync(page, PAGE('selftest: dfs: space exhausted after 71 executions (…)', ''));
    const up = script('--readme', page, '--update');
    expect(up.code, up.out + up.err).toBe(0);
    // The figure is the printed one; the `…` the quote had stays.
    expect(readFileSync(page, 'utf8')).toContain('#   selftest: dfs: space exhausted after 72 executions (…)\n');
    expect(readFileSync(page, 'utf8')).toContain('#   selftest: trace hash … (10 steps)\n');
    expect(script('--readme', page).code).toBe(0);
  }, 120_000);

  it('runs every example of README.md as written: each exits as the README says and prints what it quotes', () => {
    const r = script();
    expect(r.code, `${r.out}\n${r.err}`).toBe(0);
    expect(r.out).toMatch(/readme-examples: \d+ command\(s\) run, 0 quoted line\(s\) rewritten; ok/);
  }, 1_500_000);
});
