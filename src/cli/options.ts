// Argument parsers for the CLI: every bad value is a usage error (exit 2) naming the flag and the value.
import { InvalidArgumentError } from 'commander';

export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string): number => {
    if (!/^-?\d+$/.test(raw.trim())) throw new InvalidArgumentError(`'${raw}' is not an integer.`);
    const v = Number(raw);
    if (v < min || v > max) {
      throw new InvalidArgumentError(`${v} is out of range (${min}..${max === Number.MAX_SAFE_INTEGER ? '∞' : max}).`);
    }
    return v;
  };
}

/** How every flag that takes a duration says so in its --help. */
export const DURATION_FORMS = '500ms, 30s, 2m, or a number of seconds';

/** The longest duration any flag takes: a day. */
const MAX_DURATION_MS = 86_400_000;

/**
 * The one duration parser (`--time`, `--duration`, `--stress`): `500ms`, `30s`, `2m`, `1.5m`, or a bare number
 * meaning seconds; returns milliseconds. A zero duration is refused unless `allowZero` (where 0 means "none"):
 * an empty budget would run nothing and could only end in a SUCCESS that tested nothing.
 */
export function durationArg(opts: { allowZero?: boolean } = {}) {
  return (raw: string): number => {
    const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(raw.trim());
    if (!m) throw new InvalidArgumentError(`'${raw}' is not a duration (${DURATION_FORMS}).`);
    const v = Number(m[1]);
    const ms = Math.round(m[2] === 'ms' ? v : m[2] === 'm' ? v * 60_000 : v * 1000);
    if (ms === 0 && v !== 0) throw new InvalidArgumentError(`'${raw}' is less than a millisecond.`);
    if (ms === 0 && !opts.allowZero) throw new InvalidArgumentError(`'${raw}' is an empty budget: nothing would run (give more than 0).`);
    if (ms > MAX_DURATION_MS) throw new InvalidArgumentError(`'${raw}' is longer than a day (24h).`);
    return ms;
  };
}

/** `key=value` (repeatable): numbers and true/false are parsed, anything else stays a string. */
export function setArg(raw: string, prev: Record<string, string | number | boolean> = {}): Record<string, string | number | boolean> {
  const i = raw.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`'${raw}' is not key=value.`);
  const key = raw.slice(0, i);
  const text = raw.slice(i + 1);
  const value = text === 'true' ? true : text === 'false' ? false : /^-?\d+$/.test(text) ? Number(text) : text;
  return { ...prev, [key]: value };
}
