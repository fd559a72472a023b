// A progress bar on stderr for runs longer than a couple of seconds, with the rate and the time left; silent
// when stderr is not a terminal or when the output is JSON (so that pipes and scripts see only the result).
// A count with a known total is a bar of it; a command with a time budget (explore --time, stress --duration)
// is a bar of its clock, elapsed of budget, with the count beside it; a count of unknown total has no bar.
import cliProgress from 'cli-progress';

export interface Progress {
  /** `total` 0: not known. `extra`: the caller's own counters, after the bar's. */
  update(done: number, total: number, extra?: string): void;
  /** Print a line on stdout above the bar (which is drawn again under it). */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Draw nothing for this long: a command that ends sooner leaves no bar behind (default 2 s). */
  readonly delayMs?: number;
  /** The command's time budget (ms): the bar is then its clock, and the time left is the budget's. */
  readonly budgetMs?: number;
  /** What the count counts, after its rate (`12/s` → `12 runs/s`); default none. */
  readonly unit?: string;
  /**
   * The total is a cap the command may stop short of (run and explore stop at the first deciding schedule, shrink
   * when nothing shorter fails): the time left is then at most the one shown.
   */
  readonly cap?: boolean;
}

export function progress(label: string, enabled: boolean, o: ProgressOptions = {}): Progress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, log: (line) => console.log(line), stop() {} };
  const delayMs = o.delayMs ?? 2_000;
  const started = performance.now();
  // A MultiBar of one: its log() prints above the bar, which SingleBar (restoring the cursor it saved at its
  // start when it stops) would overwrite.
  let bars: cliProgress.MultiBar | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let shown: { done: number; total: number; extra: string } = { done: 0, total: 0, extra: '' };
  const draw = (): void => {
    const elapsed = performance.now() - started;
    const line = describe(shown.done, shown.total, shown.extra, elapsed, o);
    const value = o.budgetMs !== undefined ? Math.min(elapsed, o.budgetMs) : shown.done;
    const total = o.budgetMs ?? Math.max(shown.total, shown.done, 1);
    if (!bars || !bar) {
      const hasBar = o.budgetMs !== undefined || shown.total > 0;
      const format = hasBar ? `${label} [{bar}] {line}` : `${label} {line}`;
      bars = new cliProgress.MultiBar({ format, stream: process.stderr, hideCursor: true, clearOnComplete: true, barsize: 24 }, cliProgress.Presets.shades_classic);
      bar = bars.create(total, value, { line });
      return;
    }
    bar.setTotal(total);
    bar.update(value, { line });
  };
  return {
    update(done, total, extra = '') {
      shown = { done, total, extra };
      if (!bars && performance.now() - started < delayMs) return;
      draw();
    },
    log(line) {
      // On the bar's terminal: above the bar, at once. Elsewhere (stdout piped): stdout, as without a bar.
      if (!bars || !process.stdout.isTTY) {
        console.log(line);
        return;
      }
      bars.log(`${line}\n`);
      bars.update();
    },
    stop() {
      bars?.update();
      bars?.stop();
    },
  };
}

/** The bar's text: the count, its rate and the time left (of the budget, or at this rate to the total). */
export function describe(done: number, total: number, extra: string, elapsedMs: number, o: ProgressOptions): string {
  const secs = elapsedMs / 1000;
  const rate = secs > 0 ? done / secs : 0;
  const unit = o.unit ? ` ${o.unit}` : '';
  const parts: string[] = [];
  if (o.budgetMs !== undefined) {
    parts.push(`${clock(Math.min(elapsedMs, o.budgetMs))}/${clock(o.budgetMs)}, ${clock(Math.max(0, o.budgetMs - elapsedMs))} left`);
    parts.push(`${done}${total > 0 ? `/${total}` : ''}${unit}, ${rateOf(rate)}${unit}/s`);
  } else if (total > 0) {
    const left = rate > 0 ? `${o.cap ? '≤ ' : ''}${clock(((total - done) / rate) * 1000)} left` : 'time left unknown';
    parts.push(`${Math.floor((done / total) * 100)}% ${done}/${total}${unit}, ${rateOf(rate)}/s, ${left}`);
  } else {
    parts.push(`${done}${unit}, ${rateOf(rate)}/s, ${clock(elapsedMs)}`);
  }
  if (extra) parts.push(extra);
  return parts.join(' · ');
}

/** 45s, 2m05s, 1h02m: the precision a progress bar needs. */
export function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** 950, 12.3k, 4.5M: a rate to three figures. */
export function rateOf(n: number): string {
  if (n < 1_000) return n < 10 ? n.toFixed(1) : String(Math.round(n));
  if (n < 1_000_000) return `${(n / 1_000).toFixed(n < 10_000 ? 2 : 1)}k`;
  return `${(n / 1_000_000).toFixed(n < 10_000_000 ? 2 : 1)}M`;
}
