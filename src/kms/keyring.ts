/**
 * The keyring: the keys that wrap every named key at rest, one per term, plus the audit MAC key and the
 * index key that hashes sensitive values. The keyring itself is stored encrypted under the root key, so
 * unsealing (rebuilding the root key) is what makes anything readable.
 *
 * Keyring rotation adds a term and re-wraps blobs from older terms in the background; until that finishes
 * the keyring keeps every term, so a crash at any point leaves every blob readable.
 */
import {
  aeadOpenWithNonce,
  aeadSealWithRandomNonce,
  base64Decode,
  base64Encode,
  concatBytes,
  decryptFailed,
  hkdf,
  hmac,
  hexEncode,
  malformed,
  randomBytes,
  utf8Decode,
  utf8Encode,
  wipe,
} from '../crypto/index.js';

const KEYRING_AAD = utf8Encode('enseal/keyring/v1');
const WRAP_PREFIX = 1; // format byte in front of every wrapped blob

export interface KeyringTerm {
  readonly term: number;
  readonly key: Uint8Array;
  readonly createdAt: number;
}

interface KeyringJson {
  v: 1;
  current: number;
  terms: { term: number; key: string; createdAt: number }[];
  audit: string;
  index: string;
  /** 1 once every token, policy and key-settings record in the store is authenticated. */
  records?: 1;
  /** The audit head when the keyring was last sealed: the log may grow past it, never fall behind it. */
  anchor?: AuditAnchor;
}

/** An audit log position recorded in the sealed keyring, so a rolled-back log is noticed. */
export interface AuditAnchor {
  readonly seq: number;
  readonly hash: string;
}

interface KeyringFlags {
  readonly records: boolean;
  readonly anchor?: AuditAnchor | undefined;
}

/** The unsealed keyring. Holders must call {@link Keyring.wipe} when sealing. */
export class Keyring {
  readonly #terms: Map<number, KeyringTerm>;
  readonly current: number;
  /** MACs audit entries; constant across keyring rotation so old entries keep verifying. */
  readonly auditKey: Uint8Array;
  /** Keys the hashes of contexts and other sensitive values, so they are comparable but not readable. */
  readonly indexKey: Uint8Array;

  /** Whether every right-conferring record in the store carries an authenticator (see record-seal.ts). */
  readonly recordsAuthenticated: boolean;
  readonly auditAnchor: AuditAnchor | undefined;

  private constructor(
    terms: KeyringTerm[],
    current: number,
    auditKey: Uint8Array,
    indexKey: Uint8Array,
    flags: KeyringFlags,
  ) {
    this.#terms = new Map(terms.map((t) => [t.term, t]));
    this.current = current;
    this.auditKey = auditKey;
    this.indexKey = indexKey;
    this.recordsAuthenticated = flags.records;
    this.auditAnchor = flags.anchor;
  }

  get #flags(): KeyringFlags {
    return { records: this.recordsAuthenticated, anchor: this.auditAnchor };
  }

  static create(now: number): Keyring {
    return new Keyring(
      [{ term: 1, key: randomBytes(32), createdAt: now }],
      1,
      randomBytes(32),
      randomBytes(32),
      { records: true },
    );
  }

  /** The same keyring, marked as having every store record authenticated. */
  withRecordsAuthenticated(): Keyring {
    return new Keyring([...this.#terms.values()], this.current, this.auditKey, this.indexKey, {
      ...this.#flags,
      records: true,
    });
  }

  /** The same keyring with a new audit anchor. */
  withAuditAnchor(anchor: AuditAnchor): Keyring {
    return new Keyring([...this.#terms.values()], this.current, this.auditKey, this.indexKey, {
      ...this.#flags,
      anchor: { seq: anchor.seq, hash: anchor.hash },
    });
  }

  /** A keyring with one more term, which becomes current. The old terms stay until re-wrapping is done. */
  withNewTerm(now: number): Keyring {
    const term = Math.max(...this.#terms.keys()) + 1;
    return new Keyring(
      [...this.#terms.values(), { term, key: randomBytes(32), createdAt: now }],
      term,
      this.auditKey,
      this.indexKey,
      this.#flags,
    );
  }

  /** A keyring holding only the current term, once nothing is wrapped under older ones. */
  withoutOldTerms(): Keyring {
    return new Keyring(
      [this.#terms.get(this.current)!],
      this.current,
      this.auditKey,
      this.indexKey,
      this.#flags,
    );
  }

  get terms(): number[] {
    return [...this.#terms.keys()].sort((a, b) => a - b);
  }

  /** Wraps `secret` under the current term, binding `label` (the blob's identity) as associated data. */
  wrap(label: Uint8Array, secret: Uint8Array): { term: number; wrapped: Uint8Array } {
    const { key } = this.#terms.get(this.current)!;
    return {
      term: this.current,
      wrapped: concatBytes(
        Uint8Array.of(WRAP_PREFIX),
        aeadSealWithRandomNonce('aes-256-gcm', key, secret, label),
      ),
    };
  }

  /** Unwraps a blob of `term`; DECRYPT_FAILED when the blob or its label was swapped or modified. */
  unwrap(term: number, label: Uint8Array, wrapped: Uint8Array): Uint8Array {
    const entry = this.#terms.get(term);
    if (entry === undefined || wrapped.length < 1 || wrapped[0] !== WRAP_PREFIX) throw decryptFailed();
    return aeadOpenWithNonce('aes-256-gcm', entry.key, wrapped.subarray(1), label);
  }

  hasTerm(term: number): boolean {
    return this.#terms.has(term);
  }

  /** A keyed hash of a sensitive value, hex: equal inputs give equal outputs, nothing else is learned. */
  indexHash(domain: string, value: Uint8Array): string {
    return hexEncode(hmac('sha256', this.indexKey, concatBytes(utf8Encode(domain), Uint8Array.of(0), value)));
  }

  /** A subkey of the index key for a named use (for example the audit log's value hashing). */
  subkey(label: string): Uint8Array {
    return hkdf('sha256', this.indexKey, new Uint8Array(0), utf8Encode(label), 32);
  }

  /** Encrypts the keyring under the root key. */
  seal(rootKey: Uint8Array): Uint8Array {
    const json: KeyringJson = {
      v: 1,
      current: this.current,
      terms: [...this.#terms.values()].map((t) => ({
        term: t.term,
        key: base64Encode(t.key),
        createdAt: t.createdAt,
      })),
      audit: base64Encode(this.auditKey),
      index: base64Encode(this.indexKey),
      ...(this.recordsAuthenticated ? { records: 1 as const } : {}),
      ...(this.auditAnchor ? { anchor: this.auditAnchor } : {}),
    };
    const plain = utf8Encode(JSON.stringify(json));
    try {
      return aeadSealWithRandomNonce('aes-256-gcm', rootKey, plain, KEYRING_AAD);
    } finally {
      wipe(plain);
    }
  }

  /** Decrypts a sealed keyring; DECRYPT_FAILED when `rootKey` is wrong (for example a bad unseal share). */
  static open(rootKey: Uint8Array, sealed: Uint8Array): Keyring {
    const plain = aeadOpenWithNonce('aes-256-gcm', rootKey, sealed, KEYRING_AAD);
    try {
      const json = JSON.parse(utf8Decode(plain)) as KeyringJson;
      if (json.v !== 1 || !Array.isArray(json.terms)) throw malformed('keyring', 'unknown version');
      const terms = json.terms.map((t) => ({
        term: t.term,
        key: base64Decode(t.key),
        createdAt: t.createdAt,
      }));
      const anchor =
        json.anchor && Number.isSafeInteger(json.anchor.seq) && typeof json.anchor.hash === 'string'
          ? { seq: json.anchor.seq, hash: json.anchor.hash }
          : undefined;
      return new Keyring(terms, json.current, base64Decode(json.audit), base64Decode(json.index), {
        records: json.records === 1,
        anchor,
      });
    } finally {
      wipe(plain);
    }
  }

  wipe(): void {
    for (const t of this.#terms.values()) wipe(t.key);
    wipe(this.auditKey, this.indexKey);
  }
}
