/** `enseal db reencrypt` as an operator runs it after `enseal keyset rotate`. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hexEncode, randomBytes } from '../../src/crypto/index.js';
import { FieldEncryption } from '../../src/fields/index.js';
import { KeyEncryptionKey, openKeyset, type SealedKeyset } from '../../src/keys/index.js';
import { buildOnce, enseal } from '../helpers/cli.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { tempDir } from '../kms/helpers.js';

const schema = { people: { rowId: 'id', columns: { ssn: { type: 'string' as const } } } };

describe('enseal db reencrypt', () => {
  it('moves a SQLite column to the rotated keyset version; dry run first, then for real', async () => {
    buildOnce();
    const dir = tempDir();
    const kek = enseal(['keyset', 'kek']).stdout.toString().trim();
    const env = { ENSEAL_KEK: kek };
    const keysetFile = join(dir, 'fields.keyset');
    expect(
      enseal(['keyset', 'create', '--purpose', 'encrypt', '-o', keysetFile], undefined, env).status,
    ).toBe(0);
    const open = async () =>
      openKeyset(
        JSON.parse(readFileSync(keysetFile, 'utf8')) as SealedKeyset,
        KeyEncryptionKey.fromText(kek),
      );
    const before = new FieldEncryption({ keyset: await open(), schema });
    const dbPath = join(dir, 'app.db');
    const db = new Database(dbPath);
    db.exec('CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT)');
    const insert = db.prepare('INSERT INTO people VALUES (?, ?)');
    for (let id = 1; id <= 250; id++) insert.run(id, before.encryptValue('people', 'ssn', `ssn-${id}`, id));
    db.close();

    expect(enseal(['keyset', 'rotate', keysetFile], undefined, env).status).toBe(0);
    const args = [
      'db',
      'reencrypt',
      '--database',
      `sqlite:${dbPath}`,
      '--keyset',
      keysetFile,
      '--table',
      'people',
      '--column',
      'ssn',
      '--batch-size',
      '100',
      '--json',
    ];
    const dry = enseal([...args, '--dry-run'], undefined, env);
    expect(dry.status).toBe(0);
    expect(JSON.parse(dry.stdout.toString())).toMatchObject({ scanned: 250, rewritten: 250, dryRun: true });
    const run = enseal(args, undefined, env);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.toString())).toMatchObject({ scanned: 250, rewritten: 250, batches: 3 });

    const after = new FieldEncryption({ keyset: await open(), schema });
    const check = new Database(dbPath);
    for (const row of check.prepare('SELECT id, ssn FROM people').all() as { id: number; ssn: string }[]) {
      expect(after.needsReencrypt(row.ssn)).toBe(false);
      expect(after.decryptValue('people', 'ssn', row.ssn, row.id)).toBe(`ssn-${row.id}`);
    }
    check.close();
    const wrongKek = enseal(args, undefined, {
      ENSEAL_KEK: enseal(['keyset', 'kek']).stdout.toString().trim(),
    });
    expect(wrongKek.status).not.toBe(0);
    expect(JSON.parse(wrongKek.stderr).error.code).toMatch(/^ERR_/); // --json errors are JSON too
  });
});

describe('enseal db encrypt-column', () => {
  it('encrypts a plaintext SQLite column in place, resumably, leaving NULLs alone', async () => {
    buildOnce();
    const dir = tempDir();
    const kek = enseal(['keyset', 'kek']).stdout.toString().trim();
    const env = { ENSEAL_KEK: kek };
    const keysetFile = join(dir, 'fields.keyset');
    expect(
      enseal(['keyset', 'create', '--purpose', 'encrypt', '-o', keysetFile], undefined, env).status,
    ).toBe(0);
    const dbPath = join(dir, 'legacy.db');
    const db = new Database(dbPath);
    db.exec('CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT)');
    const insert = db.prepare('INSERT INTO people VALUES (?, ?)');
    for (let id = 1; id <= 120; id++) insert.run(id, id % 30 === 0 ? null : `ssn-${id}`);
    db.close();
    const args = [
      'db',
      'encrypt-column',
      '--database',
      `sqlite:${dbPath}`,
      '--keyset',
      keysetFile,
      '--table',
      'people',
      '--column',
      'ssn',
      '--batch-size',
      '50',
      '--json',
    ];
    const run = enseal(args, undefined, env);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.toString())).toMatchObject({ scanned: 120, migrated: 116 });
    const keyset = await openKeyset(
      JSON.parse(readFileSync(keysetFile, 'utf8')) as SealedKeyset,
      KeyEncryptionKey.fromText(kek),
    );
    const fields = new FieldEncryption({ keyset, schema });
    const check = new Database(dbPath);
    for (const row of check.prepare('SELECT id, ssn FROM people').all() as {
      id: number;
      ssn: string | null;
    }[]) {
      if (row.id % 30 === 0) expect(row.ssn).toBeNull();
      else expect(fields.decryptValue('people', 'ssn', row.ssn, row.id)).toBe(`ssn-${row.id}`);
    }
    check.close();
    expect(JSON.parse(enseal(args, undefined, env).stdout.toString())).toMatchObject({
      migrated: 0,
      skipped: 116,
    });
  });
});

/** A fresh sealed keyset under a fresh KEK, and how to open it in the test. */
async function newKeyset(dir: string) {
  const kek = enseal(['keyset', 'kek']).stdout.toString().trim();
  const env = { ENSEAL_KEK: kek };
  const keysetFile = join(dir, 'fields.keyset');
  expect(enseal(['keyset', 'create', '--purpose', 'encrypt', '-o', keysetFile], undefined, env).status).toBe(
    0,
  );
  const open = async () =>
    openKeyset(JSON.parse(readFileSync(keysetFile, 'utf8')) as SealedKeyset, KeyEncryptionKey.fromText(kek));
  return { env, keysetFile, open };
}

describe('enseal db reindex', () => {
  it('fills a new blind-index column under its own root key (SQLite); refuses --workers on SQLite', async () => {
    buildOnce();
    const dir = tempDir();
    const { env, keysetFile, open } = await newKeyset(dir);
    const oldRoot = randomBytes(32);
    const newRoot = randomBytes(32);
    const keyFile = join(dir, 'ssn-v2.key');
    writeFileSync(keyFile, hexEncode(newRoot) + '\n');
    const old = new FieldEncryption({
      keyset: await open(),
      indexKey: oldRoot,
      schema: {
        people: { rowId: 'id', columns: { ssn: { type: 'string', indexes: { ssn_bidx: { bits: 8 } } } } },
      },
    });
    const dbPath = join(dir, 'app.db');
    const db = new Database(dbPath);
    db.exec('CREATE TABLE people (id INTEGER PRIMARY KEY, ssn TEXT, ssn_bidx TEXT, ssn_bidx_v2 TEXT)');
    const insert = db.prepare('INSERT INTO people (id, ssn, ssn_bidx) VALUES (?, ?, ?)');
    for (let id = 1; id <= 300; id++) {
      const row = old.encryptRow('people', { id, ssn: `078-05-${1000 + id}` });
      insert.run(id, row.ssn, row.ssn_bidx);
    }
    db.close();
    const args = [
      'db',
      'reindex',
      '--database',
      `sqlite:${dbPath}`,
      '--keyset',
      keysetFile,
      '--index-key-file',
      keyFile,
      '--table',
      'people',
      '--column',
      'ssn',
      '--from',
      'ssn_bidx',
      '--to',
      'ssn_bidx_v2',
      '--bits',
      '12',
      '--normalize',
      'digits',
      '--batch-size',
      '100',
      '--json',
    ];
    const dry = enseal([...args, '--dry-run'], undefined, env);
    expect(dry.status).toBe(0);
    expect(JSON.parse(dry.stdout.toString())).toMatchObject({ scanned: 300, indexed: 300, dryRun: true });
    const run = enseal(args, undefined, env);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.toString())).toMatchObject({
      indexed: 300,
      replaces: 'ssn_bidx',
      batches: 3,
    });
    const v2 = new FieldEncryption({
      keyset: await open(),
      schema: {
        people: {
          rowId: 'id',
          columns: {
            ssn: {
              type: 'string',
              indexes: { ssn_bidx_v2: { bits: 12, normalize: ['digits'], indexKey: newRoot } },
            },
          },
        },
      },
    });
    const check = new Database(dbPath);
    for (const row of check.prepare('SELECT id, ssn_bidx_v2 FROM people').all() as {
      id: number;
      ssn_bidx_v2: string;
    }[]) {
      expect(row.ssn_bidx_v2).toBe(v2.blindIndex('people', 'ssn', 'ssn_bidx_v2', `07805${1000 + row.id}`));
    }
    check.close();
    const workers = enseal([...args, '--workers', '2'], undefined, env);
    expect(workers.status).not.toBe(0);
    expect(JSON.parse(workers.stderr).error.message).toMatch(/SQLite/);
    const shortKey = join(dir, 'short.key');
    writeFileSync(shortKey, 'abcd');
    const bad = enseal(
      args.map((a) => (a === keyFile ? shortKey : a)),
      undefined,
      env,
    );
    expect(JSON.parse(bad.stderr).error.code).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('enseal db reencrypt --workers (PostgreSQL)', () => {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => server?.stop());

  it('re-encrypts with two workers and prints progress lines off a terminal', async () => {
    if (!server) return;
    buildOnce();
    const dir = tempDir();
    const { env, keysetFile, open } = await newKeyset(dir);
    const before = new FieldEncryption({ keyset: await open(), schema });
    const pool = new pg.Pool({ connectionString: server.connectionString, max: 2 });
    await pool.query('CREATE TABLE people (id BIGINT PRIMARY KEY, ssn TEXT)');
    const ids = Array.from({ length: 3000 }, (_, i) => i + 1);
    await pool.query('INSERT INTO people SELECT * FROM unnest($1::bigint[], $2::text[])', [
      ids,
      ids.map((id) => before.encryptValue('people', 'ssn', `ssn-${id}`, id)),
    ]);
    expect(enseal(['keyset', 'rotate', keysetFile], undefined, env).status).toBe(0);
    const run = enseal(
      [
        'db',
        'reencrypt',
        '--database',
        server.connectionString,
        '--keyset',
        keysetFile,
        '--table',
        'people',
        '--column',
        'ssn',
        '--workers',
        '2',
        '--batch-size',
        '200',
        '--json',
      ],
      undefined,
      env,
    );
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout.toString())).toMatchObject({ scanned: 3000, rewritten: 3000 });
    // Progress lines (at least the final one) are JSON too, and the last one accounts for every row.
    const progress = run.stderr
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { progress: number; total: number; rowsPerSecond: number });
    expect(progress.length).toBeGreaterThanOrEqual(1);
    for (const p of progress) expect(p).toHaveProperty('rowsPerSecond');
    expect(progress.at(-1)).toMatchObject({ progress: 3000, total: 3000 });
    const after = new FieldEncryption({ keyset: await open(), schema });
    for (const r of (await pool.query('SELECT id, ssn FROM people')).rows as { id: string; ssn: string }[]) {
      expect(after.needsReencrypt(r.ssn)).toBe(false);
      expect(after.decryptValue('people', 'ssn', r.ssn, Number(r.id))).toBe(`ssn-${r.id}`);
    }
    await pool.end();
  });
});
