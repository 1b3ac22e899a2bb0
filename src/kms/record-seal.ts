/**
 * Authenticated store records. Whoever can write the SQLite file or the PostgreSQL database (but holds no
 * unseal shares) must not be able to grant himself anything, so every record that confers a right (token
 * records, ACL policies, a key's settings) carries an HMAC under a keyring subkey, bound to the record's kind
 * and name: a forged record, a modified one, or one copied under another name is refused.
 *
 * The stored form is JSON `{"v":1,"body":"<the record's own text>","mac":"<hex>"}`; the body is kept as text
 * so no canonicalisation is needed to verify it.
 */
import {
  constantTimeEqualHex,
  EnsealError,
  ErrorCode,
  hexEncode,
  hmac,
  utf8Encode,
} from '../crypto/index.js';

/** The HKDF label of the record key under the keyring's index key. */
export const RECORD_KEY_LABEL = 'enseal/records/v1';

interface SealedRecord {
  v: 1;
  body: string;
  mac: string;
}

/** A forged or modified record; the message names the kind and name, never the content. */
export function recordTampered(kind: string, name: string): EnsealError {
  return new EnsealError(
    ErrorCode.RECORD_TAMPERED,
    `the stored ${kind} record "${name}" fails its authenticator (forged or modified in the store); it is ignored`,
  );
}

export class RecordAuthenticator {
  readonly #key: Uint8Array;

  constructor(key: Uint8Array) {
    this.#key = key;
  }

  #mac(kind: string, name: string, body: string): Uint8Array {
    return hmac('sha256', this.#key, utf8Encode(`enseal/record/v1\u0000${kind}\u0000${name}\u0000${body}`));
  }

  /** The stored form of `body` as the record `kind`/`name`. */
  seal(kind: string, name: string, body: string): string {
    const record: SealedRecord = { v: 1, body, mac: hexEncode(this.#mac(kind, name, body)) };
    return JSON.stringify(record);
  }

  /** The body of a stored record; RECORD_TAMPERED unless it was sealed as exactly this kind and name. */
  open(kind: string, name: string, stored: string): string {
    let record: SealedRecord;
    try {
      record = JSON.parse(stored) as SealedRecord;
    } catch {
      throw recordTampered(kind, name);
    }
    if (
      typeof record !== 'object' ||
      record === null ||
      record.v !== 1 ||
      typeof record.body !== 'string' ||
      typeof record.mac !== 'string'
    ) {
      throw recordTampered(kind, name);
    }
    if (!constantTimeEqualHex(record.mac, this.#mac(kind, name, record.body)))
      throw recordTampered(kind, name);
    return record.body;
  }

  /** Whether `stored` is in the sealed form at all (legacy records from before authentication are not). */
  static isSealed(stored: string): boolean {
    return stored.startsWith('{"v":1,"body":');
  }
}
