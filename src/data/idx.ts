/**
 * IDX files (the MNIST distribution format): a directory with train-images-idx3-ubyte and
 * train-labels-idx1-ubyte (also accepted: '.' instead of the last '-', as in
 * train-images.idx3-ubyte; each optionally gzipped with a .gz suffix), and optionally the same
 * pair for t10k. With t10k files the test pool is the t10k rows of the class; without them it is
 * carved from train: per class, the last test_per_class rows (in file order).
 *
 * Format: 2 zero bytes, a type byte (0x08 = unsigned byte, the only one accepted), a dimension count
 * byte, then that many big-endian uint32 sizes, then the data. Images: 3 dims (n, rows, cols) or
 * 4 (n, rows, cols, channels); labels: 1 dim (n).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError } from '../util/errors.js';
import type { ClassPool, LoadedSource, RowStore } from './pool.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parse an IDX buffer of unsigned bytes; `file` names it in errors. */
export function parseIdx(buf: Uint8Array, file: string, expectDims: number[]): IdxArray {
  if (buf.length < 4) throw new InputError(`not an IDX file: ${buf.length} bytes`, file, 'magic');
  if (buf[0] !== 0 || buf[1] !== 0) {
    throw new InputError(`not an IDX file: bad magic 0x${hex(buf, 0, 4)}`, file, 'magic');
  }
  const type = buf[2]!;
  const nd = buf[3]!;
  if (type !== 0x08) {
    throw new InputError(`IDX data type 0x${type.toString(16).padStart(2, '0')} is not supported (only 0x08, unsigned byte)`, file, 'magic');
  }
  if (!expectDims.includes(nd)) {
    throw new InputError(
      `IDX magic 0x0008${nd.toString(16).padStart(2, '0')} has ${nd} dimensions, expected ${expectDims.join(' or ')} (magic 0x${expectDims.map((d) => (0x800 + d).toString(16).padStart(4, '0')).join(' or 0x')})`,
      file,
      'magic',
    );
  }
  const header = 4 + 4 * nd;
  if (buf.length < header) throw new InputError(`truncated header (${buf.length} bytes)`, file, 'dims');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  let size = 1;
  for (let d = 0; d < nd; d++) {
    const v = view.getUint32(4 + 4 * d, false);
    dims.push(v);
    size *= v;
  }
  if (dims.slice(1).some((d) => d === 0)) throw new InputError(`zero-sized dimension in [${dims.join(', ')}]`, file, 'dims');
  const have = buf.length - header;
  if (have !== size) {
    throw new InputError(
      `dims [${dims.join(', ')}] need ${size} data bytes but the file has ${have}${have < size ? ' (truncated)' : ' (trailing bytes)'}`,
      file,
      'dims',
    );
  }
  return { dims, data: buf.subarray(header) };
}

function hex(b: Uint8Array, s: number, e: number): string {
  return Array.from(b.subarray(s, e), (v) => v.toString(16).padStart(2, '0')).join('');
}

/** Find a file of the IDX set in dir; null if absent. */
function findIdxFile(dir: string, prefix: 'train' | 't10k', kind: 'images' | 'labels'): string | null {
  const tail = kind === 'images' ? 'idx3-ubyte' : 'idx1-ubyte';
  for (const name of [`${prefix}-${kind}-${tail}`, `${prefix}-${kind}.${tail}`]) {
    for (const f of [name, `${name}.gz`]) {
      const p = join(dir, f);
      if (existsSync(p)) return p;
    }
  }
  return null;
}

function readIdxFile(file: string, expectDims: number[]): IdxArray {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new InputError(`cannot read: ${(e as Error).message}`, file, 'path');
  }
  if (file.endsWith('.gz')) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new InputError(`cannot gunzip: ${(e as Error).message}`, file, 'gzip');
    }
  }
  return parseIdx(buf, file, expectDims);
}

interface IdxPair {
  store: RowStore;
  labels: Uint8Array;
  n: number;
  height: number;
  width: number;
  channels: number;
  imagesFile: string;
  labelsFile: string;
}

function readPair(imagesFile: string, labelsFile: string): IdxPair {
  const img = readIdxFile(imagesFile, [3, 4]);
  const lab = readIdxFile(labelsFile, [1]);
  const n = img.dims[0]!;
  if (lab.dims[0] !== n) {
    throw new InputError(`${lab.dims[0]} labels but ${imagesFile} has ${n} images`, labelsFile, 'dims');
  }
  const height = img.dims[1]!;
  const width = img.dims[2]!;
  const channels = img.dims[3] ?? 1;
  return {
    store: { data: img.data, rowLen: height * width * channels, scale: 1 / 255 },
    labels: lab.data,
    n,
    height,
    width,
    channels,
    imagesFile,
    labelsFile,
  };
}

function rowsOfClass(labels: Uint8Array, cls: number): Int32Array {
  let count = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === cls) count++;
  const r = new Int32Array(count);
  let k = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === cls) r[k++] = i;
  return r;
}

export function loadIdxSource(dir: string, classes: number[], testPerClass: number): LoadedSource {
  if (!existsSync(dir)) throw new InputError('directory does not exist', dir, 'path');
  if (!statSync(dir).isDirectory()) throw new InputError('is not a directory', dir, 'path');
  const trImg = findIdxFile(dir, 'train', 'images');
  const trLab = findIdxFile(dir, 'train', 'labels');
  if (!trImg) throw new InputError('missing train-images-idx3-ubyte[.gz]', dir, 'path');
  if (!trLab) throw new InputError('missing train-labels-idx1-ubyte[.gz]', dir, 'path');
  const teImg = findIdxFile(dir, 't10k', 'images');
  const teLab = findIdxFile(dir, 't10k', 'labels');
  if ((teImg === null) !== (teLab === null)) {
    throw new InputError(
      `${teImg ? 't10k-labels-idx1-ubyte' : 't10k-images-idx3-ubyte'}[.gz] is missing while ${teImg ?? teLab} is present`,
      dir,
      'path',
    );
  }
  const train = readPair(trImg, trLab);
  let numClasses = 0;
  for (let i = 0; i < train.labels.length; i++) numClasses = Math.max(numClasses, train.labels[i]! + 1);
  const test = teImg && teLab ? readPair(teImg, teLab) : null;
  if (test) {
    if (test.height !== train.height || test.width !== train.width || test.channels !== train.channels) {
      throw new InputError(
        `images are ${test.height}x${test.width}x${test.channels} but train images are ${train.height}x${train.width}x${train.channels}`,
        test.imagesFile,
        'dims',
      );
    }
    for (let i = 0; i < test.labels.length; i++) {
      if (test.labels[i]! >= numClasses) {
        throw new InputError(
          `label ${test.labels[i]} at index ${i} is out of range: the train labels have ${numClasses} classes (0..${numClasses - 1})`,
          test.labelsFile,
          'labels',
        );
      }
    }
  }
  const pools: ClassPool[] = classes.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= numClasses) {
      throw new InputError(`class ${id} does not exist (labels are 0..${numClasses - 1})`, train.labelsFile, 'classes');
    }
    const trRows = rowsOfClass(train.labels, id);
    if (test) {
      return {
        id,
        name: String(id),
        trainPool: { store: train.store, rows: trRows },
        testPool: { store: test.store, rows: rowsOfClass(test.labels, id) },
        where: train.labelsFile,
      };
    }
    const cut = Math.max(0, trRows.length - testPerClass);
    return {
      id,
      name: String(id),
      trainPool: { store: train.store, rows: trRows.slice(0, cut) },
      testPool: { store: train.store, rows: trRows.slice(cut) },
      where: train.labelsFile,
    };
  });
  return { height: train.height, width: train.width, channels: train.channels, pools, source: `idx:${dir}` };
}
