/**
 * TFRecord framing, as TensorFlow's event files use it: each record is
 *   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data.
 *
 * readRecords streams a file record by record through one reusable buffer (a record larger than
 * the buffer gets its own), so a log of any size is read in memory bounded by its largest record.
 * A file that ends inside a record (a writer still running, or a copy taken mid-write) ends the
 * stream: onTorn is told the offset and the rest is skipped. A record whose length CRC or data CRC
 * does not match, anywhere else, is an InputError naming the file and the record's byte offset.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { InputError } from '../util/errors.js';
import { maskedCrc32c } from './crc32c.js';

export interface TfRecord {
  /** Byte offset of the record's header in the file. */
  offset: number;
  /** The record's data: a view valid until the next record is read. */
  data: Uint8Array;
}

/** Records larger than this are refused as corrupt (a protection against a garbage length). */
const MAX_RECORD = 1 << 30;
const CHUNK = 1 << 20;

export function* readRecords(file: string, onTorn?: (offset: number, size: number) => void): Generator<TfRecord> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new InputError(`cannot read: ${(e as Error).message}`, file);
  }
  try {
    const size = fstatSync(fd).size;
    let buf = Buffer.allocUnsafe(CHUNK);
    let bufStart = 0; // file offset of buf[0]
    let bufLen = 0;
    let offset = 0;
    // Make bytes [at, at + n) available in buf; returns their index in buf.
    const need = (at: number, n: number): number => {
      if (at >= bufStart && at + n <= bufStart + bufLen) return at - bufStart;
      if (n > buf.length) buf = Buffer.allocUnsafe(Math.max(n, CHUNK));
      else if (buf.length > CHUNK && n <= CHUNK) buf = Buffer.allocUnsafe(CHUNK);
      bufStart = at;
      bufLen = 0;
      const want = Math.min(buf.length, size - at);
      while (bufLen < want) {
        const got = readSync(fd, buf, bufLen, want - bufLen, at + bufLen);
        if (got === 0) break;
        bufLen += got;
      }
      return 0;
    };
    while (offset < size) {
      if (size - offset < 12) {
        onTorn?.(offset, size);
        return;
      }
      let i = need(offset, 12);
      const lenLo = buf.readUInt32LE(i);
      const lenHi = buf.readUInt32LE(i + 4);
      const lenCrc = buf.readUInt32LE(i + 8);
      if (maskedCrc32c(buf.subarray(i, i + 8)) !== lenCrc) {
        throw new InputError(`corrupt record at byte ${offset}: length checksum mismatch`, file);
      }
      const len = lenHi * 2 ** 32 + lenLo;
      if (len > MAX_RECORD) throw new InputError(`corrupt record at byte ${offset}: length ${len} is implausible`, file);
      if (offset + 12 + len + 4 > size) {
        onTorn?.(offset, size);
        return;
      }
      i = need(offset + 12, len + 4);
      const data = buf.subarray(i, i + len);
      if (maskedCrc32c(data) !== buf.readUInt32LE(i + len)) {
        throw new InputError(`corrupt record at byte ${offset}: data checksum mismatch`, file);
      }
      yield { offset, data };
      offset += 12 + len + 4;
    }
  } finally {
    closeSync(fd);
  }
}

/** One record's bytes (header, data, footer). */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = Buffer.alloc(12 + data.length + 4);
  out.writeUInt32LE(data.length % 2 ** 32, 0);
  out.writeUInt32LE(Math.floor(data.length / 2 ** 32), 4);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}
