/** Online re-encryption after a key rotation: complete, resumable after SIGKILL, and safe beside live writes. */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexEncode, randomBytes } from '../../src/crypto/index.js';
import {
  FieldEncryption,
  postgresExecutor,
  reencryptColumn,
  sqliteExecutor,
} from '../../src/fields/index.js';
import { Keyset } from '../../src/keys/index.js';
import { buildOnce } from '../helpers/cli.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../kms/helpers.js';

const schema = { people: { rowId: 'id', columns: { ssn: { type: 'string' as const } } } };
const ROWS = 2000;

function setup() {
  const keyset = Keyset.generate({ purpose: 'encrypt' });
  const indexKey = randomBytes(32);
  const fields = new FieldEncryption({ keyset, indexKey, schema });
  return { keyset, indexKey, fields };
}

function seedSqlite(path: string, fields: FieldEncryption): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT)');
  const insert = db.prepare('INSERT INTO people (id, ssn) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= ROWS; i++)
      insert.run(i, i % 50 === 0 ? null : fields.encryptValue('people', 'ssn', `ssn-${i}`, i));
  })();
  return db;
}

function checkAll(db: { prepare(sql: string): { all(): unknown[] } }, fields: FieldEncryption) {
  for (const row of db.prepare('SELECT id, ssn FROM people').all() as { id: number; ssn: string | null }[]) {
    if (row.ssn === null) continue;
    expect(fields.needsReencrypt(row.ssn)).toBe(false);
    expect(fields.decryptValue('people', 'ssn', row.ssn, row.id)).toBe(`ssn-${row.id}`);
  }
}

describe('reencryptColumn', () => {
  it('SQLite: rewrites every value under the new primary version, once; dry run writes nothing', async () => {
    const { keyset, fields } = setup();
    const db = seedSqlite(join(tempDir(), 'a.db'), fields);
    keyset.rotate();
    const exec = sqliteExecutor(db);
    const dry = await reencryptColumn(fields, exec, {
      table: 'people',
      column: 'ssn',
      batchSize: 300,
      dryRun: true,
    });
    expect(dry).toMatchObject({ scanned: ROWS, rewritten: ROWS - ROWS / 50 });
    const before = db.prepare('SELECT ssn FROM people WHERE id = 1').get() as { ssn: string };
    expect(fields.needsReencrypt(before.ssn)).toBe(true);
    const seen: number[] = [];
    const done = await reencryptColumn(fields, exec, {
      table: 'people',
      column: 'ssn',
      batchSize: 300,
      onProgress: (p) => seen.push(p.scanned),
    });
    expect(done).toMatchObject({ scanned: ROWS, rewritten: ROWS - ROWS / 50, batches: 7 });
    expect(seen.at(-1)).toBe(ROWS);
    checkAll(db, fields);
    expect((await reencryptColumn(fields, exec, { table: 'people', column: 'ssn' })).rewritten).toBe(0);
    db.close();
  });

  it('SQLite: a job killed with SIGKILL resumes from its checkpoint and every row stays readable', async () => {
    buildOnce();
    const { keyset, fields } = setup();
    const dir = tempDir();
    const dbPath = join(dir, 'b.db');
    const indexKey = randomBytes(32);
    const f2 = new FieldEncryption({ keyset, indexKey, schema });
    seedSqlite(dbPath, f2).close();
    keyset.rotate();
    const keysetFile = join(dir, 'keyset.json');
    writeFileSync(keysetFile, JSON.stringify(keyset.exportPlaintext({ allowPlaintextKeyMaterial: true })));
    const child = spawn(
      process.execPath,
      [new URL('./reencrypt-worker.mjs', import.meta.url).pathname, dbPath, keysetFile, hexEncode(indexKey)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let lines = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      if (line.startsWith('{')) lines++;
      if (lines === 5) break;
    }
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    const db = new Database(dbPath);
    const checkpoint = db.prepare('SELECT cursor FROM enseal_job_checkpoints').get() as
      { cursor: string } | undefined;
    expect(Number(checkpoint?.cursor)).toBeGreaterThanOrEqual(100);
    expect(Number(checkpoint?.cursor)).toBeLessThan(ROWS);
    const rest = await reencryptColumn(f2, sqliteExecutor(db), {
      table: 'people',
      column: 'ssn',
      batchSize: 200,
    });
    // The resumed run starts after the checkpoint: it never scans the committed batches again.
    expect(rest.scanned).toBe(ROWS - Number(checkpoint!.cursor));
    checkAll(db, f2);
    void fields;
    db.close();
  });

  describe('PostgreSQL', () => {
    let server: TestPostgres | undefined;
    beforeAll(async () => {
      server = await startPostgres();
    });
    afterAll(async () => server?.stop());

    it('application writes made while the job runs are never lost', async () => {
      if (!server) return;
      const { keyset, fields } = setup();
      const pool = new pg.Pool({ connectionString: server.connectionString, max: 4 });
      // The cluster stops in afterAll; an idle client it drops then must not surface as an unhandled error.
      pool.on('error', () => undefined);
      await pool.query('CREATE TABLE people (id BIGINT PRIMARY KEY, ssn TEXT)');
      for (let i = 1; i <= ROWS; i += 500) {
        const ids = Array.from({ length: 500 }, (_, j) => i + j);
        const values = ids.map((_, j) => `($${j * 2 + 1}, $${j * 2 + 2})`).join(', ');
        await pool.query(
          `INSERT INTO people (id, ssn) VALUES ${values}`,
          ids.flatMap((id) => [id, fields.encryptValue('people', 'ssn', `ssn-${id}`, id)]),
        );
      }
      keyset.rotate();
      const written = new Map<number, string>();
      let stop = false;
      const app = (async () => {
        for (let n = 0; !stop; n++) {
          const id = 1 + ((n * 7919) % ROWS);
          const value = `ssn-${id}-changed-${n}`; // the application changes the value under the new key
          await pool.query('UPDATE people SET ssn = $1 WHERE id = $2', [
            fields.encryptValue('people', 'ssn', value, id),
            id,
          ]);
          written.set(id, value);
        }
      })();
      const result = await reencryptColumn(fields, postgresExecutor(pool), {
        table: 'people',
        column: 'ssn',
        batchSize: 100,
      });
      stop = true;
      await app;
      expect(result.scanned).toBe(ROWS);
      expect(written.size).toBeGreaterThan(10);
      const rows = (await pool.query('SELECT id, ssn FROM people ORDER BY id')).rows as {
        id: string;
        ssn: string;
      }[];
      for (const r of rows) {
        expect(fields.needsReencrypt(r.ssn)).toBe(false);
        const id = Number(r.id);
        // Every application write survives; every other row keeps its value under the new key.
        expect(fields.decryptValue('people', 'ssn', r.ssn, id)).toBe(written.get(id) ?? `ssn-${id}`);
      }
      await pool.end();
    });
  });
});
