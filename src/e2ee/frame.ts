/**
 * The relay's padded frames (docs/e2ee-service.md, "Frames"): every MLS message the relay takes is sent as
 * `u32 length || message || zero bytes`, padded to a bucket size (256 bytes, then powers of two up to 4 MiB), so
 * the relay learns only a coarse size class. Decoding is strict: the size must be a bucket, the length must fit,
 * and every padding byte must be zero; anything else is ERR_MALFORMED.
 */
import { invalidArgument, malformed, readUint32BE, writeUint32BE } from '../crypto/index.js';

/** The smallest frame. */
export const FRAME_MIN_BYTES = 256;
/** The largest frame (4 MiB); a message must fit in it with its 4-byte length. */
export const FRAME_MAX_BYTES = 4 * 1024 * 1024;

/** The bucket a message of `length` bytes is padded to (its frame's size). */
export function frameBucket(length: number): number {
  if (!Number.isSafeInteger(length) || length < 0 || length > FRAME_MAX_BYTES - 4) {
    throw invalidArgument('message', `must be at most ${FRAME_MAX_BYTES - 4} bytes to fit a frame`);
  }
  let size = FRAME_MIN_BYTES;
  while (size < length + 4) size *= 2;
  return size;
}

/** True when `size` is one of the frame sizes. */
export function isFrameBucket(size: number): boolean {
  if (!Number.isSafeInteger(size) || size < FRAME_MIN_BYTES || size > FRAME_MAX_BYTES) return false;
  let s = FRAME_MIN_BYTES;
  while (s < size) s *= 2;
  return s === size;
}

/**
 * Frames a message for the relay.
 *
 * @example
 * ```ts
 * const frame = encodeFrame(utf8Encode('hello'));
 * frame.length; // 256
 * utf8Decode(decodeFrame(frame)); // 'hello'
 * ```
 */
export function encodeFrame(message: Uint8Array): Uint8Array {
  if (!(message instanceof Uint8Array)) throw invalidArgument('message', 'must be bytes');
  const frame = new Uint8Array(frameBucket(message.length));
  writeUint32BE(frame, 0, message.length);
  frame.set(message, 4);
  return frame;
}

/** The message inside a frame. Throws ERR_MALFORMED for a wrong size, an overrunning length or nonzero padding. */
export function decodeFrame(frame: Uint8Array): Uint8Array {
  if (!(frame instanceof Uint8Array)) throw malformed('relay frame', 'expected bytes');
  if (!isFrameBucket(frame.length)) throw malformed('relay frame', 'size is not a frame bucket');
  const length = readUint32BE(frame, 0);
  if (length > frame.length - 4) throw malformed('relay frame', 'length overruns the frame');
  let padding = 0;
  for (let i = 4 + length; i < frame.length; i++) padding |= frame[i]!;
  if (padding !== 0) throw malformed('relay frame', 'padding is not zero');
  return frame.slice(4, 4 + length);
}
