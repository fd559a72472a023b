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
