/** `enseal db reencrypt` as an operator runs it after `enseal keyset rotate`. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { FieldEncryption } from '../../src/fields/index.js';
import { KeyEncryptionKey, openKeyset, type SealedKeyset } from '../../src/keys/index.js';
import { buildOnce, enseal } from '../helpers/cli.js';
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
