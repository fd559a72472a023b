// Where compiled worker entry points live. Workers always load the compiled JavaScript in dist/, whether the
// main thread runs from dist/ (the CLI) or from TypeScript sources (vitest): one code path for both.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'workers'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`iommu-sim: cannot find the package root from ${import.meta.url}`);
    dir = up;
  }
}

export const PACKAGE_ROOT = packageRoot();

/** URL of a compiled worker entry point, e.g. workerUrl('actor-host') → dist/workers/actor-host.js. */
export function workerUrl(name: string): URL {
  const file = join(PACKAGE_ROOT, 'dist', 'workers', `${name}.js`);
  if (!existsSync(file)) {
    throw new Error(`iommu-sim: worker ${file} is missing; run \`npm run build\` first`);
  }
  return pathToFileURL(file);
}
