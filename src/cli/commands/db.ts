/**
 * `enseal db …`: jobs on encrypted database columns, online and resumable, with a progress bar (rate, ETA)
 * on a terminal and periodic progress lines otherwise: `reencrypt` after a key rotation, `migrate` off
 * pgcrypto or Fernet, `encrypt-column` for a plaintext column, `reindex` to fill a re-keyed blind index.
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
  rekeyBlindIndex,
  sqliteExecutor,
  transitDataKeys,
  type BlindIndexSpec,
  type DataKeyCache,
  type FieldType,
  type LegacySource,
  type SqlExecutor,
} from '../../fields/index.js';
import { readSecretFile } from '../input.js';
import { writeStdout } from '../run.js';
import type { Keyset } from '../../keys/index.js';
import { clientFor, type ServerFlags } from '../server-client.js';
import { loadKeysetFile, type KekOptions } from './keyset.js';

interface DbFlags extends KekOptions, ServerFlags {
  database: string;
  keyset?: string;
  transitKey?: string;
  table: string;
  column: string;
  id: string;
  boundToRow: boolean;
  batchSize: string;
  workers: string;
  job?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** Opens `postgres://…` or `sqlite:<path>`; returns the executor and how to close it. */
async function connect(url: string, workers = 1): Promise<{ db: SqlExecutor; close: () => Promise<void> }> {
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // One connection per worker, and one spare for the counts and the checkpoints outside batches.
    const pool = new pg.Pool({ connectionString: url, max: workers + 1 });
    pool.on('error', () => undefined);
    return { db: postgresExecutor(pool), close: () => pool.end() };
  }
  if (url.startsWith('sqlite:')) {
    if (workers !== 1) throw invalidArgument('--workers', 'must be 1 on SQLite (a single writer)');
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
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(table))
    throw invalidArgument('--table', 'must be a plain SQL identifier');
  const rows = await db.query(`SELECT count(*) AS n FROM "${table}"`);
  return Number(rows[0]?.n ?? 0);
}

function workerCount(flags: DbFlags): number {
  const n = Number(flags.workers);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw invalidArgument('--workers', 'must be 1-64');
  return n;
}

const PROGRESS_EVERY_MS = 2000;

/**
 * Progress of a job over `total` rows: a bar with rate and ETA when stderr is a terminal (and not --json),
 * otherwise a line every two seconds on stderr (JSON with --json), so logs of unattended runs show it too.
 */
function progressReporter(total: number, json: boolean) {
  const start = Date.now();
  const rate = (done: number) => Math.round(done / Math.max((Date.now() - start) / 1000, 0.001));
  const eta = (done: number) => {
    const r = rate(done);
    return r > 0 ? Math.max(0, Math.round((total - done) / r)) : null;
  };
  if (process.stderr.isTTY && !json) {
    const bar = new SingleBar({
      stream: process.stderr,
      format: ' {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | ETA {eta_formatted}',
      hideCursor: true,
      etaBuffer: 50,
    });
    bar.start(total, 0, { rate: 0 });
    return {
      update: (done: number) => bar.update(Math.min(done, total), { rate: rate(done) }),
      stop: () => bar.stop(),
      seconds: () => (Date.now() - start) / 1000,
    };
  }
  // Off a terminal: a line every PROGRESS_EVERY_MS, and a last one at the end, so a log always shows the rate.
  let last = start;
  let latest = 0;
  const print = (done: number) => {
    const p = { progress: Math.min(done, total), total, rowsPerSecond: rate(done), etaSeconds: eta(done) };
    process.stderr.write(
      json
        ? JSON.stringify(p) + '\n'
        : `${p.progress}/${total} rows, ${p.rowsPerSecond} rows/s, ETA ${p.etaSeconds ?? '?'} s\n`,
    );
  };
  return {
    update: (done: number) => {
      latest = done;
      const now = Date.now();
      if (now - last < PROGRESS_EVERY_MS) return;
      last = now;
      print(done);
    },
    stop: () => print(latest),
    seconds: () => (Date.now() - start) / 1000,
  };
}

/** A database error that is not enseal's own becomes a STORE error with the driver's message. */
function storeError(err: unknown): unknown {
  if (err instanceof EnsealError) return err;
  return new EnsealError(ErrorCode.STORE, `database job failed: ${(err as Error).message}`, { cause: err });
}

interface MigrateFlags extends DbFlags {
  from: string;
  type: string;
  targetColumn?: string;
  sourcePassphraseFile?: string;
  fernetKeyFile?: string[];
  eaxKeyFile?: string;
}

interface ReindexFlags extends DbFlags {
  indexKeyFile: string;
  type: string;
  to: string;
  from?: string;
  bits: string;
  normalize?: string;
}

/** A 32-byte index root key from a file, as hex or base64 text. */
function readIndexKey(file: string): Uint8Array {
  const text = readSecretFile(file, 'index key').trim();
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw invalidArgument('--index-key-file', 'must hold 32 bytes as hex or base64');
  return new Uint8Array(key);
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

/** Adds the ways a job gets its keys: a sealed keyset file, data keys from `enseal serve`, or both. */
function keyOptions(cmd: Command, keysetHelp: string): Command {
  return cmd
    .option('--keyset <file>', keysetHelp)
    .option('--kek-file <file>', 'key-encryption key file (else ENSEAL_KEK)')
    .option('--passphrase-file <file>', 'the keyset is sealed with a passphrase read from this file')
    .option(
      '--transit-key <name>',
      'data keys from this enseal serve key (ensr1. values); with --keyset too, keyset values move to it',
    )
    .option('--address <url>', 'with --transit-key: server address (env ENSEAL_ADDR)')
    .option('--token <token>', 'with --transit-key: token (env ENSEAL_TOKEN; prefer the env var)')
    .option('--ca-cert <file>', 'with --transit-key: CA certificate to trust (env ENSEAL_CACERT)');
}

/** The keys of a job: `keyset`, `dataKeys` or both, as the flags ask; at least one is required. */
async function jobKeys(flags: DbFlags): Promise<{ keyset?: Keyset; dataKeys?: DataKeyCache }> {
  if (flags.keyset === undefined && flags.transitKey === undefined)
    throw invalidArgument('--keyset', 'give --keyset <file>, --transit-key <name>, or both');
  return {
    ...(flags.keyset !== undefined ? { keyset: await loadKeysetFile(flags.keyset, flags) } : {}),
    ...(flags.transitKey !== undefined
      ? { dataKeys: transitDataKeys(clientFor(flags), flags.transitKey) }
      : {}),
  };
}

/** What every job is given: its connection, worker count and progress callback, set from the flags. */
interface JobRun {
  readonly exec: SqlExecutor;
  readonly common: {
    idColumn: string;
    batchSize: number;
    workers: number;
    job?: string;
    dryRun?: boolean;
    onProgress: (p: { scanned: number }) => void;
  };
}

/**
 * Runs one batch job the way every `enseal db` command does: connect, progress bar over the table's row count,
 * the job, then a summary line (or JSON) and the connection and cached data keys released whatever happens.
 */
async function runJob<R extends object>(
  flags: DbFlags,
  fields: FieldEncryption,
  job: (run: JobRun) => Promise<R>,
  describe: (result: R) => string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const workers = workerCount(flags);
  const { db: exec, close } = await connect(flags.database, workers);
  try {
    const bar = progressReporter(await countRows(exec, flags.table), flags.json === true);
    const result = await job({
      exec,
      common: {
        idColumn: flags.id,
        batchSize: Number(flags.batchSize),
        workers,
        ...(flags.job ? { job: flags.job } : {}),
        ...(flags.dryRun ? { dryRun: true } : {}),
        onProgress: (p) => bar.update(p.scanned),
      },
    });
    bar.stop();
    const summary = { ...result, ...extra, dryRun: flags.dryRun === true, seconds: bar.seconds() };
    await writeStdout(
      flags.json
        ? JSON.stringify(summary) + '\n'
        : `${describe(result)} in ${summary.seconds.toFixed(1)} s\n`,
    );
  } catch (err) {
    throw storeError(err);
  } finally {
    fields.dataKeys?.close(); // zeroes the cached data keys
    await close();
  }
}

/** Shared by `migrate` and `encrypt-column`: converts a column in resumable batches. */
async function runMigration(flags: MigrateFlags, from: LegacySource): Promise<void> {
  const keys = await jobKeys(flags);
  const fieldColumn = flags.targetColumn ?? flags.column;
  const fields = new FieldEncryption({
    ...keys,
    schema: {
      [flags.table]: {
        ...(flags.boundToRow ? { rowId: flags.id } : {}),
        columns: { [fieldColumn]: { type: flags.type as FieldType } },
      },
    },
  });
  await runJob(
    flags,
    fields,
    ({ exec, common }) =>
      migrateColumn(fields, exec, {
        ...common,
        table: flags.table,
        column: flags.column,
        ...(flags.targetColumn ? { targetColumn: flags.targetColumn } : {}),
        from,
      }),
    (r) =>
      `${flags.dryRun ? 'would convert' : 'converted'} ${r.migrated} of ${r.scanned} rows (${r.skipped} already enseal)`,
  );
}

function jobOptions(cmd: Command): Command {
  return keyOptions(
    cmd.requiredOption('--database <url>', 'postgres://user@host/db or sqlite:<path>'),
    'the sealed keyset to encrypt with',
  )
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
    .option('--workers <n>', 'parallel workers (PostgreSQL only; 1 on SQLite)', '1')
    .option('--job <name>', 'checkpoint name')
    .option('--dry-run', 'decrypt and count, write nothing')
    .option('--json', 'print the result as JSON');
}

export function registerDb(program: Command): void {
  const db = program.command('db').description('Jobs on encrypted database columns');
  const reencrypt = db
    .command('reencrypt')
    .description(
      "Re-encrypt a column under the keyset's current version or the server key's latest (online, resumable, one batch per transaction)",
    )
    .requiredOption('--database <url>', 'postgres://user@host/db or sqlite:<path>');
  keyOptions(reencrypt, 'the sealed keyset the column is encrypted with (after `enseal keyset rotate`)')
    .requiredOption('--table <name>')
    .requiredOption('--column <name>')
    .option('--id <column>', 'the row-id column (unique, ordered) to page on', 'id')
    .option(
      '--no-bound-to-row',
      'the values were encrypted without the row id bound (no rowId in the schema)',
    )
    .option('--batch-size <n>', 'rows per transaction', '2000')
    .option(
      '--workers <n>',
      'parallel workers, each on its own connection with FOR UPDATE SKIP LOCKED (PostgreSQL only; 1 on SQLite)',
      '1',
    )
    .option('--job <name>', 'checkpoint name (default reencrypt:<table>.<column>)')
    .option('--dry-run', 'count what would change, write nothing')
    .option('--json', 'print the result (and progress lines on stderr) as JSON')
    .action(async (flags: DbFlags) => {
      const fields = new FieldEncryption({
        ...(await jobKeys(flags)),
        schema: {
          [flags.table]: {
            ...(flags.boundToRow ? { rowId: flags.id } : {}),
            columns: { [flags.column]: { type: 'bytes' } },
          },
        },
      });
      await runJob(
        flags,
        fields,
        ({ exec, common }) =>
          reencryptColumn(fields, exec, { ...common, table: flags.table, column: flags.column }),
        (r) => `${flags.dryRun ? 'would re-encrypt' : 're-encrypted'} ${r.rewritten} of ${r.scanned} rows`,
      );
    });

  const reindex = db
    .command('reindex')
    .description(
      'Fill a new blind-index column (re-keyed, or with new bits/normalizers) from the decrypted values, online and resumable, while the application writes both indexes',
    )
    .requiredOption('--database <url>', 'postgres://user@host/db or sqlite:<path>');
  keyOptions(reindex, 'the sealed keyset the column is encrypted with')
    .requiredOption(
      '--index-key-file <file>',
      'the root key the application uses for the new index (its own indexKey, else the FieldEncryption indexKey): 32 bytes, hex or base64',
    )
    .requiredOption('--table <name>')
    .requiredOption('--column <name>', 'the encrypted column the index is computed from')
    .option(
      '--type <type>',
      "the column's type: string (default), number, boolean, date, json or bytes",
      'string',
    )
    .requiredOption('--to <column>', 'the new index column to fill (must exist, text)')
    .option('--from <column>', 'the index being replaced (left as it is; named for the report only)')
    .requiredOption('--bits <n>', 'length of the new index in bits (see planBlindIndex)')
    .option(
      '--normalize <list>',
      'comma-separated normalizers of the new index: trim, lowercase, digits, alphanumeric, collapse-spaces',
    )
    .option('--id <column>', 'the row-id column (unique, ordered) to page on', 'id')
    .option(
      '--no-bound-to-row',
      'the values were encrypted without the row id bound (no rowId in the schema)',
    )
    .option('--batch-size <n>', 'rows per transaction', '2000')
    .option('--workers <n>', 'parallel workers (PostgreSQL only; 1 on SQLite)', '1')
    .option('--job <name>', 'checkpoint name (default reindex:<table>.<to>)')
    .option('--dry-run', 'decrypt and compute every index value, count what would change, write nothing')
    .option('--json', 'print the result (and progress lines on stderr) as JSON')
    .action(async (flags: ReindexFlags) => {
      const keys = await jobKeys(flags);
      const spec: BlindIndexSpec = {
        bits: Number(flags.bits),
        indexKey: readIndexKey(flags.indexKeyFile),
        ...(flags.normalize
          ? { normalize: flags.normalize.split(',').map((n) => n.trim()) as BlindIndexSpec['normalize'] }
          : {}),
      };
      const fields = new FieldEncryption({
        ...keys,
        schema: {
          [flags.table]: {
            ...(flags.boundToRow ? { rowId: flags.id } : {}),
            columns: { [flags.column]: { type: flags.type as FieldType, indexes: { [flags.to]: spec } } },
          },
        },
      });
      if (flags.from === flags.to) throw invalidArgument('--from', 'must differ from --to');
      await runJob(
        flags,
        fields,
        ({ exec, common }) =>
          rekeyBlindIndex(fields, exec, {
            ...common,
            table: flags.table,
            column: flags.column,
            to: flags.to,
          }),
        (r) =>
          `${flags.dryRun ? 'would index' : 'indexed'} ${r.indexed} of ${r.scanned} rows into ${flags.to} (${r.unchanged} already right)`,
        flags.from ? { replaces: flags.from } : {},
      );
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
