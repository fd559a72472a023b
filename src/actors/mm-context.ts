// An MM context as an actor whose states are the life of one mm_struct, as the tasks working on it report it
// (`mm.state`: the mm's state word and mm->pasid; `mm.exit`: its task entered exit_mm): `unused` before exec,
// `live` (mm_users > 0), `bound` (live, with a PASID: iommu_sva_bind_device gave mm->pasid), `exiting` (its task
// is in exit_mm: the last mmput runs exit_mmap — later, if someone else still holds mm_users), `dead` (mm_users
// 0: page tables gone, mm_count still held — by a bond's MMU notifier, a page-request handler) and `freed`
// (mm_count 0: __mmdrop ran). A report that goes back — a dead mm live again, an exit of an mm that has none to
// do — is refused: a `lifecycle` finding. An exec may reuse a freed mm_struct (mm_init takes one).
import type { AnyStateMachine } from 'xstate';
import { MM_DEAD, MM_EXITING, MM_FREED, MM_LIVE } from '../kernel/mm/mm.js';
import type { ModelEvent } from '../runtime/model.js';
import { type LifecycleState, lifecycleMachine, type Move, type Refusals } from './lifecycle.js';

const code = (e: ModelEvent): number => (e.type === 'mm.state' ? (e.code as number) : -1);
const pasid = (e: ModelEvent): number => (e.type === 'mm.state' ? (e.pasid as number) : 0);

/** A report of a live mm: `live` or `bound` by its PASID. */
const LIVE: readonly Move[] = [
  { to: 'bound', when: (e) => code(e) === MM_LIVE && pasid(e) !== 0 },
  { to: 'live', when: (e) => code(e) === MM_LIVE },
];
const TORN_DOWN: readonly Move[] = [
  { to: 'exiting', when: (e) => code(e) === MM_EXITING },
  { to: 'dead', when: (e) => code(e) === MM_DEAD },
  { to: 'freed', when: (e) => code(e) === MM_FREED },
];

const STATES: Readonly<Record<string, LifecycleState>> = {
  // exit_mm's report may overtake exec's: they come from two tasks (sys_exec, do_exit), and messages of different
  // senders reach the actor in any order — exiting then takes exec's late `live`.
  unused: { on: { 'mm.state': LIVE, 'mm.exit': { to: 'exiting' } } },
  live: { on: { 'mm.state': [...LIVE, ...TORN_DOWN], 'mm.exit': { to: 'exiting' } } },
  bound: { on: { 'mm.state': [...LIVE, ...TORN_DOWN], 'mm.exit': { to: 'exiting' } } },
  // Still live (someone else holds mm_users: exit_mmap waits for their mmput), or exit_mmap running.
  exiting: { on: { 'mm.state': [{ when: (e) => code(e) === MM_LIVE || code(e) === MM_EXITING }, ...TORN_DOWN.slice(1)] } },
  dead: { on: { 'mm.state': [{ when: (e) => code(e) === MM_DEAD }, { to: 'freed', when: (e) => code(e) === MM_FREED }] } },
  freed: { on: { 'mm.state': [{ when: (e) => code(e) === MM_FREED }, ...LIVE] } },
};

export function mmContextMachine(actor: string, refusals: Refusals): AnyStateMachine {
  return lifecycleMachine({ id: 'mm', actor, initial: 'unused', states: STATES, refusals });
}
