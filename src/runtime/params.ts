// Parsing a workload's parameters (name → Wire, as they travel to every thread): each bad value is an
// InputError naming the workload, the parameter and what it must be — the CLI turns it into exit 2.
import { InputError } from './errors.js';
import type { Wire } from './model.js';

export function paramParsers(workload: string) {
  return {
    oneOf<T extends string>(name: string, v: Wire | undefined, values: readonly T[], d: T): T {
      if (v === undefined) return d;
      const found = values.find((x) => x === v);
      if (found === undefined) throw new InputError(`${workload}: ${name} must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
      return found;
    },
    int(name: string, v: Wire | undefined, d: number, min: number, max: number): number {
      if (v === undefined) return d;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
        throw new InputError(`${workload}: ${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
      }
      return v;
    },
    bool(name: string, v: Wire | undefined, d: boolean): boolean {
      if (v === undefined) return d;
      if (typeof v !== 'boolean') throw new InputError(`${workload}: ${name} must be true or false, got ${JSON.stringify(v)}`);
      return v;
    },
  };
}
