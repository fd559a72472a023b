// docs/patch-a-race.md, run as written (issue #18: "the tutorial's commands are run by a test, from a fresh build,
// and pass"). The page's files (fenced blocks with `file=PATH`) are written into a temporary folder laid out as an
// iommu-sim checkout (its bin/, dist/, node_modules/ and package.json linked in), and those it ships under races/
// must be the shipped files byte for byte. Every `$ ` line of its `sh` blocks runs there, in order, through sh:
// its exit status must be the one the page gives (`# exit N`, else 0), and every other line of the block under it
// must be a whole line of what it printed — `…` standing for any text, leading and trailing blanks ignored.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const DOC = join(ROOT, 'docs', 'patch-a-race.md');

interface FileBlock {
  readonly path: string;
  readonly text: string;
}
interface Command {
  readonly cmd: string;
  readonly status: number;
  readonly output: readonly string[];
}

/** The fenced blocks of a markdown page: info string and body (the body with its final newline). */
function fences(md: string): { info: string; body: string }[] {
  const out: { info: string; body: string }[] = [];
  const re = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (const m of md.matchAll(re)) out.push({ info: (m[1] as string).trim(), body: m[2] as string });
  return out;
}

function fileBlocks(md: string): FileBlock[] {
  return fences(md).flatMap((f) => {
    const m = /\bfile=(\S+)/.exec(f.info);
    return m ? [{ path: m[1] as string, text: f.body }] : [];
  });
}

function commands(md: string): Command[] {
  const out: { cmd: string; status: number; output: string[] }[] = [];
  for (const f of fences(md)) {
    if (f.info.split(/\s+/)[0] !== 'sh') continue;
    for (const line of f.body.split('\n')) {
      if (line.startsWith('$ ')) {
        const status = /#\s*exit (\d+)\s*$/.exec(line);
        out.push({ cmd: line.slice(2), status: status ? Number(status[1]) : 0, output: [] });
      } else if (line.trim() !== '') {
        const last = out.at(-1);
        if (!last) throw new Error(`${DOC}: output line before any command: ${line}`);
        last.output.push(line.trim());
      }
    }
  }
  return out;
}

/** Does one line of `printed` read as `quoted`, `…` standing for any text? */
function quotedIn(quoted: string, printed: readonly string[]): boolean {
  const parts = quoted.split('…');
  return printed.some((line) => {
    const l = line.trim();
    if (!l.startsWith(parts[0] as string) || !l.endsWith(parts.at(-1) as string)) return false;
    let at = 0;
    for (const p of parts) {
      const i = l.indexOf(p, at);
      if (i < 0) return false;
      at = i + p.length;
    }
    return true;
  });
}

/** races/ file a page file stands for (my-race/X → races/X), if the page puts it there. */
function shipped(path: string): string | undefined {
  return path.startsWith('my-race/') ? join(ROOT, 'races', path.slice('my-race/'.length)) : undefined;
}

const md = readFileSync(DOC, 'utf8');
let dir = '';

beforeAll(() => {
  // A fresh build: what the page's commands run is the tree as it is now.
  const build = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  expect(build.status, build.stdout + build.stderr).toBe(0);
  dir = mkdtempSync(join(tmpdir(), 'iommu-sim-tutorial-'));
  for (const f of ['bin', 'dist', 'node_modules', 'package.json']) symlinkSync(join(ROOT, f), join(dir, f));
  for (const b of fileBlocks(md)) {
    mkdirSync(dirname(join(dir, b.path)), { recursive: true });
    writeFileSync(join(dir, b.path), b.text);
  }
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('docs/patch-a-race.md', () => {
  it('parses: its files and its commands with what they print', () => {
    expect(fileBlocks(md).map((b) => b.path)).toEqual(expect.arrayContaining(['my-race/iommu-sva-06e14c36e20b-unbind-late-iommu-mm.yaml', 'my-race/patches/sva-unbind-late-iommu-mm.cjs', 'my-race/patches/sva-unbind-late-iommu-mm.ts']));
    const cmds = commands(md);
    expect(cmds.length).toBeGreaterThanOrEqual(8);
    expect(cmds.filter((c) => c.status === 1).length).toBeGreaterThanOrEqual(2);
    // The matcher is not blind: a quoted line must be there, in order, with `…` only where the page puts it.
    expect(quotedIn('run: found in … of 2 schedules', ['run: found in 1 of 2 schedules'])).toBe(true);
    expect(quotedIn('run: found in … of 3 schedules', ['run: found in 1 of 2 schedules'])).toBe(false);
    expect(quotedIn('run: found in', ['run: found in 1 of 2 schedules'])).toBe(false);
    expect(quotedIn('BUG: KASAN', ['  BUG: KASAN  '])).toBe(true);
  });

  it('shows the shipped race and its patches byte for byte', () => {
    const ships = fileBlocks(md).filter((b) => shipped(b.path) && existsSync(shipped(b.path) as string));
    expect(ships.length).toBe(3);
    for (const b of ships) expect(b.text, `${b.path} in the page differs from ${shipped(b.path)}`).toBe(readFileSync(shipped(b.path) as string, 'utf8'));
  });

  it('runs every command as the page shows it', () => {
    for (const c of commands(md)) {
      const r = spawnSync('sh', ['-c', c.cmd], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
      const printed = `${r.stdout}${r.stderr}`.split('\n');
      expect(r.status, `$ ${c.cmd}\n${r.stdout}${r.stderr}`).toBe(c.status);
      for (const q of c.output) expect(quotedIn(q, printed), `$ ${c.cmd}\nthe page quotes "${q}"; it printed:\n${printed.join('\n')}`).toBe(true);
    }
  }, 300_000);
});
