// Files a command writes (`--record`, `-o`, `--out`): checked before the work starts, so that a missing or
// read-only folder is a usage error and not a lost run; written after it through a temporary file renamed
// into place, so that a full disk or a failed write leaves neither a 0-byte nor a half-written file. A write
// that fails after the work is remembered, not thrown: the command still prints its report and verdict, then
// main() says what could not be written and exits 2 (takeWriteFailures).
import { accessSync, constants, existsSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputError } from '../runtime/errors.js';

export interface WriteFailure {
  readonly flag: string;
  readonly file: string;
  readonly reason: string;
}

const failures: WriteFailure[] = [];

/** Why a path could not be used; `folder`: the path is a folder looked up (ENOENT then says the folder is missing). */
function reason(err: unknown, folder = false): string {
  const e = err as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    // A write can meet ENOENT in a folder that exists (/proc refuses to create files): only a lookup says which.
    ENOENT: folder ? 'no such folder' : 'no such file or folder',
    ENOTDIR: 'a part of the path is not a folder',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EISDIR: 'is a folder',
  };
  return e?.code ? `${known[e.code] ?? e.message} (${e.code})` : String(err);
}

/** Refuse (exit 2, naming the flag) an output file that could not be written: its folder must exist and be writable. */
export function checkOutputFile(flag: string, file: string | undefined): void {
  if (file === undefined) return;
  if (file === '') throw new InputError(`${flag}: an empty file name`);
  const path = resolve(file);
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new InputError(`${flag} ${file}: is a folder, not a file`);
    try {
      accessSync(path, constants.W_OK);
    } catch (err) {
      throw new InputError(`${flag} ${file}: cannot be written: ${reason(err)}`);
    }
    // A regular file is replaced by a rename in its folder (writeOutput): the folder must take it.
    if (statSync(path).isFile()) checkFolder(flag, file, dirname(realpathSync(path)));
    return;
  }
  checkFolder(flag, file, dirname(path));
}

/** Refuse an output folder (`--out DIR`) that could not be made or written: it, or the folder it would be made in, must be writable. */
export function checkOutputDir(flag: string, dir: string | undefined): void {
  if (dir === undefined) return;
  if (dir === '') throw new InputError(`${flag}: an empty folder name`);
  let at = resolve(dir);
  // Folders that do not exist yet are made by the command (mkdir -p): the nearest one that exists decides.
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  checkFolder(flag, dir, at);
}

function checkFolder(flag: string, what: string, folder: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(folder).isDirectory();
  } catch (err) {
    throw new InputError(`${flag} ${what}: cannot be written: the folder ${folder}: ${reason(err, true)}`);
  }
  if (!isDir) throw new InputError(`${flag} ${what}: cannot be written: ${folder} is not a folder`);
  try {
    accessSync(folder, constants.W_OK);
  } catch (err) {
    throw new InputError(`${flag} ${what}: cannot be written: the folder ${folder}: ${reason(err)}`);
  }
}

/**
 * Write `data` to `file` for `flag`; false (and the failure remembered for takeWriteFailures) when it could not
 * be. A regular file is written beside and renamed into place; a device or a pipe (/dev/stdout) is written to.
 */
export function writeOutput(flag: string, file: string, data: string | Uint8Array): boolean {
  let path = resolve(file);
  let special = false;
  try {
    // Through a symbolic link to where it points: the link stays a link.
    if (existsSync(path)) path = realpathSync(path);
    special = existsSync(path) && !statSync(path).isFile();
  } catch {
    special = false;
  }
  const tmp = special ? path : `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, data);
    if (!special) renameSync(tmp, path);
    return true;
  } catch (err) {
    if (!special) rmSync(tmp, { force: true });
    failures.push({ flag, file, reason: reason(err) });
    return false;
  }
}

/** The writes that failed since the last call (main() reports them after the command's own output, and exits 2). */
export function takeWriteFailures(): WriteFailure[] {
  return failures.splice(0);
}
