/**
 * A small PNG decoder (no dependency): non-interlaced PNGs of every colour type — grayscale (1, 2,
 * 4, 8, 16 bit), RGB (8, 16), palette (1, 2, 4, 8, with tRNS), gray+alpha (8, 16), RGBA (8, 16).
 * 16-bit samples keep their high byte. Alpha is composited onto black (the zero background).
 * The result is 8-bit gray (channels 1) or RGB (channels 3), HWC.
 */
import { inflateSync } from 'node:zlib';
import { crc32 } from '../util/crc32.js';
import { InputError } from '../util/errors.js';

export interface DecodedImage {
  width: number;
  height: number;
  /** 1 (gray) or 3 (RGB). */
  channels: 1 | 3;
  /** height*width*channels bytes, HWC. */
  data: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Colour type -> samples per pixel. */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
/** Refuse absurd headers before allocating (a 16k x 16k image is already 256 MP). */
const MAX_PIXELS = 1 << 28;

export function decodePng(buf: Uint8Array, file: string): DecodedImage {
  const bad = (msg: string, field = 'png'): InputError => new InputError(msg, file, field);
  if (buf.length < 8 || SIGNATURE.some((b, i) => buf[i] !== b)) throw bad('not a PNG file (bad signature)');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let depth = 0;
  let ctype = -1;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (pos < buf.length) {
    if (pos + 12 > buf.length) throw bad(`truncated chunk at byte ${pos}`);
    const len = view.getUint32(pos, false);
    const type = String.fromCharCode(buf[pos + 4]!, buf[pos + 5]!, buf[pos + 6]!, buf[pos + 7]!);
    if (pos + 12 + len > buf.length) throw bad(`truncated ${type} chunk at byte ${pos}`);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    const crc = view.getUint32(pos + 8 + len, false);
    if (crc32(buf.subarray(pos + 4, pos + 8 + len)) !== crc) throw bad(`CRC mismatch in ${type} chunk at byte ${pos}`);
    pos += 12 + len;
    if (type === 'IHDR') {
      if (len !== 13) throw bad('bad IHDR length');
      const hv = new DataView(body.buffer, body.byteOffset, 13);
      width = hv.getUint32(0, false);
      height = hv.getUint32(4, false);
      depth = body[8]!;
      ctype = body[9]!;
      if (body[10] !== 0 || body[11] !== 0) throw bad('unknown compression or filter method');
      if (body[12] !== 0) throw bad('interlaced PNGs are not supported');
      if (!(ctype in SAMPLES) || !DEPTHS[ctype]!.includes(depth)) {
        throw bad(`colour type ${ctype} with bit depth ${depth} is not supported`);
      }
      if (width === 0 || height === 0 || width * height > MAX_PIXELS) throw bad(`bad image size ${width}x${height}`);
    } else if (type === 'PLTE') {
      palette = body;
    } else if (type === 'tRNS') {
      trns = body;
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      sawEnd = true;
      break;
    }
  }
  if (ctype < 0) throw bad('no IHDR chunk');
  if (idat.length === 0) throw bad('no IDAT chunk');
  if (!sawEnd) throw bad('no IEND chunk (truncated file?)');
  if (ctype === 3 && (!palette || palette.length % 3 !== 0)) throw bad('palette image without a valid PLTE chunk');

  const spp = SAMPLES[ctype]!;
  const bitsPerPixel = spp * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  let raw: Buffer;
  try {
    // bounded, so a decompression bomb fails instead of exhausting memory
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: 2 * height * (stride + 1) + 1024 });
  } catch (e) {
    throw bad(`corrupt image data: ${(e as Error).message}`);
  }
  if (raw.length < height * (stride + 1)) throw bad(`image data too short: ${raw.length} bytes for ${width}x${height}`);
  const pix = unfilter(raw, height, stride, bpp, bad);

  // Read samples as 8-bit values.
  const sample = (y: number, i: number): number => {
    const row = y * stride;
    if (depth === 8) return pix[row + i]!;
    if (depth === 16) return pix[row + 2 * i]!;
    const perByte = 8 / depth;
    const byte = pix[row + Math.floor(i / perByte)]!;
    const shift = 8 - depth * ((i % perByte) + 1);
    return (byte >> shift) & ((1 << depth) - 1);
  };
  const maxLow = (1 << depth) - 1;
  const scaleLow = depth < 8 ? 255 / maxLow : 1;

  const gray = ctype === 0 || ctype === 4;
  const channels: 1 | 3 = gray ? 1 : 3;
  const out = new Uint8Array(width * height * channels);
  let trnsGray = -1;
  let trnsRgb: number[] | null = null;
  if (trns && ctype === 0 && trns.length >= 2) trnsGray = (trns[0]! << 8) | trns[1]!;
  if (trns && ctype === 2 && trns.length >= 6) trnsRgb = [(trns[0]! << 8) | trns[1]!, (trns[2]! << 8) | trns[3]!, (trns[4]! << 8) | trns[5]!];
  const full = (y: number, i: number): number => (depth === 16 ? (pix[y * stride + 2 * i]! << 8) | pix[y * stride + 2 * i + 1]! : sample(y, i));

  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * channels;
      switch (ctype) {
        case 0: {
          const v = depth < 8 ? Math.round(sample(y, x) * scaleLow) : sample(y, x);
          out[o] = trnsGray >= 0 && full(y, x) === trnsGray ? 0 : v;
          break;
        }
        case 4: {
          const a = sample(y, 2 * x + 1);
          out[o] = Math.round((sample(y, 2 * x) * a) / 255);
          break;
        }
        case 2: {
          const transparent = trnsRgb !== null && trnsRgb.every((t, k) => full(y, 3 * x + k) === t);
          for (let k = 0; k < 3; k++) out[o + k] = transparent ? 0 : sample(y, 3 * x + k);
          break;
        }
        case 6: {
          const a = sample(y, 4 * x + 3);
          for (let k = 0; k < 3; k++) out[o + k] = Math.round((sample(y, 4 * x + k) * a) / 255);
          break;
        }
        case 3: {
          const idx = sample(y, x);
          if (3 * idx + 2 >= palette!.length) throw bad(`palette index ${idx} out of range at pixel (${x}, ${y})`);
          const a = trns && idx < trns.length ? trns[idx]! : 255;
          for (let k = 0; k < 3; k++) out[o + k] = Math.round((palette![3 * idx + k]! * a) / 255);
          break;
        }
      }
    }
  }
  return { width, height, channels, data: out };
}

function unfilter(
  raw: Uint8Array,
  height: number,
  stride: number,
  bpp: number,
  bad: (msg: string) => InputError,
): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    const prev = dst - stride;
    for (let i = 0; i < stride; i++) {
      const v = raw[src + i]!;
      const a = i >= bpp ? out[dst + i - bpp]! : 0;
      const b = y > 0 ? out[prev + i]! : 0;
      let r: number;
      switch (f) {
        case 0:
          r = v;
          break;
        case 1:
          r = v + a;
          break;
        case 2:
          r = v + b;
          break;
        case 3:
          r = v + ((a + b) >> 1);
          break;
        case 4: {
          const c = i >= bpp && y > 0 ? out[prev + i - bpp]! : 0;
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          r = v + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw bad(`unknown filter type ${f} on row ${y}`);
      }
      out[dst + i] = r & 0xff;
    }
  }
  return out;
}

export { crc32 } from '../util/crc32.js';
