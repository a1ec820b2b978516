/**
 * The common shape every loader produces before splitting: per requested class, a train(+valid)
 * pool and a disjoint test pool of rows in a row store.
 */

/** Images as rows of H*W*C values, either bytes 0..255 (scale 1/255) or floats in [0,1] (scale 1). */
export interface RowStore {
  data: Uint8Array | Float32Array;
  rowLen: number;
  scale: number;
}

/** Some rows of a store. */
export interface RowSet {
  store: RowStore;
  rows: Int32Array;
}

export interface ClassPool {
  /** Original class id. */
  id: number;
  name: string;
  /** Rows the train and valid splits are drawn from. */
  trainPool: RowSet;
  /** Rows the test split is drawn from; disjoint from trainPool. */
  testPool: RowSet;
  /** The file or directory these rows come from (for error messages). */
  where: string;
}

export interface LoadedSource {
  height: number;
  width: number;
  channels: number;
  /** In DataConfig.classes order. */
  pools: ClassPool[];
  /** Description for DataSplits.source. */
  source: string;
}

export function range(start: number, end: number): Int32Array {
  const r = new Int32Array(Math.max(0, end - start));
  for (let i = 0; i < r.length; i++) r[i] = start + i;
  return r;
}
