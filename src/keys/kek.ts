/**
 * Key-encryption keys (KEKs): the keys keysets are sealed under. A KEK comes from 32 random bytes (the
 * `ENSEAL_KEK` variable or a key file, both holding base64) or from a passphrase stretched with Argon2id.
 * Reading environment variables and files is the caller's job (the CLI does it), which keeps this layer
 * free of I/O and usable in browsers.
 */
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64Encode,
  base64UrlDecode,
  hmac,
  isEnsealError,
  randomBytes,
  readUint32BE,
  utf8Encode,
} from '../crypto/index.js';

const FINGERPRINT_INFO = utf8Encode('enseal kek fingerprint v1');

/** A 32-byte key-encryption key. */
export class KeyEncryptionKey {
  readonly #key: Uint8Array;

  private constructor(key: Uint8Array) {
    this.#key = key;
  }

  /** A fresh random KEK. */
  static generate(): KeyEncryptionKey {
    return new KeyEncryptionKey(randomBytes(32));
  }

  static fromBytes(key: Uint8Array): KeyEncryptionKey {
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'a key-encryption key must be exactly 32 bytes');
    }
    return new KeyEncryptionKey(key.slice());
  }

  /**
   * Parses the text form used by `ENSEAL_KEK` and key files: base64 or base64url of 32 bytes, surrounding
   * whitespace ignored. The error never echoes the value.
   *
   * @example
   * ```ts
   * const kek = KeyEncryptionKey.generate();
   * KeyEncryptionKey.fromText(kek.toText()).fingerprint === kek.fingerprint; // true
   * ```
   */
  static fromText(text: string): KeyEncryptionKey {
    const trimmed = typeof text === 'string' ? text.trim() : '';
    let bytes: Uint8Array | undefined;
    for (const decode of [() => base64Decode(trimmed), () => base64UrlDecode(trimmed, 'kek', 'optional')]) {
      try {
        bytes = decode();
        break;
      } catch (err) {
        if (!isEnsealError(err)) throw err;
      }
    }
    if (bytes === undefined || bytes.length !== 32) {
      throw new EnsealError(
        ErrorCode.INVALID_ARGUMENT,
        'a key-encryption key must be the base64 encoding of 32 bytes (generate one with `enseal keyset kek`)',
      );
    }
    return new KeyEncryptionKey(bytes);
  }

  /** Base64 text suitable for `ENSEAL_KEK` or a key file. */
  toText(): string {
    return base64Encode(this.#key);
  }

  /** A public 32-bit identifier, so a keyset sealed under another KEK is reported as such. */
  get fingerprint(): number {
    return readUint32BE(hmac('sha256', this.#key, FINGERPRINT_INFO), 0);
  }

  /** @internal The raw key, for the sealing code in this layer. */
  bytes(): Uint8Array {
    return this.#key;
  }

  toJSON(): { fingerprint: number } {
    return { fingerprint: this.fingerprint };
  }
}
