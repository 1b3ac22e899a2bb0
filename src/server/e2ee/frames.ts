/**
 * Relay frames: every MLS message the relay takes is `u32 length || message || zero bytes`, padded to a bucket
 * (256 B, then powers of two up to 4 MiB), so the relay and the network see only a coarse size. The relay
 * checks the framing strictly and never looks inside the message.
 */
import { malformed } from '../../crypto/index.js';

/** The smallest bucket. */
export const FRAME_MIN_BYTES = 256;
/** The largest bucket. */
export const FRAME_MAX_BYTES = 4 * 1024 * 1024;

/** Whether `n` is a bucket size: 256 × 2^k, at most 4 MiB. */
export function isFrameBucket(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < FRAME_MIN_BYTES || n > FRAME_MAX_BYTES) return false;
  let b = FRAME_MIN_BYTES;
  while (b < n) b *= 2;
  return b === n;
}

/** The bucket a message of `length` bytes is framed in, or undefined when it does not fit the largest. */
export function frameBucketFor(length: number): number | undefined {
  let b = FRAME_MIN_BYTES;
  while (b < length + 4) b *= 2;
  return b <= FRAME_MAX_BYTES ? b : undefined;
}

/** Frames a message (what a client does; the relay only checks). */
export function encodeFrame(message: Uint8Array): Uint8Array {
  const size = frameBucketFor(message.length);
  if (size === undefined) throw malformed('frame', `a message of ${message.length} bytes does not fit 4 MiB`);
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, message.length);
  out.set(message, 4);
  return out;
}

/**
 * Checks a frame: its size is a bucket, its length field fits, the message is not empty and the padding is
 * all zero. Returns the message length. Throws ERR_MALFORMED.
 */
export function checkFrame(frame: Uint8Array): number {
  if (!isFrameBucket(frame.length))
    throw malformed('frame', 'its size must be a bucket (256 bytes, then powers of two up to 4 MiB)');
  const length = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0);
  if (length === 0 || length > frame.length - 4)
    throw malformed('frame', 'its length field overruns the frame');
  let nonZero = 0;
  for (let i = 4 + length; i < frame.length; i++) nonZero |= frame[i]!;
  if (nonZero !== 0) throw malformed('frame', 'its padding is not zero');
  return length;
}
