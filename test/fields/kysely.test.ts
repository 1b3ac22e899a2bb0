import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type LogEvent } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/crypto/index.js';
import { FieldEncryption, type EncryptedSchema } from '../../src/fields/index.js';
import { EnsealKyselyPlugin } from '../../src/fields/kysely.js';
import { Keyset } from '../../src/keys/index.js';
import { asyncCodeOf, codeOf } from '../helpers/errors.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

interface DB {
  patients: {
    id: number;
    ssn: string | null;
    ssn_bidx: string | null;
    dob: Date | null;
    name: string | null;
  };
}

const schema: EncryptedSchema = {
  patients: {
    rowId: 'id',
    columns: {
      ssn: { type: 'string', indexes: { ssn_bidx: { bits: 8, normalize: ['digits'] } } },
      dob: { type: 'date' },
    },
  },
};
const fields = new FieldEncryption({
  keyset: Keyset.generate({ purpose: 'encrypt' }),
  indexKey: randomBytes(32),
  schema,
});
const plugin = new EnsealKyselyPlugin(fields);

const TARGET = '078-05-1120';
const TARGET_ID = 42;
const ROWS = 300;
const ssnOf = (i: number) =>
  i + 1 === TARGET_ID
    ? TARGET
    : `${String(100 + (i % 800)).padStart(3, '0')}-${String(i % 90).padStart(2, '0')}-${String(i).padStart(4, '0')}`;
const dobOf = (i: number) => new Date(Date.UTC(1940 + (i % 60), i % 12, 1 + (i % 28)));

/** A value that is in no row but shares the target's blind index: a guaranteed false positive. */
function collidingSsn(): string {
  const want = fields.blindIndex('patients', 'ssn', 'ssn_bidx', TARGET);
  for (let n = 0; ; n++) {
    const candidate = `999-99-${String(n).padStart(4, '0')}`;
    if (fields.blindIndex('patients', 'ssn', 'ssn_bidx', candidate) === want) return candidate;
  }
}

interface Harness {
  db: Kysely<DB>; // with the plugin
  raw: Kysely<DB>; // without it: what the database really holds
  sent: string[]; // every statement that reached the database through `db`
  close(): Promise<void>;
}

function scenario(label: string, open: () => Promise<Harness | undefined>) {
  describe(`Kysely plugin on ${label}`, () => {
    let h: Harness | undefined;
    beforeAll(async () => {
      h = await open();
      if (h === undefined) return;
      await h.raw.schema
        .createTable('patients')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('ssn', 'text')
        .addColumn('ssn_bidx', 'text')
        .addColumn('dob', 'text')
        .addColumn('name', 'text')
        .execute();
      await h.raw.schema.createIndex('patients_ssn_bidx').on('patients').column('ssn_bidx').execute();
    });
    afterAll(async () => h?.close());

    it('inserts 300 rows encrypted, with their blind indexes; the raw table holds only ciphertexts', async (ctx) => {
      if (h === undefined) return ctx.skip();
      const rows = Array.from({ length: ROWS }, (_, i) => ({
        id: i + 1,
        ssn: ssnOf(i),
        dob: dobOf(i),
        name: `p${i + 1}`,
      }));
      await h.db.insertInto('patients').values(rows).execute();
      const stored = await h.raw.selectFrom('patients').selectAll().orderBy('id').execute();
      expect(stored).toHaveLength(ROWS);
      for (const [i, r] of stored.entries()) {
        expect(r.ssn).toMatch(/^ens1\./);
        expect(r.ssn).not.toBe(ssnOf(i));
        expect(r.ssn_bidx).toMatch(/^[0-9a-f]{2}$/);
        expect(r.name).toBe(`p${i + 1}`); // plain columns pass unchanged
        expect(fields.decryptValue('patients', 'ssn', r.ssn, r.id)).toBe(ssnOf(i));
        expect(fields.decryptValue('patients', 'dob', r.dob, r.id)).toEqual(dobOf(i));
      }
      expect(JSON.stringify(stored)).not.toContain(TARGET);
      // The row id must be in the insert: ciphertexts are bound to it.
      expect(
        await asyncCodeOf(
          h.db
            .insertInto('patients')
            .values({ ssn: '1' } as DB['patients'])
            .execute(),
        ),
      ).toBe('ERR_INVALID_ARGUMENT');
    });

    it('selects by encrypted equality through the blind index, decrypted, false positives removed', async (ctx) => {
      if (h === undefined) return ctx.skip();
      const query = h.db.selectFrom('patients').selectAll().where('ssn', '=', TARGET);
      const compiled = query.compile();
      expect(compiled.sql).toMatch(/"ssn_bidx" = /);
      expect(JSON.stringify(compiled.parameters)).not.toContain('078');
      const found = await query.execute();
      expect(found).toEqual([
        { id: TARGET_ID, ssn: TARGET, dob: dobOf(TARGET_ID - 1), name: `p${TARGET_ID}` },
      ]);
      expect(found[0]!.dob).toBeInstanceOf(Date);
      // A value in no row whose index matches the target's: the database returns the target, the plugin drops it.
      const ghost = collidingSsn();
      const bucket = await h.raw
        .selectFrom('patients')
        .select('id')
        .where('ssn_bidx', '=', fields.blindIndex('patients', 'ssn', 'ssn_bidx', ghost))
        .execute();
      expect(bucket.map((r) => r.id)).toContain(TARGET_ID);
      expect(await h.db.selectFrom('patients').selectAll().where('ssn', '=', ghost).execute()).toEqual([]);
      // Further conditions combine with AND; an unfiltered select decrypts every row.
      const both = await h.db
        .selectFrom('patients')
        .select(['id', 'ssn'])
        .where('ssn', '=', TARGET)
        .where('id', '>', 0)
        .execute();
      expect(both).toEqual([{ id: TARGET_ID, ssn: TARGET }]);
      const all = await h.db.selectFrom('patients').selectAll().orderBy('id').execute();
      expect(all.map((r) => r.ssn)).toEqual(Array.from({ length: ROWS }, (_, i) => ssnOf(i)));
    });

    it('refuses every other filter on an encrypted column before anything is sent', async (ctx) => {
      if (h === undefined) return ctx.skip();
      const before = h.sent.length;
      const refused = [
        h.db.selectFrom('patients').selectAll().where('ssn', 'like', '%1%'),
        h.db.selectFrom('patients').selectAll().where('ssn', 'in', [TARGET]),
        h.db.selectFrom('patients').selectAll().where('ssn', '>', '0'),
        h.db.selectFrom('patients').selectAll().where('dob', '=', dobOf(0)), // no blind index
        h.db
          .selectFrom('patients')
          .selectAll()
          .where((eb) => eb.or([eb('ssn', '=', TARGET), eb('name', '=', 'p1')])),
        h.db.selectFrom('patients').selectAll().where('ssn', '=', TARGET).limit(1),
        h.db
          .selectFrom('patients')
          .selectAll()
          .where(sql`lower(ssn)`, '=', TARGET),
      ];
      for (const q of refused) {
        let message = '';
        const code = await asyncCodeOf(
          q.execute().catch((err: unknown) => {
            message = (err as Error).message;
            throw err;
          }),
        );
        expect(code).toBe('ERR_NOT_ALLOWED');
        expect(message).not.toContain(TARGET);
      }
      expect(h.sent.length).toBe(before);
      expect(h.sent.join('\n')).not.toContain('%1%');
      // IS NULL sends no plaintext and stays allowed.
      expect(await h.db.selectFrom('patients').select('id').where('ssn', 'is', null).execute()).toEqual([]);
    });

    it('updates encrypted columns by row id only', async (ctx) => {
      if (h === undefined) return ctx.skip();
      const newDob = new Date(Date.UTC(1999, 11, 31));
      await h.db
        .updateTable('patients')
        .set({ ssn: '111-22-3333', dob: newDob, name: 'renamed' })
        .where('id', '=', 7)
        .execute();
      const raw = await h.raw
        .selectFrom('patients')
        .selectAll()
        .where('id', '=', 7)
        .executeTakeFirstOrThrow();
      expect(raw.ssn).toMatch(/^ens1\./); // a ciphertext, not the 111-22-3333 that was written
      expect(raw.ssn_bidx).toBe(fields.blindIndex('patients', 'ssn', 'ssn_bidx', '111223333'));
      expect(
        await h.db.selectFrom('patients').selectAll().where('ssn', '=', '111-22-3333').execute(),
      ).toEqual([{ id: 7, ssn: '111-22-3333', dob: newDob, name: 'renamed' }]);
      expect(await h.db.selectFrom('patients').select('id').where('ssn', '=', ssnOf(6)).execute()).toEqual(
        [],
      );
      const before = h.sent.length;
      expect(
        await asyncCodeOf(
          h.db.updateTable('patients').set({ ssn: '999' }).where('name', '=', 'p8').execute(),
        ),
      ).toBe('ERR_NOT_ALLOWED');
      expect(
        await asyncCodeOf(
          h.db
            .updateTable('patients')
            .set({ dob: newDob })
            .where('id', '=', 8)
            .where('name', '=', 'p8')
            .execute(),
        ),
      ).toBe('ERR_NOT_ALLOWED');
      // A write filtered by a blind index would also hit its false positives.
      expect(
        await asyncCodeOf(
          h.db.updateTable('patients').set({ name: 'x' }).where('ssn', '=', TARGET).execute(),
        ),
      ).toBe('ERR_NOT_ALLOWED');
      expect(h.sent.length).toBe(before);
      // Plain columns update as usual.
      await h.db.updateTable('patients').set({ name: 'plain' }).where('id', '=', 8).execute();
      expect(
        (await h.raw.selectFrom('patients').select('name').where('id', '=', 8).executeTakeFirst())?.name,
      ).toBe('plain');
    });

    it('deletes by encrypted equality (select through the index, then delete by id), never a false positive', async (ctx) => {
      if (h === undefined) return ctx.skip();
      // Plant a row in the target's index bucket that must survive.
      const ghost = collidingSsn();
      // Rows with different column sets: Kysely sends ValueListNode rows with DEFAULT for the gaps.
      const planted = await h.db
        .insertInto('patients')
        .values([
          { id: 1000, ssn: ghost, name: 'ghost' },
          { id: 1001, ssn: '555-55-5555', dob: dobOf(0) },
        ])
        .returningAll()
        .execute();
      expect(planted).toEqual([
        { id: 1000, ssn: ghost, dob: null, name: 'ghost' },
        { id: 1001, ssn: '555-55-5555', dob: dobOf(0), name: null },
      ]);
      const before = h.sent.length;
      expect(await asyncCodeOf(h.db.deleteFrom('patients').where('ssn', '=', TARGET).execute())).toBe(
        'ERR_NOT_ALLOWED',
      );
      expect(h.sent.length).toBe(before);
      const ids = (
        await h.db.selectFrom('patients').select(['id', 'ssn']).where('ssn', '=', TARGET).execute()
      ).map((r) => r.id);
      expect(ids).toEqual([TARGET_ID]);
      await h.db.deleteFrom('patients').where('id', 'in', ids).execute();
      expect(await h.db.selectFrom('patients').select('id').where('ssn', '=', TARGET).execute()).toEqual([]);
      expect(
        await h.db.selectFrom('patients').select(['id', 'ssn']).where('ssn', '=', ghost).execute(),
      ).toEqual([{ id: 1000, ssn: ghost }]);
      const count = await h.raw
        .selectFrom('patients')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirst();
      expect(Number(count?.n)).toBe(ROWS + 1); // 300 - 1 + the two planted rows
    });
  });
}

scenario('SQLite', async () => {
  const sent: string[] = [];
  const database = new Database(':memory:');
  const log = (e: LogEvent) => void sent.push(e.query.sql);
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database }), plugins: [plugin], log });
  const raw = new Kysely<DB>({ dialect: new SqliteDialect({ database }) });
  return {
    db,
    raw,
    sent,
    async close() {
      await db.destroy();
    },
  };
});

let server: TestPostgres | undefined;
scenario('PostgreSQL', async () => {
  server = await startPostgres();
  if (server === undefined) return undefined;
  const sent: string[] = [];
  const pool = new pg.Pool({ connectionString: server.connectionString });
  const log = (e: LogEvent) => void sent.push(e.query.sql);
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), plugins: [plugin], log });
  const raw = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    raw,
    sent,
    async close() {
      await db.destroy();
      await server?.stop();
    },
  };
});

describe('Kysely plugin: construction', () => {
  it('refuses a schema that does not match the FieldEncryption', () => {
    expect(codeOf(() => new EnsealKyselyPlugin(fields, { patients: { columns: {} } }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });
});
