// The report's charts: Vega-Lite specifications made from a run's JSON, rendered to SVG by Vega in Node (its
// headless `toSVG`, no browser and no native canvas). Each chart is a pure function of the data, so the same
// run always gives the same SVG.
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ChartRef } from './markdown.js';
import type { BenchRunData, DetailRow, MatrixReport } from './types.js';

export interface Chart extends ChartRef {
  readonly spec: TopLevelSpec;
}

const WIDTH = 560;
const FONT = 'Helvetica, Arial, sans-serif';
// SI-prefixed numbers on quantitative axes (12k, 1.2M) whatever the locale; room for long case names.
const CONFIG = {
  font: FONT,
  axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 420 },
  axisQuantitative: { format: '~s' },
  legend: { labelFontSize: 11, labelLimit: 300 },
  title: { fontSize: 14 },
} as const;

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function rows(b: BenchRunData, suite: string, table: string): readonly DetailRow[] {
  return b.details[suite]?.[table] ?? [];
}

/** The runtime suite's figures beside its physical limits, log scale. */
function limitsChart(b: BenchRunData): Chart | null {
  const idx = b.index.find((i) => i.suite === 'runtime');
  if (!idx) return null;
  const limits = new Set(['raw_ring_1', 'raw_ring_64', 'postmessage', 'roundtrip_postmessage', 'xstate_send']);
  const values = idx.cases.flatMap((n) => {
    const r = b.results.find((x) => x.name === n);
    return r ? [{ case: n, perSecond: r.hz, kind: limits.has(n) ? 'physical limit' : 'iommu-sim runtime' }] : [];
  });
  return {
    file: 'bench-limits.svg',
    title: 'Runtime figures beside the physical limits (per second, log scale)',
    section: 'limits',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Runtime against the physical limits (per second)',
      width: WIDTH,
      config: CONFIG,
      data: { values },
      // Dots, not bars: a bar on a log scale has no zero to start from.
      mark: { type: 'point', filled: true, size: 90 },
      encoding: {
        y: { field: 'case', type: 'nominal', sort: null, title: null },
        x: { field: 'perSecond', type: 'quantitative', scale: { type: 'log' }, title: 'per second (log)' },
        shape: { field: 'kind', type: 'nominal', title: null, legend: { orient: 'bottom' } },
        color: { field: 'kind', type: 'nominal', title: null, legend: { orient: 'bottom' } },
      },
    },
  };
}

function workersChart(b: BenchRunData): Chart | null {
  const wk = rows(b, 'scaling', 'workers').filter((r) => typeof r.eventsPerSec === 'number');
  if (wk.length === 0) return null;
  const values = wk.map((r) => ({ placement: r.placement, preset: r.preset ?? 'sva', value: r.eventsPerSec }));
  return {
    file: 'bench-scaling-workers.svg',
    title: 'stress presets: events per second against workers and placement',
    section: 'scaling',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'stress presets: events/s against workers',
      width: WIDTH,
      height: 220,
      config: CONFIG,
      data: { values },
      mark: 'bar',
      encoding: {
        x: { field: 'placement', type: 'nominal', sort: null, title: null, axis: { labelAngle: 0 } },
        xOffset: { field: 'preset', type: 'nominal' },
        y: { field: 'value', type: 'quantitative', title: 'events per second', scale: { type: 'log' } },
        color: { field: 'preset', type: 'nominal', title: null, legend: { orient: 'bottom' } },
      },
    },
  };
}

function topologyChart(b: BenchRunData): Chart | null {
  const t = rows(b, 'scaling', 'topology');
  if (t.length === 0) return null;
  const values = t.flatMap((r) => [
    { actors: r.actors, measure: 'events/s', value: r.eventsPerSec, label: `${r.devices} dev / ${r.processes} proc` },
    { actors: r.actors, measure: 'steps/s', value: r.stepsPerSec, label: `${r.devices} dev / ${r.processes} proc` },
  ]);
  return {
    file: 'bench-scaling-topology.svg',
    title: 'sva throughput against topology size (devices 8 → 512, processes 32 → 2 048)',
    section: 'scaling',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'sva: throughput against topology size (2 workers)',
      width: WIDTH,
      height: 260,
      config: CONFIG,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'actors', type: 'quantitative', scale: { type: 'log' }, title: 'actors (log)' },
        y: { field: 'value', type: 'quantitative', scale: { type: 'log' }, title: 'per second (log)' },
        color: { field: 'measure', type: 'nominal', title: null, legend: { orient: 'bottom' } },
      },
    },
  };
}

function memoryChart(b: BenchRunData): Chart | null {
  const t = rows(b, 'scaling', 'topology').map((r) => ({ actors: r.actors, kib: r.kibPerActor, run: 'sva topology' }));
  const big = rows(b, 'scaling', 'bigRun').map((r) => ({ actors: r.actors, kib: r.kibPerActor, run: `${r.workload}` }));
  const values = [...t, ...big];
  if (values.length === 0) return null;
  return {
    file: 'bench-scaling-memory.svg',
    title: 'Resident memory per actor against actors',
    section: 'scaling',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Resident memory per actor (peak RSS growth / actors)',
      width: WIDTH,
      height: 240,
      config: CONFIG,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'actors', type: 'quantitative', scale: { type: 'log' }, title: 'actors (log)' },
        y: { field: 'kib', type: 'quantitative', title: 'KiB per actor' },
        color: { field: 'run', type: 'nominal', title: null, legend: { orient: 'bottom' } },
      },
    },
  };
}

function explorationSizeChart(b: BenchRunData): Chart | null {
  const e = rows(b, 'scaling', 'exploration');
  if (e.length === 0) return null;
  return {
    file: 'bench-exploration-size.svg',
    title: 'Deterministic schedules per second against scenario size',
    section: 'scaling',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Deterministic exploration: schedules/s against steps per schedule',
      width: WIDTH,
      height: 240,
      config: CONFIG,
      data: { values: e.map((r) => ({ steps: r.stepsPerSchedule, rate: r.schedulesPerSec, processes: `${r.processes} proc` })) },
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'steps', type: 'quantitative', scale: { type: 'log' }, title: 'steps per schedule (log)' },
            y: { field: 'rate', type: 'quantitative', scale: { type: 'log' }, title: 'schedules/s (log)' },
          },
        },
        {
          mark: { type: 'text', dy: -10, fontSize: 10 },
          encoding: { x: { field: 'steps', type: 'quantitative' }, y: { field: 'rate', type: 'quantitative' }, text: { field: 'processes' } },
        },
      ],
    },
  };
}

function exploreRacesChart(b: BenchRunData): Chart | null {
  const e = rows(b, 'explore', 'explore').filter((r) => r.strategy === 'pct' && typeof r.schedulesPerSec === 'number');
  if (e.length === 0) return null;
  return {
    file: 'bench-explore-races.svg',
    title: 'Exploration speed per race (PCT): one thread against a 2-worker pool',
    section: 'explore',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Schedules per second, PCT, every race as written',
      width: WIDTH,
      config: CONFIG,
      data: { values: e.map((r) => ({ race: r.race, mode: r.mode, rate: r.schedulesPerSec })) },
      mark: 'bar',
      encoding: {
        y: { field: 'race', type: 'nominal', title: null },
        yOffset: { field: 'mode', type: 'nominal' },
        x: { field: 'rate', type: 'quantitative', title: 'schedules/s' },
        color: { field: 'mode', type: 'nominal', title: null, legend: { orient: 'bottom' } },
      },
    },
  };
}

function matrixChart(m: MatrixReport): Chart | null {
  const values = m.policies.flatMap((p) =>
    p.values.flatMap((v) => (v.total ? [{ row: `${p.policy}: ${v.value}`, policy: p.policy, perThousand: v.total.perThousand }] : [])),
  );
  if (values.length === 0) return null;
  return {
    file: 'bench-matrix.svg',
    title: 'Failing schedules per 1 000, per policy value',
    section: 'matrix',
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Policy matrix: failing schedules per 1 000',
      width: WIDTH,
      config: CONFIG,
      data: { values },
      mark: 'bar',
      encoding: {
        y: { field: 'row', type: 'nominal', sort: null, title: null },
        x: { field: 'perThousand', type: 'quantitative', title: 'failing schedules per 1 000' },
        color: { field: 'policy', type: 'nominal', legend: null },
      },
    },
  };
}

/** Every chart the data has figures for. */
export function reportCharts(b: BenchRunData, m: MatrixReport | null): Chart[] {
  const all = [limitsChart(b), m ? matrixChart(m) : null, exploreRacesChart(b), workersChart(b), topologyChart(b), memoryChart(b), explorationSizeChart(b)];
  return all.flatMap((c) => (c ? [c] : []));
}
