import type { RunManifest, MetricRecord, Split } from '../store/types.js';
import type { MeanInterval } from './stats.js';

/** A recorded run as the analysis sees it: plain data, no tensors. */
export interface RunData {
  dir: string;
  manifest: RunManifest;
  records: MetricRecord[];
}

export type Resolution = 'epoch' | 'step';
export type Verdict = 'spike' | 'no-spike' | 'inconclusive';

/** Thresholds that decide a verdict; they are printed with every verdict table. */
export interface SpikeThresholds {
  /** Ratio (observed after decay / trend-predicted) at or above which a seed counts as spiking. */
  spikeRatio: number; // default 1.2
  /** Confidence level of the across-seed interval. */
  confidence: number; // default 0.95
  /** Epochs before the decay used to fit the trend. */
  preWindow: number; // default 4
  /** Epochs from the decay on, over which the max is taken (per-epoch), e.g. 2 => d, d+1. */
  postWindow: number; // default 3
}

/** Per-seed measurement of one decay. */
export interface SeedSpike {
  seed: number;
  run: string;
  /** Value the pre-decay trend predicts at the post-decay peak position. */
  expected: number;
  /** Max observed value in the post-decay window. */
  observed: number;
  /** Epoch (or global step) of that max. */
  at: number;
  ratio: number; // observed / expected
  excess: number; // observed - expected
  /**
   * Epoch resolution, where the run has epochs after the peak and before the next decay (or its
   * end): (ratio - late ratio) / (ratio - 1), the late ratio = the mean of value / trend over the
   * last two of those epochs. 1: back on the trend; 0: stayed as far above it; < 0: rose further.
   */
  recovery?: number;
}

/** A spike's shape across seeds: back within the span to the next decay ('peak'), or not ('level'). */
export type SpikeShape = 'peak' | 'level';

/** How much of the change across a decay each measured quantity carried (post-window mean minus pre-window mean). */
export interface Attribution {
  /** Change of the center loss itself. */
  center: number;
  /** Changes of its two additive parts (within-class variance + center lag). */
  within?: number;
  lag?: number;
  /** Change of 0.5 * mean ||x||^2 (feature scale). */
  featSq?: number;
  /** Other quantities measured over the same window: key -> change (after - before), and relative change. */
  others: { key: string; before: number; after: number; change: number; relChange: number }[];
  // --- added by the analysis (optional; see analysis/attribution.ts) ---
  // `others` lists every numeric key present in both windows (center, cl_within, ... included),
  // sorted by |relChange| descending; relChange is ±Infinity when before = 0 and after ≠ 0.
  /** The decomposition's terms against a least-squares line fitted over the pre window. */
  detrended?: {
    center: TrendExcess;
    within?: TrendExcess;
    lag?: TrendExcess;
    featSq?: TrendExcess;
    /** The center loss of the clean and of the flipped samples (memorisation instrument). */
    clean?: TrendExcess;
    flipped?: TrendExcess;
    /** Share of flipped samples s (center = (1 - s) clean + s flipped), mean over both windows. */
    flippedShare?: number;
  };
  /** Fractions of the detrended center rise carried by within-class variance and center lag
   *  (they sum to 1 when center = cl_within + cl_lag); absent unless the center rose above trend. */
  shares?: { within: number; lag: number };
  /** Which term carried the jump; absent unless the center rose above trend. */
  carrier?: 'within' | 'lag' | 'scale';
  /** The log ratio of the post-window mean over its trend, split into terms that add up to it. */
  decomposition?: LogDecomposition;
  /** Shares of the rise over trend carried by the clean and the flipped samples (they sum to 1); absent unless the center rose and both were recorded. */
  samples?: { clean: number; flipped: number };
}

/**
 * ln(observed / trend) of the center loss over the post window, as a sum of terms:
 *   with feat_sq:    scale  = ln(F_o / F_e)                     (features larger or smaller),
 *                    spread = ln((W_o / F_o) / (W_e / F_e))     (within-class spread relative to scale),
 *                    lag    = ln((C_o / W_o) / (C_e / W_e))     (center lag on top of the spread);
 *   without feat_sq: within = ln(W_o / W_e), lag as above.
 * C = center, W = cl_within, F = feat_sq; o = observed mean, e = trend-predicted mean. The terms add
 * to `total` exactly (a telescoping sum of logs).
 */
export interface LogDecomposition {
  total: number;
  terms: { part: 'scale' | 'spread' | 'within' | 'lag'; log: number }[];
}

/** Post-window mean of a quantity against its pre-window linear trend (added by the analysis). */
export interface TrendExcess {
  /** Mean of the trend line over the post-window positions. */
  expected: number;
  /** Mean observed over the post window. */
  observed: number;
  excess: number; // observed - expected
}

/** Verdict for one (variant, split, resolution, metric, decay epoch). */
export interface DecayResult {
  variant: string;
  split: Split;
  resolution: Resolution;
  metric: string; // usually 'center'
  decayEpoch: number;
  seeds: SeedSpike[];
  n: number;
  ratioMean: number;
  ratioSd: number;
  ci: [number, number];
  verdict: Verdict;
  /** Mean recovery across the seeds that have one, and the shape it gives: 'peak' (transient) when >= 0.5, else 'level' (a level shift). */
  recoveryMean?: number;
  shape?: SpikeShape;
  attribution?: Attribution;
  /** Added: runs of this variant listed with this decay that gave no measurement, and why. */
  skipped?: { run: string; seed: number; reason: string }[];
}

export type Expectation =
  | { kind: 'spike' }
  | { kind: 'no-spike' }
  | { kind: 'ratio'; min?: number; max?: number };

/** One row of `spikeprobe check`. */
export interface CheckRow {
  variant: string;
  split: Split;
  resolution: Resolution;
  decayEpoch: number;
  ratioMean: number;
  ci: [number, number];
  verdict: Verdict;
  expected: string;
  pass: boolean;
}

/** A variant's role in the investigation (suite `role:`): see src/suite/schema.ts ROLES. */
export type Role = 'baseline' | 'cause' | 'fix' | 'control';

/** What a variant ends with: the test accuracy at its last recorded epoch, mean over seeds. */
export interface VariantOutcome {
  variant: string;
  /** The last epoch every seed recorded a test accuracy for. */
  epoch: number;
  testAcc: number;
  /** 95% (the analysis' confidence) interval over seeds; [mean, mean] for one seed. */
  testAccCi: [number, number];
  n: number;
}

export interface SuiteAnalysis {
  suite: string;
  /** Variant or fork -> its role, where the suite states one. */
  roles?: Record<string, Role>;
  /** Final test accuracy per variant (the cost or gain of a fix). */
  outcomes?: VariantOutcome[];
  thresholds: SpikeThresholds;
  results: DecayResult[];
  checks: CheckRow[];
  /** Sentences built from the numbers (never canned), in reading order. */
  explanation: string[];
  /** Forks paired with their parents: the change's effect on every metric (present when forks ran). */
  forks?: ForkEffect[];
}

/** A fork's effect on one metric (./forks.ts). */
export interface ForkMetricEffect {
  split: Split;
  metric: string;
  /** Per seed: mean over the window of parent - twin. */
  perSeed: { seed: number; parent: number; twin: number; diff: number }[];
  diff: MeanInterval;
  /** Mean over seeds of the parent's and twin's window means. */
  parentMean: number;
  twinMean: number;
}

export interface ForkEffect {
  /** The twins' variant (the suite's fork name) and their parents' variant. */
  fork: string;
  parent: string;
  at: number;
  set: Record<string, unknown>;
  /** Epochs at .. at + window - 1. */
  window: number;
  metrics: ForkMetricEffect[];
}
