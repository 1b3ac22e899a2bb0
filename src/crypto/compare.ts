/** Constant-time comparison for secrets: MACs, tags, token hashes. */
import { runtime } from '#runtime';

/**
 * True when `a` and `b` hold the same bytes. Time depends only on the lengths, never on where they differ,
 * so a caller cannot learn a secret byte by byte. Length mismatch returns false immediately: lengths are
 * public in every format enseal uses.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return runtime.timingSafeEqual(a, b);
}
