/**
 * The client's persistent state, crash-safe and encrypted at rest. A {@link StateBackend} keeps named records
 * and applies a set of changes atomically (one SQLite transaction in the Node backend, one IndexedDB transaction
 * in a browser one); {@link EncryptedState} seals every record with AES-256-GCM under the state key, binding the
 * record's name as associated data so a record cannot be moved to another name. The state key is a caller-given
 * 32-byte key or is derived from a passphrase with Argon2id (its salt and parameters are the one plaintext
 * record, `meta`). Sealing goes through a {@link StateCipher}: the raw-key one here, or another (in a browser, a
 * non-extractable WebCrypto AES-GCM key) given as `{ cipher }`.
 *
 * One state change is one transaction: a new group state, the key package it consumed and the inbox cursor are
 * written together or not at all, so a crash leaves either the old state or the new one, never a group whose
 * key package was deleted before its state was saved.
 */
import {
  EnsealError,
  ErrorCode,
  aeadOpenWithNonce,
  aeadSealWithRandomNonce,
  argon2id,
  base64Decode,
  base64Encode,
  decryptFailed,
  invalidArgument,
  randomBytes,
  utf8Decode,
  utf8Encode,
  wipe,
  type Argon2Params,
} from '../crypto/index.js';

/** Where sealed records live. `commit` must apply all of its changes or none. */
export interface StateBackend {
  get(name: string): Promise<Uint8Array | undefined>;
  /** Names that start with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Writes `puts` and removes `deletes` in one atomic step. */
  commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void>;
  /** Unencrypted metadata (the passphrase salt and parameters); never secret. */
  getMeta(name: string): Promise<string | undefined>;
  setMeta(name: string, value: string): Promise<void>;
  close(): Promise<void>;
}

/** A backend in memory, for tests and ephemeral sessions. Its commit is atomic (a map swap). */
export class MemoryStateBackend implements StateBackend {
  #records = new Map<string, Uint8Array>();
  readonly #meta = new Map<string, string>();

  async get(name: string): Promise<Uint8Array | undefined> {
    return this.#records.get(name)?.slice();
  }
  async list(prefix: string): Promise<string[]> {
    return [...this.#records.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  async commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    const next = new Map(this.#records);
    for (const d of deletes) next.delete(d);
    for (const [k, v] of puts) next.set(k, v.slice());
    this.#records = next;
  }
  async getMeta(name: string): Promise<string | undefined> {
    return this.#meta.get(name);
  }
  async setMeta(name: string, value: string): Promise<void> {
    this.#meta.set(name, value);
  }
  async close(): Promise<void> {}
  /** Every sealed record, for tests that search the store for plaintext. */
  dump(): Uint8Array[] {
    return [...this.#records.values()].map((v) => v.slice());
  }
}

/**
 * Seals and opens state records. `name` is the record's name and must be bound as associated data, so a record
 * cannot be moved to another name. A wrong key or a changed record must make `open` reject.
 */
export interface StateCipher {
  seal(name: string, plaintext: Uint8Array): Promise<Uint8Array>;
  open(name: string, sealed: Uint8Array): Promise<Uint8Array>;
  /** Forgets the key material it holds, if any. */
  close?(): void;
}

/**
 * How the state key is given: 32 bytes, a passphrase (Argon2id), or a {@link StateCipher} that holds its own key
 * (a browser's non-extractable CryptoKey).
 */
export type StateKeySource =
  | { readonly key: Uint8Array }
  | { readonly passphrase: string | Uint8Array; readonly params?: Argon2Params }
  | { readonly cipher: StateCipher };

/** Argon2id for the state key: RFC 9106's second recommended option (64 MiB, 3 passes). */
export const STATE_KDF_PARAMS: Readonly<Argon2Params> = Object.freeze({
  memoryKiB: 65536,
  iterations: 3,
  parallelism: 1,
});

const AAD_PREFIX = 'enseal e2ee client state v1\n';
const CHECK = 'check';

/** The associated data of the record `name`: every {@link StateCipher} of enseal binds it. */
export function stateRecordAad(name: string): Uint8Array {
  return utf8Encode(AAD_PREFIX + name);
}

/**
 * The {@link StateCipher} over a 32-byte key held in memory: AES-256-GCM, `nonce (12 bytes) || ciphertext || tag`,
 * with {@link stateRecordAad} as associated data. It copies the key and wipes its copy on `close`.
 */
export function rawKeyStateCipher(key: Uint8Array): StateCipher {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw invalidArgument('key', 'must be 32 bytes');
  const k = key.slice();
  return {
    async seal(name, plaintext) {
      return aeadSealWithRandomNonce('aes-256-gcm', k, plaintext, stateRecordAad(name));
    },
    async open(name, sealed) {
      try {
        return aeadOpenWithNonce('aes-256-gcm', k, sealed, stateRecordAad(name));
      } catch {
        throw decryptFailed();
      }
    },
    close() {
      wipe(k);
    },
  };
}

/**
 * A set of changes, applied by {@link StateTransaction.commit} in one atomic step. `put` only collects the
 * plaintext; `commit` seals every record, then hands them to the backend at once.
 */
export class StateTransaction {
  readonly #state: EncryptedState;
  readonly #puts = new Map<string, Uint8Array>();
  readonly #deletes = new Set<string>();

  /** @internal */
  constructor(state: EncryptedState) {
    this.#state = state;
  }

  put(name: string, value: Uint8Array): this {
    this.#deletes.delete(name);
    this.#puts.set(name, value.slice());
    return this;
  }

  putJson(name: string, value: unknown): this {
    return this.put(name, utf8Encode(JSON.stringify(value)));
  }

  delete(name: string): this {
    this.#puts.delete(name);
    this.#deletes.add(name);
    return this;
  }

  get empty(): boolean {
    return this.#puts.size === 0 && this.#deletes.size === 0;
  }

  async commit(): Promise<void> {
    if (this.empty) return;
    const sealed = new Map<string, Uint8Array>();
    try {
      for (const [name, value] of this.#puts) sealed.set(name, await this.#state.seal(name, value));
    } finally {
      for (const value of this.#puts.values()) wipe(value);
      this.#puts.clear();
    }
    await this.#state.backend.commit(sealed, [...this.#deletes]);
  }
}

/**
 * Records sealed under the state key.
 *
 * @example
 * ```ts
 * const state = await EncryptedState.open(new MemoryStateBackend(), { key: randomBytes(32) });
 * await state.transaction().putJson('cursor', { seq: 7 }).commit();
 * (await state.getJson<{ seq: number }>('cursor'))?.seq; // 7
 * ```
 */
export class EncryptedState {
  readonly backend: StateBackend;
  readonly #cipher: StateCipher;

  private constructor(backend: StateBackend, cipher: StateCipher) {
    this.backend = backend;
    this.#cipher = cipher;
  }

  /**
   * Opens (or initialises) the state in `backend`. A wrong key or passphrase is ERR_DECRYPT_FAILED, and nothing
   * is written in that case.
   */
  static async open(backend: StateBackend, source: StateKeySource): Promise<EncryptedState> {
    let cipher: StateCipher;
    if ('cipher' in source) {
      if (typeof source.cipher?.seal !== 'function' || typeof source.cipher.open !== 'function')
        throw invalidArgument('cipher', 'must have seal and open');
      cipher = source.cipher;
    } else if ('key' in source) {
      cipher = rawKeyStateCipher(source.key);
    } else {
      const pass = typeof source.passphrase === 'string' ? utf8Encode(source.passphrase) : source.passphrase;
      if (pass.length === 0) throw invalidArgument('passphrase', 'must not be empty');
      const meta = await backend.getMeta('kdf');
      let salt: Uint8Array;
      let params: Argon2Params;
      if (meta === undefined) {
        salt = randomBytes(16);
        params = source.params ?? STATE_KDF_PARAMS;
        await backend.setMeta(
          'kdf',
          JSON.stringify({ alg: 'argon2id', salt: base64Encode(salt), ...params }),
        );
      } else {
        let m: { salt: string; memoryKiB: number; iterations: number; parallelism: number };
        try {
          m = JSON.parse(meta) as typeof m;
        } catch (cause) {
          throw new EnsealError(
            ErrorCode.MALFORMED,
            'client state: key derivation parameters are unreadable',
            { cause },
          );
        }
        salt = base64Decode(m.salt);
        params = { memoryKiB: m.memoryKiB, iterations: m.iterations, parallelism: m.parallelism };
      }
      const key = await argon2id(pass, salt, params, 32);
      cipher = rawKeyStateCipher(key);
      wipe(key);
    }
    const state = new EncryptedState(backend, cipher);
    const check = await backend.get(CHECK);
    if (check === undefined) {
      await state.transaction().put(CHECK, utf8Encode('ok')).commit();
    } else {
      await state.open(CHECK, check); // throws ERR_DECRYPT_FAILED for a wrong key
    }
    return state;
  }

  /** @internal */
  seal(name: string, value: Uint8Array): Promise<Uint8Array> {
    return this.#cipher.seal(name, value);
  }

  /** @internal */
  async open(name: string, sealed: Uint8Array): Promise<Uint8Array> {
    try {
      return await this.#cipher.open(name, sealed);
    } catch {
      throw decryptFailed();
    }
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const sealed = await this.backend.get(name);
    return sealed === undefined ? undefined : this.open(name, sealed);
  }

  async getJson<T>(name: string): Promise<T | undefined> {
    const bytes = await this.get(name);
    if (bytes === undefined) return undefined;
    try {
      return JSON.parse(utf8Decode(bytes)) as T;
    } catch (cause) {
      throw new EnsealError(ErrorCode.MALFORMED, `client state record "${name}" is unreadable`, { cause });
    }
  }

  list(prefix: string): Promise<string[]> {
    return this.backend.list(prefix);
  }

  transaction(): StateTransaction {
    return new StateTransaction(this);
  }

  /** Forgets the state key (as far as its cipher can) and closes the backend. */
  async close(): Promise<void> {
    this.#cipher.close?.();
    await this.backend.close();
  }
}
