/**
 * Field encryption with data keys from a real `enseal serve` (in process, over HTTPS through EnsealClient),
 * on real SQLite and PostgreSQL through the Kysely plugin: every type round-trips, cache limits hold exactly,
 * swapped ciphertexts fail, a sealed or unreachable server fails closed, values survive a server key rotation
 * and are found by re-encryption, and no data key ever shows up in an error, a log or the counters.
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import Database from 'better-sqlite3';
import { sql as drizzleSql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { integer, sqliteTable } from 'drizzle-orm/sqlite-core';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnsealClient } from '../../src/client/index.js';
import { base64Encode, base64UrlEncode, hexEncode, randomBytes } from '../../src/crypto/index.js';
import {
  FieldEncryption,
  reencryptColumn,
  sqliteExecutor,
  transitDataKeys,
  type DataKeyCacheOptions,
  type EncryptedSchema,
  type TransitDataKeyClient,
} from '../../src/fields/index.js';
import { encryptedTextSqlite } from '../../src/fields/drizzle.js';
import { EnsealKyselyPlugin } from '../../src/fields/kysely.js';
import { parseRemoteValue } from '../../src/fields/remote-value.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { devServer } from '../server/helpers.js';

interface People {
  id: number;
  name: string | null;
  name_bidx: string | null;
  score: number | string | null;
  active: boolean | string | null;
  born: Date | string | null;
  profile: unknown;
  photo: Uint8Array | string | null;
}
interface DB {
  people: People;
}

const KEY = 'fields-remote';
const schema: EncryptedSchema = {
  people: {
    rowId: 'id',
    columns: {
      name: { type: 'string', indexes: { name_bidx: { bits: 16, normalize: ['lowercase'] } } },
      score: { type: 'number' },
      active: { type: 'boolean' },
      born: { type: 'date' },
      profile: { type: 'json' },
      photo: { type: 'bytes' },
    },
  },
};
const indexKey = randomBytes(32);

const person = (i: number) => ({
  id: i,
  name: `Person ${i}`,
  score: i * 1.5 - 7,
  active: i % 2 === 0,
  born: new Date(Date.UTC(1950 + i, i % 12, 1 + (i % 27))),
  profile: { tags: [`t${i}`], nested: { n: i } },
  photo: Uint8Array.of(i, 0, 255, i % 7),
});

let ctx: Awaited<ReturnType<typeof devServer>>;
let client: EnsealClient;
/** Every data key the server handed out in this file, to look for in errors, logs and counters. */
const seenKeys: Uint8Array[] = [];
/** Every error the tests provoked, for the secret-leak check. */
const provoked: unknown[] = [];
const caches: { close(): void }[] = [];

/** EnsealClient with its datakey and decrypt calls counted (and the keys remembered for the leak check). */
function counting(inner: TransitDataKeyClient = client) {
  const calls = { dataKey: 0, decrypt: 0, decryptBatch: 0, batchItems: 0 };
  const wrapper: TransitDataKeyClient = {
    async dataKey(name, options) {
      calls.dataKey += 1;
      const out = await inner.dataKey(name, options);
      if (out.plaintext) seenKeys.push(out.plaintext.slice());
      return out;
    },
    async decrypt(name, ciphertext) {
      calls.decrypt += 1;
      return inner.decrypt(name, ciphertext);
    },
    async decryptBatch(name, items) {
      calls.decryptBatch += 1;
      calls.batchItems += items.length;
      return inner.decryptBatch!(name, items);
    },
  };
  return { wrapper, calls };
}

function remoteFields(options: DataKeyCacheOptions = {}, inner?: TransitDataKeyClient) {
  const { wrapper, calls } = counting(inner);
  const dataKeys = transitDataKeys(wrapper, KEY, { keepWarm: false, ...options });
  caches.push(dataKeys);
  const fields = new FieldEncryption({ dataKeys, indexKey, schema });
  return { fields, calls, dataKeys };
}

async function codeOf(work: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (err) {
    provoked.push(err);
    if (err instanceof Error && 'code' in err) return String(err.code);
    throw err;
  }
  return 'no error';
}

async function createPeople(raw: Kysely<DB>): Promise<void> {
  await raw.schema.dropTable('people').ifExists().execute();
  let t = raw.schema.createTable('people').addColumn('id', 'integer', (c) => c.primaryKey());
  for (const c of ['name', 'name_bidx', 'score', 'active', 'born', 'profile', 'photo'])
    t = t.addColumn(c, 'text');
  await t.execute();
}

function sqlite(fields: FieldEncryption) {
  const database = new Database(':memory:');
  return {
    database,
    db: new Kysely<DB>({
      dialect: new SqliteDialect({ database }),
      plugins: [new EnsealKyselyPlugin(fields)],
    }),
    raw: new Kysely<DB>({ dialect: new SqliteDialect({ database }) }),
  };
}

beforeAll(async () => {
  ctx = await devServer();
  client = new EnsealClient({
    address: ctx.server.url,
    token: ctx.token,
    caCert: readFileSync(ctx.server.caFile!),
  });
  await client.createKey(KEY);
});
afterAll(async () => {
  for (const c of caches) c.close();
  client.close();
  await ctx.server.close();
});

let postgres: TestPostgres | undefined;
const engines: Array<{
  label: string;
  open: () => Promise<{ pool?: pg.Pool; connection?: string } | undefined>;
}> = [
  { label: 'SQLite', open: async () => ({}) },
  {
    label: 'PostgreSQL',
    open: async () => {
      postgres = await startPostgres();
      return postgres === undefined ? undefined : { connection: postgres.connectionString };
    },
  },
];

for (const engine of engines) {
  describe(`remote data keys through the Kysely plugin on ${engine.label}`, () => {
    let handle: { connection?: string } | undefined;
    let sqliteDb: Database.Database | undefined;
    const pools: pg.Pool[] = [];
    const kysely = (fields?: FieldEncryption): Kysely<DB> => {
      const plugins = fields === undefined ? [] : [new EnsealKyselyPlugin(fields)];
      if (handle!.connection === undefined) {
        sqliteDb ??= new Database(':memory:');
        return new Kysely<DB>({ dialect: new SqliteDialect({ database: sqliteDb }), plugins });
      }
      const pool = new pg.Pool({ connectionString: handle!.connection, max: 2 });
      // A client still closing when the cluster stops gets 57P01 after pool.end() resolved: not a test failure.
      pool.on('error', () => undefined);
      pools.push(pool);
      return new Kysely<DB>({ dialect: new PostgresDialect({ pool }), plugins });
    };
    beforeAll(async () => {
      handle = await engine.open();
      if (handle !== undefined) await createPeople(kysely());
    }, 60_000);
    afterAll(async () => {
      for (const p of pools) await p.end();
      sqliteDb?.close();
      await postgres?.stop();
      postgres = undefined;
    });

    it('round-trips every type; a fresh process unwraps each distinct key once, in one batch', async (t) => {
      if (handle === undefined) return t.skip();
      const writer = remoteFields({ maxUses: 4 });
      // One INSERT of 10 rows encrypts 60 values synchronously: their 15 keys are fetched before it.
      await writer.fields.ready(60);
      const db = kysely(writer.fields);
      const rows = Array.from({ length: 10 }, (_, i) => person(i + 1));
      await db.insertInto('people').values(rows).execute();
      const stored = await kysely().selectFrom('people').selectAll().orderBy('id').execute();
      const wrapped = new Set<string>();
      for (const r of stored) {
        for (const c of Object.keys(schema.people!.columns)) {
          expect(String(r[c as keyof People])).toMatch(/^ensr1\./);
          wrapped.add(parseRemoteValue(String(r[c as keyof People])).wrapped);
        }
      }
      expect(wrapped.size).toBe(Math.ceil(60 / 4)); // 10 rows × 6 columns, 4 values per key
      expect(JSON.stringify(stored)).not.toContain('Person');
      // The writer reads from its own cache: no unwrap at all.
      expect(await db.selectFrom('people').selectAll().orderBy('id').execute()).toEqual(
        rows.map((r) => ({ ...r })),
      );
      expect(writer.calls.decrypt + writer.calls.decryptBatch).toBe(0);
      // Another process (an empty cache) needs the server: one batch call for the 15 distinct keys.
      const reader = remoteFields();
      const readerDb = kysely(reader.fields);
      expect(await readerDb.selectFrom('people').selectAll().orderBy('id').execute()).toEqual(rows);
      expect(reader.calls).toMatchObject({ dataKey: 0, decrypt: 0, decryptBatch: 1, batchItems: 15 });
      // Equality through the blind index; a second read is served from the cache.
      expect(
        await readerDb.selectFrom('people').select(['id', 'name']).where('name', '=', 'person 7').execute(),
      ).toEqual([]);
      expect(
        await readerDb
          .selectFrom('people')
          .select(['id', 'name', 'born'])
          .where('name', '=', 'Person 7')
          .execute(),
      ).toEqual([{ id: 7, name: 'Person 7', born: rows[6]!.born }]);
      expect(reader.calls.decryptBatch).toBe(1);
      expect(reader.dataKeys.stats()).toMatchObject({ misses: 15, unwraps: 15, generated: 0 });
    });

    it('a ciphertext moved to another row or column does not decrypt, and nothing is returned', async (t) => {
      if (handle === undefined) return t.skip();
      const { fields } = remoteFields();
      const raw = kysely();
      const db = kysely(fields);
      const [a, b] = await raw
        .selectFrom('people')
        .selectAll()
        .where('id', 'in', [1, 2])
        .orderBy('id')
        .execute();
      await raw.updateTable('people').set({ name: b!.name }).where('id', '=', 1).execute();
      expect(await codeOf(db.selectFrom('people').selectAll().where('id', '=', 1).execute())).toBe(
        'ERR_DECRYPT_FAILED',
      );
      await raw
        .updateTable('people')
        .set({ name: a!.name, score: String(a!.born) })
        .where('id', '=', 1)
        .execute();
      expect(await codeOf(db.selectFrom('people').selectAll().where('id', '=', 1).execute())).toBe(
        'ERR_DECRYPT_FAILED',
      );
      // Strict: plaintext in an encrypted column is an error too.
      await raw.updateTable('people').set({ score: a!.score, name: 'Mallory' }).where('id', '=', 1).execute();
      expect(await codeOf(db.selectFrom('people').selectAll().where('id', '=', 1).execute())).toBe(
        'ERR_MALFORMED',
      );
      await raw.updateTable('people').set({ name: a!.name }).where('id', '=', 1).execute();
      expect((await db.selectFrom('people').select(['id', 'name']).where('id', '=', 1).execute())[0]).toEqual(
        {
          id: 1,
          name: 'Person 1',
        },
      );
    });
  });
}

describe('data-key cache limits', () => {
  it('maxUses = 3: ten values use exactly ceil(10/3) keys, fetched one ahead', async () => {
    const { fields, calls, dataKeys } = remoteFields({ maxUses: 3 });
    await fields.ready();
    expect(calls.dataKey).toBe(2); // the current key and the prefetched next one
    const { db, raw } = sqlite(fields);
    await createPeople(raw);
    for (let i = 1; i <= 10; i++) {
      // An application awaits ready() before writes: a no-op while the prefetched key is there, else it
      // waits for the background refill (a synchronous insert cannot).
      await fields.ready();
      await db
        .insertInto('people')
        .values({ id: i, name: `n${i}` })
        .execute();
    }
    const names = (await raw.selectFrom('people').select('name').execute()).map((r) => String(r.name));
    const uses = new Map<string, number>();
    for (const n of names)
      uses.set(parseRemoteValue(n).wrapped, (uses.get(parseRemoteValue(n).wrapped) ?? 0) + 1);
    expect(uses.size).toBe(Math.ceil(10 / 3));
    expect([...uses.values()].sort()).toEqual([1, 3, 3, 3]);
    expect(calls.dataKey).toBe(Math.ceil(10 / 3) + 1);
    await fields.ready(); // the last refill, started by the tenth value, has landed
    expect(calls.dataKey).toBe(Math.ceil(10 / 3) + 1);
    expect(dataKeys.stats()).toMatchObject({ generated: 5, encryptions: 10, exhausted: 3 });
  });

  it('a bulk insert beyond the cached keys fails closed before anything is sent; ready(n) makes room', async () => {
    const { fields, calls } = remoteFields({ maxUses: 3 });
    await fields.ready();
    const { db, raw } = sqlite(fields);
    await createPeople(raw);
    const rows = Array.from({ length: 10 }, (_, i) => ({ id: i + 1, name: `bulk ${i}` }));
    expect(await codeOf(db.insertInto('people').values(rows).execute())).toBe('ERR_DATA_KEY_UNAVAILABLE');
    expect((await raw.selectFrom('people').selectAll().execute()).length).toBe(0);
    await fields.ready(10);
    await db.insertInto('people').values(rows).execute();
    const stored = await raw.selectFrom('people').select('name').execute();
    const keys = new Set(stored.map((r) => parseRemoteValue(String(r.name)).wrapped));
    expect(keys.size).toBe(4);
    expect(calls.dataKey).toBeGreaterThanOrEqual(4);
    expect(await db.selectFrom('people').select(['id', 'name']).orderBy('id').execute()).toEqual(rows);
  });

  it('maxAge: an aged key never encrypts (fail closed until refreshed); an aged cached key is fetched again', async () => {
    const clock = { now: 1_000_000 };
    const { fields, calls, dataKeys } = remoteFields({ maxAgeMs: 60_000, now: () => clock.now });
    await fields.ready();
    const first = fields.encryptValue('people', 'name', 'a', 1);
    const again = fields.encryptValue('people', 'name', 'b', 2);
    expect(parseRemoteValue(again).wrapped).toBe(parseRemoteValue(first).wrapped);
    clock.now += 60_000;
    expect(await codeOf(() => fields.encryptValue('people', 'name', 'c', 3))).toBe(
      'ERR_DATA_KEY_UNAVAILABLE',
    );
    await fields.ready();
    const fresh = fields.encryptValue('people', 'name', 'c', 3);
    expect(parseRemoteValue(fresh).wrapped).not.toBe(parseRemoteValue(first).wrapped);
    // The first key aged out of the decryption cache as well: a synchronous read refuses, an async one refetches.
    expect(await codeOf(() => fields.decryptValue('people', 'name', first, 1))).toBe(
      'ERR_DATA_KEY_UNAVAILABLE',
    );
    const before = calls.decrypt;
    expect(await fields.decryptValueAsync('people', 'name', first, 1)).toBe('a');
    expect(calls.decrypt).toBe(before + 1);
    expect(fields.decryptValue('people', 'name', again, 2)).toBe('b'); // cached again now
    expect(dataKeys.stats().expired).toBeGreaterThanOrEqual(2);
  });

  it('concurrent cold reads share one request per key', async () => {
    const writer = remoteFields({ maxUses: 1 });
    await writer.fields.ready(3);
    const rows = [1, 2, 3].map((id) => ({
      id,
      name: writer.fields.encryptValue('people', 'name', `c${id}`, id),
    }));
    const { fields, calls, dataKeys } = remoteFields();
    const [a, b, c] = await Promise.all([
      fields.decryptRowsAsync('people', rows),
      fields.decryptRowsAsync('people', rows),
      fields.decryptValueAsync('people', 'name', rows[2]!.name, 3),
    ]);
    expect(a.map((r) => r.name)).toEqual(['c1', 'c2', 'c3']);
    expect(b).toEqual(a);
    expect(c).toBe('c3');
    expect(calls).toMatchObject({ decryptBatch: 1, batchItems: 3, decrypt: 0 });
    expect(dataKeys.stats().unwraps).toBe(3);
  });

  it('keepWarm: the refresh timer fetches a key before the cached ones age out, so a quiet process can write', async () => {
    const clock = { now: 5_000_000 };
    const { wrapper, calls } = counting();
    // maxAgeMs 4 s: the timer runs every second (real time) and judges ages on the injected clock.
    const dataKeys = transitDataKeys(wrapper, KEY, { maxAgeMs: 4000, now: () => clock.now });
    caches.push(dataKeys);
    const fields = new FieldEncryption({ dataKeys, indexKey, schema });
    await fields.ready();
    expect(calls.dataKey).toBe(2);
    clock.now += 2500; // past half the lifetime: the next tick fetches a fresh key
    for (let waited = 0; calls.dataKey < 3 && waited < 15_000; waited += 50)
      await new Promise((r) => setTimeout(r, 50));
    expect(calls.dataKey).toBe(3);
    await fields.ready(); // the fetch has landed (no new request: nothing is missing)
    expect(calls.dataKey).toBe(3);
    clock.now += 2000; // the first two keys are 4.5 s old now, the fresh one 2 s
    const value = fields.encryptValue('people', 'name', 'quiet', 1);
    expect(fields.decryptValue('people', 'name', value, 1)).toBe('quiet');
    dataKeys.close();
  });

  it('maxEntries bounds the decryption cache (least recently used dropped)', async () => {
    const writer = remoteFields({ maxUses: 1 });
    await writer.fields.ready(4);
    const values = [1, 2, 3, 4].map((i) => writer.fields.encryptValue('people', 'name', `v${i}`, i));
    const { fields, dataKeys } = remoteFields({ maxEntries: 2 });
    const rows = values.map((name, i) => ({ id: i + 1, name }));
    expect((await fields.decryptRowsAsync('people', rows)).map((r) => r.name)).toEqual([
      'v1',
      'v2',
      'v3',
      'v4',
    ]);
    expect(dataKeys.stats()).toMatchObject({ cached: 2, evicted: 2 });
    expect(fields.decryptValue('people', 'name', values[3], 4)).toBe('v4');
    expect(await codeOf(() => fields.decryptValue('people', 'name', values[0], 1))).toBe(
      'ERR_DATA_KEY_UNAVAILABLE',
    );
    await fields.warm(values);
    expect(fields.decryptValue('people', 'name', values[0], 1)).toBe('v1');
  });
});

describe('least privilege', () => {
  it('a token allowed only datakey and decrypt on the key is enough to write and to read cold', async () => {
    const policy = `path "transit/datakey/plaintext/${KEY}" { capabilities = ["update"] }
path "transit/decrypt/${KEY}" { capabilities = ["update"] }`;
    expect((await ctx.call('PUT', '/v1/sys/policies/acl/fields-app', { body: { policy } })).status).toBe(204);
    const created = await ctx.call('POST', '/v1/auth/token/create', { body: { policies: ['fields-app'] } });
    const token = (created.body as { auth: { client_token: string } }).auth.client_token;
    const narrow = new EnsealClient({
      address: ctx.server.url,
      token,
      caCert: readFileSync(ctx.server.caFile!),
    });
    try {
      const writer = remoteFields({ maxUses: 1 }, narrow);
      await writer.fields.ready(2);
      const rows = [1, 2].map((id) => ({
        id,
        name: writer.fields.encryptValue('people', 'name', `n${id}`, id),
      }));
      const reader = remoteFields({}, narrow);
      expect((await reader.fields.decryptRowsAsync('people', rows)).map((r) => r.name)).toEqual(['n1', 'n2']);
      expect(reader.calls.decryptBatch).toBe(1);
      expect(await codeOf(narrow.rotateKey(KEY))).toBe('ERR_PERMISSION_DENIED');
    } finally {
      narrow.close();
    }
  });
});

describe('tampered wrapped keys', () => {
  it('a value whose wrapped key was altered fails the whole read with ERR_DECRYPT_FAILED (batch and single)', async () => {
    const writer = remoteFields({ maxUses: 1 });
    await writer.fields.ready(2);
    const a = writer.fields.encryptValue('people', 'name', 'Ada', 1);
    const b = writer.fields.encryptValue('people', 'name', 'Bob', 2);
    const bytes = Buffer.from(a.slice('ensr1.'.length), 'base64url');
    bytes[20]! ^= 0x40; // inside the wrapped key
    const tampered = `ensr1.${bytes.toString('base64url')}`;
    const reader = remoteFields();
    expect(
      await codeOf(
        reader.fields.decryptRowsAsync('people', [
          { id: 1, name: tampered },
          { id: 2, name: b },
        ]),
      ),
    ).toBe('ERR_DECRYPT_FAILED');
    expect(reader.calls.decryptBatch).toBe(1);
    expect(await codeOf(reader.fields.decryptValueAsync('people', 'name', tampered, 1))).toBe(
      'ERR_DECRYPT_FAILED',
    );
    expect(await reader.fields.decryptValueAsync('people', 'name', b, 2)).toBe('Bob');
  });
});

describe('Drizzle columns with remote data keys', () => {
  it('write after ready(); a fresh process reads only what it warmed, else a typed error', async () => {
    const notesSchema: EncryptedSchema = { notes: { columns: { body: { type: 'string' } } } };
    const make = () => {
      const { wrapper } = counting();
      const dataKeys = transitDataKeys(wrapper, KEY, { keepWarm: false });
      caches.push(dataKeys);
      return new FieldEncryption({ dataKeys, schema: notesSchema });
    };
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    const table = (f: FieldEncryption) =>
      sqliteTable('notes', {
        id: integer('id').primaryKey(),
        body: encryptedTextSqlite<string>(f, 'notes', 'body'),
      });
    const writer = make();
    const notes = table(writer);
    const db = drizzle(sqlite);
    expect(await codeOf(() => db.insert(notes).values({ id: 1, body: 'too early' }).run())).toBe(
      'ERR_DATA_KEY_UNAVAILABLE',
    );
    await writer.ready();
    db.insert(notes)
      .values([
        { id: 1, body: 'first' },
        { id: 2, body: 'second' },
      ])
      .run();
    expect(db.select().from(notes).all()).toEqual([
      { id: 1, body: 'first' },
      { id: 2, body: 'second' },
    ]);
    const reader = make();
    const readerNotes = table(reader);
    expect(await codeOf(() => db.select().from(readerNotes).all())).toBe('ERR_DATA_KEY_UNAVAILABLE');
    // The stored text, selected through an SQL expression that bypasses the column type, warms the cache.
    const stored = db
      .select({ body: drizzleSql<string>`${readerNotes.body}` })
      .from(readerNotes)
      .all();
    expect(stored.every((r) => r.body.startsWith('ensr1.'))).toBe(true);
    await reader.warm(stored.map((r) => r.body));
    expect(
      db
        .select()
        .from(readerNotes)
        .all()
        .map((r) => r.body),
    ).toEqual(['first', 'second']);
    sqlite.close();
  });
});

describe('server key rotation', () => {
  it('old values still decrypt, needsReencrypt finds them, re-encryption moves them to the new version', async () => {
    const { fields } = remoteFields({ maxUses: 2 });
    await fields.ready(36); // 6 rows × 6 columns
    const { database, db, raw } = sqlite(fields);
    await createPeople(raw);
    for (let i = 1; i <= 6; i++) await db.insertInto('people').values(person(i)).execute();
    await fields.ready(); // let the background refill finish before the rotation
    await client.rotateKey(KEY);
    // A process started after the rotation: reads everything, new values go under version 2.
    const later = remoteFields();
    await later.fields.ready();
    const old = await raw.selectFrom('people').selectAll().orderBy('id').execute();
    expect(await later.fields.decryptRowsAsync('people', old)).toEqual([1, 2, 3, 4, 5, 6].map(person));
    expect(old.every((r) => later.fields.needsReencrypt(String(r.name)))).toBe(true);
    expect(later.fields.needsReencrypt(later.fields.encryptValue('people', 'name', 'x', 9))).toBe(false);
    // The first process learns the new version when it refreshes its keys.
    expect(fields.needsReencrypt(String(old[0]!.name))).toBe(false);
    await fields.dataKeys!.refresh();
    expect(fields.needsReencrypt(String(old[0]!.name))).toBe(true);
    // One value, async; then the whole column through reencryptColumn.
    const moved = await later.fields.reencryptValueAsync('people', 'score', String(old[0]!.score), 1);
    expect(parseRemoteValue(moved).keyVersion).toBe(2);
    expect(later.fields.decryptValue('people', 'score', moved, 1)).toBe(person(1).score);
    // A fresh job process: nothing cached and no ready(); the job fetches what it needs batch by batch.
    const job = remoteFields();
    const done = await reencryptColumn(job.fields, sqliteExecutor(database), {
      table: 'people',
      column: 'name',
    });
    expect(done.rewritten).toBe(6);
    const after = await raw.selectFrom('people').select(['id', 'name']).orderBy('id').execute();
    expect(after.every((r) => parseRemoteValue(String(r.name)).keyVersion === 2)).toBe(true);
    const fresh = remoteFields();
    expect((await kyselyRead(fresh.fields, database)).map((r) => r.name)).toEqual(
      [1, 2, 3, 4, 5, 6].map((i) => `Person ${i}`),
    );
  });
});

function kyselyRead(fields: FieldEncryption, database: Database.Database) {
  const db = new Kysely<DB>({
    dialect: new SqliteDialect({ database }),
    plugins: [new EnsealKyselyPlugin(fields)],
  });
  return db.selectFrom('people').select(['id', 'name']).orderBy('id').execute();
}

describe('the key server sealed or unreachable', () => {
  it('an unreachable server: typed errors, nothing written in clear', async () => {
    // A port that was free a moment ago, with no retries: connection refused.
    const url = new URL(ctx.server.url);
    url.port = String(await freePort());
    const dead = new EnsealClient({
      address: url.toString(),
      token: ctx.token,
      caCert: readFileSync(ctx.server.caFile!),
      retries: 0,
      timeoutMs: 2000,
    });
    const { fields } = remoteFields({}, dead);
    expect(await codeOf(fields.ready())).toBe('ERR_IO');
    const { db, raw } = sqlite(fields);
    await createPeople(raw);
    expect(await codeOf(db.insertInto('people').values({ id: 1, name: 'Ada' }).execute())).toBe(
      'ERR_DATA_KEY_UNAVAILABLE',
    );
    expect(await raw.selectFrom('people').selectAll().execute()).toEqual([]);
    const last = provoked.at(-1) as Error;
    expect(last.message).toContain('ERR_IO');
    dead.close();
  });

  it('a sealed server: a fresh process can neither write nor read; a warm one keeps its cached keys', async () => {
    const warm = remoteFields();
    await warm.fields.ready();
    const { db, raw } = sqlite(warm.fields);
    await createPeople(raw);
    await db.insertInto('people').values(person(1)).execute();
    expect((await ctx.call('PUT', '/v1/sys/seal')).status).toBe(204);
    try {
      const cold = remoteFields();
      expect(await codeOf(cold.fields.ready())).toBe('ERR_SEALED');
      const coldDb = kysely2(cold.fields, raw);
      expect(await codeOf(coldDb.insertInto('people').values(person(2)).execute())).toBe(
        'ERR_DATA_KEY_UNAVAILABLE',
      );
      expect(await codeOf(coldDb.selectFrom('people').selectAll().execute())).toBe('ERR_SEALED');
      expect((await raw.selectFrom('people').select('id').execute()).map((r) => r.id)).toEqual([1]);
      // The cache's purpose: values under cached keys stay readable while the server is away.
      expect(await db.selectFrom('people').selectAll().execute()).toEqual([person(1)]);
    } finally {
      await ctx.server.km.unsealDev();
    }
    const cold = remoteFields();
    expect(await kysely2(cold.fields, raw).selectFrom('people').selectAll().execute()).toEqual([person(1)]);
  });
});

/** A plugin-equipped Kysely over the same SQLite database as `raw`. */
function kysely2(fields: FieldEncryption, raw: Kysely<DB>): Kysely<DB> {
  return raw.withPlugin(new EnsealKyselyPlugin(fields));
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('secret leaks', () => {
  it('no data key appears in any error, the server log, the counters or an inspected cache', async () => {
    const { fields, dataKeys } = remoteFields({ maxUses: 2 });
    await fields.ready();
    const value = fields.encryptValue('people', 'name', 'Grace', 5);
    expect(await codeOf(fields.decryptValueAsync('people', 'name', value, 6))).toBe('ERR_DECRYPT_FAILED');
    expect(await codeOf(() => fields.decryptValue('people', 'score', value, 5))).toBe('ERR_DECRYPT_FAILED');
    const haystack = [
      ...provoked.flatMap((e) =>
        e instanceof Error
          ? [e.message, e.stack ?? '', inspect(e, { depth: 5 }), JSON.stringify(e)]
          : [String(e)],
      ),
      ctx.logs(),
      JSON.stringify(dataKeys.stats()),
      inspect(dataKeys, { depth: 5, showHidden: true }),
      inspect(fields, { depth: 5, showHidden: true }),
      (await ctx.call('GET', '/v1/sys/metrics')).text,
    ].join('\n');
    expect(seenKeys.length).toBeGreaterThan(20);
    expect(provoked.length).toBeGreaterThan(8);
    for (const key of seenKeys) {
      for (const form of [
        hexEncode(key),
        base64Encode(key),
        base64UrlEncode(key),
        base64Encode(key).slice(0, 40),
      ])
        expect(haystack).not.toContain(form);
    }
  });
});
