import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { crc32 } from '../util/crc32.js';
import { InputError } from '../util/errors.js';
import { faultPoint } from '../util/fault.js';
import { fsyncDir, writeTemp } from '../util/atomic.js';

/**
 * One file holding named float32 arrays and a JSON header, that proves itself:
 *   "SPKCKPT2" | u32 header length | header JSON | float32 data (little-endian)
 * The header holds the format version, the tensor index, the payload's byte count and its CRC-32,
 * so a truncated or damaged file is recognised before anything is restored. (Format 1, "SPKCKPT1",
 * without sizes or checksum, is still read.)
 *
 * writeCheckpoint keeps the previous generation (`<name>.prev.bin`) until the new one is durable:
 * write and fsync a temp file, rename the current file to .prev, rename the temp file into place,
 * fsync the directory. readCheckpointWithFallback takes the newest generation that verifies.
 */
const MAGIC = 'SPKCKPT2';
const MAGIC1 = 'SPKCKPT1';
export const CHECKPOINT_FORMAT = 2;

export interface TensorEntry {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function previousOf(path: string): string {
  return path.replace(/\.bin$/, '') + '.prev.bin';
}

function encode(meta: Record<string, unknown>, tensors: TensorEntry[]): Buffer {
  let offset = 0;
  const index = tensors.map((t) => {
    const e = { name: t.name, shape: t.shape, offset, length: t.data.length };
    offset += t.data.length;
    return e;
  });
  const payload = Buffer.alloc(offset * 4);
  const body = new Float32Array(payload.buffer, payload.byteOffset, offset);
  for (const [i, t] of tensors.entries()) body.set(t.data, index[i]!.offset);
  const header = Buffer.from(JSON.stringify({ format: CHECKPOINT_FORMAT, meta, tensors: index, payloadBytes: payload.length, crc32: crc32(payload) }), 'utf8');
  const headLen = MAGIC.length + 4 + header.length;
  const pad = (4 - (headLen % 4)) % 4;
  const buf = Buffer.alloc(headLen + pad + payload.length);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(header.length + pad, MAGIC.length);
  header.copy(buf, MAGIC.length + 4);
  buf.fill(0x20, headLen, headLen + pad); // spaces keep the JSON parseable
  payload.copy(buf, headLen + pad);
  return buf;
}

/**
 * Write durably. `keepPrevious` (default true): the file it replaces becomes `<name>.prev.bin`
 * (the generation a damaged newest one falls back to).
 */
export function writeCheckpoint(path: string, meta: Record<string, unknown>, tensors: TensorEntry[], keepPrevious = true): void {
  const tmp = writeTemp(path, encode(meta, tensors), 'checkpoint-write');
  try {
    if (keepPrevious && existsSync(path)) renameSync(path, previousOf(path));
    faultPoint('checkpoint-rename');
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}

export interface Checkpoint {
  meta: Record<string, unknown>;
  tensors: Map<string, TensorEntry>;
}

/** Read and verify one checkpoint file; throws an Error saying what is wrong with it. */
export function readCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new InputError('checkpoint not found', path);
  const buf = readFileSync(path);
  const magic = buf.toString('latin1', 0, MAGIC.length);
  if (magic !== MAGIC && magic !== MAGIC1) throw new InputError(buf.length < MAGIC.length ? `truncated to ${buf.length} bytes` : 'not a spikeprobe checkpoint', path);
  if (buf.length < MAGIC.length + 4) throw new InputError(`truncated to ${buf.length} bytes`, path);
  const len = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (start + len > buf.length) throw new InputError(`truncated: its header needs ${start + len} bytes, the file has ${buf.length}`, path);
  let header: { meta: Record<string, unknown>; tensors: { name: string; shape: number[]; offset: number; length: number }[]; payloadBytes?: number; crc32?: number };
  try {
    header = JSON.parse(buf.toString('utf8', start, start + len));
  } catch {
    throw new InputError('damaged header', path);
  }
  const payload = buf.subarray(start + len);
  if (magic === MAGIC) {
    if (payload.length !== header.payloadBytes) throw new InputError(`truncated: ${payload.length} of ${header.payloadBytes} payload bytes`, path);
    if (crc32(payload) !== header.crc32) throw new InputError('damaged: its checksum does not match', path);
  }
  const aligned = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.length - (payload.length % 4)));
  const tensors = new Map<string, TensorEntry>();
  for (const e of header.tensors) {
    if (e.offset + e.length > aligned.length) throw new InputError(`truncated: tensor ${e.name} lies past the end`, path);
    tensors.set(e.name, { name: e.name, shape: e.shape, data: aligned.slice(e.offset, e.offset + e.length) });
  }
  return { meta: header.meta, tensors };
}

/**
 * The newest generation that verifies: `path`, else `<name>.prev.bin` (with `notice` called to say
 * so). Neither: one InputError naming the damaged file and what to do.
 */
export function readCheckpointWithFallback(path: string, notice: (msg: string) => void): Checkpoint {
  let why: string;
  try {
    return readCheckpoint(path);
  } catch (e) {
    why = (e as Error).message;
  }
  const prev = previousOf(path);
  if (existsSync(prev)) {
    try {
      const c = readCheckpoint(prev);
      notice(`${why}; resuming from the previous checkpoint ${basename(prev)} (epoch ${String(c.meta.epoch)}; the epochs after it are trained again)`);
      return c;
    } catch (e) {
      why += `; the previous one too: ${(e as Error).message}`;
    }
  }
  throw new InputError(`${why}; no checkpoint to resume from: restart the run (train again under another --name, or delete ${dirname(path)})`);
}
