/**
 * Keysets at rest. A sealed keyset is a small JSON document:
 *
 * ```json
 * { "enseal": "sealed-keyset", "v": 1, "id": 123, "purpose": "encrypt", "kek": "key" | "passphrase",
 *   "data": "ens1.…" }
 * ```
 *
 * `data` is an envelope of the keyset JSON in a key-committing suite (under the KEK, or under a passphrase
 * through Argon2id), with associated data binding `id` and `purpose`, so the outer fields cannot be edited
 * and one sealed keyset cannot be passed off as another.
 */
import {
  EnsealError,
  ErrorCode,
  decryptFailed,
  malformed,
  utf8Decode,
  utf8Encode,
  type Argon2Params,
} from '../crypto/index.js';
import {
  envelopeFromText,
  envelopeToText,
  openEnvelope,
  openWithPassphrase,
  parseEnvelope,
  sealEnvelope,
  sealWithPassphrase,
  type KeyPurpose,
} from '../formats/index.js';
import type { KeyEncryptionKey } from './kek.js';
import { Keyset } from './keyset.js';

export interface SealedKeyset {
  enseal: 'sealed-keyset';
  v: 1;
  id: number;
  purpose: KeyPurpose;
  kek: 'key' | 'passphrase';
  data: string;
}

function aadFor(id: number, purpose: string): Uint8Array {
  return utf8Encode(`enseal sealed keyset v1\0${id}\0${purpose}`);
}

function contents(keyset: Keyset): Uint8Array {
  return utf8Encode(JSON.stringify(keyset.toJson()));
}

/**
 * Seals a keyset under a key-encryption key.
 *
 * @example
 * ```ts
 * const kek = KeyEncryptionKey.generate();
 * const keyset = Keyset.generate({ purpose: 'mac' });
 * const stored = JSON.stringify(sealKeyset(keyset, kek));
 * openKeyset(JSON.parse(stored), kek).id === keyset.id; // true
 * ```
 */
export function sealKeyset(keyset: Keyset, kek: KeyEncryptionKey): SealedKeyset {
  const data = sealEnvelope({
    suite: 'aes-256-gcm-hkdf-commit',
    key: kek.bytes(),
    keyId: kek.fingerprint,
    keyVersion: 1,
    plaintext: contents(keyset),
    aad: aadFor(keyset.id, keyset.purpose),
  });
  return {
    enseal: 'sealed-keyset',
    v: 1,
    id: keyset.id,
    purpose: keyset.purpose,
    kek: 'key',
    data: envelopeToText(data),
  };
}

/** Seals a keyset under a passphrase (Argon2id; OWASP parameters unless given). */
export async function sealKeysetWithPassphrase(
  keyset: Keyset,
  passphrase: string | Uint8Array,
  params?: Argon2Params,
): Promise<SealedKeyset> {
  const data = await sealWithPassphrase(passphrase, contents(keyset), {
    aad: aadFor(keyset.id, keyset.purpose),
    ...(params ? { params } : {}),
  });
  return { enseal: 'sealed-keyset', v: 1, id: keyset.id, purpose: keyset.purpose, kek: 'passphrase', data };
}

function checkShape(raw: unknown): SealedKeyset {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw malformed('sealed keyset', 'must be an object');
  const s = raw as Record<string, unknown>;
  for (const k of Object.keys(s)) {
    if (!['enseal', 'v', 'id', 'purpose', 'kek', 'data'].includes(k))
      throw malformed('sealed keyset', `unexpected field "${k}"`);
  }
  if (s.enseal !== 'sealed-keyset' || s.v !== 1)
    throw malformed('sealed keyset', 'not an enseal sealed keyset v1');
  if (typeof s.id !== 'number' || !Number.isInteger(s.id) || s.id < 0 || s.id > 0xffffffff) {
    throw malformed('sealed keyset', 'invalid id');
  }
  if (typeof s.purpose !== 'string') throw malformed('sealed keyset', 'invalid purpose');
  if (s.kek !== 'key' && s.kek !== 'passphrase') throw malformed('sealed keyset', 'invalid kek');
  if (typeof s.data !== 'string') throw malformed('sealed keyset', 'invalid data');
  return s as unknown as SealedKeyset;
}

function fromContents(sealed: SealedKeyset, plaintext: Uint8Array): Keyset {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(plaintext));
  } catch {
    throw decryptFailed();
  }
  const keyset = Keyset.fromPlaintext(json, { allowPlaintextKeyMaterial: true });
  // Authenticated already through the associated data; checked again so a mismatch can never slip by.
  if (keyset.id !== sealed.id || keyset.purpose !== sealed.purpose) throw decryptFailed();
  return keyset;
}

/** Opens a keyset sealed with {@link sealKeyset}. */
export function openKeyset(sealed: unknown, kek: KeyEncryptionKey): Keyset {
  const s = checkShape(sealed);
  if (s.kek !== 'key')
    throw new EnsealError(ErrorCode.KEK_MISSING, 'this keyset is sealed under a passphrase');
  const env = parseEnvelope(envelopeFromText(s.data));
  if (env.suite !== 'aes-256-gcm-hkdf-commit') throw malformed('sealed keyset', 'unexpected envelope suite');
  if (env.keyId !== kek.fingerprint) {
    throw new EnsealError(
      ErrorCode.KEY_NOT_FOUND,
      `this keyset is sealed under a different key-encryption key (fingerprint ${env.keyId.toString(16)})`,
    );
  }
  return fromContents(s, openEnvelope(env, kek.bytes(), aadFor(s.id, s.purpose)));
}

/** Opens a keyset sealed with {@link sealKeysetWithPassphrase}. A wrong passphrase is ERR_DECRYPT_FAILED. */
export async function openKeysetWithPassphrase(
  sealed: unknown,
  passphrase: string | Uint8Array,
): Promise<Keyset> {
  const s = checkShape(sealed);
  if (s.kek !== 'passphrase')
    throw new EnsealError(ErrorCode.KEK_MISSING, 'this keyset is sealed under a key-encryption key');
  return fromContents(s, await openWithPassphrase(passphrase, s.data, { aad: aadFor(s.id, s.purpose) }));
}
