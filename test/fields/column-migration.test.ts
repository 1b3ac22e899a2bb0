/** Migrating legacy columns (pgcrypto on PostgreSQL, Fernet on SQLite) into enseal field ciphertexts. */
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnsealError, randomBytes } from '../../src/crypto/index.js';
import { migrateColumn, type MigrateProgress } from '../../src/fields/column-migration.js';
import { FieldEncryption } from '../../src/fields/field-encryption.js';
import { postgresExecutor, sqliteExecutor } from '../../src/fields/sql-executors.js';
import { Fernet, generateFernetKey } from '../../src/formats/index.js';
import { Keyset } from '../../src/keys/index.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

const ROWS = 500;

function fieldsFor(schema: ConstructorParameters<typeof FieldEncryption>[0]['schema']) {
  return new FieldEncryption({
    keyset: Keyset.generate({ purpose: 'encrypt' }),
    indexKey: randomBytes(32),
    schema,
  });
}

describe('migrateColumn: pgcrypto on PostgreSQL', () => {
  let server: TestPostgres | undefined;
  let pool: pg.Pool | undefined;

  beforeAll(async () => {
    server = await startPostgres();
    if (server === undefined) return;
    pool = new pg.Pool({ connectionString: server.connectionString, max: 4 });
    await pool.query('CREATE EXTENSION IF NOT EXISTS pgcrypto');
  }, 120_000);

  afterAll(async () => {
    await pool?.end();
    await server?.stop();
  });

  async function seed(table: string): Promise<void> {
    await pool!.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, ssn bytea, ssn_enc text)`);
    // The legacy ciphertexts are made by PostgreSQL itself, with pgcrypto's defaults.
    await pool!.query(
      `INSERT INTO ${table} (id, ssn) SELECT id, pgp_sym_encrypt('ssn-' || id, 'seed passphrase') ` +
        `FROM generate_series(1, ${ROWS}) AS id`,
    );
  }

  it('decrypts in the application, converts every row into ssn_enc, and a second run changes nothing', async (ctx) => {
    if (pool === undefined) return ctx.skip();
    await seed('people');
    const fields = fieldsFor({ people: { rowId: 'id', columns: { ssn_enc: { type: 'string' } } } });
    const db = postgresExecutor(pool);
    const options = {
      table: 'people',
      column: 'ssn',
      targetColumn: 'ssn_enc',
      from: { kind: 'pgcrypto', passphrase: 'seed passphrase' },
      batchSize: 100,
    } as const;

    const dry = await migrateColumn(fields, db, { ...options, dryRun: true });
    expect(dry).toMatchObject({ scanned: ROWS, migrated: ROWS, skipped: 0 });
    expect((await pool.query('SELECT count(ssn_enc)::int AS n FROM people')).rows[0].n).toBe(0);

    const seen: MigrateProgress[] = [];
    const started = performance.now();
    const done = await migrateColumn(fields, db, { ...options, onProgress: (p) => seen.push(p) });
    const ms = performance.now() - started;
    console.log(
      `pgcrypto → enseal: ${ROWS} rows in ${ms.toFixed(0)} ms (${(ms / ROWS).toFixed(2)} ms/row, openpgp decrypt dominated)`,
    );
    expect(done).toMatchObject({ scanned: ROWS, migrated: ROWS, skipped: 0, batches: 5 });
    expect(seen.map((p) => p.scanned)).toEqual([100, 200, 300, 400, 500]);

    const rows = (await pool.query('SELECT id, ssn_enc FROM people ORDER BY id')).rows as {
      id: string;
      ssn_enc: string | null;
    }[];
    expect(rows).toHaveLength(ROWS);
    const mismatches = rows.filter(
      (r) =>
        r.ssn_enc === null || fields.decryptValue('people', 'ssn_enc', r.ssn_enc, r.id) !== `ssn-${r.id}`,
    );
    expect(mismatches).toEqual([]);
    // The source column is left for the cut-over; the checkpoint is gone once the job completes.
    expect((await pool.query('SELECT count(ssn)::int AS n FROM people')).rows[0].n).toBe(ROWS);
    expect((await pool.query('SELECT count(*)::int AS n FROM enseal_job_checkpoints')).rows[0].n).toBe(0);

    const again = await migrateColumn(fields, db, options);
    expect(again).toMatchObject({ scanned: ROWS, migrated: 0, skipped: ROWS });
    const after = (await pool.query('SELECT id, ssn_enc FROM people ORDER BY id')).rows as typeof rows;
    expect(after).toEqual(rows);
  }, 120_000);

  it('a wrong passphrase stops with an EnsealError naming the row and writes nothing', async (ctx) => {
    if (pool === undefined) return ctx.skip();
    await seed('people_wrong');
    const fields = fieldsFor({ people_wrong: { rowId: 'id', columns: { ssn_enc: { type: 'string' } } } });
    const run = migrateColumn(fields, postgresExecutor(pool), {
      table: 'people_wrong',
      column: 'ssn',
      targetColumn: 'ssn_enc',
      from: { kind: 'pgcrypto', passphrase: 'not the passphrase' },
      batchSize: 100,
    });
    await expect(run).rejects.toBeInstanceOf(EnsealError);
    await expect(run).rejects.toMatchObject({ code: 'ERR_DECRYPT_FAILED', message: /row 1 / });
    expect((await pool.query('SELECT count(ssn_enc)::int AS n FROM people_wrong')).rows[0].n).toBe(0);
    const checkpoint = await pool.query(
      `SELECT * FROM enseal_job_checkpoints WHERE job LIKE '%people_wrong%'`,
    );
    expect(checkpoint.rows).toEqual([]);
  }, 120_000);

  it('two workers convert every row, including rows the application holds locked while they pass', async (ctx) => {
    if (pool === undefined) return ctx.skip();
    await seed('people_parallel');
    const fields = fieldsFor({ people_parallel: { rowId: 'id', columns: { ssn_enc: { type: 'string' } } } });
    // The application holds 30 rows for the first part of the job; SKIP LOCKED passes them, the sweep
    // converts them once they are released.
    const holder = await pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT id FROM people_parallel WHERE id % 17 = 0 FOR UPDATE');
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        void holder
          .query('COMMIT')
          .then(() => holder.release())
          .then(resolve);
      }, 300),
    );
    const done = await migrateColumn(fields, postgresExecutor(pool), {
      table: 'people_parallel',
      column: 'ssn',
      targetColumn: 'ssn_enc',
      from: { kind: 'pgcrypto', passphrase: 'seed passphrase' },
      batchSize: 50,
      workers: 2,
    });
    await released;
    expect(done).toMatchObject({ migrated: ROWS, skipped: 0 });
    const rows = (await pool.query('SELECT id, ssn_enc FROM people_parallel')).rows as {
      id: string;
      ssn_enc: string | null;
    }[];
    expect(rows.filter((r) => r.ssn_enc === null)).toEqual([]);
    for (const r of rows)
      expect(fields.decryptValue('people_parallel', 'ssn_enc', r.ssn_enc, r.id)).toBe(`ssn-${r.id}`);
  }, 120_000);

  it('refuses to write ciphertexts into the bytea column itself', async (ctx) => {
    if (pool === undefined) return ctx.skip();
    await pool.query('CREATE TABLE people_inplace (id bigint PRIMARY KEY, ssn bytea)');
    const fields = fieldsFor({ people_inplace: { rowId: 'id', columns: { ssn: { type: 'string' } } } });
    await expect(
      migrateColumn(fields, postgresExecutor(pool), {
        table: 'people_inplace',
        column: 'ssn',
        from: { kind: 'pgcrypto', passphrase: 'seed passphrase' },
      }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /targetColumn is required/ });
  });
});

describe('migrateColumn: Fernet on SQLite', () => {
  it('migrates Fernet tokens in place, resumes from a checkpoint, and is idempotent', async () => {
    const oldKey = generateFernetKey();
    const newerKey = generateFernetKey();
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY, iban TEXT)');
    const insert = sqlite.prepare('INSERT INTO accounts (id, iban) VALUES (?, ?)');
    for (let i = 1; i <= 250; i++) {
      const fernet = new Fernet(i % 2 === 0 ? newerKey : oldKey);
      insert.run(i, i % 25 === 0 ? null : fernet.encrypt(`iban-${i}`));
    }
    const fields = fieldsFor({ accounts: { rowId: 'id', columns: { iban: { type: 'string' } } } });
    const db = sqliteExecutor(sqlite);
    const options = {
      table: 'accounts',
      column: 'iban',
      from: { kind: 'fernet', keys: [newerKey, oldKey] },
      batchSize: 60,
      job: 'fernet-accounts',
    } as const;

    // Interrupted after two committed batches (onProgress runs after each commit).
    const interrupted = migrateColumn(fields, db, {
      ...options,
      onProgress: (p) => {
        if (p.batches === 2) throw new Error('killed');
      },
    });
    await expect(interrupted).rejects.toThrow('killed');
    const checkpoint = sqlite
      .prepare('SELECT cursor FROM enseal_job_checkpoints WHERE job = ?')
      .get(options.job);
    expect(checkpoint).toEqual({ cursor: '120' });
    // The resumed run starts after the checkpoint (ids 121-250; 6 of them are NULL and stay NULL).
    const resumed = await migrateColumn(fields, db, options);
    expect(resumed).toMatchObject({ scanned: 130, migrated: 124, skipped: 0, batches: 3 });

    const rows = sqlite.prepare('SELECT id, iban FROM accounts ORDER BY id').all() as {
      id: number;
      iban: string | null;
    }[];
    for (const row of rows) {
      if (row.id % 25 === 0) {
        expect(row.iban).toBeNull();
        continue;
      }
      expect(fields.decryptValue('accounts', 'iban', row.iban, row.id)).toBe(`iban-${row.id}`);
    }
    const again = await migrateColumn(fields, db, options);
    expect(again).toMatchObject({ migrated: 0, skipped: 240 });
    expect(sqlite.prepare('SELECT id, iban FROM accounts ORDER BY id').all()).toEqual(rows);
    sqlite.close();
  });

  it('a token under an unknown key stops the job naming its row; earlier batches stay committed', async () => {
    const key = generateFernetKey();
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    const insert = sqlite.prepare('INSERT INTO notes (id, body) VALUES (?, ?)');
    for (let i = 1; i <= 30; i++)
      insert.run(i, new Fernet(i === 17 ? generateFernetKey() : key).encrypt(`note ${i}`));
    const fields = fieldsFor({ notes: { rowId: 'id', columns: { body: { type: 'string' } } } });
    const run = migrateColumn(fields, sqliteExecutor(sqlite), {
      table: 'notes',
      column: 'body',
      from: { kind: 'fernet', keys: [key] },
      batchSize: 10,
    });
    await expect(run).rejects.toMatchObject({ code: 'ERR_DECRYPT_FAILED', message: /row 17 / });
    const bodies = sqlite.prepare('SELECT id, body FROM notes ORDER BY id').all() as {
      id: number;
      body: string;
    }[];
    // Batch 1 (ids 1-10) committed; batch 2 (11-20) rolled back; nothing after it touched.
    for (const { id, body } of bodies) {
      if (id <= 10) expect(fields.decryptValue('notes', 'body', body, id)).toBe(`note ${id}`);
      else expect(body.startsWith('gAAAAA')).toBe(true);
    }
    const checkpoint = sqlite.prepare('SELECT cursor FROM enseal_job_checkpoints').get() as {
      cursor: string;
    };
    expect(checkpoint.cursor).toBe('10');
    sqlite.close();
  });

  it('plaintext numbers become number ciphertexts in a text target; a non-number stops the job', async () => {
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE scores (id INTEGER PRIMARY KEY, score INTEGER, score_enc TEXT)');
    const insert = sqlite.prepare('INSERT INTO scores (id, score) VALUES (?, ?)');
    for (let i = 1; i <= 20; i++) insert.run(i, i * 7);
    const fields = fieldsFor({ scores: { rowId: 'id', columns: { score_enc: { type: 'number' } } } });
    const db = sqliteExecutor(sqlite);
    await expect(
      migrateColumn(fields, db, { table: 'scores', column: 'score', from: { kind: 'plaintext' } }),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    const options = {
      table: 'scores',
      column: 'score',
      targetColumn: 'score_enc',
      from: { kind: 'plaintext' },
    } as const;
    expect(await migrateColumn(fields, db, options)).toMatchObject({ migrated: 20, skipped: 0 });
    for (const row of sqlite.prepare('SELECT id, score_enc FROM scores').all() as {
      id: number;
      score_enc: string;
    }[]) {
      expect(fields.decryptValue('scores', 'score_enc', row.score_enc, row.id)).toBe(row.id * 7);
    }
    sqlite.prepare('INSERT INTO scores (id, score) VALUES (?, ?)').run(21, 'twenty-one');
    await expect(migrateColumn(fields, db, options)).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
      message: /row 21 .*number/,
    });
    expect(sqlite.prepare('SELECT score_enc FROM scores WHERE id = 21').get()).toEqual({ score_enc: null });
    sqlite.close();
  });
});

describe("migrateColumn: the seeds' AES-EAX values on SQLite", () => {
  it('authenticates each EAX value (nonce ‖ ciphertext ‖ tag) and converts it; a tampered value stops the job', async () => {
    const { eaxEncrypt, base64Encode, concatBytes, utf8Encode } = await import('../../src/crypto/index.js');
    const key = randomBytes(16);
    const eax = (text: string) => {
      const nonce = randomBytes(16);
      const { ciphertext, tag } = eaxEncrypt(key, nonce, utf8Encode(text));
      return base64Encode(concatBytes(nonce, ciphertext, tag));
    };
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    const insert = sqlite.prepare('INSERT INTO notes VALUES (?, ?)');
    for (let i = 1; i <= 40; i++) insert.run(i, eax(`note ${i}`));
    const fields = fieldsFor({ notes: { rowId: 'id', columns: { body: { type: 'string' } } } });
    const result = await migrateColumn(fields, sqliteExecutor(sqlite), {
      table: 'notes',
      column: 'body',
      from: { kind: 'eax', key },
      batchSize: 15,
    });
    expect(result).toMatchObject({ scanned: 40, migrated: 40 });
    for (const row of sqlite.prepare('SELECT id, body FROM notes').all() as { id: number; body: string }[]) {
      expect(fields.decryptValue('notes', 'body', row.body, row.id)).toBe(`note ${row.id}`);
    }
    sqlite.exec('CREATE TABLE notes2 (id INTEGER PRIMARY KEY, body TEXT)');
    const bad = eax('tampered');
    sqlite
      .prepare('INSERT INTO notes2 VALUES (1, ?)')
      .run(bad.slice(0, 30) + (bad[30] === 'A' ? 'B' : 'A') + bad.slice(31));
    const f2 = fieldsFor({ notes2: { rowId: 'id', columns: { body: { type: 'string' } } } });
    await expect(
      migrateColumn(f2, sqliteExecutor(sqlite), {
        table: 'notes2',
        column: 'body',
        from: { kind: 'eax', key },
      }),
    ).rejects.toThrow(EnsealError);
    expect(
      (sqlite.prepare('SELECT body FROM notes2').get() as { body: string }).body.startsWith('ens1.'),
    ).toBe(false);
  });
});
