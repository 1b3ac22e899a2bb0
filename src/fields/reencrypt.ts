/**
 * Online re-encryption of one encrypted column after a key rotation, over the batch-job engine
 * (batch-job.ts): keyset pagination, one transaction and one UPDATE per batch with the checkpoint, resumable
 * after a kill, parallel workers with `FOR UPDATE SKIP LOCKED` on PostgreSQL. Values are re-encrypted
 * without being decoded and keep their row binding; the UPDATE only replaces a value that is still the exact
 * ciphertext read, so an application write made meanwhile is never lost.
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

export type { SqlExecutor } from './batch-job.js';

export interface ReencryptOptions {
  table: string;
  column: string;
  /** The row-id column to paginate on (default: the table's rowId). Must be unique and ordered. */
  idColumn?: string;
  /** Rows per batch (one transaction each), 1-10,000; default 2,000. */
  batchSize?: number;
  /**
   * Parallel workers (PostgreSQL only; default 1). Each pages its own id range on its own connection with
   * `FOR UPDATE SKIP LOCKED`; the executor must run that many transactions at once (a pool of that size).
   */
  workers?: number;
  /** The checkpoint's name (default `reencrypt:<table>.<column>`); a new name starts from the beginning. */
  job?: string;
  /** Count what would change without writing anything. */
  dryRun?: boolean;
  onProgress?: (progress: ReencryptProgress) => void;
}

export interface ReencryptProgress {
  /** Rows read under lock (a row skipped while locked and taken up by the final sweep counts once). */
  readonly scanned: number;
  readonly rewritten: number;
  readonly batches: number;
  readonly cursor: string | null;
}

/** Re-encrypts every value of `table.column` not yet under the keyset's primary version. */
export async function reencryptColumn(
  fields: FieldEncryption,
  db: SqlExecutor,
  options: ReencryptOptions,
): Promise<ReencryptProgress> {
  const { table, column } = options;
  const idColumn = options.idColumn ?? fields.rowIdColumn(table);
  if (idColumn === undefined) throw invalidArgument('idColumn', `is required: "${table}" declares no rowId`);
  const bound = fields.rowIdColumn(table) !== undefined;
  const where = `${table}.${column}`;
  const result = await runBatchJob(db, {
    table,
    idColumn,
    columns: { value: column },
    target: column,
    guard: column,
    batchSize: checkBatchSize(options.batchSize, 2000),
    workers: checkWorkers(db, options.workers),
    job: options.job ?? `reencrypt:${table}.${column}`,
    dryRun: options.dryRun === true,
    async process(rows, dryRun) {
      // Values under server data keys: unwrap this batch's keys in one call and reserve keys for the new values,
      // so the synchronous re-encryption below never finds its cache empty. Keyset values make both no-ops.
      await fields.warm(rows.map((row) => row.value));
      await fields.ready(dryRun ? undefined : rows.length);
      const changes: BatchChange[] = [];
      for (const row of rows) {
        if (row.value === null || row.value === undefined) continue;
        const value = requireText(row.value, where, row.id);
        if (!fields.needsReencrypt(value)) continue;
        const fresh = dryRun ? null : fields.reencryptValue(table, column, value, bound ? row.id : undefined);
        changes.push({ id: row.id, old: value, value: fresh });
      }
      return { changes };
    },
    pending: (row) => typeof row.value === 'string' && fields.needsReencrypt(row.value),
    ...(options.onProgress
      ? {
          onProgress: (p) =>
            options.onProgress!({
              scanned: p.scanned,
              rewritten: p.changed,
              batches: p.batches,
              cursor: p.cursor,
            }),
        }
      : {}),
  });
  return {
    scanned: result.scanned,
    rewritten: result.changed,
    batches: result.batches,
    cursor: result.cursor,
  };
}
