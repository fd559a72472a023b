// What an exploration covered, gathered from every execution: the (actor kind, state, event) triples the
// actors were driven through, the distinct lock chains lockdep validated, and the PASID lifecycle transitions
// the tasks went through (allocated, bound, released by the MMU notifier, unbound, quarantined, reclaimed,
// freed). Printed at the end of an exploration and in its JSON, so a user can tell a clean result from one
// that never reached the interesting states.
import { Kernel } from '../kernel/kernel.js';
import type { Workload } from '../runtime/model.js';
import type { RunResult } from '../runtime/result.js';

/** Task step labels that mark a PASID lifecycle transition (src/core/sva.ts, pasid.ts, ida.ts, ioasid.ts). */
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

  /** One execution: its trace, and the kernel's lockdep (carried across the executions of a chunk). */
  add(r: RunResult, w: Workload): void {
    const t = r.trace;
    const actors = w.actors.length;
    for (let i = 0; i < t.length; i++) {
      const rec = t.record(i);
      if (rec.actor >= 0 && rec.actor < actors) {
        this.triples.add(`${kindOf(t.actorName(rec.actor))} | ${t.eventName(rec.outcome)} | ${t.eventName(rec.event)}`);
      } else if (rec.sender === -4) {
        const label = t.eventName(rec.event);
        for (const [re, name] of PASID_STEPS) if (re.test(label)) this.pasid.set(name, (this.pasid.get(name) ?? 0) + 1);
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

/** `dev/0000:01:00.0` → `dev`, `proc/3` → `proc`, `dmar1` → `dmar`: triples are per kind of actor. */
function kindOf(name: string): string {
  return name.replace(/\/.*$/, '').replace(/\d+$/, '');
}
