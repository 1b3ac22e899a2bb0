/** Bech32 (BIP 173) for age keys, through @scure/base, with age's lifted length limit. */
import { bech32 } from '@scure/base';
import { malformed } from '../../crypto/index.js';

/** Encodes bytes; the result is lowercase (callers upper-case secret keys, as age does). */
export function bech32Encode(prefix: string, bytes: Uint8Array): string {
  return bech32.encode(prefix, bech32.toWords(bytes), false);
}

/** Decodes a Bech32 string that must carry `prefix` (case-insensitive, not mixed case). */
export function bech32Decode(text: string, prefix: string, what: string): Uint8Array {
  let decoded: { prefix: string; words: number[] };
  try {
    decoded = bech32.decode(text as `${string}1${string}`, false);
  } catch {
    throw malformed(what, 'invalid Bech32 encoding');
  }
  if (decoded.prefix.toLowerCase() !== prefix) throw malformed(what, `expected the "${prefix}" prefix`);
  try {
    return bech32.fromWords(decoded.words);
  } catch {
    throw malformed(what, 'invalid Bech32 data');
  }
}
