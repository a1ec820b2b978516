import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic.js';
import { InputError } from '../util/errors.js';

/**
 * One file holding named float32 arrays and a JSON header, written atomically:
 *   "SPKCKPT1" | u32 header length | header JSON | float32 data (little-endian)
 */
const MAGIC = 'SPKCKPT1';

export interface TensorEntry {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function writeCheckpoint(path: string, meta: Record<string, unknown>, tensors: TensorEntry[]): void {
  let offset = 0;
  const index = tensors.map((t) => {
    const e = { name: t.name, shape: t.shape, offset, length: t.data.length };
    offset += t.data.length;
    return e;
  });
  const header = Buffer.from(JSON.stringify({ meta, tensors: index }), 'utf8');
  const headLen = MAGIC.length + 4 + header.length;
  const pad = (4 - (headLen % 4)) % 4;
  const buf = Buffer.alloc(headLen + pad + offset * 4);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(header.length + pad, MAGIC.length);
  header.copy(buf, MAGIC.length + 4);
  buf.fill(0x20, headLen, headLen + pad); // spaces keep the JSON parseable
  const body = new Float32Array(buf.buffer, buf.byteOffset + headLen + pad, offset);
  for (const [i, t] of tensors.entries()) body.set(t.data, index[i]!.offset);
  writeFileAtomic(path, buf);
}

export function readCheckpoint(path: string): { meta: Record<string, unknown>; tensors: Map<string, TensorEntry> } {
  if (!existsSync(path)) throw new InputError('checkpoint not found', path);
  const buf = readFileSync(path);
  if (buf.toString('latin1', 0, MAGIC.length) !== MAGIC) throw new InputError('not a spikeprobe checkpoint', path);
  const len = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  const header = JSON.parse(buf.toString('utf8', start, start + len)) as {
    meta: Record<string, unknown>;
    tensors: { name: string; shape: number[]; offset: number; length: number }[];
  };
  const aligned = new Float32Array(buf.buffer.slice(buf.byteOffset + start + len, buf.byteOffset + buf.length));
  const tensors = new Map<string, TensorEntry>();
  for (const e of header.tensors) tensors.set(e.name, { name: e.name, shape: e.shape, data: aligned.slice(e.offset, e.offset + e.length) });
  return { meta: header.meta, tensors };
}
