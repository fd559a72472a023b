// The "replay with: …" line printed where a command writes a schedule. It is advice a user acts on, so it is
// checked first: the schedule is replayed, and the line says what `iommu-sim replay` will exit with — or, if
// the replay does not reproduce the run, says so and why instead of advising it.
import { describe } from '../runtime/errors.js';
import { commandLine } from './failure.js';
import { replay } from '../runtime/run.js';
import type { Schedule } from '../runtime/schedule.js';

/** `replay with: iommu-sim replay FILE (exit 1: …)`, or why FILE does not replay. */
export function replayAdvice(file: string, schedule: Schedule): string {
  const cmd = commandLine(['replay', file]);
  let why: string | undefined;
  try {
    const r = replay(schedule);
    why = r.mismatch;
  } catch (err) {
    why = describe(err);
  }
  if (why !== undefined) return `WARNING: this schedule does not replay exactly (${why}); please report it`;
  const o = schedule.meta.outcome;
  const failed = o.kinds.length > 0 || !o.checkOk;
  return `replay with: ${cmd} (exit ${failed ? `1: the same ${o.kinds[0] ?? 'failed check'}` : '0: the same passing run'})`;
}
