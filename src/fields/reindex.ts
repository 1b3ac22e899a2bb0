/**
 * Re-keying a blind index through a second index column. A blind index cannot be rotated in place: its
 * values are keyed hashes of the plaintext, so a new key (or new length or normalizers) means a new column
 * filled from the decrypted values, while the old one keeps serving queries. The application declares the
 * new index next to the old one (FieldEncryption then writes both on every insert and update), this job
 * backfills the new column over the batch-job engine (resumable, online, parallel on PostgreSQL), the
 * application switches its queries to the new index, and the old column is dropped.
 */
import { invalidArgument } from '../crypto/index.js';
import {
  checkBatchSize,
  checkWorkers,
  requireText,
  runBatchJob,
  type BatchChange,
  type SqlExecutor,
} from './batch-job.js';
import type { FieldEncryption } from './field-encryption.js';

export interface RekeyBlindIndexOptions {
  table: string;
  /** The encrypted column the index is computed from. */
  column: string;
  /** The new index (declared on `column` in the schema); its column is the one filled. */
  to: string;
  /** The index being replaced; when given, it must be another declared index of `column`. */
  from?: string;
  /** The row-id column to paginate on (default: the table's rowId). Must be unique and ordered. */
  idColumn?: string;
  /** Rows per batch (one transaction each), 1-10,000; default 2,000. */
  batchSize?: number;
  /** Parallel workers (PostgreSQL only; default 1), as for `reencryptColumn`. */
  workers?: number;
  /** The checkpoint's name (default `reindex:<table>.<to>`); a new name starts from the beginning. */
  job?: string;
  /** Decrypt and compute every index value, count what would change, write nothing. */
  dryRun?: boolean;
  onProgress?: (progress: RekeyProgress) => void;
}

export interface RekeyProgress {
  readonly scanned: number;
  /** Index values written (or, in a dry run, that would be). */
  readonly indexed: number;
  /** Rows whose new index already held the right value (written by the application's dual writes). */
  readonly unchanged: number;
  readonly batches: number;
  readonly cursor: string | null;
}

/**
 * Fills the blind-index column `to` of `table.column` from the decrypted values. Each row's index is written
 * only if its encrypted value is still the one decrypted, so a value the application changed meanwhile (and
 * whose new index it wrote itself) is left alone. NULL values leave the index NULL.
 */
export async function rekeyBlindIndex(
  fields: FieldEncryption,
  db: SqlExecutor,
  options: RekeyBlindIndexOptions,
): Promise<RekeyProgress> {
  const { table, column, to } = options;
  const indexes = fields.schema[table]?.columns[column]?.indexes;
  if (indexes === undefined || !Object.hasOwn(indexes, to))
    throw invalidArgument('to', `"${to}" is not a declared blind index of ${table}.${column}`);
  if (options.from !== undefined && (options.from === to || !Object.hasOwn(indexes, options.from)))
    throw invalidArgument('from', `must be another declared blind index of ${table}.${column}`);
  const idColumn = options.idColumn ?? fields.rowIdColumn(table);
  if (idColumn === undefined) throw invalidArgument('idColumn', `is required: "${table}" declares no rowId`);
  const bound = fields.rowIdColumn(table) !== undefined;
  const where = `${table}.${column}`;
  const result = await runBatchJob(db, {
    table,
    idColumn,
    columns: { value: column, index: to },
    target: to,
    guard: column,
    batchSize: checkBatchSize(options.batchSize, 2000),
    workers: checkWorkers(db, options.workers),
    job: options.job ?? `reindex:${table}.${to}`,
    dryRun: options.dryRun === true,
    async process(rows) {
      await fields.warm(rows.map((row) => row.value)); // server data keys: one unwrap call per batch
      const changes: BatchChange[] = [];
      let unchanged = 0;
      for (const row of rows) {
        if (row.value === null || row.value === undefined) continue;
        const ciphertext = requireText(row.value, where, row.id);
        const plain = fields.decryptValue(table, column, ciphertext, bound ? row.id : undefined);
        const index = fields.blindIndex(table, column, to, plain);
        if (row.index === index) unchanged++;
        else changes.push({ id: row.id, old: ciphertext, value: index });
      }
      return { changes, skipped: unchanged };
    },
    pending: (row) => row.value !== null && row.value !== undefined && (row.index ?? null) === null,
    ...(options.onProgress
      ? {
          onProgress: (p) =>
            options.onProgress!({
              scanned: p.scanned,
              indexed: p.changed,
              unchanged: p.skipped,
              batches: p.batches,
              cursor: p.cursor,
            }),
        }
      : {}),
  });
  return {
    scanned: result.scanned,
    indexed: result.changed,
    unchanged: result.skipped,
    batches: result.batches,
    cursor: result.cursor,
  };
}
