// Aligned terminal tables in the style of `npm start`'s (races.ts): no borders, two blanks between columns, a
// head line, long cells wrapped inside their column (cli-table3), numbers right-aligned, every line within the
// width a terminal shows (120 columns). Node's console.table, which these replace, quotes every string, adds an
// (index) column and grows as wide as its longest cell.
import Table from 'cli-table3';
import { STATUS_WIDTH } from './status.js';

export interface Column {
  readonly head: string;
  /** Columns the cells take; one column (the first with no width) takes what the others leave of the table's width. */
  readonly width?: number;
  readonly align?: 'left' | 'right';
}

const GAP = 2;
const NO_BORDER = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: ' '.repeat(GAP),
};

/** Each column's width: as given, the free one taking the rest of `width` (at least its head). */
export function columnWidths(columns: readonly Column[], width = STATUS_WIDTH): number[] {
  const fixed = columns.reduce((n, c) => n + (c.width ?? 0), 0) + GAP * (columns.length - 1);
  const free = columns.findIndex((c) => c.width === undefined);
  return columns.map((c, i) => c.width ?? (i === free ? Math.max(c.head.length, width - fixed) : c.head.length));
}

/** The head line and the rows, aligned; a cell longer than its column wraps at blanks (or is broken) within it. */
export function textTable(columns: readonly Column[], rows: readonly (readonly (string | number)[])[], width = STATUS_WIDTH): string {
  const table = new Table({
    head: columns.map((c) => c.head),
    colWidths: columnWidths(columns, width),
    colAligns: columns.map((c) => c.align ?? 'left'),
    wordWrap: true,
    wrapOnWordBoundary: true,
    chars: NO_BORDER,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) table.push(r.map(String));
  return table
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}
