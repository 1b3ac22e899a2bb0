/**
 * Column encryption for application databases: each declared column is encrypted with randomized AEAD (the
 * keyset's envelope) whose associated data binds table, column and, when the application provides it, the
 * row id, so a ciphertext copied to another row or column does not decrypt. Equality search goes through
 * blind indexes. Strict by default: a stored value that is not a ciphertext is an error, never returned as
 * plaintext, and an equality filter on a column without a blind index is refused, never sent in clear.
 *
 * @example
 * ```ts
 * const fields = new FieldEncryption({
 *   keyset: Keyset.generate({ purpose: 'encrypt' }),
 *   indexKey: randomBytes(32),
 *   schema: {
 *     patients: {
 *       rowId: 'id',
 *       columns: { ssn: { type: 'string', indexes: { ssn_bidx: { normalize: ['digits'], bits: 16 } } } },
 *     },
 *   },
 * });
 * const row = fields.encryptRow('patients', { id: 7, ssn: '078-05-1120' });
 * fields.decryptRow('patients', row).ssn; // '078-05-1120'
 * fields.equals('patients', 'ssn', '078051120'); // { column: 'ssn_bidx', value: row.ssn_bidx }
 * ```
 */
import { EnsealError, ErrorCode, invalidArgument, utf8Encode, wipe } from '../crypto/index.js';
import type { Keyset } from '../keys/index.js';
import { envelopeBytes, parseEnvelope } from '../formats/index.js';
import { blindIndexValue, deriveIndexKey, isNormalizer, normalize, type Normalizer } from './blind-index.js';
import { decodeValue, encodeValue, isFieldType, type FieldType, type FieldValue } from './value-codec.js';
import type { DataKeyCache } from './data-keys.js';
import {
  isRemoteValue,
  openRemoteValue,
  parseRemoteValue,
  remoteValuePrefix,
  sealRemoteValue,
  type RemoteValue,
} from './remote-value.js';

/** What an async caller prepared for synchronous decryption: unwrapped keys, and values already parsed. */
interface Prepared {
  readonly keys: Map<string, Uint8Array>;
  readonly parsed: Map<string | Uint8Array, RemoteValue>;
}

function wipePrepared(prepared: Prepared): void {
  for (const k of prepared.keys.values()) wipe(k);
}

export interface BlindIndexSpec {
  /** Index length in bits; choose it with `planBlindIndex` from the expected row count. */
  bits: number;
  /** String normalizers applied before hashing (to string values; compound indexes apply them to their string parts). */
  normalize?: Normalizer[];
  /**
   * A root key (32 bytes) for this index alone, instead of the FieldEncryption's `indexKey`: lets a new index
   * column be keyed afresh when the old root must be retired (see "Re-keying a blind index" in the docs).
   */
  indexKey?: Uint8Array;
}

export interface ColumnSpec {
  type: FieldType;
  /** Blind indexes of this column, by the name of the column that stores each. */
  indexes?: Record<string, BlindIndexSpec>;
}

export interface CompoundIndexSpec extends BlindIndexSpec {
  /** Columns hashed together, in this order (for example last name and birth date). */
  columns: string[];
}

export interface TableSpec {
  /** The row-id column whose value is bound into each ciphertext (recommended; needs ids known before insert). */
  rowId?: string;
  columns: Record<string, ColumnSpec>;
  compoundIndexes?: Record<string, CompoundIndexSpec>;
}

export type EncryptedSchema = Record<string, TableSpec>;

export interface FieldEncryptionOptions {
  /**
   * An `encrypt` keyset: its primary version encrypts (unless `dataKeys` is given), every enabled version
   * decrypts. At least one of `keyset` and `dataKeys` is required.
   */
  keyset?: Keyset;
  /**
   * Data keys from a key server (`transitDataKeys(client, keyName)`): new values are encrypted under them
   * (format `ensr1.`); `keyset`, if also given, still decrypts older `ens1.` values. Await
   * {@link FieldEncryption.ready} before the first write.
   */
  dataKeys?: DataKeyCache;
  /**
   * Root of the blind-index keys (32 bytes); keep it apart from the keyset and never rotate it casually.
   * Optional for jobs that never compute an index (re-encryption); blind-index calls then fail.
   */
  indexKey?: Uint8Array;
  schema: EncryptedSchema;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The key version in an envelope's header (parsed before any key is touched); -1 when unparseable. */
function envelopeVersion(ciphertext: string): number {
  try {
    return parseEnvelope(envelopeBytes(ciphertext)).keyVersion;
  } catch {
    return -1;
  }
}

function checkSchema(schema: EncryptedSchema): void {
  for (const [table, spec] of Object.entries(schema)) {
    if (!NAME.test(table)) throw invalidArgument(`table "${table}"`, 'must be a SQL identifier');
    if (spec.rowId !== undefined && !NAME.test(spec.rowId))
      throw invalidArgument(`${table}.rowId`, 'must be a SQL identifier');
    const indexNames = new Set<string>();
    const checkIndex = (where: string, name: string, idx: BlindIndexSpec, stringOnly: boolean) => {
      if (!NAME.test(name) || indexNames.has(name) || Object.hasOwn(spec.columns, name)) {
        throw invalidArgument(
          `${where} index "${name}"`,
          'must be a unique SQL identifier that is not an encrypted column',
        );
      }
      indexNames.add(name);
      if (!Number.isInteger(idx.bits) || idx.bits < 1 || idx.bits > 256)
        throw invalidArgument(`${where}.${name}.bits`, 'must be 1-256');
      if (idx.indexKey !== undefined && (!(idx.indexKey instanceof Uint8Array) || idx.indexKey.length !== 32))
        throw invalidArgument(`${where}.${name}.indexKey`, 'must be 32 bytes');
      for (const n of idx.normalize ?? []) {
        if (!isNormalizer(n))
          throw invalidArgument(`${where}.${name}.normalize`, `has an unknown normalizer "${String(n)}"`);
        if (!stringOnly)
          throw invalidArgument(`${where}.${name}.normalize`, 'applies to string columns only');
      }
    };
    for (const [column, col] of Object.entries(spec.columns)) {
      if (!NAME.test(column))
        throw invalidArgument(`column "${table}.${column}"`, 'must be a SQL identifier');
      if (!isFieldType(col.type))
        throw invalidArgument(
          `${table}.${column}.type`,
          'must be string, number, boolean, date, json or bytes',
        );
      for (const [name, idx] of Object.entries(col.indexes ?? {}))
        checkIndex(`${table}.${column}`, name, idx, col.type === 'string');
    }
    for (const [name, idx] of Object.entries(spec.compoundIndexes ?? {})) {
      if (
        !Array.isArray(idx.columns) ||
        idx.columns.length < 2 ||
        idx.columns.some((c) => !Object.hasOwn(spec.columns, c))
      ) {
        throw invalidArgument(`${table}.${name}.columns`, 'must list two or more encrypted columns');
      }
      checkIndex(
        table,
        name,
        idx,
        idx.columns.some((c) => spec.columns[c]!.type === 'string'),
      );
    }
  }
}

/** Encrypts and decrypts rows of the declared tables and computes their blind indexes. */
export class FieldEncryption {
  readonly #keyset: Keyset | undefined;
  readonly #dataKeys: DataKeyCache | undefined;
  /** The header prefix of the data key that encrypted last (see remoteValuePrefix). */
  #prefix: Uint8Array | undefined;
  #prefixOf: string | undefined;
  readonly #indexRoot: Uint8Array | undefined;
  readonly #schema: EncryptedSchema;
  readonly #indexKeys = new Map<string, Uint8Array>();

  constructor(options: FieldEncryptionOptions) {
    if (
      options.indexKey !== undefined &&
      (!(options.indexKey instanceof Uint8Array) || options.indexKey.length !== 32)
    ) {
      throw invalidArgument('indexKey', 'must be 32 bytes');
    }
    if (options.keyset === undefined && options.dataKeys === undefined)
      throw invalidArgument('options', 'need a keyset or dataKeys');
    checkSchema(options.schema);
    this.#keyset = options.keyset;
    this.#dataKeys = options.dataKeys;
    this.#indexRoot = options.indexKey;
    this.#schema = options.schema;
  }

  #table(table: string): TableSpec {
    const spec = this.#schema[table];
    if (spec === undefined) throw invalidArgument('table', `"${table}" is not in the encrypted schema`);
    return spec;
  }

  #column(table: string, column: string): ColumnSpec {
    const col = this.#table(table).columns[column];
    if (col === undefined) throw invalidArgument('column', `"${table}.${column}" is not an encrypted column`);
    return col;
  }

  #aad(table: string, column: string, rowId: unknown): Uint8Array {
    const id = rowId === undefined || rowId === null ? '' : String(rowId);
    return utf8Encode(`enseal/field/v1\u0000${table}\u0000${column}\u0000${id}`);
  }

  /** Encrypts one value; `rowId` must be given whenever the table declares one. */
  encryptValue(table: string, column: string, value: unknown, rowId?: unknown): string {
    const col = this.#column(table, column);
    this.#requireRowId(table, rowId);
    return this.#seal(encodeValue(col.type, value), this.#aad(table, column, rowId));
  }

  /** Encrypts under the current server data key when there are data keys, else under the keyset. */
  #seal(plaintext: Uint8Array, aad: Uint8Array): string {
    if (this.#dataKeys !== undefined) {
      const { key, wrapped } = this.#dataKeys.take();
      if (wrapped !== this.#prefixOf) {
        this.#prefix = remoteValuePrefix(wrapped); // once per data key, not per value
        this.#prefixOf = wrapped;
      }
      return sealRemoteValue({ key, wrapped, plaintext, aad, prefix: this.#prefix });
    }
    return this.#keyset!.encrypt(plaintext, { aad });
  }

  /**
   * Opens a stored value of either format. A server-key value takes its data key from `keys` (prepared by
   * an async caller) or the cache; a synchronous caller whose key is not cached gets
   * `ERR_DATA_KEY_UNAVAILABLE`, never a guess.
   */
  #open(ciphertext: string | Uint8Array, aad: Uint8Array, prepared?: Prepared): Uint8Array {
    if (isRemoteValue(ciphertext)) {
      if (this.#dataKeys === undefined) {
        throw new EnsealError(
          ErrorCode.KEK_MISSING,
          'this value is under a key-server data key; give FieldEncryption its dataKeys',
        );
      }
      const value = prepared?.parsed.get(ciphertext) ?? parseRemoteValue(ciphertext);
      const given = prepared?.keys.get(value.wrapped);
      if (given !== undefined) return openRemoteValue(value, given, aad);
      const opened = this.#dataKeys.withKey(value.wrapped, (key) => openRemoteValue(value, key, aad));
      if (opened === undefined) {
        throw new EnsealError(
          ErrorCode.DATA_KEY_UNAVAILABLE,
          'the data key of this value is not cached; use the async APIs (decryptRowAsync, decryptRowsAsync) or await fields.warm(values) first',
        );
      }
      return opened.result;
    }
    if (this.#keyset === undefined) {
      if (typeof ciphertext === 'string' && envelopeVersion(ciphertext) >= 0) {
        throw new EnsealError(
          ErrorCode.KEK_MISSING,
          'this value is under a local keyset; give FieldEncryption its keyset',
        );
      }
      throw new EnsealError(ErrorCode.MALFORMED, 'the value is not a field ciphertext (strict mode)');
    }
    return this.#keyset.decrypt(ciphertext, { aad });
  }

  /** Decrypts one value. Anything that is not a ciphertext of this column (and row) is an error. */
  decryptValue(table: string, column: string, ciphertext: unknown, rowId?: unknown): FieldValue {
    return this.#decryptValue(table, column, ciphertext, rowId);
  }

  #decryptValue(
    table: string,
    column: string,
    ciphertext: unknown,
    rowId: unknown,
    prepared?: Prepared,
  ): FieldValue {
    const col = this.#column(table, column);
    this.#requireRowId(table, rowId);
    if (typeof ciphertext !== 'string' && !(ciphertext instanceof Uint8Array)) {
      throw new EnsealError(
        ErrorCode.MALFORMED,
        `${table}.${column} holds a value that is not a ciphertext (strict mode)`,
      );
    }
    return decodeValue(col.type, this.#open(ciphertext, this.#aad(table, column, rowId), prepared));
  }

  /**
   * True when `ciphertext` is not under the current key: for a keyset, another version than its primary;
   * with `dataKeys`, a data key wrapped under an older server key version than the latest one seen, or a
   * keyset value (to be moved to server keys). With `dataKeys`, await {@link ready} first.
   */
  needsReencrypt(ciphertext: string): boolean {
    if (this.#dataKeys !== undefined) {
      if (!isRemoteValue(ciphertext)) return true;
      const latest = this.#dataKeys.latestVersion;
      // 0 is also the version of a provider that does not report one: only "nothing fetched yet" is unknown.
      if (latest === 0 && this.#dataKeys.stats().generated === 0) {
        throw new EnsealError(
          ErrorCode.DATA_KEY_UNAVAILABLE,
          'the key server version is not known yet; await fields.ready() first',
        );
      }
      try {
        return parseRemoteValue(ciphertext).keyVersion < latest;
      } catch {
        return true; // unparseable: let the re-encryption fail on it loudly
      }
    }
    return envelopeVersion(ciphertext) !== this.#keyset!.primaryVersion;
  }

  /**
   * Re-encrypts a stored value under the keyset's primary version without decoding it (the type tag and
   * bytes move as they are), keeping its table, column and row binding.
   */
  reencryptValue(table: string, column: string, ciphertext: string, rowId?: unknown): string {
    this.#column(table, column);
    this.#requireRowId(table, rowId);
    const aad = this.#aad(table, column, rowId);
    const plain = this.#open(ciphertext, aad);
    try {
      return this.#seal(plain, aad);
    } finally {
      plain.fill(0);
    }
  }

  /** {@link reencryptValue} that fetches an uncached data key from the key server. */
  async reencryptValueAsync(
    table: string,
    column: string,
    ciphertext: string,
    rowId?: unknown,
  ): Promise<string> {
    await this.warm([ciphertext]);
    return this.reencryptValue(table, column, ciphertext, rowId);
  }

  /**
   * With `dataKeys`: fetches the current and the next data key from the server, so that synchronous
   * encryption (encryptRow, the Kysely plugin, Drizzle columns) can proceed. Rejects with the server's
   * error when it cannot. Without `dataKeys` it does nothing. With `values`, keeps keys for at least that
   * many values (a bulk insert encrypts synchronously and cannot wait for the server in the middle).
   */
  async ready(values?: number): Promise<void> {
    await this.#dataKeys?.ready(values);
  }

  /** The data-key cache given as `dataKeys`, for its counters (`stats()`), `refresh()` and `close()`. */
  get dataKeys(): DataKeyCache | undefined {
    return this.#dataKeys;
  }

  /**
   * Fetches (in one batch where the client allows) the data keys of the given stored values that are not
   * cached, so that synchronous decryption of them succeeds while they stay cached. Other values are ignored.
   */
  async warm(values: Iterable<unknown>): Promise<void> {
    wipePrepared(await this.#prepare(values));
  }

  /** Parses the server-key values among `values` and unwraps their distinct data keys (copies: wipe them). */
  async #prepare(values: Iterable<unknown>): Promise<Prepared> {
    const parsed = new Map<string | Uint8Array, RemoteValue>();
    if (this.#dataKeys === undefined) return { keys: new Map(), parsed };
    const wrapped = new Set<string>();
    for (const v of values) {
      if (!(typeof v === 'string' || v instanceof Uint8Array) || !isRemoteValue(v)) continue;
      try {
        const value = parseRemoteValue(v);
        parsed.set(v, value);
        wrapped.add(value.wrapped);
      } catch {
        // malformed: decryption reports it, with the column's name
      }
    }
    return { keys: wrapped.size === 0 ? new Map() : await this.#dataKeys.unwrapAll(wrapped), parsed };
  }

  /** {@link decryptValue}, fetching the value's data key from the key server when it is not cached. */
  async decryptValueAsync(
    table: string,
    column: string,
    ciphertext: unknown,
    rowId?: unknown,
  ): Promise<FieldValue> {
    const prepared = await this.#prepare([ciphertext]);
    try {
      return this.#decryptValue(table, column, ciphertext, rowId, prepared);
    } finally {
      wipePrepared(prepared);
    }
  }

  /** {@link decryptRow} for rows whose data keys may need the key server. */
  async decryptRowAsync(table: string, row: Record<string, unknown>): Promise<Record<string, unknown>> {
    return (await this.decryptRowsAsync(table, [row]))[0]!;
  }

  /**
   * Decrypts many rows, unwrapping each distinct data key once (one batch request for all uncached keys
   * when the client supports batches).
   */
  async decryptRowsAsync(
    table: string,
    rows: readonly Record<string, unknown>[],
  ): Promise<Record<string, unknown>[]> {
    const spec = this.#table(table);
    const prepared = await this.#prepare(rows.flatMap((r) => Object.keys(spec.columns).map((c) => r[c])));
    try {
      return rows.map((r) => this.#decryptRow(table, r, prepared));
    } finally {
      wipePrepared(prepared);
    }
  }

  /** {@link encryptRow} that first waits for a data key when none is cached (`ready()`). */
  async encryptRowAsync<T extends Record<string, unknown>>(
    table: string,
    row: T,
  ): Promise<Record<string, unknown>> {
    await this.ready();
    return this.encryptRow(table, row);
  }

  /** The declared schema (read-only), for integrations that rewrite queries. */
  get schema(): Readonly<EncryptedSchema> {
    return this.#schema;
  }

  /** The table's row-id column, if it binds ciphertexts to rows. */
  rowIdColumn(table: string): string | undefined {
    return this.#table(table).rowId;
  }

  #requireRowId(table: string, rowId: unknown): void {
    if (this.#table(table).rowId !== undefined && (rowId === undefined || rowId === null)) {
      throw invalidArgument('rowId', `is required: "${table}" binds ciphertexts to their row`);
    }
  }

  #indexKey(table: string, index: string, spec: BlindIndexSpec): Uint8Array {
    const id = `${table}\u0000${index}`;
    let key = this.#indexKeys.get(id);
    if (key === undefined) {
      const root = spec.indexKey ?? this.#indexRoot;
      if (root === undefined) {
        throw new EnsealError(
          ErrorCode.KEK_MISSING,
          'no blind-index key was given (indexKey); blind indexes cannot be computed',
        );
      }
      key = deriveIndexKey(root, table, index);
      this.#indexKeys.set(id, key);
    }
    return key;
  }

  #indexPart(col: ColumnSpec, spec: BlindIndexSpec, value: unknown): Uint8Array {
    if (col.type === 'string' && typeof value === 'string')
      return utf8Encode(normalize(value, spec.normalize ?? []));
    return encodeValue(col.type, value);
  }

  /** The blind index of `value` under a column index. */
  blindIndex(table: string, column: string, index: string, value: unknown): string {
    const col = this.#column(table, column);
    const spec = col.indexes?.[index];
    if (spec === undefined)
      throw invalidArgument('index', `"${index}" is not a blind index of ${table}.${column}`);
    return blindIndexValue(
      this.#indexKey(table, index, spec),
      [this.#indexPart(col, spec, value)],
      spec.bits,
    );
  }

  /** The blind index of several column values under a compound index. */
  compoundIndex(table: string, index: string, values: Record<string, unknown>): string {
    const spec = this.#table(table).compoundIndexes?.[index];
    if (spec === undefined) throw invalidArgument('index', `"${index}" is not a compound index of ${table}`);
    const parts = spec.columns.map((c) => {
      if (!Object.hasOwn(values, c)) throw invalidArgument('values', `lack "${c}" for ${index}`);
      return this.#indexPart(this.#column(table, c), spec, values[c]);
    });
    return blindIndexValue(this.#indexKey(table, index, spec), parts, spec.bits);
  }

  /**
   * The filter to use for `column = value`: the blind-index column and its value. Refuses a column with no
   * blind index (never a plaintext comparison). Lookups may return false positives: compare after decrypting.
   */
  equals(table: string, column: string, value: unknown, index?: string): { column: string; value: string } {
    const col = this.#column(table, column);
    const names = Object.keys(col.indexes ?? {});
    const name = index ?? names[0];
    if (name === undefined) {
      throw new EnsealError(
        ErrorCode.NOT_ALLOWED,
        `${table}.${column} has no blind index; equality search on it is refused`,
      );
    }
    return { column: name, value: this.blindIndex(table, column, name, value) };
  }

  /** Encrypts the declared columns of a row and adds their blind indexes; other columns pass unchanged. */
  encryptRow<T extends Record<string, unknown>>(table: string, row: T): Record<string, unknown> {
    const spec = this.#table(table);
    const rowId = spec.rowId === undefined ? undefined : row[spec.rowId];
    const out: Record<string, unknown> = { ...row };
    for (const [column, col] of Object.entries(spec.columns)) {
      if (!Object.hasOwn(row, column)) continue;
      const value = row[column];
      if (value === null || value === undefined) continue; // NULL stays NULL (its absence is not secret)
      out[column] = this.encryptValue(table, column, value, rowId);
      for (const index of Object.keys(col.indexes ?? {}))
        out[index] = this.blindIndex(table, column, index, value);
    }
    for (const [index, c] of Object.entries(spec.compoundIndexes ?? {})) {
      if (c.columns.every((k) => row[k] !== undefined && row[k] !== null))
        out[index] = this.compoundIndex(table, index, row);
    }
    return out;
  }

  /** Decrypts the declared columns of a row and drops its blind-index columns. */
  decryptRow(table: string, row: Record<string, unknown>): Record<string, unknown> {
    return this.#decryptRow(table, row);
  }

  #decryptRow(table: string, row: Record<string, unknown>, prepared?: Prepared): Record<string, unknown> {
    const spec = this.#table(table);
    const rowId = spec.rowId === undefined ? undefined : row[spec.rowId];
    const out: Record<string, unknown> = { ...row };
    for (const [column, col] of Object.entries(spec.columns)) {
      for (const index of Object.keys(col.indexes ?? {})) delete out[index];
      const value = row[column];
      if (value === null || value === undefined) continue;
      out[column] = this.#decryptValue(table, column, value, rowId, prepared);
    }
    for (const index of Object.keys(spec.compoundIndexes ?? {})) delete out[index];
    return out;
  }
}
