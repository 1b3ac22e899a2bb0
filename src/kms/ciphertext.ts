/**
 * The text form of key-manager outputs, Vault Transit's `vault:v<version>:<base64>`, so that existing Vault
 * clients and stored Vault ciphertexts keep working. The version prefix is only a hint for choosing the key
 * version: it is not authenticated by itself, but every version's key differs, so a forged hint only makes
 * decryption fail.
 */
import { base64Decode, base64Encode, malformed } from '../crypto/index.js';

const PREFIX = 'vault:v';
/** Versions above this are rejected while parsing, so a hostile value cannot make us allocate or loop. */
const MAX_VERSION_DIGITS = 10;

export interface VersionedValue {
  readonly version: number;
  readonly bytes: Uint8Array;
}

/** Formats `vault:v<version>:<base64>`. */
export function formatVersioned(version: number, bytes: Uint8Array): string {
  return `${PREFIX}${version}:${base64Encode(bytes)}`;
}

/** Parses `vault:v<version>:<base64>`; throws MALFORMED with a precise reason (no secret is involved yet). */
export function parseVersioned(what: string, text: unknown): VersionedValue {
  if (typeof text !== 'string') throw malformed(what, 'must be a string');
  if (!text.startsWith(PREFIX)) throw malformed(what, 'must start with "vault:v"');
  const colon = text.indexOf(':', PREFIX.length);
  if (colon < 0) throw malformed(what, 'missing ":" after the version');
  const digits = text.slice(PREFIX.length, colon);
  if (!/^[1-9][0-9]*$/.test(digits) || digits.length > MAX_VERSION_DIGITS) {
    throw malformed(what, 'version must be a positive integer');
  }
  const version = Number(digits);
  if (!Number.isSafeInteger(version)) throw malformed(what, 'version is out of range');
  let bytes: Uint8Array;
  try {
    bytes = base64Decode(text.slice(colon + 1));
  } catch {
    throw malformed(what, 'payload is not canonical base64');
  }
  return { version, bytes };
}
