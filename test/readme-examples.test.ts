// README.md's examples, run as written (issue #20: "the README-examples test runs every command in the README
// and passes"): scripts/readme-examples.mjs runs every command of its ```sh blocks — but the ones its EXCLUDED
// list names with a reason (the install, the test suite itself, the benchmarks, `races`), which it prints — and
// checks each one's exit status and the lines the README quotes under it. First, that the check is not blind: on
// a small page of our own, a wrong quote or a wrong exit status fails it naming the line, and --update rewrites
// the quote from what was printed, keeping its `…`.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  it('parses README.md: commands, their quoted lines and exit statuses; exclusions named with a reason', () => {
    const r = script('--list');
    expect(r.code, r.err).toBe(0);
    const commands = r.out.split('\n').filter((l) => /^README\.md:\d+: /.test(l));
    expect(commands.length).toBeGreaterThanOrEqual(60);
    expect(r.out).toMatch(/^ {2}exit 1$/m);
    expect(r.out).toMatch(/^ {2}exit 1 or 0$/m);
    // Every exclusion is printed with its reason; the rest run.
    const excluded = r.out.split('\n').filter((l) => l.includes('not run by default: '));
    expect(excluded.length).toBeGreaterThan(0);
    expect(excluded.length).toBeLessThan(commands.length / 2);
    expect(r.out).toMatch(/README\.md:\d+: run: SUCCESS/);
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
