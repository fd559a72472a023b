// The package's API (`import { defineScenario } from 'iommu-sim'`): write a race script in TypeScript, typed
// by the scenario schema, and run, explore or replay it from code as the CLI does.
export { defineScenario, FINDING_KINDS, MODELS } from './scenario/scenario.js';
export type { Expectation, FindingKindName, ModelName, Scenario, ScenarioInput } from './scenario/scenario.js';
export { loadScenarioFile, ScenarioError, scenarioParams, validateScenario } from './scenario/load.js';
export { classify, expectationFor, judge, Tallier, verdictOf } from './scenario/expect.js';
export type { Judged, Observed, ScheduleClass, Tally, Verdict } from './scenario/expect.js';
export { runJudged } from './scenario/judged.js';
export type { JudgedRun } from './scenario/judged.js';
export { exploreScenario } from './scenario/explore.js';
export type { ExploreOptions, ExploreOutcome } from './scenario/explore.js';
export { replay, run, Schedule } from './runtime/run.js';
export type { ReplayOutcome, RunOptions, RunOutcome } from './runtime/run.js';
export type { ExtensionContext, CoreStepName } from './workloads/extension.js';
export { hostSchema, raceRowSchema, racesJsonSchema } from './cli/races.js';
export type { RaceRow, RacesJson } from './cli/races.js';
