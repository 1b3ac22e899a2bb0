/**
 * Safety numbers: what two users compare (read aloud, or by scanning a QR code) to check that the directory
 * gave each the other's real identity key. Derived from the two users' identity keys only, so it does not
 * change when either adds or removes a device, and it is the same whichever user computes it.
 *
 * Each user's half is 30 digits: SHA-512 iterated 5200 times over (version, identity key, user id), so that
 * finding another key with the same half costs that many hashes per try; the first 30 bytes of the result
 * become six 5-digit groups (each 5-byte chunk mod 100000). The two halves are sorted, giving 60 digits in 12
 * groups. The QR payload carries the version and both 32-byte fingerprints, sorted the same way.
 */
import {
  concatBytes,
  constantTimeEqual,
  digest,
  invalidArgument,
  malformed,
  utf8Encode,
} from '../crypto/index.js';

/** The version of the derivation; it is part of every hash input and of the QR payload. */
export const SAFETY_NUMBER_VERSION = 1;
const ITERATIONS = 5200;

/** One user as the safety number sees them. */
export interface SafetyNumberParty {
  readonly userId: string;
  /** The user's Ed25519 identity public key (32 bytes). */
  readonly identityKey: Uint8Array;
}

/** A safety number: the 60 digits, in 12 groups of 5, and the QR payload. */
export interface SafetyNumber {
  /** 60 decimal digits. */
  readonly digits: string;
  /** The same digits as 12 groups of 5. */
  readonly groups: readonly string[];
  /** version (1 byte) || fingerprint (32 bytes) || fingerprint (32 bytes), fingerprints in sorted order. */
  readonly qrPayload: Uint8Array;
}

function fingerprint(p: SafetyNumberParty): Uint8Array {
  if (!(p.identityKey instanceof Uint8Array) || p.identityKey.length !== 32) {
    throw invalidArgument('identityKey', 'must be a 32-byte Ed25519 public key');
  }
  if (typeof p.userId !== 'string' || p.userId.length === 0)
    throw invalidArgument('userId', 'must be non-empty');
  const key = p.identityKey;
  let h = digest('sha512', concatBytes(Uint8Array.of(0, SAFETY_NUMBER_VERSION), key, utf8Encode(p.userId)));
  for (let i = 0; i < ITERATIONS; i++) h = digest('sha512', concatBytes(h, key));
  return h.slice(0, 32);
}

function digitsOf(fp: Uint8Array): string {
  let out = '';
  for (let i = 0; i < 30; i += 5) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + fp[i + j]!;
    out += String(n % 100000).padStart(5, '0');
  }
  return out;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** The safety number of a pair of users; order-independent. */
export function safetyNumber(a: SafetyNumberParty, b: SafetyNumberParty): SafetyNumber {
  const fa = fingerprint(a);
  const fb = fingerprint(b);
  const [lo, hi] = compare(fa, fb) <= 0 ? [fa, fb] : [fb, fa];
  const digits = digitsOf(lo) + digitsOf(hi);
  const groups: string[] = [];
  for (let i = 0; i < 60; i += 5) groups.push(digits.slice(i, i + 5));
  return { digits, groups, qrPayload: concatBytes(Uint8Array.of(SAFETY_NUMBER_VERSION), lo, hi) };
}

/**
 * Compares a scanned QR payload with the locally computed safety number. Returns true only when they match;
 * a payload of another version or length is ERR_MALFORMED (tell the user to update rather than "mismatch").
 */
export function verifySafetyNumberPayload(local: SafetyNumber, scanned: Uint8Array): boolean {
  if (!(scanned instanceof Uint8Array) || scanned.length !== 65)
    throw malformed('safety number QR code', 'wrong length');
  if (scanned[0] !== SAFETY_NUMBER_VERSION)
    throw malformed('safety number QR code', `unsupported version ${scanned[0]}`);
  return constantTimeEqual(local.qrPayload, scanned);
}
