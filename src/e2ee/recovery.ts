/**
 * Recovery of a user's identity key, end to end: the service only ever stores ciphertext.
 *
 * - Passphrase backup: the identity private key sealed in a passphrase envelope (Argon2id, then the
 *   key-committing AES-256-GCM suite of src/formats), bound to the user id as associated data.
 * - Threshold shares: the key split into Shamir shares (src/keys) for other devices or trusted contacts; any
 *   `threshold` of them rebuild it.
 *
 * Either way the restored key is checked against the identity key published in the directory, so a wrong
 * passphrase, a forged backup or a mixed-up share yields a typed error, never a wrong key in use.
 */
import {
  EnsealError,
  ErrorCode,
  constantTimeEqual,
  decryptFailed,
  invalidArgument,
  signingPublicKey,
  wipe,
  type Argon2Params,
} from '../crypto/index.js';
import { openWithPassphrase, sealWithPassphrase } from '../formats/index.js';
import { combineShares, parseShare, splitSecret, type ShamirParams } from '../keys/index.js';

function backupAad(userId: string): string {
  return `enseal e2ee identity backup v1\n${userId}`;
}

/** Seals the identity private key under a passphrase (text form, safe to store on the service). */
export function backupIdentityKey(
  userId: string,
  identityPrivateKey: Uint8Array,
  passphrase: string,
  params?: Argon2Params,
): Promise<string> {
  if (identityPrivateKey.length !== 32) throw invalidArgument('identityPrivateKey', 'must be 32 bytes');
  return sealWithPassphrase(passphrase, identityPrivateKey, {
    aad: backupAad(userId),
    ...(params ? { params } : {}),
  });
}

function checked(key: Uint8Array, identityKey: Uint8Array): Uint8Array {
  let ok = key.length === 32;
  if (ok) {
    try {
      ok = constantTimeEqual(signingPublicKey('ed25519', key), identityKey);
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    wipe(key);
    throw new EnsealError(
      ErrorCode.E2EE_UNTRUSTED_IDENTITY,
      'the recovered key is not the identity key the directory publishes for this user',
    );
  }
  return key;
}

/**
 * Opens a passphrase backup and checks the key against `identityKey` (the directory's). A wrong passphrase or an
 * altered backup is ERR_DECRYPT_FAILED; a backup of another key is ERR_E2EE_UNTRUSTED_IDENTITY.
 */
export async function restoreIdentityKey(
  userId: string,
  backup: string,
  passphrase: string,
  identityKey: Uint8Array,
): Promise<Uint8Array> {
  let key: Uint8Array;
  try {
    key = await openWithPassphrase(passphrase, backup, { aad: backupAad(userId) });
  } catch (err) {
    if (err instanceof EnsealError && err.code !== ErrorCode.DECRYPT_FAILED) throw err;
    throw decryptFailed();
  }
  return checked(key, identityKey);
}

/** Splits the identity private key into Shamir shares (text, `enseal-share1:` prefix). */
export function splitIdentityKey(identityPrivateKey: Uint8Array, params: ShamirParams): Promise<string[]> {
  if (identityPrivateKey.length !== 32) throw invalidArgument('identityPrivateKey', 'must be 32 bytes');
  return splitSecret(identityPrivateKey, params);
}

/**
 * Rebuilds the identity key from shares and checks it against `identityKey`. Too few or foreign shares are
 * ERR_E2EE_UNTRUSTED_IDENTITY (Shamir shares carry no MAC: the directory's key is the check).
 */
export async function combineIdentityShares(
  shares: readonly string[],
  identityKey: Uint8Array,
): Promise<Uint8Array> {
  if (shares.length < 2) throw invalidArgument('shares', 'need at least two');
  const parsed = shares.map((s) => parseShare(s, 32));
  const seen = new Set(parsed.map((p) => p[32]));
  if (seen.size !== parsed.length) throw invalidArgument('shares', 'contain the same share twice');
  const key = await combineShares(parsed);
  for (const p of parsed) wipe(p);
  return checked(key, identityKey);
}
