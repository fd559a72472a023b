// What an exploration covered, gathered from every execution: the (actor kind, state, event) triples the
// actors were driven through (a state is the one the event left the actor in: for the IOMMU units, devices and
// mms, their lifecycle — src/actors/iommu-unit.ts, pci-device.ts, mm-context.ts), the distinct lock chains lockdep validated, and the PASID lifecycle transitions
// the tasks went through (allocated, bound, released by the MMU notifier, unbound, quarantined, reclaimed,
// freed). Printed at the end of an exploration and in its JSON, so a user can tell a clean result from one
// that never reached the interesting states.
import { Kernel } from '../kernel/kernel.js';
import { TASK, type Workload } from '../runtime/model.js';
import type { RunResult } from '../runtime/result.js';
import { REC, REC_INTS } from '../runtime/trace.js';

/** Task step labels that mark a PASID lifecycle transition (src/core/iommu-sva.ts, pasid.ts, ida.ts, ioasid.ts). */
const PASID_STEPS: readonly (readonly [RegExp, string])[] = [
  [/^iommu_sva_pasid_get$/, 'allocated'],
  [/^iommu_sva: bound$/, 'bound'],
  [/^iommu_sva: released$/, 'released (mm exit)'],
  [/^iommu_sva: unbound$/, 'unbound'],
  [/^iommu_sva: quarantine PASID$/, 'quarantined'],
  [/^iommu_sva_pasid_reclaim$/, 'reclaim scan'],
  [/^ida_free\(.*pasid/, 'freed'],
  [/^ioasid_alloc/, 'ioasid allocated'],
  [/^ioasid_free/, 'ioasid freed'],
];

export interface CoverageSummary {
  readonly triples: readonly string[];
  readonly lockChains: readonly number[];
  readonly pasid: Readonly<Record<string, number>>;
}

export class Coverage {
  private readonly triples = new Set<string>();
  private readonly chains = new Set<number>();
  private readonly pasid = new Map<string, number>();
  // Every execution of an exploration passes here: the strings and regular expressions run once per distinct
  // (kind, state, event) and per distinct step label, not once per step.
  /** event hash → state hash → kinds of actor seen. */
  private readonly seen = new Map<number, Map<number, Set<string>>>();
  /** step label hash → the PASID transition it marks, or null. */
  private readonly marks = new Map<number, string | null>();
  private kindsOf: { readonly w: Workload; readonly kinds: readonly string[] } | undefined;

  /** One execution: its trace, and the kernel's lockdep (carried across the executions of a chunk). */
  add(r: RunResult, w: Workload): void {
    const t = r.trace;
    const rec = t.records;
    const actors = w.actors.length;
    if (this.kindsOf?.w !== w) this.kindsOf = { w, kinds: w.actors.map((a) => kindOf(a.name)) };
    const kinds = this.kindsOf.kinds;
    for (let o = 0; o < rec.length; o += REC_INTS) {
      const actor = rec[o + REC.actor] as number;
      const event = rec[o + REC.event] as number;
      if (actor >= 0 && actor < actors) {
        const outcome = rec[o + REC.outcome] as number;
        const kind = kinds[actor] as string;
        let byState = this.seen.get(event);
        if (!byState) {
          byState = new Map();
          this.seen.set(event, byState);
        }
        let ks = byState.get(outcome);
        if (!ks) {
          ks = new Set();
          byState.set(outcome, ks);
        }
        if (!ks.has(kind)) {
          ks.add(kind);
          this.triples.add(`${kind} | ${t.eventName(outcome)} | ${t.eventName(event)}`);
        }
      } else if (rec[o + REC.sender] === TASK) {
        let mark = this.marks.get(event);
        if (mark === undefined) {
          const label = t.eventName(event);
          mark = PASID_STEPS.find(([re]) => re.test(label))?.[1] ?? null;
          this.marks.set(event, mark);
        }
        if (mark !== null) this.pasid.set(mark, (this.pasid.get(mark) ?? 0) + 1);
      }
    }
    if (w.monitor instanceof Kernel) for (const c of w.monitor.lockdep.chains()) this.chains.add(c);
  }

  merge(s: CoverageSummary): void {
    for (const x of s.triples) this.triples.add(x);
    for (const c of s.lockChains) this.chains.add(c);
    for (const [k, v] of Object.entries(s.pasid)) this.pasid.set(k, (this.pasid.get(k) ?? 0) + v);
  }

  summary(): CoverageSummary {
    return { triples: [...this.triples].sort(), lockChains: [...this.chains], pasid: Object.fromEntries([...this.pasid].sort()) };
  }
}

/** The distinct states each kind of actor was seen in, from the triples: `{ dev: ['bound', 'dma', …], … }`. */
export function statesByKind(triples: readonly string[]): Record<string, string[]> {
  const m = new Map<string, Set<string>>();
  for (const t of triples) {
    const [kind, state] = t.split(' | ') as [string, string];
    let s = m.get(kind);
    if (!s) {
      s = new Set();
      m.set(kind, s);
    }
    s.add(state);
  }
  return Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, s]) => [k, [...s].sort()]));
}

/** `dev/0000:01:00.0` → `dev`, `proc/3` → `proc`, `dmar1` → `dmar`: triples are per kind of actor. */
function kindOf(name: string): string {
  return name.replace(/\/.*$/, '').replace(/\d+$/, '');
}
