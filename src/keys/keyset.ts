/**
 * Keysets: a named set of versioned keys for ONE purpose, with one primary version.
 *
 * - encrypt with the primary version; decrypt with whichever enabled version the envelope names;
 * - the purpose is enforced (an encryption keyset cannot sign, a MAC keyset cannot encrypt);
 * - every encryption is counted, and the keyset rotates before the suite's safe bound (usage-limits.ts);
 * - at rest a keyset exists only sealed under a key-encryption key (sealed-keyset.ts); plaintext export of
 *   key material needs an explicit opt-in.
 *
 * Rotation follows Tink's discipline: `rotate()` adds a version and makes it primary; older versions stay
 * enabled for decryption until you disable or destroy them.
 */
import {
  EnsealError,
  ErrorCode,
  base64UrlDecode,
  base64UrlEncode,
  concatBytes,
  constantTimeEqual,
  decryptFailed,
  hkdf,
  hmac,
  randomBytes,
  randomUint32,
  readUint32BE,
  sign as signBytes,
  signingPublicKey,
  toBytes,
  utf8Decode,
  utf8Encode,
  verify as verifyBytes,
  wipe,
  writeUint32BE,
  type SignatureAlgorithm,
} from '../crypto/index.js';
import {
  ALGORITHMS_BY_PURPOSE,
  envelopeBytes,
  envelopeToText,
  openEnvelope,
  parseEnvelope,
  sealEnvelope,
  validateKeysetJson,
  type EnvelopeSuite,
  type KeyAlgorithm,
  type KeyPurpose,
  type KeyStatus,
  type KeysetJson,
} from '../formats/index.js';
import { defaultUsageLimit } from './usage-limits.js';

/** Public information about one version; never includes key material. */
export interface KeyVersionInfo {
  readonly version: number;
  readonly algorithm: KeyAlgorithm;
  readonly status: KeyStatus;
  readonly createdAt: Date;
  readonly uses: number;
  readonly primary: boolean;
}

interface KeyVersion {
  version: number;
  algorithm: KeyAlgorithm;
  status: KeyStatus;
  createdAt: Date;
  uses: number;
  key: Uint8Array | undefined;
}

export interface GenerateKeysetOptions {
  purpose: KeyPurpose;
  /** Defaults: aes-256-gcm, ed25519, hmac-sha256, hkdf-sha256. */
  algorithm?: KeyAlgorithm;
  /** Rotate automatically when the primary reaches its usage limit (default true). */
  autoRotate?: boolean;
  /** A lower per-version encryption limit than the suite's default. */
  usageLimit?: number;
}

export interface AadOption {
  /** Associated data: authenticated, not encrypted; must be identical to decrypt. */
  aad?: string | Uint8Array;
}

const DEFAULT_ALGORITHM: Readonly<Record<KeyPurpose, KeyAlgorithm>> = {
  encrypt: 'aes-256-gcm',
  sign: 'ed25519',
  mac: 'hmac-sha256',
  derive: 'hkdf-sha256',
};

/** Tag/signature prefix: format byte, keyset id, version; lets verification pick the right version. */
const PREFIX_FORMAT = 0x01;
const PREFIX_LENGTH = 9;
const DERIVE_INFO = utf8Encode('enseal keyset derive v1\0');
const EMPTY = new Uint8Array(0);

function keyError(code: ErrorCode, message: string): EnsealError {
  return new EnsealError(code, message);
}

function aadBytes(options?: AadOption): Uint8Array {
  return options?.aad === undefined ? EMPTY : toBytes('aad', options.aad);
}

export class Keyset {
  readonly #id: number;
  readonly #purpose: KeyPurpose;
  readonly #versions = new Map<number, KeyVersion>();
  #primary: number;
  #autoRotate: boolean;
  #usageLimit: number | undefined;

  private constructor(id: number, purpose: KeyPurpose, autoRotate: boolean, usageLimit: number | undefined) {
    this.#id = id;
    this.#purpose = purpose;
    this.#autoRotate = autoRotate;
    this.#usageLimit = usageLimit;
    this.#primary = 0;
  }

  /**
   * Creates a keyset with one fresh primary version.
   *
   * @example
   * ```ts
   * const keyset = Keyset.generate({ purpose: 'encrypt' });
   * const sealed = keyset.encrypt('123-45-6789', { aad: 'customers/42/ssn' });
   * keyset.rotate();
   * keyset.decryptString(sealed, { aad: 'customers/42/ssn' }); // '123-45-6789'
   * ```
   */
  static generate(options: GenerateKeysetOptions): Keyset {
    const purpose = options.purpose;
    if (!Object.hasOwn(ALGORITHMS_BY_PURPOSE, purpose)) {
      throw keyError(ErrorCode.INVALID_ARGUMENT, `purpose must be one of encrypt, sign, mac, derive`);
    }
    if (
      options.usageLimit !== undefined &&
      !(Number.isSafeInteger(options.usageLimit) && options.usageLimit > 0)
    ) {
      throw keyError(ErrorCode.INVALID_ARGUMENT, 'usageLimit must be a positive integer');
    }
    const keyset = new Keyset(randomUint32(), purpose, options.autoRotate ?? true, options.usageLimit);
    keyset.rotate(options.algorithm ?? DEFAULT_ALGORITHM[purpose]);
    return keyset;
  }

  /**
   * Rebuilds a keyset from its plaintext JSON. Requires the same explicit opt-in as exporting, because the
   * JSON holds raw key material; normal code opens a sealed keyset instead.
   */
  static fromPlaintext(json: unknown, options: { allowPlaintextKeyMaterial: boolean }): Keyset {
    if (options?.allowPlaintextKeyMaterial !== true) {
      throw keyError(
        ErrorCode.EXPORT_FORBIDDEN,
        'importing plaintext key material needs allowPlaintextKeyMaterial: true',
      );
    }
    const data = validateKeysetJson(json);
    const keyset = new Keyset(data.id, data.purpose, data.autoRotate, data.usageLimit);
    for (const v of data.versions) {
      keyset.#versions.set(v.version, {
        version: v.version,
        algorithm: v.algorithm,
        status: v.status,
        createdAt: new Date(v.createdAt),
        uses: v.uses,
        key: v.key === undefined ? undefined : base64UrlDecode(v.key, 'keyset key'),
      });
    }
    keyset.#primary = data.primary;
    return keyset;
  }

  get id(): number {
    return this.#id;
  }

  get purpose(): KeyPurpose {
    return this.#purpose;
  }

  get primaryVersion(): number {
    return this.#primary;
  }

  get autoRotate(): boolean {
    return this.#autoRotate;
  }

  set autoRotate(value: boolean) {
    this.#autoRotate = value === true;
  }

  /** Versions in ascending order, without key material. */
  versions(): KeyVersionInfo[] {
    return [...this.#versions.values()]
      .sort((a, b) => a.version - b.version)
      .map((v) => ({
        version: v.version,
        algorithm: v.algorithm,
        status: v.status,
        createdAt: new Date(v.createdAt),
        uses: v.uses,
        primary: v.version === this.#primary,
      }));
  }

  /** The encryption limit of one version of `algorithm` in this keyset. */
  usageLimit(algorithm: KeyAlgorithm = this.#primaryVersion().algorithm): number {
    const suiteLimit = defaultUsageLimit(algorithm);
    return this.#usageLimit === undefined ? suiteLimit : Math.min(this.#usageLimit, suiteLimit);
  }

  /** Adds a new version (same algorithm as the primary unless given) and makes it primary. */
  rotate(algorithm?: KeyAlgorithm): number {
    const alg = algorithm ?? this.#primaryVersion().algorithm;
    if (!ALGORITHMS_BY_PURPOSE[this.#purpose].includes(alg)) {
      throw keyError(ErrorCode.KEY_USAGE, `algorithm ${alg} cannot serve purpose ${this.#purpose}`);
    }
    let next = 1;
    for (const v of this.#versions.keys()) next = Math.max(next, v + 1);
    if (next > 0xffffffff)
      throw keyError(ErrorCode.KEY_USAGE_LIMIT, 'keyset has exhausted its version numbers');
    this.#versions.set(next, {
      version: next,
      algorithm: alg,
      status: 'enabled',
      createdAt: new Date(),
      uses: 0,
      key: randomBytes(32),
    });
    this.#primary = next;
    return next;
  }

  /** Makes an enabled version the primary. */
  promote(version: number): void {
    const v = this.#version(version);
    if (v.status !== 'enabled') throw keyError(ErrorCode.KEY_USAGE, `version ${version} is ${v.status}`);
    this.#primary = version;
  }

  /** Disabled versions keep their material but serve nothing until enabled again. */
  disable(version: number): void {
    this.#notPrimary(version, 'disable');
    const v = this.#version(version);
    if (v.status === 'destroyed') throw keyError(ErrorCode.KEY_NOT_FOUND, `version ${version} is destroyed`);
    v.status = 'disabled';
  }

  enable(version: number): void {
    const v = this.#version(version);
    if (v.status === 'destroyed') throw keyError(ErrorCode.KEY_NOT_FOUND, `version ${version} is destroyed`);
    v.status = 'enabled';
  }

  /** Wipes a version's material for good: everything it encrypted becomes unrecoverable. */
  destroy(version: number): void {
    this.#notPrimary(version, 'destroy');
    const v = this.#version(version);
    wipe(v.key);
    v.key = undefined;
    v.status = 'destroyed';
  }

  /** Encrypts with the primary version; returns the envelope's text form. */
  encrypt(plaintext: string | Uint8Array, options?: AadOption): string {
    return envelopeToText(this.encryptBytes(plaintext, options));
  }

  /** Encrypts with the primary version; returns the binary envelope. */
  encryptBytes(plaintext: string | Uint8Array, options?: AadOption): Uint8Array {
    this.#require('encrypt');
    let primary = this.#primaryVersion();
    if (primary.uses >= this.usageLimit(primary.algorithm)) {
      if (!this.#autoRotate) {
        throw keyError(
          ErrorCode.KEY_USAGE_LIMIT,
          `version ${primary.version} reached its usage limit; rotate the keyset`,
        );
      }
      this.rotate();
      primary = this.#primaryVersion();
    }
    primary.uses++;
    return sealEnvelope({
      suite: primary.algorithm as EnvelopeSuite,
      key: primary.key!,
      keyId: this.#id,
      keyVersion: primary.version,
      plaintext: toBytes('plaintext', plaintext),
      aad: aadBytes(options),
    });
  }

  /** Decrypts an envelope (text or binary) made by any enabled version of this keyset. */
  decrypt(ciphertext: string | Uint8Array, options?: AadOption): Uint8Array {
    this.#require('encrypt');
    const env = parseEnvelope(envelopeBytes(ciphertext));
    if (env.keyId !== this.#id) {
      throw keyError(ErrorCode.KEY_NOT_FOUND, 'the value was encrypted under a different keyset');
    }
    const v = this.#usable(env.keyVersion);
    if (v.algorithm !== env.suite) throw decryptFailed();
    return openEnvelope(env, v.key!, aadBytes(options));
  }

  /** {@link decrypt}, then strict UTF-8 decoding. */
  decryptString(ciphertext: string | Uint8Array, options?: AadOption): string {
    return utf8Decode(this.decrypt(ciphertext, options));
  }

  /** Signs with the primary version; the signature carries the version that made it. */
  sign(message: string | Uint8Array): Uint8Array {
    this.#require('sign');
    const v = this.#primaryVersion();
    return concatBytes(
      this.#prefix(v.version),
      signBytes(v.algorithm as SignatureAlgorithm, v.key!, toBytes('message', message)),
    );
  }

  /** True only when `signature` is a valid signature by an enabled version of this keyset. */
  verify(message: string | Uint8Array, signature: Uint8Array): boolean {
    this.#require('sign');
    const v = this.#fromPrefix(signature);
    if (v === undefined) return false;
    const pub = signingPublicKey(v.algorithm as SignatureAlgorithm, v.key!);
    return verifyBytes(
      v.algorithm as SignatureAlgorithm,
      pub,
      toBytes('message', message),
      signature.subarray(PREFIX_LENGTH),
    );
  }

  /** Public keys of a signing keyset, by version (raw: 32-byte Ed25519, 65-byte uncompressed P-256). */
  publicKeys(): { version: number; algorithm: KeyAlgorithm; publicKey: Uint8Array }[] {
    this.#require('sign');
    return [...this.#versions.values()]
      .filter((v) => v.status === 'enabled')
      .map((v) => ({
        version: v.version,
        algorithm: v.algorithm,
        publicKey: signingPublicKey(v.algorithm as SignatureAlgorithm, v.key!),
      }));
  }

  /** HMAC-SHA256 tag with the primary version, prefixed with the version that made it. */
  mac(data: string | Uint8Array): Uint8Array {
    this.#require('mac');
    const v = this.#primaryVersion();
    return concatBytes(this.#prefix(v.version), hmac('sha256', v.key!, toBytes('data', data)));
  }

  /** Constant-time check of a tag made by {@link mac}. */
  verifyMac(data: string | Uint8Array, tag: Uint8Array): boolean {
    this.#require('mac');
    const v = this.#fromPrefix(tag);
    if (v === undefined) return false;
    return constantTimeEqual(hmac('sha256', v.key!, toBytes('data', data)), tag.subarray(PREFIX_LENGTH));
  }

  /**
   * Derives a key for `context` (a tenant, a data subject, a column) from the primary version, or from the
   * given version. Distinct contexts give independent keys; the same context always gives the same key.
   */
  derive(context: string | Uint8Array, length = 32, version = this.#primary): Uint8Array {
    this.#require('derive');
    const v = this.#usable(version);
    return hkdf('sha256', v.key!, EMPTY, concatBytes(DERIVE_INFO, toBytes('context', context)), length);
  }

  /**
   * The keyset as plaintext JSON, key material included. Refuses unless `allowPlaintextKeyMaterial` is true:
   * keysets belong at rest only sealed (see sealKeyset).
   */
  exportPlaintext(options: { allowPlaintextKeyMaterial: boolean }): KeysetJson {
    if (options?.allowPlaintextKeyMaterial !== true) {
      throw keyError(
        ErrorCode.EXPORT_FORBIDDEN,
        'exporting plaintext key material needs allowPlaintextKeyMaterial: true',
      );
    }
    return this.toJson();
  }

  /** @internal Serialisation for sealing; key material included. */
  toJson(): KeysetJson {
    return {
      enseal: 'keyset',
      v: 1,
      id: this.#id,
      purpose: this.#purpose,
      primary: this.#primary,
      autoRotate: this.#autoRotate,
      ...(this.#usageLimit === undefined ? {} : { usageLimit: this.#usageLimit }),
      versions: [...this.#versions.values()]
        .sort((a, b) => a.version - b.version)
        .map((v) => ({
          version: v.version,
          algorithm: v.algorithm,
          status: v.status,
          createdAt: v.createdAt.toISOString(),
          uses: v.uses,
          ...(v.key === undefined ? {} : { key: base64UrlEncode(v.key) }),
        })),
    };
  }

  /** Keysets never print their material, even through console.log or JSON.stringify. */
  toJSON(): { id: number; purpose: KeyPurpose; primary: number } {
    return { id: this.#id, purpose: this.#purpose, primary: this.#primary };
  }

  #require(purpose: KeyPurpose): void {
    if (this.#purpose !== purpose) {
      throw keyError(ErrorCode.KEY_USAGE, `a keyset for ${this.#purpose} cannot be used to ${purpose}`);
    }
  }

  #version(version: number): KeyVersion {
    const v = this.#versions.get(version);
    if (v === undefined) throw keyError(ErrorCode.KEY_NOT_FOUND, `keyset has no version ${version}`);
    return v;
  }

  #usable(version: number): KeyVersion {
    const v = this.#versions.get(version);
    if (v === undefined || v.status === 'destroyed' || v.key === undefined) {
      throw keyError(ErrorCode.KEY_NOT_FOUND, `keyset has no usable version ${version}`);
    }
    if (v.status === 'disabled') throw keyError(ErrorCode.KEY_USAGE, `version ${version} is disabled`);
    return v;
  }

  #primaryVersion(): KeyVersion {
    return this.#version(this.#primary);
  }

  #notPrimary(version: number, action: string): void {
    if (version === this.#primary) {
      throw keyError(
        ErrorCode.KEY_USAGE,
        `cannot ${action} the primary version; rotate or promote another first`,
      );
    }
  }

  #prefix(version: number): Uint8Array {
    const out = new Uint8Array(PREFIX_LENGTH);
    out[0] = PREFIX_FORMAT;
    writeUint32BE(out, 1, this.#id);
    writeUint32BE(out, 5, version);
    return out;
  }

  /** The enabled version a tag or signature names, or undefined when it names none of ours. */
  #fromPrefix(tagged: Uint8Array): KeyVersion | undefined {
    if (!(tagged instanceof Uint8Array) || tagged.length <= PREFIX_LENGTH || tagged[0] !== PREFIX_FORMAT)
      return undefined;
    if (readUint32BE(tagged, 1) !== this.#id) return undefined;
    const v = this.#versions.get(readUint32BE(tagged, 5));
    return v !== undefined && v.status === 'enabled' && v.key !== undefined ? v : undefined;
  }
}
