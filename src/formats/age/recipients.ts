/**
 * age recipient types: X25519 (`age1…` recipients, `AGE-SECRET-KEY-1…` identities) and scrypt (passphrases).
 * Wrapping follows the age v1 spec exactly: HKDF-SHA256 for the X25519 wrap key with salt = ephemeral share ‖
 * recipient, scrypt with salt = "age-encryption.org/v1/scrypt" ‖ salt, then ChaCha20-Poly1305 with a zero
 * nonce over the 16-byte file key.
 */
import {
  EnsealError,
  ErrorCode,
  aeadOpen,
  aeadSeal,
  concatBytes,
  hkdf,
  isEnsealError,
  malformed,
  randomBytes,
  scrypt,
  toBytes,
  utf8Encode,
  x25519PublicKey,
  x25519SharedSecret,
} from '../../crypto/index.js';
import { bech32Decode, bech32Encode } from './bech32.js';
import { b64Decode, b64Encode, type Stanza } from './header.js';

const ZERO_NONCE = new Uint8Array(12);
const X25519_INFO = utf8Encode('age-encryption.org/v1/X25519');
const SCRYPT_LABEL = utf8Encode('age-encryption.org/v1/scrypt');
/** age's own default work factor for encryption. */
export const DEFAULT_SCRYPT_LOG_N = 18;
/** Work factors above this are refused when decrypting (2^22 × 1 KiB = 4 GiB would be absurd; age caps too). */
export const MAX_SCRYPT_LOG_N = 22;

export interface AgeRecipient {
  wrap(fileKey: Uint8Array): Stanza[];
}

export interface AgeIdentity {
  /** Returns the file key, undefined when the stanza is not for this identity, or throws on a bad stanza. */
  unwrap(stanzas: Stanza[]): Uint8Array | undefined;
}

function headerError(detail: string): never {
  throw malformed('age header', detail);
}

/** Opens a wrapped file key; a wrong key means "not for us", reported as undefined. */
function unwrapFileKey(key: Uint8Array, body: Uint8Array): Uint8Array | undefined {
  if (body.length !== 32) headerError('wrapped file key must be 32 bytes');
  try {
    return aeadOpen('chacha20-poly1305', key, ZERO_NONCE, body);
  } catch (err) {
    if (isEnsealError(err, ErrorCode.DECRYPT_FAILED)) return undefined;
    throw err;
  }
}

/** Parses `age1…`. */
export function parseX25519Recipient(text: string): Uint8Array {
  if (text !== text.toLowerCase()) throw malformed('age recipient', 'must be lowercase');
  const key = bech32Decode(text, 'age', 'age recipient');
  if (key.length !== 32) throw malformed('age recipient', 'must hold a 32-byte key');
  return key;
}

/** Parses `AGE-SECRET-KEY-1…`. */
export function parseX25519Identity(text: string): Uint8Array {
  if (text !== text.toUpperCase()) throw malformed('age identity', 'must be uppercase');
  const key = bech32Decode(text, 'age-secret-key-', 'age identity');
  if (key.length !== 32) throw malformed('age identity', 'must hold a 32-byte key');
  return key;
}

export function formatX25519Recipient(publicKey: Uint8Array): string {
  return bech32Encode('age', publicKey);
}

export function formatX25519Identity(secretKey: Uint8Array): string {
  return bech32Encode('age-secret-key-', secretKey).toUpperCase();
}

export class X25519Recipient implements AgeRecipient {
  readonly #publicKey: Uint8Array;

  constructor(recipient: string | Uint8Array) {
    this.#publicKey = typeof recipient === 'string' ? parseX25519Recipient(recipient) : recipient;
  }

  wrap(fileKey: Uint8Array): Stanza[] {
    const ephemeral = randomBytes(32);
    const share = x25519PublicKey(ephemeral);
    const shared = x25519SharedSecret(ephemeral, this.#publicKey);
    const key = hkdf('sha256', shared, concatBytes(share, this.#publicKey), X25519_INFO, 32);
    return [
      {
        type: 'X25519',
        args: [b64Encode(share)],
        body: aeadSeal('chacha20-poly1305', key, ZERO_NONCE, fileKey),
      },
    ];
  }

  toString(): string {
    return formatX25519Recipient(this.#publicKey);
  }
}

export class X25519Identity implements AgeIdentity {
  readonly #secretKey: Uint8Array;
  readonly #publicKey: Uint8Array;

  constructor(identity: string | Uint8Array) {
    this.#secretKey = typeof identity === 'string' ? parseX25519Identity(identity) : identity;
    this.#publicKey = x25519PublicKey(this.#secretKey);
  }

  /** A new random identity. */
  static generate(): X25519Identity {
    return new X25519Identity(randomBytes(32));
  }

  get recipient(): X25519Recipient {
    return new X25519Recipient(this.#publicKey);
  }

  unwrap(stanzas: Stanza[]): Uint8Array | undefined {
    for (const s of stanzas) {
      if (s.type !== 'X25519') continue;
      if (s.args.length !== 1) headerError('X25519 stanza must have one argument');
      const share = b64Decode(s.args[0]!, 'X25519 share');
      if (share.length !== 32) headerError('X25519 share must be 32 bytes');
      let shared: Uint8Array;
      try {
        shared = x25519SharedSecret(this.#secretKey, share);
      } catch {
        headerError('X25519 share is a low-order point');
      }
      const key = hkdf('sha256', shared, concatBytes(share, this.#publicKey), X25519_INFO, 32);
      const fileKey = unwrapFileKey(key, s.body);
      if (fileKey !== undefined) return fileKey;
    }
    return undefined;
  }

  toString(): string {
    return formatX25519Identity(this.#secretKey);
  }

  toJSON(): { recipient: string } {
    return { recipient: this.recipient.toString() };
  }
}

function parseLogN(text: string): number {
  if (!/^[1-9][0-9]?$/.test(text))
    headerError('scrypt work factor must be a decimal number without leading zeros');
  return Number(text);
}

export class ScryptRecipient implements AgeRecipient {
  readonly #passphrase: Uint8Array;
  readonly #logN: number;

  constructor(passphrase: string | Uint8Array, logN = DEFAULT_SCRYPT_LOG_N) {
    this.#passphrase = toBytes('passphrase', passphrase);
    if (this.#passphrase.length === 0)
      throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'passphrase must not be empty');
    if (!Number.isInteger(logN) || logN < 1 || logN > MAX_SCRYPT_LOG_N) {
      throw new EnsealError(
        ErrorCode.INVALID_ARGUMENT,
        `scrypt work factor must be 1 to ${MAX_SCRYPT_LOG_N}`,
      );
    }
    this.#logN = logN;
  }

  wrap(fileKey: Uint8Array): Stanza[] {
    const salt = randomBytes(16);
    const key = scrypt(
      this.#passphrase,
      concatBytes(SCRYPT_LABEL, salt),
      { N: 2 ** this.#logN, r: 8, p: 1 },
      32,
    );
    return [
      {
        type: 'scrypt',
        args: [b64Encode(salt), String(this.#logN)],
        body: aeadSeal('chacha20-poly1305', key, ZERO_NONCE, fileKey),
      },
    ];
  }
}

export class ScryptIdentity implements AgeIdentity {
  readonly #passphrase: Uint8Array;
  readonly #maxLogN: number;

  constructor(passphrase: string | Uint8Array, maxLogN = MAX_SCRYPT_LOG_N) {
    this.#passphrase = toBytes('passphrase', passphrase);
    this.#maxLogN = maxLogN;
  }

  unwrap(stanzas: Stanza[]): Uint8Array | undefined {
    const mine = stanzas.filter((s) => s.type === 'scrypt');
    if (mine.length === 0) return undefined;
    // An scrypt stanza must be alone, or a passphrase would not be the only way in (age spec).
    if (stanzas.length !== 1) headerError('an scrypt stanza must be the only stanza');
    const s = mine[0]!;
    if (s.args.length !== 2) headerError('scrypt stanza must have two arguments');
    const salt = b64Decode(s.args[0]!, 'scrypt salt');
    if (salt.length !== 16) headerError('scrypt salt must be 16 bytes');
    const logN = parseLogN(s.args[1]!);
    if (logN > this.#maxLogN)
      headerError(`scrypt work factor ${logN} is above the accepted maximum ${this.#maxLogN}`);
    if (s.body.length !== 32) headerError('wrapped file key must be 32 bytes');
    const key = scrypt(this.#passphrase, concatBytes(SCRYPT_LABEL, salt), { N: 2 ** logN, r: 8, p: 1 }, 32);
    return unwrapFileKey(key, s.body);
  }
}

/** The meaningful lines of an identity or recipients file: `#` comments and blank lines dropped. */
function keyLines(text: string, what: string): string[] {
  const lines = text
    .split('\n')
    .map((raw) => raw.replace(/\r$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length === 0) throw malformed(what, 'contains no keys');
  return lines;
}

/** Parses an identity file: one `AGE-SECRET-KEY-1…` per line; `#` comments and blank lines allowed. */
export function parseIdentityFile(text: string): X25519Identity[] {
  return keyLines(text, 'age identity file').map((line) => new X25519Identity(line));
}

/** Parses a recipients file: one `age1…` per line; `#` comments and blank lines allowed. */
export function parseRecipientsFile(text: string): X25519Recipient[] {
  return keyLines(text, 'age recipients file').map((line) => new X25519Recipient(line));
}
