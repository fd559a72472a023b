// The sva preset's process actors: one a process, following a scenario's script (scripted-process), the
// shared-work-queue lifecycle (swq-process, for `wq: shared` or several devices open), random operations
// (random-process) or a built-in script (process) — each making its syscalls through src/workloads/syscalls.ts.
import { processMachine } from '../actors/process.js';
import { parseRates, type RandomInput, randomProcessMachine } from '../actors/random-process.js';
import { type ScriptStep, scriptedProcessMachine } from '../actors/scripted-process.js';
import { type SwqInput, swqProcessMachine } from '../actors/swq-process.js';
import { InputError } from '../runtime/errors.js';
import type { ActorSpec, Wire } from '../runtime/model.js';
import type { SvaParams } from './presets/sva.js';

/** The ActorSpecs of the processes (`proc/N`), given their scripts (undefined: none) and the actor ids. */
export function processActors(
  p: SvaParams,
  scripted: readonly (readonly ScriptStep[])[] | undefined,
  actors: { device(d: number): number; process(i: number): number },
): ActorSpec[] {
  const specs: ActorSpec[] = [];
  for (let i = 0; i < p.processes && scripted; i++) {
    const tell: [number, number][] = [];
    scripted.forEach((steps, j) => {
      for (const st of steps) if (st.op === 'after' && st.proc === i) tell.push([st.step, actors.process(j)]);
    });
    specs.push({
      name: `proc/${i}`,
      logic: scriptedProcessMachine,
      input: { idx: i, self: actors.process(i), devActor: actors.device(i % p.devices), flags: p.flags, steps: scripted[i] ?? [], tell } as unknown as Wire,
    });
  }
  const swq = p.wq === 'shared' || p.opens > 1;
  if (swq && (scripted || p.script !== 'life')) throw new InputError(`sva: wq: shared and opens > 1 run the swq-process lifecycle: script must be life, with no steps`);
  for (let i = 0; i < p.processes && swq; i++) {
    const devs = Array.from({ length: Math.min(p.opens, p.devices) }, (_, j): [number, number] => [(i + j) % p.devices, actors.device((i + j) % p.devices)]);
    const input: SwqInput = { idx: i, self: actors.process(i), devs, wq: p.wq, dmas: p.dmas, pages: p.pages, flags: p.flags };
    specs.push({ name: `proc/${i}`, logic: swqProcessMachine, input: input as unknown as Wire });
  }
  for (let i = 0; i < p.processes && !scripted && !swq && p.script === 'random'; i++) {
    const input: RandomInput = { idx: i, self: actors.process(i), devActor: actors.device(i % p.devices), pages: p.pages, flags: p.flags, ops: p.rounds, dmas: p.dmas, rates: parseRates(p.rates), seed: p.seed };
    specs.push({ name: `proc/${i}`, logic: randomProcessMachine, input: input as unknown as Wire });
  }
  for (let i = 0; i < p.processes && !scripted && !swq && p.script !== 'random'; i++) {
    specs.push({
      name: `proc/${i}`,
      logic: processMachine,
      input: {
        idx: i,
        self: actors.process(i),
        devActor: actors.device(i % p.devices),
        next: p.sequential && i + 1 < p.processes ? actors.process(i + 1) : -1,
        script: p.script,
        dmas: p.dmas,
        pages: p.pages,
        flags: p.flags,
        rounds: p.rounds,
        seed: p.seed,
      },
    });
  }

  return specs;
}
