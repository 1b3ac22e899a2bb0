/**
 * Parallel re-encryption on a real PostgreSQL: two workers with FOR UPDATE SKIP LOCKED, beside an application
 * that updates, inserts and holds row locks throughout; and a parallel job killed with SIGKILL, then resumed.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/index.js';
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
import Database from 'better-sqlite3';

const schema = { people: { rowId: 'id', columns: { ssn: { type: 'string' as const } } } };
const ROWS = 6000;

function setup() {
  const keyset = Keyset.generate({ purpose: 'encrypt' });
  const fields = new FieldEncryption({ keyset, schema });
  return { keyset, fields };
}

async function seed(pool: pg.Pool, fields: FieldEncryption, rows = ROWS): Promise<void> {
  await pool.query('CREATE TABLE people (id BIGINT PRIMARY KEY, ssn TEXT, note TEXT)');
  for (let i = 1; i <= rows; i += 1000) {
    const ids = Array.from({ length: Math.min(1000, rows - i + 1) }, (_, j) => i + j);
    await pool.query('INSERT INTO people (id, ssn) SELECT * FROM unnest($1::bigint[], $2::text[])', [
      ids,
      ids.map((id) => (id % 97 === 0 ? null : fields.encryptValue('people', 'ssn', `ssn-${id}`, id))),
    ]);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reencryptColumn with parallel workers (PostgreSQL)', () => {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => server?.stop());

  it('two workers re-encrypt every row once while the application updates, inserts and holds row locks', async () => {
    if (!server) return;
    const url = await server.database('parallel');
    const { keyset, fields } = setup();
    const app = new pg.Pool({ connectionString: url, max: 3, application_name: 'app' });
    const jobPool = new pg.Pool({ connectionString: url, max: 3, application_name: 'job' });
    await seed(app, fields);
    // Every change of ssn is recorded with who made it, to count the job's rewrites per row.
    await app.query(`
      CREATE TABLE audit (id BIGINT, writer TEXT, old TEXT, new TEXT);
      CREATE FUNCTION audit_ssn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.ssn IS DISTINCT FROM OLD.ssn THEN
          INSERT INTO audit VALUES (NEW.id, current_setting('application_name'), OLD.ssn, NEW.ssn);
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER people_audit AFTER UPDATE ON people FOR EACH ROW EXECUTE FUNCTION audit_ssn();`);
    keyset.rotate();

    const written = new Map<number, string>();
    const heldIds = new Set<number>();
    let stop = false;
    let inserted = 0;
    const updater = (async () => {
      for (let n = 0; !stop; n++) {
        const id = 1 + ((n * 7919) % ROWS);
        const value = `ssn-${id}-changed-${n}`;
        await app.query('UPDATE people SET ssn = $1 WHERE id = $2', [
          fields.encryptValue('people', 'ssn', value, id),
          id,
        ]);
        written.set(id, value);
        if (n % 10 === 0) {
          const newId = ROWS + 1 + inserted++;
          await app.query('INSERT INTO people (id, ssn) VALUES ($1, $2)', [
            newId,
            fields.encryptValue('people', 'ssn', `ssn-${newId}`, newId),
          ]);
        }
      }
    })();
    // Transactions that lock rows for a while without changing ssn: the workers skip those rows, the final
    // sweep must still re-encrypt them.
    const locker = (async () => {
      for (let n = 0; !stop; n++) {
        const client = await app.connect();
        try {
          await client.query('BEGIN');
          const ids = Array.from({ length: 20 }, (_, k) => 1 + ((n * 613 + k * 277) % ROWS));
          await client.query('SELECT id FROM people WHERE id = ANY($1::bigint[]) FOR UPDATE', [ids]);
          await client.query("UPDATE people SET note = 'held' WHERE id = ANY($1::bigint[])", [ids]);
          for (const id of ids) heldIds.add(id);
          await sleep(40);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      }
    })();
    await sleep(50);
    const result = await reencryptColumn(fields, postgresExecutor(jobPool), {
      table: 'people',
      column: 'ssn',
      batchSize: 250,
      workers: 2,
    });
    stop = true;
    await Promise.all([updater, locker]);

    expect(written.size).toBeGreaterThan(10);
    expect(heldIds.size).toBeGreaterThan(20);
    const rows = (await app.query('SELECT id, ssn FROM people ORDER BY id')).rows as {
      id: string;
      ssn: string | null;
    }[];
    expect(rows.length).toBe(ROWS + inserted);
    for (const r of rows) {
      const id = Number(r.id);
      if (r.ssn === null) {
        expect(id % 97).toBe(0);
        continue;
      }
      expect(fields.needsReencrypt(r.ssn)).toBe(false);
      // Every application write survives; every other row keeps its value, now under the new key.
      expect(fields.decryptValue('people', 'ssn', r.ssn, id)).toBe(written.get(id) ?? `ssn-${id}`);
    }
    // Exactly once: the job rewrote no row twice, and every row the application did not rewrite first.
    const perRow = (
      await app.query("SELECT id, count(*)::int AS n FROM audit WHERE writer = 'job' GROUP BY id")
    ).rows as { id: string; n: number }[];
    expect(perRow.every((r) => r.n === 1)).toBe(true);
    const byJob = new Set(perRow.map((r) => Number(r.id)));
    for (let id = 1; id <= ROWS; id++) {
      if (id % 97 !== 0 && !written.has(id)) expect(byJob.has(id)).toBe(true);
    }
    expect(result.rewritten).toBe(byJob.size);
    expect((await app.query('SELECT count(*)::int AS n FROM enseal_job_checkpoints')).rows[0].n).toBe(0);
    await Promise.all([app.end(), jobPool.end()]);
  });

  it('a parallel job killed with SIGKILL resumes from its partition checkpoints; another worker count is refused', async () => {
    if (!server) return;
    buildOnce();
    const url = await server.database('killed');
    const { keyset, fields } = setup();
    const pool = new pg.Pool({ connectionString: url, max: 3 });
    await seed(pool, fields);
    keyset.rotate();
    const keysetFile = join(tempDir(), 'keyset.json');
    writeFileSync(keysetFile, JSON.stringify(keyset.exportPlaintext({ allowPlaintextKeyMaterial: true })));
    const child = spawn(
      process.execPath,
      [new URL('./reencrypt-pg-worker.mjs', import.meta.url).pathname, url, keysetFile],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let lines = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      if (line.startsWith('{')) lines++;
      if (lines === 8) break;
    }
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    // A COMMIT the worker sent just before dying still completes: wait until its sessions are gone, so that
    // the state read below is final.
    for (let i = 0; i < 200; i++) {
      const { rows } = await pool.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'killed-worker'",
      );
      if (rows[0].n === 0) break;
      await sleep(50);
    }

    const saved = (await pool.query('SELECT job, cursor FROM enseal_job_checkpoints ORDER BY job')).rows as {
      job: string;
      cursor: string;
    }[];
    const plan = saved.find((r) => r.job.endsWith('#plan'));
    expect(JSON.parse(plan!.cursor)).toMatchObject({ workers: 2 });
    const partitions = saved.filter((r) => /#\d+$/.test(r.job)).map((r) => JSON.parse(r.cursor));
    expect(partitions.length).toBeGreaterThan(0);
    const left = Number(
      (await pool.query('SELECT count(*) AS n FROM people WHERE ssn IS NOT NULL')).rows[0].n,
    );
    const stillOld = (await pool.query('SELECT ssn FROM people WHERE ssn IS NOT NULL')).rows.filter(
      (r: { ssn: string }) => fields.needsReencrypt(r.ssn),
    ).length;
    expect(stillOld).toBeGreaterThan(0);
    expect(stillOld).toBeLessThan(left);

    const exec = postgresExecutor(pool);
    await expect(
      reencryptColumn(fields, exec, { table: 'people', column: 'ssn', workers: 1 }),
    ).rejects.toThrow(/started with 2 worker/);
    const rest = await reencryptColumn(fields, exec, {
      table: 'people',
      column: 'ssn',
      workers: 2,
      batchSize: 100,
    });
    // The resumed run pages only what its partitions had not committed.
    expect(rest.rewritten).toBe(stillOld);
    expect(rest.scanned).toBeLessThan(ROWS);
    for (const r of (await pool.query('SELECT id, ssn FROM people WHERE ssn IS NOT NULL')).rows as {
      id: string;
      ssn: string;
    }[]) {
      expect(fields.needsReencrypt(r.ssn)).toBe(false);
      expect(fields.decryptValue('people', 'ssn', r.ssn, Number(r.id))).toBe(`ssn-${r.id}`);
    }
    expect((await pool.query('SELECT count(*)::int AS n FROM enseal_job_checkpoints')).rows[0].n).toBe(0);
    await pool.end();
  });

  it('pages non-numeric ids (uuid) with two workers', async () => {
    if (!server) return;
    const url = await server.database('uuids');
    const keyset = Keyset.generate({ purpose: 'encrypt' });
    const fields = new FieldEncryption({
      keyset,
      schema: { tokens: { rowId: 'id', columns: { secret: { type: 'string' } } } },
    });
    const pool = new pg.Pool({ connectionString: url, max: 3 });
    await pool.query('CREATE TABLE tokens (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), secret TEXT)');
    const ids = (
      await pool.query('INSERT INTO tokens (secret) SELECT NULL FROM generate_series(1, 700) RETURNING id')
    ).rows.map((r) => r.id as string);
    await pool.query(
      'UPDATE tokens SET secret = v.s FROM unnest($1::uuid[], $2::text[]) AS v(id, s) WHERE tokens.id = v.id',
      [ids, ids.map((id) => fields.encryptValue('tokens', 'secret', `t-${id}`, id))],
    );
    keyset.rotate();
    const result = await reencryptColumn(fields, postgresExecutor(pool), {
      table: 'tokens',
      column: 'secret',
      workers: 2,
      batchSize: 100,
    });
    expect(result).toMatchObject({ scanned: 700, rewritten: 700 });
    for (const r of (await pool.query('SELECT id, secret FROM tokens')).rows as {
      id: string;
      secret: string;
    }[]) {
      expect(fields.needsReencrypt(r.secret)).toBe(false);
      expect(fields.decryptValue('tokens', 'secret', r.secret, r.id)).toBe(`t-${r.id}`);
    }
    // A damaged partition plan stops the job rather than paging wrong ranges.
    await pool.query(
      `INSERT INTO enseal_job_checkpoints VALUES ('reencrypt:tokens.secret#plan', '{"workers":2,"bounds":[7]}', 0)`,
    );
    await expect(
      reencryptColumn(fields, postgresExecutor(pool), { table: 'tokens', column: 'secret', workers: 2 }),
    ).rejects.toMatchObject({ code: 'ERR_MALFORMED' });
    await pool.end();
  });

  it('refuses workers on SQLite and more workers than the executor has connections', async () => {
    const { fields } = setup();
    const db = new Database(join(tempDir(), 'w.db'));
    db.exec('CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT)');
    await expect(
      reencryptColumn(fields, sqliteExecutor(db), { table: 'people', column: 'ssn', workers: 2 }),
    ).rejects.toThrow(/needs PostgreSQL/);
    db.close();
    const pool = new pg.Pool({ max: 2 });
    await expect(
      reencryptColumn(fields, postgresExecutor(pool), { table: 'people', column: 'ssn', workers: 3 }),
    ).rejects.toThrow(/pool max/);
    await pool.end();
    void randomBytes;
  });
});
