/**
 * How many messages one key version may encrypt before it must be replaced.
 *
 * Random 96-bit nonces (AES-GCM, ChaCha20-Poly1305) are safe for 2^32 messages per key (NIST SP 800-38D
 * §8.3). Keysets rotate at HALF that bound. The margin exists because counters live in memory and reach
 * storage only when the keyset is sealed again: a process that crashes after encrypting but before saving
 * under-counts, and several processes sharing one keyset file each count only their own messages. Halving
 * the bound tolerates both as long as fewer than 2^31 encryptions go unrecorded. XChaCha20 (192-bit nonces)
 * and the committing suite (a fresh 256-bit salt, hence a fresh key, per message) have no practical bound.
 */
import { AEAD_PARAMS } from '../crypto/index.js';
import type { KeyAlgorithm } from '../formats/index.js';

const UNBOUNDED = Number.MAX_SAFE_INTEGER;

export function defaultUsageLimit(algorithm: KeyAlgorithm): number {
  switch (algorithm) {
    case 'aes-256-gcm':
    case 'chacha20-poly1305':
      return AEAD_PARAMS[algorithm].maxMessages / 2;
    default:
      return UNBOUNDED;
  }
}
