/**
 * `enseal db …`: jobs on encrypted database columns. `reencrypt` moves a column's values to the keyset's
 * current version after a rotation, online and resumable, with a progress bar (rate and ETA) on a terminal.
 */
import Database from 'better-sqlite3';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import pg from 'pg';
import { EnsealError, ErrorCode, invalidArgument } from '../../crypto/index.js';
import {
  FieldEncryption,
  postgresExecutor,
  reencryptColumn,
  sqliteExecutor,
  type SqlExecutor,
} from '../../fields/index.js';
import { writeStdout } from '../run.js';
import { loadKeysetFile, type KekOptions } from './keyset.js';

interface DbFlags extends KekOptions {
  database: string;
  keyset: string;
  table: string;
  column: string;
  id: string;
  boundToRow: boolean;
  batchSize: string;
  job?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** Opens `postgres://…` or `sqlite:<path>`; returns the executor and how to close it. */
async function connect(url: string): Promise<{ db: SqlExecutor; close: () => Promise<void> }> {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on('error', () => undefined);
    return { db: postgresExecutor(pool), close: () => pool.end() };
  }
  if (url.startsWith('sqlite:')) {
    const sqlite = new Database(url.slice('sqlite:'.length));
    sqlite.pragma('busy_timeout = 5000');
    return {
      db: sqliteExecutor(sqlite),
      close: async () => {
        sqlite.close();
      },
    };
  }
  throw invalidArgument('--database', 'must be postgres://… or sqlite:<path>');
}

async function countRows(db: SqlExecutor, table: string): Promise<number> {
  const rows = await db.query(`SELECT count(*) AS n FROM "${table}"`);
  return Number(rows[0]?.n ?? 0);
}

export function registerDb(program: Command): void {
  const db = program.command('db').description('Jobs on encrypted database columns');
  db.command('reencrypt')
    .description(
      "Re-encrypt a column under the keyset's current version (online, resumable, one batch per transaction)",
    )
    .requiredOption('--database <url>', 'postgres://user@host/db or sqlite:<path>')
    .requiredOption(
      '--keyset <file>',
      'the sealed keyset the column is encrypted with (after `enseal keyset rotate`)',
    )
    .option('--kek-file <file>', 'key-encryption key file (else ENSEAL_KEK)')
    .option('--passphrase-file <file>', 'the keyset is sealed with a passphrase read from this file')
    .requiredOption('--table <name>')
    .requiredOption('--column <name>')
    .option('--id <column>', 'the row-id column (unique, ordered) to page on', 'id')
    .option(
      '--no-bound-to-row',
      'the values were encrypted without the row id bound (no rowId in the schema)',
    )
    .option('--batch-size <n>', 'rows per transaction', '1000')
    .option('--job <name>', 'checkpoint name (default reencrypt:<table>.<column>)')
    .option('--dry-run', 'count what would change, write nothing')
    .option('--json', 'print the result as JSON')
    .action(async (flags: DbFlags) => {
      const keyset = await loadKeysetFile(flags.keyset, flags);
      const fields = new FieldEncryption({
        keyset,
        schema: {
          [flags.table]: {
            ...(flags.boundToRow ? { rowId: flags.id } : {}),
            columns: { [flags.column]: { type: 'bytes' } },
          },
        },
      });
      const { db: exec, close } = await connect(flags.database);
      try {
        const total = await countRows(exec, flags.table);
        const bar =
          process.stderr.isTTY && !flags.json
            ? new SingleBar({
                stream: process.stderr,
                format: ' {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta}s',
                hideCursor: true,
              })
            : undefined;
        const start = Date.now();
        bar?.start(total, 0, { rate: 0 });
        const result = await reencryptColumn(fields, exec, {
          table: flags.table,
          column: flags.column,
          idColumn: flags.id,
          batchSize: Number(flags.batchSize),
          ...(flags.job ? { job: flags.job } : {}),
          ...(flags.dryRun ? { dryRun: true } : {}),
          onProgress: (p) =>
            bar?.update(Math.min(p.scanned, total), {
              rate: Math.round(p.scanned / ((Date.now() - start) / 1000 || 1)),
            }),
        });
        bar?.stop();
        const summary = { ...result, dryRun: flags.dryRun === true, seconds: (Date.now() - start) / 1000 };
        await writeStdout(
          flags.json
            ? JSON.stringify(summary) + '\n'
            : `${flags.dryRun ? 'would re-encrypt' : 're-encrypted'} ${result.rewritten} of ${result.scanned} rows in ${summary.seconds.toFixed(1)} s\n`,
        );
      } catch (err) {
        if (err instanceof EnsealError) throw err;
        throw new EnsealError(ErrorCode.STORE, `database job failed: ${(err as Error).message}`, {
          cause: err,
        });
      } finally {
        await close();
      }
    });
}
