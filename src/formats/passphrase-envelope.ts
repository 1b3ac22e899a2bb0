/**
 * Envelopes sealed under a passphrase: Argon2id stretches the passphrase (parameters and salt travel in the
 * header, bounded when parsed so a hostile header cannot exhaust memory), and the key-committing suite seals
 * the data, because passphrases are exactly the case where an attacker may choose or guess keys.
 */
import {
  EnsealError,
  ErrorCode,
  argon2id,
  randomBytes,
  toBytes,
  unsupported,
  wipe,
  type Argon2Params,
} from '../crypto/index.js';
import { envelopeBytes, envelopeToText, openEnvelope, parseEnvelope, sealEnvelope } from './envelope.js';

/** OWASP Password Storage Cheat Sheet, Argon2id: 19 MiB of memory, 2 iterations, 1 lane. */
export const DEFAULT_PASSPHRASE_PARAMS: Readonly<Argon2Params> = Object.freeze({
  memoryKiB: 19456,
  iterations: 2,
  parallelism: 1,
});

/** Upper bounds accepted when opening, so a crafted header cannot make us allocate or spin without limit. */
export const MAX_PASSPHRASE_PARAMS: Readonly<Argon2Params> = Object.freeze({
  memoryKiB: 1024 * 1024,
  iterations: 64,
  parallelism: 16,
});

export interface PassphraseSealOptions {
  aad?: string | Uint8Array;
  params?: Argon2Params;
}

function checkPassphrase(passphrase: string | Uint8Array): Uint8Array {
  const bytes = toBytes('passphrase', passphrase);
  if (bytes.length === 0) throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'passphrase must not be empty');
  return bytes;
}

/**
 * Seals `plaintext` under a passphrase and returns the text form.
 *
 * @example
 * ```ts
 * const sealed = await sealWithPassphrase('correct horse battery staple', 'secret notes', {
 *   params: { memoryKiB: 1024, iterations: 1, parallelism: 1 }, // low cost for the example only
 * });
 * utf8Decode(await openWithPassphrase('correct horse battery staple', sealed)); // 'secret notes'
 * ```
 */
export async function sealWithPassphrase(
  passphrase: string | Uint8Array,
  plaintext: string | Uint8Array,
  options: PassphraseSealOptions = {},
): Promise<string> {
  const params = options.params ?? DEFAULT_PASSPHRASE_PARAMS;
  const salt = randomBytes(16);
  const key = await argon2id(checkPassphrase(passphrase), salt, params, 32);
  try {
    return envelopeToText(
      sealEnvelope({
        suite: 'argon2id-aes-256-gcm-hkdf-commit',
        key,
        keyId: 0,
        keyVersion: 0,
        plaintext: toBytes('plaintext', plaintext),
        aad: options.aad === undefined ? undefined : toBytes('aad', options.aad),
        kdf: { ...params, salt },
      }),
    );
  } finally {
    wipe(key);
  }
}

/** Opens a passphrase envelope (text or binary). A wrong passphrase is ERR_DECRYPT_FAILED. */
export async function openWithPassphrase(
  passphrase: string | Uint8Array,
  sealed: string | Uint8Array,
  options: { aad?: string | Uint8Array } = {},
): Promise<Uint8Array> {
  const env = parseEnvelope(envelopeBytes(sealed));
  const kdf = env.kdf;
  if (kdf === undefined) throw unsupported('not a passphrase envelope');
  if (
    kdf.memoryKiB > MAX_PASSPHRASE_PARAMS.memoryKiB ||
    kdf.iterations > MAX_PASSPHRASE_PARAMS.iterations ||
    kdf.parallelism > MAX_PASSPHRASE_PARAMS.parallelism ||
    kdf.parallelism < 1 ||
    kdf.iterations < 1 ||
    kdf.memoryKiB < 8 * kdf.parallelism
  ) {
    throw unsupported('passphrase envelope asks for Argon2id parameters outside the accepted bounds');
  }
  const key = await argon2id(checkPassphrase(passphrase), kdf.salt, kdf, 32);
  try {
    return openEnvelope(env, key, options.aad === undefined ? undefined : toBytes('aad', options.aad));
  } finally {
    wipe(key);
  }
}
