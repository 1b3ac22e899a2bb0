/**
 * The client state in IndexedDB: one database per client state, with the sealed records, the plaintext metadata
 * and the WebCrypto keys (stored as CryptoKey objects, which the browser keeps without ever exposing their
 * bytes when they were created non-extractable). {@link IndexedDbStateBackend.commit} is one readwrite
 * transaction that resolves on `complete`, so a tab closed or a browser killed during a commit leaves the
 * previous state: IndexedDB applies a transaction whole or not at all.
 */
import { EnsealError, ErrorCode } from '../crypto/index.js';
import type { StateBackend } from '../e2ee/index.js';

const VERSION = 1;
/** Object stores of a state database. */
export const STORE_RECORDS = 'records';
export const STORE_META = 'meta';
export const STORE_KEYS = 'keys';

function idbError(what: string, cause: unknown): EnsealError {
  return new EnsealError(ErrorCode.STORE, `IndexedDB: ${what} failed`, { cause });
}

/** The result of one IndexedDB request. */
export function request<T>(req: IDBRequest<T>, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(idbError(what, req.error));
  });
}

/** Resolves when `tx` has committed; rejects when it aborted or failed. */
export function completion(tx: IDBTransaction, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(idbError(what, tx.error));
    tx.onabort = () => reject(idbError(what, tx.error ?? new Error('transaction aborted')));
  });
}

function indexedDbFactory(): IDBFactory {
  const factory = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (factory === undefined)
    throw new EnsealError(
      ErrorCode.UNSUPPORTED,
      'IndexedDB is not available here: open the client state in a browser page or worker (a secure context)',
    );
  return factory;
}

/** Opens (creating or upgrading) the state database `name`. */
export async function openStateDatabase(name: string): Promise<IDBDatabase> {
  if (typeof name !== 'string' || name.length === 0)
    throw new EnsealError(ErrorCode.INVALID_ARGUMENT, 'dbName must be a non-empty string');
  const req = indexedDbFactory().open(name, VERSION);
  req.onupgradeneeded = () => {
    const db = req.result;
    for (const store of [STORE_RECORDS, STORE_META, STORE_KEYS])
      if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
  };
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(idbError(`opening database "${name}"`, req.error));
    req.onblocked = () =>
      reject(
        new EnsealError(
          ErrorCode.STORE,
          `IndexedDB database "${name}" is held open by an older version of this page in another tab: close it and retry`,
        ),
      );
  });
  // Another tab upgrading the schema must not wait for this one forever.
  db.onversionchange = () => db.close();
  return db;
}

/** A database handle, or something that holds one (a backend). */
export type DatabaseLike = IDBDatabase | { readonly db: IDBDatabase };

export function databaseOf(db: DatabaseLike): IDBDatabase {
  return 'db' in db ? db.db : db;
}

/** Options of {@link IndexedDbStateBackend.open}. */
export interface IndexedDbStateOptions {
  /**
   * Fault injection for crash tests only: called inside the commit's transaction before each record is written.
   * Throwing there aborts the transaction, which must leave the previous state intact.
   */
  readonly beforeWrite?: (name: string) => void;
}

/**
 * The client state in one IndexedDB database; each commit is one readwrite transaction over all its puts and
 * deletes.
 *
 * @example
 * ```ts no-run
 * const backend = await IndexedDbStateBackend.open('enseal-alice');
 * const state = await EncryptedState.open(backend, { cipher: await webStateCipher(backend) });
 * ```
 */
export class IndexedDbStateBackend implements StateBackend {
  readonly db: IDBDatabase;
  readonly #beforeWrite: ((name: string) => void) | undefined;

  private constructor(db: IDBDatabase, options: IndexedDbStateOptions) {
    this.db = db;
    this.#beforeWrite = options.beforeWrite;
  }

  /** Opens (or creates) the database `dbName`. */
  static async open(dbName: string, options: IndexedDbStateOptions = {}): Promise<IndexedDbStateBackend> {
    return new IndexedDbStateBackend(await openStateDatabase(dbName), options);
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const tx = this.db.transaction(STORE_RECORDS, 'readonly');
    const value = await request<unknown>(tx.objectStore(STORE_RECORDS).get(name), 'reading a record');
    if (value === undefined) return undefined;
    if (!(value instanceof Uint8Array))
      throw new EnsealError(ErrorCode.MALFORMED, `client state record "${name}" is not bytes`);
    return value;
  }

  async list(prefix: string): Promise<string[]> {
    const tx = this.db.transaction(STORE_RECORDS, 'readonly');
    const store = tx.objectStore(STORE_RECORDS);
    const range = prefix === '' ? undefined : IDBKeyRange.lowerBound(prefix);
    const keys = await request(store.getAllKeys(range), 'listing records');
    // Keys come sorted in code-unit order (as Array#sort sorts) from `prefix` on, so the names that start
    // with it are the first ones; stop at the first that does not.
    const out: string[] = [];
    for (const k of keys) {
      if (typeof k !== 'string' || !k.startsWith(prefix)) break;
      out.push(k);
    }
    return out;
  }

  async commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    const tx = this.db.transaction(STORE_RECORDS, 'readwrite', { durability: 'strict' });
    const done = completion(tx, 'committing the client state');
    const store = tx.objectStore(STORE_RECORDS);
    try {
      for (const name of deletes) {
        this.#beforeWrite?.(name);
        store.delete(name);
      }
      for (const [name, value] of puts) {
        this.#beforeWrite?.(name);
        store.put(value.slice(), name);
      }
    } catch (cause) {
      tx.abort();
      await done.catch(() => undefined);
      throw idbError('committing the client state', cause);
    }
    await done;
  }

  async getMeta(name: string): Promise<string | undefined> {
    const tx = this.db.transaction(STORE_META, 'readonly');
    const value = await request<unknown>(tx.objectStore(STORE_META).get(name), 'reading metadata');
    return typeof value === 'string' ? value : undefined;
  }

  async setMeta(name: string, value: string): Promise<void> {
    const tx = this.db.transaction(STORE_META, 'readwrite', { durability: 'strict' });
    const done = completion(tx, 'writing metadata');
    tx.objectStore(STORE_META).put(value, name);
    await done;
  }

  async close(): Promise<void> {
    this.db.close();
  }

  /** Every sealed record (name and bytes), for tests that search the store for plaintext. */
  async dump(): Promise<{ name: string; value: Uint8Array }[]> {
    const tx = this.db.transaction(STORE_RECORDS, 'readonly');
    const store = tx.objectStore(STORE_RECORDS);
    const [keys, values] = await Promise.all([
      request(store.getAllKeys(), 'listing records'),
      request<unknown[]>(store.getAll(), 'reading records'),
    ]);
    return keys.map((k, i) => ({ name: String(k), value: values[i] as Uint8Array }));
  }
}

/**
 * Reads the CryptoKey value stored under `name`, or stores `create()`'s value there when none is: the check and
 * the write are one transaction, so two tabs opening at once end up with the same key.
 */
export async function loadOrStoreKey<T>(db: IDBDatabase, name: string, create: () => Promise<T>): Promise<T> {
  const existing = await request<unknown>(
    db.transaction(STORE_KEYS, 'readonly').objectStore(STORE_KEYS).get(name),
    'reading a key',
  );
  if (existing !== undefined) return existing as T;
  const fresh = await create();
  const tx = db.transaction(STORE_KEYS, 'readwrite', { durability: 'strict' });
  const done = completion(tx, 'storing a key');
  const store = tx.objectStore(STORE_KEYS);
  const winner = new Promise<T>((resolve, reject) => {
    const get = store.get(name);
    get.onerror = () => reject(idbError('reading a key', get.error));
    get.onsuccess = () => {
      if (get.result !== undefined) return resolve(get.result as T);
      try {
        store.put(fresh, name);
        resolve(fresh);
      } catch (cause) {
        // A browser that cannot store a CryptoKey in IndexedDB (DataCloneError).
        reject(idbError('storing a CryptoKey (this browser may not keep CryptoKeys in IndexedDB)', cause));
        tx.abort();
      }
    };
  });
  const [key] = await Promise.all([winner, done]);
  return key;
}
