// An IOMMU unit as an actor whose states are its lifecycle: `off` until its driver enables the command queue
// (`cmdq_enabled`) and then the page request queue; then the command queue `idle` (running: consuming commands
// is the hot path, not a phase), `atc_wait` (stalled on a device-TLB invalidation until the device answers) or
// `cmd_timeout` (that invalidation
// outlived the hardware's time-out: VT-d's ITE, until qi_check_fault clears it; the SMMU's CMD_SYNC time-out —
// the queue stays stalled), each with `+prq_pending` while page requests (the SMMU: events) wait for the
// driver's thread (VT-d's PPR) or `+prq_overflow` once one found the queue full (VT-d's PRO: the hardware
// refuses requests until the thread clears it). The hardware (src/hw/unit.ts) handles every event a state accepts; what a state
// refuses — a translation request before the queues are on, an invalidation completion no command waits for, the
// command queue going on while it waits on one — is a `lifecycle` finding.
import type { AnyStateMachine } from 'xstate';
import { CMDQ_PHASES, type IommuHardware, PRQ_PHASES } from '../hw/unit.js';
import { handleAction, type LifecycleState, lifecycleMachine, type Move, type Refusals } from './lifecycle.js';

/** How long a device-TLB invalidation may take before the hardware reports a time-out (ms; the SMMU's 1 s). */
export const INVALIDATION_TIMEOUT_MS = 1000;

const HANDLE: Move = { handle: true };
/** What every state of an enabled unit takes. */
const ALWAYS_TAKEN = { 'ats.req': HANDLE, walk: HANDLE, pr: HANDLE, 'cmdq.doorbell': HANDLE } as const;

/** State names by IommuHardware.phase. */
const PHASE_NAMES: readonly string[] = CMDQ_PHASES.flatMap((c) => PRQ_PHASES.map((q) => (q === '' ? c : `${c}+${q}`)));

export function iommuUnitMachine(hw: IommuHardware, self: number, step: () => number, refusals: Refusals): AnyStateMachine {
  // The phase as of the last event the hardware took (or its time-out): the state the machine follows.
  let phase = PHASE_NAMES[0] as string;
  const settle = (): void => {
    phase = PHASE_NAMES[hw.phase] as string;
  };
  const states: Record<string, LifecycleState> = {
    off: { on: { 'cmdq.enable': { to: 'cmdq_enabled', handle: true } } },
    cmdq_enabled: { on: { 'prq.enable': { to: 'idle', handle: true } } },
  };
  PHASE_NAMES.forEach((here, at) => {
    const cmdq = CMDQ_PHASES[Math.floor(at / PRQ_PHASES.length)];
    states[here] = {
      on: {
        ...ALWAYS_TAKEN,
        ...(cmdq === 'idle' ? { 'cmdq.next': HANDLE } : {}),
        ...(cmdq === 'atc_wait' || cmdq === 'cmd_timeout' ? { 'atc.done': HANDLE } : {}),
      },
      ...(cmdq === 'atc_wait'
        ? {
            after: {
              ms: INVALIDATION_TIMEOUT_MS,
              run: () => {
                hw.invalidationTimeout();
                settle();
              },
            },
          }
        : {}),
    };
  });
  return lifecycleMachine({ id: 'iommu', actor: hw.actorName, initial: 'off', states, handle: handleAction(hw, self, step, settle), refusals, phases: { states: PHASE_NAMES, read: () => phase } });
}
