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

/** `key=value` (repeatable): numbers and true/false are parsed, anything else stays a string. */
export function setArg(raw: string, prev: Record<string, string | number | boolean> = {}): Record<string, string | number | boolean> {
  const i = raw.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`'${raw}' is not key=value.`);
  const key = raw.slice(0, i);
  const text = raw.slice(i + 1);
  const value = text === 'true' ? true : text === 'false' ? false : /^-?\d+$/.test(text) ? Number(text) : text;
  return { ...prev, [key]: value };
}
