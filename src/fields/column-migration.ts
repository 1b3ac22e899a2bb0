/**
 * Migration of an existing column of legacy values (pgcrypto `pgp_sym_encrypt` output, Fernet tokens or
 * plaintext) into enseal field ciphertexts, online: keyset pagination over the row id, one transaction per
 * batch holding the batch's row locks, one UPDATE per batch, and the job's checkpoint written in that same
 * transaction (the batch-job engine of batch-job.ts). Legacy values are decrypted here, in the application, so the
 * pgcrypto passphrase or Fernet keys never travel to the database nor reach its logs. Values already in
 * enseal format are skipped, so a second run changes nothing. Strict: a value that cannot be decrypted stops
 * the job with an error naming its row, and plaintext is never written.
 *
 * There is deliberately no in-database mode (`pgp_sym_decrypt` in SQL): it would send the passphrase to the
 * server with every statement, where logs and `pg_stat_statements` can keep it.
 */
import { EnsealError, ErrorCode, hexDecode, invalidArgument, utf8Decode } from '../crypto/index.js';
import { decryptLegacyEax, envelopeBytes, Fernet, parseEnvelope } from '../formats/index.js';
import type { FieldEncryption } from './field-encryption.js';
import {
  checkBatchSize,
  checkWorkers,
  quoteIdent,
  runBatchJob,
  sqlColumnType,
  type BatchChange,
  type BatchOutcome,
  type SqlExecutor,
} from './batch-job.js';
import type { FieldType } from './value-codec.js';

/** Where the legacy values come from. */
export type LegacySource =
  /** `bytea` holding `pgp_sym_encrypt` / `pgp_sym_encrypt_bytea` output (symmetric, passphrase-based). */
  | { kind: 'pgcrypto'; passphrase: string }
  /** Fernet tokens; several keys as Python's MultiFernet (any of them decrypts). No TTL is applied. */
  | { kind: 'fernet'; keys: readonly string[] }
  /** The seeds' AES-EAX values (PyCryptodome: nonce ‖ ciphertext ‖ tag, base64), authenticated on the way out. */
  | { kind: 'eax'; key: Uint8Array }
  /** Values stored in clear. */
  | { kind: 'plaintext' };

export interface MigrateColumnOptions {
  table: string;
  /** The column holding the legacy values. */
  column: string;
  /**
   * Where the enseal ciphertexts go. Defaults to `column` itself, which must then be a text column; required
   * when the source column is not text (pgcrypto's `bytea`).
   */
  targetColumn?: string;
  /**
   * The encrypted column of the FieldEncryption schema the ciphertexts belong to (their type and associated
   * data). Defaults to where they are written (`targetColumn ?? column`); name the final column here when the
   * target will be renamed at cut-over, since the column name is bound into each ciphertext.
   */
  fieldColumn?: string;
  /** The row-id column to paginate on (default: the table's rowId). Must be unique and ordered. */
  idColumn?: string;
  from: LegacySource;
  batchSize?: number;
  /** The checkpoint's name (default `migrate:<table>.<column>`); a new name starts from the beginning. */
  job?: string;
  /** Parallel workers (PostgreSQL only; default 1), as for `reencryptColumn`. */
  workers?: number;
  /** Decrypt and count every value that would change, without writing anything (checks keys/passphrase). */
  dryRun?: boolean;
  onProgress?: (progress: MigrateProgress) => void;
}

export interface MigrateProgress {
  readonly scanned: number;
  /** Values converted (or, in a dry run, that would be). */
  readonly migrated: number;
  /** Values already in enseal format, left as they are. */
  readonly skipped: number;
  readonly batches: number;
  readonly cursor: string | null;
}

const DECRYPT_CONCURRENCY = 16;

/** Decrypts one legacy value to its bytes; throws on anything that does not authenticate. */
type LegacyDecrypter = (value: unknown) => Promise<Uint8Array | string | number | boolean | Date | object>;

function asBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string' && /^\\x([0-9a-fA-F]{2})*$/.test(value)) {
    // A bytea that a driver returned in PostgreSQL's hex text form.
    return hexDecode(value.slice(2));
  }
  return undefined;
}

async function legacyDecrypter(from: LegacySource): Promise<LegacyDecrypter> {
  switch (from?.kind) {
    case 'pgcrypto': {
      if (typeof from.passphrase !== 'string' || from.passphrase.length === 0)
        throw invalidArgument('from.passphrase', 'must be a non-empty string');
      // Loaded only when needed: OpenPGP.js is large. pgcrypto's defaults (disable-mdc=0) produce SEIPD v1
      // messages *with* an MDC, which OpenPGP.js accepts as they are, so `allowUnauthenticatedMessages` is
      // left off: a message without integrity protection (pgcrypto's `disable-mdc=1`) is refused, not read.
      const openpgp = await import('openpgp');
      const passphrase = from.passphrase;
      return async (value) => {
        const binaryMessage = asBytes(value);
        if (binaryMessage === undefined) throw invalidArgument('value', 'is not bytea');
        const message = await openpgp.readMessage({ binaryMessage });
        const { data } = await openpgp.decrypt({ message, passwords: [passphrase], format: 'binary' });
        return data;
      };
    }
    case 'fernet': {
      if (!Array.isArray(from.keys) || from.keys.length === 0)
        throw invalidArgument('from.keys', 'must list at least one Fernet key');
      const fernet = new Fernet(from.keys);
      return async (value) => {
        if (typeof value !== 'string' && !(value instanceof Uint8Array))
          throw invalidArgument('value', 'is not a Fernet token');
        return fernet.decrypt(value);
      };
    }
    case 'eax': {
      if (!(from.key instanceof Uint8Array) || ![16, 24, 32].includes(from.key.length))
        throw invalidArgument('from.key', 'must be a 16, 24 or 32-byte AES key');
      const key = from.key;
      return async (value) => {
        if (typeof value !== 'string' && !(value instanceof Uint8Array))
          throw invalidArgument('value', 'is not an EAX value');
        return decryptLegacyEax(value, key);
      };
    }
    case 'plaintext':
      // The driver's value as it is (a string, number, Date, Buffer or an already parsed json/jsonb value).
      return async (value) => value as object;
    default:
      throw invalidArgument('from.kind', 'must be pgcrypto, fernet, eax or plaintext');
  }
}

/**
 * The declared type of an encrypted column. FieldEncryption keeps its schema private, so the type is found
 * by probing `encryptValue` (its encoder refuses values of another type before any key is used); `json`
 * accepts everything, so a Date probe is told apart from `date` by decrypting it back.
 */
function columnTypeOf(fields: FieldEncryption, table: string, column: string): FieldType {
  const rowId = fields.rowIdColumn(table) === undefined ? undefined : 0;
  const probes: [FieldType, unknown][] = [
    ['date', new Date(0)],
    ['string', ''],
    ['number', 0],
    ['boolean', false],
    ['bytes', new Uint8Array(0)],
  ];
  for (const [type, value] of probes) {
    let ct: string;
    try {
      ct = fields.encryptValue(table, column, value, rowId);
    } catch (err) {
      if (err instanceof EnsealError && err.code === ErrorCode.INVALID_ARGUMENT) continue;
      throw err;
    }
    if (type !== 'date') return type;
    return fields.decryptValue(table, column, ct, rowId) instanceof Date ? 'date' : 'json';
  }
  throw invalidArgument('column', `"${table}.${column}" is not an encrypted column`);
}

/** Turns a decrypted legacy value (bytes or a driver value) into a value of the column's declared type. */
function toFieldValue(
  type: FieldType,
  raw: Uint8Array | string | number | boolean | Date | object,
  jsonText: boolean,
): unknown {
  if (type === 'bytes') {
    if (raw instanceof Uint8Array) return new Uint8Array(raw);
    if (typeof raw === 'string') return new TextEncoder().encode(raw);
    throw new Error('not bytes');
  }
  const text = raw instanceof Uint8Array ? utf8Decode(raw) : raw;
  switch (type) {
    case 'string':
      if (typeof text === 'string') return text;
      if (typeof text === 'number' || typeof text === 'boolean') return String(text);
      throw new Error('not a string');
    case 'number': {
      if (typeof text === 'number' && Number.isFinite(text)) return text;
      if (typeof text === 'string' && /^\s*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text)) {
        const n = Number(text);
        if (Number.isFinite(n)) return n;
      }
      throw new Error('not a number');
    }
    case 'boolean': {
      if (typeof text === 'boolean') return text;
      if (typeof text === 'number' && (text === 0 || text === 1)) return text === 1;
      const t = typeof text === 'string' ? text.trim().toLowerCase() : '';
      if (['t', 'true', '1', 'y', 'yes', 'on'].includes(t)) return true;
      if (['f', 'false', '0', 'n', 'no', 'off'].includes(t)) return false;
      throw new Error('not a boolean');
    }
    case 'date': {
      const d = text instanceof Date ? text : typeof text === 'string' ? new Date(text.trim()) : undefined;
      if (d === undefined || Number.isNaN(d.getTime())) throw new Error('not a date');
      return d;
    }
    case 'json':
      // Decrypted bytes and text columns hold JSON text; a json/jsonb column arrives already parsed.
      if (typeof text !== 'string' || !jsonText) return text;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new Error('not JSON'); // JSON.parse's own message quotes the text, a plaintext
      }
  }
}

/** True when `value` parses as an enseal envelope (header only; no key is touched). */
function looksLikeEnvelope(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    parseEnvelope(envelopeBytes(value));
    return true;
  } catch {
    return false;
  }
}

const TEXT_TYPES = /^(text|character varying|varchar|clob|.*char.*|.*text.*)$/i;

/**
 * Converts every legacy value of `table.column` into an enseal ciphertext of the FieldEncryption column
 * (`fieldColumn`), written in place or into `targetColumn`. Resumable: a job stopped at any point continues
 * after its last committed batch when run again with the same `job` name.
 */
export async function migrateColumn(
  fields: FieldEncryption,
  db: SqlExecutor,
  options: MigrateColumnOptions,
): Promise<MigrateProgress> {
  const { table, column } = options;
  const target = options.targetColumn ?? column;
  const inPlace = target === column;
  const fieldColumn = options.fieldColumn ?? target;
  const idColumn = options.idColumn ?? fields.rowIdColumn(table);
  if (idColumn === undefined) throw invalidArgument('idColumn', `is required: "${table}" declares no rowId`);
  const bound = fields.rowIdColumn(table) !== undefined;
  const batchSize = checkBatchSize(options.batchSize, 1000);
  const workers = checkWorkers(db, options.workers);
  quoteIdent(table);
  quoteIdent(column);
  quoteIdent(target);

  const type = columnTypeOf(fields, table, fieldColumn);
  const decryptLegacy = await legacyDecrypter(options.from);
  const sourceType = await sqlColumnType(db, table, column);
  if (sourceType === undefined) throw invalidArgument('column', `"${table}.${column}" does not exist`);
  const targetType = inPlace ? sourceType : await sqlColumnType(db, table, target);
  if (targetType === undefined) throw invalidArgument('targetColumn', `"${table}.${target}" does not exist`);
  const bounded = db.dialect === 'postgres' && /\(\d+\)/.test(targetType); // SQLite ignores lengths
  if (!TEXT_TYPES.test(targetType) || bounded) {
    throw invalidArgument(
      inPlace ? 'targetColumn' : 'targetColumn type',
      inPlace
        ? `is required: "${table}.${column}" is ${targetType}, and ciphertexts need an unbounded text column`
        : `must be an unbounded text column ("${table}.${target}" is ${targetType})`,
    );
  }
  const jsonText = options.from.kind !== 'plaintext' || !/^jsonb?$/i.test(sourceType);

  const convert = async (
    rows: readonly Record<string, unknown>[],
    dryRun: boolean,
  ): Promise<BatchOutcome> => {
    const legacy: Record<string, unknown>[] = [];
    let skipped = 0;
    for (const row of rows) {
      // Already migrated: the value (in place) or the target holds an enseal ciphertext of this row.
      const existing = inPlace ? row.value : row.target;
      if (existing !== null && existing !== undefined && (!inPlace || looksLikeEnvelope(existing))) {
        try {
          fields.decryptValue(table, fieldColumn, existing, bound ? row.id : undefined);
        } catch (err) {
          throw new EnsealError(
            ErrorCode.MALFORMED,
            `${table}.${target} of row ${String(row.id)} holds a value that is not an enseal ciphertext ` +
              `of ${table}.${fieldColumn} for this row; stopping`,
            { cause: err },
          );
        }
        skipped++;
      } else if (row.value !== null && row.value !== undefined) legacy.push(row); // NULL stays NULL
    }
    // Decrypted a few at a time: OpenPGP.js interleaves its asynchronous steps (≈1.7x faster measured).
    const changes: BatchChange[] = [];
    for (let i = 0; i < legacy.length; i += DECRYPT_CONCURRENCY) {
      const chunk = legacy.slice(i, i + DECRYPT_CONCURRENCY);
      const plain = await Promise.allSettled(chunk.map((row) => decryptLegacy(row.value)));
      for (const [k, row] of chunk.entries()) {
        const result = plain[k]!;
        let value: unknown;
        try {
          if (result.status === 'rejected') throw result.reason;
          value = toFieldValue(type, result.value, jsonText);
        } catch (err) {
          // The first failure in id order; the cause is kept for debugging but never holds a plaintext.
          throw new EnsealError(
            ErrorCode.DECRYPT_FAILED,
            `${table}.${column} of row ${String(row.id)} could not be decrypted as ${options.from.kind} or ` +
              `read as a ${type} value; stopping (this batch is rolled back, earlier batches stay committed)`,
            { cause: err },
          );
        }
        const rowId = bound ? row.id : undefined;
        changes.push({
          id: row.id,
          old: row.value,
          value: dryRun ? null : fields.encryptValue(table, fieldColumn, value, rowId),
        });
      }
    }
    return { changes, skipped };
  };

  // One UPDATE per batch. It replaces only a source value that is still the one read (and, with a separate
  // target, only an empty target), so an application write made meanwhile is never lost.
  const result = await runBatchJob(db, {
    table,
    idColumn,
    columns: inPlace ? { value: column } : { value: column, target },
    target,
    guard: column,
    targetMustBeNull: !inPlace,
    batchSize,
    workers,
    job: options.job ?? `migrate:${table}.${column}`,
    dryRun: options.dryRun === true,
    process: convert,
    pending: (row) =>
      row.value !== null &&
      row.value !== undefined &&
      (inPlace ? !looksLikeEnvelope(row.value) : row.target === null || row.target === undefined),
    ...(options.onProgress
      ? {
          onProgress: (p) =>
            options.onProgress!({
              scanned: p.scanned,
              migrated: p.changed,
              skipped: p.skipped,
              batches: p.batches,
              cursor: p.cursor,
            }),
        }
      : {}),
  });
  return {
    scanned: result.scanned,
    migrated: result.changed,
    skipped: result.skipped,
    batches: result.batches,
    cursor: result.cursor,
  };
}
