/**
 * The enseal envelope: a self-describing authenticated ciphertext.
 *
 * Binary layout (all integers big-endian; specified with vectors in docs/formats.md):
 *
 * ```
 * version(1)=0x01 | suite(1) | suite header | nonce or salt | [commitment(32)] | ciphertext || tag(16)
 * keyed suites:      suite header = key id (u32) || key version (u32)
 * passphrase suite:  suite header = Argon2id m KiB (u32) || t (u32) || p (u8) || Argon2 salt (16)
 * ```
 *
 * The AEAD's associated data is the whole header (everything before the ciphertext) followed by the caller's
 * associated data, so no header byte can change without failing authentication; the header's length is fixed
 * by its suite, which makes the concatenation unambiguous. The text form is `ens1.` + base64url (no padding).
 *
 * Key-committing suites (0x11, 0x21) derive a per-message key and a 32-byte commitment from the key and a
 * random 32-byte salt with HKDF-SHA256, the construction of the AWS Encryption SDK's committing suites. The
 * commitment is checked in constant time before decrypting, so a ciphertext opens under at most one key; the
 * plain GCM/ChaCha suites do not have that property (partitioning-oracle and "invisible salamander" attacks),
 * which matters whenever an attacker may choose or guess keys (passphrases, multi-recipient messages).
 */
import {
  EnsealError,
  ErrorCode,
  aeadOpen,
  aeadSealWithRoom,
  aeadParams,
  assertBytes,
  base64UrlDecode,
  base64UrlEncode,
  concatBytes,
  constantTimeEqual,
  decryptFailed,
  hkdf,
  malformed,
  randomPublicBytes,
  readUint32BE,
  unsupported,
  utf8Encode,
  writeUint32BE,
  type AeadAlgorithm,
} from '../crypto/index.js';

export const ENVELOPE_VERSION = 0x01;
export const ENVELOPE_TEXT_PREFIX = 'ens1.';

/** Suite names, as they appear in keysets and docs. */
export type EnvelopeSuite =
  | 'aes-256-gcm'
  | 'chacha20-poly1305'
  | 'xchacha20-poly1305'
  | 'aes-256-gcm-hkdf-commit'
  | 'argon2id-aes-256-gcm-hkdf-commit';

interface SuiteSpec {
  readonly id: number;
  readonly name: EnvelopeSuite;
  readonly aead: AeadAlgorithm;
  /** Length of the nonce field (for committing suites: the HKDF salt). */
  readonly nonceLength: number;
  readonly committing: boolean;
  readonly passphrase: boolean;
}

const SUITES: readonly SuiteSpec[] = [
  {
    id: 0x01,
    name: 'aes-256-gcm',
    aead: 'aes-256-gcm',
    nonceLength: 12,
    committing: false,
    passphrase: false,
  },
  {
    id: 0x02,
    name: 'chacha20-poly1305',
    aead: 'chacha20-poly1305',
    nonceLength: 12,
    committing: false,
    passphrase: false,
  },
  {
    id: 0x03,
    name: 'xchacha20-poly1305',
    aead: 'xchacha20-poly1305',
    nonceLength: 24,
    committing: false,
    passphrase: false,
  },
  {
    id: 0x11,
    name: 'aes-256-gcm-hkdf-commit',
    aead: 'aes-256-gcm',
    nonceLength: 32,
    committing: true,
    passphrase: false,
  },
  {
    id: 0x21,
    name: 'argon2id-aes-256-gcm-hkdf-commit',
    aead: 'aes-256-gcm',
    nonceLength: 32,
    committing: true,
    passphrase: true,
  },
];

const BY_ID = new Map(SUITES.map((s) => [s.id, s]));
const BY_NAME = new Map(SUITES.map((s) => [s.name, s]));

const TAG_LENGTH = 16;
const COMMITMENT_LENGTH = 32;
const KEYED_HEADER = 8;
/** m (4) + t (4) + p (1) + salt (16). */
const PASSPHRASE_HEADER = 25;
const EMPTY = new Uint8Array(0);
const ZERO_NONCE = new Uint8Array(12);
const COMMIT_INFO = utf8Encode('enseal envelope v1 key commitment');

/** Argon2id parameters carried in a passphrase envelope's header. */
export interface PassphraseKdfParams {
  memoryKiB: number;
  iterations: number;
  parallelism: number;
  salt: Uint8Array;
}

/** A parsed envelope. `header` is the authenticated header bytes; `body` is ciphertext || tag. */
export interface ParsedEnvelope {
  readonly suite: EnvelopeSuite;
  readonly keyId: number;
  readonly keyVersion: number;
  readonly kdf: PassphraseKdfParams | undefined;
  readonly nonce: Uint8Array;
  readonly commitment: Uint8Array | undefined;
  readonly header: Uint8Array;
  readonly body: Uint8Array;
}

/** Looks up a suite by name; throws ERR_UNSUPPORTED for unknown names. */
function suiteByName(name: string): SuiteSpec {
  const spec = BY_NAME.get(name as EnvelopeSuite);
  if (spec === undefined) throw unsupported(`unsupported envelope suite "${name}"`);
  return spec;
}

/** Whether a suite binds its ciphertext to exactly one key. */
export function isKeyCommitting(suite: EnvelopeSuite): boolean {
  return suiteByName(suite).committing;
}

/** Nonce-field length of `suite` (the HKDF salt for committing suites). */
export function envelopeNonceLength(suite: EnvelopeSuite): number {
  return suiteByName(suite).nonceLength;
}

function headerLength(spec: SuiteSpec): number {
  const suiteHeader = spec.passphrase ? PASSPHRASE_HEADER : KEYED_HEADER;
  return 2 + suiteHeader + spec.nonceLength + (spec.committing ? COMMITMENT_LENGTH : 0);
}

/** Derives the per-message key and the commitment of a committing suite. */
function commitKeys(key: Uint8Array, salt: Uint8Array, prefix: Uint8Array): [Uint8Array, Uint8Array] {
  const okm = hkdf('sha256', key, salt, concatBytes(COMMIT_INFO, prefix), 64);
  return [okm.subarray(0, 32), okm.subarray(32, 64)];
}

function associatedData(header: Uint8Array, aad: Uint8Array): Uint8Array {
  return aad.length === 0 ? header : concatBytes(header, aad);
}

/** Inputs for sealing; `nonce` is for vector generation only and must otherwise be left to the CSPRNG. */
export interface SealInput {
  suite: EnvelopeSuite;
  key: Uint8Array;
  keyId: number;
  keyVersion: number;
  plaintext: Uint8Array;
  aad?: Uint8Array;
  kdf?: PassphraseKdfParams;
  /** @internal Deterministic nonce/salt for test vectors. */
  nonce?: Uint8Array;
}

/**
 * Seals `plaintext` into a binary envelope under `key`. Most callers want a {@link Keyset} (which picks the
 * key, counts usage and rotates) or {@link sealWithPassphrase}; this is the primitive they build on.
 *
 * @example
 * ```ts
 * const key = randomBytes(32);
 * const sealed = sealEnvelope({ suite: 'aes-256-gcm', key, keyId: 7, keyVersion: 1, plaintext: utf8Encode('hi') });
 * utf8Decode(openEnvelope(sealed, key)); // 'hi'
 * ```
 */
export function sealEnvelope(input: SealInput): Uint8Array {
  const spec = suiteByName(input.suite);
  const aead = aeadParams(spec.aead);
  assertBytes('key', input.key, aead.keyLength);
  assertBytes('plaintext', input.plaintext);
  const aad = input.aad ?? EMPTY;
  assertBytes('aad', aad);
  const nonce = input.nonce ?? randomPublicBytes(spec.nonceLength);
  assertBytes('nonce', nonce, spec.nonceLength);

  const hlen = headerLength(spec);
  const header = new Uint8Array(hlen);
  header[0] = ENVELOPE_VERSION;
  header[1] = spec.id;
  let offset = writeSuiteHeader(header, spec, input);
  header.set(nonce, offset);
  offset += spec.nonceLength;

  let key = input.key;
  let aeadNonce = nonce;
  if (spec.committing) {
    const [messageKey, commitment] = commitKeys(
      input.key,
      nonce,
      header.subarray(0, offset - spec.nonceLength),
    );
    header.set(commitment, offset);
    key = messageKey;
    aeadNonce = ZERO_NONCE;
  }
  // The AEAD leaves room for the header in front of the ciphertext, so the body is never copied twice.
  const out = aeadSealWithRoom(spec.aead, key, aeadNonce, input.plaintext, associatedData(header, aad), hlen);
  out.set(header, 0);
  if (spec.committing) key.fill(0);
  return out;
}

function writeSuiteHeader(out: Uint8Array, spec: SuiteSpec, input: SealInput): number {
  if (spec.passphrase) {
    const kdf = input.kdf;
    if (kdf === undefined) throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'kdf parameters are required');
    assertBytes('kdf.salt', kdf.salt, 16);
    writeUint32BE(out, 2, kdf.memoryKiB);
    writeUint32BE(out, 6, kdf.iterations);
    out[10] = kdf.parallelism;
    out.set(kdf.salt, 11);
    return 2 + PASSPHRASE_HEADER;
  }
  checkUint32('keyId', input.keyId);
  checkUint32('keyVersion', input.keyVersion);
  writeUint32BE(out, 2, input.keyId);
  writeUint32BE(out, 6, input.keyVersion);
  return 2 + KEYED_HEADER;
}

function checkUint32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, `${name} must be an unsigned 32-bit integer`);
  }
}

/**
 * Parses a binary envelope without decrypting it. Header fields are not yet authenticated: use them only
 * to pick a key, then {@link openEnvelope}.
 */
export function parseEnvelope(data: Uint8Array): ParsedEnvelope {
  if (!(data instanceof Uint8Array)) throw malformed('envelope', 'expected bytes');
  if (data.length < 2) throw malformed('envelope', 'too short');
  if (data[0] !== ENVELOPE_VERSION) throw unsupported(`unsupported envelope version ${data[0]}`);
  const spec = BY_ID.get(data[1]!);
  if (spec === undefined) throw unsupported(`unsupported envelope suite 0x${data[1]!.toString(16)}`);
  const hlen = headerLength(spec);
  if (data.length < hlen + TAG_LENGTH) throw malformed('envelope', 'truncated');

  let offset = 2 + (spec.passphrase ? PASSPHRASE_HEADER : KEYED_HEADER);
  const nonce = data.subarray(offset, offset + spec.nonceLength);
  offset += spec.nonceLength;
  // A plain object with a fixed shape: this runs on every decrypt.
  return {
    suite: spec.name,
    keyId: spec.passphrase ? 0 : readUint32BE(data, 2),
    keyVersion: spec.passphrase ? 0 : readUint32BE(data, 6),
    kdf: spec.passphrase
      ? {
          memoryKiB: readUint32BE(data, 2),
          iterations: readUint32BE(data, 6),
          parallelism: data[10]!,
          salt: data.subarray(11, 27),
        }
      : undefined,
    nonce,
    commitment: spec.committing ? data.subarray(offset, offset + COMMITMENT_LENGTH) : undefined,
    header: data.subarray(0, hlen),
    body: data.subarray(hlen),
  };
}

/**
 * Verifies and decrypts a parsed or binary envelope under `key`. Every authentication failure — wrong key,
 * wrong associated data, any modified byte — is ERR_DECRYPT_FAILED with no further detail.
 */
export function openEnvelope(
  data: Uint8Array | ParsedEnvelope,
  key: Uint8Array,
  aad: Uint8Array = EMPTY,
): Uint8Array {
  const env = data instanceof Uint8Array ? parseEnvelope(data) : data;
  const spec = suiteByName(env.suite);
  assertBytes('key', key, aeadParams(spec.aead).keyLength);
  assertBytes('aad', aad);
  const ad = associatedData(env.header, aad);
  if (!spec.committing) return aeadOpen(spec.aead, key, env.nonce, env.body, ad);

  const prefixLength = env.header.length - spec.nonceLength - COMMITMENT_LENGTH;
  const [messageKey, commitment] = commitKeys(key, env.nonce, env.header.subarray(0, prefixLength));
  try {
    if (!constantTimeEqual(commitment, env.commitment!)) throw decryptFailed();
    return aeadOpen(spec.aead, messageKey, ZERO_NONCE, env.body, ad);
  } finally {
    messageKey.fill(0);
  }
}

/** Text form: `ens1.` + base64url without padding. */
export function envelopeToText(envelope: Uint8Array): string {
  return ENVELOPE_TEXT_PREFIX + base64UrlEncode(envelope);
}

/** Parses the text form strictly (exact prefix, canonical base64url). */
export function envelopeFromText(text: string): Uint8Array {
  if (typeof text !== 'string') throw malformed('envelope', 'expected a string');
  if (!text.startsWith(ENVELOPE_TEXT_PREFIX))
    throw malformed('envelope', `text form must start with "${ENVELOPE_TEXT_PREFIX}"`);
  return base64UrlDecode(text.slice(ENVELOPE_TEXT_PREFIX.length), 'envelope');
}

/** Accepts either form; strings are parsed as the text form. */
export function envelopeBytes(value: string | Uint8Array): Uint8Array {
  return typeof value === 'string' ? envelopeFromText(value) : value;
}
