/**
 * The protobuf wire format, just what event files need: walk a message's fields, read varints,
 * fixed 32/64-bit values and length-delimited bytes, and write the same.
 *
 * Why not a protobuf library: an event reader needs about fifteen fields of five messages
 * (Event, Summary, Summary.Value, SummaryMetadata, TensorProto) and must skip everything else
 * (images, histograms, graphs) without decoding it. Walking the wire format does that with
 * subarray views and no allocation per skipped field; a schema library would decode every record
 * into objects and needs the schema shipped alongside. The decoder is tested against event files
 * written by Python's protobuf from TensorFlow's event.proto/summary.proto and by CatBoost's C++
 * writer (test/ingest-tfevents.test.ts).
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

export class WireError extends Error {}

/** One field of a message: for WIRE_LEN `bytes` is a view into the message. */
export interface Field {
  no: number;
  wire: number;
  /** WIRE_VARINT: the value (exact up to 2^53); WIRE_I64/WIRE_I32: the byte offset of the value. */
  num: number;
  bytes?: Uint8Array;
  /** Offset of the value within the message. */
  at: number;
}

export function readVarint(buf: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new WireError('truncated varint');
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
  throw new WireError('varint longer than 10 bytes');
}

/** The fields of a message in wire order; throws WireError on malformed input. */
export function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = readVarint(buf, pos);
    const no = Math.floor(key / 8);
    const wire = key % 8;
    if (no === 0) throw new WireError(`field number 0 at byte ${pos}`);
    pos = p1;
    switch (wire) {
      case WIRE_VARINT: {
        const [v, p2] = readVarint(buf, pos);
        yield { no, wire, num: v, at: pos };
        pos = p2;
        break;
      }
      case WIRE_I64:
        if (pos + 8 > buf.length) throw new WireError('truncated 64-bit field');
        yield { no, wire, num: pos, at: pos };
        pos += 8;
        break;
      case WIRE_I32:
        if (pos + 4 > buf.length) throw new WireError('truncated 32-bit field');
        yield { no, wire, num: pos, at: pos };
        pos += 4;
        break;
      case WIRE_LEN: {
        const [len, p2] = readVarint(buf, pos);
        if (p2 + len > buf.length) throw new WireError('length-delimited field runs past the message end');
        yield { no, wire, num: len, bytes: buf.subarray(p2, p2 + len), at: p2 };
        pos = p2 + len;
        break;
      }
      default:
        throw new WireError(`unsupported wire type ${wire} at byte ${pos}`);
    }
  }
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

export function fieldDouble(buf: Uint8Array, f: Field): number {
  if (f.wire !== WIRE_I64) throw new WireError(`field ${f.no}: expected a 64-bit value`);
  return view(buf).getFloat64(f.num, true);
}

export function fieldFloat(buf: Uint8Array, f: Field): number {
  if (f.wire !== WIRE_I32) throw new WireError(`field ${f.no}: expected a 32-bit value`);
  return view(buf).getFloat32(f.num, true);
}

/** A varint field read as a signed 64-bit integer (int64), exact within ±2^53. */
export function fieldInt64(f: Field): number {
  if (f.wire !== WIRE_VARINT) throw new WireError(`field ${f.no}: expected a varint`);
  return f.num >= 2 ** 63 ? f.num - 2 ** 64 : f.num;
}

const UTF8 = new TextDecoder();

export function fieldString(f: Field): string {
  if (f.wire !== WIRE_LEN) throw new WireError(`field ${f.no}: expected a length-delimited value`);
  return UTF8.decode(f.bytes);
}

/** Repeated float (packed or not) -> values appended to `out`. */
export function repeatedFloats(buf: Uint8Array, f: Field, width: 4 | 8, out: number[]): void {
  if (f.wire === WIRE_LEN) {
    const b = f.bytes!;
    if (b.length % width !== 0) throw new WireError(`field ${f.no}: packed length ${b.length} is not a multiple of ${width}`);
    const v = view(b);
    for (let i = 0; i < b.length; i += width) out.push(width === 4 ? v.getFloat32(i, true) : v.getFloat64(i, true));
  } else out.push(width === 4 ? fieldFloat(buf, f) : fieldDouble(buf, f));
}

/** A message under construction: fields are appended in the order written. */
export class MessageWriter {
  private parts: Uint8Array[] = [];

  private varint(v: number): void {
    const bytes: number[] = [];
    let x = v;
    while (x >= 0x80) {
      bytes.push((x % 128) | 0x80);
      x = Math.floor(x / 128);
    }
    bytes.push(x);
    this.parts.push(Uint8Array.from(bytes));
  }

  private key(no: number, wire: number): void {
    this.varint(no * 8 + wire);
  }

  uint(no: number, v: number): this {
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`field ${no}: ${v} is not a non-negative integer`);
    this.key(no, WIRE_VARINT);
    this.varint(v);
    return this;
  }

  double(no: number, v: number): this {
    this.key(no, WIRE_I64);
    const b = new Uint8Array(8);
    view(b).setFloat64(0, v, true);
    this.parts.push(b);
    return this;
  }

  float(no: number, v: number): this {
    this.key(no, WIRE_I32);
    const b = new Uint8Array(4);
    view(b).setFloat32(0, v, true);
    this.parts.push(b);
    return this;
  }

  bytes(no: number, b: Uint8Array): this {
    this.key(no, WIRE_LEN);
    this.varint(b.length);
    this.parts.push(b);
    return this;
  }

  string(no: number, s: string): this {
    return this.bytes(no, new TextEncoder().encode(s));
  }

  message(no: number, m: MessageWriter): this {
    return this.bytes(no, m.finish());
  }

  finish(): Uint8Array {
    const n = this.parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}
