// The data the benchmark report is made from, as the JSON files `iommu-sim bench --out` (bench.json) and
// `iommu-sim matrix --out` (matrix.json) hold them: the report generator reads only these, so a report can be
// regenerated from the files of a run (and tested on a small fixture).
import type { MachineInfo } from './machine.js';

export interface BenchRow {
  readonly name: string;
  /** Units per second. */
  readonly hz: number;
  readonly meanNs: number;
  readonly p99Ns: number;
  readonly samples: number;
}

export type DetailValue = string | number | boolean | null;
export type DetailRow = Readonly<Record<string, DetailValue>>;

export interface SuiteRunInfo {
  readonly suite: string;
  readonly seconds: number;
  readonly foreignCores: number | null;
  readonly error: string | null;
}

export interface BenchRunData {
  readonly suites: readonly string[];
  readonly node: string;
  readonly profile: string;
  readonly date: string;
  readonly machine: MachineInfo;
  readonly results: readonly BenchRow[];
  readonly ratios: Readonly<Record<string, number>>;
  readonly details: Readonly<Record<string, Readonly<Record<string, readonly DetailRow[]>>>>;
  readonly runs: readonly SuiteRunInfo[];
  /** Which cases and ratios each suite produced (results and ratios are merged above). */
  readonly index: readonly { readonly suite: string; readonly cases: readonly string[]; readonly ratios: readonly string[] }[];
}

/** Findings of one configuration over the schedules explored. */
export interface FindingRate {
  readonly schedules: number;
  /** Schedules that failed (a finding, or a failed check). */
  readonly failing: number;
  /** Failing schedules per 1 000. */
  readonly perThousand: number;
  /** Per 1 000 schedules, by the kind of the schedule's first finding (`check`: a failed check, no finding). */
  readonly byKind: Readonly<Record<string, number>>;
  /** The same as counts of schedules. */
  readonly counts: Readonly<Record<string, number>>;
  /** Wall time the exploration took (summed over configurations when pooled), seconds. */
  readonly seconds?: number;
}

export interface MatrixCell {
  /** The workload's name (race script or random workload). */
  readonly workload: string;
  readonly rate?: FindingRate;
  /** Why the configuration could not run (invalid for the workload, or the model threw). */
  readonly error?: string;
}

export interface MatrixValue {
  readonly value: string;
  readonly label: string;
  /** Over every workload of the row that ran. */
  readonly total: FindingRate | null;
  readonly cells: readonly MatrixCell[];
  /** From the matching benchmark, when there is one. */
  readonly throughput: { readonly case: string; readonly hz: number } | null;
  /** Further costs of the choice, each from the benchmark case measuring it (PolicyDef.costs), when measured. */
  readonly costs?: readonly { readonly unit: string; readonly case: string; readonly hz: number }[];
}

export interface MatrixPolicy {
  readonly policy: string;
  readonly seed: string;
  readonly model: string;
  readonly param: string;
  readonly unit: string | null;
  readonly values: readonly MatrixValue[];
  /** The throughput ratio the seed argues about (e.g. RCU vs mutex), when measured. */
  readonly ratio: { readonly name: string; readonly value: number } | null;
  /** The same ratio for each further cost (PolicyDef.costs), when measured. */
  readonly costRatios?: readonly { readonly unit: string; readonly name: string; readonly value: number }[];
  readonly workloads: readonly string[];
}

/** A race as written (the bug) against its `fix`. */
export interface FixPair {
  readonly workload: string;
  readonly seed: string | null;
  readonly bug: string;
  readonly fix: string;
  readonly expects: readonly string[];
  readonly bugRate: FindingRate | null;
  readonly fixRate: FindingRate | null;
  /** Schedules of the buggy variant showing an expected finding, of how many (the script's budget). */
  readonly bugShowing: number | null;
  readonly bugSchedules: number | null;
  /** Every schedule shows it: a deterministic hazard; some do: a race (null: expects no finding, or not run). */
  readonly hazard: 'race' | 'deterministic hazard' | null;
  readonly error: string | null;
  /** ok: each variant met its expectation (expect.ts) over the script's budget; or which did not, and why. */
  readonly verdict: string;
}

export interface MatrixReport {
  readonly date: string;
  readonly node: string;
  /** Schedules explored per configuration (at least, unless the configuration reached maxSteps first). */
  readonly runs: number;
  readonly maxSteps: number;
  readonly chunk: number;
  readonly workers: number;
  readonly seconds: number;
  readonly workloads: readonly { readonly name: string; readonly file: string; readonly model: string; readonly kind: 'race' | 'random' }[];
  readonly notes: readonly string[];
  readonly policies: readonly MatrixPolicy[];
  readonly fixPairs: readonly FixPair[];
  /** Where the throughput came from (a bench.json, or suites run for the matrix), or null when skipped. */
  readonly throughputFrom: string | null;
}
