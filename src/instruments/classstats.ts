/**
 * Per-class first and second moments of features, accumulated in float64 over batches: enough for
 * the class means, the within-class spread around them and the between-class spread.
 */
export class ClassMoments {
  readonly sum: Float64Array; // [K*D]
  readonly sq: Float64Array; // [K] sum of ||x||^2
  readonly count: Float64Array; // [K]

  constructor(
    readonly k: number,
    readonly d: number,
  ) {
    this.sum = new Float64Array(k * d);
    this.sq = new Float64Array(k);
    this.count = new Float64Array(k);
  }

  add(features: Float32Array, labels: Int32Array): void {
    for (let i = 0; i < labels.length; i++) this.addRow(features, i, labels[i]!);
  }

  /** Row `i` of features [N*D] as one sample of class c. */
  addRow(features: Float32Array, i: number, c: number): void {
    const d = this.d;
    this.count[c]! += 1;
    let s = 0;
    for (let j = 0; j < d; j++) {
      const v = features[i * d + j]!;
      this.sum[c * d + j]! += v;
      s += v * v;
    }
    this.sq[c]! += s;
  }

  get n(): number {
    let n = 0;
    for (const c of this.count) n += c;
    return n;
  }

  mean(c: number): Float64Array {
    const m = new Float64Array(this.d);
    const n = this.count[c]!;
    if (n > 0) for (let j = 0; j < this.d; j++) m[j] = this.sum[c * this.d + j]! / n;
    return m;
  }

  /**
   * Split of 0.5 * mean_i ||x_i - c_{y_i}||^2 into within (0.5 * mean ||x_i - m_{y_i}||^2) and lag
   * (0.5 * ||m_y - c_y||^2, sample-weighted); both overall and per class. They add up exactly.
   */
  centerSplit(centers: Float32Array): { within: number; lag: number; perClass: { within: number; lag: number; n: number }[] } {
    const n = this.n;
    let within = 0;
    let lag = 0;
    const perClass: { within: number; lag: number; n: number }[] = [];
    for (let c = 0; c < this.k; c++) {
      const nc = this.count[c]!;
      if (nc === 0) {
        perClass.push({ within: NaN, lag: NaN, n: 0 });
        continue;
      }
      const m = this.mean(c);
      let mm = 0;
      let lg = 0;
      for (let j = 0; j < this.d; j++) {
        mm += m[j]! * m[j]!;
        const dlt = m[j]! - centers[c * this.d + j]!;
        lg += dlt * dlt;
      }
      const w = Math.max(0, 0.5 * (this.sq[c]! / nc - mm));
      const l = 0.5 * lg;
      perClass.push({ within: w, lag: l, n: nc });
      within += (w * nc) / n;
      lag += (l * nc) / n;
    }
    return { within, lag, perClass };
  }

  /** 0.5 * mean ||m_{y_i} - m||^2: the between-class spread (m = overall mean). */
  between(): number {
    const n = this.n;
    const all = new Float64Array(this.d);
    for (let c = 0; c < this.k; c++) for (let j = 0; j < this.d; j++) all[j]! += this.sum[c * this.d + j]!;
    for (let j = 0; j < this.d; j++) all[j]! /= n;
    let b = 0;
    for (let c = 0; c < this.k; c++) {
      const nc = this.count[c]!;
      if (nc === 0) continue;
      const m = this.mean(c);
      let s = 0;
      for (let j = 0; j < this.d; j++) s += (m[j]! - all[j]!) ** 2;
      b += (0.5 * s * nc) / n;
    }
    return b;
  }
}
