// A progress bar on stderr for runs longer than a couple of seconds; silent when stderr is not a terminal or
// when the output is JSON (so that pipes and scripts see only the result).
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number, extra?: string): void;
  stop(): void;
}

export function progress(label: string, enabled: boolean, delayMs = 2_000): Progress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const started = Date.now();
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total, extra = '') {
      if (!bar) {
        if (Date.now() - started < delayMs) return;
        // An unknown total (0) shows a running count, not a bar that would always look full.
        const format = total > 0 ? `${label} [{bar}] {value}/{total} {extra}` : `${label} {value} ({duration}s) {extra}`;
        bar = new cliProgress.SingleBar({ format, stream: process.stderr, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic);
        bar.start(Math.max(total, done), done, { extra });
      }
      bar.setTotal(Math.max(total, done));
      bar.update(done, { extra });
    },
    stop() {
      bar?.stop();
    },
  };
}
