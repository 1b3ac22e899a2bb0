/**
 * Online re-encryption of one encrypted column after a key rotation: keyset pagination over the row id, one
 * transaction per batch holding the batch's row locks, one UPDATE per batch, and the job's checkpoint
 * written in that same transaction. A job killed at any point resumes from its last committed batch and
 * never re-encrypts a value twice or loses an application write made meanwhile: the UPDATE only replaces a
 * value that is still the exact ciphertext it read.
 */
import { EnsealError, ErrorCode, invalidArgument } from '../crypto/index.js';
import type { FieldEncryption } from './field-encryption.js';

/** The little SQL this job needs, so it runs over pg, better-sqlite3 or any driver wrapped this way. */
export interface SqlExecutor {
  readonly dialect: 'postgres' | 'sqlite';
  query(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on error). */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
}

export interface ReencryptOptions {
  table: string;
  column: string;
  /** The row-id column to paginate on (default: the table's rowId). Must be unique and ordered. */
  idColumn?: string;
  batchSize?: number;
  /** The checkpoint's name (default `reencrypt:<table>.<column>`); a new name starts from the beginning. */
  job?: string;
  /** Count what would change without writing anything. */
  dryRun?: boolean;
  onProgress?: (progress: ReencryptProgress) => void;
}

export interface ReencryptProgress {
  readonly scanned: number;
  readonly rewritten: number;
  readonly batches: number;
  readonly cursor: string | null;
}

const CHECKPOINTS = 'enseal_job_checkpoints';

function quote(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name))
    throw invalidArgument('identifier', `"${name}" is not a plain SQL identifier`);
  return `"${name}"`;
}

function placeholders(dialect: SqlExecutor['dialect'], count: number, offset = 0): string[] {
  return Array.from({ length: count }, (_, i) => (dialect === 'postgres' ? `$${offset + i + 1}` : '?'));
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
  const batchSize = options.batchSize ?? 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000)
    throw invalidArgument('batchSize', 'must be 1-10000');
  const job = options.job ?? `reencrypt:${table}.${column}`;
  const [t, c, id] = [quote(table), quote(column), quote(idColumn)];
  const p = (n: number, offset = 0) => placeholders(db.dialect, n, offset);

  await db.query(
    `CREATE TABLE IF NOT EXISTS ${CHECKPOINTS} (job TEXT PRIMARY KEY, cursor TEXT, updated_at BIGINT NOT NULL)`,
  );
  let progress: ReencryptProgress = { scanned: 0, rewritten: 0, batches: 0, cursor: null };
  // A dry run writes nothing, not even a checkpoint, so it pages with a cursor held in memory.
  let dryCursor: string | null = null;
  for (;;) {
    const step = await db.transaction(async (tx) => {
      let cursor = dryCursor;
      if (!options.dryRun) {
        const saved = await tx.query(`SELECT cursor FROM ${CHECKPOINTS} WHERE job = ${p(1)[0]}`, [job]);
        cursor = (saved[0]?.cursor as string | null | undefined) ?? null;
      }
      const lock = db.dialect === 'postgres' && !options.dryRun ? ' FOR UPDATE' : '';
      const rows =
        cursor === null
          ? await tx.query(
              `SELECT ${id} AS id, ${c} AS value FROM ${t} ORDER BY ${id} LIMIT ${batchSize}${lock}`,
            )
          : await tx.query(
              `SELECT ${id} AS id, ${c} AS value FROM ${t} WHERE ${id} > ${p(1)[0]} ORDER BY ${id} LIMIT ${batchSize}${lock}`,
              [cursor],
            );
      if (rows.length === 0) return undefined;
      const changes: [unknown, string, string][] = [];
      for (const row of rows) {
        const value = row.value;
        if (value === null || value === undefined) continue;
        if (typeof value !== 'string') {
          throw new EnsealError(
            ErrorCode.MALFORMED,
            `${table}.${column} of row ${String(row.id)} is not a ciphertext; stopping`,
          );
        }
        if (!fields.needsReencrypt(value)) continue;
        const fresh = options.dryRun
          ? ''
          : fields.reencryptValue(table, column, value, bound ? row.id : undefined);
        changes.push([row.id, value, fresh]);
      }
      const last = String(rows[rows.length - 1]!.id);
      if (!options.dryRun) {
        if (changes.length > 0) {
          const values = changes.map((_, i) => `(${p(3, i * 3).join(', ')})`).join(', ');
          const rowId = db.dialect === 'postgres' ? `(v.row_id)::${pgTypeOf(rows[0]!.id)}` : 'v.row_id';
          // One UPDATE per batch; `old_value` guards against overwriting a value the application changed.
          await tx.query(
            `UPDATE ${t} SET ${c} = v.new_value FROM ${valuesTable(db.dialect, values)} ` +
              `WHERE ${t}.${id} = ${rowId} AND ${t}.${c} = v.old_value`,
            changes.flat(),
          );
        }
        await tx.query(
          `INSERT INTO ${CHECKPOINTS} (job, cursor, updated_at) VALUES (${p(3).join(', ')}) ` +
            `ON CONFLICT (job) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
          [job, last, Date.now()],
        );
      }
      return { scanned: rows.length, rewritten: changes.length, cursor: last, done: rows.length < batchSize };
    });
    if (step === undefined) break;
    dryCursor = step.cursor;
    progress = {
      scanned: progress.scanned + step.scanned,
      rewritten: progress.rewritten + step.rewritten,
      batches: progress.batches + 1,
      cursor: step.cursor,
    };
    options.onProgress?.(progress);
    if (step.done) break;
  }
  if (!options.dryRun) await db.query(`DELETE FROM ${CHECKPOINTS} WHERE job = ${p(1)[0]}`, [job]);
  return progress;
}

/** A VALUES list as a table `v(row_id, old_value, new_value)`; SQLite names VALUES columns column1… only. */
function valuesTable(dialect: SqlExecutor['dialect'], values: string): string {
  return dialect === 'postgres'
    ? `(VALUES ${values}) AS v(row_id, old_value, new_value)`
    : `(SELECT column1 AS row_id, column2 AS old_value, column3 AS new_value FROM (VALUES ${values})) AS v`;
}

/** PostgreSQL needs the VALUES list's id typed like the table's; numbers page as bigint, the rest as text. */
function pgTypeOf(id: unknown): string {
  return typeof id === 'number' || typeof id === 'bigint' || (typeof id === 'string' && /^-?\d+$/.test(id))
    ? 'bigint'
    : 'text';
}
