import Database from 'better-sqlite3';
import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { integer as pgInteger, pgTable, text as pgText } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/index.js';
import { blindIndexOf, encryptedText, encryptedTextSqlite } from '../../src/fields/drizzle.js';
import { FieldEncryption, type EncryptedSchema } from '../../src/fields/index.js';
import { Keyset } from '../../src/keys/index.js';
import { codeOf } from '../helpers/errors.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

const schema: EncryptedSchema = {
  users: {
    columns: {
      email: { type: 'string', indexes: { email_bidx: { bits: 8, normalize: ['trim', 'lowercase'] } } },
      birthday: { type: 'date' },
    },
  },
  patients: { rowId: 'id', columns: { ssn: { type: 'string' } } },
};
const fields = new FieldEncryption({
  keyset: Keyset.generate({ purpose: 'encrypt' }),
  indexKey: randomBytes(32),
  schema,
});

describe('Drizzle encrypted columns (SQLite)', () => {
  it('encrypts on write, decrypts on read, and filters through the blind index', () => {
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, email_bidx TEXT, birthday TEXT)');
    const users = sqliteTable('users', {
      id: integer('id').primaryKey(),
      email: encryptedTextSqlite<string>(fields, 'users', 'email'),
      email_bidx: text('email_bidx'),
      birthday: encryptedTextSqlite<Date>(fields, 'users', 'birthday'),
    });
    const db = drizzle(sqlite);
    const birthday = new Date(Date.UTC(1815, 11, 10));
    for (const [id, email] of [
      [1, 'ada@example.org'],
      [2, 'grace@example.org'],
    ] as const) {
      db.insert(users)
        .values({ id, email, email_bidx: blindIndexOf(fields, 'users', 'email', email), birthday })
        .run();
    }
    const raw = sqlite.prepare('SELECT * FROM users ORDER BY id').all() as Record<string, unknown>[];
    expect(raw).toHaveLength(2);
    for (const r of raw) {
      expect(r.email).toMatch(/^ens1\./);
      expect(r.birthday).toMatch(/^ens1\./);
      expect(JSON.stringify(r)).not.toContain('example.org');
    }
    const found = db
      .select()
      .from(users)
      .where(eq(users.email_bidx, blindIndexOf(fields, 'users', 'email', ' ADA@example.org')))
      .all()
      .filter((u) => u.email === 'ada@example.org'); // blind indexes can return false positives
    expect(found).toHaveLength(1);
    expect(found[0]!.id).toBe(1);
    expect(found[0]!.birthday).toBeInstanceOf(Date);
    expect(found[0]!.birthday).toEqual(birthday);
    // A ciphertext moved to the other column does not decrypt.
    sqlite.exec('UPDATE users SET birthday = email WHERE id = 2');
    expect(() => db.select().from(users).where(eq(users.id, 2)).all()).toThrow();
    sqlite.close();
  });

  it('refuses a table that binds ciphertexts to a row id, pointing to the Kysely plugin', () => {
    expect(codeOf(() => encryptedTextSqlite(fields, 'patients', 'ssn'))).toBe('ERR_INVALID_ARGUMENT');
    expect(codeOf(() => encryptedText(fields, 'patients', 'ssn'))).toBe('ERR_INVALID_ARGUMENT');
    expect(() => encryptedText(fields, 'patients', 'ssn')).toThrow(/Kysely plugin/);
    expect(codeOf(() => encryptedText(fields, 'nope', 'x'))).toBe('ERR_INVALID_ARGUMENT');
  });
});

describe('Drizzle encrypted columns (PostgreSQL)', () => {
  let server: TestPostgres | undefined;
  let pool: pg.Pool | undefined;
  beforeAll(async () => {
    server = await startPostgres();
    if (server === undefined) return;
    pool = new pg.Pool({ connectionString: server.connectionString });
    await pool.query(
      'CREATE TABLE users (id integer PRIMARY KEY, email text, email_bidx text, birthday text)',
    );
  });
  afterAll(async () => {
    await pool?.end();
    await server?.stop();
  });

  it('encrypts on write, decrypts on read, and filters through the blind index', async (ctx) => {
    if (pool === undefined) return ctx.skip();
    const users = pgTable('users', {
      id: pgInteger('id').primaryKey(),
      email: encryptedText<string>(fields, 'users', 'email'),
      email_bidx: pgText('email_bidx'),
      birthday: encryptedText<Date>(fields, 'users', 'birthday'),
    });
    const db = drizzlePg(pool);
    const birthday = new Date(Date.UTC(1906, 11, 9));
    await db.insert(users).values([
      {
        id: 1,
        email: 'ada@example.org',
        email_bidx: blindIndexOf(fields, 'users', 'email', 'ada@example.org'),
        birthday,
      },
      {
        id: 2,
        email: 'grace@example.org',
        email_bidx: blindIndexOf(fields, 'users', 'email', 'grace@example.org'),
        birthday,
      },
    ]);
    const raw = (await pool.query('SELECT * FROM users ORDER BY id')).rows as Record<string, unknown>[];
    expect(raw).toHaveLength(2);
    for (const r of raw) {
      expect(r.email).toMatch(/^ens1\./);
      expect(r.birthday).toMatch(/^ens1\./);
      expect(JSON.stringify(r)).not.toContain('example.org');
    }
    const found = (
      await db
        .select()
        .from(users)
        .where(eq(users.email_bidx, blindIndexOf(fields, 'users', 'email', ' GRACE@example.org')))
    ).filter((u) => u.email === 'grace@example.org');
    expect(found.map((u) => u.id)).toEqual([2]);
    expect(found[0]!.birthday).toEqual(birthday);
    // A ciphertext moved to the other column does not decrypt.
    await pool.query('UPDATE users SET birthday = email WHERE id = 1');
    await expect(db.select().from(users).where(eq(users.id, 1))).rejects.toThrow();
  });
});
