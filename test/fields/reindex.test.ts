/**
 * Re-keying a blind index through a second index column: the new column is backfilled from the decrypted
 * values while the application dual-writes, resumably, and queries on it use its index.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, type LogEvent } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/index.js';
import {
  FieldEncryption,
  postgresExecutor,
  rekeyBlindIndex,
  sqliteExecutor,
  type EncryptedSchema,
  type SqlExecutor,
} from '../../src/fields/index.js';
import { EnsealKyselyPlugin } from '../../src/fields/kysely.js';
import { Keyset } from '../../src/keys/index.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../kms/helpers.js';

const ROWS = 3000;
const ssnOf = (id: number) => `${100 + (id % 900)}-${String(id % 100).padStart(2, '0')}-${id % 10000}`;

/** Before: one index under the old root. During: both, the new one under its own root and length. */
function setup() {
  const keyset = Keyset.generate({ purpose: 'encrypt' });
  const oldRoot = randomBytes(32);
  const newRoot = randomBytes(32);
  const before: EncryptedSchema = {
    people: {
      rowId: 'id',
      columns: { ssn: { type: 'string', indexes: { ssn_bidx: { bits: 8, normalize: ['digits'] } } } },
    },
  };
  const during: EncryptedSchema = {
    people: {
      rowId: 'id',
      columns: {
        ssn: {
          type: 'string',
          indexes: {
            ssn_bidx: { bits: 8, normalize: ['digits'] },
            ssn_bidx_v2: { bits: 10, normalize: ['digits'], indexKey: newRoot },
          },
        },
      },
    },
  };
  return {
    old: new FieldEncryption({ keyset, indexKey: oldRoot, schema: before }),
    both: new FieldEncryption({ keyset, indexKey: oldRoot, schema: during }),
  };
}

function checkIndexes(
  rows: { id: unknown; ssn: string | null; ssn_bidx_v2: string | null }[],
  fields: FieldEncryption,
) {
  for (const r of rows) {
    if (r.ssn === null) {
      expect(r.ssn_bidx_v2).toBeNull();
      continue;
    }
    const plain = fields.decryptValue('people', 'ssn', r.ssn, Number(r.id));
    expect(r.ssn_bidx_v2).toBe(fields.blindIndex('people', 'ssn', 'ssn_bidx_v2', plain));
  }
}

/** Stops a job after `batches` committed batches, as a crash would (the thrown error leaves the job). */
function stopAfter(batches: number) {
  return (p: { batches: number }) => {
    if (p.batches === batches) throw new Error('stopped on purpose');
  };
}

describe('rekeyBlindIndex', () => {
  it('the new index gets its own root key: values differ from the old index and from the default root', () => {
    const { old, both } = setup();
    expect(both.blindIndex('people', 'ssn', 'ssn_bidx', '078-05-1120')).toBe(
      old.blindIndex('people', 'ssn', 'ssn_bidx', '078-05-1120'),
    );
    const v2 = both.blindIndex('people', 'ssn', 'ssn_bidx_v2', '078-05-1120');
    expect(v2).toMatch(/^[0-9a-f]{4}$/);
    const sameRoot = new FieldEncryption({
      keyset: Keyset.generate({ purpose: 'encrypt' }),
      indexKey: randomBytes(32),
      schema: { people: { columns: { ssn: { type: 'string', indexes: { ssn_bidx_v2: { bits: 10 } } } } } },
    });
    expect(sameRoot.blindIndex('people', 'ssn', 'ssn_bidx_v2', '078051120')).not.toBe(v2);
    // Queries pick the index to use: the first declared by default, the new one when named.
    expect(both.equals('people', 'ssn', '078051120').column).toBe('ssn_bidx');
    expect(both.equals('people', 'ssn', '078051120', 'ssn_bidx_v2')).toEqual({
      column: 'ssn_bidx_v2',
      value: v2,
    });
    expect(
      () =>
        new FieldEncryption({
          keyset: Keyset.generate({ purpose: 'encrypt' }),
          schema: {
            t: { columns: { c: { type: 'string', indexes: { i: { bits: 8, indexKey: randomBytes(16) } } } } },
          },
        }),
    ).toThrow(/indexKey/);
  });

  it('SQLite: fills the new column in resumable batches; a second run changes nothing', async () => {
    const { old, both } = setup();
    const db = new Database(join(tempDir(), 'r.db'));
    db.exec('CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT, ssn_bidx TEXT, ssn_bidx_v2 TEXT)');
    const insert = db.prepare('INSERT INTO people (id, ssn, ssn_bidx) VALUES (?, ?, ?)');
    db.transaction(() => {
      for (let id = 1; id <= ROWS; id++) {
        const row = id % 50 === 0 ? { id, ssn: null } : old.encryptRow('people', { id, ssn: ssnOf(id) });
        insert.run(id, row.ssn ?? null, (row.ssn_bidx as string | undefined) ?? null);
      }
    })();
    const exec: SqlExecutor = sqliteExecutor(db);
    const opts = { table: 'people', column: 'ssn', to: 'ssn_bidx_v2', from: 'ssn_bidx', batchSize: 400 };
    const dry = await rekeyBlindIndex(both, exec, { ...opts, dryRun: true });
    expect(dry).toMatchObject({ scanned: ROWS, indexed: ROWS - ROWS / 50, unchanged: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM people WHERE ssn_bidx_v2 IS NOT NULL').get()).toEqual({
      n: 0,
    });

    await expect(rekeyBlindIndex(both, exec, { ...opts, onProgress: stopAfter(3) })).rejects.toThrow(
      /on purpose/,
    );
    expect(db.prepare('SELECT cursor FROM enseal_job_checkpoints').get()).toEqual({ cursor: '1200' });
    const rest = await rekeyBlindIndex(both, exec, opts);
    expect(rest.scanned).toBe(ROWS - 1200); // resumed after the checkpoint
    checkIndexes(db.prepare('SELECT id, ssn, ssn_bidx_v2 FROM people').all() as never, both);
    expect(await rekeyBlindIndex(both, exec, opts)).toMatchObject({
      indexed: 0,
      unchanged: ROWS - ROWS / 50,
    });
    // The old index column was left untouched.
    const sample = db.prepare('SELECT id, ssn, ssn_bidx FROM people WHERE id = 7').get() as {
      ssn_bidx: string;
    };
    expect(sample.ssn_bidx).toBe(old.blindIndex('people', 'ssn', 'ssn_bidx', ssnOf(7)));
    await expect(rekeyBlindIndex(both, exec, { ...opts, to: 'nope' })).rejects.toThrow(
      /not a declared blind index/,
    );
    db.close();
  });

  it('Kysely: writes fill both indexes during the transition; queries use the first declared one', async () => {
    const { both } = setup();
    const spec = both.schema.people!.columns.ssn!.indexes!;
    // The cut-over: the same indexes, the new one declared first.
    const switched = new FieldEncryption({
      keyset: Keyset.generate({ purpose: 'encrypt' }),
      indexKey: randomBytes(32),
      schema: {
        people: {
          rowId: 'id',
          columns: {
            ssn: { type: 'string', indexes: { ssn_bidx_v2: spec.ssn_bidx_v2!, ssn_bidx: spec.ssn_bidx! } },
          },
        },
      },
    });
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT, ssn_bidx TEXT, ssn_bidx_v2 TEXT)');
    for (const [fields, id] of [
      [both, 1],
      [switched, 2],
    ] as const) {
      const sent: string[] = [];
      const db = new Kysely<{
        people: { id: number; ssn: string; ssn_bidx: string | null; ssn_bidx_v2: string | null };
      }>({
        dialect: new SqliteDialect({ database: sqlite }),
        plugins: [new EnsealKyselyPlugin(fields)],
        log: (e: LogEvent) => void sent.push(e.query.sql),
      });
      await db
        .insertInto('people')
        .values({ id, ssn: `078-05-112${id}` })
        .execute();
      const raw = sqlite.prepare('SELECT ssn_bidx, ssn_bidx_v2 FROM people WHERE id = ?').get(id) as Record<
        string,
        string | null
      >;
      expect(raw.ssn_bidx).toMatch(/^[0-9a-f]+$/);
      expect(raw.ssn_bidx_v2).toBe(fields.blindIndex('people', 'ssn', 'ssn_bidx_v2', `078-05-112${id}`));
      const found = await db.selectFrom('people').selectAll().where('ssn', '=', `078-05-112${id}`).execute();
      expect(found.map((r) => r.id)).toEqual([id]);
      expect(sent.at(-1)).toMatch(id === 1 ? /"ssn_bidx" = \?/ : /"ssn_bidx_v2" = \?/);
    }
    sqlite.close();
  });

  describe('PostgreSQL', () => {
    let server: TestPostgres | undefined;
    beforeAll(async () => {
      server = await startPostgres();
    });
    afterAll(async () => server?.stop());

    it('two workers backfill beside dual-writing updates, resume after a stop, and EXPLAIN uses the new index', async () => {
      if (!server) return;
      const { old, both } = setup();
      const pool = new pg.Pool({ connectionString: server.connectionString, max: 4 });
      pool.on('error', () => undefined); // an idle client dropped when the cluster stops
      await pool.query('CREATE TABLE people (id BIGINT PRIMARY KEY, ssn TEXT, ssn_bidx TEXT)');
      const ids = Array.from({ length: ROWS }, (_, i) => i + 1);
      const rows = ids.map((id) => old.encryptRow('people', { id, ssn: ssnOf(id) }));
      await pool.query(
        'INSERT INTO people (id, ssn, ssn_bidx) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])',
        [ids, rows.map((r) => r.ssn), rows.map((r) => r.ssn_bidx)],
      );
      // Phase 1: the new column and its index; from now on the application writes both indexes.
      await pool.query('ALTER TABLE people ADD COLUMN ssn_bidx_v2 TEXT');
      await pool.query('CREATE INDEX people_ssn_bidx_v2 ON people (ssn_bidx_v2)');
      const written = new Map<number, string>();
      let stop = false;
      const app = (async () => {
        for (let n = 0; !stop; n++) {
          const id = 1 + ((n * 7919) % ROWS);
          const value = ssnOf(id + 5000 + n);
          const row = both.encryptRow('people', { id, ssn: value });
          await pool.query('UPDATE people SET ssn = $1, ssn_bidx = $2, ssn_bidx_v2 = $3 WHERE id = $4', [
            row.ssn,
            row.ssn_bidx,
            row.ssn_bidx_v2,
            id,
          ]);
          written.set(id, value);
        }
      })();
      const exec = postgresExecutor(pool);
      const opts = { table: 'people', column: 'ssn', to: 'ssn_bidx_v2', batchSize: 200, workers: 2 };
      // Phase 2: backfill, stopped midway (as by a crash) and resumed.
      await expect(rekeyBlindIndex(both, exec, { ...opts, onProgress: stopAfter(4) })).rejects.toThrow(
        /on purpose/,
      );
      const saved = (await pool.query('SELECT job FROM enseal_job_checkpoints')).rows.map(
        (r) => r.job as string,
      );
      expect(saved).toContain('reindex:people.ssn_bidx_v2#plan');
      const rest = await rekeyBlindIndex(both, exec, opts);
      stop = true;
      await app;
      expect(rest.scanned).toBeLessThan(ROWS);
      expect(written.size).toBeGreaterThan(5);
      const all = (await pool.query('SELECT id, ssn, ssn_bidx_v2 FROM people')).rows;
      checkIndexes(all, both);
      for (const [id, value] of written) {
        const r = all.find((x) => Number(x.id) === id)!;
        expect(both.decryptValue('people', 'ssn', r.ssn, id)).toBe(value);
      }

      // Phase 3: queries switch to the new index, which PostgreSQL uses.
      await pool.query('ANALYZE people');
      const target = ssnOf(1234);
      const f = both.equals('people', 'ssn', target, 'ssn_bidx_v2');
      const plan = (
        await pool.query(`EXPLAIN SELECT id, ssn FROM people WHERE ${f.column} = $1`, [f.value])
      ).rows
        .map((r) => r['QUERY PLAN'] as string)
        .join('\n');
      expect(plan).toMatch(/Index Scan|Bitmap Index Scan/);
      expect(plan).toContain('people_ssn_bidx_v2');
      const found = (await pool.query(`SELECT id, ssn FROM people WHERE ${f.column} = $1`, [f.value])).rows
        .map((r) => ({ id: Number(r.id), ssn: both.decryptValue('people', 'ssn', r.ssn, Number(r.id)) }))
        .filter((r) => r.ssn === target);
      expect(found.map((r) => r.id)).toContain(1234);
      await pool.end();
    });
  });
});
