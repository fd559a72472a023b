// `iommu-sim bench [suite...]` and `npm run bench -- [suite...]`: run suites, print a table or JSON.
import { pathToFileURL } from 'node:url';
import { InputError } from '../src/runtime/errors.js';
import { domainsSuite } from './domains.bench.js';
import { ioasidSuite } from './ioasid.bench.js';
import type { SuiteResult } from './measure.js';
import { kernelSuite } from './kernel.bench.js';
import { runtimeSuite } from './runtime.bench.js';
import { svaSuite } from './sva.bench.js';

type Suite = (opts: { quick: boolean; onCase?: (name: string) => void }) => Promise<SuiteResult>;

export const SUITES: Readonly<Record<string, Suite>> = { runtime: runtimeSuite, kernel: kernelSuite, sva: svaSuite, domains: domainsSuite, ioasid: ioasidSuite };

export class UnknownSuite extends InputError {
  override name = 'UnknownSuite';
}

export async function runBenchSuites(names: readonly string[], opts: { json: boolean; quick: boolean }): Promise<SuiteResult[]> {
  const chosen = names.length > 0 ? [...names] : Object.keys(SUITES);
  for (const n of chosen) {
    if (!SUITES[n]) throw new UnknownSuite(`unknown benchmark suite '${n}' (known: ${Object.keys(SUITES).join(', ')})`);
  }
  const out: SuiteResult[] = [];
  for (const n of chosen) {
    const suite = SUITES[n] as Suite;
    const r = await suite({ quick: opts.quick, onCase: (c) => process.stderr.write(`bench ${n}: ${c}\n`) });
    out.push(r);
    if (!opts.json) printSuite(r);
  }
  if (opts.json) {
    // One suite: its own {results, ratios}; several: merged, names prefixed by nothing (they are unique).
    const merged = {
      suites: out.map((s) => s.suite),
      node: process.version,
      results: out.flatMap((s) => s.results),
      ratios: Object.assign({}, ...out.map((s) => s.ratios)) as Record<string, number>,
    };
    process.stdout.write(`${JSON.stringify(merged, null, 2)}\n`);
  }
  return out;
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return n.toFixed(1);
}

function printSuite(s: SuiteResult): void {
  console.log(`\n${s.suite}`);
  console.table(
    s.results.map((r) => ({
      case: r.name,
      'per second': fmt(r.hz),
      'mean ns': r.meanNs.toFixed(0),
      'p99 ns': r.p99Ns.toFixed(0),
      samples: r.samples,
    })),
  );
  for (const [k, v] of Object.entries(s.ratios)) console.log(`  ${k.padEnd(36)} ${v.toFixed(2)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  runBenchSuites(names, { json, quick }).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = err instanceof UnknownSuite ? 2 : 1;
  });
}
