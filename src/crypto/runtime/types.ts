/**
 * The runtime seam. Everything above `src/crypto/runtime` reaches platform cryptography only through this
 * interface. `#runtime` (package.json `imports`) selects `node.ts` (OpenSSL through node:crypto) or
 * `browser.ts` (WebCrypto randomness plus the audited noble libraries) by export condition, as jose v5 did.
 *
 * All operations are synchronous so that hot paths (envelope encrypt/decrypt of small values) pay no
 * promise overhead. Inputs are validated by the callers in src/crypto; implementations may assume lengths
 * are already correct.
 */

/** AEADs the platform provides natively. XChaCha20-Poly1305 is layered on top in aead.ts. */
export type RuntimeAead = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';

export type HashName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

export interface ScryptCost {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** Optional native base64 (Node's Buffer), lenient: the strict checks stay in encoding.ts. */
export interface NativeBase64 {
  /** Unpadded when `url`, padded otherwise. */
  encode(bytes: Uint8Array, url: boolean): string;
  decode(text: string, url: boolean): Uint8Array;
}

export interface CryptoRuntime {
  readonly name: 'node' | 'browser';
  /** A native base64 codec when the platform has one; encoding.ts falls back to portable code. */
  readonly base64?: NativeBase64;
  /** Fills `out` from the platform CSPRNG. */
  randomFill(out: Uint8Array): void;
  /**
   * Returns ciphertext || 16-byte tag, preceded by `room` bytes that the caller MUST overwrite (they may be
   * uninitialised), so a format can put its header in front without copying the ciphertext again.
   */
  aeadSeal(
    alg: RuntimeAead,
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
    room?: number,
  ): Uint8Array;
  /** Ciphertext and tag as separate buffers, so bulk callers can write both without joining them. */
  aeadSealDetached(
    alg: RuntimeAead,
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): { ciphertext: Uint8Array; tag: Uint8Array };
  /** Returns the plaintext, or null when the tag does not verify. Never throws for bad ciphertext. */
  aeadOpen(
    alg: RuntimeAead,
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    aad: Uint8Array,
  ): Uint8Array | null;
  /** HChaCha20 (draft-irtf-cfrg-xchacha §2.2): 32-byte key, 16-byte input → 32-byte subkey. */
  hchacha20(key: Uint8Array, input16: Uint8Array): Uint8Array;
  /**
   * AES-CBC with PKCS#7 padding, for Fernet and legacy formats only. The ciphertext starts at offset `room`
   * and is followed by `tail` bytes; the caller fills both (they may be uninitialised).
   */
  aesCbcEncrypt(
    key: Uint8Array,
    iv: Uint8Array,
    plaintext: Uint8Array,
    room: number,
    tail: number,
  ): Uint8Array;
  /** Returns null on a padding error; callers must authenticate before calling this. */
  aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array | null;
  /** AES-CTR keystream XOR with a 16-byte initial counter block (big-endian increment). */
  aesCtr(key: Uint8Array, counterBlock: Uint8Array, data: Uint8Array): Uint8Array;
  /** AES-CMAC (RFC 4493). */
  aesCmac(key: Uint8Array, data: Uint8Array): Uint8Array;
  digest(hash: HashName, data: Uint8Array): Uint8Array;
  hmac(hash: HashName, key: Uint8Array, data: Uint8Array): Uint8Array;
  hkdf(hash: HashName, ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  pbkdf2(
    hash: HashName,
    password: Uint8Array,
    salt: Uint8Array,
    iterations: number,
    length: number,
  ): Uint8Array;
  scrypt(password: Uint8Array, salt: Uint8Array, cost: ScryptCost, length: number): Uint8Array;
  /** Constant-time equality of two equal-length arrays. */
  timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /** Raw X25519 (RFC 7748 §5); the caller rejects the all-zero output. */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  ed25519PublicKey(privateKey: Uint8Array): Uint8Array;
  ed25519Sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** ECDSA P-256 with SHA-256; keys as 32-byte scalar and 65-byte uncompressed point; signature r||s. */
  p256PublicKey(privateKey: Uint8Array): Uint8Array;
  p256Sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array;
  p256Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}
