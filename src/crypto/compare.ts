/** Constant-time comparison for secrets: MACs, tags, token hashes. */
import { runtime } from '#runtime';
import { hexDecode } from './encoding.js';

/**
 * True when `a` and `b` hold the same bytes. Time depends only on the lengths, never on where they differ,
 * so a caller cannot learn a secret byte by byte. Length mismatch returns false immediately: lengths are
 * public in every format enseal uses.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return runtime.timingSafeEqual(a, b);
}

/**
 * True when the hex text `given` (a stored or received MAC) encodes exactly the bytes `want`, compared in
 * constant time; false for text that is not hex at all.
 */
export function constantTimeEqualHex(given: string, want: Uint8Array): boolean {
  let bytes: Uint8Array;
  try {
    bytes = hexDecode(given);
  } catch {
    return false;
  }
  return bytes.length === want.length && runtime.timingSafeEqual(bytes, want);
}
