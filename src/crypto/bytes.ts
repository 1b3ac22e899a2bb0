/**
 * Byte helpers shared by every layer: argument checks that name the parameter, concatenation, and wiping.
 * Kept free of platform APIs so it runs unchanged in browsers.
 */
import { invalidArgument } from './errors.js';

/** Throws ERR_INVALID_ARGUMENT unless `value` is a Uint8Array (of `length` bytes, when given). */
export function assertBytes(name: string, value: unknown, ...lengths: number[]): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalidArgument(name, 'must be a Uint8Array');
  if (lengths.length > 0 && !lengths.includes(value.length)) {
    throw invalidArgument(name, `must be ${lengths.join(' or ')} bytes, got ${value.length}`);
  }
}

/** Throws ERR_INVALID_ARGUMENT unless `value` is a safe integer within [min, max]. */
export function assertInteger(
  name: string,
  value: unknown,
  min: number,
  max: number,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidArgument(name, `must be an integer in [${min}, ${max}]`);
  }
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Overwrites key material that is no longer needed. Best effort: JS engines may have copied it. */
export function wipe(...buffers: (Uint8Array | undefined)[]): void {
  for (const buf of buffers) buf?.fill(0);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Strict UTF-8 decode: invalid sequences throw instead of becoming U+FFFD. */
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Accepts a string (UTF-8 encoded) or bytes; used by APIs that take either. */
export function toBytes(name: string, value: string | Uint8Array): Uint8Array {
  if (typeof value === 'string') return encoder.encode(value);
  assertBytes(name, value);
  return value;
}

export function writeUint32BE(out: Uint8Array, offset: number, value: number): void {
  out[offset] = (value >>> 24) & 0xff;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

export function readUint32BE(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>>
    0
  );
}
