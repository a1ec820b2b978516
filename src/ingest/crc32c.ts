/**
 * CRC-32C (Castagnoli) as TFRecord framing uses it, from the `crc-32` package (SheetJS), and the
 * TFRecord mask: ((crc >>> 15) | (crc << 17)) + 0xa282ead8, all mod 2^32.
 */
import CRC32C from 'crc-32/crc32c.js';

export function crc32c(data: Uint8Array): number {
  return CRC32C.buf(data) >>> 0;
}

export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}
