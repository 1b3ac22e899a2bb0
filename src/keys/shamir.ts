/**
 * Shamir secret sharing of the root key, through the audited `shamir-secret-sharing` library (GF(2^8),
 * one random x-coordinate per share, stored as the share's last byte). This module adds only what operators
 * handle: a text encoding with a version tag, and errors with stable codes.
 *
 * A share alone reveals nothing about the key, and fewer than `threshold` shares reveal nothing either; a
 * wrong or corrupted share is only noticed when the combined key fails to open the keyring, which is why
 * the key manager verifies the result before accepting it.
 */
import { combine, split } from 'shamir-secret-sharing';
import {
  base64Decode,
  base64Encode,
  EnsealError,
  ErrorCode,
  invalidArgument,
  malformed,
} from '../crypto/index.js';

/** Share text prefix: a version tag, so a future share format can be told apart. */
const PREFIX = 'enseal-share1:';
const MAX_SHARES = 255;

export interface ShamirParams {
  /** Number of shares to issue (2–255). */
  shares: number;
  /** Shares needed to rebuild the key (2–shares). */
  threshold: number;
}

/** Default 5 shares, any 3 of which rebuild the key, as Vault does. */
export const DEFAULT_SHAMIR: Readonly<ShamirParams> = Object.freeze({ shares: 5, threshold: 3 });

/** Throws INVALID_ARGUMENT unless 2 ≤ threshold ≤ shares ≤ 255. */
export function checkShamirParams(params: ShamirParams): void {
  const { shares, threshold } = params;
  if (!Number.isInteger(shares) || shares < 2 || shares > MAX_SHARES) {
    throw invalidArgument('shares', `must be an integer from 2 to ${MAX_SHARES}`);
  }
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > shares) {
    throw invalidArgument('threshold', `must be an integer from 2 to shares (${shares})`);
  }
}

/**
 * Splits `secret` into text shares.
 *
 * @example
 * ```ts
 * const shares = await splitSecret(randomBytes(32), { shares: 5, threshold: 3 });
 * shares.length; // 5
 * ```
 */
export async function splitSecret(secret: Uint8Array, params: ShamirParams): Promise<string[]> {
  checkShamirParams(params);
  const raw = await split(secret, params.shares, params.threshold);
  const text = raw.map((s) => PREFIX + base64Encode(s));
  for (const s of raw) s.fill(0);
  return text;
}

/** Parses one share; the x-coordinate (last byte) must be non-zero. */
export function parseShare(text: string, secretLength: number): Uint8Array {
  if (typeof text !== 'string' || !text.startsWith(PREFIX)) {
    throw malformed('unseal share', `expected text starting with "${PREFIX}"`);
  }
  let bytes: Uint8Array;
  try {
    bytes = base64Decode(text.slice(PREFIX.length).trim());
  } catch {
    throw malformed('unseal share', 'not valid base64');
  }
  if (bytes.length !== secretLength + 1 || bytes[secretLength] === 0) {
    throw malformed('unseal share', 'wrong length for this key manager');
  }
  return bytes;
}

/** The share's x-coordinate, which tells two shares apart without revealing anything about the secret. */
export function shareIndex(share: Uint8Array): number {
  return share[share.length - 1]!;
}

/** Rebuilds the secret from at least `threshold` distinct parsed shares. */
export async function combineShares(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  try {
    return await combine([...shares]);
  } catch (cause) {
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'unseal shares could not be combined', { cause });
  }
}
