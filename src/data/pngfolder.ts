/**
 * A folder of PNGs: DIR/<class>/*.png, one sub-folder per class (hidden entries ignored, other files
 * ignored). Class ids: when every sub-folder name is a non-negative integer, that integer; otherwise
 * the folder's position in the name-sorted list (code-point order). Class names are the folder names.
 *
 * All images must have the same size. They are kept as 1 channel when every image is gray (an RGB
 * image whose pixels all have R = G = B counts as gray), else as 3 channels (gray images
 * replicated). Per class, files are taken in name order and the last test_per_class of them form the
 * test pool; the rest is the train+valid pool.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../util/errors.js';
import type { ClassPool, LoadedSource } from './pool.js';
import { range } from './pool.js';
import { decodePng, type DecodedImage } from './png.js';

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export interface PngClassFolder {
  id: number;
  name: string;
  dir: string;
}

/** The class folders of a PNG folder dataset, with their ids. */
export function listPngClasses(dir: string): PngClassFolder[] {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new InputError('is not a directory', dir, 'path');
    entries = readdirSync(dir);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`cannot read directory: ${(e as Error).message}`, dir, 'path');
  }
  const names = entries.filter((n) => !n.startsWith('.') && isDir(join(dir, n))).sort(byName);
  if (names.length === 0) throw new InputError('no class sub-folders (expected DIR/<class>/*.png)', dir, 'path');
  const numeric = names.every((n) => /^\d+$/.test(n));
  const out = names.map((name, i) => ({ id: numeric ? Number(name) : i, name, dir: join(dir, name) }));
  if (numeric) {
    out.sort((a, b) => a.id - b.id);
    for (let i = 1; i < out.length; i++) {
      if (out[i]!.id === out[i - 1]!.id) {
        throw new InputError(`class folders '${out[i - 1]!.name}' and '${out[i]!.name}' both mean class ${out[i]!.id}`, dir, 'path');
      }
    }
  }
  return out;
}

function hasColour(img: DecodedImage): boolean {
  if (img.channels === 1) return false;
  const d = img.data;
  for (let i = 0; i < d.length; i += 3) if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return true;
  return false;
}

export function loadPngFolderSource(dir: string, classes: number[], testPerClass: number): LoadedSource {
  const folders = listPngClasses(dir);
  const byId = new Map(folders.map((f) => [f.id, f]));
  let size: { h: number; w: number; file: string } | null = null;
  let colour = false;
  const decoded = classes.map((id) => {
    const f = byId.get(id);
    if (!f) {
      const known = folders.map((k) => (k.name === String(k.id) ? k.name : `${k.name}=${k.id}`)).join(', ');
      throw new InputError(`class ${id} does not exist (class folders: ${known})`, dir, 'classes');
    }
    let files: string[];
    try {
      files = readdirSync(f.dir)
        .filter((n) => !n.startsWith('.') && n.toLowerCase().endsWith('.png'))
        .sort(byName);
    } catch (e) {
      throw new InputError(`cannot read directory: ${(e as Error).message}`, f.dir, 'path');
    }
    const images = files.map((name) => {
      const file = join(f.dir, name);
      let buf: Buffer;
      try {
        buf = readFileSync(file);
      } catch (e) {
        throw new InputError(`cannot read: ${(e as Error).message}`, file, 'path');
      }
      const img = decodePng(buf, file);
      if (!size) size = { h: img.height, w: img.width, file };
      else if (img.height !== size.h || img.width !== size.w) {
        throw new InputError(`image is ${img.width}x${img.height} but ${size.file} is ${size.w}x${size.h}; all images must share one size`, file, 'size');
      }
      if (!colour && hasColour(img)) colour = true;
      return img;
    });
    return { folder: f, images };
  });
  const s = size as { h: number; w: number; file: string } | null;
  if (!s) throw new InputError('no PNG files in the requested class folders', dir, 'path');
  const channels = colour ? 3 : 1;
  const rowLen = s.h * s.w * channels;
  const pools: ClassPool[] = decoded.map(({ folder, images }) => {
    const data = new Uint8Array(images.length * rowLen);
    images.forEach((img, r) => {
      const o = r * rowLen;
      if (img.channels === channels) data.set(img.data, o);
      else if (channels === 1) {
        for (let p = 0; p < s.h * s.w; p++) data[o + p] = img.data[3 * p]!;
      } else {
        for (let p = 0; p < s.h * s.w; p++) data[o + 3 * p] = data[o + 3 * p + 1] = data[o + 3 * p + 2] = img.data[p]!;
      }
    });
    const store = { data, rowLen, scale: 1 / 255 };
    const cut = Math.max(0, images.length - testPerClass);
    return {
      id: folder.id,
      name: folder.name,
      trainPool: { store, rows: range(0, cut) },
      testPool: { store, rows: range(cut, images.length) },
      where: folder.dir,
    };
  });
  return { height: s.h, width: s.w, channels, pools, source: `png-folder:${dir}` };
}
