// Reading a schedule file for a command: whatever is wrong with it — not a schedule, damaged, written by another
// version, or naming a workload this build cannot make — is bad input (exit 2) naming the file, never a
// TypeError from deep inside a replay.
import { InputError } from '../runtime/errors.js';
import { Schedule } from '../runtime/schedule.js';
import { buildWorkload } from '../runtime/workloads.js';

export function loadSchedule(file: string): Schedule {
  let s: Schedule;
  try {
    s = Schedule.load(file);
  } catch (err) {
    throw refused(file, 'not a usable schedule', err);
  }
  const w = (s.meta as { workload?: { name?: unknown; params?: unknown } }).workload;
  if (typeof w?.name !== 'string' || typeof w.params !== 'object' || w.params === null) {
    throw new InputError(`${file}: schedule file is damaged: meta.workload names no workload`);
  }
  try {
    buildWorkload(s.meta.workload.name, s.meta.workload.params);
  } catch (err) {
    throw refused(file, 'meta.workload', err);
  }
  return s;
}

function refused(file: string, what: string, err: unknown): InputError {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof InputError && msg.includes(file)) return err;
  return new InputError(`${file}: ${what}: ${msg}`);
}
