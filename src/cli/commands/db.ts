/**
 * `enseal db …`: jobs on encrypted database columns, online and resumable, with a progress bar on a
 * terminal: `reencrypt` after a key rotation, `migrate` off pgcrypto or Fernet, `encrypt-column` for a
 * plaintext column.
 */
import Database from 'better-sqlite3';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import pg from 'pg';
import { EnsealError, ErrorCode, invalidArgument } from '../../crypto/index.js';
import {
  FieldEncryption,
  migrateColumn,
  postgresExecutor,
  reencryptColumn,
  sqliteExecutor,
  type FieldType,
  type LegacySource,
  type SqlExecutor,
} from '../../fields/index.js';
import { readSecretFile } from '../input.js';
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

interface MigrateFlags extends DbFlags {
  from: string;
  type: string;
  targetColumn?: string;
  sourcePassphraseFile?: string;
  fernetKeyFile?: string[];
  eaxKeyFile?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function legacySource(flags: MigrateFlags): LegacySource {
  switch (flags.from) {
    case 'pgcrypto':
      if (!flags.sourcePassphraseFile)
        throw invalidArgument('--source-passphrase-file', 'is required with --from pgcrypto');
      return {
        kind: 'pgcrypto',
        passphrase: readSecretFile(flags.sourcePassphraseFile, 'pgcrypto passphrase'),
      };
    case 'fernet':
      if (!flags.fernetKeyFile?.length)
        throw invalidArgument('--fernet-key-file', 'is required with --from fernet');
      return { kind: 'fernet', keys: flags.fernetKeyFile.map((f) => readSecretFile(f, 'Fernet key')) };
    case 'eax': {
      if (!flags.eaxKeyFile) throw invalidArgument('--eax-key-file', 'is required with --from eax');
      const text = readSecretFile(flags.eaxKeyFile, 'EAX key').trim();
      const key = /^[0-9a-fA-F]+$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
      return { kind: 'eax', key: new Uint8Array(key) };
    }
    case 'plaintext':
      return { kind: 'plaintext' };
    default:
      throw invalidArgument('--from', 'must be pgcrypto, fernet, eax or plaintext');
  }
}

/** Shared by `migrate` and `encrypt-column`: converts a column in resumable batches. */
async function runMigration(flags: MigrateFlags, from: LegacySource): Promise<void> {
  const keyset = await loadKeysetFile(flags.keyset, flags);
  const fieldColumn = flags.targetColumn ?? flags.column;
  const fields = new FieldEncryption({
    keyset,
    schema: {
      [flags.table]: {
        ...(flags.boundToRow ? { rowId: flags.id } : {}),
        columns: { [fieldColumn]: { type: flags.type as FieldType } },
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
            format: ' {bar} {percentage}% | {value}/{total} rows | ETA {eta}s',
            hideCursor: true,
          })
        : undefined;
    const start = Date.now();
    bar?.start(total, 0);
    const result = await migrateColumn(fields, exec, {
      table: flags.table,
      column: flags.column,
      ...(flags.targetColumn ? { targetColumn: flags.targetColumn } : {}),
      idColumn: flags.id,
      from,
      batchSize: Number(flags.batchSize),
      ...(flags.job ? { job: flags.job } : {}),
      ...(flags.dryRun ? { dryRun: true } : {}),
      onProgress: (p) => bar?.update(Math.min(p.scanned, total)),
    });
    bar?.stop();
    const summary = { ...result, dryRun: flags.dryRun === true, seconds: (Date.now() - start) / 1000 };
    await writeStdout(
      flags.json
        ? JSON.stringify(summary) + '\n'
        : `${flags.dryRun ? 'would convert' : 'converted'} ${result.migrated} of ${result.scanned} rows (${result.skipped} already enseal) in ${summary.seconds.toFixed(1)} s\n`,
    );
  } finally {
    await close();
  }
}

function jobOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--database <url>', 'postgres://user@host/db or sqlite:<path>')
    .requiredOption('--keyset <file>', 'the sealed keyset to encrypt with')
    .option('--kek-file <file>', 'key-encryption key file (else ENSEAL_KEK)')
    .option('--passphrase-file <file>', 'the keyset is sealed with a passphrase read from this file')
    .requiredOption('--table <name>')
    .requiredOption('--column <name>', 'the column holding the current values')
    .option('--type <type>', 'string (default), number, boolean, date, json or bytes', 'string')
    .option(
      '--target-column <name>',
      'write ciphertexts here instead of in place (required for bytea sources)',
    )
    .option('--id <column>', 'the row-id column (unique, ordered) to page on', 'id')
    .option('--no-bound-to-row', 'do not bind ciphertexts to the row id')
    .option('--batch-size <n>', 'rows per transaction', '1000')
    .option('--job <name>', 'checkpoint name')
    .option('--dry-run', 'decrypt and count, write nothing')
    .option('--json', 'print the result as JSON');
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

  jobOptions(
    db
      .command('migrate')
      .description(
        'Convert pgcrypto (pgp_sym_encrypt), Fernet or plaintext values to enseal ciphertexts, decrypting in this process',
      ),
  )
    .requiredOption('--from <kind>', "pgcrypto, fernet, eax (the seeds' PyCryptodome AES-EAX) or plaintext")
    .option('--eax-key-file <file>', 'the AES key of EAX values (hex or base64)')
    .option('--source-passphrase-file <file>', 'the pgcrypto passphrase (it never goes to the database)')
    .option('--fernet-key-file <file>', 'a Fernet key (repeatable, newest first)', collect)
    .action(async (flags: MigrateFlags) => runMigration(flags, legacySource(flags)));
  jobOptions(
    db
      .command('encrypt-column')
      .description('Encrypt an existing plaintext column (backfill phase: dual-write first, cut over after)'),
  ).action(async (flags: MigrateFlags) => runMigration(flags, { kind: 'plaintext' }));
}
