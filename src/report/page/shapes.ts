/**
 * The shapes the report's data takes where the page's code reads it (./rows.ts) and where Node
 * prepares it (../data.ts): series, queries, rows. Types only.
 */
/** Epoch series: values at epochs firstEpoch, firstEpoch + 1, ... Indices point into variants, splits, keys. */
export interface EpochSeries {
  kind: 'epoch';
  variant: number;
  split: number;
  key: number;
  firstEpoch: number;
  mean: (number | null)[];
  /** Omitted where every point has a single seed (then min = max = mean). */
  min?: (number | null)[];
  max?: (number | null)[];
  /** Seeds per point; a single number when the same for every point. */
  seeds: number | number[];
}

/** Step series (train split, inside decay windows): x positions from xs[xIndex]. */
export interface StepSeries {
  kind: 'step';
  variant: number;
  key: number;
  xIndex: number;
  mean: (number | null)[];
  min?: (number | null)[];
  max?: (number | null)[];
  seeds: number | number[];
}

export type Series = EpochSeries | StepSeries;

/** What one chart takes from the data: the page and the static renderer both materialise rows from it. */
export interface Query {
  kind: 'epoch' | 'step';
  /** Key indices. */
  keys: number[];
  /** Split indices (epoch series only; default all). */
  splits?: number[];
  /** x range: epochs from <= e <= to for epoch series, from <= x < to for step series. */
  from?: number;
  to?: number;
  /** How rows are labelled in the `series` field: by split or by key label. */
  label: 'split' | 'key';
}

export interface Row {
  variant: string;
  series: string;
  key: string;
  split: string;
  epoch: number;
  x: number;
  mean: number | null;
  lo: number | null;
  hi: number | null;
  n: number;
  /** Carries a hover target (all epoch rows; every stride-th step row, about HOVER_POINTS per series). */
  h: boolean;
  /** Tooltip: label -> value, in display order. */
  tt: Record<string, string | number | null>;
}

export interface RowSource {
  variants: string[];
  splits: string[];
  keys: string[];
  /** Display label per key (the suffix after a panel's prefix, or the key). */
  keyLabels: string[];
  xs: number[][];
  series: Series[];
}
