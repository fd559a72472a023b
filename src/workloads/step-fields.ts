// The building blocks every step vocabulary declares its fields with (steps.ts and the actor kinds declared
// beside it: iommufd-steps.ts, hotplug-steps.ts, kthread-steps.ts), so that a refused value reads the same in
// every kind ("must be an integer in 0..1023"). Types only from steps.ts: it imports the kinds' files.
import { z } from 'zod';
import type { NameField, StepKind } from './steps.js';

export const MUST = 'must be ';

export function integer(min: number, max: number, text: string) {
  const error = `${MUST}an integer in ${min}..${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error }).describe(text);
}

export function flag(text: string) {
  return z.boolean({ error: `${MUST}true or false` }).describe(text);
}

export function named(text: string) {
  const error = `${MUST}a name (letters, digits, _)`;
  return z.string({ error }).regex(/^[A-Za-z_][\w-]*$/, { error }).describe(text);
}

/** Every kind's fields extend this one object (the scenario's forms too). */
export const STEP_BASE = {};

/** How a step kind may be written besides its object form. */
export interface Form {
  readonly bare?: boolean;
  readonly short?: string;
  readonly names?: Readonly<Record<string, NameField>>;
  readonly example?: string;
}

export function kind(op: string, text: string, fields: Record<string, z.ZodType> = {}, form: Form = {}): StepKind {
  return { op, text, fields: { ...STEP_BASE, ...fields }, ...form };
}
