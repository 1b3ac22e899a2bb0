/**
 * Fernet tokens (https://github.com/fernet/spec), byte for byte compatible with Python's `cryptography`:
 *
 * ```
 * token = base64url( 0x80 | timestamp (u64 BE, seconds) | IV (16) | AES-128-CBC-PKCS7 ciphertext | HMAC (32) )
 * key   = base64url( signing key (16) | encryption key (16) )
 * ```
 *
 * The HMAC-SHA256 over everything before it is verified, in constant time, before any decryption, so CBC
 * padding is never examined for an unauthenticated token (no padding oracle). Every failure is
 * ERR_DECRYPT_FAILED, except a correctly authenticated token outside its TTL (ERR_TOKEN_EXPIRED). As in
 * Python, a token dated more than 60 s in the future is rejected.
 *
 * Fernet is here for interoperability with Python services and for migrating off it; new data should use
 * keysets and envelopes (AES-256-GCM, associated data, usage limits).
 */
import {
  EnsealError,
  ErrorCode,
  aesCbcDecrypt,
  aesCbcEncryptWithRoom,
  base64UrlDecode,
  base64UrlEncode,
  constantTimeEqual,
  decryptFailed,
  hmac,
  invalidArgument,
  isEnsealError,
  pbkdf2,
  randomBytes,
  randomPublicBytes,
  toBytes,
  utf8Decode,
} from '../crypto/index.js';

const VERSION = 0x80;
const HEADER = 1 + 8 + 16;
const MAC = 32;
/** Python cryptography's _MAX_CLOCK_SKEW. */
export const FERNET_MAX_CLOCK_SKEW_SECONDS = 60;

interface FernetKey {
  signing: Uint8Array;
  encryption: Uint8Array;
}

function parseKey(key: string | Uint8Array): FernetKey {
  let raw: Uint8Array;
  if (typeof key === 'string') {
    try {
      raw = base64UrlDecode(key.trim(), 'Fernet key', 'optional');
    } catch (err) {
      if (isEnsealError(err)) throw invalidArgument('Fernet key', 'must be 32 url-safe base64-encoded bytes');
      throw err;
    }
  } else {
    raw = key;
  }
  if (!(raw instanceof Uint8Array) || raw.length !== 32) {
    throw invalidArgument('Fernet key', 'must be 32 url-safe base64-encoded bytes');
  }
  return { signing: raw.slice(0, 16), encryption: raw.slice(16, 32) };
}

/** A new random key in the form Python's `Fernet.generate_key()` returns (padded url-safe base64). */
export function generateFernetKey(): string {
  return base64UrlEncode(randomBytes(32), true);
}

/**
 * The seeds' key derivation: `urlsafe_b64encode(PBKDF2-HMAC-SHA256(password, salt, 100000, 32))`. Supported so
 * existing data can be read; for new keys prefer a random key, or Argon2id (see passwords.ts).
 */
export function fernetKeyFromPassword(
  password: string | Uint8Array,
  salt: Uint8Array,
  iterations = 100_000,
): string {
  return base64UrlEncode(pbkdf2('sha256', toBytes('password', password), salt, iterations, 32), true);
}

/** The u64 big-endian timestamp at offset 1 (seconds are below 2^53: safe integers, checked by callers). */
function writeTimestamp(out: Uint8Array, seconds: number): void {
  const high = Math.floor(seconds / 0x1_0000_0000);
  const low = seconds >>> 0;
  out[1] = high >>> 24;
  out[2] = (high >>> 16) & 0xff;
  out[3] = (high >>> 8) & 0xff;
  out[4] = high & 0xff;
  out[5] = low >>> 24;
  out[6] = (low >>> 16) & 0xff;
  out[7] = (low >>> 8) & 0xff;
  out[8] = low & 0xff;
}

/**
 * @internal Deterministic encryption for the spec's vectors; normal callers use {@link Fernet.encrypt},
 * which takes the IV from the CSPRNG.
 */
export function encryptFernetAt(
  key: string | Uint8Array,
  plaintext: Uint8Array,
  seconds: number,
  iv: Uint8Array,
): string {
  return sealWith(parseKey(key), plaintext, seconds, iv);
}

function sealWith(k: FernetKey, plaintext: Uint8Array, seconds: number, iv: Uint8Array): string {
  if (!Number.isSafeInteger(seconds) || seconds < 0)
    throw invalidArgument('timestamp', 'must be a non-negative integer');
  // One buffer from the cipher, with room for the header before the ciphertext and the MAC after it.
  const token = aesCbcEncryptWithRoom(k.encryption, iv, plaintext, HEADER, MAC);
  const macAt = token.length - MAC;
  token[0] = VERSION;
  writeTimestamp(token, seconds);
  token.set(iv, 9);
  token.set(hmac('sha256', k.signing, token.subarray(0, macAt)), macAt);
  return base64UrlEncode(token, true);
}

interface Verified {
  timestamp: number;
  plaintext: Uint8Array;
}

function decodeToken(token: string | Uint8Array): Uint8Array {
  const text = typeof token === 'string' ? token : utf8Decode(token);
  let raw: Uint8Array;
  try {
    raw = base64UrlDecode(text.trim(), 'Fernet token', 'required');
  } catch {
    throw decryptFailed();
  }
  if (raw.length < HEADER + 16 + MAC || (raw.length - HEADER - MAC) % 16 !== 0 || raw[0] !== VERSION) {
    throw decryptFailed();
  }
  return raw;
}

function verifyWith(k: FernetKey, raw: Uint8Array): Verified | undefined {
  const body = raw.subarray(0, raw.length - MAC);
  if (!constantTimeEqual(hmac('sha256', k.signing, body), raw.subarray(raw.length - MAC))) return undefined;
  const plaintext = aesCbcDecrypt(k.encryption, raw.subarray(9, 25), raw.subarray(HEADER, raw.length - MAC));
  if (plaintext === null) return undefined;
  const timestamp = Number(new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getBigUint64(1));
  return { timestamp, plaintext };
}

export interface FernetDecryptOptions {
  /** Maximum token age in seconds; omitted = no age limit. */
  ttl?: number;
  /** The current time (for tests and replay); defaults to Date.now(). */
  now?: Date | number;
}

function nowSeconds(now?: Date | number): number {
  const ms = now === undefined ? Date.now() : typeof now === 'number' ? now : now.getTime();
  return Math.floor(ms / 1000);
}

/**
 * Fernet with key rotation (Python's `MultiFernet` when given several keys): encrypts with the first key and
 * decrypts with any of them.
 *
 * @example
 * ```ts
 * const oldKey = generateFernetKey();
 * const token = new Fernet(oldKey).encrypt('hello');
 * const rotated = new Fernet([generateFernetKey(), oldKey]);
 * utf8Decode(rotated.decrypt(token, { ttl: 3600 })); // 'hello'
 * const fresh = rotated.rotate(token); // now under the first key, same timestamp
 * ```
 */
export class Fernet {
  readonly #keys: FernetKey[];

  constructor(keys: string | Uint8Array | readonly (string | Uint8Array)[]) {
    const list = Array.isArray(keys) ? keys : [keys as string | Uint8Array];
    if (list.length === 0) throw invalidArgument('keys', 'must contain at least one Fernet key');
    this.#keys = list.map(parseKey);
  }

  encrypt(plaintext: string | Uint8Array, options: { now?: Date | number } = {}): string {
    return this.#encryptAt(toBytes('plaintext', plaintext), nowSeconds(options.now));
  }

  decrypt(token: string | Uint8Array, options: FernetDecryptOptions = {}): Uint8Array {
    const { timestamp, plaintext } = this.#verify(token);
    checkTime(timestamp, options);
    return plaintext;
  }

  decryptString(token: string | Uint8Array, options: FernetDecryptOptions = {}): string {
    return utf8Decode(this.decrypt(token, options));
  }

  /** The token's creation time, after verifying it. */
  extractTimestamp(token: string | Uint8Array): Date {
    return new Date(this.#verify(token).timestamp * 1000);
  }

  /** Re-encrypts a token under the first key, keeping its original timestamp (as MultiFernet.rotate). */
  rotate(token: string | Uint8Array): string {
    const { timestamp, plaintext } = this.#verify(token);
    return this.#encryptAt(plaintext, timestamp);
  }

  #encryptAt(plaintext: Uint8Array, seconds: number): string {
    // The IV is public; the pooled CSPRNG saves a platform call per token.
    return sealWith(this.#keys[0]!, plaintext, seconds, randomPublicBytes(16));
  }

  #verify(token: string | Uint8Array): Verified {
    const raw = decodeToken(token);
    for (const k of this.#keys) {
      const verified = verifyWith(k, raw);
      if (verified !== undefined) return verified;
    }
    throw decryptFailed();
  }

  toJSON(): { keys: number } {
    return { keys: this.#keys.length };
  }
}

function checkTime(timestamp: number, options: FernetDecryptOptions): void {
  const now = nowSeconds(options.now);
  if (options.ttl !== undefined) {
    if (!Number.isFinite(options.ttl) || options.ttl < 0)
      throw invalidArgument('ttl', 'must be a non-negative number of seconds');
    if (timestamp + options.ttl < now)
      throw new EnsealError(ErrorCode.TOKEN_EXPIRED, 'the Fernet token is older than its TTL');
  }
  if (now + FERNET_MAX_CLOCK_SKEW_SECONDS < timestamp) {
    throw new EnsealError(
      ErrorCode.TOKEN_EXPIRED,
      'the Fernet token is dated in the future beyond the allowed clock skew',
    );
  }
}
